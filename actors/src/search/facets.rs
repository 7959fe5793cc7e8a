//! Counting a facet over every match: a collector that reads the facet's fast
//! column (term ordinals per segment, then their text once per segment), so no
//! stored document is opened.

use std::collections::HashMap;

use tantivy::collector::{Collector, SegmentCollector};
use tantivy::columnar::{Column, StrColumn};
use tantivy::{DocId, Score, SegmentReader};

use super::fields::PAIR_SEPARATOR;
use super::query::{FacetName, PRICE_BUCKETS, bucket_label, price_bucket};
use crate::domain::fold_case;
use crate::limits::SEARCH_FACET_VALUES_MAX;

/// One value of a facet and how many matches have it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FacetValue {
    pub value: String,
    pub count: u64,
}

/// Counts one facet's values over the documents it is given.
pub struct FacetCounter {
    facet: FacetName,
}

impl FacetCounter {
    pub fn new(facet: FacetName) -> Self {
        Self { facet }
    }
}

/// A segment's counts: by term ordinal of a text column, or by price bucket.
pub enum SegmentCounts {
    Text {
        column: Option<StrColumn>,
        counts: Vec<u64>,
        /// For an option facet: its folded name (other options' pairs are skipped).
        option: Option<String>,
    },
    Price {
        column: Column<u64>,
        counts: [u64; PRICE_BUCKETS.len()],
    },
}

impl Collector for FacetCounter {
    type Fruit = Vec<FacetValue>;
    type Child = SegmentCounts;

    fn for_segment(&self, _: u32, segment: &SegmentReader) -> tantivy::Result<SegmentCounts> {
        let fast = segment.fast_fields();
        let text = |name: &str, option: Option<String>| -> tantivy::Result<SegmentCounts> {
            let column = fast.str(name)?;
            let terms = column.as_ref().map_or(0, |c| c.dictionary().num_terms());
            Ok(SegmentCounts::Text {
                column,
                counts: vec![0; terms],
                option,
            })
        };
        match &self.facet {
            FacetName::Category => text("category_paths", None),
            FacetName::Option(name) => text("option_pairs", Some(fold_case(name))),
            FacetName::Price => Ok(SegmentCounts::Price {
                column: fast.u64("price")?,
                counts: [0; PRICE_BUCKETS.len()],
            }),
        }
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(&self, segments: Vec<Vec<FacetValue>>) -> tantivy::Result<Vec<FacetValue>> {
        // Values merged without regard to case, shown as first met.
        let mut merged: HashMap<String, FacetValue> = HashMap::new();
        for value in segments.into_iter().flatten() {
            merged
                .entry(fold_case(&value.value))
                .and_modify(|v| v.count += value.count)
                .or_insert(value);
        }
        let mut values: Vec<FacetValue> = merged.into_values().collect();
        match self.facet {
            // Buckets in price order.
            FacetName::Price => values.sort_by_key(|v| {
                let lower = v.value.split('-').next().unwrap_or_default();
                lower.parse::<u64>().unwrap_or(u64::MAX)
            }),
            _ => values.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.value.cmp(&b.value))),
        }
        values.truncate(SEARCH_FACET_VALUES_MAX);
        Ok(values)
    }
}

impl SegmentCollector for SegmentCounts {
    type Fruit = Vec<FacetValue>;

    fn collect(&mut self, doc: DocId, _: Score) {
        match self {
            Self::Text {
                column: Some(column),
                counts,
                ..
            } => {
                for ord in column.term_ords(doc) {
                    if let Some(n) = usize::try_from(ord).ok().and_then(|i| counts.get_mut(i)) {
                        *n += 1;
                    }
                }
            }
            Self::Text { column: None, .. } => {}
            Self::Price { column, counts } => {
                if let Some(price) = column.first(doc) {
                    counts[price_bucket(price)] += 1;
                }
            }
        }
    }

    fn harvest(self) -> Vec<FacetValue> {
        match self {
            Self::Text {
                column: Some(column),
                counts,
                option,
            } => text_values(&column, &counts, option.as_deref()),
            Self::Text { column: None, .. } => Vec::new(),
            Self::Price { counts, .. } => counts
                .iter()
                .enumerate()
                .filter(|(_, n)| **n > 0)
                .map(|(bucket, n)| FacetValue {
                    value: bucket_label(bucket),
                    count: *n,
                })
                .collect(),
        }
    }
}

/// The counted ordinals' text; for an option facet, only that option's values.
fn text_values(column: &StrColumn, counts: &[u64], option: Option<&str>) -> Vec<FacetValue> {
    let mut out = Vec::new();
    let mut text = String::new();
    for (ord, &count) in counts.iter().enumerate() {
        if count == 0 {
            continue;
        }
        text.clear();
        if !matches!(column.ord_to_str(ord as u64, &mut text), Ok(true)) {
            continue;
        }
        let value = match option {
            None => text.clone(),
            Some(wanted) => match text.split_once(PAIR_SEPARATOR) {
                Some((name, value)) if fold_case(name) == wanted => value.to_owned(),
                _ => continue,
            },
        };
        out.push(FacetValue { value, count });
    }
    out
}
