//! The `foundationdb` backend (cargo feature `fdb`): the scale-out engine the storage trait
//! is shaped after, so this is a thin mapping onto the FoundationDB client.
//!
//! # The network thread, once per process
//!
//! The FoundationDB client runs one network thread per process, started once and stopped
//! before the process exits. [`boot`] starts it and returns the [`FdbNetwork`] guard that
//! stops it; [`Database::open_fdb`](crate::Database::open_fdb) refuses to open anything
//! while no guard is alive. A binary boots in `main` and keeps the guard until `main`
//! returns:
//!
//! ```ignore
//! // SAFETY: `_network` lives until the end of main, and nothing calls process::exit.
//! let _network = unsafe { gatehouse_storage::fdb::boot()? };
//! let db = gatehouse_storage::Database::open_fdb(None)?;
//! ```

mod transaction;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use foundationdb::FdbError;
use foundationdb::api::{FdbApiBuilder, NetworkAutoStop};

use self::transaction::FdbTransaction;
use crate::backend::{Backend, BackendTransaction};
use crate::error::StorageError;
use crate::stats::StorageStats;

/// FDB's `not_committed`: a read conflict.
const NOT_COMMITTED: i32 = 1020;

/// Set by the first `boot`: FDB's network can only be set up once per process.
static BOOTED: AtomicBool = AtomicBool::new(false);
/// Whether a guard is alive, so databases can be opened.
static RUNNING: AtomicBool = AtomicBool::new(false);

/// Keeps the FoundationDB network thread running; dropping it stops the thread for good.
pub struct FdbNetwork {
    stop: Option<NetworkAutoStop>,
}

impl std::fmt::Debug for FdbNetwork {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FdbNetwork")
            .field("running", &self.stop.is_some())
            .finish()
    }
}

impl Drop for FdbNetwork {
    fn drop(&mut self) {
        RUNNING.store(false, Ordering::SeqCst);
        // Stops the run loop and joins the network thread.
        self.stop.take();
    }
}

/// Starts the FoundationDB client network thread; only the first call in a process can
/// succeed, later ones fail.
///
/// # Safety
///
/// The returned guard must be dropped before the process exits (it may not be leaked, and
/// `std::process::exit` may not run while it is alive); an aborting process is fine. This
/// is the contract of `foundationdb::boot`, which this wraps.
#[allow(unsafe_code)]
pub unsafe fn boot() -> Result<FdbNetwork, StorageError> {
    if BOOTED.swap(true, Ordering::SeqCst) {
        return Err(StorageError::Backend(
            "boot fdb network: already started once in this process".to_owned(),
        ));
    }
    let builder = FdbApiBuilder::default()
        .build()
        .map_err(|error| fdb_error("set up fdb network", error))?;
    // SAFETY: the caller keeps the returned guard alive until before the process exits,
    // which is exactly what `FdbApiBuilder::boot` requires.
    let stop = unsafe { builder.boot() }.map_err(|error| fdb_error("boot fdb network", error))?;
    RUNNING.store(true, Ordering::SeqCst);
    Ok(FdbNetwork { stop: Some(stop) })
}

/// A backend over one FoundationDB database.
pub(crate) struct FdbBackend {
    db: foundationdb::Database,
}

impl std::fmt::Debug for FdbBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FdbBackend").finish_non_exhaustive()
    }
}

impl FdbBackend {
    /// Opens the cluster named by `cluster_file` (`None`: the default cluster file).
    pub(crate) fn open(cluster_file: Option<&Path>) -> Result<Self, StorageError> {
        if !RUNNING.load(Ordering::SeqCst) {
            return Err(StorageError::Backend(
                "open fdb database: the fdb network is not running; call \
                 gatehouse_storage::fdb::boot() first and keep its guard"
                    .to_owned(),
            ));
        }
        let path = match cluster_file {
            Some(path) => Some(path.to_str().ok_or_else(|| {
                StorageError::Backend(format!(
                    "open fdb database: cluster file path {} is not utf-8",
                    path.display()
                ))
            })?),
            None => None,
        };
        let db = foundationdb::Database::new(path)
            .map_err(|error| fdb_error("open fdb database", error))?;
        Ok(Self { db })
    }
}

#[async_trait::async_trait]
impl Backend for FdbBackend {
    fn name(&self) -> &'static str {
        "foundationdb"
    }

    async fn begin(&self) -> Result<Box<dyn BackendTransaction>, StorageError> {
        let tx = self
            .db
            .create_trx()
            .map_err(|error| fdb_error("create fdb transaction", error))?;
        Ok(Box::new(FdbTransaction::new(tx)))
    }

    fn stats(&self) -> StorageStats {
        StorageStats::default()
    }
}

/// Maps an FDB error: `not_committed` is `Conflict`, maybe-committed is
/// `CommitUnknownResult`, other retryable errors (too old, future version, process behind)
/// are the retryable `TransactionTooOld`, the rest `Backend` with `context`.
pub(crate) fn fdb_error(context: &str, error: FdbError) -> StorageError {
    if error.code() == NOT_COMMITTED {
        return StorageError::Conflict;
    }
    if error.is_maybe_committed() {
        return StorageError::CommitUnknownResult;
    }
    if error.is_retryable() {
        return StorageError::TransactionTooOld;
    }
    StorageError::Backend(format!(
        "{context}: {} (fdb error {})",
        error.message(),
        error.code()
    ))
}
