//! Search (contract §7): a tantivy index of the active products in the node's own
//! directory (`<data-dir>/search/`), derived from the catalog and fed from the
//! committed changes, so it works the same on both backends and on every node.
//!
//! - [`fields`]: the schema and the one analyzer (lower case, accents folded);
//! - [`query`]: a request as tantivy queries (words, typos, prefix, exact SKU,
//!   filters);
//! - [`facets`]: counting a facet's values over every match;
//! - [`index`]: the index as searches read it, live or being built, and the
//!   snapshots behind cursors;
//! - [`feed`]: the SKUs the ledger's commits touched, waiting for the indexer;
//! - [`indexer`]: the index's one writer (build at start, keep in step).
//!
//! It reads the catalog through its room and the outbox through the events
//! room; it imports neither backend.

pub mod facets;
pub mod feed;
pub mod fields;
pub mod index;
pub mod indexer;
pub mod query;

use actix::{Actor, Context, Handler, Message};

pub use facets::FacetValue;
pub use feed::Feed;
pub use index::{SearchAnswer, SearchCursor, SearchError, SearchHit, SearchIndex};
pub use indexer::Indexer;
pub use query::{FacetName, PRICE_BUCKETS, SearchRequest};

use crate::common::StoreError;
use crate::mailbox::{Ping, Stop};

/// Answers searches, from a pool of threads (a search is CPU work; it never runs
/// on an HTTP worker).
pub struct SearchReader {
    index: SearchIndex,
}

impl SearchReader {
    pub fn new(index: SearchIndex) -> Self {
        Self { index }
    }
}

impl Actor for SearchReader {
    type Context = Context<Self>;
}

/// One page of a search.
#[derive(Debug, Message)]
#[rtype(result = "Result<SearchAnswer, SearchError>")]
pub struct Search {
    pub request: SearchRequest,
    /// Page size, already bounded.
    pub limit: usize,
    pub cursor: Option<SearchCursor>,
}

impl Handler<Search> for SearchReader {
    type Result = Result<SearchAnswer, SearchError>;
    fn handle(&mut self, msg: Search, _: &mut Self::Context) -> Self::Result {
        self.index.search(&msg.request, msg.limit, msg.cursor)
    }
}

impl Handler<Ping> for SearchReader {
    type Result = Result<(), StoreError>;
    fn handle(&mut self, _: Ping, _: &mut Self::Context) -> Self::Result {
        Ok(())
    }
}

impl Handler<Stop> for SearchReader {
    type Result = ();
    fn handle(&mut self, _: Stop, ctx: &mut Self::Context) {
        actix::ActorContext::stop(ctx);
        actix::Arbiter::current().stop();
    }
}
