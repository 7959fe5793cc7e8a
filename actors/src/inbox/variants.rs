//! The group rule over a whole batch of product rows, for the redb bulk load
//! (`load::apply_products_side_by_side`): the rows are checked in file order
//! against the stored groups as this batch's earlier rows leave them, with the
//! ledger's own rule (`ledger::products::variant_conflict`), so the refused rows
//! are the ones a row-by-row load refuses (a test compares every table), and what
//! stands is then written by the sorted bulk path.

use std::collections::{BTreeSet, HashMap};

use super::reject::{Reject, RejectCode};
use crate::catalog::{CatalogTables, ProductDraft, ProductRow, VariantConflict};
use crate::common::StoreError;
use crate::domain::{GroupHandle, Sku, StockLevel, Timestamp};
use crate::ledger::products::variant_conflict;
use crate::ledger::rows::ProductRows;

/// A product row of a batch on its way to the bulk load.
#[derive(Debug)]
pub struct Pending {
    pub sku: Sku,
    pub draft: ProductDraft,
    pub stock: Option<StockLevel>,
    /// Line and text of a row that puts its product in a group (the rule may
    /// refuse it); `None` otherwise.
    pub grouped: Option<Box<(u64, String)>>,
}

/// The rows of `rows` the group rule takes, in their order; each refused one
/// becomes a reject in `rejects`.
pub fn settle(
    stored: &CatalogTables<'_>,
    rows: Vec<Pending>,
    at: Timestamp,
    rejects: &mut Vec<Reject>,
) -> Result<Vec<Pending>, StoreError> {
    let mut overlay = Overlay {
        stored,
        rows: HashMap::new(),
        members: HashMap::new(),
    };
    let mut taken = Vec::with_capacity(rows.len());
    for row in rows {
        if let Some(conflict) = variant_conflict(&overlay, &row.sku, &row.draft.attributes)? {
            let (line, raw) = *row.grouped.expect("only a grouped row is refused");
            rejects.push(Reject {
                line,
                code: code_of(&conflict),
                reason: conflict.to_string(),
                raw,
            });
            continue;
        }
        overlay.accept(&row.sku, &row.draft, at);
        taken.push(row);
    }
    Ok(taken)
}

/// The reject code of a refused grouped row (the row-by-row load's too).
pub fn code_of(conflict: &VariantConflict) -> RejectCode {
    match conflict {
        VariantConflict::Exists { .. } => RejectCode::VariantExists,
        VariantConflict::OptionNames { .. } => RejectCode::VariantOptions,
        VariantConflict::Full { .. } => RejectCode::GroupFull,
    }
}

/// The stored products as the batch's taken rows so far leave them.
struct Overlay<'a, 't> {
    stored: &'a CatalogTables<'t>,
    /// Each SKU the batch wrote so far, as it now stands.
    rows: HashMap<Sku, ProductRow>,
    /// The SKUs the batch put in each group (and did not take out again).
    members: HashMap<GroupHandle, BTreeSet<Sku>>,
}

impl Overlay<'_, '_> {
    fn accept(&mut self, sku: &Sku, draft: &ProductDraft, at: Timestamp) {
        // The rule reads only a row's group, options and archived flag, so the
        // stored row (its creation time) is not read here.
        let row = ProductRow::drafted(draft.clone(), None, at);
        if let Some(old) = self.rows.get(sku).and_then(|r| r.attributes.group.as_ref())
            && let Some(members) = self.members.get_mut(old)
        {
            members.remove(sku);
        }
        if let Some(group) = &row.attributes.group {
            self.members
                .entry(group.clone())
                .or_default()
                .insert(sku.clone());
        }
        self.rows.insert(sku.clone(), row);
    }
}

impl ProductRows for Overlay<'_, '_> {
    fn product(&self, sku: &Sku) -> Result<Option<ProductRow>, StoreError> {
        match self.rows.get(sku) {
            Some(row) => Ok(Some(row.clone())),
            None => self.stored.get(sku),
        }
    }

    fn group_members(&self, group: &GroupHandle) -> Result<Vec<Sku>, StoreError> {
        // The stored members the batch has not rewritten, and the batch's own.
        let mut all: BTreeSet<Sku> = self
            .stored
            .group_members(group)?
            .into_iter()
            .filter(|sku| !self.rows.contains_key(sku))
            .collect();
        if let Some(members) = self.members.get(group) {
            all.extend(members.iter().cloned());
        }
        Ok(all.into_iter().collect())
    }
}
