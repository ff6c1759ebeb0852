//! The LFT state machine. See the crate docs for the rules; each rule is enforced where noted.

use crate::crypto::Crypto;
use crate::types::{
    nil_digest, proposal_digest, vote_digest, BlockRef, Message, Nil, Proposal, Qc, Tc, Vote,
};
use crate::validators::{ValidatorSchedule, ValidatorSet};
use nexus_proto::{Address, Hash32};
use std::collections::{BTreeMap, HashMap, HashSet};

#[cfg(test)]
mod tests;

/// Round timer settings (all durations are config values).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// First timeout of a round, in ms.
    pub round_ms: u64,
    /// Growth per consecutive failed round, in percent.
    pub growth_percent: u64,
    /// Upper bound, in ms.
    pub max_ms: u64,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            round_ms: 1_000,
            growth_percent: 50,
            max_ms: 30_000,
        }
    }
}

/// What must survive a crash, written before every vote: the last round with a vote (no yes
/// vote is ever sent in or below it again), the highest QC (which later nil votes must report,
/// or a timeout certificate could hide a block that is about to be final), and the certificate
/// that ended the previous round (so a restarted validator can show others where it is).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SafetyState {
    /// Last round with a vote.
    pub last_voted_round: u64,
    /// Highest QC at the time of the vote.
    pub high_qc: Option<Qc>,
    /// Last timeout certificate.
    pub last_tc: Option<Tc>,
    /// Last round in which this validator proposed (written before the proposal is sent, so a
    /// leader that crashes after sending never builds a second block for the round).
    pub last_proposed_round: u64,
}

/// What the runtime must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send to every validator.
    Broadcast(Message),
    /// Send to one peer.
    Send {
        /// The peer.
        to: Address,
        /// The message.
        msg: Message,
    },
    /// Write durably before sending anything that follows.
    Persist(SafetyState),
    /// Call [`Lft::on_timeout`] with `round` after `after_ms`.
    SetTimer {
        /// The round the timer belongs to.
        round: u64,
        /// Delay.
        after_ms: u64,
    },
    /// Build a child of `parent` for `round`; answer with [`Lft::on_block_built`].
    BuildBlock {
        /// Round.
        round: u64,
        /// The parent.
        parent: BlockRef,
    },
    /// Check a proposed block; answer with [`Lft::on_block_checked`].
    CheckBlock(Proposal),
    /// A proposal was stored: keep it durably enough to serve block sync after a restart (a
    /// lost one only slows a peer's catch-up; it is not needed for safety). The runtime may
    /// drop its payload once the block is final and in its own storage (see
    /// [`Lft::forget_payload`]).
    Keep(Proposal),
    /// The message just handled was refused as invalid or out of bounds (a bad signature, a
    /// round or height outside the window, a second proposal for a round): the runtime should
    /// count it against the peer that sent it.
    Refused(&'static str),
    /// A block is final (emitted in height order).
    Commit {
        /// The block.
        block: BlockRef,
        /// Its payload.
        payload: Vec<u8>,
        /// Its QC.
        qc: Qc,
    },
}

/// Heights below the final block whose proposals stay in memory for peers catching up.
pub const KEEP_HEIGHTS: u64 = 1024;

/// Rounds ahead of the current one for which votes, nil votes and proposals are kept; further
/// ones are dropped unread (a node that far behind catches up from the certificate a proposal
/// carries, not from votes). Dropping costs no signature check, and is not held against the
/// sender: this node may simply be the one behind.
pub const FUTURE_ROUNDS: u64 = 64;

/// Heights ahead of the final block for which votes and proposals are kept.
pub const FUTURE_HEIGHTS: u64 = 64;

/// Most blocks kept for catch-up beyond the schedule's horizon (rule 16); a node further
/// behind keeps the lowest and catches up in steps of this size.
pub const MAX_SYNC_BLOCKS: usize = 1024;

/// Most payload bytes kept for catch-up beyond the horizon, whatever the number of blocks:
/// blocks there are not judged yet, so a peer that answers block requests with made-up blocks
/// near the message limit would otherwise hold [`MAX_SYNC_BLOCKS`] of them (gigabytes). Real
/// catch-up over large blocks goes in smaller steps.
pub const MAX_SYNC_BYTES: usize = 256 << 20;

/// Nil votes of one round: voter -> (height cast at, high-QC round, signature).
type NilVotes = BTreeMap<u32, (u64, u64, Vec<u8>)>;

/// What identifies the channel and how it runs.
#[derive(Debug, Clone)]
pub struct Config {
    /// Network id (signed into every vote).
    pub nid: u64,
    /// Channel name (signed into every vote).
    pub channel: String,
    /// Validator sets by height.
    pub schedule: ValidatorSchedule,
    /// Round timers.
    pub timeouts: Timeouts,
}

/// One validator's (or observer's) consensus state for one channel.
pub struct Lft<C: Crypto> {
    nid: u64,
    channel: String,
    schedule: ValidatorSchedule,
    timeouts: Timeouts,
    crypto: C,
    round: u64,
    safety: SafetyState,
    high_qc: Qc,
    last_tc: Option<Tc>,
    committed: BlockRef,
    blocks: HashMap<Hash32, Proposal>,
    anchors: HashMap<Hash32, BlockRef>,
    verified_qcs: HashMap<Hash32, u64>,
    votes: HashMap<(u64, u64, Hash32), BTreeMap<u32, Vec<u8>>>,
    proposed: HashMap<u64, Hash32>,
    refused: Option<&'static str>,
    voted: HashMap<(u64, u32), Hash32>,
    nils: HashMap<u64, NilVotes>,
    my_nil: Option<Nil>,
    checking: Option<Hash32>,
    failures: u32,
    pending_commit: Option<Qc>,
    requested: HashSet<Hash32>,
    pruned_below: u64,
    kept: Vec<Proposal>,
    /// QCs on blocks at the last height of a validator set, by (block, round): two in
    /// consecutive rounds seal the block (rule 15).
    end_qcs: HashMap<(Hash32, u64), Qc>,
    /// Catch-up (rule 16): proposals fetched for heights beyond the schedule's horizon, judged
    /// once blocks below them are final and the sets of their heights are known.
    sync_blocks: HashMap<Hash32, Proposal>,
    /// The highest certificate seen beyond the horizon: where catch-up heads.
    sync_tip: Option<Qc>,
}

