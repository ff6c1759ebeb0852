//! An Ethereum chain's BMC messages into its notary channel on Nexus. Each pass reads what the
//! notary's Ethereum light client holds (its head and the last sequence number, from
//! `getStatus`), takes the next headers from the Ethereum node (each re-encoded from the
//! node's answer and checked to hash to the block hash the node gave), finds the BMC's
//! `Message` logs with a sequence number above the notary's in blocks that those headers
//! confirm, proves each receipt against its block's `receiptsRoot` (the receipts re-encoded
//! and their root checked before anything is sent), and submits headers and proofs in one
//! `relay` transaction. Everything it reads is checked again by every notary validator.

use crate::config::{EthInboundLink, PortalConfig};
use crate::endpoint::{Endpoint, FoundMessage};
use crate::metrics::Metrics;
use crate::progress::{Progress, ProgressFile};
use crate::PortalError;
use alloy::primitives::{Address as EthAddress, B256};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::rpc::types::{Filter, TransactionReceipt};
use nexus_client::eth_transport::BoundedHttp;
use nexus_light_clients::ethereum::{
    receipt_nodes, receipts_root, EthLog, EthReceipt, EthUpdate, ReceiptProof,
};
use nexus_proto::hash::keccak256;
use nexus_proto::value::{format_bytes, parse_u128, parse_u64};
use nexus_proto::{Address, Hash32, KeyPair};
use serde_json::{json, Map};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The worker of one `[[eth_inbound]]` link.
pub struct EthInbound {
    name: String,
    link: EthInboundLink,
    provider: DynProvider,
    bmc: EthAddress,
    notary: Endpoint,
    key: Arc<KeyPair>,
    progress: ProgressFile,
    cfg: Arc<PortalConfig>,
    metrics: Arc<Metrics>,
}

fn eth_err(url: &str, what: impl std::fmt::Display) -> PortalError {
    PortalError::Eth {
        endpoint: url.to_string(),
        what: what.to_string(),
    }
}

/// The EIP-2718 encoding of a receipt as the node reports it.
pub fn encode_receipt(r: &TransactionReceipt) -> Vec<u8> {
    let env = &r.inner;
    EthReceipt {
        tx_type: env.tx_type() as u8,
        success: env.status(),
        cumulative_gas: env.cumulative_gas_used(),
        bloom: env.logs_bloom().as_slice().to_vec(),
        logs: env
            .logs()
            .iter()
            .map(|l| EthLog {
                address: l.address().into(),
                topics: l.topics().iter().map(|t| Hash32(t.0)).collect(),
                data: l.data().data.to_vec(),
            })
            .collect(),
    }
    .encode()
}

impl EthInbound {
    /// A worker for `link`, relaying with the portal's ICON key.
    pub fn new(
        link: &EthInboundLink,
        key: Arc<KeyPair>,
        cfg: Arc<PortalConfig>,
        metrics: Arc<Metrics>,
    ) -> Result<Self, PortalError> {
        let url = link.source.as_str();
        url.parse::<alloy::transports::http::reqwest::Url>()
            .map_err(|e| PortalError::Config(format!("{}: source: {e}", link.name)))?;
        let bmc = link
            .bmc
            .parse()
            .map_err(|_| PortalError::Config(format!("{}: bmc address", link.name)))?;
        Ok(EthInbound {
            name: link.name.clone(),
            provider: ProviderBuilder::new()
                .connect_client(BoundedHttp::client(url, cfg.limits()))
                .erased(),
            bmc,
            notary: Endpoint::with_backups(&link.notary, &link.notary_backups, cfg.limits()),
            key,
            progress: ProgressFile::new(&cfg.state_dir, &link.name),
            link: link.clone(),
            cfg,
            metrics,
        })
    }

    /// The header RLP of block `n`, checked to hash to the node's block hash.
    async fn header(&self, n: u64) -> Result<(Vec<u8>, B256, B256), PortalError> {
        let url = &self.link.source;
        let block = self
            .provider
            .get_block_by_number(n.into())
            .await
            .map_err(|e| eth_err(url, e))?
            .ok_or_else(|| eth_err(url, format!("no block {n}")))?;
        let raw = alloy::rlp::encode(&block.header.inner);
        if keccak256(&[&raw]).0 != block.header.hash.0 {
            return Err(eth_err(
                url,
                format!("block {n}: the header as encoded here does not hash to the node's hash"),
            ));
        }
        Ok((raw, block.header.hash, block.header.receipts_root))
    }

