//! `orderflow gen`: realistic import files, deterministic for a seed, streamed so
//! that ten million rows cost no memory.
//!
//! Products get names from a small vocabulary, a category, a log-spread price
//! between 0.99 and ~2,000.00 and a stock level (some zero). Orders reference the
//! products `P-000001…` of `gen products` and the customers `customer1…`; inventory
//! feeds set new levels for them. `--dirty PCT` makes that share of rows bad, cycling
//! through every kind of row the pipeline rejects. `--catalog-depth` gives products
//! contract §7's shape: variant groups, a category tree, weights, descriptions.
//!
//! Why one file: every kind is one short generator over the same writer and row
//! helpers, which a split would only pass around.

use std::io::{self, Write};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::config::{GenArgs, GenFormat, GenKind};

const ADJECTIVES: [&str; 12] = [
    "Compact", "Pro", "Wireless", "Rugged", "Smart", "Ultra", "Silent", "Modular", "Portable",
    "Classic", "Dual", "Mini",
];
const NOUNS: [&str; 16] = [
    "Router", "Switch", "Cable", "Antenna", "Adapter", "Keyboard", "Monitor", "Headset", "Charger",
    "Dock", "Camera", "Speaker", "Hub", "Drive", "Mouse", "Lamp",
];
const CATEGORIES: [&str; 8] = [
    "Networking",
    "Cables",
    "Peripherals",
    "Audio",
    "Storage",
    "Power",
    "Video",
    "Lighting",
];

/// One field value: text, or (for JSON) a number written as is.
enum Field {
    Text(String),
    Number(String),
    Absent,
}

struct Writer<W: Write> {
    out: W,
    format: GenFormat,
    columns: &'static [&'static str],
    rows: u64,
}

impl<W: Write> Writer<W> {
    fn start(mut out: W, format: GenFormat, columns: &'static [&'static str]) -> io::Result<Self> {
        match format {
            GenFormat::Csv => writeln!(out, "{}", columns.join(","))?,
            GenFormat::Json => out.write_all(b"[\n")?,
            GenFormat::Jsonl => {}
        }
        Ok(Self {
            out,
            format,
            columns,
            rows: 0,
        })
    }

    fn row(&mut self, fields: &[Field]) -> io::Result<()> {
        match self.format {
            GenFormat::Csv => {
                let cells: Vec<String> = fields
                    .iter()
                    .map(|f| match f {
                        Field::Text(t) | Field::Number(t) => csv_cell(t),
                        Field::Absent => String::new(),
                    })
                    .collect();
                writeln!(self.out, "{}", cells.join(","))?;
            }
            GenFormat::Jsonl | GenFormat::Json => {
                if self.format == GenFormat::Json && self.rows > 0 {
                    self.out.write_all(b",\n")?;
                }
                let mut object = serde_json::Map::new();
                for (name, f) in self.columns.iter().zip(fields) {
                    let v = match f {
                        Field::Text(t) => serde_json::Value::String(t.clone()),
                        Field::Number(n) => {
                            serde_json::from_str(n).unwrap_or(serde_json::Value::String(n.clone()))
                        }
                        Field::Absent => continue,
                    };
                    object.insert((*name).to_owned(), v);
                }
                serde_json::to_writer(&mut self.out, &object)?;
                if self.format == GenFormat::Jsonl {
                    self.out.write_all(b"\n")?;
                }
            }
        }
        self.rows += 1;
        Ok(())
    }

    fn finish(mut self) -> io::Result<()> {
        if self.format == GenFormat::Json {
            self.out.write_all(b"\n]\n")?;
        }
        self.out.flush()
    }
}

fn csv_cell(t: &str) -> String {
    if t.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", t.replace('"', "\"\""))
    } else {
        t.to_owned()
    }
}

/// A product name from the vocabulary: an adjective, a noun and a number.
fn product_name(rng: &mut ChaCha8Rng) -> String {
    format!(
        "{} {} {}",
        ADJECTIVES[rng.random_range(0..ADJECTIVES.len())],
        NOUNS[rng.random_range(0..NOUNS.len())],
        rng.random_range(100..10_000)
    )
}

/// A stock level: none for one product in ten, else 1 to 499.
fn stock_level(rng: &mut ChaCha8Rng) -> u64 {
    if rng.random_bool(0.1) {
        0
    } else {
        rng.random_range(1..500u64)
    }
}

/// A price in cents, spread log-uniformly from 0.99 to about 2,000.
fn price_cents(rng: &mut ChaCha8Rng) -> u64 {
    let exponent: f64 = rng.random_range(0.0..3.3);
    let major = 10f64.powf(exponent);
    // 99 to about 200,000 cents: the cast is exact for these whole numbers.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let cents = (major * 100.0) as u64;
    cents.max(99)
}

