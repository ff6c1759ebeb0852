//! A notary channel's messages out to a Solidity BMC on Ethereum. Each pass reads what the
//! verifier has delivered (its context for the source: notary set, last sequence), scans the
//! notary channel's final blocks for messages to the BMC's network, gathers more than 2/3 of the
//! validators' signatures of each block's decision (`btp_getDecision` on every validator),
//! checks them against the verifier's set, and submits `handleRelayMessage` in batches under
//! the gas cap (`eth_send`: a transaction not mined in time goes again with raised fees).
//! Before a pass it waits for its own pending transactions, so a restart or a replaced
//! transaction never sends a message twice; the verifier refuses duplicates anyway.

use crate::config::{EthOutboundLink, PortalConfig};
use crate::endpoint::Endpoint;
use crate::eth_send::{EthSender, FeePolicy};
use crate::metrics::Metrics;
use crate::progress::{Progress, ProgressFile};
use crate::PortalError;
use alloy::network::{EthereumWallet, TransactionBuilder};
use alloy::primitives::{Address as EthAddress, Bytes};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::signers::local::PrivateKeySigner;
use nexus_btp::decision::{encode_relay, eth_address_of, Decision, MessagePath, RelayItem};
use nexus_client::eth_transport::BoundedHttp;
use nexus_proto::value::{parse_bytes, parse_u128, parse_u64};
use nexus_proto::{Hash32, Signature};
use serde_json::Value;
use std::sync::Arc;
use std::time::{Duration, Instant};

alloy::sol! {
    #[sol(rpc)]
    interface EthBmc {
        function network() external view returns (string);
        function verifier() external view returns (address);
        function handleRelayMessage(bytes relay) external;
    }

    #[sol(rpc)]
    interface EthVerifier {
        function context(string src) external view returns (address[] set, uint64 height, uint256 rxSeq);
    }
}

/// Most notary blocks scanned in one pass.
pub const MAX_BLOCKS_PER_PASS: u64 = 500;

/// The worker of one `[[eth_outbound]]` link.
pub struct EthWorker {
    name: String,
    link: EthOutboundLink,
    notary: Endpoint,
    validators: Vec<Endpoint>,
    provider: DynProvider,
    relayer: EthAddress,
    wallet: EthereumWallet,
    progress: ProgressFile,
    cfg: Arc<PortalConfig>,
    metrics: Arc<Metrics>,
}

/// What the destination holds for the source.
struct Ends {
    src: String,
    dst: String,
    bmc: EthBmc::EthBmcInstance<DynProvider>,
    verifier: EthVerifier::EthVerifierInstance<DynProvider>,
}

fn eth_err(url: &str, what: impl std::fmt::Display) -> PortalError {
    PortalError::Eth {
        endpoint: url.to_string(),
        what: what.to_string(),
    }
}

/// Reads the relayer's Ethereum key (`PORTAL_ETH_KEY`, or `key_file`: a hex secret on its
/// first line, or an encrypted keystore).
fn load_key(link: &EthOutboundLink) -> Result<PrivateKeySigner, PortalError> {
    let text = match std::env::var("PORTAL_ETH_KEY") {
        Ok(k) => k,
        Err(_) => std::fs::read_to_string(&link.key_file).map_err(|e| {
            PortalError::Config(format!(
                "{}: key_file {}: {e}",
                link.name,
                link.key_file.display()
            ))
        })?,
    };
    if text.trim_start().starts_with('{') {
        return keystore_key(link, &text);
    }
    text.lines()
        .next()
        .unwrap_or_default()
        .trim()
        .parse()
        .map_err(|_| {
            PortalError::Config(format!(
                "{}: key_file: expected a secret key of 64 hex digits or a keystore",
                link.name
            ))
        })
}

