//! Bad input gets a clear ICON error and changes nothing: one test per kind of bad input.

use nexus::client::{ClientError, RpcClient};
use nexus_proto::{Address, KeyPair, Signature, Transaction, TxData};
use nexus_tests::{balance, height, now_us, transfer, wait_height, TestNode, NID};
use serde_json::{json, Value};

/// Balances of the funded account and `to`, and the total supply.
async fn snapshot(rpc: &RpcClient, from: &Address, to: &Address) -> (u128, u128, Value) {
    let supply = rpc
        .call("icx_getTotalSupply", Value::Null)
        .await
        .expect("supply");
    (balance(rpc, from).await, balance(rpc, to).await, supply)
}

/// Asserts an ICON error with `code` whose message contains `needle`.
fn expect_error(r: Result<Value, ClientError>, code: i64, needle: &str) {
    match r {
        Err(ClientError::Rpc {
            code: c,
            message,
            status,
            ..
        }) => {
            assert_eq!(c, code, "code for {message:?}");
            assert!(
                message.contains(needle),
                "message {message:?} lacks {needle:?}"
            );
            assert!(status >= 400, "HTTP status {status} for an error");
        }
        other => panic!("expected error {code}, got {other:?}"),
    }
}

/// Sends `params`, expects the error, then checks that a later block changed nothing and that
/// the transaction is unknown.
async fn rejected(node: &TestNode, params: Value, code: i64, needle: &str) {
    let rpc = node.rpc();
    let from = node.init.funded;
    let to = Address::eoa([9; 20]);
    let before = snapshot(&rpc, &from, &to).await;
    let hash = nexus_proto::serialize::tx_hash(params.as_object().expect("object")).ok();
    expect_error(rpc.call("icx_sendTransaction", params).await, code, needle);
    let h = height(&rpc).await;
    wait_height(&rpc, h + 2).await;
    assert_eq!(
        snapshot(&rpc, &from, &to).await,
        before,
        "state changed after a rejected transaction"
    );
    if let Some(hash) = hash {
        expect_error(
            rpc.call(
                "icx_getTransactionResult",
                json!({"txHash": hash.to_string()}),
            )
            .await,
            -31004,
            "no transaction",
        );
    }
}

fn signed(key: &KeyPair, tx: Transaction) -> Value {
    Value::Object(tx.sign(key).expect("sign").raw)
}

fn base_tx(key: &KeyPair) -> Transaction {
    Transaction {
        from: key.address(),
        to: Address::eoa([9; 20]),
        value: 1000,
        step_limit: 100_000,
        timestamp: now_us(),
        nid: NID,
        nonce: None,
        data: TxData::None,
    }
}

#[tokio::test]
async fn malformed_json_is_a_parse_error() {
    let node = TestNode::start();
    let rpc = node.rpc();
    let (status, body) = rpc
        .post_raw(
            &node.url(),
            br#"{"jsonrpc":"2.0","id":1,"method":"icx_sendTransaction","params":{"#.to_vec(),
            &[],
        )
        .await
        .expect("answer");
    let v: Value = serde_json::from_slice(&body).expect("JSON error body");
    assert_eq!(v["error"]["code"], -32700, "{v}");
    assert_eq!(status, 400);
    // The node still answers after the garbage.
    let _ = height(&rpc).await;
}

#[tokio::test]
async fn unknown_method_is_method_not_found() {
    let node = TestNode::start();
    expect_error(
        node.rpc().call("icx_getNothing", Value::Null).await,
        -32601,
        "not found",
    );
    expect_error(
        node.rpc()
            .call("icx_getBalance", json!({"address": "hx12"}))
            .await,
        -32602,
        "address",
    );
}

#[tokio::test]
async fn wrong_nid_is_refused() {
    let node = TestNode::start();
    let k = node.funded_key();
    let mut tx = base_tx(&k);
    tx.nid = NID + 1;
    rejected(
        &node,
        signed(&k, tx),
        -32602,
        "nid 0x4 does not match this network's nid 0x3",
    )
    .await;
}

#[tokio::test]
async fn bad_signature_is_refused() {
    let node = TestNode::start();
    let k = node.funded_key();
    let mut v = signed(&k, base_tx(&k));
    let mut raw = Signature::from_base64(v["signature"].as_str().expect("sig"))
        .expect("sig")
        .0;
    raw[10] ^= 0xff;
    v["signature"] = Value::String(Signature(raw).to_base64());
    rejected(&node, v.clone(), -32602, "signature").await;
    v["signature"] = Value::String("not base64!".into());
    rejected(&node, v, -32602, "signature").await;
}

