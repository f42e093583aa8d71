//! The one `BackendTransaction` of the engines with optimistic concurrency: writes are
//! buffered and overlaid on the engine's snapshot reads, reads record conflict ranges,
//! and the commit hands both to the engine, which validates and applies them atomically.

use std::future::Future;
use std::sync::Mutex;

use super::keys::key_after;
use super::overlay::{LocalRead, Mutation, Pair, SnapshotPairs, WriteBuffer};
use super::ranges::{KeyRange, normalize, range_read_conflict};
use crate::backend::{BackendTransaction, RangeOptions};
use crate::error::StorageError;
use crate::sync::lock;

/// What a transaction that wrote hands its engine to commit.
#[derive(Debug)]
pub(crate) struct Commit {
    /// Normalized read conflict ranges: the commit fails with `Conflict` if a commit the
    /// snapshot did not see wrote into one.
    pub(crate) read_conflicts: Vec<KeyRange>,
    /// Normalized write conflict ranges, which later commits are validated against.
    pub(crate) write_conflicts: Vec<KeyRange>,
    /// Cleared ranges, applied first.
    pub(crate) cleared: Vec<KeyRange>,
    /// Point mutations in key order, applied after the cleared ranges.
    pub(crate) mutations: Vec<(Vec<u8>, Mutation)>,
}

/// How much of a range an engine needs to read for the overlay; an engine that streams
/// its snapshot lazily may ignore it.
#[derive(Debug)]
pub(crate) struct RangeHint {
    /// This transaction's cleared ranges inside the read: their committed pairs are hidden.
    pub(crate) cleared: Vec<KeyRange>,
    /// Committed pairs outside `cleared` that are sure to fill the read's limit (`None`:
    /// no limit). Only point clears can hide more pairs, and each hides one.
    pub(crate) enough: Option<usize>,
}

/// The engine half of an optimistic transaction: reads at one snapshot and a commit that
/// validates read conflicts and applies the writes atomically.
pub(crate) trait OptimisticEngine: Send + Sync + 'static {
    /// The committed value of `key` in the snapshot.
    fn read_key(
        &self,
        key: &[u8],
    ) -> impl Future<Output = Result<Option<Vec<u8>>, StorageError>> + Send;

    /// The committed pairs of `[begin, end)` in the snapshot, in the direction of the read.
    fn read_range<'a>(
        &'a self,
        begin: &'a [u8],
        end: &'a [u8],
        reverse: bool,
        hint: RangeHint,
    ) -> impl Future<Output = Result<SnapshotPairs<'a>, StorageError>> + Send + 'a;

    /// Ends a transaction that wrote nothing: it is serializable at its snapshot as is.
    fn commit_read_only(&self) -> impl Future<Output = Result<(), StorageError>> + Send;

    /// Validates `commit`'s read conflicts and applies its writes atomically, or fails
    /// with `Conflict` (or `CommitUnknownResult` when the outcome cannot be known).
    fn commit(&self, commit: Commit) -> impl Future<Output = Result<(), StorageError>> + Send;
}

/// A transaction of an [`OptimisticEngine`].
pub(crate) struct OptimisticTransaction<E> {
    engine: E,
    state: Mutex<State>,
}

/// What the transaction has buffered so far.
#[derive(Default)]
struct State {
    writes: WriteBuffer,
    read_conflicts: Vec<KeyRange>,
}

impl<E: OptimisticEngine> OptimisticTransaction<E> {
    /// A transaction with nothing buffered yet over `engine`'s snapshot.
    pub(crate) fn new(engine: E) -> Self {
        Self {
            engine,
            state: Mutex::new(State::default()),
        }
    }
}

#[async_trait::async_trait]
impl<E: OptimisticEngine> BackendTransaction for OptimisticTransaction<E> {
    async fn get(&self, key: &[u8], snapshot: bool) -> Result<Option<Vec<u8>>, StorageError> {
        // Like FDB, a value decided by this transaction's own writes depends on no other
        // commit, so it needs no read conflict.
        let pending_add = match lock(&self.state).writes.lookup(key) {
            LocalRead::Decided(value) => return Ok(value),
            LocalRead::Committed { pending_add } => pending_add,
        };
        let committed = self.engine.read_key(key).await?;
        if !snapshot {
            lock(&self.state)
                .read_conflicts
                .push((key.to_vec(), key_after(key)));
        }
        Ok(LocalRead::resolve(committed, pending_add))
    }

