//! One test per input rule of the core: what it keeps, what it refuses, and what it reports.

use super::*;
use crate::{nil_digest, Secp256k1Crypto, Timeouts, ValidatorSchedule, ValidatorSet};
use nexus_proto::KeyPair;

struct Net {
    keys: Vec<KeyPair>,
    genesis: BlockRef,
}

impl Net {
    fn new() -> Self {
        Net {
            keys: (0..4).map(|_| KeyPair::generate()).collect(),
            genesis: BlockRef {
                hash: Hash32([7; 32]),
                parent: Hash32::ZERO,
                height: 0,
                round: 0,
            },
        }
    }

    fn core(&self, me: usize) -> Lft<Secp256k1Crypto> {
        let cfg = Config {
            nid: 1,
            channel: "public".into(),
            schedule: ValidatorSchedule::new(ValidatorSet {
                members: self.keys.iter().map(|k| k.address()).collect(),
            }),
            timeouts: Timeouts::default(),
        };
        Lft::new(
            cfg,
            Secp256k1Crypto::new(self.keys[me].clone()),
            self.genesis,
            self.genesis_qc(),
            SafetyState::default(),
        )
    }

    fn genesis_qc(&self) -> Qc {
        Qc {
            round: 0,
            height: 0,
            block: self.genesis.hash,
            votes: vec![],
        }
    }

    fn vote(&self, who: usize, round: u64, height: u64, block: Hash32) -> Vote {
        let d = vote_digest(1, "public", height, round, &block);
        Vote {
            round,
            height,
            block,
            voter: who as u32,
            signature: self.keys[who].sign(&d).0.to_vec(),
        }
    }

    fn qc(&self, round: u64, height: u64, block: Hash32) -> Qc {
        Qc {
            round,
            height,
            block,
            votes: (0..3)
                .map(|i| (i as u32, self.vote(i, round, height, block).signature))
                .collect(),
        }
    }

    /// A proposal by the leader of `round` (validator `round % 4`) of a child of genesis.
    fn proposal(&self, round: u64, tag: u8) -> Proposal {
        let leader = (round % 4) as usize;
        let block = BlockRef {
            hash: Hash32([tag; 32]),
            parent: self.genesis.hash,
            height: 1,
            round,
        };
        let signature = self.keys[leader]
            .sign(&proposal_digest(1, "public", &block))
            .0
            .to_vec();
        Proposal {
            block,
            payload: vec![],
            justify: self.genesis_qc(),
            tc: None,
            seal: None,
            proposer: leader as u32,
            signature,
        }
    }
}

fn refused(actions: &[Action]) -> Option<&'static str> {
    actions.iter().find_map(|a| match a {
        Action::Refused(why) => Some(*why),
        _ => None,
    })
}

#[test]
fn a_qc_seen_once_is_not_accepted_again_with_garbage_votes() {
    let net = Net::new();
    let mut c = net.core(0);
    let block = Hash32([9; 32]);
    let good = net.qc(3, 1, block);
    assert!(c.valid_qc(&good));
    let mut forged = good.clone();
    forged.votes = (0..3).map(|i| (i, vec![0xab; 65])).collect();
    assert!(!c.valid_qc(&forged), "same round and block, garbage votes");
    let mut short = good.clone();
    short.votes.truncate(2);
    assert!(!c.valid_qc(&short), "a valid subset below quorum");
}

#[test]
fn votes_count_only_with_their_own_height() {
    let net = Net::new();
    let mut c = net.core(3);
    let block = Hash32([5; 32]);
    // Two votes for height 1 and one, validly signed, naming height 2 for the same block.
    for v in [
        net.vote(0, 1, 1, block),
        net.vote(1, 1, 1, block),
        net.vote(2, 1, 2, block),
    ] {
        c.on_message(Address::SYSTEM, Message::Vote(v));
    }
    assert_eq!(c.high_qc().round, 0, "a QC of mixed heights formed");
    c.on_message(Address::SYSTEM, Message::Vote(net.vote(2, 1, 1, block)));
    assert_eq!(c.high_qc().block, block);
    assert_eq!(c.high_qc().height, 1);
}

