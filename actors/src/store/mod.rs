//! The embedded database: one redb file in the data directory.
//!
//! Opening takes redb's exclusive file lock, so a second process on the same data
//! directory fails here with [`OpenError::Locked`] instead of corrupting anything.
//! Every write is a redb write transaction committed with immediate durability
//! (redb's default): when `commit` returns, the data is on disk.

pub mod awake;
pub mod backup;
pub mod fault;
pub mod journal;
pub mod listing;
pub mod private;
pub mod sorted;
pub mod tables;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use redb::{Database, ReadableDatabase, ReadableTable, WriteTransaction};

pub use backup::{BackupError, Manifest};
pub use journal::Journal;
pub use private::file as private_file;

use crate::common::{Record, StoreError, codec};
use crate::limits::DB_CACHE_BYTES;
use tables::counter;

/// The schema this build writes. Opening a newer one is refused.
pub const SCHEMA_VERSION: u64 = 4;
/// File name of the database inside the data directory.
pub const DB_FILE_NAME: &str = "orderflow.redb";

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(
        "data directory {0} is in use by another orderflow process (only one process may own it)"
    )]
    Locked(PathBuf),
    #[error("cannot create data directory {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot open database {path}: {source}")]
    Database {
        path: PathBuf,
        source: Box<redb::DatabaseError>,
    },
    #[error(
        "database schema version {found} is newer than this build's {SCHEMA_VERSION}: it was written by a newer orderflow release; run that release, or restore a backup made by this one"
    )]
    NewerSchema { found: u64 },
    #[error("cannot initialise database: {0}")]
    Init(#[from] StoreError),
    #[error(
        "this data directory keeps prices in {stored}; it cannot be opened with currency {asked}"
    )]
    CurrencyMismatch { stored: String, asked: String },
}

/// The shared handle: cheap to clone, one per process.
#[derive(Clone)]
pub struct Store {
    db: Arc<Database>,
    path: PathBuf,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

impl Store {
    /// Opens (creating if needed) the database in `data_dir` and makes sure every
    /// table exists, so readers never meet a missing table.
    pub fn open(data_dir: &Path) -> Result<Self, OpenError> {
        private::dir(data_dir).map_err(|source| OpenError::Io {
            path: data_dir.to_owned(),
            source,
        })?;
        let path = data_dir.join(DB_FILE_NAME);
        if path.exists() {
            Self::refuse_newer(data_dir, &path)?;
        }
        Self::open_with(data_dir, |builder| builder.create(&path))
    }

    /// A database of a newer release is refused before it is opened for writing:
    /// redb's writable open rewrites the file's header, and a refused file stays
    /// byte for byte as it was. (A file that needs recovery after a crash cannot be
    /// opened read-only; the writable open repairs it and refuses it then.)
    fn refuse_newer(data_dir: &Path, path: &Path) -> Result<(), OpenError> {
        let db = match redb::Builder::new().open_read_only(path) {
            Ok(db) => db,
            Err(redb::DatabaseError::DatabaseAlreadyOpen) => {
                return Err(OpenError::Locked(data_dir.to_owned()));
            }
            Err(_) => return Ok(()),
        };
        let found = db
            .begin_read()
            .ok()
            .and_then(|txn| txn.open_table(tables::META).ok())
            .and_then(|meta| meta.get(counter::SCHEMA).ok().flatten())
            .map(|v| v.value());
        match found {
            Some(v) if v > SCHEMA_VERSION => Err(OpenError::NewerSchema { found: v }),
            _ => Ok(()),
        }
    }

    /// [`Self::open`] with the database made by `create` from redb's builder (the
    /// fault-injection tests give it a backend of their own).
    pub(crate) fn open_with(
        data_dir: &Path,
        create: impl FnOnce(&mut redb::Builder) -> Result<Database, redb::DatabaseError>,
    ) -> Result<Self, OpenError> {
        let path = data_dir.join(DB_FILE_NAME);
        let db =
            create(redb::Builder::new().set_cache_size(DB_CACHE_BYTES)).map_err(|e| match e {
                redb::DatabaseError::DatabaseAlreadyOpen => OpenError::Locked(data_dir.to_owned()),
                other => OpenError::Database {
                    path: path.clone(),
                    source: Box::new(other),
                },
            })?;
        private::file(&path).map_err(|source| OpenError::Io {
            path: path.clone(),
            source,
        })?;
        let store = Self {
            db: Arc::new(db),
            path,
        };
        store.init()?;
        // Batches the ledger journaled but redb had not yet made durable when the
        // process stopped are written again before anything else writes.
        journal::recover(&store, data_dir).map_err(OpenError::Init)?;
        Ok(store)
    }

