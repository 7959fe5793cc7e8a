//! Load: validated rows → the ledger, in batches, exactly once.
//!
//! Invariants:
//! - a batch's rows, its rejects and the file's read position (`rows_read`) are
//!   written in one ledger transaction, so after a crash the file resumes exactly
//!   where the last committed batch ended: nothing twice, nothing lost;
//! - consecutive rows with one `order_ref` are one order, loaded all-or-nothing
//!   through the ledger's own checkout rules; a batch never ends inside an order
//!   that could still load;
//! - products and inventory rows set absolute stock levels through `import` and
//!   `adjustment` movements, so stock stays the sum of its movements.
//!
//! Why one file: the batch grouping and the ledger writes it feeds keep the exactly-
//! once invariant together; about 90 of its lines are unit tests.

use redb::ReadableTable;

use super::jobs::{JobRow, JobRows, Step, advance};
use super::reject::{Reject, RejectCode};
use super::transform::{Customer, Failed, Row};
use super::variants::{self, Pending};
use crate::catalog::{ProductDraft, Upsert};
use crate::common::StoreError;
use crate::domain::{
    Cents, Currency, JobId, MovementKind, OrderLines, OrderRef, Quantity, Sku, StockLevel,
    Timestamp, UserId,
};
use crate::events::{EventType, RowEvents, Subject};
use crate::ledger::Tx;
use crate::ledger::products::{CatalogRows, variant_conflict};
use crate::ledger::records::{CheckoutError, OrderRequest, Source, StockError};
use crate::ledger::rows::LedgerRows;
use crate::ledger::rules::Rules;
use crate::limits::ORDER_LINES_MAX;
use crate::store::tables::{USER_EMAILS, USER_NAMES};

/// One line of an imported order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderLineIn {
    pub line: u64,
    pub raw: String,
    pub sku: Sku,
    pub quantity: Quantity,
    pub unit_price: Option<Cents>,
}

/// What the loader applies: one row, one whole order, or one reject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unit {
    Product {
        sku: Sku,
        draft: ProductDraft,
        stock: Option<StockLevel>,
        /// Line and text of a row that puts its product in a variant group,
        /// which the group's rule may still refuse; `None` for every other row,
        /// which the load never refuses (no copy of the text kept).
        grouped: Option<Box<(u64, String)>>,
        /// See `transform::Row::Product`.
        warnings: u32,
    },
    Inventory {
        line: u64,
        raw: String,
        sku: Sku,
        stock: StockLevel,
    },
    Order {
        order_ref: OrderRef,
        customer: Customer,
        lines: Vec<OrderLineIn>,
    },
    Rejected(Reject),
    /// A record with nothing to load (`Row::Skipped`).
    Skipped,
}

/// A unit with the number of file records it accounts for, and the failed order
/// (if any) still open after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Piece {
    pub unit: Unit,
    pub records: u64,
    pub failed_ref_after: Option<OrderRef>,
}

/// Turns the stream of transformed rows into pieces, grouping the rows of orders.
#[derive(Debug, Default)]
pub struct Grouper {
    open: Option<Group>,
    /// An order that failed for having too many rows; its further rows are refused
    /// one by one as they come.
    failed_ref: Option<OrderRef>,
}

#[derive(Debug)]
struct Group {
    order_ref: OrderRef,
    customer: Option<Customer>,
    lines: Vec<OrderLineIn>,
    rejects: Vec<Reject>,
    /// Why the whole order is refused, if it is.
    failure: Option<String>,
    records: u64,
}

impl Group {
    /// Adds one row of this order: a line, or a rejected row that fails it.
    fn add(&mut self, outcome: Result<Row, Failed>, line: u64, raw: impl FnOnce() -> String) {
        self.records += 1;
        match outcome {
            Ok(Row::OrderLine {
                customer,
                sku,
                quantity,
                unit_price,
                ..
            }) => {
                match &self.customer {
                    Some(c) if *c != customer => {
                        let order_ref = &self.order_ref;
                        self.failure.get_or_insert_with(|| {
                            format!(
                                "rows of order {} name different customers",
                                order_ref.as_str()
                            )
                        });
                    }
                    _ => self.customer = Some(customer),
                }
                self.lines.push(OrderLineIn {
                    line,
                    raw: raw(),
                    sku,
                    quantity,
                    unit_price,
                });
            }
            Err(f) => {
                let order_ref = &self.order_ref;
                self.failure.get_or_insert_with(|| {
                    format!(
                        "order {}: line {} was rejected ({})",
                        order_ref.as_str(),
                        f.reject.line,
                        f.reject.reason
                    )
                });
                self.rejects.push(f.reject);
            }
            Ok(_) => unreachable!("only order lines carry a reference"),
        }
    }
}