/// Rule 4: a block of round `r` on a QC of round `justify_round` may get a yes vote when the
/// chain is unbroken (`justify_round == r - 1`), or with a TC of round `r - 1` whose high-QC
/// rounds the justify covers.
fn votable(justify_round: u64, r: u64, tc: Option<&Tc>) -> bool {
    justify_round.checked_add(1) == Some(r)
        || tc.is_some_and(|tc| {
            tc.round.checked_add(1) == Some(r) && justify_round >= tc.max_high_qc_round()
        })
}

/// What identifies a verified QC: a digest of all of it, votes included. Caching by (round,
/// block) alone would let anyone attach garbage votes to a certificate seen once, and such a QC
/// would then ride in a block's `prev_votes` where no light client could verify it.
fn qc_key(qc: &Qc) -> Hash32 {
    use alloy_rlp::Encodable;
    let mut buf = Vec::with_capacity(64 + qc.votes.len() * 72);
    qc.round.encode(&mut buf);
    qc.height.encode(&mut buf);
    qc.block.encode(&mut buf);
    for (i, sig) in &qc.votes {
        i.encode(&mut buf);
        sig.as_slice().encode(&mut buf);
    }
    nexus_proto::hash::sha3_256(&[&buf])
}

impl<C: Crypto> Lft<C> {
    /// A core that resumes after `committed` (certified by `committed_qc`), with the safety
    /// state persisted before a crash (default on first start).
    pub fn new(
        cfg: Config,
        crypto: C,
        committed: BlockRef,
        committed_qc: Qc,
        safety: SafetyState,
    ) -> Self {
        let Config {
            nid,
            channel,
            schedule,
            timeouts,
        } = cfg;
        let mut anchors = HashMap::new();
        anchors.insert(committed.hash, committed);
        let mut verified_qcs = HashMap::new();
        verified_qcs.insert(qc_key(&committed_qc), committed_qc.round);
        let high_qc = match &safety.high_qc {
            Some(q) if q.round > committed_qc.round => {
                verified_qcs.insert(qc_key(q), q.round);
                q.clone()
            }
            _ => committed_qc,
        };
        let last_tc = safety.last_tc.clone();
        // Resume in the round the certificates justify (votes stay barred up to
        // `last_voted_round`; nil votes are allowed, which lets the others catch up).
        let round = high_qc
            .round
            .max(last_tc.as_ref().map(|t| t.round).unwrap_or(0))
            .max(committed.round);
        Lft {
            nid,
            channel,
            schedule,
            timeouts,
            crypto,
            round,
            safety,
            high_qc,
            last_tc,
            committed,
            blocks: HashMap::new(),
            anchors,
            verified_qcs,
            votes: HashMap::new(),
            proposed: HashMap::new(),
            refused: None,
            voted: HashMap::new(),
            nils: HashMap::new(),
            my_nil: None,
            checking: None,
            failures: 0,
            pending_commit: None,
            requested: HashSet::new(),
            pruned_below: 0,
            kept: Vec::new(),
            end_qcs: HashMap::new(),
            sync_blocks: HashMap::new(),
            sync_tip: None,
        }
    }

    /// Starts the first round.
    pub fn start(&mut self) -> Vec<Action> {
        let mut out = Vec::new();
        let r = self.round.saturating_add(1);
        self.enter_round(r, &mut out);
        out
    }

    /// Replaces the validator schedule (changes apply at their heights; the application calls
    /// this after each final block, as its horizon moves up and changes become final). Blocks
    /// fetched beyond the old horizon are judged now (rule 16).
    pub fn set_schedule(&mut self, schedule: ValidatorSchedule) -> Vec<Action> {
        self.schedule = schedule;
        let mut out = Vec::new();
        self.advance_sync(&mut out);
        // Refusals met while catching up concern blocks fetched earlier, not a message now.
        self.refused = None;
        out
    }

    /// This validator's address.
    pub fn address(&self) -> Address {
        self.crypto.address()
    }

    /// A proposal this core holds (received, built or fetched by block sync).
    pub fn proposal(&self, hash: &Hash32) -> Option<&Proposal> {
        self.blocks.get(hash)
    }

    /// Drops the payload of the final block `hash` from memory, once the runtime holds the
    /// block durably itself: the proposal stays (for block sync), and an answer to a
    /// [`Message::BlockRequest`] for it carries an empty payload that the runtime fills from
    /// its own storage. Blocks above the final one keep theirs (they may still need checking).
    pub fn forget_payload(&mut self, hash: &Hash32) {
        if let Some(p) = self.blocks.get_mut(hash) {
            if p.block.height <= self.committed.height {
                p.payload = Vec::new();
            }
        }
    }

    /// The validator that signed `p` (its index in the set of the block's height).
    pub fn proposer_of(&self, p: &Proposal) -> Option<Address> {
        self.set_for(p.block.height)
            .members
            .get(p.proposer as usize)
            .copied()
    }

    /// The current round.
    pub fn round(&self) -> u64 {
        self.round
    }

    /// The last final block.
    pub fn committed(&self) -> BlockRef {
        self.committed
    }

    /// The highest QC seen (the candidate).
    pub fn high_qc(&self) -> &Qc {
        &self.high_qc
    }

    fn set_for(&self, height: u64) -> &ValidatorSet {
        self.schedule.at(height)
    }

    fn my_index(&self, height: u64) -> Option<u32> {
        self.set_for(height)
            .index_of(&self.crypto.address())
            .map(|i| i as u32)
    }

