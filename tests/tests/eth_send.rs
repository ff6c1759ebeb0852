//! The portal's Ethereum sender against a real anvil that mines only when told: a transaction
//! with no receipt within the timeout is sent again with the same nonce and fees raised by the
//! bump, on a London chain (EIP-1559 fees, type 2) and on a Berlin one (a legacy gas price,
//! type 0), and the send that is mined gives the receipt; a send the node already holds (made
//! before a restart) gives its receipt too.

// Every unwrap here is an assertion about a real chain's answer; a failure is the test failing.
#![allow(clippy::unwrap_used)]

use alloy::network::{EthereumWallet, TransactionBuilder};
use alloy::providers::{DynProvider, Provider};
use alloy::rpc::types::TransactionRequest;
use alloy::signers::local::PrivateKeySigner;
use nexus_portal::eth_send::{EthSender, FeePolicy};
use nexus_portal::metrics::Metrics;
use nexus_tests::eth::{address_of, anvil_call, pooled, Anvil, Pooled, DEV_KEY};
use serde_json::json;
use std::time::{Duration, Instant};

fn dev_wallet() -> EthereumWallet {
    EthereumWallet::from(DEV_KEY.parse::<PrivateKeySigner>().unwrap())
}

/// Waits for a send other than `seen`, then for one after it; mines; returns all three.
async fn watch_and_mine(p: &DynProvider) -> Vec<Pooled> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen: Vec<Pooled> = Vec::new();
    while seen.len() < 3 {
        assert!(Instant::now() < deadline, "sends seen: {seen:?}");
        for t in pooled(p).await {
            if !seen.iter().any(|s| s.hash == t.hash) {
                seen.push(t);
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    anvil_call(p, "evm_mine", json!([])).await;
    seen
}

async fn sends_again_with_raised_fees(hardfork: &str, kind: &str) {
    let port = nexus_tests::free_ports(1)[0];
    let anvil = Anvil::start_with(port, &["--hardfork", hardfork, "--no-mining"]);
    let p = anvil.provider(DEV_KEY);
    let me = address_of(DEV_KEY);
    let metrics = Metrics::default();
    let wallet = dev_wallet();
    let sender = EthSender {
        provider: &p,
        relayer: me,
        wallet: &wallet,
        url: &anvil.url,
        link: "test",
        fees: FeePolicy::new(20, 500),
        receipt_timeout: Duration::from_millis(400),
        poll: Duration::from_millis(20),
        metrics: &metrics,
    };
    let tx = TransactionRequest::default()
        .with_to(me)
        .with_gas_limit(21_000);
    let watcher = tokio::spawn({
        let p = p.clone();
        async move { watch_and_mine(&p).await }
    });
    let receipt = sender.confirm(tx, "a test transfer").await.unwrap();
    let seen = watcher.await.unwrap();
    assert!(receipt.status());
    for s in &seen {
        assert_eq!(s.nonce, seen[0].nonce, "{seen:?}");
        assert_eq!(s.kind, kind, "{hardfork}: {seen:?}");
    }
    for w in seen.windows(2) {
        assert!(
            w[1].fee >= w[0].fee + w[0].fee / 5,
            "{hardfork}: fees raised by 20%: {seen:?}"
        );
    }
    let mined = receipt.transaction_hash.to_string();
    assert!(
        seen.iter().any(|s| s.hash == mined),
        "{mined} is one of the sends {seen:?}"
    );
    assert_eq!(
        p.get_transaction_count(me).await.unwrap(),
        1,
        "one nonce used"
    );
    assert!(
        metrics
            .render()
            .contains("portal_eth_sent_again_total{link=\"test\"}"),
        "{}",
        metrics.render()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_london_chain_gets_eip1559_fees_raised_on_each_send() {
    sends_again_with_raised_fees("london", "0x2").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_berlin_chain_gets_its_legacy_gas_price_raised_on_each_send() {
    sends_again_with_raised_fees("berlin", "0x0").await;
}

/// A pass sends a transfer and stops before its receipt (a portal restarted). The next pass
/// makes the very same send, which the node refuses as a transaction it already holds; once
/// a block is mined, that pass returns the receipt of the transaction it would have sent
/// rather than taking the nonce for someone else's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_the_node_already_holds_gives_its_receipt_once_mined() {
    let port = nexus_tests::free_ports(1)[0];
    let anvil = Anvil::start_with(port, &["--no-mining"]);
    let p = anvil.provider(DEV_KEY);
    let me = address_of(DEV_KEY);
    let metrics = Metrics::default();
    let wallet = dev_wallet();
    let sender = EthSender {
        provider: &p,
        relayer: me,
        wallet: &wallet,
        url: &anvil.url,
        link: "test",
        fees: FeePolicy::new(20, 500),
        receipt_timeout: Duration::from_secs(20),
        poll: Duration::from_millis(20),
        metrics: &metrics,
    };
    let tx = TransactionRequest::default()
        .with_to(me)
        .with_gas_limit(21_000);
    // The first pass runs until its send is in the pool, then stops (dropped mid-wait).
    let held = {
        let before = sender.confirm(tx.clone(), "the pass before the restart");
        tokio::pin!(before);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            tokio::select! {
                r = &mut before => panic!("nothing is mined, yet the first pass ended: {r:?}"),
                _ = tokio::time::sleep(Duration::from_millis(20)) => {
                    let pool = pooled(&p).await;
                    if !pool.is_empty() {
                        break pool;
                    }
                    assert!(Instant::now() < deadline, "the first pass sent nothing");
                }
            }
        }
    };
    assert_eq!(held.len(), 1, "{held:?}");
    // Mined once the second pass has read its nonce (its first call) and made its send.
    let miner = tokio::spawn({
        let p = p.clone();
        async move {
            tokio::time::sleep(Duration::from_secs(2)).await;
            anvil_call(&p, "evm_mine", json!([])).await;
        }
    });
    let receipt = sender
        .confirm(tx, "the pass after the restart")
        .await
        .unwrap();
    miner.await.unwrap();
    assert!(receipt.status());
    assert_eq!(receipt.transaction_hash.to_string(), held[0].hash);
    assert_eq!(p.get_transaction_count(me).await.unwrap(), 1);
    assert!(
        !metrics
            .render()
            .contains("portal_eth_sent_again_total{link=\"test\"} "),
        "sent once per pass: {}",
        metrics.render()
    );
}

/// The relayer's nonce goes to a transaction that is none of the pass's sends (another process
/// holding the key, or a pass before a restart at higher fees, so this pass's send is refused as
/// an underpriced replacement): once that one is mined the pass says so, without waiting out
/// its receipt timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nonce_taken_by_another_transaction_ends_the_pass_once_mined() {
    let port = nexus_tests::free_ports(1)[0];
    let anvil = Anvil::start_with(port, &["--no-mining"]);
    let p = anvil.provider(DEV_KEY);
    let me = address_of(DEV_KEY);
    let elsewhere = address_of(nexus_tests::eth::USER_KEY);
    let gwei = 1_000_000_000u128;
    let taker = p
        .send_transaction(
            TransactionRequest::default()
                .with_to(elsewhere)
                .with_value(alloy::primitives::U256::from(1))
                .with_nonce(0)
                .with_gas_limit(21_000)
                .with_max_fee_per_gas(400 * gwei)
                .with_max_priority_fee_per_gas(100 * gwei),
        )
        .await
        .unwrap();
    let taker = *taker.tx_hash();
    let metrics = Metrics::default();
    let wallet = dev_wallet();
    let sender = EthSender {
        provider: &p,
        relayer: me,
        wallet: &wallet,
        url: &anvil.url,
        link: "test",
        fees: FeePolicy::new(20, 500),
        receipt_timeout: Duration::from_secs(300),
        poll: Duration::from_millis(20),
        metrics: &metrics,
    };
    let miner = tokio::spawn({
        let p = p.clone();
        async move {
            tokio::time::sleep(Duration::from_secs(2)).await;
            anvil_call(&p, "evm_mine", json!([])).await;
        }
    });
    let tx = TransactionRequest::default()
        .with_to(me)
        .with_gas_limit(21_000);
    let ended = tokio::time::timeout(
        Duration::from_secs(120),
        sender.confirm(tx, "a test transfer"),
    )
    .await
    .expect("the pass ends well before its 300-s receipt timeout");
    miner.await.unwrap();
    let e = ended.unwrap_err().to_string();
    assert!(
        e.contains("nonce 0") && e.contains("went to a transaction other than these sends"),
        "{e}"
    );
    assert_eq!(p.get_transaction_count(me).await.unwrap(), 1);
    let mined = p.get_transaction_receipt(taker).await.unwrap();
    assert!(mined.is_some(), "the nonce went to the other transaction");
}
