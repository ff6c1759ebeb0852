//! JSON from the network decoded into `serde_json::Value` within a memory budget.
//!
//! A `Value` tree can take far more memory than its text: serde_json's `Map` is a B-tree, and an
//! object of one entry allocates a node of some 640 bytes for its 8 bytes of JSON, so a 1-MiB
//! request of `{"a":""}` items decoded to 150 MB before anything looked at it, and a 16-MiB
//! gossip message to over a gigabyte. Decoding here charges each value's memory as it is made
//! (the cost [`value_bytes`] gives of a decoded value) and stops at the first past the budget.

use serde::de::{DeserializeSeed, Error as _, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};
use std::cell::Cell;

/// Memory one transaction's JSON, or one RPC call's params, may decode to (16 times the
/// largest transaction).
pub const MAX_DECODED_BYTES: usize = 8 << 20;

/// A value in an array's buffer, or a decoded top-level value.
const SLOT_BYTES: usize = std::mem::size_of::<Value>();
/// A B-tree node of an object: 11 entries of a key (`String`) and a value, and its header.
const NODE_BYTES: usize = 11 * (24 + SLOT_BYTES) + 16;
/// Entries in one node.
const NODE_ENTRIES: usize = 11;

/// The memory `v` holds beside its own slot: strings' bytes, arrays' buffers, objects' nodes
/// and keys, recursively.
pub fn value_bytes(v: &Value) -> usize {
    match v {
        Value::String(s) => s.len(),
        Value::Array(a) => a.iter().map(|x| SLOT_BYTES + value_bytes(x)).sum(),
        Value::Object(m) => map_bytes(m),
        _ => 0,
    }
}

/// [`value_bytes`] of an object.
pub fn map_bytes(m: &Map<String, Value>) -> usize {
    m.len().div_ceil(NODE_ENTRIES) * NODE_BYTES
        + m.iter()
            .map(|(k, v)| k.len() + value_bytes(v))
            .sum::<usize>()
}

/// Decodes `bytes` as one JSON value holding at most `budget` bytes of memory
/// ([`value_bytes`] and its slot).
pub fn from_slice_within(bytes: &[u8], budget: usize) -> Result<Value, serde_json::Error> {
    whole(serde_json::Deserializer::from_slice(bytes), budget)
}

/// [`from_slice_within`] for text (whose strings need no UTF-8 check).
pub fn from_str_within(text: &str, budget: usize) -> Result<Value, serde_json::Error> {
    whole(serde_json::Deserializer::from_str(text), budget)
}

/// One value spanning the input, within `budget`.
fn whole<'de, R: serde_json::de::Read<'de>>(
    mut de: serde_json::Deserializer<R>,
    budget: usize,
) -> Result<Value, serde_json::Error> {
    let left = Cell::new(budget);
    let limit = Budget {
        left: &left,
        budget,
    };
    limit.charge::<serde_json::Error>(SLOT_BYTES)?;
    let v = Seed(limit).deserialize(&mut de)?;
    de.end()?;
    Ok(v)
}

#[derive(Clone, Copy)]
struct Budget<'a> {
    left: &'a Cell<usize>,
    budget: usize,
}

impl Budget<'_> {
    fn charge<E: serde::de::Error>(self, bytes: usize) -> Result<(), E> {
        match self.left.get().checked_sub(bytes) {
            Some(rest) => {
                self.left.set(rest);
                Ok(())
            }
            None => Err(E::custom(format!(
                "JSON that decodes to more than {} bytes of memory",
                self.budget
            ))),
        }
    }
}

struct Seed<'a>(Budget<'a>);

impl<'de> DeserializeSeed<'de> for Seed<'_> {
    type Value = Value;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Seed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Value, E> {
        self.0.charge(v.len())?;
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Value, E> {
        self.0.charge(v.len())?;
        Ok(Value::String(v))
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        Seed(self.0).deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        loop {
            self.0.charge(SLOT_BYTES)?;
            match seq.next_element_seed(Seed(self.0))? {
                Some(v) => out.push(v),
                None => return Ok(Value::Array(out)),
            }
        }
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if out.len().is_multiple_of(NODE_ENTRIES) {
                self.0.charge(NODE_BYTES)?;
            }
            self.0.charge(key.len())?;
            let v = map.next_value_seed(Seed(self.0))?;
            if out.insert(key, v).is_some() {
                return Err(A::Error::custom("an object names the same key twice"));
            }
        }
        Ok(Value::Object(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_decode_as_serde_json_decodes_them() {
        let text = r#"{"a":[1,-2,3.5,"x",null,true,{"b":{}}],"c":"\u00e9\n","d":[]}"#;
        let ours = from_str_within(text, MAX_DECODED_BYTES).unwrap();
        assert_eq!(ours, serde_json::from_str::<Value>(text).unwrap());
    }

    #[test]
    fn the_budget_charges_what_value_bytes_counts() {
        let text = r#"{"a":["xy",[],{"k":"v"}],"b":"hello"}"#;
        let v = serde_json::from_str::<Value>(text).unwrap();
        let cost = SLOT_BYTES + value_bytes(&v);
        assert!(from_str_within(text, cost + 2 * SLOT_BYTES).is_ok());
        let e = from_str_within(text, cost - 1).unwrap_err().to_string();
        assert!(e.contains(&format!("more than {} bytes", cost - 1)), "{e}");
    }

    #[test]
    fn dense_objects_stop_at_the_budget_however_short_their_text() {
        let text = format!("[{}]", vec![r#"{"a":""}"#; 20_000].join(","));
        let e = from_str_within(&text, 1 << 20).unwrap_err().to_string();
        assert!(e.contains("more than 1048576 bytes"), "{e}");
        let v = serde_json::from_str::<Value>(&text).unwrap();
        assert!(
            value_bytes(&v) > 60 * text.len(),
            "each object is a B-tree node"
        );
    }

    #[test]
    fn repeated_keys_and_trailing_text_are_refused() {
        assert!(from_str_within(r#"{"a":1,"a":2}"#, MAX_DECODED_BYTES).is_err());
        assert!(from_str_within(r#"{"a":1} x"#, MAX_DECODED_BYTES).is_err());
        assert!(from_str_within(&"[".repeat(10_000), MAX_DECODED_BYTES).is_err());
    }
}
