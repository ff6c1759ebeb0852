//! Wiring of a node: storage, chain, pool, engine and RPC server started from a config, and
//! stopped cleanly on Ctrl-C or SIGTERM.

use crate::admission::Admission;
use crate::chain::Chain;
use crate::config::NodeConfig;
use crate::engine::SoloEngine;
use crate::error::NodeError;
use crate::genesis::Genesis;
use crate::keystore;
use crate::lft_engine::LftEngine;
use crate::mempool::Mempool;
use crate::metrics::Metrics;
use crate::rpc::{self, ChannelApi, Routes, RpcServer};
use crate::storage::Storage;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// A started node.
pub struct RunningNode {
    /// Where JSON-RPC listens.
    pub rpc_addr: SocketAddr,
    /// The channel's ledger.
    pub chain: Arc<Chain>,
    stop: watch::Sender<bool>,
    engine: JoinHandle<Result<(), NodeError>>,
    server: RpcServer,
}

/// Starts a node from a validated config.
pub async fn start(cfg: &NodeConfig) -> Result<RunningNode, NodeError> {
    cfg.validate()?;
    let genesis = Genesis::load(&cfg.genesis)?;
    let key = keystore::load(&cfg.keystore, &cfg.keystore_password()?)?;
    std::fs::create_dir_all(&cfg.data_dir)?;
    let storage = Storage::open(&cfg.data_dir, std::slice::from_ref(&genesis.channel))?;
    let chain = Arc::new(Chain::open(storage.channel(&genesis.channel), &genesis)?);
    let pool = Arc::new(Mempool::new(cfg.mempool.max_txs));
    let metrics = Arc::new(Metrics::default());
    let head = chain.head().header.height;
    metrics.block_committed(&chain.channel, head, 0, 0);
    let admission = Arc::new(Admission::new(
        chain.clone(),
        pool.clone(),
        cfg.mempool.timestamp_window_ms,
    ));
    let (stop, stop_rx) = watch::channel(false);
    // One validator: the node is the whole set. More: LFT over libp2p.
    let engine = if chain.validators.len() == 1 {
        let solo = SoloEngine::new(
            chain.clone(),
            pool.clone(),
            key,
            cfg.block.clone(),
            metrics.clone(),
        )?;
        tokio::spawn(solo.run(stop_rx))
    } else {
        let lft = LftEngine::new(
            chain.clone(),
            pool.clone(),
            admission.clone(),
            key,
            cfg,
            metrics.clone(),
        )?;
        tokio::spawn(lft.run(stop_rx))
    };
    let api = Arc::new(ChannelApi {
        chain: chain.clone(),
        pool: pool.clone(),
        admission,
        rpc: cfg.rpc.clone(),
        metrics: metrics.clone(),
    });
    let routes = Routes::new(vec![api], metrics, cfg.rpc.max_request_bytes)
        .map_err(|e| NodeError::Config(e.to_string()))?;
    let server = rpc::serve(cfg.rpc.listen, routes, cfg.rpc.max_connections).await?;
    tracing::info!(rpc = %server.local_addr, channel = %chain.channel, height = head, "node started");
    Ok(RunningNode {
        rpc_addr: server.local_addr,
        chain,
        stop,
        engine,
        server,
    })
}

impl RunningNode {
    /// Runs until Ctrl-C, SIGTERM or an engine failure, then stops.
    pub async fn run_until_signal(mut self) -> Result<(), NodeError> {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        let result = tokio::select! {
            _ = tokio::signal::ctrl_c() => Ok(()),
            _ = term.recv() => Ok(()),
            r = &mut self.engine => match r {
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
        match self.engine.await {
            Ok(r) => r,
            Err(e) => Err(NodeError::Config(format!("engine task failed: {e}"))),
        }
    }
}
