//! Values of a record as the transforms read them: text, required columns,
//! prices, whole numbers, and the SKU a row without one gets. Shared by the plain
//! formats ([`super::transform`]) and Shopify's export ([`super::shopify`]).

use sha2::{Digest, Sha256};

use super::extract::{RawRecord, Value};
use super::reject::RejectCode;
use super::schema::Column;
use crate::domain::{
    Cents, Currency, InvalidValue, Options, PriceError, ProductName, Sku, parse_decimal_price,
    parse_json_number_price,
};

/// A value or the reject it makes (code and reason).
pub(super) type Check<T> = Result<T, (RejectCode, String)>;

pub(super) fn text(v: Value<'_>) -> &str {
    match v {
        Value::Text(t) | Value::Number(t) => t,
    }
}

/// The value of a required column, or its `missing` reject.
pub(super) fn required<C: Column>(record: &RawRecord, col: C) -> Check<Value<'_>> {
    record.get(col).ok_or_else(|| {
        (
            col.missing()
                .expect("only required columns are asked for as required"),
            format!("{} is missing", col.name()),
        )
    })
}

pub(super) fn invalid<C: Column>(col: C) -> impl Fn(InvalidValue) -> (RejectCode, String) {
    move |e| (col.invalid(), format!("{} {e}", col.name()))
}

pub(super) fn price<C: Column>(v: Value<'_>, currency: Currency, col: C) -> Check<Cents> {
    let parsed = match v {
        Value::Text(t) => parse_decimal_price(t, currency),
        Value::Number(n) => parse_json_number_price(n, currency),
    };
    parsed.map_err(|e| {
        let code = match e {
            PriceError::Empty => RejectCode::MissingPrice,
            PriceError::NotANumber(_) => RejectCode::PriceNotANumber,
            PriceError::Ambiguous(_) => RejectCode::PriceAmbiguous,
            PriceError::TooPrecise { .. } => RejectCode::PriceTooPrecise,
            PriceError::NotPositive(_) => RejectCode::PriceNotPositive,
            PriceError::TooLarge(_) => RejectCode::PriceTooLarge,
            PriceError::ForeignCurrency { .. } => RejectCode::PriceForeignCurrency,
        };
        let name = col.name();
        (
            code,
            if name == "price" {
                e.to_string()
            } else {
                e.to_string().replacen("price", name, 1)
            },
        )
    })
}

/// A whole number, written as plain digits (an optional sign; no separators, no
/// fraction).
pub(super) fn integer<C: Column>(v: Value<'_>, col: C) -> Check<i64> {
    let t = text(v).trim();
    let name = col.name();
    let digits = t.strip_prefix(['+', '-']).unwrap_or(t);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err((col.invalid(), format!("{name} '{t}' is not a whole number")));
    }
    t.parse::<i64>()
        .map_err(|_| (col.invalid(), format!("{name} '{t}' is out of range")))
}

/// The SKU a product without one gets: a readable slug of its name and 8 hex digits
/// of the SHA-256 of the name (lower-cased, trimmed), so equal names always map to
/// the same SKU and different ones practically never collide.
pub fn derive_sku(name: &ProductName) -> Sku {
    derive_sku_from(name.as_str())
}

/// [`derive_sku`] of any text (Shopify's export: the handle and option values).
pub(super) fn derive_sku_from(text: &str) -> Sku {
    let normalised = text.trim().to_lowercase();
    let mut slug = String::new();
    for c in normalised.chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c);
        } else if !slug.ends_with('-') && !slug.is_empty() {
            slug.push('-');
        }
        if slug.len() >= 40 {
            break;
        }
    }
    let slug = slug.trim_end_matches('-');
    let slug = if slug.is_empty() { "item" } else { slug };
    let hash = Sha256::digest(normalised.as_bytes());
    let sku = format!(
        "{slug}-{:02x}{:02x}{:02x}{:02x}",
        hash[0], hash[1], hash[2], hash[3]
    );
    Sku::parse(&sku).expect("a slug and hex digits form a valid SKU")
}

/// The (name, value) pairs a row gives in the option columns `columns` (for
/// each option its name column and its value column), in their order: a name
/// needs its value and a value its name. Plain files and Shopify's export alike.
pub(super) fn option_pairs<C: Column>(
    r: &RawRecord,
    columns: [(C, C); 3],
) -> Check<Vec<(&str, &str)>> {
    let mut pairs = Vec::new();
    for (name, value) in columns {
        match (r.get(name), r.get(value)) {
            (Some(n), Some(v)) => pairs.push((text(n), text(v))),
            (None, None) => {}
            (Some(_), None) | (None, Some(_)) => {
                return Err((
                    RejectCode::InvalidOptions,
                    format!("{} and {} go together", name.name(), value.name()),
                ));
            }
        }
    }
    Ok(pairs)
}

/// A row's options from its pairs, or the `invalid_options` reject.
pub(super) fn options_of(pairs: Vec<(&str, &str)>) -> Check<Options> {
    Options::parse(pairs).map_err(|e| (RejectCode::InvalidOptions, format!("options: {e}")))
}
