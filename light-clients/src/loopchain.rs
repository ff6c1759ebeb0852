//! The light client of a loopchain-style chain (one that runs this project's node): it trusts
//! a checkpoint (a header and the validator set that votes on the next block), then accepts a
//! later header only if
//! 1. it is above the verified head; the next height must extend the head (`prev_hash`), and a
//!    header further on (a skip, so relayers carry only the headers that hold messages) must be
//!    voted by the set the client knows, which is checked in 3,
//! 2. its round is above the head's,
//! 3. it names the validator set the client expects (`validators_hash`),
//! 4. more than 2/3 of that set signed it (the votes the next block carries as `prev_votes`),
//! 5. a change of the next set (`next_validators_hash`) comes with the new list, which must hash
//!    to it; the change is signed by the old set, since its votes cover the header. A relayer
//!    must carry every header that changes the set (a skip over one fails check 3).
//!
//! A skip trusts what a skipped header would have shown: that more than 2/3 of the known set
//! stayed honest while it was the set (the assumption of every BFT light client).
//!
//! Event proofs are checked against the receipts root of any of the last
//! [`KEEP_HEADERS`] verified headers.

use crate::{LightClient, LightClientError};
use alloy_rlp::Decodable;
use nexus_proto::block::{
    decode_validators, encode_validators, validators_hash, verify_quorum, BlockHeader, VoteSet,
};
use nexus_proto::merkle::ProofStep;
use nexus_proto::receipt::{EventLog, Receipt};
use nexus_proto::{Address, Hash32};
use std::collections::BTreeMap;

/// Verified receipts roots kept for event proofs.
pub const KEEP_HEADERS: usize = 1024;

/// Largest encoded update accepted.
pub const MAX_UPDATE_BYTES: usize = 256 * 1024;

/// Largest encoded event proof accepted.
pub const MAX_PROOF_BYTES: usize = 128 * 1024;

/// A header and the votes that certify it, with the next validator list when it changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderUpdate {
    /// The header.
    pub header: BlockHeader,
    /// Votes on it (the next block's `prev_votes`).
    pub votes: VoteSet,
    /// The next set, when the header changes it.
    pub next_validators: Option<Vec<Address>>,
}

impl HeaderUpdate {
    /// Encodes as `RLP[header RLP, votes RLP, validators RLP or empty]`.
    pub fn encode(&self) -> Vec<u8> {
        let items: [Vec<u8>; 3] = [
            self.header.to_rlp(),
            self.votes.to_rlp(),
            self.next_validators
                .as_deref()
                .map(encode_validators)
                .unwrap_or_default(),
        ];
        let bytes: Vec<alloy_rlp::Bytes> = items.into_iter().map(Into::into).collect();
        alloy_rlp::encode(bytes)
    }

    /// Decodes [`HeaderUpdate::encode`], bounded.
    pub fn decode(bytes: &[u8]) -> Result<Self, LightClientError> {
        let bad = |e: String| LightClientError::Decode(e);
        if bytes.len() > MAX_UPDATE_BYTES {
            return Err(bad(format!(
                "update of {} bytes exceeds {MAX_UPDATE_BYTES}",
                bytes.len()
            )));
        }
        let mut buf = bytes;
        let items: Vec<alloy_rlp::Bytes> =
            nexus_proto::decode_list_at_most(&mut buf, 3, "an update has more than 3 fields")
                .map_err(|e| bad(e.to_string()))?;
        if !buf.is_empty() || items.len() != 3 {
            return Err(bad("expected exactly [header, votes, validators]".into()));
        }
        let header = BlockHeader::from_rlp(&items[0]).map_err(|e| bad(e.to_string()))?;
        let votes = VoteSet::from_rlp(&items[1]).map_err(|e| bad(e.to_string()))?;
        let next_validators = if items[2].is_empty() {
            None
        } else {
            Some(decode_validators(&items[2]).map_err(|e| bad(e.to_string()))?)
        };
        Ok(HeaderUpdate {
            header,
            votes,
            next_validators,
        })
    }
}

