//! One Gatehouse transaction on PostgreSQL: snapshot reads overlaid with buffered writes,
//! then a validating SERIALIZABLE commit (see the module docs of `postgres`).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use deadpool_postgres::Object;
use tokio_postgres::SimpleQueryMessage;

use super::{
    BeginError, LOG_RETENTION, MAX_SNAPSHOT_AGE, Shared, is_connection_loss, schema, sql_error,
};
use crate::error::StorageError;
use crate::occ::atomic::add_to_value;
use crate::occ::keys::prefix_end;
use crate::occ::overlay::{Mutation, Pair, SnapshotPairs};
use crate::occ::ranges::KeyRange;
use crate::occ::{Commit, OptimisticEngine, RangeHint};

/// Write log bounds are cut to this many bytes (widening the range), which keeps GiST
/// entries small whatever the key size; wider ranges only mean more conflicts, never fewer.
const LOG_BOUND_LEN: usize = 256;

/// A future running `$query` only when `$wanted` (`Ok(None)` otherwise). Its request is
/// sent on first poll, so queries joined in order are pipelined in that order.
macro_rules! when {
    ($wanted:expr, $query:expr) => {
        async {
            if $wanted {
                $query.await.map(Some)
            } else {
                Ok(None)
            }
        }
    };
}

/// One transaction's view of PostgreSQL: a pooled connection with its read snapshot open,
/// and the validating commit on that connection.
pub(crate) struct PostgresSnapshot {
    /// `None` only while dropping.
    client: Option<Object>,
    shared: Arc<Shared>,
    /// `pg_current_snapshot()` of the read transaction, as text.
    snapshot: String,
    /// Server clock (epoch seconds) when the snapshot was taken.
    snapshot_epoch: f64,
    /// The connection is outside any transaction again and can go back to the pool as is.
    settled: AtomicBool,
}

impl PostgresSnapshot {
    /// Opens the read snapshot on `client`.
    pub(crate) async fn begin(client: Object, shared: Arc<Shared>) -> Result<Self, BeginError> {
        let messages = match client.simple_query(schema::BEGIN_SNAPSHOT).await {
            Ok(messages) => messages,
            Err(error) if is_connection_loss(&error) => {
                drop(Object::take(client));
                return Err(BeginError::Closed(sql_error("begin transaction", &error)));
            }
            Err(error) => {
                let _ = client.batch_execute("ROLLBACK").await;
                return Err(BeginError::Other(sql_error("begin transaction", &error)));
            }
        };
        let row = messages.iter().find_map(|message| match message {
            SimpleQueryMessage::Row(row) => Some(row),
            _ => None,
        });
        let parsed = row.and_then(|row| {
            let snapshot = row.get(0)?.to_owned();
            let epoch = row.get(1)?.parse::<f64>().ok()?;
            Some((snapshot, epoch))
        });
        let Some((snapshot, snapshot_epoch)) = parsed else {
            let _ = client.batch_execute("ROLLBACK").await;
            return Err(BeginError::Other(StorageError::Backend(
                "begin transaction: the server returned no snapshot".to_owned(),
            )));
        };
        Ok(Self {
            client: Some(client),
            shared,
            snapshot,
            snapshot_epoch,
            settled: AtomicBool::new(false),
        })
    }

    fn client(&self) -> Result<&Object, StorageError> {
        self.client
            .as_ref()
            .ok_or_else(|| StorageError::Backend("postgresql connection released".to_owned()))
    }

    /// Marks the connection as outside any transaction, so it returns to the pool as is.
    fn settle(&self) {
        self.settled.store(true, Ordering::Release);
    }

    async fn commit_writes(&self, client: &Object, commit: Commit) -> Result<(), StorageError> {
        let Commit {
            read_conflicts: reads,
            write_conflicts,
            cleared,
            mutations,
        } = commit;
        let reads = reads.as_slice();
        let log: Vec<(Vec<u8>, Option<Vec<u8>>)> =
            write_conflicts.into_iter().map(log_range).collect();
        let mut sets: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        let mut clears: Vec<Vec<u8>> = Vec::new();
        let mut adds: Vec<(Vec<u8>, i64)> = Vec::new();
        for (key, mutation) in mutations {
            match mutation {
                Mutation::Set(value) => sets.push((key, value)),
                Mutation::Clear => clears.push(key),
                Mutation::Add(delta) => adds.push((key, delta)),
            }
        }
        let prepare = |sql: &'static str| async move {
            client
                .prepare_cached(sql)
                .await
                .map_err(|error| sql_error("prepare statement", &error))
        };
        let validate = prepare(schema::VALIDATE).await?;
        let clear_ranges = prepare(schema::CLEAR_RANGES).await?;
        let clear_keys = prepare(schema::CLEAR_KEYS).await?;
        let upsert = prepare(schema::UPSERT).await?;
        let lock_addends = prepare(schema::LOCK_ADDENDS).await?;
        let log_writes = prepare(schema::LOG_WRITES).await?;

