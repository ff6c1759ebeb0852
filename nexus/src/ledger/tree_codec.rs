//! The stored form of state tree nodes: jmt's borsh encoding made compact, and read back.
//!
//! jmt's borsh form of an internal node spends a byte on each of its 16 slots, 8 bytes on each
//! child's version and on each internal child's leaf count, and 16 more on counts that follow
//! from its children (817 bytes at full width); a leaf holds its value's hash, which its value
//! stored beside it gives again. The compact forms:
//! - internal: [`INTERNAL`], the 16-bit maps of present children and of leaf children
//!   (big-endian), then per present child in nibble order its hash (32), its version
//!   (LEB128) and, for an internal child, its leaf count (LEB128): about 600 bytes at full width;
//! - leaf with its value: [`LEAF`], the key hash (32), the value (the rest); the value's hash
//!   is recomputed when read.
//!
//! Entries written in jmt's form (all of them before this layout) stay readable: their first
//! byte is borsh's variant of `Node` (0, 1 or 2), never one of these.

/// First byte of a compact internal node.
pub const INTERNAL: u8 = 0x10;
/// First byte of a compact leaf with its value.
pub const LEAF: u8 = 0x11;

/// borsh's variants of jmt's `Node`.
const BORSH_INTERNAL: u8 = 1;
const BORSH_LEAF: u8 = 2;

/// Why a stored node does not read back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a stored tree node {0}")]
pub struct CodecError(pub String);

pub(crate) fn err(what: impl Into<String>) -> CodecError {
    CodecError(what.into())
}

pub(crate) fn put_leb(out: &mut Vec<u8>, mut v: u64) {
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

/// Reads a LEB128 u64 of at most 10 bytes (the last holding one bit), in its shortest form.
pub(crate) fn take_leb(input: &mut &[u8]) -> Result<u64, CodecError> {
    let mut v = 0u64;
    for i in 0..10 {
        let (&b, rest) = input
            .split_first()
            .ok_or_else(|| err("ends inside a number"))?;
        *input = rest;
        if i == 9 && b > 1 {
            return Err(err("holds a number over 64 bits"));
        }
        v |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            if b == 0 && i > 0 {
                return Err(err("holds a number with a redundant byte"));
            }
            return Ok(v);
        }
    }
    Err(err("holds a number over 64 bits"))
}

pub(crate) fn take<'a, const N: usize>(
    input: &mut &'a [u8],
    what: &str,
) -> Result<&'a [u8; N], CodecError> {
    if input.len() < N {
        return Err(err(format!("ends inside {what}")));
    }
    let (head, rest) = input.split_at(N);
    *input = rest;
    Ok(head.try_into().expect("split at N"))
}

fn take_u64_le(input: &mut &[u8], what: &str) -> Result<u64, CodecError> {
    Ok(u64::from_le_bytes(*take::<8>(input, what)?))
}

