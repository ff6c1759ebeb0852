//! Ethereum in the hub: an anvil dev node (Foundry's, from npm), the `notary-eth` channel run
//! by every Nexus validator (each checking relayed headers against that node), the Solidity
//! BMC, verifier and token service deployed there, and the portal links both ways.

use crate::commands::hub::{call_tx, checkpoint, HubLayout};
use crate::error::NodeError;
use alloy::network::TransactionBuilder;
use alloy::primitives::{Address as EthAddress, Bytes};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::rpc::types::TransactionRequest;
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::SolValue;
use nexus_client::rpc::RpcClient;
use nexus_proto::value::{format_bytes, format_int};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Anvil's first dev account: deploys and owns the contracts (a dev chain only).
pub const DEPLOYER_KEY: &str = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
/// Anvil's third dev account: the user the devnet's examples, the benchmarks and the tests
/// trade and transfer with (a dev chain only).
pub const USER_KEY: &str = "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a";
/// Anvil's second dev account: the portal's Ethereum wallet.
pub const RELAYER_KEY: &str = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d";

/// The Ethereum part of a hub.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EthLayout {
    /// BTP network address (`0x539.eth`).
    pub network: String,
    /// Chain id.
    pub chain_id: u64,
    /// Anvil's JSON-RPC address.
    pub rpc: SocketAddr,
    /// Seconds between anvil's blocks.
    pub block_time_s: u64,
    /// Headers the notary waits for above a block before accepting its messages.
    pub confirmations: u64,
    /// The notary channel of the Ethereum chain.
    pub notary_channel: String,
    /// Its nid.
    pub notary_nid: u64,
}

/// Where the contracts went (written by [`connect`] to `eth/contracts.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EthContracts {
    /// The BMC.
    pub bmc: String,
    /// The verifier of Nexus notary decisions.
    pub verifier: String,
    /// The token service.
    pub token: String,
    /// The DEX's Ether reserve (service `dex`), when Nexus runs the converter.
    #[serde(default)]
    pub dex_reserve: Option<String>,
}

impl EthLayout {
    /// The JSON-RPC URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.rpc)
    }
}

/// Where `./x setup` installed the npm packages (`NEXUS_NODE_MODULES`, or the default cache).
pub fn node_modules() -> PathBuf {
    std::env::var("NEXUS_NODE_MODULES")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(std::env::var("HOME").unwrap_or_default())
                .join(".cache/nexus/js/node_modules")
        })
}

/// The anvil executable under `node_modules`: the platform package's real binary
/// (`@foundry-rs/anvil-<os>-<arch>/bin/anvil`), not npm's `.bin/anvil` shim, which runs it as a
/// child of Node.js, so killing the shim would leave anvil running and holding its port.
pub fn anvil_binary(node_modules: &Path) -> PathBuf {
    let scope = node_modules.join("@foundry-rs");
    let real = std::fs::read_dir(&scope).ok().and_then(|entries| {
        entries
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with("anvil-"))
            .map(|e| e.path().join("bin/anvil"))
            .find(|p| p.is_file())
    });
    real.unwrap_or_else(|| node_modules.join(".bin/anvil"))
}

/// The anvil command for `eth` (binary and arguments).
pub fn anvil_command(eth: &EthLayout) -> Result<(PathBuf, Vec<String>), NodeError> {
    let bin = anvil_binary(&node_modules());
    if !bin.exists() {
        return Err(NodeError::Config(format!(
            "{} is missing: run `./x setup` (or set NEXUS_NODE_MODULES)",
            bin.display()
        )));
    }
    let args = [
        "--host",
        &eth.rpc.ip().to_string(),
        "--port",
        &eth.rpc.port().to_string(),
        "--chain-id",
        &eth.chain_id.to_string(),
        "--block-time",
        &eth.block_time_s.to_string(),
        "--slots-in-an-epoch",
        "1",
    ]
    .map(String::from)
    .to_vec();
    Ok((bin, args))
}

/// Anvil's arguments to keep its chain in `state` across devnet restarts (dumped every
/// 2 seconds, loaded at start).
pub fn anvil_state_args(state: &Path) -> Vec<String> {
    vec![
        "--state".into(),
        state.display().to_string(),
        "--state-interval".into(),
        "2".into(),
    ]
}

