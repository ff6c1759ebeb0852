//! The SCORE interface of Nexus: what a native SCORE implements ([`NativeScore`]) and sees
//! while it runs ([`CallContext`]: its own storage, a step meter, event logs), its failures
//! ([`ScoreError`] with ICON [`failure`] codes), the state view ([`state`]) and step costs
//! ([`steps`]). Pure: no IO, no node; the node, the DEX and the BTP services build on it.

mod context;
pub mod state;
pub mod steps;

pub use context::{
    expect_params, param_address, param_bytes, param_bytes_list, param_int, param_string,
    CallContext, NativeScore, ScoreError, ScoreRegistry, MAX_CALL_DEPTH,
};

/// SCORE failure codes (goloop `scoreresult`), used in receipts and `-30000 - code` errors.
pub mod failure {
    /// Unknown failure.
    pub const UNKNOWN: u32 = 1;
    /// No SCORE at the address.
    pub const CONTRACT_NOT_FOUND: u32 = 2;
    /// The SCORE has no such method.
    pub const METHOD_NOT_FOUND: u32 = 3;
    /// ICX was sent to a method that does not accept it.
    pub const METHOD_NOT_PAYABLE: u32 = 4;
    /// A parameter is missing or malformed.
    pub const INVALID_PARAMETER: u32 = 6;
    /// A write was attempted where only reads are allowed.
    pub const ACCESS_DENIED: u32 = 9;
    /// The step limit ran out.
    pub const OUT_OF_STEP: u32 = 10;
    /// The sender cannot pay value plus fee.
    pub const OUT_OF_BALANCE: u32 = 11;
    /// The SCORE reverted (32 + user code).
    pub const REVERTED: u32 = 32;
}
