//! Consensus messages made of many tiny signatures (3 bytes each on the wire, 40 once decoded)
//! are refused at the first signature past the bound, taking no more memory than they carry.
//! One test in this binary, so the process's peak resident memory is its own.

use alloy_rlp::{Encodable, Header};
use nexus_lft::codec::{decode, MAX_MESSAGE_BYTES};

/// The process's peak resident memory (`VmHWM`), in bytes.
fn peak() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let kib: u64 = s
        .lines()
        .find(|l| l.starts_with("VmHWM"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .expect("VmHWM");
    kib * 1024
}

fn list(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 9);
    Header {
        list: true,
        payload_length: payload.len(),
    }
    .encode(&mut out);
    out.extend_from_slice(payload);
    out
}

/// A certificate `[round, height, block, [sig...]]` whose signatures fill `size` bytes.
fn certificate(sig: &[u8], size: usize) -> Vec<u8> {
    let mut f = Vec::new();
    4u64.encode(&mut f);
    3u64.encode(&mut f);
    [3u8; 32].encode(&mut f);
    f.extend_from_slice(&list(&sig.repeat(size / sig.len())));
    list(&f)
}

#[test]
fn certificates_of_tiny_signatures_are_refused_before_they_grow() {
    let room = MAX_MESSAGE_BYTES - 256;
    // Sync (kind 7): [high_qc, [seal]], the QC's votes [voter, empty signature].
    let qc = certificate(&list(&[0x01, 0x80]), room);
    let sync = list(&[vec![0x07], list(&[qc, list(&[])].concat())].concat());
    // Timeout (kind 4): [round, height, [nil...], high_qc], nils [voter, height, round, empty].
    let mut tc = Vec::new();
    5u64.encode(&mut tc);
    4u64.encode(&mut tc);
    let nil = list(&[0x01, 0x04, 0x04, 0x80]);
    tc.extend_from_slice(&list(&nil.repeat(room / nil.len())));
    tc.extend_from_slice(&certificate(&list(&[0x01, 0x80]), 0));
    let timeout = list(&[vec![0x04], list(&tc)].concat());
    for (what, msg) in [
        ("QC of empty signatures", sync),
        ("TC of empty nils", timeout),
    ] {
        assert!(
            msg.len() <= MAX_MESSAGE_BYTES,
            "{what}: {} bytes",
            msg.len()
        );
        let before = peak();
        let r = decode(&msg);
        let grew = peak().saturating_sub(before);
        assert!(r.is_err(), "{what}: decoded");
        assert!(
            grew < 32 << 20,
            "{what}: the peak grew by {} MB while refusing ({r:?})",
            grew >> 20
        );
    }
}
