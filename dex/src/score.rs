//! The converter SCORE on the Nexus public channel: the ICX reserve in its own balance, the ETH
//! reserve in the reserve contract on Ethereum (service `dex` over BTP), the book in its storage.
//!
//! - Trades: `convert(_to, _minReturn)` sells the attached ICX for Ether paid at `_to` on
//!   Ethereum; a `swap` message from the reserve buys ICX with the Ether it holds. Both use
//!   [`Converter`] (cross-reserve formula, fee taken twice) and refuse below `_minReturn`: an ICX
//!   trade fails and keeps nothing; an Ether trade is answered with an error and the reserve
//!   refunds it. A payout Ethereum cannot make comes back as an error reply and is refunded.
//! - Liquidity: Ether a provider deposits on Ethereum (`deposit` message) is credited to their
//!   account; `addLiquidity(_eth, _minTokens)` with ICX attached takes both in the reserves'
//!   proportion and mints pool tokens; `removeLiquidity(_amount, _ethTo)` pays both back;
//!   `withdrawDeposit(_amount, _to)` sends unused Ether credit home.
//! - Queries: `getReturn`, `getPrice`, `getReserves`, `getWeights`, `getFee`, `balanceOf`,
//!   `totalSupply`, `depositOf`, `getTrades`, `getConfig`; the owner sets the fee (`setFee`)
//!   up to [`MAX_FEE_PPM`].
//!
//! Storage: `r/icx`, `r/eth` reserves, `supply` pool tokens, `fee`, `p/<owner>` pool
//! balances, `d/<owner>` Ether credits, `out` Ether in flight, `sn`, `o/<sn>` payouts waiting
//! for their reply, `t/n` trades so far and `t/<i mod 32>` the last 32.

mod store;
pub mod wire;

use crate::formula::MAX_FEE_PPM;
use crate::{Converter, DexError, Reserve};
use nexus_proto::value::{format_bytes, format_int};
use nexus_proto::Address;
use nexus_score::{
    expect_params, failure, param_address, param_bytes, param_int, param_string, CallContext,
    NativeScore, ScoreError,
};
use serde_json::{json, Map, Value};
use store::{Payout, PayoutKind, Trade};
use wire::{eth_account, Inbound};

/// Where the converter lives on the public channel.
pub const CONVERTER_ADDRESS: Address = Address::contract({
    let mut b = [0u8; 20];
    b[18] = 0xde;
    b[19] = 0x40;
    b
});

/// The service name on both sides.
pub const SERVICE: &str = "dex";

/// Steps charged for a conversion's formula (a fixed-point power).
pub const FORMULA_STEPS: u128 = 50_000;

/// `Conversion(str,str,str,int,int,int)`: `_fromToken`, `_toToken`, `_trader` indexed;
/// `_amount`, `_return`, `_fee`.
pub const CONVERSION_SIG: &str = "Conversion(str,str,str,int,int,int)";
/// `LiquidityAdded(Address,int,int,int)`: `_provider` indexed; `_icx`, `_eth`, `_tokens`.
pub const LIQUIDITY_ADDED_SIG: &str = "LiquidityAdded(Address,int,int,int)";
/// `LiquidityRemoved(Address,int,int,int)`: `_provider` indexed; `_icx`, `_eth`, `_tokens`.
pub const LIQUIDITY_REMOVED_SIG: &str = "LiquidityRemoved(Address,int,int,int)";
/// `Deposit(str,Address,int)`: `_from`, `_to` indexed; `_eth`.
pub const DEPOSIT_SIG: &str = "Deposit(str,Address,int)";
/// `PayoutEnded(int,int,str)`: `_sn` indexed; `_code`, `_msg` (0: paid; otherwise refunded).
pub const PAYOUT_ENDED_SIG: &str = "PayoutEnded(int,int,str)";
/// `FeeUpdated(int)`.
pub const FEE_UPDATED_SIG: &str = "FeeUpdated(int)";

/// The converter SCORE.
#[derive(Debug, Clone)]
pub struct ConverterScore {
    /// Who sets the fee.
    pub owner: Option<Address>,
    /// The BMC of this channel (the only caller of the BTP handlers).
    pub bmc: Address,
    /// The network of the Ether reserve (`0x539.eth`).
    pub reserve_network: String,
    /// ICX connector weight (ppm).
    pub icx_weight: u32,
    /// ETH connector weight (ppm).
    pub eth_weight: u32,
    /// Fee at install (ppm).
    pub initial_fee_ppm: u32,
}

