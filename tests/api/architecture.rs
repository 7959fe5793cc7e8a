//! The invariants ARCHITECTURE.md states, checked on the source tree itself, so a
//! change that breaks one fails here rather than in a review.
//!
//! Why one file: every check reads the same tree with the same few helpers (the
//! module graph, the function measure); apart, each would carry its own copy.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// A file's code without its unit tests and without comments: what it really uses.
fn code_of(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    let before_tests = text.split("#[cfg(test)]").next().unwrap_or_default();
    before_tests
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// `a/b/mod.rs` → `["a", "b"]`, `a/c.rs` → `["a", "c"]`, `lib.rs` → `[]`.
fn module_of(src: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    let is_dir_module = matches!(
        parts.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    );
    if is_dir_module {
        parts.pop();
    }
    parts
}

/// Every path a piece of code names from `crate::`, `super::` or `self::`, brace
/// groups (`use crate::{a::B, c}`) expanded.
fn paths_named(code: &str) -> Vec<(String, Vec<String>)> {
    let bytes = code.as_bytes();
    let mut found = Vec::new();
    for start in ["crate::", "super::", "self::"] {
        let mut from = 0;
        while let Some(at) = code[from..].find(start) {
            let begin = from + at;
            from = begin + start.len();
            let preceded_by_ident = begin > 0
                && (bytes[begin - 1].is_ascii_alphanumeric()
                    || bytes[begin - 1] == b'_'
                    || bytes[begin - 1] == b':');
            if preceded_by_ident {
                continue;
            }
            let base = start.trim_end_matches("::").to_owned();
            for path in expand(&code[from..]) {
                found.push((base.clone(), path));
            }
        }
    }
    found
}

/// Reads `a::b::{c::d, e}` at the start of `rest` into `[[a,b,c,d], [a,b,e]]`.
fn expand(rest: &str) -> Vec<Vec<String>> {
    let mut prefix = Vec::new();
    let mut chars = rest.char_indices().peekable();
    let mut ident = String::new();
    while let Some(&(i, c)) = chars.peek() {
        if c.is_ascii_alphanumeric() || c == '_' {
            ident.push(c);
            chars.next();
        } else if rest[i..].starts_with("::") {
            prefix.push(std::mem::take(&mut ident));
            chars.next();
            chars.next();
        } else if c == '{' && ident.is_empty() {
            let inner = &rest[i + 1..];
            let mut depth = 1;
            let mut end = inner.len();
            for (j, ch) in inner.char_indices() {
                match ch {
                    '{' => depth += 1,
                    '}' => {
                        depth -= 1;
                        if depth == 0 {
                            end = j;
                            break;
                        }
                    }
                    _ => {}
                }
            }
            let mut out = Vec::new();
            let mut depth = 0;
            let mut item_start = 0;
            let group = &inner[..end];
            for (j, ch) in group.char_indices() {
                match ch {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        out.extend(expand_item(&prefix, &group[item_start..j]));
                        item_start = j + 1;
                    }
                    _ => {}
                }
            }
            out.extend(expand_item(&prefix, &group[item_start..]));
            return out;
        } else {
            break;
        }
    }
    if !ident.is_empty() {
        prefix.push(ident);
    }
    vec![prefix]
}

fn expand_item(prefix: &[String], item: &str) -> Vec<Vec<String>> {
    let item = item.trim();
    if item.is_empty() {
        return Vec::new();
    }
    expand(item)
        .into_iter()
        .map(|tail| prefix.iter().cloned().chain(tail).collect())
        .collect()
}

/// The file-to-file graph of one crate: an edge from each file to every file
/// module it names.
fn module_graph(src: &Path) -> BTreeMap<Vec<String>, BTreeSet<Vec<String>>> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let modules = files
        .iter()
        .map(|f| (module_of(src, f), code_of(f)))
        .collect();
    graph_of(&modules)
}

