//! The database handle: starts transactions on a backend and runs retry loops.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;

use crate::backend::{Backend, BackendTransaction};
use crate::engine::RedbBackend;
use crate::error::{AsStorageError, StorageError};
use crate::limits::TRANSACTION_LIFETIME;
use crate::postgres::{PostgresBackend, PostgresOptions};
use crate::stats::{Counters, StorageStats};
use crate::transaction::Transaction;

/// How `Database::run` retries retryable errors.
#[derive(Debug, Clone, Copy)]
pub struct RetryOptions {
    /// Retries after the first attempt before giving up with `RetryLimitExceeded`.
    pub retry_limit: u32,
    /// Backoff before the first retry; doubles on each retry.
    pub initial_backoff: Duration,
    /// Ceiling of the backoff.
    pub max_backoff: Duration,
}

impl Default for RetryOptions {
    fn default() -> Self {
        Self {
            retry_limit: 50,
            initial_backoff: Duration::from_millis(2),
            max_backoff: Duration::from_millis(200),
        }
    }
}

/// A handle on a transactional key-value store; cheap to clone.
#[derive(Clone, Debug)]
pub struct Database {
    backend: Arc<dyn Backend>,
    retry: RetryOptions,
    transaction_lifetime: Duration,
    counters: Arc<Counters>,
}

impl Database {
    /// A fresh, empty, non-durable store for tests.
    pub fn memory() -> Database {
        match RedbBackend::memory() {
            Ok(backend) => Self::from_backend(Arc::new(backend)),
            // Only an allocation failure gets here; surfacing it on first use keeps the
            // constructor infallible as callers expect.
            Err(error) => Self::from_backend(Arc::new(UnavailableBackend {
                name: "memory",
                error,
            })),
        }
    }

    /// Opens (creating if missing) the durable store in `dir`.
    pub fn open_embedded(dir: &Path) -> Result<Database, StorageError> {
        Ok(Self::from_backend(Arc::new(RedbBackend::open(dir)?)))
    }

    /// Connects to the shared PostgreSQL database at `url` with default options, creating
    /// the schema if missing.
    pub async fn open_postgres(url: &str) -> Result<Database, StorageError> {
        Self::open_postgres_with(url, PostgresOptions::default()).await
    }

    /// Connects to the shared PostgreSQL database at `url`, creating the schema if missing.
    pub async fn open_postgres_with(
        url: &str,
        options: PostgresOptions,
    ) -> Result<Database, StorageError> {
        let backend = PostgresBackend::connect(url, options).await?;
        Ok(Self::from_backend(Arc::new(backend)))
    }

    /// Opens the FoundationDB cluster of `cluster_file` (`None`: the client's default cluster
    /// file); the network must be running (see [`crate::fdb::boot`]).
    #[cfg(feature = "fdb")]
    pub fn open_fdb(cluster_file: Option<&Path>) -> Result<Database, StorageError> {
        let backend = crate::fdb::FdbBackend::open(cluster_file)?;
        Ok(Self::from_backend(Arc::new(backend)))
    }

    /// Wraps any backend (PostgreSQL, FoundationDB, ...) with the generic limits and retry loop.
    pub fn from_backend(backend: Arc<dyn Backend>) -> Database {
        Database {
            backend,
            retry: RetryOptions::default(),
            transaction_lifetime: TRANSACTION_LIFETIME,
            counters: Arc::new(Counters::default()),
        }
    }

    /// The same database with other retry options for `run`.
    pub fn with_retry_options(mut self, options: RetryOptions) -> Database {
        self.retry = options;
        self
    }

    /// Shortens the transaction lifetime so tests of `TransactionTooOld` need not wait 5 s.
    #[cfg(feature = "testkit")]
    pub(crate) fn with_transaction_lifetime(mut self, lifetime: Duration) -> Database {
        self.transaction_lifetime = lifetime;
        self
    }

    /// The backend's name: "memory", "embedded", ...
    pub fn backend_name(&self) -> &'static str {
        self.backend.name()
    }

    /// Starts a transaction at the latest committed version.
    pub async fn create_transaction(&self) -> Result<Transaction, StorageError> {
        let backend_tx = self.backend.begin().await?;
        Ok(Transaction::new(
            backend_tx,
            self.backend.name(),
            self.transaction_lifetime,
            self.counters.clone(),
        ))
    }

    /// Runs `f` in a fresh transaction and commits; retries retryable errors (conflict, too old)
    /// with exponential backoff and jitter up to the retry limit. `f` must be idempotent.
    pub async fn run<T, E, F, Fut>(&self, mut f: F) -> Result<T, E>
    where
        F: FnMut(Transaction) -> Fut,
        Fut: std::future::Future<Output = Result<T, E>>,
        E: From<StorageError> + AsStorageError,
    {
        let mut backoff = self.retry.initial_backoff;
        let mut attempts: u32 = 0;
        loop {
            attempts = attempts.saturating_add(1);
            let error = match self.attempt(&mut f).await {
                Ok(value) => return Ok(value),
                Err(error) => error,
            };
            let last = match error.as_storage_error() {
                Some(storage_error) if storage_error.is_retryable() => storage_error.clone(),
                _ => return Err(error),
            };
            if attempts > self.retry.retry_limit {
                return Err(E::from(StorageError::RetryLimitExceeded {
                    attempts,
                    last: Box::new(last),
                }));
            }
            self.counters.record_retry();
            metrics::counter!("gatehouse_storage_retries_total", "backend" => self.backend.name())
                .increment(1);
            tokio::time::sleep(jittered(backoff)).await;
            backoff = backoff.saturating_mul(2).min(self.retry.max_backoff);
        }
    }

    async fn attempt<T, E, F, Fut>(&self, f: &mut F) -> Result<T, E>
    where
        F: FnMut(Transaction) -> Fut,
        Fut: std::future::Future<Output = Result<T, E>>,
        E: From<StorageError>,
    {
        let tx = self.create_transaction().await?;
        let value = f(tx.clone()).await?;
        tx.commit().await?;
        Ok(value)
    }

    /// Counters since open.
    pub fn stats(&self) -> StorageStats {
        self.counters.stats(self.backend.stats().durable_syncs)
    }
}

/// A delay in `[backoff / 2, backoff]` so retrying transactions spread out instead of colliding again.
fn jittered(backoff: Duration) -> Duration {
    let factor: f64 = rand::thread_rng().gen_range(0.5..=1.0);
    backoff.mul_f64(factor)
}

/// Stands in for a backend that could not be created, failing every transaction with why.
#[derive(Debug)]
struct UnavailableBackend {
    name: &'static str,
    error: StorageError,
}

#[async_trait::async_trait]
impl Backend for UnavailableBackend {
    fn name(&self) -> &'static str {
        self.name
    }

    async fn begin(&self) -> Result<Box<dyn BackendTransaction>, StorageError> {
        Err(self.error.clone())
    }

    fn stats(&self) -> StorageStats {
        StorageStats::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_within_half_and_full_backoff() {
        for _ in 0..100 {
            let delay = jittered(Duration::from_millis(100));
            assert!(delay >= Duration::from_millis(50) && delay <= Duration::from_millis(100));
        }
    }
}
