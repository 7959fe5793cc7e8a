//! The search index as the readers see it: live or being rebuilt, the searches
//! it answers, and the snapshots that keep a search's pages stable.
//!
//! A search reads one snapshot of the index (a tantivy `Searcher`); a page with
//! more after it keeps that snapshot for [`SEARCH_CURSOR_SECS`] so the next
//! pages come from the same one: no hit repeats and none is skipped while the
//! index changes. At most [`SEARCH_SNAPSHOTS_MAX`] are kept (the oldest goes
//! first); a cursor whose snapshot is gone reads the current one.

use std::collections::VecDeque;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tantivy::collector::{Count, MultiCollector, TopDocs};
use tantivy::{DocAddress, Index, IndexReader, ReloadPolicy, Searcher};

use super::facets::{FacetCounter, FacetValue};
use super::fields::{self, Fields};
use super::query::{Compiled, FacetName, SearchRequest};
use crate::domain::Sku;
use crate::limits::{SEARCH_CURSOR_SECS, SEARCH_DEPTH_MAX, SEARCH_SNAPSHOTS_MAX};

/// One product a search found, with its relevance.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchHit {
    pub sku: Sku,
    pub score: f32,
}

/// A page of hits, the matches' count and the facets asked for.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchAnswer {
    pub hits: Vec<SearchHit>,
    /// Every match, not only this page.
    pub total: u64,
    pub facets: Vec<(FacetName, Vec<FacetValue>)>,
    pub next: Option<SearchCursor>,
}

/// Where the next page starts: the snapshot, the offset into its ranking, and
/// which search it belongs to. Opaque to clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchCursor {
    snapshot: u64,
    offset: u32,
    fingerprint: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    /// The index is being built (at start, or after damage): try again soon.
    #[error("the search index is being built")]
    Unavailable,
    /// The cursor was given with another search than the one it came from.
    #[error("the cursor belongs to another search")]
    CursorMismatch,
    #[error("search failed: {0}")]
    Index(String),
}

impl From<tantivy::TantivyError> for SearchError {
    fn from(e: tantivy::TantivyError) -> Self {
        Self::Index(e.to_string())
    }
}

/// The node's search index, as its readers and its indexer share it. Cheap to
/// clone.
#[derive(Clone)]
pub struct SearchIndex {
    inner: Arc<Inner>,
}

struct Inner {
    fields: Fields,
    dir: PathBuf,
    /// `None` while the index is being built.
    live: RwLock<Option<IndexReader>>,
    snapshots: Mutex<VecDeque<(Instant, Searcher)>>,
}

impl SearchIndex {
    /// An index kept in `dir`, not live until the indexer says so.
    pub fn new(dir: &Path) -> Self {
        Self {
            inner: Arc::new(Inner {
                fields: Fields::new(),
                dir: dir.to_path_buf(),
                live: RwLock::new(None),
                snapshots: Mutex::new(VecDeque::new()),
            }),
        }
    }

    pub fn fields(&self) -> &Fields {
        &self.inner.fields
    }

    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// Whether searches are answered (false while the index is built).
    pub fn is_live(&self) -> bool {
        self.inner.live.read().is_ok_and(|live| live.is_some())
    }

    /// Searches answer from `index` from now on.
    pub(super) fn go_live(&self, index: &Index) -> tantivy::Result<()> {
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        self.forget_snapshots();
        if let Ok(mut live) = self.inner.live.write() {
            *live = Some(reader);
        }
        Ok(())
    }

    /// Lets searches see the index's last commit.
    pub(super) fn reload(&self) -> tantivy::Result<()> {
        match self.inner.live.read() {
            Ok(live) => live.as_ref().map_or(Ok(()), IndexReader::reload),
            Err(_) => Ok(()),
        }
    }

    /// Documents searches see now (0 while the index is built).
    pub fn documents(&self) -> u64 {
        self.inner
            .live
            .read()
            .ok()
            .and_then(|live| live.as_ref().map(|r| r.searcher().num_docs()))
            .unwrap_or(0)
    }

