//! The `btp_*` methods of a channel with a BTP role, the portal's view of it (names after
//! goloop's BTP2 API where they exist):
//! - `btp_getNetworkInfo`: the channel's BTP network, role and SCORE address;
//! - `btp_getHeader {height}`: the encoded header update for a light client (header, the votes
//!   that made it final, the next validator list when it changes);
//! - `btp_getMessages {height}`: the BTP `Message` events of the BMC (or the notary SCORE) in
//!   that block, each with its encoded event proof, and whether the block changes the
//!   validator set (a relayer must carry such a header even without messages);
//! - `btp_getProof {height, index, event}`: the encoded proof of one event;
//! - `btp_getDecision {height}` (notary channels): the Keccak-256 decision of a final block
//!   for verifiers that check signatures with `ecrecover` (`nexus_btp::decision`), this
//!   validator's signature of it, and each message with its path. A validator signs only
//!   final blocks, so it never signs two decisions for one height; a portal collects more than
//!   2/3 of the signatures from the validators and submits them with the messages. A block
//!   that changes the notary set names the next set (Ethereum addresses), so verifiers rotate
//!   on a decision the old set signed.
//!
//! Every answer is bytes a light client verifies; the node is not trusted for any of it.

use super::icx::{block_at, ChannelApi};
use super::params as p;
use crate::error::IconError;
use crate::ledger::genesis::GenesisBtp;
use nexus_btp::event::MessageEvent;
use nexus_light_clients::{BlockEvents, HeaderUpdate};
use nexus_proto::block::decode_validators;
use nexus_proto::value::{format_bytes, format_int};
use nexus_proto::Address;
use serde_json::{json, Map, Value};

/// The methods, for the channel's method table.
pub(super) const METHODS: [(&str, super::icx::Handler); 5] = [
    ("btp_getNetworkInfo", network_info),
    ("btp_getDecision", decision),
    ("btp_getHeader", header),
    ("btp_getMessages", messages),
    ("btp_getProof", proof),
];

fn role(api: &ChannelApi) -> Result<(&GenesisBtp, Address), IconError> {
    let b = api.btp.as_ref().ok_or_else(|| {
        IconError::not_found(format!(
            "channel {} has no BTP role (no btp section in its genesis)",
            api.chain.channel
        ))
    })?;
    let score = if b.notary {
        nexus_btp::NOTARY_ADDRESS
    } else {
        nexus_btp::BMC_ADDRESS
    };
    Ok((b, score))
}

fn network_info(api: &ChannelApi, o: Map<String, Value>) -> Result<Value, IconError> {
    p::only(&o, &[])?;
    let (b, score) = role(api)?;
    Ok(json!({
        "network": b.network,
        "role": if b.notary { "notary" } else { "bmc" },
        "score": score.to_string(),
        "nid": format_int(api.chain.nid),
        "channel": api.chain.channel,
        "latest": format_int(api.chain.head().header.height),
    }))
}

fn header(api: &ChannelApi, o: Map<String, Value>) -> Result<Value, IconError> {
    p::only(&o, &["height"])?;
    let height = p::u64(&o, "height")?;
    let block = block_at(api, height)?;
    let votes = api.chain.votes_for(height)?.ok_or_else(|| {
        IconError::not_found(format!(
            "block {} is not final yet (no votes)",
            format_int(height)
        ))
    })?;
    let h = &block.header;
    let next_validators = if h.next_validators_hash == h.validators_hash {
        None
    } else {
        let raw = api.chain.data(&h.next_validators_hash)?.ok_or_else(|| {
            IconError::internal(format!(
                "validator list {} of height {} is not stored",
                h.next_validators_hash,
                format_int(height)
            ))
        })?;
        Some(decode_validators(&raw).map_err(|e| IconError::internal(e.to_string()))?)
    };
    let u = HeaderUpdate {
        header: block.header,
        votes,
        next_validators,
    };
    Ok(Value::String(format_bytes(&u.encode())))
}

fn messages(api: &ChannelApi, o: Map<String, Value>) -> Result<Value, IconError> {
    p::only(&o, &["height"])?;
    let (_, score) = role(api)?;
    let height = p::u64(&o, "height")?;
    let block = block_at(api, height)?;
    let receipts = api.chain.receipts_of(&block)?;
    let trees = BlockEvents::new(height, &receipts);
    let mut out = Vec::new();
    for (i, r) in receipts.iter().enumerate() {
        for (j, e) in r.event_logs.iter().enumerate() {
            if e.score_address != score {
                continue;
            }
            let Ok(m) = MessageEvent::parse(e) else {
                continue;
            };
            let proof = trees
                .proof(i, j)
                .ok_or_else(|| IconError::internal("event proof out of range"))?;
            out.push(json!({
                "next": m.next,
                "seq": format_int(m.seq),
                "msg": format_bytes(&m.msg),
                "index": format_int(i as u64),
                "event": format_int(j as u64),
                "proof": format_bytes(&proof.encode()),
            }));
        }
    }
    let h = &block.header;
    Ok(json!({
        "height": format_int(height),
        "validatorsChange": h.next_validators_hash != h.validators_hash,
        "messages": out,
    }))
}

