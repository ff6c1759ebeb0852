//! `nexus init` and `nexus devnet`: a ready-to-run network folder (keys, genesis with a funded
//! account and an IRC-2 token, config) and a one-command local network.

use crate::config::NodeConfig;
use crate::error::NodeError;
use crate::keystore;
use crate::ledger::genesis::{
    check_channel_name, Genesis, GenesisAccount, GenesisToken, SyntheticAccounts,
};
use crate::pool::admission::now_us;
use nexus_proto::hash::sha3_256;
use nexus_proto::value::format_int;
use nexus_proto::{Address, KeyPair};
use rand::Rng;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// ICX in loop.
pub const ICX: u128 = 1_000_000_000_000_000_000;

/// Choices for a new network folder.
#[derive(Debug, Clone)]
pub struct InitOptions {
    /// Network id.
    pub nid: u64,
    /// Channel name.
    pub channel: String,
    /// RPC listen address.
    pub listen: SocketAddr,
    /// ICX given to the funded account.
    pub funded_icx: u128,
    /// A second channel run by all validators but the last (multi-validator networks only).
    pub second_channel: Option<String>,
    /// Generated accounts in genesis (count, balance of each), for benchmarks of a large state.
    pub synthetic_accounts: Option<(u64, u128)>,
}

impl Default for InitOptions {
    fn default() -> Self {
        InitOptions {
            nid: 3,
            channel: "public".into(),
            listen: SocketAddr::from(([127, 0, 0, 1], 9080)),
            funded_icx: 1_000_000_000,
            second_channel: None,
            synthetic_accounts: None,
        }
    }
}

/// What `init` made.
#[derive(Debug, Clone)]
pub struct InitOutput {
    /// The config file.
    pub config: PathBuf,
    /// The funded account's address.
    pub funded: Address,
    /// Its keystore file.
    pub funded_keystore: PathBuf,
    /// Its password.
    pub funded_password: String,
    /// The IRC-2 token SCORE.
    pub token: Address,
}

fn password() -> String {
    let mut rng = rand::thread_rng();
    (0..16)
        .map(|_| rng.sample(rand::distributions::Alphanumeric) as char)
        .collect()
}

/// Writes a new key as `<name>.json` (ICON keystore) and `<name>.password` in `dir`.
pub fn write_key_pair(dir: &Path, name: &str) -> Result<(KeyPair, PathBuf, String), NodeError> {
    std::fs::create_dir_all(dir)?;
    write_key(dir, name)
}

fn write_key(dir: &Path, name: &str) -> Result<(KeyPair, PathBuf, String), NodeError> {
    let key = KeyPair::generate();
    let pw = password();
    let path = dir.join(format!("{name}.json"));
    keystore::store(&path, &key, &pw)?;
    keystore::write_private(
        &dir.join(format!("{name}.password")),
        format!("{pw}\n").as_bytes(),
    )?;
    Ok((key, path, pw))
}

/// The address of the devnet token SCORE.
pub fn token_address(symbol: &str) -> Address {
    let h = sha3_256(&[b"nexus/genesis-token/", symbol.as_bytes()]);
    let mut body = [0u8; 20];
    body.copy_from_slice(&h.0[12..]);
    Address::contract(body)
}

/// The genesis of a devnet: the funded account (also the admin), the treasury, the validators
/// and the NXT token held by the funded account.
fn devnet_genesis(
    opts: &InitOptions,
    funded: &KeyPair,
    treasury: &KeyPair,
    validators: &[Address],
    token: Address,
) -> Genesis {
    Genesis {
        nid: format_int(opts.nid),
        channel: opts.channel.clone(),
        timestamp: format_int(now_us()),
        accounts: vec![
            GenesisAccount {
                name: "god".into(),
                address: funded.address().to_string(),
                balance: format_int(opts.funded_icx * ICX),
            },
            GenesisAccount {
                name: "treasury".into(),
                address: treasury.address().to_string(),
                balance: "0x0".into(),
            },
        ],
        validators: validators.iter().map(|a| a.to_string()).collect(),
        treasury: treasury.address().to_string(),
        step_price: format_int(12_500_000_000u64),
        tokens: vec![GenesisToken {
            address: token.to_string(),
            name: "Nexus Test Token".into(),
            symbol: "NXT".into(),
            decimals: "0x12".into(),
            owner: funded.address().to_string(),
            initial_supply: format_int(1_000_000_000 * ICX),
        }],
        message: "Nexus devnet".into(),
        admin: Some(funded.address().to_string()),
        btp: None,
        synthetic_accounts: opts
            .synthetic_accounts
            .map(|(count, balance)| SyntheticAccounts {
                count: format_int(count),
                balance: format_int(balance),
            }),
        dex: None,
    }
}

