//! Proofs of Nexus state: a key's value, or its absence, against the state root of a block
//! header the client has verified.
//!
//! Nexus keeps its state in a Jellyfish Merkle tree (SHA-256). A proof is the leaf found on the
//! key's path (if any) and the sibling hashes from that leaf up to the root; this module checks
//! it without the tree's code, as a light client on another chain would:
//! - key hash = SHA-256(key), value hash = SHA-256(value);
//! - leaf = SHA-256("JMT::LeafNode" || key hash || value hash);
//! - inner = SHA-256("JMT::IntrnalNode" || left || right), the path taking the key hash's bits
//!   from the most significant down;
//! - an empty subtree hashes to the 32 ASCII bytes `SPARSE_MERKLE_PLACEHOLDER_HASH__`.
//!
//! The RPC shape (`icx_getProofForState`'s `proof`): `{"leaf": {"keyHash": "0x..", "valueHash":
//! "0x.."} | null, "siblings": ["0x..", ...]}` with siblings from the leaf's level upwards.

use nexus_proto::value::{format_bytes, parse_hash};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// Most siblings a proof can have (one per bit of the key hash).
pub const MAX_SIBLINGS: usize = 256;

const LEAF_DOMAIN: &[u8] = b"JMT::LeafNode";
const INTERNAL_DOMAIN: &[u8] = b"JMT::IntrnalNode";
/// The hash of an empty subtree.
pub const PLACEHOLDER: [u8; 32] = *b"SPARSE_MERKLE_PLACEHOLDER_HASH__";

/// Why a state proof was refused (one variant per check).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StateProofError {
    /// The proof's JSON does not have the expected shape.
    #[error("state proof: {0}")]
    Malformed(String),
    /// More siblings than a 256-bit path has.
    #[error("state proof has {0} siblings, at most {MAX_SIBLINGS}")]
    TooManySiblings(usize),
    /// The value is claimed present but the proof ends in an empty subtree.
    #[error("the proof shows the key absent, but a value was claimed")]
    NotIncluded,
    /// The leaf on the path belongs to another key, but the key was claimed present.
    #[error("the proof's leaf is for key hash {found}, not {expected}")]
    OtherKey {
        /// SHA-256 of the key asked about.
        expected: String,
        /// The leaf's key hash.
        found: String,
    },
    /// The leaf is the key's, but holds another value.
    #[error("the leaf's value hash is {found}, the claimed value hashes to {expected}")]
    WrongValue {
        /// SHA-256 of the claimed value.
        expected: String,
        /// The leaf's value hash.
        found: String,
    },
    /// Absence was claimed, but the proof's leaf is the key itself.
    #[error("absence was claimed but the proof holds the key's own leaf")]
    Present,
    /// Absence was claimed with a leaf that could not sit where the key would.
    #[error(
        "the leaf's key shares {common} leading bits with the key, below the proof's depth {depth}"
    )]
    NotOnPath {
        /// Leading bits the two key hashes share.
        common: usize,
        /// Siblings in the proof.
        depth: usize,
    },
    /// The hashes do not lead to the state root.
    #[error("the proof leads to root {computed}, the header's state root is {expected}")]
    WrongRoot {
        /// The verified state root.
        expected: String,
        /// The root the proof computes.
        computed: String,
    },
}

/// The leaf found on a key's path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Leaf {
    /// SHA-256 of the leaf's key.
    pub key_hash: [u8; 32],
    /// SHA-256 of the leaf's value.
    pub value_hash: [u8; 32],
}

/// A proof of a key's value or absence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateProof {
    /// The leaf on the path, if the path does not end in an empty subtree.
    pub leaf: Option<Leaf>,
    /// Sibling hashes from the leaf's level up to the root's children.
    pub siblings: Vec<[u8; 32]>,
}

fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// The tree's key for a state key.
pub fn key_hash(key: &[u8]) -> [u8; 32] {
    sha256(&[key])
}

/// The hash of a leaf.
pub fn leaf_hash(l: &Leaf) -> [u8; 32] {
    sha256(&[LEAF_DOMAIN, &l.key_hash, &l.value_hash])
}

/// The hash of an inner node.
pub fn inner_hash(left: &[u8; 32], right: &[u8; 32]) -> [u8; 32] {
    sha256(&[INTERNAL_DOMAIN, left, right])
}

/// Decodes `0x` + 64 hex digits.
fn hash32(what: &str, v: &Value) -> Result<[u8; 32], StateProofError> {
    let s = v.as_str().ok_or_else(|| {
        StateProofError::Malformed(format!(
            "{what}: expected 0x and 64 hex digits, got {}",
            short(v)
        ))
    })?;
    parse_hash(what, s)
        .map(|h| h.0)
        .map_err(|e| StateProofError::Malformed(e.to_string()))
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    match s.char_indices().nth(40) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s,
    }
}

