//! Transform: a raw record → a validated row, or a reject with a reason.
//!
//! Invariants: every value goes through the same domain newtypes as the API, so a
//! row in a file and a field in a request obey one rule; prices are parsed exactly
//! from their digits (a JSON number such as `120.50` is 12050 cents, never a float);
//! a row without a SKU gets one derived deterministically from its name, so
//! importing the same file again updates rather than duplicates.

use super::extract::{Dialect, RawRecord};
use super::naming::Kind;
pub use super::reject::{Reject, RejectCode};
use super::schema::{InventoryColumn, OrderColumn, ProductColumn};
use super::shopify;
pub use super::values::derive_sku;
use super::values::{Check, integer, invalid, option_pairs, options_of, price, required, text};
use crate::catalog::{Attributes, ProductDraft};
use crate::domain::{
    Barcode, Category, Cents, Currency, Description, Email, GroupHandle, Options, OrderRef,
    ProductName, Quantity, Sku, StockLevel, TaxClass, Username, WeightGrams,
};

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
        /// What was left out of the row rather than refused (a Shopify barcode a
        /// spreadsheet mangled): the report's warnings.
        warnings: u32,
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
    /// A record that holds nothing to load and nothing wrong (Shopify's image
    /// rows, drafts): counted as read, neither loaded nor rejected.
    Skipped,
}

/// A failed row of an orders file keeps its reference when it had a valid one, so
/// the rest of that order can be refused with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failed {
    pub reject: Reject,
    pub order_ref: Option<OrderRef>,
}

pub fn transform(kind: Kind, currency: Currency, record: &RawRecord) -> Result<Row, Failed> {
    if let Some(why) = record.unreadable() {
        return Err(Failed {
            reject: Reject::new(record.line, record.raw_text(), why.code, why.reason.clone()),
            order_ref: None,
        });
    }
    let fail = |(code, reason): (RejectCode, String)| {
        Reject::new(record.line, record.raw_text(), code, reason)
    };
    match kind {
        Kind::Products if record.dialect() == Dialect::Shopify => {
            match shopify::row(record, currency) {
                Ok(Some(v)) => Ok(Row::Product {
                    sku: v.sku,
                    draft: v.draft,
                    stock: v.stock,
                    warnings: v.warnings,
                }),
                Ok(None) => Ok(Row::Skipped),
                Err(e) => Err(Failed {
                    reject: fail(e),
                    order_ref: None,
                }),
            }
        }
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
                .get(OrderColumn::OrderRef)
                .map(text)
                .and_then(|t| OrderRef::parse(t).ok());
            order_line(record, currency).map_err(|e| Failed {
                reject: fail(e),
                order_ref,
            })
        }
    }
}

fn product(r: &RawRecord, currency: Currency) -> Check<Row> {
    use ProductColumn as P;
    let name = ProductName::parse(text(required(r, P::Name)?)).map_err(invalid(P::Name))?;
    let sku = match r.get(P::Sku) {
        Some(v) => Sku::parse(text(v)).map_err(invalid(P::Sku))?,
        None => derive_sku(&name),
    };
    let category = match r.get(P::Category) {
        Some(v) => Category::parse(text(v)).map_err(invalid(P::Category))?,
        None => Category::uncategorized(),
    };
    let price = price(required(r, P::Price)?, currency, P::Price)?;
    let stock = match r.get(P::Stock) {
        Some(v) => Some(StockLevel::new(integer(v, P::Stock)?).map_err(invalid(P::Stock))?),
        None => None,
    };
    let description = match r.get(P::Description) {
        Some(v) => Some(Description::parse(text(v)).map_err(invalid(P::Description))?),
        None => None,
    };
    let attributes = attributes(r)?;
    Ok(Row::Product {
        sku,
        draft: ProductDraft {
            attributes,
            name,
            category,
            description,
            price,
        },
        stock,
        warnings: 0,
    })
}

/// A products row's §7 columns, each at its default when absent.
fn attributes(r: &RawRecord) -> Check<Attributes> {
    use ProductColumn as P;
    let mut attributes = Attributes::default();
    if let Some(v) = r.get(P::WeightGrams) {
        attributes.weight =
            WeightGrams::new(integer(v, P::WeightGrams)?).map_err(invalid(P::WeightGrams))?;
    }
    if let Some(v) = r.get(P::TaxClass) {
        attributes.tax_class = TaxClass::parse(text(v)).map_err(invalid(P::TaxClass))?;
    }
    if let Some(v) = r.get(P::Barcode) {
        attributes.barcode = Some(Barcode::parse(text(v)).map_err(invalid(P::Barcode))?);
    }
    if let Some(v) = r.get(P::Group) {
        attributes.group = Some(GroupHandle::parse(text(v)).map_err(invalid(P::Group))?);
    }
    attributes.options = options(r)?;
    if attributes.group.is_none() && !attributes.options.is_empty() {
        return Err((
            RejectCode::InvalidOptions,
            "options are only for a product of a `group`".to_owned(),
        ));
    }
    Ok(attributes)
}

/// The `optionN_name`/`optionN_value` pairs of a products row: a name needs its
/// value and a value its name.
fn options(r: &RawRecord) -> Check<Options> {
    options_of(option_pairs(r, ProductColumn::OPTIONS)?)
}

fn inventory(r: &RawRecord) -> Check<Row> {
    use InventoryColumn as I;
    let sku = Sku::parse(text(required(r, I::Sku)?)).map_err(invalid(I::Sku))?;
    let stock =
        StockLevel::new(integer(required(r, I::Stock)?, I::Stock)?).map_err(invalid(I::Stock))?;
    Ok(Row::Inventory { sku, stock })
}

fn order_line(r: &RawRecord, currency: Currency) -> Check<Row> {
    use OrderColumn as O;
    let order_ref =
        OrderRef::parse(text(required(r, O::OrderRef)?)).map_err(invalid(O::OrderRef))?;
    let who = text(required(r, O::Customer)?);
    let customer = if who.contains('@') {
        Customer::Email(Email::parse(who).map_err(invalid(O::Customer))?)
    } else {
        Customer::Username(Username::parse(who).map_err(invalid(O::Customer))?)
    };
    let sku = Sku::parse(text(required(r, O::Sku)?)).map_err(invalid(O::Sku))?;
    let quantity = Quantity::new(integer(required(r, O::Quantity)?, O::Quantity)?)
        .map_err(invalid(O::Quantity))?;
    let unit_price = match r.get(O::UnitPrice) {
        Some(v) => Some(price(v, currency, O::UnitPrice)?),
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
        r.as_ref().err().map_or("ok", |f| f.reject.code.as_str())
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
            Ok(Row::Product {
                sku, draft, stock, ..
            }) => {
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
        assert_eq!(failed.reject.code, RejectCode::InvalidQuantity);
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
