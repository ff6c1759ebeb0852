//! Any bytes as the JSON of a state proof: decoding never panics, what decodes re-encodes to the
//! same proof, and verifying it against any root and key never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nexus_light_clients::StateProof;

fuzz_target!(|data: &[u8]| {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    if let Ok(p) = StateProof::from_json(&v) {
        assert_eq!(StateProof::from_json(&p.to_json()).ok(), Some(p.clone()));
        let root = [data.len() as u8; 32];
        let _ = p.verify(&root, data, None);
        let _ = p.verify(&root, data, Some(data));
    }
});