    /// The height whose set decides now: the one above the candidate, except when the candidate
    /// is the last block of its set and not yet final: then that set seals it first (rule 15).
    fn deciding_height(&self) -> u64 {
        let h = self.high_qc.height;
        if self.schedule.ends_at(h) && self.committed.height < h {
            h
        } else {
            h.saturating_add(1)
        }
    }

    /// The QC one round below `qc` on the same block, when `qc` is on the last block of a set.
    fn seal_below(&self, qc: &Qc) -> Option<Qc> {
        let r = qc.round.checked_sub(1)?;
        self.end_qcs.get(&(qc.block, r)).cloned()
    }

    fn leader(&self, round: u64, height: u64) -> Address {
        let set = self.set_for(height);
        set.members[(round % set.members.len() as u64) as usize]
    }

    fn timeout_ms(&self) -> u64 {
        let mut t = self.timeouts.round_ms;
        for _ in 0..self.failures {
            t = t.saturating_mul(100 + self.timeouts.growth_percent) / 100;
            if t >= self.timeouts.max_ms {
                return self.timeouts.max_ms;
            }
        }
        t.min(self.timeouts.max_ms)
    }

    fn block_ref(&self, hash: &Hash32) -> Option<BlockRef> {
        self.blocks
            .get(hash)
            .map(|p| p.block)
            .or_else(|| self.anchors.get(hash).copied())
    }

    /// Checks a QC: a quorum of distinct members of the set at its height, each signature valid.
    fn valid_qc(&mut self, qc: &Qc) -> bool {
        let key = qc_key(qc);
        if self.verified_qcs.contains_key(&key) {
            return true;
        }
        let set = self.set_for(qc.height).clone();
        let digest = vote_digest(self.nid, &self.channel, qc.height, qc.round, &qc.block);
        let mut last: Option<u32> = None;
        for (i, sig) in &qc.votes {
            if last.is_some_and(|l| l >= *i) {
                return false;
            }
            last = Some(*i);
            let Some(member) = set.members.get(*i as usize) else {
                return false;
            };
            if !self.crypto.verify(member, &digest, sig) {
                return false;
            }
        }
        let ok = qc.votes.len() >= set.quorum();
        if ok {
            self.verified_qcs.insert(key, qc.round);
        }
        ok
    }

    /// Marks the message being handled as refused (reported by [`Lft::on_message`]).
    fn refuse(&mut self, why: &'static str) {
        self.refused.get_or_insert(why);
    }

    /// True when `round` and `height` are within the window this node keeps.
    fn in_window(&self, round: u64, height: u64) -> bool {
        round <= self.round.saturating_add(FUTURE_ROUNDS)
            && height <= self.committed.height.saturating_add(FUTURE_HEIGHTS)
    }

    /// Rule 16: a certificate above the heights whose sets this node knows is not judged; it
    /// only says where the others are. Fetch its block, then its ancestors, down to the final
    /// block; they are checked in height order as the schedule learns their sets.
    fn start_sync(&mut self, qc: Qc, out: &mut Vec<Action>) {
        if qc.height <= self.committed.height.saturating_add(1)
            || self
                .sync_tip
                .as_ref()
                .is_some_and(|t| t.height >= qc.height)
        {
            return;
        }
        let block = qc.block;
        self.sync_tip = Some(qc);
        self.request(block, out);
    }

    /// Keeps a fetched block beyond the horizon, and fetches its parent. At most
    /// [`MAX_SYNC_BLOCKS`] blocks and [`MAX_SYNC_BYTES`] of payload are kept, the lowest: the
    /// walk down from the target always reaches the final block, and the blocks dropped above
    /// are fetched again by a later walk.
    fn keep_for_sync(&mut self, p: Proposal, out: &mut Vec<Action>) {
        let size = p.payload.len();
        let mut bytes: usize = self.sync_blocks.values().map(|q| q.payload.len()).sum();
        while self.sync_blocks.len() >= MAX_SYNC_BLOCKS || bytes + size > MAX_SYNC_BYTES {
            let highest = self
                .sync_blocks
                .values()
                .max_by_key(|q| q.block.height)
                .map(|q| (q.block.hash, q.block.height));
            match highest {
                Some((h, height)) if height > p.block.height => {
                    if let Some(q) = self.sync_blocks.remove(&h) {
                        bytes -= q.payload.len();
                    }
                }
                _ => return,
            }
        }
        let parent = p.block.parent;
        let parent_height = p.block.height.saturating_sub(1);
        self.sync_blocks.insert(p.block.hash, p);
        if parent_height > self.committed.height
            && !self.blocks.contains_key(&parent)
            && !self.sync_blocks.contains_key(&parent)
        {
            self.request(parent, out);
        }
    }

    /// Asks again for what catch-up still misses: the target's block, and the parent of the
    /// lowest block fetched.
    fn resume_sync_walk(&mut self, out: &mut Vec<Action>) {
        // A target whose block nobody served within a round is dropped: it may be a made-up
        // certificate (its height, unjudged, could otherwise shut out every real hint).
        // Honest peers send their highest QC on every timeout, so a real target comes back.
        if let Some(tip) = &self.sync_tip {
            let b = tip.block;
            if !self.sync_blocks.contains_key(&b) && !self.blocks.contains_key(&b) {
                self.sync_tip = None;
            }
        }
        let lowest = self
            .sync_blocks
            .values()
            .min_by_key(|p| p.block.height)
            .map(|p| (p.block.parent, p.block.height));
        if let Some((parent, height)) = lowest {
            if height.saturating_sub(1) > self.committed.height
                && !self.blocks.contains_key(&parent)
            {
                self.request(parent, out);
            }
        }
    }

