//! Model-based test of the catalog's listings: random imports (many upserts in one
//! batch transaction, as the inbox loader writes them), API writes (create, replace,
//! patch, archive) and restarts run against the real ledger and catalog actors and
//! against a plain in-memory model. After every step, every query of the case —
//! each sort, filters, page sizes, followed cursor by cursor to the end — must list
//! exactly what the model lists, and the category tree (every node and each
//! node's children, with subtree counts) must agree. Products may be variants of
//! two groups, with a size alone or a size and a colour: every write goes through
//! the group rule (imports row by row in one transaction, as the loader does) and
//! must be taken or refused exactly as the model's own rule says, and the group
//! and option filters must list what the model lists.

use std::collections::BTreeMap;

use actix::Actor;
use proptest::prelude::*;

use orderflow_actors::catalog::{
    Attributes, Catalog, CatalogError, ListCategories, ListCursor, ListProducts, ProductDraft,
    ProductPatch, ProductQuery, ProductSort,
};
use orderflow_actors::common::StoreError;
use orderflow_actors::domain::{
    Category, Cents, Currency, GroupHandle, MovementKind, Options, ProductName, Sku, StockLevel,
    Timestamp,
};
use orderflow_actors::ledger::Source;
use orderflow_actors::ledger::products::variant_conflict;
use orderflow_actors::ledger::{
    self, ArchiveProduct, CreateProduct, Ledger, PatchProduct, ReplaceProduct, Transact,
};
use orderflow_actors::store::Store;
use orderflow_actors::telemetry::Telemetry;

#[allow(dead_code)] // this binary uses the store helpers, not PostgreSQL
mod support;

const SKUS: usize = 10;
const NAMES: [&str; 7] = [
    "apple",
    "Apple",
    "banana",
    "Cherry",
    "cherry pie",
    "date",
    "Éclair",
];
/// Paths of one to three levels, some the same node spelt in another case.
const CATEGORIES: [&str; 6] = [
    "Tools",
    "toys",
    "Garden",
    "Tools > Saws",
    "tools > SAWS > Hand",
    "Garden > Hoses",
];
const PRICES: [u64; 5] = [100, 250, 250, 999, 5_000];

fn sku(i: usize) -> Sku {
    Sku::parse(&format!("P{i:02}")).unwrap()
}

/// Variant groups and the option sets a product of one may carry: a size alone,
/// or a size and a colour (so two products of a group may disagree on names).
const GROUPS: [&str; 2] = ["tee", "mug"];
const SIZES: [&str; 3] = ["S", "m", "M"];

#[derive(Debug, Clone, PartialEq, Eq)]
struct Fields {
    name: usize,
    category: usize,
    price: u64,
    /// (group, size, with a colour?), or none.
    variant: Option<(usize, usize, bool)>,
}

impl Fields {
    fn attributes(&self) -> Attributes {
        let Some((group, size, coloured)) = self.variant else {
            return Attributes::default();
        };
        let mut pairs = vec![("Size", SIZES[size])];
        if coloured {
            pairs.push(("Color", "Black"));
        }
        Attributes {
            group: Some(GroupHandle::parse(GROUPS[group]).unwrap()),
            options: Options::parse(pairs).unwrap(),
            ..Attributes::default()
        }
    }

    /// The group, the option names and the folded values, as the rule compares.
    fn variant_key(&self) -> Option<(usize, bool, String)> {
        self.variant
            .map(|(g, size, coloured)| (g, coloured, SIZES[size].to_lowercase()))
    }

    fn draft(&self) -> ProductDraft {
        ProductDraft {
            attributes: self.attributes(),
            name: ProductName::parse(NAMES[self.name]).unwrap(),
            category: Category::parse(CATEGORIES[self.category]).unwrap(),
            description: None,
            price: Cents::new(i64::try_from(self.price).unwrap()).unwrap(),
        }
    }
}

#[derive(Debug, Clone)]
enum Step {
    /// Upserts in one transaction, in order (a SKU may come twice).
    Import(Vec<(usize, Fields, Option<u64>)>),
    Create(usize, Fields, Option<u64>),
    Replace(usize, Fields, Option<u64>),
    Patch {
        sku: usize,
        name: Option<usize>,
        category: Option<usize>,
        price: Option<u64>,
    },
    Archive(usize),
    Reopen,
}

