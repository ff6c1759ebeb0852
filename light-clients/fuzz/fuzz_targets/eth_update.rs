//! Any bytes as an Ethereum header update, and each header in it: decoding never panics, what
//! decodes re-encodes to the same update, and a client never panics applying it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nexus_light_clients::ethereum::{EthClient, EthHeader, EthUpdate};
use nexus_light_clients::LightClient;

fuzz_target!(|data: &[u8]| {
    let _ = EthHeader::decode(data);
    if let Ok(u) = EthUpdate::decode(data) {
        assert_eq!(EthUpdate::decode(&u.encode()).ok(), Some(u.clone()));
        if let Some(first) = u.headers.first() {
            if let Ok(mut c) = EthClient::new(1, first, 2) {
                let _ = c.apply(u);
            }
        }
    }
});
