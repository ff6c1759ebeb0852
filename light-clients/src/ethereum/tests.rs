use super::*;

const EMPTY_TRIE_ROOT: &str = "0x56e81f171bcc55a6ff8345e692c0f86e5b48e01b996cadc001622fb5e363b421";

/// An RLP header with the post-Cancun field count (20 fields), as a node would encode it.
fn header(number: u64, parent: Hash32, receipts_root: Hash32) -> Vec<u8> {
    crate::testkit::eth_header(number, parent, receipts_root)
}

/// A chain of `n` headers after `first` (number 0 is the checkpoint), each with its own root.
fn chain(n: u64, roots: &dyn Fn(u64) -> Hash32) -> Vec<Vec<u8>> {
    let mut out = vec![header(0, Hash32::ZERO, roots(0))];
    for i in 1..=n {
        let parent = keccak256(&[out.last().unwrap()]);
        out.push(header(i, parent, roots(i)));
    }
    out
}

fn log(i: u8, topics: usize) -> EthLog {
    EthLog {
        address: [i; 20],
        topics: (0..topics).map(|t| Hash32([t as u8 + i; 32])).collect(),
        data: vec![i; i as usize],
    }
}

fn receipt(i: usize, success: bool) -> EthReceipt {
    EthReceipt {
        tx_type: (i % 5) as u8,
        success,
        cumulative_gas: 21_000 * (i as u64 + 1),
        bloom: vec![i as u8; 256],
        logs: (0..(i % 4)).map(|j| log(j as u8 + 1, j)).collect(),
    }
}

fn receipts(n: usize) -> Vec<Vec<u8>> {
    (0..n).map(|i| receipt(i, i % 7 != 6).encode()).collect()
}

fn proof(all: &[Vec<u8>], block: u64, index: usize, log: u64) -> ReceiptProof {
    ReceiptProof {
        block,
        index: index as u64,
        log,
        receipt: all[index].clone(),
        nodes: receipt_nodes(all, index).unwrap(),
    }
}

/// A client at the checkpoint (block 0), 3 confirmations, block 1 holding `all`, 4 more blocks.
fn client_with(all: &[Vec<u8>]) -> EthClient {
    let root = receipts_root(all);
    let headers = chain(5, &|n| if n == 1 { root } else { Hash32([n as u8; 32]) });
    let mut c = EthClient::new(1337, &headers[0], 3).unwrap();
    c.apply(EthUpdate {
        headers: headers[1..].to_vec(),
    })
    .unwrap();
    c
}

#[test]
fn header_decodes_its_fields_and_hashes_to_keccak_of_its_rlp() {
    let raw = header(42, Hash32([9; 32]), Hash32([8; 32]));
    let h = EthHeader::decode(&raw).unwrap();
    assert_eq!(h.number, 42);
    assert_eq!(h.parent, Hash32([9; 32]));
    assert_eq!(h.receipts_root, Hash32([8; 32]));
    assert_eq!(h.timestamp, 1_700_000_042);
    assert_eq!(h.hash, keccak256(&[&raw]));
}

#[test]
fn header_decoding_refuses_bad_shapes() {
    let raw = header(1, Hash32::ZERO, Hash32::ZERO);
    let mut trailing = raw.clone();
    trailing.push(0x80);
    assert!(
        EthHeader::decode(&trailing).is_err(),
        "bytes after the list"
    );
    assert!(
        EthHeader::decode(&raw[..raw.len() - 1]).is_err(),
        "truncated"
    );
    assert!(EthHeader::decode(&[]).is_err());
    assert!(
        EthHeader::decode(&vec![0xc0; MAX_HEADER_BYTES + 1]).is_err(),
        "oversized"
    );
    // A 31-byte parent hash.
    let mut short = Vec::new();
    let p = Bytes::from(vec![1u8; 31]);
    list(&mut short, &[&p]);
    assert!(
        matches!(EthHeader::decode(&short), Err(LightClientError::Decode(m)) if m.contains("parentHash"))
    );
    // A number with a leading zero byte is not canonical RLP; nor is u64::MAX + 1.
    for number in [vec![0u8, 5], vec![1u8; 9]] {
        let h32 = Bytes::from(vec![0u8; 32]);
        let (b20, bloom, n) = (
            Bytes::from(vec![0u8; 20]),
            Bytes::from(vec![0u8; 256]),
            Bytes::from(number),
        );
        let zero = 0u64;
        let items: [&dyn Encodable; 15] = [
            &h32, &h32, &b20, &h32, &h32, &h32, &bloom, &zero, &n, &zero, &zero, &zero, &zero,
            &h32, &zero,
        ];
        let mut bad = Vec::new();
        list(&mut bad, &items);
        assert!(
            matches!(EthHeader::decode(&bad), Err(LightClientError::Decode(m)) if m.contains("number"))
        );
    }
}