fn money(cents: u64) -> String {
    format!("{}.{:02}", cents / 100, cents % 100)
}

pub fn sku_of(i: u64) -> String {
    format!("P-{i:06}")
}

/// Writes the file `args` describes to `out`.
pub fn generate(args: &GenArgs, out: impl Write) -> io::Result<u64> {
    let mut rng = ChaCha8Rng::seed_from_u64(args.seed);
    let dirty_every = if args.dirty > 0.0 {
        // --dirty is a percentage in (0, 100] (checked by the CLI): 1 to 1e300.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let every = (100.0 / args.dirty).round().max(1.0) as u64;
        every
    } else {
        0
    };
    let is_dirty = |i: u64| dirty_every > 0 && i % dirty_every == dirty_every / 2;
    match args.kind {
        GenKind::Products if args.catalog_depth => deep_products(args, out, &mut rng, is_dirty),
        GenKind::Products => products(args, out, &mut rng, is_dirty),
        GenKind::Orders => orders(args, out, &mut rng, is_dirty),
        GenKind::Inventory => inventory(args, out, &mut rng, is_dirty),
    }
}

/// `args.count` product rows from `args.first`, the dirty ones broken in turn
/// in eight ways.
fn products(
    args: &GenArgs,
    out: impl Write,
    rng: &mut ChaCha8Rng,
    is_dirty: impl Fn(u64) -> bool,
) -> io::Result<u64> {
    const COLUMNS: [&str; 6] = ["sku", "name", "category", "price", "stock", "description"];
    let mut w = Writer::start(out, args.format, &COLUMNS)?;
    let mut bad = 0usize;
    let first = args.first.max(1);
    for i in first..first.saturating_add(args.count) {
        let name = product_name(rng);
        let category = CATEGORIES[rng.random_range(0..CATEGORIES.len())];
        let price = price_cents(rng);
        let stock = stock_level(rng);
        let mut fields = vec![
            Field::Text(sku_of(i)),
            Field::Text(name.clone()),
            Field::Text(category.into()),
            Field::Number(money(price)),
            Field::Number(stock.to_string()),
            Field::Text(format!("{name}, {category}")),
        ];
        if is_dirty(i) {
            bad += 1;
            spoil(&mut fields, bad, i, price);
        }
        w.row(&fields)?;
    }
    let rows = w.rows;
    w.finish()?;
    Ok(rows)
}

/// Breaks a product row (sku, name, category, price, stock, …) in the `bad`-th of
/// eight ways.
fn spoil(fields: &mut [Field], bad: usize, i: u64, price: u64) {
    match bad % 8 {
        0 => fields[3] = Field::Number(format!("-{}", money(price))),
        1 => fields[3] = Field::Number("0".into()),
        2 => fields[1] = Field::Absent,
        3 => fields[3] = Field::Text("twelve".into()),
        4 => fields[3] = Field::Text(format!("{} USD", money(price))),
        5 => fields[1] = Field::Text("N".repeat(250)),
        6 => fields[4] = Field::Text("-3".into()),
        _ => fields[0] = Field::Text(format!("bad sku {i}")),
    }
}

/// The three levels of the `--catalog-depth` category tree: departments, their
/// sections, and a leaf shared by every section.
const DEPARTMENTS: [(&str, [&str; 3]); 4] = [
    ("Electronics", ["Networking", "Audio", "Video"]),
    ("Home", ["Lighting", "Kitchen", "Garden"]),
    ("Office", ["Storage", "Power", "Peripherals"]),
    ("Apparel", ["Men", "Women", "Kids"]),
];
const LEAVES: [&str; 4] = ["Basics", "Pro", "Outlet", "New"];
const SIZES: [&str; 6] = ["XS", "S", "M", "L", "XL", "XXL"];
const COLOURS: [&str; 8] = [
    "Black", "White", "Red", "Blue", "Green", "Grey", "Navy", "Olive",
];
const WORDS: [&str; 24] = [
    "durable",
    "lightweight",
    "waterproof",
    "ergonomic",
    "recycled",
    "premium",
    "compact",
    "quiet",
    "fast",
    "wireless",
    "cotton",
    "steel",
    "aluminium",
    "bamboo",
    "soft",
    "bright",
    "travel",
    "everyday",
    "studio",
    "outdoor",
    "warranty",
    "charging",
    "café",
    "crème",
];

