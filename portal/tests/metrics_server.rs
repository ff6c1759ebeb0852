//! The portal's `/metrics` and `/health` server keeps a bounded number of connections: idle
//! ones past the bound are closed at once, and it answers again when they go.

use nexus_portal::metrics::{self, Metrics};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

/// Whether the server closed `s`, waiting at most 20 ms for a sign.
fn closed(mut s: &TcpStream) -> bool {
    s.set_read_timeout(Some(Duration::from_millis(20)))
        .expect("read timeout");
    let mut b = [0u8; 1];
    match s.read(&mut b) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => !matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
    }
}

fn get(addr: std::net::SocketAddr, path: &str) -> String {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("read timeout");
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: p\r\nConnection: close\r\n\r\n"
    )
    .expect("send");
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_past_the_bound_are_closed_and_the_server_answers_after() {
    let listener = metrics::bind("127.0.0.1:0".parse().expect("address"))
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(metrics::serve(listener, Arc::new(Metrics::default())));
    let held: Vec<TcpStream> = (0..200)
        .map(|_| TcpStream::connect(addr).expect("connect"))
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let closed_at_once = held.iter().filter(|s| closed(s)).count();
    assert!(
        closed_at_once >= 200 - 64,
        "only {closed_at_once} of 200 idle connections were closed"
    );
    drop(held);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let answer = tokio::task::spawn_blocking(move || get(addr, "/metrics"))
        .await
        .expect("join");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}
