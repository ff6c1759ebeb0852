//! The converter SCORE's storage: reserves, pool tokens, Ether credits, payouts waiting for
//! their reply and the last trades.

use alloy_rlp::{RlpDecodable, RlpEncodable};
use nexus_proto::value::format_int;
use nexus_proto::Address;
use nexus_score::state::decode_u128;
use nexus_score::{CallContext, ScoreError};
use serde_json::{json, Value};

/// Trades kept for `getTrades`.
pub(crate) const KEEP_TRADES: u64 = 32;

fn get(ctx: &CallContext<'_, '_>, key: &[u8]) -> u128 {
    decode_u128(ctx.get(key))
}

fn put(ctx: &mut CallContext<'_, '_>, key: &[u8], v: u128) -> Result<(), ScoreError> {
    if v == 0 {
        ctx.delete(key)
    } else {
        ctx.set(key, v.to_be_bytes().to_vec())
    }
}

fn keyed(prefix: &[u8], a: &Address) -> Vec<u8> {
    [prefix, &a.to_bytes()].concat()
}

pub(crate) fn icx(ctx: &CallContext<'_, '_>) -> u128 {
    get(ctx, b"r/icx")
}

pub(crate) fn eth(ctx: &CallContext<'_, '_>) -> u128 {
    get(ctx, b"r/eth")
}

pub(crate) fn set_reserves(
    ctx: &mut CallContext<'_, '_>,
    icx: u128,
    eth: u128,
) -> Result<(), ScoreError> {
    put(ctx, b"r/icx", icx)?;
    put(ctx, b"r/eth", eth)
}

pub(crate) fn supply(ctx: &CallContext<'_, '_>) -> u128 {
    get(ctx, b"supply")
}

pub(crate) fn set_supply(ctx: &mut CallContext<'_, '_>, v: u128) -> Result<(), ScoreError> {
    put(ctx, b"supply", v)
}

pub(crate) fn fee(ctx: &CallContext<'_, '_>) -> u32 {
    u32::try_from(get(ctx, b"fee")).unwrap_or(u32::MAX)
}

pub(crate) fn set_fee(ctx: &mut CallContext<'_, '_>, v: u32) -> Result<(), ScoreError> {
    // Stored even when zero, so a fee set to 0 stays 0.
    ctx.set(b"fee", u128::from(v).to_be_bytes().to_vec())
}

pub(crate) fn pool_balance(ctx: &CallContext<'_, '_>, a: &Address) -> u128 {
    get(ctx, &keyed(b"p/", a))
}

pub(crate) fn set_pool_balance(
    ctx: &mut CallContext<'_, '_>,
    a: &Address,
    v: u128,
) -> Result<(), ScoreError> {
    put(ctx, &keyed(b"p/", a), v)
}

pub(crate) fn deposit(ctx: &CallContext<'_, '_>, a: &Address) -> u128 {
    get(ctx, &keyed(b"d/", a))
}

/// Sets an account's Ether credit, keeping the total (`dt`) in step.
pub(crate) fn set_deposit(
    ctx: &mut CallContext<'_, '_>,
    a: &Address,
    v: u128,
) -> Result<(), ScoreError> {
    let old = deposit(ctx, a);
    let total = (total_deposits(ctx) - old).saturating_add(v);
    put(ctx, b"dt", total)?;
    put(ctx, &keyed(b"d/", a), v)
}

pub(crate) fn total_deposits(ctx: &CallContext<'_, '_>) -> u128 {
    get(ctx, b"dt")
}

/// Ether sent out and not yet confirmed.
pub(crate) fn out(ctx: &CallContext<'_, '_>) -> u128 {
    get(ctx, b"out")
}

pub(crate) fn set_out(ctx: &mut CallContext<'_, '_>, v: u128) -> Result<(), ScoreError> {
    put(ctx, b"out", v)
}

pub(crate) fn next_sn(ctx: &mut CallContext<'_, '_>) -> Result<u128, ScoreError> {
    let sn = get(ctx, b"sn") + 1;
    put(ctx, b"sn", sn)?;
    Ok(sn)
}

