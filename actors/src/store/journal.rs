//! The ledger's journal: a sequential commit log in front of redb.
//!
//! Why one file: the record format, what writes it ([`Capture`], [`Logged`],
//! [`Journal`]) and what reads it back ([`recover`]) must agree byte for byte.
//!
//! # Why
//!
//! A durable redb commit writes every B-tree page the batch touched (some 40
//! random pages for a batch of 32 checkouts) and waits for `fdatasync`. A batch of
//! checkouts changes a few kilobytes of rows. So a journaled batch is committed to
//! redb *without* waiting for the disk (`Durability::None`), its rows are appended
//! to this file as one record, and its callers are answered once that file is
//! synced: one sequential write instead of forty random ones. Every
//! [`JOURNAL_CHECKPOINT_MS`] (or when the file is full) the ledger commits a batch
//! durably instead; that makes every batch before it durable in redb (any durable
//! commit of the file does, whichever actor makes it), and the file is written from
//! its start again.
//!
//! # What a record holds
//!
//! The rows the batch wrote, as redb stores them: for each write, the table (a
//! [`JournaledTable`]), the key's bytes and the value's bytes (or none, for a
//! removal). Replaying a record is writing those bytes again: nothing is decided a
//! second time, so event ids, timestamps and order ids come back as they were
//! answered. A batch writes through [`Logged`] tables only; a write that bypasses
//! them ([`Logged::unlogged`]) spoils the [`Capture`] and the batch commits durably.
//!
//! ```text
//! record := magic "OFJ1" | crc32 of the rest (u32) | journal id (u64) | seq (u64)
//!           | payload length (u32) | payload
//! payload := { table (u8) | 1 (put) | key length (u32) | key | value length (u32) | value
//!            | table (u8) | 0 (remove) | key length (u32) | key }
//! ```
//! Integers are little-endian. Records follow one another from offset 0.
//!
//! # Recovery
//!
//! The database remembers, in the same transaction as each journaled batch, that
//! batch's seq (`META["journal_seq"]`). After a crash redb opens at its last
//! durable commit; [`recover`] (run by every writable [`Store`] open) reads the
//! records from the start of the file and writes again those past that seq, in
//! order, as long as each is whole (its checksum holds) and follows the one before
//! (seq + 1). Older records left from before a checkpoint carry lower seqs, so the
//! first record that does not follow ends the log. A record is answered only after
//! the file was synced with it, so a record that is not whole was never answered.

use std::borrow::Borrow;
use std::fs::{File, OpenOptions};
use std::ops::Deref;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use prometheus_client::metrics::counter::Counter;
use redb::{Key, ReadableTable, Table, TableDefinition, Value, WriteTransaction};

use super::Store;
use super::awake::DiskAwake;
use super::tables::{self, counter};
use crate::common::StoreError;
use crate::limits::{JOURNAL_BYTES, JOURNAL_CHECKPOINT_MS};

/// The journal's file name in the data directory, beside the database.
pub const JOURNAL_FILE_NAME: &str = "ledger.journal";

const MAGIC: &[u8; 4] = b"OFJ1";
/// magic, crc, journal id, seq, payload length.
const HEADER_BYTES: usize = 4 + 4 + 8 + 8 + 4;

/// The tables a journaled batch may write: a closed set, so that replay knows each
/// one's key and value types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum JournaledTable {
    Meta = 1,
    Stock = 2,
    Movements = 3,
    Orders = 4,
    OrdersByUser = 5,
    Idempotency = 6,
    IdempotencyExpiry = 7,
    OrderRefs = 8,
    Events = 9,
    EventsMeta = 10,
}

impl JournaledTable {
    const ALL: [Self; 10] = [
        Self::Meta,
        Self::Stock,
        Self::Movements,
        Self::Orders,
        Self::OrdersByUser,
        Self::Idempotency,
        Self::IdempotencyExpiry,
        Self::OrderRefs,
        Self::Events,
        Self::EventsMeta,
    ];

    fn from_byte(byte: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|t| *t as u8 == byte)
    }

    /// Writes one recorded row into this table of `txn`.
    fn replay(
        self,
        txn: &WriteTransaction,
        key: &[u8],
        value: Option<&[u8]>,
    ) -> Result<(), StoreError> {
        match self {
            Self::Meta => rewrite(txn, table::META, key, value),
            Self::Stock => rewrite(txn, table::STOCK, key, value),
            Self::Movements => rewrite(txn, table::MOVEMENTS, key, value),
            Self::Orders => rewrite(txn, table::ORDERS, key, value),
            Self::OrdersByUser => rewrite(txn, table::ORDERS_BY_USER, key, value),
            Self::Idempotency => rewrite(txn, table::IDEMPOTENCY, key, value),
            Self::IdempotencyExpiry => rewrite(txn, table::IDEMPOTENCY_EXPIRY, key, value),
            Self::OrderRefs => rewrite(txn, table::ORDER_REFS, key, value),
            Self::Events => rewrite(txn, table::EVENTS, key, value),
            Self::EventsMeta => rewrite(txn, table::EVENTS_META, key, value),
        }
    }
}

