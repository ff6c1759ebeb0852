//! Pacing of this node's block requests: each peer is asked at most a set number of times per
//! second, under the rate past which peers stop answering and count requests against the
//! asker (`BLOCK_REQUESTS_PER_SEC` in the LFT runtime). A validator catching up walks back
//! parent by parent as fast as answers come; unpaced, it was cut off by every peer within ten
//! seconds and never caught up. Requests that find no peer with budget left wait, in order.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::time::{Duration, Instant};

/// Block requests waiting for a peer with budget, at most; the oldest are dropped past it
/// (consensus asks again on its next timeout).
pub const MAX_WAITING: usize = 4096;

/// Counts per key in one-second windows, each starting at the key's first count after the last
/// one ended (used for requests sent to each peer here, and for requests each peer sends us in
/// the LFT runtime).
pub struct SecondCounts<K> {
    counts: HashMap<K, (Instant, u32)>,
}

impl<K: Copy + Eq + Hash> Default for SecondCounts<K> {
    fn default() -> Self {
        SecondCounts {
            counts: HashMap::new(),
        }
    }
}

impl<K: Copy + Eq + Hash> SecondCounts<K> {
    /// The count of `key` in its window at `now` (a new window starts at 0); once more than
    /// `keep` keys are held, those whose windows have ended are dropped first.
    pub fn current(&mut self, key: K, now: Instant, keep: usize) -> &mut u32 {
        if self.counts.len() > keep {
            self.counts
                .retain(|_, (t, _)| now.duration_since(*t) < Duration::from_secs(1));
        }
        let e = self.counts.entry(key).or_insert((now, 0));
        if now.duration_since(e.0) >= Duration::from_secs(1) {
            *e = (now, 0);
        }
        &mut e.1
    }
}

/// Per-peer budgets of requests per second, and the requests waiting for one.
pub struct RequestPacer<P, R> {
    per_sec: u32,
    sent: SecondCounts<P>,
    waiting: VecDeque<R>,
    turn: usize,
}

impl<P: Copy + Eq + Hash, R: PartialEq> RequestPacer<P, R> {
    /// A pacer allowing `per_sec` requests to each peer per second.
    pub fn new(per_sec: u32) -> Self {
        RequestPacer {
            per_sec,
            sent: SecondCounts::default(),
            waiting: VecDeque::new(),
            turn: 0,
        }
    }

    /// Changes the budget of each peer per second.
    pub fn set_rate(&mut self, per_sec: u32) {
        self.per_sec = per_sec;
    }

    /// Up to `fanout` of `peers` with budget left at `now` (starting one further along each
    /// time, so that load spreads), each charged one request; empty when none has budget.
    pub fn pick(&mut self, now: Instant, peers: &[P], fanout: usize) -> Vec<P> {
        let keep = 4 * peers.len() + 64;
        let mut out = Vec::new();
        let n = peers.len();
        self.turn = self.turn.wrapping_add(1);
        for i in 0..n {
            if out.len() == fanout {
                break;
            }
            let p = peers[(self.turn + i) % n];
            let sent = self.sent.current(p, now, keep);
            if *sent < self.per_sec {
                *sent += 1;
                out.push(p);
            }
        }
        out
    }

    /// Keeps `request` until a peer has budget (once; the oldest go past [`MAX_WAITING`]).
    pub fn wait(&mut self, request: R) {
        if self.waiting.contains(&request) {
            return;
        }
        if self.waiting.len() >= MAX_WAITING {
            self.waiting.pop_front();
        }
        self.waiting.push_back(request);
    }

    /// The waiting requests, oldest first (those that still find no peer are waited again).
    pub fn take_waiting(&mut self) -> VecDeque<R> {
        std::mem::take(&mut self.waiting)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_peer_gets_at_most_its_budget_per_second_and_then_again() {
        let mut p: RequestPacer<u8, u32> = RequestPacer::new(3);
        let t0 = Instant::now();
        let mut per_peer = [0; 2];
        for _ in 0..10 {
            for peer in p.pick(t0, &[0, 1], 4) {
                per_peer[peer as usize] += 1;
            }
        }
        assert_eq!(per_peer, [3, 3]);
        assert!(p
            .pick(t0 + Duration::from_millis(999), &[0, 1], 4)
            .is_empty());
        assert_eq!(p.pick(t0 + Duration::from_secs(1), &[0, 1], 4).len(), 2);
    }

    #[test]
    fn requests_spread_over_peers_when_the_fanout_is_smaller() {
        let mut p: RequestPacer<u8, u32> = RequestPacer::new(100);
        let t0 = Instant::now();
        let mut per_peer = [0; 3];
        for _ in 0..30 {
            let got = p.pick(t0, &[0, 1, 2], 1);
            assert_eq!(got.len(), 1);
            per_peer[got[0] as usize] += 1;
        }
        assert_eq!(per_peer, [10, 10, 10]);
    }

    #[test]
    fn waiting_requests_are_kept_once_in_order_and_bounded() {
        let mut p: RequestPacer<u8, u32> = RequestPacer::new(1);
        p.wait(1);
        p.wait(2);
        p.wait(1);
        assert_eq!(p.take_waiting(), VecDeque::from([1, 2]));
        assert!(p.take_waiting().is_empty());
        for r in 0..MAX_WAITING as u32 + 5 {
            p.wait(r);
        }
        let w = p.take_waiting();
        assert_eq!(w.len(), MAX_WAITING);
        assert_eq!(w.front(), Some(&5));
    }
}
