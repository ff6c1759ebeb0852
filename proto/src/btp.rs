//! BTP messages (IIP-25): `RLP[src, dst, svc, sn, msg, nsn]` and error replies `RLP[code, msg]`.
//!
//! `src`/`dst` are network addresses such as `0x1.nexus`; `sn > 0` expects a reply, `sn == 0`
//! is one-way, `sn < 0` marks an error reply. Integers are the shortest big-endian two's
//! complement (zero is the single byte `0x00`, as Java's `BigInteger.toByteArray`).

use crate::ProtoError;
use alloy_rlp::{BufMut, Encodable, Header};

/// Largest message accepted from the network.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;
/// Largest network address or service name.
pub const MAX_NAME_BYTES: usize = 128;

/// A BTP message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BtpMessage {
    /// Source network address (`0x1.nexus`).
    pub src: String,
    /// Destination network address.
    pub dst: String,
    /// Service name (`token`, `dex`, `bmc`).
    pub svc: String,
    /// Service serial number.
    pub sn: i128,
    /// Service payload.
    pub msg: Vec<u8>,
    /// Network serial number (negative: reply to `-nsn`).
    pub nsn: i128,
}

/// An error reply: `[code, message]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorMessage {
    /// 0 ok, 1 unknown, 2 no route, 3 no service, 4 service reverted.
    pub code: i128,
    /// Human-readable reason.
    pub message: String,
}

fn int_bytes(v: i128) -> Vec<u8> {
    let full = v.to_be_bytes();
    let mut start = 0;
    while start < 15 {
        let (b, next) = (full[start], full[start + 1]);
        if (b == 0x00 && next & 0x80 == 0) || (b == 0xff && next & 0x80 != 0) {
            start += 1;
        } else {
            break;
        }
    }
    full[start..].to_vec()
}

fn bytes_int(b: &[u8]) -> Result<i128, ProtoError> {
    if b.len() > 16 {
        return Err(ProtoError::TooLarge {
            what: "BTP integer bytes",
            size: b.len(),
            limit: 16,
        });
    }
    if b.is_empty() {
        return Ok(0);
    }
    let fill = if b[0] & 0x80 != 0 { 0xff } else { 0x00 };
    let mut full = [fill; 16];
    full[16 - b.len()..].copy_from_slice(b);
    Ok(i128::from_be_bytes(full))
}

fn put_list(out: &mut dyn BufMut, items: &[&dyn Encodable]) {
    let payload_length: usize = items.iter().map(|i| i.length()).sum();
    Header {
        list: true,
        payload_length,
    }
    .encode(out);
    for i in items {
        i.encode(out);
    }
}

fn take_bytes<'a>(
    buf: &mut &'a [u8],
    what: &'static str,
    limit: usize,
) -> Result<&'a [u8], ProtoError> {
    let h = Header::decode(buf).map_err(|e| ProtoError::rlp(what, e))?;
    if h.list {
        return Err(ProtoError::Rlp {
            what,
            reason: "expected a byte string, got a list".into(),
        });
    }
    if h.payload_length > limit {
        return Err(ProtoError::TooLarge {
            what,
            size: h.payload_length,
            limit,
        });
    }
    if buf.len() < h.payload_length {
        return Err(ProtoError::Rlp {
            what,
            reason: "truncated".into(),
        });
    }
    let (v, rest) = buf.split_at(h.payload_length);
    *buf = rest;
    Ok(v)
}

fn take_string(buf: &mut &[u8], what: &'static str) -> Result<String, ProtoError> {
    let b = take_bytes(buf, what, MAX_NAME_BYTES)?;
    String::from_utf8(b.to_vec()).map_err(|_| ProtoError::Rlp {
        what,
        reason: "not UTF-8".into(),
    })
}

fn open_list<'a>(bytes: &'a [u8], what: &'static str) -> Result<&'a [u8], ProtoError> {
    let mut buf = bytes;
    let h = Header::decode(&mut buf).map_err(|e| ProtoError::rlp(what, e))?;
    if !h.list {
        return Err(ProtoError::Rlp {
            what,
            reason: "expected a list".into(),
        });
    }
    if buf.len() != h.payload_length {
        return Err(ProtoError::Rlp {
            what,
            reason: format!(
                "list length {} but {} bytes follow",
                h.payload_length,
                buf.len()
            ),
        });
    }
    Ok(buf)
}

