//! World state: a key-value map with a commitment, read through [`StateView`] and written
//! through [`Overlay`] layers that are merged only when a transaction or block succeeds.
//!
//! Keys: `a` + 21-byte address -> ICX balance (16 bytes BE); `s` + SCORE address + key -> SCORE
//! storage.
//!
//! The commitment to this state is the state tree ([`crate::ledger::state_tree`]).

pub use nexus_score::state::{
    balance, balance_key, decode_u128, score_key, set_balance, Overlay, StateView, Writes,
};
