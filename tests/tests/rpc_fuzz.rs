//! 100,000 random and mutated JSON-RPC requests against an in-process node: every one gets an
//! answer that is not an internal error (no handler panicked or failed), no waiter is left
//! behind, and the node still answers and makes blocks afterwards.

use nexus::client::RpcClient;
use nexus::commands::devnet::{init, InitOptions};
use nexus::config::NodeConfig;
use nexus_proto::{Address, KeyPair, Transaction, TxData};
use nexus_tests::{now_us, NID};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Map, Value};

const REQUESTS: usize = 100_000;
const BATCH: usize = 250;

/// Values an attacker would try in place of any string.
fn hostile(rng: &mut StdRng) -> Value {
    let deep = (0..200).fold(json!(0), |v, _| json!([v]));
    let choices = [
        json!("h\u{20ac}00000000000000000000000000000000000000"),
        json!("hx\u{20ac}000000000000000000000000000000000000000"),
        json!(format!("0x{}1", "0".repeat(5_000))),
        json!("0xffffffffffffffff"),
        json!(format!("0x{}", "f".repeat(64))),
        json!(format!("0x{}", "f".repeat(65))),
        json!("-0x1"),
        json!("0x"),
        json!(""),
        json!("\u{0}\u{0}"),
        json!("\u{1f4a5}".repeat(21)),
        json!(format!("0x{}", "ab".repeat(32))),
        json!(format!("0x{}", "ab".repeat(33))),
        json!(u64::MAX),
        json!(-1),
        json!(1e300),
        json!(null),
        json!(true),
        json!({}),
        json!([]),
        deep,
        json!({"method": "transfer", "params": {"_to": "h\u{20ac}00000000000000000000000000000000000000"}}),
    ];
    choices[rng.gen_range(0..choices.len())].clone()
}

fn templates(token: Address, key: &KeyPair) -> Vec<(&'static str, Value)> {
    let tx = Transaction {
        from: key.address(),
        to: Address::eoa([3; 20]),
        value: 1,
        step_limit: 100_000,
        timestamp: now_us(),
        nid: NID,
        nonce: Some(1),
        data: TxData::None,
    }
    .sign(key)
    .expect("sign");
    let h = format!("0x{}", "cd".repeat(32));
    vec![
        ("icx_getLastBlock", Value::Null),
        ("icx_getBlockByHeight", json!({"height": "0x1"})),
        ("icx_getBlockByHash", json!({"hash": h})),
        ("icx_getBlockHeaderByHeight", json!({"height": "0x0"})),
        ("icx_getVotesByHeight", json!({"height": "0x0"})),
        ("icx_getDataByHash", json!({"hash": h})),
        (
            "icx_getBalance",
            json!({"address": key.address().to_string()}),
        ),
        ("icx_getTotalSupply", Value::Null),
        ("icx_getScoreApi", json!({"address": token.to_string()})),
        ("icx_getScoreStatus", json!({"address": token.to_string()})),
        (
            "icx_call",
            json!({"to": token.to_string(), "dataType": "call",
                   "data": {"method": "balanceOf", "params": {"_owner": key.address().to_string()}}}),
        ),
        (
            "icx_call",
            json!({"to": Address::SYSTEM.to_string(), "dataType": "call",
                   "data": {"method": "getMaxStepLimit", "params": {"contextType": "invoke"}}}),
        ),
        ("icx_getTransactionResult", json!({"txHash": h})),
        ("icx_getTransactionByHash", json!({"txHash": h})),
        ("icx_sendTransaction", Value::Object(tx.raw.clone())),
        ("icx_waitTransactionResult", json!({"txHash": h})),
        ("icx_getProofForResult", json!({"hash": h, "index": "0x0"})),
        (
            "icx_getProofForEvents",
            json!({"hash": h, "index": "0x0", "events": ["0x0"]}),
        ),
        ("icx_getNetworkInfo", Value::Null),
        ("debug_estimateStep", json!({"version": "0x3"})),
        ("icx_noSuchMethod", Value::Null),
    ]
}

/// Replaces one value somewhere in `v` (or a key, or the whole) with a hostile one.
fn mutate(v: &mut Value, rng: &mut StdRng) {
    match v {
        Value::Object(m) if !m.is_empty() && rng.gen_bool(0.85) => {
            let keys: Vec<String> = m.keys().cloned().collect();
            let k = &keys[rng.gen_range(0..keys.len())];
            match rng.gen_range(0..4) {
                0 => {
                    m.remove(k);
                }
                1 => {
                    let val = m.remove(k).unwrap_or(Value::Null);
                    m.insert(format!("{k}\u{20ac}"), val);
                }
                _ => {
                    if let Some(inner) = m.get_mut(k) {
                        mutate(inner, rng);
                    }
                }
            }
        }
        Value::Array(a) if !a.is_empty() && rng.gen_bool(0.8) => {
            let i = rng.gen_range(0..a.len());
            mutate(&mut a[i], rng);
        }
        _ => *v = hostile(rng),
    }
}

