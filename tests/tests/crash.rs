//! SIGKILL during a stream of transfers: every transaction whose result was returned survives,
//! balances still sum to the total supply, the state tree proves them against the head's
//! header, and the node goes on.

use nexus::client::RpcClient;
use nexus_proto::{Address, KeyPair};
use nexus_tests::{balance, height, transfer, wait_height, TestNode};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_transfers_loses_nothing_returned() {
    sigkill_during_transfers(&mut TestNode::start()).await;
}

/// The same with `[state] mmap_reads`: the node reads its table files through memory maps.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_transfers_loses_nothing_returned_reading_through_memory_maps() {
    let mut node = TestNode::start_with(|config| {
        assert!(config.contains("mmap_reads = false"), "{config}");
        config.replace("mmap_reads = false", "mmap_reads = true")
    });
    sigkill_during_transfers(&mut node).await;
    // The node opened RocksDB with mapped reads (recorded in its options file).
    let data = node.init.config.with_file_name("data");
    let options = std::fs::read_dir(&data)
        .expect("data folder")
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("OPTIONS-"))
        .map(|e| std::fs::read_to_string(e.path()).expect("options"))
        .collect::<Vec<_>>();
    assert!(
        options.iter().any(|o| o.contains("allow_mmap_reads=true")),
        "no options file with mapped reads in {}",
        data.display()
    );
}

async fn sigkill_during_transfers(node: &mut TestNode) {
    let rpc = node.rpc();
    let god = node.funded_key();
    let treasury = nexus::ledger::genesis::Genesis::load(&node.dir.path().join("genesis.json"))
        .expect("genesis")
        .treasury;

    // Four senders funded by the god account; twenty fixed receivers.
    let senders: Vec<KeyPair> = (0..4).map(|_| KeyPair::generate()).collect();
    for (i, s) in senders.iter().enumerate() {
        let st = transfer(
            &god,
            s.address(),
            1_000_000_000_000_000_000_000,
            1_000_000 + i as u128,
        );
        let r = rpc
            .call("icx_sendTransactionAndWait", Value::Object(st.raw))
            .await
            .expect("funding");
        assert_eq!(r["status"], "0x1");
    }
    let receivers: Vec<Address> = (0..20u8).map(|i| Address::eoa([i + 1; 20])).collect();

    // Each sender streams transfers, waiting for each result; returned results are recorded.
    let returned: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for (si, s) in senders.into_iter().enumerate() {
        let (url, returned, stop, receivers) = (
            node.url(),
            returned.clone(),
            stop.clone(),
            receivers.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let c = RpcClient::new(url);
            let mut n = 0u128;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let st = transfer(
                    &s,
                    receivers[(n as usize + si) % receivers.len()],
                    1_000 + n,
                    n,
                );
                match c
                    .call("icx_sendTransactionAndWait", Value::Object(st.raw))
                    .await
                {
                    Ok(r) if r["status"] == "0x1" => {
                        let bh = r["blockHash"].as_str().unwrap_or("").to_string();
                        returned
                            .lock()
                            .expect("lock")
                            .push((st.hash.to_string(), bh));
                    }
                    Ok(r) => panic!("transfer failed: {r}"),
                    Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
                }
            }
        }));
    }
    // Let the stream run, then kill the node in the middle of it.
    for _ in 0..200 {
        if returned.lock().expect("lock").len() >= 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    node.kill9();
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.expect("sender task");
    }
    let returned = returned.lock().expect("lock").clone();
    assert!(
        returned.len() >= 50,
        "only {} results before the kill",
        returned.len()
    );

    node.spawn();
    let rpc = node.rpc();
    for (hash, block_hash) in &returned {
        let r = rpc
            .call("icx_getTransactionResult", json!({ "txHash": hash }))
            .await
            .expect("result after restart");
        assert_eq!(r["status"], "0x1");
        assert_eq!(
            r["blockHash"].as_str().unwrap_or(""),
            block_hash,
            "{hash} moved to another block"
        );
    }

    let supply = rpc
        .call("icx_getTotalSupply", Value::Null)
        .await
        .expect("supply");
    let supply =
        nexus_proto::value::parse_u128("supply", supply.as_str().expect("string")).expect("int");
    let mut accounts = vec![god.address(), treasury];
    accounts.extend(receivers.iter().copied());
    let mut sum = 0u128;
    for a in &accounts {
        sum += balance(&rpc, a).await;
    }
    // Sender balances: whatever is not with god, treasury and receivers.
    let senders_total = supply - sum;
    assert!(
        senders_total > 0 && senders_total <= 4 * 1_000_000_000_000_000_000_000,
        "balances do not add up: {senders_total}"
    );

    // The state tree survived with the flat state: a receiver's balance is proven against the
    // state root of the head's header (and the node checked that root against its tree when it
    // opened).
    let head = height(&rpc).await;
    let raw = rpc
        .call(
            "icx_getBlockHeaderByHeight",
            json!({"height": format!("{head:#x}")}),
        )
        .await
        .expect("header");
    let header = nexus_proto::block::BlockHeader::from_rlp(
        &nexus_proto::value::parse_bytes("header", raw.as_str().expect("hex"), 1 << 20)
            .expect("hex"),
    )
    .expect("header RLP");
    for r in &receivers {
        let p = rpc
            .call(
                "icx_getProofForState",
                json!({"address": r.to_string(), "height": format!("{head:#x}")}),
            )
            .await
            .expect("state proof");
        let value = balance(&rpc, r).await.to_be_bytes();
        let present = p["value"].as_str().is_some();
        nexus_light_clients::StateProof::from_json(&p["proof"])
            .expect("proof")
            .verify(
                &header.state_root.0,
                &nexus::ledger::state::balance_key(r),
                present.then_some(&value[..]),
            )
            .expect("a receiver's balance after the crash");
    }

    // The node goes on.
    let h = height(&rpc).await;
    let st = transfer(&god, receivers[0], 5, 99_999_999);
    let r = rpc
        .call("icx_sendTransactionAndWait", Value::Object(st.raw))
        .await
        .expect("transfer after restart");
    assert_eq!(r["status"], "0x1");
    wait_height(&rpc, h + 2).await;
}
