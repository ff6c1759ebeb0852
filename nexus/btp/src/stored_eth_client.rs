//! An Ethereum light client kept in a SCORE's storage: the notary SCORE of a notary channel
//! whose source is an Ethereum chain keeps one, and checks the source BMC's `Message` logs
//! with it.
//!
//! Under a prefix: `ecfg` = RLP[chain id, confirmations, checkpoint number, emitter (20 bytes)],
//! `ehead` = the head's number, `eh/<number>` = hash || receiptsRoot of each held header (the
//! last [`KEEP_HEADERS`]). Applying headers reads only the unconfirmed part of the chain.

use crate::event::MessageEvent;
use crate::BtpError;
use alloy_rlp::{RlpDecodable, RlpEncodable};
use alloy_sol_types::{sol, SolEvent};
use nexus_light_clients::ethereum::{EthClient, EthUpdate, Held, ReceiptProof, KEEP_HEADERS};
use nexus_light_clients::{LightClient, LightClientError};
use nexus_proto::Hash32;
use nexus_score::{CallContext, ScoreError};
use std::collections::BTreeMap;

sol! {
    /// The Solidity BMC's message event.
    event Message(string next, uint256 indexed seq, bytes msg);
}

/// Steps charged per Ethereum header applied (RLP decoding and Keccak-256).
pub const STEPS_PER_HEADER: u128 = 2_000;
/// Steps charged per receipt proof checked.
pub const STEPS_PER_PROOF: u128 = 10_000;

/// What a stored Ethereum client is set up with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EthSetup {
    /// The chain id.
    pub chain_id: u64,
    /// The trusted header, RLP (checked out of band by the admin).
    pub checkpoint: Vec<u8>,
    /// Headers needed above a block before its receipts are accepted.
    pub confirmations: u64,
    /// The contract whose `Message` logs are accepted (the source BMC).
    pub emitter: [u8; 20],
}

#[derive(RlpEncodable, RlpDecodable)]
struct Cfg {
    chain_id: u64,
    confirmations: u64,
    checkpoint: u64,
    emitter: alloy_primitives::Address,
}

fn key(prefix: &[u8], name: &[u8]) -> Vec<u8> {
    [prefix, name].concat()
}

fn header_key(prefix: &[u8], n: u64) -> Vec<u8> {
    [prefix, b"eh/", &n.to_be_bytes()].concat()
}

fn corrupt(what: &str) -> ScoreError {
    ScoreError::new(1, format!("stored Ethereum client: {what} does not decode"))
}

/// Most confirmations a client may require (its reorg window is read on every update).
pub const MAX_CONFIRMATIONS: u64 = 256;

/// True when an Ethereum client is stored under `prefix`.
pub fn exists(ctx: &CallContext<'_, '_>, prefix: &[u8]) -> bool {
    ctx.get(&key(prefix, b"ecfg")).is_some()
}

/// Stores a new client under `prefix`.
pub fn install(
    ctx: &mut CallContext<'_, '_>,
    prefix: &[u8],
    name: &str,
    s: EthSetup,
) -> Result<(), ScoreError> {
    if exists(ctx, prefix) {
        return Err(BtpError::VerifierExists(name.to_string()).into());
    }
    if s.confirmations > MAX_CONFIRMATIONS {
        return Err(ScoreError::invalid_param(format!(
            "_confirmations: expected at most {MAX_CONFIRMATIONS}, got {}",
            s.confirmations
        )));
    }
    let lc = EthClient::new(s.chain_id, &s.checkpoint, s.confirmations).map_err(|error| {
        BtpError::LightClient {
            context: "checkpoint".into(),
            error,
        }
    })?;
    let cfg = Cfg {
        chain_id: s.chain_id,
        confirmations: s.confirmations,
        checkpoint: lc.head().0,
        emitter: s.emitter.into(),
    };
    ctx.set(&key(prefix, b"ecfg"), alloy_rlp::encode(&cfg))?;
    save(ctx, prefix, &BTreeMap::new(), &lc)
}

fn load_cfg(ctx: &CallContext<'_, '_>, prefix: &[u8]) -> Result<Cfg, ScoreError> {
    let raw = ctx.get(&key(prefix, b"ecfg")).ok_or_else(|| {
        ScoreError::from(BtpError::NoVerifier(
            String::from_utf8_lossy(prefix).into_owned(),
        ))
    })?;
    alloy_rlp::Decodable::decode(&mut raw.as_slice()).map_err(|_| corrupt("cfg"))
}

fn head(ctx: &CallContext<'_, '_>, prefix: &[u8]) -> Result<u64, ScoreError> {
    ctx.get(&key(prefix, b"ehead"))
        .and_then(|b| <[u8; 8]>::try_from(b.as_slice()).ok())
        .map(u64::from_be_bytes)
        .ok_or_else(|| corrupt("head"))
}

fn held(ctx: &CallContext<'_, '_>, prefix: &[u8], n: u64) -> Option<Held> {
    let b = ctx.get(&header_key(prefix, n))?;
    (b.len() == 64).then(|| Held {
        hash: Hash32(b[..32].try_into().unwrap_or([0; 32])),
        receipts_root: Hash32(b[32..].try_into().unwrap_or([0; 32])),
    })
}