    /// Proofs of the BMC's message logs with a sequence number above `rx` in block `n`.
    async fn proofs(
        &self,
        n: u64,
        root: B256,
        rx: u128,
        logs: &[alloy::rpc::types::Log],
    ) -> Result<Vec<FoundMessage>, PortalError> {
        let url = &self.link.source;
        let receipts = self
            .provider
            .get_block_receipts(n.into())
            .await
            .map_err(|e| eth_err(url, e))?
            .ok_or_else(|| eth_err(url, format!("no receipts for block {n}")))?;
        let encoded: Vec<Vec<u8>> = receipts.iter().map(encode_receipt).collect();
        if receipts_root(&encoded).0 != root.0 {
            return Err(eth_err(
                url,
                format!("block {n}: the receipts as encoded here do not match its receiptsRoot"),
            ));
        }
        let mut found = Vec::new();
        for l in logs {
            let seq = l
                .topics()
                .get(1)
                .map(|t| alloy::primitives::U256::from_be_bytes(t.0));
            let Some(seq) = seq.and_then(|s| u128::try_from(s).ok()) else {
                continue;
            };
            if seq <= rx {
                continue;
            }
            let (Some(tx), Some(hash)) = (l.transaction_index, l.transaction_hash) else {
                continue;
            };
            let Some(r) = receipts.get(tx as usize) else {
                continue;
            };
            let Some(pos) = r
                .inner
                .logs()
                .iter()
                .position(|x| x.log_index == l.log_index)
            else {
                continue;
            };
            let nodes = receipt_nodes(&encoded, tx as usize)
                .ok_or_else(|| eth_err(url, format!("receipt {tx} of block {n} ({hash})")))?;
            found.push((
                seq,
                ReceiptProof {
                    block: n,
                    index: tx,
                    log: pos as u64,
                    receipt: encoded[tx as usize].clone(),
                    nodes,
                },
            ));
        }
        found.sort_by_key(|(seq, _)| *seq);
        // A receipt carries each of its messages' logs: after its first proof, the next ones of
        // the same receipt go as follow-ons (no receipt, no nodes).
        let mut out = Vec::with_capacity(found.len());
        let mut prev: Option<u64> = None;
        for (seq, mut proof) in found {
            if prev == Some(proof.index) {
                proof.receipt.clear();
                proof.nodes.clear();
            }
            prev = Some(proof.index);
            out.push(FoundMessage {
                next: String::new(),
                seq,
                proof: format_bytes(&proof.encode()),
            });
        }
        Ok(out)
    }

    async fn status(&self, score: &Address) -> Result<(u64, u128, u64), PortalError> {
        let st = self.notary.query(score, "getStatus", json!({})).await?;
        let bad = |what: &str| PortalError::Answer {
            endpoint: self.notary.url().to_string(),
            what: format!("getStatus: {what} in {st}"),
        };
        if st["kind"] != "eth" {
            return Err(bad("the notary's source is not an Ethereum chain"));
        }
        let h =
            parse_u64("height", st["height"].as_str().unwrap_or("")).map_err(|_| bad("height"))?;
        let rx =
            parse_u128("rxSeq", st["rxSeq"].as_str().unwrap_or("")).map_err(|_| bad("rxSeq"))?;
        let c = parse_u64("confirmations", st["confirmations"].as_str().unwrap_or(""))
            .map_err(|_| bad("confirmations"))?;
        Ok((h, rx, c))
    }

