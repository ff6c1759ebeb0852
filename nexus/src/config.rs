//! Node configuration: a TOML file with defaults for everything but the paths, checked by
//! [`NodeConfig::validate`] before the node starts.

use crate::error::NodeError;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Everything a node needs to start.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NodeConfig {
    /// Where RocksDB keeps the chain.
    pub data_dir: PathBuf,
    /// The genesis file (JSON).
    pub genesis: PathBuf,
    /// The validator's keystore (ICON keystore format).
    pub keystore: PathBuf,
    /// File holding the keystore password (first line). `NEXUS_KEY_PASSWORD` overrides it.
    pub keystore_password_file: PathBuf,
    /// JSON-RPC server.
    pub rpc: RpcConfig,
    /// Transaction pool.
    pub mempool: MempoolConfig,
    /// Block production.
    pub block: BlockConfig,
    /// State storage.
    pub state: StateConfig,
    /// Peer-to-peer networking (used when the channel has more than one validator).
    pub p2p: P2pConfig,
    /// LFT round timers (used when the channel has more than one validator).
    pub consensus: ConsensusConfig,
    /// More channels this node runs besides the one of `genesis`.
    pub channels: Vec<ChannelConfig>,
    /// This validator's own Ethereum JSON-RPC endpoint per notary channel of an Ethereum
    /// source (`notary-eth = "http://127.0.0.1:8545"`): relayed headers must be on its chain.
    pub eth_endpoints: std::collections::BTreeMap<String, String>,
    /// Log filter (`info`, `nexus=debug`, ...); `RUST_LOG` overrides it.
    pub log: String,
}

/// A further channel: its genesis and its peers (the p2p listen address and identity are the
/// node's).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelConfig {
    /// The channel's genesis file.
    pub genesis: PathBuf,
    /// The channel's other validators and readers: `/ip4/<ip>/tcp/<port>/p2p/<peer id>`.
    #[serde(default)]
    pub peers: Vec<String>,
}

/// Peer-to-peer settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct P2pConfig {
    /// libp2p listen address.
    pub listen: String,
    /// The channel's other validators (and readers): `/ip4/<ip>/tcp/<port>/p2p/<peer id>`.
    pub peers: Vec<String>,
    /// This node's ed25519 identity (created on first start).
    pub key_file: PathBuf,
    /// Peer ids (one per line) to cut off while listed; reread as the node runs.
    pub deny_file: PathBuf,
}

impl Default for P2pConfig {
    fn default() -> Self {
        P2pConfig {
            listen: "/ip4/127.0.0.1/tcp/9180".into(),
            peers: vec![],
            key_file: PathBuf::from("p2p.key"),
            deny_file: PathBuf::from("p2p.deny"),
        }
    }
}

/// LFT timers.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConsensusConfig {
    /// First timeout of a round, in ms (must exceed `block.empty_block_interval_ms`).
    pub round_timeout_ms: u64,
    /// Growth per consecutive failed round, in percent.
    pub timeout_growth_percent: u64,
    /// Longest round timeout, in ms.
    pub max_timeout_ms: u64,
}

impl Default for ConsensusConfig {
    fn default() -> Self {
        ConsensusConfig {
            round_timeout_ms: 3_000,
            timeout_growth_percent: 50,
            max_timeout_ms: 30_000,
        }
    }
}

/// JSON-RPC server settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RpcConfig {
    /// Listen address for HTTP, WebSocket and `/metrics`.
    pub listen: SocketAddr,
    /// Largest request body in bytes.
    pub max_request_bytes: u32,
    /// Most connections open at once (HTTP and WebSocket); past it a new one is closed at once.
    pub max_connections: u32,
    /// Most bytes of request bodies read or handled at once, over all connections; a request
    /// past it is answered "busy" (503) at once.
    pub max_bytes_in_flight: u32,
    /// A connection that sends no request head for this long (idle between requests, or
    /// sending one too slowly) is closed, in ms.
    pub idle_timeout_ms: u64,
    /// Default wait of `icx_sendTransactionAndWait` / `icx_waitTransactionResult` in ms.
    pub default_wait_timeout_ms: u64,
    /// Longest wait a client may ask for with `Icon-Options: timeout=<ms>`.
    pub max_wait_timeout_ms: u64,
    /// Most calls in one JSON-RPC batch (ICON's SDKs send a few hundred at most).
    pub max_batch: u32,
    /// Longest a request may take before it is answered with an error, in ms (above
    /// `max_wait_timeout_ms`).
    pub request_timeout_ms: u64,
    /// Most WebSocket monitors open at once.
    pub max_monitors: u32,
    /// A monitor whose client sent nothing (not even a pong) for this long is closed, in ms.
    pub monitor_idle_timeout_ms: u64,
}

