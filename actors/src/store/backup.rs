//! Online backups, and the restore that proves one before it lands.
//!
//! A backup is every table copied, entry by entry, out of **one read transaction**:
//! redb's snapshot isolation gives a consistent cut (a checkout either is in it
//! with its stock movement and its event, or is not) while checkouts and imports
//! go on committing. The copy is a new redb file written under a temporary name,
//! synced, then renamed into place, with a manifest beside it (`FILE.manifest.json`:
//! size, SHA-256, the last order id and event seq in the copy, the schema version).
//! A copy, not the file's bytes: redb rewrites freed pages in place, so bytes read
//! while it commits are not a snapshot.
//!
//! A restore checks the manifest's size and SHA-256 first, refuses a directory
//! that holds anything, and refuses a copy of a newer schema; it touches nothing
//! until every check passed, and lands the database with the same write, sync,
//! rename.

use std::io::Write;
use std::path::{Path, PathBuf};

use redb::{Database, Durability, ReadTransaction, ReadableDatabase, ReadableTable};
use redb::{Key, TableDefinition, TableHandle, Value, WriteTransaction};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::tables::{self, EVENTS, META, ORDERS, TableVisitor, counter};
use super::{DB_FILE_NAME, SCHEMA_VERSION, Store};
use crate::common::StoreError;
use crate::domain::Timestamp;
use crate::limits::BACKUP_COMMIT_ENTRIES;

/// Ends the name of a backup's manifest, beside the backup file.
pub const MANIFEST_SUFFIX: &str = ".manifest.json";

/// What a backup holds, written beside it and answered to whoever asked for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Where the backup file is.
    pub file: PathBuf,
    pub bytes: u64,
    /// Of the file's bytes, lower-case hex.
    pub sha256: String,
    /// The highest order id in the copy (0: none): every order up to it is in it.
    pub last_order_id: u64,
    /// The newest event's seq in the copy (0: none).
    pub event_seq: u64,
    /// RFC 3339, when the snapshot was taken.
    pub created_at: String,
    /// The database schema the copy was written with.
    pub schema_version: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("{0} exists already; a backup never overwrites a file")]
    Exists(PathBuf),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the database holds a table the backup does not know: {0}")]
    UnknownTable(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error("{0} is not empty; a restore goes only into an empty or missing directory")]
    NotEmpty(PathBuf),
    #[error("no manifest {0} beside the backup (it is written with every backup)")]
    NoManifest(PathBuf),
    #[error("manifest {path} cannot be read: {reason}")]
    BadManifest { path: PathBuf, reason: String },
    #[error(
        "{file} does not match its manifest ({what}): the backup is damaged or is not the one the manifest describes"
    )]
    Mismatch { file: PathBuf, what: String },
    #[error(
        "the backup has database schema version {found}, newer than this build's {SCHEMA_VERSION}: restore it with the release that made it"
    )]
    NewerSchema { found: u64 },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the backup cannot be read as a database: {0}")]
    Database(String),
}

fn io<E>(path: &Path) -> impl FnOnce(std::io::Error) -> E + '_
where
    E: From<(PathBuf, std::io::Error)>,
{
    move |source| E::from((path.to_owned(), source))
}

impl From<(PathBuf, std::io::Error)> for BackupError {
    fn from((path, source): (PathBuf, std::io::Error)) -> Self {
        BackupError::Io { path, source }
    }
}

impl From<(PathBuf, std::io::Error)> for RestoreError {
    fn from((path, source): (PathBuf, std::io::Error)) -> Self {
        RestoreError::Io { path, source }
    }
}

/// The manifest's path for a backup file.
pub fn manifest_path(file: &Path) -> PathBuf {
    let mut name = file.as_os_str().to_owned();
    name.push(MANIFEST_SUFFIX);
    PathBuf::from(name)
}

