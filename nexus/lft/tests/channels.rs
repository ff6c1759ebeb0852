//! Channels are separate ledgers: a validator of one channel cannot vote in another, and a vote
//! cast in one channel (or network) cannot be replayed in another, because votes are checked
//! against the channel's own set and sign the nid and channel name.

use nexus_lft::{
    vote_digest, BlockRef, Config, Lft, Message, Qc, SafetyState, Secp256k1Crypto, Timeouts,
    ValidatorSchedule, ValidatorSet, Vote,
};
use nexus_proto::{Address, Hash32, KeyPair};

fn core(channel: &str, set: &[Address], me: &KeyPair) -> Lft<Secp256k1Crypto> {
    let g = BlockRef {
        hash: Hash32([7; 32]),
        parent: Hash32::ZERO,
        height: 0,
        round: 0,
    };
    let cfg = Config {
        nid: 1,
        channel: channel.into(),
        schedule: ValidatorSchedule::new(ValidatorSet {
            members: set.to_vec(),
        }),
        timeouts: Timeouts::default(),
    };
    Lft::new(
        cfg,
        Secp256k1Crypto::new(me.clone()),
        g,
        Qc {
            round: 0,
            height: 0,
            block: g.hash,
            votes: vec![],
        },
        SafetyState::default(),
    )
}

fn vote(key: &KeyPair, nid: u64, channel: &str, index: u32, block: Hash32) -> Message {
    let signature = key
        .sign(&vote_digest(nid, channel, 1, 1, &block))
        .0
        .to_vec();
    Message::Vote(Vote {
        round: 1,
        height: 1,
        block,
        voter: index,
        signature,
    })
}

#[test]
fn votes_count_only_from_the_channels_own_validators_and_only_for_it() {
    let keys: Vec<KeyPair> = (0..5).map(|_| KeyPair::generate()).collect();
    let public: Vec<Address> = keys[..4].iter().map(|k| k.address()).collect();
    let notary: Vec<Address> = vec![
        keys[0].address(),
        keys[1].address(),
        keys[2].address(),
        keys[4].address(),
    ];
    let observer = KeyPair::generate();
    let mut n = core("notary-eth", &notary, &observer);
    let _ = n.start();
    let block = Hash32([9; 32]);
    let from = keys[0].address();

    // Two genuine notary votes: no quorum yet.
    for (i, k) in keys.iter().take(2).enumerate() {
        let _ = n.on_message(from, vote(k, 1, "notary-eth", i as u32, block));
    }
    // A public-only validator claims the fourth notary seat: refused.
    let _ = n.on_message(from, vote(&keys[3], 1, "notary-eth", 3, block));
    // A real notary validator's vote from the public channel, replayed: refused.
    let _ = n.on_message(from, vote(&keys[2], 1, "public", 2, block));
    // The same validator's vote from another network: refused.
    let _ = n.on_message(from, vote(&keys[2], 2, "notary-eth", 2, block));
    assert_eq!(
        n.high_qc().round,
        0,
        "a quorum formed from votes that do not belong to the channel"
    );
    assert_eq!(public.len(), 4);

    // The channel's own third vote makes the quorum.
    let _ = n.on_message(from, vote(&keys[4], 1, "notary-eth", 3, block));
    assert_eq!(n.high_qc().round, 1);
    assert_eq!(n.high_qc().block, block);
}
