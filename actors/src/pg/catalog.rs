//! Catalog reads on PostgreSQL: the messages of [`crate::catalog::actor`], answered
//! from the `products` and `stock` tables.
//!
//! A list is one statement: the filters as `WHERE`, the sort as a keyset over the
//! partial indexes `(price_cents, sku)` and `(name_key, sku)`, `limit + 1` rows to
//! know whether another page exists. Its cursors are the redb backend's, so a client
//! pages the same way on either; text compares bytewise (`COLLATE "C"`) as redb's
//! keys do, so the orders are the same too.

use actix::{Actor, Context, Handler, ResponseFuture};
use tokio_postgres::types::ToSql;

use super::schema::options_column;
use super::staged::{int, uint};
use super::{Pool, client};
use crate::catalog::query::cursor_of;
use crate::catalog::{
    CatalogError, CategoryNode, GetGroup, GetProduct, GetProducts, Group, ListCategories,
    ListCursor, ListProducts, Product, ProductQuery, ProductRow, ProductSort, ScanProducts,
    Scanned,
};
use crate::common::{Page, StoreError, codec};
use crate::domain::Sku;

/// The catalog's readers of one node on PostgreSQL.
pub struct PgCatalog {
    pool: Pool,
}

impl PgCatalog {
    pub fn new(pool: Pool) -> Self {
        Self { pool }
    }
}

impl Actor for PgCatalog {
    type Context = Context<Self>;
}

fn product_of(sku: &str, record: &[u8], units: i64) -> Result<Product, StoreError> {
    let row: ProductRow = codec::decode(record)?;
    let sku = Sku::parse(sku)
        .map_err(|_| StoreError::Corrupt(format!("stored SKU {sku:?} is not a valid SKU")))?;
    Ok(Product {
        sku,
        row,
        stock: uint(units)?,
    })
}

impl Handler<GetProduct> for PgCatalog {
    type Result = ResponseFuture<Result<Option<Product>, StoreError>>;
    fn handle(&mut self, msg: GetProduct, _: &mut Self::Context) -> Self::Result {
        let pool = self.pool.clone();
        Box::pin(async move {
            let db = client(&pool).await?;
            let row = db
                .query_opt(
                    "SELECT p.sku, p.record, coalesce(s.units, 0) FROM products p \
                     LEFT JOIN stock s ON s.sku = p.sku WHERE p.sku = $1 AND NOT p.archived",
                    &[&msg.sku.as_str()],
                )
                .await?;
            row.map(|r| product_of(r.get(0), r.get(1), r.get(2)))
                .transpose()
        })
    }
}

impl Handler<GetGroup> for PgCatalog {
    type Result = ResponseFuture<Result<Option<Group>, StoreError>>;
    fn handle(&mut self, msg: GetGroup, _: &mut Self::Context) -> Self::Result {
        let pool = self.pool.clone();
        Box::pin(async move {
            let db = client(&pool).await?;
            let rows = db
                .query(
                    "SELECT p.sku, p.record, coalesce(s.units, 0) FROM products p \
                     LEFT JOIN stock s ON s.sku = p.sku \
                     WHERE p.group_handle = $1 AND NOT p.archived ORDER BY p.sku",
                    &[&msg.handle.as_str()],
                )
                .await?;
            let variants = rows
                .iter()
                .map(|r| product_of(r.get(0), r.get(1), r.get(2)))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Group::of(msg.handle, variants))
        })
    }
}

impl Handler<ScanProducts> for PgCatalog {
    type Result = ResponseFuture<Result<Scanned, StoreError>>;
    fn handle(&mut self, msg: ScanProducts, _: &mut Self::Context) -> Self::Result {
        let pool = self.pool.clone();
        Box::pin(async move {
            let db = client(&pool).await?;
            let after = msg.after.as_ref().map(Sku::as_str);
            let limit = int(msg.limit as u64)?;
            let rows = db
                .query(
                    "SELECT p.sku, p.record, coalesce(s.units, 0), p.archived FROM products p \
                     LEFT JOIN stock s ON s.sku = p.sku \
                     WHERE $1::text IS NULL OR p.sku > $1 ORDER BY p.sku LIMIT $2",
                    &[&after, &limit],
                )
                .await?;
            let mut scanned = Scanned::default();
            for r in &rows {
                let product = product_of(r.get(0), r.get(1), r.get(2))?;
                scanned.last = Some(product.sku.clone());
                if !r.get::<_, bool>(3) {
                    scanned.products.push(product);
                }
            }
            Ok(scanned)
        })
    }
}

impl Handler<GetProducts> for PgCatalog {
    type Result = ResponseFuture<Result<Vec<Product>, StoreError>>;
    fn handle(&mut self, msg: GetProducts, _: &mut Self::Context) -> Self::Result {
        let pool = self.pool.clone();
        Box::pin(async move {
            let db = client(&pool).await?;
            let skus: Vec<&str> = msg.skus.iter().map(Sku::as_str).collect();
            let rows = db
                .query(
                    "SELECT p.sku, p.record, coalesce(s.units, 0) FROM products p \
                     LEFT JOIN stock s ON s.sku = p.sku \
                     WHERE p.sku = ANY($1) AND NOT p.archived",
                    &[&skus],
                )
                .await?;
            rows.iter()
                .map(|r| product_of(r.get(0), r.get(1), r.get(2)))
                .collect()
        })
    }
}

/// A statement under construction: its text and its parameters, numbered as added.
#[derive(Default)]
struct Sql {
    text: String,
    params: Vec<Box<dyn ToSql + Sync + Send>>,
}

