//! One test per rule of the notary SCORE.

use super::NotaryScore;
use nexus_btp::event::MESSAGE_SIG;
use nexus_btp::testkit::{Remote, World};
use nexus_btp::{BMC_ADDRESS, NOTARY_ADDRESS};
use nexus_proto::btp::BtpMessage;
use nexus_proto::receipt::EventLog;
use nexus_proto::value::{format_bytes, format_int, parse_bytes};
use nexus_proto::{Address, KeyPair};
use nexus_score::ScoreError;
use serde_json::{json, Value};

const A: &str = "0x101.loop";

struct Notary {
    world: World,
    score: NotaryScore,
    admin: Address,
    source: Remote,
}

fn notary() -> Notary {
    let admin = KeyPair::generate().address();
    let mut n = Notary {
        world: World::default(),
        score: NotaryScore { admin: Some(admin) },
        admin,
        source: Remote::new(0x101, "loop-a"),
    };
    let mut p = n.source.setup_params(BMC_ADDRESS);
    p.insert("_network".into(), json!(A));
    n.call(admin, "setSource", Value::Object(p)).unwrap();
    n
}

impl Notary {
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

    fn rx(&mut self) -> Value {
        self.world
            .query(&self.score, NOTARY_ADDRESS, "getStatus", json!({}))["rxSeq"]
            .clone()
    }
}

/// A's BMC's `Message` event: `msg` to `dst` at link sequence `seq`.
fn sent(dst: &str, seq: u128) -> EventLog {
    let m = BtpMessage {
        src: A.into(),
        dst: dst.into(),
        svc: "token".into(),
        sn: seq as i128,
        msg: vec![1, 2, 3],
        nsn: seq as i128,
    };
    EventLog {
        score_address: BMC_ADDRESS,
        indexed: vec![MESSAGE_SIG.into(), dst.into(), format_int(seq)],
        data: vec![format_bytes(&m.encode())],
    }
}

#[test]
fn messages_are_reemitted_in_order_with_one_sequence_per_destination() {
    let mut n = notary();
    let (u, p) = n.source.block(
        vec![
            sent("0x102.loop", 1),
            sent("0x103.loop", 2),
            sent("0x102.loop", 3),
        ],
        &[0, 1, 2],
    );
    let events = n.relay(&[u], &p).unwrap();
    let out: Vec<(String, String)> = events
        .iter()
        .map(|e| (e.indexed[1].clone(), e.indexed[2].clone()))
        .collect();
    assert_eq!(
        out,
        [
            ("0x102.loop", "0x1"),
            ("0x103.loop", "0x1"),
            ("0x102.loop", "0x2")
        ]
        .map(|(a, b)| (a.to_string(), b.to_string()))
    );
    assert!(events.iter().all(|e| e.score_address == NOTARY_ADDRESS));
    // The message bytes travel unchanged.
    assert_eq!(events[0].data, sent("0x102.loop", 1).data);
    assert_eq!(n.rx(), "0x3");
    let out_seq = n.world.query(
        &n.score,
        NOTARY_ADDRESS,
        "getOutSeq",
        json!({"_dst": "0x102.loop"}),
    );
    assert_eq!(out_seq, "0x2");
}

#[test]
fn a_replay_and_a_gap_are_refused() {
    let mut n = notary();
    let (u, p) = n.source.block(vec![sent("0x102.loop", 1)], &[0, 1, 2]);
    n.relay(&[u], &p).unwrap();
    let err = n.relay(&[], &p).unwrap_err();
    assert!(err.message.contains("received already"), "{err}");
    let (u, p) = n.source.block(vec![sent("0x102.loop", 3)], &[0, 1, 2]);
    let err = n.relay(&[u], &p).unwrap_err();
    assert!(err.message.contains("gap"), "{err}");
    assert_eq!(n.rx(), "0x1");
}

#[test]
fn a_header_short_of_votes_is_refused() {
    let mut n = notary();
    let (u, p) = n.source.block(vec![sent("0x102.loop", 1)], &[3, 1]);
    let err = n.relay(&[u], &p).unwrap_err();
    assert!(err.message.contains("more than 2/3"), "{err}");
    assert_eq!(n.rx(), "0x0");
}

#[test]
fn an_event_of_another_score_or_a_forged_source_is_refused() {
    let mut n = notary();
    let mut ev = sent("0x102.loop", 1);
    ev.score_address = Address::contract([0x44; 20]);
    let (u, p) = n.source.block(vec![ev], &[0, 1, 2]);
    let err = n.relay(&[u], &p).unwrap_err();
    assert!(err.message.contains("event from"), "{err}");

    // A's BMC cannot speak for another network.
    let mut ev = sent("0x102.loop", 1);
    let mut m = BtpMessage::decode(&parse_bytes("m", &ev.data[0], 1 << 16).unwrap()).unwrap();
    m.src = "0x109.loop".into();
    ev.data = vec![format_bytes(&m.encode())];
    let (u, p) = n.source.block(vec![ev], &[0, 1, 2]);
    let err = n.relay(&[u], &p).unwrap_err();
    assert!(
        err.message
            .contains("message for 0x109.loop, this is 0x101.loop"),
        "{err}"
    );

    // The event's destination and the message's must agree.
    let mut ev = sent("0x102.loop", 1);
    ev.indexed[1] = "0x103.loop".into();
    let (u, p) = n.source.block(vec![ev], &[0, 1, 2]);
    let err = n.relay(&[u], &p).unwrap_err();
    assert!(err.message.contains("names 0x102.loop"), "{err}");
    assert_eq!(n.rx(), "0x0");
}

#[test]
fn only_the_admin_sets_the_source_once_and_relays_need_it() {
    let admin = KeyPair::generate().address();
    let mut n = Notary {
        world: World::default(),
        score: NotaryScore { admin: Some(admin) },
        admin,
        source: Remote::new(0x101, "loop-a"),
    };
    let err = n.relay(&[], &[]).unwrap_err();
    assert!(err.message.contains("no verifier"), "{err}");
    let mut p = n.source.setup_params(BMC_ADDRESS);
    p.insert("_network".into(), json!(A));
    let err = n
        .call(Address::eoa([9; 20]), "setSource", Value::Object(p.clone()))
        .unwrap_err();
    assert!(err.message.contains("only the admin"), "{err}");
    n.call(n.admin, "setSource", Value::Object(p.clone()))
        .unwrap();
    let err = n.call(n.admin, "setSource", Value::Object(p)).unwrap_err();
    assert!(err.message.contains("exists already"), "{err}");
}

#[test]
fn a_checkpoint_whose_set_does_not_match_is_refused() {
    let admin = KeyPair::generate().address();
    let mut n = Notary {
        world: World::default(),
        score: NotaryScore { admin: Some(admin) },
        admin,
        source: Remote::new(0x101, "loop-a"),
    };
    let mut p = n.source.setup_params(BMC_ADDRESS);
    p.insert("_network".into(), json!(A));
    p.insert(
        "_validators".into(),
        json!(format_bytes(&nexus_proto::block::encode_validators(&[
            Address::eoa([1; 20])
        ]))),
    );
    let err = n.call(admin, "setSource", Value::Object(p)).unwrap_err();
    assert!(err.message.contains("checkpoint"), "{err}");
}