#[test]
fn a_vote_naming_another_height_than_its_known_block_is_refused() {
    let net = Net::new();
    let mut c = net.core(0);
    let p = net.proposal(1, 0x11);
    c.on_message(Address::SYSTEM, Message::Proposal(p.clone()));
    let acts = c.on_message(
        Address::SYSTEM,
        Message::Vote(net.vote(2, 1, 5, p.block.hash)),
    );
    assert!(refused(&acts).is_some_and(|w| w.contains("height")));
}

#[test]
fn a_bad_signature_is_reported_for_the_sender() {
    let net = Net::new();
    let mut c = net.core(0);
    let mut v = net.vote(1, 1, 1, Hash32([3; 32]));
    v.signature = net.keys[2]
        .sign(&vote_digest(1, "public", 1, 1, &v.block))
        .0
        .to_vec();
    let acts = c.on_message(Address::SYSTEM, Message::Vote(v));
    assert_eq!(refused(&acts), Some("bad vote signature"));
    let good = net.vote(1, 1, 1, Hash32([3; 32]));
    assert_eq!(
        refused(&c.on_message(Address::SYSTEM, Message::Vote(good))),
        None
    );
}

#[test]
fn votes_and_nils_far_ahead_are_dropped_unread() {
    let net = Net::new();
    let mut c = net.core(0);
    c.start();
    let round = c.round();
    for r in 0..200u64 {
        let round = FUTURE_ROUNDS + 10 + r;
        c.on_message(
            Address::SYSTEM,
            Message::Vote(net.vote(1, round, 1, Hash32([4; 32]))),
        );
    }
    assert!(c.votes.is_empty() && c.voted.is_empty());
    // Rounds near u64::MAX neither panic nor are kept.
    for round in [u64::MAX, u64::MAX - 1] {
        c.on_message(
            Address::SYSTEM,
            Message::Vote(net.vote(1, round, 1, Hash32([4; 32]))),
        );
    }
    assert!(c.votes.is_empty());
    assert_eq!(c.round(), round);
}

#[test]
fn a_second_proposal_for_a_round_is_refused() {
    let net = Net::new();
    let mut c = net.core(0);
    let first = c.on_message(Address::SYSTEM, Message::Proposal(net.proposal(1, 0x21)));
    assert_eq!(refused(&first), None);
    let second = c.on_message(Address::SYSTEM, Message::Proposal(net.proposal(1, 0x22)));
    assert_eq!(refused(&second), Some("a second proposal for the round"));
    assert!(c.proposal(&Hash32([0x22; 32])).is_none());
}

#[test]
fn a_proposal_from_a_validator_that_does_not_lead_is_refused() {
    let net = Net::new();
    let mut c = net.core(0);
    let mut p = net.proposal(1, 0x31);
    p.proposer = 2;
    p.signature = net.keys[2]
        .sign(&proposal_digest(1, "public", &p.block))
        .0
        .to_vec();
    let acts = c.on_message(Address::SYSTEM, Message::Proposal(p));
    assert!(refused(&acts).is_some_and(|w| w.contains("lead")));
}

#[test]
fn a_block_the_application_refuses_is_forgotten_and_the_round_stays_taken() {
    let net = Net::new();
    let mut c = net.core(0);
    c.start();
    let p = net.proposal(1, 0x41);
    let acts = c.on_message(Address::SYSTEM, Message::Proposal(p));
    assert!(
        acts.iter().any(|a| matches!(a, Action::CheckBlock(_))),
        "{acts:?}"
    );
    let acts = c.on_block_checked(Hash32([0x41; 32]), false);
    assert!(acts
        .iter()
        .any(|a| matches!(a, Action::Broadcast(Message::Nil(_)))));
    assert!(c.proposal(&Hash32([0x41; 32])).is_none());
    let again = c.on_message(Address::SYSTEM, Message::Proposal(net.proposal(1, 0x42)));
    assert_eq!(refused(&again), Some("a second proposal for the round"));
}

impl Net {
    /// A proposal by the leader of `round` of block `hash` at `height` on `justify`.
    fn propose(&self, round: u64, height: u64, hash: Hash32, justify: Qc) -> Proposal {
        let leader = (round % 4) as usize;
        let block = BlockRef {
            hash,
            parent: justify.block,
            height,
            round,
        };
        let signature = self.keys[leader]
            .sign(&proposal_digest(1, "public", &block))
            .0
            .to_vec();
        Proposal {
            block,
            payload: vec![],
            justify,
            tc: None,
            seal: None,
            proposer: leader as u32,
            signature,
        }
    }
}

