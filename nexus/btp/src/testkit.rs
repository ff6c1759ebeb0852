//! What the unit tests of the BTP SCOREs (here and in `nexus-notary`) run on: an in-memory
//! state, calls that keep their writes only when they succeed (as a transaction), and a
//! simulated remote channel whose validators sign headers and whose receipts hold events.

use nexus_light_clients::{EventProof, HeaderUpdate};
use nexus_proto::block::{
    sign_vote, validators_hash, BlockHeader, VoteItem, VoteSet, HEADER_VERSION,
};
use nexus_proto::receipt::{EventLog, Receipt};
use nexus_proto::value::{format_bytes, format_int};
use nexus_proto::{merkle, Address, Hash32, KeyPair};
use nexus_score::state::{balance, set_balance, Overlay, StateView};
use nexus_score::steps::{StepCosts, StepMeter};
use nexus_score::{CallContext, NativeScore, ScoreError, ScoreRegistry};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::sync::Arc;

/// An in-memory state.
#[derive(Default)]
pub struct World {
    state: BTreeMap<Vec<u8>, Vec<u8>>,
    scores: ScoreRegistry,
}

impl StateView for World {
    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.state.get(key).cloned()
    }
}

impl World {
    /// An account's ICX.
    pub fn balance(&self, a: &Address) -> u128 {
        balance(self, a)
    }

    /// Installs a SCORE that others can call (`CallContext::call`).
    pub fn register(&mut self, at: Address, score: Arc<dyn NativeScore>) {
        self.scores.insert(at, score);
    }

    /// Gives an account ICX.
    pub fn fund(&mut self, a: &Address, v: u128) {
        let mut ov = Overlay::new(&*self);
        set_balance(&mut ov, a, v);
        let w = ov.into_writes();
        self.apply(w);
    }

    fn apply(&mut self, writes: nexus_score::state::Writes) {
        for (k, v) in writes {
            match v {
                Some(v) => self.state.insert(k, v),
                None => self.state.remove(&k),
            };
        }
    }

    /// Runs `method` as a transaction from `from` with `value`; writes are kept only on
    /// success. Returns the result and the events.
    pub fn call(
        &mut self,
        score: &dyn NativeScore,
        at: Address,
        from: Address,
        value: u128,
        method: &str,
        params: Value,
    ) -> Result<(Value, Vec<EventLog>), ScoreError> {
        self.run(score, at, from, value, method, params, false)
    }

    /// A read-only query.
    pub fn query(
        &mut self,
        score: &dyn NativeScore,
        at: Address,
        method: &str,
        params: Value,
    ) -> Value {
        self.run(score, at, Address::eoa([0; 20]), 0, method, params, true)
            .map(|(v, _)| v)
            .unwrap_or_else(|e| panic!("query {method}: {e}"))
    }

    #[allow(clippy::too_many_arguments)]
    fn run(
        &mut self,
        score: &dyn NativeScore,
        at: Address,
        from: Address,
        value: u128,
        method: &str,
        params: Value,
        readonly: bool,
    ) -> Result<(Value, Vec<EventLog>), ScoreError> {
        let Value::Object(p) = params else {
            panic!("params must be an object")
        };
        let p: Map<String, Value> = p;
        let (result, writes) = {
            let mut ov = Overlay::new(&*self);
            if value > 0 {
                let fb = balance(&ov, &from);
                assert!(fb >= value, "test sender lacks ICX");
                set_balance(&mut ov, &from, fb - value);
                let tb = balance(&ov, &at);
                set_balance(&mut ov, &at, tb + value);
            }
            let mut meter = StepMeter::new(u128::MAX / 2, 0);
            let tx = (!readonly).then_some(Hash32([7; 32]));
            let mut ctx = CallContext::new(
                at,
                from,
                value,
                1,
                1,
                tx,
                &mut ov,
                &mut meter,
                StepCosts::default(),
            )
            .with_scores(&self.scores);
            let r = score
                .call(&mut ctx, method, &p)
                .map(|v| (v, ctx.take_events()));
            (r, ov.into_writes())
        };
        if result.is_ok() {
            self.apply(writes);
        }
        result
    }
}

