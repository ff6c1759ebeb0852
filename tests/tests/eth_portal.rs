//! The portal's Ethereum side, with real processes: four Nexus validators notarize token
//! transfers from chain A to chain B; a portal with an `[[eth_outbound]]` link gathers the
//! validators' decision signatures and delivers the messages to a Solidity BMC on anvil that
//! stands in for B. The portal is SIGKILLed while messages wait and restarted: every message
//! arrives once, in order, and no relay transaction of the portal reverts.

// Every unwrap here is an assertion about a real chain's answer; a failure is the test failing.
#![allow(clippy::unwrap_used)]

use alloy::primitives::{Address as EthAddress, U256};
use alloy::providers::Provider;
use alloy::sol_types::SolValue;
use nexus_proto::KeyPair;
use nexus_tests::eth::{
    address_of, anvil_call, deploy, Anvil, NexusVerifier, Pooled, BMC, DEV_KEY,
};
use nexus_tests::hub::{tail, Hub, ICX};
use serde_json::json;
use std::time::{Duration, Instant};

/// Anvil's second dev account: the portal's Ethereum wallet.
const RELAYER_KEY: &str = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d";

async fn wait_rx(
    bmv: &NexusVerifier::NexusVerifierInstance<alloy::providers::DynProvider>,
    src: &str,
    n: u64,
    hub: &Hub,
) {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let rx = bmv.context(src.into()).call().await.unwrap().rxSeq;
        if rx >= U256::from(n) {
            assert_eq!(rx, U256::from(n), "more messages than were sent");
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{rx} of {n} delivered on Ethereum; eth portal log:\n{}",
            tail(
                &std::fs::read_to_string(hub.portal_dir().join("portal-9.log")).unwrap_or_default(),
                40
            )
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The Ethereum side of chain B: a Solidity BMC for B's network on anvil, its verifier
/// trusting the four validators for notary-a.
struct EthSide {
    anvil: Anvil,
    provider: alloy::providers::DynProvider,
    bmc: BMC::BMCInstance<alloy::providers::DynProvider>,
    bmv: NexusVerifier::NexusVerifierInstance<alloy::providers::DynProvider>,
    bmc_addr: EthAddress,
}

async fn eth_side(hub: &Hub) -> EthSide {
    let (a, b) = (hub.chain(0).network.clone(), hub.chain(1).network.clone());
    let anvil = Anvil::start();
    let provider = anvil.provider(DEV_KEY);
    let bmc_addr = deploy(&provider, "BMC", &(b.clone(),).abi_encode_params()).await;
    let bmv_addr = deploy(
        &provider,
        "NexusVerifier",
        &(bmc_addr, b.clone()).abi_encode_params(),
    )
    .await;
    let bmc = BMC::new(bmc_addr, provider.clone());
    let bmv = NexusVerifier::new(bmv_addr, provider.clone());
    assert!(bmc
        .setVerifier(bmv_addr)
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap()
        .status());
    let set: Vec<EthAddress> = hub
        .nexus
        .init
        .nodes
        .iter()
        .map(|n| {
            let cfg = nexus::config::NodeConfig::load(&n.config).unwrap();
            let k =
                nexus::keystore::load(&cfg.keystore, &cfg.keystore_password().unwrap()).unwrap();
            EthAddress::from(nexus_btp::decision::eth_address(&k))
        })
        .collect();
    assert!(bmv
        .addSource(a, set)
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap()
        .status());
    EthSide {
        anvil,
        provider,
        bmc,
        bmv,
        bmc_addr,
    }
}

/// Writes the config of a portal with only the Ethereum link (`extra` lines added to it);
/// returns it with the port of the portal's metrics.
fn eth_portal_config(hub: &Hub, eth: &EthSide, extra: &str) -> (std::path::PathBuf, u16) {
    let notary = hub.chain(0).notary_channel.clone();
    let urls: Vec<String> = (0..4)
        .map(|i| hub.nexus.rpc_on(i, &notary).url().to_string())
        .collect();
    let dir = hub.portal_dir();
    std::fs::write(dir.join("eth.key"), format!("{RELAYER_KEY}\n")).unwrap();
    let port = nexus_tests::free_ports(1)[0];
    let config = format!(
        "keystore = \"relayer.json\"\nkeystore_password_file = \"relayer.password\"\nstate_dir = \"state-eth\"\n\
         listen = \"127.0.0.1:{port}\"\npoll_ms = 100\nprogress_every_s = 1\n\n[[eth_outbound]]\nname = \"a-to-eth\"\n\
         notary = \"{}\"\nnotary_backups = {:?}\ndestination = \"{}\"\nbmc = \"{}\"\nkey_file = \"eth.key\"\nmax_messages = 4\n{extra}",
        urls[0],
        &urls[1..],
        eth.anvil.url,
        eth.bmc_addr,
    );
    let path = dir.join("portal-eth.toml");
    std::fs::write(&path, config).unwrap();
    (path, port)
}

/// The portal's `/metrics` page.
fn metrics_page(port: u16) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut page = String::new();
    s.read_to_string(&mut page).unwrap();
    page
}

fn relayer() -> EthAddress {
    address_of(RELAYER_KEY)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_portal_delivers_notarized_messages_to_ethereum_once_across_a_restart() {
    let mut hub = Hub::start().await;
    let a = hub.chain(0).network.clone();
    let god = hub.funded_key();
    let bob = KeyPair::generate();

    // The Solidity BMC for B's network and a portal with only the Ethereum link.
    let eth = eth_side(&hub).await;
    let (path, _) = eth_portal_config(&hub, &eth, "");
    let dir = hub.portal_dir();
    hub.spawn_portal_with(9, &path);
    let EthSide {
        provider, bmc, bmv, ..
    } = &eth;

    // Three transfers A -> B arrive on Ethereum (B's own BMC gets them through the first portal).
    for _ in 0..3 {
        hub.send_icx(0, &god, &bob.address(), ICX).await;
    }
    wait_rx(bmv, &a, 3, &hub).await;

    // Killed while five more wait; restarted, it delivers them once.
    hub.kill_portal(9);
    for _ in 0..5 {
        hub.send_icx(0, &god, &bob.address(), ICX).await;
    }
    hub.spawn_portal_with(9, &path);
    wait_rx(bmv, &a, 8, &hub).await;

    // Every relay transaction the portal sent succeeded (none was a duplicate the verifier
    // refused), and each answered request went back as a reply message.
    let relayer = relayer();
    let sent = provider.get_transaction_count(relayer).await.unwrap();
    assert!(sent >= 2, "{sent} relay transactions");
    let last = provider.get_block_number().await.unwrap();
    let mut relays = 0;
    for n in 1..=last {
        let block = provider
            .get_block_by_number(n.into())
            .full()
            .await
            .unwrap()
            .unwrap();
        for tx in block.transactions.txns() {
            if tx.inner.signer() == relayer {
                let r = provider
                    .get_transaction_receipt(*tx.inner.hash())
                    .await
                    .unwrap()
                    .unwrap();
                assert!(r.status(), "relay transaction in block {n} reverted");
                relays += 1;
            }
        }
    }
    assert_eq!(relays, sent, "every relay transaction was mined");
    assert_eq!(
        bmc.txSeq().call().await.unwrap(),
        U256::from(8),
        "eight replies (no token service here)"
    );
    let log = std::fs::read_to_string(dir.join("portal-9.log")).unwrap();
    assert!(log.contains("a-to-eth"), "the link logs its progress");

    // The notary set of notary-a changes to validators 0..2 (with their public keys): the
    // decision of the change, signed by the old set, rotates the Ethereum verifier, and later
    // messages verify with signatures of the new set.
    let keys: Vec<KeyPair> = hub
        .nexus
        .init
        .nodes
        .iter()
        .map(|n| {
            let cfg = nexus::config::NodeConfig::load(&n.config).unwrap();
            nexus::keystore::load(&cfg.keystore, &cfg.keystore_password().unwrap()).unwrap()
        })
        .collect();
    let notary_rpc = hub.nexus.rpc_on(0, &hub.chain(0).notary_channel);
    let set_validators = async |public_keys: Vec<String>| {
        // Far enough ahead that the transaction's own block is below it by the margin.
        let head = notary_rpc
            .call("icx_getLastBlock", serde_json::Value::Null)
            .await
            .unwrap()["height"]
            .as_u64()
            .unwrap();
        let at = head + nexus::execution::score::chain_score::CHANGE_MARGIN + 40;
        let params = serde_json::json!({
            "_validators": keys[..3].iter().map(|k| k.address().to_string()).collect::<Vec<_>>(),
            "_height": format!("{at:#x}"),
            "_publicKeys": public_keys,
        });
        nexus_proto::Transaction {
            from: god.address(),
            to: nexus_proto::Address::SYSTEM,
            value: 0,
            step_limit: 100_000_000,
            timestamp: nexus_tests::now_us(),
            nid: hub.chain(0).notary_nid,
            nonce: None,
            data: nexus_proto::TxData::Call {
                method: "setValidators".into(),
                params: params.as_object().cloned().unwrap(),
            },
        }
        .sign(&god)
        .unwrap()
    };
    let pk = |k: &KeyPair| format!("0x{}", hex::encode(k.public_key().serialize_uncompressed()));
    // Keys that do not belong to the addresses are refused.
    let wrong = set_validators(vec![pk(&keys[3]), pk(&keys[1]), pk(&keys[2])]).await;
    let r = notary_rpc
        .call(
            "icx_sendTransactionAndWait",
            serde_json::Value::Object(wrong.raw),
        )
        .await
        .unwrap();
    assert_eq!(r["status"], "0x0", "{r}");
    assert!(
        r["failure"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("_publicKeys"),
        "{r}"
    );
    let right = set_validators(keys[..3].iter().map(pk).collect()).await;
    let r = notary_rpc
        .call(
            "icx_sendTransactionAndWait",
            serde_json::Value::Object(right.raw),
        )
        .await
        .unwrap();
    assert_eq!(r["status"], "0x1", "{r}");
    let new_set: Vec<EthAddress> = keys[..3]
        .iter()
        .map(|k| EthAddress::from(nexus_btp::decision::eth_address(k)))
        .collect();
    let deadline = Instant::now() + Duration::from_secs(90);
    while bmv.context(a.clone()).call().await.unwrap().set != new_set {
        assert!(
            Instant::now() < deadline,
            "the verifier did not rotate; eth portal log:\n{}",
            tail(
                &std::fs::read_to_string(dir.join("portal-9.log")).unwrap_or_default(),
                40
            )
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for _ in 0..2 {
        hub.send_icx(0, &god, &bob.address(), ICX).await;
    }
    wait_rx(bmv, &a, 10, &hub).await;
}

/// The relayer's transactions in anvil's pool.
async fn pooled(p: &alloy::providers::DynProvider) -> Vec<Pooled> {
    let me = relayer().to_string().to_lowercase();
    let mut all = nexus_tests::eth::pooled(p).await;
    all.retain(|t| t.from == me);
    all
}

/// Waits until the relayer has a pending transaction that `pick` takes.
async fn wait_pooled(
    p: &alloy::providers::DynProvider,
    hub: &Hub,
    what: &str,
    pick: impl Fn(&Pooled) -> bool,
) -> Pooled {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(t) = pooled(p).await.into_iter().find(|t| pick(t)) {
            return t;
        }
        assert!(
            Instant::now() < deadline,
            "no {what} in anvil's pool; relayer's: {:?}; eth portal log:\n{}",
            pooled(p).await,
            tail(
                &std::fs::read_to_string(hub.portal_dir().join("portal-9.log")).unwrap_or_default(),
                40
            )
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn mined(p: &alloy::providers::DynProvider, hash: &str) -> Option<bool> {
    p.get_transaction_receipt(hash.parse().unwrap())
        .await
        .unwrap()
        .map(|r| r.status())
}

/// With anvil mining only when told to: a relay transaction the node dropped is sent again with
/// the same nonce and raised fees, one left pending past `receipt_timeout_ms` is replaced with
/// higher fees, and the message arrives once. A portal restarted while its transaction is stuck
/// replaces that one with an empty transfer to itself and then delivers the message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_transactions_that_are_not_mined_are_sent_again_with_raised_fees() {
    let mut hub = Hub::start().await;
    let a = hub.chain(0).network.clone();
    let god = hub.funded_key();
    let bob = KeyPair::generate();
    let eth = eth_side(&hub).await;
    let p = &eth.provider;
    let (path, port) = eth_portal_config(
        &hub,
        &eth,
        "receipt_timeout_ms = 1500\nfee_bump_percent = 20\n",
    );
    anvil_call(p, "evm_setAutomine", json!([false])).await;
    hub.spawn_portal_with(9, &path);
    hub.send_icx(0, &god, &bob.address(), ICX).await;

    // The first send, dropped from the pool as a busy node would.
    let first = wait_pooled(p, &hub, "relay", |_| true).await;
    anvil_call(p, "anvil_dropTransaction", json!([first.hash])).await;
    let again = wait_pooled(p, &hub, "second send", |t| t.hash != first.hash).await;
    assert_eq!(again.nonce, first.nonce, "the same nonce");
    assert!(
        again.fee >= first.fee + first.fee / 5,
        "fees raised by 20%: {} then {}",
        first.fee,
        again.fee
    );
    // Still not mined: replaced in the pool by a third send with higher fees.
    let third = wait_pooled(p, &hub, "replacement", |t| t.hash != again.hash).await;
    assert_eq!(third.nonce, first.nonce);
    assert!(
        third.fee >= again.fee + again.fee / 5,
        "{third:?} after {again:?}"
    );
    anvil_call(p, "evm_mine", json!([])).await;
    anvil_call(p, "evm_setAutomine", json!([true])).await;
    wait_rx(&eth.bmv, &a, 1, &hub).await;
    assert_eq!(
        mined(p, &third.hash).await,
        Some(true),
        "the replacement was mined"
    );
    assert_eq!(mined(p, &first.hash).await, None);
    assert_eq!(mined(p, &again.hash).await, None);

    // Killed while its next relay waits unmined, restarted: after the receipt timeout it
    // replaces the stuck transaction with an empty one and sends the message again.
    anvil_call(p, "evm_setAutomine", json!([false])).await;
    hub.send_icx(0, &god, &bob.address(), ICX).await;
    let stuck = wait_pooled(p, &hub, "second relay", |t| t.nonce == first.nonce + 1).await;
    hub.kill_portal(9);
    hub.spawn_portal_with(9, &path);
    let me = relayer().to_string().to_lowercase();
    let cancel = wait_pooled(p, &hub, "empty replacement", |t| t.to == me).await;
    assert_eq!(cancel.nonce, stuck.nonce);
    anvil_call(p, "evm_mine", json!([])).await;
    anvil_call(p, "evm_setAutomine", json!([true])).await;
    wait_rx(&eth.bmv, &a, 2, &hub).await;
    assert_eq!(mined(p, &cancel.hash).await, Some(true));
    assert_eq!(
        mined(p, &stuck.hash).await,
        None,
        "the stuck relay was replaced"
    );
    let log = std::fs::read_to_string(hub.portal_dir().join("portal-9.log")).unwrap();
    assert!(
        log.contains("sent again with raised fees"),
        "{}",
        tail(&log, 40)
    );
    assert!(
        log.contains("replacing it with an empty one"),
        "{}",
        tail(&log, 40)
    );
    let metrics = metrics_page(port);
    assert!(
        metrics.contains("portal_eth_sent_again_total{link=\"a-to-eth\"}"),
        "{metrics}"
    );
}
