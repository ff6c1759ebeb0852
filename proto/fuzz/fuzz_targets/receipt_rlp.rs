//! Receipts: decoding is bounded and round-trips.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(r) = nexus_proto::receipt::Receipt::decode(data) {
        assert_eq!(
            nexus_proto::receipt::Receipt::decode(&r.encode()).expect("re-decodes"),
            r
        );
    }
});
