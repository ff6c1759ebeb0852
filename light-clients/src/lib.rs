//! Light clients of the chains Nexus connects, as pure code (no IO): a client keeps the state
//! it has verified and applies updates (headers with the votes that certify them) and checks
//! event proofs against what it verified. Notary validators run one per attached chain; the
//! portal only carries the bytes.

pub mod ethereum;
pub mod loopchain;
pub mod state_proof;
#[cfg(any(test, feature = "testkit"))]
pub mod testkit;

pub use ethereum::{EthClient, EthLog, EthUpdate, ReceiptProof};
pub use loopchain::{BlockEvents, EventProof, HeaderUpdate, LoopchainClient};
pub use state_proof::{StateProof, StateProofError};

/// Why a light client refused an update or a proof (one variant per check).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LightClientError {
    /// The update is not the next height.
    #[error("header at height {got}, expected {expected}")]
    NotNext {
        /// The height the client expects.
        expected: u64,
        /// The height that came.
        got: u64,
    },
    /// The header does not extend the verified one.
    #[error("header's parent {got} is not the verified head {expected}")]
    WrongParent {
        /// The verified head.
        expected: String,
        /// The header's `prev_hash`.
        got: String,
    },
    /// The header's round is not above its parent's.
    #[error("header round {got} is not above the parent's {parent}")]
    RoundNotAfterParent {
        /// The parent's round.
        parent: u64,
        /// The header's round.
        got: u64,
    },
    /// The header names a validator set other than the one the client expects.
    #[error("header names validators {got}, expected {expected}")]
    WrongValidators {
        /// The hash of the set the client expects.
        expected: String,
        /// The header's `validators_hash`.
        got: String,
    },
    /// The votes are not more than 2/3 of the set, or a signature is wrong.
    #[error("votes: {0}")]
    Votes(String),
    /// The header changes the next set but the update does not carry it.
    #[error("the header changes the next validator set; the update must carry it")]
    MissingValidators,
    /// The carried set does not hash to the header's `next_validators_hash`.
    #[error("validators hash to {got}, the header names {expected}")]
    ValidatorsMismatch {
        /// The header's `next_validators_hash`.
        expected: String,
        /// The hash of the carried list.
        got: String,
    },
    /// The client holds no verified header at this height (too old or not yet seen).
    #[error("no verified header at height {0}")]
    UnknownHeight(u64),
    /// An inclusion proof does not lead to the verified root.
    #[error("proof: {0}")]
    Proof(String),
    /// The bytes did not decode.
    #[error("decode: {0}")]
    Decode(String),
}

/// What every light client offers the notary (the Ethereum client implements it too).
pub trait LightClient {
    /// A verified-by-the-client step forward (a header and what certifies it).
    type Update;
    /// A proof that an event happened in a block the client verified.
    type EventProof;
    /// The last verified height.
    fn height(&self) -> u64;
    /// Verifies `update` and moves forward; on error nothing changes.
    fn apply(&mut self, update: Self::Update) -> Result<(), LightClientError>;
    /// Checks `proof` against a verified header.
    fn verify_event(&self, proof: &Self::EventProof) -> Result<(), LightClientError>;
}