/// Proof that `event` was emitted by the transaction whose receipt is `receipt`, in the block
/// at `height` (the two Merkle paths `icx_getProofForEvents` returns). The receipt travels
/// without its events (they are committed by `events_root`), so a proof stays small however
/// many events its receipt holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventProof {
    /// Height of the block.
    pub height: u64,
    /// The receipt, its `event_logs` empty.
    pub receipt: Receipt,
    /// The Merkle root of the receipt's events.
    pub events_root: Hash32,
    /// Its path to the header's receipts root.
    pub receipt_proof: Vec<ProofStep>,
    /// The event.
    pub event: EventLog,
    /// Its path to the receipt's event-logs root.
    pub event_proof: Vec<ProofStep>,
}

impl EventProof {
    /// A proof of event `index` of `receipt` (which holds its events), whose path to the
    /// receipts root is `receipt_proof`. For many events of one block, use [`BlockEvents`].
    pub fn new(
        height: u64,
        receipt: &Receipt,
        receipt_proof: Vec<ProofStep>,
        index: usize,
    ) -> Option<Self> {
        let leaves: Vec<Hash32> = receipt.event_logs.iter().map(EventLog::hash).collect();
        let tree = nexus_proto::merkle::Tree::new(&leaves);
        Self::from_tree(height, receipt, receipt_proof, &tree, index)
    }

    fn from_tree(
        height: u64,
        receipt: &Receipt,
        receipt_proof: Vec<ProofStep>,
        events: &nexus_proto::merkle::Tree,
        index: usize,
    ) -> Option<Self> {
        Some(EventProof {
            height,
            events_root: events.root(),
            event_proof: events.prove(index)?,
            event: receipt.event_logs.get(index)?.clone(),
            receipt: without_events(receipt),
            receipt_proof,
        })
    }

    /// Checks the two paths against a verified receipts root.
    pub fn verify(&self, receipts_root: &Hash32) -> Result<(), LightClientError> {
        let proof = |e: nexus_proto::ProtoError| LightClientError::Proof(e.to_string());
        if !self.receipt.event_logs.is_empty() {
            return Err(LightClientError::Proof(
                "the receipt must travel without its events".into(),
            ));
        }
        nexus_proto::merkle::verify(&self.events_root, &self.event.hash(), &self.event_proof)
            .map_err(proof)?;
        nexus_proto::merkle::verify(
            receipts_root,
            &self.receipt.hash_with_events_root(self.events_root),
            &self.receipt_proof,
        )
        .map_err(proof)
    }

    /// Encodes as `RLP[height (8 bytes BE), receipt RLP, events root, receipt path, event RLP,
    /// event path]`, a path being 33 bytes per step (1 when the sibling is on the left, then the
    /// sibling).
    pub fn encode(&self) -> Vec<u8> {
        let path = |p: &[ProofStep]| -> Vec<u8> {
            p.iter()
                .flat_map(|s| std::iter::once(u8::from(s.sibling_is_left)).chain(s.sibling.0))
                .collect()
        };
        let items: [Vec<u8>; 6] = [
            self.height.to_be_bytes().to_vec(),
            self.receipt.encode(),
            self.events_root.0.to_vec(),
            path(&self.receipt_proof),
            alloy_rlp::encode(&self.event),
            path(&self.event_proof),
        ];
        let bytes: Vec<alloy_rlp::Bytes> = items.into_iter().map(Into::into).collect();
        alloy_rlp::encode(bytes)
    }