        let (read_begins, read_ends) = split(reads);
        let (cleared_begins, cleared_ends) = split(&cleared);
        let (log_begins, log_ends): (Vec<&[u8]>, Vec<Option<&[u8]>>) = log
            .iter()
            .map(|(begin, end)| (begin.as_slice(), end.as_deref()))
            .unzip();
        let (set_keys, set_values) = split(&sets);
        let clear_keys_param: Vec<&[u8]> = clears.iter().map(Vec::as_slice).collect();
        let add_keys: Vec<&[u8]> = adds.iter().map(|(key, _)| key.as_slice()).collect();
        let max_age = MAX_SNAPSHOT_AGE.as_secs_f64();
        // Without reads to validate or adds to compute, nothing needs an answer before COMMIT.
        let commit_now = reads.is_empty() && adds.is_empty();

        // Round trip 1, pipelined: open the serializable transaction, validate, write.
        let (begun, validated, ranges_cleared, keys_cleared, upserted, addends, logged, committed) = futures::join!(
            client.batch_execute(schema::BEGIN_COMMIT),
            when!(
                !reads.is_empty(),
                client.query_one(
                    &validate,
                    &[
                        &read_begins,
                        &read_ends,
                        &self.snapshot,
                        &self.snapshot_epoch,
                        &max_age
                    ],
                )
            ),
            when!(
                !cleared.is_empty(),
                client.execute(&clear_ranges, &[&cleared_begins, &cleared_ends])
            ),
            when!(
                !clears.is_empty(),
                client.execute(&clear_keys, &[&clear_keys_param])
            ),
            when!(
                !sets.is_empty(),
                client.execute(&upsert, &[&set_keys, &set_values])
            ),
            when!(!adds.is_empty(), client.query(&lock_addends, &[&add_keys])),
            when!(true, client.execute(&log_writes, &[&log_begins, &log_ends])),
            when!(commit_now, client.batch_execute("COMMIT")),
        );
        let round = Round {
            commit_sent: commit_now,
        };
        round.check("open commit transaction", begun)?;
        let validated = round.check("validate reads", validated)?;
        round.check("clear ranges", ranges_cleared)?;
        round.check("clear keys", keys_cleared)?;
        round.check("write keys", upserted)?;
        let addends = round.check("lock atomic add keys", addends)?;
        round.check("record writes", logged)?;
        round.check("commit", committed)?;
        if commit_now {
            return Ok(());
        }
        if let Some(row) = validated {
            let too_old: bool = row
                .try_get(0)
                .map_err(|error| sql_error("validate reads", &error))?;
            let conflict: bool = row
                .try_get(1)
                .map_err(|error| sql_error("validate reads", &error))?;
            if too_old {
                return Err(StorageError::TransactionTooOld);
            }
            if conflict {
                return Err(StorageError::Conflict);
            }
        }

        // Round trip 2: the atomic adds on the locked current values, and COMMIT.
        let mut current: HashMap<Vec<u8>, Vec<u8>> = HashMap::new();
        for row in addends.unwrap_or_default() {
            let key: Vec<u8> = row
                .try_get(0)
                .map_err(|error| sql_error("read atomic add keys", &error))?;
            let value: Vec<u8> = row
                .try_get(1)
                .map_err(|error| sql_error("read atomic add keys", &error))?;
            current.insert(key, value);
        }
        let added: Vec<(Vec<u8>, Vec<u8>)> = adds
            .into_iter()
            .map(|(key, delta)| {
                let value = add_to_value(current.get(&key).map(Vec::as_slice), delta);
                (key, value)
            })
            .collect();
        let (added_keys, added_values) = split(&added);
        let (upserted, committed) = futures::join!(
            when!(
                !added.is_empty(),
                client.execute(&upsert, &[&added_keys, &added_values])
            ),
            client.batch_execute("COMMIT"),
        );
        let round = Round { commit_sent: true };
        round.check("apply atomic adds", upserted)?;
        round.check("commit", committed)?;
        Ok(())
    }

    /// Ends whatever transaction the connection is in after a failed commit.
    async fn roll_back(&self, client: &Object) {
        if client.batch_execute("ROLLBACK").await.is_ok() {
            self.settle();
        }
    }
}

/// The outcome of one pipelined round trip of a commit.
struct Round {
    /// Whether this round trip carried COMMIT, so a lost connection leaves the outcome unknown.
    commit_sent: bool,
}

impl Round {
    fn check<T>(
        &self,
        context: &str,
        result: Result<T, tokio_postgres::Error>,
    ) -> Result<T, StorageError> {
        result.map_err(|error| {
            if self.commit_sent && is_connection_loss(&error) {
                StorageError::CommitUnknownResult
            } else {
                sql_error(context, &error)
            }
        })
    }
}

/// Two parallel arrays, as `unnest($1, $2)` takes them.
fn split(pairs: &[(Vec<u8>, Vec<u8>)]) -> (Vec<&[u8]>, Vec<&[u8]>) {
    pairs
        .iter()
        .map(|(first, second)| (first.as_slice(), second.as_slice()))
        .unzip()
}