#[tokio::test]
async fn signature_by_another_key_is_refused() {
    let node = TestNode::start();
    let k = node.funded_key();
    let mallory = KeyPair::generate();
    rejected(&node, signed(&mallory, base_tx(&k)), -32602, "signed by").await;
}

#[tokio::test]
async fn replayed_transaction_is_refused_and_applied_once() {
    let node = TestNode::start();
    let rpc = node.rpc();
    let k = node.funded_key();
    let to = Address::eoa([7; 20]);
    let st = transfer(&k, to, 1234, 1);
    let params = Value::Object(st.raw.clone());
    rpc.call("icx_sendTransaction", params.clone())
        .await
        .expect("first copy");
    // While the first copy is pending or executing.
    expect_error(
        rpc.call("icx_sendTransaction", params.clone()).await,
        -32602,
        "duplicate",
    );
    let r = rpc
        .call(
            "icx_waitTransactionResult",
            json!({"txHash": st.hash.to_string()}),
        )
        .await
        .expect("result");
    assert_eq!(r["status"], "0x1");
    // After it is committed.
    expect_error(
        rpc.call("icx_sendTransaction", params.clone()).await,
        -32602,
        "duplicate",
    );
    let h = height(&rpc).await;
    wait_height(&rpc, h + 2).await;
    assert_eq!(balance(&rpc, &to).await, 1234, "applied exactly once");
}

#[tokio::test]
async fn timestamp_outside_the_window_is_refused() {
    let node = TestNode::start();
    let k = node.funded_key();
    let mut tx = base_tx(&k);
    tx.timestamp = now_us() - 6 * 60 * 1_000_000;
    rejected(&node, signed(&k, tx.clone()), -32602, "outside the window").await;
    tx.timestamp = now_us() + 6 * 60 * 1_000_000;
    rejected(&node, signed(&k, tx), -32602, "outside the window").await;
}

#[tokio::test]
async fn insufficient_balance_is_refused() {
    let node = TestNode::start();
    let pauper = KeyPair::generate();
    rejected(
        &node,
        signed(&pauper, base_tx(&pauper)),
        -30011,
        "out of balance",
    )
    .await;
    let k = node.funded_key();
    let mut tx = base_tx(&k);
    tx.value = u128::MAX / 2;
    rejected(&node, signed(&k, tx), -30011, "out of balance").await;
}

#[tokio::test]
async fn step_limit_too_low_is_refused() {
    let node = TestNode::start();
    let k = node.funded_key();
    let mut tx = base_tx(&k);
    tx.step_limit = 50_000;
    rejected(
        &node,
        signed(&k, tx),
        -32602,
        "stepLimit 0xc350 is below the 0x186a0 steps",
    )
    .await;
}

#[tokio::test]
async fn oversized_request_is_refused() {
    let node = TestNode::start();
    let rpc = node.rpc();
    let k = node.funded_key();
    let mut tx = base_tx(&k);
    tx.data = TxData::Message(vec![0x41; 600 * 1024]);
    tx.step_limit = 10_000_000_000;
    let body = serde_json::to_vec(&json!({"jsonrpc": "2.0", "id": 1, "method": "icx_sendTransaction", "params": signed(&k, tx)}))
        .expect("body");
    assert!(body.len() > 1024 * 1024);
    let before = balance(&rpc, &node.init.funded).await;
    let (status, resp) = rpc.post_raw(&node.url(), body, &[]).await.expect("answer");
    let v: Value = serde_json::from_slice(&resp).expect("JSON error body");
    assert_eq!(status, 413, "{v}");
    assert_eq!(v["error"]["code"], -32600, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("exceeds the limit"),
        "{v}"
    );
    let h = height(&rpc).await;
    wait_height(&rpc, h + 2).await;
    assert_eq!(balance(&rpc, &node.init.funded).await, before);
}

#[tokio::test]
async fn wait_times_out_with_the_hash_as_data() {
    let node = TestNode::start();
    let rpc = node.rpc();
    let unknown = format!("0x{}", "ab".repeat(32));
    expect_error(
        rpc.call("icx_waitTransactionResult", json!({"txHash": unknown}))
            .await,
        -31004,
        "no transaction",
    );
    let metrics = rpc
        .post_raw(&format!("{}/metrics", node.base), vec![], &[])
        .await
        .expect("metrics")
        .1;
    let text = String::from_utf8_lossy(&metrics);
    assert!(
        text.contains("nexus_block_height{channel=\"public\"}"),
        "{text}"
    );
    assert!(
        text.contains("nexus_rpc_latency_seconds_count{method=\"icx_waitTransactionResult\"}"),
        "{text}"
    );
}
