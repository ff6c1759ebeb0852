//! What a native SCORE sees and implements: [`NativeScore`], its [`CallContext`] (storage of
//! its own, a step meter, event logs) and [`ScoreError`] with ICON failure codes.

use crate::failure;
use crate::state::{score_key, Overlay, StateView};
use crate::steps::{StepCosts, StepMeter};
use nexus_proto::{receipt::EventLog, value, Address, Hash32};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::Arc;

/// A SCORE failure: an ICON failure code and a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} (code {code})")]
pub struct ScoreError {
    /// Failure code (see [`crate::failure`]).
    pub code: u32,
    /// What went wrong.
    pub message: String,
}

impl ScoreError {
    /// A failure with a code.
    pub fn new(code: u32, message: impl Into<String>) -> Self {
        ScoreError {
            code,
            message: message.into(),
        }
    }

    /// A user revert (`Context.revert`): code 32.
    pub fn revert(message: impl Into<String>) -> Self {
        Self::new(failure::REVERTED, message)
    }

    /// A bad parameter: code 6.
    pub fn invalid_param(message: impl Into<String>) -> Self {
        Self::new(failure::INVALID_PARAMETER, message)
    }
}

/// What a SCORE method sees while it runs.
pub struct CallContext<'s, 'o> {
    /// The SCORE being called.
    pub score: Address,
    /// The caller.
    pub from: Address,
    /// ICX sent with the call.
    pub value: u128,
    /// Block height.
    pub height: u64,
    /// Block timestamp (us).
    pub timestamp: u64,
    /// The transaction, or `None` for a query.
    pub tx_hash: Option<Hash32>,
    /// True for `icx_call`: writes fail with AccessDenied.
    pub readonly: bool,
    state: &'s mut Overlay<'o>,
    meter: &'s mut StepMeter,
    costs: StepCosts,
    events: Vec<EventLog>,
    scores: Option<&'s ScoreRegistry>,
    depth: usize,
}

/// How deep SCORE-to-SCORE calls may nest (a transaction's own call is depth 0).
pub const MAX_CALL_DEPTH: usize = 8;

