//! Transaction receipts, event logs, their hashes and the logs bloom.
//!
//! A receipt commits to its events through `event_logs_root` (a Merkle root of event hashes),
//! and a block commits to its receipts through `receipts_root`. So one event is proven by two
//! Merkle paths: event -> receipt, receipt -> block (`icx_getProofForEvents`).

use crate::{hash::sha3_256, merkle, rlp_impls::decode_exact, Address, Hash32, ProtoError};
use alloy_rlp::{RlpDecodable, RlpEncodable};

/// Bytes in a logs bloom (2048 bits).
pub const BLOOM_BYTES: usize = 256;
/// Most event logs in one receipt.
pub const MAX_EVENTS: usize = 1024;

/// One event emitted by a SCORE.
#[derive(Debug, Clone, PartialEq, Eq, RlpEncodable, RlpDecodable)]
pub struct EventLog {
    /// The emitting SCORE.
    pub score_address: Address,
    /// Signature first (`Transfer(Address,Address,int)`), then indexed values.
    pub indexed: Vec<String>,
    /// Non-indexed values.
    pub data: Vec<String>,
}

impl EventLog {
    /// The event hash (leaf of the receipt's event tree).
    pub fn hash(&self) -> Hash32 {
        sha3_256(&[&alloy_rlp::encode(self)])
    }
}

/// The outcome of one transaction.
#[derive(Debug, Clone, PartialEq, Eq, RlpEncodable, RlpDecodable)]
pub struct Receipt {
    /// 1 success, 0 failure.
    pub status: u8,
    /// The transaction's `to`.
    pub to: Address,
    /// Steps used by this and every earlier transaction in the block.
    pub cumulative_step_used: u128,
    /// Steps used by this transaction.
    pub step_used: u128,
    /// Price per step in loop.
    pub step_price: u128,
    /// Failure code (0 when successful; ICON SCORE codes otherwise).
    pub failure_code: u32,
    /// Failure message (empty when successful).
    pub failure_message: String,
    /// Events, in emission order (none when the transaction failed).
    pub event_logs: Vec<EventLog>,
}

#[derive(RlpEncodable)]
struct ReceiptCommitment<'a> {
    status: u8,
    to: &'a Address,
    cumulative_step_used: u128,
    step_used: u128,
    step_price: u128,
    failure_code: u32,
    failure_message: &'a str,
    event_logs_root: Hash32,
}

impl Receipt {
    /// Merkle root over the event hashes.
    pub fn event_logs_root(&self) -> Hash32 {
        let hashes: Vec<Hash32> = self.event_logs.iter().map(EventLog::hash).collect();
        merkle::root(&hashes)
    }

    /// The receipt hash (leaf of the block's receipt tree).
    pub fn hash(&self) -> Hash32 {
        self.hash_with_events_root(self.event_logs_root())
    }

    /// The receipt hash given the root of its events (what a verifier holding only one event's
    /// proof computes).
    pub fn hash_with_events_root(&self, event_logs_root: Hash32) -> Hash32 {
        let c = ReceiptCommitment {
            status: self.status,
            to: &self.to,
            cumulative_step_used: self.cumulative_step_used,
            step_used: self.step_used,
            step_price: self.step_price,
            failure_code: self.failure_code,
            failure_message: &self.failure_message,
            event_logs_root,
        };
        sha3_256(&[&alloy_rlp::encode(&c)])
    }

    /// The 2048-bit bloom of event signatures, SCORE addresses and indexed values.
    pub fn logs_bloom(&self) -> [u8; BLOOM_BYTES] {
        let mut bloom = [0u8; BLOOM_BYTES];
        for e in &self.event_logs {
            bloom_add(&mut bloom, &e.score_address.to_bytes());
            for (i, v) in e.indexed.iter().enumerate() {
                let mut item = Vec::with_capacity(v.len() + 1);
                item.push(i as u8);
                item.extend_from_slice(v.as_bytes());
                bloom_add(&mut bloom, &item);
            }
        }
        bloom
    }

