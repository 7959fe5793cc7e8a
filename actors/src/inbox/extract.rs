//! Extract: a file's bytes → records, streamed.
//!
//! Invariants:
//! - memory is bounded whatever the file size: readers work through fixed buffers,
//!   a single record is capped ([`IMPORT_ROW_BYTES_MAX`] → rejected,
//!   [`IMPORT_RECORD_BYTES_HARD_MAX`] → the file fails), and a JSON array is split
//!   element by element, never parsed whole;
//! - every record carries the line it starts on and its raw text, for reject reports;
//! - structural problems (bad gzip, not UTF-8, no header, JSON not an array) are
//!   found by [`inspect`] before anything is loaded, so such a file fails as a whole.
//!
//! Three formats, one output: [`RawRecord`], whose values are looked up by the
//! column order of [`columns`] for the file's kind.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use flate2::read::MultiGzDecoder;
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};

use super::naming::{FileType, Format, Kind};
use crate::json_nesting::JsonNesting;
use crate::limits::{
    IMPORT_READ_BUFFER_BYTES, IMPORT_RECORD_BYTES_HARD_MAX, IMPORT_ROW_BYTES_MAX,
    REJECT_RAW_BYTES_MAX,
};

/// A column a kind of file may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    pub name: &'static str,
    pub required: bool,
}

const fn col(name: &'static str, required: bool) -> Column {
    Column { name, required }
}

pub const PRODUCT_COLUMNS: [Column; 6] = [
    col("sku", false),
    col("name", true),
    col("category", false),
    col("price", true),
    col("stock", false),
    col("description", false),
];
pub const ORDER_COLUMNS: [Column; 5] = [
    col("order_ref", true),
    col("customer", true),
    col("sku", true),
    col("quantity", true),
    col("unit_price", false),
];
pub const INVENTORY_COLUMNS: [Column; 2] = [col("sku", true), col("stock", true)];

pub fn columns(kind: Kind) -> &'static [Column] {
    match kind {
        Kind::Products => &PRODUCT_COLUMNS,
        Kind::Orders => &ORDER_COLUMNS,
        Kind::Inventory => &INVENTORY_COLUMNS,
    }
}

/// A file-level failure: nothing of the file is loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Structural(pub String);

impl From<io::Error> for Structural {
    fn from(e: io::Error) -> Self {
        Structural(format!("cannot read the file: {e}"))
    }
}

/// What [`inspect`] learnt about a whole file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileFacts {
    pub sha256: [u8; 32],
    pub bytes: u64,
}

/// One pass over the whole file before any loading: its SHA-256 and size, and the
/// structural checks (gzip intact, UTF-8 throughout, a CSV header, a JSON array
/// that opens and closes).
pub fn inspect(path: &Path, ty: FileType) -> Result<FileFacts, Structural> {
    let file = File::open(path)?;
    let hasher = HashingReader {
        inner: file,
        hash: Sha256::new(),
        bytes: 0,
    };
    let mut raw = BufReader::with_capacity(IMPORT_READ_BUFFER_BYTES, hasher);
    let mut checker = Utf8Checker::default();
    let mut buf = vec![0u8; IMPORT_READ_BUFFER_BYTES];
    {
        let mut decoded: Box<dyn Read> = if ty.gzip {
            Box::new(MultiGzDecoder::new(&mut raw))
        } else {
            Box::new(&mut raw)
        };
        loop {
            let n = decoded.read(&mut buf).map_err(|e| {
                if ty.gzip {
                    Structural(format!("bad gzip: {e}"))
                } else {
                    Structural(format!("cannot read the file: {e}"))
                }
            })?;
            if n == 0 {
                break;
            }
            checker.feed(&buf[..n])?;
        }
    }
    checker.finish(ty.format)?;
    // Anything after the gzip stream was read by the decoder; make sure the hash
    // covers every byte of the file.
    io::copy(&mut raw, &mut io::sink())?;
    let hasher = raw.into_inner();
    Ok(FileFacts {
        sha256: hasher.hash.finalize().into(),
        bytes: hasher.bytes,
    })
}

struct HashingReader<R> {
    inner: R,
    hash: Sha256,
    bytes: u64,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
}

/// Streaming checks over the decoded text.
#[derive(Default)]
struct Utf8Checker {
    offset: u64,
    carry: Vec<u8>,
    first_significant: Option<u8>,
    last_significant: Option<u8>,
    any_newline_after_text: bool,
    seen_text: bool,
}