/// `args.count` products shaped as contract §7's catalog: consecutive SKUs form
/// variant groups (one to six sizes in one colour, one name), each group in one
/// leaf of a three-level tree, with a weight and a description of 12 to 30 words.
/// Dirty rows are broken as [`products`] breaks them.
fn deep_products(
    args: &GenArgs,
    out: impl Write,
    rng: &mut ChaCha8Rng,
    is_dirty: impl Fn(u64) -> bool,
) -> io::Result<u64> {
    const COLUMNS: [&str; 12] = [
        "sku",
        "name",
        "category",
        "price",
        "stock",
        "description",
        "group",
        "option1_name",
        "option1_value",
        "option2_name",
        "option2_value",
        "weight_grams",
    ];
    let mut w = Writer::start(out, args.format, &COLUMNS)?;
    let (mut bad, mut left, mut size) = (0usize, 0usize, 0usize);
    let (mut group, mut name, mut category, mut colour) =
        (String::new(), String::new(), String::new(), "");
    let first = args.first.max(1);
    for i in first..first.saturating_add(args.count) {
        if left == 0 {
            left = rng.random_range(1..=SIZES.len());
            size = 0;
            group = format!("g-{i}");
            name = product_name(rng);
            let (department, sections) = DEPARTMENTS[rng.random_range(0..DEPARTMENTS.len())];
            let section = sections[rng.random_range(0..sections.len())];
            let leaf = LEAVES[rng.random_range(0..LEAVES.len())];
            category = format!("{department} > {section} > {leaf}");
            colour = COLOURS[rng.random_range(0..COLOURS.len())];
        }
        left -= 1;
        let price = price_cents(rng);
        let stock = stock_level(rng);
        let words: Vec<&str> = (0..rng.random_range(12..=30))
            .map(|_| WORDS[rng.random_range(0..WORDS.len())])
            .collect();
        let mut fields = vec![
            Field::Text(sku_of(i)),
            Field::Text(name.clone()),
            Field::Text(category.clone()),
            Field::Number(money(price)),
            Field::Number(stock.to_string()),
            Field::Text(format!("{name}: {}.", words.join(" "))),
            Field::Text(group.clone()),
            Field::Text("Size".into()),
            Field::Text(SIZES[size].into()),
            Field::Text("Color".into()),
            Field::Text(colour.into()),
            Field::Number(rng.random_range(50..5_000u64).to_string()),
        ];
        size += 1;
        if is_dirty(i) {
            bad += 1;
            spoil(&mut fields, bad, i, price);
        }
        w.row(&fields)?;
    }
    let rows = w.rows;
    w.finish()?;
    Ok(rows)
}

/// Orders of one to four lines until `args.count` rows; a dirty order's first
/// line broken in one of four ways.
fn orders(
    args: &GenArgs,
    out: impl Write,
    rng: &mut ChaCha8Rng,
    is_dirty: impl Fn(u64) -> bool,
) -> io::Result<u64> {
    const COLUMNS: [&str; 5] = ["order_ref", "customer", "sku", "quantity", "unit_price"];
    let mut w = Writer::start(out, args.format, &COLUMNS)?;
    let mut order = 0u64;
    let mut bad = 0usize;
    while w.rows < args.count {
        order += 1;
        let customer = format!("customer{}", rng.random_range(1..=args.customers.max(1)));
        let lines = rng.random_range(1..=4u64).min(args.count - w.rows);
        let dirty = is_dirty(order);
        for line in 0..lines {
            let mut fields = vec![
                Field::Text(format!("ORD-{}-{order:07}", args.seed)),
                Field::Text(customer.clone()),
                Field::Text(sku_of(rng.random_range(1..=args.products.max(1)))),
                Field::Number(rng.random_range(1..=5u64).to_string()),
                Field::Absent,
            ];
            if dirty && line == 0 {
                bad += 1;
                match bad % 4 {
                    0 => fields[2] = Field::Text("NO-SUCH-SKU".into()),
                    1 => fields[3] = Field::Number("0".into()),
                    2 => fields[1] = Field::Text("nobody-here".into()),
                    _ => fields[1] = Field::Absent,
                }
            }
            w.row(&fields)?;
        }
    }
    let rows = w.rows;
    w.finish()?;
    Ok(rows)
}

