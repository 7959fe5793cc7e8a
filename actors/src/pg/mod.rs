//! The PostgreSQL backend (`--postgres`, contract §6), beside the embedded redb
//! default: several nodes on one database acting as one service.
//!
//! Built so far: the schema and its migrations ([`schema`]), and the ledger
//! ([`ledger`]): group commit per node, the same rules as on redb run on rows read
//! and locked for the batch ([`staged`]), set-based writes, event seqs gapless in
//! commit order across nodes. The feed's reader is [`read_events`].

pub mod ledger;
pub mod schema;
pub mod staged;

use tokio_postgres::{Client, NoTls};

use crate::events::{Event, EventRow};
use crate::store::{StoreError, codec};

/// Connects to `url` (a libpq URL; several hosts and `target_session_attrs` allowed)
/// and drives the connection on the current tokio runtime.
pub async fn connect(url: &str) -> Result<Client, StoreError> {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::warn!(error = %e, "PostgreSQL connection ended");
        }
    });
    Ok(client)
}

/// Events with `seq > after`, oldest first, at most `limit` of them.
pub async fn read_events(
    client: &Client,
    after: u64,
    limit: i64,
) -> Result<Vec<Event>, StoreError> {
    let after = staged::int(after)?;
    client
        .query(
            "SELECT seq, record FROM events WHERE seq > $1 ORDER BY seq LIMIT $2",
            &[&after, &limit],
        )
        .await?
        .iter()
        .map(|r| {
            let row: EventRow = codec::decode(r.get::<_, &[u8]>(1))?;
            Ok(Event {
                seq: staged::uint(r.get(0))?,
                row,
            })
        })
        .collect()
}