impl Utf8Checker {
    fn feed(&mut self, chunk: &[u8]) -> Result<(), Structural> {
        let mut data = std::mem::take(&mut self.carry);
        data.extend_from_slice(chunk);
        let valid = match std::str::from_utf8(&data) {
            Ok(_) => data.len(),
            Err(e) if e.error_len().is_none() => e.valid_up_to(),
            Err(e) => {
                return Err(Structural(format!(
                    "not UTF-8: invalid byte at offset {}",
                    self.offset + e.valid_up_to() as u64
                )));
            }
        };
        let text = &data[..valid];
        let start = if self.offset == 0 && text.starts_with(b"\xEF\xBB\xBF") {
            3
        } else {
            0
        };
        for &b in &text[start..] {
            if !b.is_ascii_whitespace() {
                self.first_significant.get_or_insert(b);
                self.last_significant = Some(b);
                self.seen_text = true;
            } else if b == b'\n' && self.seen_text {
                self.any_newline_after_text = true;
            }
        }
        self.offset += valid as u64;
        self.carry = data[valid..].to_vec();
        Ok(())
    }

    fn finish(self, format: Format) -> Result<(), Structural> {
        if !self.carry.is_empty() {
            return Err(Structural(format!(
                "not UTF-8: the file ends inside a character at offset {}",
                self.offset
            )));
        }
        match format {
            Format::JsonArray => {
                if self.first_significant != Some(b'[') {
                    return Err(Structural(
                        "JSON is not an array: the file must start with '['".into(),
                    ));
                }
                if self.last_significant != Some(b']') {
                    return Err(Structural(
                        "JSON array is not closed: the file must end with ']'".into(),
                    ));
                }
            }
            Format::Csv if self.first_significant.is_none() => {
                return Err(Structural("no header: the CSV file is empty".into()));
            }
            _ => {}
        }
        Ok(())
    }
}

/// The tail of a file looks cut: a JSON array that opens but does not close (a
/// writer still at work, or one that died). CSV and JSON Lines files are complete
/// once they have settled: RFC 4180 makes the final line break optional, and many
/// exporters leave it out. Only checked for uncompressed files (a cut gzip stream is
/// caught by [`inspect`]).
pub fn looks_truncated(
    path: &Path,
    format: Format,
    gzip: bool,
) -> io::Result<Option<&'static str>> {
    use std::io::{Seek, SeekFrom};
    if gzip || format != Format::JsonArray {
        return Ok(None);
    }
    let mut file = File::open(path)?;
    let len = file.metadata()?.len();
    let edge = len.min(TRUNCATION_PROBE_BYTES);
    let mut head = vec![0u8; usize::try_from(edge).unwrap_or(0)];
    file.read_exact(&mut head)?;
    let first = head
        .iter()
        .find(|b| !b.is_ascii_whitespace() && **b != 0xEF && **b != 0xBB && **b != 0xBF)
        .copied();
    file.seek(SeekFrom::Start(len - edge))?;
    let mut tail = vec![0u8; head.len()];
    file.read_exact(&mut tail)?;
    let last = tail
        .iter()
        .rev()
        .find(|b| !b.is_ascii_whitespace())
        .copied();
    // Not an array at all is a structural failure, not a file still being written.
    Ok((first == Some(b'[') && last != Some(b']')).then_some("the JSON array is not closed"))
}

/// Bytes read at each end of a file to see whether it looks cut.
const TRUNCATION_PROBE_BYTES: u64 = 4096;

/// The kind a file's columns say, for files whose name has no kind prefix: an
/// `order_ref` column means orders; `name` and `price`, products; `sku` and `stock`
/// without those, inventory. Looks at the CSV header or the first JSON object only.
pub fn sniff_kind(path: &Path, format: Format, gzip: bool) -> Result<Kind, Structural> {
    let reader = open(path, gzip, Arc::new(AtomicU64::new(0)))?;
    let keys: Vec<String> = match format {
        Format::Csv => {
            let mut csv = csv::ReaderBuilder::new()
                .delimiter(detect_delimiter(&peek(reader)?))
                .from_reader(open(path, gzip, Arc::new(AtomicU64::new(0)))?);
            csv.headers()
                .map_err(|e| csv_structural(&e))?
                .iter()
                .map(|h| h.trim().to_lowercase())
                .collect()
        }
        Format::JsonLines | Format::JsonArray => {
            let mut ex: Box<dyn Extractor> = if format == Format::JsonLines {
                Box::new(JsonLinesExtractor::new(reader, Kind::Products))
            } else {
                Box::new(JsonArrayExtractor::new(reader, Kind::Products)?)
            };
            match ex.next_record()? {
                Some(first) => serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(
                    &first.raw_text(),
                )
                .map(|m| m.keys().map(|k| k.trim().to_lowercase()).collect())
                .unwrap_or_default(),
                None => Vec::new(),
            }
        }
    };
    let has = |k: &str| keys.iter().any(|x| x == k);
    if has("order_ref") {
        Ok(Kind::Orders)
    } else if has("name") && has("price") {
        Ok(Kind::Products)
    } else if has("sku") && has("stock") {
        Ok(Kind::Inventory)
    } else {
        Err(Structural(format!(
            "unknown kind: the file name starts with none of products, orders, inventory, and its columns ({}) do not say",
            if keys.is_empty() {
                "none".to_owned()
            } else {
                keys.join(", ")
            }
        )))
    }
}

