//! Proof that the stock counters have not drifted.
//!
//! Recomputes every SKU's stock from its movement history and every order's total
//! from its lines, on one read snapshot, and lists each disagreement. An empty list
//! is a proof, not a hope: the invariants are rechecked from the raw records.

use std::collections::BTreeSet;

use redb::{ReadableDatabase, ReadableTable};

use super::records::{MovementRow, OrderRow};
use crate::common::{StoreError, codec};
use crate::store::Store;
use crate::store::tables::{MOVEMENTS, ORDERS, STOCK};

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
    Ok(report)
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
