//! Atomic adds: FDB's ADD mutation on little-endian i64 counters, applied by engines at
//! commit on the value current then, so concurrent adds need not read the counter.

/// Applies an FDB ADD: `base` read as little-endian (missing or short = zero-extended,
/// long = truncated to 8 bytes) plus `delta`, wrapping.
pub(crate) fn add_to_value(base: Option<&[u8]>, delta: i64) -> Vec<u8> {
    let mut bytes = [0_u8; 8];
    if let Some(base) = base {
        let len = base.len().min(bytes.len());
        bytes[..len].copy_from_slice(&base[..len]);
    }
    i64::from_le_bytes(bytes)
        .wrapping_add(delta)
        .to_le_bytes()
        .to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_to_value_extends_and_truncates_like_fdb() {
        assert_eq!(add_to_value(Some(&[1]), 1), 2_i64.to_le_bytes().to_vec());
        assert_eq!(
            add_to_value(Some(&[0xff; 10]), 1),
            0_i64.to_le_bytes().to_vec()
        );
        assert_eq!(add_to_value(None, -1), (-1_i64).to_le_bytes().to_vec());
    }
}
