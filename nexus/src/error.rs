//! Errors of the node: infrastructure failures ([`NodeError`]) and ICON-coded errors that reach
//! JSON-RPC clients ([`IconError`]).

use nexus_proto::ProtoError;
use serde_json::Value;

/// A failure of the node's own machinery: disk, config, keys.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// RocksDB failed.
    #[error("storage: {0}")]
    Storage(#[from] rocksdb::Error),
    /// The disk holding the database has less free space than the node keeps in reserve.
    #[error(
        "the disk holding {path} has {free_mib} MiB free, under state.min_free_disk_mb = {min_mib}: \
         the node stops before the database runs out of space in the middle of a write"
    )]
    DiskFull {
        /// The data folder.
        path: String,
        /// Free space seen, in MiB.
        free_mib: u64,
        /// The reserve, in MiB.
        min_mib: u64,
    },
    /// Stored data did not decode: the database is damaged or from another version.
    #[error("corrupt {what} in the database: {reason}")]
    Corrupt {
        /// What was being read.
        what: &'static str,
        /// Why it failed.
        reason: String,
    },
    /// The config or genesis file is invalid.
    #[error("config: {0}")]
    Config(String),
    /// A keystore could not be read or written.
    #[error("keystore: {0}")]
    Keystore(String),
    /// Filesystem or socket error.
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    /// A wire format error in trusted data.
    #[error(transparent)]
    Proto(#[from] ProtoError),
}

/// What an operator can do about a failure whose text names it: a full disk, or a data folder
/// another process holds.
pub fn operator_hint(message: &str) -> Option<&'static str> {
    if message.contains("No space left on device") || message.contains("min_free_disk_mb") {
        return Some(
            "the disk holding the node's data folder is full or nearly so: free space (or move \
             data_dir) and start the node again; what it committed is kept, and a validator \
             catches up from its peers",
        );
    }
    if message.contains("lock file") && message.contains("unavailable") {
        return Some(
            "another process (a node still running?) holds this data folder: stop it, or give \
             this node a data_dir of its own",
        );
    }
    None
}

/// ICON JSON-RPC v3 error codes.
pub mod code {
    /// Invalid JSON.
    pub const PARSE_ERROR: i32 = -32700;
    /// Not a JSON-RPC request (or too large).
    pub const INVALID_REQUEST: i32 = -32600;
    /// Unknown method.
    pub const METHOD_NOT_FOUND: i32 = -32601;
    /// Parameters of the wrong shape or value.
    pub const INVALID_PARAMS: i32 = -32602;
    /// A bug or infrastructure failure inside the node.
    pub const INTERNAL_ERROR: i32 = -32603;
    /// System error.
    pub const SYSTEM_ERROR: i32 = -31000;
    /// The transaction pool is full.
    pub const POOL_OVERFLOW: i32 = -31001;
    /// The transaction is in the pool, not yet in a block.
    pub const PENDING: i32 = -31002;
    /// The transaction is being executed.
    pub const EXECUTING: i32 = -31003;
    /// No such block, transaction or data.
    pub const NOT_FOUND: i32 = -31004;
    /// The wait for a result timed out (`data` is the transaction hash).
    pub const TIMEOUT: i32 = -31006;
    /// A server limit was reached (goloop's LackOfResource).
    pub const LACK_OF_RESOURCE: i32 = -31005;
    /// The request took longer than the server allows (goloop's SystemTimeout).
    pub const SYSTEM_TIMEOUT: i32 = -31007;
    /// Base of SCORE failures: the code is `-30000 - failure code`.
    pub const SCORE_BASE: i32 = -30000;
}

/// ICON failure codes (the SCORE interface's, re-exported).
pub use nexus_score::failure;

/// An error as a JSON-RPC client sees it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct IconError {
    /// ICON error code.
    pub code: i32,
    /// What was expected and what came.
    pub message: String,
    /// Extra data (the transaction hash for timeouts).
    pub data: Option<Value>,
}

impl From<nexus_client::keystore::KeystoreError> for NodeError {
    fn from(e: nexus_client::keystore::KeystoreError) -> Self {
        match e {
            nexus_client::keystore::KeystoreError::Invalid(m) => NodeError::Keystore(m),
            nexus_client::keystore::KeystoreError::Io(e) => NodeError::Io(e),
        }
    }
}

impl IconError {
    /// An error with a code and message.
    pub fn new(code: i32, message: impl Into<String>) -> Self {
        IconError {
            code,
            message: message.into(),
            data: None,
        }
    }

    /// `-32602 Invalid params`.
    pub fn invalid_params(message: impl Into<String>) -> Self {
        Self::new(code::INVALID_PARAMS, message)
    }

    /// `-31004 Not found`.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(code::NOT_FOUND, message)
    }

    /// `-32603 Internal error`, logged.
    pub fn internal(err: impl std::fmt::Display) -> Self {
        tracing::error!(%err, "internal error");
        Self::new(code::INTERNAL_ERROR, format!("internal error: {err}"))
    }

    /// A SCORE failure: `-30000 - failure_code`.
    pub fn score(failure_code: u32, message: impl Into<String>) -> Self {
        Self::new(code::SCORE_BASE - failure_code as i32, message)
    }
}

impl From<ProtoError> for IconError {
    fn from(e: ProtoError) -> Self {
        IconError::invalid_params(e.to_string())
    }
}

impl From<NodeError> for IconError {
    fn from(e: NodeError) -> Self {
        IconError::internal(e)
    }
}

#[cfg(test)]
mod tests {
    use super::operator_hint;

    #[test]
    fn a_full_disk_and_a_held_data_folder_get_a_hint() {
        let full = "storage: IO error: No space left on device: While appending to file: data/000029.sst: No space left on device";
        assert!(operator_hint(full).unwrap().contains("disk"));
        let reserve = super::NodeError::DiskFull {
            path: "data".into(),
            free_mib: 3,
            min_mib: 512,
        }
        .to_string();
        assert!(
            operator_hint(&reserve).unwrap().contains("free space"),
            "{reserve}"
        );
        let held =
            "storage: IO error: While lock file: /n/data/LOCK: Resource temporarily unavailable";
        assert!(operator_hint(held).unwrap().contains("another process"));
        assert_eq!(operator_hint("config: genesis: missing nid"), None);
    }
}