    /// Searches answer 503 until the next [`Self::go_live`].
    pub(super) fn go_dark(&self) {
        if let Ok(mut live) = self.inner.live.write() {
            *live = None;
        }
        self.forget_snapshots();
    }

    fn forget_snapshots(&self) {
        if let Ok(mut snapshots) = self.inner.snapshots.lock() {
            snapshots.clear();
        }
    }

    /// Opens the index in its directory with the analyzer registered.
    pub(super) fn open(&self) -> tantivy::Result<Index> {
        let index = Index::open_in_dir(self.dir())?;
        if index.schema() != self.fields().schema {
            return Err(tantivy::TantivyError::SchemaError(
                "the index was written with another schema".into(),
            ));
        }
        fields::register(&index);
        Ok(index)
    }

    /// A new empty index in its directory (whatever was there is removed).
    pub(super) fn create(&self) -> tantivy::Result<Index> {
        let dir = self.dir();
        if dir.exists() {
            std::fs::remove_dir_all(dir)?;
        }
        std::fs::create_dir_all(dir)?;
        let index = Index::create_in_dir(dir, self.fields().schema.clone())?;
        fields::register(&index);
        Ok(index)
    }

    /// Answers `request`: a page of `limit` hits from `cursor` on, the count of
    /// every match, and the facets asked for.
    pub fn search(
        &self,
        request: &SearchRequest,
        limit: usize,
        cursor: Option<SearchCursor>,
    ) -> Result<SearchAnswer, SearchError> {
        let fingerprint = fingerprint(request);
        // A cursor is the client's to carry: one this search could not have
        // issued (another search, or an offset past the window, which would
        // make the ranking hold that many hits) is refused before anything runs.
        if cursor
            .is_some_and(|c| c.fingerprint != fingerprint || c.offset as usize >= SEARCH_DEPTH_MAX)
        {
            return Err(SearchError::CursorMismatch);
        }
        let searcher = self.snapshot(cursor.map(|c| c.snapshot))?;
        let offset = cursor.map_or(0, |c| c.offset as usize);
        let limit = limit.min(SEARCH_DEPTH_MAX - offset);
        let compiled = Compiled::new(self.fields(), request);
        let mut multi = MultiCollector::new();
        let top = multi.add_collector(TopDocs::with_limit(limit.max(1)).and_offset(offset));
        let count = multi.add_collector(Count);
        let mut shared = Vec::new();
        for facet in &request.facets {
            if !compiled.filters_own(facet) {
                shared.push((facet, multi.add_collector(FacetCounter::new(facet.clone()))));
            }
        }
        let mut fruits = searcher.search(&*compiled.hits(), &multi)?;
        let docs = if limit == 0 {
            Vec::new()
        } else {
            top.extract(&mut fruits)
        };
        let total = count.extract(&mut fruits) as u64;
        let mut facets = Vec::with_capacity(request.facets.len());
        let mut shared = shared.into_iter().map(|(f, h)| (f, h.extract(&mut fruits)));
        for facet in &request.facets {
            let values = match shared.find(|(f, _)| *f == facet) {
                Some((_, values)) => values,
                None => {
                    let query = compiled.for_facet(facet);
                    searcher.search(&*query, &FacetCounter::new(facet.clone()))?
                }
            };
            facets.push((facet.clone(), values));
        }
        let hits = hits_of(&searcher, &docs)?;
        let reached = offset + hits.len();
        let next = (hits.len() == limit && reached < SEARCH_DEPTH_MAX && (reached as u64) < total)
            .then(|| SearchCursor {
                snapshot: self.keep(&searcher),
                offset: u32::try_from(reached).unwrap_or(u32::MAX),
                fingerprint,
            });
        Ok(SearchAnswer {
            hits,
            total,
            facets,
            next,
        })
    }

