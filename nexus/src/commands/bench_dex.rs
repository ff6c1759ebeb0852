//! `nexus bench-dex`: the DEX's figures on the devnet's hub with Ethereum (four validators,
//! chains A and B, anvil, one portal; all separate processes), JSON on the last line.
//! 1. Swaps per second through the converter SCORE: `--swaps` signed ICX -> ETH conversions from
//!    16 traders, sent as fast as the validators take them, timed from the first send until the
//!    converter has counted them all; three bursts, each figure and the median.
//! 2. End to end: ETH -> ICX from the reserve's `swap` on Ethereum until the ICX is at the hx
//!    account, and ICX -> ETH from `convert` until the Ether is at the 0x account; `--trips` of
//!    each, p50 and max.
//! 3. Cost: steps of a `convert`, gas of the reserve's `swap`, gas of the relay transaction
//!    that paid a conversion out on Ethereum.
//!
//! Beside them, the secp256k1 ceiling of the same machine.

use crate::commands::bench::{percentile, recover_rate};
use crate::commands::bench_eth::{start_eth_hub, EthHub};
use crate::commands::dex;
use crate::commands::hub_eth;
use anyhow::{Context, Result};
use nexus_client::rpc::RpcClient;
use nexus_dex::score::CONVERTER_ADDRESS;
use nexus_proto::value::{format_int, parse_u128};
use nexus_proto::{KeyPair, Transaction, TxData};
use serde_json::{json, Map, Value};
use std::path::Path;
use std::time::{Duration, Instant};

const ICX: u128 = 1_000_000_000_000_000_000;
use crate::commands::hub_eth::USER_KEY;
const TRADERS: usize = 16;

