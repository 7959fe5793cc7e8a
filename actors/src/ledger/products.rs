//! Product writes: create, replace, patch, archive. They are ledger commands, so
//! a product and its initial stock are written in one transaction and committed
//! with the ledger's batch, and the catalog never writes on its own.

use actix::{Context, Handler, Message, ResponseFuture};

use super::Ledger;
use super::records::{Source, StockError};
use super::rows::{LedgerRows, ProductRows};
use super::rules::Rules;
use crate::catalog::tables::{same_content, upsert_of};
use crate::catalog::{
    Attributes, CatalogError, CatalogTables, Product, ProductDraft, ProductPatch, ProductRow,
    Upsert, VariantConflict,
};
use crate::common::{StoreError, codec};
use crate::domain::{GroupHandle, MovementKind, Sku, StockLevel, Timestamp};
use crate::events::{EventType, Subject};
use crate::limits::GROUP_VARIANTS_MAX;

/// Stock refused on a product write: storage errors stay themselves, a level past
/// the cap is the catalog's `StockAboveMax`.
fn stock(e: StockError) -> CatalogError {
    match e {
        StockError::Store(s) => CatalogError::Store(s),
        StockError::UnknownSku | StockError::Insufficient { .. } | StockError::AboveMax { .. } => {
            CatalogError::StockAboveMax
        }
    }
}

fn poisons(e: &CatalogError) -> bool {
    matches!(e, CatalogError::Store(_))
}

/// The catalog rows product commands write, beside [`ProductRows`]: the redb
/// catalog's tables (which keep the listing indexes in step) or a PostgreSQL
/// batch's staged rows.
pub trait CatalogRows: ProductRows {
    /// Writes `row` for `sku` (created, replaced, patched or archived).
    fn put(&mut self, sku: &Sku, row: &ProductRow) -> Result<(), StoreError>;

    /// Creates or replaces the descriptive fields of `sku` (and un-archives it),
    /// leaving the row untouched when nothing changed.
    fn upsert(
        &mut self,
        sku: &Sku,
        draft: ProductDraft,
        at: Timestamp,
    ) -> Result<Upsert, StoreError> {
        let previous = self.product(sku)?;
        let (outcome, row) = upsert_of(draft, previous.as_ref(), at);
        if let Some(row) = row {
            self.put(sku, &row)?;
        }
        Ok(outcome)
    }

    /// [`Self::upsert`], also answering the record as stored (empty when
    /// unchanged), for an import's per-row event.
    fn upsert_encoded(
        &mut self,
        sku: &Sku,
        draft: ProductDraft,
        at: Timestamp,
    ) -> Result<(Upsert, Vec<u8>), StoreError> {
        let outcome = self.upsert(sku, draft, at)?;
        let record = match (outcome, self.product(sku)?) {
            (Upsert::Unchanged, _) | (_, None) => Vec::new(),
            (_, Some(row)) => codec::encode(&row),
        };
        Ok((outcome, record))
    }
}

impl CatalogRows for CatalogTables<'_> {
    fn upsert_encoded(
        &mut self,
        sku: &Sku,
        draft: ProductDraft,
        at: Timestamp,
    ) -> Result<(Upsert, Vec<u8>), StoreError> {
        CatalogTables::upsert_encoded(self, sku, draft, at)
    }

    fn put(&mut self, sku: &Sku, row: &ProductRow) -> Result<(), StoreError> {
        CatalogTables::put(self, sku, row)
    }

    fn upsert(
        &mut self,
        sku: &Sku,
        draft: ProductDraft,
        at: Timestamp,
    ) -> Result<Upsert, StoreError> {
        CatalogTables::upsert(self, sku, draft, at)
    }
}

/// A product write, as the ledger applies it: the same rules on either backend.
#[derive(Debug, Clone)]
pub enum ProductCommand {
    Create(CreateProduct),
    Replace(ReplaceProduct),
    Patch(PatchProduct),
    Archive(ArchiveProduct),
}

impl ProductCommand {
    /// The variant group it puts its product in, if any (a patch never moves a
    /// product between groups, an archive only takes it out).
    pub fn group(&self) -> Option<&GroupHandle> {
        match self {
            Self::Create(m) => m.draft.attributes.group.as_ref(),
            Self::Replace(m) => m.draft.attributes.group.as_ref(),
            Self::Patch(_) | Self::Archive(_) => None,
        }
    }

    /// The product it writes.
    pub fn sku(&self) -> &Sku {
        match self {
            Self::Create(m) => &m.sku,
            Self::Replace(m) => &m.sku,
            Self::Patch(m) => &m.sku,
            Self::Archive(m) => &m.sku,
        }
    }
}

