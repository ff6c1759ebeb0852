//! The BTP message center (BMC) of a chain: sends its services' messages as `Message` events
//! (one sequence for the link to Nexus), receives notarized messages relayed from Nexus
//! (`handleRelayMessage`: the verifier of the source's notary channel checks each proof, then
//! strict sequencing per source), dispatches them to the services and sends their replies.
//!
//! Storage: `txseq`, `sn`, `rx/<src>`, `m/<sn>` (message status), `v/<src>/...` (verifiers),
//! and the services' own keys (`t/...`, `c/...`).

use crate::event::{check_sequence, MessageEvent};
use crate::stored_client::{self, ClientSetup};
use crate::{cert, check_network, token, BtpError};
use nexus_proto::block::{decode_validators, BlockHeader};
use nexus_proto::btp::{BtpMessage, ErrorMessage};
use nexus_proto::value::{format_bytes, format_i128, format_int};
use nexus_proto::Address;
use nexus_score::state::decode_u128;
use nexus_score::{
    expect_params, failure, param_address, param_bytes, param_bytes_list, param_int, param_string,
    CallContext, NativeScore, ScoreError,
};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

/// Most header updates in one relay call.
pub const MAX_UPDATES: usize = 64;
/// Most message proofs in one relay call.
pub const MAX_PROOFS: usize = 256;

/// Event emitted on every send, receipt and drop: `BTPEvent(str,int,str,str)`.
pub const BTP_EVENT_SIG: &str = "BTPEvent(str,int,str,str)";

/// Reply codes of the error message (`[code, message]`).
pub mod code {
    /// Delivered.
    pub const OK: i128 = 0;
    /// Unknown failure.
    pub const UNKNOWN: i128 = 1;
    /// No such service on the destination.
    pub const NO_SERVICE: i128 = 3;
    /// The service refused the message.
    pub const SERVICE_REVERTED: i128 = 4;
}

/// The BMC of one chain.
#[derive(Debug, Clone, Default)]
pub struct Bmc {
    /// This chain's BTP network address (`0x3.loop`).
    pub network: String,
    /// Who may register verifiers.
    pub admin: Option<Address>,
    /// Services that are SCOREs of their own (the DEX's `dex`), by name: the BMC hands them
    /// messages (`handleBTPMessage(_from, _svc, _sn, _msg)`) and replies (`handleBTPError(_src,
    /// _svc, _sn, _code, _msg)`), and sends for them (`sendMessage`, callable by that SCORE only).
    pub services: BTreeMap<String, Address>,
}

/// Reads a stored unsigned integer (absent is zero).
pub fn get_u128(ctx: &CallContext<'_, '_>, key: &[u8]) -> u128 {
    decode_u128(ctx.get(key))
}

/// Stores an unsigned integer (16 bytes BE).
pub fn set_u128(ctx: &mut CallContext<'_, '_>, key: &[u8], v: u128) -> Result<(), ScoreError> {
    ctx.set(key, v.to_be_bytes().to_vec())
}

fn verifier_prefix(src: &str) -> Vec<u8> {
    [b"v/", src.as_bytes(), b"/"].concat()
}

fn status_key(sn: u128) -> Vec<u8> {
    [b"m/".as_slice(), &sn.to_be_bytes()].concat()
}

fn seq_key(sn: u128) -> Vec<u8> {
    [b"q/".as_slice(), &sn.to_be_bytes()].concat()
}

/// Sets the status of an own message (`sent`, `delivered`, `refunded`, `failed`).
pub(crate) fn set_status(
    ctx: &mut CallContext<'_, '_>,
    sn: u128,
    status: &str,
) -> Result<(), ScoreError> {
    ctx.set(&status_key(sn), status.as_bytes().to_vec())
}

/// True when a verifier for `net` exists (so replies from it can come back).
pub(crate) fn has_route(ctx: &CallContext<'_, '_>, net: &str) -> bool {
    stored_client::exists(ctx, &verifier_prefix(net))
}

/// The next service serial number.
pub(crate) fn next_sn(ctx: &mut CallContext<'_, '_>) -> Result<u128, ScoreError> {
    let sn = get_u128(ctx, b"sn") + 1;
    set_u128(ctx, b"sn", sn)?;
    Ok(sn)
}