fn fields() -> impl Strategy<Value = Fields> {
    (
        0..NAMES.len(),
        0..CATEGORIES.len(),
        prop::sample::select(PRICES.to_vec()),
    )
        .prop_flat_map(|(name, category, price)| {
            prop::option::of((0..GROUPS.len(), 0..SIZES.len(), any::<bool>())).prop_map(
                move |variant| Fields {
                    name,
                    category,
                    price,
                    variant,
                },
            )
        })
}

fn stock() -> impl Strategy<Value = Option<u64>> {
    prop::option::of(prop::sample::select(vec![0u64, 1, 5, 40]))
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => prop::collection::vec((0..SKUS, fields(), stock()), 1..12).prop_map(Step::Import),
        2 => (0..SKUS, fields(), stock()).prop_map(|(s, f, st)| Step::Create(s, f, st)),
        2 => (0..SKUS, fields(), stock()).prop_map(|(s, f, st)| Step::Replace(s, f, st)),
        2 => (
            0..SKUS,
            prop::option::of(0..NAMES.len()),
            prop::option::of(0..CATEGORIES.len()),
            prop::option::of(prop::sample::select(PRICES.to_vec())),
        )
            .prop_map(|(sku, name, category, price)| Step::Patch { sku, name, category, price }),
        2 => (0..SKUS).prop_map(Step::Archive),
        1 => Just(Step::Reopen),
    ]
}

fn query() -> impl Strategy<Value = ProductQuery> {
    (
        prop::sample::select(vec![
            ProductSort::Sku,
            ProductSort::PriceAsc,
            ProductSort::PriceDesc,
            ProductSort::Name,
        ]),
        1usize..5,
        prop::option::of(0..CATEGORIES.len()),
        prop::option::of(prop::sample::select(vec!["an", "pie", "ch", "a", "é"])),
        prop::option::of(prop::sample::select(PRICES.to_vec())),
        prop::option::of(prop::sample::select(PRICES.to_vec())),
        any::<bool>(),
        prop::option::of(prop::sample::select(vec![0u64, 5])),
        (
            prop::option::of(0..GROUPS.len()),
            prop::option::of(0..SIZES.len()),
        ),
    )
        .prop_map(
            |(sort, limit, category, contains, min, max, in_stock, max_stock, (group, size))| {
                ProductQuery {
                    limit,
                    after: None,
                    category: category.map(|c| CATEGORIES[c].to_lowercase()),
                    name_contains: contains.map(str::to_owned),
                    group: group.map(|g| GroupHandle::parse(GROUPS[g]).unwrap()),
                    options: size
                        .map(|s| vec![("size".to_owned(), SIZES[s].to_lowercase())])
                        .unwrap_or_default(),
                    min_price: min,
                    max_price: max,
                    in_stock,
                    max_stock,
                    sort,
                }
            },
        )
}

#[derive(Debug, Clone)]
struct ModelProduct {
    fields: Fields,
    archived: bool,
}

#[derive(Debug, Default)]
struct Model {
    products: BTreeMap<usize, ModelProduct>,
    stock: BTreeMap<usize, u64>,
}

/// A listed product as both sides show it.
type Listed = (String, String, String, u64, u64);

impl Model {
    fn upsert(&mut self, sku: usize, fields: &Fields, stock: Option<u64>) {
        self.products.insert(
            sku,
            ModelProduct {
                fields: fields.clone(),
                archived: false,
            },
        );
        if let Some(level) = stock {
            self.stock.insert(sku, level);
        }
    }

    /// Whether `fields` may stand for `sku` in its group: every other active
    /// product of the group has the same option names and other values.
    fn variant_ok(&self, sku: usize, fields: &Fields) -> bool {
        let Some((group, coloured, size)) = fields.variant_key() else {
            return true;
        };
        self.products
            .iter()
            .filter(|(s, p)| **s != sku && !p.archived)
            .filter_map(|(_, p)| p.fields.variant_key())
            .filter(|(g, ..)| *g == group)
            .all(|(_, c, s)| c == coloured && s != size)
    }

    fn active(&mut self, sku: usize) -> Option<&mut ModelProduct> {
        self.products.get_mut(&sku).filter(|p| !p.archived)
    }

