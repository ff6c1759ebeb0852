//! Blocks, votes and validator sets, laid out for LFT consensus.
//!
//! - The block hash is SHA3-256 of the RLP header.
//! - A block at height h+1 carries the votes for block h (`prev_votes`); the header commits to
//!   them through `prev_votes_hash`, so block h is proven final by the header of h+1.
//! - A vote signs `SHA3-256(RLP["nexus/vote/1", nid, channel, height, round, block_hash])`: the
//!   domain tag, network and channel make a vote unusable anywhere else.

use crate::{
    hash::sha3_256,
    rlp_impls::{decode_exact, decode_list_at_most, list_done, open_list},
    Address, Hash32, KeyPair, ProtoError, Signature,
};
use alloy_rlp::{Decodable, Encodable, RlpDecodable, RlpEncodable};

/// The header version this code writes (2: the header carries its consensus round).
pub const HEADER_VERSION: u64 = 2;
/// Most validators in one set.
pub const MAX_VALIDATORS: usize = 1024;
/// Most transactions in one block.
pub const MAX_BLOCK_TXS: usize = 100_000;

/// Refusals of lists past their bounds, met while decoding (the numbers are the bounds above;
/// a test checks that they agree).
const TOO_MANY_VOTES: &str = "a vote set holds more than 1024 votes";
const TOO_MANY_TXS: &str = "a block lists more than 100000 transactions";

/// A block header.
#[derive(Debug, Clone, PartialEq, Eq, RlpEncodable, RlpDecodable)]
pub struct BlockHeader {
    /// Format version.
    pub version: u64,
    /// Height; genesis is 0.
    pub height: u64,
    /// The consensus round in which the block was proposed (genesis is 0; rounds grow along a
    /// chain). Bound into the hash, so one block cannot be proposed in two rounds.
    pub round: u64,
    /// Proposal time in microseconds since the epoch.
    pub timestamp: u64,
    /// Hash of the parent (zero for genesis).
    pub prev_hash: Hash32,
    /// Merkle root of the transaction hashes.
    pub transactions_root: Hash32,
    /// Merkle root of the receipt hashes.
    pub receipts_root: Hash32,
    /// Commitment to the state after this block.
    pub state_root: Hash32,
    /// Hash of the validator set that votes on this block.
    pub validators_hash: Hash32,
    /// Hash of the validator set for the next block.
    pub next_validators_hash: Hash32,
    /// Hash of the votes for the parent carried by this block.
    pub prev_votes_hash: Hash32,
    /// The proposer.
    pub leader: Address,
}

impl BlockHeader {
    /// Encodes as RLP (the bytes that are hashed).
    pub fn to_rlp(&self) -> Vec<u8> {
        alloy_rlp::encode(self)
    }

    /// Decodes from RLP.
    pub fn from_rlp(bytes: &[u8]) -> Result<Self, ProtoError> {
        decode_exact("block header", bytes)
    }

    /// The block hash.
    pub fn hash(&self) -> Hash32 {
        sha3_256(&[&alloy_rlp::encode(self)])
    }
}

/// One validator's vote, as carried in the next block.
#[derive(Debug, Clone, PartialEq, Eq, RlpEncodable, RlpDecodable)]
pub struct VoteItem {
    /// Position of the voter in the validator list.
    pub validator_index: u32,
    /// When the vote was cast (microseconds); informational, not signed.
    pub timestamp: u64,
    /// The signature over [`vote_digest`].
    pub signature: alloy_rlp::Bytes,
}

/// The votes for one block, ordered by validator index.
#[derive(Debug, Clone, PartialEq, Eq, Default, RlpEncodable)]
pub struct VoteSet {
    /// The round in which the block reached its quorum.
    pub round: u64,
    /// The votes.
    pub items: Vec<VoteItem>,
}

