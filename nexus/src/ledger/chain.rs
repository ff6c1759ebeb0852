//! One channel's ledger: genesis, block building and verification, atomic commits, reads.
//!
//! The consensus engine drives a [`Chain`] through three calls: [`Chain::build`] executes
//! transactions on top of the head and returns a [`Proposal`]; [`Chain::verify`] re-executes a
//! block proposed by someone else and checks every root; [`Chain::commit`] writes a proposal in
//! one synced batch and wakes everyone waiting for its transactions.

use crate::error::{IconError, NodeError};
use crate::execution::score::{CallContext, ScoreError, ScoreRegistry};
use crate::execution::steps::{StepCosts, StepMeter};
use crate::execution::{execute_block, BlockEnv};
use crate::ledger::genesis::ParsedGenesis;
use crate::ledger::state::{self, Overlay, StateView, Writes};
use crate::ledger::state_cache::{Cached, StateCache};
use crate::ledger::state_tree::{PreparedState, ProvenValue, StateTree};
use crate::ledger::storage::{ChannelStore, Kind};
use nexus_proto::block::{
    validators_hash, Block, BlockHeader, VoteSet, HEADER_VERSION, MAX_BLOCK_TX_BYTES,
};
use nexus_proto::receipt::Receipt;
use nexus_proto::{merkle, Address, Hash32, SignedTransaction};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tokio::sync::{broadcast, oneshot};

/// Where a committed transaction sits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxLocation {
    /// Block height.
    pub height: u64,
    /// Index in the block.
    pub index: u32,
    /// Hash of the block.
    pub block_hash: Hash32,
}

const LOC_LEN: usize = 44;

/// Marks a receipt stored inside a transaction's record (height, index, block hash, this tag,
/// the receipt's length (4 bytes BE) and RLP, then the JSON). Records written before receipts
/// moved in have the JSON (`{`) right after the block hash, and their receipt in `Receipts`.
const RECEIPT_INSIDE: u8 = 0;

/// A transaction record: the receipt (when stored inside) and the JSON.
fn split_record(v: &[u8]) -> Result<(Option<&[u8]>, &[u8]), NodeError> {
    let rest = v
        .get(LOC_LEN..)
        .ok_or_else(|| corrupt("transaction", "short record"))?;
    match rest.split_first() {
        Some((&RECEIPT_INSIDE, r)) => {
            let len = r
                .get(..4)
                .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
                .ok_or_else(|| corrupt("transaction", "short receipt length"))?;
            let receipt = r
                .get(4..4 + len)
                .ok_or_else(|| corrupt("transaction", "short receipt"))?;
            Ok((Some(receipt), &r[4 + len..]))
        }
        _ => Ok((None, rest)),
    }
}

fn decode_location(v: &[u8]) -> Result<TxLocation, NodeError> {
    if v.len() < LOC_LEN {
        return Err(corrupt("transaction", "short record"));
    }
    let mut h8 = [0u8; 8];
    h8.copy_from_slice(&v[..8]);
    let mut i4 = [0u8; 4];
    i4.copy_from_slice(&v[8..12]);
    let mut bh = [0u8; 32];
    bh.copy_from_slice(&v[12..44]);
    Ok(TxLocation {
        height: u64::from_be_bytes(h8),
        index: u32::from_be_bytes(i4),
        block_hash: Hash32(bh),
    })
}

/// A consensus proposal as kept in storage (see [`Chain::save_proposal`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeptProposal {
    /// The encoded proposal without its payload (one written before payloads were kept apart
    /// holds its payload itself).
    pub envelope: Vec<u8>,
    /// Its payload, until the block is committed.
    pub payload: Option<Vec<u8>>,
}

/// An executed block, ready to remember (as a parent of later proposals) or commit.
pub struct Proposal {
    /// The block.
    pub block: Block,
    /// Its transactions, in order.
    pub txs: Vec<Arc<SignedTransaction>>,
    /// Their receipts.
    pub receipts: Vec<Receipt>,
    writes: Writes,
    /// The block's state tree update (on its parent's), when every not-yet-final ancestor's
    /// update was at hand.
    prepared: Option<Arc<PreparedState>>,
    validators: Vec<Address>,
    next_validators: Vec<Address>,
    /// Transactions the builder left out because their sender could not pay the full fee.
    pub skipped: Vec<Hash32>,
}

/// Farthest a block's timestamp may be ahead of the checking node's clock.
pub const MAX_BLOCK_TIME_DRIFT_US: u64 = 5_000_000;

/// An executed block that is not final yet (consensus builds on it before its parent is final).
struct Pending {
    header: BlockHeader,
    tx_hashes: Vec<Hash32>,
    writes: Writes,
    tree: Option<Arc<PreparedState>>,
}

/// What a child of some block builds on: the parent's header, the writes of the not-yet-final
/// blocks from the head to it, their transactions, and their state tree updates.
struct Ancestry {
    parent: BlockHeader,
    /// Height of the head the writes start from.
    head_height: u64,
    writes: Writes,
    txs: std::collections::HashSet<Hash32>,
    /// The tree updates of the not-yet-final blocks from the head to the parent, oldest first
    /// (None when one is missing).
    overlay: Option<Vec<Arc<PreparedState>>>,
}

/// Announced after every commit.
#[derive(Debug, Clone)]
pub struct Committed {
    /// Height.
    pub height: u64,
    /// Block hash.
    pub hash: Hash32,
}

struct DbView<'a> {
    store: &'a ChannelStore,
    /// The chain's cache of the committed state (none while genesis is written).
    cache: Option<&'a StateCache>,
}

impl<'a> DbView<'a> {
    /// Reads `store` directly.
    fn uncached(store: &'a ChannelStore) -> Self {
        DbView { store, cache: None }
    }
}

impl StateView for DbView<'_> {
    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        let generation = match self.cache.map(|c| c.get(key)) {
            Some(Cached::Hit(v)) => return v,
            Some(Cached::Miss(g)) => Some(g),
            None => None,
        };
        match self.store.get(Kind::State, key) {
            Ok(v) => {
                if let (Some(c), Some(g)) = (self.cache, generation) {
                    c.fill(key, &v, g);
                }
                v
            }
            Err(e) => {
                // A read error would make execution nondeterministic: stop instead.
                tracing::error!(%e, "state read failed; stopping");
                std::process::exit(70);
            }
        }
    }
}

/// One channel's ledger.
pub struct Chain {
    /// Channel name.
    pub channel: String,
    /// Network id.
    pub nid: u64,
    /// The validator set.
    pub validators: Vec<Address>,
    /// Price of a step.
    pub step_price: u128,
    /// Fee receiver.
    pub treasury: Address,
    /// Step costs.
    pub costs: StepCosts,
    /// Total ICX (fixed at genesis).
    pub total_supply: u128,
    store: ChannelStore,
    scores: ScoreRegistry,
    tree: StateTree,
    /// Recently read values of the committed state.
    state_cache: StateCache,
    head: RwLock<Arc<Block>>,
    pending: Mutex<HashMap<Hash32, Arc<Pending>>>,
    committed: broadcast::Sender<Committed>,
    waiters: Mutex<HashMap<Hash32, Vec<oneshot::Sender<()>>>>,
    metrics: std::sync::OnceLock<Arc<crate::metrics::Metrics>>,
    /// Transactions committed over the last second (admission's backpressure follows it).
    drain: Mutex<crate::pool::backlog::DrainRate>,
}

fn corrupt(what: &'static str, e: impl std::fmt::Display) -> NodeError {
    NodeError::Corrupt {
        what,
        reason: e.to_string(),
    }
}

impl Chain {
    /// Opens the channel with the SCOREs the node installs (see
    /// [`crate::execution::score::genesis_scores`]), writing genesis on first start and
    /// checking it on every later one.
    pub fn open(
        store: ChannelStore,
        genesis: &ParsedGenesis,
        scores: ScoreRegistry,
        state_history: u64,
    ) -> Result<Self, NodeError> {
        let genesis_json =
            serde_json::to_vec(&genesis.source).map_err(|e| NodeError::Config(e.to_string()))?;
        let (tx, _) = broadcast::channel(1024);
        let placeholder = Block {
            header: genesis_header(genesis, Hash32::ZERO),
            tx_hashes: vec![],
            prev_votes: VoteSet::default(),
        };
        let chain = Chain {
            channel: genesis.channel.clone(),
            nid: genesis.nid,
            validators: genesis.validators.clone(),
            step_price: genesis.step_price,
            treasury: genesis.treasury,
            costs: StepCosts::default(),
            total_supply: genesis.total_supply(),
            tree: StateTree::new(store.clone(), state_history),
            state_cache: StateCache::default(),
            store,
            scores,
            head: RwLock::new(Arc::new(placeholder)),
            pending: Mutex::new(HashMap::new()),
            committed: tx,
            waiters: Mutex::new(HashMap::new()),
            metrics: std::sync::OnceLock::new(),
            drain: Mutex::default(),
        };
        match chain.store.get(Kind::Meta, b"genesis")? {
            Some(stored) if stored == genesis_json => {
                // Blocks are stored in one header format; an older one is refused, not misread.
                let format = chain.store.get(Kind::Meta, b"header_version")?;
                if format.as_deref() != Some(&HEADER_VERSION.to_be_bytes()[..]) {
                    return Err(NodeError::Config(format!(
                        "the data directory of channel {} holds blocks of an older format (block headers before version {HEADER_VERSION}, which carry the consensus round); start from a fresh data_dir",
                        genesis.channel
                    )));
                }
                if chain.store.get(Kind::Meta, b"tree_base")?.is_none() {
                    return Err(NodeError::Config(format!(
                        "the data directory of channel {} was written by a Nexus before the state tree: its state roots commit to bucketed state, which no header of this version can match, so it cannot be converted in place. Move it aside and start from a fresh data_dir (a validator catches up from its peers; a devnet: `nexus devnet` makes a new one)",
                        genesis.channel
                    )));
                }
                chain.load()?
            }
            Some(_) => {
                return Err(NodeError::Config(format!(
                "the data directory holds channel {} of a different genesis; use a fresh data_dir",
                genesis.channel
            )))
            }
            None => chain.write_genesis(genesis, &genesis_json)?,
        }
        Ok(chain)
    }

