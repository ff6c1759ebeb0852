//! Transaction params from the network: decoding, hashing and signature checks never panic.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(st) = nexus_proto::SignedTransaction::from_json_bytes(data) {
        let _ = st.verify_signature();
        let again = nexus_proto::SignedTransaction::from_json_bytes(&st.to_json_bytes())
            .expect("re-decodes");
        assert_eq!(again.hash, st.hash);
    }
});
