//! The catalog: product rows, their listing indexes, and the actor that serves them.
//!
//! The catalog actor owns product rows written through the API; the ledger writes
//! product rows that arrive in import files, inside its own transactions, through
//! the same [`CatalogTables`] methods, so both keep the indexes and category counts
//! in step. Stock is not part of a product row: it belongs to the ledger, and a
//! product is shown with the stock level read from the ledger's table in the same
//! read snapshot.
//!
//! The actor runs as a pool (see [`crate::mailbox::start_pool`]): reads run in
//! parallel on threads of their own, never on the HTTP workers, and redb serialises
//! the few writes.

use std::collections::BTreeMap;
use std::ops::Bound;

use actix::{Actor, Context, Handler, Message};
use redb::{ReadTransaction, ReadableDatabase, ReadableTable, Table, WriteTransaction};
use serde::{Deserialize, Serialize};

use crate::domain::{
    Category, Cents, Description, MovementKind, ProductName, Sku, StockLevel, Timestamp,
};
use crate::ledger::book::{Book, Source, StockError};
use crate::limits::LIST_SCAN_ROWS_MAX;
use crate::store::tables::{CATEGORIES, PRODUCTS, PRODUCTS_BY_NAME, PRODUCTS_BY_PRICE, STOCK};
use crate::store::{Record, Store, StoreError, codec};

/// A stored product, without its SKU (the key) and without stock (the ledger's).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProductRow {
    pub name: ProductName,
    pub category: Category,
    pub description: Option<Description>,
    pub price: Cents,
    pub archived: bool,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl Record for ProductRow {
    const VERSION: u8 = 1;
    const NAME: &'static str = "product";
}

/// A product as shown: its row, its SKU and its stock level.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Product {
    pub sku: Sku,
    pub row: ProductRow,
    pub stock: u64,
}

/// The descriptive fields a client or a file supplies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductDraft {
    pub name: ProductName,
    pub category: Category,
    pub description: Option<Description>,
    pub price: Cents,
}

/// A partial update; `None` leaves a field alone, `Some(None)` clears the description.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProductPatch {
    pub name: Option<ProductName>,
    pub category: Option<Category>,
    pub description: Option<Option<Description>>,
    pub price: Option<Cents>,
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CatalogError {
    #[error("product {0} already exists")]
    Exists(Sku),
    #[error("product {0} not found")]
    NotFound(Sku),
    #[error("the cursor does not belong to this sort order")]
    CursorMismatch,
    #[error("stock would be above the maximum")]
    StockAboveMax,
    #[error(transparent)]
    Store(#[from] StoreError),
}

crate::store::lift_redb_errors!(CatalogError);

impl From<StockError> for CatalogError {
    fn from(e: StockError) -> Self {
        match e {
            StockError::Store(s) => CatalogError::Store(s),
            _ => CatalogError::StockAboveMax,
        }
    }
}

/// The product tables, open in one write transaction.
///
/// Changes to the listing indexes and category counts are buffered and applied by
/// [`CatalogTables::flush`] in key order, once per transaction: interleaved with
/// the product rows, index inserts land on random pages and a large import spent
/// most of its time evicting and re-reading them (6x slower, measured on 1M rows).
/// Buffering keeps only the net effect per key, so a product changed twice in one
/// transaction leaves exactly its final entries.
pub struct CatalogTables<'txn> {
    products: Table<'txn, &'static str, &'static [u8]>,
    by_price: Table<'txn, (u64, &'static str), ()>,
    by_name: Table<'txn, (&'static str, &'static str), ()>,
    categories: Table<'txn, &'static str, u64>,
    /// (price, sku) → present after this transaction?
    price_changes: BTreeMap<(u64, String), bool>,
    /// (lower-case name, sku) → present after this transaction?
    name_changes: BTreeMap<(String, String), bool>,
    category_changes: BTreeMap<String, i64>,
}

/// What an upsert did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upsert {
    Created,
    Updated,
    Unchanged,
}

impl<'txn> CatalogTables<'txn> {
    pub fn open(txn: &'txn WriteTransaction) -> Result<Self, StoreError> {
        Ok(Self {
            products: txn.open_table(PRODUCTS)?,
            by_price: txn.open_table(PRODUCTS_BY_PRICE)?,
            by_name: txn.open_table(PRODUCTS_BY_NAME)?,
            categories: txn.open_table(CATEGORIES)?,
            price_changes: BTreeMap::new(),
            name_changes: BTreeMap::new(),
            category_changes: BTreeMap::new(),
        })
    }