/// Applies a product command with the book and catalog rows of one transaction.
/// Answers the product as it now stands and whether it was created. A refused
/// command writes nothing.
pub fn apply<R: LedgerRows>(
    book: &mut Rules<R>,
    catalog: &mut impl CatalogRows,
    command: ProductCommand,
    at: Timestamp,
) -> Result<(Product, bool), CatalogError> {
    match command {
        ProductCommand::Create(msg) => {
            if catalog.product(&msg.sku)?.is_some() {
                return Err(CatalogError::Exists(msg.sku.clone()));
            }
            check_variant(catalog, &msg.sku, &msg.draft.attributes)?;
            catalog.upsert(&msg.sku, msg.draft, at)?;
            if let Some(level) = msg.stock {
                book.set_level(&msg.sku, level, MovementKind::Receipt, Source::Api, at)
                    .map_err(stock)?;
            }
            let product = shown(book, catalog, msg.sku)?;
            announce(book, EventType::ProductCreated, &product, at)?;
            Ok((product, true))
        }
        ProductCommand::Replace(msg) => {
            check_variant(catalog, &msg.sku, &msg.draft.attributes)?;
            let outcome = catalog.upsert(&msg.sku, msg.draft, at)?;
            if let Some(level) = msg.stock {
                let kind = if outcome == Upsert::Created {
                    MovementKind::Receipt
                } else {
                    MovementKind::Adjustment
                };
                book.set_level(&msg.sku, level, kind, Source::Api, at)
                    .map_err(stock)?;
            }
            let product = shown(book, catalog, msg.sku)?;
            match outcome {
                Upsert::Created => announce(book, EventType::ProductCreated, &product, at)?,
                Upsert::Updated => announce(book, EventType::ProductUpdated, &product, at)?,
                // Only the stock may have changed: its movement has its own event.
                Upsert::Unchanged => {}
            }
            Ok((product, outcome == Upsert::Created))
        }
        ProductCommand::Patch(msg) => patch(book, catalog, msg, at),
        ProductCommand::Archive(msg) => {
            let mut row = catalog
                .product(&msg.sku)?
                .filter(|r| !r.archived)
                .ok_or_else(|| CatalogError::NotFound(msg.sku.clone()))?;
            row.archived = true;
            row.updated_at = at;
            catalog.put(&msg.sku, &row)?;
            let product = with_stock(book, msg.sku, row)?;
            announce(book, EventType::ProductArchived, &product, at)?;
            Ok((product, false))
        }
    }
}

/// [`variant_conflict`] as the API's answer.
fn check_variant(
    catalog: &impl CatalogRows,
    sku: &Sku,
    attributes: &Attributes,
) -> Result<(), CatalogError> {
    match variant_conflict(catalog, sku, attributes)? {
        Some(conflict) => Err(conflict.into()),
        None => Ok(()),
    }
}

/// What keeps `sku` from standing in its variant group with `attributes`, if
/// anything: the group's other active products must have the same option names,
/// none the same values, and the group must not be full. Every product write of
/// both backends (the API's and the imports') asks here first.
pub fn variant_conflict(
    catalog: &impl ProductRows,
    sku: &Sku,
    attributes: &Attributes,
) -> Result<Option<VariantConflict>, StoreError> {
    let Some(group) = &attributes.group else {
        return Ok(None);
    };
    let others: Vec<Sku> = catalog
        .group_members(group)?
        .into_iter()
        .filter(|s| s != sku)
        .collect();
    if others.len() >= GROUP_VARIANTS_MAX {
        let group = group.clone();
        return Ok(Some(VariantConflict::Full { group }));
    }
    let (names, values) = (
        attributes.options.names_key(),
        attributes.options.values_key(),
    );
    for other in others {
        let theirs = catalog
            .product(&other)?
            .filter(|r| r.active_group() == Some(group))
            .ok_or_else(|| {
                StoreError::Corrupt(format!("group {group} lists {other}, not an active member"))
            })?
            .attributes
            .options;
        let group = group.clone();
        if theirs.names_key() != names {
            let expected = theirs.iter().map(|(name, _)| name.to_owned()).collect();
            return Ok(Some(VariantConflict::OptionNames { group, expected }));
        }
        if theirs.values_key() == values {
            return Ok(Some(VariantConflict::Exists {
                group,
                holder: other,
            }));
        }
    }
    Ok(None)
}

/// A patch: only the fields it names change; one that changes nothing writes
/// nothing (and keeps `updated_at`).
fn patch<R: LedgerRows>(
    book: &mut Rules<R>,
    catalog: &mut impl CatalogRows,
    msg: PatchProduct,
    at: Timestamp,
) -> Result<(Product, bool), CatalogError> {
    let before = catalog
        .product(&msg.sku)?
        .filter(|r| !r.archived)
        .ok_or_else(|| CatalogError::NotFound(msg.sku.clone()))?;
    let mut row = before.clone();
    let p = msg.patch;
    if let Some(name) = p.name {
        row.name = name;
    }
    if let Some(category) = p.category {
        row.category = category;
    }
    if let Some(description) = p.description {
        row.description = description;
    }
    if let Some(price) = p.price {
        row.price = price;
    }
    if let Some(weight) = p.weight {
        row.attributes.weight = weight;
    }
    if let Some(tax_class) = p.tax_class {
        row.attributes.tax_class = tax_class;
    }
    if let Some(barcode) = p.barcode {
        row.attributes.barcode = barcode;
    }
    // A patch that changes nothing writes nothing (and keeps `updated_at`).
    let changed = !same_content(&before, &row);
    if changed {
        row.updated_at = at;
        catalog.put(&msg.sku, &row)?;
    }
    let product = with_stock(book, msg.sku, row)?;
    if changed {
        announce(book, EventType::ProductUpdated, &product, at)?;
    }
    Ok((product, false))
}

