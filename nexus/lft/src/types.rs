//! Consensus messages, certificates and the digests that are signed.

use alloy_rlp::{Encodable, Header};
use nexus_proto::{hash::sha3_256, Hash32};

/// What identifies a block to consensus.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BlockRef {
    /// Block hash (computed by the application over the whole block).
    pub hash: Hash32,
    /// Parent hash.
    pub parent: Hash32,
    /// Height (genesis is 0).
    pub height: u64,
    /// Round in which it was proposed (genesis is 0).
    pub round: u64,
}

/// A quorum certificate: more than 2/3 of the set at `height` voted for `block` in `round`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Qc {
    /// Round of the votes.
    pub round: u64,
    /// Height of the block.
    pub height: u64,
    /// The block.
    pub block: Hash32,
    /// (validator index, signature), ascending by index. Empty only for the genesis QC.
    pub votes: Vec<(u32, Vec<u8>)>,
}

/// A timeout certificate: more than 2/3 nil votes for `round`, with the highest QC they report
/// (so nobody can claim a high-QC round that no certificate backs: rule 12).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tc {
    /// The failed round.
    pub round: u64,
    /// Height whose validator set the nil votes are counted against.
    pub height: u64,
    /// Per nil vote: validator index, the height it was cast at, its high-QC round, signature.
    pub nils: Vec<(u32, u64, u64, Vec<u8>)>,
    /// A QC whose round is at least every high-QC round in `nils`.
    pub high_qc: Qc,
}

impl Tc {
    /// The highest high-QC round among the nil votes.
    pub fn max_high_qc_round(&self) -> u64 {
        self.nils.iter().map(|(_, _, r, _)| *r).max().unwrap_or(0)
    }
}

/// A leader's proposal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proposal {
    /// The block.
    pub block: BlockRef,
    /// Application bytes (transactions, header fields); checked by the application.
    pub payload: Vec<u8>,
    /// QC of the parent (the leader's candidate).
    pub justify: Qc,
    /// TC of the previous round, when `justify.round + 1 != block.round`.
    pub tc: Option<Tc>,
    /// For the first block of a validator set: a QC on the parent one round below `justify`
    /// (with `justify`, the proof that the old set sealed the parent: rule 15).
    pub seal: Option<Qc>,
    /// Index of the proposer.
    pub proposer: u32,
    /// Proposer's signature over [`proposal_digest`].
    pub signature: Vec<u8>,
}

/// A yes vote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vote {
    /// Round.
    pub round: u64,
    /// Height of the block.
    pub height: u64,
    /// The block.
    pub block: Hash32,
    /// Voter index.
    pub voter: u32,
    /// Signature over [`vote_digest`].
    pub signature: Vec<u8>,
}

/// A nil vote: "nothing acceptable in this round", with the voter's candidate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nil {
    /// Round.
    pub round: u64,
    /// Height being decided.
    pub height: u64,
    /// The voter's highest QC.
    pub high_qc: Qc,
    /// Voter index.
    pub voter: u32,
    /// Signature over [`nil_digest`].
    pub signature: Vec<u8>,
}

/// Everything validators send each other.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A proposal.
    Proposal(Proposal),
    /// A yes vote.
    Vote(Vote),
    /// A nil vote.
    Nil(Nil),
    /// The timeout certificate that moved the sender to its round (resent on timeouts so
    /// validators left behind catch up).
    Timeout(Tc),
    /// Ask for the proposal of a block (block sync).
    BlockRequest(Hash32),
    /// The proposal of a block asked for.
    BlockResponse(Proposal),
    /// The sender's highest QC, with the QC one round below it on the same block when it holds
    /// one (sent on timeouts, so that validators of the next set and nodes left behind learn
    /// certificates they cannot get from nil votes).
    Sync {
        /// Highest QC.
        high_qc: Qc,
        /// A QC on the same block one round below.
        seal: Option<Qc>,
    },
}

fn digest(items: &[&dyn Encodable]) -> Hash32 {
    let payload_length: usize = items.iter().map(|i| i.length()).sum();
    let mut buf = Vec::with_capacity(payload_length + 8);
    Header {
        list: true,
        payload_length,
    }
    .encode(&mut buf);
    for i in items {
        i.encode(&mut buf);
    }
    sha3_256(&[&buf])
}

/// What a yes vote signs: the one vote digest of Nexus, shared with block headers'
/// `prev_votes` (see `nexus_proto::block::vote_digest`).
pub use nexus_proto::block::vote_digest;

/// What a nil vote signs.
pub fn nil_digest(nid: u64, channel: &str, height: u64, round: u64, high_qc_round: u64) -> Hash32 {
    digest(&[
        &"nexus/lft/nil/1",
        &nid,
        &channel,
        &height,
        &round,
        &high_qc_round,
    ])
}

/// What a proposal signs.
pub fn proposal_digest(nid: u64, channel: &str, b: &BlockRef) -> Hash32 {
    digest(&[
        &"nexus/lft/proposal/1",
        &nid,
        &channel,
        &b.height,
        &b.round,
        &b.hash,
        &b.parent,
    ])
}