    fn write_genesis(&self, g: &ParsedGenesis, genesis_json: &[u8]) -> Result<(), NodeError> {
        let empty = DbView::uncached(&self.store);
        let mut ov = Overlay::new(&empty);
        for (addr, bal) in &g.accounts {
            let prev = state::balance(&ov, addr);
            state::set_balance(&mut ov, addr, prev + bal);
        }
        let installs = g
            .tokens
            .iter()
            .map(|t| (t.address, t.owner))
            .chain(g.admin.map(|a| (Address::SYSTEM, a)))
            .chain(
                g.dex
                    .as_ref()
                    .and_then(|d| d.owner)
                    .map(|o| (nexus_dex::score::CONVERTER_ADDRESS, o)),
            );
        for (address, owner) in installs {
            let Some(score) = self.scores.get(&address).cloned() else {
                continue;
            };
            let mut meter = StepMeter::new(u128::MAX, 0);
            let mut ctx = CallContext::new(
                address,
                owner,
                0,
                0,
                g.timestamp,
                Some(Hash32::ZERO),
                &mut ov,
                &mut meter,
                self.costs,
            );
            score
                .install(&mut ctx)
                .map_err(|e| NodeError::Config(format!("installing SCORE {address}: {e}")))?;
        }
        let mut writes = ov.into_writes();
        let chunks = synthetic_chunks(g);
        let small_cache = (chunks > 0).then(|| self.store.small_block_cache());
        for c in 0..chunks {
            let chunk = synthetic_chunk(g, c, &mut writes);
            self.tree.genesis_chunk(&chunk, c, put_state)?;
            if (c + 1) % 10 == 0 {
                tracing::info!(channel = %self.channel, accounts = (c + 1) * SYNTHETIC_CHUNK, "generating genesis accounts");
            }
        }
        let mut batch = self.store.batch();
        put_state(&mut batch, &writes);
        let prepared = self.tree.finish_genesis(&writes, chunks, &mut batch)?;
        let block = Block {
            header: genesis_header(g, prepared.root),
            tx_hashes: vec![],
            prev_votes: VoteSet::default(),
        };
        batch.put(Kind::Meta, b"genesis", genesis_json);
        batch.put(Kind::Meta, b"header_version", &HEADER_VERSION.to_be_bytes());
        self.put_block(&mut batch, &block, &[&g.validators]);
        batch.put(Kind::Meta, b"head", &0u64.to_be_bytes());
        batch.commit()?;
        if chunks > 0 {
            // Millions of entries just written arrive as overlapping files; a store that grew
            // over time has them sorted. Sort them once now rather than while serving.
            tracing::info!(channel = %self.channel, "compacting the generated state");
            for kind in [Kind::State, Kind::TreeNodes] {
                self.store.compact(kind)?;
            }
        }
        drop(small_cache);
        *self.head.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(block);
        tracing::info!(channel = %self.channel, state_root = %self.state_root(), "genesis written");
        Ok(())
    }

    fn load(&self) -> Result<(), NodeError> {
        self.tree.load()?;
        let h = self
            .store
            .get(Kind::Meta, b"head")?
            .and_then(|b| <[u8; 8]>::try_from(b.as_slice()).ok())
            .map(u64::from_be_bytes)
            .ok_or_else(|| corrupt("head", "missing"))?;
        let block = self
            .block_by_height(h)?
            .ok_or_else(|| corrupt("head block", format!("height {h} missing")))?;
        let root = self.tree.root_at(h)?;
        if root != Some(block.header.state_root) {
            return Err(corrupt(
                "state",
                format!(
                    "the state tree's root after block {h} is {root:?}, the header says {}",
                    block.header.state_root
                ),
            ));
        }
        let t = std::time::Instant::now();
        let cached = self.tree.warm(h)?;
        *self.head.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(block);
        tracing::info!(
            channel = %self.channel,
            height = h,
            cached_tree_nodes = cached,
            cache_ms = t.elapsed().as_millis() as u64,
            "chain loaded"
        );
        Ok(())
    }

    /// Where the chain reports the time its state tree takes (stage `state_tree`).
    pub fn set_metrics(&self, m: Arc<crate::metrics::Metrics>) {
        let _ = self.metrics.set(m);
    }

    fn tree_stage(&self, t: crate::metrics::StageTimer, txs: usize) {
        if let Some(m) = self.metrics.get() {
            t.stop(m, &self.channel, "state_tree", txs as u64);
        }
    }

