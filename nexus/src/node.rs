//! Wiring of a node: storage, one chain, pool and engine per channel, the p2p network shared by
//! the channels that have several validators, and the RPC server with a path per channel;
//! started from a config and stopped cleanly on Ctrl-C or SIGTERM.

use crate::config::NodeConfig;
use crate::consensus::lft_engine::LftEngine;
use crate::consensus::solo::SoloEngine;
use crate::error::NodeError;
use crate::keystore;
use crate::ledger::chain::Chain;
use crate::ledger::genesis::{Genesis, ParsedGenesis};
use crate::ledger::storage::{ReadMode, Storage};
use crate::metrics::Metrics;
use crate::net::p2p::{self, ChannelPeers};
use crate::pool::admission::Admission;
use crate::pool::mempool::Mempool;
use crate::rpc::{self, ChannelApi, Routes, RpcServer};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// A started node.
pub struct RunningNode {
    /// Where JSON-RPC listens.
    pub rpc_addr: SocketAddr,
    /// The first channel's ledger.
    pub chain: Arc<Chain>,
    /// Every channel's ledger, in config order.
    pub chains: Vec<Arc<Chain>>,
    stop: watch::Sender<bool>,
    engines: Vec<JoinHandle<Result<(), NodeError>>>,
    server: RpcServer,
}

/// Raises the process's soft limit of open files to its hard limit. Every connection (RPC,
/// WebSocket, peers and those still in their handshake) and every RocksDB table file takes
/// one, and a soft limit of 1,024 (a common default) is reached by connections alone long
/// before the configured bounds on them; RocksDB then cannot open the file a flush writes.
pub fn raise_open_files_limit() {
    // Linux refuses more than `fs.nr_open` (1,048,576 by default), even under an unlimited
    // hard limit.
    const MAX_OPEN_FILES: u64 = 1 << 20;
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) if soft < hard.min(MAX_OPEN_FILES) => {
            let to = hard.min(MAX_OPEN_FILES);
            match setrlimit(Resource::RLIMIT_NOFILE, to, hard) {
                Ok(()) => tracing::info!(from = soft, to, "raised the limit of open files"),
                Err(e) => {
                    tracing::warn!(soft, hard, error = %e, "could not raise the limit of open files")
                }
            }
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "could not read the limit of open files"),
    }
}