async fn until(
    what: &str,
    within: Duration,
    mut f: impl AsyncFnMut() -> Result<bool>,
) -> Result<()> {
    let deadline = Instant::now() + within;
    while !f().await? {
        anyhow::ensure!(Instant::now() < deadline, "{what}: not within {within:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

async fn trades(rpc: &RpcClient) -> Result<u128> {
    let r = dex::reserves(rpc).await?;
    Ok(parse_u128("trades", r["trades"].as_str().unwrap_or(""))?)
}

async fn eth_balance(rpc: &RpcClient, who: &str) -> Result<u128> {
    let v = rpc.call("eth_getBalance", json!([who, "latest"])).await?;
    Ok(parse_u128("balance", v.as_str().unwrap_or(""))?)
}

fn convert_tx(key: &KeyPair, nid: u64, to: &str, i: u64) -> Result<Value> {
    let mut params = Map::new();
    params.insert("_to".into(), json!(to));
    params.insert("_minReturn".into(), json!("0x0"));
    let tx = Transaction {
        from: key.address(),
        to: CONVERTER_ADDRESS,
        value: ICX / 10,
        step_limit: 3_000_000,
        timestamp: crate::pool::admission::now_us() + i,
        nid,
        nonce: None,
        data: TxData::Call {
            method: "convert".into(),
            params,
        },
    };
    Ok(Value::Object(tx.sign(key)?.raw))
}

/// One burst: `n` conversions from the traders; returns conversions per second.
async fn burst(rpc: &RpcClient, traders: &[KeyPair], nid: u64, n: usize) -> Result<f64> {
    let to = format!("0x{}", hex::encode([0x77; 20]));
    let mut signed: Vec<Vec<Value>> = vec![Vec::new(); traders.len()];
    for i in 0..n {
        let t = i % traders.len();
        signed[t].push(convert_tx(&traders[t], nid, &to, i as u64)?);
    }
    let base = trades(rpc).await?;
    let start = Instant::now();
    let mut tasks = Vec::new();
    for txs in signed {
        let rpc = RpcClient::new(rpc.url().to_string());
        tasks.push(tokio::spawn(async move {
            for tx in txs {
                rpc.call("icx_sendTransaction", tx).await?;
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    until(
        "every conversion counted",
        Duration::from_secs(300),
        async || Ok(trades(rpc).await? >= base + n as u128),
    )
    .await?;
    Ok(n as f64 / start.elapsed().as_secs_f64())
}

/// Runs the benchmark in `dir` (which it fills and the caller deletes).
pub async fn run(swaps: usize, trips: usize, dir: &Path) -> Result<Value> {
    let recover = recover_rate();
    let EthHub {
        net,
        layout,
        children,
    } = start_eth_hub(dir).await?;
    let eth = layout.eth.clone().context("eth layout")?;
    let nexus = layout.nexus.clone().context("nexus endpoint")?;
    let rpc = RpcClient::new(nexus.url());
    let eth_rpc = RpcClient::new(eth.url());
    dex::seed(dir, &layout, 100_000 * ICX, 1_000 * ICX).await?;
    let contracts = hub_eth::contracts(dir).context("contracts")?;
    let reserve = contracts.dex_reserve.context("reserve")?;
    let god = crate::keystore::load(&net.funded_keystore, &net.funded_password)?;

    // Traders with ICX.
    let traders: Vec<KeyPair> = (0..TRADERS).map(|_| KeyPair::generate()).collect();
    for t in &traders {
        let r = crate::commands::wallet::send(
            &rpc,
            &god,
            t.address(),
            100_000 * ICX,
            TxData::None,
            Some(100_000),
        )
        .await?;
        anyhow::ensure!(r["status"] == "0x1", "funding a trader: {r}");
    }
    let mut rates = Vec::new();
    for i in 0..3 {
        rates.push(burst(&rpc, &traders, nexus.nid, swaps).await?);
        eprintln!("burst {}: {:.1} swaps/s", i + 1, rates[i]);
    }
    let mut sorted = rates.clone();
    sorted.sort_by(f64::total_cmp);
    let median = sorted[1];

    // The bursts' payouts travel to Ethereum and their answers back; the end-to-end times are
    // measured once that backlog has drained.
    let drain = Instant::now();
    until(
        "every payout settled",
        Duration::from_secs(900),
        async || Ok(dex::reserves(&rpc).await?["ethInFlight"] == "0x0"),
    )
    .await?;
    let drain_s = drain.elapsed().as_secs_f64().round();
    eprintln!(
        "{} payouts settled on Ethereum and answered {drain_s} s after the last burst",
        3 * swaps
    );

    // Steps of one conversion, with its receipt.
    let one = crate::commands::dex::swap_icx(
        &rpc,
        &traders[0],
        ICX,
        &format!("0x{}", hex::encode([0x78; 20])),
        0,
    )
    .await?;
    let steps = parse_u128("steps", one["stepUsed"].as_str().unwrap_or(""))?;

    // End to end, each direction.
    let hx = KeyPair::generate().address().to_string();
    let carol = format!("0x{}", hex::encode([0xca; 20]));
    let (mut to_icx, mut to_eth, mut swap_gas) = (Vec::new(), Vec::new(), 0u128);
    for _ in 0..trips {
        let before = crate::commands::wallet::balance(&rpc, &hx).await?;
        let t = Instant::now();
        let r = dex::swap_eth(&eth.url(), &reserve, USER_KEY, ICX / 10, &hx, 0).await?;
        swap_gas = u128::from(r["gasUsed"].as_u64().unwrap_or(0));
        until(
            "ICX at the hx account",
            Duration::from_secs(120),
            async || Ok(crate::commands::wallet::balance(&rpc, &hx).await? > before),
        )
        .await?;
        to_icx.push(t.elapsed().as_secs_f64() * 1000.0);

        let before = eth_balance(&eth_rpc, &carol).await?;
        let t = Instant::now();
        dex::swap_icx(&rpc, &traders[1], 10 * ICX, &carol, 0).await?;
        until(
            "Ether at the 0x account",
            Duration::from_secs(120),
            async || Ok(eth_balance(&eth_rpc, &carol).await? > before),
        )
        .await?;
        to_eth.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    // Gas of the relay transaction of the last payout (it carried that one message).
    let paid_out = alloy::primitives::keccak256("PaidOut(address,uint256)");
    let logs = eth_rpc
        .call(
            "eth_getLogs",
            json!([{"address": reserve, "fromBlock": "0x0", "toBlock": "latest",
                    "topics": [format!("{paid_out:#x}")]}]),
        )
        .await?;
    let last_tx = logs
        .as_array()
        .and_then(|l| l.last())
        .and_then(|l| l["transactionHash"].as_str())
        .context("no PaidOut log")?
        .to_string();
    let receipt = eth_rpc
        .call("eth_getTransactionReceipt", json!([last_tx]))
        .await?;
    let payout_gas = parse_u128("gasUsed", receipt["gasUsed"].as_str().unwrap_or(""))?;
    let payouts_in_tx = logs
        .as_array()
        .map(|l| {
            l.iter()
                .filter(|x| x["transactionHash"] == last_tx.as_str())
                .count()
        })
        .unwrap_or(1);
    drop(children);
    let stat = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        (
            percentile(&v, 0.5).round(),
            v.last().copied().unwrap_or(0.0).round(),
        )
    };
    let (i50, imax) = stat(to_icx);
    let (e50, emax) = stat(to_eth);
    let round = |x: f64| (x * 10.0).round() / 10.0;
    Ok(json!({
        "bench": "dex",
        "validators": 4,
        "swaps_per_burst": swaps,
        "swaps_per_sec_runs": rates.iter().map(|r| round(*r)).collect::<Vec<_>>(),
        "swaps_per_sec": round(median),
        "secp256k1_recover_per_sec_one_core": recover.round(),
        "swaps_to_secp256k1_ratio": (median / recover * 1000.0).round() / 1000.0,
        "trips": trips,
        "eth_to_icx_ms_p50": i50,
        "eth_to_icx_ms_max": imax,
        "icx_to_eth_ms_p50": e50,
        "icx_to_eth_ms_max": emax,
        "steps_per_convert": format_int(steps),
        "steps_per_convert_dec": steps as u64,
        "gas_reserve_swap": swap_gas as u64,
        "gas_payout_relay_tx": payout_gas as u64,
        "payouts_in_that_tx": payouts_in_tx,
        "eth_block_time_s": eth.block_time_s,
        "confirmations": eth.confirmations,
        "payout_backlog_drain_s": drain_s,
    }))
}
