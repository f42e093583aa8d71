//! One FoundationDB transaction behind the backend trait.

use std::sync::Mutex;

use foundationdb::options::{ConflictRangeType, MutationType, StreamingMode};
use foundationdb::{RangeOption, Transaction};

use super::fdb_error;
use crate::backend::{BackendTransaction, RangeOptions};
use crate::error::StorageError;
use crate::sync::lock;

/// A FoundationDB transaction; FDB itself provides read-your-writes and conflict checks.
pub(crate) struct FdbTransaction {
    /// `None` once committed (FDB's commit consumes the transaction).
    tx: Mutex<Option<Transaction>>,
    /// The first error of an infallible trait method, reported by the commit.
    deferred: Mutex<Option<StorageError>>,
}

impl FdbTransaction {
    pub(crate) fn new(tx: Transaction) -> Self {
        Self {
            tx: Mutex::new(Some(tx)),
            deferred: Mutex::new(None),
        }
    }

    /// Runs `operation` on the live transaction (never across an await).
    fn with<T>(&self, operation: impl FnOnce(&Transaction) -> T) -> Result<T, StorageError> {
        match lock(&self.tx).as_ref() {
            Some(tx) => Ok(operation(tx)),
            None => Err(StorageError::TransactionFinished),
        }
    }
}

#[async_trait::async_trait]
impl BackendTransaction for FdbTransaction {
    async fn get(&self, key: &[u8], snapshot: bool) -> Result<Option<Vec<u8>>, StorageError> {
        let read = self.with(|tx| tx.get(key, snapshot))?;
        let value = read.await.map_err(|error| fdb_error("fdb get", error))?;
        Ok(value.map(|value| value.to_vec()))
    }

    async fn get_range(
        &self,
        begin: &[u8],
        end: &[u8],
        options: RangeOptions,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>, StorageError> {
        let mut range = RangeOption {
            limit: options.limit,
            reverse: options.reverse,
            mode: StreamingMode::WantAll,
            ..RangeOption::from((begin.to_vec(), end.to_vec()))
        };
        let mut pairs = Vec::new();
        let mut iteration = 1;
        loop {
            let read = self.with(|tx| tx.get_range(&range, iteration, options.snapshot))?;
            let values = read
                .await
                .map_err(|error| fdb_error("fdb get range", error))?;
            pairs.extend(
                values
                    .iter()
                    .map(|pair| (pair.key().to_vec(), pair.value().to_vec())),
            );
            // Follows FDB's batches until the range or the limit is exhausted.
            match range.next_range(&values) {
                Some(next) => {
                    range = next;
                    iteration += 1;
                }
                None => break,
            }
        }
        Ok(pairs)
    }

    fn set(&self, key: &[u8], value: &[u8]) -> Result<(), StorageError> {
        self.with(|tx| tx.set(key, value))
    }

    fn clear(&self, key: &[u8]) -> Result<(), StorageError> {
        self.with(|tx| tx.clear(key))
    }

    fn clear_range(&self, begin: &[u8], end: &[u8]) -> Result<(), StorageError> {
        self.with(|tx| tx.clear_range(begin, end))
    }

    fn atomic_add(&self, key: &[u8], delta: i64) -> Result<(), StorageError> {
        self.with(|tx| tx.atomic_op(key, &delta.to_le_bytes(), MutationType::Add))
    }

    fn add_read_conflict_range(&self, begin: &[u8], end: &[u8]) {
        let added = self.with(|tx| tx.add_conflict_range(begin, end, ConflictRangeType::Read));
        let error = match added {
            Ok(Ok(())) => return,
            Ok(Err(error)) => fdb_error("fdb add read conflict range", error),
            Err(error) => error,
        };
        lock(&self.deferred).get_or_insert(error);
    }

    async fn commit(&self) -> Result<(), StorageError> {
        if let Some(error) = lock(&self.deferred).take() {
            return Err(error);
        }
        let tx = lock(&self.tx)
            .take()
            .ok_or(StorageError::TransactionFinished)?;
        match tx.commit().await {
            Ok(_committed) => Ok(()),
            Err(error) => Err(fdb_error("fdb commit", *error)),
        }
    }
}
