//! Four validators, each with its own RocksDB chain, mempool and LFT core, connected by an
//! in-process network and a virtual clock: transactions sent to any one validator are final
//! exactly once, with identical blocks, results and state roots everywhere, also when a
//! validator is offline for a while and when a round's leader is unreachable.

use nexus::consensus::driver::{resume_core, with_payload, Driver};
use nexus::ledger::chain::Chain;
use nexus::ledger::genesis::{Genesis, GenesisAccount, ParsedGenesis};
use nexus::ledger::storage::Storage;
use nexus::pool::admission::{now_us, Admission};
use nexus::pool::mempool::Mempool;
use nexus_lft::{Action, Config, Lft, Message, Secp256k1Crypto, Timeouts};
use nexus_proto::{Address, Hash32, KeyPair, Transaction, TxData};
use serde_json::Value;
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

const ICX: u128 = 1_000_000_000_000_000_000;

struct Validator {
    chain: Arc<Chain>,
    admission: Admission,
    core: Lft<Secp256k1Crypto>,
    driver: Driver,
    online: bool,
}

struct Net {
    dirs: Vec<tempfile::TempDir>,
    keys: Vec<KeyPair>,
    genesis: ParsedGenesis,
    vals: Vec<Validator>,
    addrs: Vec<Address>,
    msgs: VecDeque<(usize, usize, Message)>,
    timers: BTreeMap<(u64, u64), (usize, u64)>,
    now: u64,
    seq: u64,
}

/// Opens a validator's chain and resumes its consensus state from disk (or genesis).
fn open_validator(dir: &std::path::Path, key: &KeyPair, genesis: &ParsedGenesis) -> Validator {
    let storage = Storage::open(dir, &["public".to_string()]).expect("storage");
    let chain = Arc::new(
        Chain::open(
            storage.channel("public"),
            genesis,
            nexus::execution::score::genesis_scores(genesis),
            256,
        )
        .expect("chain"),
    );
    let pool = Arc::new(Mempool::new(10_000));
    let cfg = Config {
        nid: 3,
        channel: "public".into(),
        schedule: nexus::consensus::driver::schedule_of(&chain),
        timeouts: Timeouts {
            round_ms: 500,
            growth_percent: 50,
            max_ms: 4_000,
        },
    };
    let core = resume_core(&chain, key.clone(), cfg).expect("resume consensus");
    Validator {
        admission: Admission::new(chain.clone(), pool.clone(), 300_000),
        driver: Driver::new(chain.clone(), pool, 50).with_recent_payloads(0),
        chain,
        core,
        online: true,
    }
}

impl Net {
    fn new(keys: &[KeyPair], alice: &KeyPair) -> Self {
        Self::with_validators(keys, keys.len(), alice)
    }

    /// Nodes for all `keys`; the first `n` are the genesis validators, the rest readers.
    fn with_validators(keys: &[KeyPair], n: usize, alice: &KeyPair) -> Self {
        let addrs: Vec<Address> = keys.iter().map(|k| k.address()).collect();
        let genesis = Genesis {
            nid: "0x3".into(),
            channel: "public".into(),
            timestamp: "0x1".into(),
            accounts: vec![GenesisAccount {
                name: "alice".into(),
                address: alice.address().to_string(),
                balance: format!("{:#x}", 1_000 * ICX),
            }],
            validators: addrs[..n].iter().map(|a| a.to_string()).collect(),
            treasury: Address::eoa([0xee; 20]).to_string(),
            step_price: "0x2e90edd00".into(),
            tokens: vec![],
            message: String::new(),
            admin: Some(alice.address().to_string()),
            btp: None,
            synthetic_accounts: None,
            dex: None,
        }
        .parse()
        .expect("genesis");
        let dirs: Vec<tempfile::TempDir> = keys
            .iter()
            .map(|_| tempfile::tempdir().expect("tempdir"))
            .collect();
        let vals = keys
            .iter()
            .zip(&dirs)
            .map(|(k, d)| open_validator(d.path(), k, &genesis))
            .collect();
        Net {
            dirs,
            keys: keys.to_vec(),
            genesis,
            vals,
            addrs,
            msgs: VecDeque::new(),
            timers: BTreeMap::new(),
            now: 0,
            seq: 0,
        }
    }

