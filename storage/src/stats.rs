//! Commit, conflict and retry counters of a database and its transactions.

use std::sync::atomic::{AtomicU64, Ordering};

/// Counters since the database was opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StorageStats {
    /// Successful commits, read-only ones included.
    pub commits: u64,
    /// Commits rejected with `Conflict`.
    pub conflicts: u64,
    /// Attempts `Database::run` retried.
    pub retries: u64,
    /// Durable engine commits (fsyncs); group commit makes this lower than `commits`.
    pub durable_syncs: u64,
}

/// Counters the generic layer keeps, shared by a database and its transactions.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    commits: AtomicU64,
    conflicts: AtomicU64,
    retries: AtomicU64,
}

impl Counters {
    pub(crate) fn record_commit(&self) {
        self.commits.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn record_conflict(&self) {
        self.conflicts.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn record_retry(&self) {
        self.retries.fetch_add(1, Ordering::Relaxed);
    }

    /// The counters so far, with the engine's `durable_syncs`.
    pub(crate) fn stats(&self, durable_syncs: u64) -> StorageStats {
        StorageStats {
            commits: self.commits.load(Ordering::Relaxed),
            conflicts: self.conflicts.load(Ordering::Relaxed),
            retries: self.retries.load(Ordering::Relaxed),
            durable_syncs,
        }
    }
}
