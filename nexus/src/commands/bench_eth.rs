//! `nexus bench-eth`: the Ethereum side's figures, JSON on the last line.
//! 1. The Ethereum light client's receipt-proof checks per second on one core (a block of 200
//!    receipts with two logs each, every receipt proved; median of three runs), beside the
//!    secp256k1 ceiling of the same machine.
//! 2. End to end through the devnet's hub in a temporary folder (four validators, chains A and
//!    B, anvil with the contracts, one portal; all separate processes): Ether sent on Ethereum
//!    until its wrapped ETH is credited on chain A, and wrapped ETH sent from A until the Ether
//!    is at an Ethereum account; `--trips` of each, p50 and max. Ethereum blocks come every
//!    second and the notary waits for 2 confirmations, which bounds the first direction.

use crate::commands::bench::{free_ports, percentile, recover_rate};
use crate::commands::bench_btp::{spawn, wait_answers};
use crate::commands::devnet::{init_network_on, InitOptions};
use crate::commands::hub::{self, HubLayout, HubPorts};
use crate::commands::hub_eth;
use anyhow::{Context, Result};
use nexus_client::rpc::RpcClient;
use nexus_light_clients::ethereum::{
    receipt_nodes, receipts_root, EthLog, EthReceipt, ReceiptProof,
};
use nexus_proto::value::parse_u128;
use nexus_proto::{Hash32, KeyPair};
use serde_json::{json, Value};
use std::path::Path;
use std::time::{Duration, Instant};

use crate::commands::hub_eth::USER_KEY;
const ETHER: u128 = 1_000_000_000_000_000_000;

/// Receipt proofs checked per second on one core (median of three runs of about a second).
pub fn proof_rate() -> f64 {
    let receipts: Vec<Vec<u8>> = (0..200u8)
        .map(|i| {
            EthReceipt {
                tx_type: 2,
                success: true,
                cumulative_gas: 21_000 * (u64::from(i) + 1),
                bloom: vec![0; 256],
                logs: (0..2)
                    .map(|j| EthLog {
                        address: [i; 20],
                        topics: vec![Hash32([j; 32]), Hash32([i; 32])],
                        data: vec![i; 96],
                    })
                    .collect(),
            }
            .encode()
        })
        .collect();
    let root = receipts_root(&receipts);
    let proofs: Vec<ReceiptProof> = (0..receipts.len())
        .map(|i| ReceiptProof {
            block: 1,
            index: i as u64,
            log: 1,
            receipt: receipts[i].clone(),
            nodes: receipt_nodes(&receipts, i).unwrap_or_default(),
        })
        .collect();
    let mut runs = Vec::new();
    for _ in 0..3 {
        let start = Instant::now();
        let mut n = 0u64;
        while start.elapsed() < Duration::from_secs(1) {
            for p in &proofs {
                if p.verify(&root).is_ok() {
                    n += 1;
                }
            }
        }
        runs.push(n as f64 / start.elapsed().as_secs_f64());
    }
    runs.sort_by(f64::total_cmp);
    runs[1]
}

async fn wrapped_on(rpc: &RpcClient, token: &str, owner: &str) -> Result<u128> {
    let v = rpc
        .call(
            "icx_call",
            json!({"to": nexus_btp::BMC_ADDRESS.to_string(), "dataType": "call",
                   "data": {"method": "balanceOf", "params": {"_token": token, "_owner": owner}}}),
        )
        .await?;
    Ok(parse_u128("balance", v.as_str().unwrap_or(""))?)
}

async fn eth_balance(rpc: &RpcClient, who: &str) -> Result<u128> {
    let v = rpc.call("eth_getBalance", json!([who, "latest"])).await?;
    Ok(parse_u128("balance", v.as_str().unwrap_or(""))?)
}

