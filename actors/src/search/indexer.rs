//! The indexer: the one writer of the node's search index. It builds the index
//! from the catalog when it is missing, damaged or was not closed cleanly, then
//! keeps it in step with what is committed:
//!
//! - the node's own commits hand their SKUs to the [`Feed`] (both backends);
//! - other nodes' commits (PostgreSQL) and whatever was written while the node was
//!   down (an offline `orderflow ingest`) are read from the events outbox after
//!   the index's mark: a product, movement or order event names its SKUs; a
//!   products or inventory import's summary event names none, so the whole
//!   catalog is read again.
//!
//! Every [`SEARCH_COMMIT_INTERVAL_MS`] it re-reads the pending SKUs from the
//! catalog (a removed or archived product is deleted, any other replaced) and
//! commits; the index's commit carries a [`Mark`]: the events seq it has read
//! through and whether it was closed cleanly. Only a clean mark is trusted at
//! start.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tantivy::indexer::NoMergePolicy;
use tantivy::{Index, IndexWriter, Term};
use tokio::sync::{Notify, watch};

use super::feed::{Feed, Pending};
use super::index::SearchIndex;
use crate::catalog::{GetProducts, ScanProducts, Scanned};
use crate::common::codec;
use crate::domain::{Kind, Sku};
use crate::events::{EventsError, ListEvents, Subject, TypeFilter};
use crate::inbox::JobRow;
use crate::ledger::records::OrderRow;
use crate::limits::{
    SEARCH_BUILD_WRITER_BYTES, SEARCH_COMMIT_INTERVAL_MS, SEARCH_READ_BATCH, SEARCH_STEP_SKUS_MAX,
    SEARCH_WRITER_BYTES,
};
use crate::room::{CatalogRoom, EventsRoom};
use crate::telemetry::{Event as _, SearchCommitted, SearchRebuilt, Telemetry};

/// Events read per request while following the outbox.
const EVENTS_PAGE: usize = 1_000;
/// Bumped whenever what a document holds changes: an index of another format is
/// rebuilt.
const FORMAT: u32 = 2;

/// What the index's last commit says about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Mark {
    format: u32,
    /// Events through this seq are in the index.
    seq: u64,
    /// Written by a clean stop (false from the moment the index is opened).
    clean: bool,
}

/// Why a step of the indexer failed (it tries again at its next step).
#[derive(Debug, thiserror::Error)]
enum Failed {
    #[error("search index: {0}")]
    Index(#[from] tantivy::TantivyError),
    #[error("catalog: {0}")]
    Catalog(String),
}

/// The indexer's inputs.
pub struct Indexer {
    pub index: SearchIndex,
    pub feed: Feed,
    pub catalog: CatalogRoom,
    pub events: EventsRoom,
    /// The newest committed event's seq.
    pub newest_event: watch::Receiver<u64>,
    /// Follow other nodes' events while running (PostgreSQL); otherwise the
    /// outbox is read only to catch up at start.
    pub follow: bool,
    pub telemetry: Telemetry,
}

/// The open index and where the indexer stands in it.
struct Writing {
    writer: IndexWriter,
    /// Events through this seq have been fed.
    seq: u64,
}

impl Indexer {
    /// Builds or opens the index, then keeps it in step until `stop` is notified;
    /// a clean stop marks it so the next start trusts it.
    pub async fn run(mut self, stop: Arc<Notify>) {
        let mut writing = loop {
            match self.start().await {
                Ok(writing) => break writing,
                Err(e) => {
                    tracing::error!(error = %e, "the search index could not be built; retrying");
                    tokio::select! {
                        () = tokio::time::sleep(Duration::from_secs(1)) => {}
                        () = stop.notified() => return,
                    }
                }
            }
        };
        let interval = Duration::from_millis(SEARCH_COMMIT_INTERVAL_MS);
        // Woken by a newer event only (what is committed now was just read).
        let mut newest = self.newest_event.clone();
        newest.borrow_and_update();
        loop {
            tokio::select! {
                () = self.feed.fed() => {}
                _ = newest.changed(), if self.follow => {}
                () = stop.notified() => break,
            }
            tokio::time::sleep(interval).await;
            // A long list (an import) is written a full part per commit, one
            // after the other; what is left after a partial part waits.
            loop {
                match self.step(&mut writing, self.follow).await {
                    Ok(taken) if taken == SEARCH_STEP_SKUS_MAX => {}
                    Ok(_) => break,
                    Err(e) => {
                        tracing::warn!(error = %e, "the search index is behind; retrying");
                        break;
                    }
                }
            }
        }
        if let Err(e) = self.close(writing).await {
            tracing::warn!(error = %e, "the search index was not closed cleanly; it is rebuilt at start");
        }
    }

