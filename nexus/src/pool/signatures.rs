//! Signatures this node has already checked, so that each transaction's signature is recovered
//! once per node whichever way it arrives first: admission from RPC or gossip, or a block
//! being checked.
//!
//! A transaction's hash covers everything but its signature, so the cache keeps the signature
//! that was checked with each hash: the same transaction with another signature (a malleated
//! one, say) is checked again. Bounded: the oldest entries go first.

use nexus_proto::{Hash32, ProtoError, SignedTransaction};
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

/// Entries kept (about 10 MB).
pub const SIGNATURE_CACHE_ENTRIES: usize = 1 << 16;

/// The signatures by hash, and the hashes oldest first.
type Entries = (HashMap<Hash32, [u8; 65]>, VecDeque<Hash32>);

/// Checked signatures by transaction hash.
pub struct SignatureCache {
    inner: Mutex<Entries>,
    max: usize,
}

impl Default for SignatureCache {
    fn default() -> Self {
        Self::new(SIGNATURE_CACHE_ENTRIES)
    }
}

impl SignatureCache {
    /// A cache of at most `max` signatures.
    pub fn new(max: usize) -> Self {
        SignatureCache {
            inner: Mutex::new((HashMap::new(), VecDeque::new())),
            max: max.max(1),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// True when `st`'s signature was checked here before.
    pub fn known(&self, st: &SignedTransaction) -> bool {
        self.lock().0.get(&st.hash) == Some(&st.signature.0)
    }

    /// Checks that `st` is signed by its sender, recovering the signature only if it was not
    /// checked here before.
    pub fn verify(&self, st: &SignedTransaction) -> Result<(), ProtoError> {
        if self.known(st) {
            return Ok(());
        }
        st.verify_signature()?;
        let mut g = self.lock();
        let (map, order) = &mut *g;
        if map.insert(st.hash, st.signature.0).is_none() {
            order.push_back(st.hash);
            while order.len() > self.max {
                if let Some(old) = order.pop_front() {
                    map.remove(&old);
                }
            }
        }
        Ok(())
    }

    /// Signatures held.
    pub fn len(&self) -> usize {
        self.lock().0.len()
    }

    /// True when none is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nexus_proto::{Address, KeyPair, Transaction, TxData};

    fn signed(key: &KeyPair, nonce: u128) -> SignedTransaction {
        let t = Transaction {
            from: key.address(),
            to: Address::eoa([7; 20]),
            value: 1,
            step_limit: 100_000,
            timestamp: 1_700_000_000_000_000,
            nid: 1,
            nonce: Some(nonce),
            data: TxData::None,
        };
        SignedTransaction::from_json(serde_json::Value::Object(t.sign(key).unwrap().raw)).unwrap()
    }

    #[test]
    fn a_checked_signature_is_not_recovered_again() {
        let c = SignatureCache::default();
        let st = signed(&KeyPair::generate(), 1);
        assert!(!c.known(&st));
        c.verify(&st).unwrap();
        assert!(c.known(&st));
        assert_eq!(c.len(), 1);
        c.verify(&st).unwrap();
        assert_eq!(c.len(), 1);
    }

    #[test]
    fn a_bad_signature_is_refused_and_not_kept() {
        let c = SignatureCache::default();
        let mut st = signed(&KeyPair::generate(), 1);
        // Signed by someone else: recovers to another address.
        st.signature = signed(&KeyPair::generate(), 1).signature;
        assert!(c.verify(&st).is_err());
        assert!(c.is_empty());
    }

    #[test]
    fn the_same_hash_with_another_signature_is_checked_again() {
        let c = SignatureCache::default();
        let key = KeyPair::generate();
        let st = signed(&key, 1);
        c.verify(&st).unwrap();
        let mut forged = st.clone();
        forged.signature = signed(&KeyPair::generate(), 1).signature;
        assert!(!c.known(&forged));
        assert!(
            c.verify(&forged).is_err(),
            "a cached hash does not vouch for another signature"
        );
        assert!(c.known(&st));
    }

    #[test]
    fn the_oldest_go_first_past_the_bound() {
        let c = SignatureCache::new(2);
        let key = KeyPair::generate();
        let txs: Vec<_> = (0..3).map(|n| signed(&key, n)).collect();
        for t in &txs {
            c.verify(t).unwrap();
        }
        assert_eq!(c.len(), 2);
        assert!(!c.known(&txs[0]));
        assert!(c.known(&txs[1]) && c.known(&txs[2]));
    }
}
