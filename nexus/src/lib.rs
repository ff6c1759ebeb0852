//! The Nexus node: RocksDB storage, a validating mempool, execution with step accounting and
//! native SCOREs, block production, ICON JSON-RPC v3 over HTTP and WebSocket, and the CLI.
//!
//! Where things are: [`ledger`] (the chain, its state and storage, genesis), [`execution`]
//! (transaction rules, steps, native SCOREs), [`consensus`] (the driver and the engines),
//! [`net`] (libp2p gossip and block sync), [`pool`] (admission and the mempool), [`rpc`]
//! (ICON JSON-RPC v3), [`commands`] (CLI, devnet, bench, wallet), and [`node`], which wires
//! them together. The ledger of a channel ([`ledger::chain::Chain`]) is driven by a consensus
//! engine through `build`, `verify` and `commit`; execution and SCOREs are pure over a
//! [`ledger::state::StateView`]; IO lives in [`ledger::storage`], [`rpc`], [`net`], [`node`]
//! and [`commands`].

pub mod commands;
pub mod config;
pub mod consensus;
pub mod error;
pub mod execution;
pub mod ledger;
pub mod metrics;
pub mod net;
pub mod node;
pub mod pool;
pub mod rpc;

/// The JSON-RPC client and keystores, from `nexus-client` (they do not need the node).
pub use nexus_client::{keystore, rpc as client};

/// Allocations of this size or more get memory of their own from the allocator (jemalloc's
/// `oversize_threshold`, `main.rs`), returned to the system when freed and faulted in anew the
/// next time; smaller ones reuse memory freed earlier. What the node allocates again every few
/// blocks (memtable arena blocks and filters) stays under it.
pub const OVERSIZE_ALLOCATION_BYTES: usize = 8 << 20;

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
