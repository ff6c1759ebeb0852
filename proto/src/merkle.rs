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

/// A whole tree kept by levels, for many proofs over the same items (each proof by
/// [`prove`] rebuilds the tree).
#[derive(Debug, Clone)]
pub struct Tree {
    levels: Vec<Vec<Hash32>>,
}

impl Tree {
    /// The tree over `items` in order.
    pub fn new(items: &[Hash32]) -> Self {
        let mut levels = vec![items.iter().map(leaf).collect::<Vec<_>>()];
        while levels.last().is_some_and(|l| l.len() > 1) {
            let next = next_level(levels.last().map(Vec::as_slice).unwrap_or(&[]));
            levels.push(next);
        }
        Tree { levels }
    }

    /// The root (zero for no items), equal to [`root`].
    pub fn root(&self) -> Hash32 {
        match self.levels.last() {
            Some(l) if l.len() == 1 => l[0],
            _ => Hash32::ZERO,
        }
    }

    /// The proof of item `index`, equal to [`prove`].
    pub fn prove(&self, index: usize) -> Option<Vec<ProofStep>> {
        if index >= self.levels.first().map_or(0, Vec::len) {
            return None;
        }
        let mut idx = index;
        let mut proof = Vec::new();
        for level in &self.levels[..self.levels.len() - 1] {
            let sib = idx ^ 1;
            if sib < level.len() {
                proof.push(ProofStep {
                    sibling: level[sib],
                    sibling_is_left: sib < idx,
                });
            }
            idx /= 2;
        }
        Some(proof)
    }
}

/// The nodes a change of some items rewrites, per level, and the new root: computed from a
/// [`Tree`] without copying it, applied with [`Tree::apply`].
#[derive(Debug, Clone, Default)]
pub struct TreeUpdate {
    levels: Vec<std::collections::BTreeMap<usize, Hash32>>,
    /// The root after the change.
    pub root: Hash32,
}

impl Tree {
    /// The root after replacing the items at the given positions (each below the item count),
    /// hashing only the paths above them.
    pub fn updated(&self, items: &std::collections::BTreeMap<usize, Hash32>) -> TreeUpdate {
        use std::collections::BTreeMap;
        let n = self.levels.len();
        let mut levels: Vec<BTreeMap<usize, Hash32>> = Vec::with_capacity(n);
        let mut cur: BTreeMap<usize, Hash32> = items
            .iter()
            .filter(|(i, _)| **i < self.levels.first().map_or(0, Vec::len))
            .map(|(i, h)| (*i, leaf(h)))
            .collect();
        for (l, level) in self.levels.iter().enumerate() {
            let next: BTreeMap<usize, Hash32> = if l + 1 < n {
                let get = |i: usize| cur.get(&i).copied().unwrap_or(level[i]);
                let mut parents: Vec<usize> = cur.keys().map(|i| i / 2).collect();
                parents.dedup();
                parents
                    .into_iter()
                    .map(|p| {
                        let h = if 2 * p + 1 < level.len() {
                            node(&get(2 * p), &get(2 * p + 1))
                        } else {
                            get(2 * p)
                        };
                        (p, h)
                    })
                    .collect()
            } else {
                BTreeMap::new()
            };
            levels.push(cur);
            cur = next;
        }
        let root = levels
            .last()
            .and_then(|top| top.get(&0).copied())
            .unwrap_or_else(|| self.root());
        TreeUpdate { levels, root }
    }

    /// Writes an update made by [`Tree::updated`] on this tree.
    pub fn apply(&mut self, u: TreeUpdate) {
        for (level, changes) in self.levels.iter_mut().zip(u.levels) {
            for (i, h) in changes {
                if let Some(slot) = level.get_mut(i) {
                    *slot = h;
                }
            }
        }
    }
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
            let t = Tree::new(&xs);
            assert_eq!(t.root(), r);
            for i in 0..=n {
                assert_eq!(t.prove(i), prove(&xs, i), "n {n} i {i}");
            }
        }
        assert_eq!(Tree::new(&[]).root(), Hash32::ZERO);
        assert_eq!(root(&[]), Hash32::ZERO);
    }

    #[test]
    fn an_updated_tree_has_the_root_of_a_rebuilt_one() {
        for n in [1usize, 2, 3, 7, 16, 17, 4096] {
            let mut xs = items(n);
            let mut t = Tree::new(&xs);
            for round in 0..3u64 {
                let changes: std::collections::BTreeMap<usize, Hash32> = (0..n)
                    .filter(|i| (*i as u64 + round).is_multiple_of(5) || *i == n - 1)
                    .map(|i| {
                        (
                            i,
                            sha3_256(&[&round.to_be_bytes(), &(i as u64).to_be_bytes()]),
                        )
                    })
                    .collect();
                for (i, h) in &changes {
                    xs[*i] = *h;
                }
                let u = t.updated(&changes);
                assert_eq!(u.root, root(&xs), "n {n} round {round}");
                t.apply(u);
                assert_eq!(t.root(), root(&xs));
                assert_eq!(t.prove(n / 2), prove(&xs, n / 2));
            }
            assert_eq!(t.updated(&Default::default()).root, root(&xs));
        }
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