    /// The last committed block.
    pub fn head(&self) -> Arc<Block> {
        self.head.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The current state root.
    pub fn state_root(&self) -> Hash32 {
        self.head().header.state_root
    }

    /// The value of a state key after block `height` with its proof against that block's state
    /// root; `None` when the height is not committed or its state version was pruned.
    pub fn state_proof(&self, key: &[u8], height: u64) -> Result<Option<ProvenValue>, NodeError> {
        let head = self.head().header.height;
        if height > head || height < self.tree.oldest_kept(head) {
            return Ok(None);
        }
        self.tree.proof(key, height).map(Some)
    }

    /// The oldest height whose state this node can still prove.
    pub fn oldest_state(&self) -> u64 {
        self.tree.oldest_kept(self.head().header.height)
    }

    /// Subscribes to commits.
    pub fn subscribe(&self) -> broadcast::Receiver<Committed> {
        self.committed.subscribe()
    }

    fn env(&self, height: u64, timestamp: u64) -> BlockEnv {
        BlockEnv {
            height,
            timestamp,
            step_price: self.step_price,
            treasury: self.treasury,
            costs: self.costs,
        }
    }

    /// Executes `txs` on top of the head as the next block.
    pub fn build(
        &self,
        txs: Vec<Arc<SignedTransaction>>,
        timestamp: u64,
        leader: Address,
        prev_votes: VoteSet,
    ) -> Proposal {
        let head = self.head();
        // One block per round with a single validator: the round is the height.
        let round = head.header.height.saturating_add(1);
        let a = Ancestry {
            parent: head.header.clone(),
            head_height: head.header.height,
            writes: Writes::new(),
            txs: Default::default(),
            overlay: Some(vec![]),
        };
        let mut txs = self.fresh(&a, txs);
        cap_bytes(&mut txs);
        self.build_from(a, txs, timestamp, round, leader, prev_votes)
    }

    /// Executes up to `max_txs` of `txs` (skipping any already final or in an ancestor) as a
    /// child of `parent`: the head or a block passed to [`Chain::remember`]
    /// that is not final yet (LFT proposes a child of its candidate before the candidate is
    /// final).
    #[allow(clippy::too_many_arguments)]
    pub fn build_on(
        &self,
        parent: &Hash32,
        txs: Vec<Arc<SignedTransaction>>,
        timestamp: u64,
        round: u64,
        leader: Address,
        prev_votes: VoteSet,
        max_txs: usize,
    ) -> Result<Proposal, String> {
        let a = self.ancestry(parent)?;
        let mut txs = self.fresh(&a, txs);
        txs.truncate(max_txs);
        cap_bytes(&mut txs);
        Ok(self.build_from(a, txs, timestamp, round, leader, prev_votes))
    }

    /// The parent's header, and the writes and transactions of every not-yet-final block from
    /// the head to it.
    fn ancestry(&self, parent: &Hash32) -> Result<Ancestry, String> {
        // The head and the pending blocks are read together: a commit moves a block from one
        // to the other under this lock (a block may be built or checked while its parent commits).
        let pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        let head = self.head();
        if *parent == head.hash() {
            return Ok(Ancestry {
                parent: head.header.clone(),
                head_height: head.header.height,
                writes: Writes::new(),
                txs: Default::default(),
                overlay: Some(vec![]),
            });
        }
        let mut chain = Vec::new();
        let mut cur = *parent;
        while cur != head.hash() {
            let p = pending.get(&cur).ok_or_else(|| {
                format!("parent {parent} is neither the head nor a pending block")
            })?;
            if p.header.height <= head.header.height {
                return Err(format!(
                    "parent {parent} is on a branch that was not finalized"
                ));
            }
            cur = p.header.prev_hash;
            chain.push(p.clone());
        }
        let header = chain
            .first()
            .map(|p| p.header.clone())
            .ok_or("empty ancestry")?;
        let mut writes = Writes::new();
        let mut txs = std::collections::HashSet::new();
        for p in chain.iter().rev() {
            writes.extend(p.writes.iter().map(|(k, v)| (k.clone(), v.clone())));
            txs.extend(p.tx_hashes.iter().copied());
        }
        let overlay = chain.iter().rev().map(|p| p.tree.clone()).collect();
        Ok(Ancestry {
            parent: header,
            head_height: head.header.height,
            writes,
            txs,
            overlay,
        })
    }

    /// Drops transactions that are final already, in a pending ancestor, or repeated.
    fn fresh(&self, a: &Ancestry, txs: Vec<Arc<SignedTransaction>>) -> Vec<Arc<SignedTransaction>> {
        let mut seen = a.txs.clone();
        txs.into_iter()
            .filter(|t| !self.has_transaction(&t.hash).unwrap_or(true) && seen.insert(t.hash))
            .collect()
    }

    #[allow(clippy::too_many_arguments)]
    fn build_from(
        &self,
        a: Ancestry,
        txs: Vec<Arc<SignedTransaction>>,
        timestamp: u64,
        round: u64,
        leader: Address,
        prev_votes: VoteSet,
    ) -> Proposal {
        let parent = &a.parent;
        let height = parent.height.saturating_add(1);
        let timestamp = timestamp.max(parent.timestamp.saturating_add(1));
        let db = self.view();
        let mut view = Overlay::new(&db);
        view.merge(a.writes.clone());
        let executed = execute_block(&view, &self.scores, &self.env(height, timestamp), &txs);
        let (receipts, writes) = (executed.receipts, executed.writes);
        let skipped: Vec<Hash32> = executed.skipped.iter().map(|i| txs[*i].hash).collect();
        let txs: Vec<Arc<SignedTransaction>> = txs
            .into_iter()
            .enumerate()
            .filter(|(i, _)| executed.skipped.binary_search(i).is_err())
            .map(|(_, t)| t)
            .collect();
        let timer = crate::metrics::StageTimer::start();
        // The block's own update on its parent's (kept until both are final), or, when an
        // ancestor's update is missing, the root alone from all the writes since the head.
        let overlay = a.overlay.clone();
        let own = overlay.is_some();
        let prepared = match &overlay {
            Some(o) => self.tree.prepare_on(&writes, parent.height, o),
            None => {
                let mut all = a.writes;
                all.extend(writes.iter().map(|(k, v)| (k.clone(), v.clone())));
                self.tree.prepare(&all, a.head_height)
            }
        };
        let prepared = match prepared {
            Ok(p) => p,
            Err(e) => {
                // As for a state read: going on would make this node disagree with itself.
                tracing::error!(%e, "state tree read failed; stopping");
                std::process::exit(70);
            }
        };
        self.tree_stage(timer, txs.len());
        let state_root = prepared.root;
        let prepared = own.then(|| Arc::new(prepared));
        let tx_hashes: Vec<Hash32> = txs.iter().map(|t| t.hash).collect();
        let receipt_hashes: Vec<Hash32> = receipts.iter().map(Receipt::hash).collect();
        // Validator sets come from the parent's state: a change is scheduled at least
        // CHANGE_MARGIN blocks ahead, so the block's own transactions never alter them.
        let schedule = crate::execution::score::chain_score::schedule(&view, &self.validators);
        let validators = crate::execution::score::chain_score::set_at(&schedule, height).to_vec();
        let next_validators =
            crate::execution::score::chain_score::set_at(&schedule, height + 1).to_vec();
        let header = BlockHeader {
            version: HEADER_VERSION,
            height,
            round,
            timestamp,
            prev_hash: parent.hash(),
            transactions_root: merkle::root(&tx_hashes),
            receipts_root: merkle::root(&receipt_hashes),
            state_root,
            validators_hash: validators_hash(&validators),
            next_validators_hash: validators_hash(&next_validators),
            prev_votes_hash: prev_votes.hash(),
            leader,
        };
        Proposal {
            block: Block {
                header,
                tx_hashes,
                prev_votes,
            },
            txs,
            receipts,
            writes,
            prepared,
            validators,
            next_validators,
            skipped,
        }
    }

    /// Re-executes a block proposed by another validator (on the head or a pending block) and
    /// checks that every root matches.
    ///
    /// `now_us` is the checking node's clock: a timestamp more than [`MAX_BLOCK_TIME_DRIFT_US`]
    /// ahead of it is refused. `leader`, when known, is the validator that consensus says
    /// proposed the block; the header must name it.
    pub fn verify(
        &self,
        block: &Block,
        txs: Vec<Arc<SignedTransaction>>,
        now_us: u64,
        leader: Option<Address>,
    ) -> Result<Proposal, String> {
        let a = self.ancestry(&block.header.prev_hash).map_err(|e| {
            format!(
                "block {} at height {} does not extend a known block: {e}",
                block.hash(),
                block.header.height
            )
        })?;
        let parent = a.parent.clone();
        if block.header.height != parent.height + 1 {
            return Err(format!(
                "height {} does not follow the parent's {}",
                block.header.height, parent.height
            ));
        }
        if block.header.round <= parent.round {
            return Err(format!(
                "round {} does not follow the parent's {}",
                block.header.round, parent.round
            ));
        }
        if block.header.timestamp <= parent.timestamp {
            return Err("timestamp not after the parent's".into());
        }
        if block.header.timestamp > now_us.saturating_add(MAX_BLOCK_TIME_DRIFT_US) {
            return Err(format!(
                "timestamp {} is more than {} s ahead of this node's clock {now_us}",
                block.header.timestamp,
                MAX_BLOCK_TIME_DRIFT_US / 1_000_000
            ));
        }
        if let Some(l) = leader.filter(|l| *l != block.header.leader) {
            return Err(format!(
                "the header names leader {} but {l} proposed the block",
                block.header.leader
            ));
        }
        let tx_bytes: usize = txs.iter().map(|t| t.json_bytes().len()).sum();
        if tx_bytes > MAX_BLOCK_TX_BYTES {
            return Err(format!(
                "the block holds {tx_bytes} bytes of transactions, more than {MAX_BLOCK_TX_BYTES}"
            ));
        }
        let hashes: Vec<Hash32> = txs.iter().map(|t| t.hash).collect();
        if hashes != block.tx_hashes {
            return Err("transactions differ from the block's list".into());
        }
        if self.fresh(&a, txs.clone()).len() != txs.len() {
            return Err(
                "the block repeats a transaction that is final, in an ancestor, or listed twice"
                    .into(),
            );
        }
        let p = self.build_from(
            a,
            txs,
            block.header.timestamp,
            block.header.round,
            block.header.leader,
            block.prev_votes.clone(),
        );
        if let Some(h) = p.skipped.first() {
            return Err(format!(
                "the block includes transaction {h} whose sender cannot pay value + stepLimit * stepPrice"
            ));
        }
        if p.block.header != block.header {
            return Err(format!(
                "re-execution gives block {}, proposal says {}",
                p.block.hash(),
                block.hash()
            ));
        }
        Ok(p)
    }

    /// Keeps an executed block so that children can be built on it before it is final.
    pub fn remember(&self, p: &Proposal) {
        let entry = Arc::new(Pending {
            header: p.block.header.clone(),
            tx_hashes: p.block.tx_hashes.clone(),
            writes: p.writes.clone(),
            tree: p.prepared.clone(),
        });
        self.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(p.block.hash(), entry);
    }

    fn put_block(
        &self,
        batch: &mut crate::ledger::storage::Batch<'_>,
        block: &Block,
        sets: &[&[Address]],
    ) {
        let h = block.header.height;
        let hash = block.hash();
        batch.put(Kind::Blocks, &h.to_be_bytes(), &block.encode());
        batch.put(Kind::BlockHashes, &hash.0, &h.to_be_bytes());
        batch.put(Kind::Data, &hash.0, &block.header.to_rlp());
        for set in sets {
            batch.put(
                Kind::Data,
                &validators_hash(set).0,
                &nexus_proto::block::encode_validators(set),
            );
        }
        if !block.prev_votes.items.is_empty() {
            batch.put(
                Kind::Data,
                &block.header.prev_votes_hash.0,
                &block.prev_votes.to_rlp(),
            );
        }
    }

    /// Writes a proposal in one synced batch, with the votes that made it final, then wakes
    /// waiters and subscribers.
    pub fn commit(&self, p: Proposal, votes: &VoteSet) -> Result<(), NodeError> {
        let h = p.block.header.height;
        let hash = p.block.hash();
        let head_hash = self.head().hash();
        if p.block.header.prev_hash != head_hash {
            return Err(NodeError::Corrupt {
                what: "commit order",
                reason: format!("block {hash} at height {h} does not extend the head {head_hash}"),
            });
        }
        let timer = crate::metrics::StageTimer::start();
        let prepared = match p.prepared {
            Some(prepared) => prepared,
            None => Arc::new(self.tree.prepare(&p.writes, h - 1)?),
        };
        if prepared.root != p.block.header.state_root {
            return Err(NodeError::Corrupt {
                what: "state root",
                reason: format!(
                    "committing {hash} gives {} but its header says {}",
                    prepared.root, p.block.header.state_root
                ),
            });
        }
        let mut batch = self.store.batch();
        self.put_block(&mut batch, &p.block, &[&p.validators, &p.next_validators]);
        for (i, (tx, r)) in p.txs.iter().zip(&p.receipts).enumerate() {
            // One record per transaction: where it is, its receipt and its JSON.
            let receipt = r.encode();
            let mut v = Vec::with_capacity(LOC_LEN + 5 + receipt.len() + tx.json_bytes().len());
            v.extend_from_slice(&h.to_be_bytes());
            v.extend_from_slice(&(i as u32).to_be_bytes());
            v.extend_from_slice(&hash.0);
            v.push(RECEIPT_INSIDE);
            v.extend_from_slice(&(receipt.len() as u32).to_be_bytes());
            v.extend_from_slice(&receipt);
            v.extend_from_slice(tx.json_bytes());
            batch.put(Kind::Txs, &tx.hash.0, &v);
        }
        put_state(&mut batch, &p.writes);
        self.tree.write(&prepared, h, &mut batch)?;
        self.tree_stage(timer, 0);
        batch.put(Kind::Meta, b"head", &h.to_be_bytes());
        batch.put(Kind::Meta, b"head_votes", &votes.to_rlp());
        // The block and its transactions are stored now: its kept proposal needs no payload.
        batch.delete(Kind::Meta, &payload_key(&hash));
        batch.commit()?;
        self.state_cache.committed(&p.writes);
        self.tree.committed(&prepared);

        let tx_hashes = p.block.tx_hashes.clone();
        self.drain
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .record(std::time::Instant::now(), tx_hashes.len());
        {
            // One step for readers of the ancestry: the block is the head or still pending.
            let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            *self.head.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(p.block);
            pending.retain(|_, b| b.header.height > h);
        }
        {
            let mut w = self.waiters.lock().unwrap_or_else(|p| p.into_inner());
            if !w.is_empty() {
                for th in &tx_hashes {
                    if let Some(list) = w.remove(th) {
                        for s in list {
                            let _ = s.send(());
                        }
                    }
                }
            }
        }
        let _ = self.committed.send(Committed { height: h, hash });
        Ok(())
    }

    /// Transactions per second committed over the last second.
    pub fn commit_rate(&self) -> f64 {
        self.drain
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .per_second(std::time::Instant::now())
    }

    /// Transactions in blocks executed and not yet final (proposals and candidates).
    pub fn pending_txs(&self) -> usize {
        self.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .map(|p| p.tx_hashes.len())
            .sum()
    }

    /// The block at `height`.
    pub fn block_by_height(&self, height: u64) -> Result<Option<Block>, NodeError> {
        match self.store.get(Kind::Blocks, &height.to_be_bytes())? {
            Some(b) => Ok(Some(Block::decode(&b).map_err(|e| corrupt("block", e))?)),
            None => Ok(None),
        }
    }

    /// The height of the block with `hash`.
    pub fn height_of(&self, hash: &Hash32) -> Result<Option<u64>, NodeError> {
        Ok(self
            .store
            .get(Kind::BlockHashes, &hash.0)?
            .and_then(|b| <[u8; 8]>::try_from(b.as_slice()).ok())
            .map(u64::from_be_bytes))
    }

    /// A committed transaction and where it is.
    pub fn transaction(
        &self,
        hash: &Hash32,
    ) -> Result<Option<(SignedTransaction, TxLocation)>, NodeError> {
        let Some(v) = self.store.get(Kind::Txs, &hash.0)? else {
            return Ok(None);
        };
        let loc = decode_location(&v)?;
        let tx = SignedTransaction::from_json_bytes(split_record(&v)?.1)
            .map_err(|e| corrupt("transaction", e))?;
        Ok(Some((tx, loc)))
    }

    /// The JSON objects of committed transactions, in the order of `hashes` (`None` for one
    /// not committed): read with one multi-get and parsed from the stored bytes, without
    /// rebuilding the transactions (for block answers, where thousands are listed).
    pub fn transactions_json(
        &self,
        hashes: &[Hash32],
    ) -> Result<Vec<Option<Map<String, Value>>>, NodeError> {
        self.tx_records(hashes)?
            .into_iter()
            .map(|v| match v {
                Some(v) => serde_json::from_slice(split_record(&v)?.1)
                    .map(Some)
                    .map_err(|e| corrupt("transaction", e)),
                None => Ok(None),
            })
            .collect()
    }

    /// The stored records of transactions, in the order of `hashes`, with one multi-get (which
    /// wants its keys sorted).
    fn tx_records(&self, hashes: &[Hash32]) -> Result<Vec<Option<Vec<u8>>>, NodeError> {
        let mut order: Vec<usize> = (0..hashes.len()).collect();
        order.sort_unstable_by_key(|&i| hashes[i].0);
        let values = self
            .store
            .multi_get(Kind::Txs, order.iter().map(|&i| hashes[i].0))?;
        let mut out = vec![None; hashes.len()];
        for (i, v) in order.into_iter().zip(values) {
            out[i] = v;
        }
        Ok(out)
    }

    /// Where a committed transaction is.
    pub fn location(&self, hash: &Hash32) -> Result<Option<TxLocation>, NodeError> {
        match self.store.get(Kind::Txs, &hash.0)? {
            Some(v) => Ok(Some(decode_location(&v)?)),
            None => Ok(None),
        }
    }

    /// True when a transaction with `hash` is committed.
    pub fn has_transaction(&self, hash: &Hash32) -> Result<bool, NodeError> {
        Ok(self.store.get(Kind::Txs, &hash.0)?.is_some())
    }

    /// The receipt of a committed transaction.
    pub fn receipt(&self, hash: &Hash32) -> Result<Option<Receipt>, NodeError> {
        let Some(v) = self.store.get(Kind::Txs, &hash.0)? else {
            return Ok(None);
        };
        let stored;
        let bytes = match split_record(&v)?.0 {
            Some(r) => r,
            None => {
                stored = self
                    .store
                    .get(Kind::Receipts, &hash.0)?
                    .ok_or_else(|| corrupt("receipt", format!("{hash} missing")))?;
                &stored[..]
            }
        };
        Ok(Some(
            Receipt::decode(bytes).map_err(|e| corrupt("receipt", e))?,
        ))
    }

    /// The receipts of a block, in order.
    pub fn receipts_of(&self, block: &Block) -> Result<Vec<Receipt>, NodeError> {
        block
            .tx_hashes
            .iter()
            .map(|h| {
                self.receipt(h)?
                    .ok_or_else(|| corrupt("receipt", format!("{h} missing")))
            })
            .collect()
    }

    /// Bytes stored under a hash (headers, vote sets, validator lists).
    pub fn data(&self, hash: &Hash32) -> Result<Option<Vec<u8>>, NodeError> {
        self.store.get(Kind::Data, &hash.0)
    }

    /// The votes that finalized the block at `height`.
    pub fn votes_for(&self, height: u64) -> Result<Option<VoteSet>, NodeError> {
        let head = self.head();
        if height == head.header.height {
            return match self.store.get(Kind::Meta, b"head_votes")? {
                Some(b) => Ok(Some(
                    VoteSet::from_rlp(&b).map_err(|e| corrupt("votes", e))?,
                )),
                None => Ok(None),
            };
        }
        if height > head.header.height {
            return Ok(None);
        }
        // The votes of a block below the head ride in its child.
        Ok(self.block_by_height(height + 1)?.map(|b| b.prev_votes))
    }

    /// The validator schedule in the committed state: (first height, set) pairs.
    pub fn validator_schedule(&self) -> Vec<(u64, Vec<Address>)> {
        crate::execution::score::chain_score::schedule(&self.view(), &self.validators)
    }

    /// Stores a consensus proposal as two entries: its envelope (the encoded proposal without
    /// its payload) and its payload. Committing the block deletes the payload, which the chain
    /// then holds as the block and its transactions (see [`Chain::committed_payload`]), so a
    /// transaction's body is kept once, not twice.
    pub fn save_proposal(
        &self,
        hash: &Hash32,
        envelope: &[u8],
        payload: &[u8],
    ) -> Result<(), NodeError> {
        let mut b = self.store.batch();
        b.put(Kind::Meta, &proposal_key(hash), envelope);
        b.put(Kind::Meta, &payload_key(hash), payload);
        b.commit_relaxed()
    }

    /// Deletes a kept proposal (one the application found invalid).
    pub fn forget_proposal(&self, hash: &Hash32) -> Result<(), NodeError> {
        let mut b = self.store.batch();
        b.delete(Kind::Meta, &proposal_key(hash));
        b.delete(Kind::Meta, &payload_key(hash));
        b.commit_relaxed()
    }

    /// A kept proposal: its envelope, and its payload while the block is not committed.
    pub fn proposal(&self, hash: &Hash32) -> Result<Option<KeptProposal>, NodeError> {
        let Some(envelope) = self.store.get(Kind::Meta, &proposal_key(hash))? else {
            return Ok(None);
        };
        let payload = self.store.get(Kind::Meta, &payload_key(hash))?;
        Ok(Some(KeptProposal { envelope, payload }))
    }

    /// The consensus payload of the committed block `hash` (the block and its transactions'
    /// JSON, as its proposal carried them), rebuilt from the chain; `None` if not committed.
    pub fn committed_payload(&self, hash: &Hash32) -> Result<Option<Vec<u8>>, NodeError> {
        let Some(height) = self.height_of(hash)? else {
            return Ok(None);
        };
        let Some(block) = self.block_by_height(height)? else {
            return Ok(None);
        };
        let records = self.tx_records(&block.tx_hashes)?;
        let mut txs = Vec::with_capacity(records.len());
        for (th, v) in block.tx_hashes.iter().zip(records) {
            let v = v.ok_or_else(|| {
                corrupt("transaction", format!("{th} of block {hash} is not stored"))
            })?;
            txs.push(split_record(&v)?.1.to_vec());
        }
        Ok(Some(nexus_proto::block::encode_payload(&block, &txs)))
    }

    /// Stores consensus bookkeeping (the LFT safety state) durably, before a vote is sent.
    pub fn save_consensus_state(&self, bytes: &[u8]) -> Result<(), NodeError> {
        let mut b = self.store.batch();
        b.put(Kind::Meta, b"consensus", bytes);
        b.commit()
    }

    /// The consensus bookkeeping stored last, if any.
    pub fn consensus_state(&self) -> Result<Option<Vec<u8>>, NodeError> {
        self.store.get(Kind::Meta, b"consensus")
    }

    /// The genesis file as stored.
    pub fn genesis_json(&self) -> Result<Value, NodeError> {
        let b = self
            .store
            .get(Kind::Meta, b"genesis")?
            .ok_or_else(|| corrupt("genesis", "missing"))?;
        serde_json::from_slice(&b).map_err(|e| corrupt("genesis", e))
    }

    /// The committed state, read through the chain's cache.
    fn view(&self) -> DbView<'_> {
        DbView {
            store: &self.store,
            cache: Some(&self.state_cache),
        }
    }

