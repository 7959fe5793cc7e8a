//! Stored records: postcard bytes behind a one-byte schema version.
//!
//! postcard has a specified, stable wire format (bincode, the usual choice, is
//! unmaintained). The leading version byte lets a later release read old records and
//! migrate them instead of misreading them: a record of an older version is decoded
//! by its type's [`Record::upgrade`] (and written back in the current shape the
//! next time it is written: `encode` always writes `VERSION`); a version this build
//! does not know (a newer release's, or an old one without an upgrade) is an error,
//! never a guess.
//!
//! How to change a record's shape: bump `VERSION`, keep the old shape as a private
//! struct, and map it in `upgrade` (see the test `an_older_version_is_upgraded`).

use serde::{Serialize, de::DeserializeOwned};

/// A type stored as a redb value.
pub trait Record: Serialize + DeserializeOwned {
    /// Bumped whenever the type's serialized shape changes.
    const VERSION: u8;
    /// For error messages.
    const NAME: &'static str;

    /// Decodes `body`, written with the older version `found` (< `VERSION`), into
    /// the current shape; `None` when that version is not known.
    fn upgrade(found: u8, body: &[u8]) -> Option<Result<Self, postcard::Error>> {
        let _ = (found, body);
        None
    }
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
    let corrupt = |source| CodecError::Corrupt {
        record: T::NAME,
        source,
    };
    if version == T::VERSION {
        return postcard::from_bytes(body).map_err(corrupt);
    }
    let unknown = CodecError::UnknownVersion {
        record: T::NAME,
        found: version,
        expected: T::VERSION,
    };
    if version > T::VERSION {
        return Err(unknown);
    }
    match T::upgrade(version, body) {
        Some(decoded) => decoded.map_err(corrupt),
        None => Err(unknown),
    }
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

    /// Version 1 of `Grown` had no `note`; version 2 reads it as `None`.
    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Grown {
        a: u64,
        note: Option<String>,
    }
    impl Record for Grown {
        const VERSION: u8 = 2;
        const NAME: &'static str = "grown";
        fn upgrade(found: u8, body: &[u8]) -> Option<Result<Self, postcard::Error>> {
            #[derive(Deserialize)]
            struct V1 {
                a: u64,
            }
            match found {
                1 => Some(postcard::from_bytes::<V1>(body).map(|v| Grown { a: v.a, note: None })),
                _ => None,
            }
        }
    }

    #[test]
    fn an_older_version_is_upgraded() {
        #[derive(Serialize, Deserialize)]
        struct V1 {
            a: u64,
        }
        impl Record for V1 {
            const VERSION: u8 = 1;
            const NAME: &'static str = "grown";
        }
        let old = encode(&V1 { a: 7 });
        assert_eq!(old[0], 1);
        let read: Grown = decode(&old).unwrap();
        assert_eq!(read, Grown { a: 7, note: None });
        // Written back, it takes the current shape and version.
        let new = encode(&read);
        assert_eq!(new[0], 2);
        assert_eq!(decode::<Grown>(&new).unwrap(), read);
        // A newer release's record, or an old version without an upgrade: refused.
        let mut newer = new.clone();
        newer[0] = 3;
        assert!(matches!(
            decode::<Grown>(&newer),
            Err(CodecError::UnknownVersion { found: 3, .. })
        ));
        let mut ancient = old;
        ancient[0] = 0;
        assert!(matches!(
            decode::<Grown>(&ancient),
            Err(CodecError::UnknownVersion { found: 0, .. })
        ));
    }
}
