//! What the `nexus` binary does besides running a node: the CLI, the local devnet, the
//! benchmark and the wallet commands.

pub mod bench;
pub mod bench_btp;
pub mod bench_eth;
pub mod cli;
pub mod devnet;
pub mod hub;
pub mod hub_eth;
pub mod wallet;