fn btp_event(
    ctx: &mut CallContext<'_, '_>,
    src: &str,
    nsn: i128,
    next: &str,
    what: &str,
) -> Result<(), ScoreError> {
    ctx.emit(
        vec![BTP_EVENT_SIG.into(), src.into(), format_i128(nsn)],
        vec![next.into(), what.into()],
    )
}

impl Bmc {
    /// Sends a BTP message: the next link sequence number, a `Message` event, a `BTPEvent`.
    pub(crate) fn send(
        &self,
        ctx: &mut CallContext<'_, '_>,
        dst: &str,
        svc: &str,
        sn: i128,
        payload: Vec<u8>,
        nsn: Option<i128>,
    ) -> Result<(), ScoreError> {
        let seq = get_u128(ctx, b"txseq") + 1;
        set_u128(ctx, b"txseq", seq)?;
        if sn > 0 && !self.services.contains_key(svc) {
            // Where the request went out on the link, so a wallet can follow it (the BMC's own
            // services share its serial numbers; a SCORE service keeps its own).
            set_u128(ctx, &seq_key(sn as u128), seq)?;
        }
        let nsn = nsn.unwrap_or(seq as i128);
        let m = BtpMessage {
            src: self.network.clone(),
            dst: dst.to_string(),
            svc: svc.to_string(),
            sn,
            msg: payload,
            nsn,
        };
        MessageEvent {
            next: dst.to_string(),
            seq,
            msg: m.encode(),
        }
        .emit(ctx)?;
        btp_event(ctx, &self.network, nsn, dst, "SEND")
    }

    fn check_admin(&self, ctx: &CallContext<'_, '_>) -> Result<(), BtpError> {
        match self.admin {
            Some(a) if a == ctx.from => Ok(()),
            other => Err(BtpError::NotAdmin {
                admin: other
                    .map(|a| a.to_string())
                    .unwrap_or_else(|| "(none)".into()),
                caller: ctx.from.to_string(),
            }),
        }
    }

    fn add_verifier(
        &self,
        ctx: &mut CallContext<'_, '_>,
        p: &Map<String, Value>,
    ) -> Result<Value, ScoreError> {
        expect_params(
            p,
            &[
                "_src",
                "_nid",
                "_channel",
                "_checkpoint",
                "_validators",
                "_emitter",
            ],
        )?;
        self.check_admin(ctx)?;
        let src = param_string(p, "_src", crate::MAX_NETWORK_BYTES)?;
        check_network("_src", &src)?;
        let setup = read_setup(p)?;
        stored_client::install(ctx, &verifier_prefix(&src), &src, setup)?;
        Ok(Value::Null)
    }

    fn handle_relay(
        &self,
        ctx: &mut CallContext<'_, '_>,
        p: &Map<String, Value>,
    ) -> Result<Value, ScoreError> {
        expect_params(p, &["_src", "_updates", "_proofs"])?;
        let src = param_string(p, "_src", crate::MAX_NETWORK_BYTES)?;
        check_network("_src", &src)?;
        let prefix = verifier_prefix(&src);
        if !stored_client::exists(ctx, &prefix) {
            return Err(BtpError::NoVerifier(src).into());
        }
        let updates = param_bytes_list(
            p,
            "_updates",
            MAX_UPDATES,
            nexus_light_clients::loopchain::MAX_UPDATE_BYTES,
        )?;
        let proofs = param_bytes_list(
            p,
            "_proofs",
            MAX_PROOFS,
            nexus_light_clients::loopchain::MAX_PROOF_BYTES,
        )?;
        stored_client::apply_updates(ctx, &prefix, &updates)?;
        let rx_key = [b"rx/", src.as_bytes()].concat();
        for (i, raw) in proofs.iter().enumerate() {
            let ev = stored_client::verify_event(ctx, &prefix, i, raw)?;
            let m = MessageEvent::parse(&ev)?;
            if m.next != self.network {
                return Err(BtpError::WrongDestination {
                    expected: self.network.clone(),
                    got: m.next,
                }
                .into());
            }
            let last = get_u128(ctx, &rx_key);
            check_sequence(last, m.seq)?;
            set_u128(ctx, &rx_key, m.seq)?;
            let msg =
                BtpMessage::decode(&m.msg).map_err(|e| BtpError::BadMessage(e.to_string()))?;
            if msg.dst != self.network {
                return Err(BtpError::WrongDestination {
                    expected: self.network.clone(),
                    got: msg.dst,
                }
                .into());
            }
            if msg.src != src {
                return Err(BtpError::WrongDestination {
                    expected: src,
                    got: msg.src,
                }
                .into());
            }
            btp_event(ctx, &msg.src, msg.nsn, &self.network, "RECEIVE")?;
            self.dispatch(ctx, &msg)?;
        }
        Ok(Value::Null)
    }

