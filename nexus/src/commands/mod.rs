//! What the `nexus` binary does besides running a node: the CLI, the local devnet, the
//! benchmark, the wallet and the DEX commands.

pub mod bench;
pub mod bench_btp;
pub mod bench_dex;
pub mod bench_eth;
pub mod bench_repeat;
pub mod cli;
pub mod devnet;
pub mod dex;
pub mod hub;
pub mod hub_eth;
pub mod wallet;