    /// Judges the fetched blocks that the schedule now covers (in height order, as any
    /// proposal), then the catch-up target once its set is known.
    fn advance_sync(&mut self, out: &mut Vec<Action>) {
        let horizon = self.schedule.horizon();
        let mut ready: Vec<Proposal> = self
            .sync_blocks
            .values()
            .filter(|p| p.block.height <= horizon)
            .cloned()
            .collect();
        ready.sort_by_key(|p| p.block.height);
        for p in ready {
            self.sync_blocks.remove(&p.block.hash);
            if p.block.height > self.committed.height && self.accept_proposal(&p) {
                self.flush_kept(out);
                self.process_qc(p.justify.clone(), out);
            }
        }
        if let Some(tip) = self.sync_tip.clone() {
            if tip.height <= horizon {
                self.sync_tip = None;
                if self.current_qc(&tip) && self.valid_qc(&tip) {
                    self.process_qc(tip, out);
                }
            }
        }
        self.retry_commits(out);
    }

    /// Checks a TC: a quorum of distinct members' nil votes, each signature valid, and a valid
    /// QC at least as high as every high-QC round the nil votes report (rule 12).
    /// The nil votes are counted against the set of `height`: the height of the proposal that
    /// carries the TC, or the next one to decide; never a height the TC names itself, which no
    /// nil vote signs (rule 13).
    fn valid_tc(&mut self, tc: &Tc, height: u64) -> bool {
        if tc.high_qc.round < tc.max_high_qc_round()
            || !self.current_qc(&tc.high_qc)
            || !self.valid_qc(&tc.high_qc)
        {
            return false;
        }
        let set = self.set_for(height).clone();
        let mut last: Option<u32> = None;
        for (i, height, hqr, sig) in &tc.nils {
            if last.is_some_and(|l| l >= *i) {
                return false;
            }
            last = Some(*i);
            let Some(member) = set.members.get(*i as usize) else {
                return false;
            };
            let digest = nil_digest(self.nid, &self.channel, *height, tc.round, *hqr);
            if !self.crypto.verify(member, &digest, sig) {
                return false;
            }
        }
        tc.nils.len() >= set.quorum()
    }

    /// Handles a message from `from`.
    pub fn on_message(&mut self, from: Address, msg: Message) -> Vec<Action> {
        let mut out = Vec::new();
        self.refused = None;
        // Above the schedule's horizon this node may judge with a set that has changed since
        // (rule 16): what fails there is dropped without blaming the sender.
        let height = match &msg {
            Message::Proposal(p) | Message::BlockResponse(p) => p.block.height,
            Message::Vote(v) => v.height,
            Message::Nil(n) => n.height.max(n.high_qc.height),
            Message::Timeout(tc) => tc.height.max(tc.high_qc.height),
            Message::Sync { high_qc, .. } => high_qc.height,
            Message::BlockRequest(_) => 0,
        };
        let unsure = height > self.schedule.horizon();
        match msg {
            Message::Proposal(p) => self.on_proposal(p, &mut out),
            Message::Vote(v) => self.on_vote(v, &mut out),
            Message::Nil(n) => self.on_nil(n, &mut out),
            Message::Timeout(tc) => {
                if tc.round >= self.round {
                    let height = self.deciding_height();
                    if self.valid_tc(&tc, height) {
                        self.process_tc(tc, &mut out);
                    } else {
                        self.refuse("invalid timeout certificate");
                    }
                }
            }
            Message::BlockRequest(h) => {
                // A final block's payload may be empty here: the runtime fills it.
                if let Some(p) = self.blocks.get(&h) {
                    out.push(Action::Send {
                        to: from,
                        msg: Message::BlockResponse(p.clone()),
                    });
                }
            }
            Message::BlockResponse(p) => self.on_block_response(p, &mut out),
            Message::Sync { high_qc, seal } => {
                if let Some(s) = seal.filter(|s| s.height <= self.schedule.horizon()) {
                    if s.block != high_qc.block || s.round.checked_add(1) != Some(high_qc.round) {
                        self.refuse("a seal QC that is not one round below its high QC");
                    } else {
                        self.adopt_checked(s, "invalid QC", &mut out);
                    }
                }
                if high_qc.height > self.schedule.horizon() {
                    self.start_sync(high_qc, &mut out);
                } else if self.refused.is_none() {
                    self.adopt_checked(high_qc, "invalid QC", &mut out);
                }
            }
        }
        if let Some(why) = self.refused.take() {
            if !unsure {
                out.push(Action::Refused(why));
            }
        }
        out
    }

    /// Checks a proposal's signature, leader and certificates; stores it. False if invalid.
    fn accept_proposal(&mut self, p: &Proposal) -> bool {
        let b = &p.block;
        let set = self.set_for(b.height);
        let Some(proposer) = set.members.get(p.proposer as usize).copied() else {
            self.refuse("proposer outside the set");
            return false;
        };
        // Rule 2: only the leader of the round proposes.
        if proposer != self.leader(b.round, b.height) {
            self.refuse("proposal from a validator that does not lead the round");
            return false;
        }
        if !self.crypto.verify(
            &proposer,
            &proposal_digest(self.nid, &self.channel, b),
            &p.signature,
        ) {
            self.refuse("bad proposal signature");
            return false;
        }
        // Rule 4: the justify is a valid QC of the parent, one height below.
        if p.justify.block != b.parent
            || p.justify.height.checked_add(1) != Some(b.height)
            || p.justify.round >= b.round
        {
            self.refuse("proposal whose justify is not its parent's");
            return false;
        }
        // Rule 13: nothing is built on a fork below the final block.
        if b.height > self.committed.height && !self.current_qc(&p.justify) {
            self.refuse("proposal on a fork below the final block");
            return false;
        }
        // The QC's height is the parent's, when the parent is known.
        if self
            .block_ref(&b.parent)
            .is_some_and(|parent| parent.height != p.justify.height)
        {
            self.refuse("justify names another height than its block's");
            return false;
        }
        if !self.valid_qc(&p.justify.clone()) {
            self.refuse("invalid QC");
            return false;
        }
        if let Some(tc) = &p.tc {
            if !self.valid_tc(tc, b.height) {
                self.refuse("invalid timeout certificate");
                return false;
            }
        }
        if b.height > self.committed.height && !self.blocks.contains_key(&b.hash) {
            self.blocks.insert(b.hash, p.clone());
            self.kept.push(p.clone());
        }
        true
    }

