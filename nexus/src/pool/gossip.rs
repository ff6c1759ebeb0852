//! Admission of transactions gossiped by peers on a thread of its own, so that a batch's
//! signature checks never hold up the consensus task that received it.
//!
//! Each peer has its own bounded queue ([`QUEUE_BATCHES_PER_PEER`]) and the thread serves the
//! peers in turn: a peer that floods gossip fills only its own queue, and the batches dropped
//! past it are its own (counted). Nothing is lost for consensus: a transaction that reaches a
//! block without having been admitted here is decoded and its signature checked when the block
//! is.

use crate::metrics::{Metrics, StageTimer};
use crate::pool::admission::Admission;
use libp2p::PeerId;
use nexus_proto::json;
use serde_json::value::RawValue;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Condvar, Mutex};

/// Most transactions in one gossip message.
pub const GOSSIP_BATCH: usize = 512;
/// Gossip messages from one peer waiting for the admission thread; more from it are dropped.
pub const QUEUE_BATCHES_PER_PEER: usize = 16;

/// Waiting messages by peer, and the peers with some, in the order they are served.
#[derive(Default)]
struct Queues {
    by_peer: HashMap<Option<PeerId>, VecDeque<Vec<u8>>>,
    turn: VecDeque<Option<PeerId>>,
    closed: bool,
}

type Shared = Arc<(Mutex<Queues>, Condvar)>;

fn lock(s: &Shared) -> std::sync::MutexGuard<'_, Queues> {
    s.0.lock().unwrap_or_else(|p| p.into_inner())
}

/// The sending side of one channel's gossip admission thread (the thread ends when it drops).
pub struct GossipAdmission {
    shared: Shared,
    per_peer: usize,
    dropped: u64,
}

impl GossipAdmission {
    /// Starts the thread, with at most `per_peer` messages waiting from each peer: it admits
    /// each batch into `admission`'s pool, calls `penalize` with the sender of a malformed batch
    /// and wakes `admitted` after each batch.
    pub fn spawn(
        admission: Arc<Admission>,
        metrics: Arc<Metrics>,
        channel: String,
        per_peer: usize,
        penalize: impl Fn(PeerId) + Send + 'static,
        admitted: Arc<tokio::sync::Notify>,
    ) -> std::io::Result<Self> {
        let shared: Shared = Arc::default();
        let queues = shared.clone();
        std::thread::Builder::new()
            .name(format!("gossip-{channel}"))
            .spawn(move || {
                while let Some((data, source)) = next(&queues) {
                    if !admit_batch(&admission, &metrics, &channel, &data) {
                        tracing::debug!(peer = ?source, "refused malformed transaction gossip");
                        if let Some(peer) = source {
                            penalize(peer);
                        }
                    }
                    admitted.notify_one();
                }
            })?;
        Ok(GossipAdmission {
            shared,
            per_peer: per_peer.max(1),
            dropped: 0,
        })
    }

    /// Messages dropped so far because their peer's queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Queues a gossip message from `source`; false when that peer's queue is full and it was
    /// dropped.
    pub fn offer(&mut self, data: Vec<u8>, source: Option<PeerId>) -> bool {
        let mut q = lock(&self.shared);
        let waiting = q.by_peer.entry(source).or_default();
        if waiting.len() >= self.per_peer {
            drop(q);
            self.dropped += 1;
            if self.dropped.is_power_of_two() {
                tracing::warn!(
                    dropped = self.dropped,
                    peer = ?source,
                    "a peer gossips transactions faster than they are admitted; dropping its batches"
                );
            }
            return false;
        }
        waiting.push_back(data);
        if waiting.len() == 1 {
            q.turn.push_back(source);
        }
        drop(q);
        self.shared.1.notify_one();
        true
    }
}

impl Drop for GossipAdmission {
    fn drop(&mut self) {
        lock(&self.shared).closed = true;
        self.shared.1.notify_one();
    }
}

/// The next message, from the peer whose turn it is; None once closed.
fn next(shared: &Shared) -> Option<(Vec<u8>, Option<PeerId>)> {
    let mut q = lock(shared);
    loop {
        if q.closed {
            return None;
        }
        if let Some(peer) = q.turn.pop_front() {
            let Some(waiting) = q.by_peer.get_mut(&peer) else {
                continue;
            };
            let Some(data) = waiting.pop_front() else {
                q.by_peer.remove(&peer);
                continue;
            };
            if waiting.is_empty() {
                q.by_peer.remove(&peer);
            } else {
                q.turn.push_back(peer);
            }
            return Some((data, peer));
        }
        q = shared.1.wait(q).unwrap_or_else(|p| p.into_inner());
    }
}

