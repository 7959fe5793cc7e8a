//! The control socket, `<data-dir>/control.sock`: how `orderflow backup` asks the
//! service that owns a data directory for an online backup. A Unix socket with mode
//! 0600 inside the data directory: whoever may open it may read the database file
//! anyway, so it needs no token. One JSON line in, one JSON line out.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixListener;
use tokio::sync::Notify;

use orderflow_actors::ledger::Ledger;
use orderflow_actors::ledger::TakeBackup;
use orderflow_actors::limits::{CONTROL_READ_TIMEOUT_MS, CONTROL_REQUEST_BYTES_MAX};
use orderflow_actors::mailbox::Mailbox;
use orderflow_actors::store::Manifest;

/// The socket's name inside the data directory.
pub const SOCKET_NAME: &str = "control.sock";

#[derive(Debug, Serialize, Deserialize)]
pub enum Request {
    /// An online backup into `to`, or into `<data-dir>/backups/`.
    Backup { to: Option<PathBuf> },
}

#[derive(Debug, Serialize, Deserialize)]
pub enum Reply {
    Backup(Manifest),
    Failed(String),
}

/// Binds the socket. The caller owns the data directory (its database is open
/// and locked), so a socket file left by a killed predecessor is stale.
pub fn bind(data_dir: &Path) -> std::io::Result<UnixListener> {
    let path = data_dir.join(SOCKET_NAME);
    match std::fs::remove_file(&path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    // Bound under a name of its own, given its mode, and only then renamed to the
    // name clients use: the socket is never reachable with a looser mode (and the
    // data directory around it is the owner's alone anyway).
    let fresh = data_dir.join(format!(".{SOCKET_NAME}.{}", std::process::id()));
    let _ = std::fs::remove_file(&fresh);
    let listener = UnixListener::bind(&fresh)?;
    orderflow_actors::store::private_file(&fresh)?;
    std::fs::rename(&fresh, &path)?;
    Ok(listener)
}

/// Answers requests one connection at a time until `stop` fires. A client has
/// [`CONTROL_READ_TIMEOUT_MS`] to send its request line, so an idle one cannot
/// hold the socket; `stop` ends the wait for a request or an answer at once (a
/// request not yet handed to the ledger is dropped).
pub async fn serve(listener: UnixListener, ledger: Mailbox<Ledger>, stop: Rc<Notify>) {
    loop {
        let stream = tokio::select! {
            () = stop.notified() => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::warn!(error = %e, "control socket: accept failed");
                    continue;
                }
            },
        };
        tokio::select! {
            () = stop.notified() => return,
            () = answer(stream, &ledger) => {}
        }
    }
}

/// Reads one request from `stream` (within the time-out), carries it out, and
/// writes the reply.
async fn answer(stream: tokio::net::UnixStream, ledger: &Mailbox<Ledger>) {
    let (read, mut write) = stream.into_split();
    let mut line = String::new();
    let limit = u64::try_from(CONTROL_REQUEST_BYTES_MAX).unwrap_or(u64::MAX);
    let read = tokio::time::timeout(
        Duration::from_millis(CONTROL_READ_TIMEOUT_MS),
        tokio::io::BufReader::new(read.take(limit)).read_line(&mut line),
    )
    .await;
    let reply = match read {
        Err(_) => Reply::Failed(format!(
            "no request line within {CONTROL_READ_TIMEOUT_MS} ms"
        )),
        Ok(Err(e)) => Reply::Failed(format!("the request could not be read: {e}")),
        Ok(Ok(_)) => match serde_json::from_str::<Request>(&line) {
            Err(e) => Reply::Failed(format!("not a request: {e}")),
            Ok(Request::Backup { to }) => {
                tracing::info!(to = ?to, "control socket: backup asked");
                match ledger.reserve() {
                    Err(e) => Reply::Failed(e.to_string()),
                    Ok(slot) => match slot.send(TakeBackup { to }).await {
                        Ok(Ok(manifest)) => Reply::Backup(manifest),
                        Ok(Err(e)) => Reply::Failed(e.to_string()),
                        Err(e) => Reply::Failed(e.to_string()),
                    },
                }
            }
        },
    };
    let mut out = serde_json::to_vec(&reply).expect("a reply serializes");
    out.push(b'\n');
    if let Err(e) = write.write_all(&out).await {
        tracing::warn!(error = %e, "control socket: the answer could not be sent");
    }
}

/// Sends one request to the service owning `data_dir` and waits for its answer
/// (a backup takes as long as it takes).
pub fn ask(data_dir: &Path, request: &Request) -> std::io::Result<Reply> {
    let mut stream = std::os::unix::net::UnixStream::connect(data_dir.join(SOCKET_NAME))?;
    let mut line = serde_json::to_vec(request).expect("a request serializes");
    line.push(b'\n');
    stream.write_all(&line)?;
    let mut answer = String::new();
    BufReader::new(stream).read_line(&mut answer)?;
    serde_json::from_str(&answer)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}