/// A record that belongs to no order: a product, an inventory row, or a
/// rejected row without a usable order reference.
fn single_piece(outcome: Result<Row, Failed>, line: u64, raw: impl FnOnce() -> String) -> Piece {
    let unit = match outcome {
        Ok(Row::Product {
            sku,
            draft,
            stock,
            warnings,
        }) => Unit::Product {
            warnings,
            grouped: draft
                .attributes
                .group
                .is_some()
                .then(|| Box::new((line, raw()))),
            sku,
            draft,
            stock,
        },
        Ok(Row::Inventory { sku, stock }) => Unit::Inventory {
            line,
            raw: raw(),
            sku,
            stock,
        },
        Ok(Row::Skipped) => Unit::Skipped,
        Err(f) => Unit::Rejected(f.reject),
        Ok(Row::OrderLine { .. }) => unreachable!("order lines have a reference"),
    };
    Piece {
        unit,
        records: 1,
        failed_ref_after: None,
    }
}

/// A row of an order already refused for having too many lines: refused too.
fn rest_of_a_failed_order(
    outcome: Result<Row, Failed>,
    line: u64,
    raw: impl FnOnce() -> String,
    order_ref: OrderRef,
) -> Piece {
    let reject = match outcome {
        Err(f) => f.reject,
        Ok(_) => Reject {
            line,
            code: RejectCode::OrderRejected,
            reason: format!(
                "order {} has more than {ORDER_LINES_MAX} lines",
                order_ref.as_str()
            ),
            raw: raw(),
        },
    };
    Piece {
        unit: Unit::Rejected(reject),
        records: 1,
        failed_ref_after: Some(order_ref),
    }
}

impl Grouper {
    /// Resumes inside an order that had already failed.
    pub fn resume(failed_ref: Option<OrderRef>) -> Self {
        Self {
            open: None,
            failed_ref,
        }
    }

    /// Adds one transformed record; finished pieces are appended to `out`.
    pub fn push(
        &mut self,
        outcome: Result<Row, Failed>,
        line: u64,
        raw: impl FnOnce() -> String,
        out: &mut Vec<Piece>,
    ) {
        let order_ref = match &outcome {
            Ok(Row::OrderLine { order_ref, .. }) => Some(order_ref.clone()),
            Err(f) => f.order_ref.clone(),
            Ok(_) => None,
        };
        let Some(order_ref) = order_ref else {
            // Not part of any order: products, inventory, or an order row without a
            // usable reference.
            self.close(out);
            out.push(single_piece(outcome, line, raw));
            return;
        };
        if self.failed_ref.as_ref() == Some(&order_ref) {
            out.push(rest_of_a_failed_order(outcome, line, raw, order_ref));
            return;
        }
        self.failed_ref = None;
        if self.open.as_ref().is_some_and(|g| g.order_ref != order_ref) {
            self.close(out);
        }
        let group = self.open.get_or_insert_with(|| Group {
            order_ref: order_ref.clone(),
            customer: None,
            lines: Vec::new(),
            rejects: Vec::new(),
            failure: None,
            records: 0,
        });
        group.add(outcome, line, raw);
        if group.lines.len() + group.rejects.len() > ORDER_LINES_MAX {
            self.refuse_overlong(order_ref, out);
        }
    }

    /// Too many rows: refuses what is buffered and everything that follows with
    /// this reference, without buffering it.
    fn refuse_overlong(&mut self, order_ref: OrderRef, out: &mut Vec<Piece>) {
        let reason = format!(
            "order {} has more than {ORDER_LINES_MAX} lines",
            order_ref.as_str()
        );
        if let Some(mut g) = self.open.take() {
            g.failure = Some(reason);
            let records = g.records;
            let rejects = group_rejects(g);
            let n = rejects.len();
            for (i, r) in rejects.into_iter().enumerate() {
                let records = if i + 1 == n {
                    records - (n as u64 - 1)
                } else {
                    1
                };
                out.push(Piece {
                    unit: Unit::Rejected(r),
                    records,
                    failed_ref_after: Some(order_ref.clone()),
                });
            }
        }
        self.failed_ref = Some(order_ref);
    }

    /// Emits the open order, if any (at the end of the file, or when the next
    /// record starts another).
    pub fn close(&mut self, out: &mut Vec<Piece>) {
        let Some(g) = self.open.take() else { return };
        let records = g.records;
        if g.failure.is_some() {
            let rejects = group_rejects(g);
            let n = rejects.len() as u64;
            for (i, r) in rejects.into_iter().enumerate() {
                let records = if i as u64 + 1 == n {
                    records - (n - 1)
                } else {
                    1
                };
                out.push(Piece {
                    unit: Unit::Rejected(r),
                    records,
                    failed_ref_after: None,
                });
            }
        } else {
            let customer = g
                .customer
                .expect("an order without failures has a customer");
            out.push(Piece {
                unit: Unit::Order {
                    order_ref: g.order_ref,
                    customer,
                    lines: g.lines,
                },
                records,
                failed_ref_after: None,
            });
        }
    }
}