/// Makes a network folder: keystores, genesis, config. Refuses a folder that has a config.
pub fn init(dir: &Path, opts: &InitOptions) -> Result<InitOutput, NodeError> {
    check_channel_name(&opts.channel)?;
    let config_path = dir.join("config.toml");
    if config_path.exists() {
        return Err(NodeError::Config(format!(
            "{} already exists; pick another folder",
            config_path.display()
        )));
    }
    let keys = dir.join("keystore");
    std::fs::create_dir_all(&keys)?;
    let (validator, _, _) = write_key(&keys, "validator")?;
    let (funded, funded_keystore, funded_password) = write_key(&keys, "god")?;
    let (treasury, _, _) = write_key(&keys, "treasury")?;
    let token = token_address("NXT");
    let genesis = devnet_genesis(opts, &funded, &treasury, &[validator.address()], token);
    genesis.clone().parse()?;
    let text =
        serde_json::to_string_pretty(&genesis).map_err(|e| NodeError::Config(e.to_string()))?;
    std::fs::write(dir.join("genesis.json"), text)?;
    let mut cfg = NodeConfig::default();
    cfg.rpc.listen = opts.listen;
    cfg.validate()?;
    let toml = toml::to_string_pretty(&cfg).map_err(|e| NodeError::Config(e.to_string()))?;
    std::fs::write(
        &config_path,
        format!("# Nexus node config; relative paths are from this folder.\n{toml}"),
    )?;
    Ok(InitOutput {
        config: config_path,
        funded: funded.address(),
        funded_keystore,
        funded_password,
        token,
    })
}

/// Runs `nexus devnet`: initializes `dir` on first use, starts the node and prints endpoints.
pub async fn run(dir: &Path, listen: SocketAddr) -> Result<(), NodeError> {
    let config_path = dir.join("config.toml");
    if !config_path.exists() {
        let out = init(
            dir,
            &InitOptions {
                listen,
                ..InitOptions::default()
            },
        )?;
        println!("Initialized a new devnet in {}", dir.display());
        let _ = out;
    }
    let mut cfg = NodeConfig::load(&config_path)?;
    cfg.rpc.listen = listen;
    let genesis = Genesis::load(&cfg.genesis)?;
    let node = crate::node::start(&cfg).await?;
    let addr = node.rpc_addr;
    let ch = &genesis.channel;
    let keys = dir.join("keystore");
    let god_pw = std::fs::read_to_string(keys.join("god.password")).unwrap_or_default();
    let god = genesis
        .accounts
        .first()
        .map(|(a, _)| a.to_string())
        .unwrap_or_default();
    let token = genesis
        .tokens
        .first()
        .map(|t| t.address.to_string())
        .unwrap_or_default();
    println!(
        "Nexus devnet is running: 1 validator, channel {ch}, nid {}",
        format_int(genesis.nid)
    );
    println!("  JSON-RPC (HTTP)    http://{addr}/api/v3/{ch}   (also http://{addr}/api/v3)");
    println!("  debug JSON-RPC     http://{addr}/api/v3d/{ch}");
    println!("  WebSocket monitors ws://{addr}/api/v3/{ch}/block   ws://{addr}/api/v3/{ch}/event");
    println!("  Prometheus         http://{addr}/metrics");
    println!("  funded account     {god}");
    println!(
        "    keystore         {}   password {}",
        keys.join("god.json").display(),
        god_pw.trim()
    );
    println!("  IRC-2 token SCORE  {token} (NXT, all held by the funded account)");
    println!("  data               {}", cfg.data_dir.display());
    let exe = std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "nexus".into());
    println!("Try:  {exe} wallet balance {god} --rpc http://{addr}/api/v3/{ch}");
    println!("Stop with Ctrl-C; start again with the same command to continue the chain.");
    node.run_until_signal().await
}

/// One validator of a multi-validator network folder.
#[derive(Debug, Clone)]
pub struct ValidatorNode {
    /// Its config file.
    pub config: PathBuf,
    /// JSON-RPC address.
    pub rpc: SocketAddr,
    /// libp2p address with peer id.
    pub p2p: String,
}

