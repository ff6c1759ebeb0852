//! A block's upserts applied to the state tree in jmt's layout and with jmt's hashes, without
//! jmt's per-node caches: the paths of the changed keys are walked once, in key-hash order, and
//! the new nodes, the nodes they replace and the leaves' values come out directly.
//!
//! jmt's own batch insert keeps every node it reads or makes in hash maps (keyed by node key,
//! hashed with SipHash), copies them into a frozen cache and then into the batch, and rehashes
//! all 15 ranges of a 16-way node when one child changed; on a stored 10M-key tree this walk
//! took a fifth less CPU per key on one thread. Nodes near the root keep their range hashes
//! ([`Ranges`]), and large blocks are split between two threads at the root.
//!
//! The layout rules are jmt's: an internal node at every nibble of a path that leads to two or
//! more leaves, a leaf as high as it is alone, every node on a changed path written anew at
//! the new version and the one it replaces recorded stale. Deletions and empty trees are left to jmt
//! ([`crate::ledger::state_tree`] falls back to it), so this path only ever adds or replaces
//! leaves. A test checks that both give the same nodes, stale records and roots.

use jmt::storage::{LeafNode, Node, NodeKey};
use jmt::{KeyHash, ValueHash, Version};
use nexus_light_clients::state_proof::{inner_hash, PLACEHOLDER};
use std::collections::BTreeMap;
use std::sync::Arc;

/// A changed key: its hash, its value's hash and its value.
pub type Upsert = (KeyHash, ValueHash, Vec<u8>);

/// What an update writes and replaces.
#[derive(Debug, Default)]
pub struct Update {
    /// The root hash after the update.
    pub root: [u8; 32],
    /// New nodes by node key.
    pub nodes: BTreeMap<NodeKey, Node>,
    /// Nodes the update replaced.
    pub stale: Vec<NodeKey>,
    /// The value of every leaf among `nodes`.
    pub leaf_values: Vec<(KeyHash, Vec<u8>)>,
    /// The range hashes of the new internal nodes near the root (behind an `Arc`: 514 bytes
    /// each, shared with the caches that keep them rather than copied and moved).
    pub ranges: Vec<(NodeKey, Arc<Ranges>)>,
}

/// Why the update did not apply (the caller then lets jmt do it).
#[derive(Debug, thiserror::Error)]
pub enum UpdateError {
    /// The tree has no root at the previous version, or its root is empty.
    #[error("the tree has no root to update at version {0}")]
    NoRoot(Version),
    /// A node that a parent names is not there.
    #[error("the tree node {0:?} is missing")]
    Missing(NodeKey),
    /// A leaf moved by a new neighbour has no known value.
    #[error("the moved leaf {0:?} has no value")]
    NoValue(KeyHash),
    /// Reading a node failed.
    #[error("reading the tree: {0}")]
    Read(String),
    /// A node built here did not decode as jmt's.
    #[error("a new internal node does not decode: {0}")]
    Build(String),
}

/// Reads nodes and the values of leaves already read.
pub trait Source: Sync {
    /// The node stored under `key`.
    fn node(&self, key: &NodeKey) -> Result<Option<Stored>, UpdateError>;
    /// The value of a leaf this source has returned.
    fn leaf_value(&self, kh: &KeyHash) -> Option<Vec<u8>>;
    /// The range hashes of the internal node under `key`, when known.
    fn ranges(&self, _key: &NodeKey) -> Option<Ranges> {
        None
    }
}

/// The node key of `path` (one nibble per byte) at `version`.
fn node_key(version: Version, path: &[u8]) -> Result<NodeKey, UpdateError> {
    if path.len() > 64 {
        return Err(UpdateError::Build(format!(
            "a path of {} nibbles",
            path.len()
        )));
    }
    let (buf, len) = crate::ledger::tree_warm::key_buf(version, path);
    borsh::from_slice(&buf[..len]).map_err(|e| UpdateError::Build(e.to_string()))
}