/// A channel whose validators the test holds: it makes headers with votes and event proofs.
pub struct Remote {
    /// Network id.
    pub nid: u64,
    /// Channel.
    pub channel: String,
    /// The validators' keys.
    pub keys: Vec<KeyPair>,
    /// Their addresses.
    pub set: Vec<Address>,
    /// The last header made.
    pub head: BlockHeader,
}

impl Remote {
    /// Four validators, a checkpoint at height 10.
    pub fn new(nid: u64, channel: &str) -> Self {
        let keys: Vec<KeyPair> = (0..4).map(|_| KeyPair::generate()).collect();
        let set: Vec<Address> = keys.iter().map(KeyPair::address).collect();
        let vh = validators_hash(&set);
        let head = BlockHeader {
            version: HEADER_VERSION,
            height: 10,
            round: 12,
            timestamp: 1,
            prev_hash: Hash32([3; 32]),
            transactions_root: Hash32::ZERO,
            receipts_root: Hash32::ZERO,
            state_root: Hash32::ZERO,
            validators_hash: vh,
            next_validators_hash: vh,
            prev_votes_hash: Hash32::ZERO,
            leader: set[0],
        };
        Remote {
            nid,
            channel: channel.into(),
            keys,
            set,
            head,
        }
    }

    /// `addVerifier` / `setSource` parameters for this channel (without the network name).
    pub fn setup_params(&self, emitter: Address) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("_nid".into(), Value::String(format_int(self.nid)));
        m.insert("_channel".into(), Value::String(self.channel.clone()));
        m.insert(
            "_checkpoint".into(),
            Value::String(format_bytes(&self.head.to_rlp())),
        );
        m.insert(
            "_validators".into(),
            Value::String(format_bytes(&nexus_proto::block::encode_validators(
                &self.set,
            ))),
        );
        m.insert("_emitter".into(), Value::String(emitter.to_string()));
        m
    }

    /// Votes of `signers` (indices into `keys`) for `h`, each claiming its own index.
    pub fn votes(&self, h: &BlockHeader, signers: &[usize]) -> VoteSet {
        VoteSet {
            round: h.round,
            items: signers
                .iter()
                .map(|i| VoteItem {
                    validator_index: *i as u32,
                    timestamp: 0,
                    signature: sign_vote(
                        &self.keys[*i],
                        self.nid,
                        &self.channel,
                        h.height,
                        h.round,
                        &h.hash(),
                    )
                    .0
                    .to_vec()
                    .into(),
                })
                .collect(),
        }
    }

    /// The next block, holding one receipt with `events`, signed by `signers`: its encoded
    /// header update and one encoded proof per event.
    pub fn block(&mut self, events: Vec<EventLog>, signers: &[usize]) -> (String, Vec<String>) {
        let receipt = Receipt {
            status: 1,
            to: Address::contract([9; 20]),
            cumulative_step_used: 0,
            step_used: 1,
            step_price: 0,
            failure_code: 0,
            failure_message: String::new(),
            event_logs: events,
        };
        let leaves = [receipt.hash()];
        let h = BlockHeader {
            height: self.head.height + 1,
            round: self.head.round + 1,
            prev_hash: self.head.hash(),
            receipts_root: merkle::root(&leaves),
            ..self.head.clone()
        };
        let update = HeaderUpdate {
            votes: self.votes(&h, signers),
            header: h.clone(),
            next_validators: None,
        };
        let proofs = (0..receipt.event_logs.len())
            .filter_map(|j| {
                EventProof::new(
                    h.height,
                    &receipt,
                    merkle::prove(&leaves, 0).unwrap_or_default(),
                    j,
                )
            })
            .map(|p| format_bytes(&p.encode()))
            .collect();
        self.head = h;
        (format_bytes(&update.encode()), proofs)
    }
}
