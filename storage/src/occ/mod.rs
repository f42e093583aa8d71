//! Optimistic concurrency shared by the backends that buffer writes and validate reads at
//! commit (memory and embedded over redb, PostgreSQL): key arithmetic, conflict ranges,
//! the write overlay with its atomic adds, the commit log an in-process resolver checks
//! reads against, and the one `BackendTransaction` those backends run on.
//!
//! This module depends on no backend; backends depend on it.

pub(crate) mod atomic;
pub(crate) mod commit_log;
pub(crate) mod keys;
pub(crate) mod overlay;
pub(crate) mod ranges;
mod transaction;

pub(crate) use transaction::{Commit, OptimisticEngine, OptimisticTransaction, RangeHint};