    fn dispatch(&self, ctx: &mut CallContext<'_, '_>, msg: &BtpMessage) -> Result<(), ScoreError> {
        if msg.sn < 0 {
            // A reply to one of ours: [code, message].
            let Ok(reply) = ErrorMessage::decode(&msg.msg) else {
                return btp_event(ctx, &msg.src, msg.nsn, &self.network, "DROP");
            };
            let sn = msg.sn.unsigned_abs();
            return match msg.svc.as_str() {
                token::SERVICE => token::on_reply(self, ctx, sn, &reply),
                cert::SERVICE => cert::on_reply(ctx, sn, &reply),
                svc => match self.services.get(svc) {
                    // A service that cannot take its reply must not stop the link: the reply
                    // is dropped (with an event) and the next message goes on.
                    Some(addr) => {
                        let p = json!({"_src": msg.src, "_svc": svc, "_sn": format_int(sn),
                                       "_code": format_i128(reply.code), "_msg": reply.message});
                        match ctx.call(addr, "handleBTPError", &as_map(p), 0) {
                            Ok(_) => Ok(()),
                            Err(e) if e.code == failure::OUT_OF_STEP => Err(e),
                            Err(_) => btp_event(ctx, &msg.src, msg.nsn, &self.network, "DROP"),
                        }
                    }
                    None => btp_event(ctx, &msg.src, msg.nsn, &self.network, "DROP"),
                },
            };
        }
        let outcome = match msg.svc.as_str() {
            token::SERVICE => token::on_request(self, ctx, &msg.src, &msg.msg)
                .map_err(|e| (code::SERVICE_REVERTED, e)),
            cert::SERVICE => {
                cert::on_request(ctx, &msg.src, &msg.msg).map_err(|e| (code::SERVICE_REVERTED, e))
            }
            other => match self.services.get(other) {
                Some(addr) => {
                    let p = json!({"_from": msg.src, "_svc": other, "_sn": format_i128(msg.sn),
                                   "_msg": format_bytes(&msg.msg)});
                    match ctx.call(addr, "handleBTPMessage", &as_map(p), 0) {
                        Ok(_) => Ok(()),
                        // Running out of steps is the relay's failure, not the message's.
                        Err(e) if e.code == failure::OUT_OF_STEP => return Err(e),
                        Err(e) => Err((code::SERVICE_REVERTED, e.message)),
                    }
                }
                None => Err((code::NO_SERVICE, format!("no service {other:?}"))),
            },
        };
        if msg.sn == 0 {
            return match outcome {
                Ok(()) => Ok(()),
                Err(_) => btp_event(ctx, &msg.src, msg.nsn, &self.network, "DROP"),
            };
        }
        let (code, message) = match outcome {
            Ok(()) => (code::OK, String::new()),
            Err((c, m)) => (c, m),
        };
        let reply = ErrorMessage { code, message }.encode();
        self.send(ctx, &msg.src, &msg.svc, -msg.sn, reply, Some(-msg.nsn))
    }