#[test]
fn update_round_trips_and_is_bounded() {
    let u = EthUpdate {
        headers: chain(3, &|_| Hash32::ZERO),
    };
    assert_eq!(EthUpdate::decode(&u.encode()).unwrap(), u);
    assert!(
        EthUpdate::decode(&EthUpdate::default().encode()).is_err(),
        "empty"
    );
    let many = EthUpdate {
        headers: vec![vec![1]; MAX_UPDATE_HEADERS + 1],
    };
    let e = EthUpdate::decode(&many.encode()).unwrap_err().to_string();
    assert!(
        e.contains(&format!("more than {MAX_UPDATE_HEADERS} headers")),
        "{e}"
    );
}

#[test]
fn next_header_must_name_the_head_as_parent() {
    let headers = chain(2, &|_| Hash32::ZERO);
    let mut c = EthClient::new(1, &headers[0], 0).unwrap();
    let forged = header(1, Hash32([5; 32]), Hash32::ZERO);
    assert!(matches!(
        c.apply(EthUpdate {
            headers: vec![forged]
        }),
        Err(LightClientError::WrongParent { .. })
    ));
    c.apply(EthUpdate {
        headers: vec![headers[1].clone()],
    })
    .unwrap();
    assert_eq!(c.head(), (1, keccak256(&[&headers[1]])));
}

#[test]
fn a_header_that_skips_is_refused() {
    let headers = chain(3, &|_| Hash32::ZERO);
    let mut c = EthClient::new(1, &headers[0], 0).unwrap();
    assert_eq!(
        c.apply(EthUpdate {
            headers: vec![headers[2].clone()]
        }),
        Err(LightClientError::NotNext {
            expected: 1,
            got: 2
        })
    );
}

#[test]
fn an_update_applies_whole_or_not_at_all() {
    let headers = chain(3, &|_| Hash32::ZERO);
    let mut c = EthClient::new(1, &headers[0], 0).unwrap();
    let before = c.clone();
    let bad = header(3, Hash32([1; 32]), Hash32::ZERO);
    assert!(c
        .apply(EthUpdate {
            headers: vec![headers[1].clone(), headers[2].clone(), bad]
        })
        .is_err());
    assert_eq!(c, before);
}

#[test]
fn an_unconfirmed_header_can_be_replaced_by_a_fork() {
    let headers = chain(4, &|_| Hash32::ZERO);
    let mut c = EthClient::new(1, &headers[0], 2).unwrap();
    c.apply(EthUpdate {
        headers: headers[1..].to_vec(),
    })
    .unwrap();
    // Head 4, confirmed up to 2: a sibling of block 4 (parent 3) replaces it.
    let fork4 = header(4, keccak256(&[&headers[3]]), Hash32([44; 32]));
    c.apply(EthUpdate {
        headers: vec![fork4.clone()],
    })
    .unwrap();
    assert_eq!(c.head(), (4, keccak256(&[&fork4])));
    // A fork of block 3 drops 3 and 4.
    let fork3 = header(3, keccak256(&[&headers[2]]), Hash32([33; 32]));
    c.apply(EthUpdate {
        headers: vec![fork3.clone()],
    })
    .unwrap();
    assert_eq!(c.head(), (3, keccak256(&[&fork3])));
    // Holding the same header again is refused (a relayer skips it).
    assert!(c
        .apply(EthUpdate {
            headers: vec![fork3]
        })
        .is_err());
}

