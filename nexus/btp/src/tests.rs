//! One test per rule of the BMC and its services: what a relay must prove, what it may not
//! replay or skip, and how transfers are delivered, refused and refunded.

use crate::bmc::Bmc;
use crate::event::MESSAGE_SIG;
use crate::testkit::{Remote, World};
use crate::token::{native_token, TransferMessage};
use crate::{BMC_ADDRESS, NOTARY_ADDRESS};
use nexus_proto::btp::{BtpMessage, ErrorMessage};
use nexus_proto::receipt::EventLog;
use nexus_proto::value::{format_bytes, format_int, parse_bytes};
use nexus_proto::{Address, KeyPair};
use nexus_score::ScoreError;
use serde_json::{json, Value};

const A: &str = "0x101.loop";
const B: &str = "0x102.loop";
const ICX: u128 = 1_000_000_000_000_000_000;

struct Chain {
    world: World,
    bmc: Bmc,
    admin: Address,
}

fn chain(network: &str) -> Chain {
    let admin = KeyPair::generate().address();
    Chain {
        world: World::default(),
        bmc: Bmc {
            network: network.into(),
            admin: Some(admin),
            ..Bmc::default()
        },
        admin,
    }
}

impl Chain {
    fn call(
        &mut self,
        from: Address,
        value: u128,
        method: &str,
        p: Value,
    ) -> Result<Vec<EventLog>, ScoreError> {
        self.world
            .call(&self.bmc, BMC_ADDRESS, from, value, method, p)
            .map(|(_, e)| e)
    }

    fn query(&mut self, method: &str, p: Value) -> Value {
        self.world.query(&self.bmc, BMC_ADDRESS, method, p)
    }

    /// Registers `notary` as the verifier of messages from `src`.
    fn add_verifier(&mut self, src: &str, notary: &Remote) {
        let mut p = notary.setup_params(NOTARY_ADDRESS);
        p.insert("_src".into(), json!(src));
        let admin = self.admin;
        self.call(admin, 0, "addVerifier", Value::Object(p))
            .unwrap();
    }

    fn relay(
        &mut self,
        src: &str,
        updates: &[String],
        proofs: &[String],
    ) -> Result<Vec<EventLog>, ScoreError> {
        let relayer = Address::eoa([0x77; 20]);
        self.call(
            relayer,
            0,
            "handleRelayMessage",
            json!({"_src": src, "_updates": updates, "_proofs": proofs}),
        )
    }