impl<'s, 'o> CallContext<'s, 'o> {
    /// A context over `state`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        score: Address,
        from: Address,
        value: u128,
        height: u64,
        timestamp: u64,
        tx_hash: Option<Hash32>,
        state: &'s mut Overlay<'o>,
        meter: &'s mut StepMeter,
        costs: StepCosts,
    ) -> Self {
        CallContext {
            score,
            from,
            value,
            height,
            timestamp,
            tx_hash,
            readonly: tx_hash.is_none(),
            state,
            meter,
            costs,
            events: Vec::new(),
            scores: None,
            depth: 0,
        }
    }

    /// Lets this call reach the other SCOREs of the channel through [`CallContext::call`].
    pub fn with_scores(mut self, scores: &'s ScoreRegistry) -> Self {
        self.scores = Some(scores);
        self
    }

    /// Calls `method` of the SCORE at `to` as this SCORE, sending it `value` of this SCORE's
    /// ICX. The callee runs in a layer of its own over this call's state: its writes, its
    /// events and the ICX are kept only when it succeeds, so a caller that handles the error
    /// goes on as if the call never happened. Steps come from the same meter; calls nest at
    /// most [`MAX_CALL_DEPTH`] deep; a read-only call can only make read-only calls.
    pub fn call(
        &mut self,
        to: &Address,
        method: &str,
        params: &Map<String, Value>,
        value: u128,
    ) -> Result<Value, ScoreError> {
        let registry = self.scores.ok_or_else(|| {
            ScoreError::new(
                failure::UNKNOWN,
                "SCORE-to-SCORE calls are not available here",
            )
        })?;
        if self.depth >= MAX_CALL_DEPTH {
            return Err(ScoreError::new(
                failure::UNKNOWN,
                format!("calls nest deeper than {MAX_CALL_DEPTH}"),
            ));
        }
        let score = registry.get(to).cloned().ok_or_else(|| {
            ScoreError::new(failure::CONTRACT_NOT_FOUND, format!("no SCORE at {to}"))
        })?;
        self.meter.charge(self.costs.contract_call)?;
        let mut layer = Overlay::new(&*self.state);
        let (result, events) = {
            let mut child = CallContext {
                score: *to,
                from: self.score,
                value,
                height: self.height,
                timestamp: self.timestamp,
                tx_hash: self.tx_hash,
                readonly: self.readonly,
                state: &mut layer,
                meter: &mut *self.meter,
                costs: self.costs,
                events: Vec::new(),
                scores: self.scores,
                depth: self.depth + 1,
            };
            let result = child
                .move_value(&self.score, value)
                .and_then(|()| score.call(&mut child, method, params));
            (result, child.events)
        };
        let out = result?;
        let writes = layer.into_writes();
        self.state.merge(writes);
        self.events.extend(events);
        Ok(out)
    }

    /// Moves `value` ICX from `from` to this SCORE (the value of a SCORE-to-SCORE call).
    fn move_value(&mut self, from: &Address, value: u128) -> Result<(), ScoreError> {
        if value == 0 {
            return Ok(());
        }
        if self.readonly {
            return Err(ScoreError::new(
                failure::ACCESS_DENIED,
                "ICX sent in a read-only call",
            ));
        }
        let have = crate::state::balance(&*self.state, from);
        if have < value {
            return Err(ScoreError::new(
                failure::OUT_OF_BALANCE,
                format!("{from} holds {have} loop, cannot send {value}"),
            ));
        }
        crate::state::set_balance(self.state, from, have - value);
        let to_bal = crate::state::balance(&*self.state, &self.score);
        crate::state::set_balance(self.state, &self.score, to_bal.saturating_add(value));
        Ok(())
    }

    /// Reads a storage slot of this SCORE.
    pub fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.state.get(&score_key(&self.score, key))
    }

    /// Writes a storage slot of this SCORE.
    pub fn set(&mut self, key: &[u8], value: Vec<u8>) -> Result<(), ScoreError> {
        if self.readonly {
            return Err(ScoreError::new(
                failure::ACCESS_DENIED,
                "write in a read-only call",
            ));
        }
        self.meter
            .charge(self.costs.set * (key.len() + value.len()) as u128)?;
        self.state.set(score_key(&self.score, key), value);
        Ok(())
    }

    /// Deletes a storage slot of this SCORE.
    pub fn delete(&mut self, key: &[u8]) -> Result<(), ScoreError> {
        if self.readonly {
            return Err(ScoreError::new(
                failure::ACCESS_DENIED,
                "write in a read-only call",
            ));
        }
        self.meter.charge(self.costs.set * key.len() as u128)?;
        self.state.delete(score_key(&self.score, key));
        Ok(())
    }

    /// This SCORE's ICX balance.
    pub fn own_balance(&self) -> u128 {
        crate::state::balance(&*self.state, &self.score)
    }

    /// Pays `amount` ICX of this SCORE's own balance to `to` (the only ICX a SCORE can move).
    pub fn transfer(&mut self, to: &Address, amount: u128) -> Result<(), ScoreError> {
        if self.readonly {
            return Err(ScoreError::new(
                failure::ACCESS_DENIED,
                "transfer in a read-only call",
            ));
        }
        let have = self.own_balance();
        if have < amount {
            return Err(ScoreError::new(
                failure::OUT_OF_BALANCE,
                format!("{} holds {have} loop, cannot pay {amount}", self.score),
            ));
        }
        self.meter.charge(self.costs.set * 64)?;
        crate::state::set_balance(self.state, &self.score, have - amount);
        let to_bal = crate::state::balance(&*self.state, to);
        crate::state::set_balance(self.state, to, to_bal.saturating_add(amount));
        Ok(())
    }

    /// Charges steps for work that is not a storage write (signature checks, hashing).
    pub fn charge(&mut self, steps: u128) -> Result<(), ScoreError> {
        self.meter.charge(steps)
    }

    /// Emits an event log: `indexed[0]` is the signature.
    pub fn emit(&mut self, indexed: Vec<String>, data: Vec<String>) -> Result<(), ScoreError> {
        let size: usize = indexed.iter().chain(data.iter()).map(String::len).sum();
        self.meter.charge(self.costs.event_log * size as u128)?;
        self.events.push(EventLog {
            score_address: self.score,
            indexed,
            data,
        });
        Ok(())
    }

    /// The events emitted so far.
    pub fn take_events(&mut self) -> Vec<EventLog> {
        std::mem::take(&mut self.events)
    }
}