/// All rows of a refused order as rejects, in line order: the rows that failed on
/// their own keep their reason, the others get the order's.
fn group_rejects(g: Group) -> Vec<Reject> {
    let reason = g.failure.unwrap_or_default();
    let mut all: Vec<Reject> = g.rejects;
    all.extend(g.lines.into_iter().map(|l| Reject {
        line: l.line,
        code: RejectCode::OrderRejected,
        reason: reason.clone(),
        raw: l.raw,
    }));
    all.sort_by_key(|r| r.line);
    all
}

/// A batch on its way to the ledger.
#[derive(Debug, Default)]
pub struct Batch {
    pub pieces: Vec<Piece>,
    /// Bytes of the file read when the batch was cut (the reader runs ahead of the
    /// rows by at most the pipeline's bounded buffer): the job's `bytes_read`.
    pub bytes_read: u64,
}

impl Batch {
    pub fn records(&self) -> u64 {
        self.pieces.iter().map(|p| p.records).sum()
    }

    /// What the batch's rows left out rather than refused.
    pub fn warnings(&self) -> u64 {
        self.pieces
            .iter()
            .map(|p| match p.unit {
                Unit::Product { warnings, .. } => u64::from(warnings),
                _ => 0,
            })
            .sum()
    }

    /// What applying the batch answers before any row is loaded or refused: its
    /// records, read position and the order whose further rows are refused.
    fn nothing_applied(&self) -> Applied {
        Applied {
            records: self.records(),
            loaded: 0,
            warnings: self.warnings(),
            bytes_read: self.bytes_read,
            rejects: Vec::new(),
            failed_ref_after: self.pieces.last().and_then(|p| p.failed_ref_after.clone()),
        }
    }
}

impl Applied {
    /// The job's step past this batch: its read position, counts and rejects.
    pub fn step(&self) -> Step<'_> {
        Step::BatchCommitted {
            records: self.records,
            loaded: self.loaded,
            warnings: self.warnings,
            bytes_read: self.bytes_read,
            rejects: &self.rejects,
            failed_ref_after: self
                .failed_ref_after
                .as_ref()
                .map(|r| r.as_str().to_owned()),
        }
    }
}

/// What applying a batch did.
#[derive(Debug, Default, Clone)]
pub struct Applied {
    pub records: u64,
    pub loaded: u64,
    /// Rows loaded with something left out (the report's warnings).
    pub warnings: u64,
    pub bytes_read: u64,
    pub rejects: Vec<Reject>,
    pub failed_ref_after: Option<OrderRef>,
}

/// Where an import finds the customer an order names: the user store's name and
/// email indexes, read in the batch's transaction.
pub trait Customers {
    fn user_of(&self, customer: &Customer) -> Result<Option<UserId>, StoreError>;
}

/// The redb user indexes, open in the ledger's write transaction.
struct RedbCustomers<'txn> {
    names: redb::Table<'txn, &'static str, u64>,
    emails: redb::Table<'txn, &'static str, u64>,
}

impl Customers for RedbCustomers<'_> {
    fn user_of(&self, customer: &Customer) -> Result<Option<UserId>, StoreError> {
        let found = match customer {
            Customer::Username(u) => self.names.get(u.folded().as_str())?,
            Customer::Email(e) => self.emails.get(e.folded().as_str())?,
        };
        Ok(found.map(|v| UserId(v.value())))
    }
}

/// What a batch is applied to: the catalog's rows and the ledger's rules over
/// one transaction, on either backend.
pub struct Target<'a, C, R, U> {
    pub catalog: &'a mut C,
    pub rules: &'a mut Rules<R>,
    pub customers: &'a U,
    pub currency: Currency,
    pub at: Timestamp,
}

/// Applies a batch inside the redb ledger's transaction (real, or a dry run's
/// that is then abandoned). See [`apply_to`]; a batch of product rows is written
/// by two threads (see [`apply_products_side_by_side`]).
pub fn apply(tx: &mut Tx<'_, '_>, job: JobId, batch: Batch) -> Result<Applied, StoreError> {
    let batch = match tx.book.rows.row_events() {
        RowEvents::Summary => match ProductBatch::of(batch) {
            Ok(products) => return apply_products_side_by_side(tx, job, products),
            Err(batch) => batch,
        },
        RowEvents::Rows => batch,
    };
    apply_row_by_row(tx, job, batch)
}

/// [`apply_to`] on the redb ledger's tables, on this thread.
fn apply_row_by_row(tx: &mut Tx<'_, '_>, job: JobId, batch: Batch) -> Result<Applied, StoreError> {
    let customers = RedbCustomers {
        names: tx.txn.open_table(USER_NAMES)?,
        emails: tx.txn.open_table(USER_EMAILS)?,
    };
    apply_to(
        Target {
            catalog: &mut *tx.catalog,
            rules: &mut *tx.book,
            customers: &customers,
            currency: tx.currency,
            at: tx.at,
        },
        job,
        batch,
    )
}

