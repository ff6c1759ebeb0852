//! Every network decoder on mutated real inputs: no panics, and whatever decodes round-trips.
//! (The coverage-guided versions of these live in `proto/fuzz`.)

use nexus_proto::block::{decode_payload, encode_payload, Block, BlockHeader, VoteItem, VoteSet};
use nexus_proto::btp::BtpMessage;
use nexus_proto::receipt::{EventLog, Receipt};
use nexus_proto::{Address, Hash32, SignedTransaction};

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn mutate(rng: &mut Rng, seed: &[u8]) -> Vec<u8> {
    let mut b = seed.to_vec();
    for _ in 0..=rng.below(4) {
        match rng.below(4) {
            0 if !b.is_empty() => {
                let i = rng.below(b.len());
                b[i] ^= 1 << rng.below(8);
            }
            1 if !b.is_empty() => b.truncate(rng.below(b.len())),
            2 => {
                let i = rng.below(b.len() + 1);
                b.insert(i, rng.next() as u8);
            }
            _ if !b.is_empty() => {
                let i = rng.below(b.len());
                b[i] = rng.next() as u8;
            }
            _ => {}
        }
    }
    b
}

fn seeds() -> Vec<Vec<u8>> {
    let v: serde_json::Value = serde_json::from_str(include_str!("../testdata/sdk_vectors.json"))
        .expect("vectors are JSON");
    let mut out: Vec<Vec<u8>> = v
        .as_array()
        .expect("a list")
        .iter()
        .map(|x| serde_json::to_vec(&x["params"]).expect("params"))
        .collect();
    let header = BlockHeader {
        version: 1,
        height: 9,
        round: 4,
        timestamp: 5,
        prev_hash: Hash32([1; 32]),
        transactions_root: Hash32([2; 32]),
        receipts_root: Hash32([3; 32]),
        state_root: Hash32([4; 32]),
        validators_hash: Hash32([5; 32]),
        next_validators_hash: Hash32([5; 32]),
        prev_votes_hash: Hash32([6; 32]),
        leader: Address::eoa([7; 20]),
    };
    let votes = VoteSet {
        round: 2,
        items: vec![VoteItem {
            validator_index: 0,
            timestamp: 1,
            signature: vec![3u8; 65].into(),
        }],
    };
    let block = Block {
        header,
        tx_hashes: vec![Hash32([8; 32]); 3],
        prev_votes: votes.clone(),
    };
    out.push(block.encode());
    let txs: Vec<Vec<u8>> = out.iter().take(3).cloned().collect();
    out.push(encode_payload(&block, &txs));
    out.push(votes.to_rlp());
    out.push(
        Receipt {
            status: 1,
            to: Address::contract([1; 20]),
            cumulative_step_used: 1,
            step_used: 1,
            step_price: 1,
            failure_code: 0,
            failure_message: String::new(),
            event_logs: vec![EventLog {
                score_address: Address::contract([1; 20]),
                indexed: vec!["E(int)".into()],
                data: vec!["0x1".into()],
            }],
        }
        .encode(),
    );
    out.push(
        BtpMessage {
            src: "0x1.nexus".into(),
            dst: "0x539.eth".into(),
            svc: "dex".into(),
            sn: 7,
            msg: vec![1, 2, 3],
            nsn: -1,
        }
        .encode(),
    );
    out
}

#[test]
fn mutated_inputs_never_panic_and_decoded_values_round_trip() {
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    let seeds = seeds();
    for round in 0..20_000 {
        let input = mutate(&mut rng, &seeds[round % seeds.len()]);
        if let Ok(st) = SignedTransaction::from_json_bytes(&input) {
            let _ = st.verify_signature();
            assert_eq!(
                SignedTransaction::from_json_bytes(&st.to_json_bytes())
                    .unwrap()
                    .hash,
                st.hash
            );
        }
        if let Ok(b) = Block::decode(&input) {
            assert_eq!(Block::decode(&b.encode()).unwrap(), b);
        }
        if let Ok((b, txs)) = decode_payload(&input) {
            assert_eq!(txs.len(), b.tx_hashes.len());
            assert_eq!(decode_payload(&encode_payload(&b, &txs)).unwrap(), (b, txs));
        }
        if let Ok(v) = VoteSet::from_rlp(&input) {
            assert_eq!(VoteSet::from_rlp(&v.to_rlp()).unwrap(), v);
        }
        if let Ok(r) = Receipt::decode(&input) {
            assert_eq!(Receipt::decode(&r.encode()).unwrap(), r);
        }
        if let Ok(m) = BtpMessage::decode(&input) {
            assert_eq!(BtpMessage::decode(&m.encode()).unwrap(), m);
        }
    }
}