    /// Crashes validator `i` (nothing is shut down cleanly) and starts it again from its disk.
    fn restart(&mut self, i: usize) {
        drop(self.vals.remove(i));
        let v = open_validator(self.dirs[i].path(), &self.keys[i], &self.genesis);
        self.vals.insert(i, v);
        let acts = self.vals[i].core.start();
        self.route(i, acts);
    }

    fn route(&mut self, from: usize, acts: Vec<Action>) {
        let v = &mut self.vals[from];
        let acts = v.driver.drive(&mut v.core, acts, now_us()).expect("drive");
        for a in acts {
            match a {
                Action::Broadcast(m) => {
                    for to in 0..self.vals.len() {
                        if to != from {
                            self.msgs.push_back((from, to, m.clone()));
                        }
                    }
                }
                Action::Send { to, msg } => {
                    // As the engine does: a final block's payload comes from the chain.
                    let msg = match msg {
                        Message::BlockResponse(p) => {
                            match with_payload(&self.vals[from].chain, p).expect("payload") {
                                Some(p) => Message::BlockResponse(p),
                                None => continue,
                            }
                        }
                        other => other,
                    };
                    if let Some(to) = self.addrs.iter().position(|a| *a == to) {
                        self.msgs.push_back((from, to, msg));
                    }
                }
                Action::SetTimer { round, after_ms } => {
                    self.seq += 1;
                    self.timers
                        .insert((self.now + after_ms, self.seq), (from, round));
                }
                Action::Persist(state) => {
                    self.vals[from]
                        .chain
                        .save_consensus_state(&nexus_lft::codec::encode_safety(&state))
                        .expect("persist");
                }
                Action::Keep(_) | Action::Refused(_) => {}
                other => panic!("the driver left {other:?} for the runtime"),
            }
        }
        // As the engine does: final blocks are written after the votes are out.
        let v = &mut self.vals[from];
        if v.driver.has_final() {
            let next = v.driver.commit_final(&mut v.core).expect("commit");
            self.route(from, next);
        }
    }

    fn start(&mut self) {
        for i in 0..self.vals.len() {
            let acts = self.vals[i].core.start();
            self.route(i, acts);
        }
    }

    /// Delivers messages (dropping those to or from offline validators) and fires timers until
    /// `done` holds or `max_ms` of virtual time pass.
    fn run_until(&mut self, max_ms: u64, done: impl Fn(&Net) -> bool) -> bool {
        let end = self.now + max_ms;
        loop {
            if done(self) {
                return true;
            }
            if let Some((from, to, m)) = self.msgs.pop_front() {
                if self.vals[from].online && self.vals[to].online {
                    let from_addr = self.addrs[from];
                    let acts = self.vals[to].core.on_message(from_addr, m);
                    self.route(to, acts);
                }
                continue;
            }
            let Some((&(at, seq), &(node, round))) = self.timers.iter().next() else {
                return false;
            };
            if at > end {
                return false;
            }
            self.timers.remove(&(at, seq));
            self.now = at;
            if self.vals[node].online {
                let acts = self.vals[node].core.on_timeout(round);
                self.route(node, acts);
            }
        }
    }
}

fn transfer(from: &KeyPair, to: Address, value: u128, nonce: u128) -> Value {
    let t = Transaction {
        from: from.address(),
        to,
        value,
        step_limit: 100_000,
        timestamp: now_us(),
        nid: 3,
        nonce: Some(nonce),
        data: TxData::None,
    };
    Value::Object(t.sign(from).expect("sign").raw)
}

fn all_have(net: &Net, hashes: &[Hash32]) -> bool {
    net.vals.iter().all(|v| {
        hashes
            .iter()
            .all(|h| v.chain.has_transaction(h).unwrap_or(false))
    })
}

