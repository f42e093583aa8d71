//! The `postgres` backend: a store several nodes share, on one PostgreSQL database.
//!
//! Data lives in one table of ordered bytea keys (`gatehouse_kv`). A Gatehouse transaction
//! is two PostgreSQL transactions on one pooled connection, shaped like FoundationDB's own
//! split between read versions and a resolver:
//!
//! - **Reads** run in a `REPEATABLE READ READ ONLY` transaction opened by `begin`, so every
//!   read sees the snapshot taken at `begin` and takes no predicate locks: snapshot reads
//!   never conflict. Writes are buffered locally and overlaid on reads (read-your-writes).
//! - **Commit** ends the snapshot and opens a `SERIALIZABLE` transaction that validates the
//!   read conflict ranges against `gatehouse_write_log` (any range written by a commit the
//!   snapshot did not see is a `Conflict`, as in FDB), applies the buffered writes, records
//!   its own written ranges in the log, and commits. Serialization failures (SQLSTATE 40001)
//!   and deadlocks (40P01) are `Conflict`, which `Database::run` retries. Commits that run
//!   at the same time are checked against each other by PostgreSQL's serializable snapshot
//!   isolation over the log, which closes the window between validating and committing.
//!
//! Differences from FDB, all in the direction of extra retries, never of lost writes:
//! commits that overlap in time and write the same key (blind writes, atomic adds) can
//! conflict, and PostgreSQL's predicate locks are page-grained, so two concurrent commits
//! can conflict on nearby keys. Keys must fit a btree index entry (about 2.7 kB after
//! compression), below FDB's 10 kB.

#[cfg(feature = "testkit")]
pub mod harness;
mod schema;
mod transaction;

use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};
use tokio_postgres::NoTls;
use tokio_postgres::error::SqlState;

use self::transaction::PostgresSnapshot;
use crate::backend::{Backend, BackendTransaction};
use crate::error::StorageError;
use crate::occ::OptimisticTransaction;
use crate::stats::StorageStats;
use crate::sync::lock;

/// Server-side limits of every pooled session. A commit's few statements are bounded by
/// them, which bounds how late a write log entry can become visible (see `LOG_RETENTION`).
const SESSION_OPTIONS: &str =
    "-c statement_timeout=5000 -c idle_in_transaction_session_timeout=10000";
/// A snapshot older than this (server clock) may no longer be validated: `TransactionTooOld`.
/// The generic layer's 5 s lifetime normally ends transactions long before.
const MAX_SNAPSHOT_AGE: Duration = Duration::from_secs(10);
/// How long write log entries are kept: above `MAX_SNAPSHOT_AGE` plus the longest a commit
/// can stay open under `SESSION_OPTIONS`, so no snapshot that may still commit misses one.
const LOG_RETENTION: Duration = Duration::from_secs(120);
/// How often one handle prunes the write log.
const PRUNE_INTERVAL: Duration = Duration::from_secs(10);

/// Settings of the PostgreSQL backend.
#[derive(Debug, Clone)]
pub struct PostgresOptions {
    /// Connections in the pool; each open transaction holds one until it commits or drops.
    pub max_connections: usize,
    /// How long `begin` waits for a free connection before failing.
    pub connection_wait: Duration,
    /// How long connecting to the server may take.
    pub connect_timeout: Duration,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        Self {
            max_connections: 8,
            connection_wait: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(5),
        }
    }
}

/// A backend over one PostgreSQL database.
pub(crate) struct PostgresBackend {
    pool: Pool,
    shared: Arc<Shared>,
}

/// What the backend and its transactions share.
#[derive(Debug)]
pub(crate) struct Shared {
    /// Commits that wrote (each one a durable PostgreSQL commit).
    durable_commits: AtomicU64,
    /// When this handle last pruned the write log; `None` before its first commit.
    last_prune: std::sync::Mutex<Option<Instant>>,
}

impl Shared {
    pub(crate) fn record_durable_commit(&self) {
        self.durable_commits.fetch_add(1, Ordering::Relaxed);
    }

    /// Whether this commit should prune the write log; at most once per `PRUNE_INTERVAL`.
    pub(crate) fn claim_prune(&self) -> bool {
        let mut last = lock(&self.last_prune);
        if last.is_some_and(|last| last.elapsed() < PRUNE_INTERVAL) {
            return false;
        }
        *last = Some(Instant::now());
        true
    }
}

impl std::fmt::Debug for PostgresBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresBackend")
            .field("pool", &self.pool.status())
            .field("shared", &self.shared)
            .finish()
    }
}

