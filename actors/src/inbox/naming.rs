//! What a file's name says: whether to wait for it, what kind of data it holds and
//! in which format, and where it goes when done.

use serde::{Deserialize, Serialize};

use super::failure::FileFailure;
use crate::limits::FILE_NAME_BYTES_MAX;

pub use crate::domain::Kind;

/// How the rows are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Format {
    Csv,
    JsonLines,
    JsonArray,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::JsonLines => "jsonl",
            Format::JsonArray => "json",
        }
    }
}

/// Kind, format and compression, read from a file name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileType {
    pub kind: Kind,
    pub format: Format,
    pub gzip: bool,
}

impl FileType {
    /// `format` as shown in job JSON, e.g. `csv` or `jsonl.gz`.
    pub fn format_label(&self) -> String {
        if self.gzip {
            format!("{}.gz", self.format.as_str())
        } else {
            self.format.as_str().to_owned()
        }
    }
}

/// Names still being written: dot-files and `.tmp`, `.part`, `.partial` (any case).
pub fn is_ignored(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    name.starts_with('.')
        || [".tmp", ".part", ".partial"]
            .iter()
            .any(|s| lower.ends_with(s))
}

/// Reads kind (prefix) and format (extension, optionally `.gz`) from a file name.
/// The error is the reason shown in the failure report.
pub fn file_type(name: &str) -> Result<FileType, FileFailure> {
    let (format, gzip) = format_of(name)?;
    let kind = kind_of(name).ok_or(FileFailure::NoKindInName)?;
    Ok(FileType { kind, format, gzip })
}

/// The kind a file name's prefix gives, if any.
pub fn kind_of(name: &str) -> Option<Kind> {
    let lower = name.to_ascii_lowercase();
    if lower.starts_with("products") {
        Some(Kind::Products)
    } else if lower.starts_with("orders") {
        Some(Kind::Orders)
    } else if lower.starts_with("inventory") {
        Some(Kind::Inventory)
    } else {
        None
    }
}

/// The format and compression a file name's extension gives.
pub fn format_of(name: &str) -> Result<(Format, bool), FileFailure> {
    let lower = name.to_ascii_lowercase();
    let (rest, gzip) = match lower.strip_suffix(".gz") {
        Some(rest) => (rest, true),
        None => (lower.as_str(), false),
    };
    let format = if rest.ends_with(".csv") {
        Format::Csv
    } else if rest.ends_with(".jsonl") || rest.ends_with(".ndjson") {
        Format::JsonLines
    } else if rest.ends_with(".json") {
        Format::JsonArray
    } else {
        return Err(FileFailure::UnknownFormat);
    };
    Ok((format, gzip))
}

/// Checks a client-chosen file name (uploads): a plain name, no directories, no
/// traversal, no hidden or temporary names, printable, bounded.
pub fn check_upload_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > FILE_NAME_BYTES_MAX {
        return Err(format!("must be 1 to {FILE_NAME_BYTES_MAX} bytes"));
    }
    if name.contains(['/', '\\', '\0']) || name == "." || name == ".." {
        return Err("must be a plain file name, without directories".into());
    }
    if name.chars().any(char::is_control) {
        return Err("must not contain control characters".into());
    }
    if is_ignored(name) {
        return Err("must not start with '.' or end in .tmp, .part or .partial".into());
    }
    format_of(name).map(|_| ()).map_err(|e| e.to_string())
}

