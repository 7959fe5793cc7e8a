//! Catalog reads on a read snapshot: one product, lists, categories.

use std::ops::Bound;

use redb::{ReadTransaction, ReadableTable};

use super::{CatalogError, ListCursor, Product, ProductQuery, ProductRow, ProductSort};
use crate::common::{Page, StoreError, codec};
use crate::domain::Sku;
use crate::limits::LIST_SCAN_ROWS_MAX;
use crate::store::listing::{self, Direction, Index, ListingScan, ListingTables};
use crate::store::tables::{CATEGORIES, PRODUCTS, STOCK};

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
                    lister.offer(
                        sku,
                        Some(row),
                        |_| true,
                        &products,
                        || ListCursor::Sku(sku.to_owned()),
                    )
                },
            )?
        }
        (
            ProductSort::PriceAsc | ProductSort::PriceDesc,
            after @ (None | Some(ListCursor::Price(..))),
        ) => by_price(txn, &products, &mut lister, after.as_ref())?,
        (ProductSort::Name, after @ (None | Some(ListCursor::Name(..)))) => {
            let listings = ListingTables::open(txn)?;
            let cursor = match after {
                Some(ListCursor::Name(n, s)) => Some(listing::name_key(n, s)),
                _ => None,
            };
            let lower = match &cursor {
                Some(c) => Bound::Excluded(c.as_slice()),
                None => Bound::Unbounded,
            };
            let mut scan =
                listings.scan(Index::Name, lower, Bound::Unbounded, Direction::Ascending)?;
            walk(&mut scan, |key, present| {
                let (name, sku) = listing::split_name(key)?;
                let here = || ListCursor::Name(name.to_owned(), sku.to_owned());
                if !present {
                    return Ok(lister.pass(here));
                }
                lister.offer(sku, None, |row| row.name.key() == name, &products, here)
            })?
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

/// A page in price order (either way), between the query's price bounds.
fn by_price<S: ReadableTable<&'static str, (u64, u64)>>(
    txn: &ReadTransaction,
    products: &impl ReadableTable<&'static str, &'static [u8]>,
    lister: &mut Lister<'_, S>,
    after: Option<&ListCursor>,
) -> Result<Scan, CatalogError> {
    let query = lister.query;
    let min = query.min_price.unwrap_or(0);
    let max = query.max_price.unwrap_or(u64::MAX);
    let listings = ListingTables::open(txn)?;
    let floor = listing::price_key(min, "");
    let ceiling = max.checked_add(1).map(|next| listing::price_key(next, ""));
    let cursor = match after {
        Some(ListCursor::Price(p, s)) => Some(listing::price_key(*p, s)),
        _ => None,
    };
    let ceiling = match &ceiling {
        Some(c) => Bound::Excluded(c.as_slice()),
        None => Bound::Unbounded,
    };
    let direction = match query.sort {
        ProductSort::PriceDesc => Direction::Descending,
        _ => Direction::Ascending,
    };
    let floor = Bound::Included(floor.as_slice());
    let (lower, upper) = match (&cursor, direction) {
        (Some(c), Direction::Ascending) => (Bound::Excluded(c.as_slice()), ceiling),
        (Some(c), Direction::Descending) => (floor, Bound::Excluded(c.as_slice())),
        (None, _) => (floor, ceiling),
    };
    let mut scan = listings.scan(Index::Price, lower, upper, direction)?;
    walk(&mut scan, |key, present| {
        let (price, sku) = listing::split_price(key)?;
        let here = || ListCursor::Price(price, sku.to_owned());
        if !present {
            return Ok(lister.pass(here));
        }
        lister.offer(sku, None, |row| row.price.get() == price, products, here)
    })
}

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