/// What `init_network` made.
#[derive(Debug, Clone)]
pub struct NetworkOutput {
    /// The validators.
    pub nodes: Vec<ValidatorNode>,
    /// The funded account.
    pub funded: Address,
    /// Its keystore.
    pub funded_keystore: PathBuf,
    /// Its password.
    pub funded_password: String,
    /// The IRC-2 token SCORE.
    pub token: Address,
}

/// Makes a folder for `n` validators on this machine: `genesis.json` and `keystore/` (funded
/// account, treasury) shared, and `node<i>/` with each validator's config, keystore and p2p
/// identity. RPC ports are `rpc_port + i`, p2p ports `p2p_port + i`, all on 127.0.0.1.
pub fn init_network(
    dir: &Path,
    n: usize,
    opts: &InitOptions,
    p2p_port: u16,
) -> Result<NetworkOutput, NodeError> {
    let ports: Vec<(u16, u16)> = (0..n as u16)
        .map(|i| (opts.listen.port() + i, p2p_port + i))
        .collect();
    init_network_on(dir, opts, &ports)
}

/// [`init_network`] with one (RPC port, p2p port) pair per validator.
pub fn init_network_on(
    dir: &Path,
    opts: &InitOptions,
    ports: &[(u16, u16)],
) -> Result<NetworkOutput, NodeError> {
    let n = ports.len();
    check_channel_name(&opts.channel)?;
    if n < 2 {
        return Err(NodeError::Config(
            "a network needs at least 2 validators; use init for one".into(),
        ));
    }
    if dir.join("genesis.json").exists() {
        return Err(NodeError::Config(format!(
            "{} already holds a network; pick another folder",
            dir.display()
        )));
    }
    let keys = dir.join("keystore");
    std::fs::create_dir_all(&keys)?;
    let (funded, funded_keystore, funded_password) = write_key(&keys, "god")?;
    let (treasury, _, _) = write_key(&keys, "treasury")?;
    let mut validators = Vec::new();
    let mut p2p_addrs = Vec::new();
    for (i, (_, p2p_port)) in ports.iter().enumerate() {
        let node_dir = dir.join(format!("node{i}"));
        let (v, _, _) = write_key(&node_dir.join("keystore"), "validator")?;
        let id = crate::net::p2p::load_or_create_identity(&node_dir.join("p2p.key"))?;
        validators.push(v.address());
        p2p_addrs.push(format!(
            "/ip4/127.0.0.1/tcp/{}/p2p/{}",
            p2p_port,
            id.public().to_peer_id()
        ));
    }
    let token = token_address("NXT");
    let genesis = devnet_genesis(opts, &funded, &treasury, &validators, token);
    genesis.clone().parse()?;
    let text =
        serde_json::to_string_pretty(&genesis).map_err(|e| NodeError::Config(e.to_string()))?;
    std::fs::write(dir.join("genesis.json"), text)?;
    // The second channel: its own genesis and a subset of the validators (all but the last).
    let second = match &opts.second_channel {
        Some(name) => {
            check_channel_name(name)?;
            // Its own nid: transactions sign the nid, so a shared one would replay across.
            let g = Genesis {
                channel: name.clone(),
                nid: format_int(opts.nid.checked_add(1).ok_or_else(|| {
                    NodeError::Config("nid: the second channel needs nid + 1 below 2^64".into())
                })?),
                validators: genesis.validators[..n - 1].to_vec(),
                tokens: vec![],
                ..genesis.clone()
            };
            g.clone().parse()?;
            let file = format!("{name}.json");
            let text =
                serde_json::to_string_pretty(&g).map_err(|e| NodeError::Config(e.to_string()))?;
            std::fs::write(dir.join(&file), text)?;
            Some(file)
        }
        None => None,
    };
    let mut nodes = Vec::new();
    for i in 0..n {
        let node_dir = dir.join(format!("node{i}"));
        let mut cfg = NodeConfig {
            genesis: PathBuf::from("../genesis.json"),
            ..NodeConfig::default()
        };
        cfg.rpc.listen = SocketAddr::new(opts.listen.ip(), ports[i].0);
        cfg.p2p.listen = format!("/ip4/127.0.0.1/tcp/{}", ports[i].1);
        cfg.p2p.peers = p2p_addrs
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(_, a)| a.clone())
            .collect();
        if let Some(file) = second.as_ref().filter(|_| i < n - 1) {
            cfg.channels.push(crate::config::ChannelConfig {
                genesis: PathBuf::from(format!("../{file}")),
                peers: p2p_addrs[..n - 1]
                    .iter()
                    .enumerate()
                    .filter(|(j, _)| *j != i)
                    .map(|(_, a)| a.clone())
                    .collect(),
            });
        }
        cfg.validate()?;
        let toml = toml::to_string_pretty(&cfg).map_err(|e| NodeError::Config(e.to_string()))?;
        let path = node_dir.join("config.toml");
        std::fs::write(&path, format!("# Validator {i} of a {n}-validator Nexus network; relative paths are from this folder.\n{toml}"))?;
        nodes.push(ValidatorNode {
            config: path,
            rpc: cfg.rpc.listen,
            p2p: p2p_addrs[i].clone(),
        });
    }
    Ok(NetworkOutput {
        nodes,
        funded: funded.address(),
        funded_keystore,
        funded_password,
        token,
    })
}

