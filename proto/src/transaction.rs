//! ICON v3 transactions: decoding from JSON params, building, hashing and signing.
//!
//! A transaction arrives as the `params` object of `icx_sendTransaction`. Decoding checks the
//! shape of every field and keeps the original JSON, which is what the hash covers and what the
//! node serves back (`icx_getTransactionByHash`, block transaction lists).

use crate::{serialize, value, Address, Hash32, KeyPair, ProtoError, Signature};
use serde_json::{Map, Value};

/// Largest accepted `message` or `deploy` payload.
pub const MAX_DATA_BYTES: usize = 256 * 1024;
/// Largest transaction, as JSON bytes (ICON's nodes refuse transactions over 512 KiB).
pub const MAX_TX_BYTES: usize = 512 * 1024;
/// Largest accepted method name.
pub const MAX_METHOD_LEN: usize = 128;

/// What a transaction carries besides its value.
#[derive(Debug, Clone, PartialEq)]
pub enum TxData {
    /// A plain ICX transfer.
    None,
    /// `dataType: call`: a call of a SCORE method.
    Call {
        /// Method name.
        method: String,
        /// Named parameters (strings, maps, lists).
        params: Map<String, Value>,
    },
    /// `dataType: message`: arbitrary bytes recorded on chain.
    Message(Vec<u8>),
    /// `dataType: deploy`: SCORE code (decoded and hashed; Nexus runs only native SCOREs).
    Deploy {
        /// MIME type of `content`.
        content_type: String,
        /// The code bytes.
        content: Vec<u8>,
        /// Parameters of `on_install`.
        params: Map<String, Value>,
    },
    /// `dataType: deposit` (fee sharing; decoded only).
    Deposit {
        /// `add` or `withdraw`.
        action: String,
    },
}

impl TxData {
    /// The `dataType` string, if any.
    pub fn data_type(&self) -> Option<&'static str> {
        match self {
            TxData::None => None,
            TxData::Call { .. } => Some("call"),
            TxData::Message(_) => Some("message"),
            TxData::Deploy { .. } => Some("deploy"),
            TxData::Deposit { .. } => Some("deposit"),
        }
    }

    fn to_json(&self) -> Option<Value> {
        match self {
            TxData::None => None,
            TxData::Call { method, params } => {
                let mut m = Map::new();
                m.insert("method".into(), Value::String(method.clone()));
                if !params.is_empty() {
                    m.insert("params".into(), Value::Object(params.clone()));
                }
                Some(Value::Object(m))
            }
            TxData::Message(b) => Some(Value::String(value::format_bytes(b))),
            TxData::Deploy {
                content_type,
                content,
                params,
            } => {
                let mut m = Map::new();
                m.insert("contentType".into(), Value::String(content_type.clone()));
                m.insert(
                    "content".into(),
                    Value::String(value::format_bytes(content)),
                );
                if !params.is_empty() {
                    m.insert("params".into(), Value::Object(params.clone()));
                }
                Some(Value::Object(m))
            }
            TxData::Deposit { action } => {
                let mut m = Map::new();
                m.insert("action".into(), Value::String(action.clone()));
                Some(Value::Object(m))
            }
        }
    }
}

/// The fields of an unsigned v3 transaction.
#[derive(Debug, Clone, PartialEq)]
pub struct Transaction {
    /// Sender (an `hx` account).
    pub from: Address,
    /// Receiver: an account or a SCORE.
    pub to: Address,
    /// ICX to move, in loop (10^18 per ICX).
    pub value: u128,
    /// Most steps the sender pays for.
    pub step_limit: u128,
    /// Creation time in microseconds since the epoch.
    pub timestamp: u64,
    /// Network id.
    pub nid: u64,
    /// Optional nonce (free-form; makes otherwise equal transactions distinct).
    pub nonce: Option<u128>,
    /// Payload.
    pub data: TxData,
}

const KNOWN_KEYS: [&str; 11] = [
    "version",
    "from",
    "to",
    "value",
    "stepLimit",
    "timestamp",
    "nid",
    "nonce",
    "signature",
    "dataType",
    "data",
];