    /// Applies the buffered index and category changes. Must run before the
    /// transaction commits (the ledger and the catalog actor both do).
    pub fn flush(&mut self) -> Result<(), StoreError> {
        for ((price, sku), present) in std::mem::take(&mut self.price_changes) {
            if present {
                self.by_price.insert((price, sku.as_str()), ())?;
            } else {
                self.by_price.remove((price, sku.as_str()))?;
            }
        }
        for ((name, sku), present) in std::mem::take(&mut self.name_changes) {
            if present {
                self.by_name.insert((name.as_str(), sku.as_str()), ())?;
            } else {
                self.by_name.remove((name.as_str(), sku.as_str()))?;
            }
        }
        for (name, change) in std::mem::take(&mut self.category_changes) {
            let now = self.categories.get(name.as_str())?.map_or(0, |v| v.value());
            let next = now.saturating_add_signed(change);
            if next == 0 {
                self.categories.remove(name.as_str())?;
            } else {
                self.categories.insert(name.as_str(), next)?;
            }
        }
        Ok(())
    }

    pub fn get(&self, sku: &Sku) -> Result<Option<ProductRow>, StoreError> {
        match self.products.get(sku.as_str())? {
            Some(v) => Ok(Some(codec::decode(v.value())?)),
            None => Ok(None),
        }
    }

    /// Writes `row` for `sku`, keeping the listing indexes and category counts in
    /// step with whatever was there before.
    pub fn put(&mut self, sku: &Sku, row: &ProductRow) -> Result<(), StoreError> {
        let previous = self.get(sku)?;
        self.put_over(sku, row, previous.as_ref())
    }

    /// [`Self::put`] when the caller already read the previous row.
    fn put_over(
        &mut self,
        sku: &Sku,
        row: &ProductRow,
        previous: Option<&ProductRow>,
    ) -> Result<(), StoreError> {
        self.products
            .insert(sku.as_str(), codec::encode(row).as_slice())?;
        if let Some(prev) = previous.filter(|p| !p.archived) {
            self.price_changes
                .insert((prev.price.get(), sku.as_str().to_owned()), false);
            self.name_changes
                .insert((name_key(&prev.name), sku.as_str().to_owned()), false);
            *self
                .category_changes
                .entry(prev.category.as_str().to_owned())
                .or_default() -= 1;
        }
        if !row.archived {
            self.price_changes
                .insert((row.price.get(), sku.as_str().to_owned()), true);
            self.name_changes
                .insert((name_key(&row.name), sku.as_str().to_owned()), true);
            *self
                .category_changes
                .entry(row.category.as_str().to_owned())
                .or_default() += 1;
        }
        Ok(())
    }

    /// Creates or replaces the descriptive fields of `sku` (and un-archives it),
    /// leaving the row untouched when nothing changed.
    pub fn upsert(
        &mut self,
        sku: &Sku,
        draft: ProductDraft,
        at: Timestamp,
    ) -> Result<Upsert, StoreError> {
        let previous = self.get(sku)?;
        let row = ProductRow {
            name: draft.name,
            category: draft.category,
            description: draft.description,
            price: draft.price,
            archived: false,
            created_at: previous.as_ref().map_or(at, |p| p.created_at),
            updated_at: at,
        };
        let outcome = match &previous {
            None => Upsert::Created,
            Some(prev) if same_content(prev, &row) => return Ok(Upsert::Unchanged),
            Some(_) => Upsert::Updated,
        };
        self.put_over(sku, &row, previous.as_ref())?;
        Ok(outcome)
    }
}

fn same_content(a: &ProductRow, b: &ProductRow) -> bool {
    a.name == b.name
        && a.category == b.category
        && a.description == b.description
        && a.price == b.price
        && a.archived == b.archived
}

/// Listing by name sorts without regard to case.
fn name_key(name: &ProductName) -> String {
    name.as_str().to_lowercase()
}

/// How a product list is ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProductSort {
    #[default]
    Sku,
    PriceAsc,
    PriceDesc,
    Name,
}

