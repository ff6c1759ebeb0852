//! The multi-validator engine: an LFT core, the chain [`Driver`], the p2p network, timers and
//! the safety state on disk, in one tokio task (the single-validator case is
//! [`crate::consensus::solo::SoloEngine`]).
//!
//! Pace: a leader asked to build proposes at once when transactions wait or when its parent
//! holds transactions (whose finality needs a certified child); otherwise it waits until
//! `empty_block_interval_ms` after the head's timestamp, so an idle channel makes an empty block
//! about that often rather than as fast as the network allows.

use crate::config::NodeConfig;
use crate::consensus::driver::{resume_core, stored_proposal, with_payload, Driver};
use crate::error::NodeError;
use crate::ledger::chain::Chain;
use crate::metrics::Metrics;
use crate::net::p2p::{Inbound, P2pHandle, Topic};
use crate::pool::admission::{now_us, Admission};
use crate::pool::gossip::{GossipAdmission, GOSSIP_BATCH, QUEUE_BATCHES_PER_PEER};
use crate::pool::mempool::Mempool;
use nexus_lft::{codec, Action, Config, Lft, Secp256k1Crypto, Timeouts};
use nexus_proto::{Address, KeyPair};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

/// Block requests answered per peer per second; more are dropped and count against the peer.
/// Honest nodes send each peer at most [`crate::net::p2p::OUT_BLOCK_REQUESTS_PER_SEC`], under
/// half of it (their second and ours need not start together).
const BLOCK_REQUESTS_PER_SEC: u32 = 256;

/// Longest a transaction waits to be gossiped with others.
const GOSSIP_DELAY: Duration = Duration::from_millis(5);

/// One channel's validator.
pub struct LftEngine {
    chain: Arc<Chain>,
    pool: Arc<Mempool>,
    core: Lft<Secp256k1Crypto>,
    driver: Driver,
    p2p: P2pHandle,
    inbound: mpsc::UnboundedReceiver<Inbound>,
    gossip: mpsc::UnboundedReceiver<Vec<u8>>,
    gossip_buf: Vec<Vec<u8>>,
    /// Peers' transactions are admitted on their own thread; it wakes `gossip_admitted`.
    gossip_in: GossipAdmission,
    gossip_admitted: Arc<tokio::sync::Notify>,
    gossip_since: Option<Instant>,
    timers: BTreeMap<(Instant, u64), u64>,
    seq: u64,
    deferred: Option<Action>,
    empty_interval_us: u64,
    metrics: Arc<Metrics>,
    block_requests: crate::net::request_pacer::SecondCounts<libp2p::PeerId>,
    /// Block requests answered from storage at once, at most ([`STORAGE_ANSWERS`]).
    storage_answers: Arc<tokio::sync::Semaphore>,
}

/// Block requests answered from storage at once: each may read thousands of transactions.
const STORAGE_ANSWERS: usize = 2;

impl LftEngine {
    /// Checks relayed Ethereum headers against the validator's own endpoint before voting.
    pub fn with_eth_check(
        mut self,
        check: Option<Arc<crate::consensus::eth_check::EthEndpointCheck>>,
    ) -> Self {
        self.driver = self.driver.with_eth_check(check);
        self
    }

