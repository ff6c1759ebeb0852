//! Backpressure on `icx_sendTransaction`: how many transactions may wait for a block before new
//! ones wait at the door instead.
//!
//! A node that admits transactions faster than its blocks take them builds a queue whose delay
//! grows without bound (at 10 million accounts, blocks take fewer per second than admission
//! checks, and a burst of 30,000 waited more than a second for its block). The bound follows the
//! node's own speed: `target_ms` worth of what blocks took out of the pool over the last second,
//! and never less than `min_txs`, so a burst into an idle node is taken at once.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// The span over which the drain rate is measured.
const WINDOW: Duration = Duration::from_secs(1);

/// Transactions taken out of the pool by committed blocks, over the last second (`WINDOW`).
#[derive(Debug, Default)]
pub struct DrainRate {
    blocks: VecDeque<(Instant, usize)>,
    sum: usize,
}

impl DrainRate {
    /// Records a block of `txs` committed at `at`.
    pub fn record(&mut self, at: Instant, txs: usize) {
        self.forget(at);
        self.blocks.push_back((at, txs));
        self.sum += txs;
    }

    /// Transactions per second committed in the window before `now`.
    pub fn per_second(&mut self, now: Instant) -> f64 {
        self.forget(now);
        self.sum as f64 / WINDOW.as_secs_f64()
    }

    fn forget(&mut self, now: Instant) {
        while let Some(&(at, n)) = self.blocks.front() {
            if now.saturating_duration_since(at) <= WINDOW {
                break;
            }
            self.blocks.pop_front();
            self.sum -= n;
        }
    }
}

/// How many transactions may wait for a block before admission waits: `target_ms` of the drain
/// rate, at least `min_txs`.
pub fn limit(per_second: f64, target_ms: u64, min_txs: usize) -> usize {
    let by_rate = per_second * target_ms as f64 / 1000.0;
    if by_rate.is_finite() && by_rate > min_txs as f64 {
        by_rate.min(usize::MAX as f64) as usize
    } else {
        min_txs
    }
}

/// The fewest waiting transactions that never make admission wait on a channel of
/// `validators`. Several validators decide one block per round (round trips, votes, a synced
/// write each), so a full block (`block_max_txs`) may always wait, or rounds would carry small
/// blocks; one validator builds blocks back to back, and `min_txs` keeps its tail short.
pub fn floor(validators: usize, min_txs: usize, block_max_txs: usize) -> usize {
    if validators > 1 {
        min_txs.max(block_max_txs)
    } else {
        min_txs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rate_counts_only_the_last_second() {
        let t0 = Instant::now();
        let mut r = DrainRate::default();
        assert_eq!(r.per_second(t0), 0.0);
        r.record(t0, 300);
        r.record(t0 + Duration::from_millis(500), 200);
        assert_eq!(r.per_second(t0 + Duration::from_millis(900)), 500.0);
        // The first block leaves the window, then the second.
        assert_eq!(r.per_second(t0 + Duration::from_millis(1100)), 200.0);
        assert_eq!(r.per_second(t0 + Duration::from_millis(1600)), 0.0);
        r.record(t0 + Duration::from_secs(3), 7);
        assert_eq!(r.per_second(t0 + Duration::from_secs(3)), 7.0);
    }

    #[test]
    fn the_limit_follows_the_rate_above_its_floor() {
        assert_eq!(limit(9_000.0, 100, 500), 900);
        assert_eq!(limit(3_000.0, 100, 500), 500, "the floor");
        assert_eq!(limit(0.0, 100, 500), 500, "an idle node takes a burst");
        assert_eq!(limit(f64::INFINITY, 100, 500), 500);
        assert_eq!(limit(f64::NAN, 100, 500), 500);
        assert_eq!(limit(1e30, u64::MAX, 1), usize::MAX);
    }

    #[test]
    fn several_validators_always_let_a_full_block_wait() {
        assert_eq!(floor(4, 500, 1_000), 1_000);
        assert_eq!(floor(4, 2_000, 1_000), 2_000);
        assert_eq!(
            floor(1, 500, 5_000),
            500,
            "one validator keeps the configured floor"
        );
    }
}