/// A table a journaled batch writes: its redb definition and its tag in the log,
/// paired once (in [`table`]) so that a write and its replay name the same table.
pub struct JournaledDef<K: Key + 'static, V: Value + 'static> {
    def: TableDefinition<'static, K, V>,
    tag: JournaledTable,
}

/// The tables of [`JournaledTable`], each with its definition.
pub mod table {
    use super::{JournaledDef, JournaledTable};
    use crate::store::tables;

    pub const META: JournaledDef<&'static str, u64> = JournaledDef {
        def: tables::META,
        tag: JournaledTable::Meta,
    };
    pub const STOCK: JournaledDef<&'static str, (u64, u64)> = JournaledDef {
        def: tables::STOCK,
        tag: JournaledTable::Stock,
    };
    pub const MOVEMENTS: JournaledDef<(&'static str, u64), &'static [u8]> = JournaledDef {
        def: tables::MOVEMENTS,
        tag: JournaledTable::Movements,
    };
    pub const ORDERS: JournaledDef<u64, &'static [u8]> = JournaledDef {
        def: tables::ORDERS,
        tag: JournaledTable::Orders,
    };
    pub const ORDERS_BY_USER: JournaledDef<(u64, u64), ()> = JournaledDef {
        def: tables::ORDERS_BY_USER,
        tag: JournaledTable::OrdersByUser,
    };
    pub const IDEMPOTENCY: JournaledDef<(u64, &'static str), &'static [u8]> = JournaledDef {
        def: tables::IDEMPOTENCY,
        tag: JournaledTable::Idempotency,
    };
    pub const IDEMPOTENCY_EXPIRY: JournaledDef<(i64, u64, &'static str), ()> = JournaledDef {
        def: tables::IDEMPOTENCY_EXPIRY,
        tag: JournaledTable::IdempotencyExpiry,
    };
    pub const ORDER_REFS: JournaledDef<&'static str, u64> = JournaledDef {
        def: tables::ORDER_REFS,
        tag: JournaledTable::OrderRefs,
    };
    pub const EVENTS: JournaledDef<u64, &'static [u8]> = JournaledDef {
        def: tables::EVENTS,
        tag: JournaledTable::Events,
    };
    pub const EVENTS_META: JournaledDef<&'static str, u64> = JournaledDef {
        def: tables::EVENTS_META,
        tag: JournaledTable::EventsMeta,
    };
}

fn rewrite<K: Key + 'static, V: Value + 'static>(
    txn: &WriteTransaction,
    table: JournaledDef<K, V>,
    key: &[u8],
    value: Option<&[u8]>,
) -> Result<(), StoreError> {
    let mut table = txn.open_table(table.def)?;
    let key = K::from_bytes(key);
    match value {
        Some(value) => {
            table.insert(key, V::from_bytes(value))?;
        }
        None => {
            table.remove(key)?;
        }
    }
    Ok(())
}

/// The rows one batch wrote through its [`Logged`] tables, shared by them.
/// Recording is off until [`Self::start`]: imports and tests pay nothing.
#[derive(Debug, Clone, Default)]
pub struct Capture(Arc<Mutex<Captured>>);

#[derive(Debug, Default)]
struct Captured {
    recording: bool,
    /// A write went past the log since [`Capture::start`].
    spoiled: bool,
    payload: Vec<u8>,
}

impl Capture {
    /// Records every write from now on.
    pub fn start(&self) {
        let mut c = self.lock();
        c.recording = true;
        c.spoiled = false;
        c.payload.clear();
    }

    /// The payload of what was written since [`Self::start`], or `None` if a write
    /// went past the log (or recording never started).
    pub fn take(&self) -> Option<Vec<u8>> {
        let mut c = self.lock();
        let whole = c.recording && !c.spoiled;
        c.recording = false;
        let payload = std::mem::take(&mut c.payload);
        whole.then_some(payload)
    }

    fn put(&self, table: JournaledTable, key: &[u8], value: Option<&[u8]>) {
        let mut c = self.lock();
        if !c.recording || c.spoiled {
            return;
        }
        encode_op(&mut c.payload, table, key, value);
    }

    /// Keeps this batch out of the log: it commits durably.
    pub fn spoil(&self) {
        self.lock().spoiled = true;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Captured> {
        // A panic while recording leaves nothing half-done worth refusing.
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn encode_op(out: &mut Vec<u8>, table: JournaledTable, key: &[u8], value: Option<&[u8]>) {
    out.push(table as u8);
    out.push(u8::from(value.is_some()));
    put_bytes(out, key);
    if let Some(value) = value {
        put_bytes(out, value);
    }
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    let len = u32::try_from(bytes.len()).expect("redb keys and values are under 4 GiB");
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(bytes);
}

/// A table whose writes are recorded in the batch's [`Capture`]. Reads go to the
/// table itself (it derefs to it); writes only through [`Self::insert`] and
/// [`Self::remove`], or [`Self::unlogged`], which keeps the batch out of the log.
pub struct Logged<'txn, K: Key + 'static, V: Value + 'static> {
    table: Table<'txn, K, V>,
    name: JournaledTable,
    capture: Capture,
}

impl<'txn, K: Key + 'static, V: Value + 'static> Logged<'txn, K, V> {
    pub fn open(
        txn: &'txn WriteTransaction,
        table: JournaledDef<K, V>,
        capture: &Capture,
    ) -> Result<Self, StoreError> {
        Ok(Self {
            table: txn.open_table(table.def)?,
            name: table.tag,
            capture: capture.clone(),
        })
    }

    pub fn insert<'k, 'v>(
        &mut self,
        key: impl Borrow<K::SelfType<'k>>,
        value: impl Borrow<V::SelfType<'v>>,
    ) -> Result<(), redb::StorageError> {
        self.capture.put(
            self.name,
            K::as_bytes(key.borrow()).as_ref(),
            Some(V::as_bytes(value.borrow()).as_ref()),
        );
        self.table.insert(key, value)?;
        Ok(())
    }

    pub fn remove<'k>(
        &mut self,
        key: impl Borrow<K::SelfType<'k>>,
    ) -> Result<(), redb::StorageError> {
        self.capture
            .put(self.name, K::as_bytes(key.borrow()).as_ref(), None);
        self.table.remove(key)?;
        Ok(())
    }

    /// The table for writes the log does not see (sorted stretches of an import):
    /// the batch then commits durably.
    pub fn unlogged(&mut self) -> &mut Table<'txn, K, V> {
        self.capture.spoil();
        &mut self.table
    }
}

