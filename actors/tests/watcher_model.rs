//! Property test of the inbox watcher's scan-and-claim logic on a real folder with a
//! simulated clock: random sequences of writes, unfinished writes, appends, renames
//! from `.part`, duplicates and deletes, against a model of which files are complete
//! and for how long they have been stable. Every complete file must be claimed
//! exactly once, with the content it had, only after it settled; `.part` files and
//! unfinished files never. A CSV file is complete once settled, with or without a
//! final line break; a JSON array only once it is closed.

// Test data is small and known: casts between its integer types cannot lose anything.
#![allow(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_possible_wrap
)]

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use proptest::prelude::*;

use orderflow_actors::inbox::report::Dirs;
use orderflow_actors::inbox::watcher::{InboxConfig, Scanner};

const SETTLE_MS: u64 = 200;
const NAMES: usize = 4;

#[derive(Debug, Clone)]
enum Action {
    /// Write a complete file under its final name.
    Write(usize),
    /// Write a file whose end is cut: a CSV without its last line break (complete
    /// all the same), a JSON array not closed (unfinished).
    WriteUnfinished(usize),
    /// Append a complete row (closes an unfinished JSON array).
    Append(usize),
    /// Write `.part`, to be renamed later.
    WritePart(usize),
    /// Rename `.part` to the final name.
    Rename(usize),
    /// Copy one final file's bytes to another name.
    Duplicate(usize, usize),
    Delete(usize),
    /// Advance the clock and scan.
    Tick(u64),
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        3 => (0..NAMES).prop_map(Action::Write),
        1 => (0..NAMES).prop_map(Action::WriteUnfinished),
        2 => (0..NAMES).prop_map(Action::Append),
        2 => (0..NAMES).prop_map(Action::WritePart),
        2 => (0..NAMES).prop_map(Action::Rename),
        1 => (0..NAMES, 0..NAMES).prop_map(|(a, b)| Action::Duplicate(a, b)),
        1 => (0..NAMES).prop_map(Action::Delete),
        6 => (0u64..400).prop_map(Action::Tick),
    ]
}

fn name(i: usize) -> String {
    if i.is_multiple_of(2) {
        format!("products_{i}.csv")
    } else {
        format!("products_{i}.json")
    }
}

/// Whether the inbox must take a file with this content as it is: all but a JSON
/// array that opens and does not close (anything else in a `.json` file is taken,
/// and fails on its own).
fn complete(name: &str, content: &str) -> bool {
    !name.ends_with(".json")
        || !content.trim_start().starts_with('[')
        || content.trim_end().ends_with(']')
}

/// What the model knows of a final-named file in the inbox.
#[derive(Debug, Clone)]
struct Version {
    content: String,
    id: u64,
    changed_at_ms: u64,
}

struct World {
    dir: tempfile::TempDir,
    scanner: Scanner,
    t0: Instant,
    now_ms: u64,
    files: HashMap<String, Version>,
    next_id: u64,
    /// Lengths grow with every write so a change is always visible in the size.
    serial: usize,
    claimed: HashSet<u64>,
}

