//! Extract: a file's bytes → records, streamed.
//!
//! Following Vector's codecs, in layers: [`open`] undoes the compression and the
//! BOM (and [`open::inspect`] checks a whole file's structure before anything is
//! loaded), framing and format are per format, [`csv`] and [`json`] (JSON Lines and
//! JSON arrays), and all of them hand out the same [`RawRecord`], whose values are
//! looked up by the columns of [`super::schema`].
//!
//! Invariants:
//! - memory is bounded whatever the file size: readers work through fixed buffers,
//!   a single record is capped ([`IMPORT_ROW_BYTES_MAX`] → rejected,
//!   [`crate::limits::IMPORT_RECORD_BYTES_HARD_MAX`] → the file fails), and a JSON
//!   array is split element by element, never parsed whole;
//! - every record carries the line it starts on and its raw text, for reject reports;
//! - structural problems (bad gzip, not UTF-8, no header, JSON not an array) are
//!   found by [`open::inspect`] before anything is loaded, so such a file fails as a
//!   whole.

pub mod csv;
pub mod json;
pub mod open;

use std::io::BufRead;
use std::sync::Arc;

use super::failure::FileFailure;
use super::naming::{FileType, Format};
use super::reject::RejectCode;
use super::schema::Column;
use crate::limits::{IMPORT_ROW_BYTES_MAX, REJECT_RAW_BYTES_MAX};

pub use open::{FileFacts, inspect, open};

/// A value as the file gave it: text (CSV, JSON strings) or a JSON number literal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Value<'a> {
    Text(&'a str),
    Number(&'a str),
}

/// Why a record could not even be read as one (it becomes a reject).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreadable {
    pub code: RejectCode,
    pub reason: String,
}

/// Which columns a products file's header names: orderflow's own, or Shopify's
/// export (`schema::ShopifyColumn`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Plain,
    Shopify,
}