/// The graph of modules given with their code. `self` is a file's own module and
/// `super` its parent, for a `mod.rs` and a plain `foo.rs` alike: `super::book`
/// in `ledger/rows.rs` is `ledger::book`.
fn graph_of(
    modules: &BTreeMap<Vec<String>, String>,
) -> BTreeMap<Vec<String>, BTreeSet<Vec<String>>> {
    let mut graph = BTreeMap::new();
    for (module, code) in modules {
        let mut edges = BTreeSet::new();
        for (base, path) in paths_named(code) {
            let (mut at, mut rest) = match base.as_str() {
                "crate" => (Vec::new(), path.as_slice()),
                "self" => (module.clone(), path.as_slice()),
                _ => (
                    module[..module.len().saturating_sub(1)].to_vec(),
                    path.as_slice(),
                ),
            };
            while rest.first().is_some_and(|s| s == "super") {
                at.pop();
                rest = &rest[1..];
            }
            let target = (0..=rest.len()).rev().find_map(|n| {
                let candidate: Vec<String> = at.iter().cloned().chain(rest[..n].to_vec()).collect();
                modules.contains_key(&candidate).then_some(candidate)
            });
            if let Some(target) = target
                && &target != module
            {
                edges.insert(target);
            }
        }
        graph.insert(module.clone(), edges);
    }
    graph
}

/// The groups of files that import each other in a circle (Tarjan's SCCs of
/// more than one file).
fn circles(graph: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>) -> Vec<Vec<String>> {
    struct Walk<'g> {
        graph: &'g BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
        index: BTreeMap<&'g Vec<String>, usize>,
        low: BTreeMap<&'g Vec<String>, usize>,
        stack: Vec<&'g Vec<String>>,
        next: usize,
        found: Vec<Vec<String>>,
    }
    impl<'g> Walk<'g> {
        fn visit(&mut self, v: &'g Vec<String>) {
            self.index.insert(v, self.next);
            self.low.insert(v, self.next);
            self.next += 1;
            self.stack.push(v);
            for w in &self.graph[v] {
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let lw = self.low[w];
                    let lv = self.low.get_mut(v).unwrap();
                    *lv = (*lv).min(lw);
                } else if self.stack.contains(&w) {
                    let iw = self.index[w];
                    let lv = self.low.get_mut(v).unwrap();
                    *lv = (*lv).min(iw);
                }
            }
            if self.low[v] == self.index[v] {
                let mut group = Vec::new();
                while let Some(w) = self.stack.pop() {
                    group.push(w.join("::"));
                    if w == v {
                        break;
                    }
                }
                if group.len() > 1 {
                    self.found.push(group);
                }
            }
        }
    }
    let mut walk = Walk {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        next: 0,
        found: Vec::new(),
    };
    for v in graph.keys() {
        if !walk.index.contains_key(v) {
            walk.visit(v);
        }
    }
    walk.found
}

#[test]
fn no_file_imports_a_file_that_imports_it_back() {
    for src in ["src", "actors/src"] {
        let graph = module_graph(&root().join(src));
        assert!(graph.len() > 20, "{src}: the walk found too few files");
        assert_eq!(circles(&graph), Vec::<Vec<String>>::new(), "{src}");
    }
}

#[test]
fn the_circle_finder_finds_a_circle() {
    let mut graph = BTreeMap::new();
    let a = vec!["a".to_owned()];
    let b = vec!["b".to_owned()];
    let c = vec!["c".to_owned()];
    graph.insert(a.clone(), BTreeSet::from([b.clone()]));
    graph.insert(b.clone(), BTreeSet::from([a.clone(), c.clone()]));
    graph.insert(c.clone(), BTreeSet::new());
    assert_eq!(circles(&graph).len(), 1);
    let named = paths_named("use crate::{store::{a, b::C}, ledger};\nlet x = super::super::z::Y;");
    let named: Vec<String> = named
        .into_iter()
        .map(|(b, p)| format!("{b}::{}", p.join("::")))
        .collect();
    assert!(
        named.contains(&"crate::store::b::C".to_owned()),
        "{named:?}"
    );
    assert!(named.contains(&"crate::ledger".to_owned()), "{named:?}");
    assert!(
        named.contains(&"super::super::z::Y".to_owned()),
        "{named:?}"
    );
}

