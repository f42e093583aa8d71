//! The redb engine behind the `memory` and `embedded` backends: snapshot reads from redb
//! read transactions, optimistic concurrency checked by one committer thread.

mod committer;

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use redb::{ReadOnlyTable, TableDefinition};
use tokio::sync::{mpsc, oneshot};

use self::committer::{CommitRequest, Committer};
use crate::backend::{Backend, BackendTransaction};
use crate::error::StorageError;
use crate::occ::overlay::SnapshotPairs;
use crate::occ::{Commit, OptimisticEngine, OptimisticTransaction, RangeHint};
use crate::stats::StorageStats;
use crate::sync::lock;

/// The user data: ordered byte keys to byte values.
const DATA: TableDefinition<&[u8], &[u8]> = TableDefinition::new("data");
/// Engine bookkeeping, written in the same redb transaction as the data it describes.
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
/// The version of the last commit; a snapshot's value is its transactions' read version.
const VERSION_KEY: &str = "commit_version";
/// The file of the embedded backend inside its data directory.
const EMBEDDED_FILE: &str = "gatehouse.redb";

/// A backend over one redb database (in memory or in a file).
pub(crate) struct RedbBackend {
    name: &'static str,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for RedbBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedbBackend")
            .field("name", &self.name)
            .field("durable_syncs", &self.shared.durable_syncs)
            .finish_non_exhaustive()
    }
}

/// What the backend and its live transactions share.
struct Shared {
    db: Arc<redb::Database>,
    /// The only sender, so the committer stops once the backend and every transaction are gone.
    sender: Mutex<Option<mpsc::UnboundedSender<CommitRequest>>>,
    committer: Mutex<Option<JoinHandle<()>>>,
    durable_syncs: Arc<AtomicU64>,
}

impl Drop for Shared {
    fn drop(&mut self) {
        lock(&self.sender).take();
        // Waiting for the committer releases the redb file before the handle is reported
        // gone, so the same directory can be reopened right away.
        if let Some(committer) = lock(&self.committer).take()
            && committer.join().is_err()
        {
            tracing::error!("storage committer thread panicked");
        }
    }
}

impl RedbBackend {
    /// A fresh in-memory store.
    pub(crate) fn memory() -> Result<Self, StorageError> {
        let db = redb::Database::builder()
            .create_with_backend(redb::backends::InMemoryBackend::new())
            .map_err(|error| StorageError::backend("create in-memory database", error))?;
        Self::start("memory", db)
    }

    /// Opens or creates `<dir>/gatehouse.redb`, creating `dir` if missing. The directory is
    /// made 0700 and the file 0600 (the store holds sealed secrets, hashes and personal data:
    /// no other local user reads it).
    pub(crate) fn open(dir: &Path) -> Result<Self, StorageError> {
        std::fs::create_dir_all(dir).map_err(|error| {
            StorageError::backend(&format!("create data directory {}", dir.display()), error)
        })?;
        restrict(dir, 0o700)?;
        let path = dir.join(EMBEDDED_FILE);
        let db = redb::Database::create(&path)
            .map_err(|error| StorageError::backend(&format!("open {}", path.display()), error))?;
        restrict(&path, 0o600)?;
        Self::start("embedded", db)
    }

    fn start(name: &'static str, db: redb::Database) -> Result<Self, StorageError> {
        let db = Arc::new(db);
        create_tables(&db)?;
        let version = stored_version(&db)?;
        let durable_syncs = Arc::new(AtomicU64::new(0));
        let (sender, receiver) = mpsc::unbounded_channel();
        let committer = Committer::new(db.clone(), receiver, version, durable_syncs.clone());
        let handle = std::thread::Builder::new()
            .name(format!("gatehouse-storage-{name}-committer"))
            .spawn(move || committer.run())
            .map_err(|error| StorageError::backend("spawn committer thread", error))?;
        Ok(Self {
            name,
            shared: Arc::new(Shared {
                db,
                sender: Mutex::new(Some(sender)),
                committer: Mutex::new(Some(handle)),
                durable_syncs,
            }),
        })
    }
}

/// Creates both tables so read transactions can always open them.
/// Sets `path`'s permission bits to `mode` (Unix; elsewhere the platform's defaults stay).
fn restrict(path: &Path, mode: u32) -> Result<(), StorageError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(|error| {
            StorageError::backend(&format!("restrict {}", path.display()), error)
        })?;
    }
    #[cfg(not(unix))]
    let _ = (path, mode);
    Ok(())
}

fn create_tables(db: &redb::Database) -> Result<(), StorageError> {
    let write = db
        .begin_write()
        .map_err(|error| StorageError::backend("begin write transaction", error))?;
    write
        .open_table(DATA)
        .map_err(|error| StorageError::backend("create data table", error))?;
    write
        .open_table(META)
        .map_err(|error| StorageError::backend("create meta table", error))?;
    write
        .commit()
        .map_err(|error| StorageError::backend("commit table creation", error))
}

/// The last committed version as stored.
fn stored_version(db: &redb::Database) -> Result<u64, StorageError> {
    let read = db
        .begin_read()
        .map_err(|error| StorageError::backend("begin read transaction", error))?;
    let meta = read
        .open_table(META)
        .map_err(|error| StorageError::backend("open meta table", error))?;
    read_meta_version(&meta)
}

