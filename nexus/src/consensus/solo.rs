//! Block production. The LFT engine (multi-validator) will drive a [`Chain`] through the same
//! three calls the single-validator engine uses here: `build`, `verify`, `commit`.
//!
//! [`SoloEngine`] is the one-validator case of LFT: the node is the whole validator set, so its
//! own vote is a quorum and each block is final as soon as it is built and signed. It proposes
//! as soon as transactions wait (no fixed block timer on the hot path) and an empty block at most
//! every `empty_block_interval_ms`. Block `h+1` carries the vote for block `h`, as in LFT.

use crate::config::BlockConfig;
use crate::error::NodeError;
use crate::ledger::chain::Chain;
use crate::metrics::Metrics;
use crate::pool::admission::now_us;
use crate::pool::mempool::Mempool;
use nexus_proto::block::{sign_vote, VoteItem, VoteSet};
use nexus_proto::KeyPair;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// The single-validator engine.
pub struct SoloEngine {
    chain: Arc<Chain>,
    pool: Arc<Mempool>,
    key: KeyPair,
    index: u32,
    cfg: BlockConfig,
    metrics: Arc<Metrics>,
}

impl SoloEngine {
    /// An engine for `chain` signing with `key`, which must be the channel's only validator.
    pub fn new(
        chain: Arc<Chain>,
        pool: Arc<Mempool>,
        key: KeyPair,
        cfg: BlockConfig,
        metrics: Arc<Metrics>,
    ) -> Result<Self, NodeError> {
        let index = chain
            .validators
            .iter()
            .position(|v| *v == key.address())
            .ok_or_else(|| {
                NodeError::Config(format!(
                    "this node's key {} is not a validator of channel {}",
                    key.address(),
                    chain.channel
                ))
            })?;
        if chain.validators.len() != 1 {
            return Err(NodeError::Config(format!(
                "channel {} lists {} validators; this node runs the single-validator engine, so genesis must list exactly one",
                chain.channel,
                chain.validators.len()
            )));
        }
        Ok(SoloEngine {
            chain,
            pool,
            key,
            index: index as u32,
            cfg,
            metrics,
        })
    }

    /// Produces blocks until `stop` turns true. A storage failure stops the loop with an error.
    pub async fn run(self, mut stop: watch::Receiver<bool>) -> Result<(), NodeError> {
        let this = Arc::new(self);
        let head = this.chain.head().header.height;
        let mut prev_votes = this.chain.votes_for(head)?.unwrap_or_default();
        // Unpaced (0) would spin on empty blocks alone: one validator waits 10 ms.
        let idle = Duration::from_millis(this.cfg.empty_block_interval_ms.max(10));
        loop {
            tokio::select! {
                _ = this.pool.wait() => {}
                _ = tokio::time::sleep(idle) => {}
                _ = stop.changed() => {}
            }
            if *stop.borrow() {
                return Ok(());
            }
            let me = this.clone();
            let votes = prev_votes.clone();
            prev_votes = tokio::task::spawn_blocking(move || me.produce(votes))
                .await
                .map_err(|e| NodeError::Config(format!("block producer panicked: {e}")))??;
        }
    }

    fn produce(&self, prev_votes: VoteSet) -> Result<VoteSet, NodeError> {
        // Left in the pool until committed, so a replay sent meanwhile is still refused.
        let txs = self.pool.peek(self.cfg.max_txs);
        let t = crate::metrics::StageTimer::start();
        let proposal = self
            .chain
            .build(txs, now_us(), self.key.address(), prev_votes);
        t.stop(
            &self.metrics,
            &self.chain.channel,
            "build",
            proposal.txs.len() as u64,
        );
        let header = &proposal.block.header;
        let hash = header.hash();
        let sig = sign_vote(
            &self.key,
            self.chain.nid,
            &self.chain.channel,
            header.height,
            0,
            &hash,
        );
        let votes = VoteSet {
            round: 0,
            items: vec![VoteItem {
                validator_index: self.index,
                timestamp: now_us(),
                signature: sig.0.to_vec().into(),
            }],
        };
        let height = header.height;
        let n = proposal.txs.len();
        let mut hashes: Vec<_> = proposal.block.tx_hashes.clone();
        hashes.extend(proposal.skipped.iter().copied());
        let t = crate::metrics::StageTimer::start();
        self.chain.commit(proposal, &votes)?;
        t.stop(&self.metrics, &self.chain.channel, "commit", n as u64);
        self.pool.remove(&hashes);
        self.metrics
            .block_committed(&self.chain.channel, height, n as u64, self.pool.pending());
        if n > 0 {
            tracing::debug!(height, txs = n, %hash, "block committed");
        }
        Ok(votes)
    }
}
