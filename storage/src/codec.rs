//! A generic record codec: CBOR behind a format-version byte, so records can evolve.

use crate::error::StorageError;

/// The format byte written before every record; bump it when the encoding itself changes.
const FORMAT_VERSION: u8 = 1;

/// Encodes `value` as a versioned CBOR record.
pub fn encode<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, StorageError> {
    let mut bytes = vec![FORMAT_VERSION];
    ciborium::into_writer(value, &mut bytes)
        .map_err(|error| StorageError::Codec(format!("encode record: {error}")))?;
    Ok(bytes)
}

/// Decodes a record written by [`encode`].
pub fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, StorageError> {
    match bytes.split_first() {
        None => Err(StorageError::Codec("decode record: empty".to_owned())),
        Some((&FORMAT_VERSION, body)) => ciborium::from_reader(body)
            .map_err(|error| StorageError::Codec(format!("decode record: {error}"))),
        Some((version, _)) => Err(StorageError::Codec(format!(
            "decode record: unsupported format version {version}, expected {FORMAT_VERSION}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Record {
        name: String,
        count: u64,
        #[serde(default)]
        tags: Vec<String>,
    }

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct OldRecord {
        name: String,
        count: u64,
    }

    #[test]
    fn round_trip() {
        let record = Record {
            name: "a".into(),
            count: 3,
            tags: vec!["x".into()],
        };
        let bytes = encode(&record).unwrap();
        assert_eq!(bytes[0], FORMAT_VERSION);
        assert_eq!(decode::<Record>(&bytes).unwrap(), record);
    }

    #[test]
    fn old_records_decode_into_new_shapes_with_defaults() {
        let bytes = encode(&OldRecord {
            name: "a".into(),
            count: 1,
        })
        .unwrap();
        let record: Record = decode(&bytes).unwrap();
        assert!(record.tags.is_empty());
    }

    #[test]
    fn rejects_empty_unknown_version_and_garbage() {
        assert!(matches!(decode::<Record>(&[]), Err(StorageError::Codec(_))));
        assert!(matches!(
            decode::<Record>(&[9, 0]),
            Err(StorageError::Codec(_))
        ));
        assert!(matches!(
            decode::<Record>(&[1, 0xff]),
            Err(StorageError::Codec(_))
        ));
    }
}
