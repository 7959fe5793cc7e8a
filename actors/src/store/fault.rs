//! A storage backend that fails on purpose, for fault-injection tests.
//!
//! [`FaultyBackend`] passes every call to redb's own file backend and fails the one
//! a [`FaultPlan`] picks: the n-th read, write, sync or resize after the plan is
//! armed (redb's own fuzzer does the same). The tests that use it check that an
//! injected fault only ever turns into an error answer (5xx, a failed job), never
//! into an acknowledgement of something that is not durable, and that the database
//! reopens consistent.

use std::fs::OpenOptions;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};

use redb::backends::FileBackend;
use redb::{BackendError, StorageBackend};

use super::{DB_FILE_NAME, OpenError, Store};

/// Kinds of storage operation a plan can fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum FaultKind {
    Read = 1,
    Write = 2,
    Sync = 4,
    SetLen = 8,
}

impl FaultKind {
    pub const ALL: [FaultKind; 4] = [
        FaultKind::Read,
        FaultKind::Write,
        FaultKind::Sync,
        FaultKind::SetLen,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FaultKind::Read => "read",
            FaultKind::Write => "write",
            FaultKind::Sync => "sync",
            FaultKind::SetLen => "set_len",
        }
    }
}

/// Which operation fails, shared between a test and its backend.
#[derive(Debug, Default)]
pub struct FaultPlan {
    armed: AtomicBool,
    kinds: AtomicU8,
    /// Operations of the chosen kinds since arming.
    seen: AtomicU64,
    /// The (1-based) operation that fails.
    fail_at: AtomicU64,
    /// Every later operation of the chosen kinds fails too (a dead disk), rather
    /// than just the one (a passing error).
    sticky: AtomicBool,
    injected: AtomicU64,
}

impl FaultPlan {
    /// Fails the `nth` operation of one of `kinds` from now on (and, if `sticky`,
    /// every one after it).
    pub fn arm(&self, kinds: &[FaultKind], nth: u64, sticky: bool) {
        let mask = kinds.iter().fold(0u8, |m, k| m | *k as u8);
        self.kinds.store(mask, Ordering::SeqCst);
        self.seen.store(0, Ordering::SeqCst);
        self.fail_at.store(nth.max(1), Ordering::SeqCst);
        self.sticky.store(sticky, Ordering::SeqCst);
        self.armed.store(true, Ordering::SeqCst);
    }

    pub fn disarm(&self) {
        self.armed.store(false, Ordering::SeqCst);
    }

    /// Faults injected so far.
    pub fn injected(&self) -> u64 {
        self.injected.load(Ordering::SeqCst)
    }

    fn check(&self, kind: FaultKind) -> std::io::Result<()> {
        if !self.armed.load(Ordering::SeqCst) || self.kinds.load(Ordering::SeqCst) & kind as u8 == 0
        {
            return Ok(());
        }
        let n = self.seen.fetch_add(1, Ordering::SeqCst) + 1;
        let at = self.fail_at.load(Ordering::SeqCst);
        if n == at || (n > at && self.sticky.load(Ordering::SeqCst)) {
            self.injected.fetch_add(1, Ordering::SeqCst);
            return Err(std::io::Error::other(format!(
                "injected {} fault",
                kind.as_str()
            )));
        }
        Ok(())
    }
}

/// redb's file backend with a [`FaultPlan`] in front of it.
#[derive(Debug)]
pub struct FaultyBackend {
    inner: FileBackend,
    plan: Arc<FaultPlan>,
}

impl StorageBackend for FaultyBackend {
    fn len(&self) -> Result<u64, std::io::Error> {
        self.inner.len()
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), std::io::Error> {
        self.plan.check(FaultKind::Read)?;
        self.inner.read(offset, out)
    }

    fn set_len(&self, len: u64) -> Result<(), std::io::Error> {
        self.plan.check(FaultKind::SetLen)?;
        self.inner.set_len(len)
    }

    fn sync_data(&self) -> Result<(), std::io::Error> {
        self.plan.check(FaultKind::Sync)?;
        self.inner.sync_data()
    }

    fn write(&self, offset: u64, data: &[u8]) -> Result<(), std::io::Error> {
        self.plan.check(FaultKind::Write)?;
        self.inner.write(offset, data)
    }

    fn close(&self) -> Result<(), std::io::Error> {
        self.inner.close()
    }

    fn try_lock_range(
        &self,
        start: std::ops::Bound<u64>,
        end: std::ops::Bound<u64>,
    ) -> Result<bool, BackendError> {
        self.inner.try_lock_range(start, end)
    }

    fn try_lock_shared_range(
        &self,
        start: std::ops::Bound<u64>,
        end: std::ops::Bound<u64>,
    ) -> Result<bool, BackendError> {
        self.inner.try_lock_shared_range(start, end)
    }

    fn lock_range(
        &self,
        start: std::ops::Bound<u64>,
        end: std::ops::Bound<u64>,
    ) -> Result<(), BackendError> {
        self.inner.lock_range(start, end)
    }

    fn lock_shared_range(
        &self,
        start: std::ops::Bound<u64>,
        end: std::ops::Bound<u64>,
    ) -> Result<(), BackendError> {
        self.inner.lock_shared_range(start, end)
    }

    fn unlock_range(
        &self,
        start: std::ops::Bound<u64>,
        end: std::ops::Bound<u64>,
    ) -> Result<(), BackendError> {
        self.inner.unlock_range(start, end)
    }

    fn query_lock_range(
        &self,
        start: std::ops::Bound<u64>,
        end: std::ops::Bound<u64>,
    ) -> Result<bool, BackendError> {
        self.inner.query_lock_range(start, end)
    }
}

/// Opens the store of `data_dir` over a [`FaultyBackend`] driven by `plan`.
pub fn open_faulty(data_dir: &Path, plan: Arc<FaultPlan>) -> Result<Store, OpenError> {
    std::fs::create_dir_all(data_dir).map_err(|source| OpenError::Io {
        path: data_dir.to_owned(),
        source,
    })?;
    let path = data_dir.join(DB_FILE_NAME);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|source| OpenError::Io {
            path: path.clone(),
            source,
        })?;
    let inner = FileBackend::new(file).map_err(|e| OpenError::Database {
        path: path.clone(),
        source: Box::new(e),
    })?;
    Store::open_with(data_dir, move |builder| {
        builder.create_with_backend(FaultyBackend { inner, plan })
    })
}
