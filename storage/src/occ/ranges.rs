//! Conflict ranges: half-open key ranges, kept sorted and merged so that intersection
//! and containment are binary searches.

use super::keys::key_after;
use crate::backend::RangeOptions;

/// A half-open key range `[begin, end)`.
pub(crate) type KeyRange = (Vec<u8>, Vec<u8>);

/// Sorts `ranges` and merges overlapping or touching ones, so their ends are sorted too
/// and intersection is a binary search.
pub(crate) fn normalize(ranges: &mut Vec<KeyRange>) {
    ranges.retain(|(begin, end)| begin < end);
    ranges.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    let mut merged: Vec<KeyRange> = Vec::with_capacity(ranges.len());
    for (begin, end) in ranges.drain(..) {
        match merged.last_mut() {
            Some(last) if begin <= last.1 => {
                if end > last.1 {
                    last.1 = end;
                }
            }
            _ => merged.push((begin, end)),
        }
    }
    *ranges = merged;
}

/// Adds `[begin, end)` to normalized `ranges`, keeping them normalized.
pub(crate) fn insert_range(ranges: &mut Vec<KeyRange>, begin: &[u8], end: &[u8]) {
    if begin >= end {
        return;
    }
    let first = ranges.partition_point(|range| range.1.as_slice() < begin);
    let last = ranges.partition_point(|range| range.0.as_slice() <= end);
    let mut merged = (begin.to_vec(), end.to_vec());
    if first < last {
        if ranges[first].0 < merged.0 {
            merged.0 = ranges[first].0.clone();
        }
        if ranges[last - 1].1 > merged.1 {
            merged.1 = ranges[last - 1].1.clone();
        }
    }
    ranges.splice(first..last, std::iter::once(merged));
}

/// Whether `key` lies in one of the normalized `ranges`.
pub(crate) fn contains_key(ranges: &[KeyRange], key: &[u8]) -> bool {
    let index = ranges.partition_point(|range| range.1.as_slice() <= key);
    ranges
        .get(index)
        .is_some_and(|range| range.0.as_slice() <= key)
}

/// Whether `[begin, end)` intersects one of the normalized `ranges`.
pub(crate) fn intersects(ranges: &[KeyRange], begin: &[u8], end: &[u8]) -> bool {
    let index = ranges.partition_point(|range| range.1.as_slice() <= begin);
    ranges
        .get(index)
        .is_some_and(|range| range.0.as_slice() < end)
}

/// The read conflict range of a range read of `[begin, end)` that returned `pairs`: a read
/// cut short by its limit only saw up to its last key.
pub(crate) fn range_read_conflict(
    begin: &[u8],
    end: &[u8],
    options: RangeOptions,
    pairs: &[(Vec<u8>, Vec<u8>)],
) -> KeyRange {
    let cut_short = options.limit.is_some_and(|limit| pairs.len() >= limit);
    match pairs.last() {
        Some((last, _)) if cut_short && options.reverse => (last.clone(), end.to_vec()),
        Some((last, _)) if cut_short => (begin.to_vec(), key_after(last)),
        _ => (begin.to_vec(), end.to_vec()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(begin: &str, end: &str) -> KeyRange {
        (begin.as_bytes().to_vec(), end.as_bytes().to_vec())
    }

    #[test]
    fn normalize_merges_overlapping_and_touching_ranges() {
        let mut ranges = vec![
            range("m", "p"),
            range("a", "c"),
            range("b", "d"),
            range("d", "e"),
        ];
        ranges.push(range("x", "x"));
        normalize(&mut ranges);
        assert_eq!(ranges, vec![range("a", "e"), range("m", "p")]);
    }

    #[test]
    fn insert_range_merges_neighbours() {
        let mut ranges = vec![range("a", "c"), range("e", "g"), range("k", "m")];
        insert_range(&mut ranges, b"b", b"f");
        assert_eq!(ranges, vec![range("a", "g"), range("k", "m")]);
        insert_range(&mut ranges, b"h", b"i");
        assert_eq!(
            ranges,
            vec![range("a", "g"), range("h", "i"), range("k", "m")]
        );
        insert_range(&mut ranges, b"0", b"z");
        assert_eq!(ranges, vec![range("0", "z")]);
    }

    #[test]
    fn intersection_and_containment_are_half_open() {
        let ranges = vec![range("b", "d"), range("f", "h")];
        assert!(intersects(&ranges, b"a", b"c"));
        assert!(!intersects(&ranges, b"d", b"f"));
        assert!(!intersects(&ranges, b"a", b"b"));
        assert!(intersects(&ranges, b"g", b"z"));
        assert!(contains_key(&ranges, b"b"));
        assert!(!contains_key(&ranges, b"d"));
        assert!(!contains_key(&ranges, b"z"));
    }
}
