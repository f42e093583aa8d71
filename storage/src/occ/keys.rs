//! Key arithmetic of an ordered byte keyspace: the key right after a key, the end of a prefix.

/// The smallest key after `key`, making `[key, key_after(key))` the range of exactly `key`.
pub(crate) fn key_after(key: &[u8]) -> Vec<u8> {
    let mut next = Vec::with_capacity(key.len() + 1);
    next.extend_from_slice(key);
    next.push(0);
    next
}

/// The first key that does not start with `prefix` (FDB's `strinc`): `prefix` without its
/// trailing `\xff` bytes, last byte incremented. `None` when no such key exists (an empty or
/// all-`\xff` prefix).
pub(crate) fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while end.last() == Some(&0xff) {
        end.pop();
    }
    let last = end.last_mut()?;
    *last += 1;
    Some(end)
}

/// `[prefix, strinc(prefix))`: the range of every key starting with `prefix`.
///
/// Like FDB, keys from `\xff` on are treated as outside the normal keyspace: an empty or
/// all-`\xff` prefix ends at `prefix + \xff`.
pub fn prefix_range(prefix: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let end = prefix_end(prefix).unwrap_or_else(|| {
        let mut end = prefix.to_vec();
        end.push(0xff);
        end
    });
    (prefix.to_vec(), end)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Subspace;

    #[test]
    fn key_after_is_the_next_key() {
        assert_eq!(key_after(b"a"), b"a\0".to_vec());
        assert!(key_after(b"a").as_slice() < b"a\x01".as_slice());
    }

    #[test]
    fn prefix_end_skips_trailing_ff() {
        assert_eq!(prefix_end(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(prefix_end(&[1, 0xff, 0xff]), Some(vec![2]));
        assert_eq!(prefix_end(b""), None);
        assert_eq!(prefix_end(&[0xff, 0xff]), None);
    }

    #[test]
    fn prefix_range_increments_last_byte_below_ff() {
        assert_eq!(prefix_range(b"ab"), (b"ab".to_vec(), b"ac".to_vec()));
        assert_eq!(
            prefix_range(&[1, 0xff, 0xff]),
            (vec![1, 0xff, 0xff], vec![2])
        );
        assert_eq!(prefix_range(b""), (vec![], vec![0xff]));
        assert_eq!(prefix_range(&[0xff]), (vec![0xff], vec![0xff, 0xff]));
    }

    #[test]
    fn prefix_range_of_a_subspace_covers_its_keys() {
        let subspace = Subspace::all().subspace(&("t", "tenant"));
        let (begin, end) = prefix_range(subspace.bytes());
        let key = subspace.pack(&("user", 7_i64));
        assert!(begin.as_slice() <= key.as_slice() && key.as_slice() < end.as_slice());
    }
}
