//! A client proves a receipt and an event against a block header, and the header against the
//! validator votes, using only JSON-RPC answers (`icx_getProofForEvents`,
//! `icx_getBlockHeaderByHeight`, `icx_getVotesByHeight`, `icx_getDataByHash`); and state
//! entries, present and absent, against a header's state root (`icx_getProofForState`).

use nexus::client::RpcClient;
use nexus::ledger::state::{balance_key, score_key};
use nexus_light_clients::{StateProof, StateProofError};
use nexus_proto::block::{verify_quorum, BlockHeader, VoteSet};
use nexus_proto::merkle::ProofStep;
use nexus_proto::receipt::{verify_event, EventLog, Receipt};
use nexus_proto::value::{parse_bytes, parse_hash, parse_u128, parse_u64};
use nexus_proto::{Address, Transaction, TxData};
use nexus_tests::{now_us, TestNode, NID};
use serde_json::{json, Map, Value};

fn s(v: &Value) -> &str {
    v.as_str().expect("string")
}

fn proof(v: &Value) -> Vec<ProofStep> {
    v.as_array()
        .expect("proof list")
        .iter()
        .map(|step| match (step.get("left"), step.get("right")) {
            (Some(l), None) => ProofStep {
                sibling: parse_hash("left", s(l)).expect("hash"),
                sibling_is_left: true,
            },
            (None, Some(r)) => ProofStep {
                sibling: parse_hash("right", s(r)).expect("hash"),
                sibling_is_left: false,
            },
            _ => panic!("bad proof step {step}"),
        })
        .collect()
}

/// Rebuilds the receipt from a transaction result, as any client can.
fn receipt_from_result(r: &Value) -> Receipt {
    let int = |k: &str| parse_u128(k, s(&r[k])).expect("int");
    Receipt {
        status: int("status") as u8,
        to: Address::parse("to", s(&r["to"])).expect("to"),
        cumulative_step_used: int("cumulativeStepUsed"),
        step_used: int("stepUsed"),
        step_price: int("stepPrice"),
        failure_code: r
            .get("failure")
            .map(|f| parse_u64("code", s(&f["code"])).expect("code") as u32)
            .unwrap_or(0),
        failure_message: r
            .get("failure")
            .map(|f| s(&f["message"]).to_string())
            .unwrap_or_default(),
        event_logs: r["eventLogs"]
            .as_array()
            .expect("events")
            .iter()
            .map(|e| EventLog {
                score_address: Address::parse("scoreAddress", s(&e["scoreAddress"]))
                    .expect("score"),
                indexed: e["indexed"]
                    .as_array()
                    .expect("indexed")
                    .iter()
                    .map(|x| s(x).to_string())
                    .collect(),
                data: e["data"]
                    .as_array()
                    .expect("data")
                    .iter()
                    .map(|x| s(x).to_string())
                    .collect(),
            })
            .collect(),
    }
}

async fn header(rpc: &RpcClient, height: u64) -> BlockHeader {
    let raw = rpc
        .call(
            "icx_getBlockHeaderByHeight",
            json!({"height": format!("{height:#x}")}),
        )
        .await
        .expect("header");
    BlockHeader::from_rlp(&parse_bytes("header", s(&raw), 1 << 20).expect("hex"))
        .expect("header RLP")
}

