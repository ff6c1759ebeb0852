//! ICON's canonical serialization of transaction params, the input of the transaction hash.
//!
//! Rules (goloop `serialize.go`, iconsdk `serializer.py`):
//! - `signature` is dropped (and `tx_hash` for version 2);
//! - a map is its `key.value` pairs with keys sorted by byte order, joined by `.`; nested maps
//!   are wrapped in `{}`, lists in `[]`, null is `\0`;
//! - in string values every `\ { } [ ] .` is escaped with a backslash (every occurrence); keys
//!   are written as they are, exactly as ICON's SDKs do (the node refuses keys holding those
//!   characters, see [`check_key`], so no two accepted param sets serialize alike);
//! - the result is prefixed with `icx_sendTransaction.` and hashed with SHA3-256.
//!
//! Only strings, maps, lists and null are allowed: ICON values are strings, so a JSON number or
//! boolean is rejected rather than guessed at.

use crate::{hash::sha3_256, Hash32, ProtoError};
use serde_json::{Map, Value};

/// Deepest nesting of maps and lists accepted in transaction params.
pub const MAX_DEPTH: usize = 32;

/// Serializes transaction params (without the `icx_sendTransaction.` prefix).
pub fn serialize_params(params: &Map<String, Value>) -> Result<String, ProtoError> {
    let mut out = String::with_capacity(256);
    write_map_body(params, &mut out, 0)?;
    Ok(out)
}

/// The bytes that are hashed: `icx_sendTransaction.` + the serialized params.
pub fn tx_hash_input(params: &Map<String, Value>) -> Result<String, ProtoError> {
    let mut out = String::with_capacity(320);
    out.push_str("icx_sendTransaction.");
    write_map_body(params, &mut out, 0)?;
    Ok(out)
}

/// The transaction hash: SHA3-256 of [`tx_hash_input`].
pub fn tx_hash(params: &Map<String, Value>) -> Result<Hash32, ProtoError> {
    Ok(sha3_256(&[tx_hash_input(params)?.as_bytes()]))
}

fn write_map_body(
    map: &Map<String, Value>,
    out: &mut String,
    depth: usize,
) -> Result<(), ProtoError> {
    let skip_tx_hash = depth == 0 && map.get("version").and_then(Value::as_str) != Some("0x3");
    let mut keys: Vec<&String> = map
        .keys()
        .filter(|k| {
            !(depth == 0
                && (k.as_str() == "signature" || (skip_tx_hash && k.as_str() == "tx_hash")))
        })
        .collect();
    keys.sort_unstable();
    for (i, k) in keys.into_iter().enumerate() {
        if i > 0 {
            out.push('.');
        }
        out.push_str(k);
        out.push('.');
        write_value(&map[k.as_str()], out, depth + 1, k)?;
    }
    Ok(())
}

fn write_value(v: &Value, out: &mut String, depth: usize, path: &str) -> Result<(), ProtoError> {
    if depth > MAX_DEPTH {
        return Err(ProtoError::TooLarge {
            what: "params nesting depth",
            size: depth,
            limit: MAX_DEPTH,
        });
    }
    match v {
        Value::String(s) => escape_into(s, out),
        Value::Null => out.push_str("\\0"),
        Value::Object(m) => {
            out.push('{');
            write_map_body(m, out, depth)?;
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push('.');
                }
                write_value(item, out, depth + 1, path)?;
            }
            out.push(']');
        }
        Value::Number(n) => {
            return Err(ProtoError::invalid(
                path,
                "a string (ICON values are strings)",
                n.to_string(),
            ))
        }
        Value::Bool(b) => {
            return Err(ProtoError::invalid(
                path,
                "a string (ICON values are strings)",
                b.to_string(),
            ))
        }
    }
    Ok(())
}

/// Refuses a params key holding a character that the serialization would leave unescaped
/// (`\ { } [ ] .`), which could make two different param sets hash alike.
pub fn check_key(k: &str) -> Result<(), ProtoError> {
    if k.is_empty()
        || k.chars()
            .any(|c| matches!(c, '\\' | '{' | '}' | '[' | ']' | '.'))
    {
        return Err(ProtoError::invalid(
            "params key",
            "a non-empty key without \\ { } [ ] .",
            k,
        ));
    }
    Ok(())
}

fn escape_into(s: &str, out: &mut String) {
    for c in s.chars() {
        if matches!(c, '\\' | '{' | '}' | '[' | ']' | '.') {
            out.push('\\');
        }
        out.push(c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ser(v: Value) -> String {
        serialize_params(v.as_object().unwrap()).unwrap()
    }

    #[test]
    fn sorts_nests_and_escapes_every_occurrence() {
        let v = json!({
            "version": "0x3", "signature": "dropped",
            "data": {"method": "a.b.c", "params": {"x": ["1", null, {"k]": "v{}"}]}},
            "b": "\\"
        });
        assert_eq!(
            ser(v),
            "b.\\\\.data.{method.a\\.b\\.c.params.{x.[1.\\0.{k].v\\{\\}}]}}.version.0x3"
        );
        assert!(check_key("k]").is_err());
        assert!(check_key("_to").is_ok());
    }

    #[test]
    fn rejects_numbers_and_deep_nesting() {
        assert!(serialize_params(json!({"value": 1}).as_object().unwrap()).is_err());
        let mut v = json!("x");
        for _ in 0..40 {
            v = json!([v]);
        }
        assert!(serialize_params(json!({ "data": v }).as_object().unwrap()).is_err());
    }
}