impl Sql {
    /// Adds a parameter and answers its placeholder.
    fn param(&mut self, value: impl ToSql + Sync + Send + 'static) -> String {
        self.params.push(Box::new(value));
        format!("${}", self.params.len())
    }
}

/// The statement listing `query`'s page (one row more than the page, to tell
/// whether another follows).
fn list_statement(query: &ProductQuery) -> Result<Sql, CatalogError> {
    let mut sql = Sql::default();
    let mut conditions = vec!["NOT p.archived".to_owned()];
    if let Some(min) = query.min_price {
        let p = sql.param(int(min)?);
        conditions.push(format!("p.price_cents >= {p}"));
    }
    if let Some(max) = query.max_price {
        // Any stored price is at most i64::MAX.
        let p = sql.param(int(max).unwrap_or(i64::MAX));
        conditions.push(format!("p.price_cents <= {p}"));
    }
    if let Some(category) = &query.category {
        let p = sql.param(category.clone());
        // The category and everything below it (`Category::is_within`).
        conditions.push(format!(
            "(p.category_key = {p} OR starts_with(p.category_key, {p} || ' > '))"
        ));
    }
    if let Some(text) = &query.name_contains {
        let p = sql.param(text.clone());
        conditions.push(format!("strpos(p.name_key, {p}) > 0"));
    }
    if let Some(group) = &query.group {
        let p = sql.param(group.as_str().to_owned());
        conditions.push(format!("p.group_handle = {p}"));
    }
    if !query.options.is_empty() {
        let p = sql.param(options_column(&query.options));
        conditions.push(format!("p.options @> ({p}::text)::jsonb"));
    }
    if query.in_stock {
        conditions.push("coalesce(s.units, 0) > 0".to_owned());
    }
    if let Some(max) = query.max_stock {
        let p = sql.param(int(max).unwrap_or(i64::MAX));
        conditions.push(format!("coalesce(s.units, 0) <= {p}"));
    }
    let order = match (query.sort, &query.after) {
        (ProductSort::Sku, None | Some(ListCursor::Sku(_))) => {
            if let Some(ListCursor::Sku(after)) = &query.after {
                let p = sql.param(after.clone());
                conditions.push(format!("p.sku > {p}"));
            }
            "p.sku"
        }
        (ProductSort::PriceAsc, None | Some(ListCursor::Price(..))) => {
            if let Some(ListCursor::Price(price, sku)) = &query.after {
                let (a, b) = (sql.param(int(*price)?), sql.param(sku.clone()));
                conditions.push(format!("(p.price_cents, p.sku) > ({a}, {b})"));
            }
            "p.price_cents, p.sku"
        }
        (ProductSort::PriceDesc, None | Some(ListCursor::Price(..))) => {
            if let Some(ListCursor::Price(price, sku)) = &query.after {
                let (a, b) = (sql.param(int(*price)?), sql.param(sku.clone()));
                conditions.push(format!("(p.price_cents, p.sku) < ({a}, {b})"));
            }
            "p.price_cents DESC, p.sku DESC"
        }
        (ProductSort::Name, None | Some(ListCursor::Name(..))) => {
            if let Some(ListCursor::Name(name, sku)) = &query.after {
                let (a, b) = (sql.param(name.clone()), sql.param(sku.clone()));
                conditions.push(format!("(p.name_key, p.sku) > ({a}, {b})"));
            }
            "p.name_key, p.sku"
        }
        _ => return Err(CatalogError::CursorMismatch),
    };
    let limit = sql.param(int(query.limit as u64 + 1)?);
    sql.text = format!(
        "SELECT p.sku, p.record, coalesce(s.units, 0) FROM products p \
         LEFT JOIN stock s ON s.sku = p.sku WHERE {} ORDER BY {order} LIMIT {limit}",
        conditions.join(" AND ")
    );
    Ok(sql)
}

impl Handler<ListProducts> for PgCatalog {
    type Result = ResponseFuture<Result<Page<Product, ListCursor>, CatalogError>>;
    fn handle(&mut self, msg: ListProducts, _: &mut Self::Context) -> Self::Result {
        let pool = self.pool.clone();
        Box::pin(async move {
            let query = msg.query;
            let sql = list_statement(&query)?;
            let params: Vec<&(dyn ToSql + Sync)> = sql
                .params
                .iter()
                .map(|p| &**p as &(dyn ToSql + Sync))
                .collect();
            let db = client(&pool).await?;
            let rows = db
                .query(sql.text.as_str(), &params)
                .await
                .map_err(StoreError::from)?;
            let mut items = rows
                .iter()
                .map(|r| product_of(r.get(0), r.get(1), r.get(2)))
                .collect::<Result<Vec<_>, _>>()?;
            let next = if items.len() > query.limit {
                items.truncate(query.limit);
                items.last().map(|last| cursor_of(query.sort, last))
            } else {
                None
            };
            Ok(Page { items, next })
        })
    }
}

impl Handler<ListCategories> for PgCatalog {
    type Result = ResponseFuture<Result<Page<CategoryNode, String>, StoreError>>;
    fn handle(&mut self, msg: ListCategories, _: &mut Self::Context) -> Self::Result {
        let pool = self.pool.clone();
        Box::pin(async move {
            let db = client(&pool).await?;
            let rows = db
                .query(
                    "SELECT category, count(*) FROM products WHERE NOT archived \
                     GROUP BY category",
                    &[],
                )
                .await?;
            let counts = rows
                .iter()
                .map(|r| Ok((r.get::<_, String>(0), uint(r.get(1))?)))
                .collect::<Result<Vec<_>, StoreError>>()?;
            Ok(msg.page_of(counts))
        })
    }
}

super::ping_and_stop!(PgCatalog);