    /// Emits [`Action::Keep`] for proposals stored since the last call.
    fn flush_kept(&mut self, out: &mut Vec<Action>) {
        out.extend(self.kept.drain(..).map(Action::Keep));
    }

    fn on_proposal(&mut self, p: Proposal, out: &mut Vec<Action>) {
        if !self.in_window(p.block.round, p.block.height) {
            // Not kept; its certificate still tells a node that is behind where the others are.
            if p.justify.height > self.schedule.horizon() {
                self.start_sync(p.justify, out);
            } else if self.valid_qc(&p.justify) {
                self.process_qc(p.justify, out);
            }
            return;
        }
        // One proposal per round is kept: a leader that equivocates cannot fill memory with
        // blocks (one that a QC names is still fetched by block sync).
        if self
            .proposed
            .get(&p.block.round)
            .is_some_and(|h| *h != p.block.hash)
        {
            self.refuse("a second proposal for the round");
            return;
        }
        if !self.accept_proposal(&p) {
            return;
        }
        self.proposed.insert(p.block.round, p.block.hash);
        self.flush_kept(out);
        if let Some(s) = &p.seal {
            if s.block == p.justify.block && s.round.checked_add(1) == Some(p.justify.round) {
                self.adopt_checked(s.clone(), "invalid seal QC", out);
            }
        }
        self.process_qc(p.justify.clone(), out);
        if let Some(tc) = &p.tc {
            self.process_tc(tc.clone(), out);
        }
        let r = p.block.round;
        if r != self.round || self.safety.last_voted_round >= r || self.checking.is_some() {
            return;
        }
        if self.my_index(p.block.height).is_none() {
            return;
        }
        if !votable(p.justify.round, r, p.tc.as_ref()) {
            self.send_nil(out);
            return;
        }
        // Rule 15: the first block of a set extends a parent that its old set sealed.
        if self.schedule.ends_at(p.justify.height) && self.committed.hash != p.block.parent {
            self.send_nil(out);
            return;
        }
        if let Some(missing) = self.missing_ancestor(p.block.parent) {
            // The application cannot check a block whose ancestry it lacks (a parent, or a
            // block further up lost in a restart); fetch it and let the round timer decide.
            self.request(missing, out);
            return;
        }
        self.checking = Some(p.block.hash);
        out.push(Action::CheckBlock(p));
    }

    /// The application's verdict on a proposed block.
    pub fn on_block_checked(&mut self, hash: Hash32, valid: bool) -> Vec<Action> {
        let mut out = Vec::new();
        if self.checking != Some(hash) {
            return out;
        }
        self.checking = None;
        let Some(p) = self.blocks.get(&hash) else {
            return out;
        };
        let current = p.block.round == self.round && self.safety.last_voted_round < self.round;
        if !valid {
            // Not kept: memory for invalid blocks would be the attacker's to fill. The round
            // still refuses a second proposal; a QC naming this block refetches it.
            self.blocks.remove(&hash);
            if current {
                self.send_nil(&mut out);
            }
            return out;
        }
        if !current {
            return out;
        }
        let (height, round) = (p.block.height, p.block.round);
        let Some(me) = self.my_index(height) else {
            return out;
        };
        self.cast_vote(round, height, hash, me, &mut out);
        out
    }

    /// Votes yes for `block` in `round`: the round is written before the vote is sent.
    fn cast_vote(
        &mut self,
        round: u64,
        height: u64,
        block: Hash32,
        me: u32,
        out: &mut Vec<Action>,
    ) {
        self.safety.last_voted_round = round;
        self.persist(out);
        let digest = vote_digest(self.nid, &self.channel, height, round, &block);
        let vote = Vote {
            round,
            height,
            block,
            voter: me,
            signature: self.crypto.sign(&digest),
        };
        out.push(Action::Broadcast(Message::Vote(vote.clone())));
        self.on_vote(vote, out);
    }

    /// Adopts `qc` if it certifies the final block or above and its signatures hold; refuses
    /// the message otherwise (`why`). Certificates of the past are ignored.
    fn adopt_checked(&mut self, qc: Qc, why: &'static str, out: &mut Vec<Action>) {
        if !self.current_qc(&qc) {
            return;
        }
        if self.valid_qc(&qc) {
            self.process_qc(qc, out);
        } else {
            self.refuse(why);
        }
    }

    fn persist(&mut self, out: &mut Vec<Action>) {
        self.safety.high_qc = Some(self.high_qc.clone());
        self.safety.last_tc = self.last_tc.clone();
        out.push(Action::Persist(self.safety.clone()));
    }

    /// Sends this round's nil vote (once). Allowed after a yes vote in the same round, never
    /// before one: `last_voted_round` blocks yes votes once a nil is sent (rule 4).
    fn send_nil(&mut self, out: &mut Vec<Action>) {
        let height = self.deciding_height();
        let Some(me) = self.my_index(height) else {
            return;
        };
        if self.my_nil.is_some() {
            return;
        }
        self.safety.last_voted_round = self.safety.last_voted_round.max(self.round);
        self.persist(out);
        let digest = nil_digest(
            self.nid,
            &self.channel,
            height,
            self.round,
            self.high_qc.round,
        );
        let nil = Nil {
            round: self.round,
            height,
            high_qc: self.high_qc.clone(),
            voter: me,
            signature: self.crypto.sign(&digest),
        };
        self.my_nil = Some(nil.clone());
        out.push(Action::Broadcast(Message::Nil(nil.clone())));
        self.on_nil(nil, out);
    }

