//! The catalog: product rows, their listing indexes, and the reads that serve them.
//!
//! - [`tables`]: the product tables inside one write transaction, keeping the
//!   listing indexes (`store::listing`) and category counts in step with the rows;
//! - [`query`]: reads on a snapshot (one product, filtered and sorted lists,
//!   categories);
//! - [`actor`]: the catalog actor, a pool of readers;
//! - [`cache`]: recently read products' response bytes, forgotten by the
//!   ledger's commits;
//! - [`tree`]: the category tree, paged from per-path counts (both backends);
//! - [`groups`]: a variant group summed up from its products (both backends).
//!
//! Stock is not part of a product row: it belongs to the ledger, and a product is
//! shown with the stock level read from the ledger's table in the same read
//! snapshot. Every write to product rows (the API's and the imports') is a ledger
//! command, made in the ledger's transaction through [`tables::CatalogTables`]:
//! the catalog itself never writes, and never imports the ledger.

pub mod actor;
pub mod cache;
pub mod groups;
pub mod query;
pub mod tables;
pub mod tree;

use serde::{Deserialize, Serialize};

use crate::common::{Record, StoreError};
use crate::domain::{
    Barcode, Category, Cents, Description, GroupHandle, Options, ProductName, Sku, TaxClass,
    Timestamp, WeightGrams,
};

pub use actor::{Catalog, GetProduct, GetProducts, ListCategories, ListProducts, ScanProducts};
pub use cache::{ProductCache, Touched};
pub use groups::{GetGroup, Group, GroupOption};
pub use query::{Scanned, list_products, read_product};
pub use tables::{CatalogTables, Upsert};
pub use tree::{CategoryNode, CategoryTree};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProductRow {
    pub name: ProductName,
    pub category: Category,
    pub description: Option<Description>,
    pub price: Cents,
    pub archived: bool,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// Variant group, options, weight, tax class, barcode (contract §7).
    pub attributes: Attributes,
}

impl Record for ProductRow {
    const VERSION: u8 = 2;
    const NAME: &'static str = "product";

    /// Version 1 had no attributes: it reads with the defaults (no group, no
    /// options, 0 g, `standard`, no barcode).
    fn upgrade(found: u8, body: &[u8]) -> Option<Result<Self, postcard::Error>> {
        (found == 1).then(|| {
            postcard::from_bytes::<ProductRowV1>(body).map(|v1| ProductRow {
                name: v1.name,
                category: v1.category,
                description: v1.description,
                price: v1.price,
                archived: v1.archived,
                created_at: v1.created_at,
                updated_at: v1.updated_at,
                attributes: Attributes::default(),
            })
        })
    }
}

/// A product row as release one to this one wrote it (record version 1).
#[derive(Deserialize)]
struct ProductRowV1 {
    name: ProductName,
    category: Category,
    description: Option<Description>,
    price: Cents,
    archived: bool,
    created_at: Timestamp,
    updated_at: Timestamp,
}

/// What contract §7 adds to a product: the variant group it belongs to with its
/// option values, its weight (shipping rates use it), its tax class and its
/// barcode.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attributes {
    pub group: Option<GroupHandle>,
    pub options: Options,
    pub weight: WeightGrams,
    pub tax_class: TaxClass,
    pub barcode: Option<Barcode>,
}

impl ProductRow {
    /// The row a create or replace writes from `draft`: un-archived, created when
    /// `previous` was (or now, for a new SKU), updated now.
    pub fn drafted(draft: ProductDraft, previous: Option<&ProductRow>, at: Timestamp) -> Self {
        Self {
            name: draft.name,
            category: draft.category,
            description: draft.description,
            price: draft.price,
            archived: false,
            created_at: previous.map_or(at, |p| p.created_at),
            updated_at: at,
            attributes: draft.attributes,
        }
    }

    /// The variant group this product stands in: its group while active, none
    /// once archived. The group table, a batch's staged members, the rule and the
    /// audit all count a product's membership this one way.
    pub fn active_group(&self) -> Option<&GroupHandle> {
        self.attributes.group.as_ref().filter(|_| !self.archived)
    }
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
    pub attributes: Attributes,
}

/// A partial update; `None` leaves a field alone, `Some(None)` clears the description.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProductPatch {
    pub name: Option<ProductName>,
    pub category: Option<Category>,
    pub description: Option<Option<Description>>,
    pub price: Option<Cents>,
    pub weight: Option<WeightGrams>,
    pub tax_class: Option<TaxClass>,
    /// `Some(None)` clears the barcode.
    pub barcode: Option<Option<Barcode>>,
}

#[derive(Debug, thiserror::Error)]
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
    Variant(#[from] VariantConflict),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why a product cannot stand in its variant group as written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VariantConflict {
    /// Another active product of the group has the same option values.
    #[error("product {holder} of group {group} has the same option values")]
    Exists { group: GroupHandle, holder: Sku },
    /// The group's other products have other option names.
    #[error("the products of group {group} have the options {expected:?}")]
    OptionNames {
        group: GroupHandle,
        expected: Vec<String>,
    },
    /// The group has its most products already.
    #[error("group {group} already has {max} products", max = crate::limits::GROUP_VARIANTS_MAX)]
    Full { group: GroupHandle },
}

crate::common::lift_redb_errors!(CatalogError);

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
    /// A category key (`Category::key`): that category and everything below it.
    pub category: Option<String>,
    /// Lower-case text the lower-cased name must contain.
    pub name_contains: Option<String>,
    /// Only the products of this variant group.
    pub group: Option<GroupHandle>,
    /// Option values the product must have, as `Options::values_key` folds them.
    pub options: Vec<(String, String)>,
    pub min_price: Option<u64>,
    pub max_price: Option<u64>,
    pub in_stock: bool,
    /// Only products with at most this stock (a low-stock list).
    pub max_stock: Option<u64>,
    pub sort: ProductSort,
}

#[cfg(test)]
mod record_tests {
    use super::*;
    use crate::common::codec;

    /// A product written by an earlier release (record version 1) reads with the
    /// §7 fields at their defaults, and is written back as version 2.
    #[test]
    fn a_version_1_product_reads_with_default_attributes() {
        #[derive(Serialize)]
        struct V1<'a> {
            name: &'a ProductName,
            category: &'a Category,
            description: Option<&'a Description>,
            price: Cents,
            archived: bool,
            created_at: Timestamp,
            updated_at: Timestamp,
        }
        let name = ProductName::parse("Old mug").unwrap();
        let category = Category::parse("Kitchen").unwrap();
        let mut bytes = vec![1u8];
        bytes.extend(
            postcard::to_allocvec(&V1 {
                name: &name,
                category: &category,
                description: None,
                price: Cents::new(350).unwrap(),
                archived: false,
                created_at: Timestamp(5),
                updated_at: Timestamp(6),
            })
            .unwrap(),
        );
        let row: ProductRow = codec::decode(&bytes).unwrap();
        assert_eq!(row.name, name);
        assert_eq!(row.price.get(), 350);
        assert_eq!(row.updated_at, Timestamp(6));
        assert_eq!(row.attributes, Attributes::default());
        assert_eq!(row.attributes.tax_class.as_str(), "standard");
        let again = codec::encode(&row);
        assert_eq!(again[0], 2);
        assert_eq!(codec::decode::<ProductRow>(&again).unwrap(), row);
    }
}
