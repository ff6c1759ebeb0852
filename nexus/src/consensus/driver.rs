//! The application side of LFT for one channel: turns the core's requests into chain work.
//!
//! [`Driver::drive`] takes the actions an [`Lft`] core emitted, performs the ones that belong to
//! the application (build a block, check a block, commit a final block) against the [`Chain`]
//! and the [`Mempool`], feeds the replies back into the core, and returns the rest (broadcast,
//! send, persist, set a timer) for the runtime that owns sockets, disk and clocks.
//!
//! - A proposal's payload is `RLP[block, [transaction JSON...]]`
//!   (`nexus_proto::block::encode_payload`). Checking it means: the block hash and parent match
//!   what consensus signed, the block's `prev_votes` are exactly the proposal's `justify` QC,
//!   every transaction is well formed, for this network and signed by its sender (signatures
//!   already checked at admission are not checked again), and re-execution on the parent's state
//!   gives the same header ([`Chain::verify`]).
//! - Blocks are executed when proposed or checked and kept pending ([`Chain::remember`]); a
//!   final block is committed with the QC that certifies it as its votes.

use crate::error::NodeError;
use crate::ledger::chain::{Chain, Proposal};
use crate::pool::mempool::Mempool;
use nexus_lft::{Action, BlockRef, Crypto, Lft, Qc};
use nexus_lft::{Config, SafetyState, Secp256k1Crypto};
use nexus_proto::block::{decode_payload, encode_payload, VoteItem, VoteSet};
use nexus_proto::{Address, KeyPair};
use nexus_proto::{Hash32, SignedTransaction};
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

/// The votes of a QC as a block carries them.
pub fn votes_of(qc: &Qc) -> VoteSet {
    VoteSet {
        round: qc.round,
        items: qc
            .votes
            .iter()
            .map(|(i, sig)| VoteItem {
                validator_index: *i,
                timestamp: 0,
                signature: sig.clone().into(),
            })
            .collect(),
    }
}

/// An LFT core for `chain`, resumed from what is on disk: the last final block with the votes
/// that made it final, and the safety state written before the last vote (genesis and a blank
/// state on first start).
pub fn resume_core(
    chain: &Chain,
    key: KeyPair,
    cfg: Config,
) -> Result<Lft<Secp256k1Crypto>, NodeError> {
    let head = chain.head();
    let votes = chain.votes_for(head.header.height)?.unwrap_or_default();
    let committed = BlockRef {
        hash: head.hash(),
        parent: head.header.prev_hash,
        height: head.header.height,
        round: votes.round,
    };
    let qc = Qc {
        round: votes.round,
        height: head.header.height,
        block: head.hash(),
        votes: votes
            .items
            .iter()
            .map(|v| (v.validator_index, v.signature.to_vec()))
            .collect(),
    };
    let safety = match chain.consensus_state()? {
        Some(b) => nexus_lft::codec::decode_safety(&b).map_err(|e| NodeError::Corrupt {
            what: "consensus state",
            reason: e.to_string(),
        })?,
        None => SafetyState::default(),
    };
    Ok(Lft::new(
        cfg,
        Secp256k1Crypto::new(key),
        committed,
        qc,
        safety,
    ))
}

/// A consensus proposal kept in `chain`'s storage, with its payload (kept beside it, or
/// rebuilt from the chain once the block is committed); `None` when unknown or unreadable.
pub fn stored_proposal(
    chain: &Chain,
    hash: &Hash32,
) -> Result<Option<nexus_lft::Proposal>, NodeError> {
    let Some(kept) = chain.proposal(hash)? else {
        return Ok(None);
    };
    let mut p = match nexus_lft::codec::decode(&kept.envelope) {
        Ok(nexus_lft::Message::BlockResponse(p)) if p.block.hash == *hash => p,
        _ => {
            tracing::warn!(%hash, "a kept proposal does not decode; not serving it");
            return Ok(None);
        }
    };
    if let Some(payload) = kept.payload {
        p.payload = payload;
    }
    with_payload(chain, p)
}

/// `p` with its payload: a final block's proposal held without one gets it from `chain`.
pub fn with_payload(
    chain: &Chain,
    mut p: nexus_lft::Proposal,
) -> Result<Option<nexus_lft::Proposal>, NodeError> {
    if p.payload.is_empty() {
        match chain.committed_payload(&p.block.hash)? {
            Some(payload) => p.payload = payload,
            None => return Ok(None),
        }
    }
    Ok(Some(p))
}