fn proof(api: &ChannelApi, o: Map<String, Value>) -> Result<Value, IconError> {
    p::only(&o, &["height", "index", "event"])?;
    let height = p::u64(&o, "height")?;
    let block = block_at(api, height)?;
    let receipts = api.chain.receipts_of(&block)?;
    let index = p::u64(&o, "index")? as usize;
    let event = p::u64(&o, "event")? as usize;
    let proof = BlockEvents::new(height, &receipts)
        .proof(index, event)
        .ok_or_else(|| {
            IconError::invalid_params(format!(
                "index {index:#x} event {event:#x}: the block has {} receipts{}",
                receipts.len(),
                receipts
                    .get(index)
                    .map(|r| format!(", that one {} events", r.event_logs.len()))
                    .unwrap_or_default()
            ))
        })?;
    Ok(Value::String(format_bytes(&proof.encode())))
}

fn decision(api: &ChannelApi, o: Map<String, Value>) -> Result<Value, IconError> {
    use nexus_btp::decision::{eth_address, leaf_hash, Decision, MessageTree};
    p::only(&o, &["height"])?;
    let (b, score) = role(api)?;
    if !b.notary {
        return Err(IconError::not_found(format!(
            "channel {} is not a notary channel: only notaries sign decisions",
            api.chain.channel
        )));
    }
    let height = p::u64(&o, "height")?;
    let block = block_at(api, height)?;
    if api.chain.votes_for(height)?.is_none() {
        return Err(IconError::not_found(format!(
            "block {} is not final yet (no votes)",
            format_int(height)
        )));
    }
    let h = &block.header;
    // A change of the set: the decision names the next set by Ethereum address, stored by the
    // chain SCORE when the change came with the validators' public keys.
    let next_set: Vec<[u8; 20]> = if h.next_validators_hash == h.validators_hash {
        vec![]
    } else {
        let raw = api
            .chain
            .score_value(
                &Address::SYSTEM,
                &crate::execution::score::chain_score::eth_set_key(height + 1),
            )
            .ok_or_else(|| {
                IconError::invalid_params(format!(
                    "block {} changes the notary set, and the change did not name the new \
                     validators' public keys (setValidators _publicKeys), so no decision can \
                     name the next set to Ethereum verifiers",
                    format_int(height)
                ))
            })?;
        raw.chunks_exact(20)
            .map(|c| {
                let mut a = [0u8; 20];
                a.copy_from_slice(c);
                a
            })
            .collect()
    };
    let receipts = api.chain.receipts_of(&block)?;
    let mut messages = Vec::new();
    for e in receipts.iter().flat_map(|r| &r.event_logs) {
        if e.score_address != score {
            continue;
        }
        if let Ok(m) = MessageEvent::parse(e) {
            messages.push(m);
        }
    }
    let tree = MessageTree::new(
        messages
            .iter()
            .map(|m| leaf_hash(&m.next, m.seq, &m.msg))
            .collect(),
    )
    .ok_or_else(|| IconError::internal("too many messages in one block"))?;
    let d = Decision {
        src: b.network.clone(),
        height,
        block_hash: block.hash(),
        messages_root: tree.root(),
        next_set,
    };
    let validators = api
        .chain
        .data(&h.validators_hash)?
        .and_then(|raw| decode_validators(&raw).ok())
        .unwrap_or_default();
    let signer = api
        .notary_key
        .as_ref()
        .filter(|k| validators.contains(&k.address()));
    let out: Vec<Value> = messages
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let path = tree
                .path(i)
                .unwrap_or_else(|| unreachable!("leaf {i} exists"));
            json!({
                "next": m.next,
                "seq": format_int(m.seq),
                "msg": format_bytes(&m.msg),
                "path": path.siblings.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
                "sides": format_int(path.sides),
            })
        })
        .collect();
    Ok(json!({
        "src": d.src,
        "height": format_int(height),
        "blockHash": d.block_hash.to_string(),
        "messagesRoot": d.messages_root.to_string(),
        "nextSet": d.next_set.iter().map(|a| format_bytes(a)).collect::<Vec<_>>(),
        "decisionHash": d.hash().to_string(),
        "signer": signer.map(|k| format_bytes(&eth_address(k))),
        "signature": signer.map(|k| format_bytes(&d.sign(k))),
        "messages": out,
    }))
}