/// [`apply_to`] for a batch of product rows (and rejects) without per-row events,
/// on two threads: the products, their listings and category counts are written
/// on this one while a second writes the stock levels and movements. The two sets
/// of tables are disjoint and neither side reads the other's, so the outcome is
/// the one of [`apply_to`] row by row (a test compares every table); redb takes
/// writes to different tables of one write transaction from several threads. It
/// is still one transaction with one writer: the ledger's thread waits for both.
/// On two cores this is what lifts an import from one core's speed, which it was
/// bound by (the ledger thread did 80 % of its work).
pub fn apply_products_side_by_side(
    tx: &mut Tx<'_, '_>,
    job: JobId,
    batch: ProductBatch,
) -> Result<Applied, StoreError> {
    let ProductBatch {
        rows,
        mut rejects,
        applied,
    } = batch;
    // Rows that put products in groups pass the group rule first, in file order;
    // the refused ones become rejects, in line order as a row-by-row load has them.
    let rows = if rows.iter().any(|r| r.draft.attributes.group.is_some()) {
        variants::settle(&*tx.catalog, rows, tx.at, &mut rejects)?
    } else {
        rows
    };
    rejects.sort_by_key(|r| r.line);
    let loaded = rows.len() as u64;
    let (products, mut levels) = split(rows);
    // In SKU order (a SKU's rows in their order), so the levels are read in key
    // order too; the movements and levels are written in key order at the end.
    levels.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
    let (at, source) = (tx.at, Source::Import(job));
    let catalog = &mut *tx.catalog;
    let book = &mut *tx.book;
    std::thread::scope(|scope| {
        let stock = std::thread::Builder::new()
            .name(LOAD_STOCK_THREAD.into())
            .spawn_scoped(scope, move || {
                book.rows.stage_stock();
                let set = levels
                    .iter()
                    .try_for_each(|(sku, level)| set_stock(book, sku, *level, source, at));
                let staged = book.rows.unstage_stock();
                set.and_then(|()| book.rows.write_stock(staged))
            })
            .map_err(|e| StoreError::Aborted(format!("no thread for the stock levels: {e}")))?;
        products
            .iter()
            .for_each(|(_, draft)| reach_load_point(draft));
        let rows = catalog
            .upsert_many(products, at)
            .and_then(|()| catalog.flush());
        let stock = stock
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        rows.and(stock)
    })?;
    Ok(Applied {
        loaded,
        rejects,
        ..applied
    })
}

/// The product rows of a bulk load and, in the rows' order, the levels set.
type Split = (Vec<(Sku, ProductDraft)>, Vec<(Sku, StockLevel)>);

/// The products of `rows` and, in the rows' order, the levels of those that set one.
fn split(rows: Vec<Pending>) -> Split {
    let mut products = Vec::with_capacity(rows.len());
    let mut levels = Vec::with_capacity(rows.len());
    for row in rows {
        if let Some(level) = row.stock {
            levels.push((row.sku.clone(), level));
        }
        products.push((row.sku, row.draft));
    }
    (products, levels)
}

/// A batch of product rows and rejects, its rows taken apart for
/// [`apply_products_side_by_side`].
#[derive(Debug)]
pub struct ProductBatch {
    rows: Vec<Pending>,
    rejects: Vec<Reject>,
    /// The batch's [`Batch::nothing_applied`].
    applied: Applied,
}

impl ProductBatch {
    /// The batch taken apart, or given back when it holds an inventory row or an
    /// order.
    pub fn of(batch: Batch) -> Result<Self, Batch> {
        let only_products = batch.pieces.iter().all(|p| match &p.unit {
            Unit::Product { .. } | Unit::Rejected(_) | Unit::Skipped => true,
            Unit::Inventory { .. } | Unit::Order { .. } => false,
        });
        if !only_products {
            return Err(batch);
        }
        let mut out = ProductBatch {
            rows: Vec::with_capacity(batch.pieces.len()),
            rejects: Vec::new(),
            applied: batch.nothing_applied(),
        };
        for piece in batch.pieces {
            match piece.unit {
                Unit::Product {
                    sku,
                    draft,
                    stock,
                    grouped,
                    ..
                } => out.rows.push(Pending {
                    sku,
                    draft,
                    stock,
                    grouped,
                }),
                Unit::Rejected(r) => out.rejects.push(r),
                Unit::Inventory { .. } | Unit::Order { .. } | Unit::Skipped => {}
            }
        }
        Ok(out)
    }
}

/// The name of the thread that writes an import batch's stock levels.
const LOAD_STOCK_THREAD: &str = "ledger-stock";

