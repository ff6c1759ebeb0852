//! The `Message(str,int,bytes)` event that carries BTP messages (`_next` and `_seq` indexed,
//! `_msg` as data, as goloop's BMC), and the strict sequencing every receiver applies.

use crate::BtpError;
use nexus_proto::receipt::EventLog;
use nexus_proto::value::{format_bytes, format_int, parse_bytes, parse_u128};
use nexus_score::{CallContext, ScoreError};

/// The event signature.
pub const MESSAGE_SIG: &str = "Message(str,int,bytes)";

/// A `Message` event's fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageEvent {
    /// The network the message goes to next.
    pub next: String,
    /// The sequence number on this hop.
    pub seq: u128,
    /// The BTP message (RLP).
    pub msg: Vec<u8>,
}

impl MessageEvent {
    /// Reads a proven event, refusing anything but a well-formed `Message`.
    pub fn parse(e: &EventLog) -> Result<Self, BtpError> {
        let bad = |m: &str| BtpError::NotAMessage(m.to_string());
        if e.indexed.len() != 3 || e.data.len() != 1 {
            return Err(bad("expected 3 indexed values and 1 data value"));
        }
        if e.indexed[0] != MESSAGE_SIG {
            return Err(bad(&format!(
                "signature {:?}, expected {MESSAGE_SIG}",
                e.indexed[0].chars().take(80).collect::<String>()
            )));
        }
        let seq = parse_u128("_seq", &e.indexed[2]).map_err(|e| bad(&e.to_string()))?;
        let msg = parse_bytes("_msg", &e.data[0], nexus_proto::btp::MAX_MESSAGE_BYTES)
            .map_err(|e| bad(&e.to_string()))?;
        Ok(MessageEvent {
            next: e.indexed[1].clone(),
            seq,
            msg,
        })
    }

    /// Emits the event from the SCORE of `ctx`.
    pub fn emit(&self, ctx: &mut CallContext<'_, '_>) -> Result<(), ScoreError> {
        ctx.emit(
            vec![
                MESSAGE_SIG.to_string(),
                self.next.clone(),
                format_int(self.seq),
            ],
            vec![format_bytes(&self.msg)],
        )
    }
}

/// Strict sequencing: `seq` must be `last + 1`; lower is a replay, higher a gap.
pub fn check_sequence(last: u128, seq: u128) -> Result<(), BtpError> {
    let expected = last.saturating_add(1);
    if seq < expected {
        Err(BtpError::Replayed { seq, last })
    } else if seq > expected {
        Err(BtpError::Gap { expected, got: seq })
    } else {
        Ok(())
    }
}
