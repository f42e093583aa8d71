//! The log of recent commits' write ranges that an engine checks a committing
//! transaction's read conflict ranges against (FDB's resolver, in memory).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::ranges::{KeyRange, intersects};
use crate::error::StorageError;

/// Approximate heap bytes of `ranges`, for bounding the log's memory.
fn ranges_size(ranges: &[KeyRange]) -> usize {
    ranges
        .iter()
        .map(|(begin, end)| begin.len() + end.len())
        .sum()
}

struct LogEntry {
    version: u64,
    committed_at: Instant,
    /// Normalized write conflict ranges of the commit.
    writes: Vec<KeyRange>,
}

/// Write sets of recent commits, newest last.
pub(crate) struct CommitLog {
    entries: VecDeque<LogEntry>,
    /// Oldest read version that can still be checked: every commit after it is in the log.
    horizon: u64,
    retention: Duration,
    max_bytes: usize,
    bytes: usize,
}

impl CommitLog {
    /// An empty log able to check transactions that read at `version` or later.
    pub(crate) fn new(version: u64, retention: Duration, max_bytes: usize) -> Self {
        Self {
            entries: VecDeque::new(),
            horizon: version,
            retention,
            max_bytes,
            bytes: 0,
        }
    }

    /// `Conflict` if a commit after `read_version` wrote into one of the normalized `reads`;
    /// `TransactionTooOld` if such commits may have been pruned.
    pub(crate) fn check(&self, read_version: u64, reads: &[KeyRange]) -> Result<(), StorageError> {
        if read_version < self.horizon {
            return Err(StorageError::TransactionTooOld);
        }
        let newer = self
            .entries
            .iter()
            .rev()
            .take_while(|entry| entry.version > read_version);
        for entry in newer {
            for (begin, end) in reads {
                if intersects(&entry.writes, begin, end) {
                    return Err(StorageError::Conflict);
                }
            }
        }
        Ok(())
    }

    /// Records the normalized write ranges of the commit at `version`.
    pub(crate) fn push(&mut self, version: u64, writes: Vec<KeyRange>, now: Instant) {
        self.bytes += ranges_size(&writes);
        self.entries.push_back(LogEntry {
            version,
            committed_at: now,
            writes,
        });
    }

    /// Forgets the entries from `version` on, for commits that were certainly not applied.
    pub(crate) fn truncate_from(&mut self, version: u64) {
        while self
            .entries
            .back()
            .is_some_and(|entry| entry.version >= version)
        {
            if let Some(entry) = self.entries.pop_back() {
                self.bytes -= ranges_size(&entry.writes);
            }
        }
    }

    /// Drops entries older than the retention or beyond the memory bound; transactions that
    /// read before them become too old to check.
    pub(crate) fn prune(&mut self, now: Instant) {
        while let Some(front) = self.entries.front() {
            let expired = now.saturating_duration_since(front.committed_at) > self.retention;
            if !expired && self.bytes <= self.max_bytes {
                break;
            }
            self.horizon = front.version;
            if let Some(entry) = self.entries.pop_front() {
                self.bytes -= ranges_size(&entry.writes);
            }
        }
    }

    /// Forgets everything: only transactions reading at `version` or later can be checked.
    pub(crate) fn reset(&mut self, version: u64) {
        self.entries.clear();
        self.bytes = 0;
        self.horizon = version;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(begin: &str, end: &str) -> KeyRange {
        (begin.as_bytes().to_vec(), end.as_bytes().to_vec())
    }

    #[test]
    fn check_sees_only_commits_after_the_read_version() {
        let now = Instant::now();
        let mut log = CommitLog::new(0, Duration::from_secs(6), usize::MAX);
        log.push(1, vec![range("a", "b")], now);
        log.push(2, vec![range("m", "n")], now);
        assert!(matches!(
            log.check(0, &[range("a", "c")]),
            Err(StorageError::Conflict)
        ));
        assert!(log.check(1, &[range("a", "c")]).is_ok());
        assert!(matches!(
            log.check(1, &[range("0", "z")]),
            Err(StorageError::Conflict)
        ));
        assert!(log.check(2, &[range("0", "z")]).is_ok());
    }

    #[test]
    fn pruned_history_makes_old_readers_too_old() {
        let start = Instant::now();
        let mut log = CommitLog::new(0, Duration::from_secs(6), usize::MAX);
        log.push(1, vec![range("a", "b")], start);
        log.push(2, vec![range("c", "d")], start + Duration::from_secs(5));
        log.prune(start + Duration::from_secs(7));
        assert!(matches!(
            log.check(0, &[]),
            Err(StorageError::TransactionTooOld)
        ));
        assert!(log.check(1, &[range("a", "b")]).is_ok());
        assert!(matches!(
            log.check(1, &[range("c", "d")]),
            Err(StorageError::Conflict)
        ));
    }

    #[test]
    fn memory_bound_prunes_oldest_entries() {
        let now = Instant::now();
        let mut log = CommitLog::new(0, Duration::from_secs(6), 4);
        log.push(1, vec![range("a", "b")], now);
        log.push(2, vec![range("c", "d")], now);
        log.push(3, vec![range("e", "f")], now);
        log.prune(now);
        assert!(matches!(
            log.check(0, &[]),
            Err(StorageError::TransactionTooOld)
        ));
        assert!(log.check(1, &[]).is_ok());
    }

    #[test]
    fn truncate_from_forgets_unapplied_commits() {
        let now = Instant::now();
        let mut log = CommitLog::new(0, Duration::from_secs(6), usize::MAX);
        log.push(1, vec![range("a", "b")], now);
        log.push(2, vec![range("c", "d")], now);
        log.truncate_from(2);
        assert!(log.check(0, &[range("c", "d")]).is_ok());
        assert_eq!(log.bytes, 2);
    }
}
