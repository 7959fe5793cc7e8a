//! Product writes: create, replace, patch, archive. They are ledger commands, so
//! a product and its initial stock are written in one transaction and committed
//! with the ledger's batch, and the catalog never writes on its own.

use actix::{Context, Handler, Message, ResponseFuture};

use super::Ledger;
use super::book::{Source, StockError};
use super::tx::Tx;
use crate::catalog::tables::same_content;
use crate::catalog::{CatalogError, Product, ProductDraft, ProductPatch, ProductRow, Upsert};
use crate::domain::{MovementKind, Sku, StockLevel};
use crate::events::{EventType, Subject};
use crate::store::StoreError;

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

/// The product as shown after a write in `tx`.
/// Appends a product event: the product as it now stands, stock included (also
/// for imported rows under `--import-events rows`).
fn announce(tx: &mut Tx<'_, '_>, kind: EventType, product: &Product) -> Result<(), StoreError> {
    tx.book.rows.outbox.append(
        kind,
        Subject::Product {
            sku: product.sku.clone(),
            stock: product.stock,
        },
        &product.row,
        tx.at,
    )?;
    Ok(())
}

/// The product as written in this transaction, with its stock.
fn shown(tx: &Tx<'_, '_>, sku: Sku) -> Result<Product, StoreError> {
    let row = tx
        .catalog
        .get(&sku)?
        .ok_or_else(|| StoreError::Corrupt(format!("product {sku} vanished in its own write")))?;
    with_stock(tx, sku, row)
}

/// A product row with the stock its SKU has in this transaction.
fn with_stock(tx: &Tx<'_, '_>, sku: Sku, row: ProductRow) -> Result<Product, StoreError> {
    let stock = tx.book.level(&sku)?.units;
    Ok(Product { sku, row, stock })
}

/// Create a product; 409 when the SKU exists (archived ones included).
#[derive(Debug, Message)]
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
        self.submit(ctx, poisons, move |tx| {
            if tx.catalog.get(&msg.sku)?.is_some() {
                return Err(CatalogError::Exists(msg.sku.clone()));
            }
            tx.catalog.upsert(&msg.sku, msg.draft, tx.at)?;
            if let Some(level) = msg.stock {
                tx.book
                    .set_level(&msg.sku, level, MovementKind::Receipt, Source::Api, tx.at)
                    .map_err(stock)?;
            }
            let product = shown(tx, msg.sku)?;
            announce(tx, EventType::ProductCreated, &product)?;
            Ok(product)
        })
    }
}

/// Create or replace a product (un-archiving it); `created` tells which.
#[derive(Debug, Message)]
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
        self.submit(ctx, poisons, move |tx| {
            let outcome = tx.catalog.upsert(&msg.sku, msg.draft, tx.at)?;
            if let Some(level) = msg.stock {
                let kind = if outcome == Upsert::Created {
                    MovementKind::Receipt
                } else {
                    MovementKind::Adjustment
                };
                tx.book
                    .set_level(&msg.sku, level, kind, Source::Api, tx.at)
                    .map_err(stock)?;
            }
            let product = shown(tx, msg.sku)?;
            match outcome {
                Upsert::Created => announce(tx, EventType::ProductCreated, &product)?,
                Upsert::Updated => announce(tx, EventType::ProductUpdated, &product)?,
                // Only the stock may have changed: its movement has its own event.
                Upsert::Unchanged => {}
            }
            Ok((product, outcome == Upsert::Created))
        })
    }
}

/// Change some fields of an active product.
#[derive(Debug, Message)]
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
        self.submit(ctx, poisons, move |tx| {
            let before = tx
                .catalog
                .get(&msg.sku)?
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
            // A patch that changes nothing writes nothing (and keeps `updated_at`).
            let changed = !same_content(&before, &row);
            if changed {
                row.updated_at = tx.at;
                tx.catalog.put(&msg.sku, &row)?;
            }
            let product = with_stock(tx, msg.sku, row)?;
            if changed {
                announce(tx, EventType::ProductUpdated, &product)?;
            }
            Ok(product)
        })
    }
}

/// Archive a product: it disappears from the catalog; orders keep their lines and
/// the ledger keeps its stock history.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), CatalogError>")]
pub struct ArchiveProduct {
    /// The product's SKU.
    pub sku: Sku,
}

impl Handler<ArchiveProduct> for Ledger {
    type Result = ResponseFuture<Result<(), CatalogError>>;
    fn handle(&mut self, msg: ArchiveProduct, ctx: &mut Context<Self>) -> Self::Result {
        self.submit(ctx, poisons, move |tx| {
            let mut row = tx
                .catalog
                .get(&msg.sku)?
                .filter(|r| !r.archived)
                .ok_or_else(|| CatalogError::NotFound(msg.sku.clone()))?;
            row.archived = true;
            row.updated_at = tx.at;
            tx.catalog.put(&msg.sku, &row)?;
            let product = with_stock(tx, msg.sku, row)?;
            Ok(announce(tx, EventType::ProductArchived, &product)?)
        })
    }
}
