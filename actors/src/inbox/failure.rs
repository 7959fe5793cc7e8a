//! Why a whole file fails: a closed set, so every way a file can fail is named in
//! one place and the compiler sees each. Its text is what the job's `error`, the
//! report and the CLI summary say.

use crate::limits::{FILE_NAME_BYTES_MAX, IMPORT_RECORD_BYTES_HARD_MAX};

/// The step a job is in, so that a failure on our side can say where.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Stage {
    Sniff = 0,
    Inspect = 1,
    Extract = 2,
    Transform = 3,
    Load = 4,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Sniff => "sniff",
            Stage::Inspect => "inspect",
            Stage::Extract => "extract",
            Stage::Transform => "transform",
            Stage::Load => "load",
        }
    }

    pub(crate) fn from_u8(v: u8) -> Self {
        match v {
            0 => Stage::Sniff,
            1 => Stage::Inspect,
            2 => Stage::Extract,
            3 => Stage::Transform,
            _ => Stage::Load,
        }
    }
}

/// A file-level failure: nothing more of the file is loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FileFailure {
    #[error("cannot read the file: {0}")]
    Unreadable(String),
    #[error("bad gzip: {0}")]
    BadGzip(String),
    #[error("not UTF-8: invalid byte at offset {offset}")]
    NotUtf8 { offset: u64 },
    #[error("not UTF-8: the file ends inside a character at offset {offset}")]
    EndsInsideCharacter { offset: u64 },
    #[error("not UTF-8 at line {line}")]
    NotUtf8AtLine { line: u64 },
    #[error("JSON is not an array: the file must start with '['")]
    NotAnArray,
    #[error("JSON array is not closed: the file must end with ']'")]
    ArrayNotClosed,
    #[error("malformed JSON array near line {line}")]
    MalformedArray { line: u64 },
    #[error("unexpected text after the JSON array at line {line}")]
    TextAfterArray { line: u64 },
    #[error("no header: the CSV file is empty")]
    EmptyCsv,
    #[error("no header: the first line of the CSV file is empty")]
    BlankHeader,
    #[error("the header lacks required column(s): {}", .0.join(", "))]
    MissingColumns(Vec<&'static str>),
    #[error("the header names column {0} more than once")]
    RepeatedColumn(&'static str),
    #[error(
        "a record near line {line} is larger than {IMPORT_RECORD_BYTES_HARD_MAX} bytes (an unclosed quote?)"
    )]
    RecordTooLarge { line: u64 },
    #[error("cannot read the CSV file: {0}")]
    Csv(String),
    #[error(
        "unknown kind: the file name starts with none of products, orders, inventory, and its columns ({columns}) do not say"
    )]
    UnknownKind { columns: String },
    #[error("unknown kind: the file name must start with products, orders or inventory")]
    NoKindInName,
    #[error(
        "unknown format: the file name must end in .csv, .jsonl, .ndjson or .json (optionally .gz)"
    )]
    UnknownFormat,
    #[error("the file name is not UTF-8: \"{0}\"")]
    NameNotUtf8(String),
    #[error("the file name is longer than {FILE_NAME_BYTES_MAX} bytes: \"{0}…\"")]
    NameTooLong(String),
    #[error("the file looks truncated ({why}) and did not change for {waited_secs} s")]
    LooksTruncated { why: &'static str, waited_secs: u64 },
    #[error("internal error in {}", .0.as_str())]
    Internal(Stage),
}

impl From<std::io::Error> for FileFailure {
    fn from(e: std::io::Error) -> Self {
        FileFailure::Unreadable(e.to_string())
    }
}
