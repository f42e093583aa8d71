//! The generic transaction: enforces FDB's limits and lifetime uniformly over any backend
//! and counts commits and conflicts.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::backend::{BackendTransaction, RangeOptions};
use crate::error::StorageError;
use crate::limits::{MAX_KEY_SIZE, MAX_TRANSACTION_SIZE, MAX_VALUE_SIZE};
use crate::occ::keys::key_after;
use crate::stats::Counters;
use crate::sync::lock;

/// Bytes a point write costs: the mutation plus its write conflict key.
fn point_write_cost(key: &[u8]) -> usize {
    2 * key.len()
}

/// A serializable transaction with read-your-writes; cheap to clone, all clones share it.
#[derive(Clone)]
pub struct Transaction {
    inner: Arc<Inner>,
}

struct Inner {
    backend_tx: Box<dyn BackendTransaction>,
    backend_name: &'static str,
    started: Instant,
    lifetime: Duration,
    counters: Arc<Counters>,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    finished: bool,
    /// Bytes of mutations and conflict ranges so far.
    size: usize,
    /// Set once the size limit was crossed, so the commit fails instead of writing a partial
    /// transaction whose caller ignored the error.
    oversize: Option<usize>,
}

impl std::fmt::Debug for Transaction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = lock(&self.inner.state);
        f.debug_struct("Transaction")
            .field("backend", &self.inner.backend_name)
            .field("age", &self.inner.started.elapsed())
            .field("finished", &state.finished)
            .field("size", &state.size)
            .finish_non_exhaustive()
    }
}

impl Transaction {
    pub(crate) fn new(
        backend_tx: Box<dyn BackendTransaction>,
        backend_name: &'static str,
        lifetime: Duration,
        counters: Arc<Counters>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                backend_tx,
                backend_name,
                started: Instant::now(),
                lifetime,
                counters,
                state: Mutex::new(State::default()),
            }),
        }
    }

    /// Reads `key`, adding a read conflict on it.
    pub async fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        self.check_read(key)?;
        self.reserve(key.len())?;
        self.inner.backend_tx.get(key, false).await
    }

    /// Reads `key` without a read conflict: concurrent writes to it will not abort this transaction.
    pub async fn snapshot_get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        self.check_read(key)?;
        self.inner.backend_tx.get(key, true).await
    }

    /// Reads the pairs in `[begin, end)`, in key order or reversed, up to `options.limit`.
    pub async fn get_range(
        &self,
        begin: &[u8],
        end: &[u8],
        options: RangeOptions,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>, StorageError> {
        self.check_open()?;
        check_range(begin, end)?;
        self.check_age()?;
        if !options.snapshot {
            self.reserve(begin.len() + end.len())?;
        }
        if begin == end || options.limit == Some(0) {
            return Ok(Vec::new());
        }
        self.inner.backend_tx.get_range(begin, end, options).await
    }

    /// Writes `value` at `key` when the transaction commits.
    pub fn set(&self, key: &[u8], value: &[u8]) -> Result<(), StorageError> {
        self.check_open()?;
        check_key(key)?;
        if value.len() > MAX_VALUE_SIZE {
            return Err(StorageError::ValueTooLarge { size: value.len() });
        }
        self.reserve(point_write_cost(key) + value.len())?;
        self.inner.backend_tx.set(key, value)
    }

    /// Removes `key` when the transaction commits.
    pub fn clear(&self, key: &[u8]) -> Result<(), StorageError> {
        self.check_open()?;
        check_key(key)?;
        self.reserve(point_write_cost(key))?;
        self.inner.backend_tx.clear(key)
    }

    /// Removes every key in `[begin, end)` when the transaction commits.
    pub fn clear_range(&self, begin: &[u8], end: &[u8]) -> Result<(), StorageError> {
        self.check_open()?;
        check_range(begin, end)?;
        if begin == end {
            return Ok(());
        }
        self.reserve(2 * (begin.len() + end.len()))?;
        self.inner.backend_tx.clear_range(begin, end)
    }

    /// Adds `delta` to the little-endian i64 at `key` (missing = 0) at commit, like FDB ADD;
    /// concurrent adds never conflict.
    pub fn atomic_add(&self, key: &[u8], delta: i64) -> Result<(), StorageError> {
        self.check_open()?;
        check_key(key)?;
        self.reserve(point_write_cost(key) + std::mem::size_of::<i64>())?;
        self.inner.backend_tx.atomic_add(key, delta)
    }

    /// Makes the commit fail if another transaction writes `key` after this one began.
    pub fn add_read_conflict_key(&self, key: &[u8]) -> Result<(), StorageError> {
        self.check_open()?;
        check_key(key)?;
        self.reserve(2 * key.len() + 1)?;
        self.inner
            .backend_tx
            .add_read_conflict_range(key, &key_after(key));
        Ok(())
    }

    /// Commits atomically; afterwards (success or not) the transaction is finished.
    pub async fn commit(&self) -> Result<(), StorageError> {
        let oversize = {
            let mut state = lock(&self.inner.state);
            if state.finished {
                return Err(StorageError::TransactionFinished);
            }
            state.finished = true;
            state.oversize
        };
        if let Some(size) = oversize {
            return Err(StorageError::TransactionTooLarge { size });
        }
        self.check_age()?;
        let result = self.inner.backend_tx.commit().await;
        let backend = self.inner.backend_name;
        match &result {
            Ok(()) => {
                self.inner.counters.record_commit();
                metrics::counter!("gatehouse_storage_commits_total", "backend" => backend)
                    .increment(1);
            }
            Err(StorageError::Conflict) => {
                self.inner.counters.record_conflict();
                metrics::counter!("gatehouse_storage_conflicts_total", "backend" => backend)
                    .increment(1);
            }
            Err(_) => {}
        }
        result
    }

    fn check_open(&self) -> Result<(), StorageError> {
        if lock(&self.inner.state).finished {
            return Err(StorageError::TransactionFinished);
        }
        Ok(())
    }

    fn check_age(&self) -> Result<(), StorageError> {
        if self.inner.started.elapsed() > self.inner.lifetime {
            return Err(StorageError::TransactionTooOld);
        }
        Ok(())
    }

    fn check_read(&self, key: &[u8]) -> Result<(), StorageError> {
        self.check_open()?;
        check_key(key)?;
        self.check_age()
    }

    /// Accounts `bytes` towards the transaction size limit.
    fn reserve(&self, bytes: usize) -> Result<(), StorageError> {
        let mut state = lock(&self.inner.state);
        if let Some(size) = state.oversize {
            return Err(StorageError::TransactionTooLarge { size });
        }
        let size = state.size.saturating_add(bytes);
        if size > MAX_TRANSACTION_SIZE {
            state.oversize = Some(size);
            return Err(StorageError::TransactionTooLarge { size });
        }
        state.size = size;
        Ok(())
    }
}

fn check_key(key: &[u8]) -> Result<(), StorageError> {
    if key.len() > MAX_KEY_SIZE {
        return Err(StorageError::KeyTooLarge { size: key.len() });
    }
    Ok(())
}

fn check_range(begin: &[u8], end: &[u8]) -> Result<(), StorageError> {
    check_key(begin)?;
    // An end key one byte past a maximal key is how a caller bounds that key's range.
    if end.len() > MAX_KEY_SIZE + 1 {
        return Err(StorageError::KeyTooLarge { size: end.len() });
    }
    if begin > end {
        return Err(StorageError::InvalidRange);
    }
    Ok(())
}