fn dex_err(e: DexError) -> ScoreError {
    ScoreError::revert(e.to_string())
}

fn token(field: &str, s: &str) -> Result<Reserve, ScoreError> {
    match s {
        "ICX" => Ok(Reserve::Icx),
        "ETH" => Ok(Reserve::Eth),
        other => Err(ScoreError::invalid_param(format!(
            "{field}: unknown token {:?}: expected ICX or ETH",
            other.chars().take(40).collect::<String>()
        ))),
    }
}

fn name(r: Reserve) -> &'static str {
    match r {
        Reserve::Icx => "ICX",
        Reserve::Eth => "ETH",
    }
}

fn not_payable(ctx: &CallContext<'_, '_>, method: &str) -> Result<(), ScoreError> {
    if ctx.value > 0 {
        return Err(ScoreError::new(
            failure::METHOD_NOT_PAYABLE,
            format!("{method} does not take ICX"),
        ));
    }
    Ok(())
}

fn positive(field: &str, v: u128) -> Result<u128, ScoreError> {
    if v == 0 {
        return Err(ScoreError::invalid_param(format!(
            "{field}: expected more than 0"
        )));
    }
    Ok(v)
}

impl ConverterScore {
    fn book(&self, ctx: &CallContext<'_, '_>) -> Result<Converter, ScoreError> {
        let mut c =
            Converter::new(self.icx_weight, self.eth_weight, store::fee(ctx)).map_err(dex_err)?;
        (c.icx, c.eth, c.supply) = (store::icx(ctx), store::eth(ctx), store::supply(ctx));
        Ok(c)
    }

    fn check_bmc(&self, ctx: &CallContext<'_, '_>) -> Result<(), ScoreError> {
        if ctx.from != self.bmc {
            return Err(ScoreError::revert(format!(
                "only the BMC {} delivers BTP messages (caller {})",
                self.bmc, ctx.from
            )));
        }
        Ok(())
    }

    fn get_return(
        &self,
        ctx: &CallContext<'_, '_>,
        p: &Map<String, Value>,
    ) -> Result<Value, ScoreError> {
        expect_params(p, &["_from", "_amount"])?;
        let from = token("_from", &param_string(p, "_from", 16)?)?;
        let amount = positive("_amount", param_int(p, "_amount")?)?;
        let q = self.book(ctx)?.quote(from, amount).map_err(dex_err)?;
        let to = if from == Reserve::Icx {
            Reserve::Eth
        } else {
            Reserve::Icx
        };
        Ok(json!({"amount": format_int(q.amount), "fee": format_int(q.fee), "toToken": name(to)}))
    }

    fn send_pay(&self, ctx: &mut CallContext<'_, '_>, payout: Payout) -> Result<u128, ScoreError> {
        let sn = store::next_sn(ctx)?;
        let msg = wire::pay(&payout.to, payout.eth);
        store::set_out(ctx, store::out(ctx) + payout.eth)?;
        store::set_payout(ctx, sn, &payout)?;
        let p = json!({"_to": self.reserve_network, "_svc": SERVICE,
                       "_sn": format_int(sn), "_msg": format_bytes(&msg)});
        let Value::Object(p) = p else {
            unreachable!("a json object")
        };
        ctx.call(&self.bmc, "sendMessage", &p, 0)?;
        Ok(sn)
    }

    /// `convert(_to, _minReturn)`: the attached ICX for Ether at `_to`.
    fn convert(
        &self,
        ctx: &mut CallContext<'_, '_>,
        p: &Map<String, Value>,
    ) -> Result<Value, ScoreError> {
        expect_params(p, &["_to", "_minReturn"])?;
        let to = eth_account("_to", &param_string(p, "_to", 64)?)
            .map_err(|e| ScoreError::invalid_param(e.0))?;
        let min = param_int(p, "_minReturn")?;
        let amount = positive("the ICX sent", ctx.value)?;
        ctx.charge(FORMULA_STEPS)?;
        let mut book = self.book(ctx)?;
        let q = book.convert(Reserve::Icx, amount, min).map_err(dex_err)?;
        store::set_reserves(ctx, book.icx, book.eth)?;
        let trader = ctx.from;
        let sn = self.send_pay(
            ctx,
            Payout {
                kind: PayoutKind::Swap,
                account: trader,
                icx: amount,
                eth: q.amount,
                to: to.clone(),
            },
        )?;
        self.record(
            ctx,
            Reserve::Icx,
            &trader.to_string(),
            amount,
            q.amount,
            q.fee,
        )?;
        Ok(json!({"sn": format_int(sn), "amount": format_int(q.amount), "fee": format_int(q.fee)}))
    }