fn check_agreement(net: &Net, hashes: &[Hash32], receivers: &[Address]) {
    let heights: Vec<u64> = net
        .vals
        .iter()
        .map(|v| v.chain.head().header.height)
        .collect();
    let h = *heights.iter().min().expect("validators");
    for height in 1..=h {
        let blocks: Vec<Hash32> = net
            .vals
            .iter()
            .map(|v| {
                v.chain
                    .block_by_height(height)
                    .expect("read")
                    .expect("block")
                    .hash()
            })
            .collect();
        assert!(
            blocks.windows(2).all(|w| w[0] == w[1]),
            "validators disagree at height {height}: {blocks:?}"
        );
    }
    // Each transaction is in exactly one block, with the same result everywhere.
    let mut count: BTreeMap<Hash32, usize> = BTreeMap::new();
    for height in 1..=h {
        for th in net.vals[0]
            .chain
            .block_by_height(height)
            .expect("read")
            .expect("block")
            .tx_hashes
        {
            *count.entry(th).or_default() += 1;
        }
    }
    for th in hashes {
        assert_eq!(
            count.get(th),
            Some(&1),
            "{th} is final {:?} times",
            count.get(th)
        );
        let r0 = net.vals[0]
            .chain
            .receipt(th)
            .expect("read")
            .expect("receipt");
        for v in &net.vals[1..] {
            assert_eq!(v.chain.receipt(th).expect("read").expect("receipt"), r0);
        }
    }
    let v0 = &net.vals[0].chain;
    let mut accounts = receivers.to_vec();
    accounts.push(v0.treasury);
    let total: u128 = accounts.iter().map(|a| v0.balance(a)).sum();
    assert!(total <= v0.total_supply);
}

#[test]
fn transactions_sent_to_any_validator_are_final_exactly_once_everywhere() {
    let keys: Vec<KeyPair> = (0..4).map(|_| KeyPair::generate()).collect();
    let alice = KeyPair::generate();
    let mut net = Net::new(&keys, &alice);
    net.start();
    let receivers: Vec<Address> = (0..5u8).map(|i| Address::eoa([i + 1; 20])).collect();

    // 40 transfers, each sent to one validator; every fifth also to a second one.
    let mut hashes = Vec::new();
    for n in 0..40u128 {
        let tx = transfer(&alice, receivers[n as usize % 5], ICX + n, n);
        let at = n as usize % 4;
        let h = net.vals[at].admission.admit(tx.clone()).expect("admit");
        if n % 5 == 0 {
            assert_eq!(
                net.vals[(at + 1) % 4]
                    .admission
                    .admit(tx)
                    .expect("admit elsewhere"),
                h
            );
        }
        hashes.push(h);
    }
    assert!(
        net.run_until(60_000, |n| all_have(n, &hashes)),
        "not all transfers became final"
    );
    check_agreement(&net, &hashes, &receivers);
    let roots: Vec<Hash32> = net.vals.iter().map(|v| v.chain.state_root()).collect();
    let heights: Vec<u64> = net
        .vals
        .iter()
        .map(|v| v.chain.head().header.height)
        .collect();
    if heights.windows(2).all(|w| w[0] == w[1]) {
        assert!(
            roots.windows(2).all(|w| w[0] == w[1]),
            "state roots differ at one height: {roots:?}"
        );
    }

    // One validator goes offline: the others keep finalizing; back online, it catches up.
    net.vals[2].online = false;
    let more: Vec<Hash32> = (40..50u128)
        .map(|n| {
            net.vals[n as usize % 2]
                .admission
                .admit(transfer(&alice, receivers[0], 1, n))
                .expect("admit")
        })
        .collect();
    assert!(
        net.run_until(60_000, |n| n
            .vals
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != 2)
            .all(|(_, v)| more
                .iter()
                .all(|h| v.chain.has_transaction(h).unwrap_or(false)))),
        "three validators did not finalize without the fourth"
    );
    net.vals[2].online = true;
    let last: Vec<Hash32> = (50..55u128)
        .map(|n| {
            net.vals[3]
                .admission
                .admit(transfer(&alice, receivers[1], 1, n))
                .expect("admit")
        })
        .collect();
    let mut everything = hashes.clone();
    everything.extend(&more);
    everything.extend(&last);
    assert!(
        net.run_until(120_000, |n| all_have(n, &everything)),
        "the returning validator did not catch up"
    );
    check_agreement(&net, &everything, &receivers);

    // A validator crashes and restarts from disk (its safety state and chain); all go on.
    net.restart(1);
    let after: Vec<Hash32> = (55..65u128)
        .map(|n| {
            net.vals[n as usize % 4]
                .admission
                .admit(transfer(&alice, receivers[2], 1, n))
                .expect("admit")
        })
        .collect();
    everything.extend(&after);
    let ok = net.run_until(120_000, |n| all_have(n, &everything));
    let state: Vec<(u64, u64, u64)> = net
        .vals
        .iter()
        .map(|v| {
            (
                v.chain.head().header.height,
                v.core.round(),
                v.core.committed().height,
            )
        })
        .collect();
    assert!(
        ok,
        "no progress after a restart: (height, round, final) per validator {state:?}"
    );
    check_agreement(&net, &everything, &receivers);
}