fn request(id: usize, rng: &mut StdRng, templates: &[(&'static str, Value)]) -> Value {
    let (method, params) = &templates[rng.gen_range(0..templates.len())];
    let mut params = params.clone();
    for _ in 0..rng.gen_range(1..=3) {
        mutate(&mut params, rng);
    }
    let mut req = Map::new();
    req.insert("jsonrpc".into(), json!("2.0"));
    req.insert("id".into(), json!(id));
    req.insert("method".into(), json!(method));
    if !params.is_null() || rng.gen_bool(0.1) {
        req.insert("params".into(), params);
    }
    if rng.gen_bool(0.02) {
        req.insert("jsonrpc".into(), hostile(rng));
    }
    Value::Object(req)
}

/// Internal errors in a response (a batch or one answer).
fn internal_errors(body: &[u8]) -> Vec<String> {
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return vec![format!("not JSON: {}", String::from_utf8_lossy(body))];
    };
    let items = match v {
        Value::Array(a) => a,
        one => vec![one],
    };
    items
        .into_iter()
        .filter(|i| i["error"]["code"] == -32603)
        .map(|i| i.to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_thousand_hostile_requests_leave_the_node_answering() {
    let dir = tempfile::tempdir().expect("tempdir");
    let listen = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    let out = init(
        dir.path(),
        &InitOptions {
            nid: NID,
            listen,
            ..InitOptions::default()
        },
    )
    .expect("init");
    let mut cfg = NodeConfig::load(&out.config).expect("config");
    cfg.block.empty_block_interval_ms = 100;
    cfg.rpc.default_wait_timeout_ms = 200;
    cfg.rpc.max_wait_timeout_ms = 500;
    cfg.rpc.request_timeout_ms = 10_000;
    let node = nexus::node::start(&cfg).await.expect("node");
    let base = format!("http://{}", node.rpc_addr);
    let url = format!("{base}/api/v3/public");
    let debug_url = format!("{base}/api/v3d/public");
    let client = RpcClient::new(url.clone());
    let key = nexus::keystore::load(&out.funded_keystore, &out.funded_password).expect("key");
    let templates = templates(out.token, &key);
    let mut rng = StdRng::seed_from_u64(0x006e_6578_7573);
    let mut sent = 0usize;
    let mut failures = Vec::new();
    let mut batch_no = 0usize;
    while sent < REQUESTS {
        batch_no += 1;
        let target = if batch_no.is_multiple_of(5) {
            &debug_url
        } else {
            &url
        };
        let body = if batch_no.is_multiple_of(50) {
            // A raw body with flipped and cut bytes.
            let mut b = serde_json::to_vec(&request(sent, &mut rng, &templates)).expect("json");
            for _ in 0..rng.gen_range(1..8) {
                let i = rng.gen_range(0..b.len());
                b[i] = rng.gen();
            }
            b.truncate(rng.gen_range(1..=b.len()));
            sent += 1;
            b
        } else {
            let n = BATCH.min(REQUESTS - sent);
            let items: Vec<Value> = (0..n)
                .map(|i| request(sent + i, &mut rng, &templates))
                .collect();
            sent += n;
            serde_json::to_vec(&items).expect("json")
        };
        let (status, resp) = client
            .post_raw(target, body, &[])
            .await
            .unwrap_or_else(|e| panic!("batch {batch_no}: no answer: {e}"));
        assert!(
            status < 500 || status == 503,
            "batch {batch_no}: HTTP {status}"
        );
        failures.extend(internal_errors(&resp));
    }
    assert!(
        failures.is_empty(),
        "{} internal errors, first: {}",
        failures.len(),
        failures[0]
    );
    let h = node.chain.head().header.height;
    let last = client
        .call("icx_getLastBlock", Value::Null)
        .await
        .expect("still answers");
    assert!(last["height"].as_u64().is_some(), "{last}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while node.chain.head().header.height <= h {
        assert!(
            std::time::Instant::now() < deadline,
            "no block after the fuzz"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(node.chain.waiting(), 0, "waiters left behind");
    node.stop().await.expect("stop");
}
