//! The storage error type shared by every backend.

use crate::limits::{MAX_KEY_SIZE, MAX_TRANSACTION_SIZE, MAX_VALUE_SIZE};

/// Everything that can go wrong in a storage operation; FDB-shaped so callers can tell
/// retryable from maybe-committed from fatal.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// Another commit wrote something this transaction read; retryable.
    #[error("transaction conflict: a concurrent commit wrote a key this transaction read")]
    Conflict,
    /// The transaction outlived its lifetime or its read version can no longer be checked; retryable.
    #[error(
        "transaction too old: older than the transaction lifetime or its read version is no longer resolvable"
    )]
    TransactionTooOld,
    /// A key longer than the FDB key limit.
    #[error("key too large: {size} bytes, limit is {MAX_KEY_SIZE}")]
    KeyTooLarge {
        /// Size of the rejected key in bytes.
        size: usize,
    },
    /// A value longer than the FDB value limit.
    #[error("value too large: {size} bytes, limit is {MAX_VALUE_SIZE}")]
    ValueTooLarge {
        /// Size of the rejected value in bytes.
        size: usize,
    },
    /// Mutations plus conflict ranges exceed the FDB transaction size limit.
    #[error("transaction too large: {size} bytes, limit is {MAX_TRANSACTION_SIZE}")]
    TransactionTooLarge {
        /// Size the transaction would have reached, in bytes.
        size: usize,
    },
    /// A range whose begin is after its end.
    #[error("invalid range: begin is after end")]
    InvalidRange,
    /// The transaction was already committed (or its commit failed).
    #[error("transaction finished: it was already committed or its commit failed")]
    TransactionFinished,
    /// The commit may or may not have been applied.
    #[error("commit result unknown: the transaction may have been committed")]
    CommitUnknownResult,
    /// `Database::run` gave up after this many attempts.
    #[error("retry limit exceeded after {attempts} attempts: {last}")]
    RetryLimitExceeded {
        /// Attempts made, the first one included.
        attempts: u32,
        /// The retryable error of the last attempt.
        last: Box<StorageError>,
    },
    /// A record could not be encoded or decoded.
    #[error("codec: {0}")]
    Codec(String),
    /// I/O or engine failure, with context.
    #[error("backend: {0}")]
    Backend(String),
}

impl StorageError {
    /// Whether running the transaction again may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Conflict | Self::TransactionTooOld)
    }

    /// Whether the transaction may have been committed despite the error.
    pub fn is_maybe_committed(&self) -> bool {
        matches!(self, Self::CommitUnknownResult)
    }

    /// Wraps an engine error with what was being done.
    pub(crate) fn backend(context: &str, error: impl std::fmt::Display) -> Self {
        Self::Backend(format!("{context}: {error}"))
    }
}

/// Lets `Database::run` see a storage error wrapped inside a caller's error type and decide to retry.
pub trait AsStorageError {
    /// The storage error inside, if this error is (or wraps) one.
    fn as_storage_error(&self) -> Option<&StorageError>;
}

impl AsStorageError for StorageError {
    fn as_storage_error(&self) -> Option<&StorageError> {
        Some(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_size_and_limit() {
        let message = StorageError::KeyTooLarge { size: 10_001 }.to_string();
        assert_eq!(message, "key too large: 10001 bytes, limit is 10000");
        let message = StorageError::ValueTooLarge { size: 100_001 }.to_string();
        assert_eq!(message, "value too large: 100001 bytes, limit is 100000");
    }

    #[test]
    fn classification() {
        assert!(StorageError::Conflict.is_retryable());
        assert!(StorageError::TransactionTooOld.is_retryable());
        assert!(!StorageError::CommitUnknownResult.is_retryable());
        assert!(StorageError::CommitUnknownResult.is_maybe_committed());
        assert!(!StorageError::InvalidRange.is_retryable());
    }
}