#[test]
fn an_admin_transaction_changes_the_validator_set_at_its_height() {
    use nexus_proto::block::{validators_hash, verify_quorum};
    let keys: Vec<KeyPair> = (0..5).map(|_| KeyPair::generate()).collect();
    let alice = KeyPair::generate();
    let mut net = Net::with_validators(&keys, 4, &alice);
    net.start();
    let old: Vec<Address> = keys[..4].iter().map(|k| k.address()).collect();
    let new: Vec<Address> = vec![
        keys[0].address(),
        keys[1].address(),
        keys[2].address(),
        keys[4].address(),
    ];

    let call = |from: &KeyPair, at: u64, nonce: u128| {
        let mut params = serde_json::Map::new();
        params.insert(
            "_validators".into(),
            Value::Array(new.iter().map(|a| Value::String(a.to_string())).collect()),
        );
        params.insert("_height".into(), Value::String(format!("{at:#x}")));
        let t = Transaction {
            from: from.address(),
            to: Address::SYSTEM,
            value: 0,
            step_limit: 5_000_000,
            timestamp: now_us(),
            nid: 3,
            nonce: Some(nonce),
            data: TxData::Call {
                method: "setValidators".into(),
                params,
            },
        };
        Value::Object(t.sign(from).expect("sign").raw)
    };
    assert!(net.run_until(10_000, |n| n.vals[0].chain.head().header.height >= 2));
    let at = net.vals[0].chain.head().header.height
        + nexus::execution::score::chain_score::CHANGE_MARGIN
        + 10;

    // Only the admin may change the set; alice is the admin.
    let mallory = &keys[4];
    let bad = net.vals[0].admission.admit(call(mallory, at, 1));
    assert!(
        bad.is_err(),
        "mallory holds no ICX, so admission refuses; the SCORE check is below"
    );
    let good = net.vals[1]
        .admission
        .admit(call(&alice, at, 2))
        .expect("admit");
    assert!(
        net.run_until(60_000, |n| all_have(n, &[good])),
        "the change was not final"
    );
    let r = net.vals[0]
        .chain
        .receipt(&good)
        .expect("read")
        .expect("receipt");
    assert_eq!(r.status, 1, "{r:?}");
    let refused = net.vals[0].chain.estimate(
        &nexus_proto::SignedTransaction::from_json(call(&keys[0], at + 5, 3)).expect("tx"),
    );
    assert!(
        refused.is_err(),
        "a validator that is not the admin may not change the set"
    );

    // Past the change, validator 0 goes offline: blocks are final only with the new member's votes.
    assert!(
        net.run_until(60_000, |n| n.vals[1].chain.head().header.height >= at + 2),
        "no progress past the change"
    );
    net.vals[0].online = false;
    let target = net.vals[1].chain.head().header.height + 5;
    assert!(
        net.run_until(120_000, |n| n.vals[1].chain.head().header.height >= target),
        "no progress with the new set"
    );

    for v in &net.vals[1..] {
        let top = v.chain.head().header.height.min(target);
        for height in 1..=top {
            let b = v
                .chain
                .block_by_height(height)
                .expect("read")
                .expect("block");
            let set = if height < at { &old } else { &new };
            let next = if height + 1 < at { &old } else { &new };
            assert_eq!(
                b.header.validators_hash,
                validators_hash(set),
                "set named at height {height}"
            );
            assert_eq!(
                b.header.next_validators_hash,
                validators_hash(next),
                "next set named at height {height}"
            );
            if let Some(votes) = v.chain.votes_for(height).expect("read") {
                verify_quorum(&votes, set, 3, "public", height, &b.hash())
                    .unwrap_or_else(|e| panic!("height {height}: {e}"));
            }
        }
    }
}