    /// An account's balance in the committed state.
    pub fn balance(&self, addr: &Address) -> u128 {
        state::balance(&self.view(), addr)
    }

    /// A SCORE's stored value in the committed state.
    pub fn score_value(&self, score: &Address, key: &[u8]) -> Option<Vec<u8>> {
        use crate::ledger::state::StateView;
        self.view().get(&state::score_key(score, key))
    }

    /// True when a native SCORE lives at `addr`.
    pub fn score_api(&self, addr: &Address) -> Option<Value> {
        self.scores.get(addr).map(|s| s.api())
    }

    /// A read-only call (`icx_call`).
    pub fn query(
        &self,
        from: Address,
        to: Address,
        method: &str,
        params: &Map<String, Value>,
    ) -> Result<Value, IconError> {
        let score = self.scores.get(&to).ok_or_else(|| {
            IconError::score(
                crate::error::failure::CONTRACT_NOT_FOUND,
                format!("no SCORE at {to}"),
            )
        })?;
        let head = self.head();
        let view = self.view();
        let mut ov = Overlay::new(&view);
        let mut meter = StepMeter::new(self.costs.query_limit, 0);
        let mut ctx = CallContext::new(
            to,
            from,
            0,
            head.header.height,
            head.header.timestamp,
            None,
            &mut ov,
            &mut meter,
            self.costs,
        )
        .with_scores(&self.scores);
        score
            .call(&mut ctx, method, params)
            .map_err(|e: ScoreError| IconError::score(e.code, e.message))
    }

