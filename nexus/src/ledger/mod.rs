//! The ledger of a channel: blocks and their state on disk, and the genesis they start from.

pub mod chain;
pub mod genesis;
pub mod state;
pub mod state_cache;
pub mod state_tree;
pub mod storage;
pub mod tree_codec;
pub mod tree_delta;
pub mod tree_update;
pub mod tree_warm;