    /// `sendMessage(_to, _svc, _sn, _msg)`: a SCORE service sends a message (or, with a
    /// negative `_sn`, its own reply) to `_to`.
    fn send_message(
        &self,
        ctx: &mut CallContext<'_, '_>,
        p: &Map<String, Value>,
    ) -> Result<Value, ScoreError> {
        expect_params(p, &["_to", "_svc", "_sn", "_msg"])?;
        let svc = param_string(p, "_svc", 32)?;
        match self.services.get(&svc) {
            Some(addr) if *addr == ctx.from => {}
            _ => {
                return Err(ScoreError::revert(format!(
                    "only the SCORE of service {svc:?} sends its messages (caller {})",
                    ctx.from
                )))
            }
        }
        let to = param_string(p, "_to", crate::MAX_NETWORK_BYTES)?;
        check_network("_to", &to)?;
        if !has_route(ctx, &to) {
            return Err(ScoreError::revert(format!(
                "no route to {to}: no verifier of its messages is registered here"
            )));
        }
        let sn = param_signed(p, "_sn")?;
        let msg = param_bytes(p, "_msg")?.unwrap_or_default();
        if msg.len() > MAX_SERVICE_MESSAGE_BYTES {
            return Err(ScoreError::invalid_param(format!(
                "_msg: expected at most {MAX_SERVICE_MESSAGE_BYTES} bytes, got {}",
                msg.len()
            )));
        }
        self.send(ctx, &to, &svc, sn, msg, None)?;
        Ok(Value::Null)
    }

    fn get_status(
        &self,
        ctx: &CallContext<'_, '_>,
        p: &Map<String, Value>,
    ) -> Result<Value, ScoreError> {
        expect_params(p, &["_link"])?;
        let link = param_string(p, "_link", crate::MAX_NETWORK_BYTES)?;
        check_network("_link", &link)?;
        let rx = get_u128(ctx, &[b"rx/", link.as_bytes()].concat());
        let verifier = stored_client::status(ctx, &verifier_prefix(&link)).map(
            |(height, nid, channel)| json!({"height": format_int(height), "nid": format_int(nid), "channel": channel}),
        );
        Ok(json!({
            "network": self.network,
            "txSeq": format_int(get_u128(ctx, b"txseq")),
            "rxSeq": format_int(rx),
            "verifier": verifier,
        }))
    }
}

/// Largest message a SCORE service may send.
pub const MAX_SERVICE_MESSAGE_BYTES: usize = 16 * 1024;

fn as_map(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// Reads a signed integer parameter (`0x..` or `-0x..`).
fn param_signed(p: &Map<String, Value>, name: &str) -> Result<i128, ScoreError> {
    let s = p
        .get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| ScoreError::invalid_param(format!("missing parameter {name}")))?;
    nexus_proto::value::parse_i128(name, s).map_err(|e| ScoreError::invalid_param(e.to_string()))
}

/// Reads the light-client setup parameters shared by `addVerifier` and the notary's
/// `setSource`.
pub fn read_setup(p: &Map<String, Value>) -> Result<ClientSetup, ScoreError> {
    let nid = u64::try_from(param_int(p, "_nid")?)
        .map_err(|_| ScoreError::invalid_param("_nid: expected at most 64 bits"))?;
    let channel = param_string(p, "_channel", 32)?;
    let raw_header = param_bytes(p, "_checkpoint")?
        .ok_or_else(|| ScoreError::invalid_param("missing parameter _checkpoint"))?;
    let checkpoint = BlockHeader::from_rlp(&raw_header)
        .map_err(|e| ScoreError::invalid_param(format!("_checkpoint: {e}")))?;
    let raw_set = param_bytes(p, "_validators")?
        .ok_or_else(|| ScoreError::invalid_param("missing parameter _validators"))?;
    let validators = decode_validators(&raw_set)
        .map_err(|e| ScoreError::invalid_param(format!("_validators: {e}")))?;
    let emitter = param_address(p, "_emitter")?;
    Ok(ClientSetup {
        nid,
        channel,
        emitter,
        checkpoint,
        validators,
    })
}

fn not_payable(ctx: &CallContext<'_, '_>, method: &str) -> Result<(), ScoreError> {
    if ctx.value > 0 {
        return Err(ScoreError::new(
            failure::METHOD_NOT_PAYABLE,
            format!("{method} does not take ICX"),
        ));
    }
    Ok(())
}