impl PostgresBackend {
    /// Connects to `url` (`postgres://user:password@host:port/database` or key=value),
    /// checks the server and creates the schema if missing.
    pub(crate) async fn connect(url: &str, options: PostgresOptions) -> Result<Self, StorageError> {
        let mut config = tokio_postgres::Config::from_str(url)
            .map_err(|error| StorageError::backend("parse postgresql url", error))?;
        let session_options = match config.get_options() {
            Some(existing) if !existing.is_empty() => format!("{existing} {SESSION_OPTIONS}"),
            _ => SESSION_OPTIONS.to_owned(),
        };
        config.options(&session_options);
        if config.get_application_name().is_none() {
            config.application_name("gatehouse");
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(options.connect_timeout);
        }
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(options.max_connections.max(1))
            .wait_timeout(Some(options.connection_wait))
            .create_timeout(Some(options.connect_timeout))
            .runtime(Runtime::Tokio1)
            .build()
            .map_err(|error| StorageError::backend("build postgresql pool", error))?;
        let backend = Self {
            pool,
            shared: Arc::new(Shared {
                durable_commits: AtomicU64::new(0),
                last_prune: std::sync::Mutex::new(None),
            }),
        };
        let client = backend.connection().await?;
        schema::ensure(&client).await?;
        Ok(backend)
    }

    async fn connection(&self) -> Result<Object, StorageError> {
        self.pool
            .get()
            .await
            .map_err(|error| StorageError::backend("get a postgresql connection", error))
    }
}

#[async_trait::async_trait]
impl Backend for PostgresBackend {
    fn name(&self) -> &'static str {
        "postgres"
    }

    async fn begin(&self) -> Result<Box<dyn BackendTransaction>, StorageError> {
        // A pooled connection the server has dropped (restart, idle timeout) is only
        // noticed on use: try others before giving up.
        let mut attempts = 0;
        loop {
            attempts += 1;
            let client = self.connection().await?;
            match PostgresSnapshot::begin(client, self.shared.clone()).await {
                Ok(snapshot) => return Ok(Box::new(OptimisticTransaction::new(snapshot))),
                Err(BeginError::Closed(error)) if attempts <= self.pool.status().max_size => {
                    tracing::debug!(%error, "discarding a closed postgresql connection");
                }
                Err(BeginError::Closed(error)) | Err(BeginError::Other(error)) => {
                    return Err(error);
                }
            }
        }
    }

    fn stats(&self) -> StorageStats {
        StorageStats {
            durable_syncs: self.shared.durable_commits.load(Ordering::Relaxed),
            ..StorageStats::default()
        }
    }
}

/// Why `begin` failed: a dead connection is worth retrying on another one.
pub(crate) enum BeginError {
    /// The connection was closed; it has been discarded.
    Closed(StorageError),
    /// Anything else.
    Other(StorageError),
}

/// Whether PostgreSQL reports that the transaction lost a serialization race.
fn is_conflict(error: &tokio_postgres::Error) -> bool {
    matches!(
        error.code(),
        Some(code) if *code == SqlState::T_R_SERIALIZATION_FAILURE
            || *code == SqlState::T_R_DEADLOCK_DETECTED
    )
}

/// Whether the error says nothing of what the server did (connection lost mid-request).
fn is_connection_loss(error: &tokio_postgres::Error) -> bool {
    error.code().is_none() && error.as_db_error().is_none()
}

/// Maps a PostgreSQL error: serialization failures and deadlocks are `Conflict`, anything
/// else is `Backend` with `context` and the server's message.
pub(crate) fn sql_error(context: &str, error: &tokio_postgres::Error) -> StorageError {
    if is_conflict(error) {
        return StorageError::Conflict;
    }
    if error.code() == Some(&SqlState::PROGRAM_LIMIT_EXCEEDED) {
        return StorageError::Backend(format!(
            "{context}: {}: with the postgres backend a key must fit a btree index entry \
             (about 2.7 kB after compression)",
            describe(error)
        ));
    }
    StorageError::Backend(format!("{context}: {}", describe(error)))
}

/// The server's message and SQLSTATE when there is one, else the client's error and cause.
fn describe(error: &tokio_postgres::Error) -> String {
    if let Some(db) = error.as_db_error() {
        return format!("{} (sqlstate {})", db.message(), db.code().code());
    }
    match std::error::Error::source(error) {
        Some(source) => format!("{error}: {source}"),
        None => error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::Database;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn commits_log_their_writes_and_pruning_forgets_old_entries() {
        let server = tokio::task::spawn_blocking(harness::PostgresServer::shared)
            .await
            .unwrap()
            .expect("test postgresql server");
        let url = server.create_database().await.unwrap();
        let backend = PostgresBackend::connect(&url, PostgresOptions::default())
            .await
            .unwrap();
        let client = backend.connection().await.unwrap();
        let db = Database::open_postgres(&url).await.unwrap();
        let tx = db.create_transaction().await.unwrap();
        tx.set(b"a", b"1").unwrap();
        tx.clear_range(b"m", b"p").unwrap();
        tx.commit().await.unwrap();
        assert_eq!(log_entries(&client).await, 2);
        transaction::prune_write_log(&client).await;
        assert_eq!(log_entries(&client).await, 2, "recent entries are kept");
        client
            .execute(
                "UPDATE gatehouse_write_log SET committed_at = committed_at - interval '1 hour'",
                &[],
            )
            .await
            .unwrap();
        transaction::prune_write_log(&client).await;
        assert_eq!(log_entries(&client).await, 0);
        assert_eq!(db.stats().durable_syncs, 1);
    }

    async fn log_entries(client: &Object) -> i64 {
        let row = client
            .query_one("SELECT count(*) FROM gatehouse_write_log", &[])
            .await
            .unwrap();
        row.get(0)
    }
}
