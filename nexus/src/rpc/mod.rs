//! The JSON-RPC v3 server: HTTP and WebSocket on one port, one path per channel.
//!
//! | path | what |
//! |---|---|
//! | `POST /api/v3/<channel>` | JSON-RPC v3 (`icx_*`) |
//! | `POST /api/v3d/<channel>` | `debug_*` (where ICON's SDKs send them) and `icx_*`; debug methods are served here only |
//! | `POST /api/v3`, `/api/v3d` | the first channel |
//! | `GET /api/v3/<channel>/block`, `/event` (WebSocket) | goloop-style block and event monitors |
//! | `GET /metrics` | Prometheus metrics |
//! | `GET /dex` | the DEX's page (reads the converter on the first channel with `icx_call`) |
//!
//! Errors carry HTTP status 400 (500 for internal errors) as goloop does, because ICON's SDKs
//! read the body of a 200 response as a result.
//!
//! Limits (all in `[rpc]`): body size, connections, calls per batch, time per request, open
//! monitors and their idle time. Any `Content-Type` is accepted, as ICON's nodes do
//! (`icon-sdk-js` sends `text/plain`). A handler that panics answers -32603 instead of dropping
//! the connection.

mod btp;
mod icx;
mod params;
mod shapes;
mod ws;

pub use icx::ChannelApi;

use crate::config::RpcConfig;
use crate::error::{code, IconError};
use crate::metrics::Metrics;
use http_body_util::BodyExt;
use jsonrpsee::server::{
    stop_channel, HttpBody, HttpResponse, Methods, ServerHandle, StopHandle, TowerServiceBuilder,
};
use jsonrpsee::types::ErrorObjectOwned;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tower::Service;

/// A wait asked for with the `Icon-Options: timeout=<ms>` header.
#[derive(Debug, Clone, Copy)]
pub struct WaitTimeout(pub Duration);

impl From<IconError> for ErrorObjectOwned {
    fn from(e: IconError) -> Self {
        ErrorObjectOwned::owned(e.code, e.message, e.data)
    }
}

struct ChannelEntry {
    methods: Methods,
    debug_methods: Methods,
    api: Arc<ChannelApi>,
}

/// Everything the server routes to.
pub struct Routes {
    channels: HashMap<String, ChannelEntry>,
    default: String,
    metrics: Arc<Metrics>,
    cfg: RpcConfig,
    monitors: Arc<tokio::sync::Semaphore>,
    /// Request bodies being read or handled, in bytes (`rpc.max_bytes_in_flight`).
    bodies: Arc<tokio::sync::Semaphore>,
}

impl Routes {
    /// Routes for the given channels; the first is also served at `/api/v3`.
    pub fn new(
        apis: Vec<Arc<ChannelApi>>,
        metrics: Arc<Metrics>,
        cfg: &RpcConfig,
    ) -> Result<Self, IconError> {
        let mut channels = HashMap::new();
        let mut default = String::new();
        for api in apis {
            let name = api.chain.channel.clone();
            if default.is_empty() {
                default = name.clone();
            }
            let module = icx::module(api.clone(), false).map_err(IconError::internal)?;
            let debug = icx::module(api.clone(), true).map_err(IconError::internal)?;
            channels.insert(
                name,
                ChannelEntry {
                    methods: module.into(),
                    debug_methods: debug.into(),
                    api,
                },
            );
        }
        Ok(Routes {
            channels,
            default,
            metrics,
            cfg: cfg.clone(),
            monitors: Arc::new(tokio::sync::Semaphore::new(cfg.max_monitors as usize)),
            bodies: Arc::new(tokio::sync::Semaphore::new(
                cfg.max_bytes_in_flight as usize,
            )),
        })
    }

    fn channel(&self, name: Option<&str>) -> Option<&ChannelEntry> {
        self.channels.get(name.unwrap_or(&self.default))
    }
}

enum Route<'a> {
    /// JSON-RPC on a channel (`true`: the debug path `/api/v3d`).
    Rpc(Option<&'a str>, bool),
    Monitor(Option<&'a str>, &'a str),
    Metrics,
    DexPage,
    NotFound,
}