/// A circle through `super::` between two plain files of one folder, the shape
/// `ledger/book.rs` ↔ `ledger/rows.rs` once had, is found; so is one between a
/// `mod.rs` and its child through `self::`, and a path that climbs with
/// `super::super::` lands where Rust says it does.
#[test]
fn the_circle_finder_sees_circles_through_super_in_plain_files() {
    let m = |path: &str, code: &str| {
        let module: Vec<String> = path
            .split('/')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        (module, code.to_owned())
    };
    let planted: BTreeMap<Vec<String>, String> = [
        m("", "mod ledger; mod store;"),
        m("ledger", "mod book; mod rows; use self::rows::RedbRows;"),
        m("ledger/book", "use super::rows::LedgerRows;"),
        m("ledger/rows", "use super::book::{OrderRow, Level};"),
        m("store", "pub struct Page;"),
        m("store/codec", "use super::super::ledger::book::X;"),
    ]
    .into_iter()
    .collect();
    let graph = graph_of(&planted);
    let key = |p: &str| p.split('/').map(str::to_owned).collect::<Vec<_>>();
    assert!(
        graph[&key("ledger/book")].contains(&key("ledger/rows")),
        "{graph:?}"
    );
    assert!(
        graph[&key("ledger/rows")].contains(&key("ledger/book")),
        "{graph:?}"
    );
    assert!(
        graph[&key("store/codec")].contains(&key("ledger/book")),
        "{graph:?}"
    );
    assert!(
        graph[&key("ledger")].contains(&key("ledger/rows")),
        "{graph:?}"
    );
    let mut found = circles(&graph);
    for group in &mut found {
        group.sort();
    }
    assert_eq!(
        found,
        vec![vec!["ledger::book".to_owned(), "ledger::rows".to_owned()]]
    );
}

/// The inbox pipeline knows no backend: it asks the ledger's room, and both
/// ledgers answer (claims and take-overs included). No file under `inbox/`
/// names `pg`.
#[test]
fn the_inbox_imports_nothing_from_the_postgresql_backend() {
    let src = root().join("actors/src");
    let graph = module_graph(&src);
    let inbox: Vec<_> = graph
        .iter()
        .filter(|(m, _)| m.first().is_some_and(|s| s == "inbox"))
        .collect();
    assert!(inbox.len() > 10, "the walk found too few inbox files");
    for (module, edges) in inbox {
        for edge in edges {
            assert!(
                edge.first().is_none_or(|s| s != "pg"),
                "{} imports {}",
                module.join("::"),
                edge.join("::")
            );
        }
    }
}

/// The search index is the node's own, the same on both backends: it reads
/// through the catalog and events rooms. No file under `search/` names `pg` or
/// `store`.
#[test]
fn search_imports_neither_backend() {
    let src = root().join("actors/src");
    let graph = module_graph(&src);
    let search: Vec<_> = graph
        .iter()
        .filter(|(m, _)| m.first().is_some_and(|s| s == "search"))
        .collect();
    assert!(search.len() >= 6, "the walk found too few search files");
    for (module, edges) in search {
        for edge in edges {
            assert!(
                edge.first().is_none_or(|s| s != "pg" && s != "store"),
                "{} imports {}",
                module.join("::"),
                edge.join("::")
            );
        }
    }
}

/// The actors crate holds the state and knows nothing of HTTP or of how the API
/// is documented.
#[test]
fn the_actors_crate_depends_on_neither_actix_web_nor_utoipa() {
    let manifest = std::fs::read_to_string(root().join("actors/Cargo.toml")).unwrap();
    for dep in ["actix-web", "utoipa", "awc"] {
        assert!(
            !manifest.lines().any(|l| l.trim_start().starts_with(dep)),
            "actors/Cargo.toml depends on {dep}"
        );
    }
    let mut files = Vec::new();
    rust_files(&root().join("actors/src"), &mut files);
    for file in files {
        let code = std::fs::read_to_string(&file).unwrap();
        for name in ["actix_web", "utoipa"] {
            assert!(!code.contains(name), "{} names {name}", file.display());
        }
    }
}

