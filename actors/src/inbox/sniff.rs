//! What kind of rows a file holds when its name does not say: read from its
//! columns (the CSV header or the first JSON object).

use std::io::{self, BufRead};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use super::extract::csv::{csv_failure, detect_delimiter};
use super::extract::{Extractor, json, open};
use super::failure::FileFailure;
use super::naming::{Format, Kind};

/// The kind a file's columns say, for files whose name has no kind prefix: an
/// `order_ref` column means orders; `name` and `price`, products; `sku` and `stock`
/// without those, inventory. Looks at the CSV header or the first JSON object only.
pub fn sniff_kind(path: &Path, format: Format, gzip: bool) -> Result<Kind, FileFailure> {
    let reader = open(path, gzip, Arc::new(AtomicU64::new(0)))?;
    let keys: Vec<String> = match format {
        Format::Csv => {
            let mut csv = ::csv::ReaderBuilder::new()
                .delimiter(detect_delimiter(&peek(reader)?))
                .from_reader(open(path, gzip, Arc::new(AtomicU64::new(0)))?);
            csv.headers()
                .map_err(|e| csv_failure(&e))?
                .iter()
                .map(|h| h.trim().to_lowercase())
                .collect()
        }
        Format::JsonLines | Format::JsonArray => {
            let mut ex: Box<dyn Extractor> = if format == Format::JsonLines {
                Box::new(json::JsonLinesExtractor::new(reader, Kind::Products))
            } else {
                Box::new(json::JsonArrayExtractor::new(reader, Kind::Products)?)
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
        Err(FileFailure::UnknownKind {
            columns: if keys.is_empty() {
                "none".to_owned()
            } else {
                keys.join(", ")
            },
        })
    }
}

fn peek(mut reader: Box<dyn BufRead + Send>) -> io::Result<Vec<u8>> {
    Ok(reader.fill_buf()?.to_vec())
}
