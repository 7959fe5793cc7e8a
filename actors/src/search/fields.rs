//! The search index's schema: which product fields are words, which are filters
//! and facets, and the one analyzer every word goes through (split on what is not
//! a letter or a digit, lower-case, accents folded: `Café` = `cafe`).

use tantivy::schema::{
    FAST, Field, INDEXED, IndexRecordOption, STRING, Schema, TextFieldIndexing, TextOptions,
};
use tantivy::tokenizer::{
    AsciiFoldingFilter, LowerCaser, RemoveLongFilter, SimpleTokenizer, TextAnalyzer,
};
use tantivy::{Index, TantivyDocument};

use crate::catalog::Product;

/// The analyzer's name in the index (what a text field is indexed with).
pub const WORDS: &str = "orderflow_words";
/// Words longer than this (in bytes) are not indexed: no one types them.
const WORD_BYTES_MAX: usize = 40;

/// Each searchable field and how much a match in it weighs (contract §7: a name
/// match above an option or category match above a description match).
pub const WEIGHTS: [(TextField, f32); 6] = [
    (TextField::Name, 4.0),
    (TextField::Group, 2.0),
    (TextField::Options, 2.0),
    (TextField::Category, 1.5),
    (TextField::Barcode, 1.5),
    (TextField::Description, 1.0),
];

/// The fields whose words are searched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextField {
    Name,
    Group,
    Options,
    Category,
    Barcode,
    Description,
}

/// The index's fields, by handle.
#[derive(Debug, Clone)]
pub struct Fields {
    pub schema: Schema,
    /// The SKU as stored (a fast column: the hits' SKUs are read from it).
    pub sku: Field,
    /// The SKU and the barcode, lower-cased, whole: what "typed exactly" matches.
    pub exact: Field,
    /// Every searchable word of the product in one field: what a word must match
    /// (exactly, with typos, or as a prefix) through one term dictionary; the
    /// fields below only rank.
    pub all: Field,
    pub name: Field,
    pub group: Field,
    pub options: Field,
    pub category: Field,
    pub barcode: Field,
    pub description: Field,
    /// The category's key and each ancestor's (`apparel`, `apparel > men`): the
    /// subtree filter is one term.
    pub category_keys: Field,
    /// The category path and each ancestor as stored: the category facet.
    pub category_paths: Field,
    /// `group handle` (the `?group=` filter).
    pub group_key: Field,
    /// `name=value` folded as `Options::values_key` folds them (filters).
    pub option_keys: Field,
    /// `Name\u{1f}Value` as written (the option facets).
    pub option_pairs: Field,
    pub price: Field,
    /// 1 when stock is above zero.
    pub in_stock: Field,
}

/// Separates an option's name from its value in [`Fields::option_pairs`].
pub const PAIR_SEPARATOR: char = '\u{1f}';