impl Decodable for VoteSet {
    /// `[round, [vote...]]`, stopping at the vote past [`MAX_VALIDATORS`].
    fn decode(buf: &mut &[u8]) -> alloy_rlp::Result<Self> {
        let mut fields = open_list(buf)?;
        let round = u64::decode(&mut fields)?;
        let items = decode_list_at_most(&mut fields, MAX_VALIDATORS, TOO_MANY_VOTES)?;
        list_done(fields)?;
        Ok(VoteSet { round, items })
    }
}

impl VoteSet {
    /// Encodes as RLP.
    pub fn to_rlp(&self) -> Vec<u8> {
        alloy_rlp::encode(self)
    }

    /// Decodes from RLP, bounding the vote count.
    pub fn from_rlp(bytes: &[u8]) -> Result<Self, ProtoError> {
        decode_exact("vote set", bytes)
    }

    /// Hash committed in the next header.
    pub fn hash(&self) -> Hash32 {
        sha3_256(&[&alloy_rlp::encode(self)])
    }
}

/// What a vote signs.
pub fn vote_digest(
    nid: u64,
    channel: &str,
    height: u64,
    round: u64,
    block_hash: &Hash32,
) -> Hash32 {
    let mut buf = Vec::with_capacity(96);
    let items: [&dyn Encodable; 6] = [&"nexus/vote/1", &nid, &channel, &height, &round, block_hash];
    let payload_length: usize = items.iter().map(|i| i.length()).sum();
    alloy_rlp::Header {
        list: true,
        payload_length,
    }
    .encode(&mut buf);
    for i in items {
        i.encode(&mut buf);
    }
    sha3_256(&[&buf])
}

/// Signs a vote.
pub fn sign_vote(
    key: &KeyPair,
    nid: u64,
    channel: &str,
    height: u64,
    round: u64,
    block_hash: &Hash32,
) -> Signature {
    key.sign(&vote_digest(nid, channel, height, round, block_hash))
}

/// RLP list of 21-byte validator addresses.
pub fn encode_validators(validators: &[Address]) -> Vec<u8> {
    alloy_rlp::encode(validators.to_vec())
}

/// Decodes [`encode_validators`], bounding the count.
pub fn decode_validators(bytes: &[u8]) -> Result<Vec<Address>, ProtoError> {
    let v: Vec<Address> = decode_exact("validator list", bytes)?;
    if v.len() > MAX_VALIDATORS {
        return Err(ProtoError::TooLarge {
            what: "validators",
            size: v.len(),
            limit: MAX_VALIDATORS,
        });
    }
    Ok(v)
}

/// Hash of a validator list (SHA3-256 of [`encode_validators`]).
pub fn validators_hash(validators: &[Address]) -> Hash32 {
    sha3_256(&[&encode_validators(validators)])
}

/// Checks that `votes` hold more than 2/3 of `validators` for `block_hash`, each signature by the
/// validator at its index, no index twice.
pub fn verify_quorum(
    votes: &VoteSet,
    validators: &[Address],
    nid: u64,
    channel: &str,
    height: u64,
    block_hash: &Hash32,
) -> Result<(), ProtoError> {
    let digest = vote_digest(nid, channel, height, votes.round, block_hash);
    let mut seen = vec![false; validators.len()];
    for item in &votes.items {
        let idx = item.validator_index as usize;
        let Some(expected) = validators.get(idx) else {
            return Err(ProtoError::invalid(
                "vote",
                "a validator index in the set",
                idx.to_string(),
            ));
        };
        if std::mem::replace(&mut seen[idx], true) {
            return Err(ProtoError::invalid(
                "vote",
                "one vote per validator",
                format!("index {idx} twice"),
            ));
        }
        let signer = Signature::from_slice(&item.signature)?.recover_address(&digest)?;
        if &signer != expected {
            return Err(ProtoError::Signature(format!(
                "vote {idx} signed by {signer}, want {expected}"
            )));
        }
    }
    let n = validators.len();
    let count = seen.iter().filter(|s| **s).count();
    if count * 3 <= n * 2 {
        return Err(ProtoError::invalid(
            "votes",
            "more than 2/3 of the validators",
            format!("{count} of {n}"),
        ));
    }
    Ok(())
}

