//! Work that one node at a time does on PostgreSQL (webhook deliveries, the NATS
//! relay): the node holding a session advisory lock does it; when its
//! connection goes, the lock goes with it and another node's next try wins.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use orderflow_actors::limits::WEBHOOK_LEADER_RETRY_MS;
use orderflow_actors::pg;
use tokio::sync::Notify;

/// Runs `work` until `stop` fires: at once without a lock (`lock` is `None` on
/// redb, where a node is alone), else only while this node holds the advisory lock
/// `key` of the database at `lock`, trying for it every
/// [`WEBHOOK_LEADER_RETRY_MS`]. `work` is told to stop (through the `Notify` it is
/// given) when the lock is lost or `stop` fires, and is awaited.
pub async fn while_leading<F, Fut>(
    lock: Option<String>,
    key: i64,
    what: &'static str,
    stop: Arc<Notify>,
    work: F,
) where
    F: Fn(Arc<Notify>) -> Fut,
    Fut: Future<Output = ()>,
{
    let Some(url) = lock else {
        return work(stop).await;
    };
    let retry = Duration::from_millis(WEBHOOK_LEADER_RETRY_MS);
    loop {
        let held = match pg::try_lock(&url, key).await {
            Ok(held) => held,
            Err(e) => {
                tracing::warn!(error = %e, "{what}: the lock is out of reach");
                None
            }
        };
        let Some(held) = held else {
            tokio::select! {
                () = stop.notified() => return,
                () = tokio::time::sleep(retry) => continue,
            }
        };
        tracing::info!("{what}: this node does it");
        let inner = Arc::new(Notify::new());
        let run = work(Arc::clone(&inner));
        tokio::pin!(run);
        tokio::select! {
            () = &mut run => return,
            () = stop.notified() => {
                inner.notify_one();
                run.await;
                return;
            }
            _ = held.lost => {
                tracing::warn!("{what}: the lock was lost; this node stops here");
                inner.notify_one();
                run.await;
            }
        }
    }
}