    /// The index as the last clean stop left it (then caught up from the outbox),
    /// or built from the catalog.
    async fn start(&mut self) -> Result<Writing, Failed> {
        let head = *self.newest_event.borrow();
        if let Some((index, mark)) = self.open_clean() {
            let mut writing = self.writing(&index, mark.seq)?;
            self.commit(&mut writing, false)?;
            self.index.go_live(&index)?;
            tracing::info!(seq = mark.seq, "search index opened");
            self.step(&mut writing, true).await?;
            return Ok(writing);
        }
        self.index.go_dark();
        let started = Instant::now();
        let index = self.index.create()?;
        // Built by a writer of its own: every core and a larger budget, no merges
        // while it competes for the cores; then the small writer takes over.
        let builder = index.writer(SEARCH_BUILD_WRITER_BYTES)?;
        builder.set_merge_policy(Box::new(NoMergePolicy));
        let mut building = Writing {
            writer: builder,
            seq: head,
        };
        let documents = self.read_all(&building.writer).await?;
        self.commit(&mut building, false)?;
        building.writer.wait_merging_threads()?;
        let writing = self.writing(&index, head)?;
        SearchRebuilt {
            documents,
            seconds: started.elapsed().as_secs_f64(),
        }
        .emit(&self.telemetry);
        self.index.go_live(&index)?;
        Ok(writing)
    }

    /// The index in its directory if it opens, is of this format and was closed
    /// cleanly.
    fn open_clean(&self) -> Option<(Index, Mark)> {
        let index = match self.index.open() {
            Ok(index) => index,
            Err(e) => {
                if self.index.dir().exists() {
                    tracing::warn!(error = %e, "the search index is damaged; rebuilding it");
                }
                return None;
            }
        };
        let mark: Option<Mark> = index
            .load_metas()
            .ok()
            .and_then(|m| m.payload)
            .and_then(|p| serde_json::from_str(&p).ok());
        match mark {
            Some(mark) if mark.format == FORMAT && mark.clean => Some((index, mark)),
            _ => {
                tracing::warn!("the search index was not closed cleanly; rebuilding it");
                None
            }
        }
    }

    /// The writer that keeps the index in step: one indexing thread and a small
    /// memory budget (a step writes what 200 ms of commits touched).
    fn writing(&self, index: &Index, seq: u64) -> Result<Writing, Failed> {
        let writer = index.writer_with_num_threads(1, SEARCH_WRITER_BYTES)?;
        Ok(Writing { writer, seq })
    }

    /// Adds every active product of the catalog; answers how many. The next
    /// page is read by the catalog while this one is added.
    async fn read_all(&self, writer: &IndexWriter) -> Result<u64, Failed> {
        let fields = self.index.fields();
        let mut documents = 0u64;
        let mut page = self.scan(None).await?;
        loop {
            let Some(last) = page.last.clone() else {
                return Ok(documents);
            };
            let add = async {
                for product in &page.products {
                    writer.add_document(fields.document(product))?;
                }
                Ok::<_, Failed>(page.products.len() as u64)
            };
            // `join` polls the read first: it is sent before the adding starts.
            let (next, added) = futures_util::future::join(self.scan(Some(last)), add).await;
            documents += added?;
            page = next?;
        }
    }

    async fn scan(&self, after: Option<Sku>) -> Result<Scanned, Failed> {
        self.catalog
            .ask(ScanProducts {
                after,
                limit: SEARCH_READ_BATCH,
            })
            .await
            .map_err(|e| Failed::Catalog(e.to_string()))?
            .map_err(|e| Failed::Catalog(e.to_string()))
    }

    /// Reads what is pending (and, when `follow`, the outbox past the mark),
    /// writes it and commits.
    /// Answers how many SKUs it took.
    async fn step(&self, writing: &mut Writing, follow: bool) -> Result<usize, Failed> {
        if follow {
            writing.seq = self.follow_events(writing.seq).await;
        }
        let pending = self.feed.take_at_most(SEARCH_STEP_SKUS_MAX);
        if pending.is_empty() {
            return Ok(0);
        }
        if let Err(e) = self.write(writing, &pending).await {
            // Nothing was committed: the same changes are read again next step.
            let skus: Vec<Sku> = pending
                .skus
                .iter()
                .filter_map(|s| Sku::parse(s).ok())
                .collect();
            self.feed.skus(&skus);
            if pending.all {
                self.feed.everything();
            }
            return Err(e);
        }
        self.commit(writing, false)?;
        SearchCommitted {
            lag_seconds: pending.since.map_or(0.0, |s| s.elapsed().as_secs_f64()),
            documents: self.index.documents(),
        }
        .emit(&self.telemetry);
        Ok(pending.skus.len())
    }

