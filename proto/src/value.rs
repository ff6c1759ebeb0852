//! ICON JSON-RPC v3 value codecs: every value is a string.
//!
//! - T_INT: `0x` + hex digits (lowercase, no padding on output; a leading `-` for negatives).
//! - T_HASH: `0x` + 64 hex digits. T_BIN_DATA: `0x` + an even number of hex digits.
//! - T_BOOL: `0x1` or `0x0`. Signatures: base64.

use crate::{Hash32, ProtoError};
use base64::Engine;

/// Most hex digits of a T_INT: 256 bits, ICON's widest integer.
pub const MAX_INT_DIGITS: usize = 64;

/// Checks the digits of a canonical T_INT (`0x` + 1..=64 hex digits, no leading zeros, as ICON's
/// SDKs write them) and returns them.
fn canonical_digits<'a>(field: &str, s: &'a str) -> Result<&'a str, ProtoError> {
    const EXPECTED: &str = "a 0x-prefixed hex integer without leading zeros, at most 256 bits";
    let digits = s
        .strip_prefix("0x")
        .ok_or_else(|| ProtoError::invalid(field, EXPECTED, s))?;
    if digits.is_empty()
        || digits.len() > MAX_INT_DIGITS
        || !digits.bytes().all(|b| b.is_ascii_hexdigit())
        || (digits.len() > 1 && digits.starts_with('0'))
    {
        return Err(ProtoError::invalid(field, EXPECTED, s));
    }
    Ok(digits)
}

/// Parses an unsigned T_INT (`0x` + hex digits without leading zeros) into a `u128`.
pub fn parse_u128(field: &str, s: &str) -> Result<u128, ProtoError> {
    let digits = canonical_digits(field, s)?;
    if digits.len() > 32 {
        return Err(ProtoError::invalid(field, "an integer below 2^128", s));
    }
    u128::from_str_radix(digits, 16).map_err(|_| ProtoError::invalid(field, "a hex integer", s))
}

/// Parses an unsigned T_INT that must fit in 64 bits.
pub fn parse_u64(field: &str, s: &str) -> Result<u64, ProtoError> {
    let v = parse_u128(field, s)?;
    u64::try_from(v).map_err(|_| ProtoError::invalid(field, "an integer below 2^64", s))
}

/// Parses a signed T_INT (`0x..` or `-0x..`).
pub fn parse_i128(field: &str, s: &str) -> Result<i128, ProtoError> {
    let (neg, rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s),
    };
    let v = parse_u128(field, rest)?;
    let v =
        i128::try_from(v).map_err(|_| ProtoError::invalid(field, "an integer within i128", s))?;
    Ok(if neg { -v } else { v })
}

/// Formats an unsigned integer as T_INT.
pub fn format_int(v: impl Into<u128>) -> String {
    format!("{:#x}", v.into())
}

/// Formats a signed integer as T_INT.
pub fn format_i128(v: i128) -> String {
    if v < 0 {
        format!("-{:#x}", v.unsigned_abs())
    } else {
        format!("{v:#x}")
    }
}

/// Parses T_HASH: `0x` + 64 hex digits (either case).
pub fn parse_hash(field: &str, s: &str) -> Result<Hash32, ProtoError> {
    let digits = s
        .strip_prefix("0x")
        .filter(|d| d.len() == 64)
        .ok_or_else(|| ProtoError::invalid(field, "0x followed by 64 hex digits", s))?;
    let mut out = [0u8; 32];
    hex::decode_to_slice(digits, &mut out)
        .map_err(|_| ProtoError::invalid(field, "0x followed by 64 hex digits", s))?;
    Ok(Hash32(out))
}

/// Parses T_BIN_DATA: `0x` + an even number of hex digits, at most `limit` bytes.
pub fn parse_bytes(field: &str, s: &str, limit: usize) -> Result<Vec<u8>, ProtoError> {
    let digits = s
        .strip_prefix("0x")
        .ok_or_else(|| ProtoError::invalid(field, "0x-prefixed hex bytes", s))?;
    if digits.len() / 2 > limit {
        return Err(ProtoError::TooLarge {
            what: "hex data",
            size: digits.len() / 2,
            limit,
        });
    }
    hex::decode(digits).map_err(|_| ProtoError::invalid(field, "an even number of hex digits", s))
}

