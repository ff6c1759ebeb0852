//! Signing and verification behind a trait, so the simulation can use a cheap scheme and forge
//! signatures on purpose, while nodes use secp256k1 recoverable signatures.

use nexus_proto::{Address, Hash32, KeyPair, Signature};
use std::collections::{HashSet, VecDeque};
use std::sync::Mutex;

/// Signs as one validator and checks anyone's signatures.
pub trait Crypto {
    /// This validator's address.
    fn address(&self) -> Address;
    /// Signs a digest.
    fn sign(&self, digest: &Hash32) -> Vec<u8>;
    /// True when `sig` is `signer`'s signature of `digest`.
    fn verify(&self, signer: &Address, digest: &Hash32, sig: &[u8]) -> bool;
}

/// Signatures checked and found valid that [`Secp256k1Crypto`] remembers: a vote is checked
/// when it arrives and again inside the certificate of the next proposal (and of a timeout or
/// sync message), each time a recovery of about 40 µs.
const VERIFIED_CACHE: usize = 4096;

/// A signer, a digest and a 65-byte signature of it.
type Checked = [u8; 21 + 32 + 65];

/// secp256k1 recoverable signatures (65 bytes R||S||recid), as everywhere in Nexus, with the
/// last [`VERIFIED_CACHE`] valid ones remembered by their exact bytes (an invalid signature is
/// never remembered, so a cached answer is always the one a recovery would give).
pub struct Secp256k1Crypto {
    key: KeyPair,
    verified: Mutex<(HashSet<Checked>, VecDeque<Checked>)>,
}

impl Secp256k1Crypto {
    /// Signs with `key`.
    pub fn new(key: KeyPair) -> Self {
        Secp256k1Crypto {
            key,
            verified: Mutex::default(),
        }
    }
}

impl Crypto for Secp256k1Crypto {
    fn address(&self) -> Address {
        self.key.address()
    }

    fn sign(&self, digest: &Hash32) -> Vec<u8> {
        self.key.sign(digest).0.to_vec()
    }

    fn verify(&self, signer: &Address, digest: &Hash32, sig: &[u8]) -> bool {
        let Ok(sig65) = <[u8; 65]>::try_from(sig) else {
            return false;
        };
        let mut entry: Checked = [0; 118];
        entry[..21].copy_from_slice(&signer.to_bytes());
        entry[21..53].copy_from_slice(&digest.0);
        entry[53..].copy_from_slice(&sig65);
        let lock = || self.verified.lock().unwrap_or_else(|p| p.into_inner());
        if lock().0.contains(&entry) {
            return true;
        }
        let ok = Signature::from_slice(sig)
            .and_then(|s| s.recover_address(digest))
            .is_ok_and(|a| &a == signer);
        if ok {
            let mut v = lock();
            if v.0.insert(entry) {
                v.1.push_back(entry);
                if v.1.len() > VERIFIED_CACHE {
                    if let Some(old) = v.1.pop_front() {
                        v.0.remove(&old);
                    }
                }
            }
        }
        ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_remembered_signature_still_binds_signer_digest_and_bytes() {
        let alice = KeyPair::generate();
        let bob = KeyPair::generate();
        let c = Secp256k1Crypto::new(bob.clone());
        let d = Hash32([7; 32]);
        let sig = alice.sign(&d).0.to_vec();
        assert!(c.verify(&alice.address(), &d, &sig));
        // Answered from memory now, but only for the very same triple.
        assert!(c.verify(&alice.address(), &d, &sig));
        assert!(!c.verify(&bob.address(), &d, &sig), "another signer");
        assert!(
            !c.verify(&alice.address(), &Hash32([8; 32]), &sig),
            "another digest"
        );
        let mut bent = sig.clone();
        bent[10] ^= 1;
        assert!(!c.verify(&alice.address(), &d, &bent), "other bytes");
        assert!(!c.verify(&alice.address(), &d, &sig[..64]), "short");
        // Refused ones are not remembered: still refused.
        assert!(!c.verify(&bob.address(), &d, &sig));
    }

    #[test]
    fn the_memory_is_bounded() {
        let k = KeyPair::generate();
        let c = Secp256k1Crypto::new(k.clone());
        for i in 0..(VERIFIED_CACHE as u32 + 100) {
            let mut d = [0u8; 32];
            d[..4].copy_from_slice(&i.to_be_bytes());
            let d = Hash32(d);
            assert!(c.verify(&k.address(), &d, &k.sign(&d).0));
        }
        let v = c.verified.lock().unwrap();
        assert_eq!(v.0.len(), VERIFIED_CACHE);
        assert_eq!(v.1.len(), VERIFIED_CACHE);
    }
}