#[tokio::test]
async fn receipts_events_and_headers_are_provable_from_rpc_answers() {
    let node = TestNode::start();
    let rpc = node.rpc();
    let god = node.funded_key();
    let bob = Address::eoa([0xb0; 20]);
    let mut params = Map::new();
    params.insert("_to".into(), Value::String(bob.to_string()));
    params.insert("_value".into(), Value::String("0x2a".into()));
    let tx = Transaction {
        from: god.address(),
        to: node.init.token,
        value: 0,
        step_limit: 2_000_000,
        timestamp: now_us(),
        nid: NID,
        nonce: None,
        data: TxData::Call {
            method: "transfer".into(),
            params,
        },
    };
    let st = tx.sign(&god).expect("sign");
    let result = rpc
        .call("icx_sendTransactionAndWait", Value::Object(st.raw))
        .await
        .expect("result");
    assert_eq!(result["status"], "0x1", "{result}");
    let height = parse_u64("blockHeight", s(&result["blockHeight"])).expect("height");
    let block_hash = s(&result["blockHash"]).to_string();

    // The header, fetched by height, hashes to the block hash the result names.
    let h = header(&rpc, height).await;
    assert_eq!(h.hash().to_string(), block_hash);

    // The receipt and its Transfer event are under the header's receipts root.
    let proofs = rpc
        .call(
            "icx_getProofForEvents",
            json!({"hash": block_hash, "index": result["txIndex"], "events": ["0x0"]}),
        )
        .await
        .expect("proofs");
    let receipt = receipt_from_result(&result);
    verify_event(
        &h.receipts_root,
        &receipt,
        &proof(&proofs[0]),
        &receipt.event_logs[0],
        &proof(&proofs[1]),
    )
    .expect("event proof");
    let rp = rpc
        .call(
            "icx_getProofForResult",
            json!({"hash": block_hash, "index": result["txIndex"]}),
        )
        .await
        .expect("proof");
    assert_eq!(proof(&rp), proof(&proofs[0]));

    // A forged receipt does not verify.
    let mut forged = receipt.clone();
    forged.event_logs[0].data = vec!["0xff".into()];
    assert!(verify_event(
        &h.receipts_root,
        &forged,
        &proof(&proofs[0]),
        &forged.event_logs[0],
        &proof(&proofs[1])
    )
    .is_err());

    // The votes for the block are a quorum of the validators named by its header.
    let votes = rpc
        .call(
            "icx_getVotesByHeight",
            json!({"height": format!("{height:#x}")}),
        )
        .await
        .expect("votes");
    let votes = VoteSet::from_rlp(&parse_bytes("votes", s(&votes), 1 << 20).expect("hex"))
        .expect("vote set");
    let vals = rpc
        .call(
            "icx_getDataByHash",
            json!({"hash": h.validators_hash.to_string()}),
        )
        .await
        .expect("validators");
    let vals_rlp = parse_bytes("validators", s(&vals), 1 << 20).expect("hex");
    assert_eq!(nexus_proto::hash::sha3_256(&[&vals_rlp]), h.validators_hash);
    let validators = nexus_proto::block::decode_validators(&vals_rlp).expect("validator list");
    verify_quorum(&votes, &validators, NID, "public", height, &h.hash()).expect("quorum");

    // And the next block commits to those votes.
    nexus_tests::wait_height(&rpc, height + 1).await;
    let next = header(&rpc, height + 1).await;
    assert_eq!(next.prev_hash, h.hash());
    assert_eq!(next.prev_votes_hash, votes.hash());
}

async fn state_proof(rpc: &RpcClient, params: Value) -> (StateProof, Option<Vec<u8>>, Value) {
    let r = rpc
        .call("icx_getProofForState", params)
        .await
        .expect("state proof");
    let proof = StateProof::from_json(&r["proof"]).expect("proof shape");
    let value = r["value"]
        .as_str()
        .map(|v| parse_bytes("value", v, 1 << 16).expect("hex"));
    (proof, value, r)
}