fn commits(actions: &[Action]) -> Vec<u64> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Commit { block, .. } => Some(block.height),
            _ => None,
        })
        .collect()
}

/// Issue 13, schedule 1: a block stored with the round of its first proposal (3) is certified
/// in a later round (7) after a Byzantine leader re-proposes it. The two-chain rule must use the
/// rounds the certificates sign (7 is not 2 + 1), or A finalizes X while the others later
/// finalize a sibling.
#[test]
fn finality_uses_the_rounds_certificates_sign_not_a_stored_proposal_round() {
    let net = Net::new();
    let mut a = net.core(0);
    a.start();
    let (p, x, y) = (Hash32([0x51; 32]), Hash32([0x52; 32]), Hash32([0x53; 32]));
    let acts = a.on_message(
        Address::SYSTEM,
        Message::Proposal(net.propose(1, 1, p, net.genesis_qc())),
    );
    assert_eq!(refused(&acts), None);
    a.on_message(
        Address::SYSTEM,
        Message::Proposal(net.propose(2, 2, x, net.qc(1, 1, p))),
    );
    a.on_message(
        Address::SYSTEM,
        Message::Proposal(net.propose(3, 3, y, net.qc(2, 2, x))),
    );
    // QC(Y) of round 7, vote by vote, from B, C and D.
    let mut all = Vec::new();
    for who in 1..4 {
        let acts = a.on_message(Address::SYSTEM, Message::Vote(net.vote(who, 7, 3, y)));
        assert_eq!(refused(&acts), None);
        all.extend(acts);
    }
    assert!(
        !commits(&all).contains(&2),
        "X was finalized on a QC of round 7 for a block stored as round 3"
    );
}

/// The two-chain rule itself: QC(B', r + 1) on a child of B certified in r finalizes B.
#[test]
fn a_qc_of_the_next_round_on_a_child_finalizes_its_parent() {
    let net = Net::new();
    let mut a = net.core(0);
    a.start();
    let (p, x) = (Hash32([0x61; 32]), Hash32([0x62; 32]));
    a.on_message(
        Address::SYSTEM,
        Message::Proposal(net.propose(1, 1, p, net.genesis_qc())),
    );
    a.on_message(
        Address::SYSTEM,
        Message::Proposal(net.propose(2, 2, x, net.qc(1, 1, p))),
    );
    let mut all = Vec::new();
    for who in 1..4 {
        all.extend(a.on_message(Address::SYSTEM, Message::Vote(net.vote(who, 2, 2, x))));
    }
    assert_eq!(commits(&all), vec![1]);
}

/// Payloads of final blocks leave memory when the runtime says so, and only theirs: a block
/// above the final one keeps its payload (it may still be checked or served whole), and a
/// request for a final block is still answered, with the payload for the runtime to fill.
#[test]
fn only_a_final_blocks_payload_can_be_forgotten() {
    let net = Net::new();
    let mut a = net.core(0);
    a.start();
    let (p, x) = (Hash32([0x71; 32]), Hash32([0x72; 32]));
    let mut first = net.propose(1, 1, p, net.genesis_qc());
    first.payload = b"block one".to_vec();
    let mut second = net.propose(2, 2, x, net.qc(1, 1, p));
    second.payload = b"block two".to_vec();
    a.on_message(Address::SYSTEM, Message::Proposal(first));
    a.on_message(Address::SYSTEM, Message::Proposal(second));
    let mut all = Vec::new();
    for who in 1..4 {
        all.extend(a.on_message(Address::SYSTEM, Message::Vote(net.vote(who, 2, 2, x))));
    }
    assert_eq!(commits(&all), vec![1]);
    a.forget_payload(&x);
    assert_eq!(
        a.proposal(&x).unwrap().payload,
        b"block two",
        "not final yet"
    );
    a.forget_payload(&p);
    assert!(a.proposal(&p).unwrap().payload.is_empty());
    let acts = a.on_message(net.keys[1].address(), Message::BlockRequest(p));
    assert!(
        acts.iter().any(
            |a| matches!(a, Action::Send { msg: Message::BlockResponse(r), .. }
            if r.block.hash == p && r.payload.is_empty())
        ),
        "{acts:?}"
    );
}

