//! No input makes the import stages or the value parsers panic: arbitrary bytes
//! through every format and kind (extract → transform → grouping), arbitrary text
//! through every domain parser, and rows up to 200 KiB with multi-byte characters
//! placed around every limit through the stages, the file-level checks and every
//! text-cutting path. Structural errors and rejects are fine; panics are not. `PROPTEST_CASES=100000 cargo test -p orderflow-actors --test parsers_never_panic`
//! runs a longer search.

// Test data is small and known: casts between its integer types cannot lose anything.
#![allow(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_possible_wrap
)]

use std::io::{BufRead, Cursor};

use proptest::prelude::*;

use orderflow_actors::domain::{
    Category, Cents, Currency, Email, IdempotencyKey, OrderRef, ProductName, Quantity, Sku,
    StockLevel, Username, parse_decimal_price, parse_json_number_price,
};
use orderflow_actors::inbox::extract::{extractor, inspect};
use orderflow_actors::inbox::load::Grouper;
use orderflow_actors::inbox::naming::{
    FileType, Format, Kind, check_upload_name, escape_name, file_type, safe_name,
    unclaimable_reason,
};
use orderflow_actors::inbox::settle::looks_truncated;
use orderflow_actors::inbox::sniff::sniff_kind;
use orderflow_actors::inbox::transform::transform;
use orderflow_actors::limits::{
    CATEGORY_CHARS_MAX, DESCRIPTION_CHARS_MAX, FILE_NAME_BYTES_MAX, IMPORT_ROW_BYTES_MAX,
    ORDER_REF_CHARS_MAX, PRODUCT_NAME_CHARS_MAX, REJECT_RAW_BYTES_MAX, SKU_CHARS_MAX,
};
use orderflow_actors::text::cut;

/// Every length limit text meets on its way in, in bytes or characters.
const LIMITS: [usize; 9] = [
    REJECT_RAW_BYTES_MAX,
    IMPORT_ROW_BYTES_MAX,
    PRODUCT_NAME_CHARS_MAX,
    DESCRIPTION_CHARS_MAX,
    CATEGORY_CHARS_MAX,
    SKU_CHARS_MAX,
    ORDER_REF_CHARS_MAX,
    FILE_NAME_BYTES_MAX,
    4096,
];

/// ASCII up to about `limit + shift` bytes, then multi-byte characters, so that a
/// character sits across the limit (for some shift), up to 200 KiB.
fn around_a_limit() -> impl Strategy<Value = String> {
    (
        prop::sample::select(LIMITS.to_vec()),
        // Wide enough that the characters start before the limit even after the
        // longest field prefix of any format.
        -40i64..8,
        prop::sample::select(vec!["é", "€", "𝄞", "\u{feff}", "a\u{301}"]),
        0usize..(200 * 1024),
    )
        .prop_map(|(limit, shift, wide, tail)| {
            let pad = (limit as i64 + shift).max(0) as usize;
            let mut s = "x".repeat(pad);
            while s.len() < pad + tail.min(200 * 1024 - pad.min(200 * 1024)) {
                s.push_str(wide);
            }
            s
        })
}

/// A whole file of one kind and format whose fields carry `text`.
fn hostile_file(text: &str, kind: Kind, format: Format) -> Vec<u8> {
    let quoted = text.replace('"', "");
    match (format, kind) {
        (Format::Csv, Kind::Products) => format!("sku,name,category,price,description\nA,{quoted},{quoted},1.00,{quoted}\nB,ok,c,2.00,d\n"),
        (Format::Csv, Kind::Orders) => format!("order_ref,customer,sku,quantity\n{quoted},{quoted},{quoted},1\n"),
        (Format::Csv, Kind::Inventory) => format!("sku,stock\n{quoted},1\n"),
        (Format::JsonLines, _) => format!("{{\"sku\":\"{quoted}\",\"name\":\"{quoted}\",\"price\":1,\"order_ref\":\"{quoted}\",\"customer\":\"{quoted}\",\"quantity\":1,\"stock\":1}}\n{{\"name\":\"ok\",\"price\":2}}"),
        (Format::JsonArray, _) => format!("[{{\"sku\":\"{quoted}\",\"name\":\"{quoted}\",\"price\":1,\"order_ref\":\"{quoted}\",\"customer\":\"{quoted}\",\"quantity\":1,\"stock\":1}}, {{\"name\":\"ok\",\"price\":2}}]"),
    }
    .into_bytes()
}

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
        "sku,name,price,group,option1_name,option1_value,weight_grams,barcode\n",
        "Handle,Title,Body (HTML),Option1 Name,Option1 Value,Variant SKU,Variant Grams,Variant Price,Variant Barcode,Status\n",
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
    fn long_text_around_every_limit_never_panics(
        text in around_a_limit(),
        kind in prop::sample::select(vec![Kind::Products, Kind::Orders, Kind::Inventory]),
        format in prop::sample::select(vec![Format::Csv, Format::JsonLines, Format::JsonArray]),
    ) {
        let bytes = hostile_file(&text, kind, format);
        run_pipeline(bytes.clone(), kind, format);
        // The file-level checks read it from disk, gzipped or not.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, &bytes).unwrap();
        let _ = inspect(&path, FileType { kind, format, gzip: false });
        let _ = sniff_kind(&path, format, false);
        let _ = looks_truncated(&path, format, false);
        // Every text-cutting path: the shared helper at each limit, and the name
        // handling of the inbox.
        for limit in LIMITS {
            for budget in limit.saturating_sub(4)..limit + 4 {
                let c = cut(&text, budget);
                prop_assert!(c.len() <= budget && text.starts_with(c));
            }
        }
        let name = std::ffi::OsStr::new(&text);
        let _ = escape_name(name);
        let _ = unclaimable_reason(name);
        prop_assert!(safe_name(name).len() <= 100);
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
