//! A misbehaving validator for the adversarial tests: a test binary of `nexus-tests`, never part
//! of the `nexus` node. It joins a channel over libp2p with a real validator's keys and, instead
//! of running LFT, attacks the channel in the one way `--behaviour` names. It follows the honest
//! validators' gossip (proposals, votes) to know rounds, heights and certificates, and prints one
//! line per attack step (`attack <what> <count>`) so a test can check that the attack happened.
//!
//! Usage: `byzantine --config <validator's config.toml> --behaviour <name>`; it runs until killed.

use nexus::config::NodeConfig;
use nexus::consensus::driver::votes_of;
use nexus::net::p2p::{self, Inbound, P2pHandle, Topic};
use nexus_lft::{
    codec, nil_digest, proposal_digest, BlockRef, Message, Nil, Proposal, Qc, Tc, Vote,
};
use nexus_proto::block::{encode_payload, sign_vote, Block, BlockHeader, HEADER_VERSION};
use nexus_proto::{merkle, Address, Hash32, KeyPair};
use rand::{Rng, RngCore};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::Duration;

/// The ways this validator misbehaves (one per run).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Behaviour {
    /// Leads with two different valid blocks; votes for every proposal and for a made-up
    /// sibling in the same round, and sends a nil vote too.
    Equivocate,
    /// Leads with a block stamped an hour ahead.
    FutureTimestamp,
    /// Leads with a proposal whose transactions exceed the block byte limit.
    Oversized,
    /// Leads with a justify QC of garbage signatures; sends nil votes whose high QC claims a
    /// later round with garbage votes, and timeout certificates of garbage nil votes.
    GarbageQc,
    /// Votes for each proposal at heights other than its block's (correctly signed).
    OtherHeights,
    /// Floods correctly signed votes, nil votes and proposals for rounds and heights ahead.
    FutureRounds,
    /// Asks every peer for blocks (known and made-up) in a loop.
    BlockRequests,
    /// Sends undecodable bytes and messages signed by the wrong key or with garbage signatures.
    GarbageGossip,
}

impl Behaviour {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "equivocate" => Behaviour::Equivocate,
            "future-timestamp" => Behaviour::FutureTimestamp,
            "oversized" => Behaviour::Oversized,
            "garbage-qc" => Behaviour::GarbageQc,
            "other-heights" => Behaviour::OtherHeights,
            "future-rounds" => Behaviour::FutureRounds,
            "block-requests" => Behaviour::BlockRequests,
            "garbage-gossip" => Behaviour::GarbageGossip,
            _ => return None,
        })
    }
}

/// What the attacker learned from the honest validators' gossip.
struct Attacker {
    how: Behaviour,
    key: KeyPair,
    me: u32,
    nid: u64,
    channel: String,
    validators: Vec<Address>,
    net: P2pHandle,
    /// Headers of proposed blocks, by hash.
    headers: HashMap<Hash32, BlockHeader>,
    /// Votes seen, by (round, height, block).
    votes: BTreeMap<(u64, u64, Hash32), BTreeMap<u32, Vec<u8>>>,
    high_qc: Option<Qc>,
    round: u64,
    led: u64,
    ticks: u64,
    next_future: u64,
    last_round_attacked: u64,
    counts: BTreeMap<&'static str, u64>,
}

fn garbage_sig(rng: &mut impl RngCore) -> Vec<u8> {
    let mut s = vec![0u8; 65];
    rng.fill_bytes(&mut s);
    s
}

impl Attacker {
    fn quorum(&self) -> usize {
        self.validators.len() * 2 / 3 + 1
    }

    fn leads(&self, round: u64) -> bool {
        self.validators
            .get((round % self.validators.len() as u64) as usize)
            == Some(&self.key.address())
    }

    fn send(&mut self, what: &'static str, m: &Message) {
        self.net.publish(Topic::Consensus, codec::encode(m));
        self.count(what);
    }

    fn count(&mut self, what: &'static str) {
        let c = self.counts.entry(what).or_default();
        *c += 1;
        // Powers of two keep the log short under floods.
        if c.is_power_of_two() {
            println!("attack {what} {c}");
        }
    }

    fn vote(&self, round: u64, height: u64, block: Hash32) -> Message {
        Message::Vote(Vote {
            round,
            height,
            block,
            voter: self.me,
            signature: sign_vote(&self.key, self.nid, &self.channel, height, round, &block)
                .0
                .to_vec(),
        })
    }