    fn init(&self) -> Result<(), OpenError> {
        let txn = self.db.begin_write().map_err(StoreError::from)?;
        {
            let mut meta = txn.open_table(tables::META).map_err(StoreError::from)?;
            let found = meta
                .get(counter::SCHEMA)
                .map_err(StoreError::from)?
                .map(|v| v.value());
            match found {
                Some(v) if v > SCHEMA_VERSION => return Err(OpenError::NewerSchema { found: v }),
                Some(SCHEMA_VERSION) => {}
                older => {
                    match older {
                        // Schema 3: the same tables; 4 says the file may hold a
                        // ledger journal that must be replayed, which releases
                        // before 4 would silently ignore.
                        Some(3) => Ok(()),
                        // Schema 2: listing blocks without restart points.
                        Some(2) => listing::upgrade_from_schema_2(&txn),
                        // Schema 1: the listings were B-trees; they become runs
                        // (written in this build's block format).
                        Some(_) => listing::upgrade_from_schema_1(&txn),
                        // A new file.
                        None => Ok(()),
                    }
                    .map_err(OpenError::Init)?;
                    meta.insert(counter::SCHEMA, SCHEMA_VERSION)
                        .map_err(StoreError::from)?;
                }
            }
        }
        create_tables(&txn).map_err(OpenError::Init)?;
        txn.commit().map_err(StoreError::from)?;
        Ok(())
    }

    /// Records the store currency on first use and refuses another one later: prices
    /// are stored as bare minor units, so changing the currency would silently change
    /// every price.
    pub fn ensure_currency(&self, currency: crate::domain::Currency) -> Result<(), OpenError> {
        let code = currency.code();
        let packed = code.bytes().fold(0u64, |acc, b| (acc << 8) | u64::from(b));
        let txn = self.db.begin_write().map_err(StoreError::from)?;
        {
            let mut meta = txn.open_table(tables::META).map_err(StoreError::from)?;
            let stored = meta
                .get(counter::CURRENCY)
                .map_err(StoreError::from)?
                .map(|v| v.value());
            match stored {
                Some(p) if p != packed => {
                    let stored: String = (0..3)
                        .rev()
                        .map(|i| char::from(p.to_be_bytes()[7 - i]))
                        .collect();
                    return Err(OpenError::CurrencyMismatch {
                        stored,
                        asked: code.to_owned(),
                    });
                }
                Some(_) => {}
                None => {
                    meta.insert(counter::CURRENCY, packed)
                        .map_err(StoreError::from)?;
                }
            }
        }
        txn.commit().map_err(StoreError::from)?;
        Ok(())
    }

    /// How many handles to the database exist (shutdown waits for its own to be last).
    pub fn handle_count(&self) -> usize {
        Arc::strong_count(&self.db)
    }

    pub fn db(&self) -> &Database {
        &self.db
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the database answers a read (for `/readyz`).
    pub fn check_readable(&self) -> Result<(), StoreError> {
        use redb::ReadableDatabase;
        let txn = self.db.begin_read()?;
        let meta = txn.open_table(tables::META)?;
        meta.get(counter::SCHEMA)?;
        Ok(())
    }
}

fn create_tables(txn: &WriteTransaction) -> Result<(), StoreError> {
    struct Create<'t>(&'t WriteTransaction);
    impl tables::TableVisitor for Create<'_> {
        fn visit<K: redb::Key + 'static, V: redb::Value + 'static>(
            &mut self,
            table: redb::TableDefinition<'static, K, V>,
        ) -> Result<(), StoreError> {
            self.0.open_table(table)?;
            Ok(())
        }
    }
    tables::every_table(&mut Create(txn))
}

/// Takes the next value of a counter in `META` inside `txn` (starting at 1).
pub fn next_id(txn: &WriteTransaction, name: &str) -> Result<u64, StoreError> {
    let mut meta = txn.open_table(tables::META)?;
    let next = meta.get(name)?.map_or(1, |v| v.value());
    meta.insert(name, next + 1)?;
    Ok(next)
}

