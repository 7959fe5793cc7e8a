//! A search request as tantivy queries: the words (each must match, the last one
//! as a prefix too, long ones with typos), the exact SKU or barcode, and the
//! listing filters, each filter a clause of its own so a facet can be counted
//! without its own filter.

use std::ops::Bound;

use tantivy::Term;
use tantivy::query::{
    AllQuery, BooleanQuery, BoostQuery, ConstScoreQuery, FuzzyTermQuery, Occur, Query, RangeQuery,
    TermQuery,
};
use tantivy::schema::IndexRecordOption;

use super::fields::{Fields, WEIGHTS, option_key, words};
use crate::domain::GroupHandle;
use crate::limits::{SEARCH_TWO_TYPOS_CHARS_MIN, SEARCH_TYPO_CHARS_MIN, SEARCH_WORDS_MAX};

/// How much more an exact SKU or barcode weighs than any word match: it ranks first.
const EXACT_BOOST: f32 = 1_000.0;
/// What a word's match is worth by itself: a product that matches a word only
/// with a typo or as a prefix scores this for it, below any exact match in a
/// field (the fields' BM25 scores are added on top of it).
const MATCHED_SCORE: f32 = 0.1;

/// A search, validated at the edge.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct SearchRequest {
    /// What the customer typed (bounded); empty matches every product.
    pub text: String,
    /// A category key (`Category::key`): that category and its subtree.
    pub category: Option<String>,
    pub group: Option<GroupHandle>,
    /// Option filters as `Options::values_key` folds them.
    pub options: Vec<(String, String)>,
    pub min_price: Option<u64>,
    pub max_price: Option<u64>,
    pub in_stock: bool,
    /// The facets to count, in the order asked.
    pub facets: Vec<FacetName>,
}

/// A facet the client may ask for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum FacetName {
    /// Every category path (and its ancestors) of the matches.
    Category,
    /// The price buckets ([`PRICE_BUCKETS`]).
    Price,
    /// One option's values; the name as asked (matched without regard to case).
    Option(String),
}

impl FacetName {
    /// The facet as the client names it (`category`, `price`, `option.Size`).
    pub fn label(&self) -> String {
        match self {
            Self::Category => "category".to_owned(),
            Self::Price => "price".to_owned(),
            Self::Option(name) => format!("option.{name}"),
        }
    }
}

/// The lower bounds of the price facet's buckets, in minor units: a price falls
/// in the last bucket whose bound it reaches.
pub const PRICE_BUCKETS: [u64; 8] = [0, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000];

/// The bucket of `price` (an index into [`PRICE_BUCKETS`]).
pub fn price_bucket(price: u64) -> usize {
    PRICE_BUCKETS.partition_point(|&lower| lower <= price) - 1
}

/// A bucket's value as the client sees it: `lower-upper` in minor units (upper
/// excluded), the last `lower-`.
pub fn bucket_label(bucket: usize) -> String {
    match PRICE_BUCKETS.get(bucket + 1) {
        Some(upper) => format!("{}-{upper}", PRICE_BUCKETS[bucket]),
        None => format!("{}-", PRICE_BUCKETS[bucket]),
    }
}

/// Which filter a clause is: a facet is counted with every filter but its own.
#[derive(Debug, Clone, PartialEq, Eq)]
enum FilterOf {
    Category,
    Price,
    /// An option filter, by folded name.
    Option(String),
    /// Filters no facet counts (`group`, `in_stock`).
    Other,
}

impl FilterOf {
    fn is_own_filter_of(&self, facet: &FacetName) -> bool {
        match (self, facet) {
            (Self::Category, FacetName::Category) | (Self::Price, FacetName::Price) => true,
            (Self::Option(folded), FacetName::Option(name)) => {
                *folded == crate::domain::fold_case(name)
            }
            _ => false,
        }
    }
}

/// A request made into tantivy's terms.
pub struct Compiled {
    /// The words and the exact match; `None` when no text was given.
    matching: Option<Box<dyn Query>>,
    filters: Vec<(FilterOf, Box<dyn Query>)>,
}

impl Compiled {
    pub fn new(fields: &Fields, request: &SearchRequest) -> Self {
        Self {
            matching: matching(fields, &request.text),
            filters: filters(fields, request),
        }
    }

    /// The query of the hits: the words and every filter.
    pub fn hits(&self) -> Box<dyn Query> {
        self.with_filters(|_| true)
    }

    /// The query a facet is counted over: the words and every filter but its own.
    pub fn for_facet(&self, facet: &FacetName) -> Box<dyn Query> {
        self.with_filters(|f| !f.is_own_filter_of(facet))
    }

    /// Whether `facet` has a filter of its own in this request (then it needs a
    /// search of its own).
    pub fn filters_own(&self, facet: &FacetName) -> bool {
        self.filters.iter().any(|(f, _)| f.is_own_filter_of(facet))
    }

    fn with_filters(&self, keep: impl Fn(&FilterOf) -> bool) -> Box<dyn Query> {
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        if let Some(matching) = &self.matching {
            clauses.push((Occur::Must, matching.box_clone()));
        }
        for (of, filter) in &self.filters {
            if keep(of) {
                clauses.push((Occur::Must, filter.box_clone()));
            }
        }
        match clauses.len() {
            0 => Box::new(AllQuery),
            _ => Box::new(BooleanQuery::new(clauses)),
        }
    }
}