/// Appends a product event: the product as it now stands, stock included (also
/// for imported rows under `--import-events rows`).
fn announce<R: LedgerRows>(
    book: &mut Rules<R>,
    kind: EventType,
    product: &Product,
    at: Timestamp,
) -> Result<(), StoreError> {
    book.rows.append_event(
        kind,
        Subject::Product {
            sku: product.sku.clone(),
            stock: product.stock,
        },
        codec::encode(&product.row),
        at,
    )
}

/// The product as written in this transaction, with its stock.
fn shown<R: LedgerRows>(
    book: &Rules<R>,
    catalog: &impl CatalogRows,
    sku: Sku,
) -> Result<Product, StoreError> {
    let row = catalog
        .product(&sku)?
        .ok_or_else(|| StoreError::Corrupt(format!("product {sku} vanished in its own write")))?;
    with_stock(book, sku, row)
}

/// A product row with the stock its SKU has in this transaction.
fn with_stock<R: LedgerRows>(
    book: &Rules<R>,
    sku: Sku,
    row: ProductRow,
) -> Result<Product, StoreError> {
    let stock = book.level(&sku)?.units;
    Ok(Product { sku, row, stock })
}

/// Queues a product command on the redb ledger.
fn submit<T: Send + 'static>(
    ledger: &mut Ledger,
    ctx: &mut Context<Ledger>,
    command: ProductCommand,
    answer: impl FnOnce((Product, bool)) -> T + Send + 'static,
) -> ResponseFuture<Result<T, CatalogError>> {
    ledger.submit(ctx, poisons, move |tx| {
        apply(tx.book, tx.catalog, command, tx.at).map(answer)
    })
}

/// Create a product; 409 when the SKU exists (archived ones included).
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<Product, CatalogError>")]
pub struct CreateProduct {
    /// The new SKU.
    pub sku: Sku,
    /// Its descriptive fields.
    pub draft: ProductDraft,
    /// Initial stock, recorded as a `receipt` movement in the same transaction.
    pub stock: Option<StockLevel>,
}

impl Handler<CreateProduct> for Ledger {
    type Result = ResponseFuture<Result<Product, CatalogError>>;
    fn handle(&mut self, msg: CreateProduct, ctx: &mut Context<Self>) -> Self::Result {
        submit(self, ctx, ProductCommand::Create(msg), |(product, _)| {
            product
        })
    }
}

/// Create or replace a product (un-archiving it); `created` tells which.
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<(Product, bool), CatalogError>")]
pub struct ReplaceProduct {
    /// The SKU to create or replace.
    pub sku: Sku,
    /// Its descriptive fields, replacing the old ones entirely.
    pub draft: ProductDraft,
    /// Absolute stock level; reached through one `adjustment` movement.
    pub stock: Option<StockLevel>,
}

impl Handler<ReplaceProduct> for Ledger {
    type Result = ResponseFuture<Result<(Product, bool), CatalogError>>;
    fn handle(&mut self, msg: ReplaceProduct, ctx: &mut Context<Self>) -> Self::Result {
        submit(self, ctx, ProductCommand::Replace(msg), |answer| answer)
    }
}

/// Change some fields of an active product.
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<Product, CatalogError>")]
pub struct PatchProduct {
    /// The product's SKU.
    pub sku: Sku,
    /// The fields to change.
    pub patch: ProductPatch,
}

impl Handler<PatchProduct> for Ledger {
    type Result = ResponseFuture<Result<Product, CatalogError>>;
    fn handle(&mut self, msg: PatchProduct, ctx: &mut Context<Self>) -> Self::Result {
        submit(self, ctx, ProductCommand::Patch(msg), |(product, _)| {
            product
        })
    }
}

/// Archive a product: it disappears from the catalog; orders keep their lines and
/// the ledger keeps its stock history.
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<(), CatalogError>")]
pub struct ArchiveProduct {
    /// The product's SKU.
    pub sku: Sku,
}

impl Handler<ArchiveProduct> for Ledger {
    type Result = ResponseFuture<Result<(), CatalogError>>;
    fn handle(&mut self, msg: ArchiveProduct, ctx: &mut Context<Self>) -> Self::Result {
        submit(self, ctx, ProductCommand::Archive(msg), |_| ())
    }
}