#[test]
fn a_confirmed_header_cannot_be_replaced() {
    let headers = chain(4, &|_| Hash32::ZERO);
    let mut c = EthClient::new(1, &headers[0], 2).unwrap();
    c.apply(EthUpdate {
        headers: headers[1..].to_vec(),
    })
    .unwrap();
    let fork2 = header(2, keccak256(&[&headers[1]]), Hash32([22; 32]));
    assert_eq!(
        c.apply(EthUpdate {
            headers: vec![fork2]
        }),
        Err(LightClientError::NotNext {
            expected: 5,
            got: 2
        })
    );
}

#[test]
fn old_headers_are_forgotten_beyond_the_window() {
    let headers = chain(KEEP_HEADERS as u64 + 10, &|_| Hash32::ZERO);
    let mut c = EthClient::new(1, &headers[0], 0).unwrap();
    for chunk in headers[1..].chunks(200) {
        c.apply(EthUpdate {
            headers: chunk.to_vec(),
        })
        .unwrap();
    }
    assert_eq!(c.parts().3.len(), KEEP_HEADERS);
    assert!(c.header(10).is_none());
    assert!(c.header(11).is_some());
}

#[test]
fn receipts_round_trip_legacy_and_typed() {
    for i in 0..10 {
        let r = receipt(i, i % 2 == 0);
        assert_eq!(EthReceipt::decode(&r.encode()).unwrap(), r, "receipt {i}");
    }
}

#[test]
fn receipt_decoding_refuses_bad_shapes() {
    let good = receipt(3, true).encode();
    let mut unknown_type = good.clone();
    unknown_type[0] = 0x7e;
    assert!(EthReceipt::decode(&unknown_type).is_err(), "unknown type");
    assert!(EthReceipt::decode(&[]).is_err());
    assert!(
        EthReceipt::decode(&good[..good.len() - 1]).is_err(),
        "truncated"
    );
    let mut r = receipt(0, true);
    r.bloom = vec![0; 255];
    assert!(EthReceipt::decode(&r.encode()).is_err(), "short bloom");
    let mut five = receipt(0, true);
    five.logs = vec![log(1, 5)];
    assert!(EthReceipt::decode(&five.encode()).is_err(), "five topics");
}

#[test]
fn empty_receipts_have_the_empty_trie_root() {
    assert_eq!(receipts_root(&[]).to_string(), EMPTY_TRIE_ROOT);
}

#[test]
fn every_receipt_of_a_large_block_is_proved_against_its_root() {
    // 300 receipts: keys rlp(0) = 0x80, rlp(1..=127) one byte, rlp(128..) two and three bytes.
    let all = receipts(300);
    let root = receipts_root(&all);
    for i in [0usize, 1, 5, 127, 128, 129, 255, 256, 299] {
        let p = proof(&all, 1, i, 0);
        match receipt(i, i % 7 != 6) {
            r if !r.success => assert!(p.verify(&root).is_err()),
            r if r.logs.is_empty() => assert!(p.verify(&root).is_err(), "no log 0 in {i}"),
            r => assert_eq!(p.verify(&root).unwrap(), r.logs[0], "receipt {i}"),
        }
    }
}

#[test]
fn a_proof_of_one_receipt_does_not_prove_another_index() {
    let all = receipts(20);
    let root = receipts_root(&all);
    let mut p = proof(&all, 1, 3, 0);
    p.index = 7;
    assert!(matches!(p.verify(&root), Err(LightClientError::Proof(_))));
}

#[test]
fn a_changed_receipt_is_refused() {
    let all = receipts(20);
    let root = receipts_root(&all);
    let mut p = proof(&all, 1, 3, 0);
    let mut r = EthReceipt::decode(&p.receipt).unwrap();
    r.logs[0].data = b"forged".to_vec();
    p.receipt = r.encode();
    assert!(matches!(p.verify(&root), Err(LightClientError::Proof(_))));
}

#[test]
fn a_proof_against_another_blocks_root_is_refused() {
    let all = receipts(20);
    let other = receipts(21);
    let p = proof(&all, 1, 3, 0);
    assert!(matches!(
        p.verify(&receipts_root(&other)),
        Err(LightClientError::Proof(_))
    ));
}

#[test]
fn a_proof_missing_a_node_is_refused() {
    let all = receipts(200);
    let root = receipts_root(&all);
    let mut p = proof(&all, 1, 150, 0);
    assert!(p.nodes.len() > 1);
    p.nodes.remove(1);
    assert!(p.verify(&root).is_err());
}

