//! The inbox pipeline: files dropped into a folder (or uploaded) are claimed,
//! checked, and loaded exactly once, with every rejected row accounted for.
//!
//! Where a dropped file goes:
//! 1. [`watcher`] sees it (a scan; notifications only hint), waits until it has
//!    settled ([`settle`]), and claims it by renaming it into `.work/`;
//! 2. the runner creates a job ([`jobs`]) and runs the [`pipeline`]:
//!    [`extract::inspect`] hashes it and checks its structure, then
//!    [`extract`] → [`transform`] → [`load`] stream it into the ledger in batches,
//!    each committed with the file's read position (a products CSV whose header
//!    is Shopify's export is read by [`shopify`]);
//! 3. [`report`] writes `NAME.report.json` (and `NAME.rejects.csv`) and moves the
//!    file to `processed/` or `failed/`.

pub mod extract;
pub mod failure;
pub mod jobs;
pub mod load;
pub mod messages;
pub mod naming;
pub mod pipeline;
pub mod reject;
pub mod report;
pub mod schema;
pub mod settle;
pub mod shopify;
pub mod sniff;
pub mod transform;
pub mod values;
pub mod variants;
pub mod watcher;

// The inbox's front: what the web layer and the command line use.
pub use jobs::{Job, JobRow, JobStatus, JobView, Origin, new_job};
pub use messages::{CreateJob, GetJob, ListJobs, ListRejects, OpenJobs};
pub use naming::{FileType, Format, Kind, check_upload_name};
pub use pipeline::{Outcome, Pipeline};
pub use report::{Dirs, finalize};
pub use watcher::{
    AcceptUpload, Enqueue, Inbox, InboxConfig, InboxWatcher, RunnerAlive, create_job,
};
