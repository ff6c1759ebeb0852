//! Native SCOREs: smart contracts written in Rust and installed at genesis, behind one trait.
//!
//! The interface ([`NativeScore`], [`CallContext`], [`ScoreError`], parameter helpers) lives in
//! the `nexus-score` crate, so SCOREs outside the node (the DEX, the BTP services) implement it
//! without depending on the node; the node's own SCOREs are here.

pub mod chain_score;
pub mod irc2;

pub use nexus_score::{
    expect_params, param_address, param_bytes, param_int, CallContext, NativeScore, ScoreError,
    ScoreRegistry,
};
