//! The product tables inside one write transaction.

use std::collections::BTreeMap;

use redb::{ReadableTable, Table, WriteTransaction};

use super::cache::Touched;
use super::{ProductDraft, ProductRow};
use crate::common::{StoreError, codec};
use crate::domain::{GroupHandle, Sku, Timestamp};
use crate::store::listing::{self, Index, ListingWriter};
use crate::store::sorted::SortedWrites;
use crate::store::tables::{CATEGORIES, GROUP_MEMBERS, PRODUCTS};

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
    /// Written through, not buffered: the rule that keeps a group's variants
    /// distinct reads it between the writes of one transaction.
    groups: Table<'txn, (&'static str, &'static str), ()>,
    changes: IndexChanges,
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
            groups: txn.open_table(GROUP_MEMBERS)?,
            changes: IndexChanges::default(),
            touched: Touched::default(),
        })
    }

    /// Applies the buffered index and category changes. Must run before the
    /// transaction commits (the ledger and the catalog actor both do).
    pub fn flush(&mut self) -> Result<(), StoreError> {
        self.listings
            .apply(Index::Price, std::mem::take(&mut self.changes.price))?;
        self.listings
            .apply(Index::Name, std::mem::take(&mut self.changes.name))?;
        for (name, change) in std::mem::take(&mut self.changes.categories) {
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

    /// The active products of `group`, by SKU.
    pub fn group_members(&self, group: &GroupHandle) -> Result<Vec<Sku>, StoreError> {
        members_of(&self.groups, group)
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
        self.changes.note(sku, previous, row);
        move_member(&mut self.groups, sku, previous, row)?;
        Ok(encoded)
    }

    /// [`Self::upsert`] of each of `rows` in turn, with the same outcome, for many
    /// rows at once. The rows are taken in SKU order (the rows of one SKU in
    /// their order) and the stored rows are read by one scan, stepping over a
    /// few stored rows between two SKUs of the batch and seeking past more.
    ///
    /// A stretch of the table into which the batch brings new SKUs is taken out
    /// and written again in one sorted run, which redb packs into full leaves.
    /// Inserted one by one, each new key that sorts between old ones splits a
    /// full leaf into halves that stay half empty: an import whose new SKUs land
    /// between the catalog's (`P-1000010` after `P-100001`) left the products
    /// leaves 60 % full and wrote that many more pages. See [`SortedWrites`].
    pub fn upsert_many(
        &mut self,
        mut rows: Vec<(Sku, ProductDraft)>,
        at: Timestamp,
    ) -> Result<(), StoreError> {
        rows.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
        let mut writes = SortedWrites::default();
        let (products, changes, touched) = (&self.products, &mut self.changes, &mut self.touched);
        let groups = &mut self.groups;
        let mut rows = rows.into_iter().peekable();
        while let Some((sku, draft)) = rows.next() {
            let key = sku.as_str().to_owned();
            let found: Option<Vec<u8>> = writes.seek(products, &key)?;
            let stored = found.as_deref().map(codec::decode).transpose()?;
            let mut written: Option<ProductRow> = None;
            let mut next = Some(draft);
            while let Some(draft) = next {
                // The group rule ran before (`inbox::variants::settle`): what
                // comes here stands.
                let current = written.as_ref().or(stored.as_ref());
                if let (_, Some(row)) = upsert_of(draft, current, at) {
                    changes.note(&sku, current, &row);
                    written = Some(row);
                }
                next = rows.next_if(|(s, _)| *s == sku).map(|(_, d)| d);
            }
            match (written, found) {
                (Some(row), found) => {
                    move_member(groups, &sku, stored.as_ref(), &row)?;
                    touched.note(&sku);
                    writes.write(key, codec::encode(&row), found.is_none());
                }
                (None, Some(bytes)) => writes.keep(key, bytes),
                (None, None) => {}
            }
        }
        writes.finish().write(&mut self.products)
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
        let (outcome, Some(row)) = upsert_of(draft, previous.as_ref(), at) else {
            return Ok((Upsert::Unchanged, Vec::new()));
        };
        let encoded = self.put_over(sku, &row, previous.as_ref())?;
        Ok((outcome, encoded))
    }
}

/// The listing and category changes of a transaction's product writes, applied
/// by [`CatalogTables::flush`].
#[derive(Default)]
struct IndexChanges {
    /// Price-index key → present after this transaction?
    price: listing::Changes,
    /// Name-index key → present after this transaction?
    name: listing::Changes,
    categories: BTreeMap<String, i64>,
}

impl IndexChanges {
    /// Notes what replacing `previous` by `row` changes in the listing indexes and
    /// the category counts, for [`CatalogTables::flush`].
    fn note(&mut self, sku: &Sku, previous: Option<&ProductRow>, row: &ProductRow) {
        // Only what moved: an entry whose key is the same before and after stays
        // as the older runs hold it, so a price change leaves the name index alone.
        let before = previous.filter(|p| !p.archived);
        let after = Some(row).filter(|r| !r.archived);
        let price = |r: &ProductRow| listing::price_key(r.price.get(), sku.as_str());
        let name = |r: &ProductRow| listing::name_key(&r.name.key(), sku.as_str());
        note_moved(&mut self.price, before.map(price), after.map(price));
        note_moved(&mut self.name, before.map(name), after.map(name));
        if before.map(|r| &r.category) != after.map(|r| &r.category) {
            for (r, change) in [(before, -1), (after, 1)] {
                let Some(r) = r else { continue };
                *self
                    .categories
                    .entry(r.category.as_str().to_owned())
                    .or_default() += change;
            }
        }
    }
}

/// The SKUs `groups` holds for `group`, in order.
pub(crate) fn members_of(
    groups: &impl ReadableTable<(&'static str, &'static str), ()>,
    group: &GroupHandle,
) -> Result<Vec<Sku>, StoreError> {
    let mut skus = Vec::new();
    for entry in groups.range((group.as_str(), "")..)? {
        let (key, _) = entry?;
        let (g, sku) = key.value();
        if g != group.as_str() {
            break;
        }
        skus.push(
            Sku::parse(sku)
                .map_err(|_| StoreError::Corrupt(format!("group {g} holds {sku:?}, not a SKU")))?,
        );
    }
    Ok(skus)
}

/// Moves `sku` between groups as writing `row` over `previous` does: an active
/// product is in its group, an archived one in none.
fn move_member(
    groups: &mut Table<'_, (&'static str, &'static str), ()>,
    sku: &Sku,
    previous: Option<&ProductRow>,
    row: &ProductRow,
) -> Result<(), StoreError> {
    let (before, after) = (
        previous.and_then(ProductRow::active_group),
        row.active_group(),
    );
    if before == after {
        return Ok(());
    }
    if let Some(g) = before {
        groups.remove((g.as_str(), sku.as_str()))?;
    }
    if let Some(g) = after {
        groups.insert((g.as_str(), sku.as_str()), ())?;
    }
    Ok(())
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

/// What writing `draft` over `previous` at `at` is (created, updated or
/// unchanged) and the row to write, `None` when nothing changes. Both backends
/// decide an upsert here.
pub(crate) fn upsert_of(
    draft: ProductDraft,
    previous: Option<&ProductRow>,
    at: Timestamp,
) -> (Upsert, Option<ProductRow>) {
    let row = ProductRow::drafted(draft, previous, at);
    match previous {
        None => (Upsert::Created, Some(row)),
        Some(p) if same_content(p, &row) => (Upsert::Unchanged, None),
        Some(_) => (Upsert::Updated, Some(row)),
    }
}

pub(crate) fn same_content(a: &ProductRow, b: &ProductRow) -> bool {
    a.name == b.name
        && a.category == b.category
        && a.description == b.description
        && a.price == b.price
        && a.archived == b.archived
        && a.attributes == b.attributes
}

#[cfg(test)]
mod tests {
    use redb::ReadableTable;

    use super::*;
    use crate::domain::{Category, Cents, ProductName};
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
                attributes: Default::default(),
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

    mod many_at_once {
        use proptest::prelude::*;
        use redb::{ReadableDatabase, ReadableTable};

        use super::*;
        use crate::store::tables::{LISTING_BLOCKS, LISTING_META};

        /// (SKU number, price, name number) of a row.
        type Row = (u16, u8, u8);

        fn draft(&(_, price, name): &Row) -> ProductDraft {
            ProductDraft {
                attributes: Default::default(),
                name: ProductName::parse(&format!("Name {name}")).unwrap(),
                category: Category::parse(&format!("c{}", name % 3)).unwrap(),
                description: None,
                price: Cents::new(i64::from(price) + 1).unwrap(),
            }
        }

        /// `P-{n}` without padding, so a batch's SKUs sort between the stored ones.
        fn sku(&(n, _, _): &Row) -> Sku {
            Sku::parse(&format!("P-{n}")).unwrap()
        }

        /// A store holding `stored`, after one more transaction wrote `batch`
        /// through `upsert_many` (`many`) or one `upsert` per row; every table
        /// such a write touches, as text.
        fn after(stored: &[Row], batch: &[Row], many: bool) -> Vec<String> {
            let dir = tempfile::tempdir().unwrap();
            let store = Store::open(dir.path()).unwrap();
            for (at, rows, many) in [(1, stored, false), (2, batch, many)] {
                let txn = store.db().begin_write().unwrap();
                {
                    let mut tables = CatalogTables::open(&txn).unwrap();
                    if many {
                        let rows = rows.iter().map(|r| (sku(r), draft(r))).collect();
                        tables.upsert_many(rows, Timestamp(at)).unwrap();
                    } else {
                        for r in rows {
                            tables.upsert(&sku(r), draft(r), Timestamp(at)).unwrap();
                        }
                    }
                    tables.flush().unwrap();
                }
                txn.commit().unwrap();
            }
            let read = store.db().begin_read().unwrap();
            let mut out = Vec::new();
            macro_rules! dump {
                ($($def:ident),*) => {$(
                    for entry in read.open_table($def).unwrap().iter().unwrap() {
                        let (k, v) = entry.unwrap();
                        out.push(format!("{} {:?} {:?}", stringify!($def), k.value(), v.value()));
                    }
                )*};
            }
            dump!(
                PRODUCTS,
                LISTING_BLOCKS,
                LISTING_RUNS,
                LISTING_META,
                CATEGORIES
            );
            out
        }

        fn rows(len: std::ops::Range<usize>) -> impl Strategy<Value = Vec<Row>> {
            proptest::collection::vec((0u16..1_000, 0u8..4, 0u8..4), len)
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(64))]
            /// Many stored rows between a batch's new SKUs (more than the scan
            /// steps over), repeated SKUs, updates and unchanged rows.
            #[test]
            fn many_at_once_writes_what_each_in_turn_writes(
                stored in rows(0..800),
                batch in rows(0..80),
            ) {
                let many = after(&stored, &batch, true);
                let each = after(&stored, &batch, false);
                prop_assert_eq!(many, each);
            }
        }
    }
}