impl NativeScore for Bmc {
    fn api(&self) -> Value {
        let f = |name: &str, inputs: Value, readonly: bool, payable: bool| {
            let mut v = json!({"type": "function", "name": name, "inputs": inputs, "outputs": []});
            if readonly {
                v["readonly"] = json!("0x1");
                v["outputs"] = json!([{"type": "dict"}]);
            }
            if payable {
                v["payable"] = json!("0x1");
            }
            v
        };
        let i = |name: &str, ty: &str| json!({"name": name, "type": ty});
        json!([
            f("network", json!([]), true, false),
            f("getStatus", json!([i("_link", "str")]), true, false),
            f("getMessageStatus", json!([i("_sn", "int")]), true, false),
            f("balanceOf", json!([i("_token", "str"), i("_owner", "Address")]), true, false),
            f("totalWrapped", json!([i("_token", "str")]), true, false),
            f("getCert", json!([i("_src", "str"), i("_subject", "bytes")]), true, false),
            f("verifyCert", json!([i("_src", "str"), i("_subject", "bytes"), i("_pubkey", "bytes")]), true, false),
            f("addVerifier", json!([i("_src", "str"), i("_nid", "int"), i("_channel", "str"), i("_checkpoint", "bytes"), i("_validators", "bytes"), i("_emitter", "Address")]), false, false),
            f("sendMessage", json!([i("_to", "str"), i("_svc", "str"), i("_sn", "int"), i("_msg", "bytes")]), false, false),
            f("handleRelayMessage", json!([i("_src", "str"), i("_updates", "[]bytes"), i("_proofs", "[]bytes")]), false, false),
            f("transfer", json!([i("_to", "str")]), false, true),
            f("transferWrapped", json!([i("_token", "str"), i("_to", "str"), i("_value", "int")]), false, false),
            f("registerCert", json!([i("_dst", "str"), i("_subject", "bytes"), i("_pubkey", "bytes")]), false, false),
            {"type": "eventlog", "name": "Message", "inputs": [
                {"name": "_next", "type": "str", "indexed": "0x1"},
                {"name": "_seq", "type": "int", "indexed": "0x1"},
                {"name": "_msg", "type": "bytes"}]},
            {"type": "eventlog", "name": "BTPEvent", "inputs": [
                {"name": "_src", "type": "str", "indexed": "0x1"},
                {"name": "_nsn", "type": "int", "indexed": "0x1"},
                {"name": "_next", "type": "str"},
                {"name": "_event", "type": "str"}]}
        ])
    }

    fn install(&self, _ctx: &mut CallContext<'_, '_>) -> Result<(), ScoreError> {
        Ok(())
    }

    fn call(
        &self,
        ctx: &mut CallContext<'_, '_>,
        method: &str,
        p: &Map<String, Value>,
    ) -> Result<Value, ScoreError> {
        if method != "transfer" {
            not_payable(ctx, method)?;
        }
        match method {
            "network" => {
                expect_params(p, &[])?;
                Ok(Value::String(self.network.clone()))
            }
            "getStatus" => self.get_status(ctx, p),
            "getMessageStatus" => {
                expect_params(p, &["_sn"])?;
                let sn = param_int(p, "_sn")?;
                let Some(status) = ctx.get(&status_key(sn)) else {
                    return Ok(Value::Null);
                };
                let seq = get_u128(ctx, &seq_key(sn));
                Ok(json!({
                    "status": String::from_utf8_lossy(&status),
                    "seq": format_int(seq),
                }))
            }
            "balanceOf" | "totalWrapped" | "transfer" | "transferWrapped" => {
                token::call(self, ctx, method, p)
            }
            "getCert" | "verifyCert" | "registerCert" => cert::call(self, ctx, method, p),
            "addVerifier" => self.add_verifier(ctx, p),
            "sendMessage" => self.send_message(ctx, p),
            "handleRelayMessage" => self.handle_relay(ctx, p),
            "fallback" => Err(ScoreError::new(
                failure::METHOD_NOT_PAYABLE,
                "the BMC takes ICX only through transfer(_to)",
            )),
            other => Err(ScoreError::new(
                failure::METHOD_NOT_FOUND,
                format!("the BMC has no method {other:?}"),
            )),
        }
    }
}