/// Status codes are chosen in `error.rs` only (success statuses are the handlers'
/// own: `HttpResponse::Created()` and the like).
#[test]
fn only_error_rs_names_status_codes() {
    let mut files = Vec::new();
    rust_files(&root().join("src"), &mut files);
    let allowed = root().join("src/error.rs");
    for file in files.iter().filter(|f| **f != allowed) {
        let code = code_of(file);
        assert!(
            !code.contains("StatusCode::"),
            "{} picks a status code",
            file.display()
        );
        for builder in [
            "BadRequest()",
            "NotFound()",
            "Conflict()",
            "Forbidden()",
            "Unauthorized()",
            "InternalServerError()",
            "ServiceUnavailable()",
            "UnprocessableEntity()",
            "TooManyRequests()",
        ] {
            assert!(
                !code.contains(builder),
                "{} answers {builder} itself",
                file.display()
            );
        }
    }
}

/// Stock levels and movements are written by `ledger::rules` alone, through the
/// rows of `ledger::redb_rows` (the redb tables; PostgreSQL's are in `pg/`). The other files
/// that may name those tables only read them (verify, the catalog's stock column,
/// the movements listing) or create them when the store opens; a new file naming
/// them fails here, so whoever adds one decides in review.
#[test]
fn only_the_rules_write_stock_and_movements() {
    let mut files = Vec::new();
    rust_files(&root().join("actors/src"), &mut files);
    let readers: BTreeSet<&str> = [
        "ledger/rules.rs",
        "ledger/redb_rows.rs",
        "ledger/verify.rs",
        "ledger/mod.rs",
        "catalog/query.rs",
        "store/mod.rs",
        "store/tables.rs",
        // Writes again, byte for byte, rows the book wrote before a crash; decides nothing.
        "store/journal.rs",
    ]
    .into();
    for file in files {
        let rel = file
            .strip_prefix(root().join("actors/src"))
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let code = code_of(&file);
        let names = ["STOCK", "MOVEMENTS"].iter().any(|t| {
            code.split(|c: char| !c.is_ascii_alphanumeric() && c != '_')
                .any(|w| w == *t)
        });
        assert!(
            !names || readers.contains(rel.as_str()),
            "{rel} names the stock or movement tables; only ledger/rules.rs's rules write them (through ledger/redb_rows.rs)"
        );
    }
}

/// A source file of more than about 500 lines says at its top why it is one file.
#[test]
fn long_files_say_why_they_are_long() {
    let mut files = Vec::new();
    for dir in ["src", "actors/src", "tests", "benches"] {
        rust_files(&root().join(dir), &mut files);
    }
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        if text.lines().count() <= 520 {
            continue;
        }
        let head: String = text.lines().take(30).collect::<Vec<_>>().join("\n");
        assert!(
            head.contains("Why one file"),
            "{} is {} lines and does not say why (a `Why one file:` line near its top)",
            file.display(),
            text.lines().count()
        );
    }
}

/// Every function's length in lines, from its `fn` line to its closing brace
/// (rustfmt puts that at the `fn` line's indentation), unit tests left out.
fn function_lengths(path: &Path) -> Vec<(String, usize)> {
    let text = std::fs::read_to_string(path).unwrap();
    let code = text.split("#[cfg(test)]").next().unwrap_or_default();
    let lines: Vec<&str> = code.lines().collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let trimmed = line.trim_start();
        let indent = &line[..line.len() - trimmed.len()];
        let head = [
            "pub(crate) ",
            "pub(super) ",
            "pub ",
            "const ",
            "async ",
            "unsafe ",
        ]
        .iter()
        .fold(trimmed, |t, p| t.strip_prefix(p).unwrap_or(t));
        let Some(rest) = head.strip_prefix("fn ") else {
            continue;
        };
        let name: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        let Some(open) = (i..lines.len()).find(|&j| {
            let l = lines[j].trim_end();
            l.ends_with('{') || l.ends_with(';')
        }) else {
            continue;
        };
        if lines[open].trim_end().ends_with(';') {
            continue;
        }
        let closing = format!("{indent}}}");
        if let Some(end) = (open + 1..lines.len()).find(|&j| lines[j] == closing) {
            out.push((name, end - i + 1));
        }
    }
    out
}

