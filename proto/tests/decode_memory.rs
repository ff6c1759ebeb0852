//! Messages made of many tiny items (one byte each on the wire, tens of bytes each once decoded;
//! a one-entry JSON object, 8 bytes of text, is a B-tree node of some 640) are refused at the
//! first item past a bound, taking no more memory than they carry or than a budget. Before, a
//! 14-MiB proposal payload of one-byte "transactions" took some 900 MB and 1.6 s to refuse, and
//! a 512-KiB transaction of one-entry objects some 150 MB. One test in this binary, so the
//! process's peak resident memory is its own.

use alloy_rlp::{Encodable, Header};
use nexus_proto::block::{decode_payload, Block, BlockHeader, VoteSet, HEADER_VERSION};
use nexus_proto::{Address, Hash32, SignedTransaction};

/// The process's peak resident memory (`VmHWM`), in bytes.
fn peak() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let kib: u64 = s
        .lines()
        .find(|l| l.starts_with("VmHWM"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .expect("VmHWM");
    kib * 1024
}

/// An RLP list holding `payload` (already encoded items).
fn list(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 9);
    Header {
        list: true,
        payload_length: payload.len(),
    }
    .encode(&mut out);
    out.extend_from_slice(payload);
    out
}

fn block(hashes: usize) -> Block {
    Block {
        header: BlockHeader {
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
        },
        tx_hashes: vec![Hash32([4; 32]); hashes],
        prev_votes: VoteSet::default(),
    }
}

/// Refused, with the peak memory growing by less than `limit` bytes while decoding.
fn refused_within<T: std::fmt::Debug>(what: &str, limit: u64, decode: impl FnOnce() -> T) {
    let before = peak();
    let r = decode();
    let grew = peak().saturating_sub(before);
    let text = format!("{r:?}");
    assert!(text.starts_with("Err"), "{what}: decoded as {text:.200}");
    assert!(
        grew < limit,
        "{what}: the peak grew by {} MB while refusing ({text:.200})",
        grew >> 20
    );
}

#[test]
fn lists_of_tiny_items_are_refused_before_they_grow() {
    const SIZE: usize = 14 * 1024 * 1024 - 64;
    const LIMIT: u64 = 64 << 20;
    // A proposal payload: a block listing 100,000 transactions, then 14 MiB of one-byte
    // "transactions" (0x01 is a one-byte string in RLP).
    let mut block_field = Vec::new();
    alloy_rlp::Bytes::from(block(100_000).encode()).encode(&mut block_field);
    let tiny_txs = list(&vec![1u8; SIZE - block_field.len()]);
    let payload = list(&[block_field, tiny_txs].concat());
    // A vote set of minimal votes: [index, timestamp, empty signature], 4 bytes each.
    let one_vote = list(&[0x01, 0x01, 0x80]);
    let mut vote_items = Vec::with_capacity(SIZE);
    while vote_items.len() + one_vote.len() <= SIZE {
        vote_items.extend_from_slice(&one_vote);
    }
    let mut vote_set = Vec::new();
    3u64.encode(&mut vote_set);
    vote_set.extend_from_slice(&list(&vote_items));
    let vote_set = list(&vote_set);
    // A block listing 440,000 hashes (33 bytes each on the wire), past the bound of 100,000.
    let mut header = Vec::new();
    block(0).header.encode(&mut header);
    let one_hash = [[0xa0u8].as_slice(), &[4u8; 32]].concat();
    let hashes = list(&one_hash.repeat((SIZE - 200) / one_hash.len()));
    let mut empty_votes = Vec::new();
    VoteSet::default().encode(&mut empty_votes);
    let many_hashes = list(&[header, hashes, empty_votes].concat());

    // A transaction of the largest size whose data holds one-entry objects.
    let objects = |bytes: usize| vec![r#"{"k":""}"#; bytes / 9].join(",");
    let tx_json = format!(
        r#"{{"version":"0x3","from":"hx{}","to":"cx{}","stepLimit":"0x1","timestamp":"0x1","nid":"0x1","signature":"","dataType":"call","data":{{"method":"m","params":{{"a":[{}]}}}}}}"#,
        "1".repeat(40),
        "2".repeat(40),
        objects(500 * 1024)
    );

    refused_within("transaction of one-entry objects", 16 << 20, || {
        SignedTransaction::from_json_bytes(tx_json.as_bytes())
    });
    refused_within("payload of one-byte transactions", LIMIT, || {
        decode_payload(&payload)
    });
    refused_within("vote set of minimal votes", LIMIT, || {
        VoteSet::from_rlp(&vote_set)
    });
    refused_within("block of 440,000 hashes", LIMIT, || {
        Block::decode(&many_hashes)
    });
}