    fn record(
        &self,
        ctx: &mut CallContext<'_, '_>,
        from: Reserve,
        trader: &str,
        amount: u128,
        ret: u128,
        fee: u128,
    ) -> Result<(), ScoreError> {
        let to = if from == Reserve::Icx { "ETH" } else { "ICX" };
        ctx.emit(
            vec![
                CONVERSION_SIG.into(),
                name(from).into(),
                to.into(),
                trader.into(),
            ],
            vec![format_int(amount), format_int(ret), format_int(fee)],
        )?;
        store::push_trade(
            ctx,
            &Trade {
                height: ctx.height,
                timestamp: ctx.timestamp,
                from: name(from).into(),
                trader: trader.into(),
                amount,
                ret,
                fee,
            },
        )
    }

    fn handle_message(
        &self,
        ctx: &mut CallContext<'_, '_>,
        p: &Map<String, Value>,
    ) -> Result<Value, ScoreError> {
        expect_params(p, &["_from", "_svc", "_sn", "_msg"])?;
        self.check_bmc(ctx)?;
        let src = param_string(p, "_from", 64)?;
        if src != self.reserve_network {
            return Err(ScoreError::revert(format!(
                "unknown token: Ether comes only from {}, not {src}",
                self.reserve_network
            )));
        }
        let raw = param_bytes(p, "_msg")?.unwrap_or_default();
        let msg = Inbound::decode(&raw).map_err(|e| ScoreError::invalid_param(e.0))?;
        match msg {
            Inbound::Swap {
                from,
                to,
                amount,
                min_return,
            } => {
                let to = Address::parse("to", &to)
                    .map_err(|e| ScoreError::invalid_param(e.to_string()))?;
                let amount = positive("amount", amount)?;
                ctx.charge(FORMULA_STEPS)?;
                let mut book = self.book(ctx)?;
                let q = book
                    .convert(Reserve::Eth, amount, min_return)
                    .map_err(dex_err)?;
                store::set_reserves(ctx, book.icx, book.eth)?;
                ctx.transfer(&to, q.amount)?;
                self.record(ctx, Reserve::Eth, &from, amount, q.amount, q.fee)?;
            }
            Inbound::Deposit { from, to, amount } => {
                let to = Address::parse("to", &to)
                    .map_err(|e| ScoreError::invalid_param(e.to_string()))?;
                let amount = positive("amount", amount)?;
                let credit = store::deposit(ctx, &to)
                    .checked_add(amount)
                    .ok_or_else(|| dex_err(DexError::Overflow("deposit")))?;
                store::set_deposit(ctx, &to, credit)?;
                ctx.emit(
                    vec![DEPOSIT_SIG.into(), from, to.to_string()],
                    vec![format_int(amount)],
                )?;
            }
        }
        Ok(Value::Null)
    }

    fn handle_error(
        &self,
        ctx: &mut CallContext<'_, '_>,
        p: &Map<String, Value>,
    ) -> Result<Value, ScoreError> {
        expect_params(p, &["_src", "_svc", "_sn", "_code", "_msg"])?;
        self.check_bmc(ctx)?;
        let sn = param_int(p, "_sn")?;
        let code = p.get("_code").and_then(Value::as_str).unwrap_or("0x1");
        let message = param_string(p, "_msg", 1024).unwrap_or_default();
        let Some(payout) = store::payout(ctx, sn) else {
            return Ok(Value::Null);
        };
        store::delete_payout(ctx, sn)?;
        store::set_out(ctx, store::out(ctx).saturating_sub(payout.eth))?;
        if code != "0x0" {
            match payout.kind {
                PayoutKind::Swap => {
                    // The trade is undone: its ICX back to the trader, its Ether back in.
                    let icx = store::icx(ctx);
                    let back = payout.icx.min(icx);
                    store::set_reserves(ctx, icx - back, store::eth(ctx) + payout.eth)?;
                    ctx.transfer(&payout.account, back)?;
                }
                PayoutKind::Credit => {
                    let credit = store::deposit(ctx, &payout.account).saturating_add(payout.eth);
                    store::set_deposit(ctx, &payout.account, credit)?;
                }
            }
        }
        ctx.emit(
            vec![PAYOUT_ENDED_SIG.into(), format_int(sn)],
            vec![code.to_string(), message],
        )?;
        Ok(Value::Null)
    }

