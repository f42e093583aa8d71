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

/// What a backend promises beyond the common contract; the cases that depend on it check
/// the promise where it is made and the weaker property that still matters where not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    /// Transactions that only write never conflict, even on the same key at the same time
    /// (FDB). Without it they may conflict, and their results through `run` are still exact.
    pub blind_writes_never_conflict: bool,
    /// Concurrent atomic adds never conflict (FDB). Without it they may conflict, and their
    /// sum through `run` is still exact.
    pub atomic_adds_never_conflict: bool,
}

impl Capabilities {
    /// FoundationDB's contract, which memory and embedded meet in full.
    pub const FDB: Capabilities = Capabilities {
        blind_writes_never_conflict: true,
        atomic_adds_never_conflict: true,
    };
    /// PostgreSQL: commits that overlap in time and write the same key may conflict.
    pub const POSTGRES: Capabilities = Capabilities {
        blind_writes_never_conflict: false,
        atomic_adds_never_conflict: false,
    };
}

impl Default for Capabilities {
    fn default() -> Self {
        Self::FDB
    }
}

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
/// [`Fixture`]; it is evaluated afresh for every case. `$capabilities` (a [`Capabilities`],
/// default [`Capabilities::FDB`]) says what the backend promises.
#[macro_export]
macro_rules! conformance_tests {
    ($backend:ident, $factory:expr) => {
        $crate::conformance_tests!($backend, $factory, $crate::conformance::Capabilities::FDB);
    };
    ($backend:ident, $factory:expr, $capabilities:expr) => {
        $crate::conformance_tests!(@with_cases @cases $backend, $factory, $capabilities,);
    };
    // The one list of cases: the first takes a database, the second also the capabilities.
    (@with_cases $($then:tt)*) => {
        $crate::conformance_tests! { $($then)* [
            read_your_writes,
            snapshot_isolation,
            conflicting_transactions_one_commits,
            run_retries_conflicting_increments,
            snapshot_reads_do_not_conflict,
            read_conflict_key_causes_conflict,
            read_only_commit_succeeds,
            range_reads_forward_reverse_and_limits,
            range_reads_merge_local_writes,
            limited_range_read_conflicts_only_on_what_was_read,
            clear_range,
            key_and_value_limits_are_enforced,
            transaction_too_large_writes_nothing,
            invalid_range_is_rejected,
            retry_limit_exceeded,
            non_retryable_errors_are_not_retried,
            transaction_too_old,
            finished_transaction_rejects_operations,
        ], [
            blind_writes_do_not_conflict,
            atomic_add_concurrent_never_conflicts,
        ] }
    };
    (@run $factory:expr, $capabilities:expr,
        [$($case:ident),* $(,)?], [$($capability_case:ident),* $(,)?]) => {
        async {
            $(
                println!("conformance case {}", stringify!($case));
                let fixture = $factory.await;
                $crate::conformance::$case($crate::conformance::Fixture::database(&fixture)).await;
                drop(fixture);
            )*
            $(
                println!("conformance case {}", stringify!($capability_case));
                let fixture = $factory.await;
                $crate::conformance::$capability_case(
                    $crate::conformance::Fixture::database(&fixture),
                    $capabilities,
                )
                .await;
                drop(fixture);
            )*
        }
    };
    (@cases $backend:ident, $factory:expr, $capabilities:expr,
        [$($case:ident),* $(,)?], [$($capability_case:ident),* $(,)?]) => {
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
            $(
                #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $capability_case() {
                    let fixture = $factory.await;
                    $crate::conformance::$capability_case(
                        $crate::conformance::Fixture::database(&fixture),
                        $capabilities,
                    )
                    .await;
                }
            )*
        }
    };
}

/// A future running every conformance case in turn, each on a fresh fixture from
/// `$factory`, in the current test. For backends whose cases must share something set up
/// once and torn down after all of them (FoundationDB's network thread), where one test
/// per case (`conformance_tests!`) cannot be used.
#[macro_export]
macro_rules! conformance_suite {
    ($factory:expr, $capabilities:expr) => {
        $crate::conformance_tests!(@with_cases @run $factory, $capabilities,)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_whole_suite_runs_in_one_test() {
        crate::conformance_suite!(async { Database::memory() }, Capabilities::FDB).await;
    }
}
