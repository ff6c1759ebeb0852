//! The light client of an Ethereum chain: it trusts a checkpoint header, then accepts headers
//! that extend what it holds by parent hash, and checks receipt proofs against the
//! `receiptsRoot` of headers buried under enough others.
//!
//! 1. A header is accepted if it is the next number and names the head as its parent, or if it
//!    replaces a header that is not yet confirmed (a reorg: its parent is a held header and its
//!    number is within `confirmations` of the head); the replaced header and its descendants go.
//! 2. An event proof names a held header with at least `confirmations` headers above it, the
//!    receipt's index in the block, the receipt (EIP-2718 bytes), the Merkle-Patricia nodes from
//!    `receiptsRoot` down to it, and a log index. The proof must lead from the root to exactly
//!    that receipt at key `rlp(index)`, the receipt must be a success, and the log must exist;
//!    the caller then matches the log's address and topics (see [`EthLog`]).
//!
//! What this does not check: that a header is valid under Ethereum's consensus (proof of stake
//! signatures). On a dev chain there is nothing to check; a notary validator compares every
//! header hash with its own Ethereum endpoint before it votes. Mainnet needs sync-committee
//! verification, which plugs in at [`HeaderCheck`].

use crate::{LightClient, LightClientError};
use alloy_primitives::{Bytes, B256};
use alloy_rlp::{Decodable, Encodable, Header};
use alloy_trie::{proof::ProofRetainer, HashBuilder, Nibbles};
use nexus_proto::hash::keccak256;
use nexus_proto::Hash32;
use std::collections::BTreeMap;

/// Headers held (older ones are forgotten, oldest first).
pub const KEEP_HEADERS: usize = 1024;
/// Largest encoded header accepted (about 600 bytes today).
pub const MAX_HEADER_BYTES: usize = 4096;
/// Most headers in one update.
pub const MAX_UPDATE_HEADERS: usize = 256;
/// Largest encoded update accepted.
pub const MAX_UPDATE_BYTES: usize = 256 * 1024;
/// Largest encoded receipt proof accepted.
pub const MAX_PROOF_BYTES: usize = 128 * 1024;
/// Most trie nodes in a proof (a key `rlp(index)` has at most 6 nibbles, so 7 nodes; spare room).
pub const MAX_PROOF_NODES: usize = 16;
/// Refusals of lists past the bounds above, met while decoding (a test checks the numbers).
const TOO_MANY_HEADERS: &str = "more than 256 headers";
const TOO_MANY_NODES: &str = "more than 16 proof nodes";
/// Most topics a log may have (LOG0..LOG4).
pub const MAX_TOPICS: usize = 4;

fn decode_err(what: &str, e: impl std::fmt::Display) -> LightClientError {
    LightClientError::Decode(format!("{what}: {e}"))
}

/// The parts of an Ethereum header the client uses, with its hash (Keccak-256 of the RLP).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EthHeader {
    /// Keccak-256 of the encoded header: the block hash.
    pub hash: Hash32,
    /// `parentHash`.
    pub parent: Hash32,
    /// `number`.
    pub number: u64,
    /// `receiptsRoot`.
    pub receipts_root: Hash32,
    /// `timestamp`.
    pub timestamp: u64,
}

fn hash_item(buf: &mut &[u8], what: &str) -> Result<Hash32, LightClientError> {
    let b = Bytes::decode(buf).map_err(|e| decode_err(what, e))?;
    let arr: [u8; 32] = b.as_ref().try_into().map_err(|_| {
        LightClientError::Decode(format!("{what}: expected 32 bytes, got {}", b.len()))
    })?;
    Ok(Hash32(arr))
}

fn skip_item(buf: &mut &[u8], what: &str) -> Result<(), LightClientError> {
    let h = Header::decode(buf).map_err(|e| decode_err(what, e))?;
    if h.payload_length > buf.len() {
        return Err(LightClientError::Decode(format!("{what}: truncated")));
    }
    *buf = &buf[h.payload_length..];
    Ok(())
}

