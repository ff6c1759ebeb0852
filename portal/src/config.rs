//! Portal configuration: a TOML file with defaults, checked by [`PortalConfig::validate`].

use crate::PortalError;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Everything a portal needs.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PortalConfig {
    /// The relayer's ICON keystore (it signs and pays for relay transactions on every chain).
    pub keystore: PathBuf,
    /// File holding the keystore password (first line). `PORTAL_KEY_PASSWORD` overrides it.
    pub keystore_password_file: PathBuf,
    /// Where progress is kept (one file per link direction).
    pub state_dir: PathBuf,
    /// Address of `/metrics` and `/health`.
    pub listen: SocketAddr,
    /// Pause between scans when caught up, in ms.
    pub poll_ms: u64,
    /// Most bytes of updates and proofs in one relay transaction.
    pub max_batch_bytes: usize,
    /// Step limit of relay transactions.
    pub step_limit: u64,
    /// First wait after an error, in ms (doubles up to `max_backoff_ms`).
    pub backoff_ms: u64,
    /// Longest wait after repeated errors, in ms.
    pub max_backoff_ms: u64,
    /// Warn when the relayer's balance on a chain falls below this (loop).
    pub low_balance_warning: u128,
    /// Seconds between progress lines in the log.
    pub progress_every_s: u64,
    /// Longest wait for one whole answer from a chain's endpoint, in ms; past it the call
    /// fails (and moves to the channel's next URL, if it has one).
    pub rpc_timeout_ms: u64,
    /// Most bytes of one answer read from a chain's endpoint.
    pub max_answer_bytes: usize,
    /// Source chains into their notary channels.
    pub inbound: Vec<InboundLink>,
    /// Notary channels out to destination chains.
    pub outbound: Vec<OutboundLink>,
    /// Notary channels out to Ethereum BMCs (Solidity).
    pub eth_outbound: Vec<EthOutboundLink>,
    /// Ethereum BMCs' messages into their notary channels.
    pub eth_inbound: Vec<EthInboundLink>,
}

/// An Ethereum chain's BMC messages into its notary channel on Nexus.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EthInboundLink {
    /// Name in logs, metrics and the progress file.
    pub name: String,
    /// JSON-RPC URL of the Ethereum node.
    pub source: String,
    /// The source BMC contract (`0x...`), whose `Message` logs are relayed.
    pub bmc: String,
    /// JSON-RPC URL of the notary channel on Nexus.
    pub notary: String,
    /// The same notary channel on other validators, tried when `notary` does not answer.
    #[serde(default)]
    pub notary_backups: Vec<String>,
    /// Most headers in one relay transaction.
    #[serde(default = "default_max_headers")]
    pub max_headers: usize,
}

fn default_max_headers() -> usize {
    128
}

/// A notary channel's messages out to a Solidity BMC on an Ethereum chain.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EthOutboundLink {
    /// Name in logs, metrics and the progress file.
    pub name: String,
    /// JSON-RPC URL of the notary channel on Nexus.
    pub notary: String,
    /// The same notary channel on the other validators: each is asked for its signature of a
    /// block's decision, so list them all.
    #[serde(default)]
    pub notary_backups: Vec<String>,
    /// JSON-RPC URL of the Ethereum node.
    pub destination: String,
    /// The BMC contract (`0x...`).
    pub bmc: String,
    /// File holding the relayer's Ethereum key: a secret key of 64 hex digits (first line), or
    /// an encrypted keystore (Web3 Secret Storage v3 JSON, as geth, Foundry's `cast wallet` and
    /// web3.py write) whose password is `key_password_file`'s first line or
    /// `PORTAL_ETH_KEY_PASSWORD`. `PORTAL_ETH_KEY` overrides the file.
    pub key_file: PathBuf,
    /// The keystore password's file, when `key_file` is a keystore.
    #[serde(default)]
    pub key_password_file: Option<PathBuf>,
    /// Most gas one relay transaction may use (batches are split to stay under it).
    #[serde(default = "default_max_gas")]
    pub max_gas: u64,
    /// Most messages in one relay transaction. Its receipt comes back to Nexus as the proof of
    /// the replies (every log of the transaction is in it, about 1.2 KB per message with the
    /// DEX's payouts), and a notary takes receipt proofs of at most 128 KiB: 40 keeps a wide
    /// margin.
    #[serde(default = "default_max_messages")]
    pub max_messages: usize,
    /// Height to scan from when there is no progress yet.
    #[serde(default)]
    pub start_height: u64,
    /// How long a relay transaction may wait for its receipt, in ms, before it is sent again
    /// with the same nonce and raised fees (the node dropped it, or the base fee rose past it).
    #[serde(default = "default_receipt_timeout_ms")]
    pub receipt_timeout_ms: u64,
    /// How much each new send raises both EIP-1559 fees, in percent (nodes take a replacement
    /// only when it pays at least 10% more).
    #[serde(default = "default_fee_bump_percent")]
    pub fee_bump_percent: u64,
    /// The highest `maxFeePerGas` the relayer pays, in gwei: fees are never raised past it.
    #[serde(default = "default_max_fee_per_gas_gwei")]
    pub max_fee_per_gas_gwei: u64,
}

