//! Keeps the disk awake while the ledger builds a batch, so that the batch's sync
//! finds it ready.
//!
//! # Why
//!
//! On the virtual disks this service is measured on, a flush that comes right
//! after other I/O returns in about 0.06 ms, and one that comes after 0.1 ms or more
//! of quiet takes 0.5–1 ms (the host's side of the disk stops polling and has to be
//! woken; `benches/scripts/flush_latency.py` measures it on any machine). The ledger
//! is quiet on the disk exactly while it applies a batch (about 0.2 ms), so every
//! journal sync paid the slow case, and that was half of the ledger's time.
//!
//! While a batch is being built, [`DiskAwake`]'s thread reads the journal's first
//! block with `O_DIRECT` (which goes to the device, not the page cache), one read
//! after another, at most [`JOURNAL_AWAKE_READS_MAX`] per batch, and stops when the
//! batch's sync starts. Nothing is written: what the journal makes durable, and
//! when, is unchanged. A file system that refuses `O_DIRECT` (tmpfs) or a read that
//! fails leaves the journal as it was, without this.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::{self, JoinHandle};

use prometheus_client::metrics::counter::Counter;

use crate::limits::{JOURNAL_AWAKE_READ_BYTES, JOURNAL_AWAKE_READS_MAX};

/// Reads `path`'s first block from the device while a batch is being built. See
/// the module's documentation.
#[derive(Debug)]
pub struct DiskAwake {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

#[derive(Debug)]
struct Shared {
    /// A batch is being built: read (until its sync starts).
    busy: AtomicBool,
    /// Counts the batches, so the thread tells the next batch from the one it
    /// already read for.
    batch: AtomicU64,
    /// The journal is gone: the thread ends.
    stop: AtomicBool,
    /// Reads made so far: the metric itself.
    reads: Counter,
}

impl DiskAwake {
    /// Starts the reader of `path` (the journal file), counting its reads in
    /// `reads`, or says why it cannot.
    pub fn start(path: &Path, reads: Counter) -> std::io::Result<Self> {
        let file = OpenOptions::new()
            .read(true)
            .custom_flags(rustix::fs::OFlags::DIRECT.bits().cast_signed())
            .open(path)?;
        // The first read is made here, so that a file system that takes the flag
        // but refuses direct reads is found now rather than in the thread.
        let mut block = AlignedBlock::new();
        file.read_at(block.as_mut(), 0)?;
        let shared = Arc::new(Shared {
            busy: AtomicBool::new(false),
            batch: AtomicU64::new(0),
            stop: AtomicBool::new(false),
            reads,
        });
        let for_thread = Arc::clone(&shared);
        let thread = thread::Builder::new()
            .name("journal-awake".into())
            .spawn(move || keep_awake(&file, &mut block, &for_thread))?;
        Ok(Self {
            shared,
            thread: Some(thread),
        })
    }

    /// A batch is being built: keep the disk awake until [`Self::rest`].
    pub fn busy(&self) {
        self.shared.batch.fetch_add(1, Ordering::AcqRel);
        self.shared.busy.store(true, Ordering::Release);
        if let Some(thread) = &self.thread {
            thread.thread().unpark();
        }
    }

    /// The batch's sync starts (or the batch is not journaled after all).
    pub fn rest(&self) {
        self.shared.busy.store(false, Ordering::Release);
    }
}

impl Drop for DiskAwake {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
            let _ = thread.join();
        }
    }
}

/// The thread: reads while a batch is being built, at most
/// [`JOURNAL_AWAKE_READS_MAX`] times per batch; parks otherwise.
fn keep_awake(file: &File, block: &mut AlignedBlock, shared: &Shared) {
    let mut served = 0;
    while !shared.stop.load(Ordering::Acquire) {
        let batch = shared.batch.load(Ordering::Acquire);
        if batch == served || !shared.busy.load(Ordering::Acquire) {
            thread::park();
            continue;
        }
        served = batch;
        let mut reads = 0;
        while reads < JOURNAL_AWAKE_READS_MAX
            && shared.busy.load(Ordering::Acquire)
            && shared.batch.load(Ordering::Acquire) == batch
            && !shared.stop.load(Ordering::Acquire)
        {
            if let Err(e) = file.read_at(block.as_mut(), 0) {
                tracing::warn!(error = %e, "direct reads of the journal failed; the disk is no longer kept awake");
                return;
            }
            reads += 1;
            shared.reads.inc();
        }
        // Past the cap, the rest of this batch goes without reads.
    }
}

/// A buffer of [`JOURNAL_AWAKE_READ_BYTES`] at an address aligned to its size, as
/// `O_DIRECT` wants (found inside a buffer twice as long: no unsafe code).
struct AlignedBlock {
    buf: Vec<u8>,
    at: usize,
}

impl AlignedBlock {
    fn new() -> Self {
        let buf = vec![0u8; 2 * JOURNAL_AWAKE_READ_BYTES];
        let at = buf.as_ptr().align_offset(JOURNAL_AWAKE_READ_BYTES);
        Self { buf, at }
    }

    fn as_mut(&mut self) -> &mut [u8] {
        &mut self.buf[self.at..self.at + JOURNAL_AWAKE_READ_BYTES]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    fn journal_file(dir: &Path) -> std::path::PathBuf {
        let path = dir.join("ledger.journal");
        std::fs::write(&path, vec![0u8; 1 << 16]).unwrap();
        path
    }

    /// Waits (bounded) until `done` holds.
    fn eventually(done: impl Fn() -> bool) -> bool {
        let until = Instant::now() + Duration::from_secs(10);
        while Instant::now() < until {
            if done() {
                return true;
            }
            thread::sleep(Duration::from_millis(1));
        }
        false
    }

    #[test]
    fn reads_only_while_a_batch_is_built_and_at_most_the_cap_per_batch() {
        let dir = tempfile::tempdir().unwrap();
        let reads = Counter::default();
        let awake = match DiskAwake::start(&journal_file(dir.path()), reads.clone()) {
            Ok(awake) => awake,
            // tmpfs and some others refuse O_DIRECT: then there is nothing to keep
            // awake, and the journal goes without (as it does here).
            Err(e) if e.kind() == std::io::ErrorKind::InvalidInput => {
                eprintln!("skipped: this file system refuses O_DIRECT");
                return;
            }
            Err(e) => panic!("{e}"),
        };
        // Resting: no reads.
        thread::sleep(Duration::from_millis(20));
        assert_eq!(reads.get(), 0);
        // Busy: reads, then none past the cap while the same batch goes on.
        awake.busy();
        assert!(eventually(
            || reads.get() == u64::from(JOURNAL_AWAKE_READS_MAX)
        ));
        thread::sleep(Duration::from_millis(20));
        assert_eq!(reads.get(), u64::from(JOURNAL_AWAKE_READS_MAX));
        // Rest, then the next batch reads again; after rest, reads stop.
        awake.rest();
        awake.busy();
        assert!(eventually(
            || reads.get() > u64::from(JOURNAL_AWAKE_READS_MAX)
        ));
        // After rest at most the one read already under way completes, however
        // late the thread runs (no sleep decides this).
        awake.rest();
        let at_rest = reads.get();
        thread::sleep(Duration::from_millis(20));
        assert!(reads.get() <= at_rest + 1, "reads went on after rest");
        // Dropping it ends the thread (join returns).
        drop(awake);
    }
}
