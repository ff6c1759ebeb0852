//! A client proves a receipt and an event against a block header, and the header against the
//! validator votes, using only JSON-RPC answers (`icx_getProofForEvents`,
//! `icx_getBlockHeaderByHeight`, `icx_getVotesByHeight`, `icx_getDataByHash`).

use nexus::client::RpcClient;
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