    fn nil(&self, round: u64, height: u64, high_qc: Qc) -> Message {
        let d = nil_digest(self.nid, &self.channel, height, round, high_qc.round);
        Message::Nil(Nil {
            round,
            height,
            high_qc,
            voter: self.me,
            signature: self.key.sign(&d).0.to_vec(),
        })
    }

    /// A signed proposal of `block` in `round` on `justify`.
    fn proposal(&self, round: u64, block: &Block, txs: &[Vec<u8>], justify: Qc) -> Message {
        let r = BlockRef {
            hash: block.hash(),
            parent: block.header.prev_hash,
            height: block.header.height,
            round,
        };
        Message::Proposal(Proposal {
            block: r,
            payload: encode_payload(block, txs),
            justify,
            tc: None,
            seal: None,
            proposer: self.me,
            signature: self
                .key
                .sign(&proposal_digest(self.nid, &self.channel, &r))
                .0
                .to_vec(),
        })
    }

    /// An empty block on the block `qc` certifies, as an honest leader would build it.
    fn empty_child(&self, qc: &Qc, round: u64, timestamp: u64, txs: &[Hash32]) -> Option<Block> {
        let parent = self.headers.get(&qc.block)?;
        let prev_votes = votes_of(qc);
        Some(Block {
            header: BlockHeader {
                version: HEADER_VERSION,
                height: parent.height + 1,
                round,
                timestamp: timestamp.max(parent.timestamp + 1),
                prev_hash: qc.block,
                transactions_root: merkle::root(txs),
                receipts_root: merkle::root(&[]),
                state_root: parent.state_root,
                validators_hash: parent.next_validators_hash,
                next_validators_hash: parent.next_validators_hash,
                prev_votes_hash: prev_votes.hash(),
                leader: self.key.address(),
            },
            tx_hashes: txs.to_vec(),
            prev_votes,
        })
    }

    fn observe(&mut self, m: Inbound) {
        let Ok(msg) = codec::decode(&m.data) else {
            return;
        };
        match msg {
            Message::Proposal(p) => {
                if let Ok((b, _)) = nexus_proto::block::decode_payload(&p.payload) {
                    self.headers.insert(b.hash(), b.header);
                }
                if self.headers.len() > 4096 {
                    let floor = p.block.height.saturating_sub(64);
                    self.headers.retain(|_, h| h.height >= floor);
                }
                self.round = self.round.max(p.block.round);
                self.new_qc(p.justify.clone());
                self.on_proposal(&p);
            }
            Message::Vote(v) => {
                let key = (v.round, v.height, v.block);
                self.votes
                    .entry(key)
                    .or_default()
                    .insert(v.voter, v.signature);
                if self.votes[&key].len() >= self.quorum() {
                    let qc = Qc {
                        round: v.round,
                        height: v.height,
                        block: v.block,
                        votes: self.votes[&key]
                            .iter()
                            .map(|(i, s)| (*i, s.clone()))
                            .collect(),
                    };
                    self.new_qc(qc);
                }
                let floor = self.round.saturating_sub(8);
                self.votes.retain(|(r, _, _), _| *r >= floor);
            }
            _ => {}
        }
    }

    fn new_qc(&mut self, qc: Qc) {
        if self.high_qc.as_ref().is_some_and(|h| h.round >= qc.round) {
            return;
        }
        let next = qc.round + 1;
        self.round = self.round.max(next);
        self.high_qc = Some(qc.clone());
        if self.leads(next) && self.led < next {
            self.led = next;
            self.lead(next, qc);
        }
    }

    fn now_us() -> u64 {
        nexus::pool::admission::now_us()
    }