    async fn get_range(
        &self,
        begin: &[u8],
        end: &[u8],
        options: RangeOptions,
    ) -> Result<Vec<Pair>, StorageError> {
        let hint = {
            let state = lock(&self.state);
            let point_clears = state.writes.point_clears_within(begin, end);
            RangeHint {
                cleared: state.writes.cleared_within(begin, end),
                enough: options
                    .limit
                    .map(|limit| limit.saturating_add(point_clears)),
            }
        };
        let committed = self
            .engine
            .read_range(begin, end, options.reverse, hint)
            .await?;
        let mut state = lock(&self.state);
        let pairs =
            state
                .writes
                .merge_range(committed, begin, end, options.reverse, options.limit)?;
        if !options.snapshot {
            state
                .read_conflicts
                .push(range_read_conflict(begin, end, options, &pairs));
        }
        Ok(pairs)
    }

    fn set(&self, key: &[u8], value: &[u8]) -> Result<(), StorageError> {
        lock(&self.state).writes.set(key, value);
        Ok(())
    }

    fn clear(&self, key: &[u8]) -> Result<(), StorageError> {
        lock(&self.state).writes.clear(key);
        Ok(())
    }

    fn clear_range(&self, begin: &[u8], end: &[u8]) -> Result<(), StorageError> {
        lock(&self.state).writes.clear_range(begin, end);
        Ok(())
    }

    fn atomic_add(&self, key: &[u8], delta: i64) -> Result<(), StorageError> {
        lock(&self.state).writes.atomic_add(key, delta);
        Ok(())
    }

    fn add_read_conflict_range(&self, begin: &[u8], end: &[u8]) {
        lock(&self.state)
            .read_conflicts
            .push((begin.to_vec(), end.to_vec()));
    }