impl EthHeader {
    /// Decodes an RLP-encoded header of any fork since Frontier (15 fields or more), bounded.
    pub fn decode(raw: &[u8]) -> Result<Self, LightClientError> {
        if raw.len() > MAX_HEADER_BYTES {
            return Err(LightClientError::Decode(format!(
                "header of {} bytes exceeds {MAX_HEADER_BYTES}",
                raw.len()
            )));
        }
        let mut buf = raw;
        let h = Header::decode(&mut buf).map_err(|e| decode_err("header", e))?;
        if !h.list || h.payload_length != buf.len() {
            return Err(LightClientError::Decode(
                "header: expected one RLP list and nothing after it".into(),
            ));
        }
        let parent = hash_item(&mut buf, "parentHash")?;
        skip_item(&mut buf, "ommersHash")?;
        skip_item(&mut buf, "beneficiary")?;
        skip_item(&mut buf, "stateRoot")?;
        skip_item(&mut buf, "transactionsRoot")?;
        let receipts_root = hash_item(&mut buf, "receiptsRoot")?;
        skip_item(&mut buf, "logsBloom")?;
        skip_item(&mut buf, "difficulty")?;
        let number = u64::decode(&mut buf).map_err(|e| decode_err("number", e))?;
        skip_item(&mut buf, "gasLimit")?;
        skip_item(&mut buf, "gasUsed")?;
        let timestamp = u64::decode(&mut buf).map_err(|e| decode_err("timestamp", e))?;
        for what in ["extraData", "mixHash", "nonce"] {
            skip_item(&mut buf, what)?;
        }
        while !buf.is_empty() {
            skip_item(&mut buf, "header field")?;
        }
        Ok(EthHeader {
            hash: keccak256(&[raw]),
            parent,
            number,
            receipts_root,
            timestamp,
        })
    }
}

/// Headers that extend the client's chain, oldest first (each the RLP of one header).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EthUpdate {
    /// The encoded headers.
    pub headers: Vec<Vec<u8>>,
}

impl EthUpdate {
    /// Encodes as an RLP list of byte strings.
    pub fn encode(&self) -> Vec<u8> {
        let items: Vec<Bytes> = self.headers.iter().cloned().map(Bytes::from).collect();
        alloy_rlp::encode(items)
    }

    /// Decodes [`EthUpdate::encode`], bounded.
    pub fn decode(bytes: &[u8]) -> Result<Self, LightClientError> {
        if bytes.len() > MAX_UPDATE_BYTES {
            return Err(LightClientError::Decode(format!(
                "update of {} bytes exceeds {MAX_UPDATE_BYTES}",
                bytes.len()
            )));
        }
        let mut buf = bytes;
        let items: Vec<Bytes> =
            nexus_proto::decode_list_at_most(&mut buf, MAX_UPDATE_HEADERS, TOO_MANY_HEADERS)
                .map_err(|e| decode_err("update", e))?;
        if !buf.is_empty() {
            return Err(LightClientError::Decode(
                "update: bytes after the header list".into(),
            ));
        }
        if items.is_empty() || items.len() > MAX_UPDATE_HEADERS {
            return Err(LightClientError::Decode(format!(
                "update: expected 1..={MAX_UPDATE_HEADERS} headers, got {}",
                items.len()
            )));
        }
        Ok(EthUpdate {
            headers: items.into_iter().map(|b| b.to_vec()).collect(),
        })
    }
}

/// One log of a receipt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EthLog {
    /// The contract that emitted it.
    pub address: [u8; 20],
    /// Its topics (the first is the event signature's Keccak-256 for Solidity events).
    pub topics: Vec<Hash32>,
    /// Its data.
    pub data: Vec<u8>,
}

impl EthLog {
    /// True when the log was emitted by `address` with `topic0` as its first topic.
    pub fn matches(&self, address: &[u8; 20], topic0: &Hash32) -> bool {
        &self.address == address && self.topics.first() == Some(topic0)
    }