    /// Our turn to propose in `round` on `qc`.
    fn lead(&mut self, round: u64, qc: Qc) {
        let now = Self::now_us();
        match self.how {
            Behaviour::Equivocate => {
                let (Some(a), Some(b)) = (
                    self.empty_child(&qc, round, now, &[]),
                    self.empty_child(&qc, round, now + 1, &[]),
                ) else {
                    return;
                };
                let (pa, pb) = (
                    self.proposal(round, &a, &[], qc.clone()),
                    self.proposal(round, &b, &[], qc),
                );
                self.send("equivocating-proposal", &pa);
                self.send("equivocating-proposal", &pb);
                for blk in [&a, &b] {
                    let v = self.vote(round, blk.header.height, blk.hash());
                    self.send("equivocating-vote", &v);
                }
            }
            Behaviour::FutureTimestamp => {
                if let Some(b) = self.empty_child(&qc, round, now + 3_600_000_000, &[]) {
                    let p = self.proposal(round, &b, &[], qc);
                    self.send("future-timestamp-proposal", &p);
                }
            }
            Behaviour::Oversized => {
                // 200 transactions of 64 KiB: 12.5 MiB, over the 8 MiB of transactions a block
                // may hold and under what gossip carries.
                let txs: Vec<Vec<u8>> = (0..200u8)
                    .map(|i| {
                        let mut t = vec![b' '; 64 * 1024];
                        t[0] = b'{';
                        t[1] = i;
                        t[64 * 1024 - 1] = b'}';
                        t
                    })
                    .collect();
                let hashes: Vec<Hash32> = txs
                    .iter()
                    .map(|t| nexus_proto::hash::sha3_256(&[t]))
                    .collect();
                if let Some(b) = self.empty_child(&qc, round, now, &hashes) {
                    let p = self.proposal(round, &b, &txs, qc);
                    self.send("oversized-proposal", &p);
                }
            }
            Behaviour::GarbageQc => {
                let mut rng = rand::thread_rng();
                let mut forged = qc.clone();
                for v in &mut forged.votes {
                    v.1 = garbage_sig(&mut rng);
                }
                if let Some(b) = self.empty_child(&qc, round, now, &[]) {
                    let p = self.proposal(round, &b, &[], forged);
                    self.send("garbage-qc-proposal", &p);
                }
            }
            _ => {}
        }
    }

    fn on_proposal(&mut self, p: &Proposal) {
        let (r, h, b) = (p.block.round, p.block.height, p.block.hash);
        match self.how {
            Behaviour::Equivocate => {
                let yes = self.vote(r, h, b);
                self.send("equivocating-vote", &yes);
                let mut other = b;
                other.0[0] ^= 0xff;
                let sibling = self.vote(r, h, other);
                self.send("equivocating-vote", &sibling);
                if let Some(q) = self.high_qc.clone() {
                    let nil = self.nil(r, h, q);
                    self.send("equivocating-nil", &nil);
                }
            }
            Behaviour::OtherHeights => {
                for height in [h + 1, h.saturating_sub(1), h + 1_000, u64::MAX] {
                    let v = self.vote(r, height, b);
                    self.send("other-height-vote", &v);
                }
            }
            _ => {}
        }
    }

