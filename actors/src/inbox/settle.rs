//! When is a dropped file complete? When its size and modification time have not
//! changed for the settle period, and it is not a JSON array still open
//! ([`looks_truncated`]). This is the pure decision, kept apart from the
//! file system so it can be tested against a model with a simulated clock.

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime};

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use super::naming::{Format, is_ignored};
use crate::limits::{INBOX_TRACKED_FILES_MAX, TRUNCATION_PROBE_BYTES};

/// One directory entry as seen by a scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub name: String,
    pub size: u64,
    pub modified: SystemTime,
}

#[derive(Debug, Clone)]
struct Tracked {
    size: u64,
    modified: SystemTime,
    stable_since: Instant,
    first_seen: Instant,
    park: Park,
}

/// A settled file the watcher decided not to take yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Park {
    /// Not parked.
    No,
    /// Not ready again before this instant (a file that looks truncated is given
    /// time to be completed), unless it changes first.
    Until(Instant),
    /// Not ready again until it changes (a file that could not be claimed).
    UntilChanged,
}

/// Tracks candidate files between scans.
#[derive(Debug)]
pub struct Settler {
    settle: Duration,
    tracked: HashMap<String, Tracked>,
}

impl Settler {
    pub fn new(settle: Duration) -> Self {
        Self {
            settle,
            tracked: HashMap::new(),
        }
    }

    /// Takes a full listing of the folder at `now` and returns the names that have
    /// been stable for the settle period, oldest first. Ignored names are never
    /// returned; vanished files are forgotten; a file that changed starts over.
    pub fn observe(&mut self, now: Instant, listing: &[Seen]) -> Vec<String> {
        let mut present = std::collections::HashSet::with_capacity(listing.len());
        for entry in listing {
            if is_ignored(&entry.name) {
                continue;
            }
            present.insert(entry.name.as_str());
            let room = self.tracked.len() < INBOX_TRACKED_FILES_MAX;
            match self.tracked.get_mut(&entry.name) {
                Some(t) if t.size == entry.size && t.modified == entry.modified => {}
                Some(t) => {
                    t.size = entry.size;
                    t.modified = entry.modified;
                    t.stable_since = now;
                    t.park = Park::No;
                }
                None if room => {
                    self.tracked.insert(
                        entry.name.clone(),
                        Tracked {
                            size: entry.size,
                            modified: entry.modified,
                            stable_since: now,
                            first_seen: now,
                            park: Park::No,
                        },
                    );
                }
                None => {}
            }
        }
        self.tracked
            .retain(|name, _| present.contains(name.as_str()));
        let mut ready: Vec<(&String, &Tracked)> = self
            .tracked
            .iter()
            .filter(|(_, t)| {
                now.duration_since(t.stable_since) >= self.settle
                    && match t.park {
                        Park::No => true,
                        Park::Until(at) => now >= at,
                        Park::UntilChanged => false,
                    }
            })
            .collect();
        ready.sort_by_key(|(name, t)| (t.first_seen, (*name).clone()));
        ready.into_iter().map(|(name, _)| name.clone()).collect()
    }

    /// Stops tracking `name` (it was claimed).
    pub fn forget(&mut self, name: &str) {
        self.tracked.remove(name);
    }

    /// Holds a tracked file back (see [`Park`]); a change to it releases it.
    pub fn park(&mut self, name: &str, park: Park) {
        if let Some(t) = self.tracked.get_mut(name) {
            t.park = park;
        }
    }

    /// Whether `name` is tracked and held back (and has not changed since).
    pub fn is_parked(&self, name: &str) -> bool {
        self.tracked.get(name).is_some_and(|t| t.park != Park::No)
    }

    /// Files being watched but not yet settled, and how long the oldest has waited.
    pub fn waiting(&self, now: Instant) -> (usize, Duration) {
        let oldest = self
            .tracked
            .values()
            .map(|t| now.duration_since(t.first_seen))
            .max()
            .unwrap_or_default();
        (self.tracked.len(), oldest)
    }

    /// When the next tracked file could become ready (for scheduling a rescan).
    pub fn next_deadline(&self) -> Option<Instant> {
        self.tracked
            .values()
            .filter_map(|t| {
                let settled = t.stable_since + self.settle;
                match t.park {
                    Park::No => Some(settled),
                    Park::Until(at) => Some(settled.max(at)),
                    Park::UntilChanged => None,
                }
            })
            .min()
    }
}