    fn encode(&self, out: &mut Vec<u8>) {
        let topics: Vec<B256> = self.topics.iter().map(|t| B256::from(t.0)).collect();
        let address = alloy_primitives::Address::from(self.address);
        let data = Bytes::from(self.data.clone());
        let items: [&dyn Encodable; 3] = [&address, &topics, &data];
        list(out, &items);
    }
}

fn list(out: &mut Vec<u8>, items: &[&dyn Encodable]) {
    let payload_length = items.iter().map(|i| i.length()).sum();
    Header {
        list: true,
        payload_length,
    }
    .encode(out);
    for i in items {
        i.encode(out);
    }
}

/// A decoded receipt: whether its transaction succeeded, and its logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EthReceipt {
    /// EIP-2718 type (0 for legacy).
    pub tx_type: u8,
    /// True when the transaction succeeded.
    pub success: bool,
    /// Gas used by the block up to and including this transaction.
    pub cumulative_gas: u64,
    /// The 256-byte bloom filter.
    pub bloom: Vec<u8>,
    /// The logs.
    pub logs: Vec<EthLog>,
}

impl EthReceipt {
    /// The EIP-2718 encoding, as committed in `receiptsRoot`.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        if self.tx_type != 0 {
            out.push(self.tx_type);
        }
        let status: u64 = self.success.into();
        let bloom = Bytes::from(self.bloom.clone());
        let mut logs = Vec::new();
        let mut payload = 0;
        let encoded: Vec<Vec<u8>> = self
            .logs
            .iter()
            .map(|l| {
                let mut b = Vec::new();
                l.encode(&mut b);
                payload += b.len();
                b
            })
            .collect();
        Header {
            list: true,
            payload_length: payload,
        }
        .encode(&mut logs);
        for e in encoded {
            logs.extend(e);
        }
        let raw_logs = RawRlp(logs);
        let items: [&dyn Encodable; 4] = [&status, &self.cumulative_gas, &bloom, &raw_logs];
        list(&mut out, &items);
        out
    }

    /// Decodes an EIP-2718 receipt (legacy or typed 1 to 4), bounded by its input.
    pub fn decode(raw: &[u8]) -> Result<Self, LightClientError> {
        let (tx_type, mut buf) = match raw.first() {
            Some(&t) if (1..=4).contains(&t) => (t, &raw[1..]),
            Some(&t) if t >= 0xc0 => (0, raw),
            Some(&t) => {
                return Err(LightClientError::Decode(format!(
                    "receipt: expected a legacy list or type 1..=4, got type {t:#x}"
                )))
            }
            None => return Err(LightClientError::Decode("receipt: empty".into())),
        };
        let h = Header::decode(&mut buf).map_err(|e| decode_err("receipt", e))?;
        if !h.list || h.payload_length != buf.len() {
            return Err(LightClientError::Decode(
                "receipt: expected one RLP list and nothing after it".into(),
            ));
        }
        let status = Bytes::decode(&mut buf).map_err(|e| decode_err("receipt status", e))?;
        let success = match status.as_ref() {
            [] => false,
            [1] => true,
            other => {
                return Err(LightClientError::Decode(format!(
                    "receipt status: expected empty or 0x01 (post-Byzantium), got {} bytes",
                    other.len()
                )))
            }
        };
        let cumulative_gas = u64::decode(&mut buf).map_err(|e| decode_err("cumulativeGas", e))?;
        let bloom = Bytes::decode(&mut buf).map_err(|e| decode_err("logsBloom", e))?;
        if bloom.len() != 256 {
            return Err(LightClientError::Decode(format!(
                "logsBloom: expected 256 bytes, got {}",
                bloom.len()
            )));
        }
        let lh = Header::decode(&mut buf).map_err(|e| decode_err("logs", e))?;
        if !lh.list || lh.payload_length != buf.len() {
            return Err(LightClientError::Decode(
                "logs: expected the last field to be the log list".into(),
            ));
        }
        let mut logs = Vec::new();
        while !buf.is_empty() {
            logs.push(decode_log(&mut buf)?);
        }
        Ok(EthReceipt {
            tx_type,
            success,
            cumulative_gas,
            bloom: bloom.to_vec(),
            logs,
        })
    }
}

