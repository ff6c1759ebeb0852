//! The transaction pool: admitted transactions in arrival order, deduplicated by hash.
//!
//! A hash stays known from admission until its block is committed (`take` hands transactions
//! to the block builder but keeps their hashes), so a replay sent while its first copy is being
//! executed is still refused.

use nexus_proto::{Hash32, SignedTransaction};
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::sync::Mutex;
use tokio::sync::Notify;

/// Why the pool refused a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PoolRefusal {
    /// The hash is already pending.
    Duplicate,
    /// The pool holds `max` transactions.
    Full(usize),
}

#[derive(Default)]
struct Inner {
    queue: VecDeque<Arc<SignedTransaction>>,
    known: HashMap<Hash32, Arc<SignedTransaction>>,
}

/// The pool.
pub struct Mempool {
    inner: Mutex<Inner>,
    max: usize,
    notify: Notify,
}

impl Mempool {
    /// An empty pool holding at most `max` transactions.
    pub fn new(max: usize) -> Self {
        Mempool {
            inner: Mutex::new(Inner::default()),
            max,
            notify: Notify::new(),
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
        self.lock().known.get(hash).cloned()
    }

    /// Adds a checked transaction.
    pub fn add(&self, tx: Arc<SignedTransaction>) -> Result<(), PoolRefusal> {
        {
            let mut g = self.lock();
            if g.known.len() >= self.max {
                return Err(PoolRefusal::Full(self.max));
            }
            if g.known.contains_key(&tx.hash) {
                return Err(PoolRefusal::Duplicate);
            }
            g.known.insert(tx.hash, tx.clone());
            g.queue.push_back(tx);
        }
        self.notify.notify_one();
        Ok(())
    }

    /// Takes up to `max` transactions in arrival order; their hashes stay known until
    /// [`Mempool::forget`].
    pub fn take(&self, max: usize) -> Vec<Arc<SignedTransaction>> {
        let mut g = self.lock();
        let n = max.min(g.queue.len());
        g.queue.drain(..n).collect()
    }

    /// The first `max` waiting transactions, left in the pool (a block built on a pending
    /// parent may not be final; its transactions stay until [`Mempool::remove`]).
    pub fn peek(&self, max: usize) -> Vec<Arc<SignedTransaction>> {
        self.lock().queue.iter().take(max).cloned().collect()
    }

    /// Removes transactions that became final, wherever they were proposed.
    pub fn remove<'a>(&self, hashes: impl IntoIterator<Item = &'a Hash32>) {
        let mut g = self.lock();
        let mut gone = HashSet::new();
        for h in hashes {
            if g.known.remove(h).is_some() {
                gone.insert(*h);
            }
        }
        if !gone.is_empty() {
            g.queue.retain(|t| !gone.contains(&t.hash));
        }
    }

    /// Forgets hashes whose block was committed (or dropped).
    pub fn forget<'a>(&self, hashes: impl IntoIterator<Item = &'a Hash32>) {
        let mut g = self.lock();
        for h in hashes {
            g.known.remove(h);
        }
    }

    /// Transactions waiting (not yet handed to a block).
    pub fn pending(&self) -> usize {
        self.lock().queue.len()
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
    use nexus_proto::{Address, KeyPair, Transaction, TxData};

    fn tx(k: &KeyPair, n: u128) -> Arc<SignedTransaction> {
        let t = Transaction {
            from: k.address(),
            to: Address::eoa([1; 20]),
            value: 1,
            step_limit: 100_000,
            timestamp: 1,
            nid: 1,
            nonce: Some(n),
            data: TxData::None,
        };
        Arc::new(t.sign(k).unwrap())
    }

    #[test]
    fn dedup_survives_take_until_forget() {
        let k = KeyPair::generate();
        let p = Mempool::new(2);
        let a = tx(&k, 1);
        p.add(a.clone()).unwrap();
        assert_eq!(p.add(a.clone()), Err(PoolRefusal::Duplicate));
        let taken = p.take(10);
        assert_eq!(taken.len(), 1);
        assert_eq!(p.add(a.clone()), Err(PoolRefusal::Duplicate));
        p.add(tx(&k, 2)).unwrap();
        assert_eq!(p.add(tx(&k, 3)), Err(PoolRefusal::Full(2)));
        p.forget([&a.hash]);
        p.add(a).unwrap();
    }
}