    fn add_liquidity(
        &self,
        ctx: &mut CallContext<'_, '_>,
        p: &Map<String, Value>,
    ) -> Result<Value, ScoreError> {
        expect_params(p, &["_eth", "_minTokens"])?;
        let eth = positive("_eth", param_int(p, "_eth")?)?;
        let min_tokens = match p.get("_minTokens") {
            Some(_) => param_int(p, "_minTokens")?,
            None => 0,
        };
        let icx = positive("the ICX sent", ctx.value)?;
        let provider = ctx.from;
        let credit = store::deposit(ctx, &provider);
        if eth > credit {
            return Err(ScoreError::revert(format!(
                "_eth: {provider} has {credit} wei deposited on the reserve, not {eth}"
            )));
        }
        let mut book = self.book(ctx)?;
        let (minted, icx_in, eth_in) = book.add_liquidity(icx, eth).map_err(dex_err)?;
        if minted < min_tokens {
            return Err(dex_err(DexError::BelowMinReturn {
                got: minted,
                min: min_tokens,
            }));
        }
        store::set_reserves(ctx, book.icx, book.eth)?;
        store::set_supply(ctx, book.supply)?;
        store::set_deposit(ctx, &provider, credit - eth_in)?;
        let tokens = store::pool_balance(ctx, &provider) + minted;
        store::set_pool_balance(ctx, &provider, tokens)?;
        if icx > icx_in {
            ctx.transfer(&provider, icx - icx_in)?;
        }
        ctx.emit(
            vec![LIQUIDITY_ADDED_SIG.into(), provider.to_string()],
            vec![format_int(icx_in), format_int(eth_in), format_int(minted)],
        )?;
        Ok(
            json!({"tokens": format_int(minted), "icx": format_int(icx_in), "eth": format_int(eth_in)}),
        )
    }

    fn remove_liquidity(
        &self,
        ctx: &mut CallContext<'_, '_>,
        p: &Map<String, Value>,
    ) -> Result<Value, ScoreError> {
        expect_params(p, &["_amount", "_ethTo"])?;
        let amount = positive("_amount", param_int(p, "_amount")?)?;
        let to = eth_account("_ethTo", &param_string(p, "_ethTo", 64)?)
            .map_err(|e| ScoreError::invalid_param(e.0))?;
        let provider = ctx.from;
        let have = store::pool_balance(ctx, &provider);
        if amount > have {
            return Err(ScoreError::revert(format!(
                "_amount: {provider} holds {have} pool tokens, not {amount}"
            )));
        }
        let mut book = self.book(ctx)?;
        let (icx, eth) = book.remove_liquidity(amount).map_err(dex_err)?;
        store::set_reserves(ctx, book.icx, book.eth)?;
        store::set_supply(ctx, book.supply)?;
        store::set_pool_balance(ctx, &provider, have - amount)?;
        ctx.transfer(&provider, icx)?;
        if eth > 0 {
            self.send_pay(
                ctx,
                Payout {
                    kind: PayoutKind::Credit,
                    account: provider,
                    icx: 0,
                    eth,
                    to,
                },
            )?;
        }
        ctx.emit(
            vec![LIQUIDITY_REMOVED_SIG.into(), provider.to_string()],
            vec![format_int(icx), format_int(eth), format_int(amount)],
        )?;
        Ok(json!({"icx": format_int(icx), "eth": format_int(eth)}))
    }

    fn withdraw_deposit(
        &self,
        ctx: &mut CallContext<'_, '_>,
        p: &Map<String, Value>,
    ) -> Result<Value, ScoreError> {
        expect_params(p, &["_amount", "_to"])?;
        let amount = positive("_amount", param_int(p, "_amount")?)?;
        let to = eth_account("_to", &param_string(p, "_to", 64)?)
            .map_err(|e| ScoreError::invalid_param(e.0))?;
        let owner = ctx.from;
        let credit = store::deposit(ctx, &owner);
        if amount > credit {
            return Err(ScoreError::revert(format!(
                "_amount: {owner} has {credit} wei deposited, not {amount}"
            )));
        }
        store::set_deposit(ctx, &owner, credit - amount)?;
        let sn = self.send_pay(
            ctx,
            Payout {
                kind: PayoutKind::Credit,
                account: owner,
                icx: 0,
                eth: amount,
                to,
            },
        )?;
        Ok(json!({"sn": format_int(sn)}))
    }

