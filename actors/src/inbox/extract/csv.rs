//! CSV: RFC 4180 records through the `csv` crate, with the delimiter detected
//! from the header, CRLF made LF, and every record bounded.

use std::io::{self, BufRead, Read};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::{Body, Dialect, Extractor, RawRecord, Unreadable};
use crate::inbox::failure::FileFailure;
use crate::inbox::naming::Kind;
use crate::inbox::reject::RejectCode;
use crate::inbox::schema::{Column, ShopifyColumn, columns, shopify_columns};
use crate::limits::{IMPORT_READ_BUFFER_BYTES, IMPORT_RECORD_BYTES_HARD_MAX, IMPORT_ROW_BYTES_MAX};

/// The I/O error a [`GuardedReader`] fails a record with.
const RECORD_TOO_LARGE: &str = "record too large";

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
            return Err(io::Error::other(RECORD_TOO_LARGE));
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
    dialect: Dialect,
    /// Shopify's export: the handle of the product being read and its first row,
    /// which its continuation rows inherit from. Rebuilt from the file on a
    /// resume, as the extractor reads (and skips) the committed records again.
    product: Option<(String, Arc<csv::StringRecord>)>,
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
    pub fn new(mut reader: Box<dyn BufRead + Send>, kind: Kind) -> Result<Self, FileFailure> {
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
        let headers = csv.headers().map_err(|e| csv_failure(&e))?.clone();
        if headers.iter().all(|h| h.trim().is_empty()) {
            return Err(FileFailure::BlankHeader);
        }
        let names: Vec<String> = headers.iter().map(|h| h.trim().to_lowercase()).collect();
        let dialect = if kind == Kind::Products && ShopifyColumn::is_export(&names) {
            Dialect::Shopify
        } else {
            Dialect::Plain
        };
        let wanted = match dialect {
            Dialect::Plain => columns(kind),
            Dialect::Shopify => shopify_columns(),
        };
        let mut map = Vec::new();
        let mut missing = Vec::new();
        for column in wanted {
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
                    return Err(FileFailure::RepeatedColumn(column.name));
                }
            }
        }
        if !missing.is_empty() {
            return Err(FileFailure::MissingColumns(missing));
        }
        record_start.store(csv.position().byte(), Ordering::Relaxed);
        Ok(Self {
            reader: csv,
            map: map.into(),
            header_len: headers.len(),
            delimiter,
            record_start,
            dialect,
            product: None,
        })
    }

    /// The first row of `record`'s product when `record` continues it (Shopify's
    /// export), remembering `record` as the first row of a new product.
    fn first_of(&mut self, record: &csv::StringRecord) -> Option<Arc<csv::StringRecord>> {
        if self.dialect != Dialect::Shopify {
            return None;
        }
        let at = self.map[ShopifyColumn::Handle.index()]?;
        let handle = record.get(at).unwrap_or_default().trim();
        match &self.product {
            Some((current, first)) if current == handle => Some(Arc::clone(first)),
            _ => {
                self.product = Some((handle.to_owned(), Arc::new(record.clone())));
                None
            }
        }
    }
}

pub(crate) fn csv_failure(e: &csv::Error) -> FileFailure {
    match e.kind() {
        csv::ErrorKind::Io(io) if io.to_string() == RECORD_TOO_LARGE => {
            FileFailure::RecordTooLarge {
                line: e.position().map_or(0, csv::Position::line),
            }
        }
        csv::ErrorKind::Utf8 { pos, .. } => FileFailure::NotUtf8AtLine {
            line: pos.as_ref().map_or(0, csv::Position::line),
        },
        _ => FileFailure::Csv(e.to_string()),
    }
}

impl Extractor for CsvExtractor {
    fn next_record(&mut self) -> Result<Option<RawRecord>, FileFailure> {
        let mut record = csv::StringRecord::new();
        let more = self
            .reader
            .read_record(&mut record)
            .map_err(|e| csv_failure(&e))?;
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
                code: RejectCode::FieldCount,
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
                    first: None,
                    dialect: self.dialect,
                },
            };
            Body::Unreadable {
                text: raw.raw_text(),
                why,
            }
        } else {
            Body::Csv {
                first: self.first_of(&record),
                record,
                map: Arc::clone(&self.map),
                delimiter: self.delimiter,
                dialect: self.dialect,
            }
        };
        Ok(Some(RawRecord { line, body }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
