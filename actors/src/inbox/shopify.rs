//! Shopify's product CSV export, read as it is (contract §7): one product per
//! handle (→ the variant `group`), its first row carrying the title, body, category
//! and option names that continuation rows inherit (`schema::ShopifyColumn::inherited`,
//! done by the extractor), each row with a price a variant. Rows carrying only an
//! image are skipped, and so are products whose status is `draft` or `archived`.

use super::extract::RawRecord;
use super::reject::RejectCode;
use super::schema::{Column, ShopifyColumn as S};
use super::values::{
    Check, derive_sku_from, integer, invalid, option_pairs, options_of, price, required, text,
};
use crate::catalog::{Attributes, ProductDraft};
use crate::domain::{
    Barcode, Category, Currency, Description, GroupHandle, Options, ProductName, Sku, StockLevel,
    WeightGrams,
};
use crate::limits::DESCRIPTION_CHARS_MAX;

/// The single option Shopify gives a product without variants.
const DEFAULT_OPTION: (&str, &str) = ("title", "default title");

/// A variant of the export, as a products row gives it.
#[derive(Debug)]
pub struct Variant {
    pub sku: Sku,
    pub draft: ProductDraft,
    pub stock: Option<StockLevel>,
    /// 1 when a barcode was written but left out (not a GTIN).
    pub warnings: u32,
}

/// A row of the export: a variant, or `None` when it has nothing to load (an
/// image row, a draft).
pub fn row(r: &RawRecord, currency: Currency) -> Check<Option<Variant>> {
    let group = GroupHandle::parse(text(required(r, S::Handle)?)).map_err(invalid(S::Handle))?;
    let variant = [S::VariantSku, S::VariantPrice, S::Option1Value]
        .iter()
        .any(|c| r.own(*c).is_some());
    let listed = r
        .get(S::Status)
        .is_none_or(|v| text(v).eq_ignore_ascii_case("active"));
    if !variant || !listed {
        return Ok(None);
    }
    let name = ProductName::parse(text(required(r, S::Title).map_err(|_| {
        (
            RejectCode::MissingName,
            format!("title is missing (handle {group})"),
        )
    })?))
    .map_err(invalid(S::Title))?;
    let options = options(r)?;
    let sku = match r.get(S::VariantSku) {
        Some(v) => Sku::parse(text(v)).map_err(invalid(S::VariantSku))?,
        None => derive_sku_from(&sku_source(&group, &options)),
    };
    let price = match r.get(S::VariantPrice) {
        Some(v) => price(v, currency, S::VariantPrice)?,
        None => return Err((RejectCode::MissingPrice, "variant price is missing".into())),
    };
    let stock = match r.get(S::VariantInventoryQty) {
        // Shopify lets inventory go below zero (oversold); none is on hand.
        Some(v) => Some(
            StockLevel::new(integer(v, S::VariantInventoryQty)?.max(0))
                .map_err(invalid(S::VariantInventoryQty))?,
        ),
        None => None,
    };
    // A barcode a spreadsheet mangled (`3.65275E+11`) is left out with a
    // warning, not a reject.
    let written = r.get(S::VariantBarcode);
    let barcode = written.and_then(|v| Barcode::parse(text(v)).ok());
    let attributes = Attributes {
        group: Some(group),
        options,
        weight: grams(r)?,
        barcode,
        ..Attributes::default()
    };
    let warnings = u32::from(written.is_some() && attributes.barcode.is_none());
    Ok(Some(Variant {
        sku,
        draft: ProductDraft {
            attributes,
            name,
            category: category(r)?,
            description: description(r)?,
            price,
        },
        stock,
        warnings,
    }))
}

/// `Option1..3 Name` (inherited) and `Value` (the row's own); Shopify's single
/// `Title` = `Default Title` means no options.
fn options(r: &RawRecord) -> Check<Options> {
    let mut pairs = option_pairs(r, S::OPTIONS)?;
    if let [(n, v)] = pairs.as_slice()
        && (n.to_lowercase(), v.to_lowercase())
            == (DEFAULT_OPTION.0.into(), DEFAULT_OPTION.1.into())
    {
        pairs.clear();
    }
    options_of(pairs)
}

/// What a variant without a SKU is named after: its handle and option values.
fn sku_source(group: &GroupHandle, options: &Options) -> String {
    let mut source = group.as_str().to_owned();
    for (_, value) in options.iter() {
        source.push(' ');
        source.push_str(value);
    }
    source
}

/// `Product Category` (Shopify's taxonomy path, ` > ` between levels), else `Type`.
fn category(r: &RawRecord) -> Check<Category> {
    match r.get(S::ProductCategory).or_else(|| r.get(S::Type)) {
        Some(v) => Category::parse(text(v)).map_err(invalid(S::ProductCategory)),
        None => Ok(Category::uncategorized()),
    }
}

/// `Variant Grams`, which exports write with decimals: rounded to the gram.
fn grams(r: &RawRecord) -> Check<WeightGrams> {
    let Some(v) = r.get(S::VariantGrams) else {
        return Ok(WeightGrams::default());
    };
    let raw = text(v);
    let bad = || {
        (
            S::VariantGrams.invalid(),
            format!("variant grams '{raw}' is not a weight"),
        )
    };
    let (whole, fraction) = raw.split_once('.').unwrap_or((raw, ""));
    if whole.is_empty()
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || !fraction.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(bad());
    }
    let whole: i64 = whole.parse().map_err(|_| bad())?;
    // Half up, in whole digits: only the first decimal decides.
    let up = fraction.bytes().next().is_some_and(|d| d >= b'5');
    WeightGrams::new(whole.saturating_add(i64::from(up))).map_err(invalid(S::VariantGrams))
}

/// `Body (HTML)` as text: tags dropped (a block's end is a space), entities
/// decoded, white space collapsed, cut to the description's length.
fn description(r: &RawRecord) -> Check<Option<Description>> {
    let Some(v) = r.get(S::Body) else {
        return Ok(None);
    };
    let text = plain_text(text(v));
    let cut: String = text.chars().take(DESCRIPTION_CHARS_MAX).collect();
    Description::parse(&cut).map(Some).map_err(invalid(S::Body))
}

/// HTML to text: every tag becomes a space, entities are decoded, runs of white
/// space become one space.
pub(super) fn plain_text(html: &str) -> String {
    let mut stripped = String::with_capacity(html.len());
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => {
                in_tag = false;
                stripped.push(' ');
            }
            _ if !in_tag => stripped.push(c),
            _ => {}
        }
    }
    let decoded = html_escape::decode_html_entities(&stripped);
    decoded.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_becomes_plain_text() {
        assert_eq!(
            plain_text(
                "<p>Soft&nbsp;cotton &amp; <strong>wool</strong></p><ul><li>S</li><li>M</li></ul>"
            ),
            "Soft cotton & wool S M"
        );
        assert_eq!(
            plain_text("caf&eacute; &lt;3 &#x27;tee&#39;"),
            "café <3 'tee'"
        );
        assert_eq!(plain_text("  \n "), "");
    }
}
