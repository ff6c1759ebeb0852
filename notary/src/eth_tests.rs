//! One test per rule of the notary SCORE with an Ethereum source.

use super::NotaryScore;
use alloy_primitives::U256;
use alloy_sol_types::SolEvent;
use nexus_btp::stored_eth_client::Message;
use nexus_btp::testkit::World;
use nexus_btp::NOTARY_ADDRESS;
use nexus_light_clients::ethereum::{
    receipt_nodes, receipts_root, EthLog, EthReceipt, EthUpdate, ReceiptProof,
};
use nexus_proto::btp::BtpMessage;
use nexus_proto::hash::keccak256;
use nexus_proto::receipt::EventLog;
use nexus_proto::value::format_bytes;
use nexus_proto::{Address, Hash32, KeyPair};
use nexus_score::ScoreError;
use serde_json::{json, Value};

const ETH: &str = "0x539.eth";
const BMC: [u8; 20] = [0xb7; 20];

use nexus_light_clients::testkit::eth_header as header;

/// The BMC's log for a message to `dst` at `seq`.
fn message_log(emitter: [u8; 20], dst: &str, seq: u64) -> EthLog {
    let m = BtpMessage {
        src: ETH.into(),
        dst: dst.into(),
        svc: "token".into(),
        sn: seq as i128,
        msg: vec![7; 3],
        nsn: seq as i128,
    };
    let data = Message {
        next: dst.into(),
        seq: U256::from(seq),
        msg: m.encode().into(),
    }
    .encode_log_data();
    EthLog {
        address: emitter,
        topics: data.topics().iter().map(|t| Hash32(t.0)).collect(),
        data: data.data.to_vec(),
    }
}

/// A chain of Ethereum blocks: `blocks[n]` = (header RLP, receipts).
struct Chain {
    blocks: Vec<(Vec<u8>, Vec<Vec<u8>>)>,
}

impl Chain {
    fn new() -> Self {
        Chain {
            blocks: vec![(header(0, Hash32::ZERO, receipts_root(&[])), vec![])],
        }
    }

    fn push(&mut self, logs: Vec<EthLog>) -> u64 {
        let receipts = vec![
            EthReceipt {
                tx_type: 2,
                success: true,
                cumulative_gas: 21_000,
                bloom: vec![0; 256],
                logs: vec![],
            }
            .encode(),
            EthReceipt {
                tx_type: 2,
                success: true,
                cumulative_gas: 90_000,
                bloom: vec![0; 256],
                logs,
            }
            .encode(),
        ];
        let n = self.blocks.len() as u64;
        let parent = keccak256(&[&self.blocks.last().unwrap().0]);
        self.blocks
            .push((header(n, parent, receipts_root(&receipts)), receipts));
        n
    }

    fn update(&self, from: u64, to: u64) -> String {
        format_bytes(
            &EthUpdate {
                headers: (from..=to)
                    .map(|n| self.blocks[n as usize].0.clone())
                    .collect(),
            }
            .encode(),
        )
    }

    fn proof(&self, block: u64, log: u64) -> String {
        let receipts = &self.blocks[block as usize].1;
        format_bytes(
            &ReceiptProof {
                block,
                index: 1,
                log,
                receipt: receipts[1].clone(),
                nodes: receipt_nodes(receipts, 1).unwrap(),
            }
            .encode(),
        )
    }
}

struct Notary {
    world: World,
    score: NotaryScore,
    admin: Address,
    chain: Chain,
}

fn notary() -> Notary {
    let admin = KeyPair::generate().address();
    let mut n = Notary {
        world: World::default(),
        score: NotaryScore { admin: Some(admin) },
        admin,
        chain: Chain::new(),
    };
    let p = n.setup_params();
    n.call(admin, "setEthSource", p).unwrap();
    n
}

impl Notary {
    fn setup_params(&self) -> Value {
        json!({"_network": ETH, "_chainId": "0x539", "_checkpoint": format_bytes(&self.chain.blocks[0].0),
               "_confirmations": "0x2", "_emitter": format_bytes(&BMC)})
    }

    fn call(&mut self, from: Address, method: &str, p: Value) -> Result<Vec<EventLog>, ScoreError> {
        self.world
            .call(&self.score, NOTARY_ADDRESS, from, 0, method, p)
            .map(|(_, e)| e)
    }

