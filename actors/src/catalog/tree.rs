//! The category tree of `GET /categories`, built from the count of active
//! products per stored category path. Both backends read those counts (redb its
//! `categories` table, PostgreSQL a `GROUP BY`) and page the tree here, so the
//! tree's rules — which spelling a node shows, what a subtree counts, the order —
//! are written once.

use std::collections::BTreeMap;

use crate::common::Page;
use crate::domain::fold_case;

/// The separator of a path's levels (the Google product taxonomy's).
const SEPARATOR: &str = " > ";

/// One node of the tree: a category path with every product at or below it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CategoryNode {
    /// The path as shown: each level spelt as the byte-wise smallest of the
    /// stored paths' spellings of it (they may differ in case only).
    pub path: String,
    /// The last level of `path`.
    pub name: String,
    /// The path of the level above, `None` at the top.
    pub parent: Option<String>,
    /// 1 at the top.
    pub depth: usize,
    /// Active products in this category and every category below it.
    pub product_count: u64,
}

/// The whole tree, in depth-first order (children after their parent, siblings
/// by their case-folded names).
#[derive(Debug, Default)]
pub struct CategoryTree {
    /// Case-folded levels → node.
    nodes: BTreeMap<Vec<String>, CategoryNode>,
}

impl CategoryTree {
    /// The tree of `counts`: stored category path → active products with exactly
    /// that category, in any order. Zero counts add nothing.
    pub fn from_counts(counts: impl IntoIterator<Item = (String, u64)>) -> Self {
        let mut tree = Self::default();
        for (stored, count) in counts {
            if count > 0 {
                tree.add(&stored, count);
            }
        }
        // Paths are spelt once every level's name is settled, top down (a parent's
        // key sorts before its children's), so a child's path and `parent` always
        // spell its parent as the parent itself shows.
        let mut paths: BTreeMap<Vec<String>, String> = BTreeMap::new();
        for (key, node) in &mut tree.nodes {
            if let Some(parent) = paths.get(&key[..key.len() - 1]) {
                node.path = format!("{parent}{SEPARATOR}{}", node.name);
                node.parent = Some(parent.clone());
            } else {
                node.path = node.name.clone();
            }
            paths.insert(key.clone(), node.path.clone());
        }
        tree
    }

    /// Counts `count` products at `stored` and at every level above it; each level
    /// keeps the byte-wise smallest of its spellings.
    fn add(&mut self, stored: &str, count: u64) {
        let levels: Vec<&str> = stored.split(SEPARATOR).collect();
        let mut key = Vec::with_capacity(levels.len());
        for (depth, level) in levels.iter().enumerate() {
            key.push(fold_case(level));
            let node = self
                .nodes
                .entry(key.clone())
                .or_insert_with(|| CategoryNode {
                    path: String::new(),
                    name: (*level).to_owned(),
                    parent: None,
                    depth: depth + 1,
                    product_count: 0,
                });
            if *level < node.name.as_str() {
                node.name = (*level).to_owned();
            }
            node.product_count += count;
        }
    }

    /// Up to `limit` nodes after the node `after` (a [`Self::cursor_of`]), only
    /// the children of `parent` (a path, compared case-insensitively) when given.
    pub fn page(
        &self,
        parent: Option<&str>,
        after: Option<&str>,
        limit: usize,
    ) -> Page<CategoryNode, String> {
        let parent_key = parent.map(key_of);
        let after_key = after.map(key_of);
        let items = self
            .nodes
            .iter()
            .filter(|(key, _)| after_key.as_ref().is_none_or(|a| *key > a))
            .filter(|(key, _)| {
                parent_key
                    .as_ref()
                    .is_none_or(|p| key.len() == p.len() + 1 && key.starts_with(p))
            })
            .map(|(_, node)| node.clone())
            .take(limit + 1)
            .collect();
        Page::from_overfetch(items, limit, Self::cursor_of)
    }

    /// Where a page that ends at `node` goes on.
    pub fn cursor_of(node: &CategoryNode) -> String {
        fold_case(&node.path)
    }
}

/// A path's case-folded levels, as the tree keys its nodes.
fn key_of(path: &str) -> Vec<String> {
    path.split(SEPARATOR).map(fold_case).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(items: &[(&str, u64)]) -> CategoryTree {
        CategoryTree::from_counts(items.iter().map(|(p, n)| ((*p).to_owned(), *n)))
    }

    fn listed(page: &Page<CategoryNode, String>) -> Vec<(&str, Option<&str>, usize, u64)> {
        page.items
            .iter()
            .map(|n| {
                (
                    n.path.as_str(),
                    n.parent.as_deref(),
                    n.depth,
                    n.product_count,
                )
            })
            .collect()
    }

    #[test]
    fn a_subtree_counts_every_product_below_it() {
        let tree = counts(&[
            ("Apparel > Men > T-Shirts", 3),
            ("Apparel > Men", 1),
            ("Apparel > Women > Dresses", 2),
            ("Tools", 4),
            ("Empty", 0),
        ]);
        let page = tree.page(None, None, 50);
        assert_eq!(
            listed(&page),
            [
                ("Apparel", None, 1, 6),
                ("Apparel > Men", Some("Apparel"), 2, 4),
                ("Apparel > Men > T-Shirts", Some("Apparel > Men"), 3, 3),
                ("Apparel > Women", Some("Apparel"), 2, 2),
                ("Apparel > Women > Dresses", Some("Apparel > Women"), 3, 2),
                ("Tools", None, 1, 4),
            ]
        );
        assert_eq!(page.next, None);
        assert_eq!(page.items[2].name, "T-Shirts");
    }

    #[test]
    fn spellings_that_differ_in_case_are_one_node_shown_by_the_smallest() {
        let tree = counts(&[
            ("apparel > men", 1),
            ("Apparel > MEN > Socks", 2),
            ("APPAREL > women", 1),
        ]);
        assert_eq!(
            listed(&tree.page(None, None, 50)),
            [
                ("APPAREL", None, 1, 4),
                ("APPAREL > MEN", Some("APPAREL"), 2, 3),
                ("APPAREL > MEN > Socks", Some("APPAREL > MEN"), 3, 2),
                ("APPAREL > women", Some("APPAREL"), 2, 1),
            ]
        );
    }

    #[test]
    fn one_level_of_a_parent_and_pages_that_go_on() {
        let tree = counts(&[("A > x", 1), ("A > y > deep", 1), ("A > z", 1), ("B", 1)]);
        let first = tree.page(Some("a"), None, 2);
        assert_eq!(
            listed(&first),
            [("A > x", Some("A"), 2, 1), ("A > y", Some("A"), 2, 1)]
        );
        let rest = tree.page(Some("a"), first.next.as_deref(), 2);
        assert_eq!(listed(&rest), [("A > z", Some("A"), 2, 1)]);
        assert_eq!(rest.next, None);
        assert!(tree.page(Some("nowhere"), None, 2).items.is_empty());
        // Depth-first: a child comes before its parent's next sibling.
        let all: Vec<_> = tree
            .page(None, None, 10)
            .items
            .into_iter()
            .map(|n| n.path)
            .collect();
        assert_eq!(all, ["A", "A > x", "A > y", "A > y > deep", "A > z", "B"]);
    }
}
