//! The transaction pool: admitted transactions in arrival order, deduplicated by hash, bounded
//! by count, by bytes and per sender, and expiring with the timestamp window.
//!
//! A hash stays known from admission until its block is committed (blocks are built from
//! [`Mempool::peek`], which leaves transactions in place until [`Mempool::remove`]), so a replay
//! sent while its first copy is being executed is still refused. The pool also keeps, per
//! sender, what its waiting transactions may spend at most (`value + stepLimit * stepPrice`), so
//! admission can refuse a transaction that the sender's balance covers only if the earlier ones
//! fail.

use nexus_proto::{Address, Hash32, SignedTransaction};
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::Mutex;
use tokio::sync::Notify;

/// Why the pool refused a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PoolRefusal {
    /// The hash is already pending.
    Duplicate,
    /// The pool holds its most transactions or bytes.
    Full(String),
    /// The sender has its most transactions waiting.
    SenderFull(usize),
}

/// The pool's bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolLimits {
    /// Most transactions.
    pub max_txs: usize,
    /// Most bytes of transaction JSON.
    pub max_bytes: usize,
    /// Most transactions waiting from one sender.
    pub max_per_sender: usize,
}

impl PoolLimits {
    /// Limits with only a transaction count (bytes and senders effectively unbounded).
    pub fn count(max_txs: usize) -> Self {
        PoolLimits {
            max_txs,
            max_bytes: usize::MAX,
            max_per_sender: usize::MAX,
        }
    }
}

struct Entry {
    tx: Arc<SignedTransaction>,
    bytes: usize,
    spend: u128,
}

#[derive(Default, Clone, Copy)]
struct SenderUse {
    count: usize,
    spend: u128,
}

#[derive(Default)]
struct Inner {
    /// Arrival order. Removal is lazy: an entry whose transaction is no longer in `known` (or
    /// was added again since, as another `Arc`) is skipped, popped when it reaches the front,
    /// and swept when such entries are more than half the queue; so removing a block's
    /// transactions costs their count, not the pool's size.
    queue: VecDeque<Arc<SignedTransaction>>,
    known: HashMap<Hash32, Entry>,
    senders: HashMap<Address, SenderUse>,
    bytes: usize,
}

impl Inner {
    /// Drops `hashes` (where known) from the index; their queue entries go lazily. Returns
    /// how many.
    fn drop_all(&mut self, hashes: &[Hash32]) -> usize {
        let gone = hashes.iter().filter(|h| self.drop_entry(h)).count();
        while self.queue.front().is_some_and(|t| !self.live(t)) {
            self.queue.pop_front();
        }
        if self.queue.len() > 2 * self.known.len() + 1024 {
            let known = &self.known;
            self.queue
                .retain(|t| known.get(&t.hash).is_some_and(|e| Arc::ptr_eq(&e.tx, t)));
        }
        gone
    }

    /// True when a queue entry is still waiting in the pool.
    fn live(&self, t: &Arc<SignedTransaction>) -> bool {
        self.known
            .get(&t.hash)
            .is_some_and(|e| Arc::ptr_eq(&e.tx, t))
    }

    fn drop_entry(&mut self, h: &Hash32) -> bool {
        let Some(e) = self.known.remove(h) else {
            return false;
        };
        self.bytes -= e.bytes;
        if let Some(u) = self.senders.get_mut(&e.tx.tx.from) {
            u.count -= 1;
            u.spend = u.spend.saturating_sub(e.spend);
            if u.count == 0 {
                self.senders.remove(&e.tx.tx.from);
            }
        }
        true
    }
}

/// The pool.
pub struct Mempool {
    inner: Mutex<Inner>,
    limits: PoolLimits,
    notify: Notify,
    /// Woken when transactions leave (admission waiting for room).
    left: Notify,
    /// Signatures checked on this node (by admission or with a block).
    pub signatures: crate::pool::signatures::SignatureCache,
}

impl Mempool {
    /// An empty pool holding at most `max` transactions (no byte or sender bound).
    pub fn new(max: usize) -> Self {
        Self::with_limits(PoolLimits::count(max))
    }

