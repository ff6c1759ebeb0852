//! What an outsider tried against the node, one case per test: each gets a clear ICON error (or
//! is left out of blocks), and the node keeps answering and making blocks.

use nexus::client::{ClientError, RpcClient};
use nexus_proto::{Address, KeyPair, Transaction, TxData};
use nexus_tests::{balance, height, now_us, wait_height, TestNode, NID};
use serde_json::{json, Map, Value};

/// 42 bytes: `h`, the euro sign (3 bytes), 38 zeros. Sliced at byte 2 it splits a character.
const EURO_ADDRESS: &str = "h\u{20ac}00000000000000000000000000000000000000";

fn code_of(r: &Result<Value, ClientError>) -> Option<i64> {
    match r {
        Err(e) => e.code(),
        Ok(_) => None,
    }
}

fn message_of(r: &Result<Value, ClientError>) -> String {
    match r {
        Err(ClientError::Rpc { message, .. }) => message.clone(),
        other => format!("{other:?}"),
    }
}

async fn still_alive(rpc: &RpcClient) {
    let h = height(rpc).await;
    wait_height(rpc, h + 1).await;
}

#[tokio::test]
async fn a_multibyte_address_is_a_clear_error_everywhere() {
    let node = TestNode::start();
    let rpc = node.rpc();
    let cases = [
        ("icx_getBalance", json!({"address": EURO_ADDRESS})),
        ("icx_getScoreApi", json!({"address": EURO_ADDRESS})),
        (
            "icx_call",
            json!({"to": EURO_ADDRESS, "dataType": "call", "data": {"method": "name"}}),
        ),
        (
            "icx_call",
            json!({"from": EURO_ADDRESS, "to": node.init.token.to_string(), "dataType": "call",
                   "data": {"method": "name"}}),
        ),
    ];
    for (method, params) in cases {
        let r = rpc.call(method, params.clone()).await;
        assert_eq!(code_of(&r), Some(-32602), "{method} {params}: {r:?}");
        assert!(message_of(&r).contains("hx or cx"), "{r:?}");
    }
    // debug_estimateStep lives under /api/v3d.
    let debug = RpcClient::new(format!("{}/api/v3d/public", node.base));
    let r = debug
        .call(
            "debug_estimateStep",
            json!({"version": "0x3", "from": EURO_ADDRESS, "to": EURO_ADDRESS,
                   "timestamp": format!("{:#x}", now_us()), "nid": format!("{NID:#x}")}),
        )
        .await;
    assert_eq!(code_of(&r), Some(-32602), "{r:?}");
    // As a transaction's `from`.
    let k = node.funded_key();
    let mut params = Transaction {
        from: k.address(),
        to: Address::eoa([1; 20]),
        value: 1,
        step_limit: 100_000,
        timestamp: now_us(),
        nid: NID,
        nonce: None,
        data: TxData::None,
    }
    .sign(&k)
    .expect("sign")
    .raw;
    params.insert("from".into(), Value::String(EURO_ADDRESS.into()));
    let r = rpc.call("icx_sendTransaction", Value::Object(params)).await;
    assert_eq!(code_of(&r), Some(-32602), "{r:?}");
    still_alive(&rpc).await;
}

