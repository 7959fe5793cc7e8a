//! Search against a brute-force count (contract §7): on a generated catalog,
//! every search's hits, `total` and facet counts are what counting product by
//! product gives.

use reqwest::Method;
use serde_json::json;

use crate::helpers::spawn_app;
use crate::search::{facet, search, search_until, skus};

/// Words far apart (no two within two edits, none a prefix of another), so the
/// engine's typos and prefixes find exactly what a word-by-word count finds.
const VOCABULARY: [&str; 8] = [
    "amber", "cobalt", "fjord", "harbor", "indigo", "juniper", "kestrel", "lantern",
];
const TREE: [&str; 5] = [
    "Tools > Saws",
    "Tools > Drills",
    "Yard > Hoses",
    "Yard > Seeds > Herbs",
    "Kitchen",
];

/// One generated product, as the brute-force count sees it.
struct Generated {
    sku: String,
    words: Vec<&'static str>,
    category: &'static str,
    size: Option<&'static str>,
    price: u64,
    stock: u64,
    archived: bool,
}

fn bucket(price: u64) -> String {
    let bounds = [0, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000];
    let i = bounds.iter().rposition(|&b| b <= price).unwrap();
    match bounds.get(i + 1) {
        Some(upper) => format!("{}-{upper}", bounds[i]),
        None => format!("{}-", bounds[i]),
    }
}

/// The facets and hits a search must answer, counted product by product.
fn brute_force(
    products: &[Generated],
    word: Option<&str>,
    category: Option<&str>,
    size: Option<&str>,
    in_stock: bool,
) -> (Vec<String>, [std::collections::BTreeMap<String, u64>; 3]) {
    let matches = |p: &Generated, skip: usize| {
        !p.archived
            && word.is_none_or(|w| p.words.contains(&w))
            && (skip == 0
                || category
                    .is_none_or(|c| p.category == c || p.category.starts_with(&format!("{c} > "))))
            && (skip == 1 || size.is_none_or(|s| p.size == Some(s)))
            && (!in_stock || p.stock > 0)
    };
    let hits = products
        .iter()
        .filter(|p| matches(p, usize::MAX))
        .map(|p| p.sku.clone())
        .collect();
    let mut facets: [std::collections::BTreeMap<String, u64>; 3] = Default::default();
    for p in products {
        if matches(p, 0) {
            let levels: Vec<&str> = p.category.split(" > ").collect();
            for depth in 1..=levels.len() {
                *facets[0].entry(levels[..depth].join(" > ")).or_default() += 1;
            }
        }
        if matches(p, 1)
            && let Some(s) = p.size
        {
            *facets[1].entry(s.to_owned()).or_default() += 1;
        }
        if matches(p, usize::MAX) {
            *facets[2].entry(bucket(p.price)).or_default() += 1;
        }
    }
    (hits, facets)
}

/// Contract §7's facets, against a brute-force count over a generated catalog:
/// for random searches (a word or none, a category subtree, an option, in
/// stock), the hits, `total` and every facet's counts — each counted with every
/// filter but its own — are exactly what counting product by product gives.
#[actix_web::test]
async fn facet_counts_equal_a_brute_force_count() {
    use rand::{Rng, SeedableRng};
    let app = spawn_app().await;
    let t = Some(app.admin_token.as_str());
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(42);
    let mut products = Vec::new();
    for i in 0..90 {
        let words: Vec<&str> = (0..rng.random_range(1..=3))
            .map(|_| VOCABULARY[rng.random_range(0..VOCABULARY.len())])
            .collect();
        let category = TREE[rng.random_range(0..TREE.len())];
        let size = [None, Some("S"), Some("M"), Some("L")][rng.random_range(0..4)];
        let price = rng.random_range(1..120_000u64);
        let stock = rng.random_range(0..3u64);
        let sku = format!("BF-{i:03}");
        let mut body = json!({"sku": sku, "name": words.join(" "), "category": category,
                              "price_cents": price, "stock": stock});
        if let Some(size) = size {
            body["group"] = json!(format!("bf-{i}"));
            body["options"] = json!({"Size": size});
        }
        app.post("/api/v1/products", t, body)
            .await
            .assert_status(201);
        let archived = rng.random_bool(0.1);
        if archived {
            app.call(Method::DELETE, &format!("/api/v1/products/{sku}"), t, None)
                .await
                .assert_status(204);
        }
        products.push(Generated {
            sku,
            words,
            category,
            size,
            price,
            stock,
            archived,
        });
    }
    let active = products.iter().filter(|p| !p.archived).count();
    search_until(&app, "limit=1", |b| b["total"] == active).await;
    for round in 0..40 {
        let word = rng
            .random_bool(0.8)
            .then(|| VOCABULARY[rng.random_range(0..VOCABULARY.len())]);
        let category = rng.random_bool(0.4).then(|| {
            ["Tools", "Yard", "Yard > Seeds", "Tools > Saws", "Kitchen"][rng.random_range(0..5)]
        });
        let size = rng
            .random_bool(0.3)
            .then(|| ["S", "M", "L"][rng.random_range(0..3)]);
        let in_stock = rng.random_bool(0.3);
        let mut query = "limit=100&facets=category,option.Size,price".to_owned();
        if let Some(w) = word {
            query.push_str(&format!("&q={w}"));
        }
        if let Some(c) = category {
            query.push_str(&format!(
                "&category={}",
                c.replace(' ', "%20").replace('>', "%3E")
            ));
        }
        if let Some(s) = size {
            query.push_str(&format!("&option.Size={s}"));
        }
        if in_stock {
            query.push_str("&in_stock=true");
        }
        let body = search(&app, &query).await;
        let (mut hits, facets) = brute_force(&products, word, category, size, in_stock);
        let mut found = skus(&body);
        hits.sort();
        found.sort();
        assert_eq!(found, hits, "round {round}: {query}");
        assert_eq!(body["total"], hits.len(), "round {round}: {query}");
        for (name, expected) in ["category", "option.Size", "price"].iter().zip(&facets) {
            let counted: std::collections::BTreeMap<String, u64> =
                facet(&body, name).into_iter().collect();
            assert_eq!(&counted, expected, "round {round}: {query}: facet {name}");
        }
    }
}
