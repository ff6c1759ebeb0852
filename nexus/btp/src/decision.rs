//! What Nexus notaries sign for chains that verify with `ecrecover` (Ethereum): a decision per
//! notary block, hashed with Keccak-256 in the shape `contracts/src/NexusVerifier.sol` checks,
//! a Keccak Merkle tree of the block's messages, and the relay a portal submits to the Solidity
//! BMC (ABI-encoded).
//!
//! - decision = keccak256(abi.encode(DOMAIN, keccak256(src), height, blockHash, messagesRoot,
//!   keccak256(abi.encodePacked(nextSet)))), `DOMAIN = keccak256("nexus/btp-decision/1")`,
//!   `nextSet` empty when the set does not change;
//! - leaf = keccak256(0x00 || keccak256(next) || seq (32 bytes) || keccak256(msg));
//! - inner = keccak256(0x01 || left || right); an unpaired last node moves up unchanged; the
//!   root of no messages is zero;
//! - a signature is 65 bytes r || s || v with v = 27 or 28, s in the lower half.

use alloy_primitives::{Address as EthAddress, Bytes, FixedBytes, U256};
use alloy_sol_types::{sol, SolValue};
use nexus_proto::hash::keccak256;
use nexus_proto::{Hash32, KeyPair};

sol! {
    /// One message with its path (the verifier's `Msg`).
    struct RelayMsg {
        uint256 seq;
        bytes msg;
        bytes32[] path;
        uint256 sides;
    }

    /// A relay (the verifier's `Relay`).
    struct Relay {
        string src;
        uint64 height;
        bytes32 blockHash;
        bytes32 messagesRoot;
        address[] nextSet;
        bytes[] sigs;
        RelayMsg[] msgs;
    }
}

/// Most messages a tree holds (the path's side bits fit a uint256).
pub const MAX_TREE_LEAVES: usize = 1 << 20;

/// The decision of one notary block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// The source network whose notary channel decided (`0x3.loop`).
    pub src: String,
    /// The notary block's height.
    pub height: u64,
    /// The notary block's hash.
    pub block_hash: Hash32,
    /// Root of the block's messages ([`MessageTree`]).
    pub messages_root: Hash32,
    /// The next notary set as Ethereum addresses, empty when it does not change.
    pub next_set: Vec<[u8; 20]>,
}

fn word_u64(v: u64) -> [u8; 32] {
    let mut w = [0u8; 32];
    w[24..].copy_from_slice(&v.to_be_bytes());
    w
}

fn word_u128(v: u128) -> [u8; 32] {
    let mut w = [0u8; 32];
    w[16..].copy_from_slice(&v.to_be_bytes());
    w
}

impl Decision {
    /// The hash the notaries sign.
    pub fn hash(&self) -> Hash32 {
        let domain = keccak256(&[b"nexus/btp-decision/1"]);
        let src = keccak256(&[self.src.as_bytes()]);
        let padded: Vec<[u8; 32]> = self
            .next_set
            .iter()
            .map(|a| {
                let mut w = [0u8; 32];
                w[12..].copy_from_slice(a);
                w
            })
            .collect();
        let parts: Vec<&[u8]> = padded.iter().map(|w| w.as_slice()).collect();
        let set = keccak256(&parts);
        keccak256(&[
            &domain.0,
            &src.0,
            &word_u64(self.height),
            &self.block_hash.0,
            &self.messages_root.0,
            &set.0,
        ])
    }

    /// Signs the decision as the verifier expects (`r || s || v`, v = 27 or 28).
    pub fn sign(&self, key: &KeyPair) -> [u8; 65] {
        let mut sig = key.sign(&self.hash()).0;
        sig[64] += 27;
        sig
    }
}

pub use nexus_proto::signature::{eth_address, eth_address_of};

/// The leaf of a message for `next` with sequence `seq`.
pub fn leaf_hash(next: &str, seq: u128, msg: &[u8]) -> Hash32 {
    keccak256(&[
        &[0u8],
        &keccak256(&[next.as_bytes()]).0,
        &word_u128(seq),
        &keccak256(&[msg]).0,
    ])
}

fn inner(l: &Hash32, r: &Hash32) -> Hash32 {
    keccak256(&[&[1u8], &l.0, &r.0])
}

/// The Keccak Merkle tree of a block's messages, in order.
#[derive(Debug, Clone)]
pub struct MessageTree {
    levels: Vec<Vec<Hash32>>,
}

/// A message's path: siblings from the leaf up, and bit i set when sibling i is on the left.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessagePath {
    /// Sibling hashes, leaf level first.
    pub siblings: Vec<Hash32>,
    /// Side bits.
    pub sides: u128,
}

impl MessageTree {
    /// Builds the tree over `leaves` (at most [`MAX_TREE_LEAVES`]; more are refused).
    pub fn new(leaves: Vec<Hash32>) -> Option<Self> {
        if leaves.len() > MAX_TREE_LEAVES {
            return None;
        }
        let mut levels = vec![leaves];
        while levels.last().is_some_and(|l| l.len() > 1) {
            let below = levels.last().expect("non-empty");
            let up = below
                .chunks(2)
                .map(|c| {
                    if c.len() == 2 {
                        inner(&c[0], &c[1])
                    } else {
                        c[0]
                    }
                })
                .collect();
            levels.push(up);
        }
        Some(MessageTree { levels })
    }

