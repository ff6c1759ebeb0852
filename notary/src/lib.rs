//! The notary SCORE of a Nexus notary channel: checks relayed headers and messages of its
//! source chain against its own light client, orders messages by sequence and re-emits them,
//! one sequence per destination, for the destinations' verifiers.
//!
//! `relay(_updates, _proofs)` runs on every notary validator as part of checking the proposal
//! that carries it, so each validator's own light client decides; a refused update or proof
//! fails the whole transaction and changes nothing. Storage: `src/...` the light client of the
//! source, `cfg/network` the source network, `rx` the last source sequence, `out/<dst>` the
//! last sequence sent to each destination.
//!
//! The source is a loopchain-style chain (`setSource`: headers with their votes, event Merkle
//! proofs) or an Ethereum chain (`setEthSource`: headers by parent hash from a checkpoint,
//! receipt Merkle-Patricia proofs of the source BMC's `Message` logs after a confirmation
//! depth; see `nexus_btp::stored_eth_client`).

use nexus_btp::bmc::{get_u128, read_setup, set_u128, MAX_PROOFS, MAX_UPDATES};
use nexus_btp::event::{check_sequence, MessageEvent};
use nexus_btp::stored_eth_client::{self, EthSetup};
use nexus_btp::{check_network, stored_client, BtpError};
use nexus_proto::btp::BtpMessage;
use nexus_proto::value::format_int;
use nexus_proto::Address;
use nexus_score::{
    expect_params, failure, param_bytes, param_bytes_list, param_int, param_string, CallContext,
    NativeScore, ScoreError,
};
use serde_json::{json, Map, Value};

const PREFIX: &[u8] = b"src/";

/// The notary SCORE of one notary channel.
#[derive(Debug, Clone)]
pub struct NotaryScore {
    /// Who may set the source.
    pub admin: Option<Address>,
}

fn source(ctx: &CallContext<'_, '_>) -> Option<String> {
    ctx.get(b"cfg/network")
        .map(|b| String::from_utf8_lossy(&b).into_owned())
}

impl NotaryScore {
    fn set_source(
        &self,
        ctx: &mut CallContext<'_, '_>,
        p: &Map<String, Value>,
    ) -> Result<Value, ScoreError> {
        expect_params(
            p,
            &[
                "_network",
                "_nid",
                "_channel",
                "_checkpoint",
                "_validators",
                "_emitter",
            ],
        )?;
        self.check_admin(ctx)?;
        let network = param_string(p, "_network", nexus_btp::MAX_NETWORK_BYTES)?;
        check_network("_network", &network)?;
        let setup = read_setup(p)?;
        if stored_eth_client::exists(ctx, PREFIX) {
            return Err(BtpError::VerifierExists(network).into());
        }
        stored_client::install(ctx, PREFIX, &network, setup)?;
        ctx.set(b"cfg/network", network.into_bytes())?;
        Ok(Value::Null)
    }

    fn check_admin(&self, ctx: &CallContext<'_, '_>) -> Result<(), ScoreError> {
        if self.admin != Some(ctx.from) {
            return Err(BtpError::NotAdmin {
                admin: self
                    .admin
                    .map(|a| a.to_string())
                    .unwrap_or_else(|| "(none)".into()),
                caller: ctx.from.to_string(),
            }
            .into());
        }
        Ok(())
    }

    fn set_eth_source(
        &self,
        ctx: &mut CallContext<'_, '_>,
        p: &Map<String, Value>,
    ) -> Result<Value, ScoreError> {
        expect_params(
            p,
            &[
                "_network",
                "_chainId",
                "_checkpoint",
                "_confirmations",
                "_emitter",
            ],
        )?;
        self.check_admin(ctx)?;
        let network = param_string(p, "_network", nexus_btp::MAX_NETWORK_BYTES)?;
        check_network("_network", &network)?;
        if stored_client::exists(ctx, PREFIX) {
            return Err(BtpError::VerifierExists(network).into());
        }
        let chain_id = u64::try_from(param_int(p, "_chainId")?)
            .map_err(|_| ScoreError::invalid_param("_chainId: expected at most 64 bits"))?;
        let confirmations = u64::try_from(param_int(p, "_confirmations")?)
            .map_err(|_| ScoreError::invalid_param("_confirmations: expected at most 64 bits"))?;
        let checkpoint = param_bytes(p, "_checkpoint")?
            .ok_or_else(|| ScoreError::invalid_param("missing parameter _checkpoint"))?;
        let emitter = param_bytes(p, "_emitter")?
            .and_then(|b| <[u8; 20]>::try_from(b.as_slice()).ok())
            .ok_or_else(|| {
                ScoreError::invalid_param("_emitter: expected the 20 bytes of a contract address")
            })?;
        stored_eth_client::install(
            ctx,
            PREFIX,
            &network,
            EthSetup {
                chain_id,
                checkpoint,
                confirmations,
                emitter,
            },
        )?;
        ctx.set(b"cfg/network", network.into_bytes())?;
        Ok(Value::Null)
    }

