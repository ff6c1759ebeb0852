//! Loading the state tree's upper levels when a node starts, level by level, one RocksDB
//! multi-get per level: a restarted node's first blocks would otherwise read them one lookup
//! per node (at 10 million keys, some 0.7 lookups per new key over its first 30,000).

use crate::error::NodeError;
use crate::ledger::storage::{ChannelStore, Kind};
use crate::ledger::tree_delta::{self, Chain};
use jmt::storage::{Node, NodeKey};
use jmt::Version;
use std::collections::HashMap;
use std::sync::{Mutex, RwLock};

/// A map keyed by node keys, with a fast hash seeded per process (with SipHash, lookups were
/// a third of the samples of writing a block's tree on a fresh state).
pub type NodeMap<V> = HashMap<NodeKey, V, foldhash::fast::RandomState>;

/// Nodes by node key, each leaf with its value.
pub type Nodes = NodeMap<(Node, Option<Vec<u8>>)>;

/// The stored form (borsh) of the node key of `path` (one nibble per byte) at `version`.
pub fn key_bytes(version: Version, path: &[u8]) -> Vec<u8> {
    let (buf, len) = key_buf(version, path);
    buf[..len].to_vec()
}

/// [`key_bytes`] in a buffer on the stack, with its length; `path` holds at most 64 nibbles
/// (a key hash's).
pub fn key_buf(version: Version, path: &[u8]) -> ([u8; 52], usize) {
    let mut buf = [0u8; 52];
    let bytes = path.len().div_ceil(2);
    buf[..8].copy_from_slice(&version.to_le_bytes());
    buf[8..16].copy_from_slice(&(path.len() as u64).to_le_bytes());
    buf[16..20].copy_from_slice(&(bytes as u32).to_le_bytes());
    for (i, pair) in path.chunks(2).enumerate() {
        buf[20 + i] = pair[0] << 4 | pair.get(1).copied().unwrap_or(0);
    }
    (buf, 20 + bytes)
}

fn corrupt(reason: String) -> NodeError {
    NodeError::Corrupt {
        what: "state tree",
        reason,
    }
}

fn decode<T: borsh::BorshDeserialize>(what: &str, b: &[u8]) -> Result<T, NodeError> {
    borsh::from_slice(b).map_err(|e| corrupt(format!("{what} does not decode: {e}")))
}

/// A stored entry (a delta made whole) with its chain.
type Read = (Option<Vec<u8>>, Option<Chain>);

/// The entries of `level` (node keys with their paths, in order) as stored, each delta made
/// whole from its base (one more multi-get for the level's deltas), with their chains.
fn read_level(store: &ChannelStore, level: &[(Vec<u8>, Vec<u8>)]) -> Result<Vec<Read>, NodeError> {
    let values = store.multi_get(Kind::TreeNodes, level.iter().map(|(k, _)| k))?;
    let mut out = Vec::with_capacity(values.len());
    let mut deltas = Vec::new();
    for ((k, path), v) in level.iter().zip(values) {
        let Some(v) = v else {
            out.push((None, None));
            continue;
        };
        let version = decode::<NodeKey>("a node key", k)?.version();
        let chain = tree_delta::chain(&v, version).map_err(|e| corrupt(e.to_string()))?;
        if let (Some(&tree_delta::DELTA), Some(c)) = (v.first(), chain) {
            deltas.push((out.len(), version, key_bytes(c.base, path)));
        }
        out.push((Some(v), chain));
    }
    // Multi-gets take their keys in order.
    deltas.sort_unstable_by(|a, b| a.2.cmp(&b.2));
    let bases = store.multi_get(Kind::TreeNodes, deltas.iter().map(|(_, _, k)| k))?;
    for ((i, version, _), base) in deltas.into_iter().zip(bases) {
        let base = base.ok_or_else(|| {
            corrupt(format!(
                "the base of a delta of version {version} is missing"
            ))
        })?;
        let entry = &mut out[i].0;
        let delta = entry.take().unwrap_or_default();
        let hash = crate::ledger::state_tree::value_hash;
        let full = tree_delta::resolve(&delta, version, &base, hash)
            .map_err(|e| corrupt(e.to_string()))?;
        *entry = Some(full);
    }
    Ok(out)
}

/// Loads the nodes of tree version `version` down to `depth` nibbles into `cache`, one
/// multi-get per level (two where a level holds deltas), until the cache holds `limit` nodes;
/// the chain of each internal node below the root goes into `chains`.
pub fn warm(
    store: &ChannelStore,
    cache: &RwLock<Nodes>,
    chains: &Mutex<NodeMap<Chain>>,
    version: Version,
    depth: usize,
    limit: usize,
) -> Result<usize, NodeError> {
    // Each level's stored node keys with their paths (one nibble per byte).
    let mut level: Vec<(Vec<u8>, Vec<u8>)> = vec![(key_bytes(version, &[]), vec![])];
    let mut loaded = 0;
    for _ in 0..=depth {
        level.sort_unstable();
        let values = read_level(store, &level)?;
        let mut next = Vec::new();
        let mut c = cache.write().unwrap_or_else(|p| p.into_inner());
        let mut ch = chains.lock().unwrap_or_else(|p| p.into_inner());
        for ((k, path), (v, chain)) in level.into_iter().zip(values) {
            let Some(v) = v else {
                continue;
            };
            let (node, value) = crate::ledger::state_tree::decode_entry(&v)?;
            let value = value.map(<[u8]>::to_vec);
            if matches!(node, Node::Leaf(_)) && value.is_none() {
                // A leaf of the layout before values moved into leaves: read when needed.
                continue;
            }
            if let Node::Internal(n) = &node {
                if path.len() < depth {
                    for (i, child) in n.children_sorted() {
                        if !child.is_leaf() {
                            let mut p = path.clone();
                            p.push(u8::from(i));
                            next.push((key_bytes(child.version, &p), p));
                        }
                    }
                }
            }
            if c.len() >= limit {
                return Ok(loaded);
            }
            let key: NodeKey = decode("a node key", &k)?;
            if let (Some(chain), false) = (chain, path.is_empty()) {
                ch.insert(key.clone(), chain);
            }
            c.entry(key).or_insert((node, value));
            loaded += 1;
        }
        level = next;
    }
    Ok(loaded)
}
