//! The portal: one supervisor and one worker per link direction, relaying a chain's BTP
//! messages (with the headers that prove them) into its Nexus notary channel, and notarized
//! messages out to destination BMCs. Relayers are not trusted: every byte they carry is checked
//! by a light client at the other end, so two portals on one link are safe (the second's
//! duplicates are refused and skipped).

pub mod config;
pub mod endpoint;
pub mod eth_batch;
pub mod eth_inbound;
pub mod eth_send;
pub mod eth_worker;
pub mod link_loop;
pub mod metrics;
pub mod progress;
pub mod supervisor;
pub mod worker;

/// What can stop the portal or fail one step of a worker.
#[derive(Debug, thiserror::Error)]
pub enum PortalError {
    /// The config is wrong.
    #[error("config: {0}")]
    Config(String),
    /// A chain did not answer, or answered an error.
    #[error("{endpoint}: {error}")]
    Rpc {
        /// The URL.
        endpoint: String,
        /// What went wrong.
        error: nexus_client::rpc::ClientError,
    },
    /// A chain answered something other than what the BTP API promises.
    #[error("{endpoint}: unexpected answer: {what}")]
    Answer {
        /// The URL.
        endpoint: String,
        /// What was wrong with it.
        what: String,
    },
    /// A relay transaction was refused by the chain.
    #[error("relay transaction {tx} failed: {reason}")]
    Refused {
        /// Its hash.
        tx: String,
        /// The failure from its receipt.
        reason: String,
    },
    /// Progress could not be read or written.
    #[error("progress file {path}: {error}")]
    Progress {
        /// The file.
        path: String,
        /// Why.
        error: String,
    },
    /// The keystore could not be opened.
    #[error("keystore: {0}")]
    Keystore(#[from] nexus_client::keystore::KeystoreError),
    /// Signing failed.
    #[error("signing: {0}")]
    Sign(#[from] nexus_proto::ProtoError),
    /// An Ethereum node did not answer, or a transaction failed.
    #[error("{endpoint}: {what}")]
    Eth {
        /// The URL.
        endpoint: String,
        /// What went wrong.
        what: String,
    },
}
