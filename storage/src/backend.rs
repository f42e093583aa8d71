//! The extension point every storage engine implements (redb, PostgreSQL, FoundationDB).
//! Limits, lifetime and metrics live in the generic `Transaction`
//! wrapper, so a backend only provides the engine semantics.

use crate::error::StorageError;
use crate::stats::StorageStats;

/// Options of a range read.
#[derive(Debug, Clone, Copy, Default)]
pub struct RangeOptions {
    /// Return at most this many pairs.
    pub limit: Option<usize>,
    /// Return pairs from the end of the range backwards.
    pub reverse: bool,
    /// Do not add a read conflict for the range.
    pub snapshot: bool,
}

/// A storage engine able to start serializable transactions.
#[async_trait::async_trait]
pub trait Backend: Send + Sync + std::fmt::Debug {
    /// Short stable name used in metrics labels ("memory", "embedded", ...).
    fn name(&self) -> &'static str;
    /// Starts a transaction at the latest committed version.
    async fn begin(&self) -> Result<Box<dyn BackendTransaction>, StorageError>;
    /// Counters only the engine knows (durable syncs); the database adds the rest.
    fn stats(&self) -> StorageStats;
}

/// One engine transaction: reads see its own writes, commit checks read conflicts.
///
/// Arguments are already validated (sizes, ranges, lifetime) by the caller.
#[async_trait::async_trait]
pub trait BackendTransaction: Send + Sync {
    /// Reads one key; adds a read conflict on it unless `snapshot`.
    async fn get(&self, key: &[u8], snapshot: bool) -> Result<Option<Vec<u8>>, StorageError>;
    /// Reads `[begin, end)`; adds a read conflict on the part actually read unless `options.snapshot`.
    async fn get_range(
        &self,
        begin: &[u8],
        end: &[u8],
        options: RangeOptions,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>, StorageError>;
    /// Buffers a write of `value` at `key`.
    fn set(&self, key: &[u8], value: &[u8]) -> Result<(), StorageError>;
    /// Buffers the removal of `key`.
    fn clear(&self, key: &[u8]) -> Result<(), StorageError>;
    /// Buffers the removal of every key in `[begin, end)`.
    fn clear_range(&self, begin: &[u8], end: &[u8]) -> Result<(), StorageError>;
    /// Buffers a little-endian i64 addition to `key` (missing counts as 0), without a read conflict.
    fn atomic_add(&self, key: &[u8], delta: i64) -> Result<(), StorageError>;
    /// Makes the commit fail if another commit writes in `[begin, end)` after this transaction began.
    fn add_read_conflict_range(&self, begin: &[u8], end: &[u8]);
    /// Commits the buffered writes atomically, or fails with `Conflict`.
    async fn commit(&self) -> Result<(), StorageError>;
}