    fn rx(&mut self, src: &str) -> String {
        self.query("getStatus", json!({"_link": src}))["rxSeq"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    fn wrapped(&mut self, token: &str, owner: &Address) -> String {
        self.query(
            "balanceOf",
            json!({"_token": token, "_owner": owner.to_string()}),
        )
        .as_str()
        .unwrap_or_default()
        .to_string()
    }
}

/// The notary's `Message` event carrying `msg` to `next` at `seq`.
fn notarized(next: &str, seq: u128, msg: &BtpMessage) -> EventLog {
    EventLog {
        score_address: NOTARY_ADDRESS,
        indexed: vec![MESSAGE_SIG.into(), next.into(), format_int(seq)],
        data: vec![format_bytes(&msg.encode())],
    }
}

fn transfer_msg(to: &Address, amount: u128, sn: i128) -> BtpMessage {
    BtpMessage {
        src: A.into(),
        dst: B.into(),
        svc: "token".into(),
        sn,
        msg: alloy_rlp::encode(&TransferMessage {
            from: Address::eoa([1; 20]).to_string(),
            to: to.to_string(),
            token: native_token(A),
            amount,
        }),
        nsn: sn,
    }
}

/// Chain B with a verifier of notary-A.
fn b_with_notary_a() -> (Chain, Remote) {
    let mut b = chain(B);
    let notary = Remote::new(0x1001, "notary-a");
    b.add_verifier(A, &notary);
    (b, notary)
}

fn code_of(e: &ScoreError) -> u32 {
    e.code
}

#[test]
fn a_notarized_transfer_is_delivered_once_and_answered() {
    let (mut b, mut notary) = b_with_notary_a();
    let bob = Address::eoa([2; 20]);
    let (u, p) = notary.block(
        vec![notarized(B, 1, &transfer_msg(&bob, 5 * ICX, 1))],
        &[0, 1, 2],
    );
    let events = b.relay(A, &[u], &p).unwrap();
    assert_eq!(b.wrapped(&native_token(A), &bob), format_int(5 * ICX));
    assert_eq!(b.rx(A), "0x1");
    // The success reply goes back to A as a Message event with sn -1 and code 0.
    let reply = events
        .iter()
        .find(|e| e.indexed[0] == MESSAGE_SIG)
        .expect("a reply message");
    assert_eq!(reply.indexed[1], A);
    let m = BtpMessage::decode(&parse_bytes("m", &reply.data[0], 1 << 16).unwrap()).unwrap();
    assert_eq!((m.sn, m.nsn), (-1, -1));
    assert_eq!(ErrorMessage::decode(&m.msg).unwrap().code, 0);
}

#[test]
fn a_header_with_too_few_votes_is_refused_and_nothing_changes() {
    let (mut b, mut notary) = b_with_notary_a();
    let bob = Address::eoa([2; 20]);
    let (u, p) = notary.block(vec![notarized(B, 1, &transfer_msg(&bob, ICX, 1))], &[0, 1]);
    let err = b.relay(A, &[u], &p).unwrap_err();
    assert!(err.message.contains("more than 2/3"), "{err}");
    assert_eq!(code_of(&err), 32 + 4);
    assert_eq!(b.rx(A), "0x0");
    assert_eq!(b.wrapped(&native_token(A), &bob), "0x0");
}

#[test]
fn a_signature_by_a_key_outside_the_set_is_refused() {
    let (mut b, mut notary) = b_with_notary_a();
    notary.keys[2] = KeyPair::generate(); // signs as validator 2, but is not it
    let (u, p) = notary.block(
        vec![notarized(B, 1, &transfer_msg(&Address::eoa([2; 20]), 1, 1))],
        &[0, 1, 2],
    );
    let err = b.relay(A, &[u], &p).unwrap_err();
    assert!(err.message.contains("signed by"), "{err}");
    assert_eq!(b.rx(A), "0x0");
}

#[test]
fn a_set_change_not_signed_by_the_old_set_is_refused() {
    let (mut b, notary) = b_with_notary_a();
    // The next header hands over to a new set, and the new keys sign it instead of the old.
    let new_keys: Vec<KeyPair> = (0..4).map(|_| KeyPair::generate()).collect();
    let new_set: Vec<Address> = new_keys.iter().map(KeyPair::address).collect();
    let h = nexus_proto::block::BlockHeader {
        height: notary.head.height + 1,
        round: notary.head.round + 1,
        prev_hash: notary.head.hash(),
        next_validators_hash: nexus_proto::block::validators_hash(&new_set),
        ..notary.head.clone()
    };
    let mut usurper = Remote::new(notary.nid, &notary.channel);
    usurper.keys = new_keys;
    let forged = nexus_light_clients::HeaderUpdate {
        votes: usurper.votes(&h, &[0, 1, 2, 3]),
        header: h.clone(),
        next_validators: Some(new_set.clone()),
    };
    let err = b
        .relay(A, &[format_bytes(&forged.encode())], &[])
        .unwrap_err();
    assert!(err.message.contains("signed by"), "{err}");
    // Signed by the old set, the same change is accepted, and from then on the new set signs.
    let honest = nexus_light_clients::HeaderUpdate {
        votes: notary.votes(&h, &[0, 1, 2]),
        header: h.clone(),
        next_validators: Some(new_set),
    };
    b.relay(A, &[format_bytes(&honest.encode())], &[]).unwrap();
    let status = b.query("getStatus", json!({"_link": A}));
    assert_eq!(status["verifier"]["height"], format_int(h.height));
}

#[test]
fn a_message_not_in_the_block_is_refused() {
    let (mut b, mut notary) = b_with_notary_a();
    let bob = Address::eoa([2; 20]);
    let (u, _) = notary.block(
        vec![notarized(B, 1, &transfer_msg(&bob, ICX, 1))],
        &[0, 1, 2],
    );
    // A proof of another event, made for a block the verifier never saw.
    let mut other = Remote::new(0x1001, "notary-a");
    other.head = notary.head.clone();
    let (_, forged) = other.block(
        vec![notarized(B, 1, &transfer_msg(&bob, 1000 * ICX, 1))],
        &[0, 1, 2],
    );
    let err = b.relay(A, std::slice::from_ref(&u), &forged).unwrap_err();
    assert!(err.message.contains("proof 0"), "{err}");
    // The same proof with the height of the verified header: the path does not lead to its root.
    let mut raw = parse_bytes("p", &forged[0], 1 << 20).unwrap();
    let mut proof = nexus_light_clients::EventProof::decode(&raw).unwrap();
    proof.height = notary.head.height;
    raw = proof.encode();
    let err = b.relay(A, &[u], &[format_bytes(&raw)]).unwrap_err();
    assert!(err.message.contains("proof"), "{err}");
    assert_eq!(b.wrapped(&native_token(A), &bob), "0x0");
}

#[test]
fn a_replayed_sequence_number_is_refused() {
    let (mut b, mut notary) = b_with_notary_a();
    let bob = Address::eoa([2; 20]);
    let (u, p) = notary.block(
        vec![notarized(B, 1, &transfer_msg(&bob, ICX, 1))],
        &[0, 1, 2],
    );
    b.relay(A, &[u], &p).unwrap();
    let err = b.relay(A, &[], &p).unwrap_err();
    assert!(err.message.contains("received already"), "{err}");
    assert_eq!(code_of(&err), 32 + 7);
    assert_eq!(
        b.wrapped(&native_token(A), &bob),
        format_int(ICX),
        "minted once"
    );
}

#[test]
fn a_gap_in_sequence_numbers_is_refused() {
    let (mut b, mut notary) = b_with_notary_a();
    let (u, p) = notary.block(
        vec![notarized(
            B,
            2,
            &transfer_msg(&Address::eoa([2; 20]), ICX, 2),
        )],
        &[0, 1, 2],
    );
    let err = b.relay(A, &[u], &p).unwrap_err();
    assert!(err.message.contains("gap: expected 1, got 2"), "{err}");
    assert_eq!(code_of(&err), 32 + 8);
}

#[test]
fn an_event_from_another_score_is_refused() {
    let (mut b, mut notary) = b_with_notary_a();
    let mut ev = notarized(B, 1, &transfer_msg(&Address::eoa([2; 20]), ICX, 1));
    ev.score_address = Address::contract([0x66; 20]);
    let (u, p) = notary.block(vec![ev], &[0, 1, 2]);
    let err = b.relay(A, &[u], &p).unwrap_err();
    assert!(err.message.contains("event from cx6666"), "{err}");
}

#[test]
fn a_message_for_another_network_is_refused() {
    let (mut b, mut notary) = b_with_notary_a();
    let (u, p) = notary.block(
        vec![notarized(
            "0x103.loop",
            1,
            &transfer_msg(&Address::eoa([2; 20]), ICX, 1),
        )],
        &[0, 1, 2],
    );
    let err = b.relay(A, &[u], &p).unwrap_err();
    assert!(err.message.contains("message for 0x103.loop"), "{err}");
}

#[test]
fn relays_from_an_unregistered_source_and_verifiers_by_others_are_refused() {
    let (mut b, notary) = b_with_notary_a();
    let err = b.relay("0x109.loop", &[], &[]).unwrap_err();
    assert!(
        err.message.contains("no verifier for network 0x109.loop"),
        "{err}"
    );
    let mut p = notary.setup_params(NOTARY_ADDRESS);
    p.insert("_src".into(), json!("0x109.loop"));
    let err = b
        .call(Address::eoa([5; 20]), 0, "addVerifier", Value::Object(p))
        .unwrap_err();
    assert!(err.message.contains("only the admin"), "{err}");
    let mut p = notary.setup_params(NOTARY_ADDRESS);
    p.insert("_src".into(), json!(A));
    let admin = b.admin;
    let err = b
        .call(admin, 0, "addVerifier", Value::Object(p))
        .unwrap_err();
    assert!(err.message.contains("exists already"), "{err}");
}

#[test]
fn a_delivery_the_service_refuses_becomes_an_error_reply_and_changes_nothing_else() {
    let (mut b, mut notary) = b_with_notary_a();
    let mut m = transfer_msg(&Address::eoa([2; 20]), ICX, 1);
    let mut t: TransferMessage = alloy_rlp::Decodable::decode(&mut &m.msg[..]).unwrap();
    t.to = "hxnot-an-address".into();
    m.msg = alloy_rlp::encode(&t);
    let (u, p) = notary.block(vec![notarized(B, 1, &m)], &[0, 1, 2]);
    let events = b.relay(A, &[u], &p).unwrap();
    assert_eq!(b.rx(A), "0x1", "the message is consumed");
    let reply = events.iter().find(|e| e.indexed[0] == MESSAGE_SIG).unwrap();
    let m = BtpMessage::decode(&parse_bytes("m", &reply.data[0], 1 << 16).unwrap()).unwrap();
    let err = ErrorMessage::decode(&m.msg).unwrap();
    assert_eq!(err.code, 4);
    assert!(err.message.contains("recipient"), "{}", err.message);
    assert_eq!(
        b.query("totalWrapped", json!({"_token": native_token(A)})),
        "0x0"
    );
}

#[test]
fn a_transfer_locks_the_coin_and_an_error_reply_refunds_it() {
    let mut a = chain(A);
    let notary_b = Remote::new(0x1002, "notary-b");
    a.add_verifier(B, &notary_b);
    let alice = Address::eoa([0xa1; 20]);
    a.world.fund(&alice, 10 * ICX);
    let events = a
        .call(
            alice,
            3 * ICX,
            "transfer",
            json!({"_to": format!("{B}/hx{}", "22".repeat(20))}),
        )
        .unwrap();
    assert_eq!(a.world.balance(&alice), 7 * ICX);
    assert_eq!(a.world.balance(&BMC_ADDRESS), 3 * ICX, "locked in the BMC");
    let sent = events.iter().find(|e| e.indexed[0] == MESSAGE_SIG).unwrap();
    assert_eq!(
        (sent.indexed[1].as_str(), sent.indexed[2].as_str()),
        (B, "0x1")
    );
    assert_eq!(
        a.query("getMessageStatus", json!({"_sn": "0x1"}))["status"],
        "sent"
    );
    // B refused it: the error reply comes back through notary-b.
    let mut notary_b = notary_b;
    let reply = BtpMessage {
        src: B.into(),
        dst: A.into(),
        svc: "token".into(),
        sn: -1,
        msg: ErrorMessage {
            code: 4,
            message: "no".into(),
        }
        .encode(),
        nsn: -1,
    };
    let (u, p) = notary_b.block(vec![notarized(A, 1, &reply)], &[1, 2, 3]);
    a.relay(B, &[u], &p).unwrap();
    assert_eq!(a.world.balance(&alice), 10 * ICX, "refunded");
    assert_eq!(a.world.balance(&BMC_ADDRESS), 0);
    assert_eq!(
        a.query("getMessageStatus", json!({"_sn": "0x1"}))["status"],
        "refunded"
    );
}

#[test]
fn a_success_reply_marks_the_transfer_delivered_and_keeps_the_coin_locked() {
    let mut a = chain(A);
    let mut notary_b = Remote::new(0x1002, "notary-b");
    a.add_verifier(B, &notary_b);
    let alice = Address::eoa([0xa1; 20]);
    a.world.fund(&alice, 10 * ICX);
    a.call(
        alice,
        3 * ICX,
        "transfer",
        json!({"_to": format!("{B}/hx{}", "22".repeat(20))}),
    )
    .unwrap();
    let reply = BtpMessage {
        src: B.into(),
        dst: A.into(),
        svc: "token".into(),
        sn: -1,
        msg: ErrorMessage {
            code: 0,
            message: String::new(),
        }
        .encode(),
        nsn: -1,
    };
    let (u, p) = notary_b.block(vec![notarized(A, 1, &reply)], &[0, 1, 2, 3]);
    a.relay(B, &[u], &p).unwrap();
    assert_eq!(
        a.query("getMessageStatus", json!({"_sn": "0x1"}))["status"],
        "delivered"
    );
    assert_eq!(a.world.balance(&BMC_ADDRESS), 3 * ICX);
}

#[test]
fn transfers_are_refused_without_a_route_value_or_a_valid_address() {
    let mut a = chain(A);
    let alice = Address::eoa([0xa1; 20]);
    a.world.fund(&alice, 10 * ICX);
    let to = format!("{B}/hx{}", "22".repeat(20));
    let err = a
        .call(alice, ICX, "transfer", json!({"_to": to}))
        .unwrap_err();
    assert!(err.message.contains("no route to 0x102.loop"), "{err}");
    a.add_verifier(B, &Remote::new(0x1002, "notary-b"));
    let err = a
        .call(alice, 0, "transfer", json!({"_to": to}))
        .unwrap_err();
    assert!(err.message.contains("got 0"), "{err}");
    for bad in [
        "0x102.loop",
        "loop/hx12",
        "0xzz.loop/hx12",
        "0x102.LOOP/hx12",
        "0x102.loop/",
    ] {
        let err = a
            .call(alice, ICX, "transfer", json!({"_to": bad}))
            .unwrap_err();
        assert!(err.message.contains("expected"), "{bad}: {err}");
    }
    let err = a.call(alice, ICX, "registerCert", json!({})).unwrap_err();
    assert!(err.message.contains("does not take ICX"), "{err}");
    assert_eq!(a.world.balance(&alice), 10 * ICX, "nothing moved");
}

#[test]
fn wrapped_tokens_go_back_home_and_unlock_there() {
    // B holds 2 wrapped A-ICX for bob; bob sends 1 back to A, where it unlocks.
    let (mut b, mut notary_a) = b_with_notary_a();
    let bob = Address::eoa([2; 20]);
    let (u, p) = notary_a.block(
        vec![notarized(B, 1, &transfer_msg(&bob, 2 * ICX, 1))],
        &[0, 1, 2],
    );
    b.relay(A, &[u], &p).unwrap();
    let token = native_token(A);
    let err = b
        .call(
            bob,
            0,
            "transferWrapped",
            json!({"_token": token, "_to": format!("0x103.loop/{bob}"), "_value": "0x1"}),
        )
        .unwrap_err();
    assert!(err.message.contains("home network"), "{err}");
    let err = b
        .call(
            bob,
            0,
            "transferWrapped",
            json!({"_token": token, "_to": format!("{A}/{bob}"), "_value": format_int(3 * ICX)}),
        )
        .unwrap_err();
    assert!(err.message.contains("cannot send"), "{err}");
    let events = b
        .call(
            bob,
            0,
            "transferWrapped",
            json!({"_token": token, "_to": format!("{A}/{bob}"), "_value": format_int(ICX)}),
        )
        .unwrap();
    assert_eq!(b.wrapped(&token, &bob), format_int(ICX));
    assert_eq!(
        b.query("totalWrapped", json!({"_token": token})),
        format_int(ICX)
    );
    let sent = events
        .iter()
        .find(|e| e.indexed[0] == MESSAGE_SIG && e.indexed[1] == A)
        .unwrap();
    // On A, the coin unlocks from the BMC (where an earlier transfer to B locked it).
    let mut a = chain(A);
    let mut notary_b = Remote::new(0x1002, "notary-b");
    a.add_verifier(B, &notary_b);
    let alice = Address::eoa([0xa1; 20]);
    a.world.fund(&alice, 2 * ICX);
    a.call(
        alice,
        2 * ICX,
        "transfer",
        json!({"_to": format!("{B}/{bob}")}),
    )
    .unwrap();
    let msg = BtpMessage::decode(&parse_bytes("m", &sent.data[0], 1 << 16).unwrap()).unwrap();
    // B's own reply to A came first on this link (seq 1), so the transfer is seq 2.
    assert_eq!(sent.indexed[2], "0x2");
    let _ = alice;
    let (u, p) = notary_b.block(
        vec![
            notarized(
                A,
                1,
                &BtpMessage {
                    src: B.into(),
                    dst: A.into(),
                    svc: "token".into(),
                    sn: -7,
                    msg: ErrorMessage {
                        code: 0,
                        message: String::new(),
                    }
                    .encode(),
                    nsn: -7,
                },
            ),
            notarized(A, 2, &msg),
        ],
        &[0, 1, 2],
    );
    a.relay(B, &[u], &p).unwrap();
    assert_eq!(a.world.balance(&bob), ICX);
    assert_eq!(a.world.balance(&BMC_ADDRESS), ICX);
}

#[test]
fn a_chain_cannot_take_the_coin_locked_for_another() {
    // B locked 5 ICX for C; A (compromised) claims to send 5 of B's ICX back.
    let (mut b, mut notary_a) = b_with_notary_a();
    b.add_verifier("0x103.loop", &Remote::new(0x1003, "notary-c"));
    let carol = Address::eoa([0xc0; 20]);
    b.world.fund(&carol, 5 * ICX);
    b.call(
        carol,
        5 * ICX,
        "transfer",
        json!({"_to": format!("0x103.loop/{carol}")}),
    )
    .unwrap();
    assert_eq!(b.world.balance(&BMC_ADDRESS), 5 * ICX);
    let thief = Address::eoa([0x66; 20]);
    let mut m = transfer_msg(&thief, 5 * ICX, 1);
    let mut t: TransferMessage = alloy_rlp::Decodable::decode(&mut &m.msg[..]).unwrap();
    t.token = native_token(B);
    m.msg = alloy_rlp::encode(&t);
    let (u, p) = notary_a.block(vec![notarized(B, 1, &m)], &[0, 1, 2]);
    let events = b.relay(A, &[u], &p).unwrap();
    let reply = events.iter().find(|e| e.indexed[0] == MESSAGE_SIG).unwrap();
    let r = BtpMessage::decode(&parse_bytes("m", &reply.data[0], 1 << 16).unwrap()).unwrap();
    let err = ErrorMessage::decode(&r.msg).unwrap();
    assert!(
        err.message.contains("holds 0 of this chain's ICX"),
        "{}",
        err.message
    );
    assert_eq!(b.world.balance(&thief), 0);
    assert_eq!(
        b.world.balance(&BMC_ADDRESS),
        5 * ICX,
        "C's coin stays locked"
    );
}

#[test]
fn a_chain_cannot_mint_another_chains_coin() {
    let (mut b, mut notary) = b_with_notary_a();
    let mut m = transfer_msg(&Address::eoa([2; 20]), ICX, 1);
    let mut t: TransferMessage = alloy_rlp::Decodable::decode(&mut &m.msg[..]).unwrap();
    t.token = native_token("0x103.loop");
    m.msg = alloy_rlp::encode(&t);
    let (u, p) = notary.block(vec![notarized(B, 1, &m)], &[0, 1, 2]);
    let events = b.relay(A, &[u], &p).unwrap();
    let reply = events.iter().find(|e| e.indexed[0] == MESSAGE_SIG).unwrap();
    let m = BtpMessage::decode(&parse_bytes("m", &reply.data[0], 1 << 16).unwrap()).unwrap();
    assert!(ErrorMessage::decode(&m.msg)
        .unwrap()
        .message
        .contains("not its own coin"));
    assert_eq!(
        b.query(
            "totalWrapped",
            json!({"_token": native_token("0x103.loop")})
        ),
        "0x0"
    );
}

#[test]
fn a_certificate_registered_on_a_verifies_on_b() {
    let mut a = chain(A);
    a.add_verifier(B, &Remote::new(0x1002, "notary-b"));
    let alice = Address::eoa([0xa1; 20]);
    let subject = format_bytes(&[0x5a; 32]);
    let key = format_bytes(&[4u8; 65]);
    let events = a
        .call(
            alice,
            0,
            "registerCert",
            json!({"_dst": B, "_subject": subject, "_pubkey": key}),
        )
        .unwrap();
    let sent = events.iter().find(|e| e.indexed[0] == MESSAGE_SIG).unwrap();
    let msg = BtpMessage::decode(&parse_bytes("m", &sent.data[0], 1 << 16).unwrap()).unwrap();
    let (mut b, mut notary) = b_with_notary_a();
    let (u, p) = notary.block(vec![notarized(B, 1, &msg)], &[0, 1, 2]);
    b.relay(A, &[u], &p).unwrap();
    assert_eq!(
        b.query(
            "verifyCert",
            json!({"_src": A, "_subject": subject, "_pubkey": key})
        ),
        "0x1"
    );
    let other = format_bytes(&[5u8; 65]);
    assert_eq!(
        b.query(
            "verifyCert",
            json!({"_src": A, "_subject": subject, "_pubkey": other})
        ),
        "0x0"
    );
    assert_eq!(
        b.query(
            "verifyCert",
            json!({"_src": "0x103.loop", "_subject": subject, "_pubkey": key})
        ),
        "0x0"
    );
    let err = a
        .call(
            alice,
            0,
            "registerCert",
            json!({"_dst": B, "_subject": "0x01", "_pubkey": key}),
        )
        .unwrap_err();
    assert!(err.message.contains("32-byte"), "{err}");
}

#[test]
fn network_addresses_are_checked() {
    for ok in ["0x1.nexus", "0x101.loop", "0x539.eth"] {
        crate::check_network("n", ok).unwrap();
    }
    for bad in [
        "",
        "0x1",
        ".loop",
        "0x.loop",
        "1.loop",
        "0x1.",
        "0x1.Loop",
        "0xg.loop",
        "0x1.lo op",
        "0x1.ëth",
    ] {
        assert!(crate::check_network("n", bad).is_err(), "{bad}");
    }
    assert!(crate::check_network("n", &format!("0x{}.loop", "1".repeat(100))).is_err());
}

#[test]
fn token_ids_name_their_home_network_and_symbol() {
    use crate::token::token_home;
    assert_eq!(token_home("btp-0x101.loop-ICX"), Some("0x101.loop"));
    assert_eq!(token_home("btp-0x539.eth-ETH"), Some("0x539.eth"));
    for bad in [
        "btp-0x539.eth-",
        "btp--ETH",
        "0x539.eth-ETH",
        "btp-0x539.eth-eth",
        "btp-x-ÉTH",
        "btp-0x1.loop-TOOLONGSYMBOLXXXXX",
    ] {
        assert_eq!(token_home(bad), None, "{bad}");
    }
}

/// A SCORE service that sends what it is asked to through the BMC.
struct Sender;

impl nexus_score::NativeScore for Sender {
    fn api(&self) -> Value {
        json!([])
    }
    fn install(&self, _ctx: &mut nexus_score::CallContext<'_, '_>) -> Result<(), ScoreError> {
        Ok(())
    }
    fn call(
        &self,
        ctx: &mut nexus_score::CallContext<'_, '_>,
        _method: &str,
        p: &serde_json::Map<String, Value>,
    ) -> Result<Value, ScoreError> {
        ctx.call(&BMC_ADDRESS, "sendMessage", p, 0)
    }
}

#[test]
fn only_a_services_own_score_sends_its_messages_and_only_on_a_route() {
    let (mut b, _notary) = b_with_notary_a();
    let svc = Address::contract([0x5e; 20]);
    b.bmc.services.insert("dex".into(), svc);
    let bmc = std::sync::Arc::new(b.bmc.clone());
    b.world.register(BMC_ADDRESS, bmc);
    b.world.register(svc, std::sync::Arc::new(Sender));
    let p = |to: &str, svc_name: &str| json!({"_to": to, "_svc": svc_name, "_sn": "0x1", "_msg": "0x01"});
    // The service's SCORE, to a network with a verifier: sent.
    let (_, events) = b
        .world
        .call(&Sender, svc, Address::eoa([1; 20]), 0, "send", p(A, "dex"))
        .unwrap();
    let sent: Vec<_> = events
        .iter()
        .filter(|e| e.indexed[0] == MESSAGE_SIG)
        .collect();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].score_address, BMC_ADDRESS);
    // Anyone else, or another service's name, or a network without a route: refused.
    let e = b.call(Address::eoa([1; 20]), 0, "sendMessage", p(A, "dex"));
    assert!(e.unwrap_err().message.contains("only the SCORE of service"));
    let e = b
        .world
        .call(
            &Sender,
            svc,
            Address::eoa([1; 20]),
            0,
            "send",
            p(A, "token"),
        )
        .unwrap_err();
    assert!(e.message.contains("only the SCORE of service"), "{e}");
    let e = b
        .world
        .call(
            &Sender,
            svc,
            Address::eoa([1; 20]),
            0,
            "send",
            p("0x999.loop", "dex"),
        )
        .unwrap_err();
    assert!(e.message.contains("no route"), "{e}");
    let e = b
        .world
        .call(
            &Sender,
            svc,
            Address::eoa([1; 20]),
            0,
            "send",
            p("nowhere", "dex"),
        )
        .unwrap_err();
    assert!(e.message.contains("network address"), "{e}");
}