/// Writes the headers of `lc` that differ from `before`, deletes those it dropped, and forgets
/// headers older than the window.
fn save(
    ctx: &mut CallContext<'_, '_>,
    prefix: &[u8],
    before: &BTreeMap<u64, Held>,
    lc: &EthClient,
) -> Result<(), ScoreError> {
    let (_, _, _, after) = lc.parts();
    for (n, h) in after {
        if before.get(n) != Some(h) {
            ctx.set(
                &header_key(prefix, *n),
                [h.hash.0, h.receipts_root.0].concat(),
            )?;
        }
    }
    for n in before.keys().filter(|n| !after.contains_key(n)) {
        ctx.delete(&header_key(prefix, *n))?;
    }
    let new_head = lc.head().0;
    let old_head = before.keys().next_back().copied().unwrap_or(new_head);
    let keep = KEEP_HEADERS as u64;
    for n in old_head.saturating_sub(keep)..new_head.saturating_sub(keep) {
        ctx.delete(&header_key(prefix, n))?;
    }
    ctx.set(&key(prefix, b"ehead"), new_head.to_be_bytes().to_vec())
}

/// The verified head number, the chain id and the confirmations, if a client is stored.
pub fn status(ctx: &CallContext<'_, '_>, prefix: &[u8]) -> Option<(u64, u64, u64)> {
    let cfg = load_cfg(ctx, prefix).ok()?;
    Some((head(ctx, prefix).ok()?, cfg.chain_id, cfg.confirmations))
}

/// Applies encoded header updates ([`EthUpdate`]) in order; any refusal fails the whole call.
pub fn apply_updates(
    ctx: &mut CallContext<'_, '_>,
    prefix: &[u8],
    updates: &[Vec<u8>],
) -> Result<(), ScoreError> {
    if updates.is_empty() {
        return Ok(());
    }
    let cfg = load_cfg(ctx, prefix)?;
    for (i, raw) in updates.iter().enumerate() {
        let lc_err = |error| BtpError::LightClient {
            context: format!("update {i}"),
            error,
        };
        let u = EthUpdate::decode(raw).map_err(lc_err)?;
        ctx.charge(STEPS_PER_HEADER * u.headers.len() as u128)?;
        // The part of the chain an update can touch: the unconfirmed headers and their parent.
        let top = head(ctx, prefix)?;
        let low = top
            .saturating_sub(cfg.confirmations + 1)
            .max(cfg.checkpoint);
        let before: BTreeMap<u64, Held> = (low..=top)
            .filter_map(|n| held(ctx, prefix, n).map(|h| (n, h)))
            .collect();
        let mut lc = EthClient::from_parts(
            cfg.chain_id,
            cfg.confirmations,
            cfg.checkpoint,
            before.clone(),
            nexus_light_clients::ethereum::NoConsensusCheck,
        )
        .map_err(lc_err)?;
        lc.apply(u).map_err(lc_err)?;
        save(ctx, prefix, &before, &lc)?;
    }
    Ok(())
}

/// The event signature hash of `Message(string,uint256,bytes)`.
pub fn message_topic() -> Hash32 {
    Hash32(Message::SIGNATURE_HASH.0)
}

/// The receipt the last full proof of a relay verified: (block, index, encoded receipt), for
/// the follow-on proofs after it.
pub type LastReceipt = Option<(u64, u64, Vec<u8>)>;

/// Checks an encoded receipt proof against a confirmed held header (or, for a follow-on proof,
/// against the receipt `last` verified in this relay), the accepted emitter and the `Message`
/// event; returns the message.
pub fn verify_message(
    ctx: &mut CallContext<'_, '_>,
    prefix: &[u8],
    index: usize,
    raw: &[u8],
    last: &mut LastReceipt,
) -> Result<MessageEvent, ScoreError> {
    ctx.charge(STEPS_PER_PROOF)?;
    let cfg = load_cfg(ctx, prefix)?;
    let lc_err = |error| BtpError::LightClient {
        context: format!("proof {index}"),
        error,
    };
    let proof = ReceiptProof::decode(raw).map_err(lc_err)?;
    if proof.is_follow_on() {
        let log = match last {
            Some((block, idx, receipt)) => proof.follow_on_log(*block, *idx, receipt),
            None => proof.follow_on_log(u64::MAX, u64::MAX, &[]),
        }
        .map_err(lc_err)?;
        return message_of(&cfg, log);
    }
    let top = head(ctx, prefix)?;
    let h = held(ctx, prefix, proof.block)
        .ok_or(LightClientError::UnknownHeight(proof.block))
        .map_err(lc_err)?;
    if top.saturating_sub(proof.block) < cfg.confirmations {
        return Err(lc_err(LightClientError::Proof(format!(
            "block {} has fewer than {} confirmations (head {top})",
            proof.block, cfg.confirmations
        )))
        .into());
    }
    let log = proof.verify(&h.receipts_root).map_err(lc_err)?;
    *last = Some((proof.block, proof.index, proof.receipt));
    message_of(&cfg, log)
}

fn message_of(
    cfg: &Cfg,
    log: nexus_light_clients::ethereum::EthLog,
) -> Result<MessageEvent, ScoreError> {
    let emitter: [u8; 20] = cfg.emitter.into();
    if log.address != emitter {
        return Err(BtpError::WrongEmitter {
            expected: cfg.emitter.to_string(),
            got: alloy_primitives::Address::from(log.address).to_string(),
        }
        .into());
    }
    let topics: Vec<alloy_primitives::B256> = log.topics.iter().map(|t| t.0.into()).collect();
    let m = Message::decode_raw_log(topics, &log.data)
        .map_err(|e| BtpError::NotAMessage(format!("Message(string,uint256,bytes): {e}")))?;
    let seq = u128::try_from(m.seq)
        .map_err(|_| BtpError::NotAMessage(format!("sequence number {} above 2^128", m.seq)))?;
    if m.msg.len() > nexus_proto::btp::MAX_MESSAGE_BYTES {
        return Err(BtpError::NotAMessage(format!("message of {} bytes", m.msg.len())).into());
    }
    Ok(MessageEvent {
        next: m.next,
        seq,
        msg: m.msg.to_vec(),
    })
}
