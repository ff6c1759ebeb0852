//! The state tree alone at scale: grows a store to N keys once (kept in DIR, so later runs
//! start from it), then times blocks of updates (32 hot keys plus K new ones, as the transfer
//! bench writes them): the update's preparation and its write, thread CPU per new key, and the
//! process's CPU (RocksDB's flushes and compactions included).
//!
//! `cargo run --release --example tree_scale -- DIR N BLOCKS K [HOT]` (HOT: the hot keys per
//! block, 32 by default); JSON on the last line, with the bytes the tree adds to each block.

use nexus::ledger::state::Writes;
use nexus::ledger::state_tree::StateTree;
use nexus::ledger::storage::{Kind, Storage};
use std::time::Instant;

fn thread_cpu() -> f64 {
    nexus::metrics::thread_cpu().as_secs_f64()
}

fn process_cpu() -> f64 {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_PROCESS_CPUTIME_ID)
        .map(|t| std::time::Duration::from(t).as_secs_f64())
        .unwrap_or(0.0)
}

fn key(i: u64) -> Vec<u8> {
    let h = nexus_proto::hash::sha3_256(&[b"tree scale key", &i.to_be_bytes()]);
    let mut k = vec![b'a'];
    k.extend_from_slice(&h.0[..21]);
    k
}

fn main() -> anyhow::Result<()> {
    let a: Vec<String> = std::env::args().collect();
    let dir = std::path::PathBuf::from(a.get(1).map(String::as_str).unwrap_or("/tmp/tree-scale"));
    let n: u64 = a
        .get(2)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(1_000_000);
    let blocks: u64 = a.get(3).map(|s| s.parse()).transpose()?.unwrap_or(20);
    let k: u64 = a.get(4).map(|s| s.parse()).transpose()?.unwrap_or(1500);
    let hot: u64 = a.get(5).map(|s| s.parse()).transpose()?.unwrap_or(32);
    let fresh = !dir.exists();
    let storage = Storage::open(&dir, &["public".to_string()])?;
    let store = storage.channel("public");
    let tree = StateTree::new(store.clone(), 256);
    let flat = |b: &mut nexus::ledger::storage::Batch<'_>, w: &Writes| {
        for (k, v) in w {
            if let Some(v) = v {
                b.put(Kind::State, k, v);
            }
        }
    };
    const CHUNK: u64 = 100_000;
    let mut head: u64 = 0;
    let mut next_key: u64 = n;
    if fresh {
        let t = Instant::now();
        let chunks = n.div_ceil(CHUNK);
        for c in 0..chunks {
            let w: Writes = (c * CHUNK..n.min((c + 1) * CHUNK))
                .map(|i| (key(i), Some(1u128.to_be_bytes().to_vec())))
                .collect();
            tree.genesis_chunk(&w, c, flat)?;
        }
        let mut b = store.batch();
        tree.finish_genesis(&Writes::new(), chunks, &mut b)?;
        b.commit()?;
        for kind in [Kind::State, Kind::TreeValues, Kind::TreeNodes] {
            store.compact(kind)?;
        }
        eprintln!("grew {n} keys in {:.1} s", t.elapsed().as_secs_f64());
    } else {
        tree.load()?;
        if let Some(v) = store.get(Kind::Meta, b"scale_head")? {
            head = u64::from_be_bytes(v[..8].try_into()?);
            next_key = u64::from_be_bytes(v[8..16].try_into()?);
        }
    }
    // As a node does when it opens its chain.
    let t = Instant::now();
    let cached = tree.warm(head)?;
    let warm_s = t.elapsed().as_secs_f64();
    let proc0 = process_cpu();
    let (mut prep_s, mut write_s, mut cpu_s) = (0.0, 0.0, 0.0);
    // What the tree adds to each block's batch: its nodes, stale records and pruning.
    let mut tree_bytes = 0usize;
    let mut per_block = Vec::new();
    for _ in 0..blocks {
        let mut w = Writes::new();
        for i in 0..hot {
            w.insert(
                key(u64::MAX - i),
                Some((head as u128).to_be_bytes().to_vec()),
            );
        }
        for _ in 0..k {
            w.insert(key(next_key), Some(1u128.to_be_bytes().to_vec()));
            next_key += 1;
        }
        let c0 = thread_cpu();
        let t = Instant::now();
        let p = tree.prepare(&w, head)?;
        let t1 = t.elapsed().as_secs_f64();
        let mut b = store.batch();
        flat(&mut b, &w);
        let before = b.bytes();
        tree.write(&p, head + 1, &mut b)?;
        tree_bytes += b.bytes() - before;
        let mut meta = (head + 1).to_be_bytes().to_vec();
        meta.extend_from_slice(&next_key.to_be_bytes());
        b.put(Kind::Meta, b"scale_head", &meta);
        b.commit()?;
        tree.committed(&p);
        let t2 = t.elapsed().as_secs_f64();
        cpu_s += thread_cpu() - c0;
        prep_s += t1;
        write_s += t2 - t1;
        per_block.push(t2 * 1e3);
        head += 1;
    }
    let keys = (blocks * k) as f64;
    println!(
        "{}",
        serde_json::json!({
            "keys_before": next_key - blocks * k,
            "blocks": blocks,
            "new_keys_per_block": k,
            "prepare_us_per_new_key": (prep_s / keys * 1e7).round() / 10.0,
            "write_us_per_new_key": (write_s / keys * 1e7).round() / 10.0,
            "cpu_us_per_new_key": (cpu_s / keys * 1e7).round() / 10.0,
            "tree_bytes_per_block": tree_bytes / (blocks as usize).max(1),
            "tree_bytes_per_changed_key": tree_bytes / ((blocks * (k + hot)) as usize).max(1),
            "cached_nodes": cached,
            "cache_seconds": (warm_s * 1000.0).round() / 1000.0,
            "process_cpu_us_per_new_key": ((process_cpu() - proc0) / keys * 1e7).round() / 10.0,
            "block_ms": per_block.iter().map(|x| x.round()).collect::<Vec<_>>(),
        })
    );
    Ok(())
}
