//! An IRC-2 token SCORE (ICON's fungible token standard).
//!
//! Read-only: `name`, `symbol`, `decimals`, `totalSupply`, `balanceOf(_owner)`.
//! Writes: `transfer(_to, _value, _data?)`, emitting `Transfer(Address,Address,int,bytes)`
//! with `_from`, `_to`, `_value` indexed. Sending ICX to the token fails (not payable); sending
//! tokens to a SCORE fails because no native SCORE here implements `tokenFallback` yet.

use super::{
    expect_params, param_address, param_bytes, param_int, CallContext, NativeScore, ScoreError,
};
use crate::error::failure;
use crate::ledger::state::decode_u128;
use nexus_proto::{value, Address};
use serde_json::{json, Map, Value};

/// Genesis settings of one token.
#[derive(Debug, Clone)]
pub struct Irc2Token {
    /// Token name.
    pub name: String,
    /// Token symbol.
    pub symbol: String,
    /// Decimals.
    pub decimals: u8,
    /// Holder of the initial supply.
    pub owner: Address,
    /// Initial supply.
    pub supply: u128,
}

const TRANSFER_SIG: &str = "Transfer(Address,Address,int,bytes)";

fn balance_slot(a: &Address) -> Vec<u8> {
    let mut k = b"balance/".to_vec();
    k.extend_from_slice(&a.to_bytes());
    k
}

fn get_u128(ctx: &CallContext<'_, '_>, key: &[u8]) -> u128 {
    decode_u128(ctx.get(key))
}

fn get_string(ctx: &CallContext<'_, '_>, key: &[u8]) -> String {
    ctx.get(key)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

impl NativeScore for Irc2Token {
    fn api(&self) -> Value {
        let ro = |name: &str, inputs: Value, out: &str| json!({"type": "function", "name": name, "inputs": inputs, "outputs": [{"type": out}], "readonly": "0x1"});
        json!([
            ro("name", json!([]), "str"),
            ro("symbol", json!([]), "str"),
            ro("decimals", json!([]), "int"),
            ro("totalSupply", json!([]), "int"),
            ro("balanceOf", json!([{"name": "_owner", "type": "Address"}]), "int"),
            {"type": "function", "name": "transfer", "inputs": [
                {"name": "_to", "type": "Address"},
                {"name": "_value", "type": "int"},
                {"name": "_data", "type": "bytes", "default": null}
            ], "outputs": []},
            {"type": "eventlog", "name": "Transfer", "inputs": [
                {"name": "_from", "type": "Address", "indexed": "0x1"},
                {"name": "_to", "type": "Address", "indexed": "0x1"},
                {"name": "_value", "type": "int", "indexed": "0x1"},
                {"name": "_data", "type": "bytes"}
            ]}
        ])
    }

    fn install(&self, ctx: &mut CallContext<'_, '_>) -> Result<(), ScoreError> {
        ctx.set(b"name", self.name.as_bytes().to_vec())?;
        ctx.set(b"symbol", self.symbol.as_bytes().to_vec())?;
        ctx.set(b"decimals", vec![self.decimals])?;
        ctx.set(b"totalSupply", self.supply.to_be_bytes().to_vec())?;
        if self.supply > 0 {
            ctx.set(
                &balance_slot(&self.owner),
                self.supply.to_be_bytes().to_vec(),
            )?;
        }
        Ok(())
    }

    fn call(
        &self,
        ctx: &mut CallContext<'_, '_>,
        method: &str,
        params: &Map<String, Value>,
    ) -> Result<Value, ScoreError> {
        let payable = false;
        if ctx.value > 0 && !payable {
            return Err(ScoreError::new(
                failure::METHOD_NOT_PAYABLE,
                format!("{method} does not accept ICX"),
            ));
        }
        match method {
            "name" | "symbol" => {
                expect_params(params, &[])?;
                Ok(Value::String(get_string(ctx, method.as_bytes())))
            }
            "decimals" => {
                expect_params(params, &[])?;
                let d = ctx
                    .get(b"decimals")
                    .and_then(|b| b.first().copied())
                    .unwrap_or(0);
                Ok(Value::String(value::format_int(d)))
            }
            "totalSupply" => {
                expect_params(params, &[])?;
                Ok(Value::String(value::format_int(get_u128(
                    ctx,
                    b"totalSupply",
                ))))
            }
            "balanceOf" => {
                expect_params(params, &["_owner"])?;
                let owner = param_address(params, "_owner")?;
                Ok(Value::String(value::format_int(get_u128(
                    ctx,
                    &balance_slot(&owner),
                ))))
            }
            "transfer" => {
                expect_params(params, &["_to", "_value", "_data"])?;
                if ctx.readonly {
                    return Err(ScoreError::new(
                        failure::ACCESS_DENIED,
                        "transfer needs a transaction, not icx_call",
                    ));
                }
                let to = param_address(params, "_to")?;
                let amount = param_int(params, "_value")?;
                let data = param_bytes(params, "_data")?.unwrap_or_default();
                if to.is_contract() {
                    return Err(ScoreError::revert(format!(
                        "{to} is a SCORE without tokenFallback"
                    )));
                }
                let from = ctx.from;
                let from_bal = get_u128(ctx, &balance_slot(&from));
                if from_bal < amount {
                    return Err(ScoreError::revert(format!(
                        "insufficient token balance: {from} holds {from_bal:#x}, transfer needs {amount:#x}"
                    )));
                }
                ctx.set(
                    &balance_slot(&from),
                    (from_bal - amount).to_be_bytes().to_vec(),
                )?;
                let to_bal = get_u128(ctx, &balance_slot(&to));
                let new_to = to_bal
                    .checked_add(amount)
                    .ok_or_else(|| ScoreError::revert("token balance overflow"))?;
                ctx.set(&balance_slot(&to), new_to.to_be_bytes().to_vec())?;
                ctx.emit(
                    vec![
                        TRANSFER_SIG.into(),
                        from.to_string(),
                        to.to_string(),
                        value::format_int(amount),
                    ],
                    vec![value::format_bytes(&data)],
                )?;
                Ok(Value::Null)
            }
            other => Err(ScoreError::new(
                failure::METHOD_NOT_FOUND,
                format!("IRC-2 token has no method {other:?}"),
            )),
        }
    }
}
