//! Step accounting: what each operation costs and the meter that stops a transaction at its
//! `stepLimit`. Costs follow goloop's defaults.

use crate::failure;
use crate::ScoreError;
use nexus_proto::{SignedTransaction, TxData};

/// Step costs (goloop `stepCosts` defaults).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StepCosts {
    /// Every transaction.
    pub default: u128,
    /// A call into a SCORE.
    pub contract_call: u128,
    /// Per byte of `data`.
    pub input: u128,
    /// Per byte written to SCORE storage.
    pub set: u128,
    /// Per byte of an emitted event.
    pub event_log: u128,
    /// Steps a read-only `icx_call` may use.
    pub query_limit: u128,
}

impl Default for StepCosts {
    fn default() -> Self {
        StepCosts {
            default: 100_000,
            contract_call: 25_000,
            input: 200,
            set: 320,
            event_log: 100,
            query_limit: 50_000_000,
        }
    }
}

impl StepCosts {
    /// Steps charged before execution: the least `stepLimit` that can succeed.
    pub fn intrinsic(&self, tx: &SignedTransaction) -> u128 {
        let input = match tx.raw.get("data") {
            Some(d) => serde_json::to_vec(d).map(|v| v.len()).unwrap_or(0) as u128,
            None => 0,
        };
        let call = match tx.tx.data {
            TxData::Call { .. } => self.contract_call,
            _ => 0,
        };
        self.default + call + self.input * input
    }
}

/// Counts steps against a limit.
#[derive(Debug, Clone)]
pub struct StepMeter {
    limit: u128,
    used: u128,
}

impl StepMeter {
    /// A meter with `used` steps already spent.
    pub fn new(limit: u128, used: u128) -> Self {
        StepMeter { limit, used }
    }

    /// Spends `steps`, failing with OutOfStep past the limit (the meter then reads the limit).
    pub fn charge(&mut self, steps: u128) -> Result<(), ScoreError> {
        let next = self.used.saturating_add(steps);
        if next > self.limit {
            self.used = self.limit;
            return Err(ScoreError::new(
                failure::OUT_OF_STEP,
                format!("out of step: limit {:#x}", self.limit),
            ));
        }
        self.used = next;
        Ok(())
    }

    /// Steps spent so far.
    pub fn used(&self) -> u128 {
        self.used
    }
}