#[test]
fn a_log_outside_the_receipt_is_refused() {
    let all = receipts(20);
    let root = receipts_root(&all);
    let p = proof(&all, 1, 3, 3); // receipt 3 has 3 logs: 0, 1, 2
    assert!(matches!(p.verify(&root), Err(LightClientError::Proof(m)) if m.contains("log 3")));
    let p = proof(&all, 1, 3, u64::MAX);
    assert!(p.verify(&root).is_err());
}

#[test]
fn a_failed_transactions_receipt_is_refused() {
    let all = receipts(20);
    let root = receipts_root(&all);
    let p = proof(&all, 1, 6, 0);
    assert!(matches!(p.verify(&root), Err(LightClientError::Proof(m)) if m.contains("failed")));
}

#[test]
fn the_client_checks_proofs_only_against_confirmed_headers() {
    let all = receipts(20);
    let c = client_with(&all);
    // Head 5, 3 confirmations: block 1 and 2 are confirmed.
    assert_eq!(c.verify_log(&proof(&all, 1, 3, 1)).unwrap(), log(2, 1));
    let p = proof(&all, 3, 3, 1);
    assert!(
        matches!(c.verify_log(&p), Err(LightClientError::Proof(m)) if m.contains("confirmations"))
    );
    let p = proof(&all, 99, 3, 1);
    assert_eq!(c.verify_log(&p), Err(LightClientError::UnknownHeight(99)));
    // Block 2's root is not block 1's.
    let p = proof(&all, 2, 3, 1);
    assert!(matches!(c.verify_log(&p), Err(LightClientError::Proof(_))));
}

#[test]
fn receipt_proofs_round_trip_and_are_bounded() {
    let all = receipts(20);
    let p = proof(&all, 1, 3, 1);
    assert_eq!(ReceiptProof::decode(&p.encode()).unwrap(), p);
    let mut none = p.clone();
    none.nodes.clear();
    assert!(ReceiptProof::decode(&none.encode()).is_err());
    let mut many = p;
    many.nodes = vec![vec![0x80]; MAX_PROOF_NODES + 1];
    let e = ReceiptProof::decode(&many.encode())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(&format!("more than {MAX_PROOF_NODES} proof nodes")),
        "{e}"
    );
    assert!(ReceiptProof::decode(&vec![0u8; MAX_PROOF_BYTES + 1]).is_err());
}

#[test]
fn log_matching_needs_address_and_first_topic() {
    let l = log(2, 2);
    assert!(l.matches(&[2; 20], &Hash32([2; 32])));
    assert!(!l.matches(&[3; 20], &Hash32([2; 32])));
    assert!(!l.matches(&[2; 20], &Hash32([3; 32])));
    assert!(!log(2, 0).matches(&[2; 20], &Hash32([2; 32])));
}

#[test]
fn mutated_inputs_never_panic_and_what_decodes_round_trips() {
    let all = receipts(40);
    let seeds = [
        proof(&all, 1, 3, 1).encode(),
        all[3].clone(),
        EthUpdate {
            headers: chain(2, &|_| Hash32::ZERO),
        }
        .encode(),
    ];
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for round in 0..20_000 {
        let mut b = seeds[round % 3].clone();
        for _ in 0..1 + round % 4 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let at = (x as usize) % b.len();
            match x % 3 {
                0 => b[at] = (x >> 32) as u8,
                1 => b.truncate(at.max(1)),
                _ => b.insert(at, (x >> 24) as u8),
            }
        }
        if let Ok(r) = EthReceipt::decode(&b) {
            assert_eq!(EthReceipt::decode(&r.encode()).unwrap(), r);
        }
        if let Ok(p) = ReceiptProof::decode(&b) {
            assert_eq!(ReceiptProof::decode(&p.encode()).unwrap(), p);
            let _ = p.verify(&receipts_root(&all));
        }
        if let Ok(u) = EthUpdate::decode(&b) {
            assert_eq!(EthUpdate::decode(&u.encode()).unwrap(), u);
        }
        let _ = EthHeader::decode(&b);
    }
}
