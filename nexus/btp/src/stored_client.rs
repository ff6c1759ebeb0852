//! A loopchain light client kept in a SCORE's storage: the BMC keeps one per source network
//! (a client of Nexus' `notary-<source>` channel), the notary SCORE one of its source chain.
//!
//! Under a prefix: `cfg` = RLP[nid, channel, emitter], `head` = the verified header, `set` = the
//! validators that vote on the next header, `root/<height>` = each verified receipts root (only
//! the headers relayers carried, since updates may skip).

use crate::BtpError;
use alloy_rlp::{RlpDecodable, RlpEncodable};
use nexus_light_clients::{EventProof, HeaderUpdate, LightClient, LoopchainClient};
use nexus_proto::block::{decode_validators, encode_validators, BlockHeader};
use nexus_proto::receipt::EventLog;
use nexus_proto::{Address, Hash32};
use nexus_score::{CallContext, ScoreError};

/// Steps charged per vote signature checked (a secp256k1 recovery).
pub const STEPS_PER_SIGNATURE: u128 = 20_000;
/// Steps charged per event proof checked.
pub const STEPS_PER_PROOF: u128 = 5_000;

/// What a stored client is set up with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientSetup {
    /// The followed chain's nid.
    pub nid: u64,
    /// The followed channel.
    pub channel: String,
    /// The SCORE whose events are accepted (the source BMC, or the notary SCORE).
    pub emitter: Address,
    /// The trusted header (checked out of band by the admin).
    pub checkpoint: BlockHeader,
    /// The set that votes on the header after it.
    pub validators: Vec<Address>,
}

#[derive(RlpEncodable, RlpDecodable)]
struct Cfg {
    nid: u64,
    channel: String,
    emitter: Address,
}

fn key(prefix: &[u8], name: &[u8]) -> Vec<u8> {
    [prefix, name].concat()
}

fn root_key(prefix: &[u8], height: u64) -> Vec<u8> {
    [prefix, b"root/", &height.to_be_bytes()].concat()
}

fn corrupt(what: &str) -> ScoreError {
    ScoreError::new(1, format!("stored light client: {what} does not decode"))
}

/// True when a client is stored under `prefix`.
pub fn exists(ctx: &CallContext<'_, '_>, prefix: &[u8]) -> bool {
    ctx.get(&key(prefix, b"cfg")).is_some()
}

/// Stores a new client under `prefix` (refused when one exists or the checkpoint does not
/// match the set).
pub fn install(
    ctx: &mut CallContext<'_, '_>,
    prefix: &[u8],
    name: &str,
    s: ClientSetup,
) -> Result<(), ScoreError> {
    if exists(ctx, prefix) {
        return Err(BtpError::VerifierExists(name.to_string()).into());
    }
    let lc = LoopchainClient::new(
        s.nid,
        &s.channel,
        s.checkpoint.clone(),
        s.validators.clone(),
    )
    .map_err(|error| BtpError::LightClient {
        context: "checkpoint".into(),
        error,
    })?;
    let cfg = Cfg {
        nid: s.nid,
        channel: s.channel,
        emitter: s.emitter,
    };
    ctx.set(&key(prefix, b"cfg"), alloy_rlp::encode(&cfg))?;
    save(ctx, prefix, &lc)
}

fn save(
    ctx: &mut CallContext<'_, '_>,
    prefix: &[u8],
    lc: &LoopchainClient,
) -> Result<(), ScoreError> {
    let head = lc.head();
    ctx.set(&key(prefix, b"head"), head.to_rlp())?;
    ctx.set(
        &key(prefix, b"set"),
        encode_validators(lc.next_validators()),
    )?;
    ctx.set(
        &root_key(prefix, head.height),
        head.receipts_root.0.to_vec(),
    )
}

fn load_cfg(ctx: &CallContext<'_, '_>, prefix: &[u8]) -> Result<Cfg, ScoreError> {
    let raw = ctx.get(&key(prefix, b"cfg")).ok_or_else(|| {
        ScoreError::from(BtpError::NoVerifier(
            String::from_utf8_lossy(prefix).into_owned(),
        ))
    })?;
    alloy_rlp::Decodable::decode(&mut raw.as_slice()).map_err(|_| corrupt("cfg"))
}

fn load(ctx: &CallContext<'_, '_>, prefix: &[u8]) -> Result<(Cfg, LoopchainClient), ScoreError> {
    let cfg = load_cfg(ctx, prefix)?;
    let head = ctx
        .get(&key(prefix, b"head"))
        .and_then(|b| BlockHeader::from_rlp(&b).ok())
        .ok_or_else(|| corrupt("head"))?;
    let set = ctx
        .get(&key(prefix, b"set"))
        .and_then(|b| decode_validators(&b).ok())
        .ok_or_else(|| corrupt("set"))?;
    let lc = LoopchainClient::new(cfg.nid, &cfg.channel, head, set).map_err(|_| corrupt("set"))?;
    Ok((cfg, lc))
}

/// The verified height and the followed chain (nid, channel), if a client is stored.
pub fn status(ctx: &CallContext<'_, '_>, prefix: &[u8]) -> Option<(u64, u64, String)> {
    let (cfg, lc) = load(ctx, prefix).ok()?;
    Some((lc.height(), cfg.nid, cfg.channel))
}

/// Applies encoded header updates in order; any refusal fails the whole call.
pub fn apply_updates(
    ctx: &mut CallContext<'_, '_>,
    prefix: &[u8],
    updates: &[Vec<u8>],
) -> Result<(), ScoreError> {
    if updates.is_empty() {
        return Ok(());
    }
    let (_, mut lc) = load(ctx, prefix)?;
    for (i, raw) in updates.iter().enumerate() {
        let lc_err = |error| BtpError::LightClient {
            context: format!("update {i}"),
            error,
        };
        let u = HeaderUpdate::decode(raw).map_err(lc_err)?;
        ctx.charge(STEPS_PER_SIGNATURE * u.votes.items.len() as u128)?;
        lc.apply(u).map_err(lc_err)?;
        save(ctx, prefix, &lc)?;
    }
    Ok(())
}

/// Checks an encoded event proof against a verified header and the accepted emitter; returns
/// the proven event.
pub fn verify_event(
    ctx: &mut CallContext<'_, '_>,
    prefix: &[u8],
    index: usize,
    raw: &[u8],
) -> Result<EventLog, ScoreError> {
    ctx.charge(STEPS_PER_PROOF)?;
    let cfg = load_cfg(ctx, prefix)?;
    let lc_err = |error| BtpError::LightClient {
        context: format!("proof {index}"),
        error,
    };
    let proof = EventProof::decode(raw).map_err(lc_err)?;
    let root = ctx
        .get(&root_key(prefix, proof.height))
        .and_then(|b| <[u8; 32]>::try_from(b.as_slice()).ok())
        .map(Hash32)
        .ok_or(nexus_light_clients::LightClientError::UnknownHeight(
            proof.height,
        ))
        .map_err(lc_err)?;
    proof.verify(&root).map_err(lc_err)?;
    if proof.event.score_address != cfg.emitter {
        return Err(BtpError::WrongEmitter {
            expected: cfg.emitter.to_string(),
            got: proof.event.score_address.to_string(),
        }
        .into());
    }
    Ok(proof.event)
}