/// An imported product row: created, replaced or left as it is.
fn upsert_row<C: CatalogRows>(
    catalog: &mut C,
    sku: &Sku,
    draft: ProductDraft,
    at: Timestamp,
) -> Result<(Upsert, Vec<u8>), StoreError> {
    reach_load_point(&draft);
    catalog.upsert_encoded(sku, draft, at)
}

/// The failure point a product row passes on its way into the catalog.
fn reach_load_point(draft: &ProductDraft) {
    crate::failpoint::hit("load", || draft.name.as_str().to_owned());
}

/// An imported product row's stock level, set through an `import` movement.
fn set_stock<R: LedgerRows>(
    rules: &mut Rules<R>,
    sku: &Sku,
    level: StockLevel,
    source: Source,
    at: Timestamp,
) -> Result<(), StoreError> {
    rules
        .set_level(sku, level, MovementKind::Import, source, at)
        .map(drop)
        .map_err(stock_storage)
}

/// Applies a batch to `target`. Only a storage error fails it; every row-level
/// problem becomes a reject.
pub fn apply_to<C: CatalogRows, R: LedgerRows, U: Customers>(
    mut target: Target<'_, C, R, U>,
    job: JobId,
    batch: Batch,
) -> Result<Applied, StoreError> {
    let source = Source::Import(job);
    let mut rejects = Vec::new();
    let mut loaded = 0u64;
    let applied = batch.nothing_applied();
    for piece in batch.pieces {
        match piece.unit {
            Unit::Product {
                sku,
                draft,
                stock,
                grouped,
                ..
            } => match target.product(sku, draft, stock, source)? {
                Ok(()) => loaded += 1,
                Err((code, reason)) => {
                    let (line, raw) = *grouped.expect("only a grouped row is refused");
                    rejects.push(Reject {
                        line,
                        code,
                        reason,
                        raw,
                    });
                }
            },
            Unit::Inventory {
                line,
                raw,
                sku,
                stock,
            } => match target.inventory(&sku, stock, source)? {
                true => loaded += 1,
                false => rejects.push(Reject {
                    line,
                    code: RejectCode::UnknownSku,
                    reason: format!("unknown or archived SKU {sku}"),
                    raw,
                }),
            },
            Unit::Order {
                order_ref,
                customer,
                lines,
            } => match target.order(&order_ref, &customer, &lines, source)? {
                Ok(()) => loaded += lines.len() as u64,
                Err((code, reason)) => rejects.extend(lines.iter().map(|l| Reject {
                    line: l.line,
                    code,
                    reason: format!("order {}: {reason}", order_ref.as_str()),
                    raw: l.raw.clone(),
                })),
            },
            Unit::Rejected(r) => rejects.push(r),
            Unit::Skipped => {}
        }
    }
    Ok(Applied {
        loaded,
        rejects,
        ..applied
    })
}

impl<C: CatalogRows, R: LedgerRows, U: Customers> Target<'_, C, R, U> {
    /// A product row: upserted, its stock set if the row gives one, announced
    /// per row if the ledger reports rows; refused (code and reason) when its
    /// variant group does not take it.
    fn product(
        &mut self,
        sku: Sku,
        draft: ProductDraft,
        stock: Option<StockLevel>,
        source: Source,
    ) -> Result<Result<(), (RejectCode, String)>, StoreError> {
        if let Some(conflict) = variant_conflict(self.catalog, &sku, &draft.attributes)? {
            return Ok(Err((variants::code_of(&conflict), conflict.to_string())));
        }
        let (outcome, record) = upsert_row(self.catalog, &sku, draft, self.at)?;
        if let Some(level) = stock {
            set_stock(self.rules, &sku, level, source, self.at)?;
        }
        if self.rules.rows.row_events() == RowEvents::Rows {
            announce_row(self.rules, sku, stock, outcome, record, self.at)?;
        }
        Ok(Ok(()))
    }

    /// An inventory row: the level set if the SKU is in the catalog (false if
    /// it is not, or archived).
    fn inventory(
        &mut self,
        sku: &Sku,
        stock: StockLevel,
        source: Source,
    ) -> Result<bool, StoreError> {
        if self.catalog.product(sku)?.is_none_or(|p| p.archived) {
            return Ok(false);
        }
        self.rules
            .set_level(sku, stock, MovementKind::Adjustment, source, self.at)
            .map_err(stock_storage)?;
        Ok(true)
    }

    /// An imported order, through the checkout's own rules; refused whole (code
    /// and reason for each of its rows) for an unknown customer, lines that do
    /// not merge, or any reason a checkout is refused.
    fn order(
        &mut self,
        order_ref: &OrderRef,
        customer: &Customer,
        lines: &[OrderLineIn],
        source: Source,
    ) -> Result<Result<(), (RejectCode, String)>, StoreError> {
        let Some(user) = self.customers.user_of(customer)? else {
            let who = match customer {
                Customer::Username(u) => u.as_str(),
                Customer::Email(e) => e.as_str(),
            };
            return Ok(Err((
                RejectCode::UnknownCustomer,
                format!("no customer {who}"),
            )));
        };
        let merged = match OrderLines::merge(lines.iter().map(|l| (l.sku.clone(), l.quantity))) {
            Ok(m) => m,
            Err(e) => return Ok(Err((RejectCode::InvalidOrder, format!("lines {e}")))),
        };
        let request = OrderRequest {
            user,
            lines: merged,
            idempotency_key: None,
            source,
            external_ref: Some(order_ref.clone()),
            expected_prices: lines
                .iter()
                .filter_map(|l| l.unit_price.map(|p| (l.sku.clone(), p)))
                .collect(),
        };
        match self
            .rules
            .place_order(&*self.catalog, &request, self.currency, self.at)
        {
            Ok(_) => Ok(Ok(())),
            Err(CheckoutError::Store(e)) => Err(e),
            Err(e) => {
                let (code, reason) = checkout_reject(&e);
                Ok(Err((code, reason.to_string())))
            }
        }
    }
}