    /// The root (zero for no messages).
    pub fn root(&self) -> Hash32 {
        self.levels
            .last()
            .and_then(|l| l.first())
            .copied()
            .unwrap_or(Hash32::ZERO)
    }

    /// The path of leaf `index`.
    pub fn path(&self, mut index: usize) -> Option<MessagePath> {
        if index >= self.levels[0].len() {
            return None;
        }
        let mut siblings = Vec::new();
        let mut sides = 0u128;
        for level in &self.levels[..self.levels.len() - 1] {
            let sib = index ^ 1;
            if sib < level.len() {
                if sib < index {
                    sides |= 1 << siblings.len();
                }
                siblings.push(level[sib]);
            }
            index /= 2;
        }
        Some(MessagePath { siblings, sides })
    }

    /// Recomputes a root from a leaf and its path (what the verifier does).
    pub fn root_from(leaf: Hash32, path: &MessagePath) -> Hash32 {
        path.siblings.iter().enumerate().fold(leaf, |h, (i, s)| {
            if path.sides >> i & 1 == 1 {
                inner(s, &h)
            } else {
                inner(&h, s)
            }
        })
    }
}

/// One message of a relay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayItem {
    /// Its sequence number towards the destination.
    pub seq: u128,
    /// The BTP message (RLP).
    pub msg: Vec<u8>,
    /// Its path in the decision's tree.
    pub path: MessagePath,
}

/// ABI-encodes a relay for `handleRelayMessage(bytes)`.
pub fn encode_relay(decision: &Decision, sigs: &[[u8; 65]], items: &[RelayItem]) -> Vec<u8> {
    let h = |x: &Hash32| FixedBytes::<32>::from(x.0);
    Relay {
        src: decision.src.clone(),
        height: decision.height,
        blockHash: h(&decision.block_hash),
        messagesRoot: h(&decision.messages_root),
        nextSet: decision
            .next_set
            .iter()
            .map(|a| EthAddress::from(*a))
            .collect(),
        sigs: sigs.iter().map(|s| Bytes::from(s.to_vec())).collect(),
        msgs: items
            .iter()
            .map(|i| RelayMsg {
                seq: U256::from(i.seq),
                msg: Bytes::from(i.msg.clone()),
                path: i.path.siblings.iter().map(h).collect(),
                sides: U256::from(i.path.sides),
            })
            .collect(),
    }
    .abi_encode()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaves(n: usize) -> Vec<Hash32> {
        (0..n)
            .map(|i| leaf_hash("0x539.eth", i as u128 + 1, &[i as u8]))
            .collect()
    }

    #[test]
    fn every_leaf_leads_to_the_root_for_every_tree_size() {
        for n in 1..=33 {
            let t = MessageTree::new(leaves(n)).unwrap();
            for (i, l) in leaves(n).into_iter().enumerate() {
                let p = t.path(i).unwrap();
                assert_eq!(MessageTree::root_from(l, &p), t.root(), "n={n} i={i}");
            }
            assert!(t.path(n).is_none());
        }
        assert_eq!(MessageTree::new(vec![]).unwrap().root(), Hash32::ZERO);
    }

    #[test]
    fn a_leaf_with_another_path_or_content_misses_the_root() {
        let t = MessageTree::new(leaves(5)).unwrap();
        let p = t.path(2).unwrap();
        let l = leaves(5);
        assert_ne!(MessageTree::root_from(l[3], &p), t.root());
        let mut flipped = p.clone();
        flipped.sides ^= 1;
        assert_ne!(MessageTree::root_from(l[2], &flipped), t.root());
        assert_ne!(
            MessageTree::root_from(leaf_hash("0x539.eth", 3, &[9]), &p),
            t.root()
        );
        // The same message for another destination is another leaf.
        assert_ne!(leaf_hash("0x1.eth", 3, &[2]), l[2]);
    }

    #[test]
    fn the_signer_is_recovered_as_the_keys_eth_address() {
        let k = KeyPair::generate();
        let d = Decision {
            src: "0x3.loop".into(),
            height: 7,
            block_hash: Hash32([1; 32]),
            messages_root: Hash32([2; 32]),
            next_set: vec![],
        };
        let sig = d.sign(&k);
        assert!(sig[64] == 27 || sig[64] == 28);
        let mut icon = sig;
        icon[64] -= 27;
        let public = nexus_proto::Signature(icon).recover(&d.hash()).unwrap();
        let h = keccak256(&[&public.serialize_uncompressed()[1..]]);
        assert_eq!(h.0[12..], eth_address(&k));
        // Every field is covered.
        let mut other = d.clone();
        other.next_set = vec![[0; 20]];
        assert_ne!(other.hash(), d.hash());
        other = d.clone();
        other.height = 8;
        assert_ne!(other.hash(), d.hash());
    }
}