/// The nibble of `kh` at `depth` (below 64: two distinct key hashes differ above it, and
/// [`Walk`] refuses deeper paths).
fn nibble(kh: &KeyHash, depth: usize) -> u8 {
    let b = kh.0[depth.min(63) / 2];
    if depth.is_multiple_of(2) {
        b >> 4
    } else {
        b & 0x0f
    }
}

/// Splits `kvs` (sorted by key hash) into runs that share the nibble at `depth`.
fn groups(kvs: &[Upsert], depth: usize) -> impl Iterator<Item = (u8, &[Upsert])> {
    let mut rest = kvs;
    std::iter::from_fn(move || {
        let first = rest.first()?;
        let n = nibble(&first.0, depth);
        let len = rest
            .iter()
            .position(|kv| nibble(&kv.0, depth) != n)
            .unwrap_or(rest.len());
        let (run, tail) = rest.split_at(len);
        rest = tail;
        Some((n, run))
    })
}

/// A child of an internal node: its hash, version and leaf count (1: a leaf).
#[derive(Clone, Copy)]
pub struct Slot {
    hash: [u8; 32],
    version: Version,
    leaves: u64,
}

/// An internal node's children by nibble.
pub type Slots = [Option<Slot>; 16];

/// A stored node as the update reads it.
// Made once per node read and consumed there: boxing the slots would cost an allocation each.
#[allow(clippy::large_enum_variant)]
pub enum Stored {
    /// An internal node's children.
    Internal(Slots),
    /// A leaf.
    Leaf(LeafNode),
    /// The root of an empty tree.
    Null,
}

impl Stored {
    /// The parts of `node` the update reads.
    pub fn of(node: &Node) -> Stored {
        match node {
            Node::Internal(n) => {
                let mut slots: Slots = [None; 16];
                for (i, c) in n.children_sorted() {
                    slots[usize::from(u8::from(i))] = Some(Slot {
                        hash: c.hash,
                        version: c.version,
                        leaves: c.leaf_count() as u64,
                    });
                }
                Stored::Internal(slots)
            }
            Node::Leaf(l) => Stored::Leaf(l.clone()),
            Node::Null => Stored::Null,
        }
    }

    /// An internal node with `children`, as read from its stored form.
    pub fn internal(children: &super::tree_codec::Children) -> Stored {
        let mut slots: Slots = [None; 16];
        for (slot, child) in slots.iter_mut().zip(children) {
            *slot = child.map(|(hash, version, leaves)| Slot {
                hash,
                version,
                leaves,
            });
        }
        Stored::Internal(slots)
    }
}

/// The hashes an internal node's hash is made of: jmt hashes the 16 slots as a binary Merkle
/// tree, where a range of slots with no child hashes to the placeholder and a range holding a
/// single leaf (or a single slot) to that child's hash. Kept for the nodes near the root, so an
/// update that changes one child of a full node hashes the 4 ranges above it, not all 15.
///
/// Ranges are numbered as a heap: 1 is all 16 slots, `2i` and `2i + 1` the halves of `i`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ranges {
    hashes: [[u8; 32]; 16],
    /// Which entries of `hashes` hold their range's hash.
    valid: u16,
}

/// The first slot and the width of range `idx`.
fn range_of(idx: usize) -> (usize, usize) {
    let level = (usize::BITS - 1 - idx.leading_zeros()) as usize;
    let width = 16 >> level;
    ((idx - (1 << level)) * width, width)
}

impl Ranges {
    /// None known.
    pub fn empty() -> Self {
        Ranges {
            hashes: [[0; 32]; 16],
            valid: 0,
        }
    }