/// A block as stored and gossiped: header, transaction hashes and the parent's votes.
#[derive(Debug, Clone, PartialEq, Eq, RlpEncodable)]
pub struct Block {
    /// The header.
    pub header: BlockHeader,
    /// Hashes of the transactions, in execution order.
    pub tx_hashes: Vec<Hash32>,
    /// The votes that made the parent final.
    pub prev_votes: VoteSet,
}

impl Decodable for Block {
    /// `[header, [hash...], votes]`, stopping at the hash past [`MAX_BLOCK_TXS`] and the vote
    /// past [`MAX_VALIDATORS`].
    fn decode(buf: &mut &[u8]) -> alloy_rlp::Result<Self> {
        let mut fields = open_list(buf)?;
        let header = BlockHeader::decode(&mut fields)?;
        let tx_hashes = decode_list_at_most(&mut fields, MAX_BLOCK_TXS, TOO_MANY_TXS)?;
        let prev_votes = VoteSet::decode(&mut fields)?;
        list_done(fields)?;
        Ok(Block {
            header,
            tx_hashes,
            prev_votes,
        })
    }
}

impl Block {
    /// Encodes as RLP.
    pub fn encode(&self) -> Vec<u8> {
        alloy_rlp::encode(self)
    }

    /// Decodes from RLP, bounding the transaction and vote counts.
    pub fn decode(bytes: &[u8]) -> Result<Self, ProtoError> {
        decode_exact("block", bytes)
    }

    /// The block hash.
    pub fn hash(&self) -> Hash32 {
        self.header.hash()
    }
}

/// Most bytes of transaction JSON in one block. With [`MAX_BLOCK_TXS`] hashes and the header,
/// a payload stays under [`MAX_PAYLOAD_BYTES`], and a proposal under what gossip carries (16 MiB).
pub const MAX_BLOCK_TX_BYTES: usize = 8 * 1024 * 1024;

/// Largest consensus payload (a block and its transactions) accepted from the network.
pub const MAX_PAYLOAD_BYTES: usize = 14 * 1024 * 1024;

/// The payload a leader proposes: `RLP[block, [transaction JSON, ...]]`.
pub fn encode_payload(block: &Block, txs: &[Vec<u8>]) -> Vec<u8> {
    let block_rlp = block.encode();
    let tx_list: Vec<alloy_rlp::Bytes> = txs
        .iter()
        .map(|t| alloy_rlp::Bytes::from(t.clone()))
        .collect();
    let items: [&dyn Encodable; 2] = [&alloy_rlp::Bytes::from(block_rlp), &tx_list];
    let payload_length: usize = items.iter().map(|i| i.length()).sum();
    let mut out = Vec::with_capacity(payload_length + 8);
    alloy_rlp::Header {
        list: true,
        payload_length,
    }
    .encode(&mut out);
    for i in items {
        i.encode(&mut out);
    }
    out
}