/// Starts a node from a validated config.
pub async fn start(cfg: &NodeConfig) -> Result<RunningNode, NodeError> {
    cfg.validate()?;
    raise_open_files_limit();
    let mut channels: Vec<(ParsedGenesis, Vec<String>)> =
        vec![(Genesis::load(&cfg.genesis)?, cfg.p2p.peers.clone())];
    for c in &cfg.channels {
        channels.push((Genesis::load(&c.genesis)?, c.peers.clone()));
    }
    let names: Vec<String> = channels.iter().map(|(g, _)| g.channel.clone()).collect();
    if let Some(dup) = names
        .iter()
        .enumerate()
        .find_map(|(i, n)| names[..i].contains(n).then_some(n))
    {
        return Err(NodeError::Config(format!(
            "channel {dup} is configured twice"
        )));
    }
    // A transaction signs its nid, not its channel: channels sharing a nid could replay each
    // other's transactions.
    for (i, (g, _)) in channels.iter().enumerate() {
        if let Some((other, _)) = channels[..i].iter().find(|(o, _)| o.nid == g.nid) {
            return Err(NodeError::Config(format!(
                "channels {} and {} share nid {:#x}; each channel needs its own nid, or a transaction for one runs again on the other",
                other.channel, g.channel, g.nid
            )));
        }
    }
    let key = keystore::load(&cfg.keystore, &cfg.keystore_password()?)?;
    std::fs::create_dir_all(&cfg.data_dir)?;
    let mode = ReadMode {
        mmap: cfg.state.mmap_reads,
    };
    let storage = Storage::open_with(&cfg.data_dir, &names, mode)?
        .with_min_free(cfg.state.min_free_disk_mb << 20)?;
    let metrics = Arc::new(Metrics::default());

    // One libp2p task for every channel run by LFT.
    let lft: Vec<ChannelPeers> = channels
        .iter()
        .filter(|(g, _)| g.validators.len() > 1)
        .map(|(g, peers)| ChannelPeers {
            nid: g.nid,
            channel: g.channel.clone(),
            peers: peers.clone(),
        })
        .collect();
    let mut nets = if lft.is_empty() {
        Vec::new()
    } else {
        let identity = p2p::load_or_create_identity(&cfg.p2p.key_file)?;
        p2p::start_channels(
            identity,
            &cfg.p2p.listen,
            Some(cfg.p2p.deny_file.clone()),
            &lft,
        )?
    }
    .into_iter();

    let (stop, stop_rx) = watch::channel(false);
    let mut engines = Vec::new();
    let mut apis = Vec::new();
    let mut chains = Vec::new();
    for (genesis, _) in &channels {
        let scores = crate::execution::score::genesis_scores(genesis);
        let chain = Arc::new(Chain::open(
            storage.channel(&genesis.channel),
            genesis,
            scores,
            cfg.state.history_blocks,
        )?);
        let pool = Arc::new(Mempool::with_limits(crate::pool::mempool::PoolLimits {
            max_txs: cfg.mempool.max_txs,
            max_bytes: cfg.mempool.max_bytes,
            max_per_sender: cfg.mempool.max_per_sender,
        }));
        chain.set_metrics(metrics.clone());
        let head = chain.head().header.height;
        metrics.block_committed(&chain.channel, head, 0, 0);
        let backlog_min = crate::pool::backlog::floor(
            chain.validators.len(),
            cfg.mempool.backlog_min_txs,
            cfg.block.max_txs,
        );
        let admission = Arc::new(
            Admission::new(chain.clone(), pool.clone(), cfg.mempool.timestamp_window_ms)
                .with_backlog(cfg.mempool.backlog_ms, backlog_min),
        );
        let eth_check = cfg.eth_endpoints.get(&genesis.channel).map(|url| {
            tracing::info!(channel = %genesis.channel, endpoint = %url, "relayed Ethereum headers are checked against this endpoint");
            Arc::new(crate::consensus::eth_check::EthEndpointCheck::new(url))
        });
        if let Some(c) = &eth_check {
            admission.set_eth_check(c.clone());
        }
        // One validator: the node is the whole set. More: LFT over libp2p.
        let engine = if chain.validators.len() == 1 {
            let solo = SoloEngine::new(
                chain.clone(),
                pool.clone(),
                key.clone(),
                cfg.block.clone(),
                metrics.clone(),
            )?;
            tokio::spawn(solo.run(stop_rx.clone()))
        } else {
            let net = nets
                .next()
                .ok_or_else(|| NodeError::Config("p2p: missing channel network".into()))?;
            let lft = LftEngine::new(
                chain.clone(),
                pool.clone(),
                admission.clone(),
                key.clone(),
                cfg,
                metrics.clone(),
                net,
            )?
            .with_eth_check(eth_check);
            tokio::spawn(lft.run(stop_rx.clone()))
        };
        engines.push(engine);
        apis.push(Arc::new(ChannelApi {
            chain: chain.clone(),
            pool,
            admission,
            rpc: cfg.rpc.clone(),
            metrics: metrics.clone(),
            btp: genesis.btp.clone(),
            notary_key: genesis
                .btp
                .as_ref()
                .filter(|b| b.notary)
                .map(|_| key.clone()),
        }));
        tracing::info!(channel = %chain.channel, height = head, validators = chain.validators.len(), "channel started");
        chains.push(chain);
    }
    let routes =
        Routes::new(apis, metrics, &cfg.rpc).map_err(|e| NodeError::Config(e.to_string()))?;
    let server = rpc::serve(cfg.rpc.listen, routes).await?;
    tracing::info!(rpc = %server.local_addr, channels = ?names, "node started");
    Ok(RunningNode {
        rpc_addr: server.local_addr,
        chain: chains[0].clone(),
        chains,
        stop,
        engines,
        server,
    })
}

impl RunningNode {
    /// Runs until Ctrl-C, SIGTERM or an engine failure, then stops.
    pub async fn run_until_signal(mut self) -> Result<(), NodeError> {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        let engines = std::mem::take(&mut self.engines);
        let result = tokio::select! {
            _ = tokio::signal::ctrl_c() => Ok(()),
            _ = term.recv() => Ok(()),
            (r, _, _) = futures::future::select_all(engines) => match r {
                Ok(r) => r,
                Err(e) => Err(NodeError::Config(format!("engine task failed: {e}"))),
            },
        };
        tracing::info!("stopping");
        let _ = self.stop.send(true);
        self.server.stop().await;
        result
    }

    /// Stops block production and the server.
    pub async fn stop(self) -> Result<(), NodeError> {
        let _ = self.stop.send(true);
        self.server.stop().await;
        for e in self.engines {
            match e.await {
                Ok(r) => r?,
                Err(e) => return Err(NodeError::Config(format!("engine task failed: {e}"))),
            }
        }
        Ok(())
    }
}
