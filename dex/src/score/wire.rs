//! The `dex` service's messages between the converter SCORE and the reserve contract on
//! Ethereum (`contracts/src/DexReserve.sol`), each an RLP list of byte strings:
//! - from the reserve: `["swap", from 0x, to hx, amount, minReturn]` (Ether held until the
//!   reply: code 0 keeps it, any other code refunds it) and `["deposit", from 0x, to hx,
//!   amount]` (Ether a liquidity provider brings; held the same way);
//! - to the reserve: `["pay", to 0x, amount]` (Ether out of the reserve).
//!
//! Amounts are minimal big-endian integers (no leading zero byte) of at most 16 bytes.

use alloy_rlp::{Bytes, Decodable, Encodable};

/// Longest message accepted from the reserve.
pub const MAX_MESSAGE_BYTES: usize = 1024;

/// A message from the reserve contract.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inbound {
    /// Ether to trade for ICX.
    Swap {
        /// The trader on Ethereum (`0x...`, lowercase).
        from: String,
        /// Who gets the ICX (`hx...`).
        to: String,
        /// Wei.
        amount: u128,
        /// Least ICX (loop) the trader accepts.
        min_return: u128,
    },
    /// Ether a liquidity provider deposits, credited to `to`.
    Deposit {
        /// The sender on Ethereum.
        from: String,
        /// The provider's account on Nexus.
        to: String,
        /// Wei.
        amount: u128,
    },
}

/// Why a message was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("dex message: {0}")]
pub struct WireError(pub String);

fn err(s: impl Into<String>) -> WireError {
    WireError(s.into())
}

fn text(b: &Bytes, what: &str) -> Result<String, WireError> {
    if b.len() > 64 {
        return Err(err(format!(
            "{what}: expected at most 64 bytes, got {}",
            b.len()
        )));
    }
    String::from_utf8(b.to_vec()).map_err(|_| err(format!("{what}: expected text")))
}

fn uint(b: &Bytes, what: &str) -> Result<u128, WireError> {
    if b.len() > 16 {
        return Err(err(format!(
            "{what}: expected at most 128 bits, got {} bytes",
            b.len()
        )));
    }
    if b.first() == Some(&0) {
        return Err(err(format!("{what}: leading zero byte")));
    }
    Ok(b.iter().fold(0u128, |acc, x| (acc << 8) | u128::from(*x)))
}

fn encode_uint(v: u128) -> Bytes {
    let be = v.to_be_bytes();
    let start = be.iter().position(|b| *b != 0).unwrap_or(16);
    Bytes::copy_from_slice(&be[start..])
}

impl Inbound {
    /// Decodes a message from the reserve.
    pub fn decode(raw: &[u8]) -> Result<Self, WireError> {
        if raw.len() > MAX_MESSAGE_BYTES {
            return Err(err(format!(
                "expected at most {MAX_MESSAGE_BYTES} bytes, got {}",
                raw.len()
            )));
        }
        let mut buf = raw;
        let items = Vec::<Bytes>::decode(&mut buf)
            .map_err(|e| err(format!("expected an RLP list of byte strings: {e}")))?;
        if !buf.is_empty() {
            return Err(err("bytes after the list"));
        }
        let kind = items.first().map(|k| k.as_ref()).unwrap_or_default();
        match (kind, items.len()) {
            (b"swap", 5) => Ok(Inbound::Swap {
                from: text(&items[1], "from")?,
                to: text(&items[2], "to")?,
                amount: uint(&items[3], "amount")?,
                min_return: uint(&items[4], "minReturn")?,
            }),
            (b"deposit", 4) => Ok(Inbound::Deposit {
                from: text(&items[1], "from")?,
                to: text(&items[2], "to")?,
                amount: uint(&items[3], "amount")?,
            }),
            _ => Err(err(format!(
                "expected [swap, from, to, amount, minReturn] or [deposit, from, to, amount], got a list of {} starting {:?}",
                items.len(),
                String::from_utf8_lossy(&kind[..kind.len().min(16)])
            ))),
        }
    }

