//! 32-byte hashes: SHA3-256 (FIPS 202) for ICON data, Keccak-256 for Ethereum-facing data.

use sha3::{Digest, Keccak256, Sha3_256};
use std::fmt;

/// A 32-byte hash, shown as `0x` + 64 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Hash32(pub [u8; 32]);

impl Hash32 {
    /// The all-zero hash (the root of an empty tree, the parent of genesis).
    pub const ZERO: Hash32 = Hash32([0u8; 32]);

    /// Parses `0x` + 64 hex digits.
    pub fn parse(field: &str, s: &str) -> Result<Self, crate::ProtoError> {
        crate::value::parse_hash(field, s)
    }

    /// The bytes of the hash.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Display for Hash32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{}", hex::encode(self.0))
    }
}

impl fmt::Debug for Hash32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// SHA3-256 (FIPS 202, not Keccak) of the concatenation of `parts`.
pub fn sha3_256(parts: &[&[u8]]) -> Hash32 {
    let mut h = Sha3_256::new();
    for p in parts {
        h.update(p);
    }
    Hash32(h.finalize().into())
}

/// Keccak-256 (Ethereum's hash) of the concatenation of `parts`.
pub fn keccak256(parts: &[&[u8]]) -> Hash32 {
    let mut h = Keccak256::new();
    for p in parts {
        h.update(p);
    }
    Hash32(h.finalize().into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha3_and_keccak_differ_on_empty_input() {
        assert_eq!(
            sha3_256(&[]).to_string(),
            "0xa7ffc6f8bf1ed76651c14756a061d662f580ff4de43b49fa82d80a4b80f8434a"
        );
        assert_eq!(
            keccak256(&[]).to_string(),
            "0xc5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"
        );
    }
}
