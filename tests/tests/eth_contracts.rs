//! The Solidity BMC and verifier of Nexus notary proofs on a real anvil, compiled by solc-js:
//! notarized messages are delivered and answered; every rejection path reverts with its named
//! error and changes nothing; the notary set rotates by a decision the old set signed; and the
//! gas per relayed message for batches of 1, 10 and 100 is printed (deterministic, so also
//! bounded here).

// Every unwrap here is an assertion about a real chain's answer; a failure is the test failing.
#![allow(clippy::unwrap_used)]

use alloy::primitives::{Address as EthAddress, Bytes, I256, U256};
use alloy::providers::{DynProvider, Provider};
use alloy::sol_types::{SolEvent, SolInterface, SolValue};
use nexus_btp::decision::{encode_relay, eth_address, Decision, RelayItem};
use nexus_proto::btp::{BtpMessage, ErrorMessage};
use nexus_proto::KeyPair;
use nexus_tests::eth::{deploy, relay, Anvil, NexusVerifier, TestService, BMC, DEV_KEY};

const HERE: &str = "0x539.eth";
const SRC: &str = "0x3.loop";

struct Setup {
    _anvil: Anvil,
    provider: DynProvider,
    bmc: BMC::BMCInstance<DynProvider>,
    bmv: NexusVerifier::NexusVerifierInstance<DynProvider>,
    svc: TestService::TestServiceInstance<DynProvider>,
    notaries: Vec<KeyPair>,
    height: u64,
}

async fn setup() -> Setup {
    let anvil = Anvil::start();
    let provider = anvil.provider(DEV_KEY);
    let bmc_addr = deploy(&provider, "BMC", &(HERE.to_string(),).abi_encode_params()).await;
    let bmv_addr = deploy(
        &provider,
        "NexusVerifier",
        &(bmc_addr, HERE.to_string()).abi_encode_params(),
    )
    .await;
    let svc_addr = deploy(&provider, "TestService", &(bmc_addr,).abi_encode_params()).await;
    let bmc = BMC::new(bmc_addr, provider.clone());
    let bmv = NexusVerifier::new(bmv_addr, provider.clone());
    let svc = TestService::new(svc_addr, provider.clone());
    let ok = |r: alloy::rpc::types::TransactionReceipt| assert!(r.status());
    ok(bmc
        .setVerifier(bmv_addr)
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap());
    ok(bmc
        .addService("test".into(), svc_addr)
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap());
    let notaries: Vec<KeyPair> = (0..4).map(|_| KeyPair::generate()).collect();
    let set: Vec<EthAddress> = notaries.iter().map(|k| eth_address(k).into()).collect();
    ok(bmv
        .addSource(SRC.into(), set)
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap());
    Setup {
        _anvil: anvil,
        provider,
        bmc,
        bmv,
        svc,
        notaries,
        height: 10,
    }
}

fn btp(sn: i128, payload: &[u8], nsn: i128) -> Vec<u8> {
    BtpMessage {
        src: SRC.into(),
        dst: HERE.into(),
        svc: "test".into(),
        sn,
        msg: payload.to_vec(),
        nsn,
    }
    .encode()
}

/// A decision of the source over `msgs` (seq, message) for `next` with every path.
fn decide(
    height: u64,
    next: &str,
    msgs: &[(u128, Vec<u8>)],
    next_set: Vec<[u8; 20]>,
) -> (Decision, Vec<RelayItem>) {
    nexus_tests::eth::decide(SRC, height, next, msgs, next_set)
}

impl Setup {
    fn signers(&self, n: usize) -> Vec<&KeyPair> {
        self.notaries.iter().take(n).collect()
    }

    async fn send(&self, relay: Bytes) -> alloy::rpc::types::TransactionReceipt {
        let r = self
            .bmc
            .handleRelayMessage(relay)
            .gas(25_000_000)
            .send()
            .await
            .expect("send relay")
            .get_receipt()
            .await
            .expect("receipt");
        assert!(r.status(), "relay reverted");
        r
    }

    /// The verifier error a relay reverts with (checked by a call, so nothing is sent).
    async fn refused(&self, relay: Bytes) -> NexusVerifier::NexusVerifierErrors {
        let Err(err) = self.bmc.handleRelayMessage(relay).call().await else {
            panic!("the relay must revert");
        };
        let data = err.as_revert_data().expect("revert data");
        NexusVerifier::NexusVerifierErrors::abi_decode(&data).expect("a verifier error")
    }