    /// The snapshot a cursor names if it is still kept, else the newest.
    fn snapshot(&self, wanted: Option<u64>) -> Result<Searcher, SearchError> {
        if let (Some(id), Ok(mut kept)) = (wanted, self.inner.snapshots.lock()) {
            let ttl = Duration::from_secs(SEARCH_CURSOR_SECS);
            kept.retain(|(at, _)| at.elapsed() < ttl);
            if let Some((_, searcher)) = kept
                .iter()
                .find(|(_, s)| s.generation().generation_id() == id)
            {
                return Ok(searcher.clone());
            }
        }
        let live = self
            .inner
            .live
            .read()
            .map_err(|_| SearchError::Unavailable)?;
        live.as_ref()
            .map(IndexReader::searcher)
            .ok_or(SearchError::Unavailable)
    }

    /// Keeps `searcher` for the pages after this one; answers its id.
    fn keep(&self, searcher: &Searcher) -> u64 {
        let id = searcher.generation().generation_id();
        if let Ok(mut kept) = self.inner.snapshots.lock() {
            if let Some(entry) = kept
                .iter_mut()
                .find(|(_, s)| s.generation().generation_id() == id)
            {
                entry.0 = Instant::now();
            } else {
                if kept.len() >= SEARCH_SNAPSHOTS_MAX {
                    kept.pop_front();
                }
                kept.push_back((Instant::now(), searcher.clone()));
            }
        }
        id
    }
}

/// Which search a cursor belongs to (the request without its page).
fn fingerprint(request: &SearchRequest) -> u64 {
    let mut hasher = std::hash::DefaultHasher::new();
    request.hash(&mut hasher);
    hasher.finish()
}

/// The SKUs of `docs`, read from the fast column, with their scores.
fn hits_of(searcher: &Searcher, docs: &[(f32, DocAddress)]) -> Result<Vec<SearchHit>, SearchError> {
    let mut hits = Vec::with_capacity(docs.len());
    let mut text = String::new();
    for (score, address) in docs {
        let segment = searcher.segment_reader(address.segment_ord);
        let Some(column) = segment.fast_fields().str("sku")? else {
            continue;
        };
        let Some(ord) = column.term_ords(address.doc_id).next() else {
            continue;
        };
        text.clear();
        let found = column
            .ord_to_str(ord, &mut text)
            .map_err(|e| SearchError::Index(e.to_string()))?;
        if let (true, Ok(sku)) = (found, Sku::parse(&text)) {
            hits.push(SearchHit { sku, score: *score });
        }
    }
    Ok(hits)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Until the indexer says the index is live, searches are refused as
    /// unavailable (the API's 503 with `Retry-After`), never answered empty.
    #[test]
    fn an_index_not_yet_built_answers_unavailable() {
        let dir = tempfile::tempdir().unwrap();
        let index = SearchIndex::new(&dir.path().join("search"));
        let request = SearchRequest::default();
        assert!(matches!(
            index.search(&request, 10, None),
            Err(SearchError::Unavailable)
        ));
        let built = index.create().unwrap();
        index.go_live(&built).unwrap();
        let answer = index.search(&request, 10, None).unwrap();
        assert_eq!(answer.total, 0);
        index.go_dark();
        assert!(matches!(
            index.search(&request, 10, None),
            Err(SearchError::Unavailable)
        ));
    }

    /// A forged cursor with an offset past the window is refused, not run (the
    /// ranking would have to hold that many hits: a crafted cursor could make a
    /// node allocate gigabytes).
    #[test]
    fn a_cursor_past_the_window_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let index = SearchIndex::new(&dir.path().join("search"));
        index.go_live(&index.create().unwrap()).unwrap();
        let request = SearchRequest::default();
        let forged = |offset: u32| SearchCursor {
            snapshot: 0,
            offset,
            fingerprint: fingerprint(&request),
        };
        for offset in [u32::MAX, u32::try_from(SEARCH_DEPTH_MAX).unwrap()] {
            assert!(matches!(
                index.search(&request, 10, Some(forged(offset))),
                Err(SearchError::CursorMismatch)
            ));
        }
        let last = u32::try_from(SEARCH_DEPTH_MAX - 1).unwrap();
        assert_eq!(
            index
                .search(&request, 100, Some(forged(last)))
                .unwrap()
                .total,
            0
        );
    }
}
