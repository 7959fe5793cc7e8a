//! `TakeBackup`: an online backup, asked of the ledger (the owner of the store's
//! writes) and taken off its thread, on a read snapshot, while it goes on
//! committing (see `store::backup`).

use std::path::PathBuf;

use actix::{Handler, Message, ResponseFuture};

use super::Ledger;
use crate::common::StoreError;
use crate::limits::BACKUP_NICE;
use crate::store::backup::{self, BackupError, Manifest};

/// Take a backup into `to`, or into `<data-dir>/backups/` under a name of its time.
#[derive(Debug, Message)]
#[rtype(result = "Result<Manifest, BackupError>")]
pub struct TakeBackup {
    pub to: Option<PathBuf>,
}

impl Handler<TakeBackup> for Ledger {
    type Result = ResponseFuture<Result<Manifest, BackupError>>;
    fn handle(&mut self, msg: TakeBackup, _: &mut Self::Context) -> Self::Result {
        let store = self.store.clone();
        let (tx, rx) = tokio::sync::oneshot::channel();
        // Its own thread, not the blocking pool: its priority is lowered, and a
        // pooled thread would keep that for whatever runs on it next.
        let spawned = std::thread::Builder::new()
            .name("backup".into())
            .spawn(move || {
                crate::priority::lower_this_thread(BACKUP_NICE);
                let _ = tx.send(backup::take(&store, msg.to.as_deref()));
            });
        Box::pin(async move {
            let stopped = |e: String| {
                Err(BackupError::Store(StoreError::Aborted(format!(
                    "the backup stopped: {e}"
                ))))
            };
            if let Err(e) = spawned {
                return stopped(e.to_string());
            }
            rx.await.unwrap_or_else(|e| stopped(e.to_string()))
        })
    }
}
