//! One Byzantine validator of four, as a real process over libp2p (the `byzantine` test binary
//! with validator 3's keys), misbehaving one way per test. The three honest validators must keep
//! finalizing (blocks and transfers), agree on every block, and stay within [`MEMORY_BOUND_MB`]
//! of resident memory; where the misbehaviour is provable from one message, they cut the
//! attacker off.

use nexus_proto::Address;
use nexus_tests::{height, same_chain, transfer, Cluster};
use serde_json::Value;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Resident memory an honest validator may use under attack (the README's security model).
const MEMORY_BOUND_MB: u64 = 512;

/// Blocks the honest validators must finalize while under attack.
const BLOCKS_UNDER_ATTACK: u64 = 12;

struct Attacker {
    child: Child,
    log: PathBuf,
}

impl Attacker {
    fn start(c: &Cluster, behaviour: &str) -> Self {
        let log = c.dir.path().join("byzantine.log");
        let out = std::fs::File::create(&log).expect("log");
        let child = Command::new(env!("CARGO_BIN_EXE_byzantine"))
            .arg("--config")
            .arg(&c.init.nodes[3].config)
            .args(["--behaviour", behaviour])
            .env("RUST_LOG", "warn")
            .stdout(out.try_clone().expect("log"))
            .stderr(out)
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn the byzantine validator");
        Attacker { child, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// How many times the attacker reported `step` (its log has a line per power of two).
    fn count(&self, step: &str) -> u64 {
        let prefix = format!("attack {step} ");
        self.log()
            .lines()
            .filter_map(|l| l.strip_prefix(&prefix))
            .filter_map(|n| n.trim().parse().ok())
            .max()
            .unwrap_or(0)
    }

    /// Waits until the attacker reports each step at least as often as asked.
    async fn wait_for(&mut self, steps: &[(&str, u64)]) {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            if steps.iter().all(|(s, n)| self.count(s) >= *n) {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "the byzantine validator exited with {status}:\n{}",
                    self.log()
                );
            }
            assert!(
                Instant::now() < deadline,
                "the attack did not happen within 90 s (want {steps:?}):\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Attacker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Resident memory of a process, in MiB.
fn rss_mb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .expect("VmRSS")
        / 1024
}

/// Waits until every validator in `which` is at least `blocks` above `from`.
async fn advance(c: &Cluster, which: &[usize], from: u64, blocks: u64, under: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    for i in which {
        while height(&c.rpc(*i)).await < from + blocks {
            assert!(
                Instant::now() < deadline,
                "validator {i} stalled under {under} at height {}:\n{}",
                height(&c.rpc(*i)).await,
                c.log(*i)
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Runs `behaviour` against three honest validators: once the attacker has done each step
/// (name, times) they must still finalize transfers and blocks, agree on every block, and stay
/// within memory; `cut_off` says whether one of them must (or must not) have cut the attacker off.
async fn honest_three_withstand(behaviour: &str, steps: &[(&str, u64)], cut_off: Ban) {
    let c = Cluster::start_all_but_last(4);
    let honest = [0usize, 1, 2];
    let mut attacker = Attacker::start(&c, behaviour);
    let first: Vec<(&str, u64)> = steps.iter().map(|(s, _)| (*s, 1)).collect();
    attacker.wait_for(&first).await;

    // Under attack: transfers sent to each honest validator become final...
    let god = c.funded_key();
    let to = Address::eoa([0x77; 20]);
    for n in 0..6u128 {
        let rpc = c.rpc(honest[n as usize % 3]);
        let st = transfer(&god, to, 1 + n, n);
        let r: Value = rpc
            .call_with(
                rpc.url(),
                "icx_sendTransactionAndWait",
                Value::Object(st.raw),
                &[("Icon-Options", "timeout=30000")],
            )
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "transfer {n} under {behaviour}: {e}\nattacker:\n{}\nvalidator 0:\n{}",
                    attacker.log(),
                    c.log(0)
                )
            });
        assert_eq!(r["status"], "0x1", "{r}");
    }
    // ...the attack goes on as long as asked, and blocks keep coming on all three after it.
    attacker.wait_for(steps).await;
    let now = height(&c.rpc(0)).await;
    advance(&c, &honest, now, BLOCKS_UNDER_ATTACK, behaviour).await;
    same_chain(&c, &honest).await;
    for i in honest {
        let mb = rss_mb(c.pid(i).expect("running"));
        println!("validator {i} under {behaviour}: {mb} MiB resident");
        assert!(
            mb <= MEMORY_BOUND_MB,
            "validator {i} holds {mb} MiB under {behaviour} (bound {MEMORY_BOUND_MB} MiB)"
        );
    }
    if std::env::var("NEXUS_TEST_LOG").is_ok() {
        for l in c.log(0).lines().filter(|l| l.contains("refused")).take(20) {
            println!("{l}");
        }
    }
    let banned = honest
        .iter()
        .any(|i| c.log(*i).contains("too many invalid messages; cut off"));
    let expected = match cut_off {
        Ban::Must => Some(true),
        Ban::MustNot => Some(false),
        Ban::May => None,
    };
    if let Some(expected) = expected {
        assert_eq!(
            banned,
            expected,
            "under {behaviour}, the attacker was {}cut off",
            if banned { "" } else { "not " }
        );
    }
}

/// Whether the honest validators must cut the attacker off.
#[derive(Clone, Copy)]
enum Ban {
    /// Every offence is a strike and the attack makes ten well within the test.
    Must,
    /// What the attacker does could come from an honest node (a peer ahead, say): no strike.
    MustNot,
    /// Each offence is a strike but how many the run makes depends on timing: either is right.
    May,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn equivocating_leader_and_voter() {
    honest_three_withstand(
        "equivocate",
        &[
            ("equivocating-proposal", 4),
            ("equivocating-vote", 16),
            ("equivocating-nil", 4),
        ],
        // Equivocation is never honest; each one counts against the attacker, and a faster
        // run reaches ten before the test ends.
        Ban::May,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn far_future_block_timestamps() {
    honest_three_withstand(
        "future-timestamp",
        &[("future-timestamp-proposal", 4)],
        Ban::MustNot,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_proposals() {
    honest_three_withstand("oversized", &[("oversized-proposal", 4)], Ban::MustNot).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificates_with_garbage_votes() {
    honest_three_withstand(
        "garbage-qc",
        &[
            ("garbage-high-qc-nil", 2),
            ("garbage-tc", 2),
            ("garbage-qc-proposal", 1),
        ],
        Ban::Must,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn votes_for_other_heights() {
    honest_three_withstand("other-heights", &[("other-height-vote", 8)], Ban::Must).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn floods_of_future_rounds_and_heights() {
    honest_three_withstand(
        "future-rounds",
        &[
            ("future-vote", 2048),
            ("future-nil", 2048),
            ("future-proposal", 256),
        ],
        Ban::MustNot,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn block_request_loops() {
    honest_three_withstand(
        "block-requests",
        &[("block-request", 4096), ("gossip-block-request", 2)],
        Ban::Must,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undecodable_and_badly_signed_gossip() {
    honest_three_withstand(
        "garbage-gossip",
        &[
            ("undecodable-consensus", 8),
            ("undecodable-txs", 8),
            ("wrong-key-vote", 1),
            ("garbage-signature-vote", 1),
            ("garbage-tc", 1),
        ],
        Ban::Must,
    )
    .await;
}