/// Decodes [`encode_payload`], bounding size and counts; transactions stay raw JSON bytes.
///
/// The transactions are read one at a time against the block's own count and
/// [`MAX_BLOCK_TX_BYTES`], so a payload of many tiny items is refused at the first one past
/// either bound, with no more memory taken than the payload's size.
pub fn decode_payload(bytes: &[u8]) -> Result<(Block, Vec<Vec<u8>>), ProtoError> {
    if bytes.len() > MAX_PAYLOAD_BYTES {
        return Err(ProtoError::TooLarge {
            what: "payload",
            size: bytes.len(),
            limit: MAX_PAYLOAD_BYTES,
        });
    }
    let rlp = |e: alloy_rlp::Error| ProtoError::rlp("payload", e);
    let mut buf = bytes;
    let mut fields = open_list(&mut buf).map_err(rlp)?;
    if !buf.is_empty() {
        return Err(ProtoError::Rlp {
            what: "payload",
            reason: format!("{} trailing bytes", buf.len()),
        });
    }
    let block = Block::decode(alloy_rlp::Header::decode_bytes(&mut fields, false).map_err(rlp)?)?;
    let mut items = open_list(&mut fields).map_err(rlp)?;
    list_done(fields).map_err(rlp)?;
    let expected = block.tx_hashes.len();
    let mut txs = Vec::with_capacity(expected);
    let mut tx_bytes = 0usize;
    while !items.is_empty() {
        if txs.len() == expected {
            return Err(ProtoError::invalid(
                "payload",
                "one transaction per hash in the block",
                format!("more than {expected}"),
            ));
        }
        let tx = alloy_rlp::Header::decode_bytes(&mut items, false).map_err(rlp)?;
        tx_bytes += tx.len();
        if tx_bytes > MAX_BLOCK_TX_BYTES {
            return Err(ProtoError::TooLarge {
                what: "block transactions (bytes)",
                size: tx_bytes,
                limit: MAX_BLOCK_TX_BYTES,
            });
        }
        txs.push(tx.to_vec());
    }
    if txs.len() != expected {
        return Err(ProtoError::invalid(
            "payload",
            "one transaction per hash in the block",
            format!("{} for {expected}", txs.len()),
        ));
    }
    Ok((block, txs))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> BlockHeader {
        BlockHeader {
            version: HEADER_VERSION,
            height: 5,
            round: 9,
            timestamp: 1,
            prev_hash: Hash32([1; 32]),
            transactions_root: Hash32::ZERO,
            receipts_root: Hash32::ZERO,
            state_root: Hash32([2; 32]),
            validators_hash: Hash32::ZERO,
            next_validators_hash: Hash32::ZERO,
            prev_votes_hash: Hash32::ZERO,
            leader: Address::eoa([3; 20]),
        }
    }

    fn block_with(hashes: usize) -> Block {
        Block {
            header: header(),
            tx_hashes: (0..hashes).map(|i| Hash32([(i % 251) as u8; 32])).collect(),
            prev_votes: VoteSet::default(),
        }
    }

    fn vote(i: u32) -> VoteItem {
        VoteItem {
            validator_index: i,
            timestamp: 1,
            signature: vec![7u8; 65].into(),
        }
    }

    #[test]
    fn the_refusals_name_the_bounds_they_enforce() {
        assert!(TOO_MANY_VOTES.contains(&MAX_VALIDATORS.to_string()));
        assert!(TOO_MANY_TXS.contains(&MAX_BLOCK_TXS.to_string()));
    }

    #[test]
    fn a_vote_set_stops_at_the_vote_past_the_bound() {
        let mut v = VoteSet {
            round: 3,
            items: (0..MAX_VALIDATORS as u32).map(vote).collect(),
        };
        assert_eq!(VoteSet::from_rlp(&v.to_rlp()).unwrap(), v);
        v.items.push(vote(0));
        let e = VoteSet::from_rlp(&v.to_rlp()).unwrap_err().to_string();
        assert!(e.contains(TOO_MANY_VOTES), "{e}");
        let b = Block {
            prev_votes: v,
            ..block_with(1)
        };
        let e = Block::decode(&b.encode()).unwrap_err().to_string();
        assert!(e.contains(TOO_MANY_VOTES), "{e}");
    }

    #[test]
    fn a_block_stops_at_the_hash_past_the_bound() {
        let b = block_with(MAX_BLOCK_TXS);
        assert_eq!(Block::decode(&b.encode()).unwrap(), b);
        let e = Block::decode(&block_with(MAX_BLOCK_TXS + 1).encode())
            .unwrap_err()
            .to_string();
        assert!(e.contains(TOO_MANY_TXS), "{e}");
    }

    #[test]
    fn a_payload_holds_one_transaction_per_hash_within_the_byte_bound() {
        let b = block_with(3);
        let txs = vec![b"{}".to_vec(), b"{\"a\":1}".to_vec(), vec![]];
        assert_eq!(
            decode_payload(&encode_payload(&b, &txs)).unwrap(),
            (b.clone(), txs.clone())
        );
        let fewer = decode_payload(&encode_payload(&b, &txs[..2])).unwrap_err();
        assert!(fewer.to_string().contains("2 for 3"), "{fewer}");
        let more: Vec<Vec<u8>> = [&txs[..], &txs[..1]].concat();
        let more = decode_payload(&encode_payload(&b, &more)).unwrap_err();
        assert!(more.to_string().contains("more than 3"), "{more}");
        let big = vec![vec![b'x'; MAX_BLOCK_TX_BYTES / 2 + 1]; 2];
        let e = decode_payload(&encode_payload(&block_with(2), &big)).unwrap_err();
        assert!(
            matches!(
                e,
                ProtoError::TooLarge {
                    limit: MAX_BLOCK_TX_BYTES,
                    ..
                }
            ),
            "{e}"
        );
        let mut trailing = encode_payload(&b, &txs);
        trailing.push(0x80);
        assert!(decode_payload(&trailing).is_err());
    }

    #[test]
    fn block_round_trip_and_hash_covers_fields() {
        let b = Block {
            header: header(),
            tx_hashes: vec![Hash32([9; 32])],
            prev_votes: VoteSet::default(),
        };
        assert_eq!(Block::decode(&b.encode()).unwrap(), b);
        let mut h2 = header();
        h2.state_root = Hash32([4; 32]);
        assert_ne!(h2.hash(), header().hash());
        let mut bytes = b.encode();
        bytes.push(0);
        assert!(Block::decode(&bytes).is_err());
    }

    #[test]
    fn payload_round_trip_and_count_check() {
        let b = Block {
            header: header(),
            tx_hashes: vec![Hash32([9; 32])],
            prev_votes: VoteSet::default(),
        };
        let enc = encode_payload(&b, &[b"{}".to_vec()]);
        let (back, txs) = decode_payload(&enc).unwrap();
        assert_eq!(back, b);
        assert_eq!(txs, vec![b"{}".to_vec()]);
        assert!(decode_payload(&encode_payload(&b, &[])).is_err());
        assert!(decode_payload(&enc[..enc.len() - 1]).is_err());
    }

    #[test]
    fn quorum_needs_more_than_two_thirds_of_distinct_validators() {
        let keys: Vec<KeyPair> = (0..4).map(|_| KeyPair::generate()).collect();
        let vals: Vec<Address> = keys.iter().map(|k| k.address()).collect();
        let bh = header().hash();
        let vote = |i: usize| VoteItem {
            validator_index: i as u32,
            timestamp: 0,
            signature: sign_vote(&keys[i], 1, "public", 5, 0, &bh)
                .0
                .to_vec()
                .into(),
        };
        let three = VoteSet {
            round: 0,
            items: vec![vote(0), vote(1), vote(2)],
        };
        verify_quorum(&three, &vals, 1, "public", 5, &bh).unwrap();
        let two = VoteSet {
            round: 0,
            items: vec![vote(0), vote(1)],
        };
        assert!(verify_quorum(&two, &vals, 1, "public", 5, &bh).is_err());
        let dup = VoteSet {
            round: 0,
            items: vec![vote(0), vote(1), vote(1)],
        };
        assert!(verify_quorum(&dup, &vals, 1, "public", 5, &bh).is_err());
        assert!(verify_quorum(&three, &vals, 1, "other", 5, &bh).is_err());
        assert!(verify_quorum(&three, &vals, 2, "public", 5, &bh).is_err());
    }
}