    async fn rx_seq(&self) -> U256 {
        self.bmv.context(SRC.into()).call().await.unwrap().rxSeq
    }

    async fn received(&self) -> U256 {
        self.svc.receivedCount().call().await.unwrap()
    }

    /// The BMC's `Message` events in a receipt, decoded as BTP messages.
    fn sent(r: &alloy::rpc::types::TransactionReceipt) -> Vec<BtpMessage> {
        r.inner
            .logs()
            .iter()
            .filter_map(|l| BMC::Message::decode_log_data(l.data()).ok())
            .map(|m| BtpMessage::decode(&m.msg).expect("BTP message RLP"))
            .collect()
    }
}

#[tokio::test]
async fn notarized_messages_are_delivered_in_order_and_requests_answered() {
    let mut s = setup().await;
    let msgs = vec![
        (1, btp(0, b"one-way", 11)),
        (2, btp(5, b"request", 12)),
        (3, btp(6, b"fail: please", 13)),
    ];
    s.height += 1;
    let (d, items) = decide(s.height, HERE, &msgs, vec![]);
    let r = s.send(relay(&d, &s.signers(3), &items)).await;
    assert_eq!(s.rx_seq().await, U256::from(3));
    assert_eq!(
        s.received().await,
        U256::from(2),
        "the third was refused by the service"
    );
    assert_eq!(
        s.svc.received(U256::from(1)).call().await.unwrap().0,
        nexus_proto::hash::keccak256(&[b"request"]).0
    );
    // Replies: sn 5 delivered (code 0), sn 6 refused (code 4); both go back to the source.
    let replies = Setup::sent(&r);
    assert_eq!(replies.len(), 2);
    for (m, (sn, nsn, code)) in replies.iter().zip([(-5, -12, 0), (-6, -13, 4)]) {
        assert_eq!(
            (m.src.as_str(), m.dst.as_str(), m.svc.as_str()),
            (HERE, SRC, "test")
        );
        assert_eq!((m.sn, m.nsn), (sn, nsn));
        assert_eq!(ErrorMessage::decode(&m.msg).unwrap().code, code);
    }
    assert_eq!(s.bmc.txSeq().call().await.unwrap(), U256::from(2));

    // A reply to one of ours reaches the service's error handler.
    let reply = BtpMessage {
        src: SRC.into(),
        dst: HERE.into(),
        svc: "test".into(),
        sn: -9,
        msg: ErrorMessage {
            code: 4,
            message: "refused there".into(),
        }
        .encode(),
        nsn: -1,
    }
    .encode();
    s.height += 1;
    let (d, items) = decide(s.height, HERE, &[(4, reply)], vec![]);
    s.send(relay(&d, &s.signers(4), &items)).await;
    assert_eq!(
        s.svc.lastErrorCode().call().await.unwrap(),
        I256::try_from(4).unwrap()
    );
    assert_eq!(
        s.svc.lastErrorMessage().call().await.unwrap(),
        "refused there"
    );

    // An unknown service answers code 3.
    let unknown = BtpMessage {
        svc: "nope".into(),
        ..BtpMessage::decode(&btp(7, b"x", 14)).unwrap()
    }
    .encode();
    s.height += 1;
    let (d, items) = decide(s.height, HERE, &[(5, unknown)], vec![]);
    let r = s.send(relay(&d, &s.signers(3), &items)).await;
    let replies = Setup::sent(&r);
    assert_eq!(ErrorMessage::decode(&replies[0].msg).unwrap().code, 3);
}