struct RawRlp(Vec<u8>);

impl Encodable for RawRlp {
    fn encode(&self, out: &mut dyn alloy_rlp::BufMut) {
        out.put_slice(&self.0);
    }
    fn length(&self) -> usize {
        self.0.len()
    }
}

fn decode_log(buf: &mut &[u8]) -> Result<EthLog, LightClientError> {
    let h = Header::decode(buf).map_err(|e| decode_err("log", e))?;
    if !h.list || h.payload_length > buf.len() {
        return Err(LightClientError::Decode("log: expected a list".into()));
    }
    let (mut body, rest) = buf.split_at(h.payload_length);
    *buf = rest;
    let address =
        alloy_primitives::Address::decode(&mut body).map_err(|e| decode_err("log address", e))?;
    let th = Header::decode(&mut body).map_err(|e| decode_err("log topics", e))?;
    if !th.list || th.payload_length > body.len() {
        return Err(LightClientError::Decode(
            "log topics: expected a list".into(),
        ));
    }
    let (mut tbuf, mut after) = body.split_at(th.payload_length);
    let mut topics = Vec::new();
    while !tbuf.is_empty() {
        if topics.len() == MAX_TOPICS {
            return Err(LightClientError::Decode(format!(
                "log topics: more than {MAX_TOPICS}"
            )));
        }
        topics.push(hash_item(&mut tbuf, "log topic")?);
    }
    let data = Bytes::decode(&mut after).map_err(|e| decode_err("log data", e))?;
    if !after.is_empty() {
        return Err(LightClientError::Decode(
            "log: expected [address, topics, data]".into(),
        ));
    }
    Ok(EthLog {
        address: address.into(),
        topics,
        data: data.to_vec(),
    })
}

/// A receipt and its Merkle-Patricia path from a block's `receiptsRoot`, naming one of its logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiptProof {
    /// The block number.
    pub block: u64,
    /// The receipt's (transaction's) index in the block.
    pub index: u64,
    /// The log's index in the receipt.
    pub log: u64,
    /// The receipt, EIP-2718 encoded.
    pub receipt: Vec<u8>,
    /// The trie nodes from the root down to the receipt's leaf.
    pub nodes: Vec<Vec<u8>>,
}

impl ReceiptProof {
    /// Encodes as `RLP[block, index, log, receipt, [nodes...]]`.
    pub fn encode(&self) -> Vec<u8> {
        let receipt = Bytes::from(self.receipt.clone());
        let nodes: Vec<Bytes> = self.nodes.iter().cloned().map(Bytes::from).collect();
        let items: [&dyn Encodable; 5] = [&self.block, &self.index, &self.log, &receipt, &nodes];
        let mut out = Vec::new();
        list(&mut out, &items);
        out
    }