impl<'txn, K: Key + 'static, V: Value + 'static> Deref for Logged<'txn, K, V> {
    type Target = Table<'txn, K, V>;
    fn deref(&self) -> &Self::Target {
        &self.table
    }
}

/// One record as read back.
#[derive(Debug, PartialEq, Eq)]
struct Record {
    seq: u64,
    payload: Vec<u8>,
}

fn encode_record(out: &mut Vec<u8>, id: u64, seq: u64, payload: &[u8]) {
    out.clear();
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&id.to_le_bytes());
    out.extend_from_slice(&seq.to_le_bytes());
    let len = u32::try_from(payload.len()).expect("a batch's rows are under 4 GiB");
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(payload);
    let crc = crc32fast::hash(&out[8..]);
    out[4..8].copy_from_slice(&crc.to_le_bytes());
}

/// The record at `at` of `bytes`, if one of journal `id` is whole there.
fn decode_record(bytes: &[u8], at: usize, id: u64) -> Option<(Record, usize)> {
    let header = bytes.get(at..at.checked_add(HEADER_BYTES)?)?;
    if &header[..4] != MAGIC {
        return None;
    }
    let crc = u32::from_le_bytes(header[4..8].try_into().ok()?);
    let found_id = u64::from_le_bytes(header[8..16].try_into().ok()?);
    let seq = u64::from_le_bytes(header[16..24].try_into().ok()?);
    let len = u32::from_le_bytes(header[24..28].try_into().ok()?) as usize;
    let end = at.checked_add(HEADER_BYTES)?.checked_add(len)?;
    let whole = bytes.get(at..end)?;
    if found_id != id || crc32fast::hash(&whole[8..]) != crc {
        return None;
    }
    let payload = whole[HEADER_BYTES..].to_vec();
    Some((Record { seq, payload }, end))
}

/// Writes a record's rows into `txn`.
fn replay_payload(txn: &WriteTransaction, payload: &[u8]) -> Result<(), StoreError> {
    let corrupt = || StoreError::Corrupt("a journal record's rows do not parse".into());
    let mut rest = payload;
    let take = |n: usize, rest: &mut &[u8]| -> Result<Vec<u8>, StoreError> {
        if rest.len() < n {
            return Err(corrupt());
        }
        let (head, tail) = rest.split_at(n);
        *rest = tail;
        Ok(head.to_vec())
    };
    while !rest.is_empty() {
        let head = take(2, &mut rest)?;
        let table = JournaledTable::from_byte(head[0]).ok_or_else(corrupt)?;
        let len = u32::from_le_bytes(take(4, &mut rest)?.try_into().map_err(|_| corrupt())?);
        let key = take(len as usize, &mut rest)?;
        let value = match head[1] {
            0 => None,
            1 => {
                let len =
                    u32::from_le_bytes(take(4, &mut rest)?.try_into().map_err(|_| corrupt())?);
                Some(take(len as usize, &mut rest)?)
            }
            _ => return Err(corrupt()),
        };
        table.replay(txn, &key, value.as_deref())?;
    }
    Ok(())
}

fn meta_value(txn: &WriteTransaction, name: &str) -> Result<Option<u64>, StoreError> {
    let meta = txn.open_table(tables::META)?;
    Ok(meta.get(name)?.map(|v| v.value()))
}

/// Writes again the journal's records past the database's `journal_seq`, in one
/// durable transaction; answers how many. Run by every writable open.
///
/// Refuses (and writes nothing) when the journal cannot bring the database up to
/// date: see [`read_log`].
pub fn recover(store: &Store, data_dir: &Path) -> Result<usize, StoreError> {
    let path = data_dir.join(JOURNAL_FILE_NAME);
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(StoreError::Io(e)),
    };
    let txn = store.db().begin_write()?;
    let Some(id) = meta_value(&txn, counter::JOURNAL_ID)? else {
        // This database never journaled: the file is not about it.
        return Ok(0);
    };
    let durable = meta_value(&txn, counter::JOURNAL_SEQ)?.unwrap_or(0);
    let records = read_log(&bytes, id, durable).map_err(|refusal| refusal.into_error(&path))?;
    let Some(last) = records.last().map(|r| r.seq) else {
        txn.abort()?;
        return Ok(0);
    };
    for record in &records {
        replay_payload(&txn, &record.payload)?;
    }
    txn.open_table(tables::META)?
        .insert(counter::JOURNAL_SEQ, last)?;
    txn.commit()?;
    tracing::info!(
        records = records.len(),
        through = last,
        "ledger journal replayed after an unclean stop"
    );
    Ok(records.len())
}