    fn on_vote(&mut self, v: Vote, out: &mut Vec<Action>) {
        if v.round.saturating_add(2) < self.round || v.height <= self.committed.height {
            return;
        }
        if !self.in_window(v.round, v.height) {
            return;
        }
        // A vote counts for its block at the block's own height, against that height's set.
        if self
            .block_ref(&v.block)
            .is_some_and(|b| b.height != v.height)
        {
            self.refuse("vote names another height than its block's");
            return;
        }
        let set = self.set_for(v.height);
        let Some(member) = set.members.get(v.voter as usize).copied() else {
            self.refuse("voter outside the set");
            return;
        };
        let quorum = set.quorum();
        // One yes vote per validator per round; a second one is equivocation and is ignored.
        if let Some(prev) = self.voted.get(&(v.round, v.voter)) {
            if *prev != v.block {
                return;
            }
        }
        let key = (v.round, v.height, v.block);
        if self
            .votes
            .get(&key)
            .is_some_and(|m| m.contains_key(&v.voter))
        {
            return;
        }
        if !self.crypto.verify(
            &member,
            &vote_digest(self.nid, &self.channel, v.height, v.round, &v.block),
            &v.signature,
        ) {
            self.refuse("bad vote signature");
            return;
        }
        self.voted.insert((v.round, v.voter), v.block);
        let entry = self.votes.entry(key).or_default();
        entry.insert(v.voter, v.signature);
        if entry.len() == quorum {
            let qc = Qc {
                round: v.round,
                height: v.height,
                block: v.block,
                votes: entry.iter().map(|(i, s)| (*i, s.clone())).collect(),
            };
            self.verified_qcs.insert(qc_key(&qc), qc.round);
            self.process_qc(qc, out);
        }
    }

    fn on_nil(&mut self, n: Nil, out: &mut Vec<Action>) {
        if n.round.saturating_add(2) < self.round {
            return;
        }
        if !self.in_window(n.round, n.height) {
            return;
        }
        // Nil votes of one round count together whatever height each was cast at (a validator
        // that was behind names a lower one); they are counted against the set of the current
        // height.
        let set = self.set_for(self.deciding_height().max(n.height)).clone();
        let Some(member) = self
            .set_for(n.height)
            .members
            .get(n.voter as usize)
            .copied()
        else {
            return;
        };
        if set.members.get(n.voter as usize) != Some(&member) {
            return;
        }
        if self
            .nils
            .get(&n.round)
            .is_some_and(|m| m.contains_key(&n.voter))
        {
            return;
        }
        let digest = nil_digest(self.nid, &self.channel, n.height, n.round, n.high_qc.round);
        if !self.crypto.verify(&member, &digest, &n.signature) {
            self.refuse("bad nil vote signature");
            return;
        }
        if !self.valid_qc(&n.high_qc) {
            self.refuse("nil vote with an invalid high QC");
            return;
        }
        // A high QC from before the final block cannot be adopted; counting its round would
        // make a TC that no adoptable QC backs (rule 12). A lagging honest validator's old QC
        // has a lower round than ours, so it still counts.
        if !self.current_qc(&n.high_qc) && n.high_qc.round > self.high_qc.round {
            return;
        }
        self.process_qc(n.high_qc.clone(), out);
        let tc_height = self.deciding_height().max(n.height);
        let entry = self.nils.entry(n.round).or_default();
        entry.insert(n.voter, (n.height, n.high_qc.round, n.signature));
        let count = entry.len();
        if count >= set.quorum() {
            let nils = entry
                .iter()
                .map(|(i, (h, r, s))| (*i, *h, *r, s.clone()))
                .collect();
            // Every nil's high QC was adopted above, so ours is at least as high as each.
            let tc = Tc {
                round: n.round,
                height: tc_height,
                nils,
                high_qc: self.high_qc.clone(),
            };
            if tc.round >= self.round {
                // Forward a certificate formed here: a peer that missed one nil vote would
                // otherwise stay a round behind until our next timeout.
                out.push(Action::Broadcast(Message::Timeout(tc.clone())));
            }
            self.process_tc(tc, out);
        } else if count > set.max_faulty() && n.round >= self.round {
            // Rule 5: f + 1 nil votes mean an honest validator gave up on this round; join it
            // (moving up to it if we are behind: entering a round never endangers safety).
            if n.round > self.round {
                self.failures = self.failures.saturating_add(1);
                self.enter_round(n.round, out);
            }
            self.send_nil(out);
        }
    }

    /// True when `qc` certifies the final block or a block above it: anything else is history
    /// (counted against sets that may have left) or a fork below what is final (rule 13).
    fn current_qc(&self, qc: &Qc) -> bool {
        qc.height > self.committed.height
            || (qc.height == self.committed.height && qc.block == self.committed.hash)
    }

    fn process_qc(&mut self, qc: Qc, out: &mut Vec<Action>) {
        if !self.current_qc(&qc) {
            return;
        }
        if self.schedule.ends_at(qc.height) && qc.height > self.committed.height {
            self.end_qcs
                .entry((qc.block, qc.round))
                .or_insert_with(|| qc.clone());
        }
        let moved = qc.round > self.high_qc.round;
        if moved {
            self.high_qc = qc.clone();
        }
        self.try_commit(&qc, out);
        if qc.round >= self.round {
            self.failures = 0;
            self.last_tc = None;
            self.enter_round(qc.round.saturating_add(1), out);
        } else if moved && self.round > 0 {
            // The candidate moved within the round: a leader that has not proposed yet is asked
            // to build on the new one (a build on the old one may no longer be votable).
            let r = self.round;
            self.act_in_round(r, out);
        }
    }

    fn process_tc(&mut self, tc: Tc, out: &mut Vec<Action>) {
        // The certificate's high QC is adopted first: a leader of the next round then holds a
        // candidate that every honest validator can vote for (rule 4).
        self.process_qc(tc.high_qc.clone(), out);
        if tc.round >= self.round {
            self.failures = self.failures.saturating_add(1);
            let next = tc.round.saturating_add(1);
            self.last_tc = Some(tc);
            self.enter_round(next, out);
        }
    }

