//! The chain SCORE at `cx0000000000000000000000000000000000000000`: validator-set changes.
//!
//! `setValidators(_validators: [Address], _height: int)` may be sent only by the genesis
//! `admin` (the C-Rep governance issue replaces the admin with a vote). The new set applies to
//! blocks from `_height` on, which must be at least [`CHANGE_MARGIN`] above the block that
//! carries the transaction, so that every validator has finalized the change before it applies.
//! `getValidators(_height?)` reads the set for a height (default: the next block).
//!
//! `_publicKeys` (optional, one per validator, in order; 33 or 65 bytes) names the keys behind
//! the addresses; each must hash to its address. With them the change also stores the set's
//! Ethereum addresses (`ethset/<height>`), so the notary decisions of a notary channel can name
//! the next set to verifiers that check signatures with `ecrecover` (see `btp_getDecision`).
//!
//! Fee queries, as goloop's chain SCORE answers them (wallets ask before sending):
//! `getStepPrice` (int), `getStepCosts` (a map of step kinds to ints), `getMaxStepLimit(
//! contextType: "invoke" | "query")` (int) and `getRevision` (int).

use super::{expect_params, param_int, CallContext, NativeScore, ScoreError};
use crate::error::failure;
use crate::ledger::state::StateView;
use nexus_proto::block::{decode_validators, encode_validators, MAX_VALIDATORS};
use nexus_proto::{value, Address};
use serde_json::{json, Map, Value};

/// Least distance between the block with a change and the height it applies from: as far as
/// consensus looks ahead of the final block (`nexus_lft::FUTURE_HEIGHTS`), so that a node knows
/// the set of every height it votes on or catches up through from its own final state.
pub const CHANGE_MARGIN: u64 = nexus_lft::FUTURE_HEIGHTS;

const EVENT: &str = "ValidatorsChanged(int,bytes)";

/// Largest `stepLimit` goloop allows for a transaction (`getMaxStepLimit("invoke")`).
pub const MAX_STEP_LIMIT_INVOKE: u128 = 2_500_000_000;

/// This chain's revision (`getRevision`): the rules of this release.
pub const REVISION: u64 = 1;

/// The chain SCORE.
pub struct ChainScore {
    /// Who may change validators (none: validators are fixed at genesis).
    pub admin: Option<Address>,
    /// Price of a step.
    pub step_price: u128,
    /// Step costs.
    pub costs: crate::execution::steps::StepCosts,
}

impl ChainScore {
    fn fee_query(
        &self,
        method: &str,
        params: &Map<String, Value>,
    ) -> Option<Result<Value, ScoreError>> {
        let int = |v: u128| Ok(Value::String(value::format_int(v)));
        Some(match method {
            "getStepPrice" => expect_params(params, &[]).and_then(|()| int(self.step_price)),
            "getRevision" => expect_params(params, &[]).and_then(|()| int(u128::from(REVISION))),
            "getMaxStepLimit" => {
                expect_params(params, &["contextType"]).and_then(|()| {
                    match params.get("contextType").and_then(Value::as_str) {
                        Some("invoke") => int(MAX_STEP_LIMIT_INVOKE),
                        Some("query") => int(self.costs.query_limit),
                        _ => Err(ScoreError::invalid_param(
                            "contextType: expected \"invoke\" or \"query\"",
                        )),
                    }
                })
            }
            "getStepCosts" => expect_params(params, &[]).map(|()| {
                let c = &self.costs;
                let f = |v: u128| Value::String(value::format_int(v));
                json!({
                    "default": f(c.default),
                    "contractCall": f(c.contract_call),
                    "input": f(c.input),
                    "set": f(c.set),
                    "replace": f(c.set),
                    "get": f(0),
                    "delete": f(0),
                    "eventLog": f(c.event_log),
                })
            }),
            _ => return None,
        })
    }
}

fn set_key(height: u64) -> Vec<u8> {
    let mut k = b"set/".to_vec();
    k.extend_from_slice(&height.to_be_bytes());
    k
}

fn decode_heights(b: &[u8]) -> Vec<u64> {
    b.chunks_exact(8)
        .map(|c| u64::from_be_bytes(c.try_into().unwrap_or([0; 8])))
        .collect()
}

