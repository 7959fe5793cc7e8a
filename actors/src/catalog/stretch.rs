//! The stretches of the products table an import batch writes at once, and the
//! scan that reads the stored rows between them (see
//! [`CatalogTables::upsert_many`](super::tables::CatalogTables::upsert_many)).

use redb::{ReadableTable, Table};

use super::tables::Upsert;
use crate::limits::PRODUCT_SCAN_STEPS_MAX;
use crate::store::StoreError;

/// Adjacent products rows, in key order, that a batch writes at once: the rows
/// it writes and the stored rows between them (at most
/// [`PRODUCT_SCAN_STEPS_MAX`] between two written ones).
pub(super) struct Stretch {
    pub(super) entries: Vec<StretchEntry>,
    /// Entries whose SKU the table does not hold yet.
    pub(super) created: usize,
}

pub(super) struct StretchEntry {
    pub(super) key: String,
    pub(super) value: Vec<u8>,
    /// `None` for a stored row kept as it is.
    pub(super) write: Option<Upsert>,
}

impl Stretch {
    pub(super) fn of(entry: StretchEntry) -> Self {
        let mut stretch = Stretch {
            entries: Vec::new(),
            created: 0,
        };
        stretch.push(entry);
        stretch
    }

    pub(super) fn push(&mut self, entry: StretchEntry) {
        self.created += usize::from(entry.write == Some(Upsert::Created));
        self.entries.push(entry);
    }

    pub(super) fn keep(&mut self, stored: impl Iterator<Item = (String, Vec<u8>)>) {
        self.entries.extend(stored.map(|(key, value)| StretchEntry {
            key,
            value,
            write: None,
        }));
    }
}

/// The stored products rows from a key on, read one at a time.
pub(super) struct Scan<'t> {
    rows: redb::Range<'t, &'static str, &'static [u8]>,
    next: Option<(String, Vec<u8>)>,
}

impl<'t> Scan<'t> {
    pub(super) fn from(
        products: &'t Table<'_, &'static str, &'static [u8]>,
        key: &str,
    ) -> Result<Self, StoreError> {
        let mut rows = products.range(key..)?;
        let next = Self::read(&mut rows)?;
        Ok(Scan { rows, next })
    }

    fn read(
        rows: &mut redb::Range<'t, &'static str, &'static [u8]>,
    ) -> Result<Option<(String, Vec<u8>)>, StoreError> {
        Ok(rows
            .next()
            .transpose()?
            .map(|(k, v)| (k.value().to_owned(), v.value().to_vec())))
    }

    fn advance(&mut self) -> Result<Option<(String, Vec<u8>)>, StoreError> {
        let next = Self::read(&mut self.rows)?;
        Ok(std::mem::replace(&mut self.next, next))
    }

    /// Moves past the stored rows that sort before `key`, adding them to
    /// `passed`; false, having stopped, when there are more than
    /// [`PRODUCT_SCAN_STEPS_MAX`] of them (a seek is cheaper then).
    pub(super) fn pass_below(
        &mut self,
        key: &str,
        passed: &mut Vec<(String, Vec<u8>)>,
    ) -> Result<bool, StoreError> {
        let mut steps = 0;
        while self.next.as_ref().is_some_and(|(k, _)| k.as_str() < key) {
            if steps == PRODUCT_SCAN_STEPS_MAX {
                return Ok(false);
            }
            passed.extend(self.advance()?);
            steps += 1;
        }
        Ok(true)
    }

    /// The stored row of `key`, when the scan stands on it.
    pub(super) fn take(&mut self, key: &str) -> Option<Result<Vec<u8>, StoreError>> {
        match &self.next {
            Some((k, _)) if k == key => Some(
                self.advance()
                    .map(|e| e.map(|(_, v)| v).unwrap_or_default()),
            ),
            _ => None,
        }
    }
}
