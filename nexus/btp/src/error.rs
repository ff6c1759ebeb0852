//! Why a BTP SCORE refused a call (one variant per check), and how it shows in a receipt.

use nexus_light_clients::LightClientError;
use nexus_score::{failure, ScoreError};

/// A refusal of the BMC, its verifiers, the services or the notary SCORE.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BtpError {
    /// Only the chain's admin may configure BTP.
    #[error("only the admin {admin} may do this, not {caller}")]
    NotAdmin {
        /// The admin.
        admin: String,
        /// Who called.
        caller: String,
    },
    /// No verifier (or light client) is registered for this network.
    #[error("no verifier for network {0}")]
    NoVerifier(String),
    /// A verifier for this network exists already.
    #[error("a verifier for network {0} exists already")]
    VerifierExists(String),
    /// The light client refused an update or a proof.
    #[error("{context}: {error}")]
    LightClient {
        /// Which item (`update 0`, `proof 2`).
        context: String,
        /// The light client's reason.
        error: LightClientError,
    },
    /// The proven event was emitted by another SCORE.
    #[error("event from {got}, expected {expected}")]
    WrongEmitter {
        /// The SCORE whose events are accepted.
        expected: String,
        /// The emitter of the proven event.
        got: String,
    },
    /// The proven event is not a well-formed `Message(str,int,bytes)`.
    #[error("not a BTP message event: {0}")]
    NotAMessage(String),
    /// The message is addressed elsewhere.
    #[error("message for {got}, this is {expected}")]
    WrongDestination {
        /// This network (or the expected source).
        expected: String,
        /// Where the message says it goes (or comes from).
        got: String,
    },
    /// The sequence number was relayed already.
    #[error("sequence number {seq} was received already (last {last})")]
    Replayed {
        /// The relayed sequence number.
        seq: u128,
        /// The last one received.
        last: u128,
    },
    /// A sequence number was skipped.
    #[error("sequence gap: expected {expected}, got {got}")]
    Gap {
        /// The next sequence number.
        expected: u128,
        /// What came.
        got: u128,
    },
    /// The BTP message bytes do not decode.
    #[error("BTP message: {0}")]
    BadMessage(String),
    /// A network or account address is malformed.
    #[error("{field}: expected {expected}, got {got:?}")]
    BadAddress {
        /// The parameter.
        field: String,
        /// What was expected.
        expected: String,
        /// What came (cut to 80 characters).
        got: String,
    },
    /// No route to the network (no verifier for its replies).
    #[error("no route to {0}: register a verifier for it first")]
    NoRoute(String),
    /// A service refused the call or the message.
    #[error("{0}")]
    Service(String),
}

impl BtpError {
    /// The user code of the revert (`failure code = 32 + code`).
    pub fn code(&self) -> u32 {
        match self {
            BtpError::NotAdmin { .. } => 1,
            BtpError::NoVerifier(_) | BtpError::NoRoute(_) => 2,
            BtpError::VerifierExists(_) => 3,
            BtpError::LightClient { .. } => 4,
            BtpError::WrongEmitter { .. } | BtpError::NotAMessage(_) => 5,
            BtpError::WrongDestination { .. } => 6,
            BtpError::Replayed { .. } => 7,
            BtpError::Gap { .. } => 8,
            BtpError::BadMessage(_) => 9,
            BtpError::BadAddress { .. } => 10,
            BtpError::Service(_) => 11,
        }
    }
}

impl From<BtpError> for ScoreError {
    fn from(e: BtpError) -> Self {
        ScoreError::new(failure::REVERTED + e.code(), e.to_string())
    }
}
