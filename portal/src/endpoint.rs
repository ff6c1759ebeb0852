//! One chain endpoint as the portal uses it: heights, BTP messages and header updates, SCORE
//! queries, and relay transactions signed with the portal's key and waited for.

use crate::PortalError;
use nexus_client::rpc::{Limits, RpcClient};
use nexus_proto::value::{parse_bytes, parse_u128, parse_u64};
use nexus_proto::{Address, KeyPair, Transaction, TxData};
use serde_json::{json, Map, Value};

/// A BTP message event found in a block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundMessage {
    /// The network it goes to next.
    pub next: String,
    /// Its sequence number on this hop.
    pub seq: u128,
    /// The encoded event proof.
    pub proof: String,
}

/// The BTP content of one block.
#[derive(Debug, Clone, Default)]
pub struct BlockMessages {
    /// The messages, in order.
    pub messages: Vec<FoundMessage>,
    /// True when the block changes the validator set (its header must be relayed).
    pub validators_change: bool,
}

/// One channel, reached at one or more URLs (the same channel on several validators): a call
/// that gets no usable answer (refused, frozen past the timeout, or longer than the portal
/// reads) moves to the next URL, so one validator down or hung does not stop a link.
pub struct Endpoint {
    rpcs: Vec<RpcClient>,
    current: std::sync::atomic::AtomicUsize,
}

fn now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

impl Endpoint {
    /// An endpoint for a channel URL, its calls within `limits`.
    pub fn new(url: &str, limits: Limits) -> Self {
        Self::with_backups(url, &[], limits)
    }

