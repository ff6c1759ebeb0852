//! The authenticated state tree: a Jellyfish Merkle tree (the `jmt` crate) kept in RocksDB
//! beside the flat state, one tree version per block, old versions pruned behind a window.
//!
//! Its hash is SHA-256, as in jmt's own `Sha256Jmt` and the ICS-23 proof specs IBC light clients
//! check (transaction and block hashes stay SHA3-256): hashing is a third of the tree's cost
//! per block, and SHA-256 runs on the CPU's SHA extensions where SHA3 has none.
//!
//! Execution reads the flat state (one get per key); the tree is touched only to commit a
//! block's writes (the paths of the keys it changed) and to answer proofs. Nothing in memory or
//! at start grows without bound with the number of keys: the levels kept decoded (at most
//! 69,905 nodes) are loaded when the chain opens.
//!
//! Tree version `v` holds the state after block `v - base`, where `base` is the number of extra
//! versions genesis used (a genesis with millions of accounts is inserted in chunks).
//! A leaf is stored with its value (one entry per changed key, where jmt's own layout adds a
//! second, versioned value entry); a proof's value is the one stored in the leaf it reaches.
//! Per version, `TreeStale` records the nodes that version replaced; once a version leaves the
//! window, those nodes (and with them the values they held) are deleted.
//!
//! Folders written before leaves held their values keep them in `TreeValues` (key hash and
//! version): such a leaf is read with the value found there, and is written in the new form
//! when an update moves or replaces it; stale records of that time also name the keys whose
//! older values pruning deletes.

use crate::error::NodeError;
use crate::ledger::state::Writes;
use crate::ledger::storage::{Batch, ChannelStore, Kind};
use crate::ledger::tree_delta::{self, Chain};
use crate::ledger::{tree_codec, tree_update, tree_warm};
use jmt::storage::{
    LeafNode, NibblePath, Node, NodeBatch, NodeKey, StaleNodeIndex, TreeReader, TreeUpdateBatch,
};
use jmt::{JellyfishMerkleTree, KeyHash, OwnedValue, Version};
use nexus_proto::Hash32;
use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

/// The tree's hash.
pub type TreeHasher = sha2::Sha256;

/// jmt's proof of a key's value (or absence) against a state root.
type TreeProof = jmt::proof::SparseMerkleProof<TreeHasher>;

pub use nexus_light_clients::StateProof;

/// A state entry's value (absent: `None`) with its proof.
pub type ProvenValue = (Option<Vec<u8>>, StateProof);

/// A stale record: node keys (encoded) and key hashes.
type Stale<'a> = (Vec<&'a [u8]>, Vec<[u8; 32]>);

/// The same proof in the shape light clients check ([`nexus_light_clients::state_proof`]):
/// each sibling as its hash.
fn to_light(p: &TreeProof) -> Result<StateProof, NodeError> {
    use nexus_light_clients::state_proof::{inner_hash, leaf_hash, Leaf, PLACEHOLDER};
    let v = serde_json::to_value(p).map_err(tree_error)?;
    let bytes32 = |v: &serde_json::Value| -> Result<[u8; 32], NodeError> {
        let list: Vec<u8> = serde_json::from_value(v.clone()).map_err(tree_error)?;
        list.try_into()
            .map_err(|_| tree_error("a proof hash is not 32 bytes"))
    };
    let leaf_of = |l: &serde_json::Value| -> Result<Leaf, NodeError> {
        Ok(Leaf {
            key_hash: bytes32(&l["key_hash"])?,
            value_hash: bytes32(&l["value_hash"])?,
        })
    };
    let leaf = match &v["leaf"] {
        serde_json::Value::Null => None,
        l => Some(leaf_of(l)?),
    };
    let mut siblings = Vec::new();
    for s in v["siblings"].as_array().into_iter().flatten() {
        let h = if let Some(n) = s.get("Internal") {
            inner_hash(&bytes32(&n["left_child"])?, &bytes32(&n["right_child"])?)
        } else if let Some(l) = s.get("Leaf") {
            leaf_hash(&leaf_of(l)?)
        } else {
            PLACEHOLDER
        };
        siblings.push(h);
    }
    Ok(StateProof { leaf, siblings })
}

/// Fewest block versions a node keeps: a proposal is prepared on the head while the next
/// commit prunes, so the versions just behind the head must survive a commit.
pub const MIN_HISTORY: u64 = 16;

/// Nodes this close to the root (in nibbles) are kept decoded in memory: every block reads
/// them. Depth 4 is at most 69,905 nodes, some 70 MB at full width.
const CACHED_DEPTH: usize = 4;

/// True for the nodes [`CACHED_DEPTH`] keeps in memory (the only ones either cache holds).
fn kept_in_memory(k: &NodeKey) -> bool {
    k.nibble_path().num_nibbles() <= CACHED_DEPTH
}

/// True for the paths whose internal nodes may be stored as deltas of an earlier full copy
/// ([`tree_delta`]): those below the root within [`CACHED_DEPTH`], whose previous copy the
/// cache holds when a block replaces them.
fn chained(k: &NodeKey) -> bool {
    (1..=CACHED_DEPTH).contains(&k.nibble_path().num_nibbles())
}

/// The chain of each internal node near the root that the head's tree holds, by node key.
type Chains = Mutex<tree_warm::NodeMap<Chain>>;

/// Chains an update changes: the node keys it replaced and the chains of the ones it wrote.
type ChainChange = (Version, Vec<NodeKey>, Vec<(NodeKey, Chain)>);

/// Entries past which the cache is emptied and refilled (old versions read for proofs would
/// otherwise accumulate).
const CACHE_LIMIT: usize = 150_000;

/// Stale versions pruned per commit at most (a node that was stopped catches up gradually).
const PRUNE_PER_COMMIT: usize = 4;

/// The hash a state key is stored under in the tree.
pub fn key_hash(key: &[u8]) -> KeyHash {
    KeyHash::with::<TreeHasher>(key)
}

fn tree_error(e: impl std::fmt::Display) -> NodeError {
    NodeError::Corrupt {
        what: "state tree",
        reason: e.to_string(),
    }
}

fn value_key(kh: &KeyHash, version: Version) -> [u8; 40] {
    let mut k = [0u8; 40];
    k[..32].copy_from_slice(&kh.0);
    k[32..].copy_from_slice(&version.to_be_bytes());
    k
}

/// The committed nodes near the root, by node key (a node key's content never changes), each
/// leaf with its value.
type NodeCache = RwLock<tree_warm::Nodes>;

/// The range hashes of committed internal nodes near the root, by node key.
type RangeCache = RwLock<tree_warm::NodeMap<Arc<tree_update::Ranges>>>;

/// Marks the value that follows a leaf in its stored entry.
const LEAF_VALUE: u8 = 1;

/// The hash of a leaf's value, as jmt computes it.
pub(crate) fn value_hash(value: &[u8]) -> [u8; 32] {
    jmt::ValueHash::with::<TreeHasher>(value).0
}

/// The entry stored under `node_key` as `bytes`, with a delta made whole from its base (read
/// from `store`).
pub(crate) fn whole<'b>(
    store: &ChannelStore,
    node_key: &NodeKey,
    bytes: &'b [u8],
) -> Result<Cow<'b, [u8]>, NodeError> {
    if bytes.first() != Some(&tree_delta::DELTA) {
        return Ok(Cow::Borrowed(bytes));
    }
    let chain = tree_delta::chain(bytes, node_key.version())
        .map_err(tree_error)?
        .ok_or_else(|| tree_error("a delta has no chain"))?;
    let base_key = NodeKey::new(chain.base, node_key.nibble_path().clone());
    let base = store
        .get(
            Kind::TreeNodes,
            &borsh::to_vec(&base_key).map_err(tree_error)?,
        )?
        .ok_or_else(|| {
            tree_error(format!(
                "the base of the delta {node_key:?}, version {}, is missing",
                chain.base
            ))
        })?;
    tree_delta::resolve(bytes, node_key.version(), &base, value_hash)
        .map(Cow::Owned)
        .map_err(tree_error)
}

/// The children of an internal node as the codecs take them (a leaf child counts 1).
fn children_of(node: &Node) -> Option<tree_codec::Children> {
    let Node::Internal(node) = node else {
        return None;
    };
    let mut out: tree_codec::Children = [None; 16];
    for (i, c) in node.children_sorted() {
        out[usize::from(u8::from(i))] = Some((c.hash, c.version, c.leaf_count() as u64));
    }
    Some(out)
}

/// The bytes of the compact internal form of a node with `children`.
fn full_len(children: &tree_codec::Children) -> usize {
    let leb = |v: u64| (64 - v.leading_zeros()).max(1).div_ceil(7) as usize;
    5 + children
        .iter()
        .flatten()
        .map(|(_, version, count)| 32 + leb(*version) + if *count == 1 { 0 } else { leb(*count) })
        .sum::<usize>()
}

/// A stored tree entry: the node and, for a leaf, its value. Entries are in the compact forms
/// of [`tree_codec`] or in jmt's borsh form, then a leaf's value after [`LEAF_VALUE`] (leaves
/// written before values moved into them, in `tree_values`, have none).
pub(crate) fn decode_entry(bytes: &[u8]) -> Result<(Node, Option<&[u8]>), NodeError> {
    use borsh::BorshDeserialize;
    if bytes.first() == Some(&tree_delta::DELTA) {
        return Err(tree_error("a delta is read with its base (`whole`)"));
    }
    if let Some((borsh, value)) = tree_codec::expand(bytes, value_hash).map_err(tree_error)? {
        let node = Node::try_from_slice(&borsh)
            .map_err(|e| tree_error(format!("a compact node does not decode: {e}")))?;
        return Ok((node, value));
    }
    let mut rest = bytes;
    let node = Node::deserialize(&mut rest)
        .map_err(|e| tree_error(format!("a stored node does not decode: {e}")))?;
    match (rest.split_first(), &node) {
        (None, _) => Ok((node, None)),
        (Some((&LEAF_VALUE, value)), Node::Leaf(_)) => Ok((node, Some(value))),
        _ => Err(tree_error(format!(
            "a stored node is followed by {} unexpected bytes",
            rest.len()
        ))),
    }
}

