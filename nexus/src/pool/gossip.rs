//! Admission of transactions gossiped by peers on a thread of its own, so that a batch's
//! signature checks never hold up the consensus task that received it.
//!
//! The queue is bounded ([`QUEUE_BATCHES`]): when the thread falls behind, further batches are
//! dropped and counted. Nothing is lost for consensus: a transaction that reaches a block
//! without having been admitted here is decoded and its signature checked when the block is.

use crate::metrics::{Metrics, StageTimer};
use crate::pool::admission::Admission;
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::sync::Arc;

/// Most transactions in one gossip message.
pub const GOSSIP_BATCH: usize = 512;
/// Gossip messages waiting for the admission thread; more are dropped.
pub const QUEUE_BATCHES: usize = 64;

/// A gossip message as it came: its bytes and the peer that signed it.
type Batch = (Vec<u8>, Option<libp2p::PeerId>);

/// The sending side of one channel's gossip admission thread (the thread ends when it drops).
pub struct GossipAdmission {
    tx: SyncSender<Batch>,
    dropped: u64,
}

impl GossipAdmission {
    /// Starts the thread with a queue of `capacity` messages: it admits each batch into
    /// `admission`'s pool, calls `penalize` with the sender of a malformed batch and wakes
    /// `admitted` after each batch.
    pub fn spawn(
        admission: Arc<Admission>,
        metrics: Arc<Metrics>,
        channel: String,
        capacity: usize,
        penalize: impl Fn(libp2p::PeerId) + Send + 'static,
        admitted: Arc<tokio::sync::Notify>,
    ) -> std::io::Result<Self> {
        let (tx, rx) = sync_channel::<Batch>(capacity);
        std::thread::Builder::new()
            .name(format!("gossip-{channel}"))
            .spawn(move || {
                while let Ok((data, source)) = rx.recv() {
                    if !admit_batch(&admission, &metrics, &channel, &data) {
                        tracing::debug!(peer = ?source, "refused malformed transaction gossip");
                        if let Some(peer) = source {
                            penalize(peer);
                        }
                    }
                    admitted.notify_one();
                }
            })?;
        Ok(GossipAdmission { tx, dropped: 0 })
    }

    /// Messages dropped so far because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Queues a gossip message; false when the queue is full and it was dropped.
    pub fn offer(&mut self, data: Vec<u8>, source: Option<libp2p::PeerId>) -> bool {
        match self.tx.try_send((data, source)) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.dropped += 1;
                if self.dropped.is_power_of_two() {
                    tracing::warn!(
                        dropped = self.dropped,
                        "transaction gossip arrives faster than it is admitted; dropping batches"
                    );
                }
                false
            }
        }
    }
}

/// Admits one gossip message (a JSON array of at most [`GOSSIP_BATCH`] transactions, or one
/// transaction object); false when it is neither. Transactions that fail admission are
/// skipped: a peer may hold a transaction that this node already committed or refused.
pub fn admit_batch(admission: &Admission, metrics: &Metrics, channel: &str, data: &[u8]) -> bool {
    match serde_json::from_slice(data) {
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