    /// Rule 6: a QC on `B'` finalizes its parent `B` when `B'.round == B.round + 1`, judged by
    /// the rounds the certificates sign: `qc` (on `B'`) and `B'`'s justify (on `B`). The round a
    /// stored proposal names is not trusted for this (the application binds it into the hash).
    fn try_commit(&mut self, qc: &Qc, out: &mut Vec<Action>) {
        // Rule 15: the last block of a set is final once its set certified it in two
        // consecutive rounds.
        if self.schedule.ends_at(qc.height) && qc.height > self.committed.height {
            let pair = [
                qc.round.checked_sub(1).map(|r| (qc.block, r)),
                qc.round.checked_add(1).map(|r| (qc.block, r)),
            ];
            if pair.iter().flatten().any(|k| self.end_qcs.contains_key(k)) {
                self.commit_chain(qc.clone(), qc, out);
                if self.committed.hash == qc.block {
                    // The next set takes over within this round (its leader builds now).
                    let r = self.round;
                    self.act_in_round(r, out);
                }
                return;
            }
        }
        if qc.height <= self.committed.height.saturating_add(1) {
            return;
        }
        let Some(child) = self.blocks.get(&qc.block) else {
            self.note_pending(qc);
            if !self.sync_blocks.contains_key(&qc.block) {
                self.request(qc.block, out);
            }
            return;
        };
        if child.block.round != qc.round || child.justify.round.checked_add(1) != Some(qc.round) {
            return;
        }
        let target = child.justify.clone();
        self.commit_chain(target, qc, out);
    }

    /// Makes `target.block` and its ancestors above the final block final (the QC of each is
    /// its child's justify, the top one's is `target`); `trigger` is kept to retry when blocks
    /// are missing.
    fn commit_chain(&mut self, target: Qc, trigger: &Qc, out: &mut Vec<Action>) {
        let qc = trigger;
        // Walk back from the parent to the last final block.
        let mut chain = Vec::new();
        let mut cur = target.block;
        // Blocks fetched beyond the horizon are on the way but not judged yet (rule 16).
        let mut unjudged = false;
        while cur != self.committed.hash {
            if let Some(p) = self.blocks.get(&cur) {
                if p.block.height <= self.committed.height {
                    return; // a fork below the final block: never final
                }
                chain.push(p.clone());
                cur = p.block.parent;
            } else if let Some(p) = self.sync_blocks.get(&cur) {
                if p.block.height <= self.committed.height {
                    return;
                }
                unjudged = true;
                cur = p.block.parent;
            } else {
                self.note_pending(qc);
                self.request(cur, out);
                return;
            }
        }
        if unjudged {
            self.note_pending(qc);
            return;
        }
        if self
            .pending_commit
            .as_ref()
            .is_some_and(|p| p.height <= target.height.saturating_add(1))
        {
            self.pending_commit = None;
        }
        chain.reverse();
        // The QC of each block is the justify of its child; the top one's is `target`.
        let qcs: Vec<Qc> = chain
            .iter()
            .skip(1)
            .map(|c| c.justify.clone())
            .chain(std::iter::once(target))
            .collect();
        for (p, block_qc) in chain.into_iter().zip(qcs) {
            self.committed = p.block;
            self.anchors.insert(p.block.hash, p.block);
            out.push(Action::Commit {
                block: p.block,
                payload: p.payload,
                qc: block_qc,
            });
        }
        self.prune();
    }

    /// Tries again every certificate that may finalize blocks now that more of the chain is
    /// here: the pending one, then the justify of each held block, highest first (blocks
    /// fetched while catching up arrive top down, so their certificates came before the
    /// ancestors they finalize).
    fn retry_commits(&mut self, out: &mut Vec<Action>) {
        if let Some(qc) = self.pending_commit.clone() {
            self.try_commit(&qc, out);
        }
        let floor = self.committed.height.saturating_add(1);
        let mut held: Vec<Qc> = self
            .blocks
            .values()
            .filter(|p| p.block.height > floor)
            .map(|p| p.justify.clone())
            .collect();
        held.sort_by_key(|q| std::cmp::Reverse((q.height, q.round)));
        for q in held {
            if q.height <= self.committed.height.saturating_add(1) {
                break;
            }
            let before = self.committed.height;
            self.try_commit(&q, out);
            if self.committed.height > before {
                break;
            }
        }
    }

    /// Remembers the highest certificate that could not finalize for want of blocks; it is
    /// tried again as blocks arrive and on timeouts.
    fn note_pending(&mut self, qc: &Qc) {
        if self
            .pending_commit
            .as_ref()
            .is_none_or(|p| (p.height, p.round) < (qc.height, qc.round))
        {
            self.pending_commit = Some(qc.clone());
        }
    }

    /// Keeps memory bounded: blocks, anchors and verified QCs more than [`KEEP_HEIGHTS`]
    /// below the final block are dropped (older blocks are served from storage).
    fn prune(&mut self) {
        let floor = self.committed.height.saturating_sub(KEEP_HEIGHTS);
        if floor < self.pruned_below + 64 {
            return;
        }
        self.pruned_below = floor;
        let committed_height = self.committed.height;
        self.blocks.retain(|_, p| p.block.height >= floor);
        let committed = self.committed.hash;
        self.anchors
            .retain(|h, b| b.height >= floor || *h == committed);
        self.end_qcs.retain(|_, q| q.height >= committed_height);
        self.sync_blocks
            .retain(|_, p| p.block.height > committed_height);
        let round_floor = self.committed.round.saturating_sub(KEEP_HEIGHTS);
        self.verified_qcs.retain(|_, r| *r >= round_floor);
    }