impl Net {
    fn nil_sig(&self, who: usize, round: u64, height: u64, hqr: u64) -> (u32, u64, u64, Vec<u8>) {
        let d = nil_digest(1, "public", height, round, hqr);
        (who as u32, height, hqr, self.keys[who].sign(&d).0.to_vec())
    }
}

/// Issue 13, schedule 4: after a failed round the Byzantine D signs a nil vote claiming a huge
/// high-QC round and joins it with two honest nils into a TC. A leader proposing with that TC
/// could never satisfy rule 4, so every round would fail. A TC must carry a QC at least as high
/// as every round its nils claim.
#[test]
fn a_tc_whose_nils_claim_a_round_no_qc_backs_is_refused() {
    let net = Net::new();
    let mut a = net.core(0);
    a.start();
    assert_eq!(a.round(), 1);
    let inflated = Tc {
        round: 1,
        height: 1,
        nils: vec![
            net.nil_sig(1, 1, 1, 0),
            net.nil_sig(2, 1, 1, 0),
            net.nil_sig(3, 1, 1, 1_000_000_000),
        ],
        high_qc: net.genesis_qc(),
    };
    let acts = a.on_message(Address::SYSTEM, Message::Timeout(inflated));
    assert_eq!(refused(&acts), Some("invalid timeout certificate"));
    assert_eq!(a.round(), 1, "an unbacked TC moved the round");
}

#[test]
fn a_tc_backed_by_its_high_qc_moves_to_the_next_round_and_adopts_the_qc() {
    let net = Net::new();
    let mut a = net.core(0);
    a.start();
    let p = Hash32([0x71; 32]);
    // A's view misses P's proposal; the TC's high QC tells it P is certified.
    let tc = Tc {
        round: 2,
        height: 2,
        nils: vec![
            net.nil_sig(1, 2, 2, 1),
            net.nil_sig(2, 2, 2, 1),
            net.nil_sig(3, 2, 2, 1),
        ],
        high_qc: net.qc(1, 1, p),
    };
    let acts = a.on_message(Address::SYSTEM, Message::Timeout(tc));
    assert_eq!(refused(&acts), None);
    assert_eq!(a.round(), 3);
    assert_eq!(a.high_qc().block, p);
}

/// Issue 13, schedule 3: a QC for a sibling of the final block (signable by anyone who once held
/// a quorum of that height's set) with a huge round must not become the candidate: every honest
/// leader would then build on a fork below the final block and the chain would halt.
#[test]
fn a_qc_below_or_beside_the_final_block_is_not_adopted() {
    let net = Net::new();
    let mut a = net.core(0);
    a.start();
    let (p, x, sibling) = (Hash32([0x81; 32]), Hash32([0x82; 32]), Hash32([0x83; 32]));
    a.on_message(
        Address::SYSTEM,
        Message::Proposal(net.propose(1, 1, p, net.genesis_qc())),
    );
    a.on_message(
        Address::SYSTEM,
        Message::Proposal(net.propose(2, 2, x, net.qc(1, 1, p))),
    );
    let mut all = Vec::new();
    for who in 1..4 {
        all.extend(a.on_message(Address::SYSTEM, Message::Vote(net.vote(who, 2, 2, x))));
    }
    assert_eq!(commits(&all), vec![1], "P is final");
    let before = a.round();
    let forged = net.qc(1_000_000, 1, sibling);
    let d = nil_digest(1, "public", 2, before, forged.round);
    let nil = Nil {
        round: before,
        height: 2,
        high_qc: forged,
        voter: 3,
        signature: net.keys[3].sign(&d).0.to_vec(),
    };
    a.on_message(Address::SYSTEM, Message::Nil(nil));
    assert_ne!(
        a.high_qc().block,
        sibling,
        "a fork below the final block became the candidate"
    );
    assert_eq!(
        a.round(),
        before,
        "the round jumped on a certificate of the past"
    );
}