    /// An empty pool with these bounds.
    pub fn with_limits(limits: PoolLimits) -> Self {
        Mempool {
            inner: Mutex::new(Inner::default()),
            limits,
            notify: Notify::new(),
            left: Notify::new(),
            signatures: Default::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// True when `hash` is pending or being executed.
    pub fn contains(&self, hash: &Hash32) -> bool {
        self.lock().known.contains_key(hash)
    }

    /// The checked transaction with `hash`, if pending or being executed.
    pub fn get(&self, hash: &Hash32) -> Option<Arc<SignedTransaction>> {
        self.lock().known.get(hash).map(|e| e.tx.clone())
    }

    /// What `sender`'s waiting transactions may spend at most.
    pub fn pending_spend(&self, sender: &Address) -> u128 {
        self.lock()
            .senders
            .get(sender)
            .map(|u| u.spend)
            .unwrap_or(0)
    }

    /// Adds a checked transaction of `bytes` JSON bytes that may spend `spend` at most.
    pub fn add(
        &self,
        tx: Arc<SignedTransaction>,
        bytes: usize,
        spend: u128,
    ) -> Result<(), PoolRefusal> {
        {
            let mut g = self.lock();
            if g.known.contains_key(&tx.hash) {
                return Err(PoolRefusal::Duplicate);
            }
            if g.known.len() >= self.limits.max_txs {
                return Err(PoolRefusal::Full(format!(
                    "{} transactions",
                    self.limits.max_txs
                )));
            }
            if g.bytes.saturating_add(bytes) > self.limits.max_bytes {
                return Err(PoolRefusal::Full(format!(
                    "{} bytes",
                    self.limits.max_bytes
                )));
            }
            let from = tx.tx.from;
            let used = g.senders.get(&from).copied().unwrap_or_default();
            if used.count >= self.limits.max_per_sender {
                return Err(PoolRefusal::SenderFull(self.limits.max_per_sender));
            }
            g.senders.insert(
                from,
                SenderUse {
                    count: used.count + 1,
                    spend: used.spend.saturating_add(spend),
                },
            );
            g.bytes += bytes;
            g.known.insert(
                tx.hash,
                Entry {
                    tx: tx.clone(),
                    bytes,
                    spend,
                },
            );
            g.queue.push_back(tx);
        }
        self.notify.notify_one();
        Ok(())
    }

    /// The first `max` waiting transactions, left in the pool (a block built on a pending
    /// parent may not be final; its transactions stay until [`Mempool::remove`]).
    pub fn peek(&self, max: usize) -> Vec<Arc<SignedTransaction>> {
        let g = self.lock();
        g.queue
            .iter()
            .filter(|t| g.live(t))
            .take(max)
            .cloned()
            .collect()
    }

    /// Removes transactions that became final (wherever they were proposed) or that can no
    /// longer be included.
    pub fn remove<'a>(&self, hashes: impl IntoIterator<Item = &'a Hash32>) {
        let hashes: Vec<Hash32> = hashes.into_iter().copied().collect();
        if self.lock().drop_all(&hashes) > 0 {
            self.left.notify_waiters();
        }
    }

    /// Completes when transactions next leave ([`Mempool::remove`] or expiry dropping any)
    /// after it is first polled or enabled (`Notified::enable`), so a check made after
    /// enabling misses no departure.
    pub fn departures(&self) -> tokio::sync::futures::Notified<'_> {
        self.left.notified()
    }

    /// Drops waiting transactions whose timestamp is below `oldest_us` (outside the window);
    /// returns how many.
    pub fn expire(&self, oldest_us: u64) -> usize {
        let mut g = self.lock();
        let old: Vec<Hash32> = g
            .queue
            .iter()
            .filter(|t| t.tx.timestamp < oldest_us && g.live(t))
            .map(|t| t.hash)
            .collect();
        let n = g.drop_all(&old);
        drop(g);
        if n > 0 {
            self.left.notify_waiters();
        }
        n
    }

    /// Transactions waiting (not yet final).
    pub fn pending(&self) -> usize {
        self.lock().known.len()
    }

    /// Bytes of the waiting transactions.
    pub fn bytes(&self) -> usize {
        self.lock().bytes
    }

