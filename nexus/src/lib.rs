//! The Nexus node: RocksDB storage, a validating mempool, execution with step accounting and
//! native SCOREs, block production, ICON JSON-RPC v3 over HTTP and WebSocket, and the CLI.
//!
//! Design: the ledger of a channel ([`chain::Chain`]) is driven by a consensus engine through
//! `build`, `verify` and `commit`; execution ([`execution`]) and SCOREs ([`score`]) are pure over
//! a [`state::StateView`]; IO lives in [`storage`], [`rpc`], [`node`] and the CLI.

pub mod admission;
pub mod bench;
pub mod block_sync;
pub mod chain;
pub mod cli;
pub mod client;
pub mod config;
pub mod consensus;
pub mod devnet;
pub mod engine;
pub mod error;
pub mod execution;
pub mod genesis;
pub mod keystore;
pub mod lft_engine;
pub mod mempool;
pub mod metrics;
pub mod node;
pub mod p2p;
pub mod rpc;
pub mod score;
pub mod state;
pub mod steps;
pub mod storage;
pub mod wallet;

/// The text of a panic payload.
pub fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into())
}

/// Reports every panic (where and why) in the log and on stderr before it unwinds: a task that
/// panics ends the node through its engine's handle, with this reason above the exit.
pub fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let why = panic_message(info.payload());
        let at = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let thread = std::thread::current()
            .name()
            .unwrap_or("unnamed")
            .to_string();
        tracing::error!(%why, %at, %thread, "panic");
        eprintln!("panic in thread {thread} at {at}: {why}");
    }));
}
