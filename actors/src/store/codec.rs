//! Stored records: postcard bytes behind a one-byte schema version.
//!
//! postcard has a specified, stable wire format (bincode, the usual choice, is
//! unmaintained). The leading version byte lets a later release read old records and
//! migrate them instead of misreading them: decoding a record whose version this
//! build does not know is an error, never a guess.

use serde::{Serialize, de::DeserializeOwned};

/// A type stored as a redb value.
pub trait Record: Serialize + DeserializeOwned {
    /// Bumped whenever the type's serialized shape changes.
    const VERSION: u8;
    /// For error messages.
    const NAME: &'static str;
}

#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("{record} record is empty")]
    Empty { record: &'static str },
    #[error("{record} record has schema version {found}, this build reads {expected}")]
    UnknownVersion {
        record: &'static str,
        found: u8,
        expected: u8,
    },
    #[error("{record} record is corrupt: {source}")]
    Corrupt {
        record: &'static str,
        source: postcard::Error,
    },
}

pub fn encode<T: Record>(value: &T) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    out.push(T::VERSION);
    // Serializing into a Vec only fails on types postcard cannot express, which our
    // records never contain: that would be a programming error.
    postcard::to_extend(value, out).expect("records are postcard-serializable")
}

pub fn decode<T: Record>(bytes: &[u8]) -> Result<T, CodecError> {
    let (&version, body) = bytes
        .split_first()
        .ok_or(CodecError::Empty { record: T::NAME })?;
    if version != T::VERSION {
        return Err(CodecError::UnknownVersion {
            record: T::NAME,
            found: version,
            expected: T::VERSION,
        });
    }
    postcard::from_bytes(body).map_err(|source| CodecError::Corrupt {
        record: T::NAME,
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Sample {
        a: u64,
        b: String,
    }
    impl Record for Sample {
        const VERSION: u8 = 3;
        const NAME: &'static str = "sample";
    }

    #[test]
    fn round_trips_with_version_byte() {
        let s = Sample {
            a: 300,
            b: "x".into(),
        };
        let bytes = encode(&s);
        assert_eq!(bytes[0], 3);
        assert_eq!(decode::<Sample>(&bytes).unwrap(), s);
    }

    #[test]
    fn refuses_unknown_versions_and_garbage() {
        let mut bytes = encode(&Sample {
            a: 1,
            b: "y".into(),
        });
        bytes[0] = 4;
        assert!(matches!(
            decode::<Sample>(&bytes),
            Err(CodecError::UnknownVersion { .. })
        ));
        assert!(matches!(
            decode::<Sample>(&[]),
            Err(CodecError::Empty { .. })
        ));
        assert!(matches!(
            decode::<Sample>(&[3, 0xff]),
            Err(CodecError::Corrupt { .. })
        ));
    }
}