    /// Decodes [`EventProof::encode`], bounded by [`MAX_PROOF_BYTES`] and
    /// [`nexus_proto::merkle::MAX_PROOF_LEN`] steps per path.
    pub fn decode(bytes: &[u8]) -> Result<Self, LightClientError> {
        let bad = |e: String| LightClientError::Decode(format!("event proof: {e}"));
        if bytes.len() > MAX_PROOF_BYTES {
            return Err(bad(format!(
                "{} bytes exceeds {MAX_PROOF_BYTES}",
                bytes.len()
            )));
        }
        let mut buf = bytes;
        let items: Vec<alloy_rlp::Bytes> =
            nexus_proto::decode_list_at_most(&mut buf, 6, "an event proof has more than 6 fields")
                .map_err(|e| bad(e.to_string()))?;
        if !buf.is_empty() || items.len() != 6 {
            return Err(bad(
                "expected exactly [height, receipt, events root, receipt path, event, event path]"
                    .into(),
            ));
        }
        let height = <[u8; 8]>::try_from(&items[0][..])
            .map(u64::from_be_bytes)
            .map_err(|_| bad(format!("height: expected 8 bytes, got {}", items[0].len())))?;
        let path = |b: &[u8], what: &str| -> Result<Vec<ProofStep>, LightClientError> {
            if !b.len().is_multiple_of(33) || b.len() / 33 > nexus_proto::merkle::MAX_PROOF_LEN {
                return Err(bad(format!(
                    "{what}: expected up to {} steps of 33 bytes, got {} bytes",
                    nexus_proto::merkle::MAX_PROOF_LEN,
                    b.len()
                )));
            }
            b.chunks(33)
                .map(|c| {
                    let sibling_is_left = match c[0] {
                        0 => false,
                        1 => true,
                        other => {
                            return Err(bad(format!(
                                "{what}: side byte must be 0 or 1, got {other}"
                            )))
                        }
                    };
                    let mut sibling = [0u8; 32];
                    sibling.copy_from_slice(&c[1..]);
                    Ok(ProofStep {
                        sibling: Hash32(sibling),
                        sibling_is_left,
                    })
                })
                .collect()
        };
        let receipt = Receipt::decode(&items[1]).map_err(|e| bad(e.to_string()))?;
        let events_root = <[u8; 32]>::try_from(&items[2][..])
            .map(Hash32)
            .map_err(|_| {
                bad(format!(
                    "events root: expected 32 bytes, got {}",
                    items[2].len()
                ))
            })?;
        let mut ev: &[u8] = &items[4];
        let event = EventLog::decode(&mut ev).map_err(|e| bad(format!("event: {e}")))?;
        if !ev.is_empty() {
            return Err(bad("event: trailing bytes".into()));
        }
        Ok(EventProof {
            height,
            receipt,
            events_root,
            receipt_proof: path(&items[3], "receipt path")?,
            event,
            event_proof: path(&items[5], "event path")?,
        })
    }
}

/// A receipt's fields without its events (which are not cloned).
fn without_events(r: &Receipt) -> Receipt {
    Receipt {
        status: r.status,
        to: r.to,
        cumulative_step_used: r.cumulative_step_used,
        step_used: r.step_used,
        step_price: r.step_price,
        failure_code: r.failure_code,
        failure_message: r.failure_message.clone(),
        event_logs: Vec::new(),
    }
}

/// The receipts of one block with their trees built once, so proving many of its events
/// hashes each receipt and event once (a relay's receipt may hold hundreds of messages).
pub struct BlockEvents<'a> {
    height: u64,
    receipts: &'a [Receipt],
    receipts_tree: nexus_proto::merkle::Tree,
    event_trees: Vec<nexus_proto::merkle::Tree>,
}

impl<'a> BlockEvents<'a> {
    /// The trees of the block at `height` with `receipts`.
    pub fn new(height: u64, receipts: &'a [Receipt]) -> Self {
        let event_trees: Vec<nexus_proto::merkle::Tree> = receipts
            .iter()
            .map(|r| {
                let leaves: Vec<Hash32> = r.event_logs.iter().map(EventLog::hash).collect();
                nexus_proto::merkle::Tree::new(&leaves)
            })
            .collect();
        let leaves: Vec<Hash32> = receipts
            .iter()
            .zip(&event_trees)
            .map(|(r, t)| r.hash_with_events_root(t.root()))
            .collect();
        BlockEvents {
            height,
            receipts,
            receipts_tree: nexus_proto::merkle::Tree::new(&leaves),
            event_trees,
        }
    }

    /// The receipts root the header commits to.
    pub fn receipts_root(&self) -> Hash32 {
        self.receipts_tree.root()
    }

