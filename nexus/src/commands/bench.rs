//! `nexus bench`: throughput and latency of one node, or of a network of validators, under a
//! stream of ICX transfers.
//!
//! It starts a node as a separate process in a temporary folder, funds `clients` sender
//! accounts, signs `txs` transfers in advance, then sends them from `clients` concurrent HTTP
//! connections (one `icx_sendTransaction` per request) while a watcher polls for new blocks. It
//! prints accepted and committed transactions per second, send-to-commit latency percentiles,
//! the node's CPU time per transaction, the time and CPU of each stage on the way (from the
//! nodes' `nexus_stage_*` metrics: RPC and gossip admission, block build, check and commit),
//! and the secp256k1 recovery ceiling measured on this
//! machine, with a JSON summary on the last line.

use crate::client::RpcClient;
use crate::commands::devnet::{init, InitOptions, ICX};
use crate::keystore;
use crate::pool::admission::now_us;
use anyhow::{bail, Context, Result};
use nexus_proto::hash::sha3_256;
use nexus_proto::{Address, KeyPair, Transaction, TxData};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Benchmark settings.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// Transfers to send.
    pub txs: usize,
    /// Concurrent clients (and sender accounts).
    pub clients: usize,
    /// Most transactions per block on the node.
    pub block_max_txs: usize,
    /// Validators (1: a single node; more: LFT over libp2p, each its own process).
    pub validators: usize,
    /// Offered load in transactions per second (0: as fast as the clients go).
    pub rate: u64,
    /// The nodes' `block.empty_block_interval_ms` (None: the default).
    pub empty_block_interval_ms: Option<u64>,
    /// Accounts the state holds before the run (generated in genesis); when set, every
    /// transfer goes to a new account, and a single node is also restarted and measured.
    pub accounts: Option<u64>,
    /// The nodes' `[state] mmap_reads`.
    pub mmap_reads: bool,
}

/// Starts a node process with `cfg_path`, logging beside it.
fn spawn_node(cfg_path: &Path) -> Result<tokio::process::Child> {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(cfg_path.with_file_name("node.log"))?;
    tokio::process::Command::new(std::env::current_exe()?)
        .args(["node", "--config"])
        .arg(cfg_path)
        .stdout(log.try_clone()?)
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .context("starting a node")
}

/// Resident memory of a process in MiB.
fn rss_mib(pid: u32) -> Option<f64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: f64 = s
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(kb / 1024.0)
}