/// The validator schedule in `view`: genesis validators from 0, then each stored change.
pub fn schedule(view: &dyn StateView, genesis: &[Address]) -> Vec<(u64, Vec<Address>)> {
    let mut out = vec![(0, genesis.to_vec())];
    let key = |k: &[u8]| crate::ledger::state::score_key(&Address::SYSTEM, k);
    if let Some(hs) = view.get(&key(b"changes")) {
        for h in decode_heights(&hs) {
            if let Some(set) = view
                .get(&key(&set_key(h)))
                .and_then(|b| decode_validators(&b).ok())
            {
                out.push((h, set));
            }
        }
    }
    out
}

/// The set that votes on blocks at `height` under `schedule`.
pub fn set_at(schedule: &[(u64, Vec<Address>)], height: u64) -> &[Address] {
    schedule
        .iter()
        .rev()
        .find(|(h, _)| *h <= height)
        .map(|(_, s)| s.as_slice())
        .unwrap_or(&[])
}

fn parse_set(params: &Map<String, Value>) -> Result<Vec<Address>, ScoreError> {
    let list = match params.get("_validators") {
        Some(Value::Array(a)) => a,
        _ => {
            return Err(ScoreError::invalid_param(
                "_validators: expected a list of hx addresses",
            ))
        }
    };
    if list.is_empty() || list.len() > MAX_VALIDATORS {
        return Err(ScoreError::invalid_param(format!(
            "_validators: expected 1..={MAX_VALIDATORS} addresses, got {}",
            list.len()
        )));
    }
    let mut set = Vec::with_capacity(list.len());
    for v in list {
        let s = v
            .as_str()
            .ok_or_else(|| ScoreError::invalid_param("_validators: expected strings"))?;
        let a = Address::parse("_validators", s)
            .map_err(|e| ScoreError::invalid_param(e.to_string()))?;
        if a.is_contract() || set.contains(&a) {
            return Err(ScoreError::invalid_param(format!(
                "_validators: {a} is a SCORE or listed twice"
            )));
        }
        set.push(a);
    }
    Ok(set)
}

/// The Ethereum addresses of the keys in `_publicKeys`, checked against the set's addresses.
fn parse_keys(
    params: &Map<String, Value>,
    set: &[Address],
) -> Result<Option<Vec<[u8; 20]>>, ScoreError> {
    let list = match params.get("_publicKeys") {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Array(a)) => a,
        Some(_) => {
            return Err(ScoreError::invalid_param(
                "_publicKeys: expected a list of 0x public keys",
            ))
        }
    };
    if list.len() != set.len() {
        return Err(ScoreError::invalid_param(format!(
            "_publicKeys: expected {} keys, one per validator, got {}",
            set.len(),
            list.len()
        )));
    }
    let mut out = Vec::with_capacity(list.len());
    for (v, a) in list.iter().zip(set) {
        let raw = value::parse_bytes("_publicKeys", v.as_str().unwrap_or(""), 65)
            .map_err(|e| ScoreError::invalid_param(e.to_string()))?;
        let key = secp256k1::PublicKey::from_slice(&raw).map_err(|e| {
            ScoreError::invalid_param(format!("_publicKeys: not a secp256k1 public key: {e}"))
        })?;
        if Address::from_public_key(&key) != *a {
            return Err(ScoreError::invalid_param(format!(
                "_publicKeys: the key for {a} hashes to {}",
                Address::from_public_key(&key)
            )));
        }
        out.push(nexus_btp::decision::eth_address_of(
            &key.serialize_uncompressed(),
        ));
    }
    Ok(Some(out))
}

/// Storage key of the Ethereum addresses of the set that applies from `height`.
pub fn eth_set_key(height: u64) -> Vec<u8> {
    [b"ethset/".as_slice(), &height.to_be_bytes()].concat()
}