/// No function over 100 lines anywhere, and none over 70 (TigerBeetle's limit)
/// where money and stock move: the ledger's rules and rows, the product
/// commands, the PostgreSQL batch and its staged rows, the import's loader.
#[test]
fn functions_are_short_and_shorter_where_money_moves() {
    let write_paths: BTreeSet<&str> = [
        "actors/src/ledger/rules.rs",
        "actors/src/ledger/records.rs",
        "actors/src/ledger/redb_rows.rs",
        "actors/src/ledger/jobs.rs",
        "actors/src/ledger/products.rs",
        "actors/src/pg/ledger.rs",
        "actors/src/pg/staged.rs",
        "actors/src/inbox/load.rs",
    ]
    .into();
    let mut files = Vec::new();
    for dir in ["src", "actors/src"] {
        rust_files(&root().join(dir), &mut files);
    }
    let mut measured = 0;
    for file in files {
        let rel = file
            .strip_prefix(root())
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let limit = if write_paths.contains(rel.as_str()) {
            70
        } else {
            100
        };
        for (name, lines) in function_lengths(&file) {
            measured += 1;
            assert!(
                lines <= limit,
                "{rel}: fn {name} is {lines} lines (at most {limit} here)"
            );
        }
    }
    assert!(
        measured > 500,
        "the walk measured only {measured} functions"
    );
}

/// The measure itself: a planted long function is caught, a declaration without
/// a body is not a function, a nested one is measured on its own.
#[test]
fn function_lengths_are_measured_from_fn_to_its_closing_brace() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.rs");
    let body = "        let _ = 1;\n".repeat(80);
    std::fs::write(
        &path,
        format!(
            "trait T {{\n    fn f(&self);\n}}\n\npub async fn long() {{\n{body}}}\n\nimpl X {{\n    pub(crate) fn short(&self) -> u8 {{\n        1\n    }}\n}}\n"
        ),
    )
    .unwrap();
    assert_eq!(
        function_lengths(&path),
        vec![("long".to_owned(), 82), ("short".to_owned(), 3)]
    );
}

/// The web layer uses the actors crate through each room's front: a name of the
/// room itself (`orderflow_actors::inbox::Inbox`, `orderflow_actors::pg::PgUsers`),
/// never a file inside it (`inbox::watcher::Inbox`). Each room's `mod.rs` says
/// what its front is (`pub use`).
#[test]
fn the_web_layer_uses_the_rooms_fronts_only() {
    let mut files = Vec::new();
    rust_files(&root().join("src"), &mut files);
    let mut seen = 0;
    for file in files {
        let code = code_of(&file);
        let mut from = 0;
        while let Some(at) = code[from..].find("orderflow_actors::") {
            let begin = from + at + "orderflow_actors::".len();
            from = begin;
            for path in expand(&code[begin..]) {
                seen += 1;
                // One module (the room), then its item; a type's own path
                // (`Room::Redb`) and a function of the room count as the item.
                let modules = path[..path.len().saturating_sub(1)]
                    .iter()
                    .take_while(|s| s.starts_with(|c: char| c.is_ascii_lowercase()))
                    .count();
                assert!(
                    modules <= 1,
                    "{} reaches inside a room: orderflow_actors::{}",
                    file.display(),
                    path.join("::")
                );
            }
        }
    }
    assert!(
        seen > 100,
        "the walk found only {seen} uses of the actors crate"
    );
}