    /// The hash of a node with `slots`, where the slots in `changed` (a bit per slot) may
    /// differ from the ones these ranges were computed from; the ranges become the node's.
    pub fn hash(&mut self, slots: &Slots, changed: u16) -> [u8; 32] {
        for idx in 1..16 {
            let (start, width) = range_of(idx);
            let mask = (((1u32 << width) - 1) << start) as u16;
            if changed & mask != 0 {
                self.valid &= !(1 << idx);
            }
        }
        self.range(slots, 1)
    }

    fn range(&mut self, slots: &Slots, idx: usize) -> [u8; 32] {
        let (start, width) = range_of(idx);
        if width == 1 {
            return slots[start].map_or(PLACEHOLDER, |s| s.hash);
        }
        if self.valid & (1 << idx) != 0 {
            return self.hashes[idx];
        }
        let mut present = slots[start..start + width].iter().flatten();
        let h = match (present.next(), present.next()) {
            (None, _) => PLACEHOLDER,
            (Some(only), None) if only.leaves == 1 => only.hash,
            _ => {
                let left = self.range(slots, 2 * idx);
                let right = self.range(slots, 2 * idx + 1);
                inner_hash(&left, &right)
            }
        };
        self.hashes[idx] = h;
        self.valid |= 1 << idx;
        h
    }
}

/// jmt's borsh form of an internal node with these slots (written here rather than through
/// `tree_codec`'s compact form: reading that back costs a second pass and allocation per node,
/// and in the timing test took the walk's CPU per key from under jmt's to over it, 34 against 25).
fn internal_borsh(slots: &Slots) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + 16 * 50 + 16);
    out.push(1);
    let (mut count, mut total) = (0u64, 0u64);
    for s in slots {
        let Some(s) = s else {
            out.push(0);
            continue;
        };
        out.push(1);
        out.extend_from_slice(&s.hash);
        out.extend_from_slice(&s.version.to_le_bytes());
        if s.leaves == 1 {
            out.push(0);
        } else {
            out.push(1);
            out.extend_from_slice(&s.leaves.to_le_bytes());
        }
        count += 1;
        total += s.leaves;
    }
    out.extend_from_slice(&count.to_le_bytes());
    out.extend_from_slice(&total.to_le_bytes());
    out
}

/// Splitting keys below 64 nibbles means two of them have the same hash (the same key twice).
fn deep_enough(path: &[u8]) -> Result<(), UpdateError> {
    if path.len() >= 64 {
        return Err(UpdateError::Build(format!(
            "keys still share {} nibbles",
            path.len()
        )));
    }
    Ok(())
}

struct Walk<'a, S: Source> {
    source: &'a S,
    version: Version,
    /// New internal nodes this near the root (in nibbles) keep their range hashes.
    keep: usize,
    out: Update,
}

