//! The `token` service: moves a chain's native coin to another chain, where it appears as a
//! wrapped token (`btp-<home network>-<symbol>`: `btp-0x101.loop-ICX`, or `btp-0x539.eth-ETH`
//! for Ether coming from Ethereum) kept by the BMC, and back. The coin sent away stays
//! locked in the BMC's balance on its home chain, so locked = wrapped supply elsewhere + in
//! flight. A transfer the destination refuses comes back as an error reply and is refunded;
//! nothing is lost or minted twice.
//!
//! Storage: `t/p/<sn>` pending transfer RLP[from, token, amount, network]; `t/w/<token>/<owner>`
//! wrapped balances; `t/s/<token>` wrapped supply; `t/l/<network>` the native coin locked for
//! each network, so a network can only send back what was sent to it (a compromised chain
//! cannot take the coin locked for another).

use crate::bmc::{code, get_u128, has_route, next_sn, set_status, set_u128, Bmc};
use crate::{split_btp_address, BtpError};
use alloy_rlp::{RlpDecodable, RlpEncodable};
use nexus_proto::btp::ErrorMessage;
use nexus_proto::value::format_int;
use nexus_proto::Address;
use nexus_score::{expect_params, param_address, param_int, param_string, CallContext, ScoreError};
use serde_json::{Map, Value};

/// The service name.
pub const SERVICE: &str = "token";

/// `TransferStart(Address,str,int,int)`: `_from`, `_to`, `_sn` indexed; `_value`.
pub const TRANSFER_START_SIG: &str = "TransferStart(Address,str,int,int)";
/// `TransferEnd(Address,int,int,str)`: `_from`, `_sn` indexed; `_code`, `_msg`.
pub const TRANSFER_END_SIG: &str = "TransferEnd(Address,int,int,str)";

/// The message a token transfer carries.
#[derive(Debug, Clone, PartialEq, Eq, RlpEncodable, RlpDecodable)]
pub struct TransferMessage {
    /// Sender on the source chain.
    pub from: String,
    /// Recipient account on the destination chain.
    pub to: String,
    /// Token id (`btp-<home network>-ICX`).
    pub token: String,
    /// Amount in the smallest unit.
    pub amount: u128,
}

#[derive(RlpEncodable, RlpDecodable)]
struct Pending {
    from: Address,
    token: String,
    amount: u128,
    network: String,
}

fn locked_key(network: &str) -> Vec<u8> {
    [b"t/l/", network.as_bytes()].concat()
}

/// The id of a network's native coin.
pub fn native_token(network: &str) -> String {
    format!("btp-{network}-ICX")
}

/// The home network of a token id `btp-<network>-<symbol>` (`btp-0x101.loop-ICX`,
/// `btp-0x539.eth-ETH`): the network that holds the coin locked.
pub fn token_home(token: &str) -> Option<&str> {
    let (net, symbol) = token.strip_prefix("btp-")?.rsplit_once('-')?;
    let ok = !net.is_empty()
        && !symbol.is_empty()
        && symbol.len() <= 16
        && symbol
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
    ok.then_some(net)
}

fn wrapped_key(token: &str, owner: &Address) -> Vec<u8> {
    [b"t/w/", token.as_bytes(), b"/", &owner.to_bytes()].concat()
}

fn supply_key(token: &str) -> Vec<u8> {
    [b"t/s/", token.as_bytes()].concat()
}

fn pending_key(sn: u128) -> Vec<u8> {
    [b"t/p/".as_slice(), &sn.to_be_bytes()].concat()
}

/// Adds `amount` of a wrapped token to `owner` (fails before writing on overflow).
fn mint(
    ctx: &mut CallContext<'_, '_>,
    token: &str,
    owner: &Address,
    amount: u128,
) -> Result<(), String> {
    let supply = get_u128(ctx, &supply_key(token));
    let bal = get_u128(ctx, &wrapped_key(token, owner));
    let (Some(s), Some(b)) = (supply.checked_add(amount), bal.checked_add(amount)) else {
        return Err(format!("minting {amount} of {token} overflows"));
    };
    set_u128(ctx, &supply_key(token), s).map_err(|e| e.message)?;
    set_u128(ctx, &wrapped_key(token, owner), b).map_err(|e| e.message)
}

fn start(
    bmc: &Bmc,
    ctx: &mut CallContext<'_, '_>,
    to: &str,
    token: String,
    amount: u128,
) -> Result<Value, ScoreError> {
    let (net, account) = split_btp_address("_to", to)?;
    if net == bmc.network {
        return Err(BtpError::Service(format!("{to} is on this chain; send it directly")).into());
    }
    if !has_route(ctx, net) {
        return Err(BtpError::NoRoute(net.to_string()).into());
    }
    if token == native_token(&bmc.network) {
        let locked = get_u128(ctx, &locked_key(net));
        let locked = locked.checked_add(amount).ok_or_else(|| {
            ScoreError::from(BtpError::Service(format!(
                "locking {amount} more for {net} overflows"
            )))
        })?;
        set_u128(ctx, &locked_key(net), locked)?;
    }
    let sn = next_sn(ctx)?;
    let pending = Pending {
        from: ctx.from,
        token: token.clone(),
        amount,
        network: net.to_string(),
    };
    ctx.set(&pending_key(sn), alloy_rlp::encode(&pending))?;
    set_status(ctx, sn, "sent")?;
    let msg = TransferMessage {
        from: ctx.from.to_string(),
        to: account.to_string(),
        token,
        amount,
    };
    bmc.send(ctx, net, SERVICE, sn as i128, alloy_rlp::encode(&msg), None)?;
    let from = ctx.from.to_string();
    ctx.emit(
        vec![TRANSFER_START_SIG.into(), from, to.into(), format_int(sn)],
        vec![format_int(amount)],
    )?;
    Ok(Value::String(format_int(sn)))
}