/// Issue 13, item 6: a leader writes the round it proposes in before sending the proposal; after
/// a crash it does not build a second block for that round.
#[test]
fn a_leader_persists_its_proposal_round_and_never_builds_twice_for_it() {
    let net = Net::new();
    // Validator 1 leads round 1.
    let mut b = net.core(1);
    let acts = b.start();
    let Some(Action::BuildBlock { round, parent }) = acts
        .iter()
        .find(|a| matches!(a, Action::BuildBlock { .. }))
        .cloned()
    else {
        panic!("the leader of round 1 was not asked to build: {acts:?}");
    };
    let block = BlockRef {
        hash: Hash32([0x91; 32]),
        parent: parent.hash,
        height: 1,
        round,
    };
    let acts = b.on_block_built(block, vec![]);
    let persisted = acts
        .iter()
        .position(|a| matches!(a, Action::Persist(s) if s.last_proposed_round == 1));
    let sent = acts
        .iter()
        .position(|a| matches!(a, Action::Broadcast(Message::Proposal(_))));
    assert!(
        persisted.is_some() && persisted < sent,
        "the proposal round must be written before the proposal is sent: {acts:?}"
    );
    // Crash before voting: restart from what was written.
    let Some(Action::Persist(state)) = persisted.map(|i| acts[i].clone()) else {
        unreachable!()
    };
    let cfg = Config {
        nid: 1,
        channel: "public".into(),
        schedule: ValidatorSchedule::new(ValidatorSet {
            members: net.keys.iter().map(|k| k.address()).collect(),
        }),
        timeouts: Timeouts::default(),
    };
    let mut again = Lft::new(
        cfg,
        Secp256k1Crypto::new(net.keys[1].clone()),
        net.genesis,
        net.genesis_qc(),
        state,
    );
    let acts = again.start();
    assert!(
        !acts
            .iter()
            .any(|a| matches!(a, Action::BuildBlock { round: 1, .. })),
        "a restarted leader built a second block for round 1: {acts:?}"
    );
}

/// Validators 0-3 decide heights 0 and 1; validators 4-7 decide from height 2 on.
fn handover() -> (Vec<KeyPair>, ValidatorSchedule) {
    let keys: Vec<KeyPair> = (0..8).map(|_| KeyPair::generate()).collect();
    let set = |r: std::ops::Range<usize>| ValidatorSet {
        members: keys[r].iter().map(|k| k.address()).collect(),
    };
    let mut s = ValidatorSchedule::new(set(0..4));
    s.change_at(2, set(4..8));
    (keys, s)
}

fn core_of(keys: &[KeyPair], me: usize, schedule: &ValidatorSchedule) -> Lft<Secp256k1Crypto> {
    let net = Net::new();
    let cfg = Config {
        nid: 1,
        channel: "public".into(),
        schedule: schedule.clone(),
        timeouts: Timeouts::default(),
    };
    Lft::new(
        cfg,
        Secp256k1Crypto::new(keys[me].clone()),
        net.genesis,
        net.genesis_qc(),
        SafetyState::default(),
    )
}

fn signed_vote(
    keys: &[KeyPair],
    who: usize,
    index: u32,
    round: u64,
    height: u64,
    b: Hash32,
) -> Vote {
    Vote {
        round,
        height,
        block: b,
        voter: index,
        signature: keys[who]
            .sign(&vote_digest(1, "public", height, round, &b))
            .0
            .to_vec(),
    }
}

fn old_qc(keys: &[KeyPair], round: u64, height: u64, b: Hash32) -> Qc {
    Qc {
        round,
        height,
        block: b,
        votes: (1..4)
            .map(|i| {
                (
                    i as u32,
                    signed_vote(keys, i, i as u32, round, height, b).signature,
                )
            })
            .collect(),
    }
}

/// Height 1 is the last of the old set: the proposal of round 1 by its leader (validator 1).
fn last_old_block(keys: &[KeyPair]) -> Proposal {
    let genesis = Net::new().genesis;
    let block = BlockRef {
        hash: Hash32([0xa1; 32]),
        parent: genesis.hash,
        height: 1,
        round: 1,
    };
    Proposal {
        block,
        payload: vec![],
        justify: Net::new().genesis_qc(),
        tc: None,
        seal: None,
        proposer: 1,
        signature: keys[1]
            .sign(&proposal_digest(1, "public", &block))
            .0
            .to_vec(),
    }
}