/// The compact form of a node given in jmt's borsh form, with the value of a leaf. `None` when
/// there is none (a null node, a leaf without its value, or a leaf whose value does not hash to
/// the one it holds): such nodes are stored in borsh form.
pub fn compact(
    borsh: &[u8],
    value: Option<&[u8]>,
    hash: impl Fn(&[u8]) -> [u8; 32],
) -> Result<Option<Vec<u8>>, CodecError> {
    let mut input = borsh;
    let (&tag, rest) = input.split_first().ok_or_else(|| err("is empty"))?;
    input = rest;
    match tag {
        BORSH_INTERNAL => {
            let mut present = 0u16;
            let mut leaves = 0u16;
            let mut body = Vec::with_capacity(16 * 40);
            for slot in 0..16 {
                let (&some, rest) = input
                    .split_first()
                    .ok_or_else(|| err("ends inside its children"))?;
                input = rest;
                match some {
                    0 => continue,
                    1 => {}
                    b => return Err(err(format!("has a child marker {b}"))),
                }
                present |= 1 << slot;
                body.extend_from_slice(take::<32>(&mut input, "a child's hash")?);
                put_leb(&mut body, take_u64_le(&mut input, "a child's version")?);
                let (&kind, rest) = input
                    .split_first()
                    .ok_or_else(|| err("ends inside a child"))?;
                input = rest;
                match kind {
                    0 => leaves |= 1 << slot,
                    1 => put_leb(&mut body, take_u64_le(&mut input, "a leaf count")?),
                    b => return Err(err(format!("has a child kind {b}"))),
                }
            }
            // The number of children and the leaf count follow from the children.
            take_u64_le(&mut input, "the number of children")?;
            take_u64_le(&mut input, "the leaf count")?;
            if !input.is_empty() || present == 0 {
                return Err(err("is not an internal node jmt wrote"));
            }
            let mut out = Vec::with_capacity(5 + body.len());
            out.push(INTERNAL);
            out.extend_from_slice(&present.to_be_bytes());
            out.extend_from_slice(&leaves.to_be_bytes());
            out.extend_from_slice(&body);
            Ok(Some(out))
        }
        BORSH_LEAF => {
            let key_hash = take::<32>(&mut input, "a key hash")?;
            let value_hash = take::<32>(&mut input, "a value hash")?;
            if !input.is_empty() {
                return Err(err("is a leaf with trailing bytes"));
            }
            match value {
                Some(v) if hash(v) == *value_hash => {
                    let mut out = Vec::with_capacity(33 + v.len());
                    out.push(LEAF);
                    out.extend_from_slice(key_hash);
                    out.extend_from_slice(v);
                    Ok(Some(out))
                }
                _ => Ok(None),
            }
        }
        _ => Ok(None),
    }
}

/// A child of an internal node: slot (0-15), hash, version, and leaf count (`None`: a leaf).
pub type ChildParts = (u8, [u8; 32], u64, Option<u64>);

/// The compact form of an internal node given by its children in slot order, the bytes
/// [`compact`] makes of its borsh form, without writing that form first. `None` when it has no
/// children or they are not in strictly increasing slots.
pub fn compact_internal(children: impl IntoIterator<Item = ChildParts>) -> Option<Vec<u8>> {
    let (mut present, mut leaves) = (0u16, 0u16);
    let mut out = Vec::with_capacity(5 + 16 * 42);
    out.extend_from_slice(&[INTERNAL, 0, 0, 0, 0]);
    for (slot, hash, version, count) in children {
        let bit = 1u16.checked_shl(u32::from(slot)).filter(|_| slot < 16)?;
        if present >= bit {
            return None;
        }
        present |= bit;
        out.extend_from_slice(&hash);
        put_leb(&mut out, version);
        match count {
            None => leaves |= bit,
            Some(c) => put_leb(&mut out, c),
        }
    }
    if present == 0 {
        return None;
    }
    out[1..3].copy_from_slice(&present.to_be_bytes());
    out[3..5].copy_from_slice(&leaves.to_be_bytes());
    Some(out)
}

/// A child as the tree's update reads it: hash, version and leaf count (1: a leaf).
pub type Child = ([u8; 32], u64, u64);

/// An internal node's children by slot.
pub type Children = [Option<Child>; 16];

/// The compact internal form of a node with `children` (a leaf child counts 1); `None` when
/// it has none.
pub fn compact_children(children: &Children) -> Option<Vec<u8>> {
    compact_internal(children.iter().enumerate().filter_map(|(slot, c)| {
        c.map(|(h, v, count)| (slot as u8, h, v, (count != 1).then_some(count)))
    }))
}

/// The children of a stored node in the compact internal form, read in one pass with the
/// checks [`expand`] makes; `None` when `stored` is in another form.
pub fn internal_children(stored: &[u8]) -> Result<Option<Children>, CodecError> {
    match stored.split_first() {
        None => Err(err("is empty")),
        Some((&INTERNAL, body)) => read_children(body).map(Some),
        Some(_) => Ok(None),
    }
}