impl<S: Source> Walk<'_, S> {
    fn put_leaf(
        &mut self,
        path: &[u8],
        leaf: LeafNode,
        value: Vec<u8>,
    ) -> Result<Slot, UpdateError> {
        let kh = leaf.key_hash();
        let hash = leaf.hash::<super::state_tree::TreeHasher>();
        self.out
            .nodes
            .insert(node_key(self.version, path)?, Node::Leaf(leaf));
        self.out.leaf_values.push((kh, value));
        Ok(self.slot(hash, 1))
    }

    /// A new internal node at `path`: `ranges` are those of the node it replaces, if known,
    /// and `changed` the slots that differ from it.
    fn put_internal(
        &mut self,
        path: &[u8],
        slots: &Slots,
        mut ranges: Ranges,
        changed: u16,
    ) -> Result<Slot, UpdateError> {
        use borsh::BorshDeserialize;
        let node = Node::try_from_slice(&internal_borsh(slots))
            .map_err(|e| UpdateError::Build(e.to_string()))?;
        let leaves = slots.iter().flatten().map(|s| s.leaves).sum();
        let hash = ranges.hash(slots, changed);
        let key = node_key(self.version, path)?;
        if path.len() <= self.keep {
            self.out.ranges.push((key.clone(), Arc::new(ranges)));
        }
        self.out.nodes.insert(key, node);
        Ok(self.slot(hash, leaves))
    }

    fn slot(&self, hash: [u8; 32], leaves: u64) -> Slot {
        Slot {
            hash,
            version: self.version,
            leaves,
        }
    }

    /// Applies `kvs` to the stored node `key` at `path`.
    fn update(
        &mut self,
        key: NodeKey,
        path: &mut Vec<u8>,
        kvs: &[Upsert],
    ) -> Result<Slot, UpdateError> {
        deep_enough(path)?;
        let node = self
            .source
            .node(&key)?
            .ok_or_else(|| UpdateError::Missing(key.clone()))?;
        match node {
            Stored::Internal(mut slots) => {
                let ranges = self.source.ranges(&key).unwrap_or_else(Ranges::empty);
                self.out.stale.push(key);
                let mut changed = 0u16;
                for (i, run) in groups(kvs, path.len()) {
                    path.push(i);
                    let made = match slots[usize::from(i)] {
                        Some(c) => self.update(node_key(c.version, path)?, path, run),
                        None => self.create(path, run),
                    };
                    path.pop();
                    slots[usize::from(i)] = Some(made?);
                    changed |= 1 << i;
                }
                self.put_internal(path, &slots, ranges, changed)
            }
            Stored::Leaf(l) => {
                self.out.stale.push(key);
                self.beside_leaf(path, l, kvs)
            }
            Stored::Null => Err(UpdateError::NoRoot(self.version.saturating_sub(1))),
        }
    }

    /// A new subtree at `path` holding `kvs` and the existing leaf `leaf`, which was there.
    fn beside_leaf(
        &mut self,
        path: &mut Vec<u8>,
        leaf: LeafNode,
        kvs: &[Upsert],
    ) -> Result<Slot, UpdateError> {
        deep_enough(path)?;
        let existing = leaf.key_hash();
        if let [(kh, vh, v)] = kvs {
            if *kh == existing {
                return self.put_leaf(path, LeafNode::new(*kh, *vh), v.clone());
            }
        }
        let bucket = nibble(&existing, path.len());
        let mut slots: Slots = [None; 16];
        let mut alone = true;
        for (i, run) in groups(kvs, path.len()) {
            path.push(i);
            let made = if i == bucket {
                alone = false;
                self.beside_leaf(path, leaf.clone(), run)
            } else {
                self.create(path, run)
            };
            path.pop();
            slots[usize::from(i)] = Some(made?);
        }
        if alone {
            // The existing leaf moves one level down, unchanged, under a new node key.
            let value = self
                .source
                .leaf_value(&existing)
                .ok_or(UpdateError::NoValue(existing))?;
            path.push(bucket);
            let made = self.put_leaf(path, leaf, value);
            path.pop();
            slots[usize::from(bucket)] = Some(made?);
        }
        self.put_internal(path, &slots, Ranges::empty(), u16::MAX)
    }

    /// A new subtree at `path` holding only `kvs`.
    fn create(&mut self, path: &mut Vec<u8>, kvs: &[Upsert]) -> Result<Slot, UpdateError> {
        if let [(kh, vh, v)] = kvs {
            return self.put_leaf(path, LeafNode::new(*kh, *vh), v.clone());
        }
        deep_enough(path)?;
        let mut slots: Slots = [None; 16];
        for (i, run) in groups(kvs, path.len()) {
            path.push(i);
            let made = self.create(path, run);
            path.pop();
            slots[usize::from(i)] = Some(made?);
        }
        self.put_internal(path, &slots, Ranges::empty(), u16::MAX)
    }
}

/// Blocks of at least this many changed keys are updated on two threads, each taking the
/// root's children that hold about half of them.
const TWO_THREADS_FROM: usize = 64;