impl BtpMessage {
    /// Encodes as RLP.
    pub fn encode(&self) -> Vec<u8> {
        let (sn, nsn) = (int_bytes(self.sn), int_bytes(self.nsn));
        let mut out = Vec::with_capacity(self.msg.len() + 64);
        put_list(
            &mut out,
            &[
                &self.src.as_bytes(),
                &self.dst.as_bytes(),
                &self.svc.as_bytes(),
                &sn.as_slice(),
                &self.msg.as_slice(),
                &nsn.as_slice(),
            ],
        );
        out
    }

    /// Decodes, bounding every field.
    pub fn decode(bytes: &[u8]) -> Result<Self, ProtoError> {
        if bytes.len() > MAX_MESSAGE_BYTES + 1024 {
            return Err(ProtoError::TooLarge {
                what: "BTP message",
                size: bytes.len(),
                limit: MAX_MESSAGE_BYTES + 1024,
            });
        }
        let mut buf = open_list(bytes, "BTP message")?;
        let m = BtpMessage {
            src: take_string(&mut buf, "BTP src")?,
            dst: take_string(&mut buf, "BTP dst")?,
            svc: take_string(&mut buf, "BTP svc")?,
            sn: bytes_int(take_bytes(&mut buf, "BTP sn", 16)?)?,
            msg: take_bytes(&mut buf, "BTP msg", MAX_MESSAGE_BYTES)?.to_vec(),
            nsn: bytes_int(take_bytes(&mut buf, "BTP nsn", 16)?)?,
        };
        if !buf.is_empty() {
            return Err(ProtoError::Rlp {
                what: "BTP message",
                reason: format!("{} bytes after 6 fields", buf.len()),
            });
        }
        Ok(m)
    }
}

impl ErrorMessage {
    /// Encodes as RLP.
    pub fn encode(&self) -> Vec<u8> {
        let code = int_bytes(self.code);
        let mut out = Vec::new();
        put_list(&mut out, &[&code.as_slice(), &self.message.as_bytes()]);
        out
    }

    /// Decodes, bounding every field.
    pub fn decode(bytes: &[u8]) -> Result<Self, ProtoError> {
        let mut buf = open_list(bytes, "BTP error message")?;
        let code = bytes_int(take_bytes(&mut buf, "BTP error code", 16)?)?;
        let msg = take_bytes(&mut buf, "BTP error text", MAX_MESSAGE_BYTES)?;
        if !buf.is_empty() {
            return Err(ProtoError::Rlp {
                what: "BTP error message",
                reason: "trailing fields".into(),
            });
        }
        let message = String::from_utf8(msg.to_vec()).map_err(|_| ProtoError::Rlp {
            what: "BTP error text",
            reason: "not UTF-8".into(),
        })?;
        Ok(ErrorMessage { code, message })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ints_are_shortest_twos_complement() {
        for (v, want) in [
            (0i128, "00"),
            (1, "01"),
            (127, "7f"),
            (128, "0080"),
            (-1, "ff"),
            (-128, "80"),
            (-129, "ff7f"),
        ] {
            assert_eq!(hex::encode(int_bytes(v)), want, "{v}");
            assert_eq!(bytes_int(&int_bytes(v)).unwrap(), v);
        }
        assert_eq!(bytes_int(&[]).unwrap(), 0);
    }

    #[test]
    fn message_round_trip_and_rejects_garbage() {
        let m = BtpMessage {
            src: "0x1.nexus".into(),
            dst: "0x539.eth".into(),
            svc: "dex".into(),
            sn: -5,
            msg: vec![1, 2, 3],
            nsn: 7,
        };
        let enc = m.encode();
        assert_eq!(BtpMessage::decode(&enc).unwrap(), m);
        assert!(BtpMessage::decode(&enc[..enc.len() - 1]).is_err());
        let mut extra = enc.clone();
        extra.push(0x80);
        assert!(BtpMessage::decode(&extra).is_err());
        let e = ErrorMessage {
            code: 4,
            message: "reverted".into(),
        };
        assert_eq!(ErrorMessage::decode(&e.encode()).unwrap(), e);
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        let mut x: u64 = 0x9e3779b97f4a7c15;
        for len in 0..2000usize {
            let bytes: Vec<u8> = (0..len % 97)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect();
            let _ = BtpMessage::decode(&bytes);
            let _ = ErrorMessage::decode(&bytes);
            let _ = crate::block::Block::decode(&bytes);
            let _ = crate::receipt::Receipt::decode(&bytes);
        }
    }
}
