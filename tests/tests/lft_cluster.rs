//! Four validators as separate processes, LFT over libp2p on 127.0.0.1: transactions sent to
//! any validator are final once, with the same blocks everywhere; SIGKILL one and the others
//! go on, restart it and it catches up; kill two and finality stops without a fork, restart
//! them and it resumes; a peer outside the channel cannot join it, nor pile up connections.

use nexus::client::RpcClient;
use nexus_proto::{Address, KeyPair};
use nexus_tests::{height, same_chain, transfer, transfer_on, wait_height, Cluster, NID};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

async fn send_and_wait(
    rpc: &RpcClient,
    key: &KeyPair,
    to: Address,
    value: u128,
    nonce: u128,
) -> Value {
    send_and_wait_on(NID, rpc, key, to, value, nonce).await
}

async fn send_and_wait_on(
    nid: u64,
    rpc: &RpcClient,
    key: &KeyPair,
    to: Address,
    value: u128,
    nonce: u128,
) -> Value {
    let st = transfer_on(nid, key, to, value, nonce);
    rpc.call_with(
        rpc.url(),
        "icx_sendTransactionAndWait",
        Value::Object(st.raw),
        &[("Icon-Options", "timeout=30000")],
    )
    .await
    .unwrap_or_else(|e| panic!("transfer {nonce}: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_validators_finalize_survive_a_crash_and_catch_up() {
    let mut c = Cluster::start(4);
    let god = c.funded_key();
    let to = Address::eoa([0x42; 20]);

    // Transfers sent to each validator in turn are final on all of them, in the same block.
    let mut results = Vec::new();
    for n in 0..8u128 {
        let r = send_and_wait(&c.rpc(n as usize % 4), &god, to, 1 + n, n).await;
        assert_eq!(r["status"], "0x1", "{r}");
        results.push(r);
    }
    for r in &results {
        for i in 0..4 {
            let again = c
                .rpc(i)
                .call("icx_getTransactionResult", json!({"txHash": r["txHash"]}))
                .await
                .expect("result on every validator");
            assert_eq!(again["blockHash"], r["blockHash"]);
        }
    }
    same_chain(&c, &[0, 1, 2, 3]).await;

    // SIGKILL one: the other three keep finalizing.
    c.kill9(3);
    for n in 8..14u128 {
        let r = send_and_wait(&c.rpc(n as usize % 3), &god, to, 1, n).await;
        assert_eq!(r["status"], "0x1");
    }
    // The others go on past the 64 final blocks whose payloads consensus keeps in memory: the
    // blocks validator 3 missed are then served from the chains of its peers.
    let missed = height(&c.rpc(0)).await;
    for step in 1..=4 {
        wait_height(&c.rpc(0), missed + 20 * step).await;
    }
    let before_restart = same_chain(&c, &[0, 1, 2]).await;

    // Restart it: it catches up, with the same blocks and balances.
    c.spawn(3);
    wait_height(&c.rpc(3), before_restart).await;
    same_chain(&c, &[0, 1, 2, 3]).await;
    let b0 = c
        .rpc(0)
        .call("icx_getBalance", json!({"address": to.to_string()}))
        .await
        .expect("balance");
    let r = send_and_wait(&c.rpc(3), &god, to, 1, 99).await;
    assert_eq!(
        r["status"], "0x1",
        "the restarted validator accepts and finalizes transactions"
    );
    let h = u64::from_str_radix(
        r["blockHeight"]
            .as_str()
            .unwrap_or("0x0")
            .trim_start_matches("0x"),
        16,
    )
    .unwrap_or(0);
    for i in 0..4 {
        wait_height(&c.rpc(i), h).await;
        let b = c
            .rpc(i)
            .call("icx_getBalance", json!({"address": to.to_string()}))
            .await
            .expect("balance");
        assert_ne!(b, b0);
    }
    same_chain(&c, &[0, 1, 2, 3]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_of_four_down_stops_finality_without_a_fork() {
    let mut c = Cluster::start(4);
    let god = c.funded_key();
    let to = Address::eoa([0x43; 20]);
    let r = send_and_wait(&c.rpc(0), &god, to, 5, 1).await;
    assert_eq!(r["status"], "0x1");

    c.kill9(2);
    c.kill9(3);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let stalled = height(&c.rpc(0)).await;
    // A transaction is accepted but cannot become final.
    let st = transfer(&god, to, 7, 2);
    let hash = c
        .rpc(1)
        .call("icx_sendTransaction", Value::Object(st.raw))
        .await
        .expect("accepted");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        height(&c.rpc(0)).await,
        stalled,
        "two of four validators finalized a block"
    );
    assert_eq!(height(&c.rpc(1)).await, stalled);
    let waited = c
        .rpc(1)
        .call_with(
            &c.url(1),
            "icx_waitTransactionResult",
            json!({"txHash": hash}),
            &[("Icon-Options", "timeout=500")],
        )
        .await;
    assert!(
        waited.is_err(),
        "a transaction became final without a quorum: {waited:?}"
    );

    // Both come back: finality resumes, the waiting transaction is final, no fork.
    c.spawn(2);
    c.spawn(3);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(r) = c
            .rpc(1)
            .call("icx_getTransactionResult", json!({"txHash": hash}))
            .await
        {
            assert_eq!(r["status"], "0x1");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "finality did not resume; log of validator 0:\n{}",
            c.log(0)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    same_chain(&c, &[0, 1, 2, 3]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_two_two_partition_stops_finality_and_healing_resumes_it() {
    let c = Cluster::start(4);
    let god = c.funded_key();
    let to = Address::eoa([0x44; 20]);
    assert_eq!(
        send_and_wait(&c.rpc(0), &god, to, 5, 1).await["status"],
        "0x1"
    );

    // {0, 1} | {2, 3}: each side refuses the other at the transport.
    c.deny(0, &[2, 3]);
    c.deny(1, &[2, 3]);
    c.deny(2, &[0, 1]);
    c.deny(3, &[0, 1]);
    tokio::time::sleep(Duration::from_millis(2000)).await;
    let mut stalled = Vec::new();
    for i in 0..4 {
        stalled.push(height(&c.rpc(i)).await);
    }
    let st = transfer(&god, to, 7, 2);
    let hash = c
        .rpc(0)
        .call("icx_sendTransaction", Value::Object(st.raw))
        .await
        .expect("accepted");
    tokio::time::sleep(Duration::from_secs(3)).await;
    for (i, h) in stalled.iter().enumerate() {
        assert_eq!(
            height(&c.rpc(i)).await,
            *h,
            "validator {i} finalized a block inside a 2|2 partition"
        );
    }

    // Heal: the transaction becomes final and every validator has the same chain.
    c.heal();
    let deadline = Instant::now() + Duration::from_secs(60);
    while c
        .rpc(2)
        .call("icx_getTransactionResult", json!({"txHash": hash}))
        .await
        .is_err()
    {
        assert!(
            Instant::now() < deadline,
            "finality did not resume after the partition healed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    same_chain(&c, &[0, 1, 2, 3]).await;
}

/// Gossip goes only to direct peers and is never forwarded: with the link between validators 0
/// and 1 cut, each still reaches the other two, so three votes still make every certificate
/// and block sync fetches what the other proposed; transactions sent to any validator, the two
/// cut-off ones included, stay final everywhere. (Slower: a round that needs the cut link waits
/// for the empty-block interval, about a second here.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_broken_link_does_not_stop_finality() {
    let c = Cluster::start(4);
    let god = c.funded_key();
    let to = Address::eoa([0x46; 20]);
    assert_eq!(
        send_and_wait(&c.rpc(0), &god, to, 1, 0).await["status"],
        "0x1"
    );
    c.deny(0, &[1]);
    c.deny(1, &[0]);
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let mut last = 0;
    for n in 1..9u128 {
        let at = (n % 4) as usize;
        let r = send_and_wait(&c.rpc(at), &god, to, 1, n).await;
        assert_eq!(r["status"], "0x1", "transfer {n} sent to validator {at}");
        last = u64::from_str_radix(
            r["blockHeight"]
                .as_str()
                .unwrap_or("0x0")
                .trim_start_matches("0x"),
            16,
        )
        .expect("block height");
    }
    // Every validator, both cut-off ones included, holds the last transfer's block.
    let deadline = Instant::now() + Duration::from_secs(30);
    for i in 0..4 {
        while height(&c.rpc(i)).await < last {
            assert!(Instant::now() < deadline, "validator {i} fell behind");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    assert!(same_chain(&c, &[0, 1, 2, 3]).await >= last);
}

/// Open file descriptors of process `pid`.
fn open_files(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_to_a_validators_p2p_port_do_not_pile_up() {
    // Nobody needs a key to open a TCP connection: an outsider opens 2,000 to validator 0's
    // libp2p port and never starts the handshake. Each accepted one is a file descriptor
    // (a soft limit of 1,024 is common), so the validator must close them beyond a few.
    nexus::node::raise_open_files_limit();
    let c = Cluster::start(4);
    let pid = c.pid(0).expect("validator 0 runs");
    let port: u16 = c.init.nodes[0]
        .p2p
        .split('/')
        .nth(4)
        .and_then(|p| p.parse().ok())
        .expect("a /ip4/../tcp/<port>/p2p/.. address");
    wait_height(&c.rpc(0), 2).await;
    let before = open_files(pid);
    let held: Vec<std::net::TcpStream> = (0..2000)
        .filter_map(|_| std::net::TcpStream::connect(("127.0.0.1", port)).ok())
        .collect();
    assert!(held.len() > 1000, "only {} connections opened", held.len());
    let mut most = 0;
    for _ in 0..30 {
        most = most.max(open_files(pid));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The channel keeps going while they are held: a transfer through the flooded validator.
    let god = c.funded_key();
    assert_eq!(
        send_and_wait(&c.rpc(0), &god, Address::eoa([0x46; 20]), 1, 0).await["status"],
        "0x1"
    );
    most = most.max(open_files(pid));
    drop(held);
    println!("validator 0: {before} open files before the flood, at most {most} during it");
    assert!(
        most < before + 200,
        "validator 0 held {most} open files under the flood, {before} before it"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_outside_the_channel_cannot_join_it() {
    let c = Cluster::start(4);
    let (mut outsider, url) = c.spawn_outsider();
    let god = c.funded_key();
    for n in 0..3u128 {
        assert_eq!(
            send_and_wait(&c.rpc(n as usize), &god, Address::eoa([0x45; 20]), 1, n).await["status"],
            "0x1"
        );
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let outsider_height = height(&RpcClient::new(url)).await;
    let _ = outsider.kill();
    let _ = outsider.wait();
    assert!(height(&c.rpc(0)).await >= 3);
    assert_eq!(
        outsider_height, 0,
        "a node outside the channel received its blocks"
    );
    assert!(
        (0..4).any(|i| c
            .log(i)
            .contains("closing a connection from a peer outside the channel")),
        "no validator refused the outsider"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_process_runs_two_channels_with_their_own_validator_sets() {
    // public: validators 0..=3; notary-test: validators 0..=2, in the same processes.
    let mut c = Cluster::start_with(4, Some("notary-test"));
    let god = c.funded_key();
    let to = Address::eoa([0x46; 20]);
    let notary: Vec<RpcClient> = (0..4).map(|i| c.rpc_on(i, "notary-test")).collect();
    let notary = |i: usize| &notary[i];
    // Each channel has its own nid: a transfer signed for public is refused on notary-test.
    let replay = transfer(&god, to, 5, 77);
    let r = notary(1)
        .call("icx_sendTransaction", Value::Object(replay.raw.clone()))
        .await;
    assert!(
        matches!(&r, Err(e) if e.code() == Some(-32602) && e.to_string().contains("nid")),
        "a public transaction was taken by notary-test: {r:?}"
    );
    let r = send_and_wait_on(NID + 1, notary(1), &god, to, 9, 1).await;
    assert_eq!(r["status"], "0x1", "{r}");
    // Final on validator 1 when the wait returns; the others commit it moments later.
    for i in 0..3 {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let b = notary(i)
                .call("icx_getBalance", json!({"address": to.to_string()}))
                .await
                .expect("balance");
            if b == "0x9" || std::time::Instant::now() > deadline {
                assert_eq!(b, "0x9", "notary-test on validator {i}");
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
    let public = c
        .rpc(0)
        .call("icx_getBalance", json!({"address": to.to_string()}))
        .await
        .expect("balance");
    assert_eq!(
        public, "0x0",
        "a transfer on notary-test moved ICX on public"
    );
    assert!(
        notary(3)
            .call("icx_getLastBlock", Value::Null)
            .await
            .is_err(),
        "validator 3 does not run notary-test"
    );

    // Validator 2 stops: public (3 of 4 left) goes on; notary-test (2 of 3 left) stops.
    c.kill9(2);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let notary_height = height(notary(0)).await;
    let r = send_and_wait(&c.rpc(3), &god, to, 1, 2).await;
    assert_eq!(r["status"], "0x1", "public stopped without validator 2");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        height(notary(0)).await,
        notary_height,
        "notary-test finalized with 2 of its 3 validators"
    );

    // Validator 2 returns: notary-test resumes.
    c.spawn(2);
    wait_height(notary(0), notary_height + 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_returning_validator_syncs_blocks_its_peers_keep_only_on_disk() {
    let mut c = Cluster::start(4);
    let god = c.funded_key();
    let to = Address::eoa([0x47; 20]);
    c.kill9(3);
    for n in 0..5u128 {
        assert_eq!(
            send_and_wait(&c.rpc(n as usize % 3), &god, to, 1, n).await["status"],
            "0x1"
        );
    }
    // The others restart: the blocks validator 3 missed are now only in their storage.
    for i in 0..3 {
        c.kill9(i);
    }
    for i in 0..3 {
        c.spawn(i);
    }
    assert_eq!(
        send_and_wait(&c.rpc(0), &god, to, 1, 10).await["status"],
        "0x1"
    );
    let target = height(&c.rpc(0)).await;
    c.spawn(3);
    wait_height(&c.rpc(3), target).await;
    same_chain(&c, &[0, 1, 2, 3]).await;
}
