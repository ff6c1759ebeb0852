//! `nexus bench --repeat N [--compare-fresh]`: the same measurement N times, each run's JSON
//! line as it ends, then medians (and, against a fresh state, ratios) on the last line.
//!
//! On a shared machine one run's figure moves by up to 1.6x from one hour to the next, so a
//! figure worth quoting is a median of runs made in one sitting, beside the secp256k1 ceiling
//! each run measured. With `--compare-fresh`, each run on a grown state follows a run on a
//! fresh state, alternated, so both see the same minutes of the machine. With `--state-dir`,
//! every run works on a copy of the kept folder (its table files hard-linked), so each starts
//! from the same state rather than from what the run before left.

use crate::commands::bench::{self, BenchOptions};
use anyhow::{Context, Result};
use serde_json::{json, Map, Value};
use std::path::{Path, PathBuf};

/// Most runs one command makes.
pub const MAX_REPEAT: usize = 50;

/// The figures that get a median, by JSON pointer into a run's summary, and their names.
const FIGURES: [(&str, &str); 17] = [
    ("committed_tps", "/committed_tps"),
    ("accepted_tps", "/accepted_tps"),
    ("latency_ms_p50", "/latency_ms_p50"),
    ("latency_ms_p99", "/latency_ms_p99"),
    ("node_cpu_us_per_tx", "/node_cpu_us_per_tx"),
    (
        "node_cpu_us_per_tx_per_validator",
        "/node_cpu_us_per_tx_per_validator",
    ),
    ("block_interval_ms_p50", "/block_interval_ms_p50"),
    ("block_interval_ms_p99", "/block_interval_ms_p99"),
    ("block_interval_ms_max", "/block_interval_ms_max"),
    ("blocks_per_sec", "/blocks_per_sec"),
    (
        "node_cpu_ms_per_block_per_validator",
        "/node_cpu_ms_per_block_per_validator",
    ),
    (
        "secp256k1_recover_per_sec_one_core",
        "/secp256k1_recover_per_sec_one_core",
    ),
    ("rss_mib_after_run", "/first_node/rss_mib_after_run"),
    (
        "restart_after_genesis_until_rpc_s",
        "/state/restart_after_genesis_until_rpc_s",
    ),
    (
        "restart_after_run_until_rpc_s",
        "/state/restart_after_run_until_rpc_s",
    ),
    (
        "node_rss_mib_after_restart",
        "/state/node_rss_mib_after_restart",
    ),
    ("disk_bytes_per_account", "/state/disk_bytes_per_account"),
];

/// One run's figures: those of [`FIGURES`] it holds, and two derived ones:
/// `finality_ms_p99_worst` (the highest block-finality p99 of its validators) and, with
/// several validators and transfers, `share_of_yardstick` (committed transfers per second over
/// one core's recoveries per second divided among the validators, as issue 10 counts it).
pub fn figures(run: &Value) -> Map<String, Value> {
    let mut out = Map::new();
    for (name, pointer) in FIGURES {
        if let Some(x) = run.pointer(pointer).and_then(Value::as_f64) {
            out.insert(name.into(), json!(x));
        }
    }
    let worst = run["block_finality_per_validator"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v["p99_ms"].as_f64())
        .reduce(f64::max);
    if let Some(w) = worst {
        out.insert("finality_ms_p99_worst".into(), json!(w));
    }
    let validators = run["validators"].as_f64().unwrap_or(1.0);
    let ceiling = run["secp256k1_recover_per_sec_one_core"].as_f64();
    if let (true, Some(tps), Some(c)) = (validators > 1.0, run["committed_tps"].as_f64(), ceiling) {
        if c > 0.0 {
            out.insert(
                "share_of_yardstick".into(),
                json!(round(tps / (c / validators), 3)),
            );
        }
    }
    out
}

fn round(x: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (x * f).round() / f
}

/// The median of `xs` (the mean of the middle two for an even count); None when empty.
pub fn median(xs: &[f64]) -> Option<f64> {
    let mut v: Vec<f64> = xs.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    Some(if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    })
}

/// Per figure: its median over `runs` and each run's value, in run order.
fn medians(runs: &[Map<String, Value>]) -> (Map<String, Value>, Map<String, Value>) {
    let mut names: Vec<&String> = runs.iter().flat_map(|r| r.keys()).collect();
    names.sort();
    names.dedup();
    let (mut med, mut each) = (Map::new(), Map::new());
    for name in names {
        let values: Vec<Option<f64>> = runs
            .iter()
            .map(|r| r.get(name).and_then(Value::as_f64))
            .collect();
        let present: Vec<f64> = values.iter().flatten().copied().collect();
        if let Some(m) = median(&present) {
            med.insert(name.clone(), json!(round(m, 3)));
        }
        each.insert(name.clone(), json!(values));
    }
    (med, each)
}