/// Compiles `contracts/src` with solc-js into `out`.
fn compile(out: &Path) -> Result<Value, NodeError> {
    let contracts = std::env::var("NEXUS_CONTRACTS")
        .map(PathBuf::from)
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("../contracts"));
    let status = std::process::Command::new("node")
        .arg(contracts.join("build.js"))
        .arg(out)
        .env("NODE_PATH", node_modules())
        .status()
        .map_err(|e| NodeError::Config(format!("cannot run node: {e}")))?;
    if !status.success() {
        return Err(NodeError::Config(format!(
            "compiling {} failed",
            contracts.display()
        )));
    }
    serde_json::from_slice(&std::fs::read(out)?)
        .map_err(|e| NodeError::Config(format!("{}: {e}", out.display())))
}

fn eth_err(what: &str, e: impl std::fmt::Display) -> NodeError {
    NodeError::Config(format!("Ethereum: {what}: {e}"))
}

async fn deploy(
    p: &DynProvider,
    compiled: &Value,
    name: &str,
    args: Vec<u8>,
) -> Result<EthAddress, NodeError> {
    let code = compiled["contracts"][name]["bytecode"]
        .as_str()
        .and_then(|h| hex::decode(h.trim_start_matches("0x")).ok())
        .ok_or_else(|| eth_err(name, "not in the compiler output"))?;
    let tx = TransactionRequest::default().with_deploy_code([code, args].concat());
    let r = p
        .send_transaction(tx)
        .await
        .map_err(|e| eth_err(name, e))?
        .get_receipt()
        .await
        .map_err(|e| eth_err(name, e))?;
    r.contract_address
        .filter(|_| r.status())
        .ok_or_else(|| eth_err(name, "deployment reverted"))
}

async fn send(p: &DynProvider, to: EthAddress, data: Vec<u8>, what: &str) -> Result<(), NodeError> {
    let tx = TransactionRequest::default()
        .with_to(to)
        .with_input(Bytes::from(data));
    let r = p
        .send_transaction(tx)
        .await
        .map_err(|e| eth_err(what, e))?
        .get_receipt()
        .await
        .map_err(|e| eth_err(what, e))?;
    if !r.status() {
        return Err(eth_err(what, "reverted"));
    }
    Ok(())
}

fn calldata(signature: &str, args: Vec<u8>) -> Vec<u8> {
    let selector = &nexus_proto::hash::keccak256(&[signature.as_bytes()]).0[..4];
    [selector.to_vec(), args].concat()
}

/// The Ethereum addresses of the Nexus validators (their keys, from their configs).
fn notary_set(dir: &Path) -> Result<Vec<EthAddress>, NodeError> {
    let mut set = Vec::new();
    for i in 0.. {
        let config = dir.join(format!("node{i}/config.toml"));
        if !config.exists() {
            break;
        }
        let cfg = crate::config::NodeConfig::load(&config)?;
        let key = crate::keystore::load(&cfg.keystore, &cfg.keystore_password()?)?;
        set.push(EthAddress::from(nexus_btp::decision::eth_address(&key)));
    }
    Ok(set)
}

/// Portal links of the Ethereum side (TOML tables as JSON).
pub struct EthLinks {
    /// `[[eth_inbound]]`.
    pub eth_inbound: Vec<Value>,
    /// `[[eth_outbound]]`.
    pub eth_outbound: Vec<Value>,
    /// `[[outbound]]` from `notary-eth` to the community chains.
    pub outbound: Vec<Value>,
}