impl World {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let dirs = Dirs::new(dir.path());
        dirs.create().unwrap();
        let config = InboxConfig {
            root: dir.path().to_owned(),
            settle: Duration::from_millis(SETTLE_MS),
            scan_interval: Duration::from_secs(1),
            poll: true,
            // Longer than any test run: unfinished files only go when completed.
            truncated_wait: Duration::from_secs(3600),
            shared: false,
        };
        Self {
            scanner: Scanner::new(config, dirs),
            dir,
            t0: Instant::now(),
            now_ms: 0,
            files: HashMap::new(),
            next_id: 0,
            serial: 0,
            claimed: HashSet::new(),
        }
    }

    fn path(&self, n: &str) -> std::path::PathBuf {
        self.dir.path().join(n)
    }

    fn fresh_content(&mut self, i: usize, complete: bool) -> String {
        self.serial += 1;
        if name(i).ends_with(".json") {
            let rows: Vec<String> = (0..self.serial)
                .map(|r| format!("{{\"name\":\"row{r}\",\"price\":1}}"))
                .collect();
            let text = format!("[{}", rows.join(",\n"));
            return if complete {
                format!("{text}]\n")
            } else {
                format!("{text},\n")
            };
        }
        let rows: String = (0..self.serial).map(|i| format!("row{i},1\n")).collect();
        let text = format!("name,price\n{rows}");
        if complete {
            text
        } else {
            format!("{text}cut,1")
        }
    }

    fn appended(&mut self, n: &str, content: &str) -> String {
        self.serial += 1;
        if n.ends_with(".json") {
            let open = content
                .trim_end()
                .trim_end_matches(']')
                .trim_end_matches(',');
            format!(
                "{open},\n{{\"name\":\"more{}\",\"price\":1}}]\n",
                self.serial
            )
        } else if content.ends_with('\n') {
            format!("{content}more{},1\n", self.serial)
        } else {
            format!("{content}\nmore{},1\n", self.serial)
        }
    }

    fn record(&mut self, n: String, content: String) {
        self.next_id += 1;
        self.files.insert(
            n,
            Version {
                content,
                id: self.next_id,
                changed_at_ms: self.now_ms,
            },
        );
    }

    fn apply(&mut self, action: &Action) {
        match action {
            Action::Write(i) | Action::WriteUnfinished(i) => {
                let content = self.fresh_content(*i, matches!(action, Action::Write(_)));
                std::fs::write(self.path(&name(*i)), &content).unwrap();
                self.record(name(*i), content);
            }
            Action::Append(i) => {
                let n = name(*i);
                if let Some(v) = self.files.get(&n).cloned() {
                    let content = self.appended(&n, &v.content);
                    std::fs::write(self.path(&n), &content).unwrap();
                    self.record(n, content);
                }
            }
            Action::WritePart(i) => {
                let content = self.fresh_content(*i, true);
                std::fs::write(self.path(&format!("{}.part", name(*i))), content).unwrap();
            }
            Action::Rename(i) => {
                let part = self.path(&format!("{}.part", name(*i)));
                if part.exists() {
                    let content = std::fs::read_to_string(&part).unwrap();
                    std::fs::rename(&part, self.path(&name(*i))).unwrap();
                    self.record(name(*i), content);
                }
            }
            Action::Duplicate(a, b) => {
                if a != b
                    && let Some(v) = self.files.get(&name(*a)).cloned()
                {
                    std::fs::write(self.path(&name(*b)), &v.content).unwrap();
                    self.record(name(*b), v.content);
                }
            }
            Action::Delete(i) => {
                if self.files.remove(&name(*i)).is_some() {
                    std::fs::remove_file(self.path(&name(*i))).unwrap();
                }
            }
            Action::Tick(ms) => {
                self.now_ms += ms;
                self.scan();
            }
        }
    }

    fn scan(&mut self) {
        let now = self.t0 + Duration::from_millis(self.now_ms);
        for claim in self.scanner.scan(now, usize::MAX).unwrap() {
            assert!(!claim.file_name.ends_with(".part"), "claimed a .part file");
            assert!(claim.refused.is_none(), "nothing here is refused");
            let content = std::fs::read_to_string(&claim.work_path).unwrap();
            let v = self
                .files
                .remove(&claim.file_name)
                .expect("claimed a file the model does not have");
            assert_eq!(
                content, v.content,
                "claimed {} with other content than written",
                claim.file_name
            );
            assert!(
                complete(&claim.file_name, &content),
                "claimed an unfinished file"
            );
            assert!(
                self.now_ms - v.changed_at_ms >= SETTLE_MS,
                "claimed {} before it settled",
                claim.file_name
            );
            assert!(self.claimed.insert(v.id), "claimed version {} twice", v.id);
            std::fs::remove_file(&claim.work_path).unwrap();
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn every_complete_file_is_claimed_exactly_once(actions in prop::collection::vec(action(), 1..40)) {
        let mut world = World::new();
        for a in &actions {
            world.apply(a);
        }
        // Let everything settle: two scans a settle period apart.
        world.apply(&Action::Tick(SETTLE_MS));
        world.apply(&Action::Tick(SETTLE_MS));
        for (n, v) in &world.files {
            prop_assert!(!complete(n, &v.content), "complete file {} was never claimed", n);
        }
        // `.part` files are still there, untouched.
        for entry in std::fs::read_dir(world.dir.path()).unwrap() {
            let entry = entry.unwrap();
            if entry.file_type().unwrap().is_file() {
                let n = entry.file_name().into_string().unwrap();
                prop_assert!(n.ends_with(".part") || world.files.contains_key(&n), "stray file {}", n);
            }
        }
    }
}
