//! A block's upserts applied to the state tree in jmt's layout and with jmt's hashes, without
//! jmt's per-node caches: the paths of the changed keys are walked once, in key-hash order, and
//! the new nodes, the nodes they replace and the leaves' values come out directly.
//!
//! jmt's own batch insert keeps every node it reads or makes in hash maps (keyed by node key,
//! hashed with SipHash), copies them into a frozen cache and then into the batch; at 10 million
//! keys that bookkeeping was half of a block's tree update. The layout rules are jmt's: an
//! internal node at every nibble of a path that leads to two or more leaves, a leaf as high as
//! it is alone, every node on a changed path written anew at the new version and the one it
//! replaces recorded stale. Deletions and empty trees are left to jmt
//! ([`crate::ledger::state_tree`] falls back to it), so this path only ever adds or replaces
//! leaves. A test checks that both give the same nodes, stale records and roots.

use jmt::storage::{LeafNode, Node, NodeKey};
use jmt::{KeyHash, ValueHash, Version};
use nexus_light_clients::state_proof::{inner_hash, PLACEHOLDER};
use std::collections::BTreeMap;

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
}

/// The node key of `path` (one nibble per byte) at `version`.
fn node_key(version: Version, path: &[u8]) -> Result<NodeKey, UpdateError> {
    // A node key's borsh form: version, nibble count, byte count, bytes (as `key_bytes`).
    let mut buf = [0u8; 20 + 32];
    if path.len() > 64 {
        return Err(UpdateError::Build(format!(
            "a path of {} nibbles",
            path.len()
        )));
    }
    let bytes = path.len().div_ceil(2);
    buf[..8].copy_from_slice(&version.to_le_bytes());
    buf[8..16].copy_from_slice(&(path.len() as u64).to_le_bytes());
    buf[16..20].copy_from_slice(&(bytes as u32).to_le_bytes());
    for (i, pair) in path.chunks(2).enumerate() {
        buf[20 + i] = pair[0] << 4 | pair.get(1).copied().unwrap_or(0);
    }
    borsh::from_slice(&buf[..20 + bytes]).map_err(|e| UpdateError::Build(e.to_string()))
}

fn nibble(kh: &KeyHash, depth: usize) -> u8 {
    let b = kh.0[depth / 2];
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
}

/// jmt's hash of an internal node: a binary Merkle tree over the 16 slots, where an empty
/// range hashes to the placeholder and a range holding a single leaf (or a single slot) to
/// that child's hash.
fn slots_hash(slots: &Slots, start: usize, width: usize) -> [u8; 32] {
    let range = &slots[start..start + width];
    let mut present = range.iter().flatten();
    let Some(first) = present.next() else {
        return PLACEHOLDER;
    };
    if width == 1 || (present.next().is_none() && first.leaves == 1) {
        return first.hash;
    }
    let half = width / 2;
    inner_hash(
        &slots_hash(slots, start, half),
        &slots_hash(slots, start + half, half),
    )
}

/// jmt's borsh form of an internal node with these slots.
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

struct Walk<'a, S: Source> {
    source: &'a S,
    version: Version,
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

    fn put_internal(&mut self, path: &[u8], slots: &Slots) -> Result<Slot, UpdateError> {
        use borsh::BorshDeserialize;
        let node = Node::try_from_slice(&internal_borsh(slots))
            .map_err(|e| UpdateError::Build(e.to_string()))?;
        let leaves = slots.iter().flatten().map(|s| s.leaves).sum();
        self.out.nodes.insert(node_key(self.version, path)?, node);
        Ok(self.slot(slots_hash(slots, 0, 16), leaves))
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
        let node = self
            .source
            .node(&key)?
            .ok_or_else(|| UpdateError::Missing(key.clone()))?;
        match node {
            Stored::Internal(mut slots) => {
                self.out.stale.push(key);
                for (i, run) in groups(kvs, path.len()) {
                    path.push(i);
                    let made = match slots[usize::from(i)] {
                        Some(c) => self.update(node_key(c.version, path)?, path, run),
                        None => self.create(path, run),
                    };
                    path.pop();
                    slots[usize::from(i)] = Some(made?);
                }
                self.put_internal(path, &slots)
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
        self.put_internal(path, &slots)
    }

    /// A new subtree at `path` holding only `kvs`.
    fn create(&mut self, path: &mut Vec<u8>, kvs: &[Upsert]) -> Result<Slot, UpdateError> {
        if let [(kh, vh, v)] = kvs {
            return self.put_leaf(path, LeafNode::new(*kh, *vh), v.clone());
        }
        let mut slots: Slots = [None; 16];
        for (i, run) in groups(kvs, path.len()) {
            path.push(i);
            let made = self.create(path, run);
            path.pop();
            slots[usize::from(i)] = Some(made?);
        }
        self.put_internal(path, &slots)
    }
}

/// Blocks of at least this many changed keys are updated on two threads, each taking the
/// root's children that hold about half of them.
const TWO_THREADS_FROM: usize = 64;

/// Applies `kvs` (sorted by key hash, no key twice, not empty) to the tree at `version - 1`,
/// making `version`.
pub fn upsert<S: Source>(
    source: &S,
    kvs: &[Upsert],
    version: Version,
) -> Result<Update, UpdateError> {
    let prev = version.checked_sub(1).ok_or(UpdateError::NoRoot(version))?;
    let mut walk = Walk {
        source,
        version,
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
    for part in [a?, b?] {
        let (mut out, made) = part;
        walk.out.nodes.append(&mut out.nodes);
        walk.out.stale.append(&mut out.stale);
        walk.out.leaf_values.append(&mut out.leaf_values);
        for (i, slot) in made {
            slots[usize::from(i)] = Some(slot);
        }
    }
    let root = walk.put_internal(&[], &slots)?;
    walk.out.root = root.hash;
    Ok(walk.out)
}