/// The key in an Ethereum keystore file's `text`, decrypted with its password.
fn keystore_key(link: &EthOutboundLink, text: &str) -> Result<PrivateKeySigner, PortalError> {
    let bad = |what: String| PortalError::Config(format!("{}: key_file: {what}", link.name));
    let ks: Value = serde_json::from_str(text).map_err(|e| bad(format!("not a keystore: {e}")))?;
    let password = match std::env::var("PORTAL_ETH_KEY_PASSWORD") {
        Ok(p) => p,
        Err(_) => {
            let file = link.key_password_file.as_ref().ok_or_else(|| {
                bad("a keystore: set key_password_file or PORTAL_ETH_KEY_PASSWORD".into())
            })?;
            std::fs::read_to_string(file)
                .map_err(|e| bad(format!("key_password_file {}: {e}", file.display())))?
                .lines()
                .next()
                .unwrap_or_default()
                .to_string()
        }
    };
    let key =
        nexus_client::keystore::decrypt_eth(&ks, &password).map_err(|e| bad(e.to_string()))?;
    PrivateKeySigner::from_slice(&key.secret_bytes()).map_err(|e| bad(e.to_string()))
}

impl EthWorker {
    /// A worker for `link`.
    pub fn new(
        link: &EthOutboundLink,
        cfg: Arc<PortalConfig>,
        metrics: Arc<Metrics>,
    ) -> Result<Self, PortalError> {
        let signer = load_key(link)?;
        let relayer = signer.address();
        let wallet = EthereumWallet::from(signer);
        let url = link.destination.as_str();
        url.parse::<alloy::transports::http::reqwest::Url>()
            .map_err(|e| PortalError::Config(format!("{}: destination: {e}", link.name)))?;
        let provider = ProviderBuilder::new()
            .wallet(wallet.clone())
            .connect_client(BoundedHttp::client(url, cfg.limits()))
            .erased();
        let validators = std::iter::once(&link.notary)
            .chain(&link.notary_backups)
            .map(|u| Endpoint::new(u, cfg.limits()))
            .collect();
        Ok(EthWorker {
            name: link.name.clone(),
            notary: Endpoint::with_backups(&link.notary, &link.notary_backups, cfg.limits()),
            validators,
            provider,
            relayer,
            wallet,
            progress: ProgressFile::new(&cfg.state_dir, &link.name),
            link: link.clone(),
            cfg,
            metrics,
        })
    }

    async fn ends(&self) -> Result<Ends, PortalError> {
        let url = &self.link.destination;
        let bmc_addr: EthAddress = self
            .link
            .bmc
            .parse()
            .map_err(|_| PortalError::Config(format!("{}: bmc address", self.name)))?;
        let bmc = EthBmc::new(bmc_addr, self.provider.clone());
        let dst = bmc.network().call().await.map_err(|e| eth_err(url, e))?;
        let v = bmc.verifier().call().await.map_err(|e| eth_err(url, e))?;
        let src = self.notary.network().await?;
        tracing::info!(link = %self.name, %src, %dst, relayer = %self.relayer, "ethereum link");
        Ok(Ends {
            src,
            dst,
            bmc,
            verifier: EthVerifier::new(v, self.provider.clone()),
        })
    }