/// Formats bytes as T_BIN_DATA.
pub fn format_bytes(b: &[u8]) -> String {
    format!("0x{}", hex::encode(b))
}

/// Parses T_BOOL (`0x1` or `0x0`).
pub fn parse_bool(field: &str, s: &str) -> Result<bool, ProtoError> {
    match s {
        "0x1" => Ok(true),
        "0x0" => Ok(false),
        _ => Err(ProtoError::invalid(field, "0x1 or 0x0", s)),
    }
}

/// Formats T_BOOL.
pub fn format_bool(b: bool) -> &'static str {
    if b {
        "0x1"
    } else {
        "0x0"
    }
}

/// Decodes standard base64 (with padding).
pub fn parse_base64(field: &str, s: &str) -> Result<Vec<u8>, ProtoError> {
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .map_err(|_| ProtoError::invalid(field, "base64", s))
}

/// Encodes standard base64 (with padding).
pub fn format_base64(b: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ints_round_trip_and_reject_garbage() {
        assert_eq!(parse_u128("v", "0x0").unwrap(), 0);
        assert_eq!(parse_u128("v", "0xff").unwrap(), 255);
        assert_eq!(parse_u128("v", "0xFF").unwrap(), 255);
        assert_eq!(format_int(255u32), "0xff");
        assert_eq!(format_int(0u32), "0x0");
        assert_eq!(
            parse_u128("v", &format!("{:#x}", u128::MAX)).unwrap(),
            u128::MAX
        );
        for bad in [
            "",
            "0x",
            "ff",
            "0xg",
            "0x1_0",
            "-0x1",
            "0x1ffffffffffffffffffffffffffffffff",
            "0x00ff",
            "0x00",
            "0x\u{0661}",
            "\u{20ac}0x1",
        ] {
            assert!(parse_u128("v", bad).is_err(), "{bad} accepted");
        }
        assert_eq!(parse_i128("v", "-0x10").unwrap(), -16);
        assert_eq!(format_i128(-16), "-0x10");
        assert!(parse_u64("v", "0x10000000000000000").is_err());
        assert_eq!(parse_u64("v", "0xffffffffffffffff").unwrap(), u64::MAX);
    }

    #[test]
    fn padded_and_oversized_integers_are_refused_and_the_error_stays_short() {
        let padded = format!("0x{}1", "0".repeat(200_000));
        let err = parse_u64("height", &padded).unwrap_err().to_string();
        assert!(
            err.contains("height") && err.contains("leading zeros"),
            "{err}"
        );
        assert!(
            err.len() < 300,
            "error echoes the whole input: {} bytes",
            err.len()
        );
        let wide = format!("0x{}", "f".repeat(65));
        assert!(parse_u128("value", &wide).is_err());
        let err = parse_u128("value", &format!("0x1{}", "0".repeat(40)))
            .unwrap_err()
            .to_string();
        assert!(err.contains("2^128"), "{err}");
    }

    #[test]
    fn hashes_bools_bytes() {
        let h = format!("0x{}", "ab".repeat(32));
        assert_eq!(parse_hash("h", &h).unwrap().to_string(), h);
        assert!(parse_hash("h", &h[..65]).is_err());
        assert!(parse_hash("h", &"ab".repeat(33)).is_err());
        assert!(parse_bool("b", "0x2").is_err());
        assert!(parse_bool("b", "0x1").unwrap());
        assert_eq!(parse_bytes("d", "0x0102", 8).unwrap(), vec![1, 2]);
        assert!(parse_bytes("d", "0x010", 8).is_err());
        assert!(parse_bytes("d", "0x010203", 2).is_err());
        let err = parse_u128("value", "12").unwrap_err().to_string();
        assert!(
            err.contains("value") && err.contains("expected") && err.contains("12"),
            "{err}"
        );
    }
}
