//! The supervisor: loads the key, starts one worker per link direction and the metrics
//! server, and stops them all on Ctrl-C or SIGTERM.

use crate::config::PortalConfig;
use crate::endpoint::Endpoint;
use crate::metrics::{self, Metrics};
use crate::worker::{Direction, Worker};
use crate::PortalError;
use std::sync::Arc;

/// Runs the portal until a signal.
pub async fn run(cfg: PortalConfig) -> Result<(), PortalError> {
    cfg.validate()?;
    let key = Arc::new(nexus_client::keystore::load(
        &cfg.keystore,
        &cfg.password()?,
    )?);
    std::fs::create_dir_all(&cfg.state_dir).map_err(|e| PortalError::Progress {
        path: cfg.state_dir.display().to_string(),
        error: e.to_string(),
    })?;
    let cfg = Arc::new(cfg);
    let metrics = Arc::new(Metrics::default());
    let listener = metrics::bind(cfg.listen)
        .await
        .map_err(|e| PortalError::Config(format!("listen {}: {e}", cfg.listen)))?;
    let local = listener
        .local_addr()
        .map_err(|e| PortalError::Config(e.to_string()))?;
    let server = tokio::spawn(metrics::serve(listener, metrics.clone()));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut workers = Vec::new();
    for l in &cfg.inbound {
        let w = Worker::new(
            &l.name,
            Direction::Inbound,
            Endpoint::new(&l.source, cfg.limits()),
            Endpoint::with_backups(&l.notary, &l.notary_backups, cfg.limits()),
            l.start_height,
            key.clone(),
            cfg.clone(),
            metrics.clone(),
        );
        workers.push(tokio::spawn(w.run(stop_rx.clone())));
    }
    for l in &cfg.outbound {
        let w = Worker::new(
            &l.name,
            Direction::Outbound,
            Endpoint::with_backups(&l.notary, &l.notary_backups, cfg.limits()),
            Endpoint::new(&l.destination, cfg.limits()),
            l.start_height,
            key.clone(),
            cfg.clone(),
            metrics.clone(),
        );
        workers.push(tokio::spawn(w.run(stop_rx.clone())));
    }
    for l in &cfg.eth_inbound {
        let w = crate::eth_inbound::EthInbound::new(l, key.clone(), cfg.clone(), metrics.clone())?;
        workers.push(tokio::spawn(w.run(stop_rx.clone())));
    }
    for l in &cfg.eth_outbound {
        let w = crate::eth_worker::EthWorker::new(l, cfg.clone(), metrics.clone())?;
        workers.push(tokio::spawn(w.run(stop_rx.clone())));
    }
    tracing::info!(relayer = %key.address(), metrics = %local, links = workers.len(), "portal started");
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| PortalError::Config(e.to_string()))?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("stopping");
    let _ = stop_tx.send(true);
    for w in workers {
        let _ = w.await;
    }
    server.abort();
    Ok(())
}