/// Why the journal cannot bring the database up to date.
#[derive(Debug, PartialEq, Eq)]
enum Refusal {
    /// The record at `offset` is not whole, and a whole record past the
    /// database's last durable batch (`seq`) lies after it: each record is synced
    /// before the next is written, so the damaged one was answered too.
    Damaged {
        offset: usize,
        seq: u64,
        durable: u64,
    },
    /// Whole records that skip seqs: records in between are missing.
    Gap { from: u64, to: u64, durable: u64 },
}

impl Refusal {
    fn into_error(self, path: &Path) -> StoreError {
        let (what, durable) = match self {
            Self::Damaged {
                offset,
                seq,
                durable,
            } => (
                format!(
                    "the record at byte {offset} is damaged, and batch {seq}, acknowledged after it, lies beyond it"
                ),
                durable,
            ),
            Self::Gap { from, to, durable } => (
                format!(
                    "it jumps from batch {from} to batch {to}: acknowledged batches are missing"
                ),
                durable,
            ),
        };
        StoreError::Corrupt(format!(
            "the ledger journal {} cannot be replayed: {what}. Nothing was changed. \
             Restore the latest backup (`orderflow restore`); or, to open the database \
             as of its last durable batch ({durable}) and lose the acknowledged batches \
             the journal holds past it, move the journal file out of the data directory \
             (keep it for inspection) and start again",
            path.display()
        ))
    }
}

/// The records of journal `id` in `bytes` past the database's last durable batch
/// `durable`, in order.
///
/// The log is the run of whole records from offset 0 whose seqs follow one
/// another. It ends at a record that is not whole (a torn last write, or zeros),
/// or at a whole one with a smaller seq (left from before a checkpoint). A record
/// is written only after the one before it was synced and answered, so where the
/// log ends at a record that is not whole, no whole record with a larger seq may
/// lie after it: if one does, the broken record is damage, not a torn tail, and
/// the open refuses instead of dropping what was answered.
fn read_log(bytes: &[u8], id: u64, durable: u64) -> Result<Vec<Record>, Refusal> {
    let mut at = 0;
    let mut newest = durable;
    let mut previous: Option<u64> = None;
    let mut records = Vec::new();
    loop {
        let Some((record, next)) = decode_record(bytes, at, id) else {
            let floor = previous.unwrap_or(0).max(durable);
            return match later_write_after(bytes, at + 1, id, floor) {
                Some(seq) => Err(Refusal::Damaged {
                    offset: at,
                    seq,
                    durable,
                }),
                None => Ok(records),
            };
        };
        if previous.is_some_and(|p| record.seq <= p) {
            return Ok(records);
        }
        let follows = previous.map_or(record.seq <= newest + 1, |p| record.seq == p + 1);
        if !follows {
            return Err(Refusal::Gap {
                from: previous.unwrap_or(newest),
                to: record.seq,
                durable,
            });
        }
        previous = Some(record.seq);
        at = next;
        if record.seq > newest {
            newest = record.seq;
            records.push(record);
        }
    }
}

/// The seq of a record of journal `id` that was written after the one that
/// breaks the log at `from - 1`: a record header at or after `from` carrying the
/// journal's id and a seq above `floor`, whole or not. A header whose record is
/// torn still proves that its write began, so the record before it had been
/// synced and answered. (The id is 64 random bits: rows never hold it by chance;
/// a seq further above `floor` than the file has room for records is not a seq.)
fn later_write_after(bytes: &[u8], from: usize, id: u64, floor: u64) -> Option<u64> {
    let id_bytes = id.to_le_bytes();
    let most = floor.saturating_add((bytes.len() / HEADER_BYTES) as u64);
    // The id stands 8 bytes into a header, which starts at `from` or later.
    let start = from + 8;
    memchr::memmem::find_iter(bytes.get(start..)?, &id_bytes).find_map(|found| {
        let at = start + found;
        bytes
            .get(at + 8..at + 16)
            .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
            .filter(|seq| (floor + 1..=most).contains(seq))
    })
}

/// The ledger's end of the journal: it appends a record per journaled batch and
/// syncs it before the batch's callers are answered.
///
/// The sync is made on the ledger's own thread. Handing it to a thread of its
/// own, so that the ledger could apply the next batch meanwhile, was measured
/// (docs/benchmarks.md): on two cores the extra wake-up per batch cost more than
/// the overlap gained (40,000 orders/s against 62,600 inline).
pub struct Journal {
    file: File,
    id: u64,
    offset: u64,
    next_seq: u64,
    last_checkpoint: Instant,
    buf: Vec<u8>,
    /// A write or sync failed: every later batch commits to redb durably.
    broken: bool,
    /// Keeps the disk awake while a batch is built, if asked and possible.
    awake: Option<DiskAwake>,
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journal")
            .field("offset", &self.offset)
            .field("next_seq", &self.next_seq)
            .field("broken", &self.broken)
            .finish_non_exhaustive()
    }
}

