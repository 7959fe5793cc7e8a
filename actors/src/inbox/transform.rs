//! Transform: a raw record → a validated row, or a reject with a reason.
//!
//! Invariants: every value goes through the same domain newtypes as the API, so a
//! row in a file and a field in a request obey one rule; prices are parsed exactly
//! from their digits (a JSON number such as `120.50` is 12050 cents, never a float);
//! a row without a SKU gets one derived deterministically from its name, so
//! importing the same file again updates rather than duplicates.

use sha2::{Digest, Sha256};

use super::extract::{RawRecord, Value};
use super::naming::Kind;
use crate::catalog::ProductDraft;
use crate::domain::{
    Category, Cents, Currency, Description, Email, InvalidValue, OrderRef, PriceError, ProductName,
    Quantity, Sku, StockLevel, Username, parse_decimal_price, parse_json_number_price,
};
use crate::limits::REJECT_RAW_BYTES_MAX;

/// A row that failed, with its line, a reason code (for counting), a reason for
/// people, and the raw text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reject {
    pub line: u64,
    pub code: &'static str,
    pub reason: String,
    pub raw: String,
}

impl Reject {
    pub fn new(record: &RawRecord, code: &'static str, reason: String) -> Self {
        let raw = crate::text::cut_owned(record.raw_text(), REJECT_RAW_BYTES_MAX);
        Self {
            line: record.line,
            code,
            reason,
            raw,
        }
    }
}

/// Who placed an imported order: a username or an email address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Customer {
    Username(Username),
    Email(Email),
}

/// A validated row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Row {
    Product {
        sku: Sku,
        draft: ProductDraft,
        stock: Option<StockLevel>,
    },
    Inventory {
        sku: Sku,
        stock: StockLevel,
    },
    OrderLine {
        order_ref: OrderRef,
        customer: Customer,
        sku: Sku,
        quantity: Quantity,
        unit_price: Option<Cents>,
    },
}

/// A failed row of an orders file keeps its reference when it had a valid one, so
/// the rest of that order can be refused with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failed {
    pub reject: Reject,
    pub order_ref: Option<OrderRef>,
}