impl StateProof {
    /// Decodes the RPC shape, refusing anything else (unknown fields, more than
    /// [`MAX_SIBLINGS`] siblings, hashes that are not 32 bytes).
    pub fn from_json(v: &Value) -> Result<Self, StateProofError> {
        let o = v.as_object().ok_or_else(|| {
            StateProofError::Malformed(format!("expected an object, got {}", short(v)))
        })?;
        if let Some(k) = o.keys().find(|k| *k != "leaf" && *k != "siblings") {
            return Err(StateProofError::Malformed(format!("unknown field {k:?}")));
        }
        let leaf = match o.get("leaf") {
            None | Some(Value::Null) => None,
            Some(Value::Object(l)) => {
                if let Some(k) = l.keys().find(|k| *k != "keyHash" && *k != "valueHash") {
                    return Err(StateProofError::Malformed(format!(
                        "unknown leaf field {k:?}"
                    )));
                }
                let get = |k: &str| {
                    l.get(k)
                        .ok_or_else(|| StateProofError::Malformed(format!("leaf.{k} is missing")))
                };
                Some(Leaf {
                    key_hash: hash32("leaf.keyHash", get("keyHash")?)?,
                    value_hash: hash32("leaf.valueHash", get("valueHash")?)?,
                })
            }
            Some(other) => {
                return Err(StateProofError::Malformed(format!(
                    "leaf: expected an object or null, got {}",
                    short(other)
                )))
            }
        };
        let list = o
            .get("siblings")
            .and_then(Value::as_array)
            .ok_or_else(|| StateProofError::Malformed("siblings: expected an array".into()))?;
        if list.len() > MAX_SIBLINGS {
            return Err(StateProofError::TooManySiblings(list.len()));
        }
        let siblings = list
            .iter()
            .enumerate()
            .map(|(i, s)| hash32(&format!("siblings[{i}]"), s))
            .collect::<Result<_, _>>()?;
        Ok(StateProof { leaf, siblings })
    }

    /// The RPC shape.
    pub fn to_json(&self) -> Value {
        serde_json::json!({
            "leaf": self.leaf.map(|l| serde_json::json!({
                "keyHash": format_bytes(&l.key_hash),
                "valueHash": format_bytes(&l.value_hash),
            })),
            "siblings": self.siblings.iter().map(|s| format_bytes(s)).collect::<Vec<_>>(),
        })
    }

    /// Checks that `key` holds `value` (`None`: that `key` is absent) in the state whose root is
    /// `root`.
    pub fn verify(
        &self,
        root: &[u8; 32],
        key: &[u8],
        value: Option<&[u8]>,
    ) -> Result<(), StateProofError> {
        let n = self.siblings.len();
        if n > MAX_SIBLINGS {
            return Err(StateProofError::TooManySiblings(n));
        }
        let kh = key_hash(key);
        match (value, &self.leaf) {
            (Some(v), Some(leaf)) => {
                if leaf.key_hash != kh {
                    return Err(StateProofError::OtherKey {
                        expected: format_bytes(&kh),
                        found: format_bytes(&leaf.key_hash),
                    });
                }
                let vh = sha256(&[v]);
                if leaf.value_hash != vh {
                    return Err(StateProofError::WrongValue {
                        expected: format_bytes(&vh),
                        found: format_bytes(&leaf.value_hash),
                    });
                }
            }
            (Some(_), None) => return Err(StateProofError::NotIncluded),
            (None, Some(leaf)) => {
                if leaf.key_hash == kh {
                    return Err(StateProofError::Present);
                }
                let common = common_prefix_bits(&kh, &leaf.key_hash);
                if common < n {
                    return Err(StateProofError::NotOnPath { common, depth: n });
                }
            }
            (None, None) => {}
        }
        let mut h = self.leaf.as_ref().map_or(PLACEHOLDER, leaf_hash);
        for (i, s) in self.siblings.iter().enumerate() {
            // The deepest sibling pairs with the key's bit at depth n - 1.
            if bit(&kh, n - 1 - i) {
                h = inner_hash(s, &h);
            } else {
                h = inner_hash(&h, s);
            }
        }
        if h != *root {
            return Err(StateProofError::WrongRoot {
                expected: format_bytes(root),
                computed: format_bytes(&h),
            });
        }
        Ok(())
    }
}

/// Bit `i` of `h`, counting from the most significant.
fn bit(h: &[u8; 32], i: usize) -> bool {
    h[i / 8] & (0x80 >> (i % 8)) != 0
}

