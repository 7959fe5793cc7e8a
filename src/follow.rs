//! What the two followers of the events table share: the NATS relay
//! ([`crate::relay`]) and the webhook deliverer ([`crate::webhooks::deliverer`])
//! each read it page by page after their own cursor, and each must step over
//! events the retention purge forgot before it read them.

use orderflow_actors::events::{EventPage, EventsError, ListEvents};
use orderflow_actors::events::{EventsReader, TypeFilter};
use orderflow_actors::pg::PgEvents;
use orderflow_actors::room::Room;

/// What a follower finds after its cursor.
#[derive(Debug)]
pub enum Next {
    /// Up to `limit` events the filter admits (possibly none, with the cursor moved
    /// past the events scanned).
    Page(EventPage),
    /// Events after the cursor were purged before the follower read them; the
    /// oldest kept follow this seq.
    Purged { through: u64 },
}

/// The events after `after` that `filter` admits, at most `limit`; an error (the
/// reader stopped, or storage failed) as text for the follower's log and retry.
pub async fn next_after(
    events: &Room<EventsReader, PgEvents>,
    after: u64,
    filter: TypeFilter,
    limit: usize,
) -> Result<Next, String> {
    let page = events
        .ask(ListEvents {
            after: Some(after),
            filter,
            limit,
        })
        .await
        .map_err(|e| e.to_string())?;
    match page {
        Ok(page) => Ok(Next::Page(page)),
        Err(EventsError::Expired { purged_through, .. }) => Ok(Next::Purged {
            through: purged_through,
        }),
        Err(e) => Err(e.to_string()),
    }
}