/// Deploys the contracts, registers the notary's Ethereum source, the chains' verifiers of
/// `notary-eth` and the Ethereum verifier's notary sets, and returns the portal links.
pub async fn connect(dir: &Path, hub: &HubLayout, eth: &EthLayout) -> Result<EthLinks, NodeError> {
    let admin = crate::keystore::load(&hub.admin_keystore, &hub.admin_password)?;
    let eth_dir = dir.join("eth");
    std::fs::create_dir_all(&eth_dir)?;
    let compiled = compile(&eth_dir.join("compiled.json"))?;
    let signer: PrivateKeySigner = DEPLOYER_KEY.parse().map_err(|e| eth_err("key", e))?;
    let url = eth.url().parse().map_err(|e| eth_err("url", e))?;
    let p = ProviderBuilder::new()
        .wallet(signer)
        .connect_http(url)
        .erased();
    let net = eth.network.clone();
    let bmc = deploy(&p, &compiled, "BMC", (net.clone(),).abi_encode_params()).await?;
    let verifier = deploy(
        &p,
        &compiled,
        "NexusVerifier",
        (bmc, net.clone()).abi_encode_params(),
    )
    .await?;
    let token = deploy(
        &p,
        &compiled,
        "TokenService",
        (bmc, net.clone()).abi_encode_params(),
    )
    .await?;
    send(
        &p,
        bmc,
        calldata("setVerifier(address)", (verifier,).abi_encode_params()),
        "setVerifier",
    )
    .await?;
    send(
        &p,
        bmc,
        calldata(
            "addService(string,address)",
            ("token".to_string(), token).abi_encode_params(),
        ),
        "addService",
    )
    .await?;
    let dex_reserve = match &hub.nexus {
        Some(n) => {
            let reserve = deploy(
                &p,
                &compiled,
                "DexReserve",
                (bmc, n.network.clone()).abi_encode_params(),
            )
            .await?;
            send(
                &p,
                bmc,
                calldata(
                    "addService(string,address)",
                    ("dex".to_string(), reserve).abi_encode_params(),
                ),
                "addService",
            )
            .await?;
            Some(reserve)
        }
        None => None,
    };
    // Every endpoint that sends to Ethereum: the chains and, with the DEX, Nexus itself.
    let endpoints: Vec<_> = hub.chains.iter().chain(hub.nexus.iter()).collect();
    let set = notary_set(dir)?;
    for c in &endpoints {
        send(
            &p,
            verifier,
            calldata(
                "addSource(string,address[])",
                (c.network.clone(), set.clone()).abi_encode_params(),
            ),
            "addSource",
        )
        .await?;
    }
    // The notary's light client of Ethereum starts at the current block.
    let head = p
        .get_block_number()
        .await
        .map_err(|e| eth_err("block number", e))?;
    let block = p
        .get_block_by_number(head.into())
        .await
        .map_err(|e| eth_err("block", e))?
        .ok_or_else(|| eth_err("block", "none"))?;
    let raw = alloy::rlp::encode(&block.header.inner);
    if nexus_proto::hash::keccak256(&[&raw]).0 != block.header.hash.0 {
        return Err(eth_err(
            "checkpoint",
            "the header does not hash to its block hash",
        ));
    }
    let notary_url = format!("http://{}/api/v3/{}", hub.nexus_rpc, eth.notary_channel);
    let notary_backups: Vec<String> = hub
        .nexus_backups
        .iter()
        .map(|a| format!("http://{a}/api/v3/{}", eth.notary_channel))
        .collect();
    let notary = RpcClient::new(notary_url.clone());
    call_tx(
        &notary,
        &admin,
        eth.notary_nid,
        nexus_btp::NOTARY_ADDRESS,
        "setEthSource",
        json!({"_network": net, "_chainId": format_int(eth.chain_id),
               "_checkpoint": format_bytes(&raw), "_confirmations": format_int(eth.confirmations),
               "_emitter": format_bytes(bmc.as_slice())}),
    )
    .await?;
    let mut outbound = Vec::new();
    let mut eth_outbound = Vec::new();
    for d in &endpoints {
        let (h, header, validators) = checkpoint(&notary).await?;
        call_tx(
            &RpcClient::new(d.url()),
            &admin,
            d.nid,
            nexus_btp::BMC_ADDRESS,
            "addVerifier",
            json!({"_src": net, "_nid": format_int(eth.notary_nid),
                   "_channel": eth.notary_channel, "_checkpoint": header,
                   "_validators": validators,
                   "_emitter": nexus_btp::NOTARY_ADDRESS.to_string()}),
        )
        .await?;
        outbound.push(
            json!({"name": format!("eth-to-{}", d.name), "notary": notary_url,
                             "notary_backups": notary_backups, "destination": d.url(),
                             "start_height": h}),
        );
        eth_outbound.push(json!({"name": format!("{}-to-eth", d.name),
                                 "notary": hub.notary_url(d), "notary_backups": hub.notary_backups(d),
                                 "destination": eth.url(), "bmc": bmc.to_string(),
                                 "key_file": "eth.key"}));
    }
    let portal_dir = hub.portal_config.parent().unwrap_or(dir);
    crate::keystore::write_private(
        &portal_dir.join("eth.key"),
        format!("{RELAYER_KEY}\n").as_bytes(),
    )?;
    let addresses = EthContracts {
        bmc: bmc.to_string(),
        verifier: verifier.to_string(),
        token: token.to_string(),
        dex_reserve: dex_reserve.map(|r| r.to_string()),
    };
    std::fs::write(
        eth_dir.join("contracts.json"),
        serde_json::to_string_pretty(&addresses).map_err(|e| eth_err("json", e))?,
    )?;
    Ok(EthLinks {
        eth_inbound: vec![
            json!({"name": "eth-in", "source": eth.url(), "bmc": bmc.to_string(),
                                 "notary": notary_url, "notary_backups": notary_backups}),
        ],
        eth_outbound,
        outbound,
    })
}

/// The deployed contracts of a connected hub.
pub fn contracts(dir: &Path) -> Option<EthContracts> {
    serde_json::from_slice(&std::fs::read(dir.join("eth/contracts.json")).ok()?).ok()
}
