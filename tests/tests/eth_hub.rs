//! Ethereum attached to the hub, end to end with real processes: four Nexus validators (with
//! `notary-eth`, each checking relayed headers against its own anvil endpoint), chains A and B,
//! anvil with the Solidity BMC, verifier and token service, and one portal with every link.
//! - Ether locked on Ethereum arrives on A as `btp-0x539.eth-ETH` and goes back to an Ethereum
//!   account; A's ICX reaches Ethereum as an ERC-20 and goes back; totals add up at each step.
//! - A relay to `notary-eth` with a header that is not on the validators' Ethereum chain is
//!   refused, and nothing moves.
//! - The portal is killed while a transfer waits and restarted: it arrives once.

// Every unwrap here is an assertion about a real chain's answer; a failure is the test failing.
#![allow(clippy::unwrap_used)]

use alloy::primitives::{keccak256 as k256, Address as EthAddress, U256};
use alloy::providers::Provider;
use nexus_light_clients::ethereum::EthUpdate;
use nexus_proto::value::format_bytes;
use nexus_proto::KeyPair;
use nexus_tests::eth::{TokenService, WrappedToken, USER_KEY};
use nexus_tests::hub::{tail, Hub, ICX};
use serde_json::json;
use std::time::{Duration, Instant};

const ETH_TOKEN: &str = "btp-0x539.eth-ETH";
const ETHER: u128 = 1_000_000_000_000_000_000;

