//! Proposal payloads from the network (a block and its transactions): bounded decoding that
//! round-trips, one transaction per hash.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok((b, txs)) = nexus_proto::block::decode_payload(data) {
        assert_eq!(txs.len(), b.tx_hashes.len());
        let again = nexus_proto::block::encode_payload(&b, &txs);
        assert_eq!(
            nexus_proto::block::decode_payload(&again).expect("re-decodes"),
            (b, txs)
        );
    }
});