    /// Resumes consensus from disk and joins the channel's peers.
    pub fn new(
        chain: Arc<Chain>,
        pool: Arc<Mempool>,
        admission: Arc<Admission>,
        key: KeyPair,
        cfg: &NodeConfig,
        metrics: Arc<Metrics>,
        net: (P2pHandle, mpsc::UnboundedReceiver<Inbound>),
    ) -> Result<Self, NodeError> {
        if !chain.validators.contains(&key.address()) {
            tracing::warn!(address = %key.address(), "this node is not a validator of the channel; it follows as a reader");
        }
        let lft_cfg = Config {
            nid: chain.nid,
            channel: chain.channel.clone(),
            schedule: crate::consensus::driver::schedule_of(&chain),
            timeouts: Timeouts {
                round_ms: cfg.consensus.round_timeout_ms,
                growth_percent: cfg.consensus.timeout_growth_percent,
                max_ms: cfg.consensus.max_timeout_ms,
            },
        };
        let core = resume_core(&chain, key, lft_cfg)?;
        let (p2p, inbound) = net;
        let (gossip_tx, gossip) = mpsc::unbounded_channel();
        admission.set_gossip(gossip_tx);
        let gossip_admitted = Arc::new(tokio::sync::Notify::new());
        let penalties = p2p.clone();
        let gossip_in = GossipAdmission::spawn(
            admission.clone(),
            metrics.clone(),
            chain.channel.clone(),
            QUEUE_BATCHES_PER_PEER,
            move |peer| penalties.penalize(peer),
            gossip_admitted.clone(),
        )?;
        Ok(LftEngine {
            gossip_in,
            gossip_admitted,
            driver: Driver::new(chain.clone(), pool.clone(), cfg.block.max_txs)
                .with_metrics(metrics.clone()),
            chain,
            pool,
            core,
            p2p,
            inbound,
            gossip,
            gossip_buf: Vec::new(),
            gossip_since: None,
            timers: BTreeMap::new(),
            seq: 0,
            deferred: None,
            empty_interval_us: cfg.block.empty_block_interval_ms * 1000,
            metrics,
            block_requests: Default::default(),
            storage_answers: Arc::new(tokio::sync::Semaphore::new(STORAGE_ANSWERS)),
        })
    }

    /// When the block to build on was made (the head's time if it is unknown here).
    fn parent_time(&self, parent: &nexus_proto::Hash32) -> u64 {
        self.driver
            .block_time(parent)
            .unwrap_or_else(|| self.chain.head().header.timestamp)
    }

    fn build_due(&self) -> Option<u64> {
        match self.deferred.as_ref()? {
            Action::BuildBlock { parent, .. } => {
                Some(self.parent_time(&parent.hash) + self.empty_interval_us)
            }
            _ => None,
        }
    }

    fn handle(&mut self, actions: Vec<Action>) -> Result<(), NodeError> {
        self.handle_with(actions, true)
    }

    /// Drives `actions`; with `may_defer`, a build request with no transactions waiting is kept
    /// until the empty-block interval since the head has passed.
    fn handle_with(&mut self, actions: Vec<Action>, may_defer: bool) -> Result<(), NodeError> {
        let before = self.driver.committed_txs();
        // Blocks found in our own storage are fed back to the core; a queue, not recursion,
        // since catching up may walk back many blocks.
        let mut batches = std::collections::VecDeque::from([actions]);
        while let Some(actions) = batches.pop_front() {
            for m in self.handle_batch(actions, may_defer)? {
                batches.push_back(self.core.on_message(Address::SYSTEM, m));
            }
            // Votes and proposals are out: now write the blocks they made final.
            if self.driver.has_final() {
                batches.push_back(self.driver.commit_final(&mut self.core)?);
            }
        }
        let committed = self.driver.committed_txs() - before;
        let head = self.chain.head().header.height;
        self.metrics
            .block_committed(&self.chain.channel, head, committed, self.pool.pending());
        Ok(())
    }

    /// Drives one batch of actions; returns block responses read from our own storage.
    fn handle_batch(
        &mut self,
        actions: Vec<Action>,
        may_defer: bool,
    ) -> Result<Vec<nexus_lft::Message>, NodeError> {
        let mut now_acts = Vec::with_capacity(actions.len());
        for a in actions {
            match a {
                Action::BuildBlock { parent, .. }
                    if may_defer
                        && self.pool.pending() == 0
                        && !self.driver.carries_txs(&parent.hash)
                        && now_us() < self.parent_time(&parent.hash) + self.empty_interval_us =>
                {
                    self.deferred = Some(a);
                }
                other => now_acts.push(other),
            }
        }
        let out = self.driver.drive(&mut self.core, now_acts, now_us())?;
        let mut local = Vec::new();
        for a in out {
            match a {
                Action::Broadcast(nexus_lft::Message::BlockRequest(h)) => {
                    // Our own storage first (proposals kept before a restart), then the peers.
                    match stored_proposal(&self.chain, &h)? {
                        Some(p) => local.push(nexus_lft::Message::BlockResponse(p)),
                        None => self.p2p.request_block(h),
                    }
                }
                Action::Broadcast(m) => self.p2p.publish(Topic::Consensus, codec::encode(&m)),
                // Block responses go to the requester alone (see `answer_block_request`).
                Action::Send { .. } => tracing::debug!("dropped a block response to ourselves"),
                Action::SetTimer { round, after_ms } => {
                    self.seq += 1;
                    self.timers.insert(
                        (Instant::now() + Duration::from_millis(after_ms), self.seq),
                        round,
                    );
                }
                Action::Persist(state) => self
                    .chain
                    .save_consensus_state(&codec::encode_safety(&state))?,
                Action::Keep(mut p) => {
                    let hash = p.block.hash;
                    let payload = std::mem::take(&mut p.payload);
                    self.chain.save_proposal(
                        &hash,
                        &codec::encode(&nexus_lft::Message::BlockResponse(p)),
                        &payload,
                    )?;
                }
                Action::Refused(why) => tracing::debug!(why, "refused a message from storage"),
                other => tracing::error!(?other, "unexpected action for the runtime"),
            }
        }
        Ok(local)
    }

