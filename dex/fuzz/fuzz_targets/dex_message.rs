//! Any bytes as a message from the Ether reserve: decoding never panics, and what decodes
//! re-encodes to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nexus_dex::score::wire::Inbound;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = Inbound::decode(data) {
        assert_eq!(Inbound::decode(&m.encode()).ok(), Some(m));
    }
});