fn peek(mut reader: Box<dyn BufRead + Send>) -> io::Result<Vec<u8>> {
    Ok(reader.fill_buf()?.to_vec())
}

/// Opens a file for reading: buffered, gunzipped if needed, BOM skipped. `progress`
/// counts the file's bytes read so far (compressed bytes for gzip).
pub fn open(
    path: &Path,
    gzip: bool,
    progress: Arc<AtomicU64>,
) -> io::Result<Box<dyn BufRead + Send>> {
    let file = CountingReader {
        inner: File::open(path)?,
        count: progress,
    };
    let raw = BufReader::with_capacity(IMPORT_READ_BUFFER_BYTES, file);
    let mut reader: Box<dyn BufRead + Send> = if gzip {
        Box::new(BufReader::with_capacity(
            IMPORT_READ_BUFFER_BYTES,
            MultiGzDecoder::new(raw),
        ))
    } else {
        Box::new(raw)
    };
    if reader.fill_buf()?.starts_with(b"\xEF\xBB\xBF") {
        reader.consume(3);
    }
    Ok(reader)
}

struct CountingReader<R> {
    inner: R,
    count: Arc<AtomicU64>,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// A value as the file gave it: text (CSV, JSON strings) or a JSON number literal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Value<'a> {
    Text(&'a str),
    Number(&'a str),
}

/// Why a record could not even be read as one (it becomes a reject).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreadable {
    pub code: &'static str,
    pub reason: String,
}

#[derive(Debug, Clone)]
enum Body {
    Csv {
        record: csv::StringRecord,
        map: Arc<[Option<usize>]>,
        delimiter: u8,
    },
    Json {
        values: Vec<Option<(bool, String)>>,
        text: String,
    },
    Unreadable {
        text: String,
        why: Unreadable,
    },
}

impl Body {
    /// A record over [`IMPORT_ROW_BYTES_MAX`]: rejected, keeping the start of its
    /// text (cut on a character boundary) for the report.
    fn too_large(text: String) -> Self {
        Body::Unreadable {
            text: crate::text::cut_owned(text, REJECT_RAW_BYTES_MAX),
            why: Unreadable {
                code: "row_too_large",
                reason: format!("row is larger than {IMPORT_ROW_BYTES_MAX} bytes"),
            },
        }
    }
}

/// One record of a file, with its line and raw text.
#[derive(Debug, Clone)]
pub struct RawRecord {
    pub line: u64,
    body: Body,
}

impl RawRecord {
    /// The value of the kind's column `col` (index into [`columns`]); empty text is
    /// absent.
    pub fn get(&self, col: usize) -> Option<Value<'_>> {
        match &self.body {
            Body::Csv { record, map, .. } => {
                let text = record.get(map[col]?)?.trim();
                (!text.is_empty()).then_some(Value::Text(text))
            }
            Body::Json { values, .. } => match values.get(col)?.as_ref()? {
                (true, literal) => Some(Value::Number(literal)),
                (false, text) => {
                    let text = text.trim();
                    (!text.is_empty()).then_some(Value::Text(text))
                }
            },
            Body::Unreadable { .. } => None,
        }
    }

    pub fn unreadable(&self) -> Option<&Unreadable> {
        match &self.body {
            Body::Unreadable { why, .. } => Some(why),
            _ => None,
        }
    }

    /// The record as it was written (CSV cells re-joined), for reject reports.
    pub fn raw_text(&self) -> String {
        match &self.body {
            Body::Csv {
                record, delimiter, ..
            } => {
                let mut out = csv::WriterBuilder::new()
                    .delimiter(*delimiter)
                    .terminator(csv::Terminator::Any(b'\n'))
                    .from_writer(Vec::new());
                let _ = out.write_record(record);
                let bytes = out.into_inner().unwrap_or_default();
                String::from_utf8_lossy(&bytes)
                    .trim_end_matches('\n')
                    .to_owned()
            }
            Body::Json { text, .. } | Body::Unreadable { text, .. } => text.clone(),
        }
    }
}

/// A stream of records.
pub trait Extractor: Send {
    /// The next record, `None` at the end, `Err` for a structural failure.
    fn next_record(&mut self) -> Result<Option<RawRecord>, Structural>;
}

/// Builds the extractor for a file type over an opened reader.
pub fn extractor(
    ty: FileType,
    reader: Box<dyn BufRead + Send>,
) -> Result<Box<dyn Extractor>, Structural> {
    Ok(match ty.format {
        Format::Csv => Box::new(CsvExtractor::new(reader, ty.kind)?),
        Format::JsonLines => Box::new(JsonLinesExtractor::new(reader, ty.kind)),
        Format::JsonArray => Box::new(JsonArrayExtractor::new(reader, ty.kind)?),
    })
}

// --- CSV --------------------------------------------------------------------------