    /// Sends the relayer's transactions through to receipts, raising fees when one waits.
    fn sender(&self) -> EthSender<'_> {
        EthSender {
            provider: &self.provider,
            relayer: self.relayer,
            wallet: &self.wallet,
            url: &self.link.destination,
            link: &self.name,
            fees: FeePolicy::new(self.link.fee_bump_percent, self.link.max_fee_per_gas_gwei),
            receipt_timeout: Duration::from_millis(self.link.receipt_timeout_ms),
            poll: Duration::from_millis(self.cfg.poll_ms.clamp(20, 1000)),
            metrics: &self.metrics,
        }
    }

    /// Waits until none of the relayer's transactions is pending (after a restart, or while a
    /// replaced one settles), so a pass reads the delivered sequence after them. One still
    /// pending after `receipt_timeout_ms` (a restart while it was stuck) is replaced by an empty
    /// transaction with raised fees.
    async fn settle(&self) -> Result<(), PortalError> {
        let url = &self.link.destination;
        let sender = self.sender();
        let mut since = Instant::now();
        loop {
            let latest = sender.next_nonce().await?;
            let pending = self
                .provider
                .get_transaction_count(self.relayer)
                .pending()
                .await
                .map_err(|e| eth_err(url, e))?;
            if pending <= latest {
                return Ok(());
            }
            if since.elapsed() >= sender.receipt_timeout {
                sender.cancel(latest).await?;
                since = Instant::now();
                continue;
            }
            tokio::time::sleep(sender.poll).await;
        }
    }

    /// Signatures of the decision at `height` from the validators, those in `set` only, and the
    /// decision itself.
    async fn gather(
        &self,
        height: u64,
        set: &[EthAddress],
    ) -> Result<(Decision, Vec<[u8; 65]>, Value), PortalError> {
        let answers =
            futures::future::join_all(self.validators.iter().map(|v| v.decision(height))).await;
        let mut sigs = Vec::new();
        let mut signers = Vec::new();
        let mut first: Option<(Decision, Value)> = None;
        for a in answers.into_iter().flatten() {
            let d = parse_decision(&a).map_err(|what| PortalError::Answer {
                endpoint: self.notary.url().to_string(),
                what,
            })?;
            if first.as_ref().is_some_and(|(f, _)| f.hash() != d.hash()) {
                tracing::warn!(link = %self.name, height, "validators answered different decisions; keeping the first");
                continue;
            }
            if let Some(sig) = a["signature"]
                .as_str()
                .and_then(|s| parse_bytes("signature", s, 65).ok())
            {
                if let Some(who) = signer_of(&d, &sig) {
                    if set.contains(&who) && !signers.contains(&who) {
                        signers.push(who);
                        sigs.push(sig.try_into().unwrap_or([0u8; 65]));
                    }
                }
            }
            if first.is_none() {
                first = Some((d, a));
            }
        }
        let (d, a) = first.ok_or_else(|| PortalError::Answer {
            endpoint: self.notary.url().to_string(),
            what: format!("no validator gave the decision of block {height}"),
        })?;
        Ok((d, sigs, a))
    }

    async fn pass(&self, ends: &Ends, last_log: &mut Instant) -> Result<(), PortalError> {
        let url = &self.link.destination;
        self.settle().await?;
        let start = self
            .progress
            .load()?
            .map(|p| p.height)
            .unwrap_or(self.link.start_height);
        let last = self.notary.last_height().await?;
        // The newest block may not be final yet; its decision waits for the next pass.
        let end = last
            .saturating_sub(1)
            .min(start.saturating_add(MAX_BLOCKS_PER_PASS));
        let ctx = ends
            .verifier
            .context(ends.src.clone())
            .call()
            .await
            .map_err(|e| eth_err(url, e))?;
        let need = ctx.set.len() * 2 / 3 + 1;
        let mut rx = u128::try_from(ctx.rxSeq).unwrap_or(u128::MAX);
        let mut height = start;
        while height < end {
            let h = height + 1;
            let block = self.notary.messages(h).await?;
            // A block that changes the notary set goes too (its decision names the next set,
            // signed by the current one), or the verifier could not follow.
            let rotation = block.validators_change && h > ctx.height;
            let wanted = rotation
                || block
                    .messages
                    .iter()
                    .any(|m| m.next == ends.dst && m.seq > rx);
            if wanted {
                let (d, sigs, answer) = self.gather(h, &ctx.set).await?;
                if sigs.len() < need {
                    return Err(PortalError::Answer {
                        endpoint: self.notary.url().to_string(),
                        what: format!(
                            "block {h}: {} valid signatures of {} notaries, need {need}",
                            sigs.len(),
                            ctx.set.len()
                        ),
                    });
                }
                let items =
                    relay_items(&answer, &ends.dst, rx).map_err(|what| PortalError::Answer {
                        endpoint: self.notary.url().to_string(),
                        what,
                    })?;
                let sigs = &sigs[..need];
                // A rotation goes in one transaction: the verifier changes sets after it, so a
                // second part signed by the old set would no longer verify.
                let mut chunk = if rotation {
                    items.len().max(1)
                } else {
                    self.link.max_messages
                };
                let mut at = 0;
                let mut sent_rotation = false;
                while at < items.len() || (rotation && !sent_rotation) {
                    let part = &items[at..items.len().min(at + chunk)];
                    let relay: Bytes = encode_relay(&d, sigs, part).into();
                    let call = ends.bmc.handleRelayMessage(relay);
                    let gas = call.estimate_gas().await.map_err(|e| eth_err(url, e))?;
                    if gas > self.link.max_gas {
                        if chunk == 1 || rotation {
                            return Err(eth_err(
                                url,
                                format!(
                                    "one message needs {gas} gas, above max_gas {}",
                                    self.link.max_gas
                                ),
                            ));
                        }
                        chunk = chunk.div_ceil(2);
                        continue;
                    }
                    let tx = call
                        .into_transaction_request()
                        .with_gas_limit(gas + gas / 5);
                    let what = format!(
                        "the relay of block {h}'s messages from {}",
                        part.first().map_or(rx, |i| i.seq)
                    );
                    let receipt = self.sender().confirm(tx, &what).await?;
                    if !receipt.status() {
                        return Err(PortalError::Refused {
                            tx: receipt.transaction_hash.to_string(),
                            reason: "handleRelayMessage reverted".into(),
                        });
                    }
                    self.metrics.relayed(&self.name, part.len() as u64);
                    rx = part.last().map(|i| i.seq).unwrap_or(rx);
                    at += part.len();
                    sent_rotation = true;
                }
                if rotation {
                    // The verifier now holds the next set: read it again before going on.
                    tracing::info!(link = %self.name, height = h, set = d.next_set.len(), "notary set rotated on Ethereum");
                    self.progress.save(Progress { height: h })?;
                    return Ok(());
                }
            }
            height = h;
            self.progress.save(Progress { height })?;
        }
        self.metrics
            .progress(&self.name, height, last.saturating_sub(height));
        if last_log.elapsed() >= Duration::from_secs(self.cfg.progress_every_s) {
            *last_log = Instant::now();
            let wei = self
                .provider
                .get_balance(self.relayer)
                .await
                .map_err(|e| eth_err(url, e))?;
            let wei = u128::try_from(wei).unwrap_or(u128::MAX);
            self.metrics.balance(&self.name, wei);
            if wei < self.cfg.low_balance_warning {
                tracing::warn!(link = %self.name, wei, "relayer balance is low on {url}");
            }
            tracing::info!(link = %self.name, height, notary_last = last, delivered_seq = %rx, "progress");
        }
        Ok(())
    }

    /// Runs until `stop` turns true: passes, a pause when caught up, backoff after errors.
    pub async fn run(self, mut stop: tokio::sync::watch::Receiver<bool>) {
        let mut pacing = crate::link_loop::Pacing::new(&self.name, &self.cfg, &self.metrics);
        let mut ends = None;
        let mut last_log = Instant::now() - Duration::from_secs(self.cfg.progress_every_s);
        loop {
            let step = async {
                if ends.is_none() {
                    ends = Some(self.ends().await?);
                }
                match &ends {
                    Some(e) => self.pass(e, &mut last_log).await,
                    None => Ok(()),
                }
            };
            if pacing.pause(step.await, &mut stop).await {
                return;
            }
        }
    }
}