    fn set_fee(
        &self,
        ctx: &mut CallContext<'_, '_>,
        p: &Map<String, Value>,
    ) -> Result<Value, ScoreError> {
        expect_params(p, &["_fee"])?;
        if self.owner != Some(ctx.from) {
            return Err(ScoreError::revert(format!(
                "only the owner sets the fee (caller {})",
                ctx.from
            )));
        }
        let fee = param_int(p, "_fee")?;
        if fee > u128::from(MAX_FEE_PPM) {
            return Err(dex_err(DexError::Fee {
                got: u32::try_from(fee).unwrap_or(u32::MAX),
                max: MAX_FEE_PPM,
            }));
        }
        store::set_fee(ctx, fee as u32)?;
        ctx.emit(vec![FEE_UPDATED_SIG.into()], vec![format_int(fee)])?;
        Ok(Value::Null)
    }

    fn reserves(&self, ctx: &CallContext<'_, '_>) -> Value {
        json!({
            "ICX": format_int(store::icx(ctx)),
            "ETH": format_int(store::eth(ctx)),
            "ethDeposits": format_int(store::total_deposits(ctx)),
            "ethInFlight": format_int(store::out(ctx)),
            "supply": format_int(store::supply(ctx)),
            "trades": format_int(u128::from(store::trade_count(ctx))),
        })
    }

    fn price(&self, ctx: &CallContext<'_, '_>) -> Result<Value, ScoreError> {
        let book = self.book(ctx)?;
        let icx_in_eth = book.price_icx_in_eth().map_err(dex_err)?;
        Ok(json!({
            "icxInWei": format_int(icx_in_eth),
            "ICX": format_int(book.icx),
            "ETH": format_int(book.eth),
        }))
    }
}

impl NativeScore for ConverterScore {
    fn api(&self) -> Value {
        api()
    }

    fn install(&self, ctx: &mut CallContext<'_, '_>) -> Result<(), ScoreError> {
        Converter::new(self.icx_weight, self.eth_weight, self.initial_fee_ppm).map_err(dex_err)?;
        store::set_fee(ctx, self.initial_fee_ppm)
    }

    fn call(
        &self,
        ctx: &mut CallContext<'_, '_>,
        method: &str,
        p: &Map<String, Value>,
    ) -> Result<Value, ScoreError> {
        if !matches!(method, "convert" | "addLiquidity") {
            not_payable(ctx, method)?;
        }
        match method {
            "getReturn" => self.get_return(ctx, p),
            "getPrice" => {
                expect_params(p, &[])?;
                self.price(ctx)
            }
            "getReserves" => {
                expect_params(p, &[])?;
                Ok(self.reserves(ctx))
            }
            "getWeights" => {
                expect_params(p, &[])?;
                Ok(json!({"ICX": format_int(u128::from(self.icx_weight)),
                          "ETH": format_int(u128::from(self.eth_weight))}))
            }
            "getFee" => {
                expect_params(p, &[])?;
                Ok(json!({"fee": format_int(u128::from(store::fee(ctx))),
                          "maxFee": format_int(u128::from(MAX_FEE_PPM))}))
            }
            "getConfig" => {
                expect_params(p, &[])?;
                Ok(
                    json!({"reserveNetwork": self.reserve_network, "bmc": self.bmc.to_string(),
                          "owner": self.owner.map(|o| o.to_string()), "service": SERVICE}),
                )
            }
            "balanceOf" => {
                expect_params(p, &["_owner"])?;
                let owner = param_address(p, "_owner")?;
                Ok(json!(format_int(store::pool_balance(ctx, &owner))))
            }
            "depositOf" => {
                expect_params(p, &["_owner"])?;
                let owner = param_address(p, "_owner")?;
                Ok(json!(format_int(store::deposit(ctx, &owner))))
            }
            "totalSupply" => {
                expect_params(p, &[])?;
                Ok(json!(format_int(store::supply(ctx))))
            }
            "getTrades" => {
                expect_params(p, &[])?;
                Ok(Value::Array(
                    store::trades(ctx).iter().map(Trade::to_json).collect(),
                ))
            }
            "convert" => self.convert(ctx, p),
            "addLiquidity" => self.add_liquidity(ctx, p),
            "removeLiquidity" => self.remove_liquidity(ctx, p),
            "withdrawDeposit" => self.withdraw_deposit(ctx, p),
            "setFee" => self.set_fee(ctx, p),
            "handleBTPMessage" => self.handle_message(ctx, p),
            "handleBTPError" => self.handle_error(ctx, p),
            "fallback" => Err(ScoreError::new(
                failure::METHOD_NOT_PAYABLE,
                "the converter takes ICX only through convert or addLiquidity",
            )),
            other => Err(ScoreError::new(
                failure::METHOD_NOT_FOUND,
                format!("the converter has no method {other:?}"),
            )),
        }
    }
}