    fn list(&self, q: &ProductQuery) -> Vec<Listed> {
        let mut rows: Vec<Listed> = self
            .products
            .iter()
            .filter(|(_, p)| !p.archived)
            .filter(|(_, p)| {
                let key = p.fields.variant_key();
                q.group.as_ref().is_none_or(|g| {
                    key.as_ref()
                        .is_some_and(|(group, ..)| GROUPS[*group] == g.as_str())
                }) && q
                    .options
                    .iter()
                    .all(|(_, value)| key.as_ref().is_some_and(|(_, _, size)| size == value))
            })
            .map(|(s, p)| {
                (
                    sku(*s).as_str().to_owned(),
                    NAMES[p.fields.name].to_owned(),
                    CATEGORIES[p.fields.category].to_owned(),
                    p.fields.price,
                    self.stock.get(s).copied().unwrap_or(0),
                )
            })
            .filter(|(_, name, category, price, stock)| {
                q.category
                    .as_ref()
                    .is_none_or(|c| within(&category.to_lowercase(), c))
                    && q.name_contains
                        .as_ref()
                        .is_none_or(|t| name.to_lowercase().contains(t.as_str()))
                    && q.min_price.is_none_or(|m| *price >= m)
                    && q.max_price.is_none_or(|m| *price <= m)
                    && (!q.in_stock || *stock > 0)
                    && q.max_stock.is_none_or(|m| *stock <= m)
            })
            .collect();
        match q.sort {
            ProductSort::Sku => rows.sort_by(|a, b| a.0.cmp(&b.0)),
            ProductSort::PriceAsc => rows.sort_by(|a, b| (a.3, &a.0).cmp(&(b.3, &b.0))),
            ProductSort::PriceDesc => rows.sort_by(|a, b| (b.3, &b.0).cmp(&(a.3, &a.0))),
            ProductSort::Name => {
                rows.sort_by(|a, b| (a.1.to_lowercase(), &a.0).cmp(&(b.1.to_lowercase(), &b.0)));
            }
        }
        rows
    }

    /// Every node of the category tree, depth first: its case-folded path, its
    /// parent's, its depth and the active products at or below it.
    fn categories(&self) -> Vec<Node> {
        let mut counts: BTreeMap<Vec<String>, u64> = BTreeMap::new();
        for p in self.products.values().filter(|p| !p.archived) {
            let levels: Vec<String> = CATEGORIES[p.fields.category]
                .to_lowercase()
                .split(" > ")
                .map(str::to_owned)
                .collect();
            for depth in 1..=levels.len() {
                *counts.entry(levels[..depth].to_vec()).or_default() += 1;
            }
        }
        counts
            .into_iter()
            .map(|(levels, count)| {
                let parent = (levels.len() > 1).then(|| levels[..levels.len() - 1].join(" > "));
                (levels.join(" > "), parent, levels.len(), count)
            })
            .collect()
    }
}

/// Whether the case-folded `category` is `ancestor` or lies below it.
fn within(category: &str, ancestor: &str) -> bool {
    category == ancestor
        || category
            .strip_prefix(ancestor)
            .is_some_and(|rest| rest.starts_with(" > "))
}

/// A category node as the model and the test compare it.
type Node = (String, Option<String>, usize, u64);

struct Live {
    store: Store,
    catalog: actix::Addr<Catalog>,
    ledger: actix::Addr<Ledger>,
}

impl Live {
    fn start(dir: &std::path::Path) -> Self {
        let store = Store::open(dir).unwrap();
        Self {
            catalog: Catalog::new(store.clone()).start(),
            ledger: Ledger::new(store.clone(), Currency::EUR, 64, Telemetry::default()).start(),
            store,
        }
    }

    async fn stop(self) {
        self.ledger.send(ledger::Shutdown).await.unwrap();
        let Live {
            store,
            catalog,
            ledger,
        } = self;
        drop((catalog, ledger));
        support::until_released(store).await;
    }

    /// Every page of `query`, cursor after cursor.
    async fn list(&self, query: &ProductQuery) -> Vec<Listed> {
        let mut q = query.clone();
        let mut out = Vec::new();
        for _ in 0..100 {
            let page = self
                .catalog
                .send(ListProducts { query: q.clone() })
                .await
                .unwrap()
                .unwrap();
            assert!(page.items.len() <= q.limit, "a page longer than its limit");
            out.extend(page.items.into_iter().map(|p| {
                (
                    p.sku.as_str().to_owned(),
                    p.row.name.as_str().to_owned(),
                    p.row.category.as_str().to_owned(),
                    p.row.price.get(),
                    p.stock,
                )
            }));
            match page.next {
                Some(cursor) => q.after = Some(cursor),
                None => return out,
            }
        }
        panic!("more than 100 pages for at most {SKUS} products");
    }