/// The default name of a backup taken now, in `<data-dir>/backups/`.
fn default_file(data_dir: &Path, at: Timestamp) -> PathBuf {
    let stamp: String = at
        .to_rfc3339()
        .chars()
        .filter(char::is_ascii_digit)
        .collect();
    data_dir
        .join("backups")
        .join(format!("orderflow-{stamp}.redb"))
}

/// Copies the whole database, as one snapshot, into a new file: `to`, or one named
/// by the time in `<data-dir>/backups/`.
pub fn take(store: &Store, to: Option<&Path>) -> Result<Manifest, BackupError> {
    let default;
    let dest = match to {
        Some(to) => to,
        None => {
            let data_dir = store.path().parent().unwrap_or(Path::new("."));
            default = default_file(data_dir, Timestamp::now());
            &default
        }
    };
    if dest.exists() {
        return Err(BackupError::Exists(dest.to_owned()));
    }
    let dir = dest.parent().unwrap_or(Path::new("."));
    super::private::dir(dir).map_err(io::<BackupError>(dir))?;
    let tmp = dir.join(format!(
        ".{}.partial-{}",
        dest.file_name()
            .map_or("backup".into(), |n| n.to_string_lossy()),
        std::process::id()
    ));
    let created_at = Timestamp::now();
    let result = copy_into(store, &tmp).and_then(|(last_order_id, event_seq)| {
        let (bytes, sha256) = sync_and_hash(&tmp).map_err(io::<BackupError>(&tmp))?;
        // The backup is only ever seen whole: renamed into place once synced
        // (and readable by the owner only).
        super::private::file(&tmp).map_err(io::<BackupError>(&tmp))?;
        std::fs::rename(&tmp, dest).map_err(io::<BackupError>(dest))?;
        sync_dir(dir).map_err(io::<BackupError>(dir))?;
        let manifest = Manifest {
            file: dest.to_owned(),
            bytes,
            sha256,
            last_order_id,
            event_seq,
            created_at: created_at.to_rfc3339(),
            schema_version: SCHEMA_VERSION,
        };
        write_manifest(&manifest)?;
        Ok(manifest)
    });
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// The copy itself: answers the last order id and event seq of the snapshot.
fn copy_into(store: &Store, tmp: &Path) -> Result<(u64, u64), BackupError> {
    let snapshot = store.db().begin_read().map_err(StoreError::from)?;
    let mut known = Names::default();
    tables::every_table(&mut known)?;
    for table in snapshot.list_tables().map_err(StoreError::from)? {
        if !known.0.iter().any(|n| n == table.name()) {
            return Err(BackupError::UnknownTable(table.name().to_owned()));
        }
    }
    let last_order_id = last_key(&snapshot, ORDERS)?;
    let event_seq = last_key(&snapshot, EVENTS)?;
    let out = Database::create(tmp).map_err(|e| StoreError::from(redb::Error::from(e)))?;
    let mut copy = Copy {
        from: &snapshot,
        to: &out,
        txn: None,
        pending: 0,
    };
    tables::every_table(&mut copy)?;
    copy.commit(Durability::Immediate)?;
    Ok((last_order_id, event_seq))
}

fn last_key(
    snapshot: &ReadTransaction,
    table: TableDefinition<'static, u64, &'static [u8]>,
) -> Result<u64, StoreError> {
    let table = snapshot.open_table(table)?;
    Ok(table.last()?.map_or(0, |(k, _)| k.value()))
}

#[derive(Default)]
struct Names(Vec<String>);

impl TableVisitor for Names {
    fn visit<K: Key + 'static, V: Value + 'static>(
        &mut self,
        table: TableDefinition<'static, K, V>,
    ) -> Result<(), StoreError> {
        self.0.push(table.name().to_owned());
        Ok(())
    }
}

/// Copies each table in key order, committing every [`BACKUP_COMMIT_ENTRIES`]
/// without a sync (the file is not a backup until the last, synced commit and the
/// rename), so memory stays bounded for any database size.
struct Copy<'a> {
    from: &'a ReadTransaction,
    to: &'a Database,
    txn: Option<WriteTransaction>,
    pending: usize,
}