/// Turns CRLF line breaks into LF on the fly. The csv crate reports record positions
/// one line short in CRLF files; normalising first keeps every reject's line number
/// right (a CRLF inside a quoted field becomes LF, which no field of ours minds).
struct CrlfToLf<R> {
    inner: R,
    /// A `\r` that ended the previous chunk, not yet known to precede a `\n`.
    pending_cr: bool,
}

impl<R: BufRead> Read for CrlfToLf<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        let mut n = 0;
        loop {
            let buf = self.inner.fill_buf()?;
            if buf.is_empty() {
                if self.pending_cr {
                    self.pending_cr = false;
                    out[n] = b'\r';
                    n += 1;
                }
                return Ok(n);
            }
            if self.pending_cr {
                self.pending_cr = false;
                if buf[0] != b'\n' {
                    out[n] = b'\r';
                    n += 1;
                    if n == out.len() {
                        return Ok(n);
                    }
                }
            }
            let mut used = 0;
            while used < buf.len() && n < out.len() {
                let b = buf[used];
                used += 1;
                if b == b'\r' {
                    match buf.get(used) {
                        Some(b'\n') => continue,
                        Some(_) => {}
                        None => {
                            self.pending_cr = true;
                            continue;
                        }
                    }
                }
                out[n] = b;
                n += 1;
            }
            self.inner.consume(used);
            if n > 0 {
                return Ok(n);
            }
        }
    }
}

/// Fails a read once a single record has taken more than the hard maximum.
struct GuardedReader<R> {
    inner: CrlfToLf<R>,
    read: u64,
    record_start: Arc<AtomicU64>,
}

impl<R: BufRead> Read for GuardedReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let start = self.record_start.load(Ordering::Relaxed);
        if self.read.saturating_sub(start) > IMPORT_RECORD_BYTES_HARD_MAX {
            return Err(io::Error::other("record too large"));
        }
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        Ok(n)
    }
}

pub struct CsvExtractor {
    reader: csv::Reader<GuardedReader<Box<dyn BufRead + Send>>>,
    map: Arc<[Option<usize>]>,
    header_len: usize,
    delimiter: u8,
    record_start: Arc<AtomicU64>,
}

/// The delimiter among `,` `;` tab `|` that the header line uses most.
pub fn detect_delimiter(header: &[u8]) -> u8 {
    let line = header.split(|&b| b == b'\n').next().unwrap_or(header);
    let mut best = (b',', 0usize);
    for d in [b',', b';', b'\t', b'|'] {
        let mut in_quotes = false;
        let count = line
            .iter()
            .filter(|&&b| {
                if b == b'"' {
                    in_quotes = !in_quotes;
                }
                !in_quotes && b == d
            })
            .count();
        if count > best.1 {
            best = (d, count);
        }
    }
    best.0
}

impl CsvExtractor {
    pub fn new(mut reader: Box<dyn BufRead + Send>, kind: Kind) -> Result<Self, Structural> {
        let delimiter = detect_delimiter(reader.fill_buf()?);
        let record_start = Arc::new(AtomicU64::new(0));
        let guarded = GuardedReader {
            inner: CrlfToLf {
                inner: reader,
                pending_cr: false,
            },
            read: 0,
            record_start: Arc::clone(&record_start),
        };
        let mut csv = csv::ReaderBuilder::new()
            .delimiter(delimiter)
            .has_headers(true)
            .flexible(true)
            .buffer_capacity(IMPORT_READ_BUFFER_BYTES)
            .from_reader(guarded);
        let headers = csv.headers().map_err(|e| csv_structural(&e))?.clone();
        if headers.iter().all(|h| h.trim().is_empty()) {
            return Err(Structural(
                "no header: the first line of the CSV file is empty".into(),
            ));
        }
        let names: Vec<String> = headers.iter().map(|h| h.trim().to_lowercase()).collect();
        let mut map = Vec::new();
        let mut missing = Vec::new();
        for column in columns(kind) {
            let found: Vec<usize> = names
                .iter()
                .enumerate()
                .filter(|(_, n)| *n == column.name)
                .map(|(i, _)| i)
                .collect();
            match found.as_slice() {
                [] if column.required => missing.push(column.name),
                [] => map.push(None),
                [one] => map.push(Some(*one)),
                _ => {
                    return Err(Structural(format!(
                        "the header names column {} more than once",
                        column.name
                    )));
                }
            }
        }
        if !missing.is_empty() {
            return Err(Structural(format!(
                "the header lacks required column(s): {}",
                missing.join(", ")
            )));
        }
        record_start.store(csv.position().byte(), Ordering::Relaxed);
        Ok(Self {
            reader: csv,
            map: map.into(),
            header_len: headers.len(),
            delimiter,
            record_start,
        })
    }
}

