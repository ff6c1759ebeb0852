//! LFT consensus as a pure state machine: inputs are messages, timer expiries and application
//! replies; outputs are [`Action`]s (broadcast, send, persist, commit, set a timer, ask the
//! application to build or check a block). No tokio, no clock reads, no sockets: the same code
//! runs in the node and in the deterministic simulation (`tests/simulation.rs`).
//!
//! # Protocol
//!
//! Two phases per round, **propose** and **vote**; the commit phase is folded into the next
//! proposal, which carries the quorum certificate (QC) of its parent (`justify`, the "previous
//! votes" of LFT). Rounds are numbered globally (as in LFT2 and Jolteon); a block records the
//! round in which it was proposed.
//!
//! 1. *Quorum*: `q = floor(2n/3) + 1` of the validator set that votes on the block's height.
//! 2. *Leader* of round `r`: `validators[r mod n]` of the set at the next height.
//! 3. *Candidate*: the block of the highest-round QC a node has seen (`high_qc`). The leader
//!    proposes a child of its candidate, with the candidate's QC as `justify`, and with the
//!    timeout certificate of round `r - 1` when that round failed.
//! 4. *Vote rule*: a validator votes once per round (yes or nil), and votes yes for a proposal of
//!    round `r` only if it comes from the leader of `r`, its `justify` is a valid QC of its
//!    parent, its height is the parent's plus one, the application accepts it, and either
//!    `justify.round == r - 1` (the chain is unbroken) or it carries a valid timeout certificate
//!    for `r - 1` and `justify.round` is at least every high-QC round in that certificate.
//!    Otherwise it sends a **nil vote**, which carries its own `high_qc`.
//! 5. *Round change*: a QC for round `r` moves everyone who sees it to `r + 1`. A quorum of nil
//!    votes for `r` is a timeout certificate (TC) and also moves to `r + 1`. A validator whose
//!    round timer expires sends a nil vote; one that sees `f + 1` nil votes for its round joins
//!    them (so a round fails fast once it has failed for someone honest).
//! 6. *Finality* (two-chain rule): when a block `B'` gets a QC and its parent `B` was proposed in
//!    the round just before (`B'.round == B.round + 1`), `B` and all its ancestors are final.
//!    The rounds compared are those the certificates sign (the QC on `B'` and `B'`'s justify on
//!    `B`), never a round remembered from an earlier proposal of the same hash; the application
//!    binds the round into the block hash (Nexus headers carry it), so a block cannot be
//!    re-proposed in a later round under the same hash.
//!    Finality therefore lags one round, as LFT's "the parent of the new candidate becomes final";
//!    the consecutive-round condition is what keeps it safe when rounds fail (see below).
//! 7. *Timeouts* grow by `growth_percent` per consecutive failed round, up to `max_ms`, and reset
//!    when a QC forms.
//! 8. *Signed bytes* are unambiguous: a domain tag, nid, channel, height, round and block hash
//!    for votes; tag, nid, channel, round and high-QC round for nil votes; tag, nid, channel,
//!    height, round, block and parent hash for proposals.
//! 9. *Validator sets* change at explicit heights ([`ValidatorSchedule`]); votes on a block are
//!    checked against the set of its height.
//! 10. *Every certificate is checked in full* unless the very same bytes (votes included) were
//!     checked before; a vote counts only with the height of its block, and votes of different
//!     heights never form one QC.
//! 11. *Bounded memory*: votes, nil votes and proposals more than [`FUTURE_ROUNDS`] rounds or
//!     [`FUTURE_HEIGHTS`] heights ahead are dropped unread (a far-ahead proposal's certificate is
//!     still used to catch up); one proposal per round is kept; a message refused for a bad
//!     signature or shape yields [`Action::Refused`], so the runtime can penalize its sender.
//! 12. *A TC carries its highest QC*: a timeout certificate holds a valid QC whose round is at
//!     least every high-QC round its nil votes report, and whoever receives it adopts that QC
//!     (as Aptos' two-chain timeout certificates do). A Byzantine nil vote claiming a round that
//!     no certificate backs cannot make the next proposal unvotable.
//! 13. *No certificates from the past*: a QC is adopted (as candidate, for a round change or for
//!     finality) only if it certifies the final block or one above it; a proposal must extend
//!     the final block; a TC's nil votes are counted against the set of the height where it is
//!     used (the proposal's, or the next to decide), never a height the TC names unsigned.
//! 14. *A leader proposes once per round*, across crashes: the round is written
//!     ([`SafetyState::last_proposed_round`]) before the proposal is sent. A leader that has
//!     not proposed yet and whose candidate moves within the round (a QC of an earlier round
//!     arrives late) is asked to build on the new candidate.
//! 15. *Validator sets hand over at a final block.* When the candidate is the last block of
//!     its set (the schedule names another set for the next height), nobody proposes the
//!     next height yet: the old set votes for that block again in the following round (its
//!     seal, under rule 4's conditions as if for a child), and the block is final once the old
//!     set has certified it in two consecutive rounds. Only then does the new set decide the
//!     next height, in later rounds: its first proposal carries the two QCs (`justify` and
//!     `seal`), and a new member votes for it only if the parent is final. So the two sets
//!     never decide conflicting blocks in one round, and a TC of one set never unlocks the
//!     other (rule 13). Every node also sends its highest QC on each timeout
//!     ([`Message::Sync`]), so members of the new set learn the seal without taking part in it.
//! 16. *Catch-up across set changes.* A node's schedule is certain only up to a horizon (its
//!     final height plus the change margin, [`ValidatorSchedule::horizon`]). Certificates above
//!     it are not judged (nor blamed on the sender when they fail): they are hints of where the
//!     others are. Their blocks are fetched, walking down parent by parent (at most
//!     [`MAX_SYNC_BLOCKS`] and [`MAX_SYNC_BYTES`] of payload kept, the lowest), and judged in height order as finality raises the
//!     horizon and the application hands in the sets it learned.
//!
//! Why not "finalize the parent of any new candidate": with one Byzantine validator, a block `B`
//! certified in round 0 (seen by few) and a sibling `B'` certified in round 1 can both gather
//! child QCs from overlapping honest validators that adopted the higher-round candidate, and
//! both parents would be final. Requiring consecutive rounds (and the TC rule for voting after a
//! failed round) rules this out: after `B` and its child are certified in rounds `r, r+1`, more
//! than `n/3` honest validators hold `high_qc.round >= r`, so every later TC forces proposals to
//! extend `B`.
//!
//! # Safety state
//!
//! Before a validator sends any vote it emits [`Action::Persist`] with its last voted round; the
//! runtime must write it durably before sending. After a crash the core restarts from it and
//! never votes twice in a round.

pub mod codec;
mod crypto;
mod machine;
mod types;
mod validators;

pub use crypto::{Crypto, Secp256k1Crypto};
pub use machine::{
    Action, Config, Lft, SafetyState, Timeouts, FUTURE_HEIGHTS, FUTURE_ROUNDS, KEEP_HEIGHTS,
    MAX_SYNC_BLOCKS, MAX_SYNC_BYTES,
};
pub use types::{
    nil_digest, proposal_digest, vote_digest, BlockRef, Message, Nil, Proposal, Qc, Tc, Vote,
};
pub use validators::{ValidatorSchedule, ValidatorSet};
