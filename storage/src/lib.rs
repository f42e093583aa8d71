//! Gatehouse storage: an FDB-shaped transactional key-value store (ordered byte keys,
//! serializable transactions with read-your-writes, conflict detection and retry loops)
//! over interchangeable backends, plus a conformance suite every backend must pass.
//!
//! Keys are tuple-encoded by callers; this crate knows nothing about what they mean.
//!
//! The conformance suite (`conformance`) and the throwaway PostgreSQL server of tests
//! (`postgres::harness`) are test code, compiled only with the `testkit` feature.
#![warn(missing_docs)]

mod backend;
pub mod codec;
#[cfg(feature = "testkit")]
pub mod conformance;
mod database;
mod engine;
mod error;
#[cfg(feature = "fdb")]
pub mod fdb;
mod limits;
mod occ;
pub mod postgres;
mod stats;
mod sync;
mod transaction;

pub use backend::{Backend, BackendTransaction, RangeOptions};
pub use database::{Database, RetryOptions};
pub use error::{AsStorageError, StorageError};
pub use foundationdb_tuple as tuple;
pub use foundationdb_tuple::Subspace;
pub use limits::{MAX_KEY_SIZE, MAX_TRANSACTION_SIZE, MAX_VALUE_SIZE, TRANSACTION_LIFETIME};
pub use occ::keys::prefix_range;
pub use postgres::PostgresOptions;
pub use stats::StorageStats;
pub use transaction::Transaction;