fn csv_structural(e: &csv::Error) -> Structural {
    match e.kind() {
        csv::ErrorKind::Io(io) if io.to_string() == "record too large" => Structural(format!(
            "a record near line {} is larger than {IMPORT_RECORD_BYTES_HARD_MAX} bytes (an unclosed quote?)",
            e.position().map_or(0, |p| p.line())
        )),
        csv::ErrorKind::Utf8 { pos, .. } => Structural(format!(
            "not UTF-8 at line {}",
            pos.as_ref().map_or(0, |p| p.line())
        )),
        _ => Structural(format!("cannot read the CSV file: {e}")),
    }
}

impl Extractor for CsvExtractor {
    fn next_record(&mut self) -> Result<Option<RawRecord>, Structural> {
        let mut record = csv::StringRecord::new();
        let more = self
            .reader
            .read_record(&mut record)
            .map_err(|e| csv_structural(&e))?;
        if !more {
            return Ok(None);
        }
        let start = record.position().map_or(0, |p| p.byte());
        let line = record.position().map_or(0, |p| p.line());
        let end = self.reader.position().byte();
        self.record_start.store(end, Ordering::Relaxed);
        let body = if end - start > IMPORT_ROW_BYTES_MAX as u64 {
            Body::too_large(String::new())
        } else if record.len() > self.header_len {
            let why = Unreadable {
                code: "field_count",
                reason: format!(
                    "row has {} fields, the header has {}",
                    record.len(),
                    self.header_len
                ),
            };
            let raw = RawRecord {
                line,
                body: Body::Csv {
                    record,
                    map: Arc::clone(&self.map),
                    delimiter: self.delimiter,
                },
            };
            Body::Unreadable {
                text: raw.raw_text(),
                why,
            }
        } else {
            Body::Csv {
                record,
                map: Arc::clone(&self.map),
                delimiter: self.delimiter,
            }
        };
        Ok(Some(RawRecord { line, body }))
    }
}

// --- JSON -------------------------------------------------------------------------

/// Maps one JSON object's text to the kind's columns (keys matched without regard
/// to case or surrounding spaces; unknown keys ignored).
fn json_record(line: u64, text: String, kind: Kind) -> RawRecord {
    let unreadable = |code: &'static str, reason: String, text: String| RawRecord {
        line,
        body: Body::Unreadable {
            text,
            why: Unreadable { code, reason },
        },
    };
    if text.len() > IMPORT_ROW_BYTES_MAX {
        return RawRecord {
            line,
            body: Body::too_large(text),
        };
    }
    let object: std::collections::HashMap<String, &RawValue> = match serde_json::from_str(&text) {
        Ok(o) => o,
        Err(e) if e.classify() == serde_json::error::Category::Data => {
            return unreadable("not_an_object", "row is not a JSON object".into(), text);
        }
        Err(e) => return unreadable("malformed_json", format!("malformed JSON: {e}"), text),
    };
    let cols = columns(kind);
    let mut values: Vec<Option<(bool, String)>> = vec![None; cols.len()];
    for (key, value) in &object {
        let key = key.trim().to_lowercase();
        let Some(i) = cols.iter().position(|c| c.name == key) else {
            continue;
        };
        let literal = value.get();
        values[i] = match literal.as_bytes().first() {
            Some(b'"') => serde_json::from_str::<String>(literal)
                .ok()
                .map(|s| (false, s)),
            Some(b'n') => None,
            Some(b'-' | b'0'..=b'9') => Some((true, literal.to_owned())),
            // true/false, arrays, objects: keep the text so validation names it.
            _ => Some((false, literal.to_owned())),
        };
    }
    RawRecord {
        line,
        body: Body::Json { values, text },
    }
}

pub struct JsonLinesExtractor {
    reader: Box<dyn BufRead + Send>,
    kind: Kind,
    line: u64,
}

impl JsonLinesExtractor {
    pub fn new(reader: Box<dyn BufRead + Send>, kind: Kind) -> Self {
        Self {
            reader,
            kind,
            line: 0,
        }
    }
}

/// Reads one line (without its `\n`) into `out`, keeping at most `max` bytes; the
/// rest of an over-long line is skipped without being buffered. Returns the line's
/// full length, or `None` at the end of input.
fn read_line_bounded(
    reader: &mut dyn BufRead,
    out: &mut Vec<u8>,
    max: usize,
) -> io::Result<Option<usize>> {
    out.clear();
    let mut total = 0usize;
    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            return Ok(if total == 0 { None } else { Some(total) });
        }
        let (chunk, done) = match buf.iter().position(|&b| b == b'\n') {
            Some(i) => (&buf[..i], Some(i + 1)),
            None => (buf, None),
        };
        let room = max.saturating_sub(out.len());
        out.extend_from_slice(&chunk[..chunk.len().min(room)]);
        total += chunk.len();
        let consumed = done.unwrap_or(chunk.len());
        reader.consume(consumed);
        if done.is_some() {
            return Ok(Some(total));
        }
    }
}