    async fn pass(
        &self,
        score: &Address,
        nid: u64,
        last_log: &mut Instant,
    ) -> Result<(), PortalError> {
        let url = &self.link.source;
        let (head, rx, confirmations) = self.status(score).await?;
        let tip = self
            .provider
            .get_block_number()
            .await
            .map_err(|e| eth_err(url, e))?;
        let upto = tip.min(head + self.link.max_headers as u64);
        // Messages the headers relayed now will confirm.
        let scan_from = self.progress.load()?.map(|p| p.height).unwrap_or(0).max(1);
        let scan_to = upto.saturating_sub(confirmations);
        let mut proofs: Vec<(u64, crate::endpoint::FoundMessage)> = Vec::new();
        // Set when the scan stopped early (enough proofs for a relay): blocks from here on wait.
        let mut scan_stopped = None;
        if scan_to >= scan_from {
            let filter = Filter::new()
                .address(self.bmc)
                .event_signature(B256::from(nexus_btp::stored_eth_client::message_topic().0))
                .from_block(scan_from)
                .to_block(scan_to);
            let logs = self
                .provider
                .get_logs(&filter)
                .await
                .map_err(|e| eth_err(url, e))?;
            let mut blocks: Vec<u64> = logs.iter().filter_map(|l| l.block_number).collect();
            blocks.dedup();
            for n in blocks {
                let here: Vec<_> = logs
                    .iter()
                    .filter(|l| l.block_number == Some(n))
                    .cloned()
                    .collect();
                let (_, _, root) = self.header(n).await?;
                proofs.extend(
                    self.proofs(n, root, rx, &here)
                        .await?
                        .into_iter()
                        .map(|p| (n, p)),
                );
                if proofs.len() >= crate::worker::MAX_PROOFS {
                    scan_stopped = Some(n + 1);
                    break;
                }
            }
        }
        // Without messages, headers wait until half a batch is due (one relay instead of one
        // per Ethereum block); the light client needs them all, in order.
        if proofs.is_empty()
            && upto.saturating_sub(head) < (self.link.max_headers as u64).div_ceil(2)
        {
            return Ok(());
        }
        let mut headers = Vec::new();
        for n in head + 1..=upto {
            headers.push(self.header(n).await?.0);
        }
        // What fits in one transaction (see `eth_batch`).
        let sizes: Vec<(u64, usize)> = proofs
            .iter()
            .take(crate::worker::MAX_PROOFS)
            .map(|(n, p)| (*n, p.proof.len() / 2))
            .collect();
        let header_sizes: Vec<usize> = headers.iter().map(Vec::len).collect();
        let plan = crate::eth_batch::plan(
            head,
            upto,
            confirmations,
            &header_sizes,
            &sizes,
            self.cfg.max_batch_bytes,
        );
        headers.truncate(plan.headers_to.saturating_sub(head) as usize);
        proofs.truncate(plan.proofs);
        if headers.is_empty() && proofs.is_empty() {
            return Ok(());
        }
        let mut params = Map::new();
        let updates: Vec<String> = if headers.is_empty() {
            vec![]
        } else {
            vec![format_bytes(&EthUpdate { headers }.encode())]
        };
        params.insert("_updates".into(), json!(updates));
        params.insert(
            "_proofs".into(),
            json!(proofs
                .iter()
                .map(|(_, p)| p.proof.clone())
                .collect::<Vec<_>>()),
        );
        self.notary
            .send_call(&self.key, nid, *score, "relay", params, self.cfg.step_limit)
            .await?;
        self.metrics.relayed(&self.name, proofs.len() as u64);
        let next_scan = plan
            .next_scan
            .min(scan_stopped.unwrap_or(u64::MAX))
            .max(scan_from);
        if next_scan != scan_from {
            self.progress.save(Progress { height: next_scan })?;
        }
        let upto = plan.headers_to;
        self.metrics
            .progress(&self.name, upto, tip.saturating_sub(upto));
        if last_log.elapsed() >= Duration::from_secs(self.cfg.progress_every_s) {
            *last_log = Instant::now();
            tracing::info!(link = %self.name, relayed_headers_to = upto, source_tip = tip, messages = proofs.len(), "progress");
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
                    let (_, score, nid) = self.notary.btp_info().await?;
                    ends = Some((score, nid));
                }
                match &ends {
                    Some((score, nid)) => self.pass(score, *nid, &mut last_log).await,
                    None => Ok(()),
                }
            };
            if pacing.pause(step.await, &mut stop).await {
                return;
            }
        }
    }
}