    /// The first block on the way from `hash` up to the final block that this core does not
    /// hold, if any (the application can only execute a block whose whole ancestry it has).
    fn missing_ancestor(&self, hash: Hash32) -> Option<Hash32> {
        let mut cur = hash;
        loop {
            if cur == self.committed.hash || self.anchors.contains_key(&cur) {
                return None;
            }
            match self.blocks.get(&cur) {
                // Below the final block: a fork the application refuses; nothing to fetch.
                Some(p) if p.block.height <= self.committed.height => return None,
                Some(p) => cur = p.block.parent,
                None => return Some(cur),
            }
        }
    }

    fn request(&mut self, hash: Hash32, out: &mut Vec<Action>) {
        if self.requested.insert(hash) {
            out.push(Action::Broadcast(Message::BlockRequest(hash)));
        }
    }

    fn on_block_response(&mut self, p: Proposal, out: &mut Vec<Action>) {
        if !self.requested.remove(&p.block.hash) || p.block.height <= self.committed.height {
            return;
        }
        if p.block.height > self.schedule.horizon() {
            self.keep_for_sync(p, out);
            return;
        }
        if !self.accept_proposal(&p) {
            return;
        }
        self.flush_kept(out);
        self.process_qc(p.justify.clone(), out);
        self.retry_commits(out);
    }

    fn enter_round(&mut self, r: u64, out: &mut Vec<Action>) {
        if r <= self.round && self.round != 0 {
            return;
        }
        self.round = r;
        self.checking = None;
        self.my_nil = None;
        self.votes
            .retain(|(round, _, _), _| round.saturating_add(2) >= r);
        self.voted
            .retain(|(round, _), _| round.saturating_add(2) >= r);
        self.nils.retain(|round, _| round.saturating_add(2) >= r);
        self.proposed
            .retain(|round, _| round.saturating_add(2) >= r);
        out.push(Action::SetTimer {
            round: r,
            after_ms: self.timeout_ms(),
        });
        self.act_in_round(r, out);
    }

    /// What this node does on entering round `r` (or when the last block of a set becomes
    /// final within it): propose if it leads the round, or cast its seal vote when the last
    /// block of a set awaits its seal (rule 15).
    fn act_in_round(&mut self, r: u64, out: &mut Vec<Action>) {
        let height = self.deciding_height();
        if height == self.high_qc.height {
            self.seal_vote(r, out);
            return;
        }
        // A leader that already voted or proposed in this round (before a restart) must not
        // propose again, or it would equivocate.
        if self.leader(r, height) == self.crypto.address()
            && self.safety.last_voted_round < r
            && self.safety.last_proposed_round < r
        {
            match (
                self.block_ref(&self.high_qc.block),
                self.missing_ancestor(self.high_qc.block),
            ) {
                (Some(parent), None) => out.push(Action::BuildBlock { round: r, parent }),
                (_, Some(missing)) => self.request(missing, out),
                (None, None) => self.request(self.high_qc.block, out),
            }
        }
    }

    /// Rule 15: a member of the candidate's set votes for the candidate again in round `r`, as
    /// if for a child proposed in `r` (the candidate's QC of `r - 1`, or a TC of `r - 1` whose
    /// high-QC rounds it covers); two such QCs in consecutive rounds make it final.
    fn seal_vote(&mut self, r: u64, out: &mut Vec<Action>) {
        let z = self.high_qc.clone();
        let Some(me) = self.my_index(z.height) else {
            return;
        };
        if self.safety.last_voted_round >= r || self.round != r {
            return;
        }
        if votable(z.round, r, self.last_tc.as_ref()) {
            self.cast_vote(r, z.height, z.block, me, out);
        }
    }

    /// The application built the block asked for by [`Action::BuildBlock`].
    pub fn on_block_built(&mut self, block: BlockRef, payload: Vec<u8>) -> Vec<Action> {
        let mut out = Vec::new();
        let r = self.round;
        if block.round != r
            || block.parent != self.high_qc.block
            || block.height != self.high_qc.height.saturating_add(1)
        {
            return out;
        }
        let Some(me) = self.my_index(block.height) else {
            return out;
        };
        let tc = if self.high_qc.round.saturating_add(1) == r {
            None
        } else {
            match &self.last_tc {
                Some(tc) if tc.round.saturating_add(1) == r => Some(tc.clone()),
                _ => return out,
            }
        };
        if self.safety.last_proposed_round >= r {
            return out;
        }
        self.safety.last_proposed_round = r;
        self.persist(&mut out);
        let signature = self
            .crypto
            .sign(&proposal_digest(self.nid, &self.channel, &block));
        let seal = if self.schedule.ends_at(self.high_qc.height) {
            self.seal_below(&self.high_qc)
        } else {
            None
        };
        let p = Proposal {
            block,
            payload,
            justify: self.high_qc.clone(),
            tc,
            seal,
            proposer: me,
            signature,
        };
        out.push(Action::Broadcast(Message::Proposal(p.clone())));
        self.on_proposal(p, &mut out);
        out
    }

    /// A round timer fired.
    pub fn on_timeout(&mut self, round: u64) -> Vec<Action> {
        let mut out = Vec::new();
        if round != self.round {
            return out;
        }
        match &self.my_nil {
            None => self.send_nil(&mut out),
            // Resend: messages may have been lost (a partition that healed, a restart).
            Some(n) => out.push(Action::Broadcast(Message::Nil(n.clone()))),
        }
        if let Some(tc) = &self.last_tc {
            out.push(Action::Broadcast(Message::Timeout(tc.clone())));
        }
        // The highest QC too: validators of a next set, and nodes that missed votes, cannot
        // learn it from nil votes they are not part of.
        out.push(Action::Broadcast(Message::Sync {
            high_qc: self.high_qc.clone(),
            seal: self.seal_below(&self.high_qc),
        }));
        // Retry block sync that got no answer, catch-up included.
        self.requested.clear();
        self.resume_sync_walk(&mut out);
        self.retry_commits(&mut out);
        self.failures = self.failures.saturating_add(1);
        out.push(Action::SetTimer {
            round,
            after_ms: self.timeout_ms(),
        });
        out
    }
}