    /// Waits until a transaction may be waiting.
    pub async fn wait(&self) {
        if self.pending() > 0 {
            return;
        }
        self.notify.notified().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nexus_proto::{KeyPair, Transaction, TxData};

    fn tx_at(k: &KeyPair, n: u128, timestamp: u64) -> Arc<SignedTransaction> {
        let t = Transaction {
            from: k.address(),
            to: Address::eoa([1; 20]),
            value: 1,
            step_limit: 100_000,
            timestamp,
            nid: 1,
            nonce: Some(n),
            data: TxData::None,
        };
        Arc::new(t.sign(k).unwrap())
    }

    fn tx(k: &KeyPair, n: u128) -> Arc<SignedTransaction> {
        tx_at(k, n, 1)
    }

    #[test]
    fn dedup_survives_peek_until_remove() {
        let k = KeyPair::generate();
        let p = Mempool::new(2);
        let a = tx(&k, 1);
        p.add(a.clone(), 10, 0).unwrap();
        assert_eq!(p.add(a.clone(), 10, 0), Err(PoolRefusal::Duplicate));
        assert_eq!(p.peek(10).len(), 1);
        assert_eq!(p.add(a.clone(), 10, 0), Err(PoolRefusal::Duplicate));
        p.add(tx(&k, 2), 10, 0).unwrap();
        assert!(matches!(p.add(tx(&k, 3), 10, 0), Err(PoolRefusal::Full(_))));
        p.remove([&a.hash]);
        p.add(a, 10, 0).unwrap();
    }

    #[test]
    fn bytes_bound_the_pool() {
        let k = KeyPair::generate();
        let p = Mempool::with_limits(PoolLimits {
            max_txs: 100,
            max_bytes: 1000,
            max_per_sender: 100,
        });
        p.add(tx(&k, 1), 600, 0).unwrap();
        assert!(
            matches!(p.add(tx(&k, 2), 600, 0), Err(PoolRefusal::Full(m)) if m.contains("bytes"))
        );
        p.add(tx(&k, 3), 400, 0).unwrap();
        assert_eq!(p.bytes(), 1000);
    }

    #[test]
    fn one_sender_cannot_fill_the_pool_and_its_spend_is_tracked() {
        let (k, other) = (KeyPair::generate(), KeyPair::generate());
        let p = Mempool::with_limits(PoolLimits {
            max_txs: 100,
            max_bytes: usize::MAX,
            max_per_sender: 2,
        });
        let a = tx(&k, 1);
        p.add(a.clone(), 1, 70).unwrap();
        p.add(tx(&k, 2), 1, 30).unwrap();
        assert_eq!(p.pending_spend(&k.address()), 100);
        assert_eq!(p.add(tx(&k, 3), 1, 1), Err(PoolRefusal::SenderFull(2)));
        p.add(tx(&other, 1), 1, 5).unwrap();
        p.remove([&a.hash]);
        assert_eq!(p.pending_spend(&k.address()), 30);
        p.add(tx(&k, 3), 1, 1).unwrap();
    }

    #[test]
    fn old_transactions_expire() {
        let k = KeyPair::generate();
        let p = Mempool::new(10);
        let old = tx_at(&k, 1, 100);
        p.add(old.clone(), 5, 9).unwrap();
        p.add(tx_at(&k, 2, 500), 5, 1).unwrap();
        assert_eq!(p.expire(200), 1);
        assert!(!p.contains(&old.hash));
        assert_eq!(p.pending(), 1);
        assert_eq!(p.bytes(), 5);
        assert_eq!(p.pending_spend(&k.address()), 1);
    }

    #[test]
    fn removed_transactions_leave_peek_at_once_and_the_queue_eventually() {
        let k = KeyPair::generate();
        let p = Mempool::new(100_000);
        let txs: Vec<_> = (0..3000).map(|n| tx(&k, n)).collect();
        for t in &txs {
            p.add(t.clone(), 1, 0).unwrap();
        }
        // Removed from the middle: gone from peek and pending at once.
        let middle: Vec<&Hash32> = txs[1000..2000].iter().map(|t| &t.hash).collect();
        p.remove(middle);
        let seen = p.peek(5000);
        assert_eq!(seen.len(), 2000);
        assert!(seen
            .iter()
            .all(|t| !(1000..2000).contains(&(t.tx.nonce.unwrap() as usize))));
        assert_eq!(p.pending(), 2000);
        // A removed transaction added again is listed once, in its new place.
        p.remove([&txs[0].hash]);
        p.add(txs[0].clone(), 1, 0).unwrap();
        let seen = p.peek(5000);
        assert_eq!(seen.iter().filter(|t| t.hash == txs[0].hash).count(), 1);
        assert_eq!(seen.last().unwrap().hash, txs[0].hash);
        // Removed from the front: the queue shrinks with them.
        let front: Vec<&Hash32> = txs[1..1000].iter().map(|t| &t.hash).collect();
        p.remove(front);
        p.remove(txs[2000..].iter().map(|t| &t.hash));
        assert_eq!(p.peek(5000).len(), 1);
        assert!(p.lock().queue.len() <= 1 + 1024, "stale entries swept");
    }
}
