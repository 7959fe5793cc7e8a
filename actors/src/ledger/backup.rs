//! `TakeBackup`: an online backup, asked of the ledger (the owner of the store's
//! writes) and taken off its thread, on a read snapshot, while it goes on
//! committing (see `store::backup`).

use std::path::PathBuf;

use actix::{Handler, Message, ResponseFuture};

use super::Ledger;
use crate::domain::Timestamp;
use crate::store::StoreError;
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
        Box::pin(async move {
            tokio::task::spawn_blocking(move || {
                let dest = msg.to.unwrap_or_else(|| {
                    let data_dir = store.path().parent().unwrap_or(std::path::Path::new("."));
                    backup::default_file(data_dir, Timestamp::now())
                });
                backup::take(&store, &dest)
            })
            .await
            .unwrap_or_else(|e| {
                Err(BackupError::Store(StoreError::Aborted(format!(
                    "the backup stopped: {e}"
                ))))
            })
        })
    }
}