/// Where the next page starts: the sort key of the last row the previous page saw.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ListCursor {
    Sku(String),
    Price(u64, String),
    Name(String, String),
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProductQuery {
    pub limit: usize,
    pub after: Option<ListCursor>,
    /// Lower-case category to match exactly, ignoring case.
    pub category: Option<String>,
    /// Lower-case text the lower-cased name must contain.
    pub name_contains: Option<String>,
    pub min_price: Option<u64>,
    pub max_price: Option<u64>,
    pub in_stock: bool,
    pub sort: ProductSort,
}

/// One page of a list and where the next one starts (`None`: this was the last).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T, C> {
    pub items: Vec<T>,
    pub next: Option<C>,
}

/// Reads one product with its stock from a read snapshot; archived ones are hidden.
pub fn read_product(txn: &ReadTransaction, sku: &Sku) -> Result<Option<Product>, StoreError> {
    let products = txn.open_table(PRODUCTS)?;
    let Some(bytes) = products.get(sku.as_str())? else {
        return Ok(None);
    };
    let row: ProductRow = codec::decode(bytes.value())?;
    if row.archived {
        return Ok(None);
    }
    let stock = txn
        .open_table(STOCK)?
        .get(sku.as_str())?
        .map_or(0, |v| v.value().0);
    Ok(Some(Product {
        sku: sku.clone(),
        row,
        stock,
    }))
}

/// Lists products: walks the index of the chosen sort from the cursor, filters, and
/// stops after `limit` matches or [`LIST_SCAN_ROWS_MAX`] rows scanned, whichever
/// comes first (a short page with a cursor means "keep going").
pub fn list_products(
    txn: &ReadTransaction,
    query: &ProductQuery,
) -> Result<Page<Product, ListCursor>, CatalogError> {
    let products = txn.open_table(PRODUCTS)?;
    let stock = txn.open_table(STOCK)?;
    let mut lister = Lister {
        query,
        stock: &stock,
        items: Vec::new(),
        scanned: 0,
    };
    let min = query.min_price.unwrap_or(0);
    let max = query.max_price.unwrap_or(u64::MAX);
    let outcome = match (query.sort, &query.after) {
        (ProductSort::Sku, after @ (None | Some(ListCursor::Sku(_)))) => {
            let lower = match after {
                Some(ListCursor::Sku(s)) => Bound::Excluded(s.as_str()),
                _ => Bound::Unbounded,
            };
            drive(
                products.range::<&str>((lower, Bound::Unbounded))?,
                |entry| {
                    let (k, v) = entry.map_err(StoreError::from)?;
                    let sku = k.value();
                    let row: ProductRow = codec::decode(v.value()).map_err(StoreError::from)?;
                    lister.offer(sku, Some(row), &products, || {
                        ListCursor::Sku(sku.to_owned())
                    })
                },
            )?
        }
        (
            ProductSort::PriceAsc | ProductSort::PriceDesc,
            after @ (None | Some(ListCursor::Price(..))),
        ) => {
            let by_price = txn.open_table(PRODUCTS_BY_PRICE)?;
            let floor = Bound::Included((min, ""));
            let ceiling = match max.checked_add(1) {
                Some(next) => Bound::Excluded((next, "")),
                None => Bound::Unbounded,
            };
            let cursor = match after {
                Some(ListCursor::Price(p, s)) => Some((*p, s.as_str())),
                _ => None,
            };
            let descending = query.sort == ProductSort::PriceDesc;
            let (lower, upper) = match (cursor, descending) {
                (Some(c), false) => (Bound::Excluded(c), ceiling),
                (Some(c), true) => (floor, Bound::Excluded(c)),
                (None, _) => (floor, ceiling),
            };
            let range = by_price.range::<(u64, &str)>((lower, upper))?;
            let visit = |entry: IndexEntry<'_, (u64, &'static str)>| -> Result<Scan, CatalogError> {
                let (k, _) = entry.map_err(StoreError::from)?;
                let (price, sku) = k.value();
                lister.offer(sku, None, &products, || {
                    ListCursor::Price(price, sku.to_owned())
                })
            };
            if descending {
                drive(range.rev(), visit)?
            } else {
                drive(range, visit)?
            }
        }
        (ProductSort::Name, after @ (None | Some(ListCursor::Name(..)))) => {
            let by_name = txn.open_table(PRODUCTS_BY_NAME)?;
            let lower = match after {
                Some(ListCursor::Name(n, s)) => Bound::Excluded((n.as_str(), s.as_str())),
                _ => Bound::Unbounded,
            };
            drive(
                by_name.range::<(&str, &str)>((lower, Bound::Unbounded))?,
                |entry| {
                    let (k, _) = entry.map_err(StoreError::from)?;
                    let (name, sku) = k.value();
                    lister.offer(sku, None, &products, || {
                        ListCursor::Name(name.to_owned(), sku.to_owned())
                    })
                },
            )?
        }
        _ => return Err(CatalogError::CursorMismatch),
    };
    let next = match outcome {
        Scan::Exhausted | Scan::More => None,
        Scan::Stopped(cursor) => Some(cursor),
    };
    Ok(Page {
        items: lister.items,
        next,
    })
}

