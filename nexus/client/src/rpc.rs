//! A small JSON-RPC v3 client over HTTP/1.1 with keep-alive, for the wallet, the benchmark,
//! portals and tests. It keeps the HTTP status so callers can check ICON's error conventions.
//!
//! An endpoint is somebody else's server: every call ends within [`Limits::timeout`] and reads
//! at most [`Limits::max_response_bytes`] of its answer, so a frozen or hostile endpoint costs a
//! caller (a portal's link, a validator's Ethereum check) a bounded wait and bounded memory.

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Most characters of an endpoint's answer quoted in an error.
const QUOTED_CHARS: usize = 256;

/// What a call can fail with.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ClientError {
    /// The node answered with a JSON-RPC error.
    #[error("error {code}: {message}")]
    Rpc {
        /// ICON error code.
        code: i64,
        /// Message.
        message: String,
        /// Extra data.
        data: Option<Value>,
        /// HTTP status of the answer.
        status: u16,
    },
    /// The request did not get an answer.
    #[error("transport: {0}")]
    Transport(String),
    /// The whole answer did not come within the client's timeout.
    #[error("no whole answer from {url} within {after:?}")]
    Timeout {
        /// The endpoint.
        url: String,
        /// The client's timeout.
        after: Duration,
    },
    /// The answer's body was longer than the client reads.
    #[error("the answer from {url} is longer than {limit} bytes")]
    TooLarge {
        /// The endpoint.
        url: String,
        /// The client's limit.
        limit: usize,
    },
}

/// How long a call may take and how much of its answer is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest wait for a whole answer: connecting, sending and reading the body.
    pub timeout: Duration,
    /// Most bytes of an answer's body.
    pub max_response_bytes: usize,
}

impl Default for Limits {
    /// 90 s (past a Nexus node's own longest request, 75 s by default, so that a long
    /// `icx_sendTransactionAndWait` gets the node's answer, its timeout error included) and
    /// 64 MiB (a Nexus node's largest answer).
    fn default() -> Self {
        Limits {
            timeout: Duration::from_secs(90),
            max_response_bytes: 64 << 20,
        }
    }
}

/// At most [`QUOTED_CHARS`] of `text`, marked when cut.
pub(crate) fn quoted(text: &str) -> String {
    match text.char_indices().nth(QUOTED_CHARS) {
        Some((at, _)) => format!("{}... ({} bytes)", &text[..at], text.len()),
        None => text.to_string(),
    }
}

impl ClientError {
    /// The JSON-RPC error code, if the node answered.
    pub fn code(&self) -> Option<i64> {
        match self {
            ClientError::Rpc { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// True when the endpoint gave no usable answer (down, frozen, or answering past the
    /// limits), so another endpoint of the same chain may be tried.
    pub fn is_unanswered(&self) -> bool {
        !matches!(self, ClientError::Rpc { .. })
    }
}

/// A client bound to one endpoint, such as `http://127.0.0.1:9080/api/v3/public`.
pub struct RpcClient {
    url: String,
    http: Client<HttpConnector, Full<Bytes>>,
    id: AtomicU64,
    limits: Limits,
}

impl RpcClient {
    /// A client for `url`, with the default [`Limits`].
    pub fn new(url: impl Into<String>) -> Self {
        Self::with_limits(url, Limits::default())
    }

    /// A client for `url` whose calls keep to `limits`.
    pub fn with_limits(url: impl Into<String>, limits: Limits) -> Self {
        let mut conn = HttpConnector::new();
        conn.set_nodelay(true);
        conn.set_connect_timeout(Some(limits.timeout));
        RpcClient {
            url: url.into(),
            http: Client::builder(TokioExecutor::new()).build(conn),
            id: AtomicU64::new(1),
            limits,
        }
    }

    /// The limits its calls keep to.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// The endpoint.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Posts raw bytes with extra headers; returns the HTTP status and body, within the
    /// client's [`Limits`].
    pub async fn post_raw(
        &self,
        url: &str,
        body: Vec<u8>,
        headers: &[(&str, &str)],
    ) -> Result<(u16, Vec<u8>), ClientError> {
        let after = self.limits.timeout;
        tokio::time::timeout(after, self.post_unlimited_time(url, body, headers))
            .await
            .map_err(|_| ClientError::Timeout {
                url: url.to_string(),
                after,
            })?
    }

    async fn post_unlimited_time(
        &self,
        url: &str,
        body: Vec<u8>,
        headers: &[(&str, &str)],
    ) -> Result<(u16, Vec<u8>), ClientError> {
        let mut req = http::Request::post(url).header("Content-Type", "application/json");
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| ClientError::Transport(e.to_string()))?;
        let resp = self
            .http
            .request(req)
            .await
            .map_err(|e| ClientError::Transport(format!("{e:?}")))?;
        let status = resp.status().as_u16();
        let limit = self.limits.max_response_bytes;
        let body = http_body_util::Limited::new(resp.into_body(), limit)
            .collect()
            .await
            .map_err(|e| {
                if e.is::<http_body_util::LengthLimitError>() {
                    ClientError::TooLarge {
                        url: url.to_string(),
                        limit,
                    }
                } else {
                    ClientError::Transport(e.to_string())
                }
            })?
            .to_bytes();
        Ok((status, body.to_vec()))
    }

    /// Calls `method` with `params` (use `Value::Null` for none).
    pub async fn call(&self, method: &str, params: Value) -> Result<Value, ClientError> {
        self.call_with(&self.url, method, params, &[]).await
    }

    /// Calls with extra HTTP headers, at another URL (such as the `/api/v3d` debug path).
    pub async fn call_with(
        &self,
        url: &str,
        method: &str,
        params: Value,
        headers: &[(&str, &str)],
    ) -> Result<Value, ClientError> {
        let id = self.id.fetch_add(1, Ordering::Relaxed);
        let mut req = json!({"jsonrpc": "2.0", "id": id, "method": method});
        if !params.is_null() {
            req["params"] = params;
        }
        let body = serde_json::to_vec(&req).map_err(|e| ClientError::Transport(e.to_string()))?;
        let (status, bytes) = self.post_raw(url, body, headers).await?;
        let v: Value = serde_json::from_slice(&bytes).map_err(|e| {
            ClientError::Transport(format!(
                "HTTP {status}: not JSON ({e}): {}",
                quoted(&String::from_utf8_lossy(&bytes))
            ))
        })?;
        if let Some(err) = v.get("error") {
            return Err(ClientError::Rpc {
                code: err["code"].as_i64().unwrap_or(0),
                message: err["message"].as_str().unwrap_or("").to_string(),
                data: err.get("data").cloned(),
                status,
            });
        }
        v.get("result").cloned().ok_or_else(|| {
            ClientError::Transport(format!(
                "HTTP {status}: no result in {}",
                quoted(&v.to_string())
            ))
        })
    }

    /// Waits until the endpoint answers `icx_getLastBlock`, for at most `timeout` (a node that
    /// is starting); the last error if it never does.
    pub async fn wait_ready(&self, timeout: std::time::Duration) -> Result<(), ClientError> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            match self.call("icx_getLastBlock", Value::Null).await {
                Ok(_) => return Ok(()),
                Err(e) if std::time::Instant::now() >= deadline => return Err(e),
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
            }
        }
    }

    /// The debug endpoint (`/api/v3d/...`) that goes with this one.
    pub fn debug_url(&self) -> String {
        self.url.replacen("/api/v3", "/api/v3d", 1)
    }
}