/// Transaction pool settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MempoolConfig {
    /// Most transactions waiting; more are refused with -31001.
    pub max_txs: usize,
    /// Most bytes held by waiting transactions (their JSON and its decoded forms, as
    /// `SignedTransaction::held_bytes` estimates them; a transfer holds about 1.6 KB); more are
    /// refused with -31001.
    pub max_bytes: usize,
    /// Most transactions waiting from one sender; more are refused with -31001.
    pub max_per_sender: usize,
    /// Accepted distance of a transaction's timestamp from the node's clock, in ms.
    pub timestamp_window_ms: u64,
    /// Backpressure: `icx_sendTransaction` waits (up to 5 s, then -31001) while more
    /// transactions wait for a block than the node commits in this many ms (0: never waits).
    pub backlog_ms: u64,
    /// ...but never while fewer than this many wait (on a channel of several validators, never
    /// fewer than `block.max_txs`; above `max_txs`, the pool's bound refuses first). This lets
    /// a burst into an idle node in at once; kept small, so that on a node slower than this
    /// many per `backlog_ms` the backlog still follows `backlog_ms` (at 500, one node at 10
    /// million accounts, some 7,000 transfers per second, held 70 ms of them).
    pub backlog_min_txs: usize,
}

/// Block production settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BlockConfig {
    /// Most transactions in one block.
    pub max_txs: usize,
    /// Longest time without a block when there are no transactions, in ms. 0 is unpaced: a
    /// multi-validator channel makes blocks as fast as consensus goes (benchmarks, notary
    /// channels that want the least latency); a single validator then waits 10 ms.
    pub empty_block_interval_ms: u64,
}

/// State storage settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StateConfig {
    /// Blocks behind the head whose state the node keeps in its state tree (and can prove with
    /// `icx_getProofForState`); older tree versions are deleted. At least 16.
    pub history_blocks: u64,
    /// Reads RocksDB's table files through memory maps instead of copying each block into the
    /// block cache. At millions of accounts most state-tree reads miss the cache, and a mapped
    /// read costs no system call or copy (one node at 10 million accounts committed 10-35% more
    /// transfers per second in the README's runs); the pages it touches count in the node's
    /// resident memory (they are the page cache's, which the kernel takes back when it needs
    /// them), so resident memory grows toward the size of the data folder. Off by default.
    pub mmap_reads: bool,
    /// Free space, in MiB, the node keeps on the disk of its data folder: below it the node
    /// refuses to start, and a running node stops (with an error saying so) before RocksDB
    /// runs out of space mid-write. Keep it above the memtables a flush writes at once (128
    /// MiB) plus room for a compaction. 0 turns the check off.
    pub min_free_disk_mb: u64,
}

impl Default for StateConfig {
    fn default() -> Self {
        StateConfig {
            history_blocks: 256,
            mmap_reads: false,
            min_free_disk_mb: 512,
        }
    }
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            data_dir: PathBuf::from("data"),
            genesis: PathBuf::from("genesis.json"),
            keystore: PathBuf::from("keystore/validator.json"),
            keystore_password_file: PathBuf::from("keystore/validator.password"),
            rpc: RpcConfig::default(),
            mempool: MempoolConfig::default(),
            block: BlockConfig::default(),
            state: StateConfig::default(),
            p2p: P2pConfig::default(),
            consensus: ConsensusConfig::default(),
            channels: vec![],
            eth_endpoints: Default::default(),
            log: "info".into(),
        }
    }
}

impl Default for RpcConfig {
    fn default() -> Self {
        RpcConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 9080)),
            max_request_bytes: 1024 * 1024,
            max_connections: 1024,
            default_wait_timeout_ms: 5_000,
            max_wait_timeout_ms: 60_000,
            max_batch: 512,
            request_timeout_ms: 75_000,
            max_monitors: 256,
            monitor_idle_timeout_ms: 90_000,
            idle_timeout_ms: 30_000,
            max_bytes_in_flight: 64 << 20,
        }
    }
}

impl Default for MempoolConfig {
    fn default() -> Self {
        MempoolConfig {
            max_txs: 200_000,
            max_bytes: 256 * 1024 * 1024,
            max_per_sender: 10_000,
            timestamp_window_ms: 5 * 60 * 1000,
            backlog_ms: 50,
            backlog_min_txs: 200,
        }
    }
}

impl Default for BlockConfig {
    fn default() -> Self {
        BlockConfig {
            max_txs: 5_000,
            empty_block_interval_ms: 1_000,
        }
    }
}

