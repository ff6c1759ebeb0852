//! Internal nodes near the root stored as their changes from an earlier full copy of the node
//! at the same path (its base), so a block that changes one child of a full 16-way node writes
//! that child, not all sixteen.
//!
//! At 10 million keys the nodes of levels 2 to 4 are full (some 600 bytes each) and every
//! block rewrote each one on a changed path whole: two thirds of the tree's bytes. A delta:
//! [`DELTA`], the base's version (LEB128), the 16-bit maps of present children, of leaf
//! children and of the slots that differ from the base (big-endian), then each present
//! changed child in slot order as in the compact internal form ([`super::tree_codec`]). A
//! delta names a full node, never another delta; the next write of the path is a delta on the
//! same base or, once more than [`MAX_CHANGED`] slots differ or the delta would be more than
//! half the full node, a full node again (the state tree decides).
//!
//! The base has to outlive the deltas that name it: the state tree does not record it stale
//! when a delta replaces it, but when the full node that ends its chain is written (or the
//! path goes), so pruning deletes it with or after the last delta on it.

use super::tree_codec::{
    compact, compact_children, err, put_leb, read_children, take, take_leb, Children, CodecError,
    INTERNAL,
};

/// First byte of a delta.
pub const DELTA: u8 = 0x12;

/// Most slots a delta may hold changed from its base; past it the node is written whole.
pub const MAX_CHANGED: u32 = 5;

/// Where a stored internal node's chain stands: its base's version and the slots it differs
/// in from it (a full node is its own base, with none).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Chain {
    /// The version of the full node a delta is read against.
    pub base: u64,
    /// One bit per slot that differs from the base.
    pub changed: u16,
}

/// The delta of an internal node with `children` against the full node of version `base`,
/// where the slots in `changed` differ; `None` when the node has no children.
pub fn encode(base: u64, children: &Children, changed: u16) -> Option<Vec<u8>> {
    let (mut present, mut leaves) = (0u16, 0u16);
    let mut out = Vec::with_capacity(16 + changed.count_ones() as usize * 42);
    out.push(DELTA);
    put_leb(&mut out, base);
    let maps = out.len();
    out.extend_from_slice(&[0; 6]);
    for (slot, child) in children.iter().enumerate() {
        let bit = 1u16 << slot;
        let Some((hash, version, count)) = child else {
            continue;
        };
        present |= bit;
        if *count == 1 {
            leaves |= bit;
        }
        if changed & bit != 0 {
            out.extend_from_slice(hash);
            put_leb(&mut out, *version);
            if *count != 1 {
                put_leb(&mut out, *count);
            }
        }
    }
    if present == 0 {
        return None;
    }
    out[maps..maps + 2].copy_from_slice(&present.to_be_bytes());
    out[maps + 2..maps + 4].copy_from_slice(&leaves.to_be_bytes());
    out[maps + 4..maps + 6].copy_from_slice(&changed.to_be_bytes());
    Some(out)
}

/// The parts of a delta: its chain, the maps of present and leaf children, and the bytes of
/// its changed children.
struct Parts<'a> {
    chain: Chain,
    present: u16,
    leaves: u16,
    body: &'a [u8],
}

fn parts(stored: &[u8]) -> Result<Parts<'_>, CodecError> {
    let mut input = stored
        .strip_prefix(&[DELTA])
        .ok_or_else(|| err("is not a delta"))?;
    let base = take_leb(&mut input)?;
    let present = u16::from_be_bytes(*take::<2>(&mut input, "a delta's children's map")?);
    let leaves = u16::from_be_bytes(*take::<2>(&mut input, "a delta's leaves' map")?);
    let changed = u16::from_be_bytes(*take::<2>(&mut input, "a delta's changed map")?);
    if present == 0 || leaves & !present != 0 {
        return Err(err(format!(
            "is a delta with children {present:#06x} and leaves {leaves:#06x}"
        )));
    }
    Ok(Parts {
        chain: Chain { base, changed },
        present,
        leaves,
        body: input,
    })
}

/// The chain of a stored entry of version `version`: a delta's, or a full internal node's
/// (compact or borsh) as its own base; `None` for a leaf or a null node.
pub fn chain(stored: &[u8], version: u64) -> Result<Option<Chain>, CodecError> {
    match stored.first() {
        None => Err(err("is empty")),
        Some(&DELTA) => parts(stored).map(|p| Some(p.chain)),
        // Compact internal, or borsh's `Node::Internal`.
        Some(&INTERNAL) | Some(&1) => Ok(Some(Chain {
            base: version,
            changed: 0,
        })),
        Some(_) => Ok(None),
    }
}

