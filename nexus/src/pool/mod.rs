//! Transactions waiting for a block: admission checks and the bounded pool.

pub mod admission;
pub mod backlog;
pub mod gossip;
pub mod mempool;
pub mod signatures;