/// The words of `text`, each of which must match (the last also as a prefix),
/// or the whole text as a SKU or barcode.
fn matching(fields: &Fields, text: &str) -> Option<Box<dyn Query>> {
    let mut words = words(text);
    words.truncate(SEARCH_WORDS_MAX);
    let exact = text.trim();
    if words.is_empty() && exact.is_empty() {
        return None;
    }
    let last = words.len().saturating_sub(1);
    let mut all_words: Vec<(Occur, Box<dyn Query>)> = Vec::new();
    for (i, word) in words.iter().enumerate() {
        all_words.push((Occur::Must, word_match(fields, word, i == last)));
        all_words.extend(word_rank(fields, word).map(|q| (Occur::Should, q)));
    }
    let mut either: Vec<(Occur, Box<dyn Query>)> = Vec::new();
    if !all_words.is_empty() {
        either.push((Occur::Should, Box::new(BooleanQuery::new(all_words))));
    }
    if !exact.is_empty() && !exact.contains(char::is_whitespace) {
        let term = Term::from_field_text(fields.exact, &exact.to_lowercase());
        let exact = TermQuery::new(term, IndexRecordOption::Basic);
        either.push((
            Occur::Should,
            Box::new(BoostQuery::new(Box::new(exact), EXACT_BOOST)),
        ));
    }
    Some(Box::new(BooleanQuery::new(either)))
}

/// What one word must match: the product's words (one field holding them all),
/// exactly, with the typos its length allows, or, the last word, as a prefix
/// with those typos. Scored [`MATCHED_SCORE`] whichever way it matched.
fn word_match(fields: &Fields, word: &str, last: bool) -> Box<dyn Query> {
    let typos = typos_allowed(word);
    let term = Term::from_field_text(fields.all, word);
    let mut ways: Vec<(Occur, Box<dyn Query>)> = vec![(
        Occur::Should,
        Box::new(TermQuery::new(term.clone(), IndexRecordOption::Basic)),
    )];
    if last {
        ways.push((
            Occur::Should,
            Box::new(FuzzyTermQuery::new_prefix(term, typos, true)),
        ));
    } else if typos > 0 {
        ways.push((
            Occur::Should,
            Box::new(FuzzyTermQuery::new(term, typos, true)),
        ));
    }
    Box::new(ConstScoreQuery::new(
        Box::new(BooleanQuery::new(ways)),
        MATCHED_SCORE,
    ))
}

/// How one word ranks a product that matches: an exact match in each field,
/// scored by BM25 and weighed by the field. Optional clauses: they are looked up
/// only for the products the words matched.
fn word_rank<'a>(fields: &'a Fields, word: &'a str) -> impl Iterator<Item = Box<dyn Query>> + 'a {
    WEIGHTS.into_iter().map(move |(text, weight)| {
        let term = Term::from_field_text(fields.text(text), word);
        let exact = TermQuery::new(term, IndexRecordOption::WithFreqs);
        Box::new(BoostQuery::new(Box::new(exact), weight)) as Box<dyn Query>
    })
}

/// Contract §7: words of 5+ characters match with one typo, 9+ with two.
pub fn typos_allowed(word: &str) -> u8 {
    match word.chars().count() {
        n if n >= SEARCH_TWO_TYPOS_CHARS_MIN => 2,
        n if n >= SEARCH_TYPO_CHARS_MIN => 1,
        _ => 0,
    }
}

fn term_filter(term: Term) -> Box<dyn Query> {
    let query = TermQuery::new(term, IndexRecordOption::Basic);
    Box::new(ConstScoreQuery::new(Box::new(query), 0.0))
}

/// The listing filters of `request`, each labelled with the facet it narrows.
fn filters(fields: &Fields, request: &SearchRequest) -> Vec<(FilterOf, Box<dyn Query>)> {
    let mut out = Vec::new();
    if let Some(key) = &request.category {
        let term = Term::from_field_text(fields.category_keys, key);
        out.push((FilterOf::Category, term_filter(term)));
    }
    if let Some(group) = &request.group {
        let term = Term::from_field_text(fields.group_key, group.as_str());
        out.push((FilterOf::Other, term_filter(term)));
    }
    for (name, value) in &request.options {
        let term = Term::from_field_text(fields.option_keys, &option_key(name, value));
        out.push((FilterOf::Option(name.clone()), term_filter(term)));
    }
    if request.min_price.is_some() || request.max_price.is_some() {
        let bound = |v: Option<u64>| match v {
            Some(v) => Bound::Included(Term::from_field_u64(fields.price, v)),
            None => Bound::Unbounded,
        };
        let range = RangeQuery::new(bound(request.min_price), bound(request.max_price));
        out.push((
            FilterOf::Price,
            Box::new(ConstScoreQuery::new(Box::new(range), 0.0)),
        ));
    }
    if request.in_stock {
        let term = Term::from_field_u64(fields.in_stock, 1);
        out.push((FilterOf::Other, term_filter(term)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typos_by_length() {
        for (word, typos) in [
            ("tee", 0),
            ("café", 0),
            ("shirt", 1),
            ("tshrt", 1),
            ("cafés", 1),
            ("chocolat", 1),
            ("chocolate", 2),
        ] {
            assert_eq!(typos_allowed(word), typos, "{word}");
        }
    }

    #[test]
    fn prices_fall_in_their_buckets() {
        for (price, bucket, label) in [
            (0, 0, "0-1000"),
            (999, 0, "0-1000"),
            (1_000, 1, "1000-2500"),
            (49_999, 5, "25000-50000"),
            (100_000, 7, "100000-"),
            (u64::MAX, 7, "100000-"),
        ] {
            assert_eq!(price_bucket(price), bucket, "{price}");
            assert_eq!(bucket_label(bucket), label);
        }
    }
}