/// Rule 15: the old set votes for its last block again in the next round (its seal) instead of
/// leaving the next height to the new set, and two QCs in consecutive rounds make it final.
#[test]
fn the_last_block_of_a_set_is_sealed_by_its_own_set_in_the_next_round() {
    let (keys, schedule) = handover();
    let mut a = core_of(&keys, 0, &schedule);
    a.start();
    let p = last_old_block(&keys);
    let z = p.block.hash;
    a.on_message(Address::SYSTEM, Message::Proposal(p));
    let mut acts = Vec::new();
    for i in 1..4 {
        acts.extend(a.on_message(
            Address::SYSTEM,
            Message::Vote(signed_vote(&keys, i, i as u32, 1, 1, z)),
        ));
    }
    assert!(
        !acts.iter().any(|x| matches!(x, Action::BuildBlock { .. })),
        "nobody builds on the last block of a set before it is final"
    );
    assert!(
        acts.iter().any(
            |x| matches!(x, Action::Broadcast(Message::Vote(v)) if v.round == 2 && v.block == z)
        ),
        "the old set's member did not seal its last block in round 2: {acts:?}"
    );
    assert!(commits(&acts).is_empty());
    let mut acts = Vec::new();
    for i in 1..3 {
        acts.extend(a.on_message(
            Address::SYSTEM,
            Message::Vote(signed_vote(&keys, i, i as u32, 2, 1, z)),
        ));
    }
    assert_eq!(commits(&acts), vec![1], "sealed in rounds 1 and 2: final");
}

/// Rule 15: a validator of the new set does not vote for the first block of its set unless
/// the parent is final (sealed by the old set); with the seal in the proposal, it does.
#[test]
fn the_first_block_of_a_set_needs_a_sealed_parent() {
    let (keys, schedule) = handover();
    let p = last_old_block(&keys);
    let z = p.block.hash;
    let first = |round: u64, justify: Qc, seal: Option<Qc>| {
        let leader = 4 + (round % 4) as usize;
        let block = BlockRef {
            hash: Hash32([0xb0 + round as u8; 32]),
            parent: z,
            height: 2,
            round,
        };
        Proposal {
            block,
            payload: vec![],
            justify,
            tc: None,
            seal,
            proposer: (round % 4) as u32,
            signature: keys[leader]
                .sign(&proposal_digest(1, "public", &block))
                .0
                .to_vec(),
        }
    };
    // Unsealed: QC(Z, 1) only, proposed in round 2 by the new set.
    let mut e = core_of(&keys, 5, &schedule);
    e.start();
    e.on_message(Address::SYSTEM, Message::Proposal(p.clone()));
    let acts = e.on_message(
        Address::SYSTEM,
        Message::Proposal(first(2, old_qc(&keys, 1, 1, z), None)),
    );
    assert!(
        !acts.iter().any(|x| matches!(x, Action::CheckBlock(_))),
        "a new-set validator would vote on an unsealed parent: {acts:?}"
    );
    // Sealed: QC(Z, 2) with QC(Z, 1) below it, proposed in round 3.
    let mut e = core_of(&keys, 5, &schedule);
    e.start();
    e.on_message(Address::SYSTEM, Message::Proposal(p));
    let acts = e.on_message(
        Address::SYSTEM,
        Message::Proposal(first(
            3,
            old_qc(&keys, 2, 1, z),
            Some(old_qc(&keys, 1, 1, z)),
        )),
    );
    assert_eq!(commits(&acts), vec![1], "{acts:?}");
    assert!(
        acts.iter().any(|x| matches!(x, Action::CheckBlock(_))),
        "{acts:?}"
    );
}