#[tokio::test]
async fn every_forged_relay_is_refused_and_changes_nothing() {
    use NexusVerifier::NexusVerifierErrors as E;
    let s = setup().await;
    let msgs = vec![(1, btp(0, b"a", 1)), (2, btp(0, b"b", 2))];
    let (d, items) = decide(11, HERE, &msgs, vec![]);
    let outsider = KeyPair::generate();

    // One signature short of > 2/3 of 4.
    assert!(
        matches!(s.refused(relay(&d, &s.signers(2), &items)).await, E::TooFewSignatures(e) if e.valid == U256::from(2))
    );
    // A key outside the set.
    let mut with_outsider = s.signers(2);
    with_outsider.push(&outsider);
    assert!(
        matches!(s.refused(relay(&d, &with_outsider, &items)).await, E::NotInSet(e) if e.signer == EthAddress::from(eth_address(&outsider)))
    );
    // One notary counted twice.
    let twice = vec![&s.notaries[0], &s.notaries[1], &s.notaries[1]];
    assert!(matches!(
        s.refused(relay(&d, &twice, &items)).await,
        E::DuplicateSigner(_)
    ));
    // Signatures over another decision (another height) do not recover to the set.
    let (other, _) = decide(12, HERE, &msgs, vec![]);
    let sigs: Vec<[u8; 65]> = s.signers(3).iter().map(|k| other.sign(k)).collect();
    assert!(matches!(
        s.refused(encode_relay(&d, &sigs, &items).into()).await,
        E::NotInSet(_)
    ));
    // A malformed signature.
    let mut bad = sigs.clone();
    bad[0][64] = 99;
    assert!(matches!(
        s.refused(encode_relay(&other, &bad, &items).into()).await,
        E::BadSignature(_) | E::NotInSet(_)
    ));
    // A message changed after notarization.
    let mut changed = items.clone();
    changed[1].msg = btp(0, b"B", 2);
    assert!(
        matches!(s.refused(relay(&d, &s.signers(3), &changed)).await, E::BadPath(e) if e.seq == U256::from(2))
    );
    // A message notarized for another destination.
    let (elsewhere, e_items) = decide(11, "0x7.eth", &msgs, vec![]);
    assert!(matches!(
        s.refused(relay(&elsewhere, &s.signers(3), &e_items)).await,
        E::BadPath(_)
    ));
    // A skipped sequence number.
    assert!(
        matches!(s.refused(relay(&d, &s.signers(3), &items[1..])).await, E::Gap(e) if e.expected == U256::from(1))
    );
    // An unknown source.
    let mut unknown = d.clone();
    unknown.src = "0x9.loop".into();
    assert!(matches!(
        s.refused(relay(&unknown, &s.signers(3), &items)).await,
        E::UnknownSource(_)
    ));
    // Only the BMC may call the verifier.
    let err = s
        .bmv
        .verify(relay(&d, &s.signers(3), &items))
        .call()
        .await
        .expect_err("not the BMC");
    assert!(matches!(
        E::abi_decode(&err.as_revert_data().unwrap()).unwrap(),
        E::NotBmc(_)
    ));
    assert_eq!(s.rx_seq().await, U256::ZERO);
    assert_eq!(s.received().await, U256::ZERO);

    // The genuine relay goes through once; sent again, it is a replay.
    s.send(relay(&d, &s.signers(3), &items)).await;
    assert_eq!(s.received().await, U256::from(2));
    assert!(
        matches!(s.refused(relay(&d, &s.signers(4), &items)).await, E::Replayed(e) if e.seq == U256::from(1))
    );
    // An older decision is refused even with fresh sequence numbers.
    let (old, old_items) = decide(10, HERE, &[(3, btp(0, b"c", 3))], vec![]);
    assert!(matches!(
        s.refused(relay(&old, &s.signers(3), &old_items)).await,
        E::OldDecision(_)
    ));
    assert_eq!(s.rx_seq().await, U256::from(2));
}

#[tokio::test]
async fn a_relay_cannot_be_slipped_in_while_another_is_delivered() {
    let mut s = setup().await;
    // The later relay (seq 2), valid on its own, handed to a service that tries to deliver it
    // from inside the delivery of seq 1.
    let (d2, items2) = decide(12, HERE, &[(2, btp(0, b"later", 2))], vec![]);
    let later = relay(&d2, &s.signers(3), &items2);
    let payload = [b"reenter".as_slice(), later.as_ref()].concat();
    s.height = 11;
    let (d1, items1) = decide(11, HERE, &[(1, btp(4, &payload, 1))], vec![]);
    let r = s.send(relay(&d1, &s.signers(3), &items1)).await;
    let replies = Setup::sent(&r);
    assert_eq!(
        ErrorMessage::decode(&replies[0].msg).unwrap().code,
        4,
        "the service's reentry reverted"
    );
    assert_eq!(
        s.rx_seq().await,
        U256::from(1),
        "seq 2 was not delivered from inside"
    );
    assert_eq!(s.received().await, U256::ZERO);
    // Delivered normally afterwards.
    s.send(later).await;
    assert_eq!(s.rx_seq().await, U256::from(2));
}