impl NodeConfig {
    /// Reads and validates a config file; relative paths are taken from the file's folder.
    pub fn load(path: &Path) -> Result<Self, NodeError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| NodeError::Config(format!("cannot read {}: {e}", path.display())))?;
        let mut cfg: NodeConfig = toml::from_str(&text)
            .map_err(|e| NodeError::Config(format!("{}: {e}", path.display())))?;
        let base = path.parent().unwrap_or(Path::new("."));
        for c in &mut cfg.channels {
            if c.genesis.is_relative() {
                c.genesis = base.join(&c.genesis);
            }
        }
        for p in [
            &mut cfg.data_dir,
            &mut cfg.genesis,
            &mut cfg.keystore,
            &mut cfg.keystore_password_file,
            &mut cfg.p2p.key_file,
            &mut cfg.p2p.deny_file,
        ] {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks that every value is usable, naming the first one that is not.
    pub fn validate(&self) -> Result<(), NodeError> {
        let bad = |what: &str, why: &str| Err(NodeError::Config(format!("{what}: {why}")));
        for (channel, url) in &self.eth_endpoints {
            if !(url.starts_with("http://") || url.starts_with("https://")) || url.len() > 512 {
                return bad(
                    &format!("eth_endpoints.{channel}"),
                    &format!("expected an http(s):// JSON-RPC URL, got {url:?}"),
                );
            }
        }
        if self.rpc.max_request_bytes < 1024 {
            return bad("rpc.max_request_bytes", "must be at least 1024");
        }
        if self.rpc.max_connections == 0 {
            return bad("rpc.max_connections", "must be at least 1");
        }
        if self.rpc.max_bytes_in_flight < self.rpc.max_request_bytes
            || self.rpc.max_bytes_in_flight > 1 << 30
        {
            return bad(
                "rpc.max_bytes_in_flight",
                &format!(
                    "must be between rpc.max_request_bytes ({}) and 1073741824, got {}",
                    self.rpc.max_request_bytes, self.rpc.max_bytes_in_flight
                ),
            );
        }
        if !(100..=3_600_000).contains(&self.rpc.idle_timeout_ms) {
            return bad(
                "rpc.idle_timeout_ms",
                &format!(
                    "must be between 100 and 3600000, got {}",
                    self.rpc.idle_timeout_ms
                ),
            );
        }
        if self.rpc.default_wait_timeout_ms > self.rpc.max_wait_timeout_ms {
            return bad(
                "rpc.default_wait_timeout_ms",
                "must not exceed rpc.max_wait_timeout_ms",
            );
        }
        if self.rpc.max_batch == 0 || self.rpc.max_batch > 100_000 {
            return bad("rpc.max_batch", "must be between 1 and 100000");
        }
        if self.rpc.request_timeout_ms <= self.rpc.max_wait_timeout_ms {
            return bad(
                "rpc.request_timeout_ms",
                "must exceed rpc.max_wait_timeout_ms (a wait would be cut short)",
            );
        }
        if self.rpc.max_monitors == 0 {
            return bad("rpc.max_monitors", "must be at least 1");
        }
        if self.rpc.monitor_idle_timeout_ms < 1_000 {
            return bad("rpc.monitor_idle_timeout_ms", "must be at least 1000");
        }
        if !(crate::ledger::state_tree::MIN_HISTORY..=10_000_000)
            .contains(&self.state.history_blocks)
        {
            return bad(
                "state.history_blocks",
                &format!(
                    "must be between {} and 10000000, got {}",
                    crate::ledger::state_tree::MIN_HISTORY,
                    self.state.history_blocks
                ),
            );
        }
        if self.state.min_free_disk_mb > 1 << 30 {
            return bad(
                "state.min_free_disk_mb",
                &format!(
                    "must be at most {} (1 PiB), got {}",
                    1u64 << 30,
                    self.state.min_free_disk_mb
                ),
            );
        }
        if self.mempool.max_txs == 0 {
            return bad("mempool.max_txs", "must be at least 1");
        }
        // The largest transaction: its JSON, and what that may decode to.
        let largest = nexus_proto::transaction::MAX_TX_BYTES + nexus_proto::json::MAX_DECODED_BYTES;
        if self.mempool.max_bytes < largest {
            return bad(
                "mempool.max_bytes",
                &format!("must hold at least one largest transaction ({largest} bytes)"),
            );
        }
        if self.mempool.max_per_sender == 0 {
            return bad("mempool.max_per_sender", "must be at least 1");
        }
        if self.mempool.timestamp_window_ms == 0 {
            return bad("mempool.timestamp_window_ms", "must be positive");
        }
        if self.mempool.backlog_ms > 600_000 {
            return bad(
                "mempool.backlog_ms",
                &format!(
                    "must be at most 600000 (10 minutes), got {}",
                    self.mempool.backlog_ms
                ),
            );
        }
        if self.mempool.backlog_min_txs == 0 {
            return bad("mempool.backlog_min_txs", "must be at least 1");
        }
        if self.block.max_txs == 0 || self.block.max_txs > nexus_proto::block::MAX_BLOCK_TXS {
            return bad("block.max_txs", "must be between 1 and 100000");
        }
        if (1..10).contains(&self.block.empty_block_interval_ms) {
            return bad(
                "block.empty_block_interval_ms",
                "must be 0 (unpaced: blocks as fast as consensus goes) or at least 10",
            );
        }
        if self.consensus.round_timeout_ms <= self.block.empty_block_interval_ms {
            return bad("consensus.round_timeout_ms", "must exceed block.empty_block_interval_ms (a leader waits that long for transactions)");
        }
        if self.consensus.max_timeout_ms < self.consensus.round_timeout_ms {
            return bad(
                "consensus.max_timeout_ms",
                "must be at least consensus.round_timeout_ms",
            );
        }
        Ok(())
    }

    /// The keystore password: `NEXUS_KEY_PASSWORD`, else the first line of the password file.
    pub fn keystore_password(&self) -> Result<String, NodeError> {
        if let Ok(p) = std::env::var("NEXUS_KEY_PASSWORD") {
            return Ok(p);
        }
        let text = std::fs::read_to_string(&self.keystore_password_file).map_err(|e| {
            NodeError::Config(format!(
                "cannot read {}: {e}",
                self.keystore_password_file.display()
            ))
        })?;
        Ok(text.lines().next().unwrap_or("").to_string())
    }
}

