//! The BTP hub of a devnet: two community chains (`chain-a`, `chain-b`: one validator each, a
//! BMC, their own nids), a notary channel per chain on every Nexus validator (`notary-a`,
//! `notary-b`), and a portal config that relays A -> notary-a -> B and B -> notary-b -> A.
//!
//! [`init_hub`] writes the folders; [`connect`] runs once the processes answer: the admin
//! registers each chain's light client on its notary channel (`setSource`) and each notary
//! channel's verifier on the other chain's BMC (`addVerifier`), from headers read at that moment,
//! and writes the portal's start heights.

use crate::commands::devnet::{write_key_pair, NetworkOutput, ICX};
use crate::config::{ChannelConfig, NodeConfig};
use crate::error::NodeError;
use crate::ledger::genesis::{Genesis, GenesisAccount, GenesisBtp, GenesisDex};
use nexus_client::rpc::RpcClient;
use nexus_proto::value::{format_int, parse_bytes};
use nexus_proto::{Address, KeyPair, Transaction, TxData};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// A community chain of the hub.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HubChain {
    /// `a` or `b`.
    pub name: String,
    /// BTP network address (`0x101.loop`).
    pub network: String,
    /// Its nid.
    pub nid: u64,
    /// Its channel.
    pub channel: String,
    /// Its node's config.
    pub config: PathBuf,
    /// Its node's JSON-RPC address.
    pub rpc: SocketAddr,
    /// Its notary channel on Nexus.
    pub notary_channel: String,
    /// The notary channel's nid.
    pub notary_nid: u64,
}

impl HubChain {
    /// The chain's channel URL.
    pub fn url(&self) -> String {
        format!("http://{}/api/v3/{}", self.rpc, self.channel)
    }
}

/// What `init_hub` made (also stored as `hub.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HubLayout {
    /// The two community chains.
    pub chains: Vec<HubChain>,
    /// JSON-RPC address of the Nexus validator the portal and the setup talk to.
    pub nexus_rpc: SocketAddr,
    /// JSON-RPC addresses of the other validators (the portal's backups).
    #[serde(default)]
    pub nexus_backups: Vec<SocketAddr>,
    /// The portal's config.
    pub portal_config: PathBuf,
    /// The relayer account (funded on every chain).
    pub relayer: String,
    /// The admin (the devnet's funded account) keystore and password.
    pub admin_keystore: PathBuf,
    /// The admin's password.
    pub admin_password: String,
    /// `/metrics` and `/health` of the portal.
    pub portal_listen: SocketAddr,
    /// The Ethereum dev chain, when the hub has one.
    #[serde(default)]
    pub eth: Option<crate::commands::hub_eth::EthLayout>,
    /// Nexus' public channel as a BTP endpoint (with Ethereum: the DEX's converter trades with
    /// the reserve there): its messages are notarized by `notary-nexus`, run by every validator.
    #[serde(default)]
    pub nexus: Option<HubChain>,
}

