//! State as SCOREs see it: a key-value map read through [`StateView`] and written through
//! [`Overlay`] layers that are merged only when a transaction or block succeeds.
//!
//! Keys: `a` + 21-byte address -> ICX balance (16 bytes BE); `s` + SCORE address + key -> SCORE
//! storage.

use nexus_proto::Address;
use std::collections::BTreeMap;

/// Read access to some version of the state.
pub trait StateView {
    /// The value at `key`, if any.
    fn get(&self, key: &[u8]) -> Option<Vec<u8>>;
}

/// Pending writes: `None` deletes.
pub type Writes = BTreeMap<Vec<u8>, Option<Vec<u8>>>;

/// Writes layered over a base view.
pub struct Overlay<'a> {
    base: &'a dyn StateView,
    writes: Writes,
}

impl<'a> Overlay<'a> {
    /// An empty layer over `base`.
    pub fn new(base: &'a dyn StateView) -> Self {
        Overlay {
            base,
            writes: Writes::new(),
        }
    }

    /// Sets a value.
    pub fn set(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.writes.insert(key, Some(value));
    }

    /// Deletes a value.
    pub fn delete(&mut self, key: Vec<u8>) {
        self.writes.insert(key, None);
    }

    /// Takes the writes out, ending the layer.
    pub fn into_writes(self) -> Writes {
        self.writes
    }

    /// Applies writes from a finished child layer.
    pub fn merge(&mut self, writes: Writes) {
        self.writes.extend(writes);
    }
}

impl StateView for Overlay<'_> {
    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        match self.writes.get(key) {
            Some(v) => v.clone(),
            None => self.base.get(key),
        }
    }
}

/// The state key of an account's ICX balance.
pub fn balance_key(addr: &Address) -> Vec<u8> {
    let mut k = Vec::with_capacity(22);
    k.push(b'a');
    k.extend_from_slice(&addr.to_bytes());
    k
}

/// The state key of a SCORE storage slot.
pub fn score_key(score: &Address, key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(22 + key.len());
    k.push(b's');
    k.extend_from_slice(&score.to_bytes());
    k.extend_from_slice(key);
    k
}

/// Decodes a stored unsigned integer (16 bytes BE; absent is zero).
pub fn decode_u128(v: Option<Vec<u8>>) -> u128 {
    v.and_then(|b| <[u8; 16]>::try_from(b.as_slice()).ok())
        .map(u128::from_be_bytes)
        .unwrap_or(0)
}

/// An account's ICX balance.
pub fn balance(view: &dyn StateView, addr: &Address) -> u128 {
    decode_u128(view.get(&balance_key(addr)))
}

/// Sets an account's ICX balance (zero deletes the entry).
pub fn set_balance(ov: &mut Overlay<'_>, addr: &Address, v: u128) {
    if v == 0 {
        ov.delete(balance_key(addr));
    } else {
        ov.set(balance_key(addr), v.to_be_bytes().to_vec());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Empty;
    impl StateView for Empty {
        fn get(&self, _key: &[u8]) -> Option<Vec<u8>> {
            None
        }
    }

    #[test]
    fn overlay_reads_through_and_child_merges() {
        let base = Empty;
        let mut ov = Overlay::new(&base);
        let a = Address::eoa([1; 20]);
        set_balance(&mut ov, &a, 5);
        assert_eq!(balance(&ov, &a), 5);
        let child_writes = {
            let mut child = Overlay::new(&ov);
            set_balance(&mut child, &a, 7);
            child.into_writes()
        };
        assert_eq!(balance(&ov, &a), 5);
        ov.merge(child_writes);
        assert_eq!(balance(&ov, &a), 7);
    }
}
