//! One test per check of the loopchain light client.

use super::*;
use nexus_proto::block::{sign_vote, VoteItem, HEADER_VERSION};
use nexus_proto::{merkle, KeyPair};

const NID: u64 = 7;
const CH: &str = "icon-1";

struct Chain {
    keys: Vec<KeyPair>,
    set: Vec<Address>,
    checkpoint: BlockHeader,
}

fn chain() -> Chain {
    let keys: Vec<KeyPair> = (0..4).map(|_| KeyPair::generate()).collect();
    let set: Vec<Address> = keys.iter().map(|k| k.address()).collect();
    let vh = validators_hash(&set);
    let checkpoint = BlockHeader {
        version: HEADER_VERSION,
        height: 5,
        round: 9,
        timestamp: 1_000,
        prev_hash: Hash32([1; 32]),
        transactions_root: Hash32::ZERO,
        receipts_root: Hash32::ZERO,
        state_root: Hash32([2; 32]),
        validators_hash: vh,
        next_validators_hash: vh,
        prev_votes_hash: Hash32::ZERO,
        leader: set[0],
    };
    Chain {
        keys,
        set,
        checkpoint,
    }
}

impl Chain {
    fn client(&self) -> LoopchainClient {
        LoopchainClient::new(NID, CH, self.checkpoint.clone(), self.set.clone()).unwrap()
    }

    /// The header after `parent`, named with the current set.
    fn next(&self, parent: &BlockHeader) -> BlockHeader {
        BlockHeader {
            height: parent.height + 1,
            round: parent.round + 1,
            timestamp: parent.timestamp + 1,
            prev_hash: parent.hash(),
            validators_hash: parent.next_validators_hash,
            next_validators_hash: parent.next_validators_hash,
            ..parent.clone()
        }
    }

    /// Votes of the validators `who` (indices into `keys`, signing as position `at`).
    fn votes(&self, h: &BlockHeader, who: &[usize]) -> VoteSet {
        VoteSet {
            round: h.round,
            items: who
                .iter()
                .map(|i| VoteItem {
                    validator_index: *i as u32,
                    timestamp: 0,
                    signature: sign_vote(&self.keys[*i], NID, CH, h.height, h.round, &h.hash())
                        .0
                        .to_vec()
                        .into(),
                })
                .collect(),
        }
    }

    fn update(&self, h: BlockHeader, who: &[usize]) -> HeaderUpdate {
        HeaderUpdate {
            votes: self.votes(&h, who),
            header: h,
            next_validators: None,
        }
    }
}

#[test]
fn a_header_certified_by_more_than_two_thirds_is_accepted() {
    let c = chain();
    let mut lc = c.client();
    let h = c.next(&c.checkpoint);
    lc.apply(c.update(h.clone(), &[0, 1, 2])).unwrap();
    assert_eq!(lc.height(), 6);
    assert_eq!(lc.head().hash(), h.hash());
}

#[test]
fn a_header_at_or_below_the_head_is_refused() {
    let c = chain();
    let mut lc = c.client();
    let mut h = c.next(&c.checkpoint);
    h.height = c.checkpoint.height;
    let err = lc.apply(c.update(h, &[0, 1, 2])).unwrap_err();
    assert_eq!(
        err,
        LightClientError::NotNext {
            expected: 6,
            got: 5
        }
    );
    assert_eq!(lc.height(), 5, "nothing changed");
}

#[test]
fn a_skip_voted_by_the_known_set_is_accepted_without_the_parent_link() {
    let c = chain();
    let mut lc = c.client();
    let mut h = c.next(&c.checkpoint);
    h.height += 10;
    h.round += 12;
    h.prev_hash = Hash32([7; 32]);
    lc.apply(c.update(h.clone(), &[1, 2, 3])).unwrap();
    assert_eq!(lc.height(), 16);
    // The skip still needs a quorum of the known set.
    let mut next = c.next(&h);
    next.height += 3;
    assert!(matches!(
        lc.apply(c.update(next, &[1, 2])),
        Err(LightClientError::Votes(_))
    ));
}

#[test]
fn a_skip_over_a_set_change_is_refused() {
    let c = chain();
    let mut lc = c.client();
    let others: Vec<Address> = (0..4).map(|_| KeyPair::generate().address()).collect();
    let mut h = c.next(&c.checkpoint);
    h.height += 5;
    h.validators_hash = validators_hash(&others);
    assert!(matches!(
        lc.apply(c.update(h, &[0, 1, 2])),
        Err(LightClientError::WrongValidators { .. })
    ));
    assert_eq!(lc.height(), 5, "nothing changed");
}

