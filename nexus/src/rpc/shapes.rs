//! ICON JSON shapes of blocks, transactions, results and proofs.

use crate::error::IconError;
use crate::ledger::chain::{Chain, TxLocation};
use nexus_proto::block::Block;
use nexus_proto::merkle::ProofStep;
use nexus_proto::receipt::{EventLog, Receipt};
use nexus_proto::value::{format_bytes, format_int};
use nexus_proto::{Hash32, SignedTransaction};
use serde_json::{json, Map, Value};

/// The legacy v2 block (`icx_getLastBlock`, `icx_getBlockByHeight`, `icx_getBlockByHash`).
pub(super) fn block_v2(chain: &Chain, block: &Block) -> Result<Value, IconError> {
    let h = &block.header;
    let txs: Vec<Value> = if h.height == 0 {
        let g = chain.genesis_json()?;
        vec![json!({"accounts": g["accounts"], "message": g["message"], "nid": g["nid"]})]
    } else {
        let found = chain.transactions_json(&block.tx_hashes)?;
        block
            .tx_hashes
            .iter()
            .zip(found)
            .map(|(th, m)| match m {
                Some(mut m) => {
                    m.insert("txHash".into(), Value::String(th.to_string()));
                    Ok(Value::Object(m))
                }
                None => Err(IconError::internal(format!(
                    "transaction {th} of block {} missing",
                    h.height
                ))),
            })
            .collect::<Result<_, IconError>>()?
    };
    let prev = if h.height == 0 {
        String::new()
    } else {
        hex::encode(h.prev_hash.0)
    };
    let signature = block_signature(chain, h.height)?;
    let mut b = json!({
        "version": "2.0",
        "prev_block_hash": prev,
        "merkle_tree_root_hash": hex::encode(h.transactions_root.0),
        "time_stamp": h.timestamp,
        "block_hash": hex::encode(block.hash().0),
        "height": h.height,
        "peer_id": h.leader.to_string(),
        "signature": signature,
        "next_leader": h.leader.to_string(),
    });
    // Moved in, not through `json!`, which would copy every transaction once more.
    b["confirmed_transaction_list"] = Value::Array(txs);
    Ok(b)
}

fn block_signature(chain: &Chain, height: u64) -> Result<String, IconError> {
    let votes = chain.votes_for(height)?;
    Ok(votes
        .and_then(|v| {
            v.items
                .first()
                .map(|i| nexus_proto::value::format_base64(&i.signature))
        })
        .unwrap_or_default())
}

/// A committed transaction (`icx_getTransactionByHash`).
pub(super) fn transaction(tx: &SignedTransaction, loc: TxLocation, block_hash: &Hash32) -> Value {
    let mut m: Map<String, Value> = tx.raw.clone();
    m.insert("txHash".into(), Value::String(tx.hash.to_string()));
    m.insert("txIndex".into(), Value::String(format_int(loc.index)));
    m.insert("blockHeight".into(), Value::String(format_int(loc.height)));
    m.insert("blockHash".into(), Value::String(block_hash.to_string()));
    Value::Object(m)
}

/// An event log.
pub(super) fn event_log(e: &EventLog) -> Value {
    json!({"scoreAddress": e.score_address.to_string(), "indexed": e.indexed, "data": e.data})
}

/// A transaction result (`icx_getTransactionResult`).
pub(super) fn result(r: &Receipt, tx_hash: &Hash32, loc: TxLocation, block_hash: &Hash32) -> Value {
    let mut m = json!({
        "status": format_int(r.status),
        "to": r.to.to_string(),
        "txHash": tx_hash.to_string(),
        "txIndex": format_int(loc.index),
        "blockHeight": format_int(loc.height),
        "blockHash": block_hash.to_string(),
        "cumulativeStepUsed": format_int(r.cumulative_step_used),
        "stepUsed": format_int(r.step_used),
        "stepPrice": format_int(r.step_price),
        "eventLogs": r.event_logs.iter().map(event_log).collect::<Vec<_>>(),
        "logsBloom": format_bytes(&r.logs_bloom()),
    });
    if r.status == 0 {
        m["failure"] = json!({"code": format_int(r.failure_code), "message": r.failure_message});
    }
    m
}

/// A Merkle proof as `[{"left": hash} | {"right": hash}]` (the sibling's side).
pub(super) fn proof(steps: &[ProofStep]) -> Value {
    Value::Array(
        steps
            .iter()
            .map(|s| {
                let side = if s.sibling_is_left { "left" } else { "right" };
                json!({ side: s.sibling.to_string() })
            })
            .collect(),
    )
}