/// Peers' transaction gossip is admitted on a thread of its own: well-formed batches reach the
/// pool, a malformed one is held against the peer that sent it, and a peer whose queue is full
/// has its further batches dropped while other peers' still wait their turn.
#[test]
fn gossip_is_admitted_off_the_consensus_task() {
    use nexus::pool::gossip::{admit_batch, GossipAdmission, GOSSIP_BATCH};
    use std::sync::{mpsc, Mutex};
    let keys: Vec<KeyPair> = (0..4).map(|_| KeyPair::generate()).collect();
    let alice = KeyPair::generate();
    let net = Net::new(&keys, &alice);
    let chain = net.vals[0].chain.clone();
    let pool = Arc::new(Mempool::new(10_000));
    let admission = Arc::new(Admission::new(chain, pool.clone(), 300_000));
    let metrics = Arc::new(nexus::metrics::Metrics::default());
    let bob = Address::eoa([0xb0; 20]);

    // A batch, one object, and what is neither.
    let batch = Value::Array((0..3).map(|n| transfer(&alice, bob, 1, n)).collect());
    assert!(admit_batch(
        &admission,
        &metrics,
        "public",
        &serde_json::to_vec(&batch).unwrap()
    ));
    assert_eq!(pool.pending(), 3);
    let one = transfer(&alice, bob, 1, 3);
    assert!(admit_batch(
        &admission,
        &metrics,
        "public",
        &serde_json::to_vec(&one).unwrap()
    ));
    assert_eq!(pool.pending(), 4);
    let too_many = Value::Array(vec![one.clone(); GOSSIP_BATCH + 1]);
    for bad in [
        b"not json".to_vec(),
        b"\"0x1\"".to_vec(),
        serde_json::to_vec(&too_many).unwrap(),
    ] {
        assert!(!admit_batch(&admission, &metrics, "public", &bad));
    }
    assert_eq!(pool.pending(), 4, "refused batches change nothing");

    // The thread: the first malformed batch's penalty blocks it until released, so queues
    // fill: a peer's third batch is dropped (two wait per peer), another peer's still waits.
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let release_rx = Mutex::new(release_rx);
    let penalized = Arc::new(Mutex::new(Vec::new()));
    let seen = penalized.clone();
    let admitted = Arc::new(tokio::sync::Notify::new());
    let mut g = GossipAdmission::spawn(
        admission,
        metrics,
        "public".into(),
        2,
        move |peer| {
            seen.lock().unwrap().push(peer);
            let _ = release_rx.lock().unwrap().recv();
        },
        admitted.clone(),
    )
    .expect("spawn");
    let (p, q, r) = (
        libp2p::PeerId::random(),
        libp2p::PeerId::random(),
        libp2p::PeerId::random(),
    );
    assert!(g.offer(b"[1".to_vec(), Some(p)));
    let start = std::time::Instant::now();
    while penalized.lock().unwrap().is_empty() {
        assert!(
            start.elapsed().as_secs() < 10,
            "the malformed batch was not penalized"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    assert_eq!(*penalized.lock().unwrap(), vec![p]);
    let one =
        |n: u128| serde_json::to_vec(&Value::Array(vec![transfer(&alice, bob, 1, n)])).unwrap();
    assert!(g.offer(one(4), Some(q)));
    assert!(g.offer(one(5), Some(q)));
    assert!(!g.offer(one(6), Some(q)), "a peer's full queue drops");
    assert!(g.offer(one(7), Some(r)), "another peer's batch still waits");
    assert_eq!(g.dropped(), 1);
    release_tx.send(()).unwrap();
    let start = std::time::Instant::now();
    while pool.pending() < 7 {
        assert!(
            start.elapsed().as_secs() < 10,
            "the queued batches were not admitted"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    std::thread::sleep(std::time::Duration::from_millis(50));
    assert_eq!(pool.pending(), 7, "the dropped batch never arrives");
}
