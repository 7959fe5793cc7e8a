//! JSON: JSON Lines (one object per line) and JSON arrays split element by element
//! without parsing the whole document.

use std::io::{self, BufRead};

use serde_json::value::RawValue;

use super::{Body, Extractor, RawRecord, Unreadable};
use crate::inbox::failure::FileFailure;
use crate::inbox::naming::Kind;
use crate::inbox::reject::RejectCode;
use crate::inbox::schema::columns;
use crate::json_nesting::JsonNesting;
use crate::limits::IMPORT_ROW_BYTES_MAX;

/// Maps one JSON object's text to the kind's columns (keys matched without regard
/// to case or surrounding spaces; unknown keys ignored).
fn json_record(line: u64, text: String, kind: Kind) -> RawRecord {
    let unreadable = |code: RejectCode, reason: String, text: String| RawRecord {
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
            return unreadable(
                RejectCode::NotAnObject,
                "row is not a JSON object".into(),
                text,
            );
        }
        Err(e) => {
            return unreadable(
                RejectCode::MalformedJson,
                format!("malformed JSON: {e}"),
                text,
            );
        }
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
    fn next_record(&mut self) -> Result<Option<RawRecord>, FileFailure> {
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
    pub fn new(mut reader: Box<dyn BufRead + Send>, kind: Kind) -> Result<Self, FileFailure> {
        let mut line = 1;
        match next_significant(&mut *reader, &mut line)? {
            Some(b'[') => Ok(Self {
                reader,
                kind,
                line,
                done: false,
            }),
            _ => Err(FileFailure::NotAnArray),
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
    fn next_record(&mut self) -> Result<Option<RawRecord>, FileFailure> {
        if self.done {
            return Ok(None);
        }
        let mut first = match next_significant(&mut *self.reader, &mut self.line)? {
            None => return Err(FileFailure::ArrayNotClosed),
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
                    return Err(FileFailure::MalformedArray { line: self.line });
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
                return Err(FileFailure::ArrayNotClosed);
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
                        code: RejectCode::NotAnObject,
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
    fn expect_end(&mut self) -> Result<Option<RawRecord>, FileFailure> {
        match next_significant(&mut *self.reader, &mut self.line)? {
            None => Ok(None),
            Some(_) => Err(FileFailure::TextAfterArray { line: self.line }),
        }
    }
}