impl Journal {
    /// Opens (creating and filling with zeros if needed) the journal of `store`,
    /// whose database [`recover`] has already brought up to date.
    ///
    /// Each open starts a new generation: a fresh journal id, committed durably
    /// before any record is written, so no record written before this open (all
    /// of them already replayed) can ever be replayed again, whatever happens to
    /// the database afterwards.
    pub fn open(store: &Store, data_dir: &Path) -> Result<Self, StoreError> {
        let txn = store.db().begin_write()?;
        let durable = meta_value(&txn, counter::JOURNAL_SEQ)?.unwrap_or(0);
        let id = new_journal_id(&txn)?;
        txn.commit()?;
        Ok(Self {
            file: preallocated(&data_dir.join(JOURNAL_FILE_NAME))?,
            id,
            offset: 0,
            next_seq: durable + 1,
            last_checkpoint: Instant::now(),
            buf: Vec::new(),
            broken: false,
            awake: None,
        })
    }

    /// Keeps the disk awake while the ledger builds a batch (see
    /// [`crate::store::awake`]). A file system that refuses it (tmpfs) leaves the
    /// journal as it is, with a log line saying so. The reads are counted in
    /// `reads`.
    pub fn keep_disk_awake(mut self, data_dir: &Path, reads: Counter) -> Self {
        match DiskAwake::start(&data_dir.join(JOURNAL_FILE_NAME), reads) {
            Ok(awake) => self.awake = Some(awake),
            Err(e) => {
                tracing::info!(error = %e, "the disk cannot be kept awake for the journal's syncs; going without")
            }
        }
        self
    }

    /// A batch that may be journaled is being built.
    pub fn batch_started(&self) {
        if let Some(awake) = &self.awake {
            awake.busy();
        }
    }

    /// The batch is done (its sync starts, or it is not journaled).
    pub fn batch_ended(&self) {
        if let Some(awake) = &self.awake {
            awake.rest();
        }
    }

    /// The seq the next record takes.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Whether a record of `payload_bytes` may be journaled now: the file has room,
    /// the last checkpoint is recent and the file has not failed.
    pub fn takes(&self, payload_bytes: usize) -> bool {
        !self.broken
            && self.offset + (HEADER_BYTES + payload_bytes) as u64 <= JOURNAL_BYTES
            && self.last_checkpoint.elapsed() < Duration::from_millis(JOURNAL_CHECKPOINT_MS)
    }

    /// Appends and syncs the record of the batch just committed to redb with seq
    /// [`Self::next_seq`]. On an error the journal is broken for good; the caller
    /// makes the batch durable in redb instead.
    pub fn append(&mut self, payload: &[u8]) -> Result<(), StoreError> {
        encode_record(&mut self.buf, self.id, self.next_seq, payload);
        self.batch_ended();
        let written = self
            .file
            .write_all_at(&self.buf, self.offset)
            .and_then(|()| self.file.sync_data());
        if let Err(e) = written {
            self.broken = true;
            return Err(StoreError::Io(e));
        }
        self.offset += self.buf.len() as u64;
        self.next_seq += 1;
        Ok(())
    }

    /// Whether records were written since the last checkpoint, and it is time for
    /// the next.
    pub fn due(&self) -> bool {
        self.offset > 0
            && self.last_checkpoint.elapsed() >= Duration::from_millis(JOURNAL_CHECKPOINT_MS)
    }

    /// A durable commit of the ledger holds every record so far: the file is
    /// written from its start again.
    pub fn checkpointed(&mut self) {
        self.offset = 0;
        self.last_checkpoint = Instant::now();
    }
}

/// Gives the database of `txn` a journal id no record yet carries (a restored
/// copy gets one too, so it cannot take its source's records for its own).
pub fn new_journal_id(txn: &WriteTransaction) -> Result<u64, StoreError> {
    let old = meta_value(txn, counter::JOURNAL_ID)?;
    let id = loop {
        let id = rand::random::<u64>() | 1;
        if Some(id) != old {
            break id;
        }
    };
    txn.open_table(tables::META)?
        .insert(counter::JOURNAL_ID, id)?;
    Ok(id)
}

/// The journal file, `JOURNAL_BYTES` long and written through (no hole): a sync of
/// a record then never has to change the file's size or allocate blocks.
fn preallocated(path: &Path) -> Result<File, StoreError> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(super::private::FILE_MODE)
        .open(path)?;
    super::private::file(path)?;
    let len = file.metadata()?.len();
    if len < JOURNAL_BYTES {
        let zeros = vec![0u8; 1 << 20];
        let mut at = len;
        while at < JOURNAL_BYTES {
            let n = usize::try_from(JOURNAL_BYTES - at).map_or(zeros.len(), |n| n.min(zeros.len()));
            file.write_all_at(&zeros[..n], at)?;
            at += n as u64;
        }
        file.sync_all()?;
        if let Some(dir) = path.parent() {
            File::open(dir)?.sync_all()?;
        }
    }
    Ok(file)
}