/// Advances the job past a batch: its read position, counts and rejects. Both ledgers
/// call this in the same transaction as [`apply`] (or [`apply_to`]), which is what makes the
/// load exactly once.
pub fn record_progress(
    jobs: &mut impl JobRows,
    job: JobId,
    applied: &Applied,
) -> Result<JobRow, StoreError> {
    advance(jobs, job, applied.step())
}

/// The per-row product event of an import (`--import-events rows`), from the
/// bytes just stored and the level just set: nothing is read back.
fn announce_row<R: LedgerRows>(
    rules: &mut Rules<R>,
    sku: Sku,
    stock: Option<StockLevel>,
    outcome: Upsert,
    record: Vec<u8>,
    at: Timestamp,
) -> Result<(), StoreError> {
    let kind = match outcome {
        Upsert::Created => EventType::ProductCreated,
        Upsert::Updated => EventType::ProductUpdated,
        Upsert::Unchanged => return Ok(()),
    };
    let stock = match stock {
        Some(level) => level.get(),
        None => rules.level(&sku)?.units,
    };
    rules
        .rows
        .append_event(kind, Subject::Product { sku, stock }, record, at)
}

fn stock_storage(e: StockError) -> StoreError {
    match e {
        StockError::Store(s) => s,
        // Levels in files are validated (0 to the cap) and SKUs checked before.
        other @ (StockError::UnknownSku
        | StockError::Insufficient { .. }
        | StockError::AboveMax { .. }) => {
            StoreError::Corrupt(format!("an absolute stock level was refused: {other}"))
        }
    }
}

