//! Any bytes as an Ethereum receipt proof and as a receipt: decoding and checking never panic,
//! and what decodes re-encodes to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nexus_light_clients::ethereum::{EthReceipt, ReceiptProof};
use nexus_proto::Hash32;

fuzz_target!(|data: &[u8]| {
    if let Ok(r) = EthReceipt::decode(data) {
        assert_eq!(EthReceipt::decode(&r.encode()).ok(), Some(r));
    }
    if let Ok(p) = ReceiptProof::decode(data) {
        assert_eq!(ReceiptProof::decode(&p.encode()).ok(), Some(p.clone()));
        let _ = p.verify(&Hash32([0x56; 32]));
    }
});