/// The service's methods on the BMC.
pub(crate) fn call(
    bmc: &Bmc,
    ctx: &mut CallContext<'_, '_>,
    method: &str,
    p: &Map<String, Value>,
) -> Result<Value, ScoreError> {
    match method {
        "balanceOf" => {
            expect_params(p, &["_token", "_owner"])?;
            let token = param_string(p, "_token", 128)?;
            let owner = param_address(p, "_owner")?;
            Ok(Value::String(format_int(get_u128(
                ctx,
                &wrapped_key(&token, &owner),
            ))))
        }
        "totalWrapped" => {
            expect_params(p, &["_token"])?;
            let token = param_string(p, "_token", 128)?;
            Ok(Value::String(format_int(get_u128(
                ctx,
                &supply_key(&token),
            ))))
        }
        "transfer" => {
            expect_params(p, &["_to"])?;
            let to = param_string(p, "_to", 256)?;
            if ctx.value == 0 {
                return Err(ScoreError::invalid_param(
                    "transfer: send the ICX to move as the transaction's value (got 0)",
                ));
            }
            let amount = ctx.value;
            start(bmc, ctx, &to, native_token(&bmc.network), amount)
        }
        "transferWrapped" => {
            expect_params(p, &["_token", "_to", "_value"])?;
            let token = param_string(p, "_token", 128)?;
            let to = param_string(p, "_to", 256)?;
            let amount = param_int(p, "_value")?;
            if amount == 0 {
                return Err(ScoreError::invalid_param("_value: expected more than 0"));
            }
            let home = token_home(&token).ok_or_else(|| {
                ScoreError::from(BtpError::Service(format!(
                    "_token: expected btp-<network>-<SYMBOL>, got {token:?}"
                )))
            })?;
            let (net, _) = split_btp_address("_to", &to)?;
            if net != home {
                return Err(BtpError::Service(format!(
                    "{token} goes back to its home network {home}, not {net}"
                ))
                .into());
            }
            let from = ctx.from;
            let bal = get_u128(ctx, &wrapped_key(&token, &from));
            if bal < amount {
                return Err(BtpError::Service(format!(
                    "{from} holds {bal} of {token}, cannot send {amount}"
                ))
                .into());
            }
            let supply = get_u128(ctx, &supply_key(&token));
            set_u128(ctx, &wrapped_key(&token, &from), bal - amount)?;
            set_u128(ctx, &supply_key(&token), supply.saturating_sub(amount))?;
            start(bmc, ctx, &to, token, amount)
        }
        _ => unreachable_method(method),
    }
}

fn unreachable_method(method: &str) -> Result<Value, ScoreError> {
    Err(ScoreError::new(
        nexus_score::failure::METHOD_NOT_FOUND,
        format!("token service has no method {method:?}"),
    ))
}

/// Delivers a transfer from `src`: unlocks the native coin coming home, or mints the wrapped
/// token of `src`. Checks everything before writing; an error becomes an error reply.
pub(crate) fn on_request(
    bmc: &Bmc,
    ctx: &mut CallContext<'_, '_>,
    src: &str,
    payload: &[u8],
) -> Result<(), String> {
    let m: TransferMessage = alloy_rlp::Decodable::decode(&mut &payload[..])
        .map_err(|e| format!("token message does not decode: {e}"))?;
    let to = Address::parse("recipient", &m.to).map_err(|e| e.to_string())?;
    if m.amount == 0 {
        return Err("amount 0".into());
    }
    if m.token == native_token(&bmc.network) {
        let locked = get_u128(ctx, &locked_key(src));
        if locked < m.amount {
            return Err(format!(
                "{src} holds {locked} of this chain's ICX, cannot send {} back",
                m.amount
            ));
        }
        ctx.transfer(&to, m.amount).map_err(|e| e.message)?;
        return set_u128(ctx, &locked_key(src), locked - m.amount).map_err(|e| e.message);
    }
    match token_home(&m.token) {
        Some(home) if home == src => mint(ctx, &m.token, &to, m.amount),
        _ => Err(format!("{src} cannot send {:?}: not its own coin", m.token)),
    }
}

/// Settles one of our transfers: delivered, or refunded to the sender.
pub(crate) fn on_reply(
    bmc: &Bmc,
    ctx: &mut CallContext<'_, '_>,
    sn: u128,
    reply: &ErrorMessage,
) -> Result<(), ScoreError> {
    let Some(raw) = ctx.get(&pending_key(sn)) else {
        return Ok(()); // not ours or settled already
    };
    let p: Pending = alloy_rlp::Decodable::decode(&mut raw.as_slice())
        .map_err(|_| ScoreError::new(1, "stored pending transfer does not decode"))?;
    ctx.delete(&pending_key(sn))?;
    if reply.code == code::OK {
        set_status(ctx, sn, "delivered")?;
    } else {
        if p.token == native_token(&bmc.network) {
            let locked = get_u128(ctx, &locked_key(&p.network));
            set_u128(
                ctx,
                &locked_key(&p.network),
                locked.saturating_sub(p.amount),
            )?;
            ctx.transfer(&p.from, p.amount)?;
        } else {
            mint(ctx, &p.token, &p.from, p.amount).map_err(|e| ScoreError::new(1, e))?;
        }
        set_status(ctx, sn, "refunded")?;
    }
    let from = p.from.to_string();
    ctx.emit(
        vec![TRANSFER_END_SIG.into(), from, format_int(sn)],
        vec![
            nexus_proto::value::format_i128(reply.code),
            reply.message.chars().take(256).collect(),
        ],
    )
}