type IndexEntry<'a, K> =
    Result<(redb::AccessGuard<'a, K>, redb::AccessGuard<'a, ()>), redb::StorageError>;

/// Feeds index entries to `visit` until it says stop.
fn drive<T>(
    entries: impl Iterator<Item = T>,
    mut visit: impl FnMut(T) -> Result<Scan, CatalogError>,
) -> Result<Scan, CatalogError> {
    for entry in entries {
        let outcome = visit(entry)?;
        if outcome != Scan::More {
            return Ok(outcome);
        }
    }
    Ok(Scan::Exhausted)
}

#[derive(Debug, PartialEq, Eq)]
enum Scan {
    More,
    Exhausted,
    Stopped(ListCursor),
}

struct Lister<'a, S> {
    query: &'a ProductQuery,
    stock: &'a S,
    items: Vec<Product>,
    scanned: usize,
}

impl<S: ReadableTable<&'static str, (u64, u64)>> Lister<'_, S> {
    /// Considers one index entry. Returns `Stopped(cursor)` when the page is full and
    /// another match exists (the cursor points at the last item kept), or when the
    /// scan bound is reached (the cursor points at the last row scanned).
    fn offer(
        &mut self,
        sku: &str,
        row: Option<ProductRow>,
        products: &impl ReadableTable<&'static str, &'static [u8]>,
        cursor_here: impl FnOnce() -> ListCursor,
    ) -> Result<Scan, CatalogError> {
        self.scanned += 1;
        let row = match row {
            Some(row) => row,
            None => match products.get(sku).map_err(StoreError::from)? {
                Some(v) => codec::decode(v.value()).map_err(StoreError::from)?,
                None => return Ok(Scan::More),
            },
        };
        if let Some(product) = self.matches(sku, row)? {
            if self.items.len() == self.query.limit {
                let last = self.items.last().expect("limit is at least 1");
                return Ok(Scan::Stopped(cursor_of(self.query.sort, last)));
            }
            self.items.push(product);
        }
        if self.scanned >= LIST_SCAN_ROWS_MAX {
            return Ok(Scan::Stopped(cursor_here()));
        }
        Ok(Scan::More)
    }

    fn matches(&self, sku: &str, row: ProductRow) -> Result<Option<Product>, CatalogError> {
        let q = self.query;
        if row.archived
            || q.min_price.is_some_and(|m| row.price.get() < m)
            || q.max_price.is_some_and(|m| row.price.get() > m)
            || q.category
                .as_deref()
                .is_some_and(|c| row.category.as_str().to_lowercase() != c)
            || q.name_contains
                .as_deref()
                .is_some_and(|t| !row.name.as_str().to_lowercase().contains(t))
        {
            return Ok(None);
        }
        let stock = self
            .stock
            .get(sku)
            .map_err(StoreError::from)?
            .map_or(0, |v| v.value().0);
        if q.in_stock && stock == 0 {
            return Ok(None);
        }
        let sku = Sku::parse(sku)
            .map_err(|_| StoreError::Corrupt(format!("stored SKU {sku:?} is not a valid SKU")))?;
        Ok(Some(Product { sku, row, stock }))
    }
}

fn cursor_of(sort: ProductSort, p: &Product) -> ListCursor {
    let sku = p.sku.as_str().to_owned();
    match sort {
        ProductSort::Sku => ListCursor::Sku(sku),
        ProductSort::PriceAsc | ProductSort::PriceDesc => ListCursor::Price(p.row.price.get(), sku),
        ProductSort::Name => ListCursor::Name(name_key(&p.row.name), sku),
    }
}

// ---------------------------------------------------------------------------------
// The actor
// ---------------------------------------------------------------------------------