/// The last line of a repeated bench: medians of `runs` (and of `fresh`, the runs on a fresh
/// state alternated with them, with the ratios issue 14 states: rate and p99 against fresh).
pub fn summary(runs: &[Value], fresh: &[Value]) -> Value {
    let figs: Vec<_> = runs.iter().map(figures).collect();
    let (med, each) = medians(&figs);
    let mut out = json!({
        "bench": "median of runs",
        "runs": runs.len(),
        "median": med,
        "by_run": each,
    });
    if !fresh.is_empty() {
        let figs: Vec<_> = fresh.iter().map(figures).collect();
        let (fmed, feach) = medians(&figs);
        let ratio = |name: &str| match (
            med.get(name).and_then(Value::as_f64),
            fmed.get(name).and_then(Value::as_f64),
        ) {
            (Some(a), Some(b)) if b > 0.0 => json!(round(a / b, 3)),
            _ => Value::Null,
        };
        out["rate_vs_fresh"] = ratio("committed_tps");
        out["p99_vs_fresh"] = ratio("latency_ms_p99");
        out["fresh_median"] = Value::Object(fmed);
        out["fresh_by_run"] = Value::Object(feach);
    }
    out
}

/// Copies the node folder `src` to `dst` (which must not exist): RocksDB's table files are
/// hard-linked (RocksDB never changes one once written, only deletes it, so the copy's
/// compactions leave `src` whole), everything else is copied. Falls back to copying a table
/// file that cannot be linked (another file system). Returns (files linked, files copied).
pub fn copy_state(src: &Path, dst: &Path) -> Result<(usize, usize)> {
    anyhow::ensure!(
        !dst.exists(),
        "{} exists: refusing to copy a state over it",
        dst.display()
    );
    let mut counts = (0, 0);
    copy_dir(src, dst, &mut counts)?;
    Ok(counts)
}

fn copy_dir(src: &Path, dst: &Path, counts: &mut (usize, usize)) -> Result<()> {
    std::fs::create_dir_all(dst).with_context(|| format!("creating {}", dst.display()))?;
    for entry in std::fs::read_dir(src).with_context(|| format!("reading {}", src.display()))? {
        let entry = entry?;
        let (from, to) = (entry.path(), dst.join(entry.file_name()));
        // Through symbolic links: a linked data folder is copied as the folder it names.
        let kind = std::fs::metadata(&from)
            .with_context(|| format!("reading {}", from.display()))?
            .file_type();
        if kind.is_dir() {
            copy_dir(&from, &to, counts)?;
        } else if kind.is_file() {
            let table = from.extension().is_some_and(|e| e == "sst");
            if table && std::fs::hard_link(&from, &to).is_ok() {
                counts.0 += 1;
            } else {
                std::fs::copy(&from, &to)
                    .with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
                counts.1 += 1;
            }
        }
    }
    Ok(())
}

/// Reads every table file under `dir` once, so that a run on a copied state finds it in the
/// page cache as a node that has been serving would (a linked table is the kept folder's file,
/// which the kernel may have dropped from memory since it was last read: runs at 10 million
/// accounts that read most of theirs from disk gave 0.57 of a fresh state's rate, against 0.79
/// with the tables read first). Returns the bytes read.
pub fn read_tables(dir: &Path) -> Result<u64> {
    use std::io::Read;
    let mut total = 0u64;
    let mut buf = vec![0u8; 1 << 20];
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).with_context(|| format!("reading {}", d.display()))? {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "sst") {
                let mut f = std::fs::File::open(&path)
                    .with_context(|| format!("opening {}", path.display()))?;
                loop {
                    let n = f.read(&mut buf)?;
                    if n == 0 {
                        break;
                    }
                    total += n as u64;
                }
            }
        }
    }
    Ok(total)
}

/// What a repeated bench does.
pub struct Repeat {
    /// Runs on the configured state.
    pub runs: usize,
    /// Before each, a run on a fresh state (`--accounts 0`, the same transfers).
    pub compare_fresh: bool,
    /// The kept folder of a single node (`--state-dir`): generated once when missing, then
    /// copied for each run.
    pub state_dir: Option<PathBuf>,
}

