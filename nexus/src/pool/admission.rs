//! Admission of transactions into the pool: every check a transaction must pass before it may
//! take space, cheapest first, each failure an ICON error that names what was expected.
//!
//! | check | error |
//! |---|---|
//! | params decode (shape of every field, version 0x3) | -32602 |
//! | `nid` equals the channel's | -32602 |
//! | `timestamp` within the window around the node's clock | -32602 |
//! | `dataType` is one this node executes (not deploy/deposit) | -32602 |
//! | call param keys free of `\ { } [ ] .` (see `nexus_proto::serialize::check_key`) | -32602 |
//! | `stepLimit` covers the intrinsic steps | -32602 |
//! | signature recovers to `from` | -32602 |
//! | JSON at most 512 KiB (`nexus_proto::transaction::MAX_TX_BYTES`) | -32602 |
//! | hash not pending nor committed (replay) | -32602 |
//! | balance covers `value + stepLimit * stepPrice` plus what the sender's waiting transactions may spend | -30011 (OutOfBalance) |
//! | pool not full (count, bytes, per sender) | -31001 |
//!
//! Before these checks, a transaction sent over RPC waits (up to [`ROOM_WAIT`]) while more
//! transactions wait for a block than the node takes in `mempool.backlog_ms`
//! ([`crate::pool::backlog`]); past that wait it is refused with -31001.
//!
//! Waiting transactions whose timestamp left the window are dropped from the pool (checked at
//! most once a second, on admission).

use crate::error::{code, failure, IconError};
use crate::ledger::chain::Chain;
use crate::pool::mempool::{Mempool, PoolRefusal};
use nexus_proto::transaction::MAX_TX_BYTES;
use nexus_proto::{serialize::check_key, value::format_int, Hash32, SignedTransaction, TxData};
use serde_json::Value;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// Checks transactions and puts them in the pool.
pub struct Admission {
    chain: Arc<Chain>,
    pool: Arc<Mempool>,
    window_us: u64,
    gossip: std::sync::OnceLock<tokio::sync::mpsc::UnboundedSender<Vec<u8>>>,
    last_expiry_us: AtomicU64,
    eth_check: std::sync::OnceLock<Arc<crate::consensus::eth_check::EthEndpointCheck>>,
    /// Held from a sender's balance check to its transaction's entry into the pool, so two
    /// transactions of one sender admitted at once cannot both count on the same balance
    /// (striped by sender: different senders rarely wait on each other).
    sender_locks: Vec<std::sync::Mutex<()>>,
    /// Backpressure: the delay in ms of waiting transactions past which RPC admission waits
    /// (0: never), and the fewest waiting transactions that never make it wait.
    backlog_ms: u64,
    backlog_min_txs: usize,
}

/// Longest time an RPC transaction waits for room before it is refused.
pub const ROOM_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Stripes of [`Admission`]'s sender locks.
const SENDER_LOCKS: usize = 64;

/// Microseconds since the epoch by the node's clock.
pub fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

fn check_keys(v: &Value) -> Result<(), IconError> {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                check_key(k)?;
                check_keys(v)?;
            }
            Ok(())
        }
        Value::Array(items) => items.iter().try_for_each(check_keys),
        _ => Ok(()),
    }
}

impl Admission {
    /// Admission into `pool` for `chain`, with a timestamp window of `window_ms`.
    pub fn new(chain: Arc<Chain>, pool: Arc<Mempool>, window_ms: u64) -> Self {
        Admission {
            chain,
            pool,
            window_us: window_ms.saturating_mul(1000),
            gossip: std::sync::OnceLock::new(),
            last_expiry_us: AtomicU64::new(0),
            eth_check: std::sync::OnceLock::new(),
            sender_locks: (0..SENDER_LOCKS)
                .map(|_| std::sync::Mutex::new(()))
                .collect(),
            backlog_ms: 0,
            backlog_min_txs: usize::MAX,
        }
    }

    /// Makes RPC transactions wait while more than `ms` of the node's commit rate (and more
    /// than `min_txs`) wait for a block; 0 ms never waits.
    pub fn with_backlog(mut self, ms: u64, min_txs: usize) -> Self {
        self.backlog_ms = ms;
        self.backlog_min_txs = min_txs;
        self
    }