/// The chain's validator schedule in the core's terms.
pub fn schedule_of(chain: &Chain) -> nexus_lft::ValidatorSchedule {
    let mut entries = chain.validator_schedule().into_iter();
    let (_, genesis) = entries.next().unwrap_or((0, chain.validators.clone()));
    let mut s = nexus_lft::ValidatorSchedule::new(nexus_lft::ValidatorSet { members: genesis });
    for (h, set) in entries {
        s.change_at(h, nexus_lft::ValidatorSet { members: set });
    }
    // Changes are announced at least CHANGE_MARGIN blocks ahead: the sets are certain up to the
    // head plus the margin, and unknown beyond.
    let head = chain.head().header.height;
    s.known_through(head.saturating_add(crate::execution::score::chain_score::CHANGE_MARGIN))
}

/// Connects one LFT core to one chain.
pub struct Driver {
    chain: Arc<Chain>,
    pool: Arc<Mempool>,
    max_txs: usize,
    executed: HashMap<Hash32, Proposal>,
    committed_txs: u64,
    metrics: Option<Arc<crate::metrics::Metrics>>,
    /// When this validator first held each block not yet final (built or received).
    seen: HashMap<Hash32, std::time::Instant>,
    /// On a notary channel of an Ethereum source: the validator's own Ethereum endpoint.
    eth_check: Option<Arc<crate::consensus::eth_check::EthEndpointCheck>>,
    /// Final blocks waiting for [`Driver::commit_final`], in order.
    final_blocks: VecDeque<(BlockRef, Vec<u8>, Qc)>,
    /// The last final blocks whose payloads consensus still holds, oldest first, with sizes.
    recent: VecDeque<(Hash32, usize)>,
    /// Their payloads' bytes together.
    recent_bytes: usize,
    /// How many such blocks at most ([`RECENT_PAYLOADS`]).
    recent_limit: usize,
}

/// Final blocks whose payloads LFT keeps in memory, at most, for peers just behind.
const RECENT_PAYLOADS: usize = 64;
/// Their payloads' bytes together, at most.
const RECENT_PAYLOAD_BYTES: usize = 32 << 20;

impl Driver {
    /// A driver proposing at most `max_txs` transactions per block.
    pub fn new(chain: Arc<Chain>, pool: Arc<Mempool>, max_txs: usize) -> Self {
        Driver {
            chain,
            pool,
            max_txs,
            executed: HashMap::new(),
            committed_txs: 0,
            metrics: None,
            seen: HashMap::new(),
            eth_check: None,
            final_blocks: VecDeque::new(),
            recent: VecDeque::new(),
            recent_bytes: 0,
            recent_limit: RECENT_PAYLOADS,
        }
    }

    /// Checks relayed Ethereum headers against the validator's own endpoint before voting.
    pub fn with_eth_check(
        mut self,
        check: Option<Arc<crate::consensus::eth_check::EthEndpointCheck>>,
    ) -> Self {
        self.eth_check = check;
        self
    }

    /// Keeps the payloads of at most `n` recent final blocks in consensus memory (tests of the
    /// path that rebuilds them from the chain use 0).
    pub fn with_recent_payloads(mut self, n: usize) -> Self {
        self.recent_limit = n;
        self
    }