#[tokio::test]
async fn balances_and_score_storage_are_provable_against_a_header() {
    let node = TestNode::start();
    let rpc = node.rpc();
    let god = node.funded_key();
    let bob = Address::eoa([0xb1; 20]);
    let st = nexus_tests::transfer(&god, bob, 777, 1);
    let result = rpc
        .call("icx_sendTransactionAndWait", Value::Object(st.raw))
        .await
        .expect("result");
    assert_eq!(result["status"], "0x1", "{result}");
    let height = parse_u64("blockHeight", s(&result["blockHeight"])).expect("height");

    // The state root comes from the header alone, which hashes to the block hash.
    let h = header(&rpc, height).await;
    assert_eq!(h.hash().to_string(), s(&result["blockHash"]));
    let root = h.state_root.0;
    let at = |p: Value| {
        let mut p = p;
        p["height"] = Value::String(format!("{height:#x}"));
        p
    };

    // Bob's balance, present: the value is 777 as 16 bytes big-endian.
    let (p, value, r) = state_proof(&rpc, at(json!({"address": bob.to_string()}))).await;
    assert_eq!(value, Some(777u128.to_be_bytes().to_vec()), "{r}");
    p.verify(&root, &balance_key(&bob), value.as_deref())
        .expect("bob's balance");
    // A forged value, a forged root, and a proof missing a sibling are refused.
    assert!(matches!(
        p.verify(&root, &balance_key(&bob), Some(&778u128.to_be_bytes())),
        Err(StateProofError::WrongValue { .. })
    ));
    let mut other_root = root;
    other_root[0] ^= 1;
    assert!(matches!(
        p.verify(&other_root, &balance_key(&bob), value.as_deref()),
        Err(StateProofError::WrongRoot { .. })
    ));
    let mut short = p.clone();
    assert!(
        !short.siblings.is_empty(),
        "a proof in a tree of several keys"
    );
    short.siblings.pop();
    assert!(short
        .verify(&root, &balance_key(&bob), value.as_deref())
        .is_err());
    // Claiming Bob absent fails with his own leaf.
    assert_eq!(
        p.verify(&root, &balance_key(&bob), None),
        Err(StateProofError::Present)
    );

    // An account that never held ICX: absent, and provably so.
    let nobody = Address::eoa([0x0d; 20]);
    let (p, value, _) = state_proof(&rpc, at(json!({"address": nobody.to_string()}))).await;
    assert_eq!(value, None);
    p.verify(&root, &balance_key(&nobody), None)
        .expect("absence");
    assert!(p
        .verify(&root, &balance_key(&nobody), Some(&1u128.to_be_bytes()))
        .is_err());

    // A SCORE storage entry: the token's symbol is stored; a key it never wrote is not.
    let token = node.init.token;
    let key = |k: &[u8]| score_key(&token, k);
    let symbol = format!(
        "0x{}",
        b"symbol"
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    );
    let (p, value, r) = state_proof(
        &rpc,
        at(json!({"address": token.to_string(), "key": symbol})),
    )
    .await;
    assert_eq!(value.as_deref(), Some(&b"NXT"[..]), "{r}");
    p.verify(&root, &key(b"symbol"), value.as_deref())
        .unwrap_or_else(|e| panic!("token storage {r}: {e}"));
    let (p, value, _) = state_proof(
        &rpc,
        at(json!({"address": token.to_string(), "key": "0x00"})),
    )
    .await;
    assert_eq!(value, None);
    p.verify(&root, &key(&[0]), None)
        .expect("absent storage key");

    // Bob's balance one block earlier was absent, against that block's root.
    let earlier = header(&rpc, height - 1).await;
    let mut params = json!({"address": bob.to_string()});
    params["height"] = Value::String(format!("{:#x}", height - 1));
    let (p, value, _) = state_proof(&rpc, params).await;
    assert_eq!(value, None);
    p.verify(&earlier.state_root.0, &balance_key(&bob), None)
        .expect("absent before");

    // Hostile parameters: typed errors, never a panic.
    for bad in [
        json!({"address": "hx00"}),
        json!({"address": bob.to_string(), "key": "0x00"}),
        json!({"address": token.to_string(), "key": format!("0x{}", "ab".repeat(5000))}),
        json!({"address": token.to_string(), "key": "0xｆｆ"}),
        json!({"address": bob.to_string(), "height": format!("0x{}1", "0".repeat(100_000))}),
        json!({"address": bob.to_string(), "height": "0xffffffffffffffff"}),
        json!({"address": bob.to_string(), "extra": 1}),
    ] {
        let err = rpc
            .call("icx_getProofForState", bad.clone())
            .await
            .expect_err("refused");
        assert!(!err.to_string().is_empty(), "{bad}");
    }
    assert!(nexus_tests::answers(&node.url()), "the node survived");
}
