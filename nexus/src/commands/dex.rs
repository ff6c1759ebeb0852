//! `nexus dex`: prices, quotes, swaps and liquidity of the DEX's converter SCORE, and the
//! Ethereum side (the reserve contract's `swap` and `deposit`). Also seeds a devnet's pool.

use crate::client::RpcClient;
use crate::commands::wallet;
use alloy::primitives::{Address as EthAddress, U256};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use anyhow::{anyhow, bail, ensure, Context, Result};
use nexus_client::eth_transport::BoundedHttp;
use nexus_client::rpc::Limits;
use nexus_dex::score::CONVERTER_ADDRESS;
use nexus_proto::value::{format_int, parse_u128};
use nexus_proto::{Address, KeyPair, TxData};
use serde_json::{json, Map, Value};
use std::time::{Duration, Instant};

alloy::sol! {
    #[sol(rpc)]
    interface EthDexReserve {
        function swap(string to, uint256 minReturn) external payable returns (uint256);
        function deposit(string to) external payable returns (uint256);
        function reserve() external view returns (uint256);
        function held() external view returns (uint256);
        event SwapStarted(address indexed from, string to, uint256 indexed sn, uint256 amount, uint256 minReturn);
        event DepositStarted(address indexed from, string to, uint256 indexed sn, uint256 amount);
        event SwapEnded(address indexed from, uint256 indexed sn, int256 code, string message);
    }
}

/// The least a trade may return when no `--min-return` is given: the quote less `slippage_bps`.
pub fn min_from_quote(quote: u128, slippage_bps: u32) -> u128 {
    let keep = 10_000u128.saturating_sub(u128::from(slippage_bps));
    // quote * keep / 10_000 without overflow for any u128 quote.
    quote / 10_000 * keep + quote % 10_000 * keep / 10_000
}

async fn read(rpc: &RpcClient, method: &str, params: Value) -> Result<Value> {
    wallet::query(rpc, CONVERTER_ADDRESS, method, Some(&params.to_string()))
        .await
        .with_context(|| format!("the converter's {method} at {}", rpc.url()))
}

fn int(v: &Value, what: &str) -> Result<u128> {
    Ok(parse_u128(what, v.as_str().unwrap_or(""))?)
}

/// The converter's `getReserves` (reserves, Ether credited and in flight, pool supply, trades).
pub async fn reserves(rpc: &RpcClient) -> Result<Value> {
    read(rpc, "getReserves", json!({})).await
}

/// Reserves, price, fee and weights.
pub async fn price(rpc: &RpcClient) -> Result<Value> {
    let reserves = reserves(rpc).await?;
    let fee = read(rpc, "getFee", json!({})).await?;
    let weights = read(rpc, "getWeights", json!({})).await?;
    let price = read(rpc, "getPrice", json!({})).await.ok();
    let icx_in_wei = price.as_ref().map(|p| p["icxInWei"].clone());
    Ok(json!({"reserves": reserves, "fee": fee, "weights": weights,
              "icxInWei": icx_in_wei,
              "icxInEth": icx_in_wei.as_ref().and_then(|v| int(v, "price").ok()).map(wallet::format_icx)}))
}

/// What selling `amount` of `from` (`ICX` or `ETH`) returns now.
pub async fn quote(rpc: &RpcClient, from: &str, amount: u128) -> Result<Value> {
    read(
        rpc,
        "getReturn",
        json!({"_from": from, "_amount": format_int(amount)}),
    )
    .await
}

fn check_tx(r: &Value, what: &str) -> Result<()> {
    ensure!(
        r["status"] == "0x1",
        "{what} failed: {}",
        r["failure"]["message"].as_str().unwrap_or("(no message)")
    );
    Ok(())
}

fn call(method: &str, params: Value) -> TxData {
    let Value::Object(params) = params else {
        unreachable!("a json object")
    };
    TxData::Call {
        method: method.into(),
        params: Map::from_iter(params),
    }
}

/// Sells `icx` loop for Ether paid to `to` on Ethereum, at least `min_return` wei.
pub async fn swap_icx(
    rpc: &RpcClient,
    key: &KeyPair,
    icx: u128,
    to: &str,
    min_return: u128,
) -> Result<Value> {
    let r = wallet::send(
        rpc,
        key,
        CONVERTER_ADDRESS,
        icx,
        call(
            "convert",
            json!({"_to": to, "_minReturn": format_int(min_return)}),
        ),
        None,
    )
    .await?;
    check_tx(&r, "convert")?;
    let out = r["eventLogs"]
        .as_array()
        .and_then(|logs| {
            logs.iter()
                .find(|e| e["indexed"][0] == nexus_dex::score::CONVERSION_SIG)
        })
        .map(|e| e["data"][1].clone())
        .unwrap_or_default();
    Ok(json!({"txHash": r["txHash"], "ethOut": out, "to": to, "stepUsed": r["stepUsed"]}))
}

