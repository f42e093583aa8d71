//! A transaction's local writes, overlaid on its snapshot so it reads its own writes.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::ops::Bound;

use super::atomic::add_to_value;
use super::keys::key_after;
use super::ranges::{KeyRange, contains_key, insert_range, normalize};
use crate::error::StorageError;

/// A buffered write to one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Mutation {
    /// Writes the value.
    Set(Vec<u8>),
    /// Removes the key.
    Clear,
    /// Little-endian i64 addition applied on the value current at commit.
    Add(i64),
}

/// What a transaction's local writes decide about one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LocalRead {
    /// The local writes alone give the value (set, cleared).
    Decided(Option<Vec<u8>>),
    /// The committed value is needed, plus this pending atomic add if any.
    Committed { pending_add: Option<i64> },
}

impl LocalRead {
    /// The value seen once the committed value is known.
    pub(crate) fn resolve(committed: Option<Vec<u8>>, pending_add: Option<i64>) -> Option<Vec<u8>> {
        match pending_add {
            Some(delta) => Some(add_to_value(committed.as_deref(), delta)),
            None => committed,
        }
    }
}

/// A key and its value.
pub(crate) type Pair = (Vec<u8>, Vec<u8>);

/// Pairs read from the snapshot, already in the direction of the read.
pub(crate) type SnapshotPairs<'a> =
    Box<dyn Iterator<Item = Result<Pair, StorageError>> + Send + 'a>;

/// Local writes: point mutations and cleared ranges.
///
/// A point mutation inside a cleared range always happened after the clear (clearing a range
/// drops the point writes in it), so a commit applies cleared ranges first, then mutations.
#[derive(Debug, Default)]
pub(crate) struct WriteBuffer {
    writes: BTreeMap<Vec<u8>, Mutation>,
    /// Normalized.
    cleared: Vec<KeyRange>,
}

impl WriteBuffer {
    /// Whether nothing was written: such a transaction commits without validation.
    pub(crate) fn is_empty(&self) -> bool {
        self.writes.is_empty() && self.cleared.is_empty()
    }

    /// Buffers a write of `value` at `key`.
    pub(crate) fn set(&mut self, key: &[u8], value: &[u8]) {
        self.writes
            .insert(key.to_vec(), Mutation::Set(value.to_vec()));
    }

    /// Buffers the removal of `key`.
    pub(crate) fn clear(&mut self, key: &[u8]) {
        self.writes.insert(key.to_vec(), Mutation::Clear);
    }

    /// Buffers the removal of `[begin, end)`, superseding earlier point writes in it.
    pub(crate) fn clear_range(&mut self, begin: &[u8], end: &[u8]) {
        if begin >= end {
            return;
        }
        let mut inside = self.writes.split_off(begin);
        let mut after = inside.split_off(end);
        self.writes.append(&mut after);
        insert_range(&mut self.cleared, begin, end);
    }

    /// Buffers an atomic add of `delta` to `key`.
    pub(crate) fn atomic_add(&mut self, key: &[u8], delta: i64) {
        // Fold into what is known locally so reads stay exact and commits apply one mutation.
        let folded = match self.writes.get(key) {
            Some(Mutation::Set(value)) => Mutation::Set(add_to_value(Some(value), delta)),
            Some(Mutation::Clear) => Mutation::Set(add_to_value(None, delta)),
            Some(Mutation::Add(pending)) => Mutation::Add(pending.wrapping_add(delta)),
            None if contains_key(&self.cleared, key) => Mutation::Set(add_to_value(None, delta)),
            None => Mutation::Add(delta),
        };
        self.writes.insert(key.to_vec(), folded);
    }

    /// What the local writes say about `key`: its value, or that the committed one is needed.
    pub(crate) fn lookup(&self, key: &[u8]) -> LocalRead {
        match self.writes.get(key) {
            Some(Mutation::Set(value)) => LocalRead::Decided(Some(value.clone())),
            Some(Mutation::Clear) => LocalRead::Decided(None),
            Some(Mutation::Add(delta)) => LocalRead::Committed {
                pending_add: Some(*delta),
            },
            None if contains_key(&self.cleared, key) => LocalRead::Decided(None),
            None => LocalRead::Committed { pending_add: None },
        }
    }