    /// Attacks that do not wait for a turn, run every tick.
    fn tick(&mut self) {
        let mut rng = rand::thread_rng();
        let round = self.round;
        let height = self.high_qc.as_ref().map_or(1, |q| q.height + 1);
        self.ticks += 1;
        let new_round = round > self.last_round_attacked;
        self.last_round_attacked = round;
        match self.how {
            Behaviour::FutureRounds => {
                let Some(q) = self.high_qc.clone() else {
                    return;
                };
                for _ in 0..50 {
                    let ahead = match rng.gen_range(0..3) {
                        0 => rng.gen_range(1..64),
                        1 => rng.gen_range(64..1_000_000),
                        _ => u64::MAX - rng.gen_range(0..1_000),
                    };
                    let r = round.saturating_add(ahead);
                    let h = height.saturating_add(rng.gen_range(0..128));
                    let mut block = Hash32::ZERO;
                    rng.fill_bytes(&mut block.0);
                    let v = self.vote(r, h, block);
                    self.send("future-vote", &v);
                    let n = self.nil(r, h, q.clone());
                    self.send("future-nil", &n);
                }
                // Proposals for rounds this validator leads, ahead, with a real QC: each round
                // once (a second one would be equivocation, which gets it cut off).
                let n = self.validators.len() as u64;
                for _ in 0..10 {
                    let from = self.next_future.max(round + 4);
                    let r = (from / n + 1) * n + self.me as u64;
                    self.next_future = r + 1;
                    if let Some(b) = self.empty_child(&q, r, Self::now_us(), &[]) {
                        let p = self.proposal(r, &b, &[], q.clone());
                        self.send("future-proposal", &p);
                    }
                }
            }
            Behaviour::BlockRequests => {
                let known: Vec<Hash32> = self.headers.keys().copied().take(50).collect();
                for h in known {
                    self.net.request_block(h);
                    self.count("block-request");
                }
                for _ in 0..50 {
                    let mut h = Hash32::ZERO;
                    rng.fill_bytes(&mut h.0);
                    self.net.request_block(h);
                    self.count("block-request");
                }
                // The old way, on gossip (refused), once a second.
                if self.ticks.is_multiple_of(20) {
                    let m = Message::BlockRequest(Hash32([7; 32]));
                    self.send("gossip-block-request", &m);
                }
            }
            Behaviour::GarbageGossip => {
                for _ in 0..20 {
                    let mut junk = vec![0u8; rng.gen_range(1..4096)];
                    rng.fill_bytes(&mut junk);
                    self.net.publish(Topic::Consensus, junk.clone());
                    self.count("undecodable-consensus");
                    self.net.publish(Topic::Txs, junk);
                    self.count("undecodable-txs");
                }
                // A vote in another validator's name, signed with our key.
                let mut block = Hash32::ZERO;
                rng.fill_bytes(&mut block.0);
                let mut v = self.vote(round, height, block);
                if let Message::Vote(v) = &mut v {
                    v.voter = (self.me + 1) % self.validators.len() as u32;
                }
                self.send("wrong-key-vote", &v);
                // Our own vote with a garbage signature.
                let m = Message::Vote(Vote {
                    round,
                    height,
                    block,
                    voter: self.me,
                    signature: garbage_sig(&mut rng),
                });
                self.send("garbage-signature-vote", &m);
                // A timeout certificate of garbage nil votes.
                let tc = Tc {
                    round,
                    height,
                    nils: (0..self.validators.len() as u32)
                        .map(|i| (i, height, 0, garbage_sig(&mut rng)))
                        .collect(),
                    high_qc: self.high_qc.clone().unwrap_or(Qc {
                        round: 0,
                        height: 0,
                        block: Hash32::ZERO,
                        votes: vec![],
                    }),
                };
                self.send("garbage-tc", &Message::Timeout(tc));
            }
            Behaviour::GarbageQc => {
                // Once per round, so that it keeps the attacker heard for a while.
                let Some(q) = self.high_qc.clone().filter(|_| new_round) else {
                    return;
                };
                // A nil vote (correctly signed) whose high QC claims a later round, with
                // garbage votes.
                let mut forged = q.clone();
                forged.round = round + 1;
                for v in &mut forged.votes {
                    v.1 = garbage_sig(&mut rng);
                }
                let n = self.nil(round, height, forged);
                self.send("garbage-high-qc-nil", &n);
                let tc = Tc {
                    round,
                    height,
                    nils: (0..self.validators.len() as u32)
                        .map(|i| (i, height, round, garbage_sig(&mut rng)))
                        .collect(),
                    high_qc: q,
                };
                self.send("garbage-tc", &Message::Timeout(tc));
            }
            _ => {}
        }
    }
}

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: byzantine --config <config.toml> --behaviour <equivocate|future-timestamp|oversized|garbage-qc|other-heights|future-rounds|block-requests|garbage-gossip>";
    let config = PathBuf::from(arg(&args, "--config").ok_or(usage)?);
    let how = arg(&args, "--behaviour")
        .as_deref()
        .and_then(Behaviour::parse)
        .ok_or(usage)?;
    let cfg = NodeConfig::load(&config)?;
    let genesis = nexus::ledger::genesis::Genesis::load(&cfg.genesis)?;
    let key = nexus::keystore::load(&cfg.keystore, &cfg.keystore_password()?)?;
    let me = genesis
        .validators
        .iter()
        .position(|v| *v == key.address())
        .ok_or("the keystore is not a validator of the channel")? as u32;
    let id = p2p::load_or_create_identity(&cfg.p2p.key_file)?;
    let (net, mut inbound) = p2p::start(
        id,
        &cfg.p2p.listen,
        &cfg.p2p.peers,
        None,
        genesis.nid,
        &genesis.channel,
    )?;
    // An attacker does not pace its block requests.
    net.set_block_request_rate(u32::MAX);
    println!(
        "byzantine validator {me} ({how:?}) joined {}",
        genesis.channel
    );
    let mut a = Attacker {
        how,
        key,
        me,
        nid: genesis.nid,
        channel: genesis.channel.clone(),
        validators: genesis.validators.clone(),
        net,
        headers: HashMap::new(),
        votes: BTreeMap::new(),
        high_qc: None,
        round: 0,
        led: 0,
        ticks: 0,
        next_future: 0,
        last_round_attacked: 0,
        counts: BTreeMap::new(),
    };
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    loop {
        tokio::select! {
            m = inbound.recv() => match m {
                Some(m) if matches!(m.topic, Topic::Consensus) => a.observe(m),
                Some(_) => {}
                None => return Err("the network task stopped".into()),
            },
            _ = tick.tick() => a.tick(),
        }
    }
}
