//! A BTP hub of real processes for the end-to-end tests: four Nexus validators running the
//! notary channels, chains A and B (one validator each, a BMC), and portals, laid out by
//! `nexus::commands::hub` exactly as `nexus devnet` does it, with short timers.

use crate::{answers, free_ports, nexus_bin, Cluster};
use nexus::client::RpcClient;
use nexus::commands::hub::{self, HubChain, HubLayout, HubPorts};
use nexus_proto::value::{format_int, parse_u128};
use nexus_proto::{Address, KeyPair, Transaction, TxData};
use serde_json::{json, Map, Value};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// ICX in loop.
pub const ICX: u128 = 1_000_000_000_000_000_000;

/// The running hub.
pub struct Hub {
    /// The Nexus validators.
    pub nexus: Cluster,
    /// Chains, notary channels, portal config.
    pub layout: HubLayout,
    chains: Vec<Option<Child>>,
    portals: Vec<Option<Child>>,
    /// The Ethereum dev chain, when started with one.
    pub anvil: Option<crate::eth::Anvil>,
}

impl Hub {
    /// Starts the validators and both chains, registers the light clients and verifiers, and
    /// starts one portal.
    pub async fn start() -> Hub {
        Self::start_with(false).await
    }

    /// As [`Hub::start`], with an Ethereum dev chain (anvil, the contracts deployed, the
    /// `notary-eth` channel and the portal's Ethereum links) when `eth`.
    pub async fn start_with(eth: bool) -> Hub {
        let nexus = Cluster::init(4, None);
        let p = free_ports(4);
        let layout = hub::init_hub(
            nexus.dir.path(),
            &nexus.init,
            HubPorts {
                chains: [p[0], p[1]],
                portal: p[2],
                eth: eth.then_some(p[3]),
            },
        )
        .expect("init hub");
        let anvil = layout
            .eth
            .as_ref()
            .map(|e| crate::eth::Anvil::start_at(e.rpc.port(), e.block_time_s));
        for c in &layout.chains {
            let cfg = std::fs::read_to_string(&c.config).expect("chain config");
            std::fs::write(
                &c.config,
                cfg.replace(
                    "empty_block_interval_ms = 500",
                    "empty_block_interval_ms = 200",
                ),
            )
            .expect("chain config");
        }
        let mut h = Hub {
            nexus,
            layout,
            chains: vec![None, None],
            portals: vec![],
            anvil,
        };
        for i in 0..4 {
            h.nexus.spawn(i);
        }
        for i in 0..2 {
            h.spawn_chain(i);
        }
        for url in h.layout.notary_urls() {
            let deadline = Instant::now() + Duration::from_secs(60);
            while !answers(&url) {
                assert!(Instant::now() < deadline, "{url} does not answer");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        hub::connect(h.nexus.dir.path(), &h.layout)
            .await
            .expect("register light clients and verifiers");
        h.spawn_portal(0);
        h
    }

    fn chain_log(&self, i: usize) -> PathBuf {
        self.layout.chains[i]
            .config
            .parent()
            .expect("chain dir")
            .join("node.log")
    }

    /// Starts chain `i` (0: A, 1: B) and waits until it answers.
    pub fn spawn_chain(&mut self, i: usize) {
        let c = &self.layout.chains[i];
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.chain_log(i))
            .expect("log");
        let child = Command::new(nexus_bin())
            .args(["node", "--config"])
            .arg(&c.config)
            .env(
                "RUST_LOG",
                std::env::var("NEXUS_TEST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn chain node");
        self.chains[i] = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        while !answers(&c.url()) {
            // A node that exited (a port taken meanwhile, a bad config) or never answers is
            // reported with the end of its log, at once rather than after the deadline.
            let exited = self.chains[i]
                .as_mut()
                .and_then(|ch| ch.try_wait().ok().flatten());
            if exited.is_some() || Instant::now() >= deadline {
                let log = std::fs::read_to_string(self.chain_log(i)).unwrap_or_default();
                panic!(
                    "chain {} does not answer at {} ({}); its log ends:\n{}",
                    c.name,
                    c.url(),
                    exited.map_or("still running".to_string(), |s| format!("exited: {s}")),
                    tail(&log, 30)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The portal folder (keystore, configs, logs, progress).
    pub fn portal_dir(&self) -> PathBuf {
        self.layout
            .portal_config
            .parent()
            .expect("portal dir")
            .to_path_buf()
    }

    /// Starts portal `i` (0 uses the devnet's config; others a copy with their own progress
    /// folder and metrics port, relaying the same links).
    pub fn spawn_portal(&mut self, i: usize) {
        let dir = self.portal_dir();
        let config = if i == 0 {
            self.layout.portal_config.clone()
        } else {
            let port = free_ports(1)[0];
            let text = std::fs::read_to_string(&self.layout.portal_config)
                .expect("portal config")
                .replace(
                    "state_dir = \"state\"",
                    &format!("state_dir = \"state-{i}\""),
                )
                .replace(
                    &format!("listen = \"{}\"", self.layout.portal_listen),
                    &format!("listen = \"127.0.0.1:{port}\""),
                );
            let path = dir.join(format!("portal-{i}.toml"));
            std::fs::write(&path, text).expect("portal config");
            path
        };
        self.spawn_portal_with(i, &config);
    }

    /// Starts portal `i` with its own config file (relative paths in it are from the portal
    /// folder, where the relayer's keystore is).
    pub fn spawn_portal_with(&mut self, i: usize, config: &std::path::Path) {
        let dir = self.portal_dir();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join(format!("portal-{i}.log")))
            .expect("log");
        let child = Command::new(nexus_bin().with_file_name("portal"))
            .arg("--config")
            .arg(config)
            .current_dir(&dir)
            .env("RUST_LOG", "info,nexus_portal=debug")
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn portal (cargo build -p nexus-portal)");
        while self.portals.len() <= i {
            self.portals.push(None);
        }
        self.portals[i] = Some(child);
    }

    /// SIGKILLs portal `i`.
    pub fn kill_portal(&mut self, i: usize) {
        if let Some(mut c) = self.portals.get_mut(i).and_then(Option::take) {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Portal `i`'s log.
    pub fn portal_log(&self, i: usize) -> String {
        std::fs::read_to_string(self.portal_dir().join(format!("portal-{i}.log")))
            .unwrap_or_default()
    }

    /// Chain `i`.
    pub fn chain(&self, i: usize) -> &HubChain {
        &self.layout.chains[i]
    }

    /// A client of chain `i`.
    pub fn rpc(&self, i: usize) -> RpcClient {
        RpcClient::new(self.chain(i).url())
    }

    /// The admin and funded account (also funded on both chains).
    pub fn funded_key(&self) -> KeyPair {
        self.nexus.funded_key()
    }

    /// Signs a BMC call on chain `i`, sends it and waits for its result.
    pub async fn bmc_call(
        &self,
        i: usize,
        key: &KeyPair,
        value: u128,
        method: &str,
        params: Value,
    ) -> Value {
        let Value::Object(params) = params else {
            panic!("params must be an object")
        };
        let tx = Transaction {
            from: key.address(),
            to: nexus_btp::BMC_ADDRESS,
            value,
            step_limit: 100_000_000,
            timestamp: crate::now_us(),
            nid: self.chain(i).nid,
            nonce: None,
            data: TxData::Call {
                method: method.into(),
                params: Map::from_iter(params),
            },
        }
        .sign(key)
        .expect("sign");
        let rpc = self.rpc(i);
        rpc.call_with(
            rpc.url(),
            "icx_sendTransactionAndWait",
            Value::Object(tx.raw),
            &[("Icon-Options", "timeout=30000")],
        )
        .await
        .unwrap_or_else(|e| panic!("{method} on chain {i}: {e}"))
    }

    /// A read-only BMC call on chain `i`.
    pub async fn bmc_query(&self, i: usize, method: &str, params: Value) -> Value {
        let mut data = json!({ "method": method });
        if params.as_object().is_some_and(|o| !o.is_empty()) {
            data["params"] = params;
        }
        self.rpc(i)
            .call(
                "icx_call",
                json!({"to": nexus_btp::BMC_ADDRESS.to_string(), "dataType": "call", "data": data}),
            )
            .await
            .unwrap_or_else(|e| panic!("{method} on chain {i}: {e}"))
    }

    /// Starts an ICX transfer from chain `from` to `to` on the other chain; returns its sn.
    pub async fn send_icx(&self, from: usize, key: &KeyPair, to: &Address, value: u128) -> u128 {
        let dst = &self.chain(1 - from).network;
        let r = self
            .bmc_call(
                from,
                key,
                value,
                "transfer",
                json!({"_to": format!("{dst}/{to}")}),
            )
            .await;
        assert_eq!(r["status"], "0x1", "transfer: {r}");
        parse_u128(
            "sn",
            r["eventLogs"]
                .as_array()
                .and_then(|l| {
                    l.iter()
                        .find(|e| e["indexed"][0] == nexus_btp::token::TRANSFER_START_SIG)
                })
                .map(|e| e["indexed"][3].as_str().unwrap_or(""))
                .unwrap_or(""),
        )
        .expect("sn")
    }

    /// The status of message `sn` sent from chain `i`.
    pub async fn status(&self, i: usize, sn: u128) -> String {
        self.bmc_query(i, "getMessageStatus", json!({"_sn": format_int(sn)}))
            .await["status"]
            .as_str()
            .unwrap_or("none")
            .to_string()
    }

    /// Waits until message `sn` from chain `i` has `status` (60 s at most).
    pub async fn wait_status(&self, i: usize, sn: u128, status: &str) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let s = self.status(i, sn).await;
            if s == status {
                return;
            }
            if Instant::now() > deadline {
                let validators: String = (0..4)
                    .map(|v| format!("validator {v}:\n{}\n", tail(&self.nexus.log(v), 40)))
                    .collect();
                panic!(
                    "message {sn} from chain {i} is {s}, not {status}, after 60 s; portal log:\n{}\n{validators}",
                    tail(&self.portal_log(0), 30)
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// A wrapped balance on chain `i`.
    pub async fn wrapped(&self, i: usize, token: &str, owner: &Address) -> u128 {
        let v = self
            .bmc_query(
                i,
                "balanceOf",
                json!({"_token": token, "_owner": owner.to_string()}),
            )
            .await;
        parse_u128("balance", v.as_str().unwrap_or("")).expect("balance")
    }

    /// The wrapped supply of a token on chain `i`.
    pub async fn wrapped_supply(&self, i: usize, token: &str) -> u128 {
        let v = self
            .bmc_query(i, "totalWrapped", json!({"_token": token}))
            .await;
        parse_u128("supply", v.as_str().unwrap_or("")).expect("supply")
    }
}

/// The last `n` lines of a text.
pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

impl Drop for Hub {
    fn drop(&mut self) {
        for p in &mut self.portals {
            if let Some(mut c) = p.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
        for c in &mut self.chains {
            if let Some(mut c) = c.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
}
