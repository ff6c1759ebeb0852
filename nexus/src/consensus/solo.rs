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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::chain::test_chain as open;
    use nexus_proto::{Address, SignedTransaction, Transaction, TxData};
    use std::collections::HashSet;
    use std::time::Instant;

    fn transfer(from: &KeyPair, to: Address, nonce: u128) -> Arc<SignedTransaction> {
        let t = Transaction {
            from: from.address(),
            to,
            value: 1,
            step_limit: 100_000,
            timestamp: 10,
            nid: 3,
            nonce: Some(nonce),
            data: TxData::None,
        };
        Arc::new(t.sign(from).unwrap())
    }

    /// Transactions arrive while blocks of at most 25 are built and committed: each is committed
    /// exactly once, the blocks link up, and a reopened chain has the same head and root.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_engine_commits_every_transaction_once_and_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let (alice, validator) = (KeyPair::generate(), KeyPair::generate());
        let bob = Address::eoa([0xb0; 20]);
        let chain = open(dir.path(), &alice, &validator);
        let pool = Arc::new(Mempool::new(10_000));
        let cfg = BlockConfig {
            max_txs: 25,
            empty_block_interval_ms: 1_000,
        };
        let engine = SoloEngine::new(
            chain.clone(),
            pool.clone(),
            validator.clone(),
            cfg,
            Arc::new(Metrics::default()),
        )
        .unwrap();
        let (stop_tx, stop) = watch::channel(false);
        let running = tokio::spawn(engine.run(stop));
        let txs: Vec<_> = (0..400).map(|n| transfer(&alice, bob, n)).collect();
        for batch in txs.chunks(40) {
            for t in batch {
                pool.add(t.clone(), 200, 0).unwrap();
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        while pool.pending() > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        stop_tx.send(true).unwrap();
        running.await.unwrap().unwrap();
        assert_eq!(pool.pending(), 0, "every transaction left the pool");

        let head = chain.head().header.height;
        let mut seen = HashSet::new();
        let mut prev = chain.block_by_height(0).unwrap().unwrap().hash();
        for h in 1..=head {
            let b = chain.block_by_height(h).unwrap().unwrap();
            assert_eq!(
                b.header.prev_hash,
                prev,
                "block {h} links to block {}",
                h - 1
            );
            assert!(b.tx_hashes.len() <= 25);
            for t in &b.tx_hashes {
                assert!(seen.insert(*t), "transaction {t} committed twice");
            }
            prev = b.hash();
        }
        assert_eq!(seen.len(), txs.len());
        assert_eq!(chain.balance(&bob), 400);
        let root = chain.head().header.state_root;
        assert_eq!(chain.state_root(), root);
        drop(chain);
        let reopened = open(dir.path(), &alice, &validator);
        assert_eq!(reopened.head().header.height, head);
        assert_eq!(reopened.state_root(), root);
    }
}