type Check<T> = Result<T, (&'static str, String)>;

pub fn transform(kind: Kind, currency: Currency, record: &RawRecord) -> Result<Row, Failed> {
    if let Some(why) = record.unreadable() {
        return Err(Failed {
            reject: Reject::new(record, why.code, why.reason.clone()),
            order_ref: None,
        });
    }
    let fail = |(code, reason): (&'static str, String)| Reject::new(record, code, reason);
    match kind {
        Kind::Products => product(record, currency).map_err(|e| Failed {
            reject: fail(e),
            order_ref: None,
        }),
        Kind::Inventory => inventory(record).map_err(|e| Failed {
            reject: fail(e),
            order_ref: None,
        }),
        Kind::Orders => {
            let order_ref = record
                .get(0)
                .map(text)
                .and_then(|t| OrderRef::parse(t).ok());
            order_line(record, currency).map_err(|e| Failed {
                reject: fail(e),
                order_ref,
            })
        }
    }
}

fn text(v: Value<'_>) -> &str {
    match v {
        Value::Text(t) | Value::Number(t) => t,
    }
}

fn required<'a>(record: &'a RawRecord, col: usize, name: &'static str) -> Check<Value<'a>> {
    record
        .get(col)
        .ok_or_else(|| (missing(name), format!("{name} is missing")))
}

fn missing(name: &str) -> &'static str {
    match name {
        "sku" => "missing_sku",
        "name" => "missing_name",
        "price" => "missing_price",
        "stock" => "missing_stock",
        "order_ref" => "missing_order_ref",
        "customer" => "missing_customer",
        "quantity" => "missing_quantity",
        _ => "missing_field",
    }
}

fn invalid(name: &'static str) -> impl Fn(InvalidValue) -> (&'static str, String) {
    move |e| {
        let code = match name {
            "sku" => "invalid_sku",
            "name" => "invalid_name",
            "category" => "invalid_category",
            "description" => "invalid_description",
            "stock" => "invalid_stock",
            "order_ref" => "invalid_order_ref",
            "customer" => "invalid_customer",
            "quantity" => "invalid_quantity",
            _ => "invalid_field",
        };
        (code, format!("{name} {e}"))
    }
}

fn price(v: Value<'_>, currency: Currency, name: &'static str) -> Check<Cents> {
    let parsed = match v {
        Value::Text(t) => parse_decimal_price(t, currency),
        Value::Number(n) => parse_json_number_price(n, currency),
    };
    parsed.map_err(|e| {
        let code = match e {
            PriceError::Empty => "missing_price",
            PriceError::NotANumber(_) => "price_not_a_number",
            PriceError::Ambiguous(_) => "price_ambiguous",
            PriceError::TooPrecise { .. } => "price_too_precise",
            PriceError::NotPositive(_) => "price_not_positive",
            PriceError::TooLarge(_) => "price_too_large",
            PriceError::ForeignCurrency { .. } => "price_foreign_currency",
        };
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
fn integer(v: Value<'_>, name: &'static str) -> Check<i64> {
    let t = text(v).trim();
    let digits = t.strip_prefix(['+', '-']).unwrap_or(t);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        let code = if name == "quantity" {
            "invalid_quantity"
        } else {
            "invalid_stock"
        };
        return Err((code, format!("{name} '{t}' is not a whole number")));
    }
    t.parse::<i64>().map_err(|_| {
        let code = if name == "quantity" {
            "invalid_quantity"
        } else {
            "invalid_stock"
        };
        (code, format!("{name} '{t}' is out of range"))
    })
}

/// The SKU a product without one gets: a readable slug of its name and 8 hex digits
/// of the SHA-256 of the name (lower-cased, trimmed), so equal names always map to
/// the same SKU and different ones practically never collide.
pub fn derive_sku(name: &ProductName) -> Sku {
    let normalised = name.as_str().trim().to_lowercase();
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

fn product(r: &RawRecord, currency: Currency) -> Check<Row> {
    let name = ProductName::parse(text(required(r, 1, "name")?)).map_err(invalid("name"))?;
    let sku = match r.get(0) {
        Some(v) => Sku::parse(text(v)).map_err(invalid("sku"))?,
        None => derive_sku(&name),
    };
    let category = match r.get(2) {
        Some(v) => Category::parse(text(v)).map_err(invalid("category"))?,
        None => Category::uncategorized(),
    };
    let price = price(required(r, 3, "price")?, currency, "price")?;
    let stock = match r.get(4) {
        Some(v) => Some(StockLevel::new(integer(v, "stock")?).map_err(invalid("stock"))?),
        None => None,
    };
    let description = match r.get(5) {
        Some(v) => Some(Description::parse(text(v)).map_err(invalid("description"))?),
        None => None,
    };
    Ok(Row::Product {
        sku,
        draft: ProductDraft {
            name,
            category,
            description,
            price,
        },
        stock,
    })
}

fn inventory(r: &RawRecord) -> Check<Row> {
    let sku = Sku::parse(text(required(r, 0, "sku")?)).map_err(invalid("sku"))?;
    let stock =
        StockLevel::new(integer(required(r, 1, "stock")?, "stock")?).map_err(invalid("stock"))?;
    Ok(Row::Inventory { sku, stock })
}

fn order_line(r: &RawRecord, currency: Currency) -> Check<Row> {
    let order_ref =
        OrderRef::parse(text(required(r, 0, "order_ref")?)).map_err(invalid("order_ref"))?;
    let who = text(required(r, 1, "customer")?);
    let customer = if who.contains('@') {
        Customer::Email(Email::parse(who).map_err(invalid("customer"))?)
    } else {
        Customer::Username(Username::parse(who).map_err(invalid("customer"))?)
    };
    let sku = Sku::parse(text(required(r, 2, "sku")?)).map_err(invalid("sku"))?;
    let quantity = Quantity::new(integer(required(r, 3, "quantity")?, "quantity")?)
        .map_err(invalid("quantity"))?;
    let unit_price = match r.get(4) {
        Some(v) => Some(price(v, currency, "unit_price")?),
        None => None,
    };
    Ok(Row::OrderLine {
        order_ref,
        customer,
        sku,
        quantity,
        unit_price,
    })
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead, Cursor};

    use super::*;
    use crate::inbox::extract::extractor;
    use crate::inbox::naming::{FileType, Format};

    fn rows(kind: Kind, csv: &str) -> Vec<Result<Row, Failed>> {
        let reader: Box<dyn BufRead + Send> = Box::new(Cursor::new(csv.as_bytes().to_vec()));
        let mut ex = extractor(
            FileType {
                kind,
                format: Format::Csv,
                gzip: false,
            },
            reader,
        )
        .unwrap();
        let mut out = Vec::new();
        while let Some(r) = ex.next_record().unwrap() {
            out.push(transform(kind, Currency::EUR, &r));
        }
        out
    }

    fn code(r: &Result<Row, Failed>) -> &'static str {
        r.as_ref().err().map_or("ok", |f| f.reject.code)
    }

    #[test]
    fn products_validate_every_field() {
        let out = rows(
            Kind::Products,
            "sku,name,category,price,stock,description\n\
             A-1,Router,Net,450.00,3,fast\n\
             ,Switch,,\"1,234.50\",,\n\
             B/2,x,,1,,\n\
             C,,,1,,\n\
             D,x,,-10.00,,\n\
             E,x,,0,,\n\
             F,x,,12 USD,,\n\
             G,x,,1,-1,\n\
             H,x,,1,1.5,\n\
             I,x,,,1,\n",
        );
        let codes: Vec<_> = out.iter().map(code).collect();
        assert_eq!(
            codes,
            [
                "ok",
                "ok",
                "invalid_sku",
                "missing_name",
                "price_not_positive",
                "price_not_positive",
                "price_foreign_currency",
                "invalid_stock",
                "invalid_stock",
                "missing_price"
            ]
        );
        match &out[1] {
            Ok(Row::Product { sku, draft, stock }) => {
                assert!(sku.as_str().starts_with("switch-"), "{sku}");
                assert_eq!(draft.price.get(), 123_450);
                assert_eq!(draft.category.as_str(), "uncategorized");
                assert_eq!(*stock, None);
            }
            other => panic!("{other:?}"),
        }
        let negative = out[4].as_ref().unwrap_err();
        assert_eq!(negative.reject.line, 6);
        assert!(
            negative.reject.reason.contains("-10.00"),
            "{}",
            negative.reject.reason
        );
        assert_eq!(negative.reject.raw, "D,x,,-10.00,,");
    }

    #[test]
    fn derived_skus_are_stable_and_valid() {
        let a = derive_sku(&ProductName::parse("Cavo Ethernet errato").unwrap());
        let b = derive_sku(&ProductName::parse("  cavo ethernet ERRATO ").unwrap());
        assert_eq!(a, b);
        assert!(a.as_str().starts_with("cavo-ethernet-errato-"));
        assert_ne!(a, derive_sku(&ProductName::parse("Cavo Ethernet").unwrap()));
        let odd = derive_sku(&ProductName::parse("€€€ ☃").unwrap());
        assert!(odd.as_str().starts_with("item-"));
        let long = derive_sku(&ProductName::parse(&"word ".repeat(40)).unwrap());
        assert!(long.as_str().len() <= 64);
    }

    #[test]
    fn orders_keep_their_reference_when_a_line_fails() {
        let out = rows(
            Kind::Orders,
            "order_ref,customer,sku,quantity,unit_price\nR1,alice,A,2,\nR1,alice,A,0,\n,alice,A,1,\nR2,bob@x.io,B,1,9.99\n",
        );
        assert_eq!(code(&out[0]), "ok");
        let failed = out[1].as_ref().unwrap_err();
        assert_eq!(failed.reject.code, "invalid_quantity");
        assert_eq!(failed.order_ref.as_ref().unwrap().as_str(), "R1");
        assert_eq!(out[2].as_ref().unwrap_err().order_ref, None);
        match &out[3] {
            Ok(Row::OrderLine {
                customer: Customer::Email(e),
                unit_price: Some(p),
                ..
            }) => {
                assert_eq!(e.as_str(), "bob@x.io");
                assert_eq!(p.get(), 999);
            }
            other => panic!("{other:?}"),
        }
    }
}
