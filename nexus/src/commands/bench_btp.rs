//! `nexus bench-btp`: messages through one notary channel of four validators. It lays out the
//! devnet's hub in a temporary folder (four Nexus validators with notary-a and notary-b, chains
//! A and B, one portal, all separate processes), sends token transfers from A to B at a given
//! rate, and reports: messages delivered per second, latency from the source block to the
//! notary block and to the delivering block on B (p50, p99, from block timestamps of one
//! machine clock), block intervals, and notary CPU per message per validator (idle CPU
//! subtracted), beside the secp256k1 ceiling of this machine. JSON on the last line.
//!
//! `delivered_per_sec` divides by the span from the first source block to the last delivery,
//! so it includes one latency; `delivery_rate_per_sec_first_to_last_delivery` is the rate at
//! which B took messages once they flowed (the sustained figure for long runs).

use crate::commands::bench::{cpu_seconds, free_ports, percentile, recover_rate};
use crate::commands::devnet::{init_network_on, InitOptions};
use crate::commands::hub::{self, HubLayout, HubPorts};
use crate::pool::admission::now_us;
use anyhow::{bail, Context, Result};
use nexus_client::rpc::RpcClient;
use nexus_proto::btp::BtpMessage;
use nexus_proto::value::{parse_bytes, parse_u128};
use nexus_proto::{Address, Transaction, TxData};
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};

/// What to run.
#[derive(Debug, Clone)]
pub struct BtpBenchOptions {
    /// Transfers (one message each) from A to B.
    pub messages: usize,
    /// Offered messages per second (0: as fast as the client goes).
    pub rate: u64,
}

pub(crate) fn spawn(exe: &Path, args: &[&str], config: &Path, log: &Path) -> Result<Child> {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)?;
    Command::new(exe)
        .args(args)
        .arg(config)
        .current_dir(config.parent().unwrap_or(Path::new(".")))
        .stdout(log.try_clone()?)
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("spawn {}", exe.display()))
}

pub(crate) async fn wait_answers(url: &str) -> Result<()> {
    RpcClient::new(url)
        .wait_ready(Duration::from_secs(60))
        .await
        .with_context(|| format!("{url} did not answer within 60 s"))
}

async fn last_height(rpc: &RpcClient) -> Result<u64> {
    rpc.call("icx_getLastBlock", Value::Null).await?["height"]
        .as_u64()
        .context("height")
}

/// (block timestamp in us, [(A's sequence number, message)]) of the BTP messages in a block,
/// keyed by the A sequence number each one carries or answers.
async fn block_messages(rpc: &RpcClient, h: u64) -> Result<(u64, Vec<BtpMessage>)> {
    let b = rpc
        .call("icx_getBlockByHeight", json!({"height": format!("{h:#x}")}))
        .await?;
    let ts = b["time_stamp"].as_u64().context("time_stamp")?;
    let m = rpc
        .call("btp_getMessages", json!({"height": format!("{h:#x}")}))
        .await?;
    let mut out = Vec::new();
    for x in m["messages"].as_array().context("messages")? {
        let raw = parse_bytes("msg", x["msg"].as_str().unwrap_or(""), 1 << 16)?;
        out.push(BtpMessage::decode(&raw)?);
    }
    Ok((ts, out))
}

/// Block timestamps (us) of every height in `from..=to`.
async fn intervals_ms(rpc: &RpcClient, from: u64, to: u64) -> Result<f64> {
    let mut ts = Vec::new();
    for h in from..=to {
        let b = rpc
            .call("icx_getBlockByHeight", json!({"height": format!("{h:#x}")}))
            .await?;
        ts.push(b["time_stamp"].as_u64().context("time_stamp")? as f64);
    }
    let mut d: Vec<f64> = ts.windows(2).map(|w| (w[1] - w[0]) / 1000.0).collect();
    d.sort_by(f64::total_cmp);
    Ok(percentile(&d, 0.5))
}

fn round(x: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (x * f).round() / f
}