    /// Decodes [`ReceiptProof::encode`], bounded.
    pub fn decode(bytes: &[u8]) -> Result<Self, LightClientError> {
        if bytes.len() > MAX_PROOF_BYTES {
            return Err(LightClientError::Decode(format!(
                "receipt proof of {} bytes exceeds {MAX_PROOF_BYTES}",
                bytes.len()
            )));
        }
        let mut buf = bytes;
        let h = Header::decode(&mut buf).map_err(|e| decode_err("receipt proof", e))?;
        if !h.list || h.payload_length != buf.len() {
            return Err(LightClientError::Decode(
                "receipt proof: expected one RLP list and nothing after it".into(),
            ));
        }
        let block = u64::decode(&mut buf).map_err(|e| decode_err("block", e))?;
        let index = u64::decode(&mut buf).map_err(|e| decode_err("index", e))?;
        let log = u64::decode(&mut buf).map_err(|e| decode_err("log", e))?;
        let receipt = Bytes::decode(&mut buf).map_err(|e| decode_err("receipt", e))?;
        let nodes: Vec<Bytes> =
            nexus_proto::decode_list_at_most(&mut buf, MAX_PROOF_NODES, TOO_MANY_NODES)
                .map_err(|e| decode_err("nodes", e))?;
        if !buf.is_empty() {
            return Err(LightClientError::Decode(
                "receipt proof: expected [block, index, log, receipt, nodes]".into(),
            ));
        }
        let follow_on = receipt.is_empty() && nodes.is_empty();
        if !follow_on && (nodes.is_empty() || nodes.len() > MAX_PROOF_NODES) {
            return Err(LightClientError::Decode(format!(
                "receipt proof: expected 1..={MAX_PROOF_NODES} nodes, got {}",
                nodes.len()
            )));
        }
        Ok(ReceiptProof {
            block,
            index,
            log,
            receipt: receipt.to_vec(),
            nodes: nodes.into_iter().map(|b| b.to_vec()).collect(),
        })
    }

    /// A follow-on proof (no receipt, no nodes) names another log of the receipt the previous
    /// proof of the same relay proved: one receipt of many messages travels once.
    pub fn is_follow_on(&self) -> bool {
        self.receipt.is_empty() && self.nodes.is_empty()
    }

    /// The named log of `receipt` (the encoded receipt a previous proof verified for this
    /// block and index), for a follow-on proof.
    pub fn follow_on_log(
        &self,
        block: u64,
        index: u64,
        receipt: &[u8],
    ) -> Result<EthLog, LightClientError> {
        if !self.is_follow_on() || block != self.block || index != self.index {
            return Err(LightClientError::Proof(format!(
                "a proof without its receipt must follow a proof of the same receipt ({} of block {}), not of receipt {index} of block {block}",
                self.index, self.block
            )));
        }
        self.log_in(receipt)
    }

    fn log_in(&self, receipt: &[u8]) -> Result<EthLog, LightClientError> {
        let receipt = EthReceipt::decode(receipt)?;
        if !receipt.success {
            return Err(LightClientError::Proof(format!(
                "receipt {} of block {} is of a failed transaction",
                self.index, self.block
            )));
        }
        let n = receipt.logs.len();
        usize::try_from(self.log)
            .ok()
            .and_then(|i| receipt.logs.into_iter().nth(i))
            .ok_or_else(|| {
                LightClientError::Proof(format!(
                    "log {} is not in receipt {} of block {} ({n} logs)",
                    self.log, self.index, self.block
                ))
            })
    }

    /// Checks the path from `receipts_root` to the receipt and returns the named log.
    pub fn verify(&self, receipts_root: &Hash32) -> Result<EthLog, LightClientError> {
        if self.is_follow_on() {
            return Err(LightClientError::Proof(format!(
                "a proof without its receipt must follow a proof of receipt {} of block {}",
                self.index, self.block
            )));
        }
        let key = Nibbles::unpack(alloy_rlp::encode(self.index));
        let nodes: Vec<Bytes> = self.nodes.iter().cloned().map(Bytes::from).collect();
        alloy_trie::proof::verify_proof(
            B256::from(receipts_root.0),
            key,
            Some(self.receipt.clone()),
            nodes.iter(),
        )
        .map_err(|e| {
            LightClientError::Proof(format!(
                "receipt {} of block {} is not under receiptsRoot {receipts_root}: {e}",
                self.index, self.block
            ))
        })?;
        self.log_in(&self.receipt)
    }
}

/// The receipts root of a block's encoded receipts (an ordered Merkle-Patricia trie keyed by
/// `rlp(index)`).
pub fn receipts_root(receipts: &[Vec<u8>]) -> Hash32 {
    build_trie(receipts, None).0
}