/// Feeds a listing's keys to `visit` until it says stop.
fn walk(
    scan: &mut ListingScan<'_>,
    mut visit: impl FnMut(&[u8], bool) -> Result<Scan, CatalogError>,
) -> Result<Scan, CatalogError> {
    while let Some((key, present)) = scan.next_key()? {
        let outcome = visit(key, present)?;
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
    /// Counts a listing key that shows nothing (a removal not yet merged away),
    /// stopping at the scan bound like [`Self::offer`].
    fn pass(&mut self, cursor_here: impl FnOnce() -> ListCursor) -> Scan {
        self.scanned += 1;
        if self.scanned >= LIST_SCAN_ROWS_MAX {
            return Scan::Stopped(cursor_here());
        }
        Scan::More
    }

    /// Considers one index entry. Returns `Stopped(cursor)` when the page is full and
    /// another match exists (the cursor points at the last item kept), or when the
    /// scan bound is reached (the cursor points at the last row scanned). A row
    /// that does not `fit` the entry (its price or name is another now) is not
    /// shown: the entry is stale, which the listing's removals rule out, so this is
    /// a second line of defence.
    fn offer(
        &mut self,
        sku: &str,
        row: Option<ProductRow>,
        fits: impl FnOnce(&ProductRow) -> bool,
        products: &impl ReadableTable<&'static str, &'static [u8]>,
        cursor_here: impl FnOnce() -> ListCursor,
    ) -> Result<Scan, CatalogError> {
        let row = match row {
            Some(row) => row,
            None => match products.get(sku).map_err(StoreError::from)? {
                Some(v) => codec::decode(v.value()).map_err(StoreError::from)?,
                None => return Ok(self.pass(cursor_here)),
            },
        };
        if !fits(&row) {
            return Ok(self.pass(cursor_here));
        }
        self.scanned += 1;
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
                .is_some_and(|c| !row.category.is_within(c))
            || q.group
                .as_ref()
                .is_some_and(|g| row.attributes.group.as_ref() != Some(g))
            || !has_options(&row, &q.options)
            || q.name_contains
                .as_deref()
                .is_some_and(|t| !row.name.key().contains(t))
        {
            return Ok(None);
        }
        let stock = self
            .stock
            .get(sku)
            .map_err(StoreError::from)?
            .map_or(0, |v| v.value().0);
        if q.in_stock && stock == 0 || q.max_stock.is_some_and(|max| stock > max) {
            return Ok(None);
        }
        let sku = Sku::parse(sku)
            .map_err(|_| StoreError::Corrupt(format!("stored SKU {sku:?} is not a valid SKU")))?;
        Ok(Some(Product { sku, row, stock }))
    }
}

/// Whether `row` has every one of `wanted` (folded name and value pairs).
fn has_options(row: &ProductRow, wanted: &[(String, String)]) -> bool {
    if wanted.is_empty() {
        return true;
    }
    let have = row.attributes.options.values_key();
    wanted.iter().all(|pair| have.contains(pair))
}

pub(crate) fn cursor_of(sort: ProductSort, p: &Product) -> ListCursor {
    let sku = p.sku.as_str().to_owned();
    match sort {
        ProductSort::Sku => ListCursor::Sku(sku),
        ProductSort::PriceAsc | ProductSort::PriceDesc => ListCursor::Price(p.row.price.get(), sku),
        ProductSort::Name => ListCursor::Name(p.row.name.key(), sku),
    }
}

/// Every category path with active products, with their count (exactly that
/// path, not below it), by path.
pub fn category_counts(txn: &ReadTransaction) -> Result<Vec<(String, u64)>, StoreError> {
    let table = txn.open_table(CATEGORIES)?;
    table
        .iter()?
        .map(|entry| {
            let (k, v) = entry?;
            Ok((k.value().to_owned(), v.value()))
        })
        .collect()
}

/// Up to `limit` product rows after `after` in SKU order, the active ones with
/// their stock, and the last SKU read (`None` at the end of the table).
pub fn scan_products(
    txn: &ReadTransaction,
    after: Option<&Sku>,
    limit: usize,
) -> Result<Scanned, StoreError> {
    let products = txn.open_table(PRODUCTS)?;
    let stock = txn.open_table(STOCK)?;
    let from = after.map_or(Bound::Unbounded, |s| Bound::Excluded(s.as_str()));
    let mut scanned = Scanned::default();
    for entry in products
        .range::<&str>((from, Bound::Unbounded))?
        .take(limit)
    {
        let (key, bytes) = entry?;
        let sku = stored_sku(key.value())?;
        let row: ProductRow = codec::decode(bytes.value())?;
        if !row.archived {
            let units = stock.get(sku.as_str())?.map_or(0, |v| v.value().0);
            scanned.products.push(Product {
                sku: sku.clone(),
                row,
                stock: units,
            });
        }
        scanned.last = Some(sku);
    }
    Ok(scanned)
}

/// The active products among `skus`, with their stock, from one snapshot.
pub fn read_products(txn: &ReadTransaction, skus: &[Sku]) -> Result<Vec<Product>, StoreError> {
    let mut out = Vec::with_capacity(skus.len());
    for sku in skus {
        out.extend(read_product(txn, sku)?);
    }
    Ok(out)
}

/// A page of a scan of every product row (see [`scan_products`]).
#[derive(Debug, Default)]
pub struct Scanned {
    /// The active products of the page.
    pub products: Vec<Product>,
    /// The last SKU read, active or not; `None` when nothing was left to read.
    pub last: Option<Sku>,
}

fn stored_sku(key: &str) -> Result<Sku, StoreError> {
    Sku::parse(key)
        .map_err(|_| StoreError::Corrupt(format!("stored SKU {key:?} is not a valid SKU")))
}