/// Runs the benchmark in `dir` (which it fills and the caller deletes).
pub async fn run(opts: BtpBenchOptions, dir: &Path) -> Result<Value> {
    let exe = std::env::current_exe()?;
    let portal_exe = exe.with_file_name("portal");
    if !portal_exe.exists() {
        bail!(
            "{} is missing: cargo build --release -p nexus-portal",
            portal_exe.display()
        );
    }
    let p = free_ports(11)?;
    let ports: Vec<(u16, u16)> = (0..4).map(|i| (p[2 * i], p[2 * i + 1])).collect();
    std::fs::create_dir_all(dir)?;
    let net = init_network_on(dir, &InitOptions::default(), &ports)?;
    let layout: HubLayout = hub::init_hub(
        dir,
        &net,
        HubPorts {
            chains: [p[8], p[9]],
            portal: p[10],
            eth: None,
        },
    )?;
    let mut children = Vec::new();
    let mut validator_pids = Vec::new();
    for node in &net.nodes {
        let c = spawn(
            &exe,
            &["node", "--config"],
            &node.config,
            &node.config.with_file_name("node.log"),
        )?;
        validator_pids.push(c.id().context("pid")?.to_string());
        children.push(c);
    }
    for c in &layout.chains {
        children.push(spawn(
            &exe,
            &["node", "--config"],
            &c.config,
            &c.config.with_file_name("node.log"),
        )?);
    }
    for c in &layout.chains {
        wait_answers(&c.url()).await?;
        wait_answers(&layout.notary_url(c)).await?;
    }
    hub::connect(dir, &layout).await?;
    children.push(spawn(
        &portal_exe,
        &["--config"],
        &layout.portal_config,
        &layout.portal_config.with_file_name("portal.log"),
    )?);
    let a = &layout.chains[0];
    let b = &layout.chains[1];
    let rpc_a = RpcClient::new(a.url());
    let rpc_b = RpcClient::new(b.url());
    let rpc_n = RpcClient::new(layout.notary_url(a));
    let god = crate::keystore::load(&net.funded_keystore, &net.funded_password)?;

    // Idle CPU of the validators, to subtract.
    let cpu_all =
        |pids: &[String]| -> f64 { pids.iter().map(|p| cpu_seconds(p).unwrap_or(0.0)).sum() };
    let idle_start = (Instant::now(), cpu_all(&validator_pids));
    tokio::time::sleep(Duration::from_secs(3)).await;
    let idle_rate =
        (cpu_all(&validator_pids) - idle_start.1) / idle_start.0.elapsed().as_secs_f64();

    let (start_a, start_n, start_b) = (
        last_height(&rpc_a).await?,
        last_height(&rpc_n).await?,
        last_height(&rpc_b).await?,
    );
    let bob = Address::eoa([0xb0; 20]);
    let txs: Vec<Value> = (0..opts.messages)
        .map(|i| {
            Transaction {
                from: god.address(),
                to: nexus_btp::BMC_ADDRESS,
                value: 1 + i as u128,
                step_limit: 100_000_000,
                timestamp: now_us(),
                nid: a.nid,
                nonce: Some(i as u128),
                data: TxData::Call {
                    method: "transfer".into(),
                    params: Map::from_iter([(
                        "_to".to_string(),
                        json!(format!("{}/{bob}", b.network)),
                    )]),
                },
            }
            .sign(&god)
            .map(|st| Value::Object(st.raw))
        })
        .collect::<std::result::Result<_, _>>()?;
    let cpu0 = cpu_all(&validator_pids);
    let t0 = Instant::now();
    let rpc = Arc::new(RpcClient::new(a.url()));
    for (i, tx) in txs.into_iter().enumerate() {
        if opts.rate > 0 {
            let due = Duration::from_secs_f64(i as f64 / opts.rate as f64);
            if let Some(wait) = due.checked_sub(t0.elapsed()) {
                tokio::time::sleep(wait).await;
            }
        }
        rpc.call("icx_sendTransaction", tx)
            .await
            .with_context(|| format!("transfer {i}"))?;
    }
    let sent_s = t0.elapsed().as_secs_f64();
    // Wait until B has every message.
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let st = rpc_b
            .call(
                "icx_call",
                json!({"to": nexus_btp::BMC_ADDRESS.to_string(), "dataType": "call",
                       "data": {"method": "getStatus", "params": {"_link": a.network}}}),
            )
            .await?;
        let rx = parse_u128("rx", st["rxSeq"].as_str().unwrap_or(""))?;
        if rx >= opts.messages as u128 {
            break;
        }
        if Instant::now() > deadline {
            bail!("B received {rx} of {} messages in 600 s", opts.messages);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let wall = t0.elapsed().as_secs_f64();
    let cpu = cpu_all(&validator_pids) - cpu0 - idle_rate * wall;
    let (end_a, end_n, end_b) = (
        last_height(&rpc_a).await?,
        last_height(&rpc_n).await?,
        last_height(&rpc_b).await?,
    );

    // Source, notary and delivery times of each message, from block timestamps.
    let mut source: HashMap<i128, u64> = HashMap::new();
    for h in start_a + 1..=end_a {
        let (ts, ms) = block_messages(&rpc_a, h).await?;
        for m in ms.iter().filter(|m| m.sn > 0) {
            source.insert(m.nsn, ts);
        }
    }
    let mut notarized: HashMap<i128, u64> = HashMap::new();
    for h in start_n + 1..=end_n {
        let (ts, ms) = block_messages(&rpc_n, h).await?;
        for m in ms.iter().filter(|m| m.sn > 0) {
            notarized.insert(m.nsn, ts);
        }
    }
    // B's reply to each message answers its nsn and is emitted in the delivering block.
    let mut delivered: HashMap<i128, u64> = HashMap::new();
    for h in start_b + 1..=end_b {
        let (ts, ms) = block_messages(&rpc_b, h).await?;
        for m in ms.iter().filter(|m| m.sn < 0) {
            delivered.insert(-m.nsn, ts);
        }
    }
    let lat = |to: &HashMap<i128, u64>| -> Vec<f64> {
        let mut v: Vec<f64> = source
            .iter()
            .filter_map(|(k, s)| to.get(k).map(|t| (*t as f64 - *s as f64) / 1000.0))
            .collect();
        v.sort_by(f64::total_cmp);
        v
    };
    let to_notary = lat(&notarized);
    let to_dest = lat(&delivered);
    let first = source.values().min().copied().unwrap_or(0) as f64;
    let last = delivered.values().max().copied().unwrap_or(0) as f64;
    let first_delivery = delivered.values().min().copied().unwrap_or(0) as f64;
    let delivery_window_s = (last - first_delivery) / 1e6;
    let span_s = (last - first) / 1e6;
    let n = opts.messages as f64;
    let recover = recover_rate();
    let rate = if span_s > 0.0 { n / span_s } else { 0.0 };
    Ok(json!({
        "bench": "btp",
        "messages": opts.messages,
        "offered_per_sec": opts.rate,
        "send_seconds": round(sent_s, 2),
        "delivered_per_sec": round(rate, 1),
        "span_seconds_first_source_block_to_last_delivery": round(span_s, 2),
        "delivery_rate_per_sec_first_to_last_delivery": if delivery_window_s > 0.0 { round((n - 1.0) / delivery_window_s, 1) } else { 0.0 },
        "source_to_notarized_ms_p50": round(percentile(&to_notary, 0.5), 1),
        "source_to_notarized_ms_p99": round(percentile(&to_notary, 0.99), 1),
        "source_to_delivered_ms_p50": round(percentile(&to_dest, 0.5), 1),
        "source_to_delivered_ms_p99": round(percentile(&to_dest, 0.99), 1),
        "measured_messages": to_dest.len(),
        "block_interval_ms_p50": {
            "source": round(intervals_ms(&rpc_a, start_a + 1, end_a).await?, 1),
            "notary": round(intervals_ms(&rpc_n, start_n + 1, end_n).await?, 1),
            "destination": round(intervals_ms(&rpc_b, start_b + 1, end_b).await?, 1),
        },
        "notary_cpu_us_per_message_per_validator": round(cpu.max(0.0) * 1e6 / n / 4.0, 0),
        "validators_idle_cpu_percent": round(idle_rate * 100.0, 1),
        "secp256k1_recover_per_sec_one_core": recover.round(),
        "delivered_per_sec_over_recover_per_sec": round(rate / recover, 4),
    }))
}