    /// Encodes it (what the reserve contract sends; for tests and tools).
    pub fn encode(&self) -> Vec<u8> {
        let items: Vec<Bytes> = match self {
            Inbound::Swap {
                from,
                to,
                amount,
                min_return,
            } => vec![
                Bytes::from_static(b"swap"),
                Bytes::copy_from_slice(from.as_bytes()),
                Bytes::copy_from_slice(to.as_bytes()),
                encode_uint(*amount),
                encode_uint(*min_return),
            ],
            Inbound::Deposit { from, to, amount } => vec![
                Bytes::from_static(b"deposit"),
                Bytes::copy_from_slice(from.as_bytes()),
                Bytes::copy_from_slice(to.as_bytes()),
                encode_uint(*amount),
            ],
        };
        let mut out = Vec::new();
        items.encode(&mut out);
        out
    }
}

/// `["pay", to, amount]`: the reserve pays `amount` wei to `to`.
pub fn pay(to: &str, amount: u128) -> Vec<u8> {
    let items = vec![
        Bytes::from_static(b"pay"),
        Bytes::copy_from_slice(to.as_bytes()),
        encode_uint(amount),
    ];
    let mut out = Vec::new();
    items.encode(&mut out);
    out
}

/// Checks an Ethereum account `0x` + 40 hex digits and returns it lowercase.
pub fn eth_account(field: &str, s: &str) -> Result<String, WireError> {
    let b = s.as_bytes();
    let ok = b.len() == 42 && b.starts_with(b"0x") && b[2..].iter().all(u8::is_ascii_hexdigit);
    if !ok {
        return Err(err(format!(
            "{field}: expected 0x followed by 40 hex digits, got {:?}",
            s.chars().take(80).collect::<String>()
        )));
    }
    Ok(s.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn swap_and_deposit_round_trip() {
        let m = Inbound::Swap {
            from: "0xabc".into(),
            to: "hx01".into(),
            amount: u128::MAX,
            min_return: 0,
        };
        assert_eq!(Inbound::decode(&m.encode()).unwrap(), m);
        let d = Inbound::Deposit {
            from: "0xabc".into(),
            to: "hx01".into(),
            amount: 1,
        };
        assert_eq!(Inbound::decode(&d.encode()).unwrap(), d);
    }

    #[test]
    fn amounts_above_128_bits_or_with_leading_zeros_are_refused() {
        let mut items = vec![
            Bytes::from_static(b"deposit"),
            Bytes::from_static(b"0x"),
            Bytes::from_static(b"hx"),
            Bytes::from(vec![1u8; 17]),
        ];
        let enc = |items: &Vec<Bytes>| {
            let mut out = Vec::new();
            items.encode(&mut out);
            out
        };
        assert!(Inbound::decode(&enc(&items))
            .unwrap_err()
            .0
            .contains("128 bits"));
        items[3] = Bytes::from(vec![0u8, 1]);
        assert!(Inbound::decode(&enc(&items))
            .unwrap_err()
            .0
            .contains("leading zero"));
    }

    #[test]
    fn unknown_kinds_wrong_lengths_and_trailing_bytes_are_refused() {
        let mut raw = Inbound::Deposit {
            from: "0x".into(),
            to: "hx".into(),
            amount: 5,
        }
        .encode();
        raw.push(0);
        assert!(Inbound::decode(&raw).is_err());
        let mut out = Vec::new();
        vec![Bytes::from_static(b"mint"), Bytes::from_static(b"x")].encode(&mut out);
        assert!(Inbound::decode(&out).unwrap_err().0.contains("mint"));
        assert!(Inbound::decode(&[0xc0]).is_err());
        assert!(Inbound::decode(&[0xff; 2000]).is_err());
    }

    #[test]
    fn eth_accounts_are_checked_and_lowercased() {
        let a = "0xABCDEF0123456789abcdef0123456789ABCDEF01";
        assert_eq!(eth_account("to", a).unwrap(), a.to_ascii_lowercase());
        for bad in ["", "0x12", "hx", "0xzz", &format!("0x{}", "é".repeat(20))] {
            assert!(eth_account("to", bad).is_err(), "{bad}");
        }
    }
}