/// Commits nothing, durably: every commit before it becomes durable too (a
/// checkpoint, and the fallback when the journal fails).
pub fn durable_empty_commit(store: &Store) -> Result<(), StoreError> {
    let txn = store.db().begin_write()?;
    txn.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use redb::ReadableDatabase;

    /// Writes `rows` into ORDERS through a [`Logged`] table in a transaction that
    /// is then abandoned, as a crash abandons a commit redb had not made durable,
    /// and appends the record of those writes to the journal.
    fn journal_but_lose(store: &Store, journal: &mut Journal, rows: &[(u64, &[u8])]) {
        journal.append(&captured(store, rows)).unwrap();
    }

    /// The journal payload of a batch that writes `rows` into ORDERS (and removes
    /// order 999), captured in a transaction that is then abandoned.
    fn captured(store: &Store, rows: &[(u64, &[u8])]) -> Vec<u8> {
        let txn = store.db().begin_write().unwrap();
        let capture = Capture::default();
        capture.start();
        {
            let mut orders = Logged::open(&txn, table::ORDERS, &capture).unwrap();
            for (id, row) in rows {
                orders.insert(*id, *row).unwrap();
            }
            orders.remove(999).unwrap();
        }
        txn.abort().unwrap();
        capture.take().unwrap()
    }

    fn orders(store: &Store) -> Vec<(u64, Vec<u8>)> {
        let txn = store.db().begin_read().unwrap();
        let table = txn.open_table(tables::ORDERS).unwrap();
        table
            .iter()
            .unwrap()
            .map(|e| {
                let (k, v) = e.unwrap();
                (k.value(), v.value().to_vec())
            })
            .collect()
    }

    #[test]
    fn records_not_in_the_database_are_written_again_once_in_order() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path()).unwrap();
            let mut journal = Journal::open(&store, dir.path()).unwrap();
            journal_but_lose(&store, &mut journal, &[(1, b"one"), (2, b"two")]);
            journal_but_lose(&store, &mut journal, &[(2, b"two again"), (3, b"three")]);
            assert!(orders(&store).is_empty(), "nothing reached the database");
        }
        let store = Store::open(dir.path()).unwrap();
        let expected = vec![
            (1, b"one".to_vec()),
            (2, b"two again".to_vec()),
            (3, b"three".to_vec()),
        ];
        assert_eq!(orders(&store), expected);
        drop(store);
        // Opened again: the database already holds both records; nothing is
        // written twice, and the next record follows them.
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(orders(&store), expected);
        let journal = Journal::open(&store, dir.path()).unwrap();
        assert_eq!(journal.next_seq(), 3);
    }

    #[test]
    fn a_torn_last_record_is_dropped_and_a_damaged_one_before_an_answered_one_refuses() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(JOURNAL_FILE_NAME);
        let id = {
            let store = Store::open(dir.path()).unwrap();
            let mut journal = Journal::open(&store, dir.path()).unwrap();
            journal_but_lose(&store, &mut journal, &[(1, b"one")]);
            journal_but_lose(&store, &mut journal, &[(2, b"two")]);
            journal_but_lose(&store, &mut journal, &[(3, b"three")]);
            journal_id(&store)
        };
        let bytes = std::fs::read(&path).unwrap();
        let (_, second) = decode_record(&bytes, 0, id).unwrap();
        let (_, third) = decode_record(&bytes, second, id).unwrap();
        let (_, end) = decode_record(&bytes, third, id).unwrap();
        // A byte of the second record's rows changed: the third, answered after it,
        // proves the second was answered too. The open refuses, and says how out.
        let mut damaged = bytes.clone();
        damaged[second + HEADER_BYTES + 3] ^= 0xff;
        std::fs::write(&path, &damaged).unwrap();
        let refused = Store::open(dir.path()).unwrap_err().to_string();
        assert!(refused.contains("cannot be replayed"), "{refused}");
        assert!(refused.contains("move the journal file"), "{refused}");
        assert!(refused.contains("orderflow restore"), "{refused}");
        // The last record torn (its rows half written, as a crash mid-write leaves
        // them): it was never answered, and the log ends before it.
        let mut torn = bytes.clone();
        torn[end - 2..end].copy_from_slice(&[0xee, 0xee]);
        std::fs::write(&path, &torn).unwrap();
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(
            orders(&store),
            vec![(1, b"one".to_vec()), (2, b"two".to_vec())]
        );
    }

    /// A file written by a release that wrote schema 3 and journaled (this
    /// release's predecessor) is taken to schema 4 and its journal replayed; a
    /// release that knows only schema 3 refuses a schema 4 file, so it can no
    /// longer open a data directory whose journal it would silently skip.
    #[test]
    fn a_schema_3_file_becomes_4_with_its_journal_replayed() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path()).unwrap();
            let mut journal = Journal::open(&store, dir.path()).unwrap();
            journal_but_lose(&store, &mut journal, &[(1, b"one")]);
            let txn = store.db().begin_write().unwrap();
            txn.open_table(tables::META)
                .unwrap()
                .insert(counter::SCHEMA, 3)
                .unwrap();
            txn.commit().unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(orders(&store), vec![(1, b"one".to_vec())]);
        let txn = store.db().begin_write().unwrap();
        assert_eq!(meta_value(&txn, counter::SCHEMA).unwrap(), Some(4));
        assert_eq!(super::super::SCHEMA_VERSION, 4);
    }

    #[test]
    fn after_a_checkpoint_the_older_records_behind_the_new_ones_end_the_log() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path()).unwrap();
            let mut journal = Journal::open(&store, dir.path()).unwrap();
            journal_but_lose(&store, &mut journal, &[(1, b"one")]);
            journal_but_lose(&store, &mut journal, &[(2, b"two")]);
            journal_but_lose(&store, &mut journal, &[(3, b"three")]);
            checkpoint(&store, &[(1, b"one"), (2, b"two"), (3, b"three")], 3);
            journal.checkpointed();
            // Written from the file's start again: seq 4, then the old 2 and 3.
            journal_but_lose(&store, &mut journal, &[(4, b"four")]);
        }
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(orders(&store).len(), 4);
        let txn = store.db().begin_write().unwrap();
        assert_eq!(meta_value(&txn, counter::JOURNAL_SEQ).unwrap(), Some(4));
    }

    #[test]
    fn records_of_an_earlier_open_are_never_replayed_again() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path()).unwrap();
            let mut journal = Journal::open(&store, dir.path()).unwrap();
            journal_but_lose(&store, &mut journal, &[(1, b"one")]);
        }
        let old_journal = std::fs::read(dir.path().join(JOURNAL_FILE_NAME)).unwrap();
        {
            // Replayed, then a new generation; the order is changed durably.
            let store = Store::open(dir.path()).unwrap();
            let journal = Journal::open(&store, dir.path()).unwrap();
            assert_eq!(journal.next_seq(), 2);
            checkpoint(&store, &[(1, b"one, changed")], 1);
        }
        // Even with the old file laid back (a rollback, a copied directory), its
        // record is not the database's any more.
        std::fs::write(dir.path().join(JOURNAL_FILE_NAME), old_journal).unwrap();
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(orders(&store), vec![(1, b"one, changed".to_vec())]);
    }

    /// Writes `rows` and `JOURNAL_SEQ = seq` durably: a checkpoint, in which redb
    /// holds every journaled batch through `seq`.
    fn checkpoint(store: &Store, rows: &[(u64, &[u8])], seq: u64) {
        let txn = store.db().begin_write().unwrap();
        {
            let mut orders = txn.open_table(tables::ORDERS).unwrap();
            for (id, row) in rows {
                orders.insert(*id, *row).unwrap();
            }
            txn.open_table(tables::META)
                .unwrap()
                .insert(counter::JOURNAL_SEQ, seq)
                .unwrap();
        }
        txn.commit().unwrap();
    }

    /// How a campaign's journal is hurt before the reopen.
    #[derive(Debug, Clone, Copy)]
    enum Fault {
        /// A crash while the next record was written: some prefix of it landed.
        TornNext,
        /// A write or sync of a record failed: part of it landed, the ledger made
        /// the batch durable in redb instead, and the journal took no more.
        FailedWrite,
        /// One bit of the written region flipped.
        FlippedBit,
        /// A run of bytes of the written region zeroed (a lost sector).
        ZeroedRun,
    }

    /// One seeded run: batches journaled (and so answered), checkpoints between
    /// them, a fault, a reopen. Every answered row is in the reopened database,
    /// or the open refuses; only the damage of the very last record may drop it
    /// (a damaged last record cannot be told from a torn one), and a torn write
    /// never makes the open refuse.
    fn campaign_run(seed: u64) -> Reopened {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(JOURNAL_FILE_NAME);
        let fault = [
            Fault::TornNext,
            Fault::FailedWrite,
            Fault::FlippedBit,
            Fault::ZeroedRun,
        ][rng.random_range(0..4)];
        let mut answered: Vec<(u64, Vec<u8>)> = Vec::new();
        // Where each record of the current generation lies (start, end, order id).
        let mut spans: Vec<(usize, usize, u64)> = Vec::new();
        let mut durable_through = 0; // order ids up to here are durable in redb
        {
            let store = Store::open(dir.path()).unwrap();
            let mut journal = Journal::open(&store, dir.path()).unwrap();
            let batches = rng.random_range(1..40u64);
            for order in 1..=batches {
                let row = format!("order {order} seed {seed}").into_bytes();
                let start = usize::try_from(journal.offset).unwrap();
                journal_but_lose(&store, &mut journal, &[(order, &row)]);
                spans.push((start, usize::try_from(journal.offset).unwrap(), order));
                answered.push((order, row));
                if rng.random_bool(0.1) {
                    let rows: Vec<(u64, &[u8])> =
                        answered.iter().map(|(k, v)| (*k, v.as_slice())).collect();
                    checkpoint(&store, &rows, journal.next_seq() - 1);
                    journal.checkpointed();
                    durable_through = order;
                    spans.clear();
                }
            }
            if matches!(fault, Fault::TornNext | Fault::FailedWrite) {
                let mut record = Vec::new();
                let order = batches + 1;
                let row = format!("order {order} never answered").into_bytes();
                let payload = captured(&store, &[(order, &row)]);
                encode_record(&mut record, journal.id, journal.next_seq(), &payload);
                let landed = rng.random_range(0..record.len());
                journal
                    .file
                    .write_all_at(&record[..landed], journal.offset)
                    .unwrap();
                if matches!(fault, Fault::FailedWrite) {
                    // The ledger's fallback: the batch becomes durable in redb.
                    let row = format!("order {order} seed {seed}").into_bytes();
                    answered.push((order, row));
                    let rows: Vec<(u64, &[u8])> =
                        answered.iter().map(|(k, v)| (*k, v.as_slice())).collect();
                    checkpoint(&store, &rows, journal.next_seq());
                    durable_through = order;
                }
            }
        }
        let mut bytes = std::fs::read(&path).unwrap();
        let written_end = spans.last().map_or(0, |s| s.1);
        let mut hurt = None;
        if written_end > 0 {
            match fault {
                Fault::FlippedBit => {
                    let at = rng.random_range(0..written_end);
                    bytes[at] ^= 1 << rng.random_range(0..8);
                    hurt = Some((at, at + 1));
                }
                Fault::ZeroedRun => {
                    let at = rng.random_range(0..written_end);
                    let end = (at + rng.random_range(1..64)).min(written_end);
                    bytes[at..end].fill(0);
                    hurt = Some((at, end));
                }
                Fault::TornNext | Fault::FailedWrite => {}
            }
        }
        std::fs::write(&path, &bytes).unwrap();
        let store = match Store::open(dir.path()) {
            Ok(store) => store,
            Err(e) => {
                assert!(
                    hurt.is_some(),
                    "seed {seed}: a torn write made the open refuse: {e}"
                );
                assert!(e.to_string().contains("cannot be replayed"), "{e}");
                return Reopened::Refused;
            }
        };
        let found: std::collections::HashMap<u64, Vec<u8>> = orders(&store).into_iter().collect();
        // Damage that reaches the last record cannot be told from a torn last
        // write: the records it covers may be dropped (only those).
        let dropped = |order: u64| {
            hurt.is_some_and(|(from, to)| {
                spans.last().is_some_and(|last| to > last.0)
                    && spans
                        .iter()
                        .any(|&(start, end, o)| o == order && start < to && from < end)
            })
        };
        let mut lost_to_tail_damage = false;
        for (order, row) in &answered {
            if *order > durable_through && dropped(*order) {
                lost_to_tail_damage |= found.get(order) != Some(row);
                continue;
            }
            assert_eq!(
                found.get(order),
                Some(row),
                "seed {seed} ({fault:?}, hurt at {hurt:?}): answered order {order} is gone after the reopen"
            );
        }
        if lost_to_tail_damage {
            Reopened::TailDropped
        } else {
            Reopened::Whole
        }
    }

    /// How a campaign's reopen ended.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
    enum Reopened {
        /// Every answered row is there.
        Whole,
        /// The open refused (a damaged record before an answered one).
        Refused,
        /// Damage reaching the last record dropped what it covered.
        TailDropped,
    }

    /// The journal's fault-injection campaign: `ORDERFLOW_JOURNAL_FAULT_SEEDS`
    /// seeds (default 200, what CI runs; the long campaign runs 10,000).
    #[test]
    fn journal_fault_campaign() {
        let seeds: u64 = std::env::var("ORDERFLOW_JOURNAL_FAULT_SEEDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(200);
        let mut tally = std::collections::BTreeMap::new();
        for seed in 0..seeds {
            *tally.entry(campaign_run(seed)).or_insert(0u64) += 1;
        }
        eprintln!("journal fault campaign, {seeds} seeds: {tally:?}");
    }

    fn journal_id(store: &Store) -> u64 {
        let txn = store.db().begin_write().unwrap();
        let id = meta_value(&txn, counter::JOURNAL_ID).unwrap().unwrap();
        txn.abort().unwrap();
        id
    }

    #[test]
    fn a_journal_of_another_database_is_not_replayed() {
        let dir = tempfile::tempdir().unwrap();
        let other = tempfile::tempdir().unwrap();
        {
            let store = Store::open(other.path()).unwrap();
            let mut journal = Journal::open(&store, other.path()).unwrap();
            journal_but_lose(&store, &mut journal, &[(1, b"one")]);
        }
        {
            let store = Store::open(dir.path()).unwrap();
            Journal::open(&store, dir.path()).unwrap();
        }
        std::fs::copy(
            other.path().join(JOURNAL_FILE_NAME),
            dir.path().join(JOURNAL_FILE_NAME),
        )
        .unwrap();
        let store = Store::open(dir.path()).unwrap();
        assert!(orders(&store).is_empty());
    }

    #[test]
    fn a_record_reads_back_and_a_torn_or_foreign_one_does_not() {
        let mut buf = Vec::new();
        encode_record(&mut buf, 7, 42, b"rows");
        let (record, end) = decode_record(&buf, 0, 7).unwrap();
        assert_eq!(
            record,
            Record {
                seq: 42,
                payload: b"rows".to_vec()
            }
        );
        assert_eq!(end, buf.len());
        assert!(
            decode_record(&buf, 0, 8).is_none(),
            "another journal's record"
        );
        assert!(decode_record(&buf[..buf.len() - 1], 0, 7).is_none(), "torn");
        let mut flipped = buf.clone();
        flipped[HEADER_BYTES] ^= 1;
        assert!(decode_record(&flipped, 0, 7).is_none(), "a changed byte");
    }
}