    /// An endpoint for a channel URL and others serving the same channel.
    pub fn with_backups(url: &str, backups: &[String], limits: Limits) -> Self {
        Endpoint {
            rpcs: std::iter::once(url)
                .chain(backups.iter().map(String::as_str))
                .map(|u| RpcClient::with_limits(u, limits))
                .collect(),
            current: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    fn rpc(&self) -> &RpcClient {
        let i = self.current.load(std::sync::atomic::Ordering::Relaxed);
        &self.rpcs[i % self.rpcs.len()]
    }

    /// The URL in use.
    pub fn url(&self) -> &str {
        self.rpc().url()
    }

    fn answer(&self, what: impl Into<String>) -> PortalError {
        PortalError::Answer {
            endpoint: self.url().to_string(),
            what: what.into(),
        }
    }

    async fn call(&self, method: &str, params: Value) -> Result<Value, PortalError> {
        let mut tries = self.rpcs.len();
        loop {
            let rpc = self.rpc();
            match rpc.call(method, params.clone()).await {
                Ok(v) => return Ok(v),
                Err(error) if error.is_unanswered() && tries > 1 => {
                    tries -= 1;
                    tracing::warn!(endpoint = rpc.url(), %error, "no answer; trying the next URL of this channel");
                    self.current
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                Err(error) => {
                    return Err(PortalError::Rpc {
                        endpoint: rpc.url().to_string(),
                        error,
                    })
                }
            }
        }
    }

    fn str_field<'a>(&self, v: &'a Value, k: &str) -> Result<&'a str, PortalError> {
        v[k].as_str()
            .ok_or_else(|| self.answer(format!("{k}: expected a string in {v}")))
    }

    /// The last block height.
    pub async fn last_height(&self) -> Result<u64, PortalError> {
        let v = self.call("icx_getLastBlock", Value::Null).await?;
        let h = v["height"]
            .as_u64()
            .ok_or_else(|| self.answer("icx_getLastBlock: no height"))?;
        Ok(h)
    }

    /// `btp_getNetworkInfo`: (network, SCORE address, nid).
    pub async fn btp_info(&self) -> Result<(String, Address, u64), PortalError> {
        let v = self.call("btp_getNetworkInfo", Value::Null).await?;
        let net = self.str_field(&v, "network")?.to_string();
        let score = Address::parse("score", self.str_field(&v, "score")?)
            .map_err(|e| self.answer(e.to_string()))?;
        let nid =
            parse_u64("nid", self.str_field(&v, "nid")?).map_err(|e| self.answer(e.to_string()))?;
        Ok((net, score, nid))
    }

    /// `btp_getMessages` of one block.
    pub async fn messages(&self, height: u64) -> Result<BlockMessages, PortalError> {
        let v = self
            .call("btp_getMessages", json!({"height": format!("{height:#x}")}))
            .await?;
        let list = v["messages"]
            .as_array()
            .ok_or_else(|| self.answer(format!("btp_getMessages: no message list in {v}")))?;
        let mut messages = Vec::with_capacity(list.len());
        for m in list {
            messages.push(FoundMessage {
                next: self.str_field(m, "next")?.to_string(),
                seq: parse_u128("seq", self.str_field(m, "seq")?)
                    .map_err(|e| self.answer(e.to_string()))?,
                proof: self.str_field(m, "proof")?.to_string(),
            });
        }
        Ok(BlockMessages {
            messages,
            validators_change: v["validatorsChange"].as_bool().unwrap_or(false),
        })
    }

    /// `btp_getHeader`: the encoded header update of a final block.
    pub async fn header_update(&self, height: u64) -> Result<String, PortalError> {
        let v = self
            .call("btp_getHeader", json!({"height": format!("{height:#x}")}))
            .await?;
        let s = v
            .as_str()
            .ok_or_else(|| self.answer("btp_getHeader: expected hex bytes"))?;
        parse_bytes("header", s, 1 << 20).map_err(|e| self.answer(e.to_string()))?;
        Ok(s.to_string())
    }

    /// `btp_getDecision` of a final notary block (this validator's signature and the messages
    /// with their paths).
    pub async fn decision(&self, height: u64) -> Result<Value, PortalError> {
        self.call("btp_getDecision", json!({"height": format!("{height:#x}")}))
            .await
    }

    /// `btp_getNetworkInfo`'s network.
    pub async fn network(&self) -> Result<String, PortalError> {
        let v = self.call("btp_getNetworkInfo", Value::Null).await?;
        Ok(self.str_field(&v, "network")?.to_string())
    }

    /// A read-only SCORE call.
    pub async fn query(
        &self,
        to: &Address,
        method: &str,
        params: Value,
    ) -> Result<Value, PortalError> {
        let mut data = json!({ "method": method });
        if params.as_object().is_some_and(|o| !o.is_empty()) {
            data["params"] = params;
        }
        self.call(
            "icx_call",
            json!({"to": to.to_string(), "dataType": "call", "data": data}),
        )
        .await
    }

    /// The ICX balance of an account.
    pub async fn balance(&self, who: &Address) -> Result<u128, PortalError> {
        let v = self
            .call("icx_getBalance", json!({"address": who.to_string()}))
            .await?;
        parse_u128("balance", v.as_str().unwrap_or("")).map_err(|e| self.answer(e.to_string()))
    }

    /// Signs a SCORE call, sends it and waits for its result; a failed result is an error.
    pub async fn send_call(
        &self,
        key: &KeyPair,
        nid: u64,
        to: Address,
        method: &str,
        params: Map<String, Value>,
        step_limit: u64,
    ) -> Result<String, PortalError> {
        let tx = Transaction {
            from: key.address(),
            to,
            value: 0,
            step_limit: u128::from(step_limit),
            timestamp: now_us(),
            nid,
            nonce: None,
            data: TxData::Call {
                method: method.to_string(),
                params,
            },
        };
        let st = tx.sign(key)?;
        let hash = st.hash.to_string();
        let r = self
            .call("icx_sendTransactionAndWait", Value::Object(st.raw))
            .await?;
        if r["status"].as_str() == Some("0x1") {
            Ok(hash)
        } else {
            Err(PortalError::Refused {
                tx: hash,
                reason: r["failure"]["message"]
                    .as_str()
                    .unwrap_or("no failure message")
                    .to_string(),
            })
        }
    }
}
