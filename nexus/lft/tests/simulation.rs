//! Deterministic simulation of LFT: n = 4 validators in one process on a seeded virtual
//! network (latency, jitter, loss, partitions that heal), a virtual clock, crash and restart
//! from persisted state, and one Byzantine validator of each kind. Checked on every commit:
//! no two honest validators finalize different blocks at one height, every final block has a
//! valid QC, and chains grow parent by parent. Checked at the end: after every fault has
//! healed, every honest validator finalizes again. A seed reproduces a run exactly.
//!
//! Longer run: `LFT_SEEDS=20000 cargo test --release -p nexus-lft --test simulation -- --nocapture`

mod sim;

use nexus_lft::{ValidatorSchedule, ValidatorSet};
use sim::{Ev, Sim, KINDS, N};

/// One seeded run: faults (Byzantine kind, partition, crash, loss) drawn from the seed.
fn run(seed: u64) -> (Vec<u64>, u64) {
    let byz = KINDS[(seed % KINDS.len() as u64) as usize];
    let mut sim = Sim::new(seed, byz);
    // As a Nexus node: sets certain only up to the final height plus a margin.
    sim.announce = Some((0, nexus_lft::FUTURE_HEIGHTS));
    for i in 0..N {
        sim.boot(i);
    }
    let mut heal = 0;
    if sim.rng.chance(50) {
        let side: Vec<bool> = if sim.rng.chance(50) {
            vec![true, true, false, false]
        } else {
            (0..N)
                .map(|k| k as u64 == sim.rng.below(N as u64))
                .collect()
        };
        let from = sim.rng.below(2_000);
        let until = from + 500 + sim.rng.below(2_500);
        sim.partition = Some((side, from, until));
        heal = heal.max(until);
    }
    if sim.rng.chance(35) {
        // Crash an honest node and bring it back from its persisted state.
        let victim = (0..N)
            .find(|k| sim.nodes[*k].byz.is_none() && sim.rng.chance(50))
            .unwrap_or_else(|| (0..N).find(|k| sim.nodes[*k].byz.is_none()).unwrap_or(0));
        let at = 200 + sim.rng.below(2_000);
        let back = at + 200 + sim.rng.below(2_000);
        sim.schedule(at, Ev::Crash(victim));
        sim.schedule(back, Ev::Restart(victim));
        heal = heal.max(back);
    }
    if sim.rng.chance(30) {
        sim.loss_percent = 1 + sim.rng.below(5);
    }
    sim.run_until(heal);
    let at_heal = sim.honest_heights();
    sim.run_until(heal + 8_000);
    let after = sim.honest_heights();
    if std::env::var("LFT_DEBUG").is_ok() {
        eprintln!(
            "seed {seed} byz {byz:?} partition {:?} loss {} heal {heal}",
            sim.partition, sim.loss_percent
        );
        for (k, n) in sim.nodes.iter().enumerate() {
            if let Some(c) = &n.core {
                eprintln!(
                    "node {k} byz {:?} round {} high_qc r{} h{} committed h{} r{} persisted {:?}",
                    n.byz,
                    c.round(),
                    c.high_qc().round,
                    c.high_qc().height,
                    c.committed().height,
                    c.committed().round,
                    n.persisted
                );
            } else {
                eprintln!("node {k} down");
            }
        }
    }
    for (k, (a, b)) in at_heal.iter().zip(&after).enumerate() {
        assert!(
            b >= &(a + 3),
            "seed {seed} ({byz:?}): honest node {k} finalized only {a} -> {b} in 8 s after the faults healed at {heal} ms"
        );
    }
    (after, sim.delivered)
}

#[test]
fn debug_one_seed() {
    if let Some(seed) = std::env::var("LFT_DEBUG").ok().and_then(|s| s.parse().ok()) {
        run(seed);
    }
}

#[test]
fn a_seed_reproduces_a_run_exactly() {
    for seed in [1u64, 7, 12_345] {
        assert_eq!(run(seed), run(seed));
    }
}

