//! secp256k1 recoverable signatures as ICON encodes them: 65 bytes R||S||recid, base64.

use crate::{value, Address, Hash32, ProtoError};
use secp256k1::{
    ecdsa::{RecoverableSignature, RecoveryId},
    Message, PublicKey, SecretKey, SECP256K1,
};
use std::fmt;

/// A 65-byte recoverable signature: R (32) || S (32) || recovery id (1, value 0..=3).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Signature(pub [u8; 65]);

impl Signature {
    /// Decodes the base64 form used in transactions and votes.
    pub fn from_base64(s: &str) -> Result<Self, ProtoError> {
        if s.len() > 100 {
            return Err(ProtoError::Signature(format!(
                "expected 88 base64 characters, got {}",
                s.len()
            )));
        }
        let raw = value::parse_base64("signature", s)
            .map_err(|e| ProtoError::Signature(e.to_string()))?;
        Self::from_slice(&raw)
    }

    /// Decodes 65 raw bytes.
    pub fn from_slice(raw: &[u8]) -> Result<Self, ProtoError> {
        let arr: [u8; 65] = raw
            .try_into()
            .map_err(|_| ProtoError::Signature(format!("expected 65 bytes, got {}", raw.len())))?;
        if arr[64] > 3 {
            return Err(ProtoError::Signature(format!(
                "recovery id must be 0..=3, got {}",
                arr[64]
            )));
        }
        Ok(Signature(arr))
    }

    /// The base64 form.
    pub fn to_base64(&self) -> String {
        value::format_base64(&self.0)
    }

    /// Recovers the public key that signed `digest`.
    pub fn recover(&self, digest: &Hash32) -> Result<PublicKey, ProtoError> {
        let recid = RecoveryId::from_i32(i32::from(self.0[64]))
            .map_err(|e| ProtoError::Signature(format!("recovery id: {e}")))?;
        let sig = RecoverableSignature::from_compact(&self.0[..64], recid)
            .map_err(|e| ProtoError::Signature(format!("R||S: {e}")))?;
        let msg = Message::from_digest(digest.0);
        SECP256K1
            .recover_ecdsa(&msg, &sig)
            .map_err(|e| ProtoError::Signature(format!("recovery failed: {e}")))
    }

    /// Recovers the signer's ICON address.
    pub fn recover_address(&self, digest: &Hash32) -> Result<Address, ProtoError> {
        Ok(Address::from_public_key(&self.recover(digest)?))
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature({})", self.to_base64())
    }
}

/// A secp256k1 key pair and its ICON address.
#[derive(Clone)]
pub struct KeyPair {
    secret: SecretKey,
    public: PublicKey,
    address: Address,
}

impl KeyPair {
    /// A fresh random key.
    pub fn generate() -> Self {
        let (secret, public) = SECP256K1.generate_keypair(&mut secp256k1::rand::thread_rng());
        Self::from_parts(secret, public)
    }

    /// A key from its 32 secret bytes.
    pub fn from_secret(bytes: &[u8]) -> Result<Self, ProtoError> {
        let secret = SecretKey::from_slice(bytes).map_err(|e| {
            ProtoError::invalid("private key", "32 bytes in the curve order", e.to_string())
        })?;
        let public = PublicKey::from_secret_key(SECP256K1, &secret);
        Ok(Self::from_parts(secret, public))
    }

    fn from_parts(secret: SecretKey, public: PublicKey) -> Self {
        let address = Address::from_public_key(&public);
        KeyPair {
            secret,
            public,
            address,
        }
    }

    /// The account address.
    pub fn address(&self) -> Address {
        self.address
    }

    /// The public key.
    pub fn public_key(&self) -> &PublicKey {
        &self.public
    }

    /// The 32 secret bytes.
    pub fn secret_bytes(&self) -> [u8; 32] {
        self.secret.secret_bytes()
    }

    /// Signs a 32-byte digest.
    pub fn sign(&self, digest: &Hash32) -> Signature {
        let msg = Message::from_digest(digest.0);
        let (recid, rs) = SECP256K1
            .sign_ecdsa_recoverable(&msg, &self.secret)
            .serialize_compact();
        let mut out = [0u8; 65];
        out[..64].copy_from_slice(&rs);
        // A RecoveryId is 0..=3 by construction.
        out[64] = recid.to_i32() as u8;
        Signature(out)
    }
}

impl fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyPair({})", self.address)
    }
}

/// The Ethereum address of an uncompressed public key (65 bytes, `0x04 || x || y`): the last
/// 20 bytes of Keccak-256 of `x || y` (what `ecrecover` returns for its signatures).
pub fn eth_address_of(uncompressed: &[u8; 65]) -> [u8; 20] {
    let h = crate::hash::keccak256(&[&uncompressed[1..]]);
    let mut a = [0u8; 20];
    a.copy_from_slice(&h.0[12..]);
    a
}

/// The Ethereum address of a key ([`eth_address_of`] its public key).
pub fn eth_address(key: &KeyPair) -> [u8; 20] {
    eth_address_of(&key.public_key().serialize_uncompressed())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::sha3_256;

    #[test]
    fn sign_recover_round_trip_and_tamper() {
        let k = KeyPair::generate();
        let d = sha3_256(&[b"hello"]);
        let s = k.sign(&d);
        let s2 = Signature::from_base64(&s.to_base64()).unwrap();
        assert_eq!(s2.recover_address(&d).unwrap(), k.address());
        let other = sha3_256(&[b"other"]);
        assert_ne!(s2.recover_address(&other).ok(), Some(k.address()));
        assert!(Signature::from_base64("AAAA").is_err());
        let mut bad = s.0;
        bad[64] = 7;
        assert!(Signature::from_slice(&bad).is_err());
    }
}