/// The stored form of a node, with the value when it is a leaf: compact where it can be.
fn encode_entry(node: &Node, value: Option<&[u8]>) -> Result<Vec<u8>, NodeError> {
    if let Node::Internal(n) = node {
        let children = n.children_sorted().map(|(i, c)| {
            let count = (!c.is_leaf()).then(|| c.leaf_count() as u64);
            (u8::from(i), c.hash, c.version, count)
        });
        if let Some(compact) = tree_codec::compact_internal(children) {
            return Ok(compact);
        }
    }
    let mut out = borsh::to_vec(node).map_err(tree_error)?;
    if let Some(compact) = tree_codec::compact(&out, value, value_hash).map_err(tree_error)? {
        return Ok(compact);
    }
    if let (Node::Leaf(_), Some(v)) = (node, value) {
        out.push(LEAF_VALUE);
        out.extend_from_slice(v);
    }
    Ok(out)
}

fn lock(c: &NodeCache) -> std::sync::RwLockWriteGuard<'_, tree_warm::Nodes> {
    c.write().unwrap_or_else(|p| p.into_inner())
}

fn read<T>(c: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    c.read().unwrap_or_else(|p| p.into_inner())
}

/// Reads nodes from the updates of not-yet-final ancestors (newest last), then the cache, then
/// RocksDB; remembers the value of each leaf it reads (a leaf that an update moves is written
/// again with its value, and a proof answers the value of the leaf it reached).
struct Reader<'a> {
    store: &'a ChannelStore,
    cache: &'a NodeCache,
    overlay: &'a [Arc<PreparedState>],
    leaves: Mutex<HashMap<KeyHash, Vec<u8>>>,
    /// Range hashes of committed nodes near the root.
    ranges: Option<&'a RangeCache>,
}

impl<'a> Reader<'a> {
    fn new(
        store: &'a ChannelStore,
        cache: &'a NodeCache,
        overlay: &'a [Arc<PreparedState>],
    ) -> Self {
        Reader {
            store,
            cache,
            overlay,
            leaves: Mutex::default(),
            ranges: None,
        }
    }

    fn with_ranges(mut self, ranges: &'a RangeCache) -> Self {
        self.ranges = Some(ranges);
        self
    }

    fn remember(&self, kh: KeyHash, value: Vec<u8>) {
        self.leaves
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(kh, value);
    }

    fn remembered(&self, kh: &KeyHash) -> Option<Vec<u8>> {
        self.leaves
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(kh)
            .cloned()
    }

    /// The value of a leaf stored before values moved into leaves: the last one its key had
    /// at or before the leaf's version.
    fn old_value(&self, version: Version, kh: &KeyHash) -> Result<Option<Vec<u8>>, NodeError> {
        let found =
            self.store
                .last_at_or_before(Kind::TreeValues, &value_key(kh, version), &kh.0)?;
        Ok(match found {
            Some((_, v)) if v.first() == Some(&1) => Some(v[1..].to_vec()),
            _ => None,
        })
    }
}

impl Reader<'_> {
    /// Hands the node stored under `node_key` to `f` (borrowed: nodes kept in memory are not
    /// copied), remembering a leaf's value.
    fn visit<T>(
        &self,
        node_key: &NodeKey,
        f: impl FnOnce(&Node) -> T,
    ) -> anyhow::Result<Option<T>> {
        let f = match self.in_memory(node_key, f) {
            Ok(out) => return Ok(Some(out)),
            Err(f) => f,
        };
        let Some(v) = self.store.get(Kind::TreeNodes, &borsh::to_vec(node_key)?)? else {
            return Ok(None);
        };
        self.decode(node_key, &v, f).map(Some)
    }

    /// `f` of the node under `node_key` when a pending ancestor wrote it or the cache holds it
    /// (remembering a leaf's value); `f` back otherwise.
    fn in_memory<T, F: FnOnce(&Node) -> T>(&self, node_key: &NodeKey, f: F) -> Result<T, F> {
        for p in self.overlay.iter().rev() {
            if let Some(n) = p.update.node_batch.get_node(node_key) {
                if let Node::Leaf(l) = n {
                    if let Some(v) = p.leaf_values.get(&l.key_hash()) {
                        self.remember(l.key_hash(), v.clone());
                    }
                }
                return Ok(f(n));
            }
        }
        if kept_in_memory(node_key) {
            let c = read(self.cache);
            if let Some((n, value)) = c.get(node_key) {
                if let (Node::Leaf(l), Some(v)) = (n, value) {
                    self.remember(l.key_hash(), v.clone());
                }
                return Ok(f(n));
            }
        }
        Err(f)
    }

    /// `f` of the node stored as `bytes` under `node_key`, remembering a leaf's value and
    /// caching a node near the root.
    fn decode<T>(
        &self,
        node_key: &NodeKey,
        bytes: &[u8],
        f: impl FnOnce(&Node) -> T,
    ) -> anyhow::Result<T> {
        let bytes = whole(self.store, node_key, bytes)?;
        let (n, value) = decode_entry(&bytes)?;
        let value = match &n {
            Node::Leaf(l) => {
                let kh = l.key_hash();
                let value = match value {
                    Some(v) => v.to_vec(),
                    None => self.old_value(node_key.version(), &kh)?.ok_or_else(|| {
                        tree_error(format!("the leaf {node_key:?} has no stored value"))
                    })?,
                };
                self.remember(kh, value.clone());
                Some(value)
            }
            _ => None,
        };
        let out = f(&n);
        if kept_in_memory(node_key) {
            let mut c = lock(self.cache);
            if c.len() >= CACHE_LIMIT {
                c.clear();
            }
            c.insert(node_key.clone(), (n, value));
        }
        Ok(out)
    }

    /// The node under `node_key` as the update reads it. A node below the cached levels is
    /// read without filling RocksDB's block cache (at 10M keys the update reads a million
    /// such nodes in a random order, each once in a long while).
    fn stored(&self, node_key: &NodeKey) -> anyhow::Result<Option<tree_update::Stored>> {
        let f = match self.in_memory(node_key, tree_update::Stored::of) {
            Ok(out) => return Ok(Some(out)),
            Err(f) => f,
        };
        let k = borsh::to_vec(node_key)?;
        let deep = !kept_in_memory(node_key);
        let got = if deep {
            self.store.get_uncached(Kind::TreeNodes, &k)?
        } else {
            self.store.get(Kind::TreeNodes, &k)?
        };
        let Some(v) = got else {
            return Ok(None);
        };
        if deep {
            // Read from its compact form directly, without making jmt's node first (at 10M
            // keys most nodes an update reads are such).
            if let Some(children) = tree_codec::internal_children(&v)? {
                return Ok(Some(tree_update::Stored::internal(&children)));
            }
        }
        self.decode(node_key, &v, f).map(Some)
    }
}

impl TreeReader for Reader<'_> {
    fn get_node_option(&self, node_key: &NodeKey) -> anyhow::Result<Option<Node>> {
        self.visit(node_key, Node::clone)
    }

    /// Only asked for the key of the leaf a proof has just reached.
    fn get_value_option(
        &self,
        _max_version: Version,
        key_hash: KeyHash,
    ) -> anyhow::Result<Option<OwnedValue>> {
        match self.remembered(&key_hash) {
            Some(v) => Ok(Some(v)),
            None => anyhow::bail!("a value was asked for before its leaf was read"),
        }
    }

    fn get_rightmost_leaf(&self) -> anyhow::Result<Option<(NodeKey, LeafNode)>> {
        anyhow::bail!("the state tree is never restored from chunks")
    }
}

/// A block's tree update, computed without writing anything; install it with
/// [`StateTree::write`] in the block's batch.
pub struct PreparedState {
    /// The state root after the writes.
    pub root: Hash32,
    version: Version,
    update: TreeUpdateBatch,
    /// The value of each leaf the update writes (written or moved), by key hash.
    leaf_values: HashMap<KeyHash, Vec<u8>>,
    /// The range hashes of its internal nodes near the root, when it was made by
    /// [`tree_update`].
    ranges: tree_warm::NodeMap<Arc<tree_update::Ranges>>,
}

/// One channel's state tree.
pub struct StateTree {
    store: ChannelStore,
    history: u64,
    base: AtomicU64,
    cache: NodeCache,
    ranges: RangeCache,
    /// Stale records below this version are deleted on disk (0: not known yet). Pruning seeks
    /// from here: a scan from the start would walk the tombstones of every record deleted
    /// since the last compaction, a cost that grew with each block.
    pruned_below: AtomicU64,
    /// Where `pruned_below` moves once the batch that pruned up to it is on disk.
    pruning: Mutex<Option<u64>>,
    /// The chain of each internal node near the root in the head's tree (filled when the
    /// chain opens and as blocks commit; one missing is read from its stored entry).
    chains: Chains,
    /// How the last update written changes `chains`, once its batch is on disk.
    chain_change: Mutex<Option<ChainChange>>,
}

/// How an update stores its internal nodes near the root.
struct Plan {
    /// The stored form of each node the update writes, in its order, where it is a delta or a
    /// full node near the root (`None`: encoded as usual).
    bytes: Vec<Option<Vec<u8>>>,
    /// The nodes it makes stale: those it replaced, but for bases a delta now names, and the
    /// bases whose chain it ends (a full node replaced their last delta, or the path went).
    stale: Vec<NodeKey>,
    /// How it changes the chains: the nodes near the root it replaced, and the chains of
    /// the ones it wrote.
    chains: Option<ChainChange>,
}

impl StateTree {
    /// The tree of a channel that keeps `history` block versions (at least [`MIN_HISTORY`]).
    pub fn new(store: ChannelStore, history: u64) -> Self {
        StateTree {
            store,
            history: history.max(MIN_HISTORY),
            base: AtomicU64::new(0),
            cache: RwLock::default(),
            ranges: RwLock::default(),
            pruned_below: AtomicU64::new(0),
            pruning: Mutex::new(None),
            chains: Mutex::default(),
            chain_change: Mutex::new(None),
        }
    }