    /// Cleared ranges that intersect `[begin, end)`, so a committed read can skip them.
    pub(crate) fn cleared_within(&self, begin: &[u8], end: &[u8]) -> Vec<KeyRange> {
        self.cleared
            .iter()
            .filter(|(cleared_begin, cleared_end)| {
                cleared_begin.as_slice() < end && cleared_end.as_slice() > begin
            })
            .cloned()
            .collect()
    }

    /// Point clears in `[begin, end)`: how many committed pairs outside cleared ranges the
    /// local writes can hide from a range read.
    pub(crate) fn point_clears_within(&self, begin: &[u8], end: &[u8]) -> usize {
        self.writes
            .range::<[u8], _>((Bound::Included(begin), Bound::Excluded(end)))
            .filter(|(_, mutation)| matches!(mutation, Mutation::Clear))
            .count()
    }

    /// Merges `snapshot` (the committed pairs of `[begin, end)`, in read direction) with the
    /// local writes, returning at most `limit` pairs.
    pub(crate) fn merge_range(
        &self,
        mut snapshot: SnapshotPairs<'_>,
        begin: &[u8],
        end: &[u8],
        reverse: bool,
        limit: Option<usize>,
    ) -> Result<Vec<Pair>, StorageError> {
        let limit = limit.unwrap_or(usize::MAX);
        let local = self
            .writes
            .range::<[u8], _>((Bound::Included(begin), Bound::Excluded(end)));
        let mut local: Box<dyn Iterator<Item = (&Vec<u8>, &Mutation)>> = if reverse {
            Box::new(local.rev())
        } else {
            Box::new(local)
        };
        let mut next_committed = || -> Result<Option<Pair>, StorageError> {
            for pair in snapshot.by_ref() {
                let pair = pair?;
                if !contains_key(&self.cleared, &pair.0) {
                    return Ok(Some(pair));
                }
            }
            Ok(None)
        };
        let mut committed = next_committed()?;
        let mut pending = local.next();
        let mut pairs = Vec::new();
        while pairs.len() < limit {
            let order = match (&committed, pending) {
                (None, None) => break,
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (Some((committed_key, _)), Some((local_key, _))) => {
                    let order = committed_key.cmp(local_key);
                    if reverse { order.reverse() } else { order }
                }
            };
            match (order, committed.take(), pending) {
                (Ordering::Less, Some(pair), _) => {
                    pairs.push(pair);
                    committed = next_committed()?;
                }
                (Ordering::Greater, base, Some((key, mutation))) => {
                    // The snapshot has no pair at `key`: its next key is further on.
                    committed = base;
                    push_resolved(&mut pairs, key, mutation, None);
                    pending = local.next();
                }
                (Ordering::Equal, Some((_, value)), Some((key, mutation))) => {
                    push_resolved(&mut pairs, key, mutation, Some(&value));
                    committed = next_committed()?;
                    pending = local.next();
                }
                _ => break,
            }
        }
        Ok(pairs)
    }

    /// The write conflict ranges: every key written and every range cleared, normalized.
    pub(crate) fn write_conflicts(&self) -> Vec<KeyRange> {
        let mut ranges = self.cleared.clone();
        ranges.extend(self.writes.keys().map(|key| (key.clone(), key_after(key))));
        normalize(&mut ranges);
        ranges
    }

    /// Cleared ranges (apply first) and point mutations (apply second).
    pub(crate) fn into_mutations(self) -> (Vec<KeyRange>, Vec<(Vec<u8>, Mutation)>) {
        (self.cleared, self.writes.into_iter().collect())
    }
}