    /// Records the time of building, checking and committing blocks as stages.
    pub fn with_metrics(mut self, metrics: Arc<crate::metrics::Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    fn txs_of(&self, hash: &Hash32) -> usize {
        self.executed.get(hash).map_or(0, |p| p.txs.len())
    }

    fn stage_done(&self, t: crate::metrics::StageTimer, stage: &'static str, txs: usize) {
        if let Some(m) = &self.metrics {
            t.stop(m, &self.chain.channel, stage, txs as u64);
        }
    }

    /// True when the executed, not yet final block `hash` holds transactions (its child should
    /// then be proposed at once, to make them final).
    pub fn carries_txs(&self, hash: &Hash32) -> bool {
        self.executed.get(hash).is_some_and(|p| !p.txs.is_empty())
    }

    /// The timestamp of an executed block (pending or the head).
    pub fn block_time(&self, hash: &Hash32) -> Option<u64> {
        let head = self.chain.head();
        if head.hash() == *hash {
            return Some(head.header.timestamp);
        }
        self.executed.get(hash).map(|p| p.block.header.timestamp)
    }

    /// Transactions committed through this driver so far.
    pub fn committed_txs(&self) -> u64 {
        self.committed_txs
    }

    /// Performs the application's share of `actions` (feeding replies to `core`) and returns
    /// the runtime's share, in order. `now_us` stamps blocks this validator proposes.
    ///
    /// Final blocks are only queued: the runtime sends its votes and proposals first (a vote
    /// waits for nothing but the safety state on disk) and then writes them with
    /// [`Driver::commit_final`], off the round's critical path.
    pub fn drive<C: Crypto>(
        &mut self,
        core: &mut Lft<C>,
        actions: Vec<Action>,
        now_us: u64,
    ) -> Result<Vec<Action>, NodeError> {
        let mut queue: VecDeque<Action> = actions.into();
        let mut out = Vec::new();
        while let Some(a) = queue.pop_front() {
            match a {
                Action::BuildBlock { round, parent } => {
                    let t = crate::metrics::StageTimer::start();
                    let started = std::time::Instant::now();
                    if let Some((block, payload)) = self.build(core, round, parent, now_us) {
                        self.seen.insert(block.hash, started);
                        self.stage_done(t, "build", self.txs_of(&block.hash));
                        queue.extend(core.on_block_built(block, payload));
                    }
                }
                Action::CheckBlock(p) => {
                    let t = crate::metrics::StageTimer::start();
                    self.seen
                        .entry(p.block.hash)
                        .or_insert_with(std::time::Instant::now);
                    let leader = core.proposer_of(&p);
                    let checked = self
                        .ensure_executed(core, &p.block.parent, now_us)
                        .and_then(|()| {
                            self.check(&p.block, &p.payload, &p.justify, now_us, leader)
                        });
                    let ok = match checked {
                        Ok(()) => {
                            self.stage_done(t, "check", self.txs_of(&p.block.hash));
                            true
                        }
                        Err(reason) => {
                            tracing::warn!(block = %p.block.hash, round = p.block.round, %reason, "refusing a proposal");
                            // An invalid block is neither kept on disk nor served to peers.
                            let hash = p.block.hash;
                            out.retain(|a| !matches!(a, Action::Keep(k) if k.block.hash == hash));
                            self.chain.forget_proposal(&hash)?;
                            false
                        }
                    };
                    queue.extend(core.on_block_checked(p.block.hash, ok));
                }
                Action::Commit { block, payload, qc } => {
                    self.final_blocks.push_back((block, payload, qc));
                }
                other => out.push(other),
            }
        }
        Ok(out)
    }

    /// True when final blocks wait for [`Driver::commit_final`].
    pub fn has_final(&self) -> bool {
        !self.final_blocks.is_empty()
    }

    /// Commits the final blocks [`Driver::drive`] queued, in order; returns what consensus asks
    /// next (a final block may schedule a validator-set change), for [`Driver::drive`].
    pub fn commit_final<C: Crypto>(&mut self, core: &mut Lft<C>) -> Result<Vec<Action>, NodeError> {
        if self.final_blocks.is_empty() {
            return Ok(Vec::new());
        }
        while let Some((block, payload, qc)) = self.final_blocks.pop_front() {
            let t = crate::metrics::StageTimer::start();
            let txs = self.txs_of(&block.hash);
            self.commit(block, &payload, &qc)?;
            self.stage_done(t, "commit", txs);
            // The chain holds the block and its transactions now: consensus keeps a copy of
            // the last few only, for peers a block or two behind (older ones are rebuilt from
            // the chain when asked for).
            self.recent.push_back((block.hash, payload.len()));
            self.recent_bytes += payload.len();
            while self.recent.len() > self.recent_limit || self.recent_bytes > RECENT_PAYLOAD_BYTES
            {
                let Some((hash, size)) = self.recent.pop_front() else {
                    break;
                };
                self.recent_bytes -= size;
                core.forget_payload(&hash);
            }
        }
        Ok(core.set_schedule(schedule_of(&self.chain)))
    }

    /// Executes the ancestors of `hash` that consensus knows but the chain has not executed
    /// (blocks learned through block sync, or pending blocks lost in a restart).
    fn ensure_executed<C: Crypto>(
        &mut self,
        core: &Lft<C>,
        hash: &Hash32,
        now_us: u64,
    ) -> Result<(), String> {
        let mut missing = Vec::new();
        let mut cur = *hash;
        while cur != self.chain.head().hash() && !self.executed.contains_key(&cur) {
            let p = core
                .proposal(&cur)
                .ok_or_else(|| format!("ancestor {cur} is unknown"))?;
            missing.push((
                p.block,
                p.payload.clone(),
                p.justify.clone(),
                core.proposer_of(p),
            ));
            cur = p.block.parent;
        }
        for (block, payload, justify, leader) in missing.into_iter().rev() {
            self.check(&block, &payload, &justify, now_us, leader)?;
        }
        Ok(())
    }

    fn build<C: Crypto>(
        &mut self,
        core: &Lft<C>,
        round: u64,
        parent: BlockRef,
        now_us: u64,
    ) -> Option<(BlockRef, Vec<u8>)> {
        if let Err(e) = self.ensure_executed(core, &parent.hash, now_us) {
            tracing::warn!(%e, "cannot build on the candidate yet");
            return None;
        }
        let justify = core.high_qc().clone();
        let candidates = self.pool.peek(self.max_txs * 2 + 64);
        let leader = core.address();
        let p = match self.chain.build_on(
            &parent.hash,
            candidates,
            now_us,
            round,
            leader,
            votes_of(&justify),
            self.max_txs,
        ) {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(%e, "cannot build on the candidate");
                return None;
            }
        };
        // Transactions whose sender can no longer pay their fee will not get in: drop them.
        self.pool.remove(&p.skipped);
        let txs: Vec<Vec<u8>> = p.txs.iter().map(|t| t.to_json_bytes()).collect();
        let payload = encode_payload(&p.block, &txs);
        let block = BlockRef {
            hash: p.block.hash(),
            parent: parent.hash,
            height: p.block.header.height,
            round,
        };
        self.chain.remember(&p);
        self.executed.insert(block.hash, p);
        Some((block, payload))
    }