/// Bytes of all files under `dir`.
fn disk_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => disk_bytes(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

pub(crate) fn cpu_seconds(pid: &str) -> Option<f64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

/// Recoveries per second on one core (the dominant cost of admission).
pub fn recover_rate() -> f64 {
    let k = KeyPair::generate();
    let sigs: Vec<_> = (0..256u32)
        .map(|i| {
            let d = sha3_256(&[&i.to_be_bytes()]);
            (d, k.sign(&d))
        })
        .collect();
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < Duration::from_millis(500) {
        for (d, s) in &sigs {
            let _ = s.recover(d);
            n += 1;
        }
    }
    n as f64 / start.elapsed().as_secs_f64()
}

pub(crate) fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Seconds of the run per window of [`p99_by_window`].
const LATENCY_WINDOW_S: f64 = 5.0;

/// The p99 latency of the transactions sent in each `window`-second slice of the run, in order
/// (`None` for a slice with none), from (seconds since the start when sent, latency in ms). A
/// tail that grows with the run's length shows as a rising list, one that comes in bursts as
/// peaks. At most 1,000 slices.
fn p99_by_window(samples: &[(f64, f64)], window: f64) -> Vec<Option<f64>> {
    let mut slices: Vec<Vec<f64>> = Vec::new();
    for &(at, ms) in samples {
        let i = (at.max(0.0) / window) as usize;
        if i >= 1_000 {
            continue;
        }
        if slices.len() <= i {
            slices.resize(i + 1, Vec::new());
        }
        slices[i].push(ms);
    }
    slices
        .into_iter()
        .map(|mut s| {
            s.sort_by(|a, b| a.total_cmp(b));
            (!s.is_empty()).then(|| (percentile(&s, 0.99) * 10.0).round() / 10.0)
        })
        .collect()
}

/// `n` distinct ports the OS considers free now (all bound at once, so none repeats).
pub(crate) fn free_ports(n: usize) -> std::io::Result<Vec<u16>> {
    let listeners: Vec<std::net::TcpListener> = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0"))
        .collect::<std::io::Result<_>>()?;
    listeners
        .iter()
        .map(|l| l.local_addr().map(|a| a.port()))
        .collect()
}

fn transfer(
    from: &KeyPair,
    to: Address,
    value: u128,
    nonce: u128,
    nid: u64,
) -> Result<nexus_proto::SignedTransaction> {
    let tx = Transaction {
        from: from.address(),
        to,
        value,
        step_limit: 100_000,
        timestamp: now_us(),
        nid,
        nonce: Some(nonce),
        data: TxData::None,
    };
    Ok(tx.sign(from)?)
}

/// Starts `opts.validators` node processes in `dir`; returns them with their RPC URLs, the
/// funded keystore and its password.
async fn start_nodes(
    opts: &BenchOptions,
    dir: &Path,
) -> Result<(
    Vec<tokio::process::Child>,
    Vec<String>,
    std::path::PathBuf,
    String,
    Vec<std::path::PathBuf>,
)> {
    let free = free_ports(2 * opts.validators)?;
    let (configs, keystore, password) = if opts.validators == 1 && dir.join("config.toml").exists()
    {
        // A folder kept from an earlier run (`--state-dir`): its node, keys and state.
        if opts.accounts.is_none() {
            eprintln!(
                "reusing {} without --accounts: transfers go to 1,000 fixed recipients; pass --accounts (any number) for a new account per transfer, as in the state-at-scale figures",
                dir.display()
            );
        }
        let keys = dir.join("keystore");
        let password = std::fs::read_to_string(keys.join("god.password"))
            .with_context(|| format!("reading the funded key's password in {}", keys.display()))?;
        (
            vec![dir.join("config.toml")],
            keys.join("god.json"),
            password.trim().to_string(),
        )
    } else if opts.validators == 1 {
        let listen = std::net::SocketAddr::from(([127, 0, 0, 1], free[0]));
        let out = init(
            dir,
            &InitOptions {
                listen,
                synthetic_accounts: opts.accounts.map(|n| (n, 1)),
                ..InitOptions::default()
            },
        )?;
        (vec![out.config], out.funded_keystore, out.funded_password)
    } else {
        let ports: Vec<(u16, u16)> = (0..opts.validators)
            .map(|i| (free[2 * i], free[2 * i + 1]))
            .collect();
        let init = InitOptions {
            synthetic_accounts: opts.accounts.map(|n| (n, 1)),
            ..InitOptions::default()
        };
        let out = crate::commands::devnet::init_network_on(dir, &init, &ports)?;
        (
            out.nodes.into_iter().map(|n| n.config).collect(),
            out.funded_keystore,
            out.funded_password,
        )
    };
    let mut children = Vec::new();
    let mut urls = Vec::new();
    for cfg_path in &configs {
        let mut text = std::fs::read_to_string(cfg_path)?.replace(
            "max_txs = 5000",
            &format!("max_txs = {}", opts.block_max_txs),
        );
        if let Some(ms) = opts.empty_block_interval_ms {
            text = text.replace(
                "empty_block_interval_ms = 1000",
                &format!("empty_block_interval_ms = {ms}"),
            );
        }
        // Set on every run: a reused folder takes this run's choice.
        let mmap = format!("mmap_reads = {}", opts.mmap_reads);
        text = if text.contains("mmap_reads = ") {
            text.replace("mmap_reads = true", &mmap)
                .replace("mmap_reads = false", &mmap)
        } else {
            text.replace("[state]\n", &format!("[state]\n{mmap}\n"))
        };
        std::fs::write(cfg_path, text)?;
        let cfg = crate::config::NodeConfig::load(cfg_path)?;
        anyhow::ensure!(
            cfg.state.mmap_reads == opts.mmap_reads,
            "could not set mmap_reads in {}",
            cfg_path.display()
        );
        children.push(spawn_node(cfg_path)?);
        urls.push(format!("http://{}/api/v3/public", cfg.rpc.listen));
    }
    // Genesis inserts generated accounts at 15,000-25,000 per second on a 2-core machine
    // (10,000,000 took 9.5 to 10 minutes there); allow 5,000 per second.
    let wait = 30 + opts.accounts.unwrap_or(0) / 5_000;
    for u in &urls {
        RpcClient::new(u.clone())
            .wait_ready(Duration::from_secs(wait))
            .await
            .with_context(|| format!("{u} did not answer within {wait} s"))?;
    }
    Ok((children, urls, keystore, password, configs))
}

/// Per stage (summed over the validators): wall seconds, thread CPU seconds, items.
type Stages = std::collections::BTreeMap<String, [f64; 3]>;

/// The text of a node's `/metrics` (the node of RPC URL `u`).
async fn metrics_text(u: &str) -> Option<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let host = u
        .strip_prefix("http://")
        .and_then(|r| r.split('/').next())?;
    let mut s = tokio::net::TcpStream::connect(host).await.ok()?;
    let req = format!("GET /metrics HTTP/1.0\r\nHost: {host}\r\n\r\n");
    let mut body = String::new();
    s.write_all(req.as_bytes()).await.ok()?;
    s.read_to_string(&mut body).await.ok()?;
    Some(body)
}