    /// Steps a transaction would use now (`debug_estimateStep`): executed on the committed state
    /// with a step price of zero, discarding every change.
    pub fn estimate(&self, tx: &SignedTransaction) -> Result<u128, IconError> {
        let head = self.head();
        let mut env = self.env(head.header.height + 1, head.header.timestamp + 1);
        env.step_price = 0;
        let view = self.view();
        let executed = execute_block(&view, &self.scores, &env, &[tx]);
        let r = executed.receipts.into_iter().next().ok_or_else(|| {
            IconError::score(
                crate::error::failure::OUT_OF_BALANCE,
                format!("{} cannot pay the value", tx.tx.from),
            )
        })?;
        if r.status == 0 {
            return Err(IconError::score(r.failure_code, r.failure_message));
        }
        Ok(r.step_used)
    }

    /// Registers interest in `hash` and waits up to `timeout` for it to be committed.
    /// Returns false on timeout.
    pub async fn wait_committed(
        &self,
        hash: &Hash32,
        timeout: Duration,
    ) -> Result<bool, NodeError> {
        /// Unregisters the waiter however the wait ends (commit, timeout, or the client going
        /// away and the future being dropped), so abandoned waits leave nothing behind.
        struct Wait<'a> {
            chain: &'a Chain,
            hash: Hash32,
            rx: Option<oneshot::Receiver<()>>,
        }
        impl Drop for Wait<'_> {
            fn drop(&mut self) {
                // Close our receiver first, so that our sender reads as closed below.
                drop(self.rx.take());
                let mut w = self.chain.waiters.lock().unwrap_or_else(|p| p.into_inner());
                if let Some(list) = w.get_mut(&self.hash) {
                    list.retain(|s| !s.is_closed());
                    if list.is_empty() {
                        w.remove(&self.hash);
                    }
                }
            }
        }
        let (tx, rx) = oneshot::channel();
        self.waiters
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(*hash)
            .or_default()
            .push(tx);
        let mut wait = Wait {
            chain: self,
            hash: *hash,
            rx: Some(rx),
        };
        if self.has_transaction(hash)? {
            return Ok(true);
        }
        let Some(rx) = wait.rx.as_mut() else {
            return Ok(false);
        };
        match tokio::time::timeout(timeout, rx).await {
            Ok(_) => Ok(true),
            Err(_) => self.has_transaction(hash),
        }
    }

    /// Transactions someone is waiting for (bounded by open requests; for tests and metrics).
    pub fn waiting(&self) -> usize {
        self.waiters.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

fn cap_bytes(txs: &mut Vec<Arc<SignedTransaction>>) {
    let mut total = 0usize;
    let keep = txs
        .iter()
        .take_while(|t| {
            total = total.saturating_add(t.json_bytes().len());
            total <= MAX_BLOCK_TX_BYTES
        })
        .count();
    txs.truncate(keep);
}

/// Where a kept consensus proposal is stored.
fn proposal_key(hash: &Hash32) -> Vec<u8> {
    let mut key = b"proposal/".to_vec();
    key.extend_from_slice(&hash.0);
    key
}

fn payload_key(hash: &Hash32) -> Vec<u8> {
    let mut key = b"payload/".to_vec();
    key.extend_from_slice(&hash.0);
    key
}

/// Adds state writes to the flat state in a batch.
fn put_state(batch: &mut crate::ledger::storage::Batch<'_>, writes: &Writes) {
    for (k, v) in writes {
        match v {
            Some(v) => batch.put(Kind::State, k, v),
            None => batch.delete(Kind::State, k),
        }
    }
}

/// Generated genesis accounts per tree version.
const SYNTHETIC_CHUNK: u64 = 100_000;

/// How many chunks of [`SYNTHETIC_CHUNK`] generated accounts the genesis asks for.
fn synthetic_chunks(g: &ParsedGenesis) -> u64 {
    match g.synthetic {
        Some((count, balance)) if balance > 0 => count.div_ceil(SYNTHETIC_CHUNK),
        _ => 0,
    }
}

/// Chunk `c` of the generated genesis accounts. An account the genesis also funds explicitly
/// gets both balances, in `explicit` (written after the chunks).
fn synthetic_chunk(g: &ParsedGenesis, c: u64, explicit: &mut Writes) -> Writes {
    let (count, balance) = g.synthetic.unwrap_or((0, 0));
    let value = balance.to_be_bytes().to_vec();
    let mut chunk = Writes::new();
    for i in c * SYNTHETIC_CHUNK..count.min((c + 1) * SYNTHETIC_CHUNK) {
        let k = state::balance_key(&crate::ledger::genesis::synthetic_address(i));
        match explicit.get_mut(&k) {
            Some(Some(v)) => {
                let sum = state::decode_u128(Some(v.clone())).saturating_add(balance);
                *v = sum.to_be_bytes().to_vec();
            }
            _ => {
                chunk.insert(k, Some(value.clone()));
            }
        }
    }
    chunk
}

fn genesis_header(g: &ParsedGenesis, state_root: Hash32) -> BlockHeader {
    let vh = validators_hash(&g.validators);
    BlockHeader {
        version: HEADER_VERSION,
        height: 0,
        round: 0,
        timestamp: g.timestamp,
        prev_hash: Hash32::ZERO,
        transactions_root: Hash32::ZERO,
        receipts_root: Hash32::ZERO,
        state_root,
        validators_hash: vh,
        next_validators_hash: vh,
        prev_votes_hash: VoteSet::default().hash(),
        leader: g.validators[0],
    }
}

/// A chain in `dir` whose genesis gives `alice` 10 ICX and has `validator` as its only
/// validator (tests of the engines and of admission): the fixture of this module's tests.
#[cfg(test)]
pub(crate) fn test_chain(
    dir: &std::path::Path,
    alice: &nexus_proto::KeyPair,
    validator: &nexus_proto::KeyPair,
) -> Arc<Chain> {
    let g = tests::genesis(
        alice,
        validator,
        Address::eoa([0xee; 20]),
        Address::contract([0x77; 20]),
    );
    Arc::new(tests::open(dir, &g))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::genesis::{Genesis, GenesisAccount, GenesisToken};
    use crate::ledger::storage::Storage;
    use nexus_proto::{KeyPair, Transaction, TxData};

    const ICX: u128 = 1_000_000_000_000_000_000;
    const PRICE: u128 = 12_500_000_000;

    struct Fixture {
        _dir: tempfile::TempDir,
        chain: Chain,
        alice: KeyPair,
        treasury: Address,
        token: Address,
    }

    pub(super) fn genesis(
        alice: &KeyPair,
        validator: &KeyPair,
        treasury: Address,
        token: Address,
    ) -> ParsedGenesis {
        Genesis {
            nid: "0x3".into(),
            channel: "public".into(),
            timestamp: "0x1".into(),
            accounts: vec![GenesisAccount {
                name: "alice".into(),
                address: alice.address().to_string(),
                balance: format!("{:#x}", 10 * ICX),
            }],
            validators: vec![validator.address().to_string()],
            treasury: treasury.to_string(),
            step_price: format!("{PRICE:#x}"),
            tokens: vec![GenesisToken {
                address: token.to_string(),
                name: "T".into(),
                symbol: "T".into(),
                decimals: "0x12".into(),
                owner: alice.address().to_string(),
                initial_supply: "0x64".into(),
            }],
            message: String::new(),
            admin: None,
            btp: None,
            synthetic_accounts: None,
            dex: None,
        }
        .parse()
        .unwrap()
    }

    pub(super) fn open(dir: &std::path::Path, g: &ParsedGenesis) -> Chain {
        let storage = Storage::open(dir, &["public".to_string()]).unwrap();
        Chain::open(
            storage.channel("public"),
            g,
            crate::execution::score::genesis_scores(g),
            crate::ledger::state_tree::MIN_HISTORY,
        )
        .unwrap()
    }

    fn fixture_with(alice: KeyPair, validator: &KeyPair) -> (Fixture, ParsedGenesis) {
        let dir = tempfile::tempdir().unwrap();
        let treasury = Address::eoa([0xee; 20]);
        let token = Address::contract([0x77; 20]);
        let g = genesis(&alice, validator, treasury, token);
        let chain = open(dir.path(), &g);
        (
            Fixture {
                _dir: dir,
                chain,
                alice,
                treasury,
                token,
            },
            g,
        )
    }

    fn tx(
        from: &KeyPair,
        to: Address,
        value: u128,
        step_limit: u128,
        nonce: u128,
        data: TxData,
    ) -> Arc<SignedTransaction> {
        let t = Transaction {
            from: from.address(),
            to,
            value,
            step_limit,
            timestamp: 10,
            nid: 3,
            nonce: Some(nonce),
            data,
        };
        Arc::new(t.sign(from).unwrap())
    }

    fn sum(c: &Chain, addrs: &[Address]) -> u128 {
        addrs.iter().map(|a| c.balance(a)).sum()
    }

    fn token_balance(c: &Chain, token: Address, owner: Address) -> Value {
        let mut p = Map::new();
        p.insert("_owner".into(), Value::String(owner.to_string()));
        c.query(owner, token, "balanceOf", &p).unwrap()
    }

    #[test]
    fn transfers_pay_fees_to_the_treasury_and_conserve_icx() {
        let v = KeyPair::generate();
        let (f, _) = fixture_with(KeyPair::generate(), &v);
        let bob = Address::eoa([0xb0; 20]);
        let p = f.chain.build(
            vec![tx(&f.alice, bob, ICX, 100_000, 1, TxData::None)],
            100,
            v.address(),
            VoteSet::default(),
        );
        assert_eq!(p.receipts[0].status, 1);
        assert_eq!(p.receipts[0].step_used, 100_000);
        f.chain.commit(p, &VoteSet::default()).unwrap();
        assert_eq!(f.chain.balance(&bob), ICX);
        assert_eq!(f.chain.balance(&f.treasury), 100_000 * PRICE);
        assert_eq!(
            sum(&f.chain, &[f.alice.address(), bob, f.treasury]),
            f.chain.total_supply
        );
    }

    #[test]
    fn balances_read_through_the_cache_follow_every_commit() {
        let v = KeyPair::generate();
        let (f, _) = fixture_with(KeyPair::generate(), &v);
        let bob = Address::eoa([0xb0; 20]);
        let carol = Address::eoa([0xc0; 20]);
        let uncached = |a: &Address| state::balance(&DbView::uncached(&f.chain.store), a);
        for round in 1..=4u128 {
            // Read before the commit: the cache holds each account (bob absent at first).
            for a in [f.alice.address(), bob, f.treasury] {
                assert_eq!(f.chain.balance(&a), uncached(&a));
            }
            let to = if round % 2 == 1 { bob } else { carol };
            let p = f.chain.build(
                vec![tx(&f.alice, to, ICX, 100_000, round, TxData::None)],
                100 + round as u64,
                v.address(),
                VoteSet::default(),
            );
            assert_eq!(p.receipts[0].status, 1);
            f.chain.commit(p, &VoteSet::default()).unwrap();
            for a in [f.alice.address(), bob, carol, f.treasury] {
                assert_eq!(f.chain.balance(&a), uncached(&a), "round {round}: {a}");
            }
        }
        assert_eq!(f.chain.balance(&bob), 2 * ICX);
        assert!(!f.chain.state_cache.is_empty());
        assert_eq!(
            sum(&f.chain, &[f.alice.address(), bob, carol, f.treasury]),
            f.chain.total_supply
        );
    }

    #[test]
    fn a_transaction_record_holds_its_receipt_and_older_records_still_read() {
        let v = KeyPair::generate();
        let (f, _) = fixture_with(KeyPair::generate(), &v);
        let bob = Address::eoa([0xb0; 20]);
        let t = tx(&f.alice, bob, ICX, 100_000, 1, TxData::None);
        let p = f
            .chain
            .build(vec![t.clone()], 100, v.address(), VoteSet::default());
        let expected = p.receipts[0].clone();
        f.chain.commit(p, &VoteSet::default()).unwrap();
        let check = |c: &Chain| {
            assert!(c.has_transaction(&t.hash).unwrap());
            assert_eq!(
                c.receipt(&t.hash).unwrap().unwrap().encode(),
                expected.encode()
            );
            let (got, loc) = c.transaction(&t.hash).unwrap().unwrap();
            assert_eq!((got.hash, loc.height, loc.index), (t.hash, 1, 0));
        };
        check(&f.chain);
        assert_eq!(f.chain.store.get(Kind::Receipts, &t.hash.0).unwrap(), None);

        // The record as written before receipts moved in: location and JSON, receipt apart.
        let v = f.chain.store.get(Kind::Txs, &t.hash.0).unwrap().unwrap();
        let (receipt, json) = split_record(&v).unwrap();
        let mut old = v[..LOC_LEN].to_vec();
        old.extend_from_slice(json);
        let mut b = f.chain.store.batch();
        b.put(Kind::Txs, &t.hash.0, &old);
        b.put(Kind::Receipts, &t.hash.0, receipt.unwrap());
        b.commit().unwrap();
        check(&f.chain);

        // Bent records are refused as corrupt, not misread.
        let unknown = Hash32([9; 32]);
        for bad in [&v[..LOC_LEN + 3], &v[..LOC_LEN + 8]] {
            let mut b = f.chain.store.batch();
            b.put(Kind::Txs, &unknown.0, bad);
            b.commit().unwrap();
            assert!(f.chain.receipt(&unknown).is_err());
        }
        assert!(f.chain.receipt(&Hash32([8; 32])).unwrap().is_none());
    }

    /// A kept proposal's payload lives apart until its block is committed; then the chain's
    /// block and transactions are its only copy, and rebuild it byte for byte.
    #[test]
    fn a_committed_proposal_keeps_no_second_copy_of_its_transactions() {
        let v = KeyPair::generate();
        let (f, _) = fixture_with(KeyPair::generate(), &v);
        let bob = Address::eoa([0xb0; 20]);
        let txs = vec![
            tx(&f.alice, bob, ICX, 100_000, 1, TxData::None),
            tx(&f.alice, bob, 2 * ICX, 100_000, 2, TxData::None),
        ];
        let p = f.chain.build(txs, 100, v.address(), VoteSet::default());
        let json: Vec<Vec<u8>> = p.txs.iter().map(|t| t.to_json_bytes()).collect();
        let payload = nexus_proto::block::encode_payload(&p.block, &json);
        let hash = p.block.hash();
        f.chain.save_proposal(&hash, b"envelope", &payload).unwrap();
        assert_eq!(
            f.chain.proposal(&hash).unwrap(),
            Some(KeptProposal {
                envelope: b"envelope".to_vec(),
                payload: Some(payload.clone())
            })
        );
        assert_eq!(f.chain.committed_payload(&hash).unwrap(), None);

        f.chain.commit(p, &VoteSet::default()).unwrap();
        assert_eq!(
            f.chain.proposal(&hash).unwrap(),
            Some(KeptProposal {
                envelope: b"envelope".to_vec(),
                payload: None
            }),
            "the payload outlived the commit"
        );
        assert_eq!(f.chain.committed_payload(&hash).unwrap(), Some(payload));
        assert_eq!(f.chain.committed_payload(&Hash32([5; 32])).unwrap(), None);

        f.chain.forget_proposal(&hash).unwrap();
        assert_eq!(f.chain.proposal(&hash).unwrap(), None);
    }

    /// Block answers list transactions from their stored JSON, in the order asked, whatever
    /// the order of their hashes; one that is not committed is `None`.
    #[test]
    fn transactions_json_answers_in_the_order_asked() {
        let v = KeyPair::generate();
        let (f, _) = fixture_with(KeyPair::generate(), &v);
        let bob = Address::eoa([0xb0; 20]);
        let txs: Vec<_> = (1..=5)
            .map(|n| tx(&f.alice, bob, n, 100_000, n, TxData::None))
            .collect();
        let p = f
            .chain
            .build(txs.clone(), 100, v.address(), VoteSet::default());
        f.chain.commit(p, &VoteSet::default()).unwrap();
        let mut asked: Vec<Hash32> = txs.iter().rev().map(|t| t.hash).collect();
        asked.insert(2, Hash32([3; 32]));
        let got = f.chain.transactions_json(&asked).unwrap();
        assert_eq!(got.len(), 6);
        assert_eq!(got[2], None);
        let expected = txs.iter().rev().map(|t| Some(t.raw.clone()));
        let found: Vec<_> = got.into_iter().filter(|m| m.is_some()).collect();
        assert!(found.into_iter().eq(expected));
    }

    #[test]
    fn a_transaction_whose_sender_cannot_pay_the_full_fee_is_left_out() {
        let v = KeyPair::generate();
        let (f, _) = fixture_with(KeyPair::generate(), &v);
        let bob = Address::eoa([0xb0; 20]);
        // Both signed against the same balance; the second cannot cover value + max fee.
        let txs = vec![
            tx(&f.alice, bob, 9 * ICX, 100_000, 1, TxData::None),
            tx(&f.alice, bob, 9 * ICX, 100_000, 2, TxData::None),
        ];
        let p = f
            .chain
            .build(txs.clone(), 100, v.address(), VoteSet::default());
        assert_eq!(p.receipts.len(), 1, "the unpayable one is not executed");
        assert_eq!(p.block.tx_hashes, vec![txs[0].hash]);
        assert_eq!(p.skipped, vec![txs[1].hash]);

        // A leader that includes it anyway: its proposal is refused by the others.
        let (other, _) = fixture_with(f.alice.clone(), &v);
        let mut forged = p.block.clone();
        forged.tx_hashes = txs.iter().map(|t| t.hash).collect();
        let err = other
            .chain
            .verify(&forged, txs.clone(), u64::MAX / 2, None)
            .err()
            .unwrap();
        assert!(err.contains("cannot pay"), "{err}");

        f.chain.commit(p, &VoteSet::default()).unwrap();
        assert_eq!(f.chain.balance(&bob), 9 * ICX);
        assert_eq!(f.chain.balance(&f.treasury), 100_000 * PRICE);
        assert_eq!(
            sum(&f.chain, &[f.alice.address(), bob, f.treasury]),
            f.chain.total_supply
        );
    }

    #[test]
    fn a_block_from_the_far_future_or_naming_another_leader_is_refused() {
        let v = KeyPair::generate();
        let (a, _) = fixture_with(KeyPair::generate(), &v);
        let (b, _) = fixture_with(a.alice.clone(), &v);
        let now = 1_000_000_000;
        let p = a.chain.build(
            vec![],
            now + MAX_BLOCK_TIME_DRIFT_US + 1,
            v.address(),
            VoteSet::default(),
        );
        let err = b.chain.verify(&p.block, vec![], now, None).err().unwrap();
        assert!(err.contains("ahead of this node's clock"), "{err}");
        b.chain
            .verify(&p.block, vec![], now + 2, Some(v.address()))
            .unwrap();
        let err = b
            .chain
            .verify(&p.block, vec![], now + 2, Some(Address::eoa([1; 20])))
            .err()
            .unwrap();
        assert!(err.contains("names leader"), "{err}");
    }

    #[test]
    fn the_chain_score_answers_wallets_fee_queries() {
        let v = KeyPair::generate();
        let (f, _) = fixture_with(KeyPair::generate(), &v);
        let q = |method: &str, params: Map<String, Value>| {
            f.chain
                .query(f.alice.address(), Address::SYSTEM, method, &params)
        };
        assert_eq!(
            q("getStepPrice", Map::new()).unwrap(),
            format!("{PRICE:#x}")
        );
        let costs = q("getStepCosts", Map::new()).unwrap();
        assert_eq!(costs["default"], "0x186a0");
        assert_eq!(costs["input"], "0xc8");
        assert_eq!(costs["contractCall"], "0x61a8");
        let mut ctx = Map::new();
        ctx.insert("contextType".into(), Value::String("invoke".into()));
        assert_eq!(q("getMaxStepLimit", ctx.clone()).unwrap(), "0x9502f900");
        ctx.insert("contextType".into(), Value::String("query".into()));
        assert_eq!(q("getMaxStepLimit", ctx.clone()).unwrap(), "0x2faf080");
        ctx.insert("contextType".into(), Value::String("\u{20ac}".into()));
        assert!(q("getMaxStepLimit", ctx).is_err());
        assert_eq!(q("getRevision", Map::new()).unwrap(), "0x1");
    }

    #[test]
    fn out_of_step_reverts_the_call_but_charges_the_limit() {
        let v = KeyPair::generate();
        let (f, _) = fixture_with(KeyPair::generate(), &v);
        let bob = Address::eoa([0xb0; 20]);
        let mut params = Map::new();
        params.insert("_to".into(), Value::String(bob.to_string()));
        params.insert("_value".into(), Value::String("0x5".into()));
        let call = TxData::Call {
            method: "transfer".into(),
            params,
        };
        let probe = tx(&f.alice, f.token, 0, 10_000_000, 1, call.clone());
        let intrinsic = f.chain.costs.intrinsic(&probe);
        let p = f.chain.build(
            vec![tx(&f.alice, f.token, 0, intrinsic + 1, 2, call.clone())],
            100,
            v.address(),
            VoteSet::default(),
        );
        assert_eq!(p.receipts[0].status, 0);
        assert_eq!(
            p.receipts[0].failure_code,
            crate::error::failure::OUT_OF_STEP
        );
        assert_eq!(p.receipts[0].step_used, intrinsic + 1);
        assert!(p.receipts[0].event_logs.is_empty());
        f.chain.commit(p, &VoteSet::default()).unwrap();
        assert_eq!(
            token_balance(&f.chain, f.token, bob),
            Value::String("0x0".into())
        );
        assert_eq!(f.chain.balance(&f.treasury), (intrinsic + 1) * PRICE);

        let p = f
            .chain
            .build(vec![probe], 200, v.address(), VoteSet::default());
        assert_eq!(p.receipts[0].status, 1, "{:?}", p.receipts[0]);
        f.chain.commit(p, &VoteSet::default()).unwrap();
        assert_eq!(
            token_balance(&f.chain, f.token, bob),
            Value::String("0x5".into())
        );
    }

    #[test]
    fn another_node_verifies_a_block_and_catches_tampering() {
        let v = KeyPair::generate();
        let alice = KeyPair::generate();
        let (a, _) = fixture_with(alice.clone(), &v);
        let (b, _) = fixture_with(alice, &v);
        assert_eq!(
            a.chain.head().hash(),
            b.chain.head().hash(),
            "same genesis, same block 0"
        );
        let bob = Address::eoa([0xb0; 20]);
        let txs = vec![tx(&a.alice, bob, 5, 100_000, 1, TxData::None)];
        let p = a
            .chain
            .build(txs.clone(), 100, v.address(), VoteSet::default());
        let block = p.block.clone();
        let checked = b
            .chain
            .verify(&block, txs.clone(), u64::MAX / 2, None)
            .unwrap();
        assert_eq!(checked.block.hash(), block.hash());

        let mut forged = block.clone();
        forged.header.state_root = Hash32([1; 32]);
        assert!(b
            .chain
            .verify(&forged, txs.clone(), u64::MAX / 2, None)
            .err()
            .unwrap()
            .contains("re-execution"));
        assert!(b
            .chain
            .verify(&block, vec![], u64::MAX / 2, None)
            .err()
            .unwrap()
            .contains("transactions differ"));
        let mut orphan = block.clone();
        orphan.header.prev_hash = Hash32([2; 32]);
        assert!(b
            .chain
            .verify(&orphan, txs, u64::MAX / 2, None)
            .err()
            .unwrap()
            .contains("does not extend"));

        a.chain.commit(p, &VoteSet::default()).unwrap();
        b.chain.commit(checked, &VoteSet::default()).unwrap();
        assert_eq!(a.chain.state_root(), b.chain.state_root());
    }

    #[test]
    fn reopening_restores_head_and_state_and_refuses_another_genesis() {
        let v = KeyPair::generate();
        let dir = tempfile::tempdir().unwrap();
        let alice = KeyPair::generate();
        let g = genesis(
            &alice,
            &v,
            Address::eoa([0xee; 20]),
            Address::contract([0x77; 20]),
        );
        let (head, root) = {
            let c = open(dir.path(), &g);
            let p = c.build(
                vec![tx(
                    &alice,
                    Address::eoa([1; 20]),
                    5,
                    100_000,
                    1,
                    TxData::None,
                )],
                100,
                v.address(),
                VoteSet::default(),
            );
            c.commit(p, &VoteSet::default()).unwrap();
            (c.head().hash(), c.state_root())
        };
        let c = open(dir.path(), &g);
        assert_eq!(c.head().hash(), head);
        assert_eq!(c.state_root(), root);
        assert_eq!(c.balance(&Address::eoa([1; 20])), 5);
        drop(c);
        let other = genesis(
            &KeyPair::generate(),
            &v,
            Address::eoa([0xee; 20]),
            Address::contract([0x77; 20]),
        );
        let storage = Storage::open(dir.path(), &["public".to_string()]).unwrap();
        let err = Chain::open(
            storage.channel("public"),
            &other,
            crate::execution::score::genesis_scores(&other),
            16,
        )
        .err()
        .unwrap()
        .to_string();
        assert!(err.contains("different genesis"), "{err}");

        // A folder written before headers carried the round (no format marker) is refused.
        let store = storage.channel("public");
        let mut b = store.batch();
        b.delete(Kind::Meta, b"header_version");
        b.commit().unwrap();
        let err = Chain::open(
            store.clone(),
            &g,
            crate::execution::score::genesis_scores(&g),
            16,
        )
        .err()
        .unwrap()
        .to_string();
        assert!(err.contains("older format"), "{err}");

        // A folder written before the state tree (no tree marker) is refused, saying what to do.
        let mut b = store.batch();
        b.put(Kind::Meta, b"header_version", &HEADER_VERSION.to_be_bytes());
        b.delete(Kind::Meta, b"tree_base");
        b.commit().unwrap();
        let err = Chain::open(store, &g, crate::execution::score::genesis_scores(&g), 16)
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("before the state tree") && err.contains("fresh data_dir"),
            "{err}"
        );
    }

    #[test]
    fn children_of_pending_blocks_execute_on_their_parents_state() {
        let v = KeyPair::generate();
        let alice = KeyPair::generate();
        let (a, _) = fixture_with(alice.clone(), &v);
        let (b, _) = fixture_with(alice, &v);
        let bob = Address::eoa([0xb0; 20]);
        let carol = Address::eoa([0xca; 20]);

        // Block 1 moves 5 ICX to bob; block 2, built before block 1 is final, spends from it.
        let p1 = a.chain.build(
            vec![tx(&a.alice, bob, 5 * ICX, 100_000, 1, TxData::None)],
            100,
            v.address(),
            VoteSet::default(),
        );
        a.chain.remember(&p1);
        let second = tx(&a.alice, carol, 3 * ICX, 100_000, 2, TxData::None);
        let p2 = a
            .chain
            .build_on(
                &p1.block.hash(),
                vec![second.clone()],
                200,
                5,
                v.address(),
                VoteSet::default(),
                100,
            )
            .unwrap();
        assert_eq!(p2.block.header.prev_hash, p1.block.hash());
        assert_eq!(p2.receipts[0].status, 1);

        // Another validator checks both before either is final.
        let c1 = b
            .chain
            .verify(&p1.block, p1.txs.clone(), u64::MAX / 2, None)
            .unwrap();
        b.chain.remember(&c1);
        let c2 = b
            .chain
            .verify(&p2.block, p2.txs.clone(), u64::MAX / 2, None)
            .unwrap();
        assert_eq!(c2.block.hash(), p2.block.hash());

        // A sibling of block 1 is remembered, then abandoned when block 1 becomes final.
        let fork = a.chain.build(vec![], 150, v.address(), VoteSet::default());
        a.chain.remember(&fork);
        assert!(
            a.chain.commit(p2, &VoteSet::default()).is_err(),
            "a child cannot be final before its parent"
        );
        let p2 = a
            .chain
            .build_on(
                &p1.block.hash(),
                vec![second],
                200,
                5,
                v.address(),
                VoteSet::default(),
                100,
            )
            .unwrap();
        a.chain.commit(p1, &VoteSet::default()).unwrap();
        assert!(a
            .chain
            .build_on(
                &fork.block.hash(),
                vec![],
                300,
                5,
                v.address(),
                VoteSet::default(),
                100
            )
            .is_err());
        a.chain.commit(p2, &VoteSet::default()).unwrap();
        b.chain.commit(c1, &VoteSet::default()).unwrap();
        b.chain.commit(c2, &VoteSet::default()).unwrap();
        assert_eq!(a.chain.state_root(), b.chain.state_root());
        assert_eq!(a.chain.head().hash(), b.chain.head().hash());
        assert_eq!(a.chain.balance(&carol), 3 * ICX);
        assert_eq!(
            sum(&a.chain, &[a.alice.address(), bob, carol, a.treasury]),
            a.chain.total_supply
        );
    }

    #[test]
    fn a_transaction_is_never_executed_twice() {
        let v = KeyPair::generate();
        let alice = KeyPair::generate();
        let (a, _) = fixture_with(alice.clone(), &v);
        let (b, _) = fixture_with(alice, &v);
        let t = tx(&a.alice, Address::eoa([1; 20]), 7, 100_000, 1, TxData::None);
        let p1 = a.chain.build(
            vec![t.clone(), t.clone()],
            100,
            v.address(),
            VoteSet::default(),
        );
        assert_eq!(p1.txs.len(), 1, "a repeat inside one block is dropped");
        a.chain.remember(&p1);
        let p2 = a
            .chain
            .build_on(
                &p1.block.hash(),
                vec![t.clone()],
                200,
                5,
                v.address(),
                VoteSet::default(),
                100,
            )
            .unwrap();
        assert!(
            p2.txs.is_empty(),
            "a transaction of a pending ancestor is dropped"
        );

        // A leader that includes it anyway is refused by the others.
        let c1 = b
            .chain
            .verify(&p1.block, p1.txs.clone(), u64::MAX / 2, None)
            .unwrap();
        b.chain.remember(&c1);
        let mut bad = b
            .chain
            .build_on(
                &p1.block.hash(),
                vec![],
                200,
                5,
                v.address(),
                VoteSet::default(),
                100,
            )
            .unwrap()
            .block;
        bad.tx_hashes = vec![t.hash];
        let err = b
            .chain
            .verify(&bad, vec![t.clone()], u64::MAX / 2, None)
            .err()
            .unwrap();
        assert!(err.contains("repeats a transaction"), "{err}");
        b.chain.commit(c1, &VoteSet::default()).unwrap();
        let p3 = b.chain.build(vec![t], 300, v.address(), VoteSet::default());
        assert!(p3.txs.is_empty(), "a final transaction is dropped");
    }
}