/// A write conflict range as stored in the log: bounds cut to `LOG_BOUND_LEN` bytes, the
/// end rounded up (`None`: unbounded) so the stored range covers the original.
fn log_range((begin, end): KeyRange) -> (Vec<u8>, Option<Vec<u8>>) {
    let begin = begin[..begin.len().min(LOG_BOUND_LEN)].to_vec();
    if end.len() <= LOG_BOUND_LEN {
        return (begin, Some(end));
    }
    (begin, prefix_end(&end[..LOG_BOUND_LEN]))
}

impl OptimisticEngine for PostgresSnapshot {
    async fn read_key(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        let client = self.client()?;
        let statement = client
            .prepare_cached(schema::GET)
            .await
            .map_err(|error| sql_error("prepare statement", &error))?;
        let row = client
            .query_opt(&statement, &[&key])
            .await
            .map_err(|error| sql_error("read key", &error))?;
        row.map(|row| row.try_get(0))
            .transpose()
            .map_err(|error| sql_error("read key", &error))
    }

    /// Reads only what the overlay needs: cleared ranges are skipped by the query and the
    /// limit is raised by the point clears that can hide pairs.
    async fn read_range<'a>(
        &'a self,
        begin: &'a [u8],
        end: &'a [u8],
        reverse: bool,
        hint: RangeHint,
    ) -> Result<SnapshotPairs<'a>, StorageError> {
        let fetch: Option<i64> = hint
            .enough
            .map(|enough| i64::try_from(enough).unwrap_or(i64::MAX));
        let (cleared_begins, cleared_ends) = split(&hint.cleared);
        let client = self.client()?;
        let sql = if reverse {
            schema::RANGE_REVERSE
        } else {
            schema::RANGE_FORWARD
        };
        let statement = client
            .prepare_cached(sql)
            .await
            .map_err(|error| sql_error("prepare statement", &error))?;
        let rows = client
            .query(
                &statement,
                &[&begin, &end, &cleared_begins, &cleared_ends, &fetch],
            )
            .await
            .map_err(|error| sql_error("read range", &error))?;
        let committed = rows
            .iter()
            .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
            .collect::<Result<Vec<Pair>, tokio_postgres::Error>>()
            .map_err(|error| sql_error("read range", &error))?;
        Ok(Box::new(committed.into_iter().map(Ok)))
    }

    async fn commit_read_only(&self) -> Result<(), StorageError> {
        self.client()?
            .batch_execute("COMMIT")
            .await
            .map_err(|error| sql_error("end read transaction", &error))?;
        self.settle();
        Ok(())
    }

    async fn commit(&self, commit: Commit) -> Result<(), StorageError> {
        let client = self.client()?;
        match self.commit_writes(client, commit).await {
            Ok(()) => {
                self.settle();
                self.shared.record_durable_commit();
                if self.shared.claim_prune() {
                    prune_write_log(client).await;
                }
                Ok(())
            }
            Err(error) => {
                self.roll_back(client).await;
                Err(error)
            }
        }
    }
}

/// Forgets write log entries no snapshot that may still commit can need.
pub(crate) async fn prune_write_log(client: &Object) {
    let retention = LOG_RETENTION.as_secs_f64();
    match client.execute(schema::PRUNE_WRITE_LOG, &[&retention]).await {
        Ok(pruned) => tracing::debug!(pruned, "pruned the postgresql write log"),
        Err(error) => {
            tracing::warn!(error = %sql_error("prune write log", &error), "write log not pruned");
        }
    }
}

impl Drop for PostgresSnapshot {
    fn drop(&mut self) {
        let settled = self.settled.load(Ordering::Acquire);
        let Some(client) = self.client.take() else {
            return;
        };
        if settled {
            return;
        }
        // The connection is still inside this transaction: roll it back before the pool
        // hands it out again, or drop the connection when there is no runtime to do it on.
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move {
                    if client.batch_execute("ROLLBACK").await.is_err() {
                        drop(Object::take(client));
                    }
                });
            }
            Err(_) => drop(Object::take(client)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::occ::keys::key_after;

    #[test]
    fn log_ranges_cover_the_written_range() {
        let short = (b"a".to_vec(), b"a\0".to_vec());
        assert_eq!(log_range(short), (b"a".to_vec(), Some(b"a\0".to_vec())));
        let long_key = vec![7_u8; 1000];
        let (begin, end) = log_range((long_key.clone(), key_after(&long_key)));
        assert_eq!(begin, vec![7_u8; LOG_BOUND_LEN]);
        let mut expected_end = vec![7_u8; LOG_BOUND_LEN];
        expected_end[LOG_BOUND_LEN - 1] = 8;
        assert_eq!(end, Some(expected_end.clone()));
        assert!(begin.as_slice() <= long_key.as_slice());
        assert!(expected_end.as_slice() > key_after(&long_key).as_slice());
        let (_, end) = log_range((vec![0xff; 10], vec![0xff; 1000]));
        assert_eq!(end, None);
    }
}
