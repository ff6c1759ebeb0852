//! Block execution: transactions in order against a state view, producing receipts and writes.
//!
//! Rules for one transaction:
//! 1. Intrinsic steps (`default` + `contractCall` for calls + `input` per data byte) are charged
//!    first; a `stepLimit` below them fails with OutOfStep (admission already refuses these).
//! 2. The sender must hold `value + stepLimit * stepPrice` when the transaction runs; otherwise
//!    it is left out of the block (no receipt, no state change): a fee is always paid in full,
//!    never at a reduced or zero rate. A leader leaves such transactions out; a proposal that
//!    includes one is invalid (see [`Executed::skipped`]).
//! 3. The transfer and the SCORE call run in their own layer: on failure every change but the fee
//!    is discarded.
//! 4. The fee `stepUsed * stepPrice` moves from the sender to the treasury: ICX is never minted
//!    or burnt, so balances always sum to the genesis supply.

pub mod score;
pub mod steps;

use crate::error::failure;
use crate::execution::score::{CallContext, ScoreError, ScoreRegistry};
use crate::execution::steps::{StepCosts, StepMeter};
use crate::ledger::state::{balance, set_balance, Overlay, StateView, Writes};
use nexus_proto::{receipt::Receipt, Address, SignedTransaction, TxData};

/// What execution needs to know about the block and the channel.
#[derive(Debug, Clone)]
pub struct BlockEnv {
    /// Height of the block being executed.
    pub height: u64,
    /// Its timestamp (us).
    pub timestamp: u64,
    /// Price of a step in loop.
    pub step_price: u128,
    /// Fee receiver.
    pub treasury: Address,
    /// Step costs.
    pub costs: StepCosts,
}

/// The outcome of executing a list of transactions.
#[derive(Debug)]
pub struct Executed {
    /// Receipts of the transactions that ran, in order.
    pub receipts: Vec<Receipt>,
    /// The state changes.
    pub writes: Writes,
    /// Positions (in the input) of transactions left out because their sender could not pay
    /// `value + stepLimit * stepPrice` at that point.
    pub skipped: Vec<usize>,
}

/// Executes `txs` in order on top of `base`.
pub fn execute_block<T: std::borrow::Borrow<SignedTransaction>>(
    base: &dyn StateView,
    scores: &ScoreRegistry,
    env: &BlockEnv,
    txs: &[T],
) -> Executed {
    let mut block = Overlay::new(base);
    let mut cumulative = 0u128;
    let mut receipts = Vec::with_capacity(txs.len());
    let mut skipped = Vec::new();
    for (i, tx) in txs.iter().enumerate() {
        match execute_tx(&mut block, scores, env, tx.borrow()) {
            Some(mut r) => {
                cumulative = cumulative.saturating_add(r.step_used);
                r.cumulative_step_used = cumulative;
                receipts.push(r);
            }
            None => skipped.push(i),
        }
    }
    Executed {
        receipts,
        writes: block.into_writes(),
        skipped,
    }
}

fn execute_tx(
    block: &mut Overlay<'_>,
    scores: &ScoreRegistry,
    env: &BlockEnv,
    st: &SignedTransaction,
) -> Option<Receipt> {
    let tx = &st.tx;
    let intrinsic = env.costs.intrinsic(st);
    let max_fee = tx.step_limit.saturating_mul(env.step_price);
    let mut meter = StepMeter::new(tx.step_limit, 0);
    let from_balance = balance(block, &tx.from);
    if from_balance < tx.value.saturating_add(max_fee) {
        return None;
    }

    let outcome: Result<Vec<_>, ScoreError> = if let Err(e) = meter.charge(intrinsic) {
        Err(e)
    } else {
        let run = {
            let mut layer = Overlay::new(&*block);
            run_tx(&mut layer, scores, env, st, &mut meter)
                .map(|events| (events, layer.into_writes()))
        };
        run.map(|(events, writes)| {
            block.merge(writes);
            events
        })
    };

    let step_used = meter.used();
    let payer_balance = balance(block, &tx.from);
    // Never more than the balance: the sender held value + max fee before the run, and a
    // successful run moved at most `value` away (SCOREs cannot spend the sender's ICX).
    let fee = step_used.saturating_mul(env.step_price).min(payer_balance);
    set_balance(block, &tx.from, payer_balance - fee);
    let treasury_balance = balance(block, &env.treasury);
    set_balance(block, &env.treasury, treasury_balance.saturating_add(fee));

    let (status, failure_code, failure_message, event_logs) = match outcome {
        Ok(events) => (1, 0, String::new(), events),
        Err(e) => (0, e.code, e.message, Vec::new()),
    };
    Some(Receipt {
        status,
        to: tx.to,
        cumulative_step_used: 0,
        step_used,
        step_price: env.step_price,
        failure_code,
        failure_message,
        event_logs,
    })
}

fn run_tx(
    layer: &mut Overlay<'_>,
    scores: &ScoreRegistry,
    env: &BlockEnv,
    st: &SignedTransaction,
    meter: &mut StepMeter,
) -> Result<Vec<nexus_proto::receipt::EventLog>, ScoreError> {
    let tx = &st.tx;
    if tx.value > 0 {
        let from_bal = balance(layer, &tx.from);
        set_balance(layer, &tx.from, from_bal.saturating_sub(tx.value));
        let to_bal = balance(layer, &tx.to);
        set_balance(layer, &tx.to, to_bal.saturating_add(tx.value));
    }
    if !tx.to.is_contract() {
        return match tx.data {
            TxData::None | TxData::Message(_) => Ok(Vec::new()),
            _ => Err(ScoreError::new(
                failure::CONTRACT_NOT_FOUND,
                format!("{} is an account, not a SCORE", tx.to),
            )),
        };
    }
    let score = scores
        .get(&tx.to)
        .ok_or_else(|| {
            ScoreError::new(
                failure::CONTRACT_NOT_FOUND,
                format!("no SCORE at {}", tx.to),
            )
        })?
        .clone();
    let (method, params) = match &tx.data {
        TxData::Call { method, params } => (method.as_str(), params.clone()),
        TxData::None | TxData::Message(_) => ("fallback", Default::default()),
        TxData::Deploy { .. } | TxData::Deposit { .. } => {
            return Err(ScoreError::new(
                failure::UNKNOWN,
                "deploy and deposit are not supported",
            ))
        }
    };
    let mut ctx = CallContext::new(
        tx.to,
        tx.from,
        tx.value,
        env.height,
        env.timestamp,
        Some(st.hash),
        layer,
        meter,
        env.costs,
    )
    .with_scores(scores);
    score.call(&mut ctx, method, &params)?;
    Ok(ctx.take_events())
}