impl Extractor for JsonLinesExtractor {
    fn next_record(&mut self) -> Result<Option<RawRecord>, Structural> {
        let mut buf = Vec::new();
        loop {
            let Some(len) =
                read_line_bounded(&mut *self.reader, &mut buf, IMPORT_ROW_BYTES_MAX + 1)?
            else {
                return Ok(None);
            };
            self.line += 1;
            let text = String::from_utf8_lossy(&buf).trim().to_owned();
            if text.is_empty() {
                continue;
            }
            if len > IMPORT_ROW_BYTES_MAX {
                return Ok(Some(RawRecord {
                    line: self.line,
                    body: Body::too_large(text),
                }));
            }
            return Ok(Some(json_record(self.line, text, self.kind)));
        }
    }
}

/// Splits a JSON array into its elements without parsing the whole document:
/// [`JsonNesting`] tracks strings, escapes and nesting depth, so each element's text
/// (and the line it starts on) is handed over on its own.
pub struct JsonArrayExtractor {
    reader: Box<dyn BufRead + Send>,
    kind: Kind,
    line: u64,
    done: bool,
}

impl JsonArrayExtractor {
    pub fn new(mut reader: Box<dyn BufRead + Send>, kind: Kind) -> Result<Self, Structural> {
        let mut line = 1;
        match next_significant(&mut *reader, &mut line)? {
            Some(b'[') => Ok(Self {
                reader,
                kind,
                line,
                done: false,
            }),
            _ => Err(Structural(
                "JSON is not an array: the file must start with '['".into(),
            )),
        }
    }
}

fn next_significant(reader: &mut dyn BufRead, line: &mut u64) -> io::Result<Option<u8>> {
    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            return Ok(None);
        }
        let b = buf[0];
        reader.consume(1);
        if b == b'\n' {
            *line += 1;
        }
        if !b.is_ascii_whitespace() {
            return Ok(Some(b));
        }
    }
}

impl Extractor for JsonArrayExtractor {
    fn next_record(&mut self) -> Result<Option<RawRecord>, Structural> {
        if self.done {
            return Ok(None);
        }
        let mut first = match next_significant(&mut *self.reader, &mut self.line)? {
            None => return Err(Structural("JSON array is not closed".into())),
            Some(b']') => {
                self.done = true;
                return self.expect_end();
            }
            Some(b) => b,
        };
        if first == b',' {
            first = match next_significant(&mut *self.reader, &mut self.line)? {
                Some(b) if b != b']' && b != b',' => b,
                _ => {
                    return Err(Structural(format!(
                        "malformed JSON array near line {}",
                        self.line
                    )));
                }
            };
        }
        let start_line = self.line;
        let mut text: Vec<u8> = vec![first];
        let mut size = 1usize;
        let mut nesting = JsonNesting::default();
        nesting.push(first);
        let scalar = nesting.depth() == 0 && !nesting.in_string();
        // Scalars (numbers, true, null) end at the next ',' or ']' (left unread).
        loop {
            let depth = nesting.depth();
            if depth == 0 && !nesting.in_string() && !scalar {
                break;
            }
            let buf = self.reader.fill_buf()?;
            if buf.is_empty() {
                return Err(Structural("JSON array is not closed".into()));
            }
            let b = buf[0];
            if scalar && depth == 0 && (b == b',' || b == b']' || b.is_ascii_whitespace()) {
                break;
            }
            self.reader.consume(1);
            size += 1;
            if b == b'\n' {
                self.line += 1;
            }
            if size <= IMPORT_ROW_BYTES_MAX + 1 {
                text.push(b);
            }
            nesting.push(b);
        }
        let text = String::from_utf8_lossy(&text).into_owned();
        if first != b'{' {
            return Ok(Some(RawRecord {
                line: start_line,
                body: Body::Unreadable {
                    text,
                    why: Unreadable {
                        code: "not_an_object",
                        reason: "element is not a JSON object".into(),
                    },
                },
            }));
        }
        if size > IMPORT_ROW_BYTES_MAX {
            return Ok(Some(RawRecord {
                line: start_line,
                body: Body::too_large(text),
            }));
        }
        Ok(Some(json_record(start_line, text, self.kind)))
    }
}

