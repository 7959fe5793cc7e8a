//! No input makes the import stages or the value parsers panic: arbitrary bytes
//! through every format and kind (extract → transform → grouping), arbitrary text
//! through every domain parser. Structural errors and rejects are fine; panics are
//! not. `PROPTEST_CASES=100000 cargo test -p orderflow-actors --test parsers_never_panic`
//! runs a longer search.

use std::io::{BufRead, Cursor};

use proptest::prelude::*;

use orderflow_actors::domain::{
    Category, Cents, Currency, Email, IdempotencyKey, OrderRef, ProductName, Quantity, Sku,
    StockLevel, Username, parse_decimal_price, parse_json_number_price,
};
use orderflow_actors::inbox::extract::extractor;
use orderflow_actors::inbox::load::Grouper;
use orderflow_actors::inbox::naming::{FileType, Format, Kind, check_upload_name, file_type};
use orderflow_actors::inbox::transform::transform;

fn run_pipeline(bytes: Vec<u8>, kind: Kind, format: Format) {
    let reader: Box<dyn BufRead + Send> = Box::new(Cursor::new(bytes));
    let Ok(mut ex) = extractor(
        FileType {
            kind,
            format,
            gzip: false,
        },
        reader,
    ) else {
        return;
    };
    let mut grouper = Grouper::default();
    let mut out = Vec::new();
    // Bounded: a parser that never advanced would loop forever rather than panic.
    for _ in 0..100_000 {
        match ex.next_record() {
            Ok(Some(record)) => {
                let outcome = transform(kind, Currency::EUR, &record);
                grouper.push(outcome, record.line, || record.raw_text(), &mut out);
            }
            Ok(None) | Err(_) => break,
        }
    }
    grouper.close(&mut out);
}

/// Bytes that look like our files often enough to get past the header.
fn file_bytes() -> impl Strategy<Value = Vec<u8>> {
    let headers = prop::sample::select(vec![
        "sku,name,category,price,stock,description\n",
        "order_ref;customer;sku;quantity;unit_price\n",
        "sku\tstock\n",
        "[",
        "{\"name\":",
        "",
    ]);
    let body = prop::collection::vec(
        prop_oneof![
            any::<u8>(),
            prop::sample::select(b",;\t|\"\n\r[]{}:\\0123456789.-e".to_vec()),
        ],
        0..400,
    );
    (headers, body).prop_map(|(h, b)| {
        let mut v = h.as_bytes().to_vec();
        v.extend(b);
        v
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn the_import_stages_never_panic(bytes in file_bytes(), kind in prop::sample::select(vec![Kind::Products, Kind::Orders, Kind::Inventory]), format in prop::sample::select(vec![Format::Csv, Format::JsonLines, Format::JsonArray])) {
        run_pipeline(bytes, kind, format);
    }

    #[test]
    fn value_parsers_never_panic(s in "\\PC{0,80}", raw in ".{0,40}") {
        for text in [s.as_str(), raw.as_str()] {
            let _ = parse_decimal_price(text, Currency::EUR);
            let _ = parse_json_number_price(text, Currency::EUR);
            let _ = Sku::parse(text);
            let _ = ProductName::parse(text);
            let _ = Category::parse(text);
            let _ = Username::parse(text);
            let _ = Email::parse(text);
            let _ = IdempotencyKey::parse(text);
            let _ = OrderRef::parse(text);
            let _ = Currency::parse(text);
            let _ = file_type(text);
            let _ = check_upload_name(text);
        }
    }

    #[test]
    fn number_parsers_never_panic(n in any::<i64>()) {
        let _ = Cents::new(n);
        let _ = Quantity::new(n);
        let _ = StockLevel::new(n);
        let _ = parse_json_number_price(&format!("{n}e{}", n % 50), Currency::EUR);
    }

    #[test]
    fn decimal_prices_round_trip_exactly(cents in 1u64..100_000_000_000) {
        let text = format!("{}.{:02}", cents / 100, cents % 100);
        prop_assert_eq!(parse_json_number_price(&text, Currency::EUR).map(Cents::get), Ok(cents));
        prop_assert_eq!(parse_decimal_price(&format!("{text} EUR"), Currency::EUR).map(Cents::get), Ok(cents));
        let comma = text.replace('.', ",");
        prop_assert_eq!(parse_decimal_price(&comma, Currency::EUR).map(Cents::get), Ok(cents));
    }
}
