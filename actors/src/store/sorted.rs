//! An import batch's rows written into a table in key order, so that the table's
//! leaves stay full.
//!
//! redb splits a full leaf in halves unless the key goes past the end of the
//! tree, so rows inserted one by one between stored ones leave half-empty leaves
//! behind (a products table at 147,674 leaves where 87,498 hold the same rows).
//! [`SortedWrites`] takes a batch's rows in key order; it reads the stored rows by
//! one scan that steps over at most [`SORTED_SCAN_STEPS_MAX`] of them between two
//! of the batch's keys and seeks past more. The rows it writes and the stored rows
//! between them form stretches; a stretch that brings new keys is taken out and
//! written again as one sorted run through redb's write cursor, which fills each
//! leaf before it starts the next. Other stretches are written row by row.
//!
//! Used for the products (`CatalogTables::upsert_many`) and for the stock levels
//! and movements (`RedbRows::stage_stock`) of an import batch.

use std::ops::Bound;

use redb::{Key, ReadableTable, Table, TableHandle, Value};

use crate::common::StoreError;
use crate::limits::SORTED_SCAN_STEPS_MAX;

/// An owned copy of a key or value of redb type `T`, held while the table is
/// written. Its order, for a key, is the one of the table.
pub trait Owned<T: Value + 'static> {
    fn own(view: T::SelfType<'_>) -> Self;
    fn view(&self) -> T::SelfType<'_>;
}

impl Owned<&'static str> for String {
    fn own(view: &str) -> Self {
        view.to_owned()
    }
    fn view(&self) -> &str {
        self
    }
}

impl Owned<&'static [u8]> for Vec<u8> {
    fn own(view: &[u8]) -> Self {
        view.to_vec()
    }
    fn view(&self) -> &[u8] {
        self
    }
}

impl Owned<(u64, u64)> for (u64, u64) {
    fn own(view: (u64, u64)) -> Self {
        view
    }
    fn view(&self) -> (u64, u64) {
        *self
    }
}

impl Owned<(&'static str, u64)> for (String, u64) {
    fn own((text, n): (&str, u64)) -> Self {
        (text.to_owned(), n)
    }
    fn view(&self) -> (&str, u64) {
        (&self.0, self.1)
    }
}

/// A batch's writes to one table, given in key order (each key once): see the
/// module's doc. [`Self::seek`] each key, then [`Self::write`] or [`Self::keep`]
/// it; [`Self::finish`] then [`Stretches::write`] writes them all.
pub struct SortedWrites<'t, K: Key + 'static, V: Value + 'static, OK, OV> {
    stretches: Vec<Stretch<OK, OV>>,
    /// Stored rows passed since the last row written.
    passed: Vec<(OK, OV)>,
    /// Whether the last stretch may still take the rows passed (no seek since).
    joinable: bool,
    scan: Option<Scan<'t, K, V, OK, OV>>,
}

/// Adjacent rows, in key order, that a batch writes at once: the rows it writes
/// and the stored rows between them (at most [`SORTED_SCAN_STEPS_MAX`] between
/// two written ones).
struct Stretch<OK, OV> {
    entries: Vec<Entry<OK, OV>>,
    /// Entries whose key the table does not hold yet.
    created: usize,
}

struct Entry<OK, OV> {
    key: OK,
    value: OV,
    /// False for a stored row kept as it is.
    written: bool,
}

impl<K, V, OK, OV> Default for SortedWrites<'_, K, V, OK, OV>
where
    K: Key + 'static,
    V: Value + 'static,
{
    fn default() -> Self {
        SortedWrites {
            stretches: Vec::new(),
            passed: Vec::new(),
            joinable: false,
            scan: None,
        }
    }
}

impl<'t, K, V, OK, OV> SortedWrites<'t, K, V, OK, OV>
where
    K: Key + 'static,
    V: Value + 'static,
    OK: Owned<K> + Ord,
    OV: Owned<V>,
{
    /// Moves to `key` (above every key given before) and answers its stored row.
    pub fn seek(&mut self, table: &'t Table<'_, K, V>, key: &OK) -> Result<Option<OV>, StoreError> {
        let positioned = match &mut self.scan {
            Some(scan) => scan.pass_below(key, &mut self.passed)?,
            None => false,
        };
        let scan = match &mut self.scan {
            Some(scan) if positioned => scan,
            _ => {
                self.joinable = false;
                self.scan.insert(Scan::from(table, key)?)
            }
        };
        scan.take(key)
    }

    /// The row of `key`, the one [`Self::seek`] moved to, is written with `value`;
    /// `created` when the table did not hold it.
    pub fn write(&mut self, key: OK, value: OV, created: bool) {
        let entry = Entry {
            key,
            value,
            written: true,
        };
        match self.stretches.last_mut() {
            Some(stretch) if self.joinable && self.passed.len() <= SORTED_SCAN_STEPS_MAX => {
                stretch
                    .entries
                    .extend(self.passed.drain(..).map(|(key, value)| Entry {
                        key,
                        value,
                        written: false,
                    }));
                stretch.entries.push(entry);
                stretch.created += usize::from(created);
            }
            _ => self.stretches.push(Stretch {
                entries: vec![entry],
                created: usize::from(created),
            }),
        }
        self.passed.clear();
        self.joinable = true;
    }

    /// The stored row of `key`, the one [`Self::seek`] answered, stays as it is.
    pub fn keep(&mut self, key: OK, value: OV) {
        self.passed.push((key, value));
    }

    /// The rows to write, the scan of the table done.
    pub fn finish(self) -> Stretches<OK, OV> {
        Stretches(self.stretches)
    }
}