/// The trie nodes proving receipt `index` of `receipts` (what a relayer attaches).
pub fn receipt_nodes(receipts: &[Vec<u8>], index: usize) -> Option<Vec<Vec<u8>>> {
    (index < receipts.len()).then(|| build_trie(receipts, Some(index)).1)
}

fn build_trie(receipts: &[Vec<u8>], target: Option<usize>) -> (Hash32, Vec<Vec<u8>>) {
    let mut keyed: Vec<(Nibbles, &Vec<u8>)> = receipts
        .iter()
        .enumerate()
        .map(|(i, r)| (Nibbles::unpack(alloy_rlp::encode(i as u64)), r))
        .collect();
    keyed.sort_by_key(|k| k.0);
    let target_key = target.map(|i| Nibbles::unpack(alloy_rlp::encode(i as u64)));
    let mut hb = HashBuilder::default()
        .with_proof_retainer(ProofRetainer::new(target_key.iter().copied().collect()));
    for (k, v) in keyed {
        hb.add_leaf(k, v);
    }
    let root = Hash32(hb.root().0);
    let nodes = match target_key {
        Some(t) => hb
            .take_proof_nodes()
            .matching_nodes_sorted(&t)
            .into_iter()
            .map(|(_, n)| n.to_vec())
            .collect(),
        None => Vec::new(),
    };
    (root, nodes)
}

/// The seam for checking a header under the chain's consensus (sync-committee signatures on
/// mainnet). A dev chain has nothing to check: [`NoConsensusCheck`].
pub trait HeaderCheck {
    /// Accepts or refuses a header before it joins the chain.
    fn check(&self, header: &EthHeader) -> Result<(), LightClientError>;
}

/// Accepts every header (dev chains; the notary's own endpoint is the check).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NoConsensusCheck;

impl HeaderCheck for NoConsensusCheck {
    fn check(&self, _header: &EthHeader) -> Result<(), LightClientError> {
        Ok(())
    }
}

/// A held header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Held {
    /// Block hash.
    pub hash: Hash32,
    /// Receipts root.
    pub receipts_root: Hash32,
}

/// The Ethereum light client (see the module documentation for its rules).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EthClient<C = NoConsensusCheck> {
    chain_id: u64,
    confirmations: u64,
    checkpoint: u64,
    headers: BTreeMap<u64, Held>,
    check: C,
}

impl EthClient<NoConsensusCheck> {
    /// A client that trusts `checkpoint` (an encoded header) and accepts proofs against headers
    /// with at least `confirmations` headers above them.
    pub fn new(
        chain_id: u64,
        checkpoint: &[u8],
        confirmations: u64,
    ) -> Result<Self, LightClientError> {
        Self::with_check(chain_id, checkpoint, confirmations, NoConsensusCheck)
    }
}

impl<C: HeaderCheck> EthClient<C> {
    /// As [`EthClient::new`] with a consensus check for every later header.
    pub fn with_check(
        chain_id: u64,
        checkpoint: &[u8],
        confirmations: u64,
        check: C,
    ) -> Result<Self, LightClientError> {
        let h = EthHeader::decode(checkpoint)?;
        let mut headers = BTreeMap::new();
        headers.insert(
            h.number,
            Held {
                hash: h.hash,
                receipts_root: h.receipts_root,
            },
        );
        Ok(EthClient {
            chain_id,
            confirmations,
            checkpoint: h.number,
            headers,
            check,
        })
    }

    /// Rebuilds a client from stored parts (see [`EthClient::parts`]).
    pub fn from_parts(
        chain_id: u64,
        confirmations: u64,
        checkpoint: u64,
        headers: BTreeMap<u64, Held>,
        check: C,
    ) -> Result<Self, LightClientError> {
        if headers.is_empty() || headers.len() > KEEP_HEADERS + 1 {
            return Err(LightClientError::Decode(format!(
                "stored client: expected 1..={} headers, got {}",
                KEEP_HEADERS + 1,
                headers.len()
            )));
        }
        Ok(EthClient {
            chain_id,
            confirmations,
            checkpoint,
            headers,
            check,
        })
    }