/// The tail of a file looks cut: a JSON array that opens but does not close (a
/// writer still at work, or one that died). CSV and JSON Lines files are complete
/// once they have settled: RFC 4180 makes the final line break optional, and many
/// exporters leave it out. Only checked for uncompressed files (a cut gzip stream is
/// caught by [`super::extract::inspect`]).
pub fn looks_truncated(
    path: &Path,
    format: Format,
    gzip: bool,
) -> io::Result<Option<&'static str>> {
    use std::io::{Seek, SeekFrom};
    if gzip || format != Format::JsonArray {
        return Ok(None);
    }
    let mut file = File::open(path)?;
    let len = file.metadata()?.len();
    let edge = len.min(TRUNCATION_PROBE_BYTES);
    let mut head = vec![0u8; usize::try_from(edge).unwrap_or(0)];
    file.read_exact(&mut head)?;
    let first = head
        .iter()
        .find(|b| !b.is_ascii_whitespace() && **b != 0xEF && **b != 0xBB && **b != 0xBF)
        .copied();
    file.seek(SeekFrom::Start(len - edge))?;
    let mut tail = vec![0u8; head.len()];
    file.read_exact(&mut tail)?;
    let last = tail
        .iter()
        .rev()
        .find(|b| !b.is_ascii_whitespace())
        .copied();
    // Not an array at all is a structural failure, not a file still being written.
    Ok((first == Some(b'[') && last != Some(b']')).then_some("the JSON array is not closed"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(name: &str, size: u64, secs: u64) -> Seen {
        Seen {
            name: name.into(),
            size,
            modified: SystemTime::UNIX_EPOCH + Duration::from_secs(secs),
        }
    }

    #[test]
    fn a_file_is_ready_after_staying_unchanged_for_the_settle_period() {
        let mut s = Settler::new(Duration::from_millis(1000));
        let t0 = Instant::now();
        assert!(s.observe(t0, &[seen("products.csv", 10, 1)]).is_empty());
        assert!(
            s.observe(
                t0 + Duration::from_millis(999),
                &[seen("products.csv", 10, 1)]
            )
            .is_empty()
        );
        // It grew: the clock starts again.
        assert!(
            s.observe(
                t0 + Duration::from_millis(1500),
                &[seen("products.csv", 20, 2)]
            )
            .is_empty()
        );
        assert!(
            s.observe(
                t0 + Duration::from_millis(2400),
                &[seen("products.csv", 20, 2)]
            )
            .is_empty()
        );
        assert_eq!(
            s.observe(
                t0 + Duration::from_millis(2500),
                &[seen("products.csv", 20, 2)]
            ),
            vec!["products.csv"]
        );
    }

    #[test]
    fn a_parked_file_waits_for_its_time_or_a_change_and_sets_no_earlier_deadline() {
        let mut s = Settler::new(Duration::ZERO);
        let t0 = Instant::now();
        let later = t0 + Duration::from_secs(60);
        assert_eq!(s.observe(t0, &[seen("a.json", 1, 1)]), vec!["a.json"]);
        s.park("a.json", Park::Until(later));
        assert!(s.observe(t0, &[seen("a.json", 1, 1)]).is_empty());
        assert_eq!(s.next_deadline(), Some(later), "no busy rescans meanwhile");
        assert_eq!(s.observe(later, &[seen("a.json", 1, 1)]), vec!["a.json"]);
        s.park("a.json", Park::UntilChanged);
        assert!(s.is_parked("a.json"));
        assert_eq!(s.next_deadline(), None);
        assert!(s.observe(later, &[seen("a.json", 1, 1)]).is_empty());
        // It changed: taken again at once (settle period zero).
        assert_eq!(s.observe(later, &[seen("a.json", 2, 2)]), vec!["a.json"]);
        assert!(!s.is_parked("a.json"));
    }

    #[test]
    fn ignored_and_vanished_files_never_become_ready() {
        let mut s = Settler::new(Duration::ZERO);
        let t0 = Instant::now();
        assert!(
            s.observe(t0, &[seen("products.csv.part", 1, 1), seen(".x", 1, 1)])
                .is_empty()
        );
        assert_eq!(s.observe(t0, &[seen("a.csv", 1, 1)]), vec!["a.csv"]);
        s.observe(t0, &[]);
        assert_eq!(s.waiting(t0).0, 0);
    }
}