#[test]
fn a_header_on_another_parent_is_refused() {
    let c = chain();
    let mut lc = c.client();
    let mut h = c.next(&c.checkpoint);
    h.prev_hash = Hash32([9; 32]);
    assert!(matches!(
        lc.apply(c.update(h, &[0, 1, 2])),
        Err(LightClientError::WrongParent { .. })
    ));
}

#[test]
fn a_round_not_above_the_parents_is_refused() {
    let c = chain();
    let mut lc = c.client();
    let mut h = c.next(&c.checkpoint);
    h.round = c.checkpoint.round;
    assert!(matches!(
        lc.apply(c.update(h, &[0, 1, 2])),
        Err(LightClientError::RoundNotAfterParent { .. })
    ));
}

#[test]
fn a_header_naming_another_set_is_refused() {
    let c = chain();
    let mut lc = c.client();
    let mut h = c.next(&c.checkpoint);
    h.validators_hash = Hash32([3; 32]);
    assert!(matches!(
        lc.apply(c.update(h, &[0, 1, 2])),
        Err(LightClientError::WrongValidators { .. })
    ));
}

#[test]
fn two_thirds_or_less_of_the_votes_are_refused() {
    let c = chain();
    let mut lc = c.client();
    let h = c.next(&c.checkpoint);
    assert!(matches!(
        lc.apply(c.update(h, &[0, 1])),
        Err(LightClientError::Votes(_))
    ));
}

#[test]
fn a_vote_signed_by_someone_else_is_refused() {
    let c = chain();
    let mut lc = c.client();
    let h = c.next(&c.checkpoint);
    let mut u = c.update(h.clone(), &[0, 1, 2]);
    let outsider = KeyPair::generate();
    u.votes.items[2].signature = sign_vote(&outsider, NID, CH, h.height, h.round, &h.hash())
        .0
        .to_vec()
        .into();
    assert!(matches!(lc.apply(u), Err(LightClientError::Votes(_))));
}

#[test]
fn votes_for_another_channel_are_refused() {
    let c = chain();
    let mut lc = LoopchainClient::new(NID, "other", c.checkpoint.clone(), c.set.clone()).unwrap();
    let h = c.next(&c.checkpoint);
    assert!(matches!(
        lc.apply(c.update(h, &[0, 1, 2])),
        Err(LightClientError::Votes(_))
    ));
}

#[test]
fn a_set_change_needs_the_new_list_and_then_the_new_set_signs() {
    let c = chain();
    let mut lc = c.client();
    let newcomer = KeyPair::generate();
    let new_set = vec![c.set[0], c.set[1], c.set[2], newcomer.address()];
    let mut h = c.next(&c.checkpoint);
    h.next_validators_hash = validators_hash(&new_set);
    // Without the list: refused.
    assert_eq!(
        lc.apply(c.update(h.clone(), &[0, 1, 2])).unwrap_err(),
        LightClientError::MissingValidators
    );
    // With a list that does not hash to the header's: refused.
    let mut u = c.update(h.clone(), &[0, 1, 2]);
    u.next_validators = Some(c.set.clone());
    assert!(matches!(
        lc.apply(u),
        Err(LightClientError::ValidatorsMismatch { .. })
    ));
    // With the list: accepted, signed by the old set.
    let mut u = c.update(h.clone(), &[0, 1, 2]);
    u.next_validators = Some(new_set.clone());
    lc.apply(u).unwrap();
    assert_eq!(lc.next_validators(), &new_set[..]);
    // The next header must be signed by the new set: the old member 3 no longer counts.
    let h2 = c.next(&h);
    let mut keys = c.keys.clone();
    keys[3] = newcomer;
    let c2 = Chain {
        keys,
        set: new_set,
        checkpoint: h.clone(),
    };
    assert!(matches!(
        lc.apply(c.update(h2.clone(), &[1, 2, 3])),
        Err(LightClientError::Votes(_))
    ));
    lc.apply(c2.update(h2, &[1, 2, 3])).unwrap();
}

#[test]
fn a_checkpoint_with_a_set_that_does_not_match_is_refused() {
    let c = chain();
    let err = LoopchainClient::new(NID, CH, c.checkpoint.clone(), c.set[..3].to_vec()).unwrap_err();
    assert!(matches!(err, LightClientError::ValidatorsMismatch { .. }));
}