fn route(path: &str) -> Route<'_> {
    let path = path.trim_end_matches('/');
    if path == "/metrics" {
        return Route::Metrics;
    }
    if path == "/dex" {
        return Route::DexPage;
    }
    let (rest, debug) = match path.strip_prefix("/api/v3d") {
        Some(r) => (r, true),
        None => match path.strip_prefix("/api/v3") {
            Some(r) => (r, false),
            None => return Route::NotFound,
        },
    };
    if !rest.is_empty() && !rest.starts_with('/') {
        return Route::NotFound;
    }
    let parts: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    match parts.as_slice() {
        [] => Route::Rpc(None, debug),
        [ch] if *ch == "block" || *ch == "event" => Route::Monitor(None, ch),
        [ch] => Route::Rpc(Some(ch), debug),
        [ch, kind] if *kind == "block" || *kind == "event" => Route::Monitor(Some(ch), kind),
        _ => Route::NotFound,
    }
}

fn plain(status: u16, body: impl Into<String>) -> HttpResponse {
    let mut r = HttpResponse::new(HttpBody::from(body.into()));
    *r.status_mut() = http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::BAD_REQUEST);
    r
}

fn json_error(status: u16, code: i32, message: String) -> HttpResponse {
    let body = serde_json::json!({"jsonrpc": "2.0", "id": null, "error": {"code": code, "message": message}});
    let mut r = plain(status, body.to_string());
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    r
}

/// Gives an error response the HTTP status ICON clients expect.
async fn with_error_status(resp: HttpResponse) -> Result<HttpResponse, jsonrpsee::core::BoxError> {
    if resp.status() != http::StatusCode::OK {
        return Ok(resp);
    }
    let (mut parts, body) = resp.into_parts();
    let bytes = body.collect().await?.to_bytes();
    // The key after `"id"` decides; look near the start first (a success body may be large).
    let pos = |b: &[u8], pat: &[u8]| b.windows(pat.len()).position(|w| w == pat);
    let head = &bytes[..bytes.len().min(512)];
    let scope = if pos(head, b"\"result\":").is_some() || pos(head, b"\"error\":").is_some() {
        head
    } else {
        &bytes[..]
    };
    let is_error = bytes.first() == Some(&b'{')
        && match (pos(scope, b"\"error\":"), pos(scope, b"\"result\":")) {
            (Some(e), Some(r)) => e < r,
            (Some(_), None) => true,
            _ => false,
        };
    if is_error {
        let internal = pos(scope, b"\"code\":-32603").is_some();
        parts.status = if internal {
            http::StatusCode::INTERNAL_SERVER_ERROR
        } else {
            http::StatusCode::BAD_REQUEST
        };
    }
    Ok(HttpResponse::from_parts(
        parts,
        HttpBody::new(http_body_util::Full::new(bytes)),
    ))
}

fn wait_header<B>(req: &http::Request<B>) -> Option<WaitTimeout> {
    let v = req.headers().get("Icon-Options")?.to_str().ok()?;
    v.split(',').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k.trim() == "timeout").then(|| {
            v.trim()
                .parse::<u64>()
                .ok()
                .map(|ms| WaitTimeout(Duration::from_millis(ms)))
        })?
    })
}

/// A running server.
pub struct RpcServer {
    /// The bound address.
    pub local_addr: SocketAddr,
    handle: ServerHandle,
}

impl RpcServer {
    /// Stops accepting and finishes open requests.
    pub async fn stop(self) {
        let _ = self.handle.stop();
        self.handle.stopped().await;
    }
}