/// `args.count` stock levels of random products, the dirty ones broken in one
/// of three ways.
fn inventory(
    args: &GenArgs,
    out: impl Write,
    rng: &mut ChaCha8Rng,
    is_dirty: impl Fn(u64) -> bool,
) -> io::Result<u64> {
    const COLUMNS: [&str; 2] = ["sku", "stock"];
    let mut w = Writer::start(out, args.format, &COLUMNS)?;
    let mut bad = 0usize;
    for i in 1..=args.count {
        let mut fields = vec![
            Field::Text(sku_of(rng.random_range(1..=args.products.max(1)))),
            Field::Number(rng.random_range(0..1000u64).to_string()),
        ];
        if is_dirty(i) {
            bad += 1;
            match bad % 3 {
                0 => fields[1] = Field::Number("-1".into()),
                1 => fields[0] = Field::Text("NO-SUCH-SKU".into()),
                _ => fields[1] = Field::Text("lots".into()),
            }
        }
        w.row(&fields)?;
    }
    let rows = w.rows;
    w.finish()?;
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(kind: GenKind, format: GenFormat, dirty: f64, seed: u64) -> GenArgs {
        GenArgs {
            kind,
            count: 200,
            first: 1,
            dirty,
            seed,
            catalog_depth: false,
            format,
            output: None,
            customers: 10,
            products: 50,
        }
    }

    fn run(a: &GenArgs) -> String {
        let mut out = Vec::new();
        generate(a, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn deterministic_for_a_seed() {
        let a = args(GenKind::Products, GenFormat::Csv, 5.0, 7);
        assert_eq!(run(&a), run(&a));
        assert_ne!(
            run(&a),
            run(&args(GenKind::Products, GenFormat::Csv, 5.0, 8))
        );
    }

    #[test]
    fn products_start_at_the_first_row_asked_for() {
        let mut a = args(GenKind::Products, GenFormat::Csv, 0.0, 1);
        a.count = 3;
        a.first = 1_000_001;
        let out = run(&a);
        let skus: Vec<&str> = out
            .lines()
            .skip(1)
            .map(|l| l.split(',').next().unwrap())
            .collect();
        assert_eq!(skus, ["P-1000001", "P-1000002", "P-1000003"]);
    }

    #[test]
    fn formats_and_row_counts() {
        let csv = run(&args(GenKind::Products, GenFormat::Csv, 0.0, 1));
        assert_eq!(csv.lines().count(), 201);
        assert!(csv.starts_with("sku,name,category,price,stock,description\n"));
        let jsonl = run(&args(GenKind::Inventory, GenFormat::Jsonl, 0.0, 1));
        assert_eq!(jsonl.lines().count(), 200);
        let json: Vec<serde_json::Value> =
            serde_json::from_str(&run(&args(GenKind::Orders, GenFormat::Json, 0.0, 1))).unwrap();
        assert_eq!(json.len(), 200);
    }

    /// Counts the rows the real pipeline stages reject.
    fn rejected(
        kind: orderflow_actors::inbox::Kind,
        format: orderflow_actors::inbox::Format,
        text: String,
    ) -> (usize, std::collections::BTreeSet<&'static str>) {
        use orderflow_actors::domain::Currency;
        use orderflow_actors::inbox::{FileType, extract, transform};
        let reader: Box<dyn std::io::BufRead + Send> =
            Box::new(std::io::Cursor::new(text.into_bytes()));
        let mut ex = extract::extractor(
            FileType {
                kind,
                format,
                gzip: false,
            },
            reader,
        )
        .unwrap();
        let (mut n, mut codes) = (0, std::collections::BTreeSet::new());
        while let Some(r) = ex.next_record().unwrap() {
            if let Err(f) = transform::transform(kind, Currency::EUR, &r) {
                n += 1;
                codes.insert(f.reject.code.as_str());
            }
        }
        (n, codes)
    }

    #[test]
    fn dirty_rows_are_exactly_the_share_asked_for_and_every_one_is_rejected() {
        use orderflow_actors::inbox::{Format, Kind};
        for (format, gen_format) in [
            (Format::Csv, GenFormat::Csv),
            (Format::JsonLines, GenFormat::Jsonl),
            (Format::JsonArray, GenFormat::Json),
        ] {
            let (n, codes) = rejected(
                Kind::Products,
                format,
                run(&args(GenKind::Products, gen_format, 10.0, 1)),
            );
            assert_eq!(n, 20, "{format:?}");
            assert_eq!(
                codes.len(),
                7,
                "every kind of bad product row (negative and zero prices share a code): {codes:?}"
            );
            let (n, _) = rejected(
                Kind::Products,
                format,
                run(&args(GenKind::Products, gen_format, 0.0, 1)),
            );
            assert_eq!(n, 0);
        }
        // The §7 catalog: the same dirty share, and clean rows all valid.
        for dirty in [10.0, 0.0] {
            let mut deep = args(GenKind::Products, GenFormat::Csv, dirty, 1);
            deep.catalog_depth = true;
            let text = run(&deep);
            assert!(text.lines().nth(1).unwrap().contains(" > "), "a tree path");
            let (n, _) = rejected(Kind::Products, Format::Csv, text);
            assert_eq!(n, if dirty > 0.0 { 20 } else { 0 });
        }
        let (n, codes) = rejected(
            Kind::Inventory,
            Format::Csv,
            run(&args(GenKind::Inventory, GenFormat::Csv, 10.0, 1)),
        );
        assert_eq!(
            (n, codes.len()),
            (13, 1),
            "bad stock values; the 7 unknown SKUs are only found when loading: {codes:?}"
        );
    }
}
