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
//! rehashed. Known limit: the commitment keeps one leaf hash per key in memory and a bucket is
//! rehashed whole; a sparse Merkle tree on disk is the path past tens of millions of keys.

use nexus_proto::{hash::sha3_256, merkle, Address, Hash32};
use std::collections::{BTreeMap, HashMap};

/// Buckets in the state commitment.
pub const BUCKETS: usize = 4096;

/// Read access to some version of the state.
pub trait StateView {
    /// The value at `key`, if any.
    fn get(&self, key: &[u8]) -> Option<Vec<u8>>;
}

/// Pending writes: `None` deletes.
pub type Writes = BTreeMap<Vec<u8>, Option<Vec<u8>>>;

/// Writes layered over a base view.
pub struct Overlay<'a> {
    base: &'a dyn StateView,
    writes: Writes,
}

impl<'a> Overlay<'a> {
    /// An empty layer over `base`.
    pub fn new(base: &'a dyn StateView) -> Self {
        Overlay {
            base,
            writes: Writes::new(),
        }
    }

    /// Sets a value.
    pub fn set(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.writes.insert(key, Some(value));
    }

    /// Deletes a value.
    pub fn delete(&mut self, key: Vec<u8>) {
        self.writes.insert(key, None);
    }

    /// Takes the writes out, ending the layer.
    pub fn into_writes(self) -> Writes {
        self.writes
    }

    /// Applies writes from a finished child layer.
    pub fn merge(&mut self, writes: Writes) {
        self.writes.extend(writes);
    }
}

impl StateView for Overlay<'_> {
    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        match self.writes.get(key) {
            Some(v) => v.clone(),
            None => self.base.get(key),
        }
    }
}

/// The state key of an account's ICX balance.
pub fn balance_key(addr: &Address) -> Vec<u8> {
    let mut k = Vec::with_capacity(22);
    k.push(b'a');
    k.extend_from_slice(&addr.to_bytes());
    k
}

/// The state key of a SCORE storage slot.
pub fn score_key(score: &Address, key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(22 + key.len());
    k.push(b's');
    k.extend_from_slice(&score.to_bytes());
    k.extend_from_slice(key);
    k
}

/// Decodes a stored unsigned integer (16 bytes BE; absent is zero).
pub fn decode_u128(v: Option<Vec<u8>>) -> u128 {
    v.and_then(|b| <[u8; 16]>::try_from(b.as_slice()).ok())
        .map(u128::from_be_bytes)
        .unwrap_or(0)
}

/// An account's ICX balance.
pub fn balance(view: &dyn StateView, addr: &Address) -> u128 {
    decode_u128(view.get(&balance_key(addr)))
}

/// Sets an account's ICX balance (zero deletes the entry).
pub fn set_balance(ov: &mut Overlay<'_>, addr: &Address, v: u128) {
    if v == 0 {
        ov.delete(balance_key(addr));
    } else {
        ov.set(balance_key(addr), v.to_be_bytes().to_vec());
    }
}

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
    hashes: Vec<Hash32>,
    root: Hash32,
}

/// A new root computed from pending writes, ready to install with [`StateCommitment::apply`].
pub struct PreparedState {
    changed: HashMap<usize, (BTreeMap<Vec<u8>, Hash32>, Hash32)>,
    /// The state root after the writes.
    pub root: Hash32,
}

impl Default for StateCommitment {
    fn default() -> Self {
        let mut c = StateCommitment {
            buckets: vec![BTreeMap::new(); BUCKETS],
            hashes: vec![Hash32::ZERO; BUCKETS],
            root: Hash32::ZERO,
        };
        c.root = merkle::root(&c.hashes);
        c
    }
}

impl StateCommitment {
    /// Adds one stored entry while loading from disk (call [`Self::finish_load`] after).
    pub fn load_entry(&mut self, key: &[u8], value: &[u8]) {
        self.buckets[bucket_of(key)].insert(key.to_vec(), leaf(key, value));
    }

    /// Computes every bucket hash and the root after loading.
    pub fn finish_load(&mut self) {
        for (i, b) in self.buckets.iter().enumerate() {
            self.hashes[i] = bucket_hash(b);
        }
        self.root = merkle::root(&self.hashes);
    }

    /// The current root.
    pub fn root(&self) -> Hash32 {
        self.root
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
        let mut hashes = self.hashes.clone();
        for (i, (b, h)) in changed.iter_mut() {
            *h = bucket_hash(b);
            hashes[*i] = *h;
        }
        PreparedState {
            changed,
            root: merkle::root(&hashes),
        }
    }

    /// Installs a prepared state.
    pub fn apply(&mut self, p: PreparedState) {
        for (i, (b, h)) in p.changed {
            self.buckets[i] = b;
            self.hashes[i] = h;
        }
        self.root = p.root;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Empty;
    impl StateView for Empty {
        fn get(&self, _: &[u8]) -> Option<Vec<u8>> {
            None
        }
    }

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

    #[test]
    fn overlay_reads_through_and_child_merges() {
        let base = Empty;
        let mut ov = Overlay::new(&base);
        let a = Address::eoa([1; 20]);
        set_balance(&mut ov, &a, 5);
        assert_eq!(balance(&ov, &a), 5);
        let child_writes = {
            let mut child = Overlay::new(&ov);
            set_balance(&mut child, &a, 7);
            child.into_writes()
        };
        assert_eq!(balance(&ov, &a), 5);
        ov.merge(child_writes);
        assert_eq!(balance(&ov, &a), 7);
    }
}
