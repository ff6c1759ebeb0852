//! Blocks and headers from the network (block sync): decoding is bounded and round-trips.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(b) = nexus_proto::block::Block::decode(data) {
        assert_eq!(
            nexus_proto::block::Block::decode(&b.encode()).expect("re-decodes"),
            b
        );
    }
    let _ = nexus_proto::block::BlockHeader::from_rlp(data);
});