    /// Transactions waiting for a block (not in one being decided), and how many may.
    pub fn backlog(&self) -> (usize, usize) {
        let waiting = self.pool.pending().saturating_sub(self.chain.pending_txs());
        let limit = crate::pool::backlog::limit(
            self.chain.commit_rate(),
            self.backlog_ms,
            self.backlog_min_txs,
        );
        (waiting, limit)
    }

    /// Waits until the backlog is under its limit (true if it had to wait); refuses with
    /// -31001 after [`ROOM_WAIT`].
    pub async fn wait_for_room(&self) -> Result<bool, IconError> {
        self.wait_for_room_within(ROOM_WAIT).await
    }

    async fn wait_for_room_within(&self, wait: std::time::Duration) -> Result<bool, IconError> {
        if self.backlog_ms == 0 {
            return Ok(false);
        }
        let deadline = tokio::time::Instant::now() + wait;
        let mut waited = false;
        loop {
            let departure = self.pool.departures();
            tokio::pin!(departure);
            departure.as_mut().enable();
            let (waiting, limit) = self.backlog();
            if waiting < limit {
                return Ok(waited);
            }
            if tokio::time::timeout_at(deadline, departure).await.is_err() {
                return Err(IconError::new(
                    code::POOL_OVERFLOW,
                    format!(
                        "the node is behind: {waiting} transactions wait for a block, more than the {limit} its blocks take in {} ms; no room came within {} ms, try again later",
                        self.backlog_ms,
                        wait.as_millis()
                    ),
                ));
            }
            waited = true;
        }
    }

    /// Decodes and checks a transaction without admitting it.
    pub fn check(&self, params: Value) -> Result<SignedTransaction, IconError> {
        let st = SignedTransaction::from_json(params)?;
        let tx = &st.tx;
        if tx.nid != self.chain.nid {
            return Err(IconError::invalid_params(format!(
                "nid {} does not match this network's nid {}",
                format_int(tx.nid),
                format_int(self.chain.nid)
            )));
        }
        let now = now_us();
        if tx.timestamp.abs_diff(now) > self.window_us {
            return Err(IconError::invalid_params(format!(
                "timestamp {} is outside the window of {} s around the node's clock {}",
                format_int(tx.timestamp),
                self.window_us / 1_000_000,
                format_int(now)
            )));
        }
        match &tx.data {
            TxData::Deploy { .. } | TxData::Deposit { .. } => {
                return Err(IconError::invalid_params(format!(
                    "dataType {} is not supported: Nexus runs native SCOREs installed at genesis",
                    tx.data.data_type().unwrap_or("?")
                )))
            }
            TxData::Call { params, .. } => check_keys(&Value::Object(params.clone()))?,
            TxData::None | TxData::Message(_) => {}
        }
        let intrinsic = self.chain.costs.intrinsic(&st);
        if tx.step_limit < intrinsic {
            return Err(IconError::invalid_params(format!(
                "stepLimit {} is below the {} steps this transaction needs",
                format_int(tx.step_limit),
                format_int(intrinsic)
            )));
        }
        self.pool.signatures.verify(&st)?;
        Ok(st)
    }

    /// Sends every transaction admitted from now on (by [`Admission::admit`]) to `tx`, for
    /// gossip to the other validators.
    pub fn set_gossip(&self, tx: tokio::sync::mpsc::UnboundedSender<Vec<u8>>) {
        let _ = self.gossip.set(tx);
    }

    /// Refuses relay transactions whose Ethereum headers the validator's own endpoint does not
    /// have (notary channels of Ethereum sources).
    pub fn set_eth_check(&self, check: Arc<crate::consensus::eth_check::EthEndpointCheck>) {
        let _ = self.eth_check.set(check);
    }

    /// Checks a transaction and adds it to the pool; returns its hash.
    pub fn admit(&self, params: Value) -> Result<Hash32, IconError> {
        self.admit_inner(params, true)
    }

    /// Admits a transaction gossiped by a peer (not gossiped again).
    pub fn admit_from_peer(&self, params: Value) -> Result<Hash32, IconError> {
        self.admit_inner(params, false)
    }