/// The children of a compact internal node's body (after its tag).
pub(crate) fn read_children(mut input: &[u8]) -> Result<Children, CodecError> {
    let present = u16::from_be_bytes(*take::<2>(&mut input, "its children's map")?);
    let leaves = u16::from_be_bytes(*take::<2>(&mut input, "its leaves' map")?);
    if present == 0 || leaves & !present != 0 {
        return Err(err(format!(
            "has children {present:#06x} and leaves {leaves:#06x}"
        )));
    }
    if present.count_ones() == 1 && leaves != 0 {
        return Err(err("is an internal node over a single leaf"));
    }
    let mut children: Children = [None; 16];
    let mut total = 0u64;
    for (slot, child) in children.iter_mut().enumerate() {
        if present & (1 << slot) == 0 {
            continue;
        }
        let hash = *take::<32>(&mut input, "a child's hash")?;
        let version = take_leb(&mut input)?;
        let count = if leaves & (1 << slot) != 0 {
            1
        } else {
            let count = take_leb(&mut input)?;
            if count < 2 {
                return Err(err(format!("has an internal child of {count} leaves")));
            }
            count
        };
        total = total
            .checked_add(count)
            .ok_or_else(|| err("counts too many leaves"))?;
        *child = Some((hash, version, count));
    }
    if !input.is_empty() {
        return Err(err(format!("has {} bytes after its children", input.len())));
    }
    Ok(children)
}

/// A node in jmt's borsh form, with a leaf's value borrowed from where it was stored.
pub type Expanded<'a> = (Vec<u8>, Option<&'a [u8]>);