#[derive(Debug, Clone)]
pub(super) enum Body {
    Csv {
        record: ::csv::StringRecord,
        map: Arc<[Option<usize>]>,
        delimiter: u8,
        /// Shopify's export: the first row of this record's product (handle),
        /// when this is one of its continuation rows.
        first: Option<Arc<::csv::StringRecord>>,
        dialect: Dialect,
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
    pub(super) fn too_large(text: String) -> Self {
        Body::Unreadable {
            text: crate::text::cut_owned(text, REJECT_RAW_BYTES_MAX),
            why: Unreadable {
                code: RejectCode::RowTooLarge,
                reason: format!("row is larger than {IMPORT_ROW_BYTES_MAX} bytes"),
            },
        }
    }
}

/// One record of a file, with its line and raw text.
#[derive(Debug, Clone)]
pub struct RawRecord {
    pub line: u64,
    pub(super) body: Body,
}

impl RawRecord {
    /// The value of column `col` of the record's kind; empty text is absent. An
    /// inherited column left empty on a continuation row is its first row's.
    pub fn get<C: Column>(&self, col: C) -> Option<Value<'_>> {
        let inherited = col.inherited();
        let col = col.index();
        match &self.body {
            Body::Csv {
                record, map, first, ..
            } => {
                let own = record
                    .get(map[col]?)
                    .map(str::trim)
                    .filter(|t| !t.is_empty());
                let text = match (own, first) {
                    (None, Some(first)) if inherited => first.get(map[col]?)?.trim(),
                    (own, _) => own?,
                };
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

    /// The value this record itself gives for `col`, never inherited.
    pub fn own<C: Column>(&self, col: C) -> Option<&str> {
        match &self.body {
            Body::Csv { record, map, .. } => record
                .get(map[col.index()]?)
                .map(str::trim)
                .filter(|t| !t.is_empty()),
            Body::Json { .. } | Body::Unreadable { .. } => None,
        }
    }

    /// Whose columns the record's file has.
    pub fn dialect(&self) -> Dialect {
        match &self.body {
            Body::Csv { dialect, .. } => *dialect,
            Body::Json { .. } | Body::Unreadable { .. } => Dialect::Plain,
        }
    }

    pub fn unreadable(&self) -> Option<&Unreadable> {
        match &self.body {
            Body::Unreadable { why, .. } => Some(why),
            Body::Csv { .. } | Body::Json { .. } => None,
        }
    }

    /// The record as it was written (CSV cells re-joined), for reject reports.
    pub fn raw_text(&self) -> String {
        match &self.body {
            Body::Csv {
                record, delimiter, ..
            } => {
                let mut out = ::csv::WriterBuilder::new()
                    .delimiter(*delimiter)
                    .terminator(::csv::Terminator::Any(b'\n'))
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
    fn next_record(&mut self) -> Result<Option<RawRecord>, FileFailure>;
}

/// Builds the extractor for a file type over an opened reader.
pub fn extractor(
    ty: FileType,
    reader: Box<dyn BufRead + Send>,
) -> Result<Box<dyn Extractor>, FileFailure> {
    Ok(match ty.format {
        Format::Csv => Box::new(csv::CsvExtractor::new(reader, ty.kind)?),
        Format::JsonLines => Box::new(json::JsonLinesExtractor::new(reader, ty.kind)),
        Format::JsonArray => Box::new(json::JsonArrayExtractor::new(reader, ty.kind)?),
    })
}

#[cfg(test)]
mod tests {
    use std::io;

    use super::*;
    use crate::inbox::naming::Kind;
    use crate::inbox::schema::{Column, InventoryColumn as I, ProductColumn as P};

    fn records(format: Format, kind: Kind, text: &str) -> Result<Vec<RawRecord>, FileFailure> {
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

    fn text<C: Column>(r: &RawRecord, col: C) -> Option<String> {
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
        assert_eq!(text(&rs[0], P::Name).as_deref(), Some("Cable; long"));
        assert_eq!(text(&rs[0], P::Price).as_deref(), Some("1,50"));
        assert_eq!(text(&rs[0], P::Sku).as_deref(), Some("A"));
        assert_eq!(rs[1].line, 3);
        assert_eq!(text(&rs[1], P::Sku), None, "empty cell is absent");
        let rs = records(Format::Csv, Kind::Inventory, "sku\tstock\nA\t5\n").unwrap();
        assert_eq!(text(&rs[0], I::Stock).as_deref(), Some("5"));
        let rs = records(
            Format::Csv,
            Kind::Inventory,
            "sku|stock\n\"multi\nline\"|5\nB|6\n",
        )
        .unwrap();
        assert_eq!(text(&rs[0], I::Sku).as_deref(), Some("multi\nline"));
        assert_eq!(rs[1].line, 4);
    }

    #[test]
    fn csv_structure_is_checked() {
        assert!(
            records(Format::Csv, Kind::Products, "sku,price\nA,1\n")
                .unwrap_err()
                .to_string()
                .contains("name")
        );
        assert!(
            records(Format::Csv, Kind::Products, "name,name,price\n")
                .unwrap_err()
                .to_string()
                .contains("more than once")
        );
        let rs = records(Format::Csv, Kind::Inventory, "sku,stock\nA,1,extra\n").unwrap();
        assert_eq!(rs[0].unreadable().unwrap().code, RejectCode::FieldCount);
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
        assert_eq!(rs[0].get(P::Price), Some(Value::Number("120.50")));
        assert_eq!(rs[1].line, 3);
        assert_eq!(rs[1].unreadable().unwrap().code, RejectCode::NotAnObject);
        assert_eq!(rs[2].unreadable().unwrap().code, RejectCode::MalformedJson);
        let rs = records(
            Format::JsonArray,
            Kind::Products,
            "[\n  {\"name\": \"a]{\\\"\", \"price\": 1},\n  {\"name\": \"b\",\n   \"price\": \"2,5\"}, 7\n]\n",
        )
        .unwrap();
        assert_eq!(rs.len(), 3);
        assert_eq!(text(&rs[0], P::Name).as_deref(), Some("a]{\""));
        assert_eq!(rs[1].line, 3);
        assert_eq!(rs[1].get(P::Price), Some(Value::Text("2,5")));
        assert_eq!(rs[2].unreadable().unwrap().code, RejectCode::NotAnObject);
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
        assert_eq!(rs[0].unreadable().unwrap().code, RejectCode::NotAnObject);
        assert_eq!(text(&rs[1], P::Name).as_deref(), Some("c"));
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
        assert_eq!(rs[0].unreadable().unwrap().code, RejectCode::RowTooLarge);
        assert_eq!(text(&rs[1], P::Name).as_deref(), Some("ok"));
        let rs = records(
            Format::Csv,
            Kind::Inventory,
            &format!("sku,stock\n{big},1\nB,2\n"),
        )
        .unwrap();
        assert_eq!(rs[0].unreadable().unwrap().code, RejectCode::RowTooLarge);
        assert_eq!(rs.len(), 2);
        // An unclosed quote would swallow the file: it fails instead of eating memory.
        let huge = format!("sku,stock\n\"A,1\n{}", "B,2\n".repeat(400_000));
        assert!(
            records(Format::Csv, Kind::Inventory, &huge)
                .unwrap_err()
                .to_string()
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
                assert_eq!(rs[0].unreadable().unwrap().code, RejectCode::RowTooLarge);
                assert!(rs[0].raw_text().len() <= REJECT_RAW_BYTES_MAX);
                assert_eq!(
                    text_of(&rs[1], P::Name).as_deref(),
                    Some("ok"),
                    "{format:?}"
                );
            }
        }
    }

    fn text_of<C: Column>(r: &RawRecord, col: C) -> Option<String> {
        text(r, col)
    }

    /// Shopify's export: a continuation row reads its product's title and option
    /// names from the handle's first row, but only its own value for a column
    /// that is not inherited; a new handle starts afresh; the raw text stays the
    /// row as written.
    #[test]
    fn a_shopify_continuation_row_inherits_from_its_first_row() {
        use crate::inbox::schema::ShopifyColumn as S;
        let text = "Handle,Title,Option1 Name,Option1 Value,Variant Price\n\
                    tee,Tee,Size,S,10\n\
                    tee,,,M,\n\
                    mug,Mug,,,5\n";
        let rows = records(Format::Csv, Kind::Products, text).unwrap();
        assert!(rows.iter().all(|r| r.dialect() == Dialect::Shopify));
        assert_eq!(text_of(&rows[1], S::Title).as_deref(), Some("Tee"));
        assert_eq!(text_of(&rows[1], S::Option1Name).as_deref(), Some("Size"));
        assert_eq!(text_of(&rows[1], S::Option1Value).as_deref(), Some("M"));
        assert_eq!(
            text_of(&rows[1], S::VariantPrice),
            None,
            "a price is never inherited"
        );
        assert_eq!(rows[1].own(S::Title), None);
        assert_eq!(rows[1].raw_text(), "tee,,,M,");
        assert_eq!(text_of(&rows[2], S::Option1Name), None, "another handle");
        let plain = records(Format::Csv, Kind::Products, "sku,name,price\nA,a,1\n").unwrap();
        assert_eq!(plain[0].dialect(), Dialect::Plain);
    }
}