    fn relay(
        &self,
        ctx: &mut CallContext<'_, '_>,
        p: &Map<String, Value>,
    ) -> Result<Value, ScoreError> {
        expect_params(p, &["_updates", "_proofs"])?;
        let network =
            source(ctx).ok_or_else(|| ScoreError::from(BtpError::NoVerifier("source".into())))?;
        let updates = param_bytes_list(p, "_updates", MAX_UPDATES, 256 * 1024)?;
        let proofs = param_bytes_list(p, "_proofs", MAX_PROOFS, 128 * 1024)?;
        let eth = stored_eth_client::exists(ctx, PREFIX);
        if eth {
            stored_eth_client::apply_updates(ctx, PREFIX, &updates)?;
        } else {
            stored_client::apply_updates(ctx, PREFIX, &updates)?;
        }
        let mut last_receipt = None;
        for (i, raw) in proofs.iter().enumerate() {
            let m = if eth {
                stored_eth_client::verify_message(ctx, PREFIX, i, raw, &mut last_receipt)?
            } else {
                MessageEvent::parse(&stored_client::verify_event(ctx, PREFIX, i, raw)?)?
            };
            check_sequence(get_u128(ctx, b"rx"), m.seq)?;
            set_u128(ctx, b"rx", m.seq)?;
            let msg =
                BtpMessage::decode(&m.msg).map_err(|e| BtpError::BadMessage(e.to_string()))?;
            if msg.src != network {
                return Err(BtpError::WrongDestination {
                    expected: network,
                    got: msg.src,
                }
                .into());
            }
            if msg.dst != m.next {
                return Err(BtpError::BadMessage(format!(
                    "the event sends it to {} but the message names {}",
                    m.next, msg.dst
                ))
                .into());
            }
            check_network("dst", &msg.dst)?;
            let out_key = [b"out/", msg.dst.as_bytes()].concat();
            let seq = get_u128(ctx, &out_key) + 1;
            set_u128(ctx, &out_key, seq)?;
            MessageEvent {
                next: msg.dst,
                seq,
                msg: m.msg,
            }
            .emit(ctx)?;
        }
        Ok(Value::Null)
    }
}

impl NativeScore for NotaryScore {
    fn api(&self) -> Value {
        let i = |name: &str, ty: &str| json!({"name": name, "type": ty});
        json!([
            {"type": "function", "name": "getStatus", "inputs": [], "outputs": [{"type": "dict"}], "readonly": "0x1"},
            {"type": "function", "name": "getOutSeq", "inputs": [i("_dst", "str")], "outputs": [{"type": "int"}], "readonly": "0x1"},
            {"type": "function", "name": "setSource", "inputs": [i("_network", "str"), i("_nid", "int"), i("_channel", "str"), i("_checkpoint", "bytes"), i("_validators", "bytes"), i("_emitter", "Address")], "outputs": []},
            {"type": "function", "name": "setEthSource", "inputs": [i("_network", "str"), i("_chainId", "int"), i("_checkpoint", "bytes"), i("_confirmations", "int"), i("_emitter", "bytes")], "outputs": []},
            {"type": "function", "name": "relay", "inputs": [i("_updates", "[]bytes"), i("_proofs", "[]bytes")], "outputs": []},
            {"type": "eventlog", "name": "Message", "inputs": [
                {"name": "_next", "type": "str", "indexed": "0x1"},
                {"name": "_seq", "type": "int", "indexed": "0x1"},
                {"name": "_msg", "type": "bytes"}]}
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
        if ctx.value > 0 {
            return Err(ScoreError::new(
                failure::METHOD_NOT_PAYABLE,
                "the notary SCORE takes no ICX",
            ));
        }
        match method {
            "getStatus" => {
                expect_params(p, &[])?;
                if let Some((height, chain_id, confirmations)) =
                    stored_eth_client::status(ctx, PREFIX)
                {
                    return Ok(json!({
                        "source": source(ctx),
                        "kind": "eth",
                        "height": format_int(height),
                        "chainId": format_int(chain_id),
                        "confirmations": format_int(confirmations),
                        "rxSeq": format_int(get_u128(ctx, b"rx")),
                    }));
                }
                let lc = stored_client::status(ctx, PREFIX);
                Ok(json!({
                    "kind": "loopchain",
                    "source": source(ctx),
                    "height": lc.as_ref().map(|(h, _, _)| format_int(*h)),
                    "nid": lc.as_ref().map(|(_, n, _)| format_int(*n)),
                    "channel": lc.map(|(_, _, c)| c),
                    "rxSeq": format_int(get_u128(ctx, b"rx")),
                }))
            }
            "getOutSeq" => {
                expect_params(p, &["_dst"])?;
                let dst = param_string(p, "_dst", nexus_btp::MAX_NETWORK_BYTES)?;
                Ok(Value::String(format_int(get_u128(
                    ctx,
                    &[b"out/", dst.as_bytes()].concat(),
                ))))
            }
            "setSource" => self.set_source(ctx, p),
            "setEthSource" => self.set_eth_source(ctx, p),
            "relay" => self.relay(ctx, p),
            other => Err(ScoreError::new(
                failure::METHOD_NOT_FOUND,
                format!("the notary SCORE has no method {other:?}"),
            )),
        }
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod eth_tests;
