//! Reading JSON-RPC params with ICON's value shapes; every failure is a -32602 that names the
//! parameter, what it should be and what came.

use crate::error::IconError;
use jsonrpsee::types::Params;
use nexus_proto::{value, Address, Hash32};
use serde_json::{Map, Value};

/// The params object (absent params read as an empty object).
pub(super) fn object(params: &Params<'_>) -> Result<Map<String, Value>, IconError> {
    let Some(raw) = params.as_str() else {
        return Ok(Map::new());
    };
    match nexus_proto::json::from_str_within(raw, nexus_proto::json::MAX_DECODED_BYTES) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(Value::Null) => Ok(Map::new()),
        Ok(other) => Err(IconError::invalid_params(format!(
            "params: expected an object, got {}",
            short(&other)
        ))),
        Err(e) => Err(IconError::invalid_params(format!("params: {e}"))),
    }
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 80 {
        format!(
            "{}...",
            &s[..s
                .char_indices()
                .take_while(|(i, _)| *i < 80)
                .last()
                .map(|(i, _)| i)
                .unwrap_or(0)]
        )
    } else {
        s
    }
}

/// Refuses parameters other than `allowed`.
pub(super) fn only(m: &Map<String, Value>, allowed: &[&str]) -> Result<(), IconError> {
    match m.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(IconError::invalid_params(format!(
            "unknown parameter {k:?}; expected one of {allowed:?}"
        ))),
        None => Ok(()),
    }
}

/// A required string parameter.
pub(super) fn string<'a>(m: &'a Map<String, Value>, key: &str) -> Result<&'a str, IconError> {
    match m.get(key) {
        Some(Value::String(s)) => Ok(s),
        None | Some(Value::Null) => Err(IconError::invalid_params(format!(
            "missing parameter {key}"
        ))),
        Some(other) => Err(IconError::invalid_params(format!(
            "{key}: expected a string, got {}",
            short(other)
        ))),
    }
}

/// An optional string parameter.
pub(super) fn opt_string<'a>(
    m: &'a Map<String, Value>,
    key: &str,
) -> Result<Option<&'a str>, IconError> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(_) => string(m, key).map(Some),
    }
}

/// A required T_HASH parameter.
pub(super) fn hash(m: &Map<String, Value>, key: &str) -> Result<Hash32, IconError> {
    Ok(value::parse_hash(key, string(m, key)?)?)
}

/// A required address parameter.
pub(super) fn address(m: &Map<String, Value>, key: &str) -> Result<Address, IconError> {
    Ok(Address::parse(key, string(m, key)?)?)
}

/// A required T_INT parameter that fits 64 bits.
pub(super) fn u64(m: &Map<String, Value>, key: &str) -> Result<u64, IconError> {
    Ok(value::parse_u64(key, string(m, key)?)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_that_would_decode_past_the_memory_budget_are_refused() {
        // Some 900 KB of one-entry objects: within a request's size, some 60 MB once decoded.
        let dense = format!(r#"{{"a":[{}]}}"#, vec![r#"{"k":""}"#; 100_000].join(","));
        let e = object(&Params::new(Some(&dense))).unwrap_err();
        assert_eq!(e.code, crate::error::code::INVALID_PARAMS);
        assert!(e.message.contains("bytes of memory"), "{}", e.message);
        let plain = object(&Params::new(Some(r#"{"a":[{"k":""}]}"#))).unwrap();
        assert_eq!(plain["a"][0]["k"], "");
    }
}