    fn check(
        &mut self,
        block: &BlockRef,
        payload: &[u8],
        justify: &Qc,
        now_us: u64,
        leader: Option<Address>,
    ) -> Result<(), String> {
        if self.executed.contains_key(&block.hash) {
            return Ok(());
        }
        let p = self.execute(block, payload, now_us, leader)?;
        if p.block.prev_votes != votes_of(justify) {
            return Err("the block's prev_votes are not the proposal's QC".into());
        }
        if let Some(c) = &self.eth_check {
            c.check(&p.txs)?;
        }
        self.chain.remember(&p);
        self.executed.insert(block.hash, p);
        Ok(())
    }

    /// Decodes a payload and re-executes it on its parent (`now_us` bounds its timestamp;
    /// `leader`, when known, must be the header's).
    fn execute(
        &self,
        block: &BlockRef,
        payload: &[u8],
        now_us: u64,
        leader: Option<Address>,
    ) -> Result<Proposal, String> {
        let (b, raw_txs) = decode_payload(payload).map_err(|e| e.to_string())?;
        if b.hash() != block.hash
            || b.header.prev_hash != block.parent
            || b.header.height != block.height
            || b.header.round != block.round
        {
            return Err(format!(
                "payload holds block {} but consensus names {}",
                b.hash(),
                block.hash
            ));
        }
        let mut txs = Vec::with_capacity(raw_txs.len());
        for (raw, expected) in raw_txs.iter().zip(&b.tx_hashes) {
            // A transaction already admitted here was decoded and its signature checked then.
            if let Some(tx) = self.pool.get(expected) {
                txs.push(tx);
                continue;
            }
            let st =
                SignedTransaction::from_json_bytes(raw).map_err(|e| format!("transaction: {e}"))?;
            if st.hash != *expected {
                return Err(format!("transaction {} is listed as {expected}", st.hash));
            }
            if st.tx.nid != self.chain.nid {
                return Err(format!(
                    "transaction {} is for nid {:#x}",
                    st.hash, st.tx.nid
                ));
            }
            self.pool
                .signatures
                .verify(&st)
                .map_err(|e| format!("transaction {}: {e}", st.hash))?;
            txs.push(Arc::new(st));
        }
        self.chain.verify(&b, txs, now_us, leader)
    }

    fn commit(&mut self, block: BlockRef, payload: &[u8], qc: &Qc) -> Result<(), NodeError> {
        let p = match self.executed.remove(&block.hash) {
            Some(p) => p,
            // Final before we executed it (we were behind): execute it now, on the head.
            // Certified by a quorum: no clock or leader check (it may be old).
            None => {
                self.execute(&block, payload, u64::MAX, None)
                    .map_err(|e| NodeError::Corrupt {
                        what: "final block",
                        reason: e,
                    })?
            }
        };
        let hashes = p.block.tx_hashes.clone();
        self.chain.commit(p, &votes_of(qc))?;
        self.committed_txs += hashes.len() as u64;
        self.pool.remove(&hashes);
        let h = block.height;
        self.executed.retain(|_, p| p.block.header.height > h);
        if let Some(seen) = self.seen.remove(&block.hash) {
            if let Some(m) = &self.metrics {
                m.block_final(&self.chain.channel, seen.elapsed());
            }
        }
        // Blocks that lost their round are never final: forget them after a minute.
        self.seen
            .retain(|_, t| t.elapsed() < std::time::Duration::from_secs(60));
        Ok(())
    }
}
