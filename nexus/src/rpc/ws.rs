//! goloop-style WebSocket monitors: `/api/v3/<channel>/block` and `/api/v3/<channel>/event`.
//!
//! The client sends one JSON request (`{"height": "0x..", "event": ..., "addr": ..., "indexed":
//! [...], "data": [...]}` or `"eventFilters": [...]`); the server answers `{"code": 0}` (or a
//! non-zero code and a message, then closes) and then streams one notification per block
//! (`{"hash", "height"}`, plus `indexes`/`events` when filters are given) or per transaction
//! with matching events (`{"hash", "height", "index", "events"}`, plus `logs` on request).
//! Client messages after the request (keepalives) are read and ignored.
//!
//! Bounds: the request must come within 30 s and fit in 64 KiB; the server pings every 30 s and
//! closes a monitor whose client sent nothing (not even a pong) for `rpc.monitor_idle_timeout_ms`
//! or that does not take a notification within 10 s; at most `rpc.max_monitors` are open.

use super::shapes;
use crate::ledger::chain::Chain;
use futures::{SinkExt, StreamExt};
use hyper_util::rt::TokioIo;
use jsonrpsee::server::{HttpBody, HttpResponse};
use nexus_proto::receipt::EventLog;
use nexus_proto::value::{format_int, parse_u64};
use nexus_proto::Address;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use tokio_tungstenite::tungstenite::{
    handshake::derive_accept_key, protocol::Role, protocol::WebSocketConfig, Message,
};
use tokio_tungstenite::WebSocketStream;

/// Most filters in one request.
const MAX_FILTERS: usize = 16;

#[derive(Debug, Clone)]
struct EventFilter {
    event: String,
    addr: Option<Address>,
    indexed: Vec<Option<String>>,
    data: Vec<Option<String>>,
}

impl EventFilter {
    fn parse(v: &Value) -> Result<Self, String> {
        let event = v["event"].as_str().ok_or(
            "event: expected an event signature such as Transfer(Address,Address,int,bytes)",
        )?;
        let addr = match &v["addr"] {
            Value::Null => None,
            Value::String(s) => Some(Address::parse("addr", s).map_err(|e| e.to_string())?),
            other => return Err(format!("addr: expected a cx address, got {other}")),
        };
        let list = |key: &str| -> Result<Vec<Option<String>>, String> {
            match &v[key] {
                Value::Null => Ok(vec![]),
                Value::Array(a) if a.len() <= 16 => a
                    .iter()
                    .map(|x| match x {
                        Value::Null => Ok(None),
                        Value::String(s) => Ok(Some(s.clone())),
                        other => Err(format!("{key}: expected strings or null, got {other}")),
                    })
                    .collect(),
                other => Err(format!(
                    "{key}: expected a list of at most 16 values, got {other}"
                )),
            }
        };
        Ok(EventFilter {
            event: event.to_string(),
            addr,
            indexed: list("indexed")?,
            data: list("data")?,
        })
    }

    fn matches(&self, e: &EventLog) -> bool {
        e.indexed.first() == Some(&self.event)
            && self.addr.is_none_or(|a| a == e.score_address)
            && self
                .indexed
                .iter()
                .enumerate()
                .all(|(i, f)| f.as_ref().is_none_or(|f| e.indexed.get(i + 1) == Some(f)))
            && self
                .data
                .iter()
                .enumerate()
                .all(|(i, f)| f.as_ref().is_none_or(|f| e.data.get(i) == Some(f)))
    }
}

struct Request {
    height: Option<u64>,
    filters: Vec<EventFilter>,
    logs: bool,
}

fn parse_request(text: &str, events: bool) -> Result<Request, String> {
    let v: Value = serde_json::from_str(text).map_err(|e| format!("request: {e}"))?;
    if !v.is_object() {
        return Err("request: expected an object".into());
    }
    let height = match &v["height"] {
        Value::Null => None,
        Value::String(s) => Some(parse_u64("height", s).map_err(|e| e.to_string())?),
        other => {
            return Err(format!(
                "height: expected a 0x-prefixed hex integer, got {other}"
            ))
        }
    };
    let mut filters = Vec::new();
    if !v["event"].is_null() {
        filters.push(EventFilter::parse(&v)?);
    }
    if let Some(list) = v["eventFilters"].as_array() {
        if list.len() > MAX_FILTERS {
            return Err(format!("eventFilters: at most {MAX_FILTERS}"));
        }
        for f in list {
            filters.push(EventFilter::parse(f)?);
        }
    }
    if events && filters.is_empty() {
        return Err("an event monitor needs an event filter".into());
    }
    let logs =
        matches!(&v["logs"], Value::String(s) if s == "0x1") || v["logs"] == Value::Bool(true);
    Ok(Request {
        height,
        filters,
        logs,
    })
}

