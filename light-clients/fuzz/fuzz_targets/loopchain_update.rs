//! Any bytes as a loopchain header update: decoding never panics, and what decodes re-encodes
//! to the same update.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nexus_light_clients::HeaderUpdate;

fuzz_target!(|data: &[u8]| {
    if let Ok(u) = HeaderUpdate::decode(data) {
        assert_eq!(HeaderUpdate::decode(&u.encode()).ok(), Some(u));
    }
});