fn common_prefix_bits(a: &[u8; 32], b: &[u8; 32]) -> usize {
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        let d = x ^ y;
        if d != 0 {
            return i * 8 + d.leading_zeros() as usize;
        }
    }
    256
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A two-key tree built by hand: keys whose hashes differ in the first bit sit under the
    /// root directly.
    fn two_keys() -> (Vec<u8>, Vec<u8>, [u8; 32], Leaf, Leaf) {
        let mut a = None;
        let mut b = None;
        for i in 0u32.. {
            let k = format!("k{i}").into_bytes();
            let first = key_hash(&k)[0] & 0x80 != 0;
            match (first, &a, &b) {
                (false, None, _) => a = Some(k),
                (true, _, None) => b = Some(k),
                _ => {}
            }
            if a.is_some() && b.is_some() {
                break;
            }
        }
        let (a, b) = (a.unwrap_or_default(), b.unwrap_or_default());
        let la = Leaf {
            key_hash: key_hash(&a),
            value_hash: sha256(&[b"va"]),
        };
        let lb = Leaf {
            key_hash: key_hash(&b),
            value_hash: sha256(&[b"vb"]),
        };
        let root = inner_hash(&leaf_hash(&la), &leaf_hash(&lb));
        (a, b, root, la, lb)
    }

    #[test]
    fn a_present_key_verifies_and_round_trips_through_json() {
        let (a, b, root, la, lb) = two_keys();
        let pa = StateProof {
            leaf: Some(la),
            siblings: vec![leaf_hash(&lb)],
        };
        pa.verify(&root, &a, Some(b"va")).unwrap();
        let pb = StateProof {
            leaf: Some(lb),
            siblings: vec![leaf_hash(&la)],
        };
        pb.verify(&root, &b, Some(b"vb")).unwrap();
        assert_eq!(StateProof::from_json(&pa.to_json()).unwrap(), pa);
    }

    #[test]
    fn a_wrong_value_is_refused() {
        let (a, _, root, la, lb) = two_keys();
        let p = StateProof {
            leaf: Some(la),
            siblings: vec![leaf_hash(&lb)],
        };
        assert!(matches!(
            p.verify(&root, &a, Some(b"vx")),
            Err(StateProofError::WrongValue { .. })
        ));
    }

    #[test]
    fn a_wrong_root_is_refused() {
        let (a, _, _, la, lb) = two_keys();
        let p = StateProof {
            leaf: Some(la),
            siblings: vec![leaf_hash(&lb)],
        };
        assert!(matches!(
            p.verify(&[7; 32], &a, Some(b"va")),
            Err(StateProofError::WrongRoot { .. })
        ));
    }

    #[test]
    fn a_missing_sibling_is_refused() {
        let (a, _, root, la, _) = two_keys();
        let p = StateProof {
            leaf: Some(la),
            siblings: vec![],
        };
        assert!(matches!(
            p.verify(&root, &a, Some(b"va")),
            Err(StateProofError::WrongRoot { .. })
        ));
    }

    #[test]
    fn another_keys_leaf_does_not_prove_presence() {
        let (a, b, root, la, lb) = two_keys();
        let p = StateProof {
            leaf: Some(lb),
            siblings: vec![leaf_hash(&la)],
        };
        assert!(matches!(
            p.verify(&root, &a, Some(b"vb")),
            Err(StateProofError::OtherKey { .. })
        ));
        // Nor does the key's own leaf prove absence.
        assert_eq!(p.verify(&root, &b, None), Err(StateProofError::Present));
    }

    #[test]
    fn absence_under_an_empty_subtree_and_next_to_another_leaf() {
        // A tree holding only `a`: the root is a's leaf. A key hashing elsewhere is absent,
        // proven by a's leaf with no siblings.
        let (a, b, _, la, _) = two_keys();
        let root = leaf_hash(&la);
        let p = StateProof {
            leaf: Some(la),
            siblings: vec![],
        };
        p.verify(&root, &b, None).unwrap();
        p.verify(&root, &a, Some(b"va")).unwrap();
        // Absence claimed with a leaf deeper than the two keys share: refused.
        let deep = StateProof {
            leaf: Some(la),
            siblings: vec![PLACEHOLDER, PLACEHOLDER],
        };
        assert!(matches!(
            deep.verify(&root, &b, None),
            Err(StateProofError::NotOnPath { .. })
        ));
        // An empty tree proves every key absent, and no key present.
        let empty = StateProof {
            leaf: None,
            siblings: vec![],
        };
        empty.verify(&PLACEHOLDER, &a, None).unwrap();
        assert_eq!(
            empty.verify(&PLACEHOLDER, &a, Some(b"va")),
            Err(StateProofError::NotIncluded)
        );
    }

    #[test]
    fn hostile_json_is_refused_with_what_was_expected() {
        let cases = [
            serde_json::json!([]),
            serde_json::json!({"leaf": null}),
            serde_json::json!({"leaf": null, "siblings": ["0x00"]}),
            serde_json::json!({"leaf": null, "siblings": [format!("0x{}", "ａ".repeat(32))]}),
            serde_json::json!({"leaf": 5, "siblings": []}),
            serde_json::json!({"leaf": {"keyHash": "0x00"}, "siblings": []}),
            serde_json::json!({"leaf": null, "siblings": [], "extra": 1}),
            serde_json::json!({"leaf": null, "siblings": vec![format!("0x{}", "0".repeat(64)); 257]}),
        ];
        for c in cases {
            assert!(StateProof::from_json(&c).is_err(), "{c}");
        }
        assert_eq!(
            StateProof::from_json(
                &serde_json::json!({"leaf": null, "siblings": vec![format!("0x{}", "0".repeat(64)); 257]})
            ),
            Err(StateProofError::TooManySiblings(257))
        );
    }
}