/// Owns product rows written through the API and serves every catalog read.
pub struct Catalog {
    store: Store,
}

impl Catalog {
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    fn write<T>(
        &self,
        f: impl FnOnce(&mut CatalogTables<'_>, &mut Book<'_>) -> Result<T, CatalogError>,
    ) -> Result<T, CatalogError> {
        let txn = self.store.db().begin_write().map_err(StoreError::from)?;
        let out = {
            let mut catalog = CatalogTables::open(&txn)?;
            let mut book = Book::open(&txn)?;
            let out = f(&mut catalog, &mut book)?;
            catalog.flush()?;
            out
        };
        txn.commit().map_err(StoreError::from)?;
        Ok(out)
    }

    fn read(&self) -> Result<ReadTransaction, StoreError> {
        Ok(self.store.db().begin_read()?)
    }
}

impl Actor for Catalog {
    type Context = Context<Self>;
}

/// Fetch one active product with its stock.
#[derive(Debug, Message)]
#[rtype(result = "Result<Option<Product>, StoreError>")]
pub struct GetProduct {
    /// The product's SKU.
    pub sku: Sku,
}

impl Handler<GetProduct> for Catalog {
    type Result = Result<Option<Product>, StoreError>;
    fn handle(&mut self, msg: GetProduct, _: &mut Self::Context) -> Self::Result {
        read_product(&self.read()?, &msg.sku)
    }
}

/// List active products, filtered, sorted and paginated.
#[derive(Debug, Message)]
#[rtype(result = "Result<Page<Product, ListCursor>, CatalogError>")]
pub struct ListProducts {
    /// Filters, sort, page size and cursor, already validated.
    pub query: ProductQuery,
}

impl Handler<ListProducts> for Catalog {
    type Result = Result<Page<Product, ListCursor>, CatalogError>;
    fn handle(&mut self, msg: ListProducts, _: &mut Self::Context) -> Self::Result {
        list_products(&self.read()?, &msg.query)
    }
}

/// Categories that have active products, with their count, by name, a page at a
/// time.
#[derive(Debug, Message)]
#[rtype(result = "Result<Page<(String, u64), String>, StoreError>")]
pub struct ListCategories {
    /// Continue after this category (the previous page's cursor).
    pub after: Option<String>,
    /// Page size, already bounded.
    pub limit: usize,
}

impl Handler<ListCategories> for Catalog {
    type Result = Result<Page<(String, u64), String>, StoreError>;
    fn handle(&mut self, msg: ListCategories, _: &mut Self::Context) -> Self::Result {
        let txn = self.read()?;
        let table = txn.open_table(CATEGORIES)?;
        let lower = match &msg.after {
            Some(a) => Bound::Excluded(a.as_str()),
            None => Bound::Unbounded,
        };
        let mut items = Vec::with_capacity(msg.limit);
        let mut more = false;
        for entry in table.range::<&str>((lower, Bound::Unbounded))? {
            let (k, v) = entry?;
            if items.len() == msg.limit {
                more = true;
                break;
            }
            items.push((k.value().to_owned(), v.value()));
        }
        let next = if more {
            items.last().map(|(name, _)| name.clone())
        } else {
            None
        };
        Ok(Page { items, next })
    }
}

/// Create a product; 409 when the SKU exists (archived ones included).
#[derive(Debug, Message)]
#[rtype(result = "Result<Product, CatalogError>")]
pub struct CreateProduct {
    /// The new SKU.
    pub sku: Sku,
    /// Its descriptive fields.
    pub draft: ProductDraft,
    /// Initial stock, recorded as a `receipt` movement in the same transaction.
    pub stock: Option<StockLevel>,
}

impl Handler<CreateProduct> for Catalog {
    type Result = Result<Product, CatalogError>;
    fn handle(&mut self, msg: CreateProduct, _: &mut Self::Context) -> Self::Result {
        let at = Timestamp::now();
        self.write(|catalog, book| {
            if catalog.get(&msg.sku)?.is_some() {
                return Err(CatalogError::Exists(msg.sku.clone()));
            }
            catalog.upsert(&msg.sku, msg.draft, at)?;
            if let Some(level) = msg.stock {
                book.set_level(&msg.sku, level, MovementKind::Receipt, Source::Api, at)?;
            }
            let row = catalog.get(&msg.sku)?.expect("just written");
            let stock = book.level(&msg.sku)?.0;
            Ok(Product {
                sku: msg.sku,
                row,
                stock,
            })
        })
    }
}