    fn relay(
        &mut self,
        updates: &[String],
        proofs: &[String],
    ) -> Result<Vec<EventLog>, ScoreError> {
        self.call(
            Address::eoa([0x77; 20]),
            "relay",
            json!({"_updates": updates, "_proofs": proofs}),
        )
    }

    fn status(&mut self) -> Value {
        self.world
            .query(&self.score, NOTARY_ADDRESS, "getStatus", json!({}))
    }

    /// Block 1 holds messages 1 and 2 to `0x101.loop`; blocks 2 and 3 confirm it.
    fn with_messages(&mut self) -> (String, Vec<String>) {
        self.chain.push(vec![
            message_log(BMC, "0x101.loop", 1),
            message_log(BMC, "0x101.loop", 2),
        ]);
        self.chain.push(vec![]);
        self.chain.push(vec![]);
        (
            self.chain.update(1, 3),
            vec![self.chain.proof(1, 0), self.chain.proof(1, 1)],
        )
    }
}

fn refused(r: Result<Vec<EventLog>, ScoreError>, needle: &str) {
    match r {
        Err(e) => assert!(e.to_string().contains(needle), "{e} lacks {needle:?}"),
        Ok(_) => panic!("accepted; expected a refusal with {needle:?}"),
    }
}

#[test]
fn confirmed_messages_are_reemitted_in_order_for_their_destination() {
    let mut n = notary();
    let (u, proofs) = n.with_messages();
    let events = n.relay(&[u], &proofs).unwrap();
    let out: Vec<_> = events
        .iter()
        .filter(|e| e.indexed[0] == nexus_btp::event::MESSAGE_SIG)
        .collect();
    assert_eq!(out.len(), 2);
    assert_eq!(out[0].indexed[1], "0x101.loop");
    assert_eq!(
        (out[0].indexed[2].as_str(), out[1].indexed[2].as_str()),
        ("0x1", "0x2")
    );
    let st = n.status();
    assert_eq!(
        (
            st["kind"].as_str(),
            st["height"].as_str(),
            st["rxSeq"].as_str()
        ),
        (Some("eth"), Some("0x3"), Some("0x2"))
    );
}

#[test]
fn a_message_in_an_unconfirmed_block_waits() {
    let mut n = notary();
    n.chain.push(vec![message_log(BMC, "0x101.loop", 1)]);
    n.chain.push(vec![]);
    let u = n.chain.update(1, 2);
    refused(
        n.relay(std::slice::from_ref(&u), &[n.chain.proof(1, 0)]),
        "confirmations",
    );
    assert_eq!(n.status()["height"], "0x0", "nothing applied");
}

#[test]
fn a_header_that_does_not_extend_the_chain_is_refused() {
    let mut n = notary();
    n.with_messages();
    let forged = format_bytes(
        &EthUpdate {
            headers: vec![header(1, Hash32([9; 32]), Hash32::ZERO)],
        }
        .encode(),
    );
    refused(n.relay(&[forged], &[]), "parent");
}

#[test]
fn a_receipt_proof_for_another_block_is_refused() {
    let mut n = notary();
    n.with_messages();
    n.chain.push(vec![]);
    let u = n.chain.update(1, 4);
    let mut p = ReceiptProof::decode(
        &nexus_proto::value::parse_bytes("p", &n.chain.proof(1, 0), 1 << 20).unwrap(),
    )
    .unwrap();
    p.block = 2;
    refused(n.relay(&[u], &[format_bytes(&p.encode())]), "receiptsRoot");
}

#[test]
fn a_log_that_is_not_in_the_receipt_is_refused() {
    let mut n = notary();
    let (u, _) = n.with_messages();
    refused(
        n.relay(&[u], &[n.chain.proof(1, 2)]),
        "log 2 is not in receipt",
    );
}

#[test]
fn a_log_of_another_contract_is_refused() {
    let mut n = notary();
    n.chain.push(vec![message_log([0x66; 20], "0x101.loop", 1)]);
    n.chain.push(vec![]);
    n.chain.push(vec![]);
    let u = n.chain.update(1, 3);
    refused(n.relay(&[u], &[n.chain.proof(1, 0)]), "event from");
}

#[test]
fn another_event_of_the_bmc_is_refused() {
    let mut n = notary();
    let mut log = message_log(BMC, "0x101.loop", 1);
    log.topics[0] = keccak256(&[b"Other(uint256)"]);
    n.chain.push(vec![log]);
    n.chain.push(vec![]);
    n.chain.push(vec![]);
    let u = n.chain.update(1, 3);
    refused(n.relay(&[u], &[n.chain.proof(1, 0)]), "not a BTP message");
}

