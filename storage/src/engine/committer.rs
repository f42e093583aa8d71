//! The single committer thread: validates commit requests against recent commits and
//! applies every accepted one of a batch in one redb write transaction (group commit),
//! so concurrent commits share one fsync.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use redb::{Durability, ReadableTable};
use tokio::sync::{mpsc, oneshot};

use super::{DATA, META, VERSION_KEY};
use crate::error::StorageError;
use crate::occ::Commit;
use crate::occ::atomic::add_to_value;
use crate::occ::commit_log::CommitLog;
use crate::occ::overlay::Mutation;

/// How long commits stay in the conflict log: longer than the 5 s transaction lifetime so
/// live transactions are checked, not rejected as too old.
const LOG_RETENTION: Duration = Duration::from_secs(6);
/// Bound on the conflict log's key bytes; beyond it old readers get `TransactionTooOld`.
const LOG_MAX_BYTES: usize = 256 * 1024 * 1024;
/// Bound on one batch so a flood of commits still gets replies in bounded time.
const MAX_BATCH: usize = 1024;

/// A transaction asking to commit.
pub(crate) struct CommitRequest {
    /// The version of the snapshot the transaction read.
    pub(crate) read_version: u64,
    /// What to validate and apply.
    pub(crate) commit: Commit,
    /// Receives the commit version or why it failed.
    pub(crate) reply: oneshot::Sender<Result<u64, StorageError>>,
}

/// Why applying a batch failed.
enum ApplyError {
    /// Nothing was written.
    NotApplied(StorageError),
    /// The redb commit itself failed: the batch may or may not be on disk.
    Unknown(StorageError),
}

pub(crate) struct Committer {
    db: Arc<redb::Database>,
    receiver: mpsc::UnboundedReceiver<CommitRequest>,
    log: CommitLog,
    /// Last version handed out; never reused, even when a commit's outcome is unknown.
    version: u64,
    durable_syncs: Arc<AtomicU64>,
}

impl Committer {
    pub(crate) fn new(
        db: Arc<redb::Database>,
        receiver: mpsc::UnboundedReceiver<CommitRequest>,
        version: u64,
        durable_syncs: Arc<AtomicU64>,
    ) -> Self {
        Self {
            db,
            receiver,
            log: CommitLog::new(version, LOG_RETENTION, LOG_MAX_BYTES),
            version,
            durable_syncs,
        }
    }

