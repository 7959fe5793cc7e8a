//! The catalog actor: serves every catalog read, from a pool of threads.
//!
//! It runs as a pool (see [`crate::mailbox::start_pool`]): reads run in parallel on
//! threads of their own, never on the HTTP workers. It writes nothing; product
//! writes are ledger commands.

use actix::{Actor, Context, Handler, Message};
use redb::{ReadTransaction, ReadableDatabase};

use super::groups::{GetGroup, Group};
use super::query::Scanned;
use super::tables::members_of;
use super::tree::{CategoryNode, CategoryTree};
use super::{CatalogError, ListCursor, Product, ProductQuery};
use crate::common::{Page, StoreError};
use crate::domain::Sku;
use crate::mailbox::{Ping, Stop};
use crate::store::Store;
use crate::store::tables::GROUP_MEMBERS;

/// Serves every catalog read.
pub struct Catalog {
    store: Store,
}

impl Catalog {
    pub fn new(store: Store) -> Self {
        Self { store }
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
        super::query::read_product(&self.read()?, &msg.sku)
    }
}

/// A page of every product row in SKU order, the active ones with their stock:
/// what the search index is built from.
#[derive(Debug, Message)]
#[rtype(result = "Result<Scanned, StoreError>")]
pub struct ScanProducts {
    /// Start after this SKU (`None`: from the first).
    pub after: Option<Sku>,
    /// Rows to read at most (archived ones count).
    pub limit: usize,
}

impl Handler<ScanProducts> for Catalog {
    type Result = Result<Scanned, StoreError>;
    fn handle(&mut self, msg: ScanProducts, _: &mut Self::Context) -> Self::Result {
        super::query::scan_products(&self.read()?, msg.after.as_ref(), msg.limit)
    }
}

/// The active products among some SKUs, with their stock, as one snapshot has
/// them (missing and archived ones left out): what the search index refreshes.
#[derive(Debug, Message)]
#[rtype(result = "Result<Vec<Product>, StoreError>")]
pub struct GetProducts {
    pub skus: Vec<Sku>,
}

impl Handler<GetProducts> for Catalog {
    type Result = Result<Vec<Product>, StoreError>;
    fn handle(&mut self, msg: GetProducts, _: &mut Self::Context) -> Self::Result {
        super::query::read_products(&self.read()?, &msg.skus)
    }
}

impl Handler<GetGroup> for Catalog {
    type Result = Result<Option<Group>, StoreError>;
    fn handle(&mut self, msg: GetGroup, _: &mut Self::Context) -> Self::Result {
        let txn = self.read()?;
        let members = members_of(&txn.open_table(GROUP_MEMBERS)?, &msg.handle)?;
        let mut variants = Vec::with_capacity(members.len());
        for sku in &members {
            variants.extend(super::query::read_product(&txn, sku)?);
        }
        Ok(Group::of(msg.handle, variants))
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
        super::query::list_products(&self.read()?, &msg.query)
    }
}

/// The category tree's nodes that have active products below them, with their
/// subtree counts, depth first (`CategoryTree`), a page at a time.
#[derive(Debug, Message)]
#[rtype(result = "Result<Page<CategoryNode, String>, StoreError>")]
pub struct ListCategories {
    /// Only the children of this path (compared case-insensitively).
    pub parent: Option<String>,
    /// Continue after this node (the previous page's cursor).
    pub after: Option<String>,
    /// Page size, already bounded.
    pub limit: usize,
}

impl ListCategories {
    /// This page of the tree of `counts` (stored path → active products).
    pub fn page_of(
        &self,
        counts: impl IntoIterator<Item = (String, u64)>,
    ) -> Page<CategoryNode, String> {
        CategoryTree::from_counts(counts).page(
            self.parent.as_deref(),
            self.after.as_deref(),
            self.limit,
        )
    }
}

impl Handler<ListCategories> for Catalog {
    type Result = Result<Page<CategoryNode, String>, StoreError>;
    fn handle(&mut self, msg: ListCategories, _: &mut Self::Context) -> Self::Result {
        let counts = super::query::category_counts(&self.read()?)?;
        Ok(msg.page_of(counts))
    }
}

impl Handler<Ping> for Catalog {
    type Result = Result<(), StoreError>;
    fn handle(&mut self, _: Ping, _: &mut Self::Context) -> Self::Result {
        self.store.check_readable()
    }
}

impl Handler<Stop> for Catalog {
    type Result = ();
    fn handle(&mut self, _: Stop, ctx: &mut Self::Context) {
        actix::ActorContext::stop(ctx);
        actix::Arbiter::current().stop();
    }
}