/// Issue 13, item 6: the candidate moves within a round (a QC of an earlier round arrives after
/// the round began): a leader that has not proposed is asked to build on the new candidate.
#[test]
fn a_leader_builds_on_the_candidate_that_moved_within_its_round() {
    let net = Net::new();
    // Validator 3 leads round 3; it enters round 3 on a TC of round 2 carrying the genesis QC.
    let mut d = net.core(3);
    d.start();
    let tc = Tc {
        round: 2,
        height: 1,
        nils: vec![
            net.nil_sig(0, 2, 1, 0),
            net.nil_sig(1, 2, 1, 0),
            net.nil_sig(2, 2, 1, 0),
        ],
        high_qc: net.genesis_qc(),
    };
    let acts = d.on_message(Address::SYSTEM, Message::Timeout(tc));
    assert_eq!(d.round(), 3);
    assert!(
        acts.iter().any(|a| matches!(a, Action::BuildBlock { round: 3, parent } if parent.hash == net.genesis.hash)),
        "{acts:?}"
    );
    // Then it learns that P (round 1) was certified.
    let p = net.propose(1, 1, Hash32([0xc1; 32]), net.genesis_qc());
    d.on_message(Address::SYSTEM, Message::Proposal(p));
    let mut acts = Vec::new();
    for who in 0..3 {
        acts.extend(d.on_message(
            Address::SYSTEM,
            Message::Vote(net.vote(who, 1, 1, Hash32([0xc1; 32]))),
        ));
    }
    assert_eq!(d.round(), 3, "a QC of round 1 does not change round 3");
    assert!(
        acts.iter().any(|a| matches!(a, Action::BuildBlock { round: 3, parent } if parent.hash == Hash32([0xc1; 32]))),
        "the leader was not asked to build on the new candidate: {acts:?}"
    );
}

/// Rule 16 under attack: a made-up certificate far above the horizon (not judged there) names a
/// block nobody has. It must not shut out real catch-up hints: after a round without its
/// block, the next real hint is followed.
#[test]
fn a_made_up_catch_up_target_does_not_shut_out_real_ones() {
    let net = Net::new();
    let cfg = Config {
        nid: 1,
        channel: "public".into(),
        schedule: ValidatorSchedule::new(ValidatorSet {
            members: net.keys.iter().map(|k| k.address()).collect(),
        })
        .known_through(10),
        timeouts: Timeouts::default(),
    };
    let mut a = Lft::new(
        cfg,
        Secp256k1Crypto::new(net.keys[0].clone()),
        net.genesis,
        net.genesis_qc(),
        SafetyState::default(),
    );
    a.start();
    let requests = |acts: &[Action]| -> Vec<Hash32> {
        acts.iter()
            .filter_map(|x| match x {
                Action::Broadcast(Message::BlockRequest(h)) => Some(*h),
                _ => None,
            })
            .collect()
    };
    let bogus = Qc {
        round: u64::MAX - 1,
        height: u64::MAX - 1,
        block: Hash32([0xee; 32]),
        votes: vec![],
    };
    let acts = a.on_message(
        Address::SYSTEM,
        Message::Sync {
            high_qc: bogus,
            seal: None,
        },
    );
    assert_eq!(
        refused(&acts),
        None,
        "not judged above the horizon, not blamed"
    );
    assert_eq!(requests(&acts), vec![Hash32([0xee; 32])]);
    let real = net.qc(40, 30, Hash32([0x30; 32]));
    let sync = Message::Sync {
        high_qc: real,
        seal: None,
    };
    assert!(
        requests(&a.on_message(Address::SYSTEM, sync.clone())).is_empty(),
        "a lower hint waits while the target is fresh"
    );
    // A round passes and nobody served the made-up block: the next real hint is followed.
    a.on_timeout(a.round());
    assert_eq!(
        requests(&a.on_message(Address::SYSTEM, sync)),
        vec![Hash32([0x30; 32])]
    );
}