impl JsonArrayExtractor {
    fn expect_end(&mut self) -> Result<Option<RawRecord>, Structural> {
        match next_significant(&mut *self.reader, &mut self.line)? {
            None => Ok(None),
            Some(_) => Err(Structural(format!(
                "unexpected text after the JSON array at line {}",
                self.line
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(format: Format, kind: Kind, text: &str) -> Result<Vec<RawRecord>, Structural> {
        let reader: Box<dyn BufRead + Send> = Box::new(io::Cursor::new(text.as_bytes().to_vec()));
        let mut ex = extractor(
            FileType {
                kind,
                format,
                gzip: false,
            },
            reader,
        )?;
        let mut out = Vec::new();
        while let Some(r) = ex.next_record()? {
            out.push(r);
        }
        Ok(out)
    }

    fn text(r: &RawRecord, col: usize) -> Option<String> {
        r.get(col).map(|v| match v {
            Value::Text(t) | Value::Number(t) => t.to_owned(),
        })
    }

    #[test]
    fn csv_dialects() {
        let rs = records(
            Format::Csv,
            Kind::Products,
            "Name;PRICE ; sku\r\n\"Cable; long\";1,50;A\r\nRouter;2;\r\n",
        )
        .unwrap();
        assert_eq!(rs.len(), 2);
        assert_eq!(text(&rs[0], 1).as_deref(), Some("Cable; long"));
        assert_eq!(text(&rs[0], 3).as_deref(), Some("1,50"));
        assert_eq!(text(&rs[0], 0).as_deref(), Some("A"));
        assert_eq!(rs[1].line, 3);
        assert_eq!(text(&rs[1], 0), None, "empty cell is absent");
        let rs = records(Format::Csv, Kind::Inventory, "sku\tstock\nA\t5\n").unwrap();
        assert_eq!(text(&rs[0], 1).as_deref(), Some("5"));
        let rs = records(
            Format::Csv,
            Kind::Inventory,
            "sku|stock\n\"multi\nline\"|5\nB|6\n",
        )
        .unwrap();
        assert_eq!(text(&rs[0], 0).as_deref(), Some("multi\nline"));
        assert_eq!(rs[1].line, 4);
    }

    #[test]
    fn crlf_becomes_lf_across_chunk_boundaries() {
        for cut in 1..12 {
            let data = b"a\r\nb\r\r\nc\rd\r".to_vec();
            let (head, tail) = data.split_at(cut);
            let chained = io::BufReader::with_capacity(3, io::Read::chain(head, tail));
            let mut out = String::new();
            CrlfToLf {
                inner: chained,
                pending_cr: false,
            }
            .read_to_string(&mut out)
            .unwrap();
            assert_eq!(out, "a\nb\r\nc\rd\r", "cut at {cut}");
        }
    }

    #[test]
    fn csv_structure_is_checked() {
        assert!(
            records(Format::Csv, Kind::Products, "sku,price\nA,1\n")
                .unwrap_err()
                .0
                .contains("name")
        );
        assert!(
            records(Format::Csv, Kind::Products, "name,name,price\n")
                .unwrap_err()
                .0
                .contains("more than once")
        );
        let rs = records(Format::Csv, Kind::Inventory, "sku,stock\nA,1,extra\n").unwrap();
        assert_eq!(rs[0].unreadable().unwrap().code, "field_count");
        assert_eq!(rs[0].raw_text(), "A,1,extra");
    }

    #[test]
    fn json_lines_and_arrays() {
        let rs = records(
            Format::JsonLines,
            Kind::Products,
            "{\"NAME\":\"x\",\"price\":120.50}\n\n[1]\n{bad\n",
        )
        .unwrap();
        assert_eq!(rs.len(), 3);
        assert_eq!(rs[0].get(3), Some(Value::Number("120.50")));
        assert_eq!(rs[1].line, 3);
        assert_eq!(rs[1].unreadable().unwrap().code, "not_an_object");
        assert_eq!(rs[2].unreadable().unwrap().code, "malformed_json");
        let rs = records(
            Format::JsonArray,
            Kind::Products,
            "[\n  {\"name\": \"a]{\\\"\", \"price\": 1},\n  {\"name\": \"b\",\n   \"price\": \"2,5\"}, 7\n]\n",
        )
        .unwrap();
        assert_eq!(rs.len(), 3);
        assert_eq!(text(&rs[0], 1).as_deref(), Some("a]{\""));
        assert_eq!(rs[1].line, 3);
        assert_eq!(rs[1].get(3), Some(Value::Text("2,5")));
        assert_eq!(rs[2].unreadable().unwrap().code, "not_an_object");
        assert!(records(Format::JsonArray, Kind::Products, "{\"name\":1}").is_err());
        assert!(records(Format::JsonArray, Kind::Products, "[{\"name\":1}").is_err());
        assert!(records(Format::JsonArray, Kind::Products, "[{\"name\":1}] x").is_err());
        assert!(
            records(Format::JsonArray, Kind::Products, "[]")
                .unwrap()
                .is_empty()
        );
        // A stray closer in a scalar element spoils that element, not the file.
        let rs = records(Format::JsonArray, Kind::Products, "[1}, {\"name\": \"c\"}]").unwrap();
        assert_eq!(rs.len(), 2);
        assert_eq!(rs[0].unreadable().unwrap().code, "not_an_object");
        assert_eq!(text(&rs[1], 1).as_deref(), Some("c"));
    }

    #[test]
    fn oversized_rows_are_rejected_without_buffering_them() {
        let big = "x".repeat(IMPORT_ROW_BYTES_MAX + 10);
        let rs = records(
            Format::JsonLines,
            Kind::Products,
            &format!("{{\"name\":\"{big}\"}}\n{{\"name\":\"ok\"}}\n"),
        )
        .unwrap();
        assert_eq!(rs[0].unreadable().unwrap().code, "row_too_large");
        assert_eq!(text(&rs[1], 1).as_deref(), Some("ok"));
        let rs = records(
            Format::Csv,
            Kind::Inventory,
            &format!("sku,stock\n{big},1\nB,2\n"),
        )
        .unwrap();
        assert_eq!(rs[0].unreadable().unwrap().code, "row_too_large");
        assert_eq!(rs.len(), 2);
        // An unclosed quote would swallow the file: it fails instead of eating memory.
        let huge = format!("sku,stock\n\"A,1\n{}", "B,2\n".repeat(400_000));
        assert!(
            records(Format::Csv, Kind::Inventory, &huge)
                .unwrap_err()
                .0
                .contains("larger than")
        );
    }

    /// Regression: an over-long row whose text had a multi-byte character across the
    /// raw-text budget panicked in `String::truncate` and killed the inbox.
    #[test]
    fn oversized_rows_with_a_character_across_the_raw_budget_are_rejected() {
        for offset in 0..3 {
            // '€' is 3 bytes: with each of three shifts, one of them straddles the
            // budget whatever the format's prefix.
            let big = format!(
                "{}{}",
                "x".repeat(offset),
                "€".repeat(IMPORT_ROW_BYTES_MAX / 2)
            );
            for (format, kind, text) in [
                (
                    Format::JsonLines,
                    Kind::Products,
                    format!("{{\"name\":\"{big}\"}}\n{{\"name\":\"ok\"}}\n"),
                ),
                (
                    Format::JsonArray,
                    Kind::Products,
                    format!("[{{\"name\":\"{big}\"}},{{\"name\":\"ok\"}}]"),
                ),
                (
                    Format::Csv,
                    Kind::Products,
                    format!("name,price\n{big},1\nok,2\n"),
                ),
            ] {
                let rs = records(format, kind, &text).unwrap();
                assert_eq!(rs.len(), 2, "{format:?}");
                assert_eq!(rs[0].unreadable().unwrap().code, "row_too_large");
                assert!(rs[0].raw_text().len() <= REJECT_RAW_BYTES_MAX);
                assert_eq!(text_of(&rs[1], 1).as_deref(), Some("ok"), "{format:?}");
            }
        }
    }

    fn text_of(r: &RawRecord, col: usize) -> Option<String> {
        text(r, col)
    }

    #[test]
    fn inspect_checks_structure_and_hashes() {
        let dir = tempfile::tempdir().unwrap();
        let ty = |format, gzip| FileType {
            kind: Kind::Products,
            format,
            gzip,
        };
        let write = |name: &str, bytes: &[u8]| {
            let p = dir.path().join(name);
            std::fs::write(&p, bytes).unwrap();
            p
        };
        let ok = write("a.json", b"[{\"name\":\"x\"}]\n");
        let facts = inspect(&ok, ty(Format::JsonArray, false)).unwrap();
        assert_eq!(facts.bytes, 15);
        assert_eq!(
            facts.sha256,
            <[u8; 32]>::from(Sha256::digest(b"[{\"name\":\"x\"}]\n"))
        );
        assert!(
            inspect(&write("b.json", b"{}"), ty(Format::JsonArray, false))
                .unwrap_err()
                .0
                .contains("not an array")
        );
        assert!(
            inspect(&write("c.json", b"[{}"), ty(Format::JsonArray, false))
                .unwrap_err()
                .0
                .contains("not closed")
        );
        assert!(
            inspect(
                &write("d.csv", b"name,price\n\xff,1\n"),
                ty(Format::Csv, false)
            )
            .unwrap_err()
            .0
            .contains("not UTF-8")
        );
        assert!(
            inspect(&write("e.csv", b"  \n"), ty(Format::Csv, false))
                .unwrap_err()
                .0
                .contains("no header")
        );
        assert!(
            inspect(
                &write("f.csv.gz", b"not gzip at all"),
                ty(Format::Csv, true)
            )
            .unwrap_err()
            .0
            .contains("bad gzip")
        );
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        std::io::Write::write_all(&mut gz, "name,price\né,1\n".as_bytes()).unwrap();
        let bytes = gz.finish().unwrap();
        assert!(inspect(&write("g.csv.gz", &bytes), ty(Format::Csv, true)).is_ok());
        assert!(
            inspect(
                &write("h.csv.gz", &bytes[..bytes.len() - 6]),
                ty(Format::Csv, true)
            )
            .is_err()
        );
        assert!(
            inspect(
                &write("i.csv", "name\u{feff},x\n".as_bytes()),
                ty(Format::Csv, false)
            )
            .is_ok()
        );
    }
}
