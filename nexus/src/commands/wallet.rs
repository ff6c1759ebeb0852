//! `nexus wallet`: keystores, balances, transfers, SCORE calls and transaction lookups over
//! JSON-RPC, for people without an SDK.

use crate::client::RpcClient;
use crate::commands::devnet::ICX;
use crate::keystore;
use crate::pool::admission::now_us;
use anyhow::{anyhow, bail, Context, Result};
use nexus_proto::value::{parse_u128, parse_u64};
use nexus_proto::{Address, KeyPair, Transaction, TxData};
use serde_json::{json, Map, Value};
use std::path::Path;

/// Parses an amount: `1.5` is ICX (18 decimals); `0x...` is loop.
pub fn parse_amount(s: &str) -> Result<u128> {
    if s.starts_with("0x") {
        return Ok(parse_u128("value", s)?);
    }
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if int.is_empty() && frac.is_empty()
        || frac.len() > 18
        || !int.chars().chain(frac.chars()).all(|c| c.is_ascii_digit())
    {
        bail!("value {s:?}: expected ICX like 1.5 (at most 18 decimals) or loop like 0xde0b6b3a7640000");
    }
    let int: u128 = if int.is_empty() {
        0
    } else {
        int.parse().context("value: integer part")?
    };
    let frac_loop: u128 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<18}").parse().context("value: decimals")?
    };
    int.checked_mul(ICX)
        .and_then(|v| v.checked_add(frac_loop))
        .ok_or_else(|| anyhow!("value {s:?} is too large"))
}

/// Formats loop as ICX.
pub fn format_icx(loop_: u128) -> String {
    let frac = loop_ % ICX;
    if frac == 0 {
        format!("{}", loop_ / ICX)
    } else {
        format!(
            "{}.{}",
            loop_ / ICX,
            format!("{frac:018}").trim_end_matches('0')
        )
    }
}

/// Creates a keystore.
pub fn create(path: &Path, password: &str) -> Result<Address> {
    let key = KeyPair::generate();
    keystore::store(path, &key, password)?;
    Ok(key.address())
}

/// Reads a balance.
pub async fn balance(rpc: &RpcClient, address: &str) -> Result<u128> {
    let v = rpc
        .call("icx_getBalance", json!({ "address": address }))
        .await?;
    Ok(parse_u128("balance", v.as_str().unwrap_or(""))?)
}

async fn nid(rpc: &RpcClient) -> Result<u64> {
    let info = rpc.call("icx_getNetworkInfo", Value::Null).await?;
    Ok(parse_u64("nid", info["nid"].as_str().unwrap_or(""))?)
}

/// Signs and sends a transaction, waits for its result and returns it.
pub async fn send(
    rpc: &RpcClient,
    key: &KeyPair,
    to: Address,
    value: u128,
    data: TxData,
    step_limit: Option<u128>,
) -> Result<Value> {
    let nid = nid(rpc).await?;
    let mut tx = Transaction {
        from: key.address(),
        to,
        value,
        step_limit: 0,
        timestamp: now_us(),
        nid,
        nonce: None,
        data,
    };
    tx.step_limit = match step_limit {
        Some(s) => s,
        None => {
            let mut params = tx.to_params();
            params.remove("stepLimit");
            let est = rpc
                .call_with(
                    &rpc.debug_url(),
                    "debug_estimateStep",
                    Value::Object(params),
                    &[],
                )
                .await?;
            let est = parse_u128("estimate", est.as_str().unwrap_or(""))?;
            est + est / 10
        }
    };
    let st = tx.sign(key)?;
    let result = rpc
        .call("icx_sendTransactionAndWait", Value::Object(st.raw))
        .await?;
    Ok(result)
}

/// Loads a keystore.
pub fn load_key(path: &Path, password: &str) -> Result<KeyPair> {
    Ok(keystore::load(path, password)?)
}