fn field<'a>(m: &'a Map<String, Value>, key: &str) -> Result<Option<&'a str>, ProtoError> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(ProtoError::invalid(key, "a string", other.to_string())),
    }
}

fn required<'a>(m: &'a Map<String, Value>, key: &str) -> Result<&'a str, ProtoError> {
    field(m, key)?.ok_or_else(|| ProtoError::Missing(key.to_string()))
}

fn object(v: Option<&Value>, key: &str) -> Result<Map<String, Value>, ProtoError> {
    match v {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(Value::Object(m)) => Ok(m.clone()),
        Some(other) => Err(ProtoError::invalid(key, "an object", other.to_string())),
    }
}

impl Transaction {
    /// Decodes and checks the shape of `params` (the signature is not checked here).
    pub fn from_params(m: &Map<String, Value>) -> Result<Self, ProtoError> {
        if let Some(k) = m.keys().find(|k| !KNOWN_KEYS.contains(&k.as_str())) {
            return Err(ProtoError::invalid(
                "params",
                "only v3 transaction fields",
                k,
            ));
        }
        let version = required(m, "version")?;
        if version != "0x3" {
            return Err(ProtoError::invalid("version", "0x3", version));
        }
        let from = Address::parse("from", required(m, "from")?)?;
        if from.is_contract() {
            return Err(ProtoError::invalid(
                "from",
                "an hx account address",
                from.to_string(),
            ));
        }
        let to = Address::parse("to", required(m, "to")?)?;
        let value = field(m, "value")?
            .map(|s| value::parse_u128("value", s))
            .transpose()?
            .unwrap_or(0);
        let step_limit = value::parse_u128("stepLimit", required(m, "stepLimit")?)?;
        let timestamp = value::parse_u64("timestamp", required(m, "timestamp")?)?;
        let nid = value::parse_u64("nid", required(m, "nid")?)?;
        let nonce = field(m, "nonce")?
            .map(|s| value::parse_u128("nonce", s))
            .transpose()?;
        let data = Self::decode_data(field(m, "dataType")?, m.get("data"))?;
        Ok(Transaction {
            from,
            to,
            value,
            step_limit,
            timestamp,
            nid,
            nonce,
            data,
        })
    }

    fn decode_data(data_type: Option<&str>, data: Option<&Value>) -> Result<TxData, ProtoError> {
        match data_type {
            None => match data {
                None | Some(Value::Null) => Ok(TxData::None),
                Some(_) => Err(ProtoError::invalid(
                    "data",
                    "no data without a dataType",
                    "data",
                )),
            },
            Some("call") => {
                let m = match data {
                    Some(Value::Object(m)) => m,
                    other => {
                        return Err(ProtoError::invalid(
                            "data",
                            "an object {method, params}",
                            format!("{other:?}"),
                        ))
                    }
                };
                let method = match m.get("method") {
                    Some(Value::String(s)) if !s.is_empty() && s.len() <= MAX_METHOD_LEN => {
                        s.clone()
                    }
                    other => {
                        return Err(ProtoError::invalid(
                            "data.method",
                            "a method name of 1..=128 characters",
                            format!("{other:?}"),
                        ))
                    }
                };
                if let Some(k) = m.keys().find(|k| *k != "method" && *k != "params") {
                    return Err(ProtoError::invalid("data", "only method and params", k));
                }
                Ok(TxData::Call {
                    method,
                    params: object(m.get("params"), "data.params")?,
                })
            }
            Some("message") => match data {
                Some(Value::String(s)) => Ok(TxData::Message(value::parse_bytes(
                    "data",
                    s,
                    MAX_DATA_BYTES,
                )?)),
                other => Err(ProtoError::invalid(
                    "data",
                    "0x-prefixed hex bytes",
                    format!("{other:?}"),
                )),
            },
            Some("deploy") => {
                let m = match data {
                    Some(Value::Object(m)) => m,
                    other => {
                        return Err(ProtoError::invalid(
                            "data",
                            "an object {contentType, content, params}",
                            format!("{other:?}"),
                        ))
                    }
                };
                let content_type = match m.get("contentType") {
                    Some(Value::String(s)) => s.clone(),
                    _ => return Err(ProtoError::Missing("data.contentType".into())),
                };
                let content = match m.get("content") {
                    Some(Value::String(s)) => {
                        value::parse_bytes("data.content", s, MAX_DATA_BYTES)?
                    }
                    _ => return Err(ProtoError::Missing("data.content".into())),
                };
                Ok(TxData::Deploy {
                    content_type,
                    content,
                    params: object(m.get("params"), "data.params")?,
                })
            }
            Some("deposit") => match data {
                Some(Value::Object(m)) => match m.get("action") {
                    Some(Value::String(a)) if a == "add" || a == "withdraw" => {
                        Ok(TxData::Deposit { action: a.clone() })
                    }
                    other => Err(ProtoError::invalid(
                        "data.action",
                        "add or withdraw",
                        format!("{other:?}"),
                    )),
                },
                other => Err(ProtoError::invalid(
                    "data",
                    "an object {action}",
                    format!("{other:?}"),
                )),
            },
            Some(other) => Err(ProtoError::invalid(
                "dataType",
                "call, message, deploy or deposit",
                other,
            )),
        }
    }

