//! The conformance suite every backend must pass: each case takes a fresh, empty database
//! and panics on failure. `conformance_tests!` turns the suite into one test per case.
//!
//! Cases panic by design, hence unwrap and expect.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod failures;
mod transactions;

pub use failures::{
    finished_transaction_rejects_operations, invalid_range_is_rejected,
    key_and_value_limits_are_enforced, non_retryable_errors_are_not_retried, retry_limit_exceeded,
    transaction_too_large_writes_nothing, transaction_too_old,
};
pub use transactions::{
    atomic_add_concurrent_never_conflicts, blind_writes_do_not_conflict, clear_range,
    conflicting_transactions_one_commits, limited_range_read_conflicts_only_on_what_was_read,
    range_reads_forward_reverse_and_limits, range_reads_merge_local_writes,
    read_conflict_key_causes_conflict, read_only_commit_succeeds, read_your_writes,
    run_retries_conflicting_increments, snapshot_isolation, snapshot_reads_do_not_conflict,
};

use crate::{Database, RangeOptions, Transaction};

/// What a conformance factory returns: a database, possibly with what must outlive it
/// (a temporary directory).
pub trait Fixture {
    /// The database under test.
    fn database(&self) -> &Database;
}

impl Fixture for Database {
    fn database(&self) -> &Database {
        self
    }
}

/// Fields drop in order, so the database closes before its guard (e.g. a `TempDir`) goes.
impl<Guard> Fixture for (Database, Guard) {
    fn database(&self) -> &Database {
        &self.0
    }
}

/// Expands to one `#[tokio::test]` per conformance case, in a module named after the backend.
///
/// `$factory` is an expression evaluating to a future whose output implements
/// [`Fixture`]; it is evaluated afresh for every case.
#[macro_export]
macro_rules! conformance_tests {
    ($backend:ident, $factory:expr) => {
        $crate::conformance_tests!(@cases $backend, $factory, [
            read_your_writes,
            snapshot_isolation,
            conflicting_transactions_one_commits,
            run_retries_conflicting_increments,
            blind_writes_do_not_conflict,
            snapshot_reads_do_not_conflict,
            read_conflict_key_causes_conflict,
            read_only_commit_succeeds,
            range_reads_forward_reverse_and_limits,
            range_reads_merge_local_writes,
            limited_range_read_conflicts_only_on_what_was_read,
            clear_range,
            atomic_add_concurrent_never_conflicts,
            key_and_value_limits_are_enforced,
            transaction_too_large_writes_nothing,
            invalid_range_is_rejected,
            retry_limit_exceeded,
            non_retryable_errors_are_not_retried,
            transaction_too_old,
            finished_transaction_rejects_operations,
        ]);
    };
    (@cases $backend:ident, $factory:expr, [$($case:ident),* $(,)?]) => {
        mod $backend {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let fixture = $factory.await;
                    $crate::conformance::$case($crate::conformance::Fixture::database(&fixture))
                        .await;
                }
            )*
        }
    };
}

/// Little-endian i64 as written by atomic add.
fn counter(value: Option<Vec<u8>>) -> i64 {
    value.map_or(0, |bytes| {
        i64::from_le_bytes(bytes.try_into().expect("counter values are 8 bytes"))
    })
}

/// Every committed pair of the normal keyspace.
async fn committed_pairs(db: &Database) -> Vec<(Vec<u8>, Vec<u8>)> {
    let tx = db.create_transaction().await.unwrap();
    all_pairs(&tx).await
}

/// Every pair of the normal keyspace as `tx` sees it.
async fn all_pairs(tx: &Transaction) -> Vec<(Vec<u8>, Vec<u8>)> {
    tx.get_range(b"", b"\xff", RangeOptions::default())
        .await
        .unwrap()
}

/// Commits `pairs` in one transaction.
async fn seed(db: &Database, pairs: &[(&[u8], &[u8])]) {
    let tx = db.create_transaction().await.unwrap();
    for (key, value) in pairs {
        tx.set(key, value).unwrap();
    }
    tx.commit().await.unwrap();
}

/// Keys of `pairs` as strings, for readable assertions.
fn keys(pairs: &[(Vec<u8>, Vec<u8>)]) -> Vec<String> {
    pairs
        .iter()
        .map(|(key, _)| String::from_utf8_lossy(key).into_owned())
        .collect()
}