#[tokio::test]
async fn the_notary_set_rotates_by_a_decision_the_old_set_signed() {
    use NexusVerifier::NexusVerifierErrors as E;
    let s = setup().await;
    let new: Vec<KeyPair> = (0..3).map(|_| KeyPair::generate()).collect();
    let new_set: Vec<[u8; 20]> = new.iter().map(eth_address).collect();
    // Signed by the new set itself: refused.
    let (d, items) = decide(11, HERE, &[(1, btp(0, b"a", 1))], new_set.clone());
    let new_refs: Vec<&KeyPair> = new.iter().collect();
    assert!(matches!(
        s.refused(relay(&d, &new_refs, &items)).await,
        E::NotInSet(_)
    ));
    // Signed by the old set: the set changes after the message is checked.
    let r = s.send(relay(&d, &s.signers(3), &items)).await;
    assert!(r
        .inner
        .logs()
        .iter()
        .any(|l| NexusVerifier::SetRotated::decode_log_data(l.data()).is_ok()));
    let ctx = s.bmv.context(SRC.into()).call().await.unwrap();
    assert_eq!(
        ctx.set,
        new_set
            .iter()
            .map(|a| EthAddress::from(*a))
            .collect::<Vec<_>>()
    );
    let (d2, items2) = decide(12, HERE, &[(2, btp(0, b"b", 2))], vec![]);
    assert!(matches!(
        s.refused(relay(&d2, &s.signers(4), &items2)).await,
        E::NotInSet(_)
    ));
    s.send(relay(&d2, &new_refs, &items2)).await;
    assert_eq!(s.received().await, U256::from(2));
}

#[tokio::test]
async fn services_send_through_the_bmc_as_btp_messages() {
    let s = setup().await;
    let r = s
        .svc
        .send(
            SRC.into(),
            I256::try_from(3).unwrap(),
            Bytes::from_static(b"hello"),
        )
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    assert!(r.status());
    let m = Setup::sent(&r);
    assert_eq!(m.len(), 1);
    assert_eq!(
        (
            m[0].src.as_str(),
            m[0].dst.as_str(),
            m[0].svc.as_str(),
            m[0].sn,
            m[0].nsn
        ),
        (HERE, SRC, "test", 3, 1)
    );
    assert_eq!(m[0].msg, b"hello");
    // Only a registered service may send as itself.
    let Err(err) = s.bmc.handleRelayMessage(Bytes::new()).call().await else {
        panic!("an empty relay must revert");
    };
    assert!(err.as_revert_data().is_some() || err.to_string().contains("revert"));
    let _ = s.provider.get_block_number().await.unwrap();
}

#[tokio::test]
async fn gas_per_relayed_message_for_batches_of_1_10_and_100() {
    let mut s = setup().await;
    let mut seq = 0u128;
    let mut figures = Vec::new();
    // The first relay of a link writes its sequence and height slots for the first time; a
    // live link pays that once, so it is not counted.
    for batch in [0usize, 1, 10, 100] {
        let counted = batch.max(1);
        let msgs: Vec<(u128, Vec<u8>)> = (0..counted)
            .map(|i| {
                seq += 1;
                // A token transfer's size: about 150 bytes of BTP message.
                (seq, btp(0, &[i as u8; 100], seq as i128))
            })
            .collect();
        s.height += 1;
        let (d, items) = decide(s.height, HERE, &msgs, vec![]);
        let r = s.send(relay(&d, &s.signers(3), &items)).await;
        if batch == 0 {
            continue;
        }
        let per_message = r.gas_used / batch as u64;
        figures.push(format!("\"batch_{batch}\": {per_message}"));
        // Deterministic, so bounded: a 13-of-19 Wormhole VAA costs about 130k gas.
        assert!(
            per_message < 200_000,
            "batch {batch}: {per_message} gas per message"
        );
    }
    println!(
        "{{\"gas_per_relayed_message\": {{{}}}, \"notaries\": 4, \"signatures\": 3}}",
        figures.join(", ")
    );
}
