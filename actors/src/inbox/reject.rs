//! Why one row is rejected: a closed set of codes, each counted in metrics, reports
//! and the job (`rejects_by_code`), and a human reason beside it.

use crate::limits::REJECT_RAW_BYTES_MAX;

pub use crate::domain::RejectCode;

/// A row that failed, with its line, a reason code (for counting), a reason for
/// people, and the raw text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reject {
    pub line: u64,
    pub code: RejectCode,
    pub reason: String,
    pub raw: String,
}

impl Reject {
    /// A reject of the row at `line`, keeping at most [`REJECT_RAW_BYTES_MAX`] of
    /// its text `raw`.
    pub fn new(line: u64, raw: String, code: RejectCode, reason: String) -> Self {
        Self {
            line,
            code,
            reason,
            raw: crate::text::cut_owned(raw, REJECT_RAW_BYTES_MAX),
        }
    }
}
