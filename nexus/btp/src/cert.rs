//! The `cert` service (the certificate transfer example of ICON's BTP design): register a
//! certificate's public key under its subject hash on one chain, send it to another, and verify
//! it there.
//!
//! Storage: `c/own/<subject>` registered here; `c/in/<src>/<subject>` received from `src`.

use crate::bmc::{code, has_route, next_sn, set_status, Bmc};
use crate::{check_network, BtpError};
use alloy_rlp::{RlpDecodable, RlpEncodable};
use nexus_proto::btp::ErrorMessage;
use nexus_proto::value::{format_bool, format_bytes, format_int};
use nexus_score::{expect_params, param_bytes, param_string, CallContext, ScoreError};
use serde_json::{Map, Value};

/// The service name.
pub const SERVICE: &str = "cert";
/// Longest public key accepted.
pub const MAX_PUBKEY_BYTES: usize = 128;

/// What a certificate message carries.
#[derive(Debug, Clone, PartialEq, Eq, RlpEncodable, RlpDecodable)]
pub struct CertMessage {
    /// SHA3-256 of the certificate's subject.
    pub subject: alloy_rlp::Bytes,
    /// The certificate's public key.
    pub pubkey: alloy_rlp::Bytes,
}

fn received_key(src: &str, subject: &[u8]) -> Vec<u8> {
    [b"c/in/", src.as_bytes(), b"/", subject].concat()
}

fn subject_param(p: &Map<String, Value>) -> Result<Vec<u8>, ScoreError> {
    let s = param_bytes(p, "_subject")?
        .ok_or_else(|| ScoreError::invalid_param("missing parameter _subject"))?;
    if s.len() != 32 {
        return Err(ScoreError::invalid_param(format!(
            "_subject: expected a 32-byte hash, got {} bytes",
            s.len()
        )));
    }
    Ok(s)
}

fn pubkey_param(p: &Map<String, Value>) -> Result<Vec<u8>, ScoreError> {
    let k = param_bytes(p, "_pubkey")?
        .ok_or_else(|| ScoreError::invalid_param("missing parameter _pubkey"))?;
    if k.is_empty() || k.len() > MAX_PUBKEY_BYTES {
        return Err(ScoreError::invalid_param(format!(
            "_pubkey: expected 1..={MAX_PUBKEY_BYTES} bytes, got {}",
            k.len()
        )));
    }
    Ok(k)
}

/// The service's methods on the BMC.
pub(crate) fn call(
    bmc: &Bmc,
    ctx: &mut CallContext<'_, '_>,
    method: &str,
    p: &Map<String, Value>,
) -> Result<Value, ScoreError> {
    match method {
        "getCert" => {
            expect_params(p, &["_src", "_subject"])?;
            let src = param_string(p, "_src", crate::MAX_NETWORK_BYTES)?;
            let subject = subject_param(p)?;
            Ok(ctx
                .get(&received_key(&src, &subject))
                .map(|k| Value::String(format_bytes(&k)))
                .unwrap_or(Value::Null))
        }
        "verifyCert" => {
            expect_params(p, &["_src", "_subject", "_pubkey"])?;
            let src = param_string(p, "_src", crate::MAX_NETWORK_BYTES)?;
            let subject = subject_param(p)?;
            let key = pubkey_param(p)?;
            let ok = ctx.get(&received_key(&src, &subject)).as_deref() == Some(&key[..]);
            Ok(Value::String(format_bool(ok).into()))
        }
        "registerCert" => {
            expect_params(p, &["_dst", "_subject", "_pubkey"])?;
            let dst = param_string(p, "_dst", crate::MAX_NETWORK_BYTES)?;
            check_network("_dst", &dst)?;
            let subject = subject_param(p)?;
            let pubkey = pubkey_param(p)?;
            if dst == bmc.network {
                return Err(BtpError::Service("_dst is this chain".into()).into());
            }
            if !has_route(ctx, &dst) {
                return Err(BtpError::NoRoute(dst).into());
            }
            ctx.set(&[b"c/own/", &subject[..]].concat(), pubkey.clone())?;
            let sn = next_sn(ctx)?;
            set_status(ctx, sn, "sent")?;
            let msg = CertMessage {
                subject: subject.into(),
                pubkey: pubkey.into(),
            };
            bmc.send(
                ctx,
                &dst,
                SERVICE,
                sn as i128,
                alloy_rlp::encode(&msg),
                None,
            )?;
            Ok(Value::String(format_int(sn)))
        }
        other => Err(ScoreError::new(
            nexus_score::failure::METHOD_NOT_FOUND,
            format!("cert service has no method {other:?}"),
        )),
    }
}

/// Stores a certificate sent from `src`.
pub(crate) fn on_request(
    ctx: &mut CallContext<'_, '_>,
    src: &str,
    payload: &[u8],
) -> Result<(), String> {
    let m: CertMessage = alloy_rlp::Decodable::decode(&mut &payload[..])
        .map_err(|e| format!("cert message does not decode: {e}"))?;
    if m.subject.len() != 32 || m.pubkey.is_empty() || m.pubkey.len() > MAX_PUBKEY_BYTES {
        return Err("cert message: expected a 32-byte subject and a 1..=128-byte key".into());
    }
    ctx.set(&received_key(src, &m.subject), m.pubkey.to_vec())
        .map_err(|e| e.message)
}

/// Marks one of our certificate messages delivered or failed.
pub(crate) fn on_reply(
    ctx: &mut CallContext<'_, '_>,
    sn: u128,
    reply: &ErrorMessage,
) -> Result<(), ScoreError> {
    let status = if reply.code == code::OK {
        "delivered"
    } else {
        "failed"
    };
    set_status(ctx, sn, status)
}