#[test]
fn thousand_seeds_with_byzantine_validators_partitions_and_crashes() {
    let seeds: u64 = std::env::var("LFT_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000);
    let mut total_height = 0;
    for seed in 0..seeds {
        let (heights, _) = run(seed);
        total_height += heights.iter().min().copied().unwrap_or(0);
    }
    println!(
        "{seeds} seeds passed; mean final height of the slowest honest node {:.1}",
        total_height as f64 / seeds as f64
    );
}

#[test]
fn no_faults_means_one_block_per_round() {
    let mut sim = Sim::new(99, None);
    for i in 0..N {
        sim.boot(i);
    }
    sim.run_until(5_000);
    let h = sim.honest_heights();
    // Rounds take about two message delays (5..45 ms each): well over 40 blocks in 5 s.
    assert!(h.iter().all(|x| *x > 40), "{h:?}");
    let rounds = sim.nodes[0].core.as_ref().map(|c| c.round()).unwrap_or(0);
    assert!(
        rounds <= h[0] + 5,
        "no round should fail without faults: {rounds} rounds, height {}",
        h[0]
    );
}

#[test]
fn validator_set_changes_at_an_explicit_height() {
    const CHANGE: u64 = 8;
    for seed in 0..50 {
        // Node 3 leaves and node 4 joins at height 8; node 4 follows as an observer until then.
        let mut sim = Sim::with_nodes(seed, None, 5, |a| {
            let mut s = ValidatorSchedule::new(ValidatorSet {
                members: a[..4].to_vec(),
            });
            s.change_at(
                CHANGE,
                ValidatorSet {
                    members: vec![a[0], a[1], a[2], a[4]],
                },
            );
            s
        });
        for i in 0..5 {
            sim.boot(i);
        }
        // Once the new set is in charge, crash node 0: blocks can then be final only with the
        // new member's votes (quorum 3 of {1, 2, 4}).
        sim.run_until(1_500);
        let at_crash = sim.nodes[1].chain.len() as u64;
        assert!(
            at_crash > CHANGE,
            "seed {seed}: only {at_crash} blocks before the crash"
        );
        sim.schedule(1_500, Ev::Crash(0));
        sim.run_until(6_000);
        let leaver = sim.addrs[3];
        for (k, n) in sim.nodes.iter().enumerate().skip(1) {
            let h = n.chain.last().map(|(b, _)| b.height).unwrap_or(0);
            assert!(
                h > at_crash + 10,
                "seed {seed}: node {k} stopped at {h} (crash at {at_crash})"
            );
            for (b, qc) in &n.chain {
                let set = sim.schedule.at(b.height);
                assert_eq!(set.members.contains(&leaver), b.height < CHANGE);
                assert!(qc
                    .votes
                    .iter()
                    .all(|(i, _)| (*i as usize) < set.members.len()));
            }
        }
    }
}

/// A validator down while the others finalize more than `MAX_SYNC_BLOCKS` + 64 blocks comes
/// back with a schedule certain only 64 heights above its final block: it catches up in steps
/// (keeping the lowest fetched blocks, judging them, walking down again) and votes again.
#[test]
fn a_validator_far_behind_catches_up_in_steps() {
    let mut sim = Sim::new(5, None);
    sim.announce = Some((0, nexus_lft::FUTURE_HEIGHTS));
    for i in 0..N {
        sim.boot(i);
    }
    sim.schedule(50, Ev::Crash(3));
    let gap = nexus_lft::MAX_SYNC_BLOCKS as u64 + 2 * nexus_lft::FUTURE_HEIGHTS;
    let mut t = 0;
    while (sim.nodes[0].chain.len() as u64) < gap {
        t += 1_000;
        assert!(t < 600_000, "the others did not get {gap} blocks ahead");
        sim.run_until(t);
    }
    sim.schedule(t, Ev::Restart(3));
    let target = sim.nodes[0].chain.len() as u64;
    let mut until = t;
    while (sim.nodes[3].chain.len() as u64) < target {
        until += 1_000;
        assert!(
            until < t + 120_000,
            "validator 3 stopped at {} of {target}",
            sim.nodes[3].chain.len()
        );
        sim.run_until(until);
    }
}