/// A native SCORE.
pub trait NativeScore: Send + Sync {
    /// The API, in `icx_getScoreApi` shape.
    fn api(&self) -> Value;
    /// Writes the initial storage at genesis.
    fn install(&self, ctx: &mut CallContext<'_, '_>) -> Result<(), ScoreError>;
    /// Runs `method`. Read-only methods may be called by `icx_call`; others need a transaction.
    fn call(
        &self,
        ctx: &mut CallContext<'_, '_>,
        method: &str,
        params: &Map<String, Value>,
    ) -> Result<Value, ScoreError>;
}

/// The SCOREs of a channel by address.
#[derive(Clone, Default)]
pub struct ScoreRegistry {
    scores: HashMap<Address, Arc<dyn NativeScore>>,
}

impl ScoreRegistry {
    /// Registers a SCORE.
    pub fn insert(&mut self, addr: Address, score: Arc<dyn NativeScore>) {
        self.scores.insert(addr, score);
    }

    /// The SCORE at `addr`.
    pub fn get(&self, addr: &Address) -> Option<&Arc<dyn NativeScore>> {
        self.scores.get(addr)
    }
}

/// Reads a required `Address` parameter.
pub fn param_address(params: &Map<String, Value>, name: &str) -> Result<Address, ScoreError> {
    let s = param_str(params, name)?;
    Address::parse(name, s).map_err(|e| ScoreError::invalid_param(e.to_string()))
}

/// Reads a required `int` parameter.
pub fn param_int(params: &Map<String, Value>, name: &str) -> Result<u128, ScoreError> {
    value::parse_u128(name, param_str(params, name)?)
        .map_err(|e| ScoreError::invalid_param(e.to_string()))
}

/// Reads a required list of `bytes` (at most `max_items`, each at most `max_bytes`).
pub fn param_bytes_list(
    params: &Map<String, Value>,
    name: &str,
    max_items: usize,
    max_bytes: usize,
) -> Result<Vec<Vec<u8>>, ScoreError> {
    let items = match params.get(name) {
        Some(Value::Array(a)) => a,
        None | Some(Value::Null) => {
            return Err(ScoreError::invalid_param(format!(
                "missing parameter {name}"
            )))
        }
        Some(other) => {
            return Err(ScoreError::invalid_param(format!(
                "{name}: expected a list of 0x-prefixed hex bytes, got {other}"
            )))
        }
    };
    if items.len() > max_items {
        return Err(ScoreError::invalid_param(format!(
            "{name}: at most {max_items} items, got {}",
            items.len()
        )));
    }
    items
        .iter()
        .map(|v| match v {
            Value::String(s) => value::parse_bytes(name, s, max_bytes)
                .map_err(|e| ScoreError::invalid_param(e.to_string())),
            other => Err(ScoreError::invalid_param(format!(
                "{name}: expected 0x-prefixed hex bytes, got {other}"
            ))),
        })
        .collect()
}

/// Reads a required `str` parameter of at most `max_bytes`.
pub fn param_string(
    params: &Map<String, Value>,
    name: &str,
    max_bytes: usize,
) -> Result<String, ScoreError> {
    let s = param_str(params, name)?;
    if s.len() > max_bytes {
        return Err(ScoreError::invalid_param(format!(
            "{name}: at most {max_bytes} bytes, got {}",
            s.len()
        )));
    }
    Ok(s.to_string())
}

/// Reads an optional `bytes` parameter.
pub fn param_bytes(params: &Map<String, Value>, name: &str) -> Result<Option<Vec<u8>>, ScoreError> {
    match params.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => value::parse_bytes(name, s, 64 * 1024)
            .map(Some)
            .map_err(|e| ScoreError::invalid_param(e.to_string())),
        Some(other) => Err(ScoreError::invalid_param(format!(
            "{name}: expected 0x-prefixed hex bytes, got {other}"
        ))),
    }
}

fn param_str<'a>(params: &'a Map<String, Value>, name: &str) -> Result<&'a str, ScoreError> {
    match params.get(name) {
        Some(Value::String(s)) => Ok(s),
        None | Some(Value::Null) => Err(ScoreError::invalid_param(format!(
            "missing parameter {name}"
        ))),
        Some(other) => Err(ScoreError::invalid_param(format!(
            "{name}: expected a string, got {other}"
        ))),
    }
}

/// Rejects parameters a method does not declare.
pub fn expect_params(params: &Map<String, Value>, allowed: &[&str]) -> Result<(), ScoreError> {
    match params.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(ScoreError::invalid_param(format!(
            "unknown parameter {k}; expected {allowed:?}"
        ))),
        None => Ok(()),
    }
}

#[cfg(test)]
mod call_tests;