impl Copy<'_> {
    fn txn(&mut self) -> Result<&WriteTransaction, StoreError> {
        if self.txn.is_none() {
            let mut txn = self.to.begin_write()?;
            txn.set_durability(Durability::None)
                .map_err(|e| StoreError::from(redb::Error::from(e)))?;
            self.txn = Some(txn);
        }
        Ok(self.txn.as_ref().expect("just set"))
    }

    fn commit(&mut self, durability: Durability) -> Result<(), StoreError> {
        let mut txn = match self.txn.take() {
            Some(txn) => txn,
            None => self.to.begin_write()?,
        };
        txn.set_durability(durability)
            .map_err(|e| StoreError::from(redb::Error::from(e)))?;
        txn.commit()?;
        self.pending = 0;
        Ok(())
    }
}

impl TableVisitor for Copy<'_> {
    fn visit<K: Key + 'static, V: Value + 'static>(
        &mut self,
        table: TableDefinition<'static, K, V>,
    ) -> Result<(), StoreError> {
        let source = self.from.open_table(table)?;
        // The table exists in the copy even when empty.
        self.txn()?.open_table(table)?;
        let mut entries = source.iter()?;
        loop {
            let room = BACKUP_COMMIT_ENTRIES - self.pending;
            let n = {
                let txn = self.txn()?;
                let mut target = txn.open_table(table)?;
                let mut n = 0;
                for entry in entries.by_ref() {
                    let (k, v) = entry?;
                    target.insert(k.value(), v.value())?;
                    n += 1;
                    if n >= room {
                        break;
                    }
                }
                n
            };
            self.pending += n;
            if n < room {
                return Ok(());
            }
            self.commit(Durability::None)?;
        }
    }
}

/// Syncs a finished file and answers its size and SHA-256.
fn sync_and_hash(path: &Path) -> std::io::Result<(u64, String)> {
    let file = std::fs::File::open(path)?;
    file.sync_all()?;
    hash_file(path)
}

/// Size and SHA-256 (lower-case hex) of a file, read in bounded memory.
pub fn hash_file(path: &Path) -> std::io::Result<(u64, String)> {
    let mut hasher = Sha256::new();
    let bytes = std::io::copy(&mut std::fs::File::open(path)?, &mut hasher)?;
    Ok((bytes, crate::text::hex(&hasher.finalize())))
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

fn write_manifest(manifest: &Manifest) -> Result<(), BackupError> {
    let path = manifest_path(&manifest.file);
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(".manifest.partial-{}", std::process::id()));
    let json = serde_json::to_vec_pretty(manifest).expect("a manifest serializes");
    let written = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&json)?;
        f.sync_all()?;
        super::private::file(&tmp)?;
        std::fs::rename(&tmp, &path)?;
        sync_dir(dir)
    })();
    written.map_err(|source| {
        let _ = std::fs::remove_file(&tmp);
        BackupError::Io { path, source }
    })
}