    /// The proof of event `event` of receipt `receipt`, if both exist.
    pub fn proof(&self, receipt: usize, event: usize) -> Option<EventProof> {
        EventProof::from_tree(
            self.height,
            self.receipts.get(receipt)?,
            self.receipts_tree.prove(receipt)?,
            self.event_trees.get(receipt)?,
            event,
        )
    }
}

/// A verified view of one loopchain channel.
#[derive(Debug, Clone)]
pub struct LoopchainClient {
    nid: u64,
    channel: String,
    head: BlockHeader,
    /// The set that votes on the next header.
    next_validators: Vec<Address>,
    receipts_roots: BTreeMap<u64, Hash32>,
}

impl LoopchainClient {
    /// Trusts `checkpoint` and the set that votes on the block after it (out of band: genesis,
    /// or a header the operator checked).
    pub fn new(
        nid: u64,
        channel: &str,
        checkpoint: BlockHeader,
        next_validators: Vec<Address>,
    ) -> Result<Self, LightClientError> {
        let h = validators_hash(&next_validators);
        if h != checkpoint.next_validators_hash {
            return Err(LightClientError::ValidatorsMismatch {
                expected: checkpoint.next_validators_hash.to_string(),
                got: h.to_string(),
            });
        }
        let mut receipts_roots = BTreeMap::new();
        receipts_roots.insert(checkpoint.height, checkpoint.receipts_root);
        Ok(LoopchainClient {
            nid,
            channel: channel.to_string(),
            head: checkpoint,
            next_validators,
            receipts_roots,
        })
    }

    /// The verified head.
    pub fn head(&self) -> &BlockHeader {
        &self.head
    }

    /// The set that votes on the next header.
    pub fn next_validators(&self) -> &[Address] {
        &self.next_validators
    }
}

impl LightClient for LoopchainClient {
    type Update = HeaderUpdate;
    type EventProof = EventProof;

    fn height(&self) -> u64 {
        self.head.height
    }

    fn apply(&mut self, u: HeaderUpdate) -> Result<(), LightClientError> {
        let h = &u.header;
        let expected = self.head.height.saturating_add(1);
        if h.height < expected {
            return Err(LightClientError::NotNext {
                expected,
                got: h.height,
            });
        }
        let head_hash = self.head.hash();
        if h.height == expected && h.prev_hash != head_hash {
            return Err(LightClientError::WrongParent {
                expected: head_hash.to_string(),
                got: h.prev_hash.to_string(),
            });
        }
        if h.round <= self.head.round {
            return Err(LightClientError::RoundNotAfterParent {
                parent: self.head.round,
                got: h.round,
            });
        }
        let set_hash = validators_hash(&self.next_validators);
        if h.validators_hash != set_hash {
            return Err(LightClientError::WrongValidators {
                expected: set_hash.to_string(),
                got: h.validators_hash.to_string(),
            });
        }
        verify_quorum(
            &u.votes,
            &self.next_validators,
            self.nid,
            &self.channel,
            h.height,
            &h.hash(),
        )
        .map_err(|e| LightClientError::Votes(e.to_string()))?;
        let next = if h.next_validators_hash == set_hash {
            None
        } else {
            let list = u
                .next_validators
                .clone()
                .ok_or(LightClientError::MissingValidators)?;
            let got = validators_hash(&list);
            if got != h.next_validators_hash {
                return Err(LightClientError::ValidatorsMismatch {
                    expected: h.next_validators_hash.to_string(),
                    got: got.to_string(),
                });
            }
            Some(list)
        };
        // Every check passed: apply.
        if let Some(list) = next {
            self.next_validators = list;
        }
        self.receipts_roots.insert(h.height, h.receipts_root);
        while self.receipts_roots.len() > KEEP_HEADERS {
            self.receipts_roots.pop_first();
        }
        self.head = u.header;
        Ok(())
    }

    fn verify_event(&self, p: &EventProof) -> Result<(), LightClientError> {
        let root = self
            .receipts_roots
            .get(&p.height)
            .ok_or(LightClientError::UnknownHeight(p.height))?;
        p.verify(root)
    }
}

#[cfg(test)]
mod tests;