fn default_receipt_timeout_ms() -> u64 {
    60_000
}

fn default_fee_bump_percent() -> u64 {
    20
}

fn default_max_fee_per_gas_gwei() -> u64 {
    500
}

fn default_max_gas() -> u64 {
    10_000_000
}

fn default_max_messages() -> usize {
    40
}

/// A source chain's messages into its Nexus notary channel.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InboundLink {
    /// Name in logs, metrics and the progress file.
    pub name: String,
    /// JSON-RPC URL of the source chain (`http://host:port/api/v3/<channel>`).
    pub source: String,
    /// JSON-RPC URL of the notary channel on Nexus.
    pub notary: String,
    /// The same notary channel on other validators, tried when `notary` does not answer.
    #[serde(default)]
    pub notary_backups: Vec<String>,
    /// Height to scan from when there is no progress yet (the notary client's checkpoint).
    #[serde(default)]
    pub start_height: u64,
}

/// A notary channel's messages out to one destination chain.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutboundLink {
    /// Name in logs, metrics and the progress file.
    pub name: String,
    /// JSON-RPC URL of the notary channel on Nexus.
    pub notary: String,
    /// The same notary channel on other validators, tried when `notary` does not answer.
    #[serde(default)]
    pub notary_backups: Vec<String>,
    /// JSON-RPC URL of the destination chain.
    pub destination: String,
    /// Height to scan from when there is no progress yet (the destination verifier's
    /// checkpoint).
    #[serde(default)]
    pub start_height: u64,
}

impl Default for PortalConfig {
    fn default() -> Self {
        PortalConfig {
            keystore: PathBuf::from("portal.keystore"),
            keystore_password_file: PathBuf::from("portal.password"),
            state_dir: PathBuf::from("portal-state"),
            listen: SocketAddr::from(([127, 0, 0, 1], 9190)),
            poll_ms: 50,
            max_batch_bytes: 160 * 1024,
            step_limit: 2_000_000_000,
            backoff_ms: 200,
            max_backoff_ms: 10_000,
            low_balance_warning: 10u128.pow(18),
            progress_every_s: 10,
            rpc_timeout_ms: 30_000,
            max_answer_bytes: 64 << 20,
            inbound: vec![],
            outbound: vec![],
            eth_outbound: vec![],
            eth_inbound: vec![],
        }
    }
}

impl PortalConfig {
    /// The limits of every call to a chain's endpoint.
    pub fn limits(&self) -> nexus_client::rpc::Limits {
        nexus_client::rpc::Limits {
            timeout: std::time::Duration::from_millis(self.rpc_timeout_ms),
            max_response_bytes: self.max_answer_bytes,
        }
    }