/// Reads a record table's value and decodes it.
pub fn get_record<'k, K, T>(
    table: &impl ReadableTable<K, &'static [u8]>,
    key: impl std::borrow::Borrow<K::SelfType<'k>>,
) -> Result<Option<T>, StoreError>
where
    K: redb::Key + 'static,
    T: Record,
{
    match table.get(key)? {
        Some(guard) => Ok(Some(codec::decode(guard.value())?)),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_open_of_a_data_dir_is_refused_clearly() {
        let dir = tempfile::tempdir().unwrap();
        let first = Store::open(dir.path()).unwrap();
        let second = Store::open(dir.path());
        assert!(matches!(second, Err(OpenError::Locked(_))), "{second:?}");
        first.check_readable().unwrap();
        drop(first);
        Store::open(dir.path()).expect("reopens once the owner is gone");
    }

    #[test]
    fn currency_is_fixed_per_data_dir() {
        use crate::domain::Currency;
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.ensure_currency(Currency::EUR).unwrap();
        store.ensure_currency(Currency::EUR).unwrap();
        let err = store
            .ensure_currency(Currency::parse("USD").unwrap())
            .unwrap_err();
        assert!(err.to_string().contains("keeps prices in EUR"), "{err}");
    }

    /// A schema-1 file (listings as two B-trees) opens as this schema with the same
    /// keys in the runs, and the old tables gone.
    #[test]
    fn schema_1_listings_become_runs() {
        use crate::store::listing::{Direction, Index, ListingTables, name_key, price_key};
        use crate::store::tables::legacy::{PRODUCTS_BY_NAME, PRODUCTS_BY_PRICE};
        use std::ops::Bound;
        // More keys than one block holds, so the run spans several blocks.
        let products: Vec<(u64, String, String)> = (0..3_000u64)
            .map(|i| {
                (
                    (i * 7_919) % 1_000,
                    format!("name {:04}", (i * 31) % 3_000),
                    format!("SKU-{i}"),
                )
            })
            .collect();
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path()).unwrap();
            let txn = store.db().begin_write().unwrap();
            {
                let mut by_price = txn.open_table(PRODUCTS_BY_PRICE).unwrap();
                let mut by_name = txn.open_table(PRODUCTS_BY_NAME).unwrap();
                for (price, name, sku) in &products {
                    by_price.insert((*price, sku.as_str()), ()).unwrap();
                    by_name.insert((name.as_str(), sku.as_str()), ()).unwrap();
                }
                txn.open_table(tables::META)
                    .unwrap()
                    .insert(counter::SCHEMA, 1)
                    .unwrap();
            }
            txn.delete_table(tables::LISTING_RUNS).unwrap();
            txn.delete_table(tables::LISTING_BLOCKS).unwrap();
            txn.commit().unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        let txn = store.db().begin_read().unwrap();
        let schema = txn
            .open_table(tables::META)
            .unwrap()
            .get(counter::SCHEMA)
            .unwrap();
        assert_eq!(schema.map(|v| v.value()), Some(SCHEMA_VERSION));
        assert!(txn.open_table(PRODUCTS_BY_PRICE).is_err(), "old table kept");
        assert!(txn.open_table(PRODUCTS_BY_NAME).is_err(), "old table kept");
        let listings = ListingTables::open(&txn).unwrap();
        let keys = |index| {
            let mut scan = listings
                .scan(
                    index,
                    Bound::Unbounded,
                    Bound::Unbounded,
                    Direction::Ascending,
                )
                .unwrap();
            let mut keys = Vec::new();
            while let Some((key, present)) = scan.next_key().unwrap() {
                assert!(present);
                keys.push(key.to_vec());
            }
            keys
        };
        let mut by_price: Vec<_> = products.iter().map(|(p, _, s)| price_key(*p, s)).collect();
        let mut by_name: Vec<_> = products.iter().map(|(_, n, s)| name_key(n, s)).collect();
        by_price.sort();
        by_name.sort();
        assert_eq!(keys(Index::Price), by_price);
        assert_eq!(keys(Index::Name), by_name);
    }

    #[test]
    fn refuses_newer_schema() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path()).unwrap();
            let txn = store.db().begin_write().unwrap();
            txn.open_table(tables::META)
                .unwrap()
                .insert(counter::SCHEMA, 99)
                .unwrap();
            txn.commit().unwrap();
        }
        assert!(matches!(
            Store::open(dir.path()),
            Err(OpenError::NewerSchema { found: 99 })
        ));
    }
}