/// The full node (in the compact internal form) that the delta `stored`, of version
/// `version`, makes of its base `base` (the entry stored under the base's node key, compact or
/// borsh). Refused: a base that is not an internal node or is itself a delta, a base not older
/// than the delta, and a delta whose unchanged slots disagree with its base.
pub fn resolve(
    stored: &[u8],
    version: u64,
    base: &[u8],
    hash: impl Fn(&[u8]) -> [u8; 32],
) -> Result<Vec<u8>, CodecError> {
    let p = parts(stored)?;
    if p.chain.base >= version {
        return Err(err(format!(
            "is a delta of version {version} on a base of version {}",
            p.chain.base
        )));
    }
    let base_children = match base.first() {
        Some(&INTERNAL) => read_children(&base[1..])?,
        Some(&DELTA) => return Err(err("is a delta whose base is a delta")),
        _ => match compact(base, None, &hash)? {
            Some(c) if c.first() == Some(&INTERNAL) => read_children(&c[1..])?,
            _ => return Err(err("is a delta whose base is not an internal node")),
        },
    };
    let mut input = p.body;
    let mut children: Children = [None; 16];
    for (slot, (child, from_base)) in children.iter_mut().zip(base_children).enumerate() {
        let bit = 1u16 << slot;
        let leaf = p.leaves & bit != 0;
        if p.chain.changed & bit == 0 {
            let agrees = match from_base {
                None => p.present & bit == 0,
                Some((_, _, count)) => p.present & bit != 0 && (count == 1) == leaf,
            };
            if !agrees {
                return Err(err(format!(
                    "is a delta that disagrees with its base at slot {slot}"
                )));
            }
            *child = from_base;
            continue;
        }
        if p.present & bit == 0 {
            continue;
        }
        let hash = *take::<32>(&mut input, "a delta's child's hash")?;
        let version = take_leb(&mut input)?;
        let count = if leaf {
            1
        } else {
            let count = take_leb(&mut input)?;
            if count < 2 {
                return Err(err(format!("has an internal child of {count} leaves")));
            }
            count
        };
        *child = Some((hash, version, count));
    }
    if !input.is_empty() {
        return Err(err(format!(
            "is a delta with {} bytes after its children",
            input.len()
        )));
    }
    let full = compact_children(&children).ok_or_else(|| err("is a delta with no children"))?;
    // The full form's own checks (a single leaf child, leaf counts that overflow).
    read_children(&full[1..])?;
    Ok(full)
}