impl Fields {
    pub fn new() -> Self {
        let mut b = Schema::builder();
        let words = TextOptions::default().set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer(WORDS)
                .set_index_option(IndexRecordOption::WithFreqs),
        );
        let sku = b.add_text_field("sku", STRING | FAST);
        let all = b.add_text_field(
            "all",
            TextOptions::default().set_indexing_options(
                TextFieldIndexing::default()
                    .set_tokenizer(WORDS)
                    .set_index_option(IndexRecordOption::Basic),
            ),
        );
        let exact = b.add_text_field("exact", STRING);
        let name = b.add_text_field("name", words.clone());
        let group = b.add_text_field("group", words.clone());
        let options = b.add_text_field("options", words.clone());
        let category = b.add_text_field("category", words.clone());
        let barcode = b.add_text_field("barcode", words.clone());
        let description = b.add_text_field("description", words);
        let category_keys = b.add_text_field("category_keys", STRING);
        let category_paths = b.add_text_field("category_paths", FAST);
        let group_key = b.add_text_field("group_key", STRING);
        let option_keys = b.add_text_field("option_keys", STRING);
        let option_pairs = b.add_text_field("option_pairs", FAST);
        let price = b.add_u64_field("price", INDEXED | FAST);
        let in_stock = b.add_u64_field("in_stock", INDEXED | FAST);
        Self {
            schema: b.build(),
            sku,
            exact,
            all,
            name,
            group,
            options,
            category,
            barcode,
            description,
            category_keys,
            category_paths,
            group_key,
            option_keys,
            option_pairs,
            price,
            in_stock,
        }
    }

    /// The field of `text`.
    pub fn text(&self, text: TextField) -> Field {
        match text {
            TextField::Name => self.name,
            TextField::Group => self.group,
            TextField::Options => self.options,
            TextField::Category => self.category,
            TextField::Barcode => self.barcode,
            TextField::Description => self.description,
        }
    }

    /// The document of an active product.
    pub fn document(&self, product: &Product) -> TantivyDocument {
        let row = &product.row;
        let mut doc = TantivyDocument::default();
        let mut all = String::new();
        doc.add_text(self.sku, product.sku.as_str());
        doc.add_text(self.exact, product.sku.as_str().to_lowercase());
        doc.add_text(self.name, row.name.as_str());
        for joined in joined_words(row.name.as_str()) {
            doc.add_text(self.name, joined);
        }
        if let Some(description) = &row.description {
            doc.add_text(self.description, description.as_str());
        }
        let category = row.category.as_str();
        doc.add_text(self.category, category);
        let levels: Vec<&str> = category.split(" > ").collect();
        for depth in 1..=levels.len() {
            let path = levels[..depth].join(" > ");
            doc.add_text(self.category_keys, path.to_lowercase());
            doc.add_text(self.category_paths, path);
        }
        let attributes = &row.attributes;
        if let Some(group) = &attributes.group {
            doc.add_text(self.group, group.as_str());
            doc.add_text(self.group_key, group.as_str());
        }
        for (name, value) in attributes.options.iter() {
            doc.add_text(self.options, value);
            doc.add_text(self.option_pairs, format!("{name}{PAIR_SEPARATOR}{value}"));
        }
        for (name, value) in attributes.options.values_key() {
            doc.add_text(self.option_keys, option_key(&name, &value));
        }
        if let Some(barcode) = &attributes.barcode {
            doc.add_text(self.barcode, barcode.as_str());
            doc.add_text(self.exact, barcode.as_str());
        }
        for (field, value) in doc.field_values() {
            if WEIGHTS.iter().any(|(t, _)| self.text(*t) == field)
                && let Some(text) = tantivy::schema::Value::as_str(&value)
            {
                all.push(' ');
                all.push_str(text);
            }
        }
        doc.add_text(self.all, all);
        doc.add_u64(self.price, row.price.get());
        doc.add_u64(self.in_stock, u64::from(product.stock > 0));
        doc
    }
}

impl Default for Fields {
    fn default() -> Self {
        Self::new()
    }
}

/// The term of an option filter: name and value as `Options::values_key` folds
/// them.
pub fn option_key(name: &str, value: &str) -> String {
    format!("{name}={value}")
}

/// The words of `text` written with inner punctuation, joined (`T-Shirt` →
/// `TShirt`, `Wi-Fi` → `WiFi`): a customer types `tshirt` as often as `t-shirt`,
/// and the analyzer splits the written form in two.
pub fn joined_words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split_whitespace().filter_map(|chunk| {
        let parts = chunk
            .split(|c: char| !c.is_alphanumeric())
            .filter(|p| !p.is_empty())
            .count();
        (parts > 1).then(|| chunk.chars().filter(|c| c.is_alphanumeric()).collect())
    })
}

/// The analyzer of every searchable word.
pub fn analyzer() -> TextAnalyzer {
    TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(WORD_BYTES_MAX))
        .filter(LowerCaser)
        .filter(AsciiFoldingFilter)
        .build()
}

/// Registers the analyzer on `index` (each open needs it: it is not stored).
pub fn register(index: &Index) {
    index.tokenizers().register(WORDS, analyzer());
}

/// The words of `text` as the index holds them.
pub fn words(text: &str) -> Vec<String> {
    let mut analyzer = analyzer();
    let mut stream = analyzer.token_stream(text);
    let mut out = Vec::new();
    while let Some(token) = stream.next() {
        out.push(token.text.clone());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn punctuated_words_are_also_indexed_joined() {
        let joined: Vec<String> = joined_words("Classic T-Shirt (Wi-Fi) 2.0 mug").collect();
        assert_eq!(joined, ["TShirt", "WiFi", "20"]);
    }

    #[test]
    fn words_are_lower_cased_and_accents_folded() {
        assert_eq!(
            words("Café CRÈME, Größe-M"),
            ["cafe", "creme", "grosse", "m"]
        );
        assert_eq!(words("T-Shirt Noir"), ["t", "shirt", "noir"]);
    }
}