impl HubLayout {
    /// Reads `hub.json` of a devnet folder, if the devnet has a hub.
    pub fn load(dir: &Path) -> Result<Option<Self>, NodeError> {
        match std::fs::read(dir.join("hub.json")) {
            Ok(b) => serde_json::from_slice(&b)
                .map(Some)
                .map_err(|e| NodeError::Config(format!("hub.json: {e}"))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// The notary channel URL of a chain on the Nexus validator used for setup.
    pub fn notary_url(&self, c: &HubChain) -> String {
        format!("http://{}/api/v3/{}", self.nexus_rpc, c.notary_channel)
    }

    /// Every notary channel's URL on the validator used for setup.
    pub fn notary_urls(&self) -> Vec<String> {
        let mut urls: Vec<String> = self
            .chains
            .iter()
            .chain(self.nexus.iter())
            .map(|c| self.notary_url(c))
            .collect();
        if let Some(e) = &self.eth {
            urls.push(format!(
                "http://{}/api/v3/{}",
                self.nexus_rpc, e.notary_channel
            ));
        }
        urls
    }

    /// The same channel on the other validators.
    pub fn notary_backups(&self, c: &HubChain) -> Vec<String> {
        self.nexus_backups
            .iter()
            .map(|a| format!("http://{a}/api/v3/{}", c.notary_channel))
            .collect()
    }
}

/// Ports of the hub's own processes.
#[derive(Debug, Clone, Copy)]
pub struct HubPorts {
    /// JSON-RPC of chain A and chain B.
    pub chains: [u16; 2],
    /// The portal's metrics.
    pub portal: u16,
    /// Anvil's JSON-RPC, when the hub includes an Ethereum dev chain.
    pub eth: Option<u16>,
}

fn write_json(path: &Path, v: &impl Serialize) -> Result<(), NodeError> {
    let text = serde_json::to_string_pretty(v).map_err(|e| NodeError::Config(e.to_string()))?;
    std::fs::write(path, text)?;
    Ok(())
}

/// Adds the hub to a Nexus network folder made by `init_network_on`: chain A (nid 0x101,
/// network `0x101.loop`) and chain B (0x102), notary channels with nids 0x1001 and 0x1002.
pub fn init_hub(dir: &Path, net: &NetworkOutput, ports: HubPorts) -> Result<HubLayout, NodeError> {
    // With Ethereum: the notary channel of the Ethereum chain.
    let eth = ports.eth.map(|port| crate::commands::hub_eth::EthLayout {
        network: "0x539.eth".into(),
        chain_id: 0x539,
        rpc: SocketAddr::from(([127, 0, 0, 1], port)),
        block_time_s: 1,
        confirmations: 2,
        notary_channel: "notary-eth".into(),
        notary_nid: 0x1539,
    });
    // Nexus' public channel gets a BMC too (network 0x<nid>.nexus), for services on Nexus;
    // with Ethereum, the DEX's converter (equal weights, a 0.3% fee) is one of them.
    let parsed = Genesis::load(&dir.join("genesis.json"))?;
    let mut public = parsed.source;
    let nexus_network = format!("{:#x}.nexus", parsed.nid);
    public.btp = Some(GenesisBtp {
        network: nexus_network.clone(),
        notary: false,
    });
    public.dex = eth.as_ref().map(|e| GenesisDex {
        reserve_network: e.network.clone(),
        icx_weight: format_int(500_000u32),
        eth_weight: format_int(500_000u32),
        fee: format_int(3_000u32),
    });
    let keys = dir.join("keystore");
    let (relayer, relayer_keystore, relayer_password) = write_key_pair(&keys, "relayer")?;
    let relayer_account = GenesisAccount {
        name: "relayer".into(),
        address: relayer.address().to_string(),
        balance: format_int(1_000_000 * ICX),
    };
    {
        // The relayer pays for relays into the public channel too (Ethereum's messages to the
        // DEX); the other channels add it from the template below.
        let mut written = public.clone();
        if eth.is_some() {
            written.accounts.push(relayer_account.clone());
        }
        written.clone().parse()?;
        write_json(&dir.join("genesis.json"), &written)?;
    }
    public.btp = None;
    public.dex = None;
    let nexus = eth.as_ref().map(|_| HubChain {
        name: "nexus".into(),
        network: nexus_network.clone(),
        nid: parsed.nid,
        channel: public.channel.clone(),
        config: net.nodes[0].config.clone(),
        rpc: net.nodes[0].rpc,
        notary_channel: "notary-nexus".into(),
        notary_nid: 0x1100,
    });
    let mut chains = Vec::new();
    for (i, name) in ["a", "b"].into_iter().enumerate() {
        let nid = 0x101 + i as u64;
        let network = format!("{nid:#x}.loop");
        let notary_nid = 0x1001 + i as u64;
        let notary_channel = format!("notary-{name}");
        // The notary channel: every Nexus validator, the notary SCORE for the chain's network.
        let mut notary = public.clone();
        notary.nid = format_int(notary_nid);
        notary.channel = notary_channel.clone();
        notary.tokens = vec![];
        notary.accounts.push(relayer_account.clone());
        notary.message = format!("Nexus notary channel of {network}");
        notary.btp = Some(GenesisBtp {
            network: network.clone(),
            notary: true,
        });
        notary.clone().parse()?;
        write_json(&dir.join(format!("{notary_channel}.json")), &notary)?;
        // The community chain: its own validator, a BMC.
        let chain_dir = dir.join(format!("chain-{name}"));
        let (validator, _, _) = write_key_pair(&chain_dir.join("keystore"), "validator")?;
        let mut g = public.clone();
        g.nid = format_int(nid);
        g.channel = format!("loop-{name}");
        g.validators = vec![validator.address().to_string()];
        g.tokens = vec![];
        g.accounts.push(relayer_account.clone());
        g.message = format!("community chain {name} ({network})");
        g.btp = Some(GenesisBtp {
            network: network.clone(),
            notary: false,
        });
        g.clone().parse()?;
        write_json(&chain_dir.join("genesis.json"), &g)?;
        let mut cfg = NodeConfig::default();
        cfg.rpc.listen = SocketAddr::from(([127, 0, 0, 1], ports.chains[i]));
        cfg.block.empty_block_interval_ms = 500;
        cfg.validate()?;
        let config = chain_dir.join("config.toml");
        std::fs::write(
            &config,
            format!(
                "# Community chain {name} ({network}); relative paths are from this folder.\n{}",
                crate::config::to_toml(&cfg)?
            ),
        )?;
        chains.push(HubChain {
            name: name.into(),
            network,
            nid,
            channel: g.channel,
            config,
            rpc: cfg.rpc.listen,
            notary_channel,
            notary_nid,
        });
    }
    // The notary channels of Ethereum and of Nexus' own public channel.
    let others = eth
        .iter()
        .map(|e| (e.notary_nid, e.notary_channel.clone(), e.network.clone()))
        .chain(
            nexus
                .iter()
                .map(|n| (n.notary_nid, n.notary_channel.clone(), n.network.clone())),
        );
    for (nid, channel, network) in others {
        let mut notary = public.clone();
        notary.nid = format_int(nid);
        notary.channel = channel.clone();
        notary.tokens = vec![];
        notary.accounts.push(relayer_account.clone());
        notary.message = format!("Nexus notary channel of {network}");
        notary.btp = Some(GenesisBtp {
            network,
            notary: true,
        });
        notary.clone().parse()?;
        write_json(&dir.join(format!("{channel}.json")), &notary)?;
    }
    let notary_channels: Vec<String> = chains
        .iter()
        .map(|c| c.notary_channel.clone())
        .chain(eth.iter().map(|e| e.notary_channel.clone()))
        .chain(nexus.iter().map(|n| n.notary_channel.clone()))
        .collect();
    // Every Nexus validator runs every notary channel.
    for (i, node) in net.nodes.iter().enumerate() {
        let text = std::fs::read_to_string(&node.config)?;
        let (header, body) = text.split_once('\n').unwrap_or(("", &text));
        let mut cfg: NodeConfig =
            toml::from_str(body).map_err(|e| NodeError::Config(e.to_string()))?;
        if let Some(e) = &eth {
            cfg.eth_endpoints.insert(e.notary_channel.clone(), e.url());
        }
        for c in &notary_channels {
            cfg.channels.push(ChannelConfig {
                genesis: PathBuf::from(format!("../{c}.json")),
                peers: net
                    .nodes
                    .iter()
                    .enumerate()
                    .filter(|(j, _)| *j != i)
                    .map(|(_, n)| n.p2p.clone())
                    .collect(),
            });
        }
        std::fs::write(
            &node.config,
            format!("{header}\n{}", crate::config::to_toml(&cfg)?),
        )?;
    }
    let portal_dir = dir.join("portal");
    std::fs::create_dir_all(&portal_dir)?;
    let layout = HubLayout {
        chains,
        nexus_rpc: net.nodes[0].rpc,
        nexus_backups: net.nodes[1..].iter().map(|n| n.rpc).collect(),
        portal_config: portal_dir.join("portal.toml"),
        relayer: relayer.address().to_string(),
        admin_keystore: net.funded_keystore.clone(),
        admin_password: net.funded_password.clone(),
        portal_listen: SocketAddr::from(([127, 0, 0, 1], ports.portal)),
        eth,
        nexus,
    };
    std::fs::copy(&relayer_keystore, portal_dir.join("relayer.json"))?;
    crate::keystore::write_private(
        &portal_dir.join("relayer.password"),
        format!("{relayer_password}\n").as_bytes(),
    )?;
    write_json(&dir.join("hub.json"), &layout)?;
    Ok(layout)
}

pub(crate) async fn call_tx(
    rpc: &RpcClient,
    key: &KeyPair,
    nid: u64,
    to: Address,
    method: &str,
    params: Value,
) -> Result<(), NodeError> {
    let Value::Object(params) = params else {
        return Err(NodeError::Config("params must be an object".into()));
    };
    let tx = Transaction {
        from: key.address(),
        to,
        value: 0,
        step_limit: 2_000_000_000,
        timestamp: crate::pool::admission::now_us(),
        nid,
        nonce: None,
        data: TxData::Call {
            method: method.into(),
            params: Map::from_iter(params),
        },
    };
    let st = tx.sign(key).map_err(|e| NodeError::Config(e.to_string()))?;
    let r = rpc
        .call_with(
            rpc.url(),
            "icx_sendTransactionAndWait",
            Value::Object(st.raw),
            &[("Icon-Options", "timeout=30000")],
        )
        .await
        .map_err(|e| NodeError::Config(format!("{method} on {}: {e}", rpc.url())))?;
    if r["status"] != "0x1" {
        return Err(NodeError::Config(format!(
            "{method} on {} failed: {}",
            rpc.url(),
            r["failure"]
        )));
    }
    Ok(())
}

/// A final header of a channel and the validator set that votes on the next one, as hex:
/// what a light client is set up with.
pub(crate) async fn checkpoint(rpc: &RpcClient) -> Result<(u64, String, String), NodeError> {
    let err = |e: nexus_client::rpc::ClientError| NodeError::Config(format!("{}: {e}", rpc.url()));
    let last = rpc
        .call("icx_getLastBlock", Value::Null)
        .await
        .map_err(err)?;
    let height = last["height"]
        .as_u64()
        .ok_or_else(|| NodeError::Config(format!("{}: no height", rpc.url())))?;
    let header = rpc
        .call(
            "icx_getBlockHeaderByHeight",
            json!({"height": format_int(height)}),
        )
        .await
        .map_err(err)?;
    let raw = parse_bytes("header", header.as_str().unwrap_or(""), 1 << 20)
        .map_err(|e| NodeError::Config(e.to_string()))?;
    let h = nexus_proto::block::BlockHeader::from_rlp(&raw)
        .map_err(|e| NodeError::Config(e.to_string()))?;
    let set = rpc
        .call(
            "icx_getDataByHash",
            json!({"hash": h.next_validators_hash.to_string()}),
        )
        .await
        .map_err(err)?;
    Ok((
        height,
        header.as_str().unwrap_or("").to_string(),
        set.as_str().unwrap_or("").to_string(),
    ))
}

/// Registers the light clients and verifiers (once; marked by `hub-connected.json`) and
/// writes the portal config.
pub async fn connect(dir: &Path, hub: &HubLayout) -> Result<(), NodeError> {
    let marker = dir.join("hub-connected.json");
    if marker.exists() {
        return Ok(());
    }
    let admin = crate::keystore::load(&hub.admin_keystore, &hub.admin_password)?;
    let mut inbound = Vec::new();
    let mut outbound = Vec::new();
    for c in hub.chains.iter().chain(hub.nexus.iter()) {
        let chain = RpcClient::new(c.url());
        let notary = RpcClient::new(hub.notary_url(c));
        let (h, header, set) = checkpoint(&chain).await?;
        call_tx(
            &notary,
            &admin,
            c.notary_nid,
            nexus_btp::NOTARY_ADDRESS,
            "setSource",
            json!({"_network": c.network, "_nid": format_int(c.nid), "_channel": c.channel,
                   "_checkpoint": header, "_validators": set,
                   "_emitter": nexus_btp::BMC_ADDRESS.to_string()}),
        )
        .await?;
        inbound.push(json!({"name": format!("{}-in", c.name), "source": c.url(),
                            "notary": hub.notary_url(c), "notary_backups": hub.notary_backups(c),
                            "start_height": h}));
    }
    for c in &hub.chains {
        // Messages from c reach every other chain through c's notary channel.
        for d in hub.chains.iter().filter(|d| d.name != c.name) {
            let notary = RpcClient::new(hub.notary_url(c));
            let (h, header, set) = checkpoint(&notary).await?;
            call_tx(
                &RpcClient::new(d.url()),
                &admin,
                d.nid,
                nexus_btp::BMC_ADDRESS,
                "addVerifier",
                json!({"_src": c.network, "_nid": format_int(c.notary_nid),
                       "_channel": c.notary_channel, "_checkpoint": header,
                       "_validators": set,
                       "_emitter": nexus_btp::NOTARY_ADDRESS.to_string()}),
            )
            .await?;
            outbound.push(json!({"name": format!("{}-to-{}", c.name, d.name),
                                 "notary": hub.notary_url(c), "notary_backups": hub.notary_backups(c),
                                 "destination": d.url(), "start_height": h}));
        }
    }
    let (mut eth_inbound, mut eth_outbound) = (Vec::new(), Vec::new());
    if let Some(e) = &hub.eth {
        let links = crate::commands::hub_eth::connect(dir, hub, e).await?;
        eth_inbound = links.eth_inbound;
        eth_outbound = links.eth_outbound;
        outbound.extend(links.outbound);
    }
    let portal = json!({
        "keystore": "relayer.json",
        "keystore_password_file": "relayer.password",
        "state_dir": "state",
        "listen": hub.portal_listen.to_string(),
        "inbound": inbound,
        "outbound": outbound,
        "eth_inbound": eth_inbound,
        "eth_outbound": eth_outbound,
    });
    let text = toml::to_string_pretty(&portal).map_err(|e| NodeError::Config(e.to_string()))?;
    std::fs::write(
        &hub.portal_config,
        format!("# The devnet's portal; relative paths are from this folder.\n{text}"),
    )?;
    write_json(&marker, &json!({"connected": true}))?;
    Ok(())
}