fn hash_field(v: &Value, k: &str) -> Result<Hash32, String> {
    Hash32::parse(k, v[k].as_str().unwrap_or_default()).map_err(|e| e.to_string())
}

/// The decision in a `btp_getDecision` answer (recomputed here, never taken on trust).
fn parse_decision(v: &Value) -> Result<Decision, String> {
    Ok(Decision {
        src: v["src"]
            .as_str()
            .ok_or("src: expected a string")?
            .to_string(),
        height: parse_u64("height", v["height"].as_str().unwrap_or_default())
            .map_err(|e| e.to_string())?,
        block_hash: hash_field(v, "blockHash")?,
        messages_root: hash_field(v, "messagesRoot")?,
        next_set: match v["nextSet"].as_array() {
            None => vec![],
            Some(list) if list.len() > 256 => {
                return Err(format!("nextSet of {} addresses", list.len()))
            }
            Some(list) => list
                .iter()
                .map(|a| {
                    parse_bytes("nextSet", a.as_str().unwrap_or_default(), 20)
                        .ok()
                        .and_then(|b| <[u8; 20]>::try_from(b.as_slice()).ok())
                        .ok_or_else(|| format!("nextSet: expected 20-byte addresses, got {a}"))
                })
                .collect::<Result<_, _>>()?,
        },
    })
}

