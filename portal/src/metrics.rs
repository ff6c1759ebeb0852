//! Prometheus metrics per link (relay lag, pending messages, relayed count, errors, wallet
//! balance, progress height) and the HTTP server of `/metrics` and `/health`.

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::service::service_fn;
use prometheus_client::encoding::{text::encode, EncodeLabelSet};
use prometheus_client::metrics::{counter::Counter, family::Family, gauge::Gauge};
use prometheus_client::registry::Registry;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Link {
    link: String,
}

/// The state of one link as `/health` shows it.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct LinkHealth {
    /// Progress height.
    pub height: u64,
    /// Messages relayed since start.
    pub relayed: u64,
    /// The last error, cleared by the next successful pass.
    pub last_error: Option<String>,
}

/// The portal's metrics.
pub struct Metrics {
    registry: Registry,
    lag: Family<Link, Gauge>,
    pending: Family<Link, Gauge>,
    relayed: Family<Link, Counter>,
    errors: Family<Link, Counter>,
    sent_again: Family<Link, Counter>,
    height: Family<Link, Gauge>,
    balance: Family<Link, Gauge<f64, AtomicU64>>,
    health: Mutex<BTreeMap<String, LinkHealth>>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("portal");
        let m = Metrics {
            lag: Family::default(),
            pending: Family::default(),
            relayed: Family::default(),
            errors: Family::default(),
            sent_again: Family::default(),
            height: Family::default(),
            balance: Family::default(),
            health: Mutex::new(BTreeMap::new()),
            registry: Registry::default(),
        };
        registry.register(
            "relay_lag_blocks",
            "Blocks the link is behind its source",
            m.lag.clone(),
        );
        registry.register(
            "pending_messages",
            "Messages sent but not yet delivered on this hop",
            m.pending.clone(),
        );
        registry.register(
            "relayed_messages",
            "Messages relayed by this portal",
            m.relayed.clone(),
        );
        registry.register("errors", "Failed relay steps", m.errors.clone());
        registry.register(
            "eth_sent_again",
            "Ethereum transactions sent again with raised fees after no receipt came in time",
            m.sent_again.clone(),
        );
        registry.register("height", "Last source height handled", m.height.clone());
        registry.register(
            "wallet_balance_icx",
            "The relayer's balance on the chain it pays on",
            m.balance.clone(),
        );
        Metrics { registry, ..m }
    }
}

fn l(link: &str) -> Link {
    Link {
        link: link.to_string(),
    }
}

impl Metrics {
    /// Progress of a pass.
    pub fn progress(&self, link: &str, height: u64, lag: u64) {
        self.height.get_or_create(&l(link)).set(height as i64);
        self.lag
            .get_or_create(&l(link))
            .set(lag.min(i64::MAX as u64) as i64);
        if let Ok(mut h) = self.health.lock() {
            let e = h.entry(link.to_string()).or_default();
            e.height = height;
            e.last_error = None;
        }
    }

    /// Messages waiting on this hop.
    pub fn pending(&self, link: &str, n: u128) {
        self.pending
            .get_or_create(&l(link))
            .set(n.min(i64::MAX as u128) as i64);
    }

    /// Messages relayed.
    pub fn relayed(&self, link: &str, n: u64) {
        self.relayed.get_or_create(&l(link)).inc_by(n);
        if let Ok(mut h) = self.health.lock() {
            h.entry(link.to_string()).or_default().relayed += n;
        }
    }

    /// A failed step.
    pub fn error(&self, link: &str, why: &str) {
        self.errors.get_or_create(&l(link)).inc();
        if let Ok(mut h) = self.health.lock() {
            h.entry(link.to_string()).or_default().last_error = Some(why.to_string());
        }
    }

    /// An Ethereum transaction sent again (same nonce, raised fees).
    pub fn sent_again(&self, link: &str) {
        self.sent_again.get_or_create(&l(link)).inc();
    }

    /// The relayer's balance (loop).
    pub fn balance(&self, link: &str, loop_: u128) {
        self.balance
            .get_or_create(&l(link))
            .set(loop_ as f64 / 1e18);
    }

    /// Text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = encode(&mut out, &self.registry);
        out
    }

    /// `/health`: 200 when no link's last step failed, else 503; the body shows each link.
    pub fn health(&self) -> (u16, String) {
        let h = self.health.lock().map(|h| h.clone()).unwrap_or_default();
        let ok = h.values().all(|l| l.last_error.is_none());
        let body = serde_json::json!({"ok": ok, "links": h}).to_string();
        (if ok { 200 } else { 503 }, body)
    }
}

/// Connections to `/metrics` and `/health` open at once; past it a new one is closed.
const MAX_CONNECTIONS: usize = 64;
/// A connection that sends no request for this long is closed.
const IDLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Serves `/metrics` and `/health` until the task is dropped.
pub async fn serve(
    listener: tokio::net::TcpListener,
    metrics: Arc<Metrics>,
) -> std::io::Result<()> {
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        // A failed accept (out of file descriptors, say) is waited out, not the end of the
        // server: `/health` must answer again once it passes.
        let stream = match listener.accept().await {
            Ok((s, _)) => s,
            Err(error) => {
                tracing::warn!(%error, "metrics: accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            continue;
        };
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let svc = service_fn(move |req: http::Request<hyper::body::Incoming>| {
                let metrics = metrics.clone();
                async move {
                    let (status, body, ty) = match req.uri().path() {
                        "/metrics" => (200, metrics.render(), "text/plain; version=0.0.4"),
                        "/health" => {
                            let (s, b) = metrics.health();
                            (s, b, "application/json")
                        }
                        _ => (
                            404,
                            "not found: try /metrics or /health\n".into(),
                            "text/plain",
                        ),
                    };
                    http::Response::builder()
                        .status(status)
                        .header("Content-Type", ty)
                        .body(Full::new(Bytes::from(body)))
                }
            });
            let io = hyper_util::rt::TokioIo::new(stream);
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(IDLE_TIMEOUT)
                .serve_connection(io, svc)
                .await;
        });
    }
}

/// Binds the metrics address.
pub async fn bind(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr).await
}
