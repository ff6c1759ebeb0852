//! A chain endpoint that hangs, answers without end, or answers garbage costs a portal a bounded
//! wait and bounded memory, and a channel's next URL takes over from a frozen one. The
//! endpoints here are real HTTP servers on 127.0.0.1 that misbehave on purpose.

use alloy::providers::{Provider, ProviderBuilder};
use nexus_client::eth_transport::BoundedHttp;
use nexus_client::rpc::{ClientError, Limits, RpcClient};
use nexus_portal::endpoint::Endpoint;
use serde_json::{json, Value};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// How a fake endpoint answers every request.
#[derive(Clone)]
enum Behaviour {
    /// Reads the request and never answers.
    Silent,
    /// Answers 200 with a chunked body that never ends.
    Endless,
    /// Answers 200 with this many bytes that are not JSON.
    Garbage(usize),
    /// Answers JSON-RPC with this result, under the request's id.
    Result(Value),
}

/// Reads one HTTP request (head and `Content-Length` body); `None` when the client closed.
async fn read_request(s: &mut TcpStream) -> Option<Vec<u8>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            if buf.len() >= end + 4 + len {
                return Some(buf[end + 4..end + 4 + len].to_vec());
            }
        }
        let n = s.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

async fn serve(mut s: TcpStream, how: Behaviour) {
    while let Some(body) = read_request(&mut s).await {
        match &how {
            Behaviour::Silent => {
                tokio::time::sleep(Duration::from_secs(3600)).await;
            }
            Behaviour::Endless => {
                let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";
                if s.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                let chunk = format!("10000\r\n{}\r\n", "7".repeat(0x10000));
                while s.write_all(chunk.as_bytes()).await.is_ok() {}
                return;
            }
            Behaviour::Garbage(n) => {
                let text = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {n}\r\n\r\n{}",
                    "x".repeat(*n)
                );
                if s.write_all(text.as_bytes()).await.is_err() {
                    return;
                }
            }
            Behaviour::Result(result) => {
                let id = serde_json::from_slice::<Value>(&body)
                    .ok()
                    .map(|r| r["id"].clone())
                    .unwrap_or(Value::Null);
                let answer = json!({"jsonrpc": "2.0", "id": id, "result": result}).to_string();
                let text = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{answer}",
                    answer.len()
                );
                if s.write_all(text.as_bytes()).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// Starts a fake endpoint; its URL.
async fn fake(how: Behaviour) -> String {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("address");
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            tokio::spawn(serve(s, how.clone()));
        }
    });
    format!("http://{addr}/api/v3/icon_dex")
}

fn limits(timeout_ms: u64, max_response_bytes: usize) -> Limits {
    Limits {
        timeout: Duration::from_millis(timeout_ms),
        max_response_bytes,
    }
}

#[tokio::test]
async fn a_silent_endpoint_fails_at_the_timeout() {
    let rpc = RpcClient::with_limits(fake(Behaviour::Silent).await, limits(300, 1 << 20));
    let e = rpc.call("icx_getLastBlock", Value::Null).await.unwrap_err();
    assert!(
        matches!(e, ClientError::Timeout { after, .. } if after == Duration::from_millis(300)),
        "{e:?}"
    );
    assert!(e.is_unanswered());
    assert!(e.to_string().contains("no whole answer"), "{e}");
}

#[tokio::test]
async fn an_endless_answer_stops_at_the_size_limit() {
    // The timeout is far away: only the size limit can end this call.
    let rpc = RpcClient::with_limits(fake(Behaviour::Endless).await, limits(60_000, 1 << 20));
    let e = rpc.call("icx_getLastBlock", Value::Null).await.unwrap_err();
    assert!(
        matches!(e, ClientError::TooLarge { limit, .. } if limit == 1 << 20),
        "{e:?}"
    );
    assert!(e.is_unanswered());
}

#[tokio::test]
async fn an_answer_under_the_limit_is_read_whole() {
    let big = "z".repeat(900 << 10);
    let rpc = RpcClient::with_limits(
        fake(Behaviour::Result(json!({ "height": 7, "pad": big }))).await,
        limits(10_000, 1 << 20),
    );
    let v = rpc
        .call("icx_getLastBlock", Value::Null)
        .await
        .expect("answer");
    assert_eq!(v["height"], 7);
    assert_eq!(v["pad"].as_str().map(str::len), Some(900 << 10));
}

#[tokio::test]
async fn an_answer_that_is_not_json_is_quoted_short() {
    let rpc = RpcClient::with_limits(
        fake(Behaviour::Garbage(500_000)).await,
        limits(10_000, 1 << 20),
    );
    let e = rpc.call("icx_getLastBlock", Value::Null).await.unwrap_err();
    let text = e.to_string();
    assert!(matches!(e, ClientError::Transport(_)), "{e:?}");
    assert!(text.contains("not JSON"), "{text}");
    assert!(text.contains("(500000 bytes)"), "{text}");
    assert!(text.len() < 1000, "the error quotes {} bytes", text.len());
}

#[tokio::test]
async fn an_rpc_error_is_not_a_reason_to_change_urls() {
    let e = ClientError::Rpc {
        code: -32000,
        message: "refused".into(),
        data: None,
        status: 400,
    };
    assert!(!e.is_unanswered());
}

#[tokio::test]
async fn the_portal_moves_past_a_frozen_url_to_the_next() {
    let frozen = fake(Behaviour::Silent).await;
    let good = fake(Behaviour::Result(json!({ "height": 7 }))).await;
    let ep = Endpoint::with_backups(&frozen, std::slice::from_ref(&good), limits(300, 1 << 20));
    assert_eq!(ep.last_height().await.expect("the backup answers"), 7);
    assert_eq!(ep.url(), good, "later calls go to the URL that answered");
    assert_eq!(ep.last_height().await.expect("again"), 7);
}

#[tokio::test]
async fn the_portal_moves_past_an_endless_url_to_the_next() {
    let endless = fake(Behaviour::Endless).await;
    let good = fake(Behaviour::Result(json!({ "height": 9 }))).await;
    let ep = Endpoint::with_backups(&endless, &[good], limits(60_000, 1 << 20));
    assert_eq!(ep.last_height().await.expect("the backup answers"), 9);
}

#[tokio::test]
async fn ethereum_calls_keep_to_the_same_limits() {
    let good = fake(Behaviour::Result(json!("0x2a"))).await;
    let p =
        ProviderBuilder::new().connect_client(BoundedHttp::client(&good, limits(10_000, 1 << 20)));
    assert_eq!(p.get_block_number().await.expect("block number"), 42);

    let endless = fake(Behaviour::Endless).await;
    let p = ProviderBuilder::new()
        .connect_client(BoundedHttp::client(&endless, limits(60_000, 1 << 20)));
    let e = p.get_block_number().await.unwrap_err().to_string();
    assert!(e.contains("longer than 1048576 bytes"), "{e}");

    let silent = fake(Behaviour::Silent).await;
    let p =
        ProviderBuilder::new().connect_client(BoundedHttp::client(&silent, limits(300, 1 << 20)));
    let e = p.get_block_number().await.unwrap_err().to_string();
    assert!(e.contains("no whole answer"), "{e}");

    let garbage = fake(Behaviour::Garbage(300_000)).await;
    let p = ProviderBuilder::new()
        .connect_client(BoundedHttp::client(&garbage, limits(10_000, 1 << 20)));
    let e = p.get_block_number().await.unwrap_err().to_string();
    assert!(e.len() < 1000, "the error quotes {} bytes", e.len());
}