/// jmt's borsh form of a compact node, with a leaf's value (borrowed from `stored`); `None`
/// when `stored` is not in a compact form.
pub fn expand(
    stored: &[u8],
    hash: impl Fn(&[u8]) -> [u8; 32],
) -> Result<Option<Expanded<'_>>, CodecError> {
    let Some((&tag, mut input)) = stored.split_first() else {
        return Err(err("is empty"));
    };
    match tag {
        INTERNAL => {
            let children = read_children(input)?;
            let mut out = Vec::with_capacity(1 + 16 * 50 + 16);
            out.push(BORSH_INTERNAL);
            let (mut count, mut total) = (0u64, 0u64);
            for child in &children {
                let Some((hash, version, leaves)) = child else {
                    out.push(0);
                    continue;
                };
                out.push(1);
                out.extend_from_slice(hash);
                out.extend_from_slice(&version.to_le_bytes());
                if *leaves == 1 {
                    out.push(0);
                } else {
                    out.push(1);
                    out.extend_from_slice(&leaves.to_le_bytes());
                }
                count += 1;
                total += leaves;
            }
            out.extend_from_slice(&count.to_le_bytes());
            out.extend_from_slice(&total.to_le_bytes());
            Ok(Some((out, None)))
        }
        LEAF => {
            let key_hash = take::<32>(&mut input, "a key hash")?;
            let mut out = Vec::with_capacity(65);
            out.push(BORSH_LEAF);
            out.extend_from_slice(key_hash);
            out.extend_from_slice(&hash(input));
            Ok(Some((out, Some(input))))
        }
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(v: &[u8]) -> [u8; 32] {
        use sha2::Digest;
        sha2::Sha256::digest(v).into()
    }

    /// jmt's borsh form of an internal node with children at `slots`: (slot, version, leaf
    /// count; 1 for a leaf child).
    fn borsh_internal(slots: &[(u8, u64, u64)]) -> Vec<u8> {
        let mut out = vec![BORSH_INTERNAL];
        let mut total = 0;
        for slot in 0..16u8 {
            match slots.iter().find(|s| s.0 == slot) {
                None => out.push(0),
                Some(&(s, version, count)) => {
                    out.push(1);
                    out.extend_from_slice(&[s.wrapping_mul(7); 32]);
                    out.extend_from_slice(&version.to_le_bytes());
                    if count == 1 {
                        out.push(0);
                    } else {
                        out.push(1);
                        out.extend_from_slice(&count.to_le_bytes());
                    }
                    total += count;
                }
            }
        }
        out.extend_from_slice(&(slots.len() as u64).to_le_bytes());
        out.extend_from_slice(&total.to_le_bytes());
        out
    }

    fn borsh_leaf(value: &[u8]) -> Vec<u8> {
        let mut out = vec![BORSH_LEAF];
        out.extend_from_slice(&[9; 32]);
        out.extend_from_slice(&h(value));
        out
    }

    fn round_trip(borsh: &[u8], value: Option<&[u8]>) -> Vec<u8> {
        let c = compact(borsh, value, h).unwrap().expect("a compact form");
        let (back, v) = expand(&c, h).unwrap().expect("expands");
        assert_eq!(back, borsh);
        assert_eq!(v, if c[0] == LEAF { value } else { None });
        c
    }

    #[test]
    fn internal_nodes_made_compact_directly_match_their_borsh_form_made_compact() {
        let cases: [Vec<(u8, u64, u64)>; 3] = [
            vec![(0, 1, 1), (15, 7, 5)],
            vec![(3, 300, 1), (4, 1 << 40, 2), (9, 0, 1)],
            (0..16)
                .map(|i| (i, u64::from(i) * 1000, 1 + u64::from(i)))
                .collect(),
        ];
        for slots in cases {
            let direct = compact_internal(
                slots
                    .iter()
                    .map(|&(s, v, c)| ([s.wrapping_mul(7); 32], s, v, c))
                    .map(|(h, s, v, c)| (s, h, v, (c != 1).then_some(c))),
            )
            .unwrap();
            assert_eq!(
                Some(direct),
                compact(&borsh_internal(&slots), None, h).unwrap()
            );
        }
        assert_eq!(compact_internal([]), None, "no children");
        let child = |s: u8| (s, [0; 32], 1, None);
        assert_eq!(compact_internal([child(2), child(1)]), None, "out of order");
        assert_eq!(compact_internal([child(16)]), None, "slot 16");
    }

    #[test]
    fn a_full_internal_node_round_trips_in_three_quarters_of_the_bytes() {
        let slots: Vec<_> = (0..16u8)
            .map(|s| (s, 1_000_000 + u64::from(s), 600_000))
            .collect();
        let b = borsh_internal(&slots);
        assert_eq!(b.len(), 817);
        let c = round_trip(&b, None);
        assert_eq!(c.len(), 5 + 16 * (32 + 3 + 3));
    }

    #[test]
    fn sparse_nodes_with_leaves_versions_and_counts_at_their_limits_round_trip() {
        round_trip(&borsh_internal(&[(0, 0, 1), (15, u64::MAX, 1)]), None);
        round_trip(&borsh_internal(&[(3, 7, u64::MAX - 1), (9, 1, 1)]), None);
        round_trip(&borsh_internal(&[(5, 127, 2)]), None);
        round_trip(&borsh_internal(&[(5, 128, 128), (6, 16_383, 16_384)]), None);
    }

    #[test]
    fn a_leaf_keeps_its_value_and_not_its_hash() {
        let c = round_trip(&borsh_leaf(b"balance"), Some(b"balance"));
        assert_eq!(c.len(), 1 + 32 + 7);
        round_trip(&borsh_leaf(b""), Some(b""));
    }

    #[test]
    fn leaves_without_their_value_or_with_another_and_null_nodes_stay_in_borsh() {
        assert_eq!(compact(&borsh_leaf(b"v"), None, h).unwrap(), None);
        assert_eq!(compact(&borsh_leaf(b"v"), Some(b"w"), h).unwrap(), None);
        assert_eq!(compact(&[0], None, h).unwrap(), None);
        // ...and read back as not compact, for the borsh decoder.
        assert_eq!(expand(&borsh_leaf(b"v"), h).unwrap(), None);
        assert_eq!(
            expand(&borsh_internal(&[(1, 1, 1), (2, 1, 1)]), h).unwrap(),
            None
        );
    }

    #[test]
    fn malformed_borsh_is_refused() {
        let good = borsh_internal(&[(1, 1, 1), (2, 1, 1)]);
        assert!(compact(&good[..good.len() - 1], None, h).is_err());
        assert!(compact(&[good.clone(), vec![0]].concat(), None, h).is_err());
        let mut bad_marker = good.clone();
        bad_marker[1] = 2;
        assert!(compact(&bad_marker, None, h).is_err());
        assert!(compact(&[], None, h).is_err());
        let empty = borsh_internal(&[]);
        assert!(compact(&empty, None, h).is_err());
    }

    #[test]
    fn malformed_compact_nodes_are_refused() {
        let c = compact(&borsh_internal(&[(1, 300, 1), (2, 1, 40)]), None, h)
            .unwrap()
            .unwrap();
        // Cut anywhere, or followed by a byte.
        for n in 1..c.len() {
            assert!(expand(&c[..n], h).is_err(), "cut at {n}");
        }
        assert!(expand(&[c.clone(), vec![0]].concat(), h).is_err());
        // A leaf map outside the children's map; no children; one child that is a leaf.
        let mut maps = c.clone();
        maps[3..5].copy_from_slice(&0x8000u16.to_be_bytes());
        assert!(expand(&maps, h).is_err());
        assert!(expand(&[INTERNAL, 0, 0, 0, 0], h).is_err());
        let single = [&[INTERNAL, 0, 1, 0, 1][..], &[5; 32], &[1]].concat();
        assert!(expand(&single, h).is_err());
        // An internal child of fewer than two leaves.
        let one = [
            &[INTERNAL, 0, 3, 0, 1][..],
            &[5; 32],
            &[1],
            &[5; 32],
            &[1, 1],
        ]
        .concat();
        assert!(expand(&one, h).is_err());
        assert!(expand(&[], h).is_err());
        assert!(expand(&[LEAF, 1, 2], h).is_err());
        // The one-pass reader of children refuses the same internal nodes.
        let mut bad: Vec<Vec<u8>> = (1..c.len()).map(|n| c[..n].to_vec()).collect();
        bad.extend([[c.clone(), vec![0]].concat(), maps, single.clone(), one]);
        bad.extend([vec![INTERNAL, 0, 0, 0, 0], vec![]]);
        for b in bad {
            assert!(internal_children(&b).is_err(), "{b:?}");
        }
    }

    #[test]
    fn children_read_in_one_pass_are_those_of_the_expanded_node() {
        let cases: [Vec<(u8, u64, u64)>; 3] = [
            vec![(0, 1, 1), (15, 7, 5)],
            vec![(3, 300, 1), (4, 1 << 40, 2), (9, 0, 1)],
            (0..16)
                .map(|i| (i, u64::from(i) * 1000, 1 + u64::from(i)))
                .collect(),
        ];
        for slots in cases {
            let c = compact(&borsh_internal(&slots), None, h).unwrap().unwrap();
            let children = internal_children(&c).unwrap().expect("an internal node");
            for (slot, child) in children.iter().enumerate() {
                let want = slots
                    .iter()
                    .find(|s| usize::from(s.0) == slot)
                    .map(|&(s, version, count)| ([s.wrapping_mul(7); 32], version, count));
                assert_eq!(*child, want, "slot {slot}");
            }
        }
        // Other forms are not read as internal nodes.
        let leaf = compact(&borsh_leaf(b"v"), Some(b"v"), h).unwrap().unwrap();
        assert_eq!(internal_children(&leaf), Ok(None));
        assert_eq!(
            internal_children(&borsh_internal(&[(1, 1, 1), (2, 1, 1)])),
            Ok(None)
        );
    }

    #[test]
    fn numbers_are_read_in_their_shortest_form_and_within_64_bits() {
        let mut v = Vec::new();
        put_leb(&mut v, u64::MAX);
        assert_eq!(v.len(), 10);
        assert_eq!(take_leb(&mut &v[..]), Ok(u64::MAX));
        assert!(take_leb(&mut &[0xff; 10][..]).is_err(), "over 64 bits");
        assert!(take_leb(&mut &[0xff; 11][..]).is_err(), "eleven bytes");
        assert!(
            take_leb(&mut &[0x81, 0x00][..]).is_err(),
            "a redundant zero"
        );
        assert_eq!(take_leb(&mut &[0x00][..]), Ok(0));
        assert!(take_leb(&mut &[0x80][..]).is_err(), "cut");
    }
}