fn api() -> Value {
    let f = |name: &str, inputs: Value, readonly: bool, payable: bool| {
        let mut v = json!({"type": "function", "name": name, "inputs": inputs, "outputs": []});
        if readonly {
            v["readonly"] = json!("0x1");
            v["outputs"] = json!([{"type": "dict"}]);
        }
        if payable {
            v["payable"] = json!("0x1");
        }
        v
    };
    let i = |name: &str, ty: &str| json!({"name": name, "type": ty});
    let ev = |name: &str, indexed: &[(&str, &str)], data: &[(&str, &str)]| {
        let mut inputs: Vec<Value> = indexed
            .iter()
            .map(|(n, t)| json!({"name": n, "type": t, "indexed": "0x1"}))
            .collect();
        inputs.extend(data.iter().map(|(n, t)| json!({"name": n, "type": t})));
        json!({"type": "eventlog", "name": name, "inputs": inputs})
    };
    json!([
        f(
            "getReturn",
            json!([i("_from", "str"), i("_amount", "int")]),
            true,
            false
        ),
        f("getPrice", json!([]), true, false),
        f("getReserves", json!([]), true, false),
        f("getWeights", json!([]), true, false),
        f("getFee", json!([]), true, false),
        f("getConfig", json!([]), true, false),
        f("balanceOf", json!([i("_owner", "Address")]), true, false),
        f("depositOf", json!([i("_owner", "Address")]), true, false),
        f("totalSupply", json!([]), true, false),
        f("getTrades", json!([]), true, false),
        f(
            "convert",
            json!([i("_to", "str"), i("_minReturn", "int")]),
            false,
            true
        ),
        f(
            "addLiquidity",
            json!([i("_eth", "int"), i("_minTokens", "int")]),
            false,
            true
        ),
        f(
            "removeLiquidity",
            json!([i("_amount", "int"), i("_ethTo", "str")]),
            false,
            false
        ),
        f(
            "withdrawDeposit",
            json!([i("_amount", "int"), i("_to", "str")]),
            false,
            false
        ),
        f("setFee", json!([i("_fee", "int")]), false, false),
        f(
            "handleBTPMessage",
            json!([
                i("_from", "str"),
                i("_svc", "str"),
                i("_sn", "int"),
                i("_msg", "bytes")
            ]),
            false,
            false
        ),
        f(
            "handleBTPError",
            json!([
                i("_src", "str"),
                i("_svc", "str"),
                i("_sn", "int"),
                i("_code", "int"),
                i("_msg", "str")
            ]),
            false,
            false
        ),
        ev(
            "Conversion",
            &[
                ("_fromToken", "str"),
                ("_toToken", "str"),
                ("_trader", "str")
            ],
            &[("_amount", "int"), ("_return", "int"), ("_fee", "int")]
        ),
        ev(
            "LiquidityAdded",
            &[("_provider", "Address")],
            &[("_icx", "int"), ("_eth", "int"), ("_tokens", "int")]
        ),
        ev(
            "LiquidityRemoved",
            &[("_provider", "Address")],
            &[("_icx", "int"), ("_eth", "int"), ("_tokens", "int")]
        ),
        ev(
            "Deposit",
            &[("_from", "str"), ("_to", "Address")],
            &[("_eth", "int")]
        ),
        ev(
            "PayoutEnded",
            &[("_sn", "int")],
            &[("_code", "int"), ("_msg", "str")]
        ),
        ev("FeeUpdated", &[], &[("_fee", "int")]),
    ])
}

#[cfg(test)]
mod tests;
