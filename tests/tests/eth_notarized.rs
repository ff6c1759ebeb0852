//! Decisions signed by real Nexus notary validators verify in the Solidity verifier on a real
//! anvil: a token transfer from chain A to chain B is notarized by `notary-a`; each of the four
//! validators signs the block's Keccak-256 decision (`btp_getDecision`); more than 2/3 of the
//! signatures, with the messages' Merkle paths, pass the verifier of a Solidity BMC that stands
//! in for B, and two are refused.

// Every unwrap here is an assertion about a real chain's answer; a failure is the test failing.
#![allow(clippy::unwrap_used)]

use alloy::primitives::{Address as EthAddress, Bytes, U256};
use alloy::sol_types::{SolEvent, SolInterface, SolValue};
use nexus_btp::decision::{encode_relay, Decision, MessagePath, RelayItem};
use nexus_proto::btp::{BtpMessage, ErrorMessage};
use nexus_proto::hash::keccak256;
use nexus_proto::value::{parse_bytes, parse_u128, parse_u64};
use nexus_proto::{Hash32, KeyPair, Signature};
use nexus_tests::eth::{deploy, Anvil, NexusVerifier, BMC, DEV_KEY};
use nexus_tests::hub::{Hub, ICX};
use serde_json::{json, Value};

fn hash(v: &Value, k: &str) -> Hash32 {
    Hash32::parse(k, v[k].as_str().unwrap_or_default())
        .unwrap_or_else(|e| panic!("{k}: {e} in {v}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decisions_signed_by_the_nexus_notaries_verify_in_the_solidity_verifier() {
    let hub = Hub::start().await;
    let god = hub.funded_key();
    let bob = KeyPair::generate();
    let sn = hub.send_icx(0, &god, &bob.address(), 5 * ICX).await;
    hub.wait_status(0, sn, "delivered").await;
    let (a, b) = (hub.chain(0).network.clone(), hub.chain(1).network.clone());
    let notary = hub.chain(0).notary_channel.clone();

    // The notary-a block that carries A's message to B.
    let rpc0 = hub.nexus.rpc_on(0, &notary);
    let last = rpc0.call("icx_getLastBlock", Value::Null).await.unwrap()["height"]
        .as_u64()
        .unwrap();
    let mut height = None;
    for h in 1..=last {
        let m = rpc0
            .call("btp_getMessages", json!({"height": format!("{h:#x}")}))
            .await
            .unwrap();
        if m["messages"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["next"] == b.as_str())
        {
            height = Some(h);
            break;
        }
    }
    let height = height.expect("a notary-a block with a message for B");

    // Every validator signs the same decision; each signature recovers to that validator.
    let validators: Vec<KeyPair> = hub
        .nexus
        .init
        .nodes
        .iter()
        .map(|n| {
            let cfg = nexus::config::NodeConfig::load(&n.config).unwrap();
            nexus::keystore::load(&cfg.keystore, &cfg.keystore_password().unwrap()).unwrap()
        })
        .collect();
    let mut decisions = Vec::new();
    for (i, key) in validators.iter().enumerate() {
        let d = hub
            .nexus
            .rpc_on(i, &notary)
            .call("btp_getDecision", json!({"height": format!("{height:#x}")}))
            .await
            .unwrap();
        let sig = parse_bytes("signature", d["signature"].as_str().unwrap(), 65).unwrap();
        let mut icon = [0u8; 65];
        icon.copy_from_slice(&sig);
        icon[64] -= 27;
        let public = Signature(icon).recover(&hash(&d, "decisionHash")).unwrap();
        assert_eq!(
            nexus_proto::Address::from_public_key(&public),
            key.address(),
            "validator {i} signed with its own key"
        );
        let eth = keccak256(&[&public.serialize_uncompressed()[1..]]);
        assert_eq!(
            d["signer"].as_str().unwrap(),
            format!("0x{}", hex::encode(&eth.0[12..]))
        );
        decisions.push((d, sig));
    }
    let d0 = &decisions[0].0;
    for (d, _) in &decisions {
        assert_eq!(d["decisionHash"], d0["decisionHash"], "validators disagree");
    }
    let decision = Decision {
        src: d0["src"].as_str().unwrap().to_string(),
        height: parse_u64("height", d0["height"].as_str().unwrap()).unwrap(),
        block_hash: hash(d0, "blockHash"),
        messages_root: hash(d0, "messagesRoot"),
        next_set: vec![],
    };
    assert_eq!(decision.src, a);
    assert_eq!(
        decision.hash(),
        hash(d0, "decisionHash"),
        "the node's hash is the decision's"
    );
    let items: Vec<RelayItem> = d0["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["next"] == b.as_str())
        .map(|m| RelayItem {
            seq: parse_u128("seq", m["seq"].as_str().unwrap()).unwrap(),
            msg: parse_bytes("msg", m["msg"].as_str().unwrap(), 1 << 16).unwrap(),
            path: MessagePath {
                siblings: m["path"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|s| Hash32::parse("path", s.as_str().unwrap()).unwrap())
                    .collect(),
                sides: parse_u128("sides", m["sides"].as_str().unwrap()).unwrap(),
            },
        })
        .collect();
    assert_eq!(items[0].seq, 1, "the first message from A to B");
    let token_msg = BtpMessage::decode(&items[0].msg).unwrap();
    assert_eq!(
        (
            token_msg.src.as_str(),
            token_msg.dst.as_str(),
            token_msg.svc.as_str()
        ),
        (a.as_str(), b.as_str(), "token")
    );

    // A Solidity BMC standing in for B, trusting the four validators for A's notary channel.
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
    let set: Vec<EthAddress> = decisions
        .iter()
        .map(|(d, _)| d["signer"].as_str().unwrap().parse().unwrap())
        .collect();
    assert!(bmv
        .addSource(a.clone(), set)
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap()
        .status());

    let sigs: Vec<[u8; 65]> = decisions
        .iter()
        .map(|(_, s)| s.as_slice().try_into().unwrap())
        .collect();
    // Two of four signatures: refused.
    let Err(err) = bmc
        .handleRelayMessage(encode_relay(&decision, &sigs[..2], &items).into())
        .call()
        .await
    else {
        panic!("two signatures of four must not verify");
    };
    assert!(matches!(
        NexusVerifier::NexusVerifierErrors::abi_decode(&err.as_revert_data().unwrap()).unwrap(),
        NexusVerifier::NexusVerifierErrors::TooFewSignatures(_)
    ));
    // Three of four: delivered. This BMC has no token service, so it answers "no service".
    let relay: Bytes = encode_relay(&decision, &sigs[1..], &items).into();
    let r = bmc
        .handleRelayMessage(relay)
        .gas(5_000_000)
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    assert!(r.status(), "the relay reverted");
    assert_eq!(
        bmv.context(a.clone()).call().await.unwrap().rxSeq,
        U256::from(items.len())
    );
    let reply = r
        .inner
        .logs()
        .iter()
        .find_map(|l| BMC::Message::decode_log_data(l.data()).ok())
        .expect("a reply");
    let reply = BtpMessage::decode(&reply.msg).unwrap();
    assert_eq!((reply.dst.as_str(), reply.sn), (a.as_str(), -token_msg.sn));
    assert_eq!(ErrorMessage::decode(&reply.msg).unwrap().code, 3);
    println!(
        "relay of {} message(s) with 3 signatures: {} gas",
        items.len(),
        r.gas_used
    );

    // Hostile parameters get typed errors; the public channel is not a notary.
    let zeros = format!("0x{}1", "0".repeat(100_000));
    for bad in [
        json!({"height": "0xffffffffffffffff"}),
        json!({"height": zeros}),
        json!({"height": "0x\u{ff11}"}),
        json!({"height": format!("{:#x}", last + 1_000)}),
        json!({"height": "0x1", "extra": 1}),
        json!({}),
    ] {
        let e = rpc0
            .call("btp_getDecision", bad.clone())
            .await
            .expect_err("refused");
        let text = e.to_string();
        assert!(!text.is_empty() && text.len() < 2_000, "{bad}: {text}");
    }
    let e = hub
        .nexus
        .rpc(0)
        .call("btp_getDecision", json!({"height": "0x1"}))
        .await
        .expect_err("not a notary channel");
    assert!(e.to_string().contains("not a notary channel"), "{e}");
    assert!(
        nexus_tests::answers(&hub.nexus.url(0)),
        "the validator is alive"
    );
}
