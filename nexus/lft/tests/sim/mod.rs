//! The simulated network of the LFT tests (`simulation.rs`, `twins.rs`): n validators in one
//! process on a seeded virtual network (latency, jitter, loss, partitions that heal, per-node
//! views for twins), a virtual clock, crash and restart from persisted state, and the
//! Byzantine behaviours of [`adversary`]. Checked on every commit: no two honest validators
//! finalize different blocks at one height, every final block has a valid QC of its own
//! height's set, and chains grow parent by parent.

#![allow(dead_code)]

mod adversary;

use nexus_lft::{
    nil_digest, vote_digest, Action, BlockRef, Config, Crypto, Lft, Message, Nil, Proposal, Qc,
    SafetyState, Timeouts, ValidatorSchedule, ValidatorSet, Vote,
};
use nexus_proto::{hash::sha3_256, Address, Hash32};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::sync::Arc;

pub(crate) const N: usize = 4;
pub(crate) const NID: u64 = 1;
pub(crate) const CH: &str = "public";

/// splitmix64: small, fast, deterministic.
pub(crate) struct Rng(pub(crate) u64);
impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    pub(crate) fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// A cheap keyed-hash signature scheme; verification looks the key up.
#[derive(Clone)]
pub(crate) struct SimCrypto {
    me: Address,
    keys: Arc<HashMap<Address, [u8; 32]>>,
}

impl Crypto for SimCrypto {
    fn address(&self) -> Address {
        self.me
    }
    fn sign(&self, digest: &Hash32) -> Vec<u8> {
        sign_as(&self.keys, &self.me, digest)
    }
    fn verify(&self, signer: &Address, digest: &Hash32, sig: &[u8]) -> bool {
        self.keys.contains_key(signer) && sign_as(&self.keys, signer, digest) == sig
    }
}

