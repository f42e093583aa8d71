//! FoundationDB's limits, enforced by every backend so code that passes here runs on FDB.

use std::time::Duration;

/// Largest key accepted, in bytes.
pub const MAX_KEY_SIZE: usize = 10_000;
/// Largest value accepted, in bytes.
pub const MAX_VALUE_SIZE: usize = 100_000;
/// Largest transaction (mutations plus conflict ranges), in bytes.
pub const MAX_TRANSACTION_SIZE: usize = 10_000_000;
/// How long a transaction may live before it fails with `TransactionTooOld`.
pub const TRANSACTION_LIFETIME: Duration = Duration::from_secs(5);
