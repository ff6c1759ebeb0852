//! Any bytes as a loopchain event proof: decoding never panics, and what decodes re-encodes to
//! the same proof.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nexus_light_clients::EventProof;

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = EventProof::decode(data) {
        assert_eq!(EventProof::decode(&p.encode()).ok(), Some(p));
    }
});