/// Cumulative counts of the public channel's block finality histogram on each node, by bucket
/// bound (the last is +Inf).
async fn scrape_finality(urls: &[String]) -> Vec<Vec<f64>> {
    let mut out = Vec::new();
    for u in urls {
        let body = metrics_text(u).await.unwrap_or_default();
        let mut counts = vec![0.0; crate::metrics::FINALITY_BUCKETS.len() + 1];
        for line in body.lines() {
            if !line.starts_with("nexus_block_finality_seconds_bucket{")
                || !line.contains("channel=\"public\"")
            {
                continue;
            }
            let le = line.split("le=\"").nth(1).and_then(|r| r.split('"').next());
            let v: f64 = line
                .rsplit(' ')
                .next()
                .and_then(|x| x.parse().ok())
                .unwrap_or(0.0);
            let i = match le {
                Some("+Inf") => Some(crate::metrics::FINALITY_BUCKETS.len()),
                Some(b) => b.parse::<f64>().ok().and_then(|b| {
                    crate::metrics::FINALITY_BUCKETS
                        .iter()
                        .position(|x| (x - b).abs() < 1e-9)
                }),
                None => None,
            };
            if let Some(i) = i {
                counts[i] = v;
            }
        }
        out.push(counts);
    }
    out
}

/// The public channel's round timeouts summed over the nodes.
async fn scrape_timeouts(urls: &[String]) -> f64 {
    let mut total = 0.0;
    for u in urls {
        let body = metrics_text(u).await.unwrap_or_default();
        total += body
            .lines()
            .filter(|l| {
                l.starts_with("nexus_round_timeouts_total{") && l.contains("channel=\"public\"")
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>();
    }
    total
}

/// Block finality p50 and p99 in ms per node between two scrapes (linear within a bucket).
fn finality_summary(before: &[Vec<f64>], after: &[Vec<f64>]) -> Value {
    let bounds = crate::metrics::FINALITY_BUCKETS;
    let per_node: Vec<Value> = after
        .iter()
        .enumerate()
        .map(|(n, a)| {
            let cum: Vec<f64> = a
                .iter()
                .enumerate()
                .map(|(i, c)| c - before.get(n).and_then(|b| b.get(i)).copied().unwrap_or(0.0))
                .collect();
            let total = cum.last().copied().unwrap_or(0.0);
            let q = |p: f64| {
                if total <= 0.0 {
                    return Value::Null;
                }
                let want = p * total;
                let i = cum.iter().position(|c| *c >= want).unwrap_or(cum.len() - 1);
                let hi = bounds
                    .get(i)
                    .copied()
                    .unwrap_or(bounds[bounds.len() - 1] * 2.0);
                let lo = if i == 0 { 0.0 } else { bounds[i - 1] };
                let below = if i == 0 { 0.0 } else { cum[i - 1] };
                let frac = if cum[i] > below {
                    (want - below) / (cum[i] - below)
                } else {
                    1.0
                };
                json!(((lo + (hi - lo) * frac) * 1e4).round() / 10.0)
            };
            json!({"blocks": total, "p50_ms": q(0.5), "p99_ms": q(0.99)})
        })
        .collect();
    Value::Array(per_node)
}

/// Reads the `nexus_stage_*` counters of the public channel from each node's `/metrics`.
async fn scrape_stages(urls: &[String]) -> Stages {
    let mut out = Stages::new();
    for u in urls {
        let Some(body) = metrics_text(u).await else {
            continue;
        };
        for line in body.lines() {
            let slot = if line.starts_with("nexus_stage_wall_seconds_total{") {
                0
            } else if line.starts_with("nexus_stage_cpu_seconds_total{") {
                1
            } else if line.starts_with("nexus_stage_items_total{") {
                2
            } else {
                continue;
            };
            if !line.contains("channel=\"public\"") {
                continue;
            }
            let stage = line
                .split("stage=\"")
                .nth(1)
                .and_then(|r| r.split('"').next())
                .unwrap_or("?");
            let v: f64 = line
                .rsplit(' ')
                .next()
                .and_then(|x| x.parse().ok())
                .unwrap_or(0.0);
            out.entry(stage.to_string()).or_insert([0.0; 3])[slot] += v;
        }
    }
    out
}

/// Per stage: CPU per committed transaction per validator, wall time per validator, items.
fn stage_summary(before: &Stages, after: &Stages, committed: f64, validators: f64) -> Value {
    let mut m = serde_json::Map::new();
    for (stage, a) in after {
        let b = before.get(stage).copied().unwrap_or([0.0; 3]);
        let (wall, cpu, items) = (a[0] - b[0], a[1] - b[1], a[2] - b[2]);
        m.insert(
            stage.clone(),
            json!({
                "cpu_us_per_tx_per_validator": if committed > 0.0 { (cpu * 1e6 / committed / validators).round() } else { 0.0 },
                "wall_ms_per_validator": (wall * 1e3 / validators).round(),
                "items_per_validator": (items / validators).round(),
            }),
        );
    }
    Value::Object(m)
}

/// Empty blocks: starts the nodes, lets them run `seconds` with no transactions, and reports
/// blocks per second and block intervals on the first node, and CPU per block per validator.
pub async fn run_empty(opts: BenchOptions, dir: &Path, seconds: u64) -> Result<Value> {
    let (mut children, urls, _, _, _) = start_nodes(&opts, dir).await?;
    let pids: Vec<String> = children
        .iter()
        .filter_map(|c| c.id().map(|p| p.to_string()))
        .collect();
    let rpc = RpcClient::new(urls[0].clone());
    let height = |v: Value| v["height"].as_u64().unwrap_or(0);
    // Let the validators connect and settle: until blocks come at least every 100 ms (a first
    // round whose proposal went out before its peers were connected ends by its timeout).
    let settle = Instant::now();
    loop {
        let a = height(rpc.call("icx_getLastBlock", Value::Null).await?);
        tokio::time::sleep(Duration::from_millis(500)).await;
        let b = height(rpc.call("icx_getLastBlock", Value::Null).await?);
        if b >= a + 5 || settle.elapsed() > Duration::from_secs(20) {
            break;
        }
    }
    let h0 = height(rpc.call("icx_getLastBlock", Value::Null).await?);
    let fin0 = scrape_finality(&urls).await;
    let timeouts0 = scrape_timeouts(&urls).await;
    let cpu0: f64 = pids.iter().map(|p| cpu_seconds(p).unwrap_or(0.0)).sum();
    let t0 = Instant::now();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let h1 = height(rpc.call("icx_getLastBlock", Value::Null).await?);
    let fin1 = scrape_finality(&urls).await;
    let timeouts = scrape_timeouts(&urls).await - timeouts0;
    let wall = t0.elapsed().as_secs_f64();
    let cpu: f64 = pids
        .iter()
        .map(|p| cpu_seconds(p).unwrap_or(0.0))
        .sum::<f64>()
        - cpu0;
    let mut ts = Vec::new();
    for h in h0 + 1..=h1 {
        let b = rpc
            .call("icx_getBlockByHeight", json!({"height": format!("{h:#x}")}))
            .await?;
        ts.push(b["time_stamp"].as_u64().unwrap_or(0) as f64);
    }
    let mut gaps: Vec<f64> = ts.windows(2).map(|w| (w[1] - w[0]) / 1000.0).collect();
    gaps.sort_by(f64::total_cmp);
    for c in &mut children {
        let _ = c.kill().await;
    }
    let blocks = h1.saturating_sub(h0);
    let recover = recover_rate();
    Ok(json!({
        "bench": "empty blocks",
        "validators": opts.validators,
        "empty_block_interval_ms": opts.empty_block_interval_ms,
        "seconds": (wall * 100.0).round() / 100.0,
        "blocks": blocks,
        "blocks_per_sec": ((blocks as f64 / wall) * 10.0).round() / 10.0,
        "block_interval_ms_p50": (percentile(&gaps, 0.5) * 100.0).round() / 100.0,
        "block_interval_ms_p99": (percentile(&gaps, 0.99) * 100.0).round() / 100.0,
        "block_finality_per_validator": finality_summary(&fin0, &fin1),
        "round_timeouts": timeouts,
        "node_cpu_ms_per_block_per_validator": if blocks > 0 { (cpu * 1e3 / blocks as f64 / opts.validators as f64 * 100.0).round() / 100.0 } else { 0.0 },
        "secp256k1_recover_per_sec_one_core": recover.round(),
    }))
}

/// When each height was first seen committed on the node's block monitor: the `Instant` and
/// the wall clock in µs.
type Seen = Arc<std::sync::Mutex<HashMap<u64, (Instant, u64)>>>;

/// Subscribes to the block monitor of the node at RPC URL `url` (`ws://.../block`) from
/// `from`, recording when each block's notification arrives. The node pushes it as the block
/// commits, so this is when a transaction became final, whatever the block fetches that map
/// transactions to blocks cost (at hundreds of blocks per second they fell behind by up to
/// 130 ms, which the latency figures used to include).
async fn watch_commits(url: &str, from: u64) -> Result<(Seen, tokio::task::JoinHandle<()>)> {
    use futures::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let ws = format!("{}/block", url.replacen("http://", "ws://", 1));
    let (mut stream, _) = tokio_tungstenite::connect_async(ws.as_str())
        .await
        .with_context(|| format!("connecting to the block monitor {ws}"))?;
    let request = json!({ "height": format!("{from:#x}") }).to_string();
    stream.send(Message::Text(request)).await?;
    let answer = match stream.next().await {
        Some(Ok(Message::Text(t))) => serde_json::from_str::<Value>(t.as_ref())?,
        other => bail!("the block monitor {ws} answered {other:?}"),
    };
    anyhow::ensure!(
        answer["code"] == 0,
        "the block monitor {ws} refused: {answer}"
    );
    let seen = Seen::default();
    let record = seen.clone();
    let task = tokio::spawn(async move {
        while let Some(Ok(m)) = stream.next().await {
            let Message::Text(t) = m else { continue };
            let (at, wall) = (Instant::now(), now_us());
            let Ok(v) = serde_json::from_str::<Value>(t.as_ref()) else {
                continue;
            };
            let height = v["height"]
                .as_str()
                .and_then(|h| nexus_proto::value::parse_u64("height", h).ok());
            if let (Some(h), Ok(mut map)) = (height, record.lock()) {
                map.entry(h).or_insert((at, wall));
            }
        }
    });
    Ok((seen, task))
}

/// Writes a single node's folder in `dir` with the state `opts` asks for (genesis and its
/// generated accounts), then stops the node: the folder that `--repeat` copies for each run.
pub async fn generate(opts: &BenchOptions, dir: &Path) -> Result<()> {
    anyhow::ensure!(
        opts.validators == 1,
        "a kept state is a single node's folder: use it with --validators 1"
    );
    let (children, ..) = start_nodes(opts, dir).await?;
    for mut c in children {
        let _ = c.kill().await;
        let _ = c.wait().await;
    }
    Ok(())
}

/// Runs the benchmark and returns the summary.
pub async fn run(opts: BenchOptions, dir: &Path) -> Result<Value> {
    let started = Instant::now();
    let (mut children, urls, keystore_path, password, configs) = start_nodes(&opts, dir).await?;
    let start_secs = started.elapsed().as_secs_f64();
    let rss_start = children
        .first()
        .and_then(|c| c.id())
        .and_then(rss_mib)
        .unwrap_or(0.0);
    // A node that grew a large state in genesis holds the memory of building it; run the
    // transfers on a restarted node, as an operator's node that has the state already would.
    let mut first_restart = None;
    if let (Some(_), 1) = (opts.accounts, opts.validators) {
        let _ = children[0].kill().await;
        let t = Instant::now();
        children[0] = spawn_node(&configs[0])?;
        RpcClient::new(urls[0].clone())
            .wait_ready(Duration::from_secs(120))
            .await
            .context("the restarted node did not answer")?;
        first_restart = Some(t.elapsed().as_secs_f64());
    }
    let pids: Vec<String> = children
        .iter()
        .map(|c| c.id().map(|p| p.to_string()).unwrap_or_default())
        .collect();
    let url = urls[0].clone();
    let rpc = RpcClient::new(url.clone());
    let god = keystore::load(&keystore_path, &password)?;
    let nid = 3;

    eprintln!("funding {} sender accounts", opts.clients);
    let senders: Vec<KeyPair> = (0..opts.clients).map(|_| KeyPair::generate()).collect();
    let mut funding = Vec::new();
    for (i, s) in senders.iter().enumerate() {
        let st = transfer(&god, s.address(), 1_000_000 * ICX, i as u128, nid)?;
        funding.push(
            rpc.call("icx_sendTransaction", Value::Object(st.raw))
                .await?,
        );
    }
    for h in funding {
        let r = rpc
            .call_with(
                rpc.url(),
                "icx_waitTransactionResult",
                json!({ "txHash": h }),
                &[("Icon-Options", "timeout=30000")],
            )
            .await?;
        if r["status"] != "0x1" {
            bail!("funding failed: {r}");
        }
    }

    eprintln!("signing {} transfers", opts.txs);
    let recipients: Vec<Address> = (0..1000).map(|_| KeyPair::generate().address()).collect();
    let t_seed = now_us().to_be_bytes();
    let mut bodies: Vec<Vec<(usize, Vec<u8>)>> = vec![Vec::new(); opts.clients];
    let mut index_of: HashMap<String, usize> = HashMap::with_capacity(opts.txs);
    for i in 0..opts.txs {
        let c = i % opts.clients;
        let to = match opts.accounts {
            // A new account each time: the state grows by one key per transfer.
            Some(_) => {
                let h = sha3_256(&[b"bench recipient", &(i as u64).to_be_bytes(), &t_seed]);
                let mut body = [0u8; 20];
                body.copy_from_slice(&h.0[..20]);
                Address::eoa(body)
            }
            None => recipients[i % recipients.len()],
        };
        let st = transfer(&senders[c], to, 1, i as u128, nid)?;
        index_of.insert(st.hash.to_string(), i);
        let body = serde_json::to_vec(
            &json!({"jsonrpc": "2.0", "id": i, "method": "icx_sendTransaction", "params": st.raw}),
        )?;
        bodies[c].push((i, body));
    }
    let recover = recover_rate();

    let head = rpc.call("icx_getLastBlock", Value::Null).await?["height"]
        .as_u64()
        .unwrap_or(0);
    let cpu_all = |pids: &[String]| {
        pids.iter()
            .map(|p| cpu_seconds(p).unwrap_or(0.0))
            .sum::<f64>()
    };
    let (seen, monitor) = match watch_commits(&urls[0], head + 1).await {
        Ok((seen, task)) => (Some(seen), Some(task)),
        Err(e) => {
            eprintln!("no block monitor ({e:#}): commit times are those of the block fetches");
            (None, None)
        }
    };
    let cpu0 = cpu_all(&pids);
    let stages0 = scrape_stages(&urls).await;
    let fin0 = scrape_finality(&urls).await;
    let timeouts0 = scrape_timeouts(&urls).await;
    let self0 = cpu_seconds("self").unwrap_or(0.0);
    let t0 = Instant::now();
    let sent_at = Arc::new(std::sync::Mutex::new(vec![None::<Instant>; opts.txs]));
    let mut tasks = Vec::new();
    for (k, list) in bodies.into_iter().enumerate() {
        let url = urls[k % urls.len()].clone();
        let sent_at = sent_at.clone();
        // With a rate, each client sends on a fixed schedule (open loop) of rate/clients per second.
        let gap = (opts.rate > 0)
            .then(|| Duration::from_secs_f64(opts.clients as f64 / opts.rate as f64));
        tasks.push(tokio::spawn(async move {
            let c = RpcClient::new(url.clone());
            let mut accepted = 0usize;
            let start = Instant::now();
            for (n, (i, body)) in list.into_iter().enumerate() {
                if let Some(gap) = gap {
                    tokio::time::sleep_until((start + gap * n as u32).into()).await;
                }
                let t = Instant::now();
                if let Ok((200, _)) = c.post_raw(&url, body, &[]).await {
                    accepted += 1;
                    if let Ok(mut s) = sent_at.lock() {
                        s[i] = Some(t);
                    }
                }
            }
            accepted
        }));
    }
    let watcher = {
        let url = url.clone();
        let seen = seen.clone();
        tokio::spawn(async move {
            let c = RpcClient::new(url);
            let mut committed_at: Vec<(usize, Instant)> = Vec::new();
            let mut next = head + 1;
            let mut blocks = 0u64;
            let mut stamps: Vec<u64> = Vec::new();
            let mut built_to_seen: Vec<f64> = Vec::new();
            let deadline = Instant::now() + Duration::from_secs(120);
            while committed_at.len() < index_of.len() && Instant::now() < deadline {
                match c
                    .call(
                        "icx_getBlockByHeight",
                        json!({ "height": format!("{next:#x}") }),
                    )
                    .await
                {
                    Ok(b) => {
                        // First seen committed: on the monitor, or now if it has not said yet.
                        let pushed = seen
                            .as_ref()
                            .and_then(|s| s.lock().ok().and_then(|m| m.get(&next).copied()));
                        let (now, wall) = pushed.unwrap_or_else(|| (Instant::now(), now_us()));
                        blocks += 1;
                        let stamp = b["time_stamp"].as_u64().unwrap_or(0);
                        stamps.push(stamp);
                        built_to_seen.push(wall.saturating_sub(stamp) as f64 / 1000.0);
                        for t in b["confirmed_transaction_list"]
                            .as_array()
                            .into_iter()
                            .flatten()
                        {
                            if let Some(i) = t["txHash"].as_str().and_then(|h| index_of.get(h)) {
                                committed_at.push((*i, now));
                            }
                        }
                        next += 1;
                    }
                    Err(_) => tokio::time::sleep(Duration::from_millis(2)).await,
                }
            }
            (committed_at, blocks, stamps, built_to_seen)
        })
    };
    let mut accepted = 0;
    for t in tasks {
        accepted += t.await?;
    }
    let send_secs = t0.elapsed().as_secs_f64();
    let (committed_at, blocks, stamps, mut built_to_seen) = watcher.await?;
    if let Some(m) = monitor {
        m.abort();
    }
    built_to_seen.sort_by(|a, b| a.total_cmp(b));
    let mut intervals: Vec<f64> = stamps
        .windows(2)
        .map(|w| w[1].saturating_sub(w[0]) as f64 / 1000.0)
        .collect();
    intervals.sort_by(|a, b| a.total_cmp(b));
    let cpu = cpu_all(&pids) - cpu0;
    let stages1 = scrape_stages(&urls).await;
    let fin1 = scrape_finality(&urls).await;
    let timeouts = scrape_timeouts(&urls).await - timeouts0;
    let bench_cpu = cpu_seconds("self").unwrap_or(0.0) - self0;
    let rss = children
        .first()
        .and_then(|c| c.id())
        .and_then(rss_mib)
        .unwrap_or(0.0);
    for c in &mut children {
        let _ = c.kill().await;
    }
    // What the first node holds after the run: memory, and its data folder on disk.
    let first_disk = configs
        .first()
        .and_then(|c| c.parent())
        .map(|d| disk_bytes(&d.join("data")))
        .unwrap_or(0);
    // With a large state, a single node is killed and restarted: time until RPC answers again.
    let mut state = serde_json::Map::new();
    if let (Some(n), 1) = (opts.accounts, opts.validators) {
        let t = Instant::now();
        let mut c = spawn_node(&configs[0])?;
        let ready = RpcClient::new(url.clone())
            .wait_ready(Duration::from_secs(120))
            .await;
        let restart = t.elapsed().as_secs_f64();
        let rss_restart = c.id().and_then(rss_mib).unwrap_or(0.0);
        let _ = c.kill().await;
        ready.context("the restarted node did not answer")?;
        let bytes = disk_bytes(&dir.join("data"));
        let keys = n as f64 + opts.txs as f64;
        state.insert("accounts_before".into(), json!(n));
        state.insert(
            "start_with_genesis_s".into(),
            json!((start_secs * 10.0).round() / 10.0),
        );
        state.insert(
            "restart_after_genesis_until_rpc_s".into(),
            json!(first_restart.map(|r| (r * 100.0).round() / 100.0)),
        );
        state.insert(
            "restart_after_run_until_rpc_s".into(),
            json!((restart * 100.0).round() / 100.0),
        );
        state.insert(
            "node_rss_mib_after_genesis".into(),
            json!(rss_start.round()),
        );
        state.insert("node_rss_mib_after_run".into(), json!(rss.round()));
        state.insert(
            "node_rss_mib_after_restart".into(),
            json!(rss_restart.round()),
        );
        state.insert("disk_bytes".into(), json!(bytes));
        state.insert(
            "disk_bytes_per_account".into(),
            json!((bytes as f64 / keys.max(1.0)).round()),
        );
    }

    let last_commit = committed_at.iter().map(|(_, t)| *t).max().unwrap_or(t0);
    let commit_secs = last_commit.duration_since(t0).as_secs_f64().max(1e-9);
    let sent = sent_at.lock().map(|s| s.clone()).unwrap_or_default();
    // (seconds since the start when sent, send-to-commit latency in ms) per transaction.
    let timed: Vec<(f64, f64)> = committed_at
        .iter()
        .filter_map(|(i, t)| {
            let s = sent[*i]?;
            Some((
                s.saturating_duration_since(t0).as_secs_f64(),
                t.duration_since(s).as_secs_f64() * 1000.0,
            ))
        })
        .collect();
    let mut lat: Vec<f64> = timed.iter().map(|(_, ms)| *ms).collect();
    lat.sort_by(|a, b| a.total_cmp(b));
    let committed = committed_at.len();
    let summary = json!({
        "bench": if opts.validators > 1 { "transfers, LFT validators as processes" } else { "transfers, single node" },
        "txs": opts.txs,
        "clients": opts.clients,
        "mmap_reads": opts.mmap_reads,
        "recipients": if opts.accounts.is_some() { "a new account per transfer" } else { "1,000 fixed accounts" },
        "accepted": accepted,
        "committed": committed,
        "accepted_tps": (accepted as f64 / send_secs).round(),
        "committed_tps": (committed as f64 / commit_secs).round(),
        "latency_ms_p50": (percentile(&lat, 0.5) * 10.0).round() / 10.0,
        "latency_ms_p99": (percentile(&lat, 0.99) * 10.0).round() / 10.0,
        "latency_ms_p99_by_5s_of_sending": p99_by_window(&timed, LATENCY_WINDOW_S),
        "validators": opts.validators,
        "offered_rate": opts.rate,
        "blocks": blocks,
        "block_interval_ms_p50": (percentile(&intervals, 0.5) * 10.0).round() / 10.0,
        "block_interval_ms_p99": (percentile(&intervals, 0.99) * 10.0).round() / 10.0,
        "block_interval_ms_max": intervals.last().map(|m| (m * 10.0).round() / 10.0),
        "commit_seen_by": if seen.is_some() { "block monitor" } else { "block fetches" },
        "block_built_to_seen_ms_p50": (percentile(&built_to_seen, 0.5) * 10.0).round() / 10.0,
        "block_built_to_seen_ms_p99": (percentile(&built_to_seen, 0.99) * 10.0).round() / 10.0,
        "node_cpu_seconds": (cpu * 100.0).round() / 100.0,
        "node_cpu_us_per_tx": if committed > 0 { (cpu * 1e6 / committed as f64).round() } else { 0.0 },
        "node_cpu_us_per_tx_per_validator": if committed > 0 { (cpu * 1e6 / committed as f64 / opts.validators as f64).round() } else { 0.0 },
        "stages": stage_summary(&stages0, &stages1, committed as f64, opts.validators as f64),
        "block_finality_per_validator": finality_summary(&fin0, &fin1),
        "round_timeouts": timeouts,
        "bench_client_cpu_seconds": (bench_cpu * 100.0).round() / 100.0,
        "secp256k1_recover_per_sec_one_core": recover.round(),
        "recover_ceiling_tps_two_cores": (2.0 * recover).round(),
        "first_node": {
            "rss_mib_after_run": rss.round(),
            "disk_bytes_after_run": first_disk,
        },
        "state": Value::Object(state),
    });
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_windows_split_by_send_time_and_skip_empty_ones() {
        // 100 sends in 0-5 s at 10 ms (two at 50), none in 5-10 s, 100 in 10-15 s at 30 ms.
        let mut s: Vec<(f64, f64)> = (0..100).map(|i| (i as f64 * 0.04, 10.0)).collect();
        s[7].1 = 50.0;
        s[8].1 = 50.0;
        s.extend((0..100).map(|i| (10.0 + i as f64 * 0.04, 30.0)));
        assert_eq!(p99_by_window(&s, 5.0), vec![Some(50.0), None, Some(30.0)]);
        assert!(p99_by_window(&[], 5.0).is_empty());
        // Times far past the run (or negative) cannot blow up the list.
        assert_eq!(
            p99_by_window(&[(1e12, 1.0), (-3.0, 2.0)], 5.0),
            vec![Some(2.0)]
        );
    }

    #[test]
    fn finality_quantiles_interpolate_within_buckets_and_subtract_the_first_scrape() {
        let n = crate::metrics::FINALITY_BUCKETS.len() + 1;
        // Before: 10 blocks at most 2 ms. After: 100 more, all between 8 and 10 ms.
        let mut before = vec![10.0; n];
        before[0] = 10.0;
        let mut after = vec![0.0; n];
        for (i, c) in after.iter_mut().enumerate() {
            *c = if i < 4 { 10.0 } else { 110.0 };
        }
        let s = finality_summary(&[before], &[after]);
        assert_eq!(s[0]["blocks"], json!(100.0));
        assert_eq!(s[0]["p50_ms"], json!(9.0));
        assert_eq!(s[0]["p99_ms"], json!(10.0));
        // No blocks: no quantiles.
        let s = finality_summary(&[vec![0.0; n]], &[vec![0.0; n]]);
        assert_eq!(s[0]["p99_ms"], Value::Null);
    }
}