    /// Encodes as RLP.
    pub fn encode(&self) -> Vec<u8> {
        alloy_rlp::encode(self)
    }

    /// Decodes from RLP, bounding the event count.
    pub fn decode(bytes: &[u8]) -> Result<Self, ProtoError> {
        let r: Receipt = decode_exact("receipt", bytes)?;
        if r.event_logs.len() > MAX_EVENTS {
            return Err(ProtoError::TooLarge {
                what: "event logs",
                size: r.event_logs.len(),
                limit: MAX_EVENTS,
            });
        }
        Ok(r)
    }
}

/// Sets the three bloom bits of `item` (Ethereum's scheme over SHA3-256).
pub fn bloom_add(bloom: &mut [u8; BLOOM_BYTES], item: &[u8]) {
    let h = sha3_256(&[item]);
    for i in 0..3 {
        let bit = (usize::from(h.0[2 * i]) << 8 | usize::from(h.0[2 * i + 1])) & 2047;
        bloom[BLOOM_BYTES - 1 - bit / 8] |= 1 << (bit % 8);
    }
}

/// Checks that `event` is event number `event_index`'s leaf under `receipt`, and `receipt` is
/// under `receipts_root`, given the two proofs that `icx_getProofForEvents` returns.
pub fn verify_event(
    receipts_root: &Hash32,
    receipt: &Receipt,
    receipt_proof: &[merkle::ProofStep],
    event: &EventLog,
    event_proof: &[merkle::ProofStep],
) -> Result<(), ProtoError> {
    let events_root = receipt.event_logs_root();
    merkle::verify(&events_root, &event.hash(), event_proof)?;
    merkle::verify(
        receipts_root,
        &receipt.hash_with_events_root(events_root),
        receipt_proof,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn receipt(events: usize) -> Receipt {
        Receipt {
            status: 1,
            to: Address::contract([1; 20]),
            cumulative_step_used: 200,
            step_used: 100,
            step_price: 12_500_000_000,
            failure_code: 0,
            failure_message: String::new(),
            event_logs: (0..events)
                .map(|i| EventLog {
                    score_address: Address::contract([1; 20]),
                    indexed: vec![
                        "Transfer(Address,Address,int,bytes)".into(),
                        format!("hx{i:040}"),
                    ],
                    data: vec!["0x1".into()],
                })
                .collect(),
        }
    }

    #[test]
    fn receipt_round_trip_and_event_proofs() {
        let rs: Vec<Receipt> = (0..3).map(receipt).collect();
        for r in &rs {
            assert_eq!(&Receipt::decode(&r.encode()).unwrap(), r);
        }
        let hashes: Vec<Hash32> = rs.iter().map(Receipt::hash).collect();
        let root = merkle::root(&hashes);
        let r = &rs[2];
        let rp = merkle::prove(&hashes, 2).unwrap();
        let ehashes: Vec<Hash32> = r.event_logs.iter().map(EventLog::hash).collect();
        let ep = merkle::prove(&ehashes, 1).unwrap();
        verify_event(&root, r, &rp, &r.event_logs[1], &ep).unwrap();
        assert!(verify_event(&root, r, &rp, &r.event_logs[0], &ep).is_err());
        let mut forged = r.clone();
        forged.step_used = 1;
        assert!(verify_event(&root, &forged, &rp, &r.event_logs[1], &ep).is_err());
    }

    #[test]
    fn bloom_contains_indexed_values() {
        let r = receipt(1);
        let bloom = r.logs_bloom();
        assert!(bloom.iter().map(|b| b.count_ones()).sum::<u32>() > 0);
        let mut probe = [0u8; BLOOM_BYTES];
        bloom_add(&mut probe, &r.event_logs[0].score_address.to_bytes());
        assert!(probe.iter().zip(bloom.iter()).all(|(p, b)| p & b == *p));
    }
}