/// Accepts a WebSocket upgrade and runs a monitor on it.
pub(super) fn upgrade(
    mut req: http::Request<hyper::body::Incoming>,
    chain: Arc<Chain>,
    events: bool,
    idle: Duration,
    permit: tokio::sync::OwnedSemaphorePermit,
) -> HttpResponse {
    let key = req
        .headers()
        .get("sec-websocket-key")
        .map(|k| derive_accept_key(k.as_bytes()));
    let is_upgrade = req
        .headers()
        .get(http::header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    let Some(accept) = key.filter(|_| is_upgrade) else {
        let mut r = HttpResponse::new(HttpBody::from("expected a WebSocket upgrade request"));
        *r.status_mut() = http::StatusCode::BAD_REQUEST;
        return r;
    };
    let on_upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(up) => {
                let cfg = WebSocketConfig {
                    max_message_size: Some(64 * 1024),
                    max_frame_size: Some(64 * 1024),
                    ..WebSocketConfig::default()
                };
                let ws =
                    WebSocketStream::from_raw_socket(TokioIo::new(up), Role::Server, Some(cfg))
                        .await;
                monitor(ws, chain, events, idle).await;
                drop(permit);
            }
            Err(e) => tracing::debug!(%e, "websocket upgrade failed"),
        }
    });
    let mut r = HttpResponse::new(HttpBody::from(""));
    *r.status_mut() = http::StatusCode::SWITCHING_PROTOCOLS;
    let h = r.headers_mut();
    h.insert(
        http::header::UPGRADE,
        http::HeaderValue::from_static("websocket"),
    );
    h.insert(
        http::header::CONNECTION,
        http::HeaderValue::from_static("Upgrade"),
    );
    if let Ok(v) = http::HeaderValue::from_str(&accept) {
        h.insert(http::header::SEC_WEBSOCKET_ACCEPT, v);
    }
    r
}

type Ws = WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>;

/// Longest a client may take to accept one notification.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the server pings an open monitor.
const PING_EVERY: Duration = Duration::from_secs(30);

async fn send(tx: &mut futures::stream::SplitSink<Ws, Message>, m: Message) -> Result<(), ()> {
    match tokio::time::timeout(SEND_TIMEOUT, tx.send(m)).await {
        Ok(Ok(())) => Ok(()),
        _ => Err(()),
    }
}

async fn monitor(ws: Ws, chain: Arc<Chain>, events: bool, idle: Duration) {
    let (mut tx, mut rx) = ws.split();
    let first = tokio::time::timeout(Duration::from_secs(30), rx.next()).await;
    let text = match first {
        Ok(Some(Ok(Message::Text(t)))) => t,
        _ => return,
    };
    let req = match parse_request(&text, events) {
        Ok(r) => r,
        Err(message) => {
            let _ = send(
                &mut tx,
                Message::Text(json!({"code": -32602, "message": message}).to_string()),
            )
            .await;
            let _ = tx.close().await;
            return;
        }
    };
    if send(
        &mut tx,
        Message::Text(json!({"code": 0, "message": ""}).to_string()),
    )
    .await
    .is_err()
    {
        return;
    }
    let mut sub = chain.subscribe();
    let mut next = req
        .height
        .unwrap_or(chain.head().header.height.saturating_add(1));
    let mut heard = tokio::time::Instant::now();
    let mut ping = tokio::time::interval(PING_EVERY.min(idle / 3).max(Duration::from_millis(100)));
    ping.tick().await;
    loop {
        while next <= chain.head().header.height {
            let Ok(notes) = notifications(&chain, next, &req, events) else {
                return;
            };
            for n in notes {
                if send(&mut tx, Message::Text(n.to_string())).await.is_err() {
                    return;
                }
            }
            next += 1;
        }
        tokio::select! {
            r = sub.recv() => if let Err(tokio::sync::broadcast::error::RecvError::Closed) = r { return },
            m = rx.next() => match m {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                Some(Ok(_)) => heard = tokio::time::Instant::now(),
            },
            _ = ping.tick() => {
                if heard.elapsed() > idle {
                    tracing::debug!("closing an idle monitor");
                    let _ = tx.close().await;
                    return;
                }
                if send(&mut tx, Message::Ping(Vec::new())).await.is_err() {
                    return;
                }
            }
        }
    }
}

fn notifications(
    chain: &Chain,
    height: u64,
    req: &Request,
    events: bool,
) -> Result<Vec<Value>, crate::error::NodeError> {
    let Some(block) = chain.block_by_height(height)? else {
        return Ok(vec![]);
    };
    let hash = block.hash().to_string();
    let h = format_int(height);
    if req.filters.is_empty() {
        return Ok(vec![json!({"hash": hash, "height": h})]);
    }
    let receipts = chain.receipts_of(&block)?;
    if events {
        let mut out = Vec::new();
        for (i, r) in receipts.iter().enumerate() {
            let hits: Vec<usize> = r
                .event_logs
                .iter()
                .enumerate()
                .filter(|(_, e)| req.filters.iter().any(|f| f.matches(e)))
                .map(|(j, _)| j)
                .collect();
            if hits.is_empty() {
                continue;
            }
            let mut n = json!({"hash": hash, "height": h, "index": format_int(i as u64),
                "events": hits.iter().map(|j| format_int(*j as u64)).collect::<Vec<_>>()});
            if req.logs {
                n["logs"] = Value::Array(
                    hits.iter()
                        .map(|j| shapes::event_log(&r.event_logs[*j]))
                        .collect(),
                );
            }
            out.push(n);
        }
        return Ok(out);
    }
    let mut indexes = Vec::new();
    let mut event_idx = Vec::new();
    for f in &req.filters {
        let mut txs = Vec::new();
        let mut evs = Vec::new();
        for (i, r) in receipts.iter().enumerate() {
            let hits: Vec<String> = r
                .event_logs
                .iter()
                .enumerate()
                .filter(|(_, e)| f.matches(e))
                .map(|(j, _)| format_int(j as u64))
                .collect();
            if !hits.is_empty() {
                txs.push(format_int(i as u64));
                evs.push(hits);
            }
        }
        indexes.push(txs);
        event_idx.push(evs);
    }
    if indexes.iter().all(|t| t.is_empty()) {
        return Ok(vec![]);
    }
    Ok(vec![
        json!({"hash": hash, "height": h, "indexes": indexes, "events": event_idx}),
    ])
}