/// The Ethereum address that signed `d`, if the signature is well formed.
fn signer_of(d: &Decision, sig: &[u8]) -> Option<EthAddress> {
    let mut icon: [u8; 65] = sig.try_into().ok()?;
    icon[64] = icon[64].checked_sub(27)?;
    let public = Signature(icon).recover(&d.hash()).ok()?;
    Some(EthAddress::from(eth_address_of(
        &public.serialize_uncompressed(),
    )))
}

/// The messages of a decision answer for `dst` after sequence `rx`, in order.
fn relay_items(v: &Value, dst: &str, rx: u128) -> Result<Vec<RelayItem>, String> {
    let list = v["messages"]
        .as_array()
        .ok_or("messages: expected a list")?;
    let mut out = Vec::new();
    for m in list.iter().filter(|m| m["next"] == dst) {
        let seq =
            parse_u128("seq", m["seq"].as_str().unwrap_or_default()).map_err(|e| e.to_string())?;
        if seq <= rx {
            continue;
        }
        let siblings = m["path"]
            .as_array()
            .ok_or("path: expected a list")?
            .iter()
            .map(|s| {
                Hash32::parse("path", s.as_str().unwrap_or_default()).map_err(|e| e.to_string())
            })
            .collect::<Result<Vec<_>, _>>()?;
        if siblings.len() > 64 {
            return Err(format!("path of {} siblings", siblings.len()));
        }
        out.push(RelayItem {
            seq,
            msg: parse_bytes(
                "msg",
                m["msg"].as_str().unwrap_or_default(),
                nexus_proto::btp::MAX_MESSAGE_BYTES,
            )
            .map_err(|e| e.to_string())?,
            path: MessagePath {
                siblings,
                sides: parse_u128("sides", m["sides"].as_str().unwrap_or_default())
                    .map_err(|e| e.to_string())?,
            },
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use nexus_btp::decision::{eth_address, leaf_hash, MessageTree};
    use nexus_proto::value::format_bytes;
    use nexus_proto::KeyPair;
    use serde_json::json;

    fn answer(key: &KeyPair) -> (Decision, Value) {
        let msgs = [
            ("0x539.eth", 1u128, b"a".to_vec()),
            ("0x2.loop", 7, b"b".to_vec()),
            ("0x539.eth", 2, b"c".to_vec()),
        ];
        let tree =
            MessageTree::new(msgs.iter().map(|(n, s, m)| leaf_hash(n, *s, m)).collect()).unwrap();
        let d = Decision {
            src: "0x1.loop".into(),
            height: 5,
            block_hash: Hash32([3; 32]),
            messages_root: tree.root(),
            next_set: vec![],
        };
        let messages: Vec<Value> = msgs
            .iter()
            .enumerate()
            .map(|(i, (n, s, m))| {
                let p = tree.path(i).unwrap();
                json!({"next": n, "seq": format!("{s:#x}"), "msg": format_bytes(m),
                       "path": p.siblings.iter().map(|h| h.to_string()).collect::<Vec<_>>(),
                       "sides": format!("{:#x}", p.sides)})
            })
            .collect();
        let v = json!({"src": d.src, "height": "0x5", "blockHash": d.block_hash.to_string(),
                       "messagesRoot": d.messages_root.to_string(), "messages": messages,
                       "signature": format_bytes(&d.sign(key))});
        (d, v)
    }

    /// An Ethereum keystore of `key` (its address without 0x, as geth writes it).
    fn eth_keystore(key: &KeyPair, password: &str) -> String {
        let mut ks = nexus_client::keystore::encrypt(key, password).unwrap();
        ks["address"] = alloy::primitives::hex::encode(eth_address(key)).into();
        ks.as_object_mut().unwrap().remove("coinType");
        ks.to_string()
    }

    /// A link whose key is `key` and password `password` (files in `dir`).
    fn link_with(dir: &std::path::Path, key: &str, password: Option<&str>) -> EthOutboundLink {
        std::fs::write(dir.join("eth.key"), key).unwrap();
        let mut text = format!(
            "name = \"l\"\nnotary = \"http://h:1/api/v3/n\"\ndestination = \"http://h:2\"\n\
             bmc = \"0x5FbDB2315678afecb367f032d93F642f64180aa3\"\nkey_file = {:?}\n",
            dir.join("eth.key")
        );
        if let Some(p) = password {
            std::fs::write(dir.join("eth.password"), format!("{p}\n")).unwrap();
            text += &format!("key_password_file = {:?}\n", dir.join("eth.password"));
        }
        toml::from_str(&text).unwrap()
    }

    #[test]
    fn the_relayer_key_comes_from_a_hex_secret_or_an_ethereum_keystore() {
        let dir = tempfile::tempdir().unwrap();
        let key = KeyPair::generate();
        let want = EthAddress::from(eth_address(&key));
        let secret = alloy::primitives::hex::encode(key.secret_bytes());
        let hex_key = link_with(dir.path(), &format!("0x{secret}\n"), None);
        assert_eq!(load_key(&hex_key).unwrap().address(), want);
        let ks = link_with(dir.path(), &eth_keystore(&key, "pw"), Some("pw"));
        assert_eq!(load_key(&ks).unwrap().address(), want);
    }

    #[test]
    fn a_keystore_without_its_password_or_naming_another_address_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let key = KeyPair::generate();
        let named = |l: &EthOutboundLink| load_key(l).unwrap_err().to_string();
        let no_password = link_with(dir.path(), &eth_keystore(&key, "pw"), None);
        assert!(
            named(&no_password).contains("key_password_file"),
            "{}",
            named(&no_password)
        );
        let wrong = link_with(dir.path(), &eth_keystore(&key, "pw"), Some("guess"));
        assert!(named(&wrong).contains("password"), "{}", named(&wrong));
        let mut other: Value = serde_json::from_str(&eth_keystore(&key, "pw")).unwrap();
        other["address"] = "00".repeat(20).into();
        let other = link_with(dir.path(), &other.to_string(), Some("pw"));
        assert!(
            named(&other).contains("does not match"),
            "{}",
            named(&other)
        );
        let junk = link_with(dir.path(), "{\"crypto\": 1", Some("x"));
        assert!(named(&junk).contains("not a keystore"), "{}", named(&junk));
        let short = link_with(dir.path(), "0x1234\n", None);
        assert!(named(&short).contains("64 hex digits"), "{}", named(&short));
    }

    #[test]
    fn the_decision_is_recomputed_and_the_signer_recovered() {
        let k = KeyPair::generate();
        let (d, v) = answer(&k);
        assert_eq!(parse_decision(&v).unwrap(), d);
        let sig = parse_bytes("s", v["signature"].as_str().unwrap(), 65).unwrap();
        assert_eq!(signer_of(&d, &sig), Some(EthAddress::from(eth_address(&k))));
        let mut other = d.clone();
        other.height = 6;
        assert_ne!(
            signer_of(&other, &sig),
            Some(EthAddress::from(eth_address(&k)))
        );
        let mut bad = sig.clone();
        bad[64] = 3;
        assert_eq!(signer_of(&d, &bad), None, "v below 27");
        assert!(
            parse_decision(&json!({"src": "x", "height": "0x5", "blockHash": "0x12"})).is_err()
        );
    }

    #[test]
    fn relay_items_keep_the_destinations_messages_after_the_delivered_sequence() {
        let (d, v) = answer(&KeyPair::generate());
        let items = relay_items(&v, "0x539.eth", 0).unwrap();
        assert_eq!(items.iter().map(|i| i.seq).collect::<Vec<_>>(), vec![1, 2]);
        for (i, idx) in items.iter().zip([0usize, 2]) {
            let leaf = leaf_hash("0x539.eth", i.seq, &i.msg);
            assert_eq!(
                MessageTree::root_from(leaf, &i.path),
                d.messages_root,
                "leaf {idx}"
            );
        }
        assert_eq!(relay_items(&v, "0x539.eth", 1).unwrap().len(), 1);
        assert!(relay_items(&v, "0x9.eth", 0).unwrap().is_empty());
        let mut long = v.clone();
        long["messages"][0]["path"] = json!(vec![Hash32::ZERO.to_string(); 65]);
        assert!(relay_items(&long, "0x539.eth", 0).is_err());
    }
}