/// A name as people read it: UTF-8 kept, every byte that is not part of valid UTF-8
/// shown as `\xNN`, so a report can name a file whose name is not UTF-8.
pub fn escape_name(raw: &std::ffi::OsStr) -> String {
    use std::fmt::Write as _;
    use std::os::unix::ffi::OsStrExt as _;
    let mut out = String::new();
    for chunk in raw.as_bytes().utf8_chunks() {
        out.push_str(chunk.valid());
        for b in chunk.invalid() {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
    out
}

/// Why the inbox cannot take a file under its own name (its job then fails with
/// this reason, under [`safe_name`]): a name that is not UTF-8, or one too long to
/// keep with the claim prefix and the report's suffix.
pub fn unclaimable_reason(raw: &std::ffi::OsStr) -> Option<FileFailure> {
    match raw.to_str() {
        None => Some(FileFailure::NameNotUtf8(escape_name(raw))),
        Some(name) if name.len() > FILE_NAME_BYTES_MAX => Some(FileFailure::NameTooLong(
            crate::text::cut(name, 64).to_owned(),
        )),
        Some(_) => None,
    }
}

/// Most bytes of the original name kept in a [`safe_name`].
const SAFE_NAME_STEM_BYTES_MAX: usize = 64;

/// A short, plain stand-in for a name the inbox cannot use: its readable start
/// (only `A-Z a-z 0-9 . _ -`) and 8 hex digits of the SHA-256 of the original bytes.
pub fn safe_name(raw: &std::ffi::OsStr) -> String {
    use sha2::{Digest, Sha256};
    use std::os::unix::ffi::OsStrExt as _;
    let escaped = escape_name(raw);
    let stem: String = crate::text::cut(&escaped, SAFE_NAME_STEM_BYTES_MAX)
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let stem = stem.trim_start_matches('.');
    let digest = Sha256::digest(raw.as_bytes());
    format!(
        "unreadable-name-{}{:02x}{:02x}{:02x}{:02x}",
        if stem.is_empty() {
            String::new()
        } else {
            format!("{stem}-")
        },
        digest[0],
        digest[1],
        digest[2],
        digest[3]
    )
}

/// `name` with `-N` before its extensions, for the N-th collision:
/// `products.csv.gz` → `products-1.csv.gz`.
pub fn with_suffix(name: &str, n: u32) -> String {
    match name.find('.') {
        Some(0) | None => format!("{name}-{n}"),
        Some(dot) => format!("{}-{n}{}", &name[..dot], &name[dot..]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_and_format_from_name() {
        let t = file_type("Products_2026-11.CSV").unwrap();
        assert_eq!(
            (t.kind, t.format, t.gzip),
            (Kind::Products, Format::Csv, false)
        );
        let t = file_type("orders.ndjson.gz").unwrap();
        assert_eq!(
            (t.kind, t.format, t.gzip),
            (Kind::Orders, Format::JsonLines, true)
        );
        assert_eq!(t.format_label(), "jsonl.gz");
        let t = file_type("inventory-feed.json").unwrap();
        assert_eq!((t.kind, t.format), (Kind::Inventory, Format::JsonArray));
        assert!(
            file_type("supplier_data.json")
                .unwrap_err()
                .to_string()
                .contains("unknown kind")
        );
        assert!(
            file_type("products.xlsx")
                .unwrap_err()
                .to_string()
                .contains("unknown format")
        );
        assert!(file_type("products.csv.zip").is_err());
    }

    #[test]
    fn ignored_names() {
        for name in [
            ".hidden.csv",
            "products.csv.part",
            "products.csv.TMP",
            "x.partial",
        ] {
            assert!(is_ignored(name), "{name}");
        }
        assert!(!is_ignored("products.csv"));
    }

    #[test]
    fn upload_names_cannot_escape() {
        assert!(
            check_upload_name("supplier_data.json").is_ok(),
            "kind can come from the columns"
        );
        for bad in [
            "../../x.csv",
            "a/products.csv",
            "..",
            "",
            "products.csv\0",
            ".products.csv",
            "products.csv.part",
            "notes.txt",
        ] {
            assert!(check_upload_name(bad).is_err(), "{bad:?}");
        }
        assert!(check_upload_name("products-2026.csv.gz").is_ok());
        assert!(check_upload_name(&format!("products{}.csv", "x".repeat(200))).is_err());
    }

    #[test]
    fn unclaimable_names_get_a_reason_and_a_safe_stand_in() {
        use std::ffi::OsStr;
        use std::os::unix::ffi::OsStrExt as _;
        let latin1 = OsStr::from_bytes(b"products_caf\xe9.csv");
        assert_eq!(escape_name(latin1), "products_caf\\xe9.csv");
        assert!(
            unclaimable_reason(latin1)
                .unwrap()
                .to_string()
                .contains("not UTF-8")
        );
        let long = "é".repeat(120);
        let long = OsStr::new(&long);
        assert!(
            unclaimable_reason(long)
                .unwrap()
                .to_string()
                .contains("longer than")
        );
        assert_eq!(unclaimable_reason(OsStr::new("products.csv")), None);
        for raw in [latin1, long, OsStr::from_bytes(b"\xff\xfe")] {
            let safe = safe_name(raw);
            assert!(safe.len() <= 100, "{safe}");
            assert!(check_plain(&safe), "{safe}");
            assert_eq!(safe, safe_name(raw), "deterministic");
        }
        assert_ne!(
            safe_name(latin1),
            safe_name(OsStr::from_bytes(b"products_caf\xe8.csv"))
        );
    }

    fn check_plain(name: &str) -> bool {
        !name.starts_with('.')
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    }

    #[test]
    fn collision_suffix() {
        assert_eq!(with_suffix("products.csv.gz", 1), "products-1.csv.gz");
        assert_eq!(with_suffix("products", 2), "products-2");
    }
}