    /// Reads and checks a config file.
    pub fn load(path: &Path) -> Result<Self, PortalError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| PortalError::Config(format!("cannot read {}: {e}", path.display())))?;
        let c: PortalConfig = toml::from_str(&text)
            .map_err(|e| PortalError::Config(format!("{}: {e}", path.display())))?;
        c.validate()?;
        Ok(c)
    }

    /// Checks values and names.
    pub fn validate(&self) -> Result<(), PortalError> {
        let bad = |m: String| Err(PortalError::Config(m));
        if self.inbound.is_empty()
            && self.outbound.is_empty()
            && self.eth_outbound.is_empty()
            && self.eth_inbound.is_empty()
        {
            return bad(
                "no links: add [[inbound]], [[outbound]], [[eth_inbound]] or [[eth_outbound]] sections".into(),
            );
        }
        for l in &self.eth_inbound {
            if !(1..=256).contains(&l.max_headers) {
                return bad(format!(
                    "{}: max_headers: expected 1..=256, got {}",
                    l.name, l.max_headers
                ));
            }
            if l.bmc.parse::<alloy::primitives::Address>().is_err() {
                return bad(format!(
                    "{}: bmc: expected a 0x address of 40 hex digits, got {:?}",
                    l.name, l.bmc
                ));
            }
        }
        for l in &self.eth_outbound {
            if !(100_000..=30_000_000).contains(&l.max_gas) {
                return bad(format!(
                    "{}: max_gas: expected 100000..=30000000, got {}",
                    l.name, l.max_gas
                ));
            }
            if !(1..=1000).contains(&l.max_messages) {
                return bad(format!(
                    "{}: max_messages: expected 1..=1000, got {}",
                    l.name, l.max_messages
                ));
            }
            if l.bmc.parse::<alloy::primitives::Address>().is_err() {
                return bad(format!(
                    "{}: bmc: expected a 0x address of 40 hex digits, got {:?}",
                    l.name, l.bmc
                ));
            }
            if !(100..=3_600_000).contains(&l.receipt_timeout_ms) {
                return bad(format!(
                    "{}: receipt_timeout_ms: expected 100..=3600000, got {}",
                    l.name, l.receipt_timeout_ms
                ));
            }
            if !(10..=1000).contains(&l.fee_bump_percent) {
                return bad(format!(
                    "{}: fee_bump_percent: expected 10..=1000 (a replacement must pay at least 10% more), got {}",
                    l.name, l.fee_bump_percent
                ));
            }
            if !(1..=1_000_000).contains(&l.max_fee_per_gas_gwei) {
                return bad(format!(
                    "{}: max_fee_per_gas_gwei: expected 1..=1000000, got {}",
                    l.name, l.max_fee_per_gas_gwei
                ));
            }
        }
        if self.poll_ms == 0 || self.poll_ms > 60_000 {
            return bad(format!("poll_ms: expected 1..=60000, got {}", self.poll_ms));
        }
        if !(4096..=200 * 1024).contains(&self.max_batch_bytes) {
            return bad(format!(
                "max_batch_bytes: expected 4096..=204800 (sent as hex, a transaction holds at most 512 KiB), got {}",
                self.max_batch_bytes
            ));
        }
        if !(100..=600_000).contains(&self.rpc_timeout_ms) {
            return bad(format!(
                "rpc_timeout_ms: expected 100..=600000, got {}",
                self.rpc_timeout_ms
            ));
        }
        if !((1 << 20)..=(1 << 30)).contains(&self.max_answer_bytes) {
            return bad(format!(
                "max_answer_bytes: expected 1048576..=1073741824 (a block's messages and proofs can take megabytes), got {}",
                self.max_answer_bytes
            ));
        }
        if self.backoff_ms == 0 || self.max_backoff_ms < self.backoff_ms {
            return bad("backoff_ms must be above 0 and at most max_backoff_ms".into());
        }
        let mut names: Vec<&str> = self
            .inbound
            .iter()
            .map(|l| l.name.as_str())
            .chain(self.outbound.iter().map(|l| l.name.as_str()))
            .chain(self.eth_outbound.iter().map(|l| l.name.as_str()))
            .chain(self.eth_inbound.iter().map(|l| l.name.as_str()))
            .collect();
        for n in &names {
            if n.is_empty()
                || n.len() > 64
                || !n
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                return bad(format!(
                    "link name {n:?}: expected 1..=64 characters of a-z, 0-9, - and _"
                ));
            }
        }
        names.sort();
        if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
            return bad(format!("link name {} is used twice", w[0]));
        }
        let urls = self
            .inbound
            .iter()
            .flat_map(|l| [&l.source, &l.notary])
            .chain(
                self.outbound
                    .iter()
                    .flat_map(|l| [&l.notary, &l.destination]),
            );
        for u in urls {
            if !u.starts_with("http://") || !u.contains("/api/v3/") {
                return bad(format!(
                    "{u:?}: expected a channel URL http://host:port/api/v3/<channel>"
                ));
            }
        }
        Ok(())
    }

    /// The keystore password.
    pub fn password(&self) -> Result<String, PortalError> {
        if let Ok(p) = std::env::var("PORTAL_KEY_PASSWORD") {
            return Ok(p);
        }
        let text = std::fs::read_to_string(&self.keystore_password_file).map_err(|e| {
            PortalError::Config(format!(
                "cannot read {}: {e} (or set PORTAL_KEY_PASSWORD)",
                self.keystore_password_file.display()
            ))
        })?;
        Ok(text.lines().next().unwrap_or("").to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one_link() -> PortalConfig {
        PortalConfig {
            inbound: vec![InboundLink {
                name: "a-in".into(),
                source: "http://127.0.0.1:1/api/v3/a".into(),
                notary: "http://127.0.0.1:2/api/v3/notary-a".into(),
                notary_backups: vec![],
                start_height: 0,
            }],
            ..PortalConfig::default()
        }
    }

    #[test]
    fn a_config_with_one_link_is_valid_and_bad_values_are_named() {
        one_link().validate().unwrap();
        let err = PortalConfig::default().validate().unwrap_err().to_string();
        assert!(err.contains("no links"), "{err}");
        let mut c = one_link();
        c.inbound[0].source = "127.0.0.1:1".into();
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("expected a channel URL"));
        let mut c = one_link();
        c.inbound.push(c.inbound[0].clone());
        assert!(c.validate().unwrap_err().to_string().contains("used twice"));
        let mut c = one_link();
        c.max_batch_bytes = 10 << 20;
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("max_batch_bytes"));
    }

    #[test]
    fn endpoint_limits_have_defaults_and_bounds() {
        let c = one_link();
        assert_eq!(
            c.limits(),
            nexus_client::rpc::Limits {
                timeout: std::time::Duration::from_secs(30),
                max_response_bytes: 64 << 20,
            }
        );
        for (ms, ok) in [(99, false), (100, true), (600_000, true), (600_001, false)] {
            let mut c = one_link();
            c.rpc_timeout_ms = ms;
            match c.validate() {
                Ok(()) => assert!(ok, "{ms} ms accepted"),
                Err(e) => {
                    assert!(!ok, "{ms} ms refused: {e}");
                    assert!(e
                        .to_string()
                        .contains("rpc_timeout_ms: expected 100..=600000"));
                }
            }
        }
        for (bytes, ok) in [
            (0, false),
            (1 << 20, true),
            (1 << 30, true),
            (usize::MAX, false),
        ] {
            let mut c = one_link();
            c.max_answer_bytes = bytes;
            match c.validate() {
                Ok(()) => assert!(ok, "{bytes} bytes accepted"),
                Err(e) => {
                    assert!(!ok, "{bytes} bytes refused: {e}");
                    assert!(e.to_string().contains("max_answer_bytes: expected"));
                }
            }
        }
    }

    #[test]
    fn toml_with_defaults_parses_and_unknown_keys_are_refused() {
        let c: PortalConfig = toml::from_str(
            "[[inbound]]\nname = \"a\"\nsource = \"http://h:1/api/v3/a\"\nnotary = \"http://h:2/api/v3/n\"\n",
        )
        .unwrap();
        c.validate().unwrap();
        assert_eq!(c.poll_ms, 50);
        assert!(toml::from_str::<PortalConfig>("pol_ms = 3").is_err());
    }

    #[test]
    fn ethereum_links_are_checked() {
        let toml_text = r#"
            [[eth_inbound]]
            name = "eth-in"
            source = "http://127.0.0.1:8545"
            bmc = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
            notary = "http://127.0.0.1:9080/api/v3/notary-eth"

            [[eth_outbound]]
            name = "a-to-eth"
            notary = "http://127.0.0.1:9080/api/v3/notary-a"
            destination = "http://127.0.0.1:8545"
            bmc = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
            key_file = "eth.key"
        "#;
        let c: PortalConfig = toml::from_str(toml_text).unwrap();
        c.validate().unwrap();
        assert_eq!(
            (c.eth_outbound[0].max_gas, c.eth_outbound[0].max_messages),
            (10_000_000, 40)
        );
        assert_eq!(c.eth_inbound[0].max_headers, 128);
        let named = |c: &PortalConfig| c.validate().unwrap_err().to_string();
        let mut bad = c.clone();
        bad.eth_outbound[0].bmc = "0x５FbDB2315678afecb367f032d93F642f64180aa3".into();
        assert!(named(&bad).contains("bmc"), "{}", named(&bad));
        let mut bad = c.clone();
        bad.eth_outbound[0].max_gas = u64::MAX;
        assert!(named(&bad).contains("max_gas"));
        let l = &c.eth_outbound[0];
        assert_eq!(
            (
                l.receipt_timeout_ms,
                l.fee_bump_percent,
                l.max_fee_per_gas_gwei
            ),
            (60_000, 20, 500)
        );
        let mut bad = c.clone();
        bad.eth_outbound[0].fee_bump_percent = 9;
        assert!(named(&bad).contains("fee_bump_percent"), "{}", named(&bad));
        let mut bad = c.clone();
        bad.eth_outbound[0].receipt_timeout_ms = 0;
        assert!(named(&bad).contains("receipt_timeout_ms"));
        let mut bad = c.clone();
        bad.eth_outbound[0].max_fee_per_gas_gwei = 0;
        assert!(named(&bad).contains("max_fee_per_gas_gwei"));
        let mut bad = c.clone();
        bad.eth_inbound[0].max_headers = 0;
        assert!(named(&bad).contains("max_headers"));
        let mut bad = c.clone();
        bad.eth_inbound[0].name = "a-to-eth".into();
        assert!(named(&bad).contains("used twice"));
        assert!(
            toml::from_str::<PortalConfig>("[[eth_inbound]]\nname = \"x\"\nsurprise = 1").is_err()
        );
    }
}
