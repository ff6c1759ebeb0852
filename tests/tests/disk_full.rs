//! A node whose disk fills up: it stops once less than `state.min_free_disk_mb` is free, with
//! an error and a hint of what to do, having lost nothing it acknowledged, and once there is
//! space again it starts where it stopped and goes on. The data folder is a small tmpfs in a
//! mount namespace of the test's own (`unshare`), so no disk of the machine fills.

// Every unwrap here is an assertion about the node's answers; a failure is the test failing.
#![allow(clippy::unwrap_used)]

use nexus::client::RpcClient;
use nexus::commands::devnet::{init, InitOptions};
use nexus_proto::{Transaction, TxData};
use nexus_tests::{answers, free_ports, nexus_bin, now_us, NID};
use serde_json::Value;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Bytes of each transaction's message: the node's write-ahead log moves to a new file (and
/// takes 70 MB more of the disk) after some 64 MB of them.
const MESSAGE_BYTES: usize = 250_000;

/// Senders at once (each waits for its transaction's result).
const SENDERS: u128 = 8;

/// Runs inside the namespace: mounts the tmpfs, starts the node (a reserve of 200 MB), fills
/// the tmpfs to 240 MB free once the test asks, and after the node stops, frees the space and
/// starts it again.
const SCRIPT: &str = r#"
set -u
mount -t tmpfs -o size=400m tmpfs "$MNT" || exit 90
"$NEXUS" node --config "$CFG" >> "$OUT/node1.log" 2>&1 &
node=$!
while [ ! -e "$OUT/fill" ]; do sleep 0.05; done
fallocate -l $(( $(df -B1 --output=avail "$MNT" | tail -1) - 240 * 1024 * 1024 )) "$MNT/pad"
touch "$OUT/filled"
wait $node
echo $? > "$OUT/node1.exit"
rm -f "$MNT/pad"
exec "$NEXUS" node --config "$CFG" >> "$OUT/node2.log" 2>&1
"#;

/// The namespace's process group, killed on drop.
struct Namespace(Child);

impl Drop for Namespace {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.0.id())])
            .status();
        let _ = self.0.wait();
    }
}

