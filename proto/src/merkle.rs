//! Binary Merkle trees over 32-byte items, with inclusion proofs.
//!
//! Leaves are domain-separated from inner nodes so an inner node can never be passed off as a
//! leaf: `leaf = SHA3-256(0x00 || item)`, `node = SHA3-256(0x01 || left || right)`. An odd last
//! node is carried up unchanged. The root of an empty tree is all zeroes.

use crate::{hash::sha3_256, Hash32, ProtoError};

/// Largest accepted proof length (a tree of 2^64 leaves).
pub const MAX_PROOF_LEN: usize = 64;

/// One step of an inclusion proof: a sibling and which side it sits on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProofStep {
    /// The sibling hash.
    pub sibling: Hash32,
    /// True when the sibling is the left child (so the running hash is on the right).
    pub sibling_is_left: bool,
}

fn leaf(item: &Hash32) -> Hash32 {
    sha3_256(&[&[0u8], &item.0])
}

fn node(l: &Hash32, r: &Hash32) -> Hash32 {
    sha3_256(&[&[1u8], &l.0, &r.0])
}

fn next_level(level: &[Hash32]) -> Vec<Hash32> {
    level
        .chunks(2)
        .map(|c| {
            if c.len() == 2 {
                node(&c[0], &c[1])
            } else {
                c[0]
            }
        })
        .collect()
}

/// The root over `items` in order.
pub fn root(items: &[Hash32]) -> Hash32 {
    if items.is_empty() {
        return Hash32::ZERO;
    }
    let mut level: Vec<Hash32> = items.iter().map(leaf).collect();
    while level.len() > 1 {
        level = next_level(&level);
    }
    level[0]
}

/// The inclusion proof of `items[index]`, or `None` when out of range.
pub fn prove(items: &[Hash32], index: usize) -> Option<Vec<ProofStep>> {
    if index >= items.len() {
        return None;
    }
    let mut level: Vec<Hash32> = items.iter().map(leaf).collect();
    let mut idx = index;
    let mut proof = Vec::new();
    while level.len() > 1 {
        let sib = idx ^ 1;
        if sib < level.len() {
            proof.push(ProofStep {
                sibling: level[sib],
                sibling_is_left: sib < idx,
            });
        }
        level = next_level(&level);
        idx /= 2;
    }
    Some(proof)
}

/// Checks that `item` is in the tree with root `expected` by `proof`.
pub fn verify(expected: &Hash32, item: &Hash32, proof: &[ProofStep]) -> Result<(), ProtoError> {
    if proof.len() > MAX_PROOF_LEN {
        return Err(ProtoError::TooLarge {
            what: "Merkle proof",
            size: proof.len(),
            limit: MAX_PROOF_LEN,
        });
    }
    let got = proof.iter().fold(leaf(item), |acc, s| {
        if s.sibling_is_left {
            node(&s.sibling, &acc)
        } else {
            node(&acc, &s.sibling)
        }
    });
    if &got != expected {
        return Err(ProtoError::invalid(
            "proof",
            "a path to the committed root",
            format!("root {got}, want {expected}"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(n: usize) -> Vec<Hash32> {
        (0..n)
            .map(|i| sha3_256(&[&(i as u64).to_be_bytes()]))
            .collect()
    }

    #[test]
    fn every_item_proves_for_every_size() {
        for n in 1..=17 {
            let xs = items(n);
            let r = root(&xs);
            for (i, x) in xs.iter().enumerate() {
                let p = prove(&xs, i).unwrap();
                verify(&r, x, &p).unwrap();
                assert!(verify(&r, &xs[(i + 1) % n], &p).is_err() || n == 1);
            }
            assert!(prove(&xs, n).is_none());
        }
        assert_eq!(root(&[]), Hash32::ZERO);
    }

    #[test]
    fn inner_node_is_not_a_leaf() {
        let xs = items(4);
        let r = root(&xs);
        let inner = node(&leaf(&xs[0]), &leaf(&xs[1]));
        let p = prove(&xs, 0).unwrap();
        assert!(verify(&r, &inner, &p[1..]).is_err());
    }
}
