//! BTP messages: decoding is bounded and round-trips.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(m) = nexus_proto::btp::BtpMessage::decode(data) {
        assert_eq!(
            nexus_proto::btp::BtpMessage::decode(&m.encode()).expect("re-decodes"),
            m
        );
    }
    let _ = nexus_proto::btp::ErrorMessage::decode(data);
});
