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
        // Only what moved: an entry whose key is the same before and after stays
        // as the older runs hold it, so a price change leaves the name index alone.
        let before = previous.filter(|p| !p.archived);
        let after = Some(row).filter(|r| !r.archived);
        let price = |r: &ProductRow| listing::price_key(r.price.get(), sku.as_str());
        let name = |r: &ProductRow| listing::name_key(&name_key(&r.name), sku.as_str());
        note_moved(&mut self.price_changes, before.map(price), after.map(price));
        note_moved(&mut self.name_changes, before.map(name), after.map(name));
        if before.map(|r| &r.category) != after.map(|r| &r.category) {
            for (r, change) in [(before, -1), (after, 1)] {
                let Some(r) = r else { continue };
                *self
                    .category_changes
                    .entry(r.category.as_str().to_owned())
                    .or_default() += change;
            }
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

/// Notes the removal of `before` and the arrival of `after`, or nothing when they
/// are the same key.
fn note_moved(changes: &mut listing::Changes, before: Option<Vec<u8>>, after: Option<Vec<u8>>) {
    if before == after {
        return;
    }
    if let Some(key) = before {
        changes.note(key, false);
    }
    if let Some(key) = after {
        changes.note(key, true);
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

#[cfg(test)]
mod tests {
    use redb::ReadableTable;

    use super::*;
    use crate::domain::{Category, Cents};
    use crate::store::Store;
    use crate::store::tables::LISTING_RUNS;

    /// (index tag, run id) of every listing run, and the category counts.
    type State = (Vec<(u8, u64)>, Vec<(String, u64)>);

    fn state(store: &Store) -> State {
        let txn = store.db().begin_write().unwrap();
        let runs = txn
            .open_table(LISTING_RUNS)
            .unwrap()
            .iter()
            .unwrap()
            .map(|e| e.unwrap().0.value())
            .collect();
        let categories = txn
            .open_table(CATEGORIES)
            .unwrap()
            .iter()
            .unwrap()
            .map(|e| {
                let (k, v) = e.unwrap();
                (k.value().to_owned(), v.value())
            })
            .collect();
        txn.abort().unwrap();
        (runs, categories)
    }

    fn write(store: &Store, name: &str, category: &str, price: i64) {
        let txn = store.db().begin_write().unwrap();
        {
            let mut tables = CatalogTables::open(&txn).unwrap();
            let draft = ProductDraft {
                name: ProductName::parse(name).unwrap(),
                category: Category::parse(category).unwrap(),
                description: None,
                price: Cents::new(price).unwrap(),
            };
            tables
                .upsert(&Sku::parse("P-1").unwrap(), draft, Timestamp(1))
                .unwrap();
            tables.flush().unwrap();
        }
        txn.commit().unwrap();
    }

    #[test]
    fn only_the_index_whose_key_moved_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        write(&store, "Cable", "Wires", 500);
        let (runs, categories) = state(&store);
        let price = Index::Price.tag();
        let name = Index::Name.tag();
        let count = |runs: &[(u8, u64)], tag: u8| runs.iter().filter(|r| r.0 == tag).count();
        assert_eq!((count(&runs, price), count(&runs, name)), (1, 1));
        assert_eq!(categories, [("Wires".to_owned(), 1)]);

        // A new price: one more price run, the name index and the count untouched.
        write(&store, "Cable", "Wires", 700);
        let (after_price, after_price_categories) = state(&store);
        assert_eq!(count(&after_price, price), 2);
        assert_eq!(
            after_price
                .iter()
                .filter(|r| r.0 == name)
                .collect::<Vec<_>>(),
            runs.iter().filter(|r| r.0 == name).collect::<Vec<_>>()
        );
        assert_eq!(after_price_categories, categories);

        // A new name (same words, other case: the name key is the same) and a new
        // category: no listing run at all, the count moves.
        write(&store, "CABLE", "Tools", 700);
        let (after_case, after_case_categories) = state(&store);
        assert_eq!(after_case, after_price);
        assert_eq!(after_case_categories, [("Tools".to_owned(), 1)]);

        // A real rename: a name run, no price run.
        write(&store, "Rope", "Tools", 700);
        let (after_rename, _) = state(&store);
        assert_eq!(count(&after_rename, price), 2);
        assert_eq!(count(&after_rename, name), 2);
    }
}