async fn wait_for<F, Fut>(hub: &Hub, what: &str, mut done: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(120);
    while !done().await {
        assert!(
            Instant::now() < deadline,
            "{what}: not after 120 s; portal log:\n{}",
            tail(&hub.portal_log(0), 40)
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ether_and_icx_cross_between_ethereum_and_a_chain_through_nexus() {
    let mut hub = Hub::start_with(true).await;
    let dir = hub.nexus.dir.path().to_path_buf();
    let contracts = nexus::commands::hub_eth::contracts(&dir).expect("deployed contracts");
    let anvil = hub.anvil.as_ref().unwrap();
    let user = anvil.provider(USER_KEY);
    let user_addr = alloy::signers::local::PrivateKeySigner::from_slice(
        &hex::decode(USER_KEY.trim_start_matches("0x")).unwrap(),
    )
    .unwrap()
    .address();
    let ts = TokenService::new(contracts.token.parse().unwrap(), user.clone());
    let a_net = hub.chain(0).network.clone();
    let bob = KeyPair::generate();
    let god = hub.funded_key();

    // Ethereum -> A: 3 Ether locked, 3 wrapped ETH arrive at bob on A, the transfer settles.
    // Sent with the CLI a user would use (`nexus wallet eth-transfer`).
    let out = std::process::Command::new(nexus_tests::nexus_bin())
        .args([
            "wallet",
            "eth-transfer",
            "--eth-rpc",
            &anvil.url,
            "--token-service",
            &contracts.token,
        ])
        .args([
            "--to",
            &format!("{a_net}/{}", bob.address()),
            "--value",
            "3",
        ])
        .env("NEXUS_ETH_KEY", USER_KEY)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let sn =
        U256::from_str_radix(printed["sn"].as_str().unwrap().trim_start_matches("0x"), 16).unwrap();
    wait_for(&hub, "wrapped ETH on A", || async {
        hub.wrapped(0, ETH_TOKEN, &bob.address()).await == 3 * ETHER
    })
    .await;
    wait_for(&hub, "the Ethereum transfer settled", || async {
        ts.pendingOf(sn).call().await.unwrap().from == EthAddress::ZERO
    })
    .await;
    let locked_for_a = || async { ts.lockedFor(k256(a_net.as_bytes())).call().await.unwrap() };
    assert_eq!(locked_for_a().await, U256::from(3 * ETHER));
    assert_eq!(
        hub.wrapped_supply(0, ETH_TOKEN).await,
        3 * ETHER,
        "locked on Ethereum = wrapped on A"
    );

    // A -> Ethereum: bob sends 1 wrapped ETH home to carol's 0x account.
    let carol = EthAddress::from([0xca; 20]);
    let fund = nexus_tests::transfer_on(hub.chain(0).nid, &god, bob.address(), 10 * ICX, 1);
    let f = hub
        .rpc(0)
        .call(
            "icx_sendTransactionAndWait",
            serde_json::Value::Object(fund.raw),
        )
        .await
        .unwrap();
    assert_eq!(f["status"], "0x1", "{f}");
    let r = hub
        .bmc_call(0, &bob, 0, "transferWrapped", json!({"_token": ETH_TOKEN, "_to": format!("0x539.eth/{carol:#x}"), "_value": format!("{:#x}", ETHER)}))
        .await;
    assert_eq!(r["status"], "0x1", "{r}");
    wait_for(&hub, "Ether at carol", || async {
        user.get_balance(carol).await.unwrap() == U256::from(ETHER)
    })
    .await;
    assert_eq!(locked_for_a().await, U256::from(2 * ETHER));
    wait_for(&hub, "wrapped supply on A", || async {
        hub.wrapped_supply(0, ETH_TOKEN).await == 2 * ETHER
    })
    .await;

    // A's ICX -> Ethereum as an ERC-20, then part of it back to bob on A.
    let sn = hub
        .bmc_call(
            0,
            &god,
            5 * ICX,
            "transfer",
            json!({"_to": format!("0x539.eth/{user_addr:#x}")}),
        )
        .await;
    assert_eq!(sn["status"], "0x1", "{sn}");
    let icx = format!("btp-{a_net}-ICX");
    let erc20 = || async { ts.wrapped(k256(icx.as_bytes())).call().await.unwrap() };
    wait_for(&hub, "the ICX ERC-20 on Ethereum", || async {
        erc20().await != EthAddress::ZERO
    })
    .await;
    let w = WrappedToken::new(erc20().await, user.clone());
    wait_for(&hub, "5 wrapped ICX at the user", || async {
        w.balanceOf(user_addr).call().await.unwrap() == U256::from(5 * ICX)
    })
    .await;
    let before = nexus_tests::balance(&hub.rpc(0), &bob.address()).await;
    // Killed while the transfer back waits; restarted, it delivers once.
    hub.kill_portal(0);
    let r = ts
        .transferWrapped(
            icx.clone(),
            U256::from(2 * ICX),
            format!("{a_net}/{}", bob.address()),
        )
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    assert!(r.status());
    tokio::time::sleep(Duration::from_secs(2)).await;
    hub.spawn_portal(0);
    wait_for(&hub, "2 ICX back at bob on A", || async {
        nexus_tests::balance(&hub.rpc(0), &bob.address()).await == before + 2 * ICX
    })
    .await;
    assert_eq!(w.totalSupply().call().await.unwrap(), U256::from(3 * ICX));
    // A's ICX locked in its BMC (only Ethereum was sent any here) = the ERC-20's supply.
    assert_eq!(
        nexus_tests::balance(&hub.rpc(0), &nexus_btp::BMC_ADDRESS).await,
        3 * ICX,
        "locked on A = wrapped on Ethereum"
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        nexus_tests::balance(&hub.rpc(0), &bob.address()).await,
        before + 2 * ICX,
        "delivered once"
    );

    // A relay to notary-eth with a header the validators' Ethereum node does not have.
    let notary = hub.nexus.rpc_on(0, "notary-eth");
    let st = notary
        .call("icx_call", json!({"to": nexus_btp::NOTARY_ADDRESS.to_string(), "dataType": "call", "data": {"method": "getStatus"}}))
        .await
        .unwrap();
    let height = nexus_proto::value::parse_u64("height", st["height"].as_str().unwrap()).unwrap();
    let block = user
        .get_block_by_number(height.into())
        .await
        .unwrap()
        .unwrap();
    let mut forged = block.header.inner.clone();
    forged.extra_data = alloy::primitives::Bytes::from_static(b"forged");
    let update = EthUpdate {
        headers: vec![alloy::rlp::encode(&forged)],
    }
    .encode();
    let relayer = nexus::keystore::load(
        &hub.portal_dir().join("relayer.json"),
        std::fs::read_to_string(hub.portal_dir().join("relayer.password"))
            .unwrap()
            .trim(),
    )
    .unwrap();
    let tx = nexus_proto::Transaction {
        from: relayer.address(),
        to: nexus_btp::NOTARY_ADDRESS,
        value: 0,
        step_limit: 2_000_000_000,
        timestamp: nexus_tests::now_us(),
        nid: 0x1539,
        nonce: None,
        data: nexus_proto::TxData::Call {
            method: "relay".into(),
            params: serde_json::Map::from_iter([
                ("_updates".to_string(), json!([format_bytes(&update)])),
                ("_proofs".to_string(), json!([])),
            ]),
        },
    }
    .sign(&relayer)
    .unwrap();
    let e = notary
        .call("icx_sendTransaction", serde_json::Value::Object(tx.raw))
        .await
        .expect_err("refused");
    assert!(
        e.to_string().contains("not on this validator's chain"),
        "{e}"
    );
}