    async fn commit(&self) -> Result<(), StorageError> {
        let State {
            writes,
            mut read_conflicts,
        } = std::mem::take(&mut *lock(&self.state));
        // Nothing to write means nothing to order: a read-only transaction is serializable
        // at its snapshot as is.
        if writes.is_empty() {
            return self.engine.commit_read_only().await;
        }
        normalize(&mut read_conflicts);
        let write_conflicts = writes.write_conflicts();
        let (cleared, mutations) = writes.into_mutations();
        self.engine
            .commit(Commit {
                read_conflicts,
                write_conflicts,
                cleared,
                mutations,
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::collections::BTreeMap;

    use super::*;

    /// An engine over a fixed snapshot that reads only what the hint asks for, as the
    /// PostgreSQL engine does, and records what it was handed.
    #[derive(Default)]
    struct RecordingEngine {
        snapshot: BTreeMap<Vec<u8>, Vec<u8>>,
        hints: Mutex<Vec<(Vec<KeyRange>, Option<usize>)>>,
        commits: Mutex<Vec<Commit>>,
        read_only_commits: Mutex<usize>,
    }

    impl RecordingEngine {
        fn with(pairs: &[(&str, &str)]) -> Self {
            Self {
                snapshot: pairs
                    .iter()
                    .map(|(key, value)| (key.as_bytes().to_vec(), value.as_bytes().to_vec()))
                    .collect(),
                ..Self::default()
            }
        }
    }

    impl OptimisticEngine for RecordingEngine {
        async fn read_key(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
            Ok(self.snapshot.get(key).cloned())
        }

        async fn read_range<'a>(
            &'a self,
            begin: &'a [u8],
            end: &'a [u8],
            reverse: bool,
            hint: RangeHint,
        ) -> Result<SnapshotPairs<'a>, StorageError> {
            let visible = |key: &[u8]| {
                !hint
                    .cleared
                    .iter()
                    .any(|(from, to)| from.as_slice() <= key && key < to.as_slice())
            };
            let range = self.snapshot.range(begin.to_vec()..end.to_vec());
            let pairs: Vec<Pair> = if reverse {
                range
                    .rev()
                    .filter(|(key, _)| visible(key))
                    .take(hint.enough.unwrap_or(usize::MAX))
                    .map(|(key, value)| (key.clone(), value.clone()))
                    .collect()
            } else {
                range
                    .filter(|(key, _)| visible(key))
                    .take(hint.enough.unwrap_or(usize::MAX))
                    .map(|(key, value)| (key.clone(), value.clone()))
                    .collect()
            };
            lock(&self.hints).push((hint.cleared, hint.enough));
            Ok(Box::new(pairs.into_iter().map(Ok)))
        }

        async fn commit_read_only(&self) -> Result<(), StorageError> {
            *lock(&self.read_only_commits) += 1;
            Ok(())
        }

        async fn commit(&self, commit: Commit) -> Result<(), StorageError> {
            lock(&self.commits).push(commit);
            Ok(())
        }
    }

    fn range(begin: &str, end: &str) -> KeyRange {
        (begin.as_bytes().to_vec(), end.as_bytes().to_vec())
    }

    fn keys(pairs: &[Pair]) -> Vec<String> {
        pairs
            .iter()
            .map(|(key, _)| String::from_utf8_lossy(key).into_owned())
            .collect()
    }

    #[tokio::test]
    async fn a_limited_range_read_asks_for_enough_pairs_past_local_clears() {
        let engine = RecordingEngine::with(&[("a", "1"), ("b", "2"), ("c", "3"), ("d", "4")]);
        let tx = OptimisticTransaction::new(engine);
        tx.clear(b"a").unwrap();
        tx.clear_range(b"c", b"d").unwrap();
        let options = RangeOptions {
            limit: Some(2),
            ..RangeOptions::default()
        };
        let pairs = tx.get_range(b"a", b"z", options).await.unwrap();
        assert_eq!(keys(&pairs), ["b", "d"]);
        let hints = lock(&tx.engine.hints).clone();
        assert_eq!(hints, vec![(vec![range("c", "d")], Some(3))]);
    }

    #[tokio::test]
    async fn commit_hands_the_engine_normalized_conflicts_and_the_writes() {
        let tx = OptimisticTransaction::new(RecordingEngine::with(&[("k", "1")]));
        tx.set(b"own", b"x").unwrap();
        assert_eq!(tx.get(b"own", false).await.unwrap(), Some(b"x".to_vec()));
        assert_eq!(tx.get(b"k", false).await.unwrap(), Some(b"1".to_vec()));
        tx.add_read_conflict_range(b"k", b"m");
        tx.atomic_add(b"n", 2).unwrap();
        tx.commit().await.unwrap();
        let commits = std::mem::take(&mut *lock(&tx.engine.commits));
        let [commit] = commits.as_slice() else {
            panic!("expected one commit, got {commits:?}");
        };
        // Reading its own write added no conflict; the key read and the explicit range merge.
        assert_eq!(commit.read_conflicts, vec![range("k", "m")]);
        assert_eq!(
            commit.write_conflicts,
            vec![
                (b"n".to_vec(), b"n\0".to_vec()),
                (b"own".to_vec(), b"own\0".to_vec())
            ]
        );
        assert_eq!(
            commit.mutations,
            vec![
                (b"n".to_vec(), Mutation::Add(2)),
                (b"own".to_vec(), Mutation::Set(b"x".to_vec())),
            ]
        );
        assert_eq!(*lock(&tx.engine.read_only_commits), 0);
    }

    #[tokio::test]
    async fn a_transaction_that_wrote_nothing_commits_read_only() {
        let tx = OptimisticTransaction::new(RecordingEngine::with(&[("k", "1")]));
        tx.get(b"k", false).await.unwrap();
        tx.commit().await.unwrap();
        assert_eq!(*lock(&tx.engine.read_only_commits), 1);
        assert!(lock(&tx.engine.commits).is_empty());
    }
}