/// Writes `rows` (in key order, each key once) into `table` through
/// [`SortedWrites`], every one of them written.
pub fn write_all<K, V, OK, OV>(
    table: &mut Table<'_, K, V>,
    rows: impl IntoIterator<Item = (OK, OV)>,
) -> Result<(), StoreError>
where
    K: Key + 'static,
    V: Value + 'static,
    OK: Owned<K> + Ord,
    OV: Owned<V>,
{
    let mut writes = SortedWrites::default();
    for (key, value) in rows {
        let found = writes.seek(table, &key)?;
        writes.write(key, value, found.is_none());
    }
    writes.finish().write(table)
}

/// A batch's rows for one table, with the stored rows written again among them.
pub struct Stretches<OK, OV>(Vec<Stretch<OK, OV>>);

impl<OK, OV> Stretches<OK, OV> {
    /// Writes the rows into `table`.
    pub fn write<K, V>(self, table: &mut Table<'_, K, V>) -> Result<(), StoreError>
    where
        K: Key + 'static,
        V: Value + 'static,
        OK: Owned<K>,
        OV: Owned<V>,
    {
        self.0
            .into_iter()
            .try_for_each(|stretch| stretch.write(table))
    }
}

impl<OK, OV> Stretch<OK, OV> {
    /// In one sorted run if it brings new keys among others, else its written rows
    /// one by one (in place, for same-sized updates).
    fn write<K, V>(self, table: &mut Table<'_, K, V>) -> Result<(), StoreError>
    where
        K: Key + 'static,
        V: Value + 'static,
        OK: Owned<K>,
        OV: Owned<V>,
    {
        let Stretch { entries, created } = self;
        if created == 0 || entries.len() == 1 {
            for entry in entries.iter().filter(|e| e.written) {
                table.insert(entry.key.view(), entry.value.view())?;
            }
            return Ok(());
        }
        let (first, last) = (&entries[0].key, &entries[entries.len() - 1].key);
        let mut taken = 0;
        for removed in table.extract_from_if(first.view()..=last.view(), |_, _| true)? {
            removed?;
            taken += 1;
        }
        if taken != entries.len() - created {
            return Err(StoreError::Corrupt(format!(
                "table {}: {taken} rows taken out of a stretch, {} expected",
                table.name(),
                entries.len() - created
            )));
        }
        let mut cursor = table.lower_bound_mut(Bound::Included(first.view()))?;
        for entry in &entries {
            cursor.insert_before(entry.key.view(), entry.value.view())?;
        }
        cursor.close()?;
        Ok(())
    }
}

/// The stored rows from a key on, read one at a time.
struct Scan<'t, K: Key + 'static, V: Value + 'static, OK, OV> {
    rows: redb::Range<'t, K, V>,
    next: Option<(OK, OV)>,
}

impl<'t, K, V, OK, OV> Scan<'t, K, V, OK, OV>
where
    K: Key + 'static,
    V: Value + 'static,
    OK: Owned<K> + Ord,
    OV: Owned<V>,
{
    fn from(table: &'t Table<'_, K, V>, key: &OK) -> Result<Self, StoreError> {
        let mut rows = table.range(key.view()..)?;
        let next = Self::read(&mut rows)?;
        Ok(Scan { rows, next })
    }

    fn read(rows: &mut redb::Range<'t, K, V>) -> Result<Option<(OK, OV)>, StoreError> {
        Ok(rows
            .next()
            .transpose()?
            .map(|(k, v)| (OK::own(k.value()), OV::own(v.value()))))
    }

    fn advance(&mut self) -> Result<Option<(OK, OV)>, StoreError> {
        let next = Self::read(&mut self.rows)?;
        Ok(std::mem::replace(&mut self.next, next))
    }

    /// Moves past the stored rows that sort before `key`, adding them to
    /// `passed`; false, having stopped, when there are more than
    /// [`SORTED_SCAN_STEPS_MAX`] of them (a seek is cheaper then).
    fn pass_below(&mut self, key: &OK, passed: &mut Vec<(OK, OV)>) -> Result<bool, StoreError> {
        let mut steps = 0;
        while self.next.as_ref().is_some_and(|(k, _)| k < key) {
            if steps == SORTED_SCAN_STEPS_MAX {
                return Ok(false);
            }
            passed.extend(self.advance()?);
            steps += 1;
        }
        Ok(true)
    }

    /// The stored row of `key`, when the scan stands on it.
    fn take(&mut self, key: &OK) -> Result<Option<OV>, StoreError> {
        if self.next.as_ref().is_none_or(|(k, _)| k != key) {
            return Ok(None);
        }
        let next = Self::read(&mut self.rows)?;
        Ok(std::mem::replace(&mut self.next, next).map(|(_, v)| v))
    }
}
