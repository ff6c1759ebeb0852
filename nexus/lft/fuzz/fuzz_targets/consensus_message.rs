//! Consensus messages from the network: bounded decoding that round-trips.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(m) = nexus_lft::codec::decode(data) {
        assert_eq!(
            nexus_lft::codec::decode(&nexus_lft::codec::encode(&m)).expect("re-decodes"),
            m
        );
    }
});