/// Runs `nexus devnet` with `n > 1` validators, each a separate `nexus node` process.
pub async fn run_network(
    dir: &Path,
    n: usize,
    listen: SocketAddr,
    p2p_port: u16,
) -> Result<(), NodeError> {
    if !dir.join("genesis.json").exists() {
        let opts = InitOptions {
            listen,
            ..InitOptions::default()
        };
        let net = init_network(dir, n, &opts, p2p_port)?;
        let port = |k: u16| {
            listen.port().checked_add(k).ok_or_else(|| {
                NodeError::Config(format!(
                    "--rpc port {} leaves no room for the hub",
                    listen.port()
                ))
            })
        };
        crate::commands::hub::init_hub(
            dir,
            &net,
            crate::commands::hub::HubPorts {
                chains: [port(20)?, port(21)?],
                portal: port(30)?,
                eth: Some(port(65)?),
            },
        )?;
        println!(
            "Initialized a new {n}-validator devnet with a BTP hub in {}",
            dir.display()
        );
    }
    let hub = crate::commands::hub::HubLayout::load(dir)?;
    let genesis = Genesis::load(&dir.join("genesis.json"))?;
    let exe = std::env::current_exe()?;
    let mut children = Vec::new();
    let mut names = Vec::new();
    let mut logs = Vec::new();
    let mut endpoints = Vec::new();
    for i in 0..genesis.validators.len() {
        let node_dir = dir.join(format!("node{i}"));
        let cfg = NodeConfig::load(&node_dir.join("config.toml"))?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(node_dir.join("node.log"))?;
        let child = tokio::process::Command::new(&exe)
            .arg("node")
            .arg("--config")
            .arg(node_dir.join("config.toml"))
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()?;
        children.push(child);
        names.push(format!("validator {i}"));
        logs.push(node_dir.join("node.log"));
        let mut channels = vec![genesis.channel.clone()];
        for c in &cfg.channels {
            channels.push(Genesis::load(&c.genesis)?.channel);
        }
        endpoints.push((
            cfg.rpc.listen,
            cfg.p2p.listen.clone(),
            node_dir.join("node.log"),
            channels,
        ));
    }
    if let Some(eth) = hub.as_ref().and_then(|h| h.eth.as_ref()) {
        let (bin, mut args) = crate::commands::hub_eth::anvil_command(eth)?;
        args.extend(crate::commands::hub_eth::anvil_state_args(
            &dir.join("eth/state.json"),
        ));
        let log_path = dir.join("eth/anvil.log");
        std::fs::create_dir_all(dir.join("eth"))?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)?;
        children.push(
            tokio::process::Command::new(&bin)
                .args(&args)
                .stdout(log.try_clone()?)
                .stderr(log)
                .kill_on_drop(true)
                .spawn()
                .map_err(|e| NodeError::Config(format!("cannot start {}: {e}", bin.display())))?,
        );
        names.push("ethereum (anvil)".into());
        logs.push(log_path);
    }
    if let Some(hub) = &hub {
        for c in &hub.chains {
            let chain_dir = c.config.parent().unwrap_or(dir);
            let log_path = chain_dir.join("node.log");
            let log = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log_path)?;
            children.push(
                tokio::process::Command::new(&exe)
                    .arg("node")
                    .arg("--config")
                    .arg(&c.config)
                    .stdout(log.try_clone()?)
                    .stderr(log)
                    .kill_on_drop(true)
                    .spawn()?,
            );
            names.push(format!("chain {}", c.name));
            logs.push(log_path);
        }
        let mut urls: Vec<String> = endpoints
            .iter()
            .map(|(rpc, _, _, _)| format!("http://{rpc}/api/v3/{}", genesis.channel))
            .collect();
        urls.extend(hub.chains.iter().map(|c| c.url()));
        urls.extend(hub.notary_urls());
        if let Some(e) = &hub.eth {
            // Anvil answers JSON-RPC at its root.
            let rpc = nexus_client::rpc::RpcClient::new(e.url());
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
            while rpc
                .call("eth_blockNumber", serde_json::Value::Null)
                .await
                .is_err()
            {
                if std::time::Instant::now() > deadline {
                    return Err(NodeError::Config(format!(
                        "anvil at {} did not answer within 30 s",
                        e.url()
                    )));
                }
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
        for u in &urls {
            nexus_client::rpc::RpcClient::new(u.clone())
                .wait_ready(std::time::Duration::from_secs(60))
                .await
                .map_err(|e| NodeError::Config(format!("{u} did not answer within 60 s: {e}")))?;
        }
        crate::commands::hub::connect(dir, hub).await?;
        let portal_dir = hub.portal_config.parent().unwrap_or(dir);
        let log_path = portal_dir.join("portal.log");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)?;
        // The portal runs in its own folder: hand it the config's absolute path (a relative
        // `--dir`, the default `.devnet`, would otherwise be resolved from inside that folder).
        let portal_config = std::fs::canonicalize(&hub.portal_config)?;
        children.push(
            tokio::process::Command::new(exe.with_file_name("portal"))
                .arg("--config")
                .arg(&portal_config)
                .current_dir(portal_dir)
                .stdout(log.try_clone()?)
                .stderr(log)
                .kill_on_drop(true)
                .spawn()
                .map_err(|e| {
                    NodeError::Config(format!(
                        "cannot start {}: {e} (build it with `cargo build -p nexus-portal`)",
                        exe.with_file_name("portal").display()
                    ))
                })?,
        );
        names.push("portal".into());
        logs.push(log_path);
        if hub.nexus.is_some() {
            println!("Seeding the DEX pool (100 ETH from Ethereum, 10,000 ICX) through the hub...");
            if let Err(e) = crate::commands::dex::seed(dir, hub, 10_000 * ICX, 100 * ICX).await {
                eprintln!("warning: the DEX pool was not seeded: {e:#}");
            }
        }
    }
    let ch = &genesis.channel;
    let god = genesis
        .accounts
        .first()
        .map(|(a, _)| a.to_string())
        .unwrap_or_default();
    let god_pw = std::fs::read_to_string(dir.join("keystore/god.password")).unwrap_or_default();
    let token = genesis
        .tokens
        .first()
        .map(|t| t.address.to_string())
        .unwrap_or_default();
    println!(
        "Nexus devnet is running: {} validators (LFT over libp2p), nid {}",
        endpoints.len(),
        format_int(genesis.nid)
    );
    for (i, (rpc, p2p, log, names)) in endpoints.iter().enumerate() {
        for c in names {
            println!("  validator {i}  channel {c:<12} JSON-RPC http://{rpc}/api/v3/{c}  ws://{rpc}/api/v3/{c}/block");
        }
        println!(
            "               metrics http://{rpc}/metrics  p2p {p2p}  log {}",
            log.display()
        );
    }
    println!("  funded account     {god}");
    println!(
        "    keystore         {}   password {}",
        dir.join("keystore/god.json").display(),
        god_pw.trim()
    );
    println!("  IRC-2 token SCORE  {token} (NXT, all held by the funded account)");
    if let Some((rpc, _, _, _)) = endpoints.first() {
        let exe = std::env::current_exe()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| "nexus".into());
        println!("Try:  {exe} wallet balance {god} --rpc http://{rpc}/api/v3/{ch}");
    }
    if let Some(hub) = &hub {
        println!("BTP hub (DESIGN.md section 5): chain A -> notary-a -> chain B, and back through notary-b");
        for c in &hub.chains {
            println!(
                "  chain {}  network {}  nid {}  JSON-RPC {}  BMC {}  log {}",
                c.name,
                c.network,
                format_int(c.nid),
                c.url(),
                nexus_btp::BMC_ADDRESS,
                c.config.parent().unwrap_or(dir).join("node.log").display()
            );
            println!(
                "    notary channel {} (nid {}) on every validator, notary SCORE {}",
                c.notary_channel,
                format_int(c.notary_nid),
                nexus_btp::NOTARY_ADDRESS
            );
        }
        println!(
            "  portal   metrics http://{}/metrics  health http://{}/health  config {}",
            hub.portal_listen,
            hub.portal_listen,
            hub.portal_config.display()
        );
        println!("  relayer  {} (funded on every chain)", hub.relayer);
        if let Some(e) = &hub.eth {
            let c = crate::commands::hub_eth::contracts(dir);
            println!(
                "  ethereum (anvil)  network {}  chain id {}  JSON-RPC {}  log {}",
                e.network,
                e.chain_id,
                e.url(),
                dir.join("eth/anvil.log").display()
            );
            if let Some(c) = &c {
                println!(
                    "    BMC {}  verifier {}  token service {}",
                    c.bmc, c.verifier, c.token
                );
            }
            println!(
                "    notary channel {} (nid {}) on every validator; accounts: anvil's dev accounts (mnemonic \"test test ... junk\")",
                e.notary_channel,
                format_int(e.notary_nid)
            );
            if let (Some(n), Some(reserve)) =
                (&hub.nexus, c.as_ref().and_then(|c| c.dex_reserve.clone()))
            {
                let exe = std::env::current_exe()
                    .map(|p| p.display().to_string())
                    .unwrap_or_else(|_| "nexus".into());
                println!(
                    "  DEX  converter SCORE {} on {} (network {}, notary channel {}); Ether reserve {} on Ethereum",
                    nexus_dex::score::CONVERTER_ADDRESS,
                    n.url(),
                    n.network,
                    n.notary_channel,
                    reserve
                );
                println!("      page http://{}/dex", hub.nexus_rpc);
                println!("Try:  {exe} dex price --rpc {}", n.url());
                println!(
                    "      {exe} dex swap --from ETH --amount 1 --to {god} --eth-rpc {} --reserve {reserve} --eth-key {} --rpc {}",
                    e.url(),
                    crate::commands::hub_eth::USER_KEY,
                    n.url()
                );
                println!(
                    "      {exe} dex swap --from ICX --amount 50 --to 0x15d34aaf54267db7d7c367839aaf71a00a2c6a65 --keystore {} --password {} --rpc {}",
                    dir.join("keystore/god.json").display(),
                    god_pw.trim(),
                    n.url()
                );
            }
            if let (Some(c), Some(a)) = (&c, hub.chains.first()) {
                let exe = std::env::current_exe()
                    .map(|p| p.display().to_string())
                    .unwrap_or_else(|_| "nexus".into());
                println!(
                    "Try:  {exe} wallet eth-transfer --eth-rpc {} --token-service {} --eth-key {} --to {}/{god} --value 1",
                    e.url(),
                    c.token,
                    crate::commands::hub_eth::USER_KEY,
                    a.network
                );
                println!(
                    "      {exe} wallet call --to {} --method balanceOf --params '{{\"_token\":\"btp-{}-ETH\",\"_owner\":\"{god}\"}}' --rpc {}",
                    nexus_btp::BMC_ADDRESS,
                    e.network,
                    a.url()
                );
            }
        }
        if let [a, b] = &hub.chains[..] {
            let exe = std::env::current_exe()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|_| "nexus".into());
            println!(
                "Try:  {exe} wallet btp-transfer --rpc {} --keystore {} --password {} --to {}/{} --value 5",
                a.url(),
                dir.join("keystore/god.json").display(),
                god_pw.trim(),
                b.network,
                god
            );
            println!(
                "      {exe} wallet btp-status <sn it printed> --rpc {} --notary {}",
                a.url(),
                hub.notary_url(a)
            );
            println!(
                "      {exe} wallet call --to {} --method balanceOf --params '{{\"_token\":\"btp-{}-ICX\",\"_owner\":\"{god}\"}}' --rpc {}",
                nexus_btp::BMC_ADDRESS,
                a.network,
                b.url()
            );
        }
    }
    println!("Stop with Ctrl-C; start again with the same command to continue the chain.");
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut watch = tokio::time::interval(std::time::Duration::from_millis(500));
    let mut reported = vec![false; children.len()];
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = term.recv() => break,
            _ = watch.tick() => {
                // A validator that exits is named, with the end of its log (the reason).
                for (i, c) in children.iter_mut().enumerate() {
                    if reported[i] {
                        continue;
                    }
                    if let Ok(Some(status)) = c.try_wait() {
                        reported[i] = true;
                        eprintln!(
                            "{} stopped ({status}); the end of {}:\n{}",
                            names[i],
                            logs[i].display(),
                            log_tail(&logs[i], 8)
                        );
                    }
                }
            }
        }
    }
    for mut c in children {
        let _ = c.kill().await;
    }
    Ok(())
}

/// The last `n` lines of a log file.
fn log_tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..]
        .iter()
        .map(|l| format!("    {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}