/// Prints one run's human line on stderr and its JSON on stdout.
fn report(label: &str, s: &Value) {
    eprintln!(
        "{label}: {} tx/s committed, latency p50 {} ms p99 {} ms, node CPU {} us/tx, ceiling {}/s",
        s["committed_tps"],
        s["latency_ms_p50"],
        s["latency_ms_p99"],
        s["node_cpu_us_per_tx"],
        s["secp256k1_recover_per_sec_one_core"]
    );
    println!("{s}");
}

/// A scratch folder of this process, named by `tag`.
pub fn scratch(tag: &str) -> PathBuf {
    std::env::temp_dir().join(format!("nexus-bench-{}-{tag}", std::process::id()))
}

/// One run in `dir`, removed after.
async fn run_in(opts: BenchOptions, dir: PathBuf) -> Result<Value> {
    let out = bench::run(opts, &dir).await;
    let _ = std::fs::remove_dir_all(&dir);
    out
}

/// Runs the transfer bench as `r` says; returns the summary line (printed last by the caller).
pub async fn run(opts: BenchOptions, r: &Repeat) -> Result<Value> {
    anyhow::ensure!(
        (1..=MAX_REPEAT).contains(&r.runs),
        "--repeat must be 1 to {MAX_REPEAT}, not {}",
        r.runs
    );
    anyhow::ensure!(
        !r.compare_fresh || (opts.accounts.is_some() && opts.validators == 1),
        "--compare-fresh compares one node on a grown state (--accounts N) with a fresh one"
    );
    if let Some(dir) = &r.state_dir {
        if !dir.join("config.toml").exists() {
            eprintln!(
                "generating the state in {} (kept for later runs)",
                dir.display()
            );
            bench::generate(&opts, dir).await?;
        }
    }
    let (mut runs, mut fresh) = (Vec::new(), Vec::new());
    for i in 0..r.runs {
        if r.compare_fresh {
            let o = BenchOptions {
                accounts: Some(0),
                ..opts.clone()
            };
            let s = run_in(o, scratch(&format!("fresh-{i}"))).await?;
            report(&format!("run {} of {}, fresh state", i + 1, r.runs), &s);
            fresh.push(s);
        }
        let dir = scratch(&format!("run-{i}"));
        if let Some(src) = &r.state_dir {
            let t = std::time::Instant::now();
            anyhow::ensure!(
                !dir.exists(),
                "{} exists: remove it (a run before this one left it)",
                dir.display()
            );
            // A copy that fails part way is removed: the folder is this run's own.
            let copy = copy_state(src, &dir).and_then(|c| Ok((c, read_tables(&dir)?)));
            let ((linked, copied), bytes) = match copy {
                Ok(c) => c,
                Err(e) => {
                    let _ = std::fs::remove_dir_all(&dir);
                    return Err(e.context(format!("copying the kept state {}", src.display())));
                }
            };
            eprintln!(
                "state copied ({linked} tables linked, {copied} files copied) and its {} MB of tables read into the page cache in {:.1} s",
                bytes >> 20,
                t.elapsed().as_secs_f64()
            );
        }
        let s = run_in(opts.clone(), dir).await?;
        report(&format!("run {} of {}", i + 1, r.runs), &s);
        runs.push(s);
    }
    Ok(summary(&runs, &fresh))
}