fn checkout_reject(e: &CheckoutError) -> (RejectCode, String) {
    match e {
        CheckoutError::UnknownSkus(skus) => (
            RejectCode::UnknownSku,
            format!(
                "unknown or archived SKU {}",
                skus.iter().map(Sku::as_str).collect::<Vec<_>>().join(", ")
            ),
        ),
        CheckoutError::Insufficient(short) => (
            RejectCode::InsufficientStock,
            format!(
                "not enough stock for {}",
                short
                    .iter()
                    .map(|s| format!(
                        "{} (requested {}, available {})",
                        s.sku, s.requested, s.available
                    ))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ),
        CheckoutError::DuplicateRef(_) => (
            RejectCode::DuplicateOrder,
            "already in the ledger".to_owned(),
        ),
        CheckoutError::PriceMismatch {
            sku,
            claimed,
            catalog,
        } => (
            RejectCode::PriceMismatch,
            format!("unit price of {sku} is {claimed} cents, the catalog says {catalog}"),
        ),
        // An imported order has no idempotency key, and storage errors are handled
        // before this is asked.
        CheckoutError::KeyReused | CheckoutError::InFlight | CheckoutError::Store(_) => {
            (RejectCode::OrderRejected, e.to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Username;

    fn line(r: &str, q: i64) -> Result<Row, Failed> {
        Ok(Row::OrderLine {
            order_ref: OrderRef::parse(r).unwrap(),
            customer: Customer::Username(Username::parse("alice").unwrap()),
            sku: Sku::parse("A").unwrap(),
            quantity: Quantity::new(q).unwrap(),
            unit_price: None,
        })
    }

    fn bad(r: Option<&str>, line: u64) -> Result<Row, Failed> {
        Err(Failed {
            reject: Reject {
                line,
                code: RejectCode::InvalidQuantity,
                reason: "quantity bad".into(),
                raw: String::new(),
            },
            order_ref: r.map(|r| OrderRef::parse(r).unwrap()),
        })
    }

    fn summary(out: &[Piece]) -> Vec<(String, u64)> {
        out.iter()
            .map(|p| match &p.unit {
                Unit::Order {
                    order_ref, lines, ..
                } => (
                    format!("order {} x{}", order_ref.as_str(), lines.len()),
                    p.records,
                ),
                Unit::Rejected(r) => (format!("reject {}", r.code.as_str()), p.records),
                _ => ("other".into(), p.records),
            })
            .collect()
    }

    #[test]
    fn consecutive_rows_form_orders_and_one_bad_row_sinks_its_order() {
        let mut g = Grouper::default();
        let mut out = Vec::new();
        g.push(line("R1", 1), 0, String::new, &mut out);
        g.push(line("R1", 2), 0, String::new, &mut out);
        g.push(line("R2", 1), 0, String::new, &mut out);
        g.push(bad(Some("R2"), 4), 4, String::new, &mut out);
        g.push(bad(None, 5), 0, String::new, &mut out);
        g.push(line("R3", 1), 0, String::new, &mut out);
        g.close(&mut out);
        assert_eq!(
            summary(&out),
            [
                ("order R1 x2".into(), 2),
                ("reject order_rejected".into(), 1),
                ("reject invalid_quantity".into(), 1),
                ("reject invalid_quantity".into(), 1),
                ("order R3 x1".into(), 1),
            ]
        );
        assert_eq!(
            out.iter().map(|p| p.records).sum::<u64>(),
            6,
            "every record accounted for"
        );
    }

    #[test]
    fn an_order_with_too_many_rows_is_refused_without_buffering_it() {
        let mut g = Grouper::default();
        let mut out = Vec::new();
        for _ in 0..150 {
            g.push(line("BIG", 1), 0, String::new, &mut out);
        }
        g.push(line("NEXT", 1), 0, String::new, &mut out);
        g.close(&mut out);
        assert_eq!(out.len(), 151);
        assert!(
            out[..150].iter().all(
                |p| matches!(&p.unit, Unit::Rejected(r) if r.code == RejectCode::OrderRejected)
            )
        );
        assert_eq!(out[120].failed_ref_after.as_ref().unwrap().as_str(), "BIG");
        assert_eq!(summary(&out[150..]), [("order NEXT x1".into(), 1)]);
        assert_eq!(out.iter().map(|p| p.records).sum::<u64>(), 151);
        // Resuming inside it keeps refusing its rows.
        let mut g = Grouper::resume(Some(OrderRef::parse("BIG").unwrap()));
        let mut out = Vec::new();
        g.push(line("BIG", 1), 0, String::new, &mut out);
        assert!(matches!(&out[0].unit, Unit::Rejected(_)));
    }

    /// A batch of product rows gives the same tables whether its catalog rows and
    /// its stock levels are written side by side or row by row: every table either
    /// touches, after batches with repeated SKUs, updates, unchanged rows, rows
    /// without a level and rejects.
    mod side_by_side {
        use super::*;
        use crate::domain::{Category, ProductName};
        use crate::ledger::tx::commit_one;
        use crate::store::Store;
        use crate::store::tables::*;
        use proptest::prelude::*;
        use redb::{ReadableDatabase, ReadableTable};

        /// (SKU, price, name, category, level, variant) of a row, or `None` for a
        /// reject; a variant is (group, size, with a colour?).
        type RowSpec = Option<(u8, u16, u8, u8, Option<u8>, Option<(u8, u8, bool)>)>;

        fn attributes(variant: Option<(u8, u8, bool)>) -> crate::catalog::Attributes {
            use crate::domain::{GroupHandle, Options};
            let Some((group, size, coloured)) = variant else {
                return Default::default();
            };
            let size = ["S", "m", "M"][usize::from(size % 3)];
            let mut pairs = vec![("Size", size)];
            if coloured {
                pairs.push(("Color", "Red"));
            }
            crate::catalog::Attributes {
                group: Some(GroupHandle::parse(&format!("g{group}")).unwrap()),
                options: Options::parse(pairs).unwrap(),
                ..Default::default()
            }
        }

        fn batch(rows: &[RowSpec]) -> Batch {
            let pieces = rows
                .iter()
                .enumerate()
                .map(|(i, spec)| {
                    let unit = match *spec {
                        Some((sku, price, name, category, level, variant)) => Unit::Product {
                            warnings: 0,
                            grouped: variant.map(|_| Box::new((i as u64 + 2, format!("row {i}")))),
                            sku: Sku::parse(&format!("SKU-{sku}")).unwrap(),
                            draft: ProductDraft {
                                attributes: attributes(variant),
                                name: ProductName::parse(&format!("Name {name}")).unwrap(),
                                category: Category::parse(&format!("c{category}")).unwrap(),
                                description: None,
                                price: Cents::new(i64::from(price) + 1).unwrap(),
                            },
                            stock: level.map(|l| StockLevel::new(i64::from(l)).unwrap()),
                        },
                        None => Unit::Rejected(Reject {
                            line: i as u64 + 2,
                            code: RejectCode::PriceNotANumber,
                            reason: "price bad".into(),
                            raw: format!("row {i}"),
                        }),
                    };
                    Piece {
                        unit,
                        records: 1,
                        failed_ref_after: None,
                    }
                })
                .collect();
            Batch {
                pieces,
                bytes_read: rows.len() as u64 * 10,
            }
        }

        /// Every table an import of products writes, as text.
        fn tables(store: &Store) -> Vec<String> {
            let read = store.db().begin_read().unwrap();
            let mut out = Vec::new();
            macro_rules! dump {
                ($($def:ident),*) => {$(
                    match read.open_table($def) {
                        Ok(table) => {
                            for entry in table.iter().unwrap() {
                                let (k, v) = entry.unwrap();
                                out.push(format!("{} {:?} {:?}", stringify!($def), k.value(), v.value()));
                            }
                        }
                        Err(redb::TableError::TableDoesNotExist(_)) => {}
                        Err(e) => panic!("{e}"),
                    }
                )*};
            }
            dump!(
                META,
                PRODUCTS,
                LISTING_BLOCKS,
                LISTING_RUNS,
                LISTING_META,
                CATEGORIES,
                GROUP_MEMBERS,
                STOCK,
                MOVEMENTS,
                EVENTS,
                EVENTS_META
            );
            out
        }

        /// A batch's records read, rows loaded and rejects (line, code).
        type Outcome = (u64, u64, Vec<(u64, &'static str)>);

        fn load(
            batches: &[Vec<RowSpec>],
            way: fn(&mut Tx<'_, '_>, Batch) -> Result<Applied, StoreError>,
        ) -> (Vec<String>, Vec<Outcome>) {
            let dir = tempfile::tempdir().unwrap();
            let store = Store::open(dir.path()).unwrap();
            let mut applied = Vec::new();
            for (i, rows) in (0i64..).zip(batches) {
                let out = commit_one(&store, Currency::EUR, |tx| {
                    tx.at = Timestamp(1_000_000 + i);
                    way(tx, batch(rows))
                })
                .unwrap();
                let rejects = out
                    .rejects
                    .iter()
                    .map(|r| (r.line, r.code.as_str()))
                    .collect();
                applied.push((out.records, out.loaded, rejects));
            }
            (tables(&store), applied)
        }

        /// Batches of rows whose SKUs are `SKU-0` to `SKU-{skus - 1}`.
        fn rows(skus: u8, rows_max: usize) -> impl Strategy<Value = Vec<Vec<RowSpec>>> {
            let row = proptest::option::weighted(
                0.9,
                (
                    0u8..skus,
                    0u16..50,
                    0u8..4,
                    0u8..3,
                    proptest::option::of(0u8..40),
                    proptest::option::weighted(0.4, (0u8..2, 0u8..3, any::<bool>())),
                ),
            );
            proptest::collection::vec(proptest::collection::vec(row, 0..rows_max), 1..5)
        }

        fn side_by_side_and_row_by_row(batches: &[Vec<RowSpec>]) -> Result<(), TestCaseError> {
            let apart = load(batches, |tx, batch| {
                let products = ProductBatch::of(batch).expect("only product rows");
                apply_products_side_by_side(tx, JobId(7), products)
            });
            let in_turn = load(batches, |tx, batch| apply_row_by_row(tx, JobId(7), batch));
            let loaded_any = batches.iter().flatten().any(Option::is_some);
            prop_assert_eq!(
                apart.0.iter().any(|t| t.starts_with("PRODUCTS")),
                loaded_any
            );
            prop_assert_eq!(apart, in_turn);
            Ok(())
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(48))]
            #[test]
            fn side_by_side_writes_what_row_by_row_writes(batches in rows(12, 40)) {
                side_by_side_and_row_by_row(&batches)?;
            }

            /// Many SKUs, so that a batch's new SKUs land between stored ones
            /// with few or many stored rows (and movements) between them: the
            /// stock levels and movements are written in stretches and seeks.
            #[test]
            fn side_by_side_writes_what_row_by_row_writes_among_many_stored(
                batches in rows(250, 300)
            ) {
                side_by_side_and_row_by_row(&batches)?;
            }
        }

        #[test]
        fn a_batch_with_an_inventory_row_is_not_taken_apart() {
            let mut mixed = batch(&[Some((1, 10, 1, 1, Some(3), None))]);
            mixed.pieces.push(Piece {
                unit: Unit::Inventory {
                    line: 3,
                    raw: String::new(),
                    sku: Sku::parse("SKU-1").unwrap(),
                    stock: StockLevel::new(4).unwrap(),
                },
                records: 1,
                failed_ref_after: None,
            });
            assert!(ProductBatch::of(mixed).is_err());
        }
    }
}
