//! The product rows of one PostgreSQL batch: the products its commands name and
//! the variant groups they write into, read before the rules run
//! ([`crate::pg::ledger`]), and the rows the rules wrote, sent back in one upsert.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use tokio_postgres::Transaction;

use super::schema::options_column;
use super::staged::{int, not_read};
use crate::catalog::ProductRow;
use crate::common::{StoreError, codec};
use crate::domain::{GroupHandle, Sku};
use crate::ledger::products::CatalogRows;
use crate::ledger::rows::ProductRows;

/// The products a batch's commands name, as read (locked for share).
#[derive(Debug, Default)]
pub struct StagedProducts {
    /// `None`: read and absent.
    pub rows: HashMap<Sku, Option<ProductRow>>,
    /// Products written by the batch, in the order written.
    pub(crate) written: BTreeMap<Sku, ProductRow>,
    /// The active products of the variant groups the batch writes into, as read
    /// (under the group's lock) and then kept in step with the batch's writes.
    pub groups: HashMap<GroupHandle, BTreeSet<Sku>>,
}

impl StagedProducts {
    /// Writes a product row (created or replaced).
    pub fn put(&mut self, sku: &Sku, row: ProductRow) {
        let before = self.rows.get(sku).and_then(Option::as_ref);
        if let Some(group) = before.and_then(ProductRow::active_group)
            && let Some(members) = self.groups.get_mut(group)
        {
            members.remove(sku);
        }
        if let Some(members) = row.active_group().and_then(|g| self.groups.get_mut(g)) {
            members.insert(sku.clone());
        }
        self.rows.insert(sku.clone(), Some(row.clone()));
        self.written.insert(sku.clone(), row);
    }
}

impl CatalogRows for StagedProducts {
    fn put(&mut self, sku: &Sku, row: &ProductRow) -> Result<(), StoreError> {
        StagedProducts::put(self, sku, row.clone());
        Ok(())
    }
}

impl ProductRows for StagedProducts {
    fn product(&self, sku: &Sku) -> Result<Option<ProductRow>, StoreError> {
        self.rows
            .get(sku)
            .cloned()
            .ok_or_else(|| not_read("product", sku))
    }
    fn group_members(&self, group: &GroupHandle) -> Result<Vec<Sku>, StoreError> {
        self.groups
            .get(group)
            .map(|members| members.iter().cloned().collect())
            .ok_or_else(|| not_read("variant group", group.as_str()))
    }
}

/// The product rows the batch wrote, in one upsert.
pub(crate) async fn flush_products(
    tx: &Transaction<'_>,
    products: &StagedProducts,
) -> Result<(), StoreError> {
    if products.written.is_empty() {
        return Ok(());
    }
    let mut c = ProductColumns::default();
    for (sku, row) in &products.written {
        c.push(sku, row)?;
    }
    tx.execute(
        "INSERT INTO products (sku, name, name_key, category, category_key, price_cents, \
         archived, record, group_handle, options) \
         SELECT s, n, nk, c, ck, p, a, r, g, o::jsonb FROM unnest($1::text[], $2::text[], \
         $3::text[], $4::text[], $5::text[], $6::int8[], $7::bool[], $8::bytea[], \
         $9::text[], $10::text[]) AS t (s, n, nk, c, ck, p, a, r, g, o) \
         ON CONFLICT (sku) DO UPDATE SET name = EXCLUDED.name, \
         name_key = EXCLUDED.name_key, category = EXCLUDED.category, \
         category_key = EXCLUDED.category_key, \
         price_cents = EXCLUDED.price_cents, archived = EXCLUDED.archived, \
         record = EXCLUDED.record, group_handle = EXCLUDED.group_handle, \
         options = EXCLUDED.options",
        &[
            &c.skus,
            &c.names,
            &c.name_keys,
            &c.categories,
            &c.category_keys,
            &c.prices,
            &c.archived,
            &c.records,
            &c.groups,
            &c.options,
        ],
    )
    .await?;
    Ok(())
}

/// The columns of [`flush_products`]'s upsert, one array each.
#[derive(Default)]
struct ProductColumns<'a> {
    skus: Vec<&'a str>,
    names: Vec<&'a str>,
    name_keys: Vec<String>,
    categories: Vec<&'a str>,
    category_keys: Vec<String>,
    prices: Vec<i64>,
    archived: Vec<bool>,
    records: Vec<Vec<u8>>,
    groups: Vec<Option<&'a str>>,
    /// The option values as the filters compare them (`Options::values_key`),
    /// a JSON object.
    options: Vec<String>,
}

impl<'a> ProductColumns<'a> {
    fn push(&mut self, sku: &'a Sku, row: &'a ProductRow) -> Result<(), StoreError> {
        self.skus.push(sku.as_str());
        self.names.push(row.name.as_str());
        self.name_keys.push(row.name.key());
        self.categories.push(row.category.as_str());
        self.category_keys.push(row.category.key());
        self.prices.push(int(row.price.get())?);
        self.archived.push(row.archived);
        self.records.push(codec::encode(row));
        self.groups
            .push(row.attributes.group.as_ref().map(GroupHandle::as_str));
        self.options
            .push(options_column(&row.attributes.options.values_key()));
        Ok(())
    }
}
