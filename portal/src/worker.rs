//! One link direction. An inbound worker carries a source chain's BMC messages (and the
//! headers that prove them) into the chain's notary channel (`relay`); an outbound worker
//! carries a notary channel's messages for one destination into its BMC
//! (`handleRelayMessage`). Each pass reads what the receiving side has already verified (its
//! light-client height and last sequence number), so a restart, a second portal or a lost
//! answer never delivers anything twice: the receiver refuses duplicates and the worker skips
//! them.

use crate::config::PortalConfig;
use crate::endpoint::{Endpoint, FoundMessage};
use crate::metrics::Metrics;
use crate::progress::{Progress, ProgressFile};
use crate::PortalError;
use nexus_proto::value::{parse_u128, parse_u64};
use nexus_proto::{Address, KeyPair};
use serde_json::{json, Map, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Which way a worker relays.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Direction {
    /// Source chain -> notary channel.
    Inbound,
    /// Notary channel -> destination chain (`dst` is learned at start).
    Outbound,
}

/// Most source blocks scanned in one pass (progress is saved after each pass).
pub const MAX_BLOCKS_PER_PASS: u64 = 2_000;
/// Source blocks read concurrently.
pub const SCAN_AHEAD: u64 = 32;
/// Most header updates in one relay transaction (the BMC's and notary's limit).
pub const MAX_UPDATES: usize = 64;
/// Most proofs in one relay transaction (the BMC's and notary's limit).
pub const MAX_PROOFS: usize = 256;

/// Updates and proofs waiting to go out in one transaction.
#[derive(Default)]
struct Batch {
    updates: Vec<String>,
    proofs: Vec<FoundMessage>,
    bytes: usize,
}

impl Batch {
    fn is_empty(&self) -> bool {
        self.updates.is_empty() && self.proofs.is_empty()
    }

    /// True when an item of `bytes` still fits (an empty batch takes anything).
    fn fits(&self, bytes: usize, update: bool, max: usize) -> bool {
        if self.is_empty() {
            return true;
        }
        let count_ok = if update {
            self.updates.len() < MAX_UPDATES
        } else {
            self.proofs.len() < MAX_PROOFS
        };
        count_ok && self.bytes + bytes <= max
    }

    fn add_update(&mut self, u: String) {
        self.bytes += u.len() / 2;
        self.updates.push(u);
    }

    fn add_proof(&mut self, m: FoundMessage) {
        self.bytes += m.proof.len() / 2;
        self.proofs.push(m);
    }
}

/// What the receiving side has verified.
#[derive(Debug, Clone, Copy)]
struct Received {
    height: u64,
    seq: u128,
}

/// A link-direction worker.
pub struct Worker {
    /// Link name.
    pub name: String,
    direction: Direction,
    from: Endpoint,
    to: Endpoint,
    progress: ProgressFile,
    start_height: u64,
    key: Arc<KeyPair>,
    cfg: Arc<PortalConfig>,
    metrics: Arc<Metrics>,
}

/// What a worker learned about both ends at start.
struct Ends {
    from_score: Address,
    to_score: Address,
    to_nid: u64,
    /// The source network of the messages (inbound: the source chain; outbound: the notary's).
    src_net: String,
    /// Outbound: the destination network.
    dst_net: Option<String>,
}

impl Worker {
    /// A worker relaying from `from` to `to`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        name: &str,
        direction: Direction,
        from: Endpoint,
        to: Endpoint,
        start_height: u64,
        key: Arc<KeyPair>,
        cfg: Arc<PortalConfig>,
        metrics: Arc<Metrics>,
    ) -> Self {
        Worker {
            name: name.to_string(),
            direction,
            from,
            to,
            progress: ProgressFile::new(&cfg.state_dir, name),
            start_height,
            key,
            cfg,
            metrics,
        }
    }

    async fn ends(&self) -> Result<Ends, PortalError> {
        let (from_net, from_score, _) = self.from.btp_info().await?;
        let (to_net, to_score, to_nid) = self.to.btp_info().await?;
        Ok(match self.direction {
            Direction::Inbound => Ends {
                from_score,
                to_score,
                to_nid,
                src_net: from_net,
                dst_net: None,
            },
            Direction::Outbound => Ends {
                from_score,
                to_score,
                to_nid,
                src_net: from_net,
                dst_net: Some(to_net),
            },
        })
    }

    async fn received(&self, ends: &Ends) -> Result<Received, PortalError> {
        let bad = |what: String| PortalError::Answer {
            endpoint: self.to.url().to_string(),
            what,
        };
        let (height, seq) = match self.direction {
            Direction::Inbound => {
                let s = self
                    .to
                    .query(&ends.to_score, "getStatus", json!({}))
                    .await?;
                (s["height"].clone(), s["rxSeq"].clone())
            }
            Direction::Outbound => {
                let s = self
                    .to
                    .query(&ends.to_score, "getStatus", json!({"_link": ends.src_net}))
                    .await?;
                (s["verifier"]["height"].clone(), s["rxSeq"].clone())
            }
        };
        let height = height
            .as_str()
            .ok_or_else(|| bad(format!("no verifier for {} yet", ends.src_net)))
            .and_then(|h| parse_u64("height", h).map_err(|e| bad(e.to_string())))?;
        let seq =
            parse_u128("rxSeq", seq.as_str().unwrap_or("")).map_err(|e| bad(e.to_string()))?;
        Ok(Received { height, seq })
    }

    /// Messages still waiting on this hop (sent by the source side, not yet received).
    async fn pending(&self, ends: &Ends, rx: u128) -> Result<u128, PortalError> {
        let sent = match &ends.dst_net {
            None => {
                let s = self
                    .from
                    .query(
                        &ends.from_score,
                        "getStatus",
                        json!({"_link": ends.src_net}),
                    )
                    .await?;
                s["txSeq"].as_str().unwrap_or("0x0").to_string()
            }
            Some(dst) => self
                .from
                .query(&ends.from_score, "getOutSeq", json!({"_dst": dst}))
                .await?
                .as_str()
                .unwrap_or("0x0")
                .to_string(),
        };
        Ok(parse_u128("seq", &sent).unwrap_or(0).saturating_sub(rx))
    }

    async fn relay(
        &self,
        ends: &Ends,
        updates: Vec<String>,
        proofs: &[FoundMessage],
    ) -> Result<(), PortalError> {
        let updates: Vec<Value> = updates.into_iter().map(Value::String).collect();
        let proofs: Vec<Value> = proofs
            .iter()
            .map(|m| Value::String(m.proof.clone()))
            .collect();
        let mut params = Map::new();
        let method = match self.direction {
            Direction::Inbound => "relay",
            Direction::Outbound => {
                params.insert("_src".into(), Value::String(ends.src_net.clone()));
                "handleRelayMessage"
            }
        };
        params.insert("_updates".into(), Value::Array(updates));
        params.insert("_proofs".into(), Value::Array(proofs));
        let tx = self
            .to
            .send_call(
                &self.key,
                ends.to_nid,
                ends.to_score,
                method,
                params,
                self.cfg.step_limit,
            )
            .await?;
        tracing::debug!(link = %self.name, %tx, "relayed");
        Ok(())
    }

    /// One pass: from the stored progress up to the source's last block (at most
    /// [`MAX_BLOCKS_PER_PASS`]), relaying in batches that span blocks: each batch carries the
    /// header updates of the blocks whose messages it proves, in height order, bounded by
    /// `max_batch_bytes`, [`MAX_UPDATES`] and [`MAX_PROOFS`].
    async fn pass(&self, ends: &Ends, last_log: &mut Instant) -> Result<(), PortalError> {
        let start = self
            .progress
            .load()?
            .map(|p| p.height)
            .unwrap_or(self.start_height);
        let last = self.from.last_height().await?;
        let end = last.min(start.saturating_add(MAX_BLOCKS_PER_PASS));
        let rx = self.received(ends).await?;
        let mut batch = Batch::default();
        let mut height = start;
        while height < end {
            // Blocks are read SCAN_AHEAD at a time, concurrently; relayed in height order.
            let upto = end.min(height + SCAN_AHEAD);
            let blocks =
                futures::future::try_join_all((height + 1..=upto).map(|h| self.from.messages(h)))
                    .await?;
            let mut wanted = Vec::with_capacity(blocks.len());
            for (h, block) in (height + 1..=upto).zip(blocks) {
                let todo: Vec<FoundMessage> = block
                    .messages
                    .into_iter()
                    .filter(|m| m.seq > rx.seq)
                    .filter(|m| ends.dst_net.as_ref().is_none_or(|d| &m.next == d))
                    .collect();
                let set_change = block.validators_change && h > rx.height;
                if !todo.is_empty() || set_change {
                    wanted.push((h, todo));
                }
            }
            let updates = futures::future::try_join_all(wanted.iter().map(|(h, _)| async move {
                if *h > rx.height {
                    self.from.header_update(*h).await.map(Some)
                } else {
                    Ok(None)
                }
            }))
            .await?;
            for ((_, todo), update) in wanted.into_iter().zip(updates) {
                if let Some(update) = update {
                    if !batch.fits(update.len() / 2, true, self.cfg.max_batch_bytes) {
                        self.flush(ends, &mut batch).await?;
                    }
                    batch.add_update(update);
                }
                for m in todo {
                    if !batch.fits(m.proof.len() / 2, false, self.cfg.max_batch_bytes) {
                        self.flush(ends, &mut batch).await?;
                    }
                    batch.add_proof(m);
                }
            }
            height = upto;
        }
        self.flush(ends, &mut batch).await?;
        self.progress.save(Progress { height })?;
        self.metrics
            .progress(&self.name, height, last.saturating_sub(height));
        let rx = self.received(ends).await?;
        if let Ok(p) = self.pending(ends, rx.seq).await {
            self.metrics.pending(&self.name, p);
        }
        if last_log.elapsed() >= Duration::from_secs(self.cfg.progress_every_s) {
            *last_log = Instant::now();
            let balance = self.to.balance(&self.key.address()).await?;
            self.metrics.balance(&self.name, balance);
            if balance < self.cfg.low_balance_warning {
                tracing::warn!(link = %self.name, balance, "relayer balance is low on {}", self.to.url());
            }
            tracing::info!(link = %self.name, height, source_last = last, received_seq = %rx.seq, verified_height = rx.height, "progress");
        }
        Ok(())
    }

    async fn flush(&self, ends: &Ends, batch: &mut Batch) -> Result<(), PortalError> {
        if batch.is_empty() {
            return Ok(());
        }
        let b = std::mem::take(batch);
        let n = b.proofs.len() as u64;
        self.relay(ends, b.updates, &b.proofs).await?;
        self.metrics.relayed(&self.name, n);
        Ok(())
    }

    /// Runs until `stop` turns true: passes, a pause when caught up, backoff after errors.
    pub async fn run(self, mut stop: tokio::sync::watch::Receiver<bool>) {
        let mut pacing = crate::link_loop::Pacing::new(&self.name, &self.cfg, &self.metrics);
        let mut ends = None;
        let mut last_log = Instant::now() - Duration::from_secs(self.cfg.progress_every_s);
        loop {
            let step = async {
                if ends.is_none() {
                    ends = Some(self.ends().await?);
                }
                match &ends {
                    Some(e) => self.pass(e, &mut last_log).await,
                    None => Ok(()),
                }
            };
            if pacing.pause(step.await, &mut stop).await {
                return;
            }
        }
    }
}