async fn handle_request(
    req: http::Request<hyper::body::Incoming>,
    routes: Arc<Routes>,
    builder: TowerServiceBuilder<tower::layer::util::Identity, tower::layer::util::Identity>,
    stop: StopHandle,
) -> Result<HttpResponse, jsonrpsee::core::BoxError> {
    let path = req.uri().path().to_string();
    match route(&path) {
        Route::Metrics => Ok(plain(200, routes.metrics.render())),
        Route::DexPage => {
            let mut r = plain(200, nexus_dex::web_page());
            r.headers_mut().insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static("text/html; charset=utf-8"),
            );
            Ok(r)
        }
        Route::NotFound => Ok(json_error(
            404,
            code::INVALID_REQUEST,
            format!("no such path {path}; use /api/v3/<channel>"),
        )),
        Route::Monitor(ch, kind) => match routes.channel(ch) {
            Some(c) => {
                let Ok(permit) = routes.monitors.clone().try_acquire_owned() else {
                    return Ok(json_error(
                        503,
                        code::LACK_OF_RESOURCE,
                        format!(
                            "too many monitors open (the limit is {})",
                            routes.cfg.max_monitors
                        ),
                    ));
                };
                let idle = Duration::from_millis(routes.cfg.monitor_idle_timeout_ms);
                Ok(ws::upgrade(
                    req,
                    c.api.chain.clone(),
                    kind == "event",
                    idle,
                    permit,
                ))
            }
            None => Ok(json_error(
                404,
                code::INVALID_REQUEST,
                format!("no channel {}", ch.unwrap_or("")),
            )),
        },
        Route::Rpc(ch, debug) => {
            let Some(c) = routes.channel(ch) else {
                return Ok(json_error(
                    404,
                    code::INVALID_REQUEST,
                    format!("no channel {}", ch.unwrap_or("")),
                ));
            };
            let len = req
                .headers()
                .get(http::header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok());
            let max_request_bytes = routes.cfg.max_request_bytes;
            if let Some(len) = len.filter(|l| *l > u64::from(max_request_bytes)) {
                // Read (and drop) a bounded amount of the body so the client sees the answer
                // instead of a reset connection; past the bound the connection just closes.
                let mut body = req.into_body();
                let mut seen = 0usize;
                while seen <= 16 * max_request_bytes as usize {
                    match body.frame().await {
                        Some(Ok(f)) => seen += f.data_ref().map(|d| d.len()).unwrap_or(0),
                        _ => break,
                    }
                }
                return Ok(json_error(
                    413,
                    code::INVALID_REQUEST,
                    format!(
                        "request of {len} bytes exceeds the limit of {max_request_bytes} bytes"
                    ),
                ));
            }
            // Every body being read or handled holds its length (the most a body may be, when
            // it is chunked) from one budget: a thousand clients that each send most of a
            // large body and stop would otherwise hold a thousand bodies.
            let charge = hyper::body::Body::size_hint(req.body())
                .upper()
                .unwrap_or(u64::from(max_request_bytes))
                .clamp(1, u64::from(max_request_bytes)) as u32;
            let Ok(_held) = routes.bodies.clone().try_acquire_many_owned(charge) else {
                return Ok(json_error(
                    503,
                    code::LACK_OF_RESOURCE,
                    format!(
                        "busy: requests of {} bytes in all are being read (rpc.max_bytes_in_flight); try again",
                        routes.cfg.max_bytes_in_flight
                    ),
                ));
            };
            let idle = Duration::from_millis(routes.cfg.idle_timeout_ms);
            let (parts, body) = req.into_parts();
            let read = http_body_util::Limited::new(body, max_request_bytes as usize).collect();
            let body = match tokio::time::timeout(idle, read).await {
                Ok(Ok(b)) => b.to_bytes(),
                Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => {
                    return Ok(json_error(
                        413,
                        code::INVALID_REQUEST,
                        format!("request exceeds the limit of {max_request_bytes} bytes"),
                    ))
                }
                Ok(Err(e)) => return Err(e),
                Err(_) => {
                    return Ok(json_error(
                        408,
                        code::SYSTEM_TIMEOUT,
                        format!(
                            "the request's body did not arrive within {} ms (rpc.idle_timeout_ms)",
                            idle.as_millis()
                        ),
                    ))
                }
            };
            let mut req = http::Request::from_parts(parts, http_body_util::Full::new(body));
            if let Some(w) = wait_header(&req) {
                req.extensions_mut().insert(w);
            }
            // ICON's nodes take any content type; jsonrpsee insists on JSON.
            if req.method() == http::Method::POST {
                req.headers_mut().insert(
                    http::header::CONTENT_TYPE,
                    http::HeaderValue::from_static("application/json"),
                );
            }
            let methods = if debug {
                c.debug_methods.clone()
            } else {
                c.methods.clone()
            };
            let mut svc = builder.build(methods, stop);
            let limit = Duration::from_millis(routes.cfg.request_timeout_ms);
            match tokio::time::timeout(limit, svc.call(req)).await {
                Ok(resp) => with_error_status(resp?).await,
                Err(_) => Ok(json_error(
                    503,
                    code::SYSTEM_TIMEOUT,
                    format!("request took longer than {} ms", limit.as_millis()),
                )),
            }
        }
    }
}

