//! The product tables inside one write transaction.

use std::collections::BTreeMap;

use redb::{ReadableTable, Table, WriteTransaction};

use super::cache::Touched;
use super::{ProductDraft, ProductRow};
use crate::domain::{ProductName, Sku, Timestamp};
use crate::store::listing::{self, Index, ListingWriter};
use crate::store::tables::{CATEGORIES, PRODUCTS};
use crate::store::{StoreError, codec};

/// The product tables, open in one write transaction.
///
/// Changes to the listing indexes and category counts are buffered and applied by
/// [`CatalogTables::flush`] once per transaction: the listing changes as one sorted
/// run per index (see [`listing`]). Buffering keeps only the net effect per key, so
/// a product changed twice in one transaction leaves exactly its final entries.
pub struct CatalogTables<'txn> {
    products: Table<'txn, &'static str, &'static [u8]>,
    listings: ListingWriter<'txn>,
    categories: Table<'txn, &'static str, u64>,
    /// Price-index key → present after this transaction?
    price_changes: listing::Changes,
    /// Name-index key → present after this transaction?
    name_changes: listing::Changes,
    category_changes: BTreeMap<String, i64>,
    /// SKUs whose row this transaction wrote (for the read cache).
    touched: Touched,
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
            listings: ListingWriter::open(txn)?,
            categories: txn.open_table(CATEGORIES)?,
            price_changes: listing::Changes::default(),
            name_changes: listing::Changes::default(),
            category_changes: BTreeMap::new(),
            touched: Touched::default(),
        })
    }

    /// Applies the buffered index and category changes. Must run before the
    /// transaction commits (the ledger and the catalog actor both do).
    pub fn flush(&mut self) -> Result<(), StoreError> {
        self.listings
            .apply(Index::Price, std::mem::take(&mut self.price_changes))?;
        self.listings
            .apply(Index::Name, std::mem::take(&mut self.name_changes))?;
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

    /// The SKUs whose row was written so far, leaving none.
    pub fn take_touched(&mut self) -> Touched {
        std::mem::take(&mut self.touched)
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
        self.put_over(sku, row, previous.as_ref())?;
        Ok(())
    }

    /// [`Self::put`] when the caller already read the previous row.
    fn put_over(
        &mut self,
        sku: &Sku,
        row: &ProductRow,
        previous: Option<&ProductRow>,
    ) -> Result<Vec<u8>, StoreError> {
        let encoded = codec::encode(row);
        self.products.insert(sku.as_str(), encoded.as_slice())?;
        self.touched.note(sku);
        if let Some(prev) = previous.filter(|p| !p.archived) {
            self.price_changes
                .note(listing::price_key(prev.price.get(), sku.as_str()), false);
            self.name_changes.note(
                listing::name_key(&name_key(&prev.name), sku.as_str()),
                false,
            );
            *self
                .category_changes
                .entry(prev.category.as_str().to_owned())
                .or_default() -= 1;
        }
        if !row.archived {
            self.price_changes
                .note(listing::price_key(row.price.get(), sku.as_str()), true);
            self.name_changes
                .note(listing::name_key(&name_key(&row.name), sku.as_str()), true);
            *self
                .category_changes
                .entry(row.category.as_str().to_owned())
                .or_default() += 1;
        }
        Ok(encoded)
    }

    /// Creates or replaces the descriptive fields of `sku` (and un-archives it),
    /// leaving the row untouched when nothing changed.
    pub fn upsert(
        &mut self,
        sku: &Sku,
        draft: ProductDraft,
        at: Timestamp,
    ) -> Result<Upsert, StoreError> {
        Ok(self.upsert_encoded(sku, draft, at)?.0)
    }

    /// [`Self::upsert`], also answering the record as stored (empty when
    /// unchanged): an import's per-row event carries those bytes as they are.
    pub fn upsert_encoded(
        &mut self,
        sku: &Sku,
        draft: ProductDraft,
        at: Timestamp,
    ) -> Result<(Upsert, Vec<u8>), StoreError> {
        let previous = self.get(sku)?;
        let row = ProductRow::drafted(draft, previous.as_ref(), at);
        let outcome = match &previous {
            None => Upsert::Created,
            Some(prev) if same_content(prev, &row) => return Ok((Upsert::Unchanged, Vec::new())),
            Some(_) => Upsert::Updated,
        };
        let encoded = self.put_over(sku, &row, previous.as_ref())?;
        Ok((outcome, encoded))
    }
}

pub(crate) fn same_content(a: &ProductRow, b: &ProductRow) -> bool {
    a.name == b.name
        && a.category == b.category
        && a.description == b.description
        && a.price == b.price
        && a.archived == b.archived
}

/// Listing by name sorts without regard to case.
pub(crate) fn name_key(name: &ProductName) -> String {
    name.as_str().to_lowercase()
}
