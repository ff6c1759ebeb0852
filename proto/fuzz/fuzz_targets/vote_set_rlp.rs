//! Vote sets (carried in blocks, served by icx_getVotesByHeight): bounded decoding.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(v) = nexus_proto::block::VoteSet::from_rlp(data) {
        assert_eq!(
            nexus_proto::block::VoteSet::from_rlp(&v.to_rlp()).expect("re-decodes"),
            v
        );
    }
});
