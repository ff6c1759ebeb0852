//! World state: a key-value map with a commitment, read through [`StateView`] and written
//! through [`Overlay`] layers that are merged only when a transaction or block succeeds.
//!
//! Keys: `a` + 21-byte address -> ICX balance (16 bytes BE); `s` + SCORE address + key -> SCORE
//! storage.
//!
//! The commitment ([`StateCommitment`]) splits keys into 4096 buckets by SHA3-256 of the key.
//! A bucket's hash is SHA3-256 over the leaf hashes of its entries in key order
//! (`leaf = SHA3-256(len(key) u32 BE || key || value)`), and the state root is the Merkle root
//! (see `nexus_proto::merkle`) of the 4096 bucket hashes. Only buckets touched by a block are
//! rehashed, and only the Merkle paths above them. Known limit: the commitment keeps one leaf hash per key in memory and a bucket is
//! rehashed whole; a sparse Merkle tree on disk is the path past tens of millions of keys.

pub use nexus_score::state::{
    balance, balance_key, decode_u128, score_key, set_balance, Overlay, StateView, Writes,
};

use nexus_proto::{hash::sha3_256, merkle, Hash32};
use std::collections::{BTreeMap, HashMap};

/// Buckets in the state commitment.
pub const BUCKETS: usize = 4096;

fn bucket_of(key: &[u8]) -> usize {
    let h = sha3_256(&[key]);
    (usize::from(h.0[0]) << 8 | usize::from(h.0[1])) % BUCKETS
}

fn leaf(key: &[u8], value: &[u8]) -> Hash32 {
    sha3_256(&[&(key.len() as u32).to_be_bytes(), key, value])
}

fn bucket_hash(b: &BTreeMap<Vec<u8>, Hash32>) -> Hash32 {
    if b.is_empty() {
        return Hash32::ZERO;
    }
    let mut buf = Vec::with_capacity(b.len() * 32);
    for h in b.values() {
        buf.extend_from_slice(&h.0);
    }
    sha3_256(&[&buf])
}

/// The commitment to the whole state.
pub struct StateCommitment {
    buckets: Vec<BTreeMap<Vec<u8>, Hash32>>,
    /// Merkle tree over the bucket hashes, updated along the paths of changed buckets.
    tree: merkle::Tree,
}

/// A new root computed from pending writes, ready to install with [`StateCommitment::apply`].
pub struct PreparedState {
    changed: HashMap<usize, (BTreeMap<Vec<u8>, Hash32>, Hash32)>,
    tree: merkle::TreeUpdate,
    /// The state root after the writes.
    pub root: Hash32,
}

impl Default for StateCommitment {
    fn default() -> Self {
        StateCommitment {
            buckets: vec![BTreeMap::new(); BUCKETS],
            tree: merkle::Tree::new(&[Hash32::ZERO; BUCKETS]),
        }
    }
}

impl StateCommitment {
    /// Adds one stored entry while loading from disk (call [`Self::finish_load`] after).
    pub fn load_entry(&mut self, key: &[u8], value: &[u8]) {
        self.buckets[bucket_of(key)].insert(key.to_vec(), leaf(key, value));
    }

    /// Computes every bucket hash and the root after loading.
    pub fn finish_load(&mut self) {
        let hashes: Vec<Hash32> = self.buckets.iter().map(bucket_hash).collect();
        self.tree = merkle::Tree::new(&hashes);
    }

    /// The current root.
    pub fn root(&self) -> Hash32 {
        self.tree.root()
    }

    /// The root the state would have after `writes`, without changing anything.
    pub fn prepare(&self, writes: &Writes) -> PreparedState {
        let mut changed: HashMap<usize, (BTreeMap<Vec<u8>, Hash32>, Hash32)> = HashMap::new();
        for (k, v) in writes {
            let i = bucket_of(k);
            let entry = changed
                .entry(i)
                .or_insert_with(|| (self.buckets[i].clone(), Hash32::ZERO));
            match v {
                Some(v) => entry.0.insert(k.clone(), leaf(k, v)),
                None => entry.0.remove(k),
            };
        }
        let mut hashes = BTreeMap::new();
        for (i, (b, h)) in changed.iter_mut() {
            *h = bucket_hash(b);
            hashes.insert(*i, *h);
        }
        let tree = self.tree.updated(&hashes);
        PreparedState {
            changed,
            root: tree.root,
            tree,
        }
    }

    /// Installs a prepared state.
    pub fn apply(&mut self, p: PreparedState) {
        for (i, (b, _)) in p.changed {
            self.buckets[i] = b;
        }
        self.tree.apply(p.tree);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_depends_on_content_not_history() {
        let mut w1 = Writes::new();
        w1.insert(b"a1".to_vec(), Some(b"x".to_vec()));
        w1.insert(b"a2".to_vec(), Some(b"y".to_vec()));
        let mut c1 = StateCommitment::default();
        let empty_root = c1.root();
        let p = c1.prepare(&w1);
        assert_eq!(c1.root(), empty_root, "prepare changes nothing");
        c1.apply(p);
        assert_ne!(c1.root(), empty_root);

        // Same content reached another way: insert a3, then delete it.
        let mut c2 = StateCommitment::default();
        let mut w2 = w1.clone();
        w2.insert(b"a3".to_vec(), Some(b"z".to_vec()));
        let p = c2.prepare(&w2);
        c2.apply(p);
        let mut w3 = Writes::new();
        w3.insert(b"a3".to_vec(), None);
        let p = c2.prepare(&w3);
        c2.apply(p);
        assert_eq!(c1.root(), c2.root());

        let mut c3 = StateCommitment::default();
        c3.load_entry(b"a1", b"x");
        c3.load_entry(b"a2", b"y");
        c3.finish_load();
        assert_eq!(c3.root(), c1.root());
    }
}