impl NativeScore for ChainScore {
    fn api(&self) -> Value {
        json!([
            {"type": "function", "name": "setValidators", "inputs": [
                {"name": "_validators", "type": "[]Address"}, {"name": "_height", "type": "int"},
                {"name": "_publicKeys", "type": "[]bytes", "default": null}], "outputs": []},
            {"type": "function", "name": "getValidators", "inputs": [{"name": "_height", "type": "int", "default": null}],
             "outputs": [{"type": "[]Address"}], "readonly": "0x1"},
            {"type": "function", "name": "getStepPrice", "inputs": [], "outputs": [{"type": "int"}], "readonly": "0x1"},
            {"type": "function", "name": "getStepCosts", "inputs": [], "outputs": [{"type": "dict"}], "readonly": "0x1"},
            {"type": "function", "name": "getMaxStepLimit", "inputs": [{"name": "contextType", "type": "str"}],
             "outputs": [{"type": "int"}], "readonly": "0x1"},
            {"type": "function", "name": "getRevision", "inputs": [], "outputs": [{"type": "int"}], "readonly": "0x1"},
            {"type": "eventlog", "name": "ValidatorsChanged", "inputs": [
                {"name": "_height", "type": "int", "indexed": "0x1"}, {"name": "_validators", "type": "bytes"}]}
        ])
    }

    fn install(&self, ctx: &mut CallContext<'_, '_>) -> Result<(), ScoreError> {
        match self.admin {
            Some(a) => ctx.set(b"admin", a.to_bytes().to_vec()),
            None => Ok(()),
        }
    }

    fn call(
        &self,
        ctx: &mut CallContext<'_, '_>,
        method: &str,
        params: &Map<String, Value>,
    ) -> Result<Value, ScoreError> {
        if ctx.value > 0 {
            return Err(ScoreError::new(
                failure::METHOD_NOT_PAYABLE,
                format!("{method} does not accept ICX"),
            ));
        }
        if let Some(r) = self.fee_query(method, params) {
            return r;
        }
        match method {
            "setValidators" => {
                expect_params(params, &["_validators", "_height", "_publicKeys"])?;
                if ctx.readonly {
                    return Err(ScoreError::new(
                        failure::ACCESS_DENIED,
                        "setValidators needs a transaction",
                    ));
                }
                let admin = ctx.get(b"admin").and_then(|b| Address::from_bytes(&b).ok());
                if admin != Some(ctx.from) {
                    return Err(ScoreError::new(
                        failure::ACCESS_DENIED,
                        format!("{} may not change validators", ctx.from),
                    ));
                }
                let set = parse_set(params)?;
                let eth = parse_keys(params, &set)?;
                let height = u64::try_from(param_int(params, "_height")?)
                    .map_err(|_| ScoreError::invalid_param("_height too large"))?;
                let least = ctx.height.saturating_add(CHANGE_MARGIN);
                if height < least {
                    return Err(ScoreError::revert(format!(
                        "_height {height:#x} must be at least {least:#x} (this block + {CHANGE_MARGIN})"
                    )));
                }
                let mut heights = ctx
                    .get(b"changes")
                    .map(|b| decode_heights(&b))
                    .unwrap_or_default();
                if heights.last().is_some_and(|last| *last >= height) {
                    return Err(ScoreError::revert(
                        "a change at or after that height is already scheduled",
                    ));
                }
                heights.push(height);
                let encoded = encode_validators(&set);
                ctx.set(&set_key(height), encoded.clone())?;
                if let Some(eth) = eth {
                    ctx.set(&eth_set_key(height), eth.concat())?;
                }
                ctx.set(
                    b"changes",
                    heights.iter().flat_map(|h| h.to_be_bytes()).collect(),
                )?;
                ctx.emit(
                    vec![EVENT.into(), value::format_int(height)],
                    vec![value::format_bytes(&encoded)],
                )?;
                Ok(Value::Null)
            }
            "getValidators" => {
                expect_params(params, &["_height"])?;
                let h = match params.get("_height") {
                    None | Some(Value::Null) => ctx.height.saturating_add(1),
                    Some(_) => u64::try_from(param_int(params, "_height")?)
                        .map_err(|_| ScoreError::invalid_param("_height too large"))?,
                };
                let mut heights = ctx
                    .get(b"changes")
                    .map(|b| decode_heights(&b))
                    .unwrap_or_default();
                heights.retain(|c| *c <= h);
                match heights.last() {
                    Some(c) => {
                        let set = ctx
                            .get(&set_key(*c))
                            .and_then(|b| decode_validators(&b).ok())
                            .unwrap_or_default();
                        Ok(Value::Array(
                            set.iter().map(|a| Value::String(a.to_string())).collect(),
                        ))
                    }
                    None => Ok(Value::Null),
                }
            }
            other => Err(ScoreError::new(
                failure::METHOD_NOT_FOUND,
                format!("the chain SCORE has no method {other:?}"),
            )),
        }
    }
}
