//! A small JSON-RPC v3 client over HTTP/1.1 with keep-alive, for the wallet, the benchmark and
//! tests. It keeps the HTTP status so callers can check ICON's error conventions.

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU64, Ordering};

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
}

impl ClientError {
    /// The JSON-RPC error code, if the node answered.
    pub fn code(&self) -> Option<i64> {
        match self {
            ClientError::Rpc { code, .. } => Some(*code),
            ClientError::Transport(_) => None,
        }
    }
}

/// A client bound to one endpoint, such as `http://127.0.0.1:9080/api/v3/public`.
pub struct RpcClient {
    url: String,
    http: Client<HttpConnector, Full<Bytes>>,
    id: AtomicU64,
}

impl RpcClient {
    /// A client for `url`.
    pub fn new(url: impl Into<String>) -> Self {
        let mut conn = HttpConnector::new();
        conn.set_nodelay(true);
        RpcClient {
            url: url.into(),
            http: Client::builder(TokioExecutor::new()).build(conn),
            id: AtomicU64::new(1),
        }
    }

    /// The endpoint.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Posts raw bytes with extra headers; returns the HTTP status and body.
    pub async fn post_raw(
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
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| ClientError::Transport(e.to_string()))?
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
                String::from_utf8_lossy(&bytes)
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
        v.get("result")
            .cloned()
            .ok_or_else(|| ClientError::Transport(format!("HTTP {status}: no result in {v}")))
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