/// The TOML text of a config.
pub fn to_toml(cfg: &NodeConfig) -> Result<String, NodeError> {
    toml::to_string_pretty(cfg).map_err(|e| NodeError::Config(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate_and_bad_values_are_named() {
        NodeConfig::default().validate().unwrap();
        let mut c = NodeConfig::default();
        c.block.empty_block_interval_ms = 0;
        c.validate().unwrap();
        c.block.empty_block_interval_ms = 5;
        assert!(c.validate().unwrap_err().to_string().contains("unpaced"));
        let mut c = NodeConfig::default();
        c.block.max_txs = 0;
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("block.max_txs"));
        let mut c = NodeConfig::default();
        c.mempool.backlog_min_txs = 0;
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("mempool.backlog_min_txs"), "{e}");
        let mut c = NodeConfig::default();
        c.mempool.backlog_ms = u64::MAX;
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("mempool.backlog_ms"), "{e}");
        c.mempool.backlog_ms = 0;
        c.validate().unwrap();
        let parsed: Result<NodeConfig, _> =
            toml::from_str("[rpc]\nlisten = \"127.0.0.1:1\"\nbogus = 1\n");
        assert!(parsed.is_err());
        let parsed: NodeConfig = toml::from_str("[rpc]\nlisten = \"127.0.0.1:1\"\n").unwrap();
        assert_eq!(parsed.rpc.listen.port(), 1);
        assert_eq!(parsed.block.max_txs, BlockConfig::default().max_txs);
        assert!(
            !parsed.state.mmap_reads,
            "mapped reads are off unless asked for"
        );
        let parsed: NodeConfig = toml::from_str("[state]\nmmap_reads = true\n").unwrap();
        assert!(parsed.state.mmap_reads);
        assert_eq!(parsed.state.history_blocks, 256);
        let e = toml::from_str::<NodeConfig>("[state]\nmmap_reads = \"yes\"\n").unwrap_err();
        assert!(e.to_string().contains("mmap_reads"), "{e}");
    }

    #[test]
    fn connection_bounds_are_checked() {
        let d = NodeConfig::default();
        assert_eq!(
            (d.rpc.idle_timeout_ms, d.rpc.max_bytes_in_flight),
            (30_000, 64 << 20)
        );
        for (ms, ok) in [
            (99, false),
            (100, true),
            (3_600_000, true),
            (3_600_001, false),
        ] {
            let mut c = NodeConfig::default();
            c.rpc.idle_timeout_ms = ms;
            let r = c.validate();
            assert_eq!(r.is_ok(), ok, "idle_timeout_ms {ms}: {r:?}");
            if let Err(e) = r {
                assert!(e.to_string().contains("rpc.idle_timeout_ms"), "{e}");
            }
        }
        let mut c = NodeConfig::default();
        c.rpc.max_bytes_in_flight = c.rpc.max_request_bytes;
        c.validate().unwrap();
        c.rpc.max_bytes_in_flight = c.rpc.max_request_bytes - 1;
        let e = c.validate().unwrap_err().to_string();
        assert!(
            e.contains("rpc.max_bytes_in_flight") && e.contains("1048576"),
            "{e}"
        );
        c.rpc.max_bytes_in_flight = u32::MAX;
        assert!(c.validate().is_err());
    }
}