async fn until(what: &str, mut f: impl AsyncFnMut() -> Result<bool>) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !f().await? {
        anyhow::ensure!(Instant::now() < deadline, "{what}: not within 120 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

/// A hub with Ethereum running in a temporary folder: validators, chains, anvil, portal.
pub struct EthHub {
    /// The Nexus network.
    pub net: crate::commands::devnet::NetworkOutput,
    /// The hub's layout.
    pub layout: HubLayout,
    /// Every process (killed on drop).
    pub children: Vec<tokio::process::Child>,
}

/// Starts the devnet's hub with Ethereum in `dir` (four validators, chains A and B, anvil with
/// the contracts, one portal; all separate processes) and connects it.
pub async fn start_eth_hub(dir: &Path) -> Result<EthHub> {
    let exe = std::env::current_exe()?;
    let p = free_ports(12)?;
    let ports: Vec<(u16, u16)> = (0..4).map(|i| (p[2 * i], p[2 * i + 1])).collect();
    std::fs::create_dir_all(dir)?;
    let net = init_network_on(dir, &InitOptions::default(), &ports)?;
    let layout: HubLayout = hub::init_hub(
        dir,
        &net,
        HubPorts {
            chains: [p[8], p[9]],
            portal: p[10],
            eth: Some(p[11]),
        },
    )?;
    let eth = layout.eth.clone().context("eth layout")?;
    let mut children = Vec::new();
    let (bin, args) = hub_eth::anvil_command(&eth)?;
    children.push(
        tokio::process::Command::new(bin)
            .args(args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()?,
    );
    for node in &net.nodes {
        children.push(spawn(
            &exe,
            &["node", "--config"],
            &node.config,
            &node.config.with_file_name("node.log"),
        )?);
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
    }
    for url in layout.notary_urls() {
        wait_answers(&url).await?;
    }
    let eth_rpc = RpcClient::new(eth.url());
    until("anvil", async || {
        Ok(eth_rpc.call("eth_blockNumber", Value::Null).await.is_ok())
    })
    .await?;
    hub::connect(dir, &layout).await?;
    children.push(spawn(
        &exe.with_file_name("portal"),
        &["--config"],
        &layout.portal_config,
        &layout.portal_config.with_file_name("portal.log"),
    )?);
    Ok(EthHub {
        net,
        layout,
        children,
    })
}

/// Runs the benchmark in `dir` (which it fills and the caller deletes).
pub async fn run(trips: usize, dir: &Path) -> Result<Value> {
    let proofs_per_sec = proof_rate();
    let recover = recover_rate();
    let EthHub {
        net,
        layout,
        children,
    } = start_eth_hub(dir).await?;
    let eth = layout.eth.clone().context("eth layout")?;
    let eth_rpc = RpcClient::new(eth.url());
    let contracts = hub_eth::contracts(dir).context("contracts")?;
    let a = &layout.chains[0];
    let rpc_a = RpcClient::new(a.url());
    let god = crate::keystore::load(&net.funded_keystore, &net.funded_password)?;
    let bob = KeyPair::generate();
    let fund = crate::commands::wallet::send(
        &rpc_a,
        &god,
        bob.address(),
        100 * ETHER,
        nexus_proto::TxData::None,
        Some(100_000),
    )
    .await?;
    anyhow::ensure!(fund["status"] == "0x1", "funding bob: {fund}");
    let token = format!("btp-{}-ETH", eth.network);
    let carol = format!("0x{}", hex::encode([0xca; 20]));
    let (mut to_a, mut to_eth) = (Vec::new(), Vec::new());
    for _ in 0..trips {
        let before = wrapped_on(&rpc_a, &token, &bob.address().to_string()).await?;
        let t = Instant::now();
        crate::commands::wallet::eth_transfer(
            &eth.url(),
            &contracts.token,
            USER_KEY,
            &format!("{}/{}", a.network, bob.address()),
            ETHER,
        )
        .await?;
        until("wrapped ETH on A", async || {
            Ok(wrapped_on(&rpc_a, &token, &bob.address().to_string()).await? > before)
        })
        .await?;
        to_a.push(t.elapsed().as_secs_f64() * 1000.0);

        let before = eth_balance(&eth_rpc, &carol).await?;
        let t = Instant::now();
        let r = crate::commands::wallet::send(
            &rpc_a,
            &bob,
            nexus_btp::BMC_ADDRESS,
            0,
            crate::commands::wallet::call_data(
                "transferWrapped",
                Some(&json!({"_token": token, "_to": format!("{}/{carol}", eth.network), "_value": format!("{ETHER:#x}")}).to_string()),
            )?,
            None,
        )
        .await?;
        anyhow::ensure!(r["status"] == "0x1", "transferWrapped: {r}");
        until("Ether at carol", async || {
            Ok(eth_balance(&eth_rpc, &carol).await? > before)
        })
        .await?;
        to_eth.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    for mut c in children {
        let _ = c.kill().await;
    }
    let stat = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        (
            percentile(&v, 0.5).round(),
            v.last().copied().unwrap_or(0.0).round(),
        )
    };
    let (a50, amax) = stat(to_a);
    let (e50, emax) = stat(to_eth);
    Ok(json!({
        "bench": "eth",
        "receipt_proofs_verified_per_sec_one_core": proofs_per_sec.round(),
        "secp256k1_recover_per_sec_one_core": recover.round(),
        "proofs_to_secp256k1_ratio": (proofs_per_sec / recover * 100.0).round() / 100.0,
        "trips": trips,
        "eth_to_chain_ms_p50": a50,
        "eth_to_chain_ms_max": amax,
        "chain_to_eth_ms_p50": e50,
        "chain_to_eth_ms_max": emax,
        "eth_block_time_s": eth.block_time_s,
        "confirmations": eth.confirmations,
    }))
}