    /// The JSON params of this transaction, without a signature.
    pub fn to_params(&self) -> Map<String, Value> {
        let mut m = Map::new();
        let s = |v: String| Value::String(v);
        m.insert("version".into(), s("0x3".into()));
        m.insert("from".into(), s(self.from.to_string()));
        m.insert("to".into(), s(self.to.to_string()));
        if self.value > 0 {
            m.insert("value".into(), s(value::format_int(self.value)));
        }
        m.insert("stepLimit".into(), s(value::format_int(self.step_limit)));
        m.insert("timestamp".into(), s(value::format_int(self.timestamp)));
        m.insert("nid".into(), s(value::format_int(self.nid)));
        if let Some(n) = self.nonce {
            m.insert("nonce".into(), s(value::format_int(n)));
        }
        if let (Some(dt), Some(d)) = (self.data.data_type(), self.data.to_json()) {
            m.insert("dataType".into(), s(dt.into()));
            m.insert("data".into(), d);
        }
        m
    }

    /// Signs with `key` (whose address should be `from`).
    pub fn sign(&self, key: &KeyPair) -> Result<SignedTransaction, ProtoError> {
        let mut params = self.to_params();
        let hash = serialize::tx_hash(&params)?;
        let signature = key.sign(&hash);
        params.insert("signature".into(), Value::String(signature.to_base64()));
        Ok(SignedTransaction {
            tx: self.clone(),
            hash,
            signature,
            raw: params,
            json: Default::default(),
        })
    }
}

/// A decoded transaction with its hash, signature and original JSON.
#[derive(Debug, Clone)]
pub struct SignedTransaction {
    /// The decoded fields.
    pub tx: Transaction,
    /// SHA3-256 of the canonical serialization.
    pub hash: Hash32,
    /// The signature as sent.
    pub signature: Signature,
    /// The params exactly as received, signature included.
    pub raw: Map<String, Value>,
    /// `raw` as JSON bytes, made once on first use (gossip, block payloads and storage all
    /// need them).
    json: std::sync::OnceLock<Vec<u8>>,
}

impl SignedTransaction {
    /// Decodes params and computes the hash. Does not verify the signature.
    pub fn from_params(raw: Map<String, Value>) -> Result<Self, ProtoError> {
        let tx = Transaction::from_params(&raw)?;
        let signature = Signature::from_base64(
            field(&raw, "signature")?.ok_or_else(|| ProtoError::Missing("signature".into()))?,
        )?;
        let hash = serialize::tx_hash(&raw)?;
        Ok(SignedTransaction {
            tx,
            hash,
            signature,
            raw,
            json: Default::default(),
        })
    }

    /// Decodes from a JSON value, which must be an object.
    pub fn from_json(v: Value) -> Result<Self, ProtoError> {
        match v {
            Value::Object(m) => Self::from_params(m),
            other => Err(ProtoError::invalid(
                "params",
                "an object",
                other.to_string(),
            )),
        }
    }