/// What a payout refunds if Ethereum cannot make it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PayoutKind {
    /// An ICX -> ETH trade: undone (ICX back to the trader, Ether back in the reserve).
    Swap,
    /// Liquidity removed or a credit withdrawn: the Ether goes back to the account's credit.
    Credit,
}

/// A payout waiting for its reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Payout {
    pub(crate) kind: PayoutKind,
    pub(crate) account: Address,
    pub(crate) icx: u128,
    pub(crate) eth: u128,
    pub(crate) to: String,
}

#[derive(RlpEncodable, RlpDecodable)]
struct StoredPayout {
    kind: u8,
    account: Address,
    icx: u128,
    eth: u128,
    to: String,
}

fn payout_key(sn: u128) -> Vec<u8> {
    [b"o/".as_slice(), &sn.to_be_bytes()].concat()
}

pub(crate) fn set_payout(
    ctx: &mut CallContext<'_, '_>,
    sn: u128,
    p: &Payout,
) -> Result<(), ScoreError> {
    let s = StoredPayout {
        kind: match p.kind {
            PayoutKind::Swap => 0,
            PayoutKind::Credit => 1,
        },
        account: p.account,
        icx: p.icx,
        eth: p.eth,
        to: p.to.clone(),
    };
    ctx.set(&payout_key(sn), alloy_rlp::encode(&s))
}

pub(crate) fn payout(ctx: &CallContext<'_, '_>, sn: u128) -> Option<Payout> {
    let raw = ctx.get(&payout_key(sn))?;
    let s: StoredPayout = alloy_rlp::decode_exact(&raw).ok()?;
    Some(Payout {
        kind: if s.kind == 0 {
            PayoutKind::Swap
        } else {
            PayoutKind::Credit
        },
        account: s.account,
        icx: s.icx,
        eth: s.eth,
        to: s.to,
    })
}

pub(crate) fn delete_payout(ctx: &mut CallContext<'_, '_>, sn: u128) -> Result<(), ScoreError> {
    ctx.delete(&payout_key(sn))
}

/// A trade, as `getTrades` shows it.
#[derive(Debug, Clone, PartialEq, Eq, RlpEncodable, RlpDecodable)]
pub(crate) struct Trade {
    pub(crate) height: u64,
    pub(crate) timestamp: u64,
    /// `ICX` or `ETH`: what the trader sold.
    pub(crate) from: String,
    pub(crate) trader: String,
    pub(crate) amount: u128,
    pub(crate) ret: u128,
    pub(crate) fee: u128,
}

impl Trade {
    pub(crate) fn to_json(&self) -> Value {
        json!({
            "height": format_int(u128::from(self.height)),
            "timestamp": format_int(u128::from(self.timestamp)),
            "fromToken": self.from,
            "toToken": if self.from == "ICX" { "ETH" } else { "ICX" },
            "trader": self.trader,
            "amount": format_int(self.amount),
            "return": format_int(self.ret),
            "fee": format_int(self.fee),
        })
    }
}

pub(crate) fn push_trade(ctx: &mut CallContext<'_, '_>, t: &Trade) -> Result<(), ScoreError> {
    let n = trade_count(ctx);
    let slot = [b"t/".as_slice(), &(n % KEEP_TRADES).to_be_bytes()].concat();
    ctx.set(&slot, alloy_rlp::encode(t))?;
    put(ctx, b"t/n", u128::from(n) + 1)
}

/// Trades so far.
pub(crate) fn trade_count(ctx: &CallContext<'_, '_>) -> u64 {
    get(ctx, b"t/n") as u64
}

/// The last trades, newest first.
pub(crate) fn trades(ctx: &CallContext<'_, '_>) -> Vec<Trade> {
    let n = trade_count(ctx);
    (0..n.min(KEEP_TRADES))
        .filter_map(|back| {
            let i = n - 1 - back;
            let slot = [b"t/".as_slice(), &(i % KEEP_TRADES).to_be_bytes()].concat();
            alloy_rlp::decode_exact(&ctx.get(&slot)?).ok()
        })
        .collect()
}