    /// Reads how many versions genesis used (call once when opening a stored chain).
    pub fn load(&self) -> Result<(), NodeError> {
        let b = self
            .store
            .get(Kind::Meta, b"tree_base")?
            .and_then(|b| <[u8; 8]>::try_from(b.as_slice()).ok())
            .ok_or_else(|| tree_error("meta tree_base is missing"))?;
        self.base.store(u64::from_be_bytes(b), Ordering::Relaxed);
        Ok(())
    }

    /// Loads the levels kept decoded in memory for the state after block `height` (one
    /// multi-get per level), so that a restarted node's first blocks find them cached; returns
    /// how many nodes.
    pub fn warm(&self, height: u64) -> Result<usize, NodeError> {
        tree_warm::warm(
            &self.store,
            &self.cache,
            &self.chains,
            self.version(height),
            CACHED_DEPTH,
            CACHE_LIMIT,
        )
    }

    /// The tree version holding the state after block `height`.
    fn version(&self, height: u64) -> Version {
        self.base.load(Ordering::Relaxed).saturating_add(height)
    }

    fn put(&self, writes: &Writes, version: Version) -> Result<PreparedState, NodeError> {
        self.put_on(writes, version, &[])
    }

    fn put_on(
        &self,
        writes: &Writes,
        version: Version,
        overlay: &[Arc<PreparedState>],
    ) -> Result<PreparedState, NodeError> {
        self.put_on_with(writes, version, overlay, true)
    }

    /// `fast`: upserts go through [`tree_update`] (jmt when it does not apply); otherwise
    /// everything goes through jmt (for tests that compare the two).
    fn put_on_with(
        &self,
        writes: &Writes,
        version: Version,
        overlay: &[Arc<PreparedState>],
        fast: bool,
    ) -> Result<PreparedState, NodeError> {
        let reader = Reader::new(&self.store, &self.cache, overlay).with_ranges(&self.ranges);
        if let (true, Some(kvs)) = (fast, lean_upserts(writes)) {
            match tree_update::upsert(&reader, &kvs, version, CACHED_DEPTH) {
                Ok(u) => return Ok(prepared_from(u, version)),
                Err(e) => tracing::debug!(%e, version, "state tree update left to jmt"),
            }
        }
        let upserts: Option<Vec<(KeyHash, OwnedValue)>> = writes
            .iter()
            .map(|(k, v)| v.clone().map(|v| (key_hash(k), v)))
            .collect();
        let tree = JellyfishMerkleTree::<_, TreeHasher>::new(&reader);
        let (root, update) = match upserts {
            // No deletions (most blocks): the batch insert hashes each changed node once,
            // where inserting key by key rehashes the 16-way nodes on the path for every key.
            Some(set) if !set.is_empty() => tree
                .batch_put_value_sets(vec![set], None, version)
                .map(|(roots, update)| (roots[0], update)),
            _ => {
                let set = writes.iter().map(|(k, v)| (key_hash(k), v.clone()));
                tree.put_value_set(set, version)
            }
        }
        .map_err(tree_error)?;
        let mut read = reader
            .leaves
            .into_inner()
            .unwrap_or_else(|p| p.into_inner());
        let mut leaf_values = HashMap::new();
        for n in update.node_batch.nodes().values() {
            let Node::Leaf(l) = n else { continue };
            let kh = l.key_hash();
            let v = match update.node_batch.values().get(&(version, kh)) {
                Some(Some(v)) => v.clone(),
                // A leaf moved down by a new neighbour: its value is the one read.
                _ => read
                    .remove(&kh)
                    .ok_or_else(|| tree_error(format!("the moved leaf {kh:?} was never read")))?,
            };
            leaf_values.insert(kh, v);
        }
        Ok(PreparedState {
            root: Hash32(root.0),
            version,
            update,
            leaf_values,
            ranges: Default::default(),
        })
    }

    /// The root after applying `writes` (everything not yet final since the head, then the new
    /// block's) to the state after block `head_height`.
    pub fn prepare(&self, writes: &Writes, head_height: u64) -> Result<PreparedState, NodeError> {
        self.put(writes, self.version(head_height).saturating_add(1))
    }

    /// The update of a block at `parent_height + 1` whose parent and the blocks between it and
    /// the head are not final yet: `overlay` holds their updates, oldest first (each prepared on
    /// the one before, the first on the head). The result is the block's own update, ready to
    /// write once they are written.
    pub fn prepare_on(
        &self,
        writes: &Writes,
        parent_height: u64,
        overlay: &[Arc<PreparedState>],
    ) -> Result<PreparedState, NodeError> {
        self.put_on(
            writes,
            self.version(parent_height).saturating_add(1),
            overlay,
        )
    }

    /// Genesis, part 1 (optional, repeated): writes one chunk of a large genesis as tree
    /// version `version` (0, 1, ...) in its own batch, with `flat` adding the chunk to the flat
    /// state, so a genesis of millions of accounts never sits in memory whole. A crash before
    /// [`Self::finish_genesis`] redoes genesis from the start.
    pub fn genesis_chunk(
        &self,
        chunk: &Writes,
        version: Version,
        flat: impl Fn(&mut Batch<'_>, &Writes),
    ) -> Result<(), NodeError> {
        let p = self.put(chunk, version)?;
        let mut b = self.store.batch();
        self.put_update(&p, &mut b, true)?;
        flat(&mut b, chunk);
        b.commit_relaxed()
    }

    /// Genesis, part 2: the last writes as version `version` (the number of chunks before it),
    /// added to the genesis block's batch; that version is the state of block 0.
    pub fn finish_genesis(
        &self,
        writes: &Writes,
        version: Version,
        batch: &mut Batch<'_>,
    ) -> Result<PreparedState, NodeError> {
        let p = self.put(writes, version)?;
        self.base.store(version, Ordering::Relaxed);
        batch.put(Kind::Meta, b"tree_base", &version.to_be_bytes());
        self.put_update(&p, batch, true)?;
        Ok(p)
    }

    /// Adds a prepared update for block `height` to the block's batch, and prunes versions that
    /// left the window.
    pub fn write(
        &self,
        p: &PreparedState,
        height: u64,
        batch: &mut Batch<'_>,
    ) -> Result<(), NodeError> {
        if p.version != self.version(height) {
            return Err(tree_error(format!(
                "update for version {} offered for block {height} (version {})",
                p.version,
                self.version(height)
            )));
        }
        self.put_update(p, batch, false)?;
        if let Some(limit) = p.version.checked_sub(self.history) {
            self.prune(limit, batch)?;
        }
        Ok(())
    }

    /// After the batch holding `p` is on disk: its nodes near the root replace the ones they
    /// made stale in the cache.
    pub fn committed(&self, p: &PreparedState) {
        if let Some(v) = self
            .pruning
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            self.pruned_below.store(v, Ordering::Relaxed);
        }
        let change = self
            .chain_change
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some((version, gone, new)) = change.filter(|c| c.0 == p.version) {
            let mut chains = self.chains.lock().unwrap_or_else(|p| p.into_inner());
            if chains.len() >= CACHE_LIMIT {
                // Only stale entries could grow it this far; a missing one is read from disk.
                chains.clear();
            }
            for k in gone {
                chains.remove(&k);
            }
            tracing::trace!(version, written = new.len(), "tree chains moved");
            chains.extend(new);
        }
        // Both caches hold only nodes this close to the root: deeper stale nodes are not there.
        let shallow_stale = || {
            p.update
                .stale_node_index_batch
                .iter()
                .map(|s| &s.node_key)
                .filter(|k| kept_in_memory(k))
        };
        let mut c = lock(&self.cache);
        if c.len() >= CACHE_LIMIT {
            c.clear();
        }
        for k in shallow_stale() {
            c.remove(k);
        }
        for (k, n) in p.update.node_batch.nodes() {
            if kept_in_memory(k) {
                let value = match n {
                    Node::Leaf(l) => p.leaf_values.get(&l.key_hash()).cloned(),
                    _ => None,
                };
                c.insert(k.clone(), (n.clone(), value));
            }
        }
        drop(c);
        let mut r = self.ranges.write().unwrap_or_else(|p| p.into_inner());
        if r.len() >= CACHE_LIMIT {
            r.clear();
        }
        for k in shallow_stale() {
            r.remove(k);
        }
        r.extend(p.ranges.iter().map(|(k, v)| (k.clone(), Arc::clone(v))));
    }

    /// Adds an update's nodes and values to `batch`. What it made stale is recorded for pruning
    /// later or, for genesis (whose earlier versions nobody reads), deleted at once.
    fn put_update(
        &self,
        p: &PreparedState,
        batch: &mut Batch<'_>,
        genesis: bool,
    ) -> Result<(), NodeError> {
        let nb = &p.update.node_batch;
        let plan = if genesis {
            Plan {
                bytes: Vec::new(),
                stale: (p.update.stale_node_index_batch.iter())
                    .map(|s| s.node_key.clone())
                    .collect(),
                chains: None,
            }
        } else {
            self.plan(p)?
        };
        let planned = plan.bytes.into_iter().chain(std::iter::repeat(None));
        for ((k, n), planned) in nb.nodes().iter().zip(planned) {
            let key = borsh::to_vec(k).map_err(tree_error)?;
            if let Some(bytes) = planned {
                batch.put(Kind::TreeNodes, &key, &bytes);
                continue;
            }
            let value = match n {
                Node::Leaf(l) => Some(
                    p.leaf_values
                        .get(&l.key_hash())
                        .ok_or_else(|| tree_error(format!("no value for the leaf {k:?}")))?,
                ),
                _ => None,
            };
            batch.put(
                Kind::TreeNodes,
                &key,
                &encode_entry(n, value.map(|v| v.as_slice()))?,
            );
        }
        let mut stale_nodes = plan.stale;
        if plan.chains.is_some() {
            *self.chain_change.lock().unwrap_or_else(|p| p.into_inner()) = plan.chains;
        }
        if stale_nodes.is_empty() && p.version > 0 {
            // A version that changed nothing copies the previous root without marking it
            // stale; mark it here, or every empty block would leave a root behind for good.
            if let Some(root) = nb.nodes().keys().find(|k| k.nibble_path().is_empty()) {
                stale_nodes.push(NodeKey::new(p.version - 1, root.nibble_path().clone()));
            }
        }
        if genesis {
            for n in &stale_nodes {
                batch.delete(Kind::TreeNodes, &borsh::to_vec(n).map_err(tree_error)?);
            }
            return Ok(());
        }
        let mut stale = Vec::new();
        stale.extend_from_slice(&(stale_nodes.len() as u32).to_be_bytes());
        for n in &stale_nodes {
            let k = borsh::to_vec(n).map_err(tree_error)?;
            stale.extend_from_slice(&(k.len() as u32).to_be_bytes());
            stale.extend_from_slice(&k);
        }
        batch.put(Kind::TreeStale, &p.version.to_be_bytes(), &stale);
        Ok(())
    }