fn receipt_with_events(n: usize) -> Receipt {
    Receipt {
        status: 1,
        to: Address::contract([1; 20]),
        cumulative_step_used: 200,
        step_used: 100,
        step_price: 12_500_000_000,
        failure_code: 0,
        failure_message: String::new(),
        event_logs: (0..n)
            .map(|i| EventLog {
                score_address: Address::contract([1; 20]),
                indexed: vec!["Message(str,int,bytes)".into(), format!("btp://0x{i}")],
                data: vec![format!("{i:#x}")],
            })
            .collect(),
    }
}

#[test]
fn an_event_proof_checks_against_a_verified_receipts_root() {
    let c = chain();
    let mut lc = c.client();
    let r0 = receipt_with_events(3);
    let r1 = receipt_with_events(1);
    let leaves = [r0.hash(), r1.hash()];
    let mut h = c.next(&c.checkpoint);
    h.receipts_root = merkle::root(&leaves);
    lc.apply(c.update(h, &[0, 1, 2])).unwrap();
    let proof = EventProof::new(6, &r0, merkle::prove(&leaves, 0).unwrap(), 2).unwrap();
    // The block-wide builder makes the same proofs, against the same root.
    let receipts = [r0.clone(), r1.clone()];
    let block = BlockEvents::new(6, &receipts);
    assert_eq!(block.receipts_root(), merkle::root(&leaves));
    assert_eq!(block.proof(0, 2), Some(proof.clone()));
    assert!(block
        .proof(1, 0)
        .is_some_and(|p| p.verify(&block.receipts_root()).is_ok()));
    assert_eq!(block.proof(1, 1), None);
    assert_eq!(block.proof(2, 0), None);
    assert!(
        proof.receipt.event_logs.is_empty(),
        "the receipt travels without its events"
    );
    lc.verify_event(&proof).unwrap();
    // A receipt that carries events anyway is refused (one form per proof).
    let mut fat = proof.clone();
    fat.receipt.event_logs = r0.event_logs.clone();
    assert!(matches!(
        lc.verify_event(&fat),
        Err(LightClientError::Proof(_))
    ));
    let mut wrong_root = proof.clone();
    wrong_root.events_root = Hash32([1; 32]);
    assert!(matches!(
        lc.verify_event(&wrong_root),
        Err(LightClientError::Proof(_))
    ));
    let bytes = proof.encode();
    assert_eq!(EventProof::decode(&bytes).unwrap(), proof);
    assert!(EventProof::decode(&bytes[..bytes.len() - 1]).is_err());
    assert!(EventProof::decode(&vec![0xc0; MAX_PROOF_BYTES + 1]).is_err());
    let mut bad_side = proof.clone();
    bad_side.receipt_proof = vec![];
    let mut raw = bad_side.encode();
    let n = raw.len();
    raw[n - 33] = 2; // the event path's first side byte
    assert!(matches!(
        EventProof::decode(&raw),
        Err(LightClientError::Decode(m)) if m.contains("side byte")
    ));
    // Another event, a receipt path of the other receipt, or an unverified height: refused.
    let mut forged = proof.clone();
    forged.event.data = vec!["0x99".into()];
    assert!(matches!(
        lc.verify_event(&forged),
        Err(LightClientError::Proof(_))
    ));
    let mut wrong_path = proof.clone();
    wrong_path.receipt_proof = merkle::prove(&leaves, 1).unwrap();
    assert!(matches!(
        lc.verify_event(&wrong_path),
        Err(LightClientError::Proof(_))
    ));
    let mut unknown = proof;
    unknown.height = 7;
    assert_eq!(
        lc.verify_event(&unknown),
        Err(LightClientError::UnknownHeight(7))
    );
}

#[test]
fn updates_round_trip_and_decoding_is_bounded() {
    let c = chain();
    let h = c.next(&c.checkpoint);
    let mut u = c.update(h, &[0, 1, 2]);
    assert_eq!(HeaderUpdate::decode(&u.encode()).unwrap(), u);
    u.next_validators = Some(c.set.clone());
    let bytes = u.encode();
    assert_eq!(HeaderUpdate::decode(&bytes).unwrap(), u);
    let mut trailing = bytes.clone();
    trailing.push(0);
    assert!(HeaderUpdate::decode(&trailing).is_err());
    assert!(HeaderUpdate::decode(&bytes[..bytes.len() - 1]).is_err());
    assert!(HeaderUpdate::decode(&vec![0xc0; MAX_UPDATE_BYTES + 1]).is_err());
    assert!(HeaderUpdate::decode(&[]).is_err());
}