    /// Serves requests until every sender is gone.
    pub(crate) fn run(mut self) {
        while let Some(first) = self.receiver.blocking_recv() {
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match self.receiver.try_recv() {
                    Ok(request) => batch.push(request),
                    Err(_) => break,
                }
            }
            let outcome = catch_unwind(AssertUnwindSafe(|| self.commit_batch(batch)));
            if outcome.is_err() && !self.recover_from_panic() {
                return;
            }
        }
    }

    /// After a panic mid-batch the batch's reply senders are gone (its callers see an unknown
    /// result) and the log may be half-updated. Rather than risk a missed conflict, commit a
    /// new version with no data, forget the log and reject every older reader as too old.
    /// Returns false, stopping the committer, when even that fails.
    fn recover_from_panic(&mut self) -> bool {
        tracing::error!("storage committer panicked while committing a batch");
        // The panic may have struck after the batch landed: start above what is stored.
        let stored = super::stored_version(&self.db).unwrap_or(self.version);
        let version = self.version.max(stored) + 1;
        match self.apply(&[], version) {
            Ok(()) => {
                self.version = version;
                self.durable_syncs.fetch_add(1, Ordering::Relaxed);
                self.log.reset(version);
                true
            }
            Err(ApplyError::NotApplied(error) | ApplyError::Unknown(error)) => {
                tracing::error!(%error, "storage committer cannot recover; stopping");
                false
            }
        }
    }

    fn commit_batch(&mut self, batch: Vec<CommitRequest>) {
        let now = Instant::now();
        self.log.prune(now);
        let first_version = self.version + 1;
        let mut accepted = Vec::with_capacity(batch.len());
        for mut request in batch {
            if let Err(error) = self
                .log
                .check(request.read_version, &request.commit.read_conflicts)
            {
                let _ = request.reply.send(Err(error));
                continue;
            }
            // Logged right away so later requests of this batch are checked against it.
            let version = first_version + accepted.len() as u64;
            let writes = std::mem::take(&mut request.commit.write_conflicts);
            self.log.push(version, writes, now);
            accepted.push(request);
        }
        if accepted.is_empty() {
            return;
        }
        let last_version = first_version + accepted.len() as u64 - 1;
        match self.apply(&accepted, last_version) {
            Ok(()) => {
                self.version = last_version;
                self.durable_syncs.fetch_add(1, Ordering::Relaxed);
                for (request, version) in accepted.into_iter().zip(first_version..) {
                    let _ = request.reply.send(Ok(version));
                }
            }
            Err(ApplyError::NotApplied(error)) => {
                self.log.truncate_from(first_version);
                tracing::warn!(%error, "storage batch commit failed before writing");
                for request in accepted {
                    let _ = request.reply.send(Err(error.clone()));
                }
            }
            Err(ApplyError::Unknown(error)) => {
                // Keep the log entries: if the batch did land, later readers must conflict.
                self.version = last_version;
                tracing::error!(%error, "storage batch commit failed, outcome unknown");
                for request in accepted {
                    let _ = request.reply.send(Err(StorageError::CommitUnknownResult));
                }
            }
        }
    }

    /// Writes every accepted request's mutations and the new version in one durable redb commit.
    fn apply(&self, accepted: &[CommitRequest], last_version: u64) -> Result<(), ApplyError> {
        let not_applied = |context: &str, error: &dyn std::fmt::Display| {
            ApplyError::NotApplied(StorageError::backend(context, error))
        };
        let mut write = self
            .db
            .begin_write()
            .map_err(|error| not_applied("begin write transaction", &error))?;
        write.set_durability(Durability::Immediate);
        {
            let mut data = write
                .open_table(DATA)
                .map_err(|error| not_applied("open data table", &error))?;
            for request in accepted {
                for (begin, end) in &request.commit.cleared {
                    data.retain_in::<&[u8], _>(begin.as_slice()..end.as_slice(), |_, _| false)
                        .map_err(|error| not_applied("clear range", &error))?;
                }
                for (key, mutation) in &request.commit.mutations {
                    let key = key.as_slice();
                    match mutation {
                        Mutation::Set(value) => {
                            data.insert(key, value.as_slice())
                                .map_err(|error| not_applied("insert", &error))?;
                        }
                        Mutation::Clear => {
                            data.remove(key)
                                .map_err(|error| not_applied("remove", &error))?;
                        }
                        Mutation::Add(delta) => {
                            let current = data
                                .get(key)
                                .map_err(|error| not_applied("read for atomic add", &error))?
                                .map(|value| value.value().to_vec());
                            let sum = add_to_value(current.as_deref(), *delta);
                            data.insert(key, sum.as_slice())
                                .map_err(|error| not_applied("atomic add", &error))?;
                        }
                    }
                }
            }
            let mut meta = write
                .open_table(META)
                .map_err(|error| not_applied("open meta table", &error))?;
            meta.insert(VERSION_KEY, last_version)
                .map_err(|error| not_applied("write commit version", &error))?;
        }
        write.commit().map_err(|error| {
            ApplyError::Unknown(StorageError::backend("commit write transaction", error))
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::occ::keys::key_after;
    use crate::occ::ranges::KeyRange;

    fn point(key: &[u8]) -> KeyRange {
        (key.to_vec(), key_after(key))
    }

    fn request(
        read_version: u64,
        reads: &[&[u8]],
        mutations: Vec<(Vec<u8>, Mutation)>,
    ) -> (CommitRequest, oneshot::Receiver<Result<u64, StorageError>>) {
        let (reply, outcome) = oneshot::channel();
        let write_conflicts = mutations.iter().map(|(key, _)| point(key)).collect();
        let request = CommitRequest {
            read_version,
            commit: Commit {
                read_conflicts: reads.iter().map(|key| point(key)).collect(),
                write_conflicts,
                cleared: Vec::new(),
                mutations,
            },
            reply,
        };
        (request, outcome)
    }

    /// Queues `requests` before the committer starts so they form one batch, then runs it to the end.
    fn run_one_batch(requests: Vec<CommitRequest>) -> (Arc<redb::Database>, u64) {
        let db = redb::Database::builder()
            .create_with_backend(redb::backends::InMemoryBackend::new())
            .unwrap();
        let db = Arc::new(db);
        super::super::create_tables(&db).unwrap();
        let (sender, receiver) = mpsc::unbounded_channel();
        for request in requests {
            sender
                .send(request)
                .unwrap_or_else(|_| panic!("channel closed"));
        }
        drop(sender);
        let syncs = Arc::new(AtomicU64::new(0));
        Committer::new(db.clone(), receiver, 0, syncs.clone()).run();
        (db, syncs.load(Ordering::Relaxed))
    }

    #[test]
    fn batch_checks_requests_against_earlier_ones_in_the_same_batch() {
        let set = |value: &[u8]| Mutation::Set(value.to_vec());
        let (first, first_outcome) = request(0, &[b"k"], vec![(b"k".to_vec(), set(b"1"))]);
        let (second, second_outcome) = request(0, &[b"k"], vec![(b"k".to_vec(), set(b"2"))]);
        let (blind, blind_outcome) = request(0, &[], vec![(b"k".to_vec(), Mutation::Add(5))]);
        let (db, syncs) = run_one_batch(vec![first, second, blind]);

        assert_eq!(first_outcome.blocking_recv().unwrap().unwrap(), 1);
        assert!(matches!(
            second_outcome.blocking_recv().unwrap(),
            Err(StorageError::Conflict)
        ));
        assert_eq!(blind_outcome.blocking_recv().unwrap().unwrap(), 2);
        assert_eq!(syncs, 1);

        let read = db.begin_read().unwrap();
        let data = read.open_table(DATA).unwrap();
        // "1" is 0x31: the add applies on the value committed earlier in the batch.
        let value = data.get(b"k".as_slice()).unwrap().unwrap().value().to_vec();
        assert_eq!(value, add_to_value(Some(b"1"), 5));
        assert_eq!(super::super::stored_version(&db).unwrap(), 2);
    }

    #[test]
    fn read_versions_before_the_committer_started_are_too_old() {
        let (db, _) = run_one_batch(Vec::new());
        let (sender, receiver) = mpsc::unbounded_channel();
        let (stale, outcome) = request(3, &[], vec![(b"k".to_vec(), Mutation::Clear)]);
        sender
            .send(stale)
            .unwrap_or_else(|_| panic!("channel closed"));
        drop(sender);
        Committer::new(db, receiver, 4, Arc::new(AtomicU64::new(0))).run();
        assert!(matches!(
            outcome.blocking_recv().unwrap(),
            Err(StorageError::TransactionTooOld)
        ));
    }
}