    /// Builds a deferred block now (`force`: even with no transactions), if its round is current.
    fn build_deferred(&mut self, force: bool) -> Result<(), NodeError> {
        match self.deferred.take() {
            // A candidate that moved while the build waited has replaced it (the core asks
            // again, rule 14).
            Some(Action::BuildBlock { round, parent }) if round == self.core.round() => {
                self.handle_with(vec![Action::BuildBlock { round, parent }], !force)
            }
            _ => Ok(()),
        }
    }

    /// Counts a block request from `peer`: false (and a penalty) past
    /// [`BLOCK_REQUESTS_PER_SEC`] in the current second.
    fn block_request_allowed(&mut self, peer: Option<libp2p::PeerId>) -> bool {
        let Some(peer) = peer else { return true };
        let count = self
            .block_requests
            .current(peer, Instant::now().into_std(), 1024);
        *count += 1;
        if *count > BLOCK_REQUESTS_PER_SEC {
            if *count == BLOCK_REQUESTS_PER_SEC + 1 {
                tracing::warn!(%peer, "too many block requests; dropping them for a second");
                self.p2p.penalize(peer);
            }
            return false;
        }
        true
    }

    /// Handles one message from the network.
    fn on_inbound(&mut self, m: Inbound) -> Result<(), NodeError> {
        match m.topic {
            Topic::Consensus | Topic::BlockResponse => {
                let msg = match codec::decode(&m.data) {
                    Ok(msg) => msg,
                    Err(e) => {
                        self.refused(m.source, &format!("undecodable consensus message: {e}"));
                        return Ok(());
                    }
                };
                // Block sync has its own protocol: requests and answers on gossip, or anything
                // but an answer on it, are refused.
                let sync = matches!(
                    msg,
                    nexus_lft::Message::BlockRequest(_) | nexus_lft::Message::BlockResponse(_)
                );
                if sync != (m.topic == Topic::BlockResponse) {
                    self.refused(m.source, "block sync message on the wrong protocol");
                    return Ok(());
                }
                let mut acts = self.core.on_message(Address::SYSTEM, msg);
                acts.retain(|a| match a {
                    Action::Refused(why) => {
                        self.refused(m.source, why);
                        false
                    }
                    _ => true,
                });
                self.handle(acts)
            }
            Topic::BlockRequest => {
                self.answer_block_request(&m);
                Ok(())
            }
            Topic::Txs => {
                self.gossip_in.offer(m.data, m.source);
                Ok(())
            }
        }
    }

    /// Logs a refused message and counts it against the peer that signed it.
    fn refused(&self, peer: Option<libp2p::PeerId>, why: &str) {
        tracing::debug!(why, ?peer, "refused a message");
        if let Some(peer) = peer {
            self.p2p.penalize(peer);
        }
    }

