//! Gatehouse storage: an FDB-shaped transactional key-value store (ordered byte keys,
//! serializable transactions with read-your-writes, conflict detection and retry loops)
//! over interchangeable backends, plus a conformance suite every backend must pass.
//!
//! Keys are tuple-encoded by callers; this crate knows nothing about what they mean.

mod backend;
pub mod codec;
pub mod conformance;
mod database;
mod engine;
mod error;
#[cfg(feature = "fdb")]
pub mod fdb;
mod limits;
pub mod postgres;
mod transaction;

pub use backend::{Backend, BackendTransaction, RangeOptions};
pub use database::{Database, RetryOptions, StorageStats};
pub use error::{AsStorageError, StorageError};
pub use foundationdb_tuple as tuple;
pub use foundationdb_tuple::Subspace;
pub use limits::{MAX_KEY_SIZE, MAX_TRANSACTION_SIZE, MAX_VALUE_SIZE, TRANSACTION_LIFETIME};
pub use postgres::PostgresOptions;
pub use transaction::Transaction;

/// `[prefix, strinc(prefix))`: the range of every key starting with `prefix`.
///
/// Like FDB, keys from `\xff` on are treated as outside the normal keyspace: an empty or
/// all-`\xff` prefix ends at `prefix + \xff`.
pub fn prefix_range(prefix: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let mut end = prefix.to_vec();
    while end.last() == Some(&0xff) {
        end.pop();
    }
    match end.last_mut() {
        Some(last) => *last += 1,
        None => {
            end = prefix.to_vec();
            end.push(0xff);
        }
    }
    (prefix.to_vec(), end)
}

/// Locks `mutex`, recovering the data if a panicking thread poisoned it: every critical
/// section here leaves its data consistent before anything that could panic.
pub(crate) fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_range_increments_last_byte_below_ff() {
        assert_eq!(prefix_range(b"ab"), (b"ab".to_vec(), b"ac".to_vec()));
        assert_eq!(
            prefix_range(&[1, 0xff, 0xff]),
            (vec![1, 0xff, 0xff], vec![2])
        );
        assert_eq!(prefix_range(b""), (vec![], vec![0xff]));
        assert_eq!(prefix_range(&[0xff]), (vec![0xff], vec![0xff, 0xff]));
    }

    #[test]
    fn prefix_range_of_a_subspace_covers_its_keys() {
        let subspace = Subspace::all().subspace(&("t", "tenant"));
        let (begin, end) = prefix_range(subspace.bytes());
        let key = subspace.pack(&("user", 7_i64));
        assert!(begin.as_slice() <= key.as_slice() && key.as_slice() < end.as_slice());
    }
}
