//! Proof that the stock counters have not drifted.
//!
//! Recomputes every SKU's stock from its movement history and every order's total
//! from its lines, on one read snapshot, and lists each disagreement. An empty list
//! is a proof, not a hope: the invariants are rechecked from the raw records.

use std::collections::{BTreeMap, BTreeSet};

use redb::{ReadTransaction, ReadableDatabase, ReadableTable};

use super::records::{MovementRow, OrderRow};
use crate::catalog::ProductRow;
use crate::common::{StoreError, codec};
use crate::domain::Options;
use crate::store::Store;
use crate::store::tables::{GROUP_MEMBERS, MOVEMENTS, ORDERS, PRODUCTS, STOCK};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerifyReport {
    pub skus_checked: u64,
    pub orders_checked: u64,
    pub problems: Vec<String>,
}

pub fn verify(store: &Store) -> Result<VerifyReport, StoreError> {
    let txn = store.db().begin_read()?;
    let stock = txn.open_table(STOCK)?;
    let movements = txn.open_table(MOVEMENTS)?;
    let orders = txn.open_table(ORDERS)?;
    let mut report = VerifyReport::default();
    let mut stocked = BTreeSet::new();

    for entry in stock.iter()? {
        let (k, v) = entry?;
        let sku = k.value();
        let (level, last_seq) = v.value();
        stocked.insert(sku.to_owned());
        let history = movements.range((sku, 0)..=(sku, u64::MAX))?.map(|m| {
            let (mk, mv) = m.map_err(StoreError::from)?;
            Ok((mk.value().1, codec::decode(mv.value())?))
        });
        check_sku(&mut report, sku, level, last_seq, history)?;
    }
    // Movements of a SKU with no stock row would be history nobody counts.
    let mut last: Option<String> = None;
    for m in movements.iter()? {
        let (mk, _) = m?;
        let sku = mk.value().0;
        if last.as_deref() != Some(sku) {
            if !stocked.contains(sku) {
                report
                    .problems
                    .push(format!("{sku}: has movements but no stock level"));
            }
            last = Some(sku.to_owned());
        }
    }

    for entry in orders.iter()? {
        let (k, v) = entry?;
        check_order(&mut report, k.value(), &codec::decode(v.value())?);
    }
    check_redb_groups(&txn, &mut report)?;
    Ok(report)
}

/// The variant groups of every active product, checked by [`check_groups`], and
/// the group index (`GROUP_MEMBERS`) against them.
fn check_redb_groups(txn: &ReadTransaction, report: &mut VerifyReport) -> Result<(), StoreError> {
    let mut groups = Groups::new();
    for entry in txn.open_table(PRODUCTS)?.iter()? {
        let (k, v) = entry?;
        let row: ProductRow = codec::decode(v.value())?;
        if let Some(group) = row.active_group() {
            let sku = k.value().to_owned();
            groups
                .entry(group.as_str().to_owned())
                .or_default()
                .push((sku, row.attributes.options));
        }
    }
    let mut indexed: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for entry in txn.open_table(GROUP_MEMBERS)?.iter()? {
        let (k, _) = entry?;
        let (group, sku) = k.value();
        indexed
            .entry(group.to_owned())
            .or_default()
            .push(sku.to_owned());
    }
    let rows: BTreeMap<String, Vec<String>> = groups
        .iter()
        .map(|(g, members)| (g.clone(), members.iter().map(|(s, _)| s.clone()).collect()))
        .collect();
    if rows != indexed {
        report.problems.push(format!(
            "the group index holds {indexed:?}, the active products {rows:?}"
        ));
    }
    check_groups(report, &groups);
    Ok(())
}

/// Active products by variant group: (sku, options), by SKU.
pub(crate) type Groups = BTreeMap<String, Vec<(String, Options)>>;

/// Every product of a group has the group's option names, and no two the same
/// values (the rule `check_variant` enforces on each write, rechecked here).
pub(crate) fn check_groups(report: &mut VerifyReport, groups: &Groups) {
    for (group, members) in groups {
        let mut seen: BTreeMap<Vec<(String, String)>, &str> = BTreeMap::new();
        let names = members.first().map(|(_, o)| o.names_key());
        for (sku, options) in members {
            if Some(options.names_key()) != names {
                report.problems.push(format!(
                    "group {group}: {sku} has the options {:?}, not {names:?}",
                    options.names_key()
                ));
            }
            if let Some(other) = seen.insert(options.values_key(), sku) {
                report.problems.push(format!(
                    "group {group}: {other} and {sku} have the same option values"
                ));
            }
        }
    }
}