/// The sender's Ethereum secret as 0x + 64 hex digits: `key` itself, or the key of the
/// Ethereum keystore file `keystore` decrypted with `password`.
pub fn eth_secret(
    key: Option<&str>,
    keystore: Option<&std::path::Path>,
    password: Option<&str>,
) -> Result<String> {
    match (key, keystore) {
        (Some(k), None) => Ok(k.to_string()),
        (None, Some(path)) => {
            let password =
                password.context("--eth-keystore needs --eth-password (or NEXUS_ETH_PASSWORD)")?;
            let key = crate::keystore::load_eth(path, password)
                .with_context(|| format!("--eth-keystore {}", path.display()))?;
            Ok(format!("0x{}", hex::encode(key.secret_bytes())))
        }
        (Some(_), Some(_)) => bail!("give --eth-key or --eth-keystore, not both"),
        (None, None) => bail!("give --eth-key (or NEXUS_ETH_KEY) or --eth-keystore"),
    }
}

fn eth_provider(url: &str, key: &str) -> Result<(DynProvider, EthAddress)> {
    let signer: alloy::signers::local::PrivateKeySigner = key
        .trim()
        .parse()
        .map_err(|_| anyhow!("--eth-key: expected 0x and 64 hex digits"))?;
    let me = signer.address();
    let p = ProviderBuilder::new()
        .wallet(signer)
        .connect_client(eth_client(url)?)
        .erased();
    Ok((p, me))
}

fn reserve_address(s: &str) -> Result<EthAddress> {
    s.parse()
        .map_err(|_| anyhow!("--reserve: expected 0x and 40 hex digits, got {s:?}"))
}

fn check_hx(to: &str) -> Result<()> {
    Address::parse("--to", to)?;
    ensure!(
        to.starts_with("hx"),
        "--to: expected an hx account, got {to:?}"
    );
    Ok(())
}

/// Sells `wei` on Ethereum (the reserve's `swap`) for ICX at `to`, at least `min_return` loop.
pub async fn swap_eth(
    eth_rpc: &str,
    reserve: &str,
    key: &str,
    wei: u128,
    to: &str,
    min_return: u128,
) -> Result<Value> {
    check_hx(to)?;
    let (p, _) = eth_provider(eth_rpc, key)?;
    let r = EthDexReserve::new(reserve_address(reserve)?, p)
        .swap(to.to_string(), U256::from(min_return))
        .value(U256::from(wei))
        .send()
        .await?;
    let r = mined(r).await?;
    ensure!(r.status(), "swap {} reverted", r.transaction_hash);
    Ok(
        json!({"txHash": r.transaction_hash.to_string(), "block": r.block_number, "gasUsed": r.gas_used}),
    )
}

/// Deposits `wei` on the reserve for liquidity, credited to `to` on Nexus.
pub async fn deposit_eth(
    eth_rpc: &str,
    reserve: &str,
    key: &str,
    wei: u128,
    to: &str,
) -> Result<Value> {
    check_hx(to)?;
    let (p, _) = eth_provider(eth_rpc, key)?;
    let r = EthDexReserve::new(reserve_address(reserve)?, p)
        .deposit(to.to_string())
        .value(U256::from(wei))
        .send()
        .await?;
    let r = mined(r).await?;
    ensure!(r.status(), "deposit {} reverted", r.transaction_hash);
    Ok(json!({"txHash": r.transaction_hash.to_string(), "block": r.block_number}))
}

/// Longest wait for an Ethereum transaction this command sent to be mined.
pub const RECEIPT_TIMEOUT: Duration = Duration::from_secs(300);

/// The receipt of a sent Ethereum transaction, or an error naming it once [`RECEIPT_TIMEOUT`]
/// passes (a node that dropped it, or fees under a base fee that rose, would make the command
/// wait for ever).
pub async fn mined(
    pending: alloy::providers::PendingTransactionBuilder<alloy::network::Ethereum>,
) -> Result<alloy::rpc::types::TransactionReceipt> {
    let hash = *pending.tx_hash();
    pending
        .with_timeout(Some(RECEIPT_TIMEOUT))
        .get_receipt()
        .await
        .with_context(|| {
            format!(
                "transaction {hash} not mined within {} s: it may still be (ask the node for its \
                 receipt), or send it again with the same nonce and higher fees",
                RECEIPT_TIMEOUT.as_secs()
            )
        })
}

/// An alloy client of the Ethereum endpoint `url` (`--eth-rpc`), its calls within the default
/// [`Limits`] (an endpoint that hangs or answers without end fails the command).
pub fn eth_client(url: &str) -> Result<alloy::rpc::client::RpcClient> {
    url.parse::<alloy::transports::http::reqwest::Url>()
        .map_err(|e| anyhow!("--eth-rpc {url:?}: {e}"))?;
    Ok(BoundedHttp::client(url, Limits::default()))
}