/// Create or replace a product (un-archiving it); `created` tells which.
#[derive(Debug, Message)]
#[rtype(result = "Result<(Product, bool), CatalogError>")]
pub struct ReplaceProduct {
    /// The SKU to create or replace.
    pub sku: Sku,
    /// Its descriptive fields, replacing the old ones entirely.
    pub draft: ProductDraft,
    /// Absolute stock level; reached through one `adjustment` movement.
    pub stock: Option<StockLevel>,
}

impl Handler<ReplaceProduct> for Catalog {
    type Result = Result<(Product, bool), CatalogError>;
    fn handle(&mut self, msg: ReplaceProduct, _: &mut Self::Context) -> Self::Result {
        let at = Timestamp::now();
        self.write(|catalog, book| {
            let outcome = catalog.upsert(&msg.sku, msg.draft, at)?;
            if let Some(level) = msg.stock {
                let kind = if outcome == Upsert::Created {
                    MovementKind::Receipt
                } else {
                    MovementKind::Adjustment
                };
                book.set_level(&msg.sku, level, kind, Source::Api, at)?;
            }
            let row = catalog.get(&msg.sku)?.expect("just written");
            let stock = book.level(&msg.sku)?.0;
            Ok((
                Product {
                    sku: msg.sku,
                    row,
                    stock,
                },
                outcome == Upsert::Created,
            ))
        })
    }
}

/// Change some fields of an active product.
#[derive(Debug, Message)]
#[rtype(result = "Result<Product, CatalogError>")]
pub struct PatchProduct {
    /// The product's SKU.
    pub sku: Sku,
    /// The fields to change.
    pub patch: ProductPatch,
}

impl Handler<PatchProduct> for Catalog {
    type Result = Result<Product, CatalogError>;
    fn handle(&mut self, msg: PatchProduct, _: &mut Self::Context) -> Self::Result {
        let at = Timestamp::now();
        self.write(|catalog, book| {
            let mut row = catalog
                .get(&msg.sku)?
                .filter(|r| !r.archived)
                .ok_or_else(|| CatalogError::NotFound(msg.sku.clone()))?;
            let p = msg.patch;
            if let Some(name) = p.name {
                row.name = name;
            }
            if let Some(category) = p.category {
                row.category = category;
            }
            if let Some(description) = p.description {
                row.description = description;
            }
            if let Some(price) = p.price {
                row.price = price;
            }
            // A patch that changes nothing writes nothing (and keeps `updated_at`).
            let before = catalog.get(&msg.sku)?.expect("read above");
            if !same_content(&before, &row) {
                row.updated_at = at;
                catalog.put(&msg.sku, &row)?;
            }
            let stock = book.level(&msg.sku)?.0;
            Ok(Product {
                sku: msg.sku,
                row,
                stock,
            })
        })
    }
}

/// Archive a product: it disappears from the catalog; orders keep their lines and
/// the ledger keeps its stock history.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), CatalogError>")]
pub struct ArchiveProduct {
    /// The product's SKU.
    pub sku: Sku,
}

impl Handler<ArchiveProduct> for Catalog {
    type Result = Result<(), CatalogError>;
    fn handle(&mut self, msg: ArchiveProduct, _: &mut Self::Context) -> Self::Result {
        let at = Timestamp::now();
        self.write(|catalog, _| {
            let mut row = catalog
                .get(&msg.sku)?
                .filter(|r| !r.archived)
                .ok_or_else(|| CatalogError::NotFound(msg.sku.clone()))?;
            row.archived = true;
            row.updated_at = at;
            Ok(catalog.put(&msg.sku, &row)?)
        })?;
        Ok(())
    }
}

/// Readiness probe: answers once the actor runs and the database reads.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), StoreError>")]
pub struct Ping;

impl Handler<Ping> for Catalog {
    type Result = Result<(), StoreError>;
    fn handle(&mut self, _: Ping, _: &mut Self::Context) -> Self::Result {
        self.store.check_readable()
    }
}

/// Stop the actor (at shutdown), releasing its handle on the store.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Stop;

impl Handler<Stop> for Catalog {
    type Result = ();
    fn handle(&mut self, _: Stop, ctx: &mut Self::Context) {
        actix::ActorContext::stop(ctx);
        actix::Arbiter::current().stop();
    }
}