    /// Drops waiting transactions that left the timestamp window, at most once a second.
    fn expire(&self, now: u64) {
        let last = self.last_expiry_us.load(Ordering::Relaxed);
        if now.saturating_sub(last) < 1_000_000
            || self
                .last_expiry_us
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        let n = self.pool.expire(now.saturating_sub(self.window_us));
        if n > 0 {
            tracing::debug!(
                expired = n,
                "dropped transactions outside the timestamp window"
            );
        }
    }

    fn admit_inner(&self, params: Value, gossip: bool) -> Result<Hash32, IconError> {
        self.expire(now_us());
        let st = self.check(params)?;
        let hash = st.hash;
        let size = st.json_bytes().len();
        if size > MAX_TX_BYTES {
            return Err(IconError::invalid_params(format!(
                "transaction of {size} bytes exceeds the limit of {MAX_TX_BYTES} bytes"
            )));
        }
        let duplicate = || {
            IconError::invalid_params(format!(
                "duplicate transaction: {hash} was already received"
            ))
        };
        if self.pool.contains(&hash) || self.chain.has_transaction(&hash)? {
            return Err(duplicate());
        }
        let st = match self.eth_check.get() {
            Some(c) => {
                let st = Arc::new(st);
                c.check(std::slice::from_ref(&st))
                    .map_err(IconError::invalid_params)?;
                Arc::try_unwrap(st).unwrap_or_else(|a| (*a).clone())
            }
            None => st,
        };
        let tx = &st.tx;
        let stripe = usize::from(tx.from.to_bytes()[20]) % SENDER_LOCKS;
        let _sender = self.sender_locks[stripe]
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let need = tx
            .value
            .saturating_add(tx.step_limit.saturating_mul(self.chain.step_price));
        let have = self.chain.balance(&tx.from);
        let waiting = self.pool.pending_spend(&tx.from);
        if have < need.saturating_add(waiting) {
            return Err(IconError::score(
                failure::OUT_OF_BALANCE,
                format!(
                    "out of balance: {} holds {}, needs value + stepLimit * stepPrice = {} on top of {} that its waiting transactions may spend",
                    tx.from,
                    format_int(have),
                    format_int(need),
                    format_int(waiting)
                ),
            ));
        }
        let from = tx.from;
        let st = Arc::new(st);
        match self.pool.add(st.clone(), st.held_bytes(), need) {
            Ok(()) => {
                if let (true, Some(g)) = (gossip, self.gossip.get()) {
                    let _ = g.send(st.to_json_bytes());
                }
                Ok(hash)
            }
            Err(PoolRefusal::Duplicate) => Err(duplicate()),
            Err(PoolRefusal::Full(n)) => Err(IconError::new(
                code::POOL_OVERFLOW,
                format!("transaction pool is full ({n})"),
            )),
            Err(PoolRefusal::SenderFull(n)) => Err(IconError::new(
                code::POOL_OVERFLOW,
                format!("{from} already has {n} transactions waiting, the most one sender may"),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::chain::test_chain;
    use nexus_proto::block::VoteSet;
    use nexus_proto::{Address, KeyPair, Transaction};
    use std::time::Duration;

    fn transfer(from: &KeyPair, nonce: u128) -> Arc<SignedTransaction> {
        let t = Transaction {
            from: from.address(),
            to: Address::eoa([0xb0; 20]),
            value: 1,
            step_limit: 100_000,
            timestamp: 10,
            nid: 3,
            nonce: Some(nonce),
            data: TxData::None,
        };
        Arc::new(t.sign(from).unwrap())
    }

    struct Setup {
        _dir: tempfile::TempDir,
        chain: Arc<Chain>,
        pool: Arc<Mempool>,
        admission: Admission,
        alice: KeyPair,
    }

    /// A chain, its pool holding five transactions, and admission with a floor of five.
    fn full(backlog_ms: u64) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let alice = KeyPair::generate();
        let chain = test_chain(dir.path(), &alice, &KeyPair::generate());
        let pool = Arc::new(Mempool::new(100));
        for n in 0..5 {
            pool.add(transfer(&alice, n), 200, 0).unwrap();
        }
        let admission =
            Admission::new(chain.clone(), pool.clone(), 60_000).with_backlog(backlog_ms, 5);
        Setup {
            _dir: dir,
            chain,
            pool,
            admission,
            alice,
        }
    }

    #[tokio::test]
    async fn a_full_backlog_holds_rpc_admission_until_a_transaction_leaves() {
        let s = full(100);
        assert_eq!(s.admission.backlog(), (5, 5));
        let wait = s.admission.wait_for_room();
        tokio::pin!(wait);
        assert!(
            tokio::time::timeout(Duration::from_millis(50), wait.as_mut())
                .await
                .is_err(),
            "five wait, five may: admission waits"
        );
        s.pool.remove([&s.pool.peek(1)[0].hash]);
        let waited = tokio::time::timeout(Duration::from_secs(10), wait)
            .await
            .expect("a departure wakes the waiting admission")
            .unwrap();
        assert!(waited);
    }

    #[tokio::test]
    async fn transactions_in_blocks_being_decided_are_not_backlog() {
        let s = full(100);
        let p = s.chain.build(
            s.pool.peek(3),
            now_us(),
            s.alice.address(),
            VoteSet::default(),
        );
        assert_eq!(p.txs.len(), 3);
        s.chain.remember(&p);
        assert_eq!(s.admission.backlog(), (2, 5));
        assert!(!s.admission.wait_for_room().await.unwrap());
    }

    #[test]
    fn the_pool_counts_what_a_transaction_holds_not_its_json() {
        use crate::pool::mempool::PoolLimits;
        let dir = tempfile::tempdir().unwrap();
        let alice = KeyPair::generate();
        let chain = test_chain(dir.path(), &alice, &KeyPair::generate());
        let pool = Arc::new(Mempool::with_limits(PoolLimits {
            max_txs: 100,
            max_bytes: 64 * 1024,
            max_per_sender: 100,
        }));
        let admission = Admission::new(chain, pool.clone(), 60_000);
        let tx = |nonce: u128, data: TxData| {
            Transaction {
                from: alice.address(),
                to: Address::eoa([0xb0; 20]),
                value: 0,
                step_limit: 10_000_000,
                timestamp: now_us(),
                nid: 3,
                nonce: Some(nonce),
                data,
            }
            .sign(&alice)
            .unwrap()
        };
        // 400 one-entry objects: under 8 KB of JSON, over 250 KB once decoded.
        let mut params = serde_json::Map::new();
        params.insert(
            "a".into(),
            Value::Array(vec![serde_json::json!({"k": ""}); 400]),
        );
        let call = tx(
            1,
            TxData::Call {
                method: "m".into(),
                params,
            },
        );
        assert!(call.to_json_bytes().len() < 8 * 1024);
        assert!(call.held_bytes() > 250 * 1024);
        let e = admission
            .admit(Value::Object(call.raw.clone()))
            .unwrap_err();
        assert_eq!(e.code, code::POOL_OVERFLOW, "{}", e.message);
        assert!(e.message.contains("65536 bytes"), "{}", e.message);
        assert_eq!(pool.pending(), 0, "nothing changed");
        let plain = tx(2, TxData::None);
        assert!(plain.held_bytes() < 4 * 1024);
        admission.admit(Value::Object(plain.raw.clone())).unwrap();
        assert_eq!(pool.pending(), 1);
    }

    #[tokio::test]
    async fn zero_ms_never_waits() {
        let s = full(0);
        assert!(!s.admission.wait_for_room().await.unwrap());
    }

    #[tokio::test]
    async fn no_room_within_the_wait_is_refused_with_what_to_do() {
        let s = full(100);
        let e = s
            .admission
            .wait_for_room_within(Duration::from_millis(100))
            .await
            .unwrap_err();
        assert_eq!(e.code, code::POOL_OVERFLOW);
        assert!(
            e.message.contains("5 transactions wait") && e.message.contains("try again later"),
            "{}",
            e.message
        );
        assert_eq!(s.pool.pending(), 5, "nothing changed");
    }
}