#[test]
fn replayed_and_skipped_sequence_numbers_are_refused() {
    let mut n = notary();
    let (u, proofs) = n.with_messages();
    refused(n.relay(std::slice::from_ref(&u), &proofs[1..]), "gap");
    n.relay(&[u], &proofs).unwrap();
    refused(n.relay(&[], &proofs[..1]), "received already");
}

#[test]
fn only_the_admin_sets_the_source_and_only_once() {
    let mut n = notary();
    let p = n.setup_params();
    refused(
        n.call(Address::eoa([1; 20]), "setEthSource", p.clone()),
        "admin",
    );
    let admin = n.admin;
    refused(n.call(admin, "setEthSource", p), "exists");
    let mut fresh = Notary {
        world: World::default(),
        score: n.score.clone(),
        admin,
        chain: Chain::new(),
    };
    let mut bad = fresh.setup_params();
    bad["_emitter"] = json!("0x1234");
    refused(fresh.call(admin, "setEthSource", bad), "_emitter");
    let mut bad = fresh.setup_params();
    bad["_confirmations"] = json!("0x1000");
    refused(fresh.call(admin, "setEthSource", bad), "_confirmations");
    let mut bad = fresh.setup_params();
    bad["_checkpoint"] = json!("0xc0");
    refused(fresh.call(admin, "setEthSource", bad), "checkpoint");
}

#[test]
fn a_reorg_of_the_unconfirmed_tip_replaces_it_and_old_headers_are_forgotten() {
    let mut n = notary();
    n.chain.push(vec![]);
    n.chain.push(vec![]);
    let u = n.chain.update(1, 2);
    n.relay(&[u], &[]).unwrap();
    // A sibling of block 2 (unconfirmed with 2 confirmations) replaces it.
    let parent = keccak256(&[&n.chain.blocks[1].0]);
    let fork = header(2, parent, Hash32([5; 32]));
    n.relay(
        &[format_bytes(
            &EthUpdate {
                headers: vec![fork],
            }
            .encode(),
        )],
        &[],
    )
    .unwrap();
    assert_eq!(n.status()["height"], "0x2");
    // Far more headers than the window: the stored client keeps a bounded number.
    let mut chain = Chain::new();
    let mut m = notary();
    for _ in 0..1100 {
        chain.push(vec![]);
    }
    m.chain = chain;
    for from in (1..=1100u64).step_by(200) {
        let u = m.chain.update(from, (from + 199).min(1100));
        m.relay(&[u], &[]).unwrap();
    }
    assert_eq!(m.status()["height"], "0x44c");
}

impl Chain {
    /// A follow-on proof of log `log` of block `block`'s message receipt.
    fn follow_on(&self, block: u64, log: u64) -> String {
        format_bytes(
            &ReceiptProof {
                block,
                index: 1,
                log,
                receipt: vec![],
                nodes: vec![],
            }
            .encode(),
        )
    }
}

#[test]
fn a_follow_on_proof_names_another_log_of_the_receipt_just_proved() {
    let mut n = notary();
    let (u, proofs) = n.with_messages();
    let events = n
        .relay(&[u], &[proofs[0].clone(), n.chain.follow_on(1, 1)])
        .unwrap();
    let out = events
        .iter()
        .filter(|e| e.indexed[0] == nexus_btp::event::MESSAGE_SIG)
        .count();
    assert_eq!(out, 2);
    assert_eq!(n.status()["rxSeq"], "0x2");
}

#[test]
fn a_follow_on_proof_without_its_receipt_before_it_is_refused() {
    let mut n = notary();
    let (u, _) = n.with_messages();
    // First in the relay: nothing to follow.
    refused(
        n.relay(std::slice::from_ref(&u), &[n.chain.follow_on(1, 0)]),
        "must follow a proof of",
    );
    // After a proof of another block's receipt.
    n.chain.push(vec![message_log(BMC, "0x101.loop", 2)]);
    n.chain.push(vec![]);
    n.chain.push(vec![]);
    let u2 = n.chain.update(1, 6);
    refused(
        n.relay(&[u2], &[n.chain.proof(1, 0), n.chain.follow_on(4, 0)]),
        "must follow a proof of the same receipt",
    );
    assert_eq!(n.status()["rxSeq"], "0x0", "nothing was accepted");
}