/// Rule 16 under attack: a peer answers the catch-up walk with made-up blocks near the message
/// limit, each naming a new made-up parent. Blocks above the horizon are not judged, so only
/// the bound on their bytes stands between it and gigabytes of memory; the lowest are kept.
#[test]
fn made_up_catch_up_blocks_cannot_hold_more_than_the_byte_bound() {
    let net = Net::new();
    let cfg = Config {
        nid: 1,
        channel: "public".into(),
        schedule: ValidatorSchedule::new(ValidatorSet {
            members: net.keys.iter().map(|k| k.address()).collect(),
        })
        .known_through(10),
        timeouts: Timeouts::default(),
    };
    let mut a = Lft::new(
        cfg,
        Secp256k1Crypto::new(net.keys[0].clone()),
        net.genesis,
        net.genesis_qc(),
        SafetyState::default(),
    );
    a.start();
    let top = 1_000_000u64;
    let hash = |height: u64| {
        let mut h = [0u8; 32];
        h[..8].copy_from_slice(&height.to_be_bytes());
        Hash32(h)
    };
    let acts = a.on_message(
        Address::SYSTEM,
        Message::Sync {
            high_qc: Qc {
                round: top,
                height: top,
                block: hash(top),
                votes: vec![],
            },
            seal: None,
        },
    );
    assert!(acts
        .iter()
        .any(|x| matches!(x, Action::Broadcast(Message::BlockRequest(h)) if *h == hash(top))));
    let size = 4 << 20;
    let offered = 2 * MAX_SYNC_BYTES / size;
    for height in (top - offered as u64 + 1..=top).rev() {
        let p = Proposal {
            block: BlockRef {
                hash: hash(height),
                parent: hash(height - 1),
                height,
                round: height,
            },
            payload: vec![7; size],
            justify: net.genesis_qc(),
            tc: None,
            seal: None,
            proposer: 1,
            signature: vec![0; 65],
        };
        let acts = a.on_message(Address::SYSTEM, Message::BlockResponse(p));
        assert!(
            acts.iter().any(|x| matches!(x,
                Action::Broadcast(Message::BlockRequest(h)) if *h == hash(height - 1))),
            "the walk stopped at {height}"
        );
        let kept: usize = a.sync_blocks.values().map(|q| q.payload.len()).sum();
        assert!(kept <= MAX_SYNC_BYTES, "{kept} bytes kept at {height}");
    }
    let lowest = top - offered as u64 + 1;
    assert_eq!(a.sync_blocks.len(), MAX_SYNC_BYTES / size);
    assert!(a.sync_blocks.contains_key(&hash(lowest)));
    assert!(
        !a.sync_blocks.contains_key(&hash(top)),
        "the highest go first"
    );
}

/// A proposal by the leader of `round` of a child of `parent`, justified by `justify`.
fn child_of(net: &Net, parent: &BlockRef, round: u64, tag: u8, justify: Qc) -> Proposal {
    let leader = (round % 4) as usize;
    let block = BlockRef {
        hash: Hash32([tag; 32]),
        parent: parent.hash,
        height: parent.height + 1,
        round,
    };
    let signature = net.keys[leader]
        .sign(&proposal_digest(1, "public", &block))
        .0
        .to_vec();
    Proposal {
        block,
        payload: vec![],
        justify,
        tc: None,
        seal: None,
        proposer: leader as u32,
        signature,
    }
}

#[test]
fn a_proposal_whose_grandparent_is_missing_fetches_it_instead_of_asking_for_a_check() {
    // After a restart a validator may hold a block but not that block's parent: it must fetch
    // the missing ancestor, not hand the application a block it cannot execute (which would
    // refuse it and leave the validator unable to vote, round after round).
    let net = Net::new();
    let mut c = net.core(0);
    let p1 = child_of(&net, &net.genesis, 1, 0x11, net.genesis_qc());
    let p2 = child_of(&net, &p1.block, 2, 0x12, net.qc(1, 1, p1.block.hash));
    let p3 = child_of(&net, &p2.block, 3, 0x13, net.qc(2, 2, p2.block.hash));
    c.start();
    let acts = c.on_message(Address::SYSTEM, Message::Proposal(p2));
    assert!(acts
        .iter()
        .any(|a| matches!(a, Action::Broadcast(Message::BlockRequest(h)) if *h == p1.block.hash)));
    let acts = c.on_message(Address::SYSTEM, Message::Proposal(p3));
    assert!(
        !acts.iter().any(|a| matches!(a, Action::CheckBlock(_))),
        "a block with a missing grandparent was handed to the application: {acts:?}"
    );
    // Once the ancestor arrives, the next proposal on it is checked.
    c.on_message(Address::SYSTEM, Message::BlockResponse(p1.clone()));
    assert_eq!(c.missing_ancestor(Hash32([0x13; 32])), None);
}
