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
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Condvar, Mutex};

/// Most transactions in one gossip message.
pub const GOSSIP_BATCH: usize = 512;
/// Memory one gossip message may decode to (its JSON: at most 16 MiB of transactions, which
/// honest ones hold in about as many bytes again; one-entry objects would take 150 times it).
pub const MAX_DECODED_BATCH_BYTES: usize = 64 << 20;
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
/// transaction object); false when it is neither. Transactions that fail admission are
/// skipped: a peer may hold a transaction that this node already committed or refused.
pub fn admit_batch(admission: &Admission, metrics: &Metrics, channel: &str, data: &[u8]) -> bool {
    match nexus_proto::json::from_slice_within(data, MAX_DECODED_BATCH_BYTES) {
        Ok(serde_json::Value::Array(txs)) if txs.len() <= GOSSIP_BATCH => {
            let stage = StageTimer::start();
            let n = txs.len() as u64;
            for tx in txs {
                let _ = admission.admit_from_peer(tx);
            }
            stage.stop(metrics, channel, "admission_gossip", n);
            true
        }
        Ok(tx @ serde_json::Value::Object(_)) => {
            let _ = admission.admit_from_peer(tx);
            true
        }
        _ => false,
    }
}