    /// The category tree's nodes (every one, or the children of `parent`), page
    /// after page of two, folded as the model keeps them.
    async fn categories(&self, parent: Option<&str>) -> Vec<Node> {
        let mut out = Vec::new();
        let mut after = None;
        for _ in 0..100 {
            let page = self
                .catalog
                .send(ListCategories {
                    parent: parent.map(str::to_owned),
                    after,
                    limit: 2,
                })
                .await
                .unwrap()
                .unwrap();
            assert!(page.items.len() <= 2, "a page longer than its limit");
            out.extend(page.items.into_iter().map(|n| {
                assert!(
                    n.path.ends_with(&n.name),
                    "{n:?}: the name is the last level"
                );
                (
                    n.path.to_lowercase(),
                    n.parent.map(|p| p.to_lowercase()),
                    n.depth,
                    n.product_count,
                )
            }));
            match page.next {
                Some(next) => after = Some(next),
                None => return out,
            }
        }
        panic!("more than 100 pages of categories");
    }
}

fn level(units: u64) -> StockLevel {
    StockLevel::new(i64::try_from(units).unwrap()).unwrap()
}

async fn apply(live: &Live, model: &mut Model, step: Step) {
    match step {
        Step::Import(rows) => {
            // A grouped row goes through the group's rule, in file order, as the
            // loader runs it: a refused row writes nothing.
            let mut taken = Vec::new();
            for (s, f, st) in &rows {
                let ok = model.variant_ok(*s, f);
                if ok {
                    model.upsert(*s, f, *st);
                }
                taken.push(ok);
            }
            live.ledger
                .send(Transact {
                    work: Box::new(move |tx| {
                        for ((s, f, st), expected) in rows.into_iter().zip(taken) {
                            let conflict =
                                variant_conflict(&*tx.catalog, &sku(s), &f.attributes())?;
                            assert_eq!(conflict.is_none(), expected, "row {s} {f:?}: {conflict:?}");
                            if conflict.is_some() {
                                continue;
                            }
                            tx.catalog.upsert(&sku(s), f.draft(), tx.at)?;
                            if let Some(units) = st {
                                tx.book
                                    .set_level(
                                        &sku(s),
                                        level(units),
                                        MovementKind::Adjustment,
                                        Source::Api,
                                        Timestamp::now(),
                                    )
                                    .map_err(|e| StoreError::Aborted(e.to_string()))?;
                            }
                        }
                        Ok(())
                    }),
                })
                .await
                .unwrap()
                .unwrap();
        }
        Step::Create(s, f, st) => {
            let expected_exists = model.products.contains_key(&s);
            let answer = live
                .ledger
                .send(CreateProduct {
                    sku: sku(s),
                    draft: f.draft(),
                    stock: st.map(level),
                })
                .await
                .unwrap();
            let fits = model.variant_ok(s, &f);
            match answer {
                Ok(_) => {
                    assert!(
                        !expected_exists && fits,
                        "created {f:?} over {expected_exists}/{fits}"
                    );
                    model.upsert(s, &f, st);
                }
                Err(CatalogError::Exists(_)) => assert!(expected_exists, "refused a new SKU"),
                Err(CatalogError::Variant(v)) => {
                    assert!(!expected_exists && !fits, "refused {f:?}: {v}");
                }
                Err(e) => panic!("create: {e}"),
            }
        }
        Step::Replace(s, f, st) => {
            let answer = live
                .ledger
                .send(ReplaceProduct {
                    sku: sku(s),
                    draft: f.draft(),
                    stock: st.map(level),
                })
                .await
                .unwrap();
            match answer {
                Ok((_, created)) => {
                    assert!(model.variant_ok(s, &f), "replaced with {f:?}");
                    assert_eq!(created, !model.products.contains_key(&s));
                    model.upsert(s, &f, st);
                }
                Err(CatalogError::Variant(v)) => assert!(!model.variant_ok(s, &f), "{f:?}: {v}"),
                Err(e) => panic!("replace: {e}"),
            }
        }
        Step::Patch {
            sku: s,
            name,
            category,
            price,
        } => {
            let answer = live
                .ledger
                .send(PatchProduct {
                    sku: sku(s),
                    patch: ProductPatch {
                        name: name.map(|n| ProductName::parse(NAMES[n]).unwrap()),
                        category: category.map(|c| Category::parse(CATEGORIES[c]).unwrap()),
                        description: None,
                        price: price.map(|p| Cents::new(i64::try_from(p).unwrap()).unwrap()),
                        ..ProductPatch::default()
                    },
                })
                .await
                .unwrap();
            match (model.active(s), answer) {
                (Some(p), Ok(_)) => {
                    if let Some(n) = name {
                        p.fields.name = n;
                    }
                    if let Some(c) = category {
                        p.fields.category = c;
                    }
                    if let Some(pr) = price {
                        p.fields.price = pr;
                    }
                }
                (None, Err(CatalogError::NotFound(_))) => {}
                (expected, answer) => panic!("patch: model {expected:?}, ledger {answer:?}"),
            }
        }
        Step::Archive(s) => {
            let answer = live
                .ledger
                .send(ArchiveProduct { sku: sku(s) })
                .await
                .unwrap();
            match (model.active(s), answer) {
                (Some(p), Ok(())) => p.archived = true,
                (None, Err(CatalogError::NotFound(_))) => {}
                (expected, answer) => panic!("archive: model {expected:?}, ledger {answer:?}"),
            }
        }
        Step::Reopen => unreachable!("handled by the caller"),
    }
}

