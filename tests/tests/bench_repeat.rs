//! `nexus bench --repeat 2 --compare-fresh` on a kept state: four real node runs (two on a fresh
//! state, alternated with two on the kept one), each run's JSON line, medians and ratios on the
//! last line, and the kept folder as it was before.

use nexus_tests::nexus_bin;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;

/// Every file under `dir` with its length and modification time.
fn listing(dir: &Path) -> BTreeMap<String, (u64, std::time::SystemTime)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read dir") {
            let e = e.expect("entry");
            let m = e.metadata().expect("metadata");
            if m.is_dir() {
                stack.push(e.path());
            } else {
                let name = e
                    .path()
                    .strip_prefix(dir)
                    .expect("under dir")
                    .display()
                    .to_string();
                out.insert(name, (m.len(), m.modified().expect("mtime")));
            }
        }
    }
    out
}

fn bench(args: &[&str]) -> (Vec<Value>, String) {
    let out = std::process::Command::new(nexus_bin())
        .arg("bench")
        .args(args)
        .output()
        .expect("runs nexus bench");
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "nexus bench failed:\n{stderr}");
    let lines = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    (lines, stderr)
}

#[test]
fn repeated_runs_alternate_with_a_fresh_state_and_leave_the_kept_state_whole() {
    let root = tempfile::tempdir().expect("tempdir");
    let kept = root.path().join("state");
    let common = [
        "--accounts",
        "3000",
        "--txs",
        "200",
        "--clients",
        "4",
        "--state-dir",
    ];
    let mut args: Vec<&str> = common.to_vec();
    args.push(kept.to_str().expect("utf-8 path"));

    // The first command generates the kept state, then measures on copies of it.
    args.extend(["--repeat", "2", "--compare-fresh"]);
    let (lines, stderr) = bench(&args);
    assert!(stderr.contains("generating the state"), "{stderr}");
    assert_eq!(lines.len(), 5, "four runs and the summary: {lines:?}");
    let kinds: Vec<&str> = lines[..4]
        .iter()
        .map(|l| {
            l["state"]["accounts_before"].as_u64().map_or("?", |n| {
                if n == 0 {
                    "fresh"
                } else {
                    "kept"
                }
            })
        })
        .collect();
    assert_eq!(kinds, ["fresh", "kept", "fresh", "kept"]);
    for l in &lines[..4] {
        assert_eq!(l["committed"], 200, "{l}");
        assert_eq!(l["recipients"], "a new account per transfer");
        // Commit times come from the node's block monitor, not from the block fetches.
        assert_eq!(l["commit_seen_by"], "block monitor", "{l}");
    }
    let s = &lines[4];
    assert_eq!(s["bench"], "median of runs");
    assert_eq!(s["runs"], 2);
    let tps: Vec<f64> = [&lines[1], &lines[3]]
        .iter()
        .map(|l| l["committed_tps"].as_f64().expect("tps"))
        .collect();
    assert_eq!(
        s["median"]["committed_tps"].as_f64(),
        Some((tps[0] + tps[1]) / 2.0)
    );
    assert_eq!(s["by_run"]["committed_tps"], serde_json::json!(tps));
    let ratio = s["rate_vs_fresh"].as_f64().expect("a rate ratio");
    let fresh = s["fresh_median"]["committed_tps"]
        .as_f64()
        .expect("fresh median");
    assert!((ratio - s["median"]["committed_tps"].as_f64().unwrap() / fresh).abs() < 0.001);
    assert!(s["p99_vs_fresh"].as_f64().is_some(), "{s}");
    // Both runs on the kept state started from the same 3,000 accounts and 4 senders: each
    // run's disk per account counts the accounts before it plus its own 200.
    for l in [&lines[1], &lines[3]] {
        assert_eq!(l["state"]["accounts_before"], 3000);
    }

    // A second command reuses the kept folder without writing to it.
    let before = listing(&kept);
    assert!(before.keys().any(|k| k.ends_with(".sst")), "{before:?}");
    args.truncate(common.len() + 1);
    args.extend(["--repeat", "1", "--compare-fresh"]);
    let (lines, stderr) = bench(&args);
    assert!(!stderr.contains("generating the state"), "{stderr}");
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert_eq!(listing(&kept), before, "the kept folder changed");
}
