//! Validator sets and the heights at which they change.

use nexus_proto::Address;

/// One validator set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidatorSet {
    /// Validators in order (index = position).
    pub members: Vec<Address>,
}

impl ValidatorSet {
    /// Votes needed: `floor(2n/3) + 1`.
    pub fn quorum(&self) -> usize {
        self.members.len() * 2 / 3 + 1
    }

    /// Most faulty validators tolerated: `floor((n-1)/3)`.
    pub fn max_faulty(&self) -> usize {
        self.members.len().saturating_sub(1) / 3
    }

    /// Position of `a`.
    pub fn index_of(&self, a: &Address) -> Option<usize> {
        self.members.iter().position(|m| m == a)
    }
}

/// Validator sets by the height from which each applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidatorSchedule {
    entries: Vec<(u64, ValidatorSet)>,
    known_through: u64,
}

impl ValidatorSchedule {
    /// A schedule starting with `genesis` at height 0.
    pub fn new(genesis: ValidatorSet) -> Self {
        ValidatorSchedule {
            entries: vec![(0, genesis)],
            known_through: u64::MAX,
        }
    }

    /// Declares the schedule complete only through `height`: changes for later heights may
    /// exist that this node has not learned yet (a node's schedule comes from its final state,
    /// and a change is announced a margin ahead). Certificates above it are not judged.
    pub fn known_through(mut self, height: u64) -> Self {
        self.known_through = height;
        self
    }

    /// The last height whose set this schedule is sure of.
    pub fn horizon(&self) -> u64 {
        self.known_through
    }

    /// Adds a set that applies from `height` on (heights must increase).
    pub fn change_at(&mut self, height: u64, set: ValidatorSet) {
        self.entries.retain(|(h, _)| *h < height);
        self.entries.push((height, set));
    }

    /// True when `height` is the last height of its set (the next height has another).
    pub fn ends_at(&self, height: u64) -> bool {
        self.at(height) != self.at(height.saturating_add(1))
    }

    /// The set that votes on blocks at `height`.
    pub fn at(&self, height: u64) -> &ValidatorSet {
        let mut cur = &self.entries[0].1;
        for (h, s) in &self.entries {
            if *h <= height {
                cur = s;
            }
        }
        cur
    }
}