    /// Replaces the documents of `pending` by what the catalog holds now.
    async fn write(&self, writing: &Writing, pending: &Pending) -> Result<(), Failed> {
        let writer = &writing.writer;
        if pending.all {
            writer.delete_all_documents()?;
            self.read_all(writer).await?;
            return Ok(());
        }
        let fields = self.index.fields();
        let skus: Vec<Sku> = pending
            .skus
            .iter()
            .filter_map(|s| Sku::parse(s).ok())
            .collect();
        for chunk in skus.chunks(SEARCH_READ_BATCH) {
            let products = self
                .catalog
                .ask(GetProducts {
                    skus: chunk.to_vec(),
                })
                .await
                .map_err(|e| Failed::Catalog(e.to_string()))?
                .map_err(|e| Failed::Catalog(e.to_string()))?;
            for sku in chunk {
                writer.delete_term(Term::from_field_text(fields.sku, sku.as_str()));
            }
            for product in &products {
                writer.add_document(fields.document(product))?;
            }
        }
        Ok(())
    }

    /// Commits with the mark, and lets the searches see it.
    fn commit(&self, writing: &mut Writing, clean: bool) -> Result<(), Failed> {
        let mark = Mark {
            format: FORMAT,
            seq: writing.seq,
            clean,
        };
        let mut prepared = writing.writer.prepare_commit()?;
        prepared.set_payload(&serde_json::to_string(&mark).unwrap_or_default());
        prepared.commit()?;
        self.index.reload()?;
        Ok(())
    }

    /// Feeds the SKUs of the events after `seq`; answers the seq read through.
    async fn follow_events(&self, mut seq: u64) -> u64 {
        loop {
            let asked = self
                .events
                .ask(ListEvents {
                    after: Some(seq),
                    filter: TypeFilter::All,
                    limit: EVENTS_PAGE,
                })
                .await;
            let page = match asked {
                Ok(Ok(page)) => page,
                Ok(Err(EventsError::Expired { .. })) => {
                    // The outbox no longer has what was missed: read it all.
                    self.feed.everything();
                    return *self.newest_event.borrow();
                }
                Ok(Err(e)) => return self.unread(seq, &e),
                Err(e) => return self.unread(seq, &e),
            };
            for event in &page.items {
                self.note(&event.row.subject, &event.row.record);
            }
            let done = page.items.len() < EVENTS_PAGE || page.next_after <= seq;
            seq = page.next_after.max(seq);
            if done {
                return seq;
            }
        }
    }

    /// The outbox could not be read: stay at `seq` and try again next step.
    fn unread(&self, seq: u64, e: &dyn std::fmt::Display) -> u64 {
        tracing::warn!(error = %e, "the search index cannot read the events");
        seq
    }

    /// Feeds what one event says changed.
    fn note(&self, subject: &Subject, record: &[u8]) {
        match subject {
            Subject::Product { sku, .. } | Subject::Movement { sku, .. } => {
                self.feed.skus([sku]);
            }
            Subject::Order { .. } => match codec::decode::<OrderRow>(record) {
                Ok(order) => self.feed.skus(order.lines.iter().map(|l| &l.sku)),
                Err(_) => self.feed.everything(),
            },
            Subject::Job { .. } => match codec::decode::<JobRow>(record) {
                // Orders files emit their orders' events.
                Ok(job) if job.file_type.is_some_and(|t| t.kind == Kind::Orders) => {}
                _ => self.feed.everything(),
            },
        }
    }

    /// Writes what is pending and marks the index clean.
    async fn close(&self, mut writing: Writing) -> Result<(), Failed> {
        if self.follow {
            writing.seq = self.follow_events(writing.seq).await;
        } else {
            writing.seq = *self.newest_event.borrow();
        }
        let pending = self.feed.take();
        if !pending.is_empty() {
            self.write(&writing, &pending).await?;
        }
        self.commit(&mut writing, true)?;
        writing.writer.wait_merging_threads()?;
        Ok(())
    }
}