/// Checks one SKU's stock row (`level`, `last_seq`) against its movements, oldest
/// first: seqs from 1 without a gap, running sums never below zero and equal to
/// each movement's `stock_after`, the last equal to the level.
pub(crate) fn check_sku(
    report: &mut VerifyReport,
    sku: &str,
    level: u64,
    last_seq: u64,
    history: impl Iterator<Item = Result<(u64, MovementRow), StoreError>>,
) -> Result<(), StoreError> {
    report.skus_checked += 1;
    let mut sum: i64 = 0;
    let mut expected_seq = 1;
    for movement in history {
        let (seq, row) = movement?;
        if seq != expected_seq {
            report.problems.push(format!(
                "{sku}: movement seq {seq}, expected {expected_seq}"
            ));
        }
        expected_seq = seq + 1;
        sum += row.delta;
        if sum < 0 {
            report
                .problems
                .push(format!("{sku}: stock below zero after movement {seq}"));
        }
        if i128::from(row.stock_after) != i128::from(sum) {
            report.problems.push(format!(
                "{sku}: movement {seq} says stock_after {} but the deltas sum to {sum}",
                row.stock_after
            ));
        }
    }
    if i128::from(sum) != i128::from(level) {
        report.problems.push(format!(
            "{sku}: stock is {level} but its movements sum to {sum}"
        ));
    }
    if expected_seq - 1 != last_seq {
        report.problems.push(format!(
            "{sku}: last movement is {} but the stock row says {last_seq}",
            expected_seq - 1
        ));
    }
    Ok(())
}

/// Checks one order's line totals and total.
pub(crate) fn check_order(report: &mut VerifyReport, id: u64, row: &OrderRow) {
    report.orders_checked += 1;
    let mut total: u64 = 0;
    for line in &row.lines {
        let expected = line.unit_price.get() * u64::from(line.quantity.get());
        if line.line_total_cents != expected {
            report.problems.push(format!(
                "order {id}: line {} totals {} but {} x {} = {expected}",
                line.sku,
                line.line_total_cents,
                line.unit_price.get(),
                line.quantity.get()
            ));
        }
        total += line.line_total_cents;
    }
    if total != row.total_cents {
        report.problems.push(format!(
            "order {id}: total is {} but its lines sum to {total}",
            row.total_cents
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{Attributes, CatalogTables, ProductDraft};
    use crate::domain::{Category, Cents, GroupHandle, ProductName, Sku, Timestamp};

    fn variant(size: &str) -> ProductDraft {
        ProductDraft {
            attributes: Attributes {
                group: Some(GroupHandle::parse("tee").unwrap()),
                options: Options::parse([("Size", size)]).unwrap(),
                ..Attributes::default()
            },
            name: ProductName::parse("Tee").unwrap(),
            category: Category::uncategorized(),
            description: None,
            price: Cents::new(100).unwrap(),
        }
    }

    /// Rows written past the rule (two variants with one size) and a group index
    /// out of step with the rows are both reported; a clean group is not.
    #[test]
    fn verify_sees_a_repeated_variant_and_a_stale_group_index() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let write = |rows: &[(&str, &str)]| {
            let txn = store.db().begin_write().unwrap();
            {
                let mut tables = CatalogTables::open(&txn).unwrap();
                for (sku, size) in rows {
                    let sku = Sku::parse(sku).unwrap();
                    tables.upsert(&sku, variant(size), Timestamp(1)).unwrap();
                }
                tables.flush().unwrap();
            }
            txn.commit().unwrap();
        };
        write(&[("T-S", "S"), ("T-M", "M")]);
        assert_eq!(verify(&store).unwrap().problems, Vec::<String>::new());
        write(&[("T-M2", "m")]);
        let problems = verify(&store).unwrap().problems;
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].contains("T-M and T-M2 have the same option values"),
            "{problems:?}"
        );
        let txn = store.db().begin_write().unwrap();
        txn.open_table(GROUP_MEMBERS)
            .unwrap()
            .remove(("tee", "T-S"))
            .unwrap();
        txn.commit().unwrap();
        let problems = verify(&store).unwrap().problems;
        assert!(
            problems.iter().any(|p| p.contains("the group index holds")),
            "{problems:?}"
        );
    }
}
