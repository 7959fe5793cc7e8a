//! Who may read the data directory: its owner only.
//!
//! The database holds password hashes, customers and webhook signing secrets in
//! plain bytes, and so do the journal and every backup. Modes are set explicitly,
//! whatever the process's umask: directories [`DIR_MODE`], files [`FILE_MODE`].

use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::Path;

/// Directories the service creates or owns: the data directory, `backups/`.
pub const DIR_MODE: u32 = 0o700;
/// Files the service writes there: the database, the journal, backups and their
/// manifests, the control socket.
pub const FILE_MODE: u32 = 0o600;

/// Creates `path` (and its missing parents) with [`DIR_MODE`], and sets that mode
/// on it if it existed.
pub fn dir(path: &Path) -> std::io::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(DIR_MODE))
}

/// Sets [`FILE_MODE`] on the file at `path`.
pub fn file(path: &Path) -> std::io::Result<()> {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(FILE_MODE))
}