/// Builds call data from a method and JSON params.
pub fn call_data(method: &str, params: Option<&str>) -> Result<TxData> {
    let params: Map<String, Value> = match params {
        Some(p) => serde_json::from_str(p)
            .with_context(|| format!("--params {p:?}: expected a JSON object"))?,
        None => Map::new(),
    };
    Ok(TxData::Call {
        method: method.to_string(),
        params,
    })
}

/// A read-only call.
pub async fn query(
    rpc: &RpcClient,
    to: Address,
    method: &str,
    params: Option<&str>,
) -> Result<Value> {
    let TxData::Call { params, .. } = call_data(method, params)? else {
        unreachable!()
    };
    let mut data = json!({ "method": method });
    if !params.is_empty() {
        data["params"] = Value::Object(params);
    }
    Ok(rpc
        .call(
            "icx_call",
            json!({"to": to.to_string(), "dataType": "call", "data": data}),
        )
        .await?)
}

/// Shows a transaction and its result.
pub async fn tx(rpc: &RpcClient, hash: &str) -> Result<Value> {
    let t = rpc
        .call("icx_getTransactionByHash", json!({ "txHash": hash }))
        .await?;
    let r = rpc
        .call("icx_getTransactionResult", json!({ "txHash": hash }))
        .await?;
    Ok(json!({"transaction": t, "result": r}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts() {
        assert_eq!(parse_amount("1").unwrap(), ICX);
        assert_eq!(parse_amount("1.5").unwrap(), ICX + ICX / 2);
        assert_eq!(parse_amount("0.000000000000000001").unwrap(), 1);
        assert_eq!(parse_amount("0x10").unwrap(), 16);
        assert!(parse_amount("1.0000000000000000001").is_err());
        assert!(parse_amount("abc").is_err());
        assert!(parse_amount("").is_err());
        assert_eq!(format_icx(ICX + ICX / 2), "1.5");
        assert_eq!(format_icx(3 * ICX), "3");
    }
}

alloy::sol! {
    #[sol(rpc)]
    interface EthTokenService {
        function transferNative(string to) external payable returns (uint256);
        event TransferStart(address indexed from, string to, uint256 indexed sn, uint256 value);
    }
}

/// Sends `wei` from an Ethereum account to `to` (`<network>/<account>`) through the token
/// service at `service`; returns the transaction and the transfer's serial number.
pub async fn eth_transfer(
    url: &str,
    service: &str,
    key: &str,
    to: &str,
    wei: u128,
) -> anyhow::Result<serde_json::Value> {
    use alloy::providers::{Provider, ProviderBuilder};
    use alloy::sol_types::SolEvent;
    let signer: alloy::signers::local::PrivateKeySigner = key
        .trim()
        .parse()
        .map_err(|_| anyhow::anyhow!("--eth-key: expected 0x and 64 hex digits"))?;
    let service: alloy::primitives::Address = service.parse().map_err(|_| {
        anyhow::anyhow!("--token-service: expected 0x and 40 hex digits, got {service:?}")
    })?;
    anyhow::ensure!(
        to.contains('/'),
        "--to: expected <network>/<account>, got {to:?}"
    );
    let p = ProviderBuilder::new()
        .wallet(signer)
        .connect_client(super::dex::eth_client(url)?)
        .erased();
    let r = EthTokenService::new(service, p)
        .transferNative(to.to_string())
        .value(alloy::primitives::U256::from(wei))
        .send()
        .await?;
    let r = super::dex::mined(r).await?;
    anyhow::ensure!(r.status(), "transaction {} reverted", r.transaction_hash);
    let sn = r
        .inner
        .logs()
        .iter()
        .find_map(|l| EthTokenService::TransferStart::decode_log_data(l.data()).ok())
        .map(|e| format!("{:#x}", e.sn));
    Ok(
        serde_json::json!({"txHash": r.transaction_hash.to_string(), "block": r.block_number, "sn": sn}),
    )
}
