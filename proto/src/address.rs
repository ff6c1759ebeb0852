//! ICON addresses: `hx` + 40 hex for accounts (EOA), `cx` + 40 hex for SCOREs.
//!
//! An EOA address is the last 20 bytes of SHA3-256 of the 64-byte uncompressed public key
//! (without its `0x04` prefix). The 21-byte binary form prefixes `0x00` (EOA) or `0x01` (SCORE).

use crate::{hash::sha3_256, ProtoError};
use std::fmt;

/// An ICON address.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Address {
    contract: bool,
    body: [u8; 20],
}

impl Address {
    /// An account (EOA) address.
    pub const fn eoa(body: [u8; 20]) -> Self {
        Address {
            contract: false,
            body,
        }
    }

    /// A SCORE (contract) address.
    pub const fn contract(body: [u8; 20]) -> Self {
        Address {
            contract: true,
            body,
        }
    }

    /// `cx0000000000000000000000000000000000000000`, the system SCORE address used as the
    /// target of deploys and governance calls.
    pub const SYSTEM: Address = Address::contract([0u8; 20]);

    /// The account address of a secp256k1 public key.
    pub fn from_public_key(pk: &secp256k1::PublicKey) -> Self {
        let full = pk.serialize_uncompressed();
        let h = sha3_256(&[&full[1..]]);
        let mut body = [0u8; 20];
        body.copy_from_slice(&h.0[12..]);
        Address::eoa(body)
    }

    /// Parses `hx...` or `cx...` (40 lowercase or uppercase hex digits).
    pub fn parse(field: &str, s: &str) -> Result<Self, ProtoError> {
        const EXPECTED: &str = "hx or cx followed by 40 hex digits";
        // Bytes, never string slices: the input may hold multibyte characters anywhere.
        let b = s.as_bytes();
        if b.len() != 42 {
            return Err(ProtoError::invalid(field, EXPECTED, s));
        }
        let contract = match &b[..2] {
            b"hx" => false,
            b"cx" => true,
            _ => return Err(ProtoError::invalid(field, EXPECTED, s)),
        };
        let mut body = [0u8; 20];
        hex::decode_to_slice(&b[2..], &mut body)
            .map_err(|_| ProtoError::invalid(field, EXPECTED, s))?;
        Ok(Address { contract, body })
    }

    /// True for SCORE addresses.
    pub fn is_contract(&self) -> bool {
        self.contract
    }

    /// The 20-byte body.
    pub fn body(&self) -> &[u8; 20] {
        &self.body
    }

    /// The 21-byte binary form: `0x00`/`0x01` then the body.
    pub fn to_bytes(&self) -> [u8; 21] {
        let mut out = [0u8; 21];
        out[0] = u8::from(self.contract);
        out[1..].copy_from_slice(&self.body);
        out
    }

    /// Decodes the 21-byte binary form.
    pub fn from_bytes(b: &[u8]) -> Result<Self, ProtoError> {
        if b.len() != 21 || b[0] > 1 {
            return Err(ProtoError::invalid(
                "address",
                "21 bytes starting with 0x00 or 0x01",
                hex::encode(b),
            ));
        }
        let mut body = [0u8; 20];
        body.copy_from_slice(&b[1..]);
        Ok(Address {
            contract: b[0] == 1,
            body,
        })
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let prefix = if self.contract { "cx" } else { "hx" };
        write!(f, "{prefix}{}", hex::encode(self.body))
    }
}

impl fmt::Debug for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_display_round_trip() {
        let s = "hx4873b94352c8c1f3b2f09aaeccea31ce9e90bd31";
        let a = Address::parse("from", s).unwrap();
        assert_eq!(a.to_string(), s);
        assert!(!a.is_contract());
        assert_eq!(Address::from_bytes(&a.to_bytes()).unwrap(), a);
        let c = Address::parse("to", "cx0000000000000000000000000000000000000001").unwrap();
        assert!(c.is_contract());
        for bad in [
            "hx123",
            "ax4873b94352c8c1f3b2f09aaeccea31ce9e90bd31",
            "hx4873b94352c8c1f3b2f09aaeccea31ce9e90bdzz",
            // 42 bytes with a multibyte character across the prefix boundary and in the body.
            "h\u{20ac}00000000000000000000000000000000000000",
            "hx\u{20ac}000000000000000000000000000000000000000",
            "\u{20ac}\u{20ac}\u{20ac}\u{20ac}\u{20ac}\u{20ac}\u{20ac}\u{20ac}\u{20ac}\u{20ac}\u{20ac}\u{20ac}\u{20ac}\u{20ac}",
        ] {
            assert!(Address::parse("to", bad).is_err());
        }
        assert!(Address::from_bytes(&[2u8; 21]).is_err());
    }
}