    /// The chain of the committed node `prev` (`None`: a leaf, or not stored), from `chains`,
    /// its copy in the cache (`cached`) or its stored entry.
    fn chain_of(
        &self,
        chains: &tree_warm::NodeMap<Chain>,
        cached: Option<&Node>,
        prev: &NodeKey,
    ) -> Result<Option<Chain>, NodeError> {
        if let Some(c) = chains.get(prev) {
            return Ok(Some(*c));
        }
        if cached.is_some_and(|n| !matches!(n, Node::Internal(_))) {
            return Ok(None);
        }
        let key = borsh::to_vec(prev).map_err(tree_error)?;
        match self.store.get(Kind::TreeNodes, &key)? {
            Some(bytes) => tree_delta::chain(&bytes, prev.version()).map_err(tree_error),
            None => Ok(None),
        }
    }

    /// How `p` stores its internal nodes near the root: each as a delta on the base of the node
    /// it replaces while that stays under [`tree_delta::MAX_CHANGED`] changed slots and half
    /// the full node's bytes, otherwise whole; and which bases that keeps or ends.
    fn plan(&self, p: &PreparedState) -> Result<Plan, NodeError> {
        /// A node near the root the update replaced: whether a delta now names it as its
        /// base, and whether the update wrote an internal node at its path.
        struct Before<'k> {
            key: &'k NodeKey,
            kept: bool,
            written: bool,
        }
        let stale = &p.update.stale_node_index_batch;
        let mut before: HashMap<&NibblePath, Before<'_>, foldhash::fast::RandomState> = stale
            .iter()
            .map(|s| &s.node_key)
            .filter(|k| chained(k))
            .map(|key| {
                let b = Before {
                    key,
                    kept: false,
                    written: false,
                };
                (key.nibble_path(), b)
            })
            .collect();
        let nodes = p.update.node_batch.nodes();
        let mut bytes = Vec::with_capacity(nodes.len());
        let mut ended = Vec::new();
        let mut new_chains = Vec::new();
        // In the order `tree_warm` takes them.
        let cache = read(&self.cache);
        let chains = self.chains.lock().unwrap_or_else(|p| p.into_inner());
        for (k, n) in nodes {
            let Some(now) = chained(k).then(|| children_of(n)).flatten() else {
                bytes.push(None);
                continue;
            };
            let prev = before.get_mut(k.nibble_path());
            let (chain, old) = match &prev {
                Some(b) => {
                    let cached = cache.get(b.key).map(|(n, _)| n);
                    (
                        self.chain_of(&chains, cached, b.key)?,
                        cached.and_then(children_of),
                    )
                }
                None => (None, None),
            };
            let delta = match (chain, old) {
                (Some(c), Some(old)) => {
                    let changed = c.changed | tree_delta::changed(&old, &now);
                    (changed.count_ones() <= tree_delta::MAX_CHANGED)
                        .then(|| tree_delta::encode(c.base, &now, changed))
                        .flatten()
                        .filter(|d| d.len() * 2 <= full_len(&now))
                        .map(|d| {
                            (
                                d,
                                Chain {
                                    base: c.base,
                                    changed,
                                },
                            )
                        })
                }
                _ => None,
            };
            if let Some(b) = prev {
                b.written = true;
                match (&delta, chain) {
                    (Some((_, c)), _) => b.kept = b.key.version() == c.base,
                    (None, Some(c)) if c.base != b.key.version() => {
                        ended.push(NodeKey::new(c.base, k.nibble_path().clone()));
                    }
                    _ => {}
                }
            }
            let (entry, c) = match delta {
                Some((d, c)) => (d, c),
                None => {
                    let own = Chain {
                        base: k.version(),
                        changed: 0,
                    };
                    let full = tree_codec::compact_children(&now)
                        .ok_or_else(|| tree_error(format!("the internal node {k:?} is empty")))?;
                    (full, own)
                }
            };
            bytes.push(Some(entry));
            new_chains.push((k.clone(), c));
        }
        // Paths whose internal node went (a leaf now, or nothing): their chain ends.
        for (path, b) in &before {
            if b.written {
                continue;
            }
            let cached = cache.get(b.key).map(|(n, _)| n);
            if let Some(c) = self.chain_of(&chains, cached, b.key)? {
                if c.base != b.key.version() {
                    ended.push(NodeKey::new(c.base, (*path).clone()));
                }
            }
        }
        drop((chains, cache));
        let mut gone = Vec::with_capacity(before.len());
        let mut kept_out = Vec::with_capacity(stale.len());
        for s in stale {
            let k = &s.node_key;
            if chained(k) {
                gone.push(k.clone());
                if before.get(k.nibble_path()).is_some_and(|b| b.kept) {
                    continue;
                }
            }
            kept_out.push(k.clone());
        }
        kept_out.extend(ended);
        Ok(Plan {
            bytes,
            stale: kept_out,
            chains: Some((p.version, gone, new_chains)),
        })
    }

    /// Deletes what versions up to `limit` made stale: the nodes they replaced (and, in records
    /// written before leaves held their values, the older values of the keys they wrote).
    /// Versions from `limit` on stay complete.
    fn prune(&self, limit: Version, batch: &mut Batch<'_>) -> Result<(), NodeError> {
        let mut due = Vec::new();
        let from = self.pruned_below.load(Ordering::Relaxed);
        self.store
            .scan_from(Kind::TreeStale, &from.to_be_bytes(), |k, v| {
                let Ok(version) = <[u8; 8]>::try_from(k).map(u64::from_be_bytes) else {
                    return false;
                };
                if version > limit || due.len() >= PRUNE_PER_COMMIT {
                    return false;
                }
                due.push((version, v.to_vec()));
                true
            })?;
        let taken = due.len();
        let due_last = due.last().map(|(v, _)| *v);
        for (version, blob) in due {
            let (nodes, keys) = decode_stale(&blob).ok_or_else(|| {
                tree_error(format!("stale record of version {version} is malformed"))
            })?;
            for n in nodes {
                batch.delete(Kind::TreeNodes, n);
            }
            let ranges: Vec<(Vec<u8>, Vec<u8>)> = keys
                .iter()
                .map(|kh| {
                    let kh = KeyHash(*kh);
                    (value_key(&kh, 0).to_vec(), value_key(&kh, version).to_vec())
                })
                .collect();
            self.store.scan_ranges(Kind::TreeValues, &ranges, |k| {
                batch.delete(Kind::TreeValues, k)
            })?;
            batch.delete(Kind::TreeStale, &version.to_be_bytes());
        }
        // Every record up to `limit` is in this batch unless the pass stopped at its quota.
        let next = match due_last {
            Some(v) if taken == PRUNE_PER_COMMIT => v + 1,
            _ => limit + 1,
        };
        *self.pruning.lock().unwrap_or_else(|p| p.into_inner()) = Some(next.max(from));
        Ok(())
    }

    /// The state root after block `height`, when that version is kept.
    pub fn root_at(&self, height: u64) -> Result<Option<Hash32>, NodeError> {
        let reader = Reader::new(&self.store, &self.cache, &[]);
        let tree = JellyfishMerkleTree::<_, TreeHasher>::new(&reader);
        Ok(tree
            .get_root_hash_option(self.version(height))
            .map_err(tree_error)?
            .map(|r| Hash32(r.0)))
    }

    /// The oldest height whose state can still be proven, given the head.
    pub fn oldest_kept(&self, head_height: u64) -> u64 {
        head_height.saturating_sub(self.history)
    }

    /// The value of `key` after block `height`, with its proof against that block's state root.
    pub fn proof(&self, key: &[u8], height: u64) -> Result<ProvenValue, NodeError> {
        let reader = Reader::new(&self.store, &self.cache, &[]);
        let tree = JellyfishMerkleTree::<_, TreeHasher>::new(&reader);
        let (v, p) = tree
            .get_with_proof(key_hash(key), self.version(height))
            .map_err(tree_error)?;
        Ok((v, to_light(&p)?))
    }
}

/// `writes` in the order [`tree_update`] takes them; none when there is nothing to write or a
/// deletion (left to jmt).
fn lean_upserts(writes: &Writes) -> Option<Vec<tree_update::Upsert>> {
    let mut kvs: Vec<tree_update::Upsert> = writes
        .iter()
        .map(|(k, v)| {
            let v = v.clone()?;
            Some((key_hash(k), jmt::ValueHash::with::<TreeHasher>(&v), v))
        })
        .collect::<Option<_>>()?;
    kvs.sort_unstable_by_key(|kv| kv.0);
    (!kvs.is_empty()).then_some(kvs)
}

/// A prepared state from an update made by [`tree_update`].
fn prepared_from(u: tree_update::Update, version: Version) -> PreparedState {
    let stale = u
        .stale
        .into_iter()
        .map(|node_key| StaleNodeIndex {
            stale_since_version: version,
            node_key,
        })
        .collect();
    PreparedState {
        root: Hash32(u.root),
        version,
        update: TreeUpdateBatch {
            node_batch: NodeBatch::new(u.nodes, Default::default()),
            stale_node_index_batch: stale,
            node_stats: Vec::new(),
        },
        leaf_values: u.leaf_values.into_iter().collect(),
        ranges: u.ranges.into_iter().collect(),
    }
}