pub(crate) fn sign_as(
    keys: &HashMap<Address, [u8; 32]>,
    who: &Address,
    digest: &Hash32,
) -> Vec<u8> {
    sha3_256(&[&keys[who], &digest.0]).0.to_vec()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Byz {
    Equivocator,
    DoubleVoter,
    InvalidProposer,
    Withholder,
    Forger,
    /// One of two instances running honest code with the same key, each seeing part of the
    /// network (the Twins method).
    Twin,
    /// Sends each vote and nil vote to a random subset of the others only.
    SelectiveVoter,
    /// Sends proposals and timeout certificates to a random subset only.
    SelectiveRelay,
    /// As leader, re-proposes the last block it saw (same hash, new round); run with an
    /// application whose hashes do not bind the round, as before issue 13.
    Reproposer,
    /// Joins honest nil votes with its own nil claiming a huge high-QC round into a TC and
    /// sends it to everyone (the next leader first).
    Inflater,
    /// Holds the keys of validators that left at a set change and forges certificates for
    /// heights of their set: a sibling QC with a huge round, TCs of the old set.
    PastForger,
}

pub(crate) const KINDS: [Option<Byz>; 6] = [
    None,
    Some(Byz::Equivocator),
    Some(Byz::DoubleVoter),
    Some(Byz::InvalidProposer),
    Some(Byz::Withholder),
    Some(Byz::Forger),
];

pub(crate) enum Ev {
    Deliver {
        to: usize,
        from: usize,
        msg: Box<Message>,
    },
    Timer {
        node: usize,
        round: u64,
        life: u64,
    },
    Crash(usize),
    Restart(usize),
    /// Node `node` now sees `view` (`None`: everyone).
    Views {
        node: usize,
        view: Option<Vec<bool>>,
    },
    /// The directed links that deliver from now on (`None`: all).
    Links(Option<Vec<Vec<bool>>>),
    /// Per-round partitions end: every round's messages travel everywhere.
    HealRounds,
}

pub(crate) struct Node {
    /// Indices this node exchanges messages with (`None`: everyone); twins see part of the
    /// network each.
    pub(crate) view: Option<Vec<bool>>,
    pub(crate) core: Option<Lft<SimCrypto>>,
    pub(crate) crypto: SimCrypto,
    pub(crate) byz: Option<Byz>,
    pub(crate) life: u64,
    pub(crate) persisted: SafetyState,
    pub(crate) chain: Vec<(BlockRef, Qc)>,
    pub(crate) archive: HashMap<Hash32, Proposal>,
}

pub(crate) struct Sim {
    pub(crate) rng: Rng,
    pub(crate) now: u64,
    pub(crate) seq: u64,
    pub(crate) queue: BinaryHeap<Reverse<(u64, u64)>>,
    pub(crate) events: HashMap<u64, Ev>,
    pub(crate) nodes: Vec<Node>,
    pub(crate) addrs: Vec<Address>,
    pub(crate) schedule: ValidatorSchedule,
    pub(crate) keys: Arc<HashMap<Address, [u8; 32]>>,
    pub(crate) genesis: BlockRef,
    pub(crate) final_at: BTreeMap<u64, Hash32>,
    pub(crate) partition: Option<(Vec<bool>, u64, u64)>,
    pub(crate) loss_percent: u64,
    pub(crate) seed: u64,
    pub(crate) delivered: u64,
    /// Block hashes ignore the round (the application before issue 13).
    pub(crate) legacy_hash: bool,
    /// Set changes become known to a node only once it has finalized the height that announces
    /// them (height, margin): its schedule is certain up to its final height plus the margin,
    /// as a Nexus node's, which reads it from its final state.
    pub(crate) announce: Option<(u64, u64)>,
    /// Share of messages held back by up to 400 ms more, in percent.
    pub(crate) slow_percent: u64,
    /// Which directed links deliver (`links[from][to]`; `None`: all).
    pub(crate) links: Option<Vec<Vec<bool>>>,
    /// Per consensus round, which directed links deliver that round's messages (the Twins
    /// method: partitions follow rounds, not the clock); rounds not listed deliver everywhere.
    pub(crate) round_links: HashMap<u64, Vec<Vec<bool>>>,
    /// Nil votes seen by the Byzantine node, by round (for the inflater).
    pub(crate) seen_nils: BTreeMap<u64, Vec<Nil>>,
    /// The last proposal the Byzantine node saw (for the re-proposer).
    pub(crate) last_seen: Option<Proposal>,
}

pub(crate) fn block_hash(parent: &Hash32, height: u64, round: u64, payload: &[u8]) -> Hash32 {
    sha3_256(&[
        &parent.0,
        &height.to_be_bytes(),
        &round.to_be_bytes(),
        payload,
    ])
}

pub(crate) fn genesis_qc(g: &BlockRef) -> Qc {
    Qc {
        round: 0,
        height: 0,
        block: g.hash,
        votes: vec![],
    }
}

pub(crate) const TIMEOUTS: Timeouts = Timeouts {
    round_ms: 300,
    growth_percent: 50,
    max_ms: 1_500,
};

impl Sim {
    pub(crate) fn new(seed: u64, byz: Option<Byz>) -> Self {
        Self::with_nodes(seed, byz, N, |addrs| {
            ValidatorSchedule::new(ValidatorSet {
                members: addrs.to_vec(),
            })
        })
    }

    /// `nodes` processes; `schedule` picks the validator sets from their addresses. Byzantine
    /// behaviour (if any) goes to one of the first `N`.
    pub(crate) fn with_nodes(
        seed: u64,
        byz: Option<Byz>,
        nodes: usize,
        schedule: impl Fn(&[Address]) -> ValidatorSchedule,
    ) -> Self {
        let addrs: Vec<Address> = (0..nodes)
            .map(|i| Address::eoa([i as u8 + 1; 20]))
            .collect();
        let keys: Arc<HashMap<Address, [u8; 32]>> = Arc::new(
            addrs
                .iter()
                .map(|a| (*a, sha3_256(&[b"sim-key", a.body()]).0))
                .collect(),
        );
        let schedule = schedule(&addrs);
        let genesis = BlockRef {
            hash: sha3_256(&[b"genesis"]),
            parent: Hash32::ZERO,
            height: 0,
            round: 0,
        };
        let mut rng = Rng(seed);
        let byz_index = rng.below(N as u64) as usize;
        let nodes = (0..nodes)
            .map(|i| Node {
                core: None,
                crypto: SimCrypto {
                    me: addrs[i],
                    keys: keys.clone(),
                },
                byz: if i == byz_index { byz } else { None },
                view: None,
                life: 0,
                persisted: SafetyState::default(),
                chain: vec![],
                archive: HashMap::new(),
            })
            .collect();
        Sim {
            rng,
            now: 0,
            seq: 0,
            queue: BinaryHeap::new(),
            events: HashMap::new(),
            nodes,
            addrs,
            schedule,
            keys,
            genesis,
            final_at: BTreeMap::new(),
            partition: None,
            loss_percent: 0,
            seed,
            delivered: 0,
            legacy_hash: false,
            slow_percent: 0,
            announce: None,
            links: None,
            round_links: HashMap::new(),
            seen_nils: BTreeMap::new(),
            last_seen: None,
        }
    }

    /// The application's block hash: binds the round unless `legacy_hash`.
    pub(crate) fn hash_of(
        &self,
        parent: &Hash32,
        height: u64,
        round: u64,
        payload: &[u8],
    ) -> Hash32 {
        block_hash(
            parent,
            height,
            if self.legacy_hash { 0 } else { round },
            payload,
        )
    }

    /// Runs a second instance of node `b`'s key (same address, its own state), and gives the
    /// two instances the views `left` and `right` of the others.
    pub(crate) fn add_twin(&mut self, b: usize, left: Vec<bool>, right: Vec<bool>) -> usize {
        let t = self.nodes.len();
        let crypto = self.nodes[b].crypto.clone();
        self.nodes[b].byz = Some(Byz::Twin);
        self.nodes[b].view = Some(left);
        self.nodes.push(Node {
            view: Some(right),
            core: None,
            crypto,
            byz: Some(Byz::Twin),
            life: 0,
            persisted: SafetyState::default(),
            chain: vec![],
            archive: HashMap::new(),
        });
        self.addrs.push(self.addrs[b]);
        t
    }

    /// The schedule a node knows once `height` is final (see `announce`).
    pub(crate) fn schedule_known_at(&self, height: u64) -> ValidatorSchedule {
        match self.announce {
            None => self.schedule.clone(),
            Some((at, margin)) => {
                let s = if height >= at {
                    self.schedule.clone()
                } else {
                    ValidatorSchedule::new(self.schedule.at(0).clone())
                };
                s.known_through(height + margin)
            }
        }
    }

    pub(crate) fn schedule(&mut self, at: u64, ev: Ev) {
        self.seq += 1;
        self.queue.push(Reverse((at, self.seq)));
        self.events.insert(self.seq, ev);
    }

    pub(crate) fn boot(&mut self, i: usize) {
        self.nodes[i].life += 1;
        let (committed, qc) = self.nodes[i]
            .chain
            .last()
            .cloned()
            .unwrap_or((self.genesis, genesis_qc(&self.genesis)));
        let cfg = Config {
            nid: NID,
            channel: CH.into(),
            schedule: self.schedule_known_at(committed.height),
            timeouts: TIMEOUTS,
        };
        let n = &mut self.nodes[i];
        let core = Lft::new(cfg, n.crypto.clone(), committed, qc, n.persisted.clone());
        n.core = Some(core);
        let acts = self.nodes[i]
            .core
            .as_mut()
            .map(|c| c.start())
            .unwrap_or_default();
        self.run_actions(i, acts);
    }

    pub(crate) fn blocked(&self, a: usize, b: usize) -> bool {
        let outside = |x: usize, y: usize| {
            self.nodes[x]
                .view
                .as_ref()
                .is_some_and(|v| !v.get(y).copied().unwrap_or(false))
        };
        if outside(a, b) || outside(b, a) {
            return true;
        }
        if self
            .links
            .as_ref()
            .is_some_and(|l| !l.get(a).and_then(|r| r.get(b)).copied().unwrap_or(true))
        {
            return true;
        }
        match &self.partition {
            Some((side, from, until)) => {
                self.now >= *from && self.now < *until && side[a] != side[b]
            }
            None => false,
        }
    }

    pub(crate) fn send(&mut self, from: usize, to: usize, msg: Message) {
        if from == to || self.rng.chance(self.loss_percent) {
            return;
        }
        let mut delay = 5 + self.rng.below(40);
        if self.rng.chance(self.slow_percent) {
            // The adversary holds this message back (reordering it past later ones).
            delay += self.rng.below(400);
        }
        self.schedule(
            self.now + delay,
            Ev::Deliver {
                to,
                from,
                msg: Box::new(msg),
            },
        );
    }

    pub(crate) fn broadcast(&mut self, from: usize, msg: &Message) {
        for to in 0..self.nodes.len() {
            self.send(from, to, msg.clone());
        }
    }

    pub(crate) fn verify_qc(&self, qc: &Qc) -> bool {
        if qc.round == 0 && qc.block == self.genesis.hash {
            return true;
        }
        let d = vote_digest(NID, CH, qc.height, qc.round, &qc.block);
        let mut seen = std::collections::HashSet::new();
        let set = self.schedule.at(qc.height);
        qc.votes.len() >= set.quorum()
            && qc.votes.iter().all(|(i, s)| {
                seen.insert(*i)
                    && set
                        .members
                        .get(*i as usize)
                        .is_some_and(|a| sign_as(&self.keys, a, &d) == *s)
            })
    }

    pub(crate) fn run_actions(&mut self, i: usize, acts: Vec<Action>) {
        let mut queue: std::collections::VecDeque<Action> = acts.into();
        while let Some(a) = queue.pop_front() {
            if self.nodes[i].core.is_none() {
                return;
            }
            let byz = self.nodes[i].byz;
            match a {
                Action::Persist(s) => self.nodes[i].persisted = s,
                // Kept proposals are the node's storage: it serves block sync from them once
                // its core has pruned them (as a Nexus node serves from RocksDB).
                Action::Keep(p) => {
                    self.nodes[i].archive.insert(p.block.hash, p);
                }
                Action::Refused(_) => {}
                Action::SetTimer { round, after_ms } => {
                    if std::env::var("LFT_TRACE").is_ok() {
                        eprintln!("t{} node {i} timer r{round} +{after_ms}", self.now);
                    }
                    let life = self.nodes[i].life;
                    self.schedule(
                        self.now + after_ms,
                        Ev::Timer {
                            node: i,
                            round,
                            life,
                        },
                    );
                }
                Action::BuildBlock { round, parent } => {
                    let mut payload =
                        format!("b{}:{}:{}", parent.height + 1, round, i).into_bytes();
                    if byz == Some(Byz::InvalidProposer) {
                        payload = b"BAD".to_vec();
                    }
                    let block = BlockRef {
                        hash: self.hash_of(&parent.hash, parent.height + 1, round, &payload),
                        parent: parent.hash,
                        height: parent.height + 1,
                        round,
                    };
                    let more = self.nodes[i]
                        .core
                        .as_mut()
                        .map(|c| c.on_block_built(block, payload))
                        .unwrap_or_default();
                    queue.extend(more);
                }
                Action::CheckBlock(p) => {
                    let ok =
                        self.hash_of(&p.block.parent, p.block.height, p.block.round, &p.payload)
                            == p.block.hash
                            && !p.payload.starts_with(b"BAD");
                    let more = self.nodes[i]
                        .core
                        .as_mut()
                        .map(|c| c.on_block_checked(p.block.hash, ok))
                        .unwrap_or_default();
                    queue.extend(more);
                }
                Action::Commit { block, qc, .. } => {
                    self.on_commit(i, block, qc);
                    let known = self.schedule_known_at(block.height);
                    let more = self.nodes[i]
                        .core
                        .as_mut()
                        .map(|c| c.set_schedule(known))
                        .unwrap_or_default();
                    queue.extend(more);
                }
                Action::Send { to, msg } => {
                    if let Some(to) = self.addrs.iter().position(|a| *a == to) {
                        self.send(i, to, msg);
                    }
                }
                Action::Broadcast(msg) => self.byz_broadcast(i, byz, msg),
            }
        }
    }

    pub(crate) fn on_commit(&mut self, i: usize, block: BlockRef, qc: Qc) {
        let seed = self.seed;
        assert!(
            self.verify_qc(&qc),
            "seed {seed}: node {i} finalized {:?} without a valid QC",
            block
        );
        assert_eq!(qc.block, block.hash, "seed {seed}: QC for another block");
        let prev = self.nodes[i]
            .chain
            .last()
            .map(|(b, _)| *b)
            .unwrap_or(self.genesis);
        assert_eq!(
            block.height,
            prev.height + 1,
            "seed {seed}: node {i} skipped a height"
        );
        assert_eq!(
            block.parent, prev.hash,
            "seed {seed}: node {i} finalized a block off its chain"
        );
        if self.nodes[i].byz.is_none() {
            if let Some(h) = self.final_at.get(&block.height) {
                assert_eq!(
                    *h, block.hash,
                    "seed {seed}: two honest nodes finalized different blocks at height {}",
                    block.height
                );
            }
            self.final_at.insert(block.height, block.hash);
        }
        self.nodes[i].chain.push((block, qc));
    }

    pub(crate) fn on_deliver(&mut self, to: usize, from: usize, msg: Message) {
        if self.blocked(from, to) || self.nodes[to].core.is_none() {
            return;
        }
        let round = match &msg {
            Message::Proposal(p) => Some(p.block.round),
            Message::Vote(v) => Some(v.round),
            Message::Nil(n) => Some(n.round),
            Message::Timeout(tc) => Some(tc.round),
            Message::Sync { high_qc, .. } => Some(high_qc.round),
            Message::BlockRequest(_) | Message::BlockResponse(_) => None,
        };
        if let Some(links) = round.and_then(|r| self.round_links.get(&r)) {
            if !links[from][to] {
                return;
            }
        }
        self.delivered += 1;
        if std::env::var("LFT_TRACE").is_ok()
            && self.now
                > std::env::var("LFT_TRACE")
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0)
            && self.now
                < std::env::var("LFT_TRACE")
                    .ok()
                    .and_then(|s| s.parse::<u64>().ok())
                    .unwrap_or(0)
                    + 1500
        {
            let kind = match &msg {
                Message::Proposal(p) => format!("proposal r{} h{}", p.block.round, p.block.height),
                Message::Vote(v) => format!("vote r{} h{} by {}", v.round, v.height, v.voter),
                Message::Nil(n) => format!(
                    "nil r{} h{} by {} hq r{}",
                    n.round, n.height, n.voter, n.high_qc.round
                ),
                Message::BlockRequest(h) => format!("req {}", h.0[0]),
                Message::Timeout(t) => format!("tc r{}", t.round),
                Message::BlockResponse(p) => format!("resp h{} r{}", p.block.height, p.block.round),
                Message::Sync { high_qc, .. } => format!("sync hq r{}", high_qc.round),
            };
            eprintln!("t{} {from}->{to} {kind}", self.now);
        }
        // A double voter votes yes for every proposal it sees, whatever the rules say.
        if let (Some(Byz::DoubleVoter), Message::Proposal(p)) = (self.nodes[to].byz, &msg) {
            let sig = sign_as(
                &self.keys,
                &self.addrs[to],
                &vote_digest(NID, CH, p.block.height, p.block.round, &p.block.hash),
            );
            self.broadcast(
                to,
                &Message::Vote(Vote {
                    round: p.block.round,
                    height: p.block.height,
                    block: p.block.hash,
                    voter: to as u32,
                    signature: sig,
                }),
            );
            let sig = sign_as(
                &self.keys,
                &self.addrs[to],
                &nil_digest(NID, CH, p.block.height, p.block.round, 0),
            );
            let _ = sig;
        }
        self.observe(to, &msg);
        let from_addr = self.addrs[from];
        let asked = match &msg {
            Message::BlockRequest(h) => Some(*h),
            _ => None,
        };
        let acts = self.nodes[to]
            .core
            .as_mut()
            .map(|c| c.on_message(from_addr, msg))
            .unwrap_or_default();
        let answered = acts.iter().any(|a| matches!(a, Action::Send { .. }));
        if let (Some(h), false) = (asked, answered) {
            if let Some(p) = self.nodes[to].archive.get(&h).cloned() {
                self.send(to, from, Message::BlockResponse(p));
            }
        }
        self.run_actions(to, acts);
    }

    pub(crate) fn run_until(&mut self, end: u64) {
        while let Some(Reverse((t, seq))) = self.queue.peek().copied() {
            if t > end {
                break;
            }
            self.queue.pop();
            self.now = t;
            let Some(ev) = self.events.remove(&seq) else {
                continue;
            };
            match ev {
                Ev::Deliver { to, from, msg } => self.on_deliver(to, from, *msg),
                Ev::Timer { node, round, life } => {
                    if self.nodes[node].life == life {
                        let acts = self.nodes[node]
                            .core
                            .as_mut()
                            .map(|c| c.on_timeout(round))
                            .unwrap_or_default();
                        self.run_actions(node, acts);
                    }
                }
                Ev::Crash(i) => self.nodes[i].core = None,
                Ev::Views { node, view } => self.nodes[node].view = view,
                Ev::Links(links) => self.links = links,
                Ev::HealRounds => self.round_links.clear(),
                Ev::Restart(i) => self.boot(i),
            }
        }
        self.now = end;
    }

    pub(crate) fn honest_heights(&self) -> Vec<u64> {
        self.nodes
            .iter()
            .filter(|n| n.byz.is_none())
            .map(|n| n.chain.last().map(|(b, _)| b.height).unwrap_or(0))
            .collect()
    }
}