    /// (chain id, confirmations, checkpoint number, held headers), for storage.
    pub fn parts(&self) -> (u64, u64, u64, &BTreeMap<u64, Held>) {
        (
            self.chain_id,
            self.confirmations,
            self.checkpoint,
            &self.headers,
        )
    }

    /// The chain id the client follows.
    pub fn chain_id(&self) -> u64 {
        self.chain_id
    }

    /// The head: its number and hash.
    pub fn head(&self) -> (u64, Hash32) {
        let (n, h) = self.headers.last_key_value().expect("never empty");
        (*n, h.hash)
    }

    /// The held header at `number`.
    pub fn header(&self, number: u64) -> Option<&Held> {
        self.headers.get(&number)
    }

    /// The highest confirmed number (proofs are accepted up to it).
    pub fn confirmed(&self) -> Option<u64> {
        self.head().0.checked_sub(self.confirmations)
    }

    fn add(&mut self, raw: &[u8]) -> Result<(), LightClientError> {
        let h = EthHeader::decode(raw)?;
        let (head, head_hash) = self.head();
        let parent_number = h.number.checked_sub(1).ok_or(LightClientError::NotNext {
            expected: head + 1,
            got: 0,
        })?;
        if h.number == head + 1 {
            if h.parent != head_hash {
                return Err(LightClientError::WrongParent {
                    expected: head_hash.to_string(),
                    got: h.parent.to_string(),
                });
            }
        } else {
            // A replacement: only above the checkpoint and the confirmed part.
            let lowest = self.confirmed().unwrap_or(0).max(self.checkpoint) + 1;
            if h.number > head + 1 || h.number < lowest {
                return Err(LightClientError::NotNext {
                    expected: head + 1,
                    got: h.number,
                });
            }
            if self.headers.get(&h.number).map(|x| x.hash) == Some(h.hash) {
                return Err(LightClientError::Proof(format!(
                    "header {} ({}) is already held",
                    h.number, h.hash
                )));
            }
            let parent = self.headers.get(&parent_number).map(|x| x.hash);
            if parent != Some(h.parent) {
                return Err(LightClientError::WrongParent {
                    expected: parent.map(|p| p.to_string()).unwrap_or_default(),
                    got: h.parent.to_string(),
                });
            }
            self.headers.split_off(&h.number);
        }
        self.check.check(&h)?;
        self.headers.insert(
            h.number,
            Held {
                hash: h.hash,
                receipts_root: h.receipts_root,
            },
        );
        while self.headers.len() > KEEP_HEADERS {
            self.headers.pop_first();
        }
        Ok(())
    }

    /// Checks a receipt proof against a confirmed held header and returns the named log.
    pub fn verify_log(&self, proof: &ReceiptProof) -> Result<EthLog, LightClientError> {
        let held = self
            .headers
            .get(&proof.block)
            .ok_or(LightClientError::UnknownHeight(proof.block))?;
        let confirmed = self.confirmed();
        if confirmed.is_none_or(|c| proof.block > c) {
            return Err(LightClientError::Proof(format!(
                "block {} has fewer than {} confirmations (head {})",
                proof.block,
                self.confirmations,
                self.head().0
            )));
        }
        proof.verify(&held.receipts_root)
    }
}

impl<C: HeaderCheck + Clone> LightClient for EthClient<C> {
    type Update = EthUpdate;
    type EventProof = ReceiptProof;

    fn height(&self) -> u64 {
        self.head().0
    }

    fn apply(&mut self, update: EthUpdate) -> Result<(), LightClientError> {
        let mut next = self.clone();
        for raw in &update.headers {
            next.add(raw)?;
        }
        *self = next;
        Ok(())
    }

    fn verify_event(&self, proof: &ReceiptProof) -> Result<(), LightClientError> {
        self.verify_log(proof).map(|_| ())
    }
}

#[cfg(test)]
mod tests;