/// Runs the empty-block bench `runs` times; returns the summary line.
pub async fn run_empty(opts: BenchOptions, seconds: u64, runs: usize) -> Result<Value> {
    anyhow::ensure!(
        (1..=MAX_REPEAT).contains(&runs),
        "--repeat must be 1 to {MAX_REPEAT}, not {runs}"
    );
    let mut all = Vec::new();
    for i in 0..runs {
        let dir = scratch(&format!("empty-{i}"));
        let s = bench::run_empty(opts.clone(), &dir, seconds).await;
        let _ = std::fs::remove_dir_all(&dir);
        let s = s?;
        eprintln!(
            "run {} of {runs}: {} empty blocks/s, interval p50 {} ms p99 {} ms",
            i + 1,
            s["blocks_per_sec"],
            s["block_interval_ms_p50"],
            s["block_interval_ms_p99"]
        );
        println!("{s}");
        all.push(s);
    }
    Ok(summary(&all, &[]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_take_the_middle_run_or_the_mean_of_the_middle_two() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&[7.0]), Some(7.0));
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[f64::NAN, 1.0, f64::INFINITY]), Some(1.0));
    }

    fn single(tps: f64, p99: f64, ceiling: f64) -> Value {
        json!({
            "validators": 1, "committed_tps": tps, "latency_ms_p99": p99,
            "secp256k1_recover_per_sec_one_core": ceiling,
            "state": {"restart_after_run_until_rpc_s": 1.2}, "first_node": {"rss_mib_after_run": 340.0},
        })
    }

    #[test]
    fn a_grown_state_is_compared_with_the_fresh_runs_median_to_median() {
        let grown = [
            single(9_000.0, 75.0, 25_000.0),
            single(8_000.0, 90.0, 20_000.0),
            single(9_500.0, 70.0, 25_000.0),
        ];
        let fresh = [
            single(12_000.0, 50.0, 25_000.0),
            single(10_000.0, 60.0, 20_000.0),
            single(12_500.0, 45.0, 25_000.0),
        ];
        let s = summary(&grown, &fresh);
        assert_eq!(s["runs"], json!(3));
        assert_eq!(s["median"]["committed_tps"], json!(9_000.0));
        assert_eq!(s["fresh_median"]["committed_tps"], json!(12_000.0));
        assert_eq!(s["rate_vs_fresh"], json!(0.75));
        assert_eq!(s["p99_vs_fresh"], json!(1.5));
        assert_eq!(s["median"]["restart_after_run_until_rpc_s"], json!(1.2));
        assert_eq!(s["median"]["rss_mib_after_run"], json!(340.0));
        assert_eq!(
            s["by_run"]["committed_tps"],
            json!([9_000.0, 8_000.0, 9_500.0])
        );
        assert!(s["median"].get("share_of_yardstick").is_none(), "one node");
        // Without fresh runs there are no ratios.
        let s = summary(&grown, &[]);
        assert!(s.get("rate_vs_fresh").is_none());
    }

    #[test]
    fn validators_get_the_worst_finality_and_their_share_of_the_yardstick() {
        let run = json!({
            "validators": 4, "committed_tps": 4_500.0,
            "secp256k1_recover_per_sec_one_core": 24_000.0,
            "block_finality_per_validator": [
                {"p99_ms": 48.0}, {"p99_ms": 61.5}, {"p99_ms": null}, {"p99_ms": 50.0}
            ],
        });
        let f = figures(&run);
        assert_eq!(f["finality_ms_p99_worst"], json!(61.5));
        assert_eq!(f["share_of_yardstick"], json!(0.75));
        // A run that lacks a figure leaves it out of that figure's median, not as zero.
        let s = summary(
            &[
                run.clone(),
                json!({"validators": 4, "committed_tps": 3_000.0}),
            ],
            &[],
        );
        assert_eq!(s["median"]["committed_tps"], json!(3_750.0));
        assert_eq!(s["median"]["finality_ms_p99_worst"], json!(61.5));
        assert_eq!(s["by_run"]["finality_ms_p99_worst"], json!([61.5, null]));
    }

    #[test]
    fn a_copied_state_links_its_tables_and_leaves_the_source_as_it_was() {
        let root = tempfile::tempdir().unwrap();
        let src = root.path().join("src");
        std::fs::create_dir_all(src.join("data")).unwrap();
        std::fs::write(src.join("config.toml"), "x = 1\n").unwrap();
        std::fs::write(src.join("data/000001.sst"), b"table").unwrap();
        std::fs::write(src.join("data/MANIFEST-000002"), b"manifest").unwrap();
        // A symbolic link is copied as what it names.
        std::os::unix::fs::symlink(src.join("config.toml"), src.join("linked.toml")).unwrap();
        let dst = root.path().join("dst");
        assert_eq!(copy_state(&src, &dst).unwrap(), (1, 3));
        assert!(!dst.join("linked.toml").is_symlink());
        assert_eq!(std::fs::read(dst.join("linked.toml")).unwrap(), b"x = 1\n");
        assert_eq!(
            std::fs::read(dst.join("data/000001.sst")).unwrap(),
            b"table"
        );
        // The copy's appends and deletions do not reach the source.
        std::fs::write(dst.join("data/MANIFEST-000002"), b"changed").unwrap();
        std::fs::remove_file(dst.join("data/000001.sst")).unwrap();
        assert_eq!(
            std::fs::read(src.join("data/MANIFEST-000002")).unwrap(),
            b"manifest"
        );
        assert_eq!(
            std::fs::read(src.join("data/000001.sst")).unwrap(),
            b"table"
        );
        assert_eq!(read_tables(&src).unwrap(), 5, "the one table's bytes");
        let e = copy_state(&src, &dst).unwrap_err();
        assert!(e.to_string().contains("exists"), "{e}");
        // A link to nothing is an error that names it, not a file silently left out.
        std::os::unix::fs::symlink(root.path().join("gone"), src.join("dangling")).unwrap();
        let e = copy_state(&src, &root.path().join("dst2")).unwrap_err();
        assert!(format!("{e:#}").contains("dangling"), "{e:#}");
    }
}
