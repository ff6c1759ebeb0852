//! A node whose blocks take transactions more slowly than senders send them makes
//! `icx_sendTransaction` wait for room instead of queueing without bound, and loses nothing.

use nexus::client::RpcClient;
use nexus_proto::Address;
use nexus_tests::{balance, transfer, TestNode};
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn senders_wait_while_the_node_is_behind_and_every_transfer_lands() {
    let mut node = TestNode::start();
    node.kill9();
    // Blocks of two transfers, and room for four waiting ones: sixteen senders at once are
    // always ahead of the blocks.
    let cfg = std::fs::read_to_string(&node.init.config).expect("config");
    let slow = cfg
        .replace("max_txs = 5000", "max_txs = 2")
        .replace("backlog_ms = 50", "backlog_ms = 1")
        .replace("backlog_min_txs = 200", "backlog_min_txs = 4");
    for line in ["max_txs = 2", "backlog_ms = 1", "backlog_min_txs = 4"] {
        assert!(slow.contains(line), "the config has no {line:?}:\n{cfg}");
    }
    std::fs::write(&node.init.config, slow).expect("config");
    node.spawn();

    let god = node.funded_key();
    let to = Address::eoa([0x5a; 20]);
    let mut tasks = Vec::new();
    for sender in 0..16u128 {
        let (url, god) = (node.url(), god.clone());
        tasks.push(tokio::spawn(async move {
            let c = RpcClient::new(url);
            let mut hashes = Vec::new();
            for n in 0..15u128 {
                let st = transfer(&god, to, 1, sender * 1_000 + n);
                let h = c
                    .call("icx_sendTransaction", Value::Object(st.raw))
                    .await
                    .unwrap_or_else(|e| panic!("sender {sender} transfer {n} refused: {e}"));
                hashes.push(h);
            }
            hashes
        }));
    }
    let mut hashes = Vec::new();
    for t in tasks {
        hashes.extend(t.await.expect("sender"));
    }
    let rpc = node.rpc();
    for h in &hashes {
        let r = rpc
            .call_with(
                rpc.url(),
                "icx_waitTransactionResult",
                json!({ "txHash": h }),
                &[("Icon-Options", "timeout=30000")],
            )
            .await
            .expect("result");
        assert_eq!(r["status"], "0x1", "{r}");
    }
    assert_eq!(balance(&rpc, &to).await, 240);

    let metrics = rpc
        .post_raw(&format!("{}/metrics", node.base), vec![], &[])
        .await
        .expect("metrics")
        .1;
    let text = String::from_utf8_lossy(&metrics);
    let waits: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("nexus_admission_waits_total{channel=\"public\"} "))
        .unwrap_or_else(|| panic!("no admission waits counted:\n{text}"))
        .trim()
        .parse()
        .expect("a count");
    assert!(
        waits > 0,
        "sixteen senders against blocks of two never waited"
    );
}