/// Applies `kvs` (sorted by key hash, no key twice, not empty) to the tree at `version - 1`,
/// making `version`; new internal nodes up to `keep` nibbles deep come with their range hashes.
pub fn upsert<S: Source>(
    source: &S,
    kvs: &[Upsert],
    version: Version,
    keep: usize,
) -> Result<Update, UpdateError> {
    let prev = version.checked_sub(1).ok_or(UpdateError::NoRoot(version))?;
    let mut walk = Walk {
        source,
        version,
        keep,
        out: Update::default(),
    };
    let root_key = node_key(prev, &[])?;
    let mut slots = match source.node(&root_key)? {
        Some(Stored::Internal(slots)) if kvs.len() >= TWO_THREADS_FROM => slots,
        _ => {
            let root = walk.update(root_key, &mut Vec::new(), kvs)?;
            walk.out.root = root.hash;
            return Ok(walk.out);
        }
    };
    let ranges = source.ranges(&root_key).unwrap_or_else(Ranges::empty);
    walk.out.stale.push(root_key);
    // The root's children split where about half of the keys lie on each side.
    let runs: Vec<(u8, &[Upsert])> = groups(kvs, 0).collect();
    let mut seen = 0;
    let cut = runs
        .iter()
        .position(|(_, run)| {
            seen += run.len();
            seen * 2 >= kvs.len()
        })
        .map_or(runs.len(), |i| i + 1);
    let (first, second) = runs.split_at(cut);
    let side = |runs: &[(u8, &[Upsert])]| -> Result<(Update, Vec<(u8, Slot)>), UpdateError> {
        let mut w = Walk {
            source,
            version,
            keep,
            out: Update::default(),
        };
        let mut made = Vec::with_capacity(runs.len());
        for (i, run) in runs {
            let mut path = vec![*i];
            let slot = match slots[usize::from(*i)] {
                Some(c) => w.update(node_key(c.version, &path)?, &mut path, run)?,
                None => w.create(&mut path, run)?,
            };
            made.push((*i, slot));
        }
        Ok((w.out, made))
    };
    let (a, b) = std::thread::scope(|s| {
        // Without a second thread (the system refuses one), both halves run here.
        match std::thread::Builder::new().spawn_scoped(s, || side(second)) {
            Ok(other) => {
                let here = side(first);
                let there = other
                    .join()
                    .unwrap_or_else(|_| Err(UpdateError::Read("a tree thread panicked".into())));
                (here, there)
            }
            Err(_) => (side(first), side(second)),
        }
    });
    let mut changed = 0u16;
    for part in [a?, b?] {
        let (mut out, made) = part;
        walk.out.nodes.append(&mut out.nodes);
        walk.out.stale.append(&mut out.stale);
        walk.out.leaf_values.append(&mut out.leaf_values);
        walk.out.ranges.append(&mut out.ranges);
        for (i, slot) in made {
            slots[usize::from(i)] = Some(slot);
            changed |= 1 << i;
        }
    }
    let root = walk.put_internal(&[], &slots, ranges, changed)?;
    walk.out.root = root.hash;
    Ok(walk.out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// jmt's rule written plainly, as the reference.
    fn plain_hash(slots: &Slots, start: usize, width: usize) -> [u8; 32] {
        let mut present = slots[start..start + width].iter().flatten();
        let Some(first) = present.next() else {
            return PLACEHOLDER;
        };
        if width == 1 || (present.next().is_none() && first.leaves == 1) {
            return first.hash;
        }
        let half = width / 2;
        inner_hash(
            &plain_hash(slots, start, half),
            &plain_hash(slots, start + half, half),
        )
    }

    fn random_slot(rng: &mut impl Rng) -> Option<Slot> {
        rng.gen_bool(0.6).then(|| Slot {
            hash: rng.gen(),
            version: 1,
            leaves: if rng.gen_bool(0.5) {
                1
            } else {
                rng.gen_range(2..100)
            },
        })
    }

    #[test]
    fn range_hashes_reused_across_changes_give_the_plain_hash() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        for _ in 0..2000 {
            let mut slots: Slots = [None; 16];
            for s in slots.iter_mut() {
                *s = random_slot(&mut rng);
            }
            let mut ranges = Ranges::empty();
            assert_eq!(ranges.hash(&slots, u16::MAX), plain_hash(&slots, 0, 16));
            // A few rounds of changes, each naming only the slots it changed.
            for _ in 0..4 {
                let mut changed = 0u16;
                for _ in 0..rng.gen_range(1..4) {
                    let i = rng.gen_range(0..16);
                    slots[i] = random_slot(&mut rng);
                    changed |= 1 << i;
                }
                assert_eq!(ranges.hash(&slots, changed), plain_hash(&slots, 0, 16));
            }
        }
    }

    /// A tree of one leaf at version 0.
    struct OneLeaf(LeafNode);

    impl Source for OneLeaf {
        fn node(&self, key: &NodeKey) -> Result<Option<Stored>, UpdateError> {
            let root = node_key(0, &[])?;
            Ok((*key == root).then(|| Stored::Leaf(self.0.clone())))
        }

        fn leaf_value(&self, _kh: &KeyHash) -> Option<Vec<u8>> {
            Some(b"old".to_vec())
        }
    }

    fn upsert_of(key: &[u8], value: &[u8]) -> Upsert {
        (
            KeyHash::with::<crate::ledger::state_tree::TreeHasher>(key),
            ValueHash::with::<crate::ledger::state_tree::TreeHasher>(value),
            value.to_vec(),
        )
    }

    #[test]
    fn the_same_key_twice_is_refused_not_split_forever() {
        let leaf = upsert_of(b"a", b"old");
        let tree = OneLeaf(LeafNode::new(leaf.0, leaf.1));
        let twice = vec![upsert_of(b"b", b"1"), upsert_of(b"b", b"2")];
        assert!(matches!(
            upsert(&tree, &twice, 1, 4),
            Err(UpdateError::Build(_))
        ));
        // Two different keys beside the leaf make a tree of three leaves.
        let mut two = vec![upsert_of(b"b", b"1"), upsert_of(b"c", b"2")];
        two.sort_by_key(|kv| kv.0);
        let u = upsert(&tree, &two, 1, 4).unwrap();
        assert_eq!(u.leaf_values.len(), 3, "two new leaves and the moved one");
        assert_eq!(u.stale, vec![node_key(0, &[]).unwrap()]);
    }

    #[test]
    fn an_empty_tree_is_left_to_jmt() {
        struct Empty;
        impl Source for Empty {
            fn node(&self, _key: &NodeKey) -> Result<Option<Stored>, UpdateError> {
                Ok(Some(Stored::Null))
            }
            fn leaf_value(&self, _kh: &KeyHash) -> Option<Vec<u8>> {
                None
            }
        }
        let kvs = vec![upsert_of(b"a", b"1")];
        assert!(matches!(
            upsert(&Empty, &kvs, 1, 4),
            Err(UpdateError::NoRoot(0))
        ));
        assert!(matches!(
            upsert(&Empty, &kvs, 0, 4),
            Err(UpdateError::NoRoot(0))
        ));
    }

    #[test]
    fn a_change_not_named_is_not_seen() {
        // The reuse is real: a slot changed without saying so keeps its old range hashes.
        let mut slots: Slots = [None; 16];
        for (i, s) in slots.iter_mut().enumerate() {
            *s = Some(Slot {
                hash: [i as u8; 32],
                version: 1,
                leaves: 2,
            });
        }
        let mut ranges = Ranges::empty();
        let before = ranges.hash(&slots, u16::MAX);
        slots[3] = Some(Slot {
            hash: [99; 32],
            version: 2,
            leaves: 2,
        });
        assert_eq!(ranges.clone().hash(&slots, 0), before);
        assert_ne!(ranges.hash(&slots, 1 << 3), before);
    }
}