/// Serves one connection over HTTP/1.1 (with upgrades, for the WebSocket monitors) until it
/// ends; when `stopped` resolves, lets the request in flight finish and closes it.
///
/// A request's head must come within `idle` of the server waiting for it: a connection that
/// sends no request (or dribbles one) for that long is closed, so idle connections do not
/// hold `rpc.max_connections` slots for ever. An answer that takes long
/// (`icx_sendTransactionAndWait`) is not cut: its head came before it.
async fn serve_connection<S>(
    sock: tokio::net::TcpStream,
    idle: Duration,
    svc: S,
    stopped: impl std::future::Future<Output = ()>,
) -> Result<(), hyper::Error>
where
    S: tower::Service<http::Request<hyper::body::Incoming>, Response = HttpResponse>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(idle)
        .serve_connection(
            hyper_util::rt::TokioIo::new(sock),
            hyper_util::service::TowerToHyperService::new(svc),
        )
        .with_upgrades();
    tokio::pin!(conn, stopped);
    tokio::select! {
        r = conn.as_mut() => r,
        _ = stopped.as_mut() => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    }
}

/// Binds `addr` and serves `routes` until [`RpcServer::stop`].
pub async fn serve(addr: SocketAddr, routes: Routes) -> std::io::Result<RpcServer> {
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
        std::io::Error::new(
            e.kind(),
            format!("cannot listen on {addr}: {e} (is another node running? pick another address)"),
        )
    })?;
    let local_addr = listener.local_addr()?;
    let (stop, handle) = stop_channel();
    let builder = jsonrpsee::server::Server::builder()
        .max_request_body_size(routes.cfg.max_request_bytes)
        .max_response_body_size(64 * 1024 * 1024)
        .max_connections(routes.cfg.max_connections)
        .set_batch_request_config(jsonrpsee::server::BatchRequestConfig::Limit(
            routes.cfg.max_batch,
        ))
        .set_tcp_no_delay(true)
        .to_service_builder();
    let routes = Arc::new(routes);
    let slots = Arc::new(tokio::sync::Semaphore::new(
        routes.cfg.max_connections as usize,
    ));
    tokio::spawn(async move {
        loop {
            let sock = tokio::select! {
                r = listener.accept() => match r {
                    Ok((s, _)) => s,
                    Err(e) => {
                        tracing::warn!(%e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                _ = stop.clone().shutdown() => break,
            };
            // Past `max_connections` a new connection is closed at once: the client learns
            // it now, rather than waiting in the kernel's queue.
            let Ok(slot) = slots.clone().try_acquire_owned() else {
                tracing::debug!("connection refused: rpc.max_connections are open");
                drop(sock);
                continue;
            };
            let _ = sock.set_nodelay(true);
            let idle = Duration::from_millis(routes.cfg.idle_timeout_ms);
            let (routes, builder, stop2) = (routes.clone(), builder.clone(), stop.clone());
            let svc = tower::service_fn(move |req| {
                handle_request(req, routes.clone(), builder.clone(), stop2.clone())
            });
            let shutdown = stop.clone().shutdown();
            tokio::spawn(async move {
                if let Err(e) = serve_connection(sock, idle, svc, shutdown).await {
                    tracing::debug!(%e, "connection ended");
                }
                drop(slot);
            });
        }
    });
    Ok(RpcServer { local_addr, handle })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert!(matches!(route("/api/v3"), Route::Rpc(None, false)));
        assert!(matches!(
            route("/api/v3/public"),
            Route::Rpc(Some("public"), false)
        ));
        assert!(matches!(
            route("/api/v3d/public"),
            Route::Rpc(Some("public"), true)
        ));
        assert!(matches!(route("/api/v3x"), Route::NotFound));
        assert!(matches!(
            route("/api/v3/public/block"),
            Route::Monitor(Some("public"), "block")
        ));
        assert!(matches!(
            route("/api/v3/event"),
            Route::Monitor(None, "event")
        ));
        assert!(matches!(route("/metrics"), Route::Metrics));
        assert!(matches!(route("/api/v2"), Route::NotFound));
        assert!(matches!(route("/api/v3/a/b/c"), Route::NotFound));
    }
}
