//! The Nexus node: RocksDB storage, a validating mempool, execution with step accounting and
//! native SCOREs, block production, ICON JSON-RPC v3 over HTTP and WebSocket, and the CLI.
//!
//! Design: the ledger of a channel ([`chain::Chain`]) is driven by a consensus engine through
//! `build`, `verify` and `commit`; execution ([`execution`]) and SCOREs ([`score`]) are pure over
//! a [`state::StateView`]; IO lives in [`storage`], [`rpc`], [`node`] and the CLI.

pub mod admission;
pub mod bench;
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