fn read_meta_version(meta: &ReadOnlyTable<&str, u64>) -> Result<u64, StorageError> {
    let version = meta
        .get(VERSION_KEY)
        .map_err(|error| StorageError::backend("read commit version", error))?;
    Ok(version.map_or(0, |version| version.value()))
}

#[async_trait::async_trait]
impl Backend for RedbBackend {
    fn name(&self) -> &'static str {
        self.name
    }

    async fn begin(&self) -> Result<Box<dyn BackendTransaction>, StorageError> {
        let read = self
            .shared
            .db
            .begin_read()
            .map_err(|error| StorageError::backend("begin read transaction", error))?;
        // Data and version come from the same snapshot, so the version names exactly what
        // this transaction can see.
        let data = read
            .open_table(DATA)
            .map_err(|error| StorageError::backend("open data table", error))?;
        let meta = read
            .open_table(META)
            .map_err(|error| StorageError::backend("open meta table", error))?;
        let read_version = read_meta_version(&meta)?;
        Ok(Box::new(OptimisticTransaction::new(RedbSnapshot {
            shared: self.shared.clone(),
            snapshot: data,
            read_version,
        })))
    }

    fn stats(&self) -> StorageStats {
        StorageStats {
            durable_syncs: self.shared.durable_syncs.load(Ordering::Relaxed),
            ..StorageStats::default()
        }
    }
}

/// One transaction's view of redb: a read snapshot, and commits through the committer.
struct RedbSnapshot {
    shared: Arc<Shared>,
    snapshot: ReadOnlyTable<&'static [u8], &'static [u8]>,
    read_version: u64,
}

impl OptimisticEngine for RedbSnapshot {
    async fn read_key(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        let value = self
            .snapshot
            .get(key)
            .map_err(|error| StorageError::backend("read key", error))?;
        Ok(value.map(|value| value.value().to_vec()))
    }

    /// Streams the snapshot, so the overlay reads only as far as its limit: the hint is
    /// not needed.
    async fn read_range<'a>(
        &'a self,
        begin: &'a [u8],
        end: &'a [u8],
        reverse: bool,
        _hint: RangeHint,
    ) -> Result<SnapshotPairs<'a>, StorageError> {
        let range = self
            .snapshot
            .range::<&[u8]>(begin..end)
            .map_err(|error| StorageError::backend("read range", error))?;
        let pairs = range.map(|pair| {
            pair.map(|(key, value)| (key.value().to_vec(), value.value().to_vec()))
                .map_err(|error| StorageError::backend("read range", error))
        });
        Ok(if reverse {
            Box::new(pairs.rev())
        } else {
            Box::new(pairs)
        })
    }

    async fn commit_read_only(&self) -> Result<(), StorageError> {
        Ok(())
    }

    async fn commit(&self, commit: Commit) -> Result<(), StorageError> {
        let (reply, outcome) = oneshot::channel();
        let request = CommitRequest {
            read_version: self.read_version,
            commit,
            reply,
        };
        let sender = lock(&self.shared.sender).clone();
        let sent = match sender {
            Some(sender) => sender.send(request).is_ok(),
            None => false,
        };
        if !sent {
            return Err(StorageError::Backend(
                "storage committer stopped".to_owned(),
            ));
        }
        match outcome.await {
            Ok(result) => result.map(|_version| ()),
            // The committer took the request and vanished mid-batch.
            Err(_) => Err(StorageError::CommitUnknownResult),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use crate::{Database, StorageError};

    #[tokio::test]
    async fn reading_own_writes_adds_no_read_conflict() {
        let db = Database::memory();
        let tx = db.create_transaction().await.unwrap();
        tx.set(b"own", b"1").unwrap();
        tx.clear(b"gone").unwrap();
        assert_eq!(tx.get(b"own").await.unwrap(), Some(b"1".to_vec()));
        assert_eq!(tx.get(b"gone").await.unwrap(), None);
        let other = db.create_transaction().await.unwrap();
        other.set(b"own", b"2").unwrap();
        other.set(b"gone", b"2").unwrap();
        other.commit().await.unwrap();
        tx.commit().await.unwrap();
    }

    #[tokio::test]
    async fn reading_a_pending_add_reads_the_committed_value() {
        let db = Database::memory();
        let tx = db.create_transaction().await.unwrap();
        tx.atomic_add(b"n", 1).unwrap();
        tx.get(b"n").await.unwrap();
        let other = db.create_transaction().await.unwrap();
        other.atomic_add(b"n", 1).unwrap();
        other.commit().await.unwrap();
        assert!(matches!(tx.commit().await, Err(StorageError::Conflict)));
    }

    #[cfg(unix)]
    #[test]
    fn the_embedded_store_is_readable_by_its_owner_only() {
        use std::os::unix::fs::PermissionsExt;

        let parent = tempfile::tempdir().unwrap();
        let dir = parent.path().join("store");
        // Even a directory that already exists with open permissions is closed.
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let db = Database::open_embedded(&dir).unwrap();
        drop(db);
        let mode =
            |path: &std::path::Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join(super::EMBEDDED_FILE)), 0o600);
    }
}
