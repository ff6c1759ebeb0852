//! SCORE-to-SCORE calls: what a callee's success keeps and its failure undoes.

use super::*;
use crate::state::{balance, set_balance, StateView};
use serde_json::json;

struct Empty;
impl StateView for Empty {
    fn get(&self, _key: &[u8]) -> Option<Vec<u8>> {
        None
    }
}

/// A SCORE that writes `k`, emits an event, then fails when asked, or calls another SCORE.
struct Probe;

impl NativeScore for Probe {
    fn api(&self) -> Value {
        json!([])
    }
    fn install(&self, _ctx: &mut CallContext<'_, '_>) -> Result<(), ScoreError> {
        Ok(())
    }
    fn call(
        &self,
        ctx: &mut CallContext<'_, '_>,
        method: &str,
        params: &Map<String, Value>,
    ) -> Result<Value, ScoreError> {
        match method {
            "write" => {
                ctx.set(b"k", ctx.from.to_bytes().to_vec())?;
                ctx.emit(vec!["Wrote()".into()], vec![])?;
                Ok(json!(ctx.value.to_string()))
            }
            "writeThenFail" => {
                ctx.set(b"k", b"x".to_vec())?;
                ctx.emit(vec!["Wrote()".into()], vec![])?;
                Err(ScoreError::revert("asked to fail"))
            }
            "recurse" => ctx.call(&ctx.score.clone(), "recurse", params, 0),
            _ => Err(ScoreError::new(failure::METHOD_NOT_FOUND, method)),
        }
    }
}

const CALLER: Address = Address::contract([1; 20]);
const CALLEE: Address = Address::contract([2; 20]);

fn registry() -> ScoreRegistry {
    let mut r = ScoreRegistry::default();
    r.insert(CALLEE, Arc::new(Probe));
    r.insert(CALLER, Arc::new(Probe));
    r
}

/// Runs `f` in a transaction context of `CALLER` holding 100 loop; returns its result, the
/// writes and the events.
fn run<T>(
    readonly: bool,
    f: impl FnOnce(&mut CallContext<'_, '_>) -> T,
) -> (T, crate::state::Writes, Vec<EventLog>) {
    let base = Empty;
    let mut ov = Overlay::new(&base);
    set_balance(&mut ov, &CALLER, 100);
    let scores = registry();
    let mut meter = StepMeter::new(10_000_000, 0);
    let tx = (!readonly).then_some(Hash32([9; 32]));
    let (out, events) = {
        let mut ctx = CallContext::new(
            CALLER,
            Address::eoa([5; 20]),
            0,
            1,
            1,
            tx,
            &mut ov,
            &mut meter,
            StepCosts::default(),
        )
        .with_scores(&scores);
        let out = f(&mut ctx);
        (out, ctx.take_events())
    };
    (out, ov.into_writes(), events)
}

fn get(w: &crate::state::Writes, score: &Address, key: &[u8]) -> Option<Vec<u8>> {
    w.get(&score_key(score, key)).cloned().flatten()
}

fn bal(w: &crate::state::Writes, a: &Address) -> u128 {
    let base = Empty;
    let mut ov = Overlay::new(&base);
    ov.merge(w.clone());
    balance(&ov, a)
}

#[test]
fn a_successful_call_keeps_writes_events_and_value_and_sees_the_caller() {
    let (out, w, events) = run(false, |c| c.call(&CALLEE, "write", &Map::new(), 40));
    assert_eq!(out.unwrap(), json!("40"));
    assert_eq!(
        get(&w, &CALLEE, b"k"),
        Some(CALLER.to_bytes().to_vec()),
        "the callee sees the calling SCORE as its caller"
    );
    assert_eq!((bal(&w, &CALLER), bal(&w, &CALLEE)), (60, 40));
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].score_address, CALLEE);
}

#[test]
fn a_failed_call_undoes_writes_events_and_value() {
    let (out, w, events) = run(false, |c| {
        let r = c.call(&CALLEE, "writeThenFail", &Map::new(), 40);
        // The caller goes on after handling the failure.
        c.set(b"after", vec![1]).unwrap();
        r
    });
    assert_eq!(out.unwrap_err().message, "asked to fail");
    assert_eq!(get(&w, &CALLEE, b"k"), None);
    assert_eq!(get(&w, &CALLER, b"after"), Some(vec![1]));
    assert_eq!((bal(&w, &CALLER), bal(&w, &CALLEE)), (100, 0));
    assert!(events.is_empty());
}

#[test]
fn a_call_cannot_send_more_than_the_caller_holds() {
    let (out, w, _) = run(false, |c| c.call(&CALLEE, "write", &Map::new(), 101));
    assert_eq!(out.unwrap_err().code, failure::OUT_OF_BALANCE);
    assert_eq!(get(&w, &CALLEE, b"k"), None);
}

#[test]
fn calls_nest_at_most_the_maximum_depth() {
    let (out, _, _) = run(false, |c| c.call(&CALLEE, "recurse", &Map::new(), 0));
    let e = out.unwrap_err();
    assert!(e.message.contains("deeper than 8"), "{e}");
}

#[test]
fn a_read_only_call_sends_no_value_and_writes_nothing() {
    let (out, _, _) = run(true, |c| c.call(&CALLEE, "write", &Map::new(), 1));
    assert_eq!(out.unwrap_err().code, failure::ACCESS_DENIED);
    let (out, _, _) = run(true, |c| c.call(&CALLEE, "write", &Map::new(), 0));
    assert_eq!(out.unwrap_err().code, failure::ACCESS_DENIED);
}

#[test]
fn an_unknown_score_is_refused() {
    let (out, _, _) = run(false, |c| {
        c.call(&Address::contract([3; 20]), "write", &Map::new(), 0)
    });
    assert_eq!(out.unwrap_err().code, failure::CONTRACT_NOT_FOUND);
}