#[tokio::test]
async fn an_irc2_transfer_to_a_multibyte_address_fails_alone() {
    let node = TestNode::start();
    let rpc = node.rpc();
    let k = node.funded_key();
    let mut p = Map::new();
    p.insert("_to".into(), Value::String(EURO_ADDRESS.into()));
    p.insert("_value".into(), Value::String("0x1".into()));
    let st = Transaction {
        from: k.address(),
        to: node.init.token,
        value: 0,
        step_limit: 10_000_000,
        timestamp: now_us(),
        nid: NID,
        nonce: None,
        data: TxData::Call {
            method: "transfer".into(),
            params: p,
        },
    }
    .sign(&k)
    .expect("sign");
    rpc.call("icx_sendTransaction", Value::Object(st.raw.clone()))
        .await
        .expect("admitted: the call's params are the SCORE's to judge");
    let r = rpc
        .call(
            "icx_waitTransactionResult",
            json!({"txHash": st.hash.to_string()}),
        )
        .await
        .expect("a result, not a crashed leader");
    assert_eq!(r["status"], "0x0", "{r}");
    assert!(
        r["failure"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("_to"),
        "{r}"
    );
    still_alive(&rpc).await;
}

#[tokio::test]
async fn padded_and_out_of_range_numbers_are_refused() {
    let node = TestNode::start();
    let rpc = node.rpc();
    let padded = format!("0x{}1", "0".repeat(200_000));
    let r = rpc
        .call("icx_getBlockByHeight", json!({ "height": padded }))
        .await;
    assert_eq!(code_of(&r), Some(-32602), "{r:?}");
    assert!(message_of(&r).contains("height"), "{r:?}");
    assert!(message_of(&r).len() < 400, "the error echoes the input");
    let r = rpc
        .call(
            "icx_getVotesByHeight",
            json!({"height": "0xffffffffffffffff"}),
        )
        .await;
    assert_eq!(code_of(&r), Some(-31004), "{r:?}");
    let r = rpc
        .call(
            "icx_getBlockByHeight",
            json!({"height": "0x10000000000000000"}),
        )
        .await;
    assert_eq!(code_of(&r), Some(-32602), "{r:?}");
    // A transaction value with a leading zero: refused, naming the field.
    let k = node.funded_key();
    let mut params = Transaction {
        from: k.address(),
        to: Address::eoa([1; 20]),
        value: 1,
        step_limit: 100_000,
        timestamp: now_us(),
        nid: NID,
        nonce: None,
        data: TxData::None,
    }
    .sign(&k)
    .expect("sign")
    .raw;
    params.insert("value".into(), Value::String("0x01".into()));
    let r = rpc.call("icx_sendTransaction", Value::Object(params)).await;
    assert_eq!(code_of(&r), Some(-32602), "{r:?}");
    assert!(message_of(&r).contains("value"), "{r:?}");
    still_alive(&rpc).await;
}

#[tokio::test]
async fn a_huge_batch_is_refused_and_a_normal_one_served() {
    let node = TestNode::start();
    let rpc = node.rpc();
    let batch = |n: usize| {
        let calls: Vec<Value> = (0..n)
            .map(|i| json!({"jsonrpc": "2.0", "id": i, "method": "icx_getLastBlock"}))
            .collect();
        serde_json::to_vec(&calls).expect("batch")
    };
    let (_, body) = rpc
        .post_raw(&node.url(), batch(15_000), &[])
        .await
        .expect("answer");
    let v: Value = serde_json::from_slice(&body).expect("JSON");
    assert!(
        !v.is_array() && v["error"]["code"] == -32010,
        "a batch of 15,000 was served: {} bytes",
        body.len()
    );
    let (_, body) = rpc
        .post_raw(&node.url(), batch(100), &[])
        .await
        .expect("answer");
    let v: Value = serde_json::from_slice(&body).expect("JSON");
    assert_eq!(v.as_array().map(Vec::len), Some(100));
}

#[tokio::test]
async fn debug_methods_only_under_v3d_and_any_content_type_is_accepted() {
    let node = TestNode::start();
    let rpc = node.rpc();
    let r = rpc.call("debug_estimateStep", json!({})).await;
    assert_eq!(code_of(&r), Some(-32601), "{r:?}");
    // What icon-sdk-js sends, written by hand so that no other Content-Type rides along.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"icx_getLastBlock"}"#;
    let host = node.base.trim_start_matches("http://").to_string();
    let mut sock = tokio::net::TcpStream::connect(&host)
        .await
        .expect("connect");
    let req = format!(
        "POST /api/v3/public HTTP/1.1\r\nHost: {host}\r\nContent-Type: text/plain;charset=UTF-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    sock.write_all(req.as_bytes()).await.expect("send");
    let mut resp = String::new();
    sock.read_to_string(&mut resp).await.expect("read");
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    assert!(resp.contains("\"height\""), "{resp}");
}

#[tokio::test]
async fn wallets_fee_queries_are_answered() {
    let node = TestNode::start();
    let rpc = node.rpc();
    let q = |method: &str, params: Value| {
        let mut data = json!({ "method": method });
        if !params.is_null() {
            data["params"] = params;
        }
        json!({"to": Address::SYSTEM.to_string(), "dataType": "call", "data": data})
    };
    let price = rpc
        .call("icx_call", q("getStepPrice", Value::Null))
        .await
        .expect("getStepPrice");
    assert_eq!(price, "0x2e90edd00");
    let costs = rpc
        .call("icx_call", q("getStepCosts", Value::Null))
        .await
        .expect("getStepCosts");
    assert_eq!(costs["default"], "0x186a0");
    let max = rpc
        .call(
            "icx_call",
            q("getMaxStepLimit", json!({"contextType": "invoke"})),
        )
        .await
        .expect("getMaxStepLimit");
    assert_eq!(max, "0x9502f900");
    rpc.call("icx_call", q("getRevision", Value::Null))
        .await
        .expect("getRevision");
}

#[tokio::test]
async fn a_sender_cannot_overspend_with_waiting_transactions() {
    let node = TestNode::start();
    let rpc = node.rpc();
    let god = node.funded_key();
    let alice = KeyPair::generate();
    let fee = 100_000u128 * 12_500_000_000;
    let icx = 1_000_000_000_000_000_000u128;
    let fund =
        |to: Address, value: u128, nonce: u128| nexus_tests::transfer(&god, to, value, nonce);
    let st = fund(alice.address(), 2 * icx + 2 * fee, 1);
    rpc.call("icx_sendTransactionAndWait", Value::Object(st.raw))
        .await
        .expect("funded");
    // Each is affordable alone; together they are not.
    let spend = |nonce: u128| {
        Transaction {
            from: alice.address(),
            to: Address::eoa([2; 20]),
            value: 2 * icx,
            step_limit: 100_000,
            timestamp: now_us(),
            nid: NID,
            nonce: Some(nonce),
            data: TxData::None,
        }
        .sign(&alice)
        .expect("sign")
    };
    // Sixteen at once, each affordable alone: exactly one may wait in the pool.
    let mut sends = tokio::task::JoinSet::new();
    for nonce in 1..=16u128 {
        let body = Value::Object(spend(nonce).raw);
        let rpc = nexus::client::RpcClient::new(rpc.url());
        sends.spawn(async move { rpc.call("icx_sendTransaction", body).await });
    }
    let results: Vec<_> = sends.join_all().await;
    // The others are refused: while the first waits, its spend counts; once it is final, the
    // balance is gone.
    let refused = results
        .iter()
        .filter(|r| code_of(r) == Some(-30011))
        .count();
    let accepted = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!((accepted, refused), (1, 15), "{results:?}");
    let h = height(&rpc).await;
    wait_height(&rpc, h + 3).await;
    assert_eq!(balance(&rpc, &Address::eoa([2; 20])).await, 2 * icx);
    let total: u128 = balance(&rpc, &alice.address()).await;
    assert!(total <= fee, "alice kept {total}");
}

/// Whether the server closed `s` (EOF or reset), waiting at most 20 ms for a sign.
fn closed(mut s: &std::net::TcpStream) -> bool {
    use std::io::Read;
    s.set_read_timeout(Some(std::time::Duration::from_millis(20)))
        .expect("read timeout");
    let mut b = [0u8; 1];
    match s.read(&mut b) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => !matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_are_capped_and_then_closed() {
    // An outsider opens 300 connections to the RPC port and sends nothing on them.
    nexus::node::raise_open_files_limit();
    let node = TestNode::start_with(|c| {
        c.replace("max_connections = 1024", "max_connections = 64")
            .replace("idle_timeout_ms = 30000", "idle_timeout_ms = 2000")
    });
    let addr = node.base.trim_start_matches("http://").to_string();
    let held: Vec<std::net::TcpStream> = (0..300)
        .map(|_| std::net::TcpStream::connect(&addr).expect("connect"))
        .collect();
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let closed_at_once = held.iter().filter(|s| closed(s)).count();
    assert!(
        closed_at_once >= 300 - 64,
        "only {closed_at_once} of 300 connections past the 64 allowed were closed"
    );
    // Past the idle timeout every one of them is closed, and the node serves again.
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    let still_open = held.iter().filter(|s| !closed(s)).count();
    assert_eq!(
        still_open, 0,
        "connections that sent nothing for 2.5 s are still open"
    );
    still_alive(&node.rpc()).await;
}

/// The status line the server sent on `s` so far (empty if none within 300 ms).
fn status_of(mut s: &std::net::TcpStream) -> String {
    use std::io::Read;
    s.set_read_timeout(Some(std::time::Duration::from_millis(300)))
        .expect("read timeout");
    let mut b = [0u8; 4096];
    match s.read(&mut b) {
        Ok(n) => String::from_utf8_lossy(&b[..n])
            .lines()
            .next()
            .unwrap_or_default()
            .to_string(),
        Err(_) => String::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_that_never_finish_hold_a_bounded_budget() {
    // 20 clients each send the head of a 1,000,000-byte request and all but its last byte,
    // then stop. With a budget of 4 MiB in flight, four are read and the rest are turned away.
    use std::io::Write;
    let node = TestNode::start_with(|c| {
        c.replace(
            "max_bytes_in_flight = 67108864",
            "max_bytes_in_flight = 4194304",
        )
        .replace("idle_timeout_ms = 30000", "idle_timeout_ms = 3000")
    });
    let addr = node.base.trim_start_matches("http://").to_string();
    let head = "POST /api/v3 HTTP/1.1\r\nHost: n\r\nContent-Length: 1000000\r\n\r\n";
    let body = vec![b' '; 999_999];
    let held: Vec<std::net::TcpStream> = (0..20)
        .map(|_| {
            let mut s = std::net::TcpStream::connect(&addr).expect("connect");
            s.set_write_timeout(Some(std::time::Duration::from_secs(2)))
                .expect("write timeout");
            let _ = s.write_all(head.as_bytes());
            let _ = s.write_all(&body);
            s
        })
        .collect();
    let first: Vec<String> = held.iter().map(status_of).collect();
    let busy = first.iter().filter(|l| l.contains(" 503 ")).count();
    assert!(busy >= 16, "{busy} of 20 answered busy: {first:?}");
    // A small request still fits in what is left.
    still_alive(&node.rpc()).await;
    // The ones being read are answered 408 once their body is late by the idle timeout.
    tokio::time::sleep(std::time::Duration::from_millis(3500)).await;
    let late: Vec<String> = held.iter().map(status_of).collect();
    let timed_out = late.iter().filter(|l| l.contains(" 408 ")).count();
    assert_eq!(busy + timed_out, 20, "first {first:?}, then {late:?}");
}