fn push_resolved(pairs: &mut Vec<Pair>, key: &[u8], mutation: &Mutation, base: Option<&[u8]>) {
    match mutation {
        Mutation::Set(value) => pairs.push((key.to_vec(), value.clone())),
        Mutation::Clear => {}
        Mutation::Add(delta) => pairs.push((key.to_vec(), add_to_value(base, *delta))),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// The value of `key` as the buffer's transaction sees it over `committed`.
    fn read(buffer: &WriteBuffer, key: &[u8], committed: Option<Vec<u8>>) -> Option<Vec<u8>> {
        match buffer.lookup(key) {
            LocalRead::Decided(value) => value,
            LocalRead::Committed { pending_add } => LocalRead::resolve(committed, pending_add),
        }
    }

    fn committed(pairs: &[(&str, &str)], reverse: bool) -> SnapshotPairs<'static> {
        let mut pairs: Vec<_> = pairs
            .iter()
            .map(|(k, v)| Ok((k.as_bytes().to_vec(), v.as_bytes().to_vec())))
            .collect();
        if reverse {
            pairs.reverse();
        }
        Box::new(pairs.into_iter())
    }

    fn keys(pairs: &[(Vec<u8>, Vec<u8>)]) -> Vec<String> {
        pairs
            .iter()
            .map(|(k, v)| {
                format!(
                    "{}={}",
                    String::from_utf8_lossy(k),
                    String::from_utf8_lossy(v)
                )
            })
            .collect()
    }

    const BASE: &[(&str, &str)] = &[("a", "1"), ("c", "3"), ("e", "5"), ("g", "7")];

    fn buffer() -> WriteBuffer {
        let mut buffer = WriteBuffer::default();
        buffer.set(b"b", b"2");
        buffer.set(b"c", b"33");
        buffer.clear(b"e");
        buffer.set(b"f", b"6");
        buffer
    }

    #[test]
    fn forward_merge_overlays_sets_and_clears() {
        let pairs = buffer()
            .merge_range(committed(BASE, false), b"a", b"z", false, None)
            .unwrap();
        assert_eq!(keys(&pairs), ["a=1", "b=2", "c=33", "f=6", "g=7"]);
    }

    #[test]
    fn reverse_merge_with_limit() {
        let pairs = buffer()
            .merge_range(committed(BASE, true), b"a", b"z", true, Some(3))
            .unwrap();
        assert_eq!(keys(&pairs), ["g=7", "f=6", "c=33"]);
    }

    #[test]
    fn cleared_range_hides_committed_pairs_but_not_later_writes() {
        let mut buffer = WriteBuffer::default();
        buffer.set(b"d", b"old");
        buffer.clear_range(b"b", b"f");
        buffer.set(b"d", b"4");
        let pairs = buffer
            .merge_range(committed(BASE, false), b"a", b"z", false, None)
            .unwrap();
        assert_eq!(keys(&pairs), ["a=1", "d=4", "g=7"]);
        assert_eq!(read(&buffer, b"c", Some(b"3".to_vec())), None);
    }

    #[test]
    fn atomic_add_reads_base_plus_delta() {
        let mut buffer = WriteBuffer::default();
        buffer.atomic_add(b"n", 5);
        buffer.atomic_add(b"n", 2);
        let base = 10_i64.to_le_bytes().to_vec();
        let value = read(&buffer, b"n", Some(base));
        assert_eq!(value, Some(17_i64.to_le_bytes().to_vec()));
        let value = read(&buffer, b"n", None);
        assert_eq!(value, Some(7_i64.to_le_bytes().to_vec()));
    }

    #[test]
    fn atomic_add_folds_into_local_set_and_cleared_ranges() {
        let mut buffer = WriteBuffer::default();
        buffer.set(b"n", &3_i64.to_le_bytes());
        buffer.atomic_add(b"n", 4);
        buffer.clear_range(b"x", b"z");
        buffer.atomic_add(b"y", 9);
        let (_, mutations) = buffer.into_mutations();
        assert_eq!(
            mutations,
            vec![
                (b"n".to_vec(), Mutation::Set(7_i64.to_le_bytes().to_vec())),
                (b"y".to_vec(), Mutation::Set(9_i64.to_le_bytes().to_vec())),
            ]
        );
    }

    #[test]
    fn write_conflicts_cover_keys_and_cleared_ranges() {
        let mut buffer = WriteBuffer::default();
        buffer.set(b"a", b"1");
        buffer.clear_range(b"m", b"p");
        buffer.atomic_add(b"n", 1);
        assert_eq!(
            buffer.write_conflicts(),
            vec![
                (b"a".to_vec(), b"a\0".to_vec()),
                (b"m".to_vec(), b"p".to_vec())
            ]
        );
    }
}