    /// Decodes from stored JSON bytes.
    pub fn from_json_bytes(b: &[u8]) -> Result<Self, ProtoError> {
        if b.len() > MAX_TX_BYTES {
            return Err(ProtoError::TooLarge {
                what: "transaction",
                size: b.len(),
                limit: MAX_TX_BYTES,
            });
        }
        let v = crate::json::from_slice_within(b, crate::json::MAX_DECODED_BYTES)
            .map_err(|e| ProtoError::invalid("transaction", "JSON", e.to_string()))?;
        Self::from_json(v)
    }

    /// The memory this transaction holds, estimated: its JSON once serialized, and its decoded
    /// forms (the params as received and the call or deploy parameters decoded from them) as
    /// [`crate::json::value_bytes`] counts them. A pool bounded by this is bounded in memory;
    /// one bounded by JSON bytes alone is not: data of empty strings holds some twenty times its
    /// JSON once decoded, data of one-entry objects some 150 times.
    pub fn held_bytes(&self) -> usize {
        let params = match &self.tx.data {
            TxData::Call { params, .. } | TxData::Deploy { params, .. } => {
                crate::json::map_bytes(params)
            }
            _ => 0,
        };
        std::mem::size_of::<Self>()
            + self.json_bytes().len()
            + crate::json::map_bytes(&self.raw)
            + params
    }

    /// The JSON bytes to store, gossip and put in blocks (serialized once).
    pub fn json_bytes(&self) -> &[u8] {
        // Serializing a Map of JSON values cannot fail.
        self.json
            .get_or_init(|| serde_json::to_vec(&self.raw).unwrap_or_default())
    }

    /// [`SignedTransaction::json_bytes`] as an owned vector.
    pub fn to_json_bytes(&self) -> Vec<u8> {
        self.json_bytes().to_vec()
    }

    /// Recovers the signer and checks that it is `from`.
    pub fn verify_signature(&self) -> Result<(), ProtoError> {
        let signer = self.signature.recover_address(&self.hash)?;
        if signer != self.tx.from {
            return Err(ProtoError::Signature(format!(
                "signed by {signer}, but from is {}",
                self.tx.from
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn transfer(key: &KeyPair) -> Transaction {
        Transaction {
            from: key.address(),
            to: Address::eoa([7u8; 20]),
            value: 10,
            step_limit: 100_000,
            timestamp: 1_700_000_000_000_000,
            nid: 1,
            nonce: None,
            data: TxData::None,
        }
    }

    #[test]
    fn sign_decode_verify() {
        let k = KeyPair::generate();
        let st = transfer(&k).sign(&k).unwrap();
        let back = SignedTransaction::from_json_bytes(&st.to_json_bytes()).unwrap();
        assert_eq!(back.hash, st.hash);
        assert_eq!(back.tx, st.tx);
        back.verify_signature().unwrap();
    }

    #[test]
    fn signature_by_another_key_is_rejected() {
        let k = KeyPair::generate();
        let other = KeyPair::generate();
        let st = transfer(&k).sign(&other).unwrap();
        let err = st.verify_signature().unwrap_err().to_string();
        assert!(err.contains("signed by"), "{err}");
    }

    #[test]
    fn shape_errors_name_the_field() {
        let k = KeyPair::generate();
        let st = transfer(&k).sign(&k).unwrap();
        let cases = [
            ("version", json!("0x2"), "version"),
            ("to", json!("hx12"), "to"),
            ("stepLimit", json!(5), "stepLimit"),
            ("dataType", json!("magic"), "dataType"),
            ("extra", json!("x"), "params"),
        ];
        for (k, v, want) in cases {
            let mut raw = st.raw.clone();
            raw.insert(k.into(), v);
            let err = SignedTransaction::from_params(raw).unwrap_err().to_string();
            assert!(err.contains(want), "{k}: {err}");
        }
        let mut raw = st.raw.clone();
        raw.remove("signature");
        assert!(SignedTransaction::from_params(raw).is_err());
    }
}