impl tree_update::Source for Reader<'_> {
    fn node(&self, key: &NodeKey) -> Result<Option<tree_update::Stored>, tree_update::UpdateError> {
        self.stored(key)
            .map_err(|e| tree_update::UpdateError::Read(e.to_string()))
    }

    fn leaf_value(&self, kh: &KeyHash) -> Option<Vec<u8>> {
        self.remembered(kh)
    }

    fn ranges(&self, key: &NodeKey) -> Option<tree_update::Ranges> {
        for p in self.overlay.iter().rev() {
            if p.update.node_batch.get_node(key).is_some() {
                return p.ranges.get(key).map(|r| tree_update::Ranges::clone(r));
            }
        }
        read(self.ranges?)
            .get(key)
            .map(|r| tree_update::Ranges::clone(r))
    }
}

/// Splits a stale record into node keys and key hashes.
fn decode_stale(blob: &[u8]) -> Option<Stale<'_>> {
    let n = u32::from_be_bytes(blob.get(..4)?.try_into().ok()?) as usize;
    let mut at = 4;
    let mut nodes = Vec::with_capacity(n.min(blob.len()));
    for _ in 0..n {
        let len = u32::from_be_bytes(blob.get(at..at + 4)?.try_into().ok()?) as usize;
        at += 4;
        nodes.push(blob.get(at..at.checked_add(len)?)?);
        at += len;
    }
    let rest = blob.get(at..)?;
    if rest.len() % 32 != 0 {
        return None;
    }
    let keys = rest
        .chunks_exact(32)
        .map(|c| c.try_into().unwrap_or([0; 32]))
        .collect();
    Some((nodes, keys))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::storage::Storage;
    use std::collections::HashSet;

    fn tree(dir: &std::path::Path, history: u64) -> (Storage, StateTree) {
        let s = Storage::open(dir, &["public".to_string()]).unwrap();
        let t = StateTree::new(s.channel("public"), history);
        (s, t)
    }

    fn writes(items: &[(&str, Option<&str>)]) -> Writes {
        items
            .iter()
            .map(|(k, v)| (k.as_bytes().to_vec(), v.map(|v| v.as_bytes().to_vec())))
            .collect()
    }

    /// Writes genesis (empty) and then `blocks`, one version each; returns the roots.
    fn commit_all(s: &Storage, t: &StateTree, blocks: &[Writes]) -> Vec<Hash32> {
        let store = s.channel("public");
        let mut b = store.batch();
        let mut roots = vec![t.finish_genesis(&Writes::new(), 0, &mut b).unwrap().root];
        b.commit().unwrap();
        for (i, w) in blocks.iter().enumerate() {
            let h = i as u64 + 1;
            let p = t.prepare(w, h - 1).unwrap();
            let mut b = store.batch();
            t.write(&p, h, &mut b).unwrap();
            b.commit().unwrap();
            t.committed(&p);
            roots.push(p.root);
        }
        roots
    }

    #[test]
    fn root_depends_on_content_not_history() {
        let d1 = tempfile::tempdir().unwrap();
        let (s1, t1) = tree(d1.path(), 16);
        let r1 = commit_all(&s1, &t1, &[writes(&[("a1", Some("x")), ("a2", Some("y"))])]);
        assert_ne!(r1[0], r1[1]);
        // The same content another way: in two blocks, with a key added and deleted again.
        let d2 = tempfile::tempdir().unwrap();
        let (s2, t2) = tree(d2.path(), 16);
        let r2 = commit_all(
            &s2,
            &t2,
            &[
                writes(&[("a1", Some("old")), ("a3", Some("z"))]),
                writes(&[("a1", Some("x")), ("a2", Some("y")), ("a3", None)]),
            ],
        );
        assert_eq!(r1[1], r2[2]);
        assert_eq!(t2.root_at(2).unwrap(), Some(r2[2]));
        assert_eq!(t2.root_at(1).unwrap(), Some(r2[1]));
    }

    #[test]
    fn prepare_changes_nothing_and_builds_on_pending_writes() {
        let d = tempfile::tempdir().unwrap();
        let (s, t) = tree(d.path(), 16);
        let r = commit_all(&s, &t, &[writes(&[("k", Some("1"))])]);
        // Two blocks not final yet, prepared together on the head, give the root of both.
        let both = writes(&[("k", Some("2")), ("j", Some("3"))]);
        let p = t.prepare(&both, 1).unwrap();
        assert_eq!(t.root_at(1).unwrap(), Some(r[1]));
        assert_eq!(t.root_at(2).unwrap(), None, "nothing written");
        let d2 = tempfile::tempdir().unwrap();
        let (s2, t2) = tree(d2.path(), 16);
        let r2 = commit_all(
            &s2,
            &t2,
            &[
                writes(&[("k", Some("1"))]),
                writes(&[("k", Some("2"))]),
                writes(&[("j", Some("3"))]),
            ],
        );
        assert_eq!(p.root, r2[3]);
    }

    #[test]
    fn proofs_of_present_and_absent_keys_verify_and_forged_ones_do_not() {
        let d = tempfile::tempdir().unwrap();
        let (s, t) = tree(d.path(), 64);
        let mut blocks = vec![];
        for i in 0..50 {
            blocks.push(writes(&[(&format!("key{i}"), Some(&format!("v{i}")))]));
        }
        blocks.push(writes(&[("key7", Some("changed"))]));
        let roots = commit_all(&s, &t, &blocks);
        let head = blocks.len() as u64;
        let root = roots[head as usize];
        // Checked by the light client's code, which shares nothing with jmt but the rules.
        let (v, proof) = t.proof(b"key7", head).unwrap();
        assert_eq!(v.as_deref(), Some(&b"changed"[..]));
        proof.verify(&root.0, b"key7", Some(b"changed")).unwrap();
        assert!(proof.verify(&root.0, b"key7", Some(b"v7")).is_err());
        // The value of an older height, against that height's root.
        let (v, old) = t.proof(b"key7", 20).unwrap();
        assert_eq!(v.as_deref(), Some(&b"v7"[..]));
        old.verify(&roots[20].0, b"key7", Some(b"v7")).unwrap();
        assert!(old.verify(&root.0, b"key7", Some(b"v7")).is_err());
        // A key never written, and one not written yet at height 3.
        let (v, absent) = t.proof(b"nobody", head).unwrap();
        assert_eq!(v, None);
        absent.verify(&root.0, b"nobody", None).unwrap();
        assert!(absent.verify(&root.0, b"key7", None).is_err());
        let (v, early) = t.proof(b"key40", 3).unwrap();
        assert_eq!(v, None);
        early.verify(&roots[3].0, b"key40", None).unwrap();
        // Every key of a larger tree, present and absent, at the head.
        for i in 0..50 {
            let k = format!("key{i}");
            let (v, p) = t.proof(k.as_bytes(), head).unwrap();
            p.verify(&root.0, k.as_bytes(), v.as_deref()).unwrap();
            let k = format!("none{i}");
            let (v, p) = t.proof(k.as_bytes(), head).unwrap();
            assert_eq!(v, None);
            p.verify(&root.0, k.as_bytes(), None).unwrap();
        }
    }

    /// Prepares `w` on both trees, the first by [`tree_update`], the second by jmt alone, and
    /// checks that they agree on everything written: nodes, stale records, leaf values, root.
    fn prepare_both(
        a: &StateTree,
        b: &StateTree,
        w: &Writes,
        version: Version,
        overlays: (&[Arc<PreparedState>], &[Arc<PreparedState>]),
    ) -> (PreparedState, PreparedState) {
        if let Some(kvs) = lean_upserts(w) {
            // Upserts on a tree that has a root take the lean path (the test is about it).
            let reader = Reader::new(&a.store, &a.cache, overlays.0);
            let lean = tree_update::upsert(&reader, &kvs, version, CACHED_DEPTH);
            assert_eq!(lean.is_ok(), version > 1, "{:?}", lean.err());
        }
        let pa = a.put_on_with(w, version, overlays.0, true).unwrap();
        let pb = b.put_on_with(w, version, overlays.1, false).unwrap();
        assert_eq!(pa.root, pb.root, "root at version {version}");
        assert_eq!(
            pa.update.node_batch.nodes(),
            pb.update.node_batch.nodes(),
            "nodes at version {version}"
        );
        assert_eq!(
            pa.update.stale_node_index_batch, pb.update.stale_node_index_batch,
            "stale nodes at version {version}"
        );
        assert_eq!(
            pa.leaf_values, pb.leaf_values,
            "leaf values at version {version}"
        );
        (pa, pb)
    }

    /// CPU time of this process so far (all its threads, ended ones included), in
    /// microseconds, at the kernel's tick resolution.
    fn cpu_us() -> f64 {
        let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
        // Fields after the command's closing parenthesis; utime and stime are 14 and 15.
        let rest = stat.rsplit(')').next().unwrap_or("");
        let f: Vec<f64> = rest
            .split_whitespace()
            .skip(11)
            .take(2)
            .filter_map(|v| v.parse().ok())
            .collect();
        f.iter().sum::<f64>() * 1e6 / 100.0
    }

    /// Times block updates of 250 new keys on a stored tree, lean and by jmt, each block
    /// committed (lean) so the next finds its range hashes: `NEXUS_TREE_DIR=<copy of a node
    /// folder>/data cargo test --release -p nexus --lib time_updates -- --ignored --nocapture`.
    /// It writes to the folder.
    #[test]
    #[ignore]
    fn time_updates_on_a_stored_tree() {
        use rand::{Rng, SeedableRng};
        let Ok(dir) = std::env::var("NEXUS_TREE_DIR") else {
            return;
        };
        let s = Storage::open(std::path::Path::new(&dir), &["public".to_string()]).unwrap();
        let store = s.channel("public");
        let t = StateTree::new(store.clone(), 16);
        t.load().unwrap();
        let mut head = u64::from_be_bytes(
            store
                .get(Kind::Meta, b"head")
                .unwrap()
                .unwrap()
                .try_into()
                .unwrap(),
        );
        t.warm(head).unwrap();
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        // Per path: wall per key, and CPU summed over the timed rounds.
        let mut wall = [Vec::new(), Vec::new()];
        let mut cpu = [0.0, 0.0];
        for round in 0..80 {
            let w: Writes = (0..250)
                .map(|_| (rng.gen::<[u8; 22]>().to_vec(), Some(vec![1u8; 16])))
                .collect();
            // Once untimed, so both find the nodes in RocksDB's cache.
            std::hint::black_box(t.put_on_with(&w, t.version(head) + 1, &[], false).unwrap());
            let order = if round % 2 == 0 {
                [(0, true), (1, false)]
            } else {
                [(1, false), (0, true)]
            };
            let mut lean = None;
            for (i, fast) in order {
                let (at, c) = (std::time::Instant::now(), cpu_us());
                let p = t.put_on_with(&w, t.version(head) + 1, &[], fast).unwrap();
                if round >= 10 {
                    wall[i].push(at.elapsed().as_secs_f64() * 1e6 / 250.0);
                    cpu[i] += cpu_us() - c;
                }
                if fast {
                    assert!(!p.ranges.is_empty(), "the lean path applies");
                    lean = Some(p);
                }
            }
            let p = lean.unwrap();
            head += 1;
            let mut b = store.batch();
            t.write(&p, head, &mut b).unwrap();
            b.commit().unwrap();
            t.committed(&p);
        }
        for (i, name) in [(0, "lean"), (1, "jmt")] {
            wall[i].sort_by(f64::total_cmp);
            println!(
                "{name}: wall median {:.1} us per key, CPU {:.1} us per key",
                wall[i][wall[i].len() / 2],
                cpu[i] / (70.0 * 250.0)
            );
        }
    }

    #[test]
    fn the_lean_update_writes_what_jmt_writes() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let ((sa, ta), (sb, tb)) = (tree(da.path(), 16), tree(db.path(), 16));
        let (store_a, store_b) = (sa.channel("public"), sb.channel("public"));
        let commit = |t: &StateTree, store: &ChannelStore, p: &PreparedState, h: u64| {
            let mut b = store.batch();
            t.write(p, h, &mut b).unwrap();
            b.commit().unwrap();
            t.committed(p);
        };
        for (t, store) in [(&ta, &store_a), (&tb, &store_b)] {
            let mut b = store.batch();
            t.finish_genesis(&Writes::new(), 0, &mut b).unwrap();
            b.commit().unwrap();
        }
        let mut keys: Vec<Vec<u8>> = Vec::new();
        for h in 1..=60u64 {
            // Block 1 starts from an empty tree; block 2 from a tree of one leaf; then a mix
            // of new keys, changed ones and (in every fifth block) deletions.
            let mut w = Writes::new();
            let news = match h {
                1 | 2 => 1,
                _ => rng.gen_range(0..400),
            };
            for _ in 0..news {
                let k = rng.gen::<[u8; 8]>().to_vec();
                w.insert(k.clone(), Some(rng.gen::<[u8; 4]>().to_vec()));
                keys.push(k);
            }
            for _ in 0..rng.gen_range(0..50) {
                let k = keys[rng.gen_range(0..keys.len())].clone();
                w.insert(k, Some(vec![h as u8]));
            }
            if h % 5 == 0 {
                let k = keys.swap_remove(rng.gen_range(0..keys.len()));
                w.insert(k, None);
            }
            let (pa, pb) = prepare_both(&ta, &tb, &w, h, (&[], &[]));
            commit(&ta, &store_a, &pa, h);
            commit(&tb, &store_b, &pb, h);
        }
        // Two blocks not final yet, the second prepared on the first's update.
        let w1: Writes = (0..300u32)
            .map(|i| (i.to_be_bytes().to_vec(), Some(vec![1])))
            .collect();
        let w2: Writes = (200..500u32)
            .map(|i| (i.to_be_bytes().to_vec(), Some(vec![2])))
            .collect();
        let (pa, pb) = prepare_both(&ta, &tb, &w1, 61, (&[], &[]));
        let (pa, pb) = (Arc::new(pa), Arc::new(pb));
        let (qa, qb) = prepare_both(
            &ta,
            &tb,
            &w2,
            62,
            (std::slice::from_ref(&pa), std::slice::from_ref(&pb)),
        );
        for (h, p) in [(61, &*pa), (62, &qa)] {
            commit(&ta, &store_a, p, h);
        }
        for (h, p) in [(61, &*pb), (62, &qb)] {
            commit(&tb, &store_b, p, h);
        }
        assert_eq!(ta.root_at(62).unwrap(), Some(qb.root));
        let (v, proof) = ta.proof(&250u32.to_be_bytes(), 62).unwrap();
        assert_eq!(v, Some(vec![2]));
        proof
            .verify(&qa.root.0, &250u32.to_be_bytes(), v.as_deref())
            .unwrap();
    }

    #[test]
    fn nodes_below_the_cached_levels_read_from_their_stored_form_update_as_jmt_does() {
        // Keys whose hashes share their first five nibbles: internal nodes deeper than the
        // levels kept in memory, which the lean update reads straight from their stored form.
        // The first two share a sixth, so one such node has an internal child as well.
        let mut deep: Vec<Vec<u8>> = (0u64..)
            .map(|i| format!("deep {i}").into_bytes())
            .filter(|k| {
                let kh = key_hash(k).0;
                kh[0] == 0 && kh[1] == 0 && kh[2] >> 4 == 0
            })
            .take(12)
            .collect();
        let sixth = |k: &Vec<u8>| key_hash(k).0[2] & 0x0f;
        let (i, j) = (0..deep.len())
            .flat_map(|i| (i + 1..deep.len()).map(move |j| (i, j)))
            .find(|&(i, j)| sixth(&deep[i]) == sixth(&deep[j]))
            .expect("two of twelve share a sixth nibble");
        deep.swap(0, i);
        deep.swap(1, j);
        let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let ((sa, ta), (sb, tb)) = (tree(da.path(), 16), tree(db.path(), 16));
        let (store_a, store_b) = (sa.channel("public"), sb.channel("public"));
        let commit = |t: &StateTree, store: &ChannelStore, p: &PreparedState, h: u64| {
            let mut b = store.batch();
            t.write(p, h, &mut b).unwrap();
            b.commit().unwrap();
            t.committed(p);
        };
        for (t, store) in [(&ta, &store_a), (&tb, &store_b)] {
            let mut b = store.batch();
            t.finish_genesis(&Writes::new(), 0, &mut b).unwrap();
            b.commit().unwrap();
        }
        // Block 1 starts the tree (jmt's path), block 2 fills its upper levels and holds the
        // first two deep keys.
        let mut first = Writes::new();
        first.insert(b"first".to_vec(), Some(vec![0]));
        let mut second = Writes::new();
        for i in 0..300u32 {
            second.insert(i.to_be_bytes().to_vec(), Some(vec![0]));
        }
        for k in &deep[..2] {
            second.insert(k.clone(), Some(vec![0]));
        }
        for (h, w) in [(1, &first), (2, &second)] {
            let (pa, pb) = prepare_both(&ta, &tb, w, h, (&[], &[]));
            commit(&ta, &store_a, &pa, h);
            commit(&tb, &store_b, &pb, h);
        }
        let mut deep_reads = 0;
        for h in 3..=6u64 {
            // One more deep key, the one before it changed, and some keys elsewhere (from
            // block 4 on, the internal child of the first two is left as it was read).
            let mut w = Writes::new();
            w.insert(deep[h as usize - 1].clone(), Some(vec![h as u8]));
            w.insert(deep[h as usize - 2].clone(), Some(vec![h as u8, 1]));
            for i in 0..20u32 {
                w.insert((1000 * h as u32 + i).to_be_bytes().to_vec(), Some(vec![1]));
            }
            let (pa, pb) = prepare_both(&ta, &tb, &w, h, (&[], &[]));
            for s in &pa.update.stale_node_index_batch {
                let k = &s.node_key;
                let stored = store_a
                    .get(Kind::TreeNodes, &borsh::to_vec(k).unwrap())
                    .unwrap()
                    .unwrap();
                if !kept_in_memory(k) && stored[0] == tree_codec::INTERNAL {
                    deep_reads += 1;
                }
            }
            commit(&ta, &store_a, &pa, h);
            commit(&tb, &store_b, &pb, h);
        }
        assert!(
            deep_reads >= 4,
            "deep internal nodes replaced: {deep_reads}"
        );
        // The six written deep keys are proven present, the six others absent.
        for (i, k) in deep.iter().enumerate() {
            let (v, proof) = ta.proof(k, 6).unwrap();
            assert_eq!(v.is_some(), i < 6, "{k:?}");
            proof
                .verify(&ta.root_at(6).unwrap().unwrap().0, k, v.as_deref())
                .unwrap();
        }
    }

    #[test]
    fn updates_prepared_on_pending_ancestors_equal_merged_ones_and_commit_in_order() {
        let d = tempfile::tempdir().unwrap();
        let (s, t) = tree(d.path(), 16);
        commit_all(&s, &t, &[writes(&[("k", Some("1")), ("old", Some("x"))])]);
        // Blocks 2 and 3, neither final: 3 is prepared on 2's update.
        let w2 = writes(&[("k", Some("2")), ("j", Some("3"))]);
        let w3 = writes(&[("k", Some("4")), ("old", None), ("n", Some("5"))]);
        let p2 = Arc::new(t.prepare(&w2, 1).unwrap());
        let p3 = t.prepare_on(&w3, 2, std::slice::from_ref(&p2)).unwrap();
        let mut merged = w2.clone();
        merged.extend(w3.clone());
        assert_eq!(p3.root, t.prepare(&merged, 1).unwrap().root);
        assert_eq!(t.root_at(2).unwrap(), None, "nothing written yet");
        // Committed in order, the prepared updates are the tree.
        let store = s.channel("public");
        for (h, p) in [(2u64, &*p2), (3, &p3)] {
            let mut b = store.batch();
            t.write(p, h, &mut b).unwrap();
            b.commit().unwrap();
            t.committed(p);
        }
        assert_eq!(t.root_at(3).unwrap(), Some(p3.root));
        let (v, proof) = t.proof(b"k", 3).unwrap();
        assert_eq!(v.as_deref(), Some(&b"4"[..]));
        proof.verify(&p3.root.0, b"k", v.as_deref()).unwrap();
        let (v, proof) = t.proof(b"old", 3).unwrap();
        assert_eq!(v, None);
        proof.verify(&p3.root.0, b"old", None).unwrap();
        // A sibling of block 3 on the same parent has its own update.
        let other = t
            .prepare_on(&writes(&[("z", Some("9"))]), 2, std::slice::from_ref(&p2))
            .unwrap();
        assert_ne!(other.root, p3.root);
    }

    #[test]
    fn versions_behind_the_window_are_pruned_and_the_rest_stay_whole() {
        let d = tempfile::tempdir().unwrap();
        let (s, t) = tree(d.path(), 16);
        let mut blocks = vec![];
        for i in 0..60 {
            // The same keys again and again (stale values) and empty blocks (copied roots).
            if i % 3 == 0 {
                blocks.push(Writes::new());
            } else {
                blocks.push(writes(&[("hot", Some(&format!("{i}"))), ("x", Some("1"))]));
            }
        }
        let roots = commit_all(&s, &t, &blocks);
        let head = 60u64;
        assert_eq!(t.oldest_kept(head), head - 16);
        for h in t.oldest_kept(head)..=head {
            assert_eq!(t.root_at(h).unwrap(), Some(roots[h as usize]), "height {h}");
            let (v, p) = t.proof(b"hot", h).unwrap();
            p.verify(&roots[h as usize].0, b"hot", v.as_deref())
                .unwrap();
        }
        assert_eq!(t.root_at(10).unwrap(), None, "pruned");
        // Values live in the leaves: nothing is written to the old versioned values.
        let store = s.channel("public");
        let mut values = 0;
        store
            .scan_from(Kind::TreeValues, &[], |_, _| {
                values += 1;
                true
            })
            .unwrap();
        assert_eq!(values, 0, "versioned values written");
        let mut nodes = 0;
        store
            .scan_from(Kind::TreeNodes, &[], |_, _| {
                nodes += 1;
                true
            })
            .unwrap();
        assert!(nodes < 120, "{nodes} nodes for 2 keys over 17 versions");
    }

    /// Rewrites a store into the layout of before values moved into leaves: each leaf without
    /// its value, the value under its key hash and the leaf's version in `tree_values`.
    fn to_old_layout(s: &Storage) {
        let store = s.channel("public");
        let mut entries = Vec::new();
        store
            .scan_from(Kind::TreeNodes, &[], |k, v| {
                entries.push((k.to_vec(), v.to_vec()));
                true
            })
            .unwrap();
        let mut b = store.batch();
        let mut leaves = 0;
        for (k, v) in entries {
            if v[0] == tree_delta::DELTA {
                continue; // an internal node: the same in the old layout
            }
            let (node, value) = decode_entry(&v).unwrap();
            if let (Node::Leaf(l), Some(value)) = (&node, value) {
                let nk: NodeKey = borsh::from_slice(&k).unwrap();
                let old = [&[1u8][..], value].concat();
                b.put(
                    Kind::TreeValues,
                    &value_key(&l.key_hash(), nk.version()),
                    &old,
                );
                b.put(Kind::TreeNodes, &k, &borsh::to_vec(&node).unwrap());
                leaves += 1;
            }
        }
        assert!(leaves > 0);
        b.commit().unwrap();
    }

    #[test]
    fn a_tree_stored_before_leaves_held_values_reads_proves_and_updates_the_same() {
        let blocks: Vec<Writes> = (0..6)
            .map(|i| {
                let keys: Vec<String> = (0..40).map(|k| format!("k{}", k * 7 + i)).collect();
                keys.iter()
                    .map(|k| (k.as_bytes().to_vec(), Some(format!("{k}@{i}").into_bytes())))
                    .collect()
            })
            .collect();
        let next = writes(&[
            ("k3", Some("new")),
            ("fresh1", Some("a")),
            ("fresh2", Some("b")),
        ]);
        let (d_new, d_old) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let (s_new, t_new) = tree(d_new.path(), 16);
        let (s_old, t_old) = tree(d_old.path(), 16);
        let roots = commit_all(&s_new, &t_new, &blocks);
        assert_eq!(commit_all(&s_old, &t_old, &blocks), roots);
        to_old_layout(&s_old);
        // A node restarted on the old folder (nothing cached).
        let t_old = StateTree::new(s_old.channel("public"), 16);
        t_old.load().unwrap();
        for h in [3u64, 6] {
            for key in ["k3", "k10", "k41", "nothing"] {
                let (v, p) = t_old.proof(key.as_bytes(), h).unwrap();
                assert_eq!(
                    (v.clone(), p.clone()),
                    t_new.proof(key.as_bytes(), h).unwrap()
                );
                p.verify(&roots[h as usize].0, key.as_bytes(), v.as_deref())
                    .unwrap();
            }
        }
        // An update that replaces and moves old leaves gives the same root, and what it wrote
        // proves without the old values.
        let p_new = t_new.prepare(&next, 6).unwrap();
        let p_old = t_old.prepare(&next, 6).unwrap();
        assert_eq!(p_old.root, p_new.root);
        let store = s_old.channel("public");
        let mut b = store.batch();
        t_old.write(&p_old, 7, &mut b).unwrap();
        b.commit().unwrap();
        t_old.committed(&p_old);
        for key in ["k3", "fresh1", "fresh2", "k10"] {
            let (v, p) = t_old.proof(key.as_bytes(), 7).unwrap();
            p.verify(&p_old.root.0, key.as_bytes(), v.as_deref())
                .unwrap();
        }
        assert_eq!(t_old.proof(b"k3", 7).unwrap().0, Some(b"new".to_vec()));
    }

    /// Rewrites every node in jmt's borsh form (the layout before compact nodes); returns the
    /// bytes of the nodes before and after.
    fn to_borsh_layout(s: &Storage) -> (usize, usize) {
        let store = s.channel("public");
        let mut entries = Vec::new();
        store
            .scan_from(Kind::TreeNodes, &[], |k, v| {
                entries.push((k.to_vec(), v.to_vec()));
                true
            })
            .unwrap();
        let mut b = store.batch();
        let (mut compact, mut borsh_form) = (0, 0);
        for (k, v) in entries {
            // Written compact, but for the empty tree's null root.
            assert!(
                [tree_codec::INTERNAL, tree_codec::LEAF, tree_delta::DELTA].contains(&v[0])
                    || v == [0],
                "written compact: {v:?}"
            );
            let nk: NodeKey = borsh::from_slice(&k).unwrap();
            let (node, value) = decode_entry(&whole(&store, &nk, &v).unwrap())
                .map(|(n, v)| (n, v.map(<[u8]>::to_vec)))
                .unwrap();
            let mut old = borsh::to_vec(&node).unwrap();
            if let Some(value) = value {
                old.push(LEAF_VALUE);
                old.extend_from_slice(&value);
            }
            compact += v.len();
            borsh_form += old.len();
            b.put(Kind::TreeNodes, &k, &old);
        }
        b.commit().unwrap();
        (compact, borsh_form)
    }

    #[test]
    fn a_tree_stored_in_borsh_form_reads_proves_and_updates_the_same() {
        let blocks: Vec<Writes> = (0..6)
            .map(|i| {
                (0..300)
                    .map(|k| {
                        let key = format!("k{}", k * 7 + i);
                        (
                            key.clone().into_bytes(),
                            Some(format!("{key}@{i}").into_bytes()),
                        )
                    })
                    .collect()
            })
            .collect();
        let next = writes(&[("k3", Some("new")), ("fresh", Some("a")), ("k10", None)]);
        let (d_new, d_old) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let (s_new, t_new) = tree(d_new.path(), 16);
        let (s_old, t_old) = tree(d_old.path(), 16);
        let roots = commit_all(&s_new, &t_new, &blocks);
        assert_eq!(commit_all(&s_old, &t_old, &blocks), roots);
        let (compact, borsh_form) = to_borsh_layout(&s_old);
        assert!(
            compact * 4 < borsh_form * 3,
            "compact {compact} bytes against {borsh_form}"
        );
        let t_old = StateTree::new(s_old.channel("public"), 16);
        t_old.load().unwrap();
        for h in [3u64, 6] {
            for key in ["k3", "k10", "k41", "nothing"] {
                let (v, p) = t_old.proof(key.as_bytes(), h).unwrap();
                assert_eq!(
                    (v.clone(), p.clone()),
                    t_new.proof(key.as_bytes(), h).unwrap()
                );
                p.verify(&roots[h as usize].0, key.as_bytes(), v.as_deref())
                    .unwrap();
            }
        }
        let p_new = t_new.prepare(&next, 6).unwrap();
        let p_old = t_old.prepare(&next, 6).unwrap();
        assert_eq!(p_old.root, p_new.root);
        let store = s_old.channel("public");
        let mut b = store.batch();
        t_old.write(&p_old, 7, &mut b).unwrap();
        b.commit().unwrap();
        t_old.committed(&p_old);
        let t_old = StateTree::new(s_old.channel("public"), 16);
        t_old.load().unwrap();
        for key in ["k3", "fresh", "k10", "k17"] {
            let (v, p) = t_old.proof(key.as_bytes(), 7).unwrap();
            p.verify(&p_old.root.0, key.as_bytes(), v.as_deref())
                .unwrap();
        }
        assert_eq!(t_old.proof(b"k3", 7).unwrap().0, Some(b"new".to_vec()));
        assert_eq!(t_old.proof(b"k10", 7).unwrap().0, None);
    }

    fn stale_records(s: &Storage) -> Vec<u64> {
        let mut out = Vec::new();
        s.channel("public")
            .scan_from(Kind::TreeStale, &[], |k, _| {
                out.push(u64::from_be_bytes(k.try_into().unwrap()));
                true
            })
            .unwrap();
        out
    }

    #[test]
    fn pruning_resumes_where_it_stopped_even_after_a_lost_batch_or_a_restart() {
        let d = tempfile::tempdir().unwrap();
        let (s, t) = tree(d.path(), 16);
        let blocks: Vec<Writes> = (0..40)
            .map(|i| writes(&[("hot", Some(&format!("{i}")))]))
            .collect();
        commit_all(&s, &t, &blocks);
        // Versions 1..=24 are pruned: only the window's records remain.
        assert_eq!(stale_records(&s), (25..=40).collect::<Vec<_>>());

        // A block whose batch never reaches the disk (a failed write): its pruning is lost
        // with it, and the next block prunes the same version.
        let store = s.channel("public");
        let p = t.prepare(&writes(&[("hot", Some("lost"))]), 40).unwrap();
        let mut lost = store.batch();
        t.write(&p, 41, &mut lost).unwrap();
        drop(lost);
        let p = t.prepare(&writes(&[("hot", Some("kept"))]), 40).unwrap();
        let mut b = store.batch();
        t.write(&p, 41, &mut b).unwrap();
        b.commit().unwrap();
        t.committed(&p);
        assert_eq!(stale_records(&s), (26..=41).collect::<Vec<_>>());

        // A reopened tree (cursor unknown) finds its place again.
        let t2 = StateTree::new(s.channel("public"), 16);
        t2.load().unwrap();
        for h in 42..=44u64 {
            let p = t2
                .prepare(&writes(&[("hot", Some("again"))]), h - 1)
                .unwrap();
            let mut b = store.batch();
            t2.write(&p, h, &mut b).unwrap();
            b.commit().unwrap();
            t2.committed(&p);
        }
        assert_eq!(stale_records(&s), (29..=44).collect::<Vec<_>>());
    }

    #[test]
    fn genesis_in_chunks_counts_versions_from_its_last_chunk() {
        let d = tempfile::tempdir().unwrap();
        let (s, t) = tree(d.path(), 16);
        let store = s.channel("public");
        let flat = |b: &mut Batch<'_>, w: &Writes| {
            for (k, v) in w {
                b.put(Kind::State, k, v.as_deref().unwrap_or_default());
            }
        };
        t.genesis_chunk(&writes(&[("a", Some("1"))]), 0, flat)
            .unwrap();
        t.genesis_chunk(&writes(&[("b", Some("2"))]), 1, flat)
            .unwrap();
        let mut b = store.batch();
        let p = t
            .finish_genesis(&writes(&[("c", Some("3"))]), 2, &mut b)
            .unwrap();
        b.commit().unwrap();
        assert_eq!(t.root_at(0).unwrap(), Some(p.root));
        assert_eq!(store.get(Kind::State, b"a").unwrap(), Some(b"1".to_vec()));
        let (v, _) = t.proof(b"a", 0).unwrap();
        assert_eq!(v, Some(b"1".to_vec()));
        // Reopened, the base is read back.
        let t2 = StateTree::new(store.clone(), 16);
        t2.load().unwrap();
        assert_eq!(t2.root_at(0).unwrap(), Some(p.root));
        let one = writes(&[("d", Some("4"))]);
        let q = t2.prepare(&one, 0).unwrap();
        let mut b = store.batch();
        t2.write(&q, 1, &mut b).unwrap();
        b.commit().unwrap();
        assert_eq!(t2.root_at(1).unwrap(), Some(q.root));
        // An update prepared for another height is refused.
        let r = t2.prepare(&one, 0).unwrap();
        assert!(t2.write(&r, 2, &mut store.batch()).is_err());
    }

    #[test]
    fn warming_caches_the_upper_levels_and_changes_no_root() {
        let d = tempfile::tempdir().unwrap();
        let (s, t) = tree(d.path(), 16);
        let keys: Vec<(String, Option<&str>)> =
            (0..600).map(|i| (format!("k{i}"), Some("v"))).collect();
        let w: Writes = keys
            .iter()
            .map(|(k, v)| (k.as_bytes().to_vec(), v.map(|v| v.as_bytes().to_vec())))
            .collect();
        let roots = commit_all(&s, &t, &[w, writes(&[("k1", Some("w"))])]);
        // The stored form of every node key is what `key_bytes` builds from its path.
        let p = t.prepare(&writes(&[("k2", Some("x"))]), 2).unwrap();
        for k in p.update.node_batch.nodes().keys() {
            let path: Vec<u8> = k.nibble_path().nibbles().map(u8::from).collect();
            assert_eq!(
                tree_warm::key_bytes(k.version(), &path),
                borsh::to_vec(k).unwrap()
            );
        }
        // A reopened tree starts with an empty cache; warming fills it with the root and the
        // internal nodes below it (600 keys: the root, its 16 children and some of theirs).
        let t2 = StateTree::new(s.channel("public"), 16);
        t2.load().unwrap();
        assert_eq!(lock(&t2.cache).len(), 0);
        let n = t2.warm(2).unwrap();
        assert!(n > 17, "cached {n}");
        assert_eq!(lock(&t2.cache).len(), n);
        let root: NodeKey = borsh::from_slice(&tree_warm::key_bytes(t2.version(2), &[])).unwrap();
        assert!(lock(&t2.cache).contains_key(&root));
        // Updates on the warmed tree give the roots of the cold one.
        assert_eq!(t2.root_at(2).unwrap(), Some(roots[2]));
        assert_eq!(
            t2.prepare(&writes(&[("k2", Some("x"))]), 2).unwrap().root,
            p.root
        );
    }

    /// The stored keys of the nodes that the roots of `versions` reach, with the bases of the
    /// deltas among them.
    fn reachable(s: &Storage, versions: std::ops::RangeInclusive<Version>) -> HashSet<Vec<u8>> {
        let store = s.channel("public");
        let (mut seen, mut bases) = (HashSet::new(), HashSet::new());
        let mut todo: Vec<(Version, Vec<u8>)> = versions.map(|v| (v, vec![])).collect();
        while let Some((version, path)) = todo.pop() {
            let key = tree_warm::key_bytes(version, &path);
            if !seen.insert(key.clone()) {
                continue;
            }
            let k: NodeKey = borsh::from_slice(&key).unwrap();
            let v = store
                .get(Kind::TreeNodes, &key)
                .unwrap()
                .unwrap_or_else(|| panic!("{k:?} is reachable but not stored"));
            if let Some(c) = tree_delta::chain(&v, version).unwrap() {
                bases.insert(tree_warm::key_bytes(c.base, &path));
            }
            let (node, _) = decode_entry(&whole(&store, &k, &v).unwrap()).unwrap();
            if let Node::Internal(n) = node {
                for (i, c) in n.children_sorted() {
                    let mut child = path.clone();
                    child.push(u8::from(i));
                    todo.push((c.version, child));
                }
            }
        }
        seen.extend(bases);
        seen
    }

    #[test]
    fn nodes_near_the_root_stored_as_deltas_read_prove_prune_and_restart_whole() {
        let d = tempfile::tempdir().unwrap();
        let (s, t) = tree(d.path(), MIN_HISTORY);
        // 3,000 keys fill the levels near the root; then blocks change a few keys each, add
        // one, and now and then delete one (which jmt does).
        let first: Writes = (0..3000)
            .map(|i| (format!("k{i}").into_bytes(), Some(b"v0".to_vec())))
            .collect();
        let mut blocks = vec![first];
        for b in 1..=60u32 {
            let mut w: Writes = (0..4)
                .map(|j| {
                    let k = format!("k{}", (b * 37 + j * 911) % 3000);
                    (k.into_bytes(), Some(format!("v{b}").into_bytes()))
                })
                .collect();
            w.insert(format!("new{b}").into_bytes(), Some(b"n".to_vec()));
            if b % 10 == 0 {
                w.insert(format!("k{}", b * 13).into_bytes(), None);
            }
            blocks.push(w);
        }
        let (early, late) = blocks.split_at(40);
        let mut roots = commit_all(&s, &t, early);
        let store = s.channel("public");
        let count = |tag: u8| {
            let mut n = 0;
            store
                .scan_from(Kind::TreeNodes, &[], |_, v| {
                    n += usize::from(v.first() == Some(&tag));
                    true
                })
                .unwrap();
            n
        };
        let deltas = count(tree_delta::DELTA);
        assert!(deltas > 20, "{deltas} deltas stored");

        // A restarted tree (nothing cached, deltas read from disk) proves every kept version
        // against the roots the blocks made.
        let cold = StateTree::new(s.channel("public"), MIN_HISTORY);
        cold.load().unwrap();
        let head = early.len() as u64;
        for h in cold.oldest_kept(head)..=head {
            assert_eq!(
                cold.root_at(h).unwrap(),
                Some(roots[h as usize]),
                "root {h}"
            );
            for key in ["k37", "k948", "new3", "k130", "missing"] {
                let (v, p) = cold.proof(key.as_bytes(), h).unwrap();
                p.verify(&roots[h as usize].0, key.as_bytes(), v.as_deref())
                    .unwrap();
            }
        }
        // It goes on (warmed, as a node does) to the roots of the tree that never stopped.
        cold.warm(head).unwrap();
        let d2 = tempfile::tempdir().unwrap();
        let (s2, t2) = tree(d2.path(), MIN_HISTORY);
        let all = commit_all(&s2, &t2, &blocks);
        for (i, w) in late.iter().enumerate() {
            let h = head + 1 + i as u64;
            let p = cold.prepare(w, h - 1).unwrap();
            assert_eq!(p.root, all[h as usize], "root of block {h}");
            if i % 7 == 3 {
                // A batch written and lost (a crash before it reached the disk).
                let mut lost = store.batch();
                cold.write(&p, h, &mut lost).unwrap();
                drop(lost);
            }
            let mut b = store.batch();
            cold.write(&p, h, &mut b).unwrap();
            b.commit().unwrap();
            cold.committed(&p);
            roots.push(p.root);
        }

        // Pruning kept every base a kept version needs, and nothing else.
        let head = blocks.len() as u64;
        let from = cold.version(head) - MIN_HISTORY;
        let live = reachable(&s, from..=cold.version(head));
        let mut stored = HashSet::new();
        store
            .scan_from(Kind::TreeNodes, &[], |k, _| {
                stored.insert(k.to_vec());
                true
            })
            .unwrap();
        let leaked = stored.difference(&live).count();
        assert_eq!(leaked, 0, "{leaked} stored nodes no kept version reaches");
        assert!(count(tree_delta::DELTA) > 0);
    }

    #[test]
    fn the_full_length_estimate_is_the_compact_forms_length() {
        let mut c: tree_codec::Children = [None; 16];
        for (i, (version, count)) in [(0, 1), (127, 2), (128, 1), (u64::MAX, u64::MAX - 1)]
            .into_iter()
            .enumerate()
        {
            c[i * 4] = Some(([i as u8; 32], version, count));
            let real = tree_codec::compact_children(&c).unwrap();
            assert_eq!(full_len(&c), real.len(), "{c:?}");
        }
    }
}
