//! Ethereum headers for tests of the crates that check them (the light client, the notary, the
//! node's endpoint check): one definition of a header as an execution node encodes it.

use alloy_rlp::{Bytes, Encodable};
use nexus_proto::Hash32;

/// A post-Cancun RLP header (20 fields) with `number`, `parent` and `receipts_root`; the other
/// fields are fixed (timestamp `1_700_000_000 + number`).
pub fn eth_header(number: u64, parent: Hash32, receipts_root: Hash32) -> Vec<u8> {
    let h32 = |b: u8| Bytes::from(vec![b; 32]);
    let parent = Bytes::from(parent.0.to_vec());
    let root = Bytes::from(receipts_root.0.to_vec());
    let beneficiary = Bytes::from(vec![7u8; 20]);
    let bloom = Bytes::from(vec![0u8; 256]);
    let nonce = Bytes::from(vec![0u8; 8]);
    let extra = Bytes::from(b"nexus".to_vec());
    let (zero, gas_limit, gas_used, ts, base_fee) =
        (0u64, 30_000_000u64, 21_000u64, 1_700_000_000 + number, 7u64);
    let (ommers, state, txs, mix, withdrawals, beacon) =
        (h32(1), h32(2), h32(3), h32(4), h32(5), h32(6));
    let items: [&dyn Encodable; 20] = [
        &parent,
        &ommers,
        &beneficiary,
        &state,
        &txs,
        &root,
        &bloom,
        &zero,
        &number,
        &gas_limit,
        &gas_used,
        &ts,
        &extra,
        &mix,
        &nonce,
        &base_fee,
        &withdrawals,
        &zero,
        &zero,
        &beacon,
    ];
    let mut out = Vec::new();
    alloy_rlp::Header {
        list: true,
        payload_length: items.iter().map(|i| i.length()).sum(),
    }
    .encode(&mut out);
    for i in items {
        i.encode(&mut out);
    }
    out
}
