//! BTP end to end with real processes: chains A and B (one validator each), four Nexus
//! validators running notary-a and notary-b, and portals. Tokens and certificates cross from A
//! to B through Nexus and back; a delivery B refuses is refunded on A; totals add up at every
//! step; a portal killed mid-batch, a second portal on the same links and notary validators
//! going down never deliver a message twice or lose one.

use nexus_btp::token::native_token;
use nexus_proto::value::format_bytes;
use nexus_proto::{Address, KeyPair};
use nexus_tests::hub::{tail, Hub, ICX};
use serde_json::json;
use std::time::{Duration, Instant};

/// Locked on A = wrapped supply on B + what is in flight (sent, not settled).
async fn assert_totals(hub: &Hub, in_flight: u128, step: &str) {
    let locked = nexus_tests::balance(&hub.rpc(0), &nexus_btp::BMC_ADDRESS).await;
    let supply = hub
        .wrapped_supply(1, &native_token(&hub.chain(0).network))
        .await;
    assert_eq!(
        locked,
        supply + in_flight,
        "{step}: locked {locked} on A, {supply} wrapped on B, {in_flight} in flight"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_and_certificates_cross_through_nexus_and_a_refused_delivery_is_refunded() {
    let hub = Hub::start().await;
    let god = hub.funded_key();
    let bob = KeyPair::generate();
    let token_a = native_token(&hub.chain(0).network);
    assert_totals(&hub, 0, "start").await;
    // Nexus' public channel runs a BMC too; the notary channels name the networks they serve.
    let info = hub
        .nexus
        .rpc(0)
        .call("btp_getNetworkInfo", serde_json::Value::Null)
        .await
        .expect("public btp info");
    assert_eq!(
        (info["network"].as_str(), info["role"].as_str()),
        (Some("0x3.nexus"), Some("bmc")),
        "{info}"
    );
    let info = hub
        .nexus
        .rpc_on(1, "notary-b")
        .call("btp_getNetworkInfo", serde_json::Value::Null)
        .await
        .expect("notary btp info");
    assert_eq!(
        (info["network"].as_str(), info["role"].as_str()),
        (Some(hub.chain(1).network.as_str()), Some("notary")),
        "{info}"
    );

    // A -> B: 5 ICX leave god on A, 5 wrapped arrive at bob on B.
    let before = nexus_tests::balance(&hub.rpc(0), &god.address()).await;
    let sn = hub.send_icx(0, &god, &bob.address(), 5 * ICX).await;
    let after = nexus_tests::balance(&hub.rpc(0), &god.address()).await;
    assert!(before - after >= 5 * ICX, "5 ICX and the fee left god");
    assert_totals(
        &hub,
        if hub.status(0, sn).await == "sent" {
            5 * ICX
        } else {
            0
        },
        "sent",
    )
    .await;
    hub.wait_status(0, sn, "delivered").await;
    assert_eq!(hub.wrapped(1, &token_a, &bob.address()).await, 5 * ICX);
    assert_totals(&hub, 0, "delivered").await;

    // B -> A: bob sends 2 back; they unlock on A for carol.
    let carol = Address::eoa([0xca; 20]);
    // bob pays fees on B: fund him from god's genesis ICX there.
    let fund = nexus_tests::transfer_on(hub.chain(1).nid, &god, bob.address(), 10 * ICX, 1);
    let r = hub
        .rpc(1)
        .call_with(
            hub.rpc(1).url(),
            "icx_sendTransactionAndWait",
            serde_json::Value::Object(fund.raw),
            &[("Icon-Options", "timeout=30000")],
        )
        .await
        .expect("fund bob");
    assert_eq!(r["status"], "0x1");
    let r = hub
        .bmc_call(1, &bob, 0, "transferWrapped", json!({"_token": token_a, "_to": format!("{}/{carol}", hub.chain(0).network), "_value": format!("{:#x}", 2 * ICX)}))
        .await;
    assert_eq!(r["status"], "0x1", "{r}");
    let back_sn = 1; // bob's transfer is the first message B's BMC numbered
    hub.wait_status(1, back_sn, "delivered").await;
    assert_eq!(nexus_tests::balance(&hub.rpc(0), &carol).await, 2 * ICX);
    assert_eq!(hub.wrapped(1, &token_a, &bob.address()).await, 3 * ICX);
    assert_totals(&hub, 0, "back home").await;

    // A certificate registered on A verifies on B.
    let subject = format_bytes(&[0x5a; 32]);
    let pubkey = format_bytes(&god.public_key().serialize());
    let r = hub
        .bmc_call(
            0,
            &god,
            0,
            "registerCert",
            json!({"_dst": hub.chain(1).network, "_subject": subject, "_pubkey": pubkey}),
        )
        .await;
    assert_eq!(r["status"], "0x1", "{r}");
    hub.wait_status(0, sn + 1, "delivered").await;
    let src = hub.chain(0).network.clone();
    assert_eq!(
        hub.bmc_query(
            1,
            "verifyCert",
            json!({"_src": src, "_subject": subject, "_pubkey": pubkey})
        )
        .await,
        "0x1"
    );
    assert_eq!(
        hub.bmc_query(
            1,
            "verifyCert",
            json!({"_src": src, "_subject": subject, "_pubkey": format_bytes(&[1; 33])})
        )
        .await,
        "0x0"
    );

    // B refuses a recipient that is not an address: A refunds god in full (fees aside).
    let before = nexus_tests::balance(&hub.rpc(0), &god.address()).await;
    let r = hub
        .bmc_call(
            0,
            &god,
            7 * ICX,
            "transfer",
            json!({"_to": format!("{}/hxnot-an-address", hub.chain(1).network)}),
        )
        .await;
    assert_eq!(r["status"], "0x1", "{r}");
    let fee = nexus_proto::value::parse_u128("f", r["stepUsed"].as_str().unwrap()).unwrap()
        * nexus_proto::value::parse_u128("p", r["stepPrice"].as_str().unwrap()).unwrap();
    let refused_sn = sn + 2;
    hub.wait_status(0, refused_sn, "refunded").await;
    assert_eq!(
        nexus_tests::balance(&hub.rpc(0), &god.address()).await,
        before - fee,
        "refunded in full"
    );
    assert_totals(&hub, 0, "refunded").await;
    // Each message crossed once: B received A's 3 requests and its reply to bob's transfer,
    // A received bob's transfer and B's 3 replies.
    let st = hub.bmc_query(1, "getStatus", json!({"_link": src})).await;
    assert_eq!(
        (st["txSeq"].as_str(), st["rxSeq"].as_str()),
        (Some("0x4"), Some("0x4")),
        "{st}"
    );
    let st = hub
        .bmc_query(0, "getStatus", json!({"_link": hub.chain(1).network}))
        .await;
    assert_eq!(
        (st["txSeq"].as_str(), st["rxSeq"].as_str()),
        (Some("0x4"), Some("0x4")),
        "{st}"
    );
}

async fn wrapped_total(hub: &Hub) -> u128 {
    hub.wrapped_supply(1, &native_token(&hub.chain(0).network))
        .await
}

async fn rx_on_b(hub: &Hub) -> u128 {
    let st = hub
        .bmc_query(1, "getStatus", json!({"_link": hub.chain(0).network}))
        .await;
    nexus_proto::value::parse_u128("rx", st["rxSeq"].as_str().unwrap_or("")).expect("rxSeq")
}

/// Sends `n` transfers from A without waiting for each (one block may hold many); returns
/// the total.
async fn send_many(hub: &Hub, god: &KeyPair, to: &Address, n: u128, first_nonce: u128) -> u128 {
    let rpc = hub.rpc(0);
    let mut total = 0;
    let mut last = None;
    for i in 0..n {
        let v = ICX + first_nonce + i;
        let tx = nexus_proto::Transaction {
            from: god.address(),
            to: nexus_btp::BMC_ADDRESS,
            value: v,
            step_limit: 100_000_000,
            timestamp: nexus_tests::now_us(),
            nid: hub.chain(0).nid,
            nonce: Some(first_nonce + i),
            data: nexus_proto::TxData::Call {
                method: "transfer".into(),
                params: serde_json::Map::from_iter([(
                    "_to".to_string(),
                    json!(format!("{}/{to}", hub.chain(1).network)),
                )]),
            },
        }
        .sign(god)
        .expect("sign");
        last = Some(
            rpc.call("icx_sendTransaction", serde_json::Value::Object(tx.raw))
                .await
                .expect("send"),
        );
        total += v;
    }
    let r = rpc
        .call_with(
            rpc.url(),
            "icx_waitTransactionResult",
            json!({"txHash": last}),
            &[("Icon-Options", "timeout=30000")],
        )
        .await
        .expect("last transfer");
    assert_eq!(r["status"], "0x1", "{r}");
    total
}

async fn wait_rx_on_b(hub: &Hub, n: u128) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while rx_on_b(hub).await < n {
        assert!(
            Instant::now() < deadline,
            "B received {} of {n}; portal log:\n{}",
            rx_on_b(hub).await,
            tail(&hub.portal_log(0), 30)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_portal_killed_mid_batch_and_a_second_portal_deliver_every_message_exactly_once() {
    let mut hub = Hub::start().await;
    let god = hub.funded_key();
    let bob = Address::eoa([0xb0; 20]);

    // A stream of 40 transfers; the portal is SIGKILLed as soon as B has some but not all.
    let mut total = send_many(&hub, &god, &bob, 40, 0).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while rx_on_b(&hub).await == 0 {
        assert!(Instant::now() < deadline, "nothing arrived");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    hub.kill_portal(0);
    let at_kill = rx_on_b(&hub).await;
    hub.spawn_portal(0);
    wait_rx_on_b(&hub, 40).await;
    assert!(hub.portal_log(0).contains("portal started"));
    eprintln!("portal killed with {at_kill} of 40 delivered");

    // Two portals on the same links relay the next 30; the verifiers take each once.
    hub.spawn_portal(1);
    total += send_many(&hub, &god, &bob, 30, 40).await;
    // Delivered once each: 70 messages, and the reply of each back on A.
    wait_rx_on_b(&hub, 70).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(rx_on_b(&hub).await, 70, "no message twice");
    assert_eq!(
        wrapped_total(&hub).await,
        total,
        "every transfer minted exactly once"
    );
    for sn in 1..=70 {
        hub.wait_status(0, sn, "delivered").await;
    }
    assert_totals(&hub, 0, "after the restart and with two portals").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_flow_with_one_notary_validator_down_and_wait_with_two() {
    // One down (the portal's first endpoint): messages flow; two down: they wait (no quorum of
    // notary votes); one of the two back: they flow again.
    let mut hub = Hub::start().await;
    let god = hub.funded_key();
    let bob = Address::eoa([0xb1; 20]);
    // Validator 0 is the one the portal talks to first: it moves to the same channel on
    // another validator.
    hub.nexus.kill9(0);
    let sn = hub.send_icx(0, &god, &bob, ICX).await;
    hub.wait_status(0, sn, "delivered").await;

    hub.nexus.kill9(2);
    let sn = hub.send_icx(0, &god, &bob, 2 * ICX).await;
    let deadline = Instant::now() + Duration::from_secs(8);
    while Instant::now() < deadline {
        assert_eq!(
            hub.status(0, sn).await,
            "sent",
            "no notary quorum: the message waits"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(wrapped_total(&hub).await, ICX);
    hub.nexus.spawn(2);
    hub.wait_status(0, sn, "delivered").await;
    assert_eq!(wrapped_total(&hub).await, 3 * ICX);
    assert_totals(&hub, 0, "after the notary came back").await;
}