    /// Answers a peer's block request: at once from consensus memory when the proposal is
    /// held there whole; otherwise from storage on a blocking thread, [`STORAGE_ANSWERS`] at a
    /// time (a block rebuilt from the chain reads each of its transactions), so that a peer
    /// asking for old blocks never holds up consensus; empty when unknown, busy, or over the
    /// peer's rate.
    fn answer_block_request(&mut self, m: &Inbound) {
        let Some(reply) = m.reply else { return };
        let Ok(hash) = <[u8; 32]>::try_from(m.data.as_slice()) else {
            return self.p2p.respond(reply, Vec::new());
        };
        let hash = nexus_proto::Hash32(hash);
        if !self.block_request_allowed(m.source) {
            return self.p2p.respond(reply, Vec::new());
        }
        let acts = self
            .core
            .on_message(Address::SYSTEM, nexus_lft::Message::BlockRequest(hash));
        let in_memory = acts.into_iter().find_map(|a| match a {
            Action::Send {
                msg: nexus_lft::Message::BlockResponse(p),
                ..
            } => Some(p),
            _ => None,
        });
        let in_memory = match in_memory {
            Some(p) if !p.payload.is_empty() => {
                let bytes = codec::encode(&nexus_lft::Message::BlockResponse(p));
                return self.p2p.respond(reply, bytes);
            }
            other => other,
        };
        let Ok(permit) = self.storage_answers.clone().try_acquire_owned() else {
            return self.p2p.respond(reply, Vec::new());
        };
        let (chain, p2p) = (self.chain.clone(), self.p2p.clone());
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let found = match in_memory {
                Some(p) => with_payload(&chain, p),
                None => stored_proposal(&chain, &hash),
            };
            let bytes = match found {
                Ok(found) => found
                    .map(|p| codec::encode(&nexus_lft::Message::BlockResponse(p)))
                    .unwrap_or_default(),
                Err(e) => {
                    tracing::warn!(%e, %hash, "reading a block for a peer failed");
                    Vec::new()
                }
            };
            p2p.respond(reply, bytes);
        });
    }

    /// Sends the buffered transactions as one gossip message: a JSON array of params.
    fn flush_gossip(&mut self) {
        self.gossip_since = None;
        if self.gossip_buf.is_empty() {
            return;
        }
        let mut out = Vec::with_capacity(
            self.gossip_buf.iter().map(Vec::len).sum::<usize>() + self.gossip_buf.len() + 2,
        );
        out.push(b'[');
        for (i, t) in self.gossip_buf.drain(..).enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(&t);
        }
        out.push(b']');
        self.p2p.publish(Topic::Txs, out);
    }

    /// Runs until `stop` turns true.
    pub async fn run(mut self, mut stop: watch::Receiver<bool>) -> Result<(), NodeError> {
        let acts = self.core.start();
        self.handle(acts)?;
        loop {
            let timer = self.timers.keys().next().map(|(t, _)| *t);
            let build = self.build_due().map(|due_us| {
                let wait = due_us.saturating_sub(now_us());
                Instant::now() + Duration::from_micros(wait)
            });
            let flush = self.gossip_since.map(|t| t + GOSSIP_DELAY);
            let wake = [timer, build, flush]
                .into_iter()
                .flatten()
                .min()
                .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
            tokio::select! {
                m = self.inbound.recv() => {
                    let Some(m) = m else { return Err(NodeError::Config("p2p task stopped".into())) };
                    self.on_inbound(m)?;
                }
                tx = self.gossip.recv() => {
                    if let Some(bytes) = tx {
                        self.gossip_buf.push(bytes);
                        self.gossip_since.get_or_insert_with(Instant::now);
                        if self.gossip_buf.len() >= GOSSIP_BATCH {
                            self.flush_gossip();
                        }
                    }
                    self.build_deferred(false)?;
                }
                _ = tokio::time::sleep_until(wake) => {
                    let now = Instant::now();
                    if self.gossip_since.is_some_and(|t| t + GOSSIP_DELAY <= now) {
                        self.flush_gossip();
                    }
                    let due: Vec<((Instant, u64), u64)> = self.timers.range(..=(now, u64::MAX)).map(|(k, v)| (*k, *v)).collect();
                    for (k, round) in due {
                        self.timers.remove(&k);
                        if round == self.core.round() {
                            self.metrics.round_timeout(&self.chain.channel);
                        }
                        let acts = self.core.on_timeout(round);
                        self.handle(acts)?;
                    }
                    if self.build_due().is_some_and(|due| due <= now_us()) {
                        self.build_deferred(true)?;
                    }
                }
                _ = self.gossip_admitted.notified() => {
                    self.build_deferred(false)?;
                }
                _ = stop.changed() => {
                    if *stop.borrow() {
                        return Ok(());
                    }
                }
            }
        }
    }
}