fn wait_for(what: &str, secs: u64, mut done: impl FnMut() -> bool, log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !done() {
        assert!(
            Instant::now() < deadline,
            "{what} within {secs} s; node log:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_whose_disk_fills_stops_loses_nothing_acknowledged_and_resumes_with_space() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_ports(1)[0];
    let listen = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let out = init(
        dir.path(),
        &InitOptions {
            nid: NID,
            listen,
            ..InitOptions::default()
        },
    )
    .unwrap();
    let mnt = dir.path().join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    let cfg = std::fs::read_to_string(&out.config)
        .unwrap()
        .replace("data_dir = \"data\"", "data_dir = \"mnt/data\"")
        .replace(
            "empty_block_interval_ms = 1000",
            "empty_block_interval_ms = 200",
        )
        .replace("min_free_disk_mb = 512", "min_free_disk_mb = 200");
    assert!(cfg.contains("mnt/data"), "{cfg}");
    assert!(cfg.contains("min_free_disk_mb = 200"), "{cfg}");
    std::fs::write(&out.config, cfg).unwrap();
    let o = dir.path();
    let log1 = o.join("node1.log");

    let mut ns = Namespace(
        Command::new("unshare")
            .args(["--user", "--map-root-user", "--mount", "bash", "-c", SCRIPT])
            .env("MNT", &mnt)
            .env("NEXUS", nexus_bin())
            .env("CFG", &out.config)
            .env("OUT", o)
            .stdin(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("unshare (util-linux) starts"),
    );
    let url = format!("http://{listen}/api/v3/public");
    wait_for(
        "the node answers",
        60,
        || {
            if let Ok(Some(status)) = ns.0.try_wait() {
                panic!(
                    "the namespace ended ({status}; 90: the tmpfs could not be mounted): this test \
                     needs `unshare --user --map-root-user --mount` to work"
                );
            }
            answers(&url)
        },
        &log1,
    );
    std::fs::write(o.join("fill"), b"").unwrap();
    wait_for(
        "the tmpfs is filled",
        30,
        || o.join("filled").exists(),
        &log1,
    );

    // Messages of 250 KB from several senders at once until the node stops; each acknowledged
    // one is remembered.
    let god = nexus::keystore::load(&out.funded_keystore, &out.funded_password).unwrap();
    let acknowledged = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let started = Instant::now();
    let stopped = o.join("node1.exit");
    let senders: Vec<_> = (0..SENDERS)
        .map(|sender| {
            let (god, url, stopped, acknowledged) = (
                god.clone(),
                url.clone(),
                stopped.clone(),
                acknowledged.clone(),
            );
            tokio::spawn(async move {
                let rpc = RpcClient::new(url);
                for i in 0u128.. {
                    if stopped.exists() || started.elapsed() > Duration::from_secs(240) {
                        return;
                    }
                    let nonce = sender * 1_000_000 + i;
                    let data: Vec<u8> = (0..MESSAGE_BYTES)
                        .map(|b| (b as u128 * 31 + nonce * 7) as u8)
                        .collect();
                    let st = Transaction {
                        from: god.address(),
                        to: nexus_proto::KeyPair::generate().address(),
                        value: 0,
                        step_limit: 200_000_000,
                        timestamp: now_us(),
                        nid: NID,
                        nonce: Some(nonce),
                        data: TxData::Message(data),
                    }
                    .sign(&god)
                    .unwrap();
                    match rpc
                        .call("icx_sendTransactionAndWait", Value::Object(st.raw.clone()))
                        .await
                    {
                        Ok(r) => {
                            assert_eq!(r["status"], "0x1", "{r}");
                            acknowledged.lock().unwrap().push(st.hash);
                        }
                        // The node stopping mid-request, or refusing while it stops: not
                        // acknowledged.
                        Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                    }
                }
            })
        })
        .collect();
    for s in senders {
        s.await.unwrap();
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(
        stopped.exists(),
        "the node did not stop after {} messages; node log:\n{}",
        acknowledged.len(),
        std::fs::read_to_string(&log1).unwrap_or_default()
    );
    assert!(
        acknowledged.len() >= 50,
        "{} messages before the disk filled",
        acknowledged.len()
    );
    eprintln!(
        "{} messages acknowledged before the node stopped",
        acknowledged.len()
    );
    let code = std::fs::read_to_string(o.join("node1.exit")).unwrap();
    assert_ne!(code.trim(), "0", "the node exits with a failure");
    let log = std::fs::read_to_string(&log1).unwrap();
    eprintln!("{}", nexus_tests::hub::tail(&log, 4));
    assert!(log.contains("under state.min_free_disk_mb = 200"), "{log}");
    assert!(log.contains("hint: the disk holding"), "{log}");
    assert!(!log.contains("No space left on device"), "{log}");

    // With space again it starts on the same folder and holds every acknowledged message.
    let log2 = o.join("node2.log");
    wait_for("the node answers again", 60, || answers(&url), &log2);
    let rpc = RpcClient::new(url.clone());
    for h in &acknowledged {
        let r = rpc
            .call(
                "icx_getTransactionResult",
                serde_json::json!({"txHash": h.to_string()}),
            )
            .await
            .unwrap();
        assert_eq!(r["status"], "0x1", "{h}: {r}");
    }
    let next = nexus_tests::transfer(
        &god,
        nexus_proto::KeyPair::generate().address(),
        1,
        1_000_000,
    );
    let r = rpc
        .call("icx_sendTransactionAndWait", Value::Object(next.raw))
        .await
        .unwrap();
    assert_eq!(r["status"], "0x1", "a transfer after the restart: {r}");
}
