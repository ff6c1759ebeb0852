//! Signing and verification behind a trait, so the simulation can use a cheap scheme and forge
//! signatures on purpose, while nodes use secp256k1 recoverable signatures.

use nexus_proto::{Address, Hash32, KeyPair, Signature};

/// Signs as one validator and checks anyone's signatures.
pub trait Crypto {
    /// This validator's address.
    fn address(&self) -> Address;
    /// Signs a digest.
    fn sign(&self, digest: &Hash32) -> Vec<u8>;
    /// True when `sig` is `signer`'s signature of `digest`.
    fn verify(&self, signer: &Address, digest: &Hash32, sig: &[u8]) -> bool;
}

/// secp256k1 recoverable signatures (65 bytes R||S||recid), as everywhere in Nexus.
pub struct Secp256k1Crypto(pub KeyPair);

impl Crypto for Secp256k1Crypto {
    fn address(&self) -> Address {
        self.0.address()
    }

    fn sign(&self, digest: &Hash32) -> Vec<u8> {
        self.0.sign(digest).0.to_vec()
    }

    fn verify(&self, signer: &Address, digest: &Hash32, sig: &[u8]) -> bool {
        Signature::from_slice(sig)
            .and_then(|s| s.recover_address(digest))
            .is_ok_and(|a| &a == signer)
    }
}