/// The Ether the reserve contract holds: (reserve, held for pending trades).
pub async fn eth_reserve(eth_rpc: &str, reserve: &str) -> Result<(u128, u128)> {
    let p = ProviderBuilder::new()
        .connect_client(eth_client(eth_rpc)?)
        .erased();
    let c = EthDexReserve::new(reserve_address(reserve)?, p);
    let r = c.reserve().call().await?;
    let h = c.held().call().await?;
    Ok((r.to::<u128>(), h.to::<u128>()))
}

/// Adds `icx` loop and `eth` wei of the sender's Ether credit as liquidity.
pub async fn add_liquidity(
    rpc: &RpcClient,
    key: &KeyPair,
    icx: u128,
    eth: u128,
    min_tokens: u128,
) -> Result<Value> {
    let r = wallet::send(
        rpc,
        key,
        CONVERTER_ADDRESS,
        icx,
        call(
            "addLiquidity",
            json!({"_eth": format_int(eth), "_minTokens": format_int(min_tokens)}),
        ),
        None,
    )
    .await?;
    check_tx(&r, "addLiquidity")?;
    Ok(json!({"txHash": r["txHash"]}))
}

/// Returns `tokens` pool tokens: ICX to the sender, Ether to `eth_to`.
pub async fn remove_liquidity(
    rpc: &RpcClient,
    key: &KeyPair,
    tokens: u128,
    eth_to: &str,
) -> Result<Value> {
    let r = wallet::send(
        rpc,
        key,
        CONVERTER_ADDRESS,
        0,
        call(
            "removeLiquidity",
            json!({"_amount": format_int(tokens), "_ethTo": eth_to}),
        ),
        None,
    )
    .await?;
    check_tx(&r, "removeLiquidity")?;
    Ok(json!({"txHash": r["txHash"]}))
}

/// Waits until `account`'s Ether credit on the converter is at least `wei`.
pub async fn wait_deposit(
    rpc: &RpcClient,
    account: &Address,
    wei: u128,
    within: Duration,
) -> Result<()> {
    let deadline = Instant::now() + within;
    loop {
        let v = read(rpc, "depositOf", json!({"_owner": account.to_string()})).await?;
        if int(&v, "deposit")? >= wei {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("the deposit of {wei} wei for {account} did not reach the converter within {within:?}");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Seeds a devnet's pool once (marked by `dex-seeded.json`): `eth` wei deposited from anvil's
/// first dev account for the admin, then added with `icx` loop of the admin's.
pub async fn seed(
    dir: &std::path::Path,
    hub: &crate::commands::hub::HubLayout,
    icx: u128,
    eth: u128,
) -> Result<()> {
    let marker = dir.join("dex-seeded.json");
    let (Some(n), Some(e)) = (&hub.nexus, &hub.eth) else {
        return Ok(());
    };
    if marker.exists() {
        return Ok(());
    }
    let contracts = crate::commands::hub_eth::contracts(dir).context("eth/contracts.json")?;
    let reserve = contracts
        .dex_reserve
        .context("no DEX reserve was deployed")?;
    let admin = crate::keystore::load(&hub.admin_keystore, &hub.admin_password)?;
    let rpc = RpcClient::new(n.url());
    deposit_eth(
        &e.url(),
        &reserve,
        crate::commands::hub_eth::DEPLOYER_KEY,
        eth,
        &admin.address().to_string(),
    )
    .await?;
    wait_deposit(&rpc, &admin.address(), eth, Duration::from_secs(120)).await?;
    add_liquidity(&rpc, &admin, icx, eth, 0).await?;
    std::fs::write(
        &marker,
        json!({"icx": format_int(icx), "eth": format_int(eth)}).to_string(),
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ethereum_key_comes_from_the_flag_or_a_keystore_and_its_password() {
        let dir = tempfile::tempdir().unwrap();
        let key = KeyPair::generate();
        let path = dir.path().join("eth.json");
        crate::keystore::store(&path, &key, "pw").unwrap();
        let secret = format!("0x{}", hex::encode(key.secret_bytes()));
        assert_eq!(eth_secret(Some(&secret), None, None).unwrap(), secret);
        assert_eq!(
            eth_secret(None, Some(&path), Some("pw")).unwrap(),
            secret,
            "the keystore's key"
        );
        let said = |r: Result<String>| format!("{:#}", r.unwrap_err());
        assert!(said(eth_secret(None, Some(&path), None)).contains("--eth-password"));
        assert!(said(eth_secret(None, Some(&path), Some("guess"))).contains("wrong password"));
        assert!(said(eth_secret(Some(&secret), Some(&path), Some("pw"))).contains("not both"));
        assert!(said(eth_secret(None, None, None)).contains("--eth-keystore"));
    }

    #[test]
    fn the_default_minimum_is_the_quote_less_the_slippage() {
        assert_eq!(min_from_quote(10_000, 100), 9_900);
        assert_eq!(min_from_quote(u128::MAX, 0), u128::MAX);
        assert_eq!(min_from_quote(u128::MAX, 10_000), 0);
        assert_eq!(min_from_quote(7, 100), 6);
    }
}
