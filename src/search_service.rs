//! The node's search: its index in `<data-dir>/search/`, the readers that answer
//! searches, and the indexer that keeps the index in step, on a thread of its own.
//! Started after the backend (the indexer reads through the catalog and events
//! rooms), stopped after the ledger and before the readers it reads through.

use std::path::Path;
use std::sync::Arc;

use tokio::sync::{Notify, oneshot};

use orderflow_actors::limits::{SEARCH_INDEXER_NICE, SEARCH_INFLIGHT_MAX};
use orderflow_actors::mailbox::{Mailbox, start_pool};
use orderflow_actors::search::{Indexer, SearchIndex, SearchReader};

use crate::services::Backend;

/// The running search of a node.
pub struct SearchService {
    pub readers: Mailbox<SearchReader>,
    stop: Arc<Notify>,
    stopped: oneshot::Receiver<()>,
    thread: actix::Arbiter,
}

impl SearchService {
    /// Opens (or starts building) the index under `data_dir` and starts the
    /// indexer; searches answer 503 until the index is live.
    pub fn start(
        backend: &Backend,
        data_dir: &Path,
        threads: usize,
        timeout: std::time::Duration,
    ) -> Self {
        let index = SearchIndex::new(&data_dir.join("search"));
        let indexer = Indexer {
            index: index.clone(),
            feed: backend.search_feed(),
            catalog: backend.catalog(),
            events: backend.events(),
            newest_event: backend.newest_event(),
            follow: matches!(backend, Backend::Postgres(_)),
            telemetry: backend.telemetry().clone(),
        };
        let stop = Arc::new(Notify::new());
        let (done, stopped) = oneshot::channel();
        let thread = actix::Arbiter::new();
        let stopping = Arc::clone(&stop);
        // Below the ledger and the HTTP workers: on a busy machine the index falls
        // behind (its lag is a metric) rather than slow sales and imports. The
        // writer's own threads, started from this one, inherit it.
        thread.spawn_fn(move || {
            orderflow_actors::priority::lower_this_thread(SEARCH_INDEXER_NICE);
            actix::spawn(async move {
                indexer.run(stopping).await;
                let _ = done.send(());
            });
        });
        let readers = start_pool(threads, move || SearchReader::new(index.clone()));
        Self {
            readers: Mailbox::pool(readers, "search", SEARCH_INFLIGHT_MAX, timeout),
            stop,
            stopped,
            thread,
        }
    }

    /// Lets the indexer write what is pending and mark the index clean, then
    /// stops it and the readers. Call once the ledger has stopped.
    pub async fn stop(self) {
        self.stop.notify_one();
        let _ = self.stopped.await;
        self.thread.stop();
        self.readers.stop_all().await;
    }
}
