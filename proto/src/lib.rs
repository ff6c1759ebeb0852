//! Wire formats of Nexus: ICON v3 transactions, their hashing and signatures, value codecs,
//! blocks, receipts, Merkle proofs and BTP messages.
//!
//! Design: this crate owns every format that crosses a process boundary or is hashed. It does no
//! IO. Every decoder of untrusted input is bounded (sizes, counts, nesting) and returns a typed
//! [`ProtoError`] that says what was expected and what came. Golden vectors made with ICON's
//! Python SDK live in `testdata/` next to the script that made them.

pub mod address;
pub mod block;
pub mod btp;
mod error;
pub mod hash;
pub mod json;
pub mod merkle;
pub mod receipt;
mod rlp_impls;
pub mod serialize;
pub mod signature;
pub mod transaction;
pub mod value;

pub use address::Address;
pub use error::ProtoError;
pub use hash::Hash32;
pub use rlp_impls::{decode_list_at_most, list_done, open_list};
pub use signature::{KeyPair, Signature};
pub use transaction::{SignedTransaction, Transaction, TxData};