/// Restores `from` into `data_dir`, which must be empty or missing; answers the
/// backup's manifest. Nothing is written before every check passed.
pub fn restore(from: &Path, data_dir: &Path) -> Result<Manifest, RestoreError> {
    let existed = data_dir.exists();
    if existed {
        let mut entries = std::fs::read_dir(data_dir).map_err(io::<RestoreError>(data_dir))?;
        if entries.next().is_some() {
            return Err(RestoreError::NotEmpty(data_dir.to_owned()));
        }
    }
    let manifest_file = manifest_path(from);
    let raw = match std::fs::read(&manifest_file) {
        Ok(raw) => raw,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(RestoreError::NoManifest(manifest_file));
        }
        Err(e) => return Err(io::<RestoreError>(&manifest_file)(e)),
    };
    let manifest: Manifest =
        serde_json::from_slice(&raw).map_err(|e| RestoreError::BadManifest {
            path: manifest_file.clone(),
            reason: e.to_string(),
        })?;
    if manifest.schema_version > SCHEMA_VERSION {
        return Err(RestoreError::NewerSchema {
            found: manifest.schema_version,
        });
    }
    let (bytes, sha256) = hash_file(from).map_err(io::<RestoreError>(from))?;
    let mismatch = |what: String| RestoreError::Mismatch {
        file: from.to_owned(),
        what,
    };
    if bytes != manifest.bytes {
        return Err(mismatch(format!(
            "{bytes} bytes, the manifest says {}",
            manifest.bytes
        )));
    }
    if sha256 != manifest.sha256 {
        return Err(mismatch(format!(
            "SHA-256 {sha256}, the manifest says {}",
            manifest.sha256
        )));
    }
    // The copy lands under a temporary name, is opened there (redb checks it, and
    // its own schema version is read), and only then takes the database's name.
    super::private::dir(data_dir).map_err(io::<RestoreError>(data_dir))?;
    let tmp = data_dir.join(format!(".{DB_FILE_NAME}.partial"));
    let landed = land(from, &tmp, data_dir);
    if landed.is_err() {
        let _ = std::fs::remove_file(&tmp);
        if !existed {
            let _ = std::fs::remove_dir(data_dir);
        }
    }
    landed.map(|()| manifest)
}

fn land(from: &Path, tmp: &Path, data_dir: &Path) -> Result<(), RestoreError> {
    std::fs::copy(from, tmp).map_err(io::<RestoreError>(tmp))?;
    super::private::file(tmp).map_err(io::<RestoreError>(tmp))?;
    std::fs::File::open(tmp)
        .and_then(|f| f.sync_all())
        .map_err(io::<RestoreError>(tmp))?;
    // Opened once: its schema version checked, and a journal id of its own given
    // (the restored copy is a database of its own: it can be told from its
    // source, and never takes the source's journal records for its own).
    let db = Database::open(tmp).map_err(|e| RestoreError::Database(e.to_string()))?;
    let database = |e: &dyn std::fmt::Display| RestoreError::Database(e.to_string());
    let txn = db.begin_write().map_err(|e| database(&e))?;
    let found = txn
        .open_table(META)
        .map_err(|e| database(&e))?
        .get(counter::SCHEMA)
        .map_err(|e| database(&e))?
        .map_or(0, |v| v.value());
    if found > SCHEMA_VERSION {
        return Err(RestoreError::NewerSchema { found });
    }
    super::journal::new_journal_id(&txn).map_err(|e| database(&e))?;
    txn.commit().map_err(|e| database(&e))?;
    drop(db);
    let db_file = data_dir.join(DB_FILE_NAME);
    std::fs::rename(tmp, &db_file).map_err(io::<RestoreError>(&db_file))?;
    sync_dir(data_dir).map_err(io::<RestoreError>(data_dir))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use redb::ReadableDatabase;

    fn journal_id(store: &Store) -> Option<u64> {
        let txn = store.db().begin_read().unwrap();
        let meta = txn.open_table(META).unwrap();
        meta.get(counter::JOURNAL_ID).unwrap().map(|v| v.value())
    }

    #[test]
    fn a_restored_copy_has_a_journal_id_of_its_own() {
        let source = tempfile::tempdir().unwrap();
        let file = source.path().join("copy.redb");
        let id = {
            let store = Store::open(source.path()).unwrap();
            super::super::journal::Journal::open(&store, source.path()).unwrap();
            take(&store, Some(&file)).unwrap();
            journal_id(&store).expect("the source journals")
        };
        let target = tempfile::tempdir().unwrap();
        let restored_dir = target.path().join("data");
        restore(&file, &restored_dir).unwrap();
        let restored = Store::open(&restored_dir).unwrap();
        let restored_id = journal_id(&restored).expect("a journal id");
        assert_ne!(
            restored_id, id,
            "the restored copy took its source's journal id"
        );
    }
}