/// The slots in which `a` and `b` differ.
pub fn changed(a: &Children, b: &Children) -> u16 {
    a.iter()
        .zip(b)
        .enumerate()
        .filter(|(_, (x, y))| x != y)
        .fold(0, |m, (slot, _)| m | 1 << slot)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(v: &[u8]) -> [u8; 32] {
        use sha2::Digest;
        sha2::Sha256::digest(v).into()
    }

    /// Children at `slots`: (slot, tag of its hash, version, leaf count).
    fn kids(slots: &[(usize, u8, u64, u64)]) -> Children {
        let mut c: Children = [None; 16];
        for &(s, tag, version, count) in slots {
            c[s] = Some(([tag; 32], version, count));
        }
        c
    }

    fn full(c: &Children) -> Vec<u8> {
        compact_children(c).unwrap()
    }

    fn wide() -> Children {
        let all: Vec<_> = (0..16).map(|s| (s, s as u8, 10, 1000 + s as u64)).collect();
        kids(&all)
    }

    #[test]
    fn a_delta_resolves_to_the_full_node_it_stands_for() {
        let base = wide();
        let mut now = base;
        now[3] = Some(([0xaa; 32], 17, 1001));
        now[9] = Some(([0xbb; 32], 17, 1));
        let changed = changed(&base, &now);
        assert_eq!(changed, 1 << 3 | 1 << 9);
        let d = encode(10, &now, changed).unwrap();
        assert!(d.len() < full(&now).len() / 4, "{} bytes", d.len());
        assert_eq!(resolve(&d, 17, &full(&base), h).unwrap(), full(&now));
        assert_eq!(chain(&d, 17).unwrap(), Some(Chain { base: 10, changed }));
        assert_eq!(
            chain(&full(&now), 17).unwrap(),
            Some(Chain {
                base: 17,
                changed: 0
            })
        );
    }

    #[test]
    fn children_added_and_removed_since_the_base_resolve() {
        let base = kids(&[(0, 1, 5, 1), (4, 2, 5, 3), (8, 3, 5, 1)]);
        let now = kids(&[(0, 1, 5, 1), (2, 9, 6, 1), (8, 7, 6, 4)]);
        let m = changed(&base, &now);
        let d = encode(5, &now, m).unwrap();
        assert_eq!(resolve(&d, 6, &full(&base), h).unwrap(), full(&now));
    }

    #[test]
    fn a_base_in_jmts_borsh_form_serves() {
        let base = kids(&[(1, 1, 2, 1), (2, 2, 2, 7)]);
        let borsh = crate::ledger::tree_codec::expand(&full(&base), h)
            .unwrap()
            .unwrap()
            .0;
        let now = kids(&[(1, 1, 2, 1), (2, 5, 3, 8)]);
        let d = encode(2, &now, changed(&base, &now)).unwrap();
        assert_eq!(resolve(&d, 3, &borsh, h).unwrap(), full(&now));
        assert_eq!(chain(&borsh, 2).unwrap().unwrap().base, 2);
    }

    #[test]
    fn a_delta_on_a_delta_a_leaf_or_a_newer_base_is_refused() {
        let base = wide();
        let mut now = base;
        now[0] = Some(([7; 32], 20, 1000));
        let d = encode(10, &now, 1).unwrap();
        assert!(resolve(&d, 20, &d, h).is_err(), "a delta as base");
        assert!(resolve(&d, 10, &full(&base), h).is_err(), "base not older");
        assert!(resolve(&d, 9, &full(&base), h).is_err(), "base newer");
        let leaf = [&[crate::ledger::tree_codec::LEAF][..], &[1; 32], b"v"].concat();
        assert!(resolve(&d, 20, &leaf, h).is_err(), "a leaf as base");
        assert!(resolve(&d, 20, &[], h).is_err(), "an empty base");
        assert_eq!(chain(&leaf, 3).unwrap(), None);
    }

    #[test]
    fn a_delta_that_disagrees_with_its_base_is_refused() {
        let base = kids(&[(0, 1, 5, 1), (4, 2, 5, 3)]);
        // Slot 4 unchanged but said to be a leaf; slot 7 unchanged but said to be present.
        let liar = kids(&[(0, 1, 5, 1), (4, 2, 5, 1)]);
        let d = encode(5, &liar, 0).unwrap();
        assert!(resolve(&d, 6, &full(&base), h).is_err());
        let extra = kids(&[(0, 1, 5, 1), (4, 2, 5, 3), (7, 3, 5, 1)]);
        let d = encode(5, &extra, 0).unwrap();
        assert!(resolve(&d, 6, &full(&base), h).is_err());
        // Slot 0 unchanged but said to be absent.
        let gone = kids(&[(4, 2, 5, 3)]);
        let d = encode(5, &gone, 0).unwrap();
        assert!(resolve(&d, 6, &full(&base), h).is_err());
    }

    #[test]
    fn malformed_deltas_are_refused() {
        let base = wide();
        let mut now = base;
        now[5] = Some(([3; 32], 300, 2));
        now[6] = Some(([4; 32], 300, 1));
        let d = encode(10, &now, changed(&base, &now)).unwrap();
        let b = full(&base);
        assert!(resolve(&d, 300, &b, h).is_ok());
        for n in 1..d.len() {
            assert!(resolve(&d[..n], 300, &b, h).is_err(), "cut at {n}");
        }
        assert!(resolve(&[d.clone(), vec![0]].concat(), 300, &b, h).is_err());
        // No children; leaves outside the children.
        assert!(resolve(&[DELTA, 10, 0, 0, 0, 0, 0, 0], 300, &b, h).is_err());
        assert!(resolve(&[DELTA, 10, 0, 1, 0, 3, 0, 0], 300, &b, h).is_err());
        // An internal child of one leaf.
        let mut one = base;
        one[5] = Some(([3; 32], 300, 1));
        let mut bad = encode(10, &one, 1 << 5).unwrap();
        // [DELTA][base 10][children 2..4][leaves 4..6][changed 6..8]: slot 5 made internal,
        // with a leaf count of 1.
        assert_eq!(bad[4..6], (1u16 << 5).to_be_bytes());
        bad[4..6].copy_from_slice(&0u16.to_be_bytes());
        bad.push(1);
        assert!(resolve(&bad, 300, &b, h).is_err());
        bad.pop();
        bad.push(2);
        assert!(
            resolve(&bad, 300, &b, h).is_ok(),
            "the same with a count of 2"
        );
        // What is not a delta.
        assert!(resolve(&b, 300, &b, h).is_err());
        assert!(chain(&[], 1).is_err());
        assert!(chain(&[DELTA, 0x80], 1).is_err());
    }

    #[test]
    fn a_node_with_no_children_has_no_delta() {
        assert_eq!(encode(1, &[None; 16], 0xffff), None);
    }
}