fn run(steps: Vec<Step>, queries: Vec<ProductQuery>) {
    actix::System::new().block_on(async move {
        let dir = tempfile::tempdir().unwrap();
        let mut model = Model::default();
        let mut live = Live::start(dir.path());
        for (n, step) in steps.into_iter().enumerate() {
            let described = format!("{step:?}");
            if let Step::Reopen = step {
                live.stop().await;
                live = Live::start(dir.path());
            } else {
                apply(&live, &mut model, step).await;
            }
            for q in &queries {
                assert_eq!(
                    live.list(q).await,
                    model.list(q),
                    "step {n} ({described}), query {q:?}"
                );
            }
            // The stored groups pass the audit: names alike, values distinct, the
            // group table in step with the rows.
            let report = orderflow_actors::ledger::verify::verify(&live.store).unwrap();
            assert_eq!(
                report.problems,
                Vec::<String>::new(),
                "after step {n} ({described})"
            );
            let tree = model.categories();
            assert_eq!(
                live.categories(None).await,
                tree,
                "categories after step {n} ({described})"
            );
            // One level below each node (and below a path that has none), with
            // the parent spelt in another case than the tree shows it.
            for parent in tree
                .iter()
                .map(|n| n.0.to_uppercase())
                .chain(["Nowhere".to_owned()])
            {
                let children: Vec<Node> = tree
                    .iter()
                    .filter(|n| n.1.as_deref() == Some(parent.to_lowercase().as_str()))
                    .cloned()
                    .collect();
                assert_eq!(
                    live.categories(Some(&parent)).await,
                    children,
                    "children of {parent:?} after step {n} ({described})"
                );
            }
        }
        live.stop().await;
    });
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, max_shrink_iters: 200, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn listings_agree_with_the_model(
        steps in prop::collection::vec(step(), 1..30),
        queries in prop::collection::vec(query(), 4..10),
    ) {
        run(steps, queries);
    }
}

/// A cursor of one sort is refused by another, on every pair of sorts.
#[test]
fn a_cursor_of_another_sort_is_refused() {
    actix::System::new().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let live = Live::start(dir.path());
        let cursors = [
            (ProductSort::Sku, ListCursor::Sku("P00".into())),
            (ProductSort::PriceAsc, ListCursor::Price(1, "P00".into())),
            (
                ProductSort::Name,
                ListCursor::Name("a".into(), "P00".into()),
            ),
        ];
        for (sort, _) in &cursors {
            for (own, cursor) in &cursors {
                let same = own == sort
                    || matches!((own, sort), (ProductSort::PriceAsc, ProductSort::PriceDesc));
                let answer = live
                    .catalog
                    .send(ListProducts {
                        query: ProductQuery {
                            limit: 3,
                            after: Some(cursor.clone()),
                            sort: *sort,
                            ..ProductQuery::default()
                        },
                    })
                    .await
                    .unwrap();
                assert_eq!(
                    matches!(answer, Err(CatalogError::CursorMismatch)),
                    !same,
                    "sort {sort:?}, cursor {cursor:?}"
                );
            }
        }
        live.stop().await;
    });
}