/// Admits one gossip message (a JSON array of at most [`GOSSIP_BATCH`] transactions, or one
/// transaction object); false when it is neither. Each transaction is decoded on its own, within
/// the memory a transaction may decode to at admission ([`json::MAX_DECODED_BYTES`]), so a
/// message never becomes one tree of values (one-entry objects would take 150 times their
/// text). Transactions that fail decoding or admission are skipped: a peer may hold a
/// transaction that this node already committed or refused.
pub fn admit_batch(admission: &Admission, metrics: &Metrics, channel: &str, data: &[u8]) -> bool {
    let Some(txs) = transactions(data) else {
        return false;
    };
    let stage = StageTimer::start();
    let n = txs.len() as u64;
    for raw in txs {
        if let Ok(tx) = json::from_str_within(raw.get(), json::MAX_DECODED_BYTES) {
            let _ = admission.admit_from_peer(tx);
        }
    }
    stage.stop(metrics, channel, "admission_gossip", n);
    true
}

/// The transactions of a gossip message as raw JSON: the items of an array of at most
/// [`GOSSIP_BATCH`], or the message itself when it is an object; None when it is neither. The
/// JSON is checked in one pass, not decoded into values.
fn transactions(data: &[u8]) -> Option<Vec<&RawValue>> {
    let text = std::str::from_utf8(data).ok()?;
    match text.trim_start().as_bytes().first()? {
        b'{' => Some(vec![serde_json::from_str(text).ok()?]),
        b'[' => {
            let mut de = serde_json::Deserializer::from_str(text);
            let items = serde::Deserializer::deserialize_seq(&mut de, Items).ok()?;
            de.end().ok()?;
            Some(items)
        }
        _ => None,
    }
}

/// The items of a JSON array as raw JSON, refused past [`GOSSIP_BATCH`].
struct Items;

impl<'de> serde::de::Visitor<'de> for Items {
    type Value = Vec<&'de RawValue>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(f, "an array of at most {GOSSIP_BATCH} transactions")
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::new();
        while let Some(tx) = seq.next_element::<&'de RawValue>()? {
            if out.len() == GOSSIP_BATCH {
                return Err(serde::de::Error::custom(format!(
                    "more than {GOSSIP_BATCH} transactions"
                )));
            }
            out.push(tx);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::chain::test_chain;
    use crate::pool::mempool::Mempool;
    use nexus_proto::{Address, KeyPair, Transaction, TxData};

    #[test]
    fn a_message_is_an_array_of_at_most_a_batch_or_one_object() {
        let three = br#"[{"a":1}, {"b":[2]} ,{}]"#;
        let items = transactions(three).unwrap();
        assert_eq!(
            items.iter().map(|r| r.get()).collect::<Vec<_>>(),
            [r#"{"a":1}"#, r#"{"b":[2]}"#, "{}"]
        );
        assert_eq!(transactions(br#" {"a":1}"#).unwrap().len(), 1);
        let full = format!("[{}]", vec!["{}"; GOSSIP_BATCH].join(","));
        assert_eq!(transactions(full.as_bytes()).unwrap().len(), GOSSIP_BATCH);
        let over = format!("[{}]", vec!["{}"; GOSSIP_BATCH + 1].join(","));
        assert!(transactions(over.as_bytes()).is_none());
        for bad in [&b"7"[..], b"\"x\"", b"[{}", b"{} {}", b"\xff[]", b""] {
            assert!(transactions(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn each_transaction_is_decoded_alone_within_its_budget() {
        let dir = tempfile::tempdir().unwrap();
        let alice = KeyPair::generate();
        let chain = test_chain(dir.path(), &alice, &KeyPair::generate());
        let pool = Arc::new(Mempool::new(100));
        let admission = Admission::new(chain, pool.clone(), 60_000);
        let transfer = Transaction {
            from: alice.address(),
            to: Address::eoa([0xb0; 20]),
            value: 1,
            step_limit: 100_000,
            timestamp: crate::pool::admission::now_us(),
            nid: 3,
            nonce: Some(1),
            data: TxData::None,
        }
        .sign(&alice)
        .unwrap();
        // 400 KiB of one-entry objects: short text, over the budget once decoded.
        let dense = format!(r#"{{"a":[{}]}}"#, vec![r#"{"k":""}"#; 45_000].join(","));
        assert!(json::from_str_within(&dense, json::MAX_DECODED_BYTES).is_err());
        let message = format!(
            "[{dense},{}]",
            String::from_utf8(transfer.to_json_bytes()).unwrap()
        );
        let metrics = Metrics::default();
        assert!(admit_batch(
            &admission,
            &metrics,
            "public",
            message.as_bytes()
        ));
        assert_eq!(
            pool.pending(),
            1,
            "the transfer was admitted, the dense item skipped"
        );
        assert!(pool.contains(&transfer.hash));
    }
}
