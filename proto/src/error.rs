//! The error type of every decoder and check in this crate.

/// What went wrong while decoding or checking wire data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtoError {
    /// A field held a value of the wrong shape.
    #[error("{field}: expected {expected}, got {got}")]
    InvalidValue {
        /// The field (or path) that was being decoded.
        field: String,
        /// What the decoder accepts.
        expected: &'static str,
        /// What came, shortened for display.
        got: String,
    },
    /// A required field was absent.
    #[error("missing field `{0}`")]
    Missing(String),
    /// The signature did not decode, did not recover, or belongs to another key.
    #[error("invalid signature: {0}")]
    Signature(String),
    /// RLP data did not decode.
    #[error("invalid RLP in {what}: {reason}")]
    Rlp {
        /// The structure being decoded.
        what: &'static str,
        /// Why it failed.
        reason: String,
    },
    /// Input exceeded a size, count or depth bound.
    #[error("{what} too large: {size} exceeds the limit of {limit}")]
    TooLarge {
        /// The bounded quantity.
        what: &'static str,
        /// The size that came.
        size: usize,
        /// The bound.
        limit: usize,
    },
}

impl ProtoError {
    /// An [`ProtoError::InvalidValue`] that shows at most 80 characters of the offending input.
    pub fn invalid(field: impl Into<String>, expected: &'static str, got: impl AsRef<str>) -> Self {
        let got = got.as_ref();
        let shown = if got.chars().count() > 80 {
            format!("{}...", got.chars().take(80).collect::<String>())
        } else {
            got.to_string()
        };
        ProtoError::InvalidValue {
            field: field.into(),
            expected,
            got: format!("{shown:?}"),
        }
    }

    pub(crate) fn rlp(what: &'static str, err: alloy_rlp::Error) -> Self {
        ProtoError::Rlp {
            what,
            reason: err.to_string(),
        }
    }
}
