//! Test harness: starts `nexus node` processes in temporary folders and talks to them over
//! JSON-RPC. The binary is found next to the test executable (`target/<profile>/nexus`) or at
//! `NEXUS_BIN`; ICON's Python SDK is run with `NEXUS_PYTHON` (set by `.ci/run`).

pub mod browser;
pub mod eth;

use nexus::client::RpcClient;
use nexus::commands::devnet::{init, InitOptions, InitOutput};
use nexus_proto::{Address, KeyPair, SignedTransaction, Transaction, TxData};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The network id every test network uses.
pub const NID: u64 = 3;

/// The `nexus` binary under test.
pub fn nexus_bin() -> PathBuf {
    if let Ok(p) = std::env::var("NEXUS_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("current_exe");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps/<test>");
    let bin = profile_dir.join("nexus");
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build -p nexus` first (or set NEXUS_BIN)",
        bin.display()
    );
    bin
}

/// The Python with `iconsdk` installed.
pub fn python() -> PathBuf {
    let p = std::env::var("NEXUS_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|_| repo_root().join(".venv/bin/python"));
    assert!(
        p.exists(),
        "{} is missing: run `./x setup` (or set NEXUS_PYTHON to a Python with iconsdk)",
        p.display()
    );
    p
}

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// One node process and its folder.
pub struct TestNode {
    /// The network folder (deleted on drop).
    pub dir: tempfile::TempDir,
    /// What `init` made (config, funded keystore, token).
    pub init: InitOutput,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    child: Option<Child>,
}

impl TestNode {
    /// Initializes a network folder with a fast empty-block interval and starts the node.
    pub fn start() -> Self {
        Self::start_with(|config| config)
    }

    /// [`TestNode::start`] with the node's config text passed through `edit` first.
    pub fn start_with(edit: impl FnOnce(String) -> String) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_ports(1)[0];
        let listen = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        let init = init(
            dir.path(),
            &InitOptions {
                nid: NID,
                listen,
                ..InitOptions::default()
            },
        )
        .expect("init");
        let cfg = std::fs::read_to_string(&init.config).expect("config");
        std::fs::write(
            &init.config,
            edit(cfg.replace(
                "empty_block_interval_ms = 1000",
                "empty_block_interval_ms = 200",
            )),
        )
        .expect("config");
        let mut n = TestNode {
            dir,
            init,
            base: format!("http://{listen}"),
            child: None,
        };
        n.spawn();
        n
    }

    /// Starts the process (again) on the same folder and waits until it answers.
    pub fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("node.log"))
            .expect("log");
        let child = Command::new(nexus_bin())
            .args(["node", "--config"])
            .arg(&self.init.config)
            .env(
                "RUST_LOG",
                std::env::var("NEXUS_TEST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn nexus node");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        let url = self.url();
        while Instant::now() < deadline {
            if answers(&url) {
                return;
            }
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                panic!("node exited with {status}; log:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("node did not answer within 60 s; log:\n{}", self.log());
    }

    /// SIGKILLs the process and waits for it.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// The node's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("node.log")).unwrap_or_default()
    }

    /// The channel endpoint.
    pub fn url(&self) -> String {
        format!("{}/api/v3/public", self.base)
    }

    /// A client of the channel endpoint.
    pub fn rpc(&self) -> RpcClient {
        RpcClient::new(self.url())
    }

    /// The funded account's key.
    pub fn funded_key(&self) -> KeyPair {
        nexus::keystore::load(&self.init.funded_keystore, &self.init.funded_password)
            .expect("funded keystore")
    }
}

impl Drop for TestNode {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// True when the node at `url` answers `icx_getLastBlock` (checked on a thread of its own, so
/// this works inside and outside a runtime).
pub fn answers(url: &str) -> bool {
    std::thread::scope(|s| {
        s.spawn(|| {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(RpcClient::new(url).call("icx_getLastBlock", Value::Null))
                .is_ok()
        })
        .join()
        .unwrap_or(false)
    })
}

/// Microseconds since the epoch.
pub fn now_us() -> u64 {
    nexus::pool::admission::now_us()
}

/// A signed ICX transfer.
pub fn transfer(from: &KeyPair, to: Address, value: u128, nonce: u128) -> SignedTransaction {
    transfer_on(NID, from, to, value, nonce)
}

/// A signed ICX transfer for network `nid` (the devnet's second channel has `NID + 1`).
pub fn transfer_on(
    nid: u64,
    from: &KeyPair,
    to: Address,
    value: u128,
    nonce: u128,
) -> SignedTransaction {
    Transaction {
        from: from.address(),
        to,
        value,
        step_limit: 100_000,
        timestamp: now_us(),
        nid,
        nonce: Some(nonce),
        data: TxData::None,
    }
    .sign(from)
    .expect("sign")
}

/// A balance as a number.
pub async fn balance(rpc: &RpcClient, a: &Address) -> u128 {
    let v = rpc
        .call("icx_getBalance", json!({ "address": a.to_string() }))
        .await
        .expect("balance");
    nexus_proto::value::parse_u128("balance", v.as_str().expect("string")).expect("T_INT")
}

/// The last block height.
pub async fn height(rpc: &RpcClient) -> u64 {
    rpc.call("icx_getLastBlock", Value::Null)
        .await
        .expect("last block")["height"]
        .as_u64()
        .expect("height")
}

/// Waits until the chain is at least `h` high.
pub async fn wait_height(rpc: &RpcClient, h: u64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while height(rpc).await < h {
        assert!(Instant::now() < deadline, "height {h} not reached in 30 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A network of validator processes made by `nexus::commands::devnet::init_network`.
pub struct Cluster {
    /// The network folder (deleted on drop).
    pub dir: tempfile::TempDir,
    /// What init made.
    pub init: nexus::commands::devnet::NetworkOutput,
    children: Vec<Option<Child>>,
}

/// Ports tests hand to the processes they start: below Linux's ephemeral range (32768-60999),
/// so no outgoing connection of a test running beside can take one between the check and the
/// process binding it. Ports picked by binding to port 0 come from that range, and a validator
/// in CI once failed to listen on its port, most likely for that reason. Picks are random, so a
/// port that a killed node will take again is rarely handed to another test meanwhile.
const TEST_PORTS: std::ops::Range<u16> = 20_000..32_000;

/// Ports this process picked, each with a lock on a file named after it in a folder shared by
/// all test processes; the kernel drops the locks when the process ends.
static RESERVED: std::sync::Mutex<Vec<nix::fcntl::Flock<std::fs::File>>> =
    std::sync::Mutex::new(Vec::new());

/// Claims `port` for this process among all test processes on the machine: two tests picking
/// the same free port before either bound it (CI saw a portal fail with "Address already in
/// use") cannot both get it.
fn reserve(port: u16) -> bool {
    use nix::fcntl::{Flock, FlockArg};
    let dir = std::env::temp_dir().join("nexus-test-ports");
    let _ = std::fs::create_dir_all(&dir);
    let Ok(file) = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join(port.to_string()))
    else {
        return false;
    };
    match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(lock) => {
            RESERVED
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(lock);
            true
        }
        Err(_) => false,
    }
}

/// `n` distinct ports free now, from a random place in [`TEST_PORTS`] (tests run in parallel
/// processes; each port is claimed with [`reserve`], then checked by binding it).
pub fn free_ports(n: usize) -> Vec<u16> {
    use rand::Rng;
    let span = TEST_PORTS.end - TEST_PORTS.start;
    let mut rng = rand::thread_rng();
    let mut out = Vec::with_capacity(n);
    let mut held = Vec::with_capacity(n);
    for _ in 0..span {
        if out.len() == n {
            break;
        }
        let port = TEST_PORTS.start + rng.gen_range(0..span);
        if out.contains(&port) || !reserve(port) {
            continue;
        }
        if let Ok(l) = std::net::TcpListener::bind(("127.0.0.1", port)) {
            held.push(l);
            out.push(port);
        }
    }
    assert_eq!(out.len(), n, "{n} free ports in {TEST_PORTS:?}");
    out
}

impl Cluster {
    /// Initializes `n` validators with short timers and starts them all.
    pub fn start(n: usize) -> Self {
        Self::start_with(n, None)
    }

    /// As [`Cluster::start`], with a second channel run by all validators but the last.
    pub fn start_with(n: usize, second_channel: Option<&str>) -> Self {
        let mut c = Self::init(n, second_channel);
        for i in 0..n {
            c.spawn(i);
        }
        c
    }

    /// Initializes `n` validators and starts all but the last, whose folder (config, keys)
    /// another program may use, such as the misbehaving validator of the adversarial tests.
    pub fn start_all_but_last(n: usize) -> Self {
        let mut c = Self::init(n, None);
        for i in 0..n - 1 {
            c.spawn(i);
        }
        c
    }

    /// Initializes `n` validators with short timers, none started.
    pub fn init(n: usize, second_channel: Option<&str>) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = free_ports(2 * n);
        let ports: Vec<(u16, u16)> = (0..n).map(|i| (p[2 * i], p[2 * i + 1])).collect();
        let opts = InitOptions {
            nid: NID,
            second_channel: second_channel.map(str::to_string),
            ..InitOptions::default()
        };
        let init = nexus::commands::devnet::init_network_on(dir.path(), &opts, &ports)
            .expect("init network");
        for node in &init.nodes {
            let cfg = std::fs::read_to_string(&node.config)
                .expect("config")
                .replace(
                    "empty_block_interval_ms = 1000",
                    "empty_block_interval_ms = 200",
                )
                .replace("round_timeout_ms = 3000", "round_timeout_ms = 1000")
                .replace("max_timeout_ms = 30000", "max_timeout_ms = 4000");
            std::fs::write(&node.config, cfg).expect("config");
        }
        Cluster {
            dir,
            init,
            children: (0..n).map(|_| None).collect(),
        }
    }

    /// The process id of validator `i`, while it runs.
    pub fn pid(&self, i: usize) -> Option<u32> {
        self.children[i].as_ref().map(Child::id)
    }

    /// Starts validator `i` (again) and waits until its RPC answers.
    pub fn spawn(&mut self, i: usize) {
        let node = &self.init.nodes[i];
        let log_path = node.config.parent().expect("node dir").join("node.log");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .expect("log");
        let child = Command::new(nexus_bin())
            .args(["node", "--config"])
            .arg(&node.config)
            .env(
                "RUST_LOG",
                std::env::var("NEXUS_TEST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn nexus node");
        self.children[i] = Some(child);
        let url = self.url(i);
        let deadline = Instant::now() + Duration::from_secs(60);
        while !answers(&url) {
            assert!(
                Instant::now() < deadline,
                "validator {i} did not answer; log:\n{}",
                std::fs::read_to_string(&log_path).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILLs validator `i`.
    pub fn kill9(&mut self, i: usize) {
        if let Some(mut c) = self.children[i].take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Validator `i`'s channel endpoint.
    pub fn url(&self, i: usize) -> String {
        format!("http://{}/api/v3/public", self.init.nodes[i].rpc)
    }

    /// A client of validator `i`.
    pub fn rpc(&self, i: usize) -> RpcClient {
        RpcClient::new(self.url(i))
    }

    /// A client of validator `i` for another channel.
    pub fn rpc_on(&self, i: usize, channel: &str) -> RpcClient {
        RpcClient::new(format!(
            "http://{}/api/v3/{channel}",
            self.init.nodes[i].rpc
        ))
    }

    /// The funded account's key.
    pub fn funded_key(&self) -> KeyPair {
        nexus::keystore::load(&self.init.funded_keystore, &self.init.funded_password)
            .expect("funded keystore")
    }

    /// Validator `i`'s log.
    pub fn log(&self, i: usize) -> String {
        std::fs::read_to_string(
            self.init.nodes[i]
                .config
                .parent()
                .expect("dir")
                .join("node.log"),
        )
        .unwrap_or_default()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for i in 0..self.children.len() {
            self.kill9(i);
        }
    }
}

/// Checks that every validator in `alive` has the same block at every height up to the
/// lowest head; returns that height.
pub async fn same_chain(c: &Cluster, alive: &[usize]) -> u64 {
    let mut lowest = u64::MAX;
    for i in alive {
        lowest = lowest.min(height(&c.rpc(*i)).await);
    }
    for h in 1..=lowest {
        let mut hashes = Vec::new();
        for i in alive {
            hashes.push(block_hash_at(&c.rpc(*i), h).await);
        }
        assert!(
            hashes.windows(2).all(|w| w[0] == w[1]),
            "validators disagree at height {h}: {hashes:?}"
        );
    }
    lowest
}

/// The hash of the block at `h` as validator's RPC reports it.
pub async fn block_hash_at(rpc: &RpcClient, h: u64) -> Option<String> {
    rpc.call("icx_getBlockByHeight", json!({"height": format!("{h:#x}")}))
        .await
        .ok()
        .and_then(|b| b["block_hash"].as_str().map(str::to_string))
}

impl Cluster {
    /// The libp2p peer id of validator `i`.
    pub fn peer_id(&self, i: usize) -> String {
        self.init.nodes[i]
            .p2p
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_string()
    }

    /// Makes validator `i` refuse the peers `others` (its deny file; reread as it runs).
    pub fn deny(&self, i: usize, others: &[usize]) {
        let ids: Vec<String> = others.iter().map(|j| self.peer_id(*j)).collect();
        let path = self.init.nodes[i]
            .config
            .parent()
            .expect("dir")
            .join("p2p.deny");
        std::fs::write(path, ids.join("\n")).expect("deny file");
    }

    /// Empties every deny file.
    pub fn heal(&self) {
        for n in &self.init.nodes {
            let _ = std::fs::remove_file(n.config.parent().expect("dir").join("p2p.deny"));
        }
    }

    /// Starts a node that is not in the channel's validator set, configured to dial the
    /// validators; returns its process and RPC endpoint.
    pub fn spawn_outsider(&self) -> (Child, String) {
        let dir = self.dir.path().join("outsider");
        let key = KeyPair::generate();
        nexus::keystore::store(&dir.join("keystore/validator.json"), &key, "outsider-pw")
            .expect("keystore");
        std::fs::write(dir.join("keystore/validator.password"), "outsider-pw\n").expect("password");
        let p = free_ports(2);
        let mut cfg = nexus::config::NodeConfig {
            genesis: "../genesis.json".into(),
            ..Default::default()
        };
        cfg.rpc.listen = std::net::SocketAddr::from(([127, 0, 0, 1], p[0]));
        cfg.p2p.listen = format!("/ip4/127.0.0.1/tcp/{}", p[1]);
        cfg.p2p.peers = self.init.nodes.iter().map(|n| n.p2p.clone()).collect();
        std::fs::write(dir.join("config.toml"), nexus_toml(&cfg)).expect("config");
        let log = std::fs::File::create(dir.join("node.log")).expect("log");
        let child = Command::new(nexus_bin())
            .args(["node", "--config"])
            .arg(dir.join("config.toml"))
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn outsider");
        let url = format!("http://127.0.0.1:{}/api/v3/public", p[0]);
        let deadline = Instant::now() + Duration::from_secs(60);
        while !answers(&url) {
            assert!(Instant::now() < deadline, "the outsider did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        (child, url)
    }
}

fn nexus_toml(cfg: &nexus::config::NodeConfig) -> String {
    nexus::config::to_toml(cfg).expect("config serializes")
}
pub mod hub;

#[cfg(test)]
mod port_tests {
    use super::*;

    #[test]
    fn a_picked_port_is_not_handed_out_again() {
        let ports = free_ports(3);
        for p in ports {
            assert!(!reserve(p), "port {p} was claimed twice");
        }
    }
}
