//! The ledger's rules, as operations on the rows of one open transaction.
//!
//! [`Rules`] runs over [`LedgerRows`] and [`ProductRows`]: on redb the ledger's
//! tables inside a `WriteTransaction` ([`super::redb_rows::Book`]), on PostgreSQL
//! the rows a batch read and locked ([`crate::pg::staged`]). Every operation first
//! checks everything it needs and only then writes, so an operation that fails
//! leaves the transaction exactly as it found it; this is what lets the ledger
//! fold many independent orders into one transaction (group commit) and still
//! answer each one on its own merits.
//!
//! Invariants kept here, and re-checked by [`super::verify`]:
//! - a SKU's stock is the sum of its movements' deltas and is never below zero;
//! - each movement records the level after it (`stock_after`), so the history is a
//!   chain that can be audited link by link;
//! - an order's total is the sum of its lines, each `unit_price × quantity`, at the
//!   catalog price read inside the very transaction that takes the stock.
//!
//! Why one file: the ledger's rules and the invariants they keep must be read together;
//! about 80 of its lines are unit tests.

use super::records::{
    Caller, CheckoutError, IdempotencyRow, Level, Movement, MovementDraft, MovementRow, Order,
    OrderError, OrderLine, OrderRequest, OrderRow, Placed, Shortage, Source, StockError,
};
use super::rows::{LedgerRows, ProductRows};
use crate::common::{StoreError, codec};
use crate::domain::{
    Currency, MovementKind, OrderId, OrderStatus, Reason, Sku, StockDelta, StockLevel, Timestamp,
};
use crate::events::{EventType, RowEvents, Subject};
use crate::limits::STOCK_UNITS_MAX;

/// The level a movement of `delta` reaches from `level`, or why it may not: below
/// zero, or past [`STOCK_UNITS_MAX`] for an increase (stock above the cap, from an
/// older release, can always be reduced).
pub fn check_movement(level: Level, delta: i64) -> Result<u64, StockError> {
    let after = level
        .units
        .checked_add_signed(delta)
        .ok_or(StockError::Insufficient {
            available: level.units,
        })?;
    if delta > 0 && after > STOCK_UNITS_MAX {
        return Err(StockError::AboveMax { would_be: after });
    }
    Ok(after)
}

/// A stock level as a signed number, for differences (levels are at most
/// [`STOCK_UNITS_MAX`], far inside `i64`).
fn signed(units: u64) -> i64 {
    i64::try_from(units).expect("stock levels fit in i64")
}

/// What [`Book::check_order`] decided.
enum Checked {
    /// The idempotency key matched an earlier order: answer it again.
    Replay(Order),
    /// A new order, every check passed.
    New(OrderPlan),
}

/// An accepted order's lines, each with the level its SKU had when checked.
struct OrderPlan {
    fingerprint: [u8; 32],
    lines: Vec<(OrderLine, Level)>,
}

/// The ledger's rules over the rows of one transaction (see [`super::rows`]).
pub struct Rules<R> {
    pub rows: R,
}

impl<R: LedgerRows> Rules<R> {
    /// A SKU's stock now; zero with no movements for a SKU never stocked.
    pub fn level(&self, sku: &Sku) -> Result<Level, StoreError> {
        self.rows.level(sku)
    }

    /// Appends a movement and sets the level, refusing to go below zero or (for an
    /// increase) above the cap.
    pub fn record(&mut self, sku: &Sku, draft: MovementDraft) -> Result<Movement, StockError> {
        let level = self.level(sku)?;
        let after = check_movement(level, draft.delta)?;
        let movement = self.write_movement(sku, level, after, draft)?;
        self.announce(&movement)?;
        Ok(movement)
    }

    /// Appends the `stock.changed` event of a movement, unless it is a row of a
    /// products or inventory import under `--import-events summary`.
    fn announce(&mut self, movement: &Movement) -> Result<(), StoreError> {
        let import_row = matches!(movement.row.source, Source::Import(_))
            && movement.row.kind != MovementKind::Sale;
        if import_row && self.rows.row_events() == RowEvents::Summary {
            return Ok(());
        }
        self.rows.append_event(
            EventType::StockChanged,
            Subject::Movement {
                sku: movement.sku.clone(),
                seq: movement.seq,
            },
            codec::encode(&movement.row),
            movement.row.at,
        )
    }

    /// The one place a movement and a stock level are written, for a change that
    /// passed [`check_movement`] against `level`, read in this transaction.
    fn write_movement(
        &mut self,
        sku: &Sku,
        level: Level,
        after: u64,
        draft: MovementDraft,
    ) -> Result<Movement, StoreError> {
        // The pair of the checks made before: the level reached is the one asked
        // for, within the cap if it grew, and the history gains exactly one link.
        assert_eq!(level.units.checked_add_signed(draft.delta), Some(after));
        assert!(draft.delta <= 0 || after <= STOCK_UNITS_MAX);
        let seq = level.last_seq + 1;
        let row = MovementRow {
            kind: draft.kind,
            delta: draft.delta,
            stock_after: after,
            order_id: draft.order_id,
            source: draft.source,
            reason: draft.reason,
            at: draft.at,
        };
        self.rows.put_movement(sku, seq, &row)?;
        Ok(Movement {
            sku: sku.clone(),
            seq,
            row,
        })
    }

    /// Moves stock to an absolute level (import, inventory feed, product replace);
    /// `None` when it already is there.
    pub fn set_level(
        &mut self,
        sku: &Sku,
        target: StockLevel,
        kind: MovementKind,
        source: Source,
        at: Timestamp,
    ) -> Result<Option<Movement>, StockError> {
        let level = self.level(sku)?;
        let delta = signed(target.get()) - signed(level.units);
        if delta == 0 {
            return Ok(None);
        }
        let after = check_movement(level, delta)?;
        let draft = MovementDraft {
            kind,
            delta,
            order_id: None,
            source,
            reason: None,
            at,
        };
        let movement = self.write_movement(sku, level, after, draft)?;
        self.announce(&movement)?;
        Ok(Some(movement))
    }

    /// An admin's stock change: a positive delta is a `receipt`, a negative one an
    /// `adjustment`.
    pub fn adjust(
        &mut self,
        catalog: &impl ProductRows,
        sku: &Sku,
        delta: StockDelta,
        reason: Reason,
        at: Timestamp,
    ) -> Result<Movement, StockError> {
        if catalog.product(sku)?.is_none_or(|p| p.archived) {
            return Err(StockError::UnknownSku);
        }
        let kind = if delta.get() > 0 {
            MovementKind::Receipt
        } else {
            MovementKind::Adjustment
        };
        self.record(
            sku,
            MovementDraft {
                kind,
                delta: delta.get(),
                order_id: None,
                source: Source::Api,
                reason: Some(reason),
                at,
            },
        )
    }

    /// Places an order: prices from the catalog rows read in this transaction, all
    /// lines or none. [`Self::check_order`] decides (and may refuse); only then
    /// does [`Self::write_order`] write, without a refusal of its own.
    pub fn place_order(
        &mut self,
        catalog: &impl ProductRows,
        request: &OrderRequest,
        currency: Currency,
        at: Timestamp,
    ) -> Result<Placed, CheckoutError> {
        match self.check_order(catalog, request)? {
            Checked::Replay(order) => Ok(Placed {
                order,
                replayed: true,
            }),
            Checked::New(plan) => Ok(self.write_order(request, plan, currency, at)?),
        }
    }

    /// Every refusal of a checkout, in a fixed order (idempotency, reference, SKUs,
    /// prices, stock), reading only.
    fn check_order(
        &self,
        catalog: &impl ProductRows,
        request: &OrderRequest,
    ) -> Result<Checked, CheckoutError> {
        let fingerprint = request.fingerprint();
        if let Some(key) = &request.idempotency_key
            && let Some(earlier) = self.rows.idempotency(request.user, key)?
        {
            if earlier.fingerprint != fingerprint {
                return Err(CheckoutError::KeyReused);
            }
            return Ok(Checked::Replay(Order {
                id: earlier.order_id,
                row: earlier.snapshot,
            }));
        }
        if let Some(reference) = &request.external_ref
            && self.rows.order_ref_taken(reference)?
        {
            return Err(CheckoutError::DuplicateRef(reference.as_str().to_owned()));
        }
        let mut lines = Vec::with_capacity(request.lines.len());
        let mut unknown = Vec::new();
        let mut short = Vec::new();
        for (sku, quantity) in request.lines.iter() {
            let Some(product) = catalog.product(sku)?.filter(|p| !p.archived) else {
                unknown.push(sku.clone());
                continue;
            };
            if let Some((_, claimed)) = request.expected_prices.iter().find(|(s, _)| s == sku)
                && *claimed != product.price
            {
                return Err(CheckoutError::PriceMismatch {
                    sku: sku.clone(),
                    claimed: claimed.get(),
                    catalog: product.price.get(),
                });
            }
            let level = self.level(sku)?;
            if level.units < u64::from(quantity.get()) {
                short.push(Shortage {
                    sku: sku.clone(),
                    requested: quantity.get(),
                    available: level.units,
                });
            }
            let line = OrderLine {
                sku: sku.clone(),
                name: product.name.as_str().to_owned(),
                unit_price: product.price,
                quantity: *quantity,
                line_total_cents: product.price.get() * u64::from(quantity.get()),
            };
            lines.push((line, level));
        }
        if !unknown.is_empty() {
            return Err(CheckoutError::UnknownSkus(unknown));
        }
        if !short.is_empty() {
            return Err(CheckoutError::Insufficient(short));
        }
        Ok(Checked::New(OrderPlan { fingerprint, lines }))
    }

    /// Writes an order that [`Self::check_order`] accepted: its id, a `sale` per
    /// line, the order rows, its reference and idempotency key.
    fn write_order(
        &mut self,
        request: &OrderRequest,
        plan: OrderPlan,
        currency: Currency,
        at: Timestamp,
    ) -> Result<Placed, StoreError> {
        let id = self.rows.next_order_id()?;
        let mut lines = Vec::with_capacity(plan.lines.len());
        let mut sales = Vec::with_capacity(plan.lines.len());
        for (line, level) in plan.lines {
            let sold = u64::from(line.quantity.get());
            // Checked above in this same transaction: enough stock, and no other
            // line of this order touched the SKU (lines are merged by SKU).
            assert!(level.units >= sold, "stock checked before writing");
            let draft = MovementDraft {
                kind: MovementKind::Sale,
                delta: -i64::from(line.quantity.get()),
                order_id: Some(id),
                source: request.source,
                reason: None,
                at,
            };
            sales.push(self.write_movement(&line.sku, level, level.units - sold, draft)?);
            lines.push(line);
        }
        let row = OrderRow {
            user_id: request.user,
            status: OrderStatus::Placed,
            total_cents: lines.iter().map(|l| l.line_total_cents).sum(),
            lines,
            currency: currency.code().to_owned(),
            created_at: at,
            updated_at: at,
            source: request.source,
            external_ref: request.external_ref.clone(),
        };
        self.rows.insert_order(id, &row)?;
        if let Some(key) = &request.idempotency_key {
            let remembered = IdempotencyRow {
                fingerprint: plan.fingerprint,
                order_id: id,
                snapshot: row.clone(),
            };
            self.rows
                .put_idempotency(request.user, key, &remembered, at)?;
        }
        // The order first, then what it did to stock: a reader learns of the sale
        // before the movements that refer to it.
        self.rows.append_event(
            EventType::OrderPlaced,
            Subject::Order {
                id,
                previous_status: None,
            },
            codec::encode(&row),
            at,
        )?;
        for sale in &sales {
            self.announce(sale)?;
        }
        Ok(Placed {
            order: Order { id, row },
            replayed: false,
        })
    }

    pub fn order(&self, id: OrderId) -> Result<Option<OrderRow>, StoreError> {
        self.rows.order(id)
    }

    /// Moves an order along its lifecycle; cancelling returns its stock through
    /// `cancel` movements. `caller` limits a customer to their own orders (another
    /// user's order is "not found", never "forbidden"). Every refusal is checked
    /// before anything is written.
    pub fn change_status(
        &mut self,
        id: OrderId,
        next: OrderStatus,
        caller: Caller,
        at: Timestamp,
    ) -> Result<Order, OrderError> {
        let mut row = self
            .order(id)?
            .filter(|o| caller.may_see(o))
            .ok_or(OrderError::NotFound)?;
        if !row.status.can_become(next) {
            return Err(OrderError::InvalidTransition {
                from: row.status,
                to: next,
            });
        }
        let mut restock = Vec::new();
        if next == OrderStatus::Cancelled {
            for line in &row.lines {
                let level = self.level(&line.sku)?;
                let delta = i64::from(line.quantity.get());
                let after = check_movement(level, delta).map_err(|e| match e {
                    StockError::Store(s) => OrderError::Store(s),
                    StockError::UnknownSku
                    | StockError::Insufficient { .. }
                    | StockError::AboveMax { .. } => OrderError::RestockAboveMax {
                        sku: line.sku.clone(),
                        would_be: level.units.saturating_add(u64::from(line.quantity.get())),
                    },
                })?;
                restock.push((line.sku.clone(), level, after, delta));
            }
        }
        let mut restocked = Vec::with_capacity(restock.len());
        for (sku, level, after, delta) in restock {
            let draft = MovementDraft {
                kind: MovementKind::Cancel,
                delta,
                order_id: Some(id),
                source: Source::Api,
                reason: None,
                at,
            };
            restocked.push(self.write_movement(&sku, level, after, draft)?);
        }
        let previous = row.status;
        row.status = next;
        row.updated_at = at;
        self.rows.update_order(id, &row)?;
        self.rows.append_event(
            EventType::of_status(next),
            Subject::Order {
                id,
                previous_status: Some(previous),
            },
            codec::encode(&row),
            at,
        )?;
        for movement in &restocked {
            self.announce(movement)?;
        }
        Ok(Order { id, row })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{CatalogTables, ProductDraft};
    use crate::domain::{
        Category, Cents, IdempotencyKey, OrderLines, ProductName, Quantity, UserId,
    };
    use crate::ledger::redb_rows::Book;
    use crate::store::Store;

    fn sku() -> Sku {
        Sku::parse("P-1").unwrap()
    }

    /// Runs `f` in one committed write transaction with the catalog and the book.
    fn in_tx<T>(store: &Store, f: impl FnOnce(&mut CatalogTables<'_>, &mut Book<'_>) -> T) -> T {
        crate::ledger::tx::commit_one::<T, StoreError>(store, Currency::EUR, |tx| {
            Ok(f(tx.catalog, tx.book))
        })
        .unwrap()
    }

    fn keyed_order(key: &str) -> OrderRequest {
        OrderRequest {
            user: UserId(1),
            lines: OrderLines::merge([(sku(), Quantity::new(1).unwrap())]).unwrap(),
            idempotency_key: Some(IdempotencyKey::parse(key).unwrap()),
            source: Source::Api,
            external_ref: None,
            expected_prices: Vec::new(),
        }
    }

    #[test]
    fn purged_idempotency_keys_are_forgotten_and_later_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let t0 = Timestamp(1_000_000);
        in_tx(&store, |catalog, book| {
            let draft = ProductDraft {
                attributes: Default::default(),
                name: ProductName::parse("Cable").unwrap(),
                category: Category::uncategorized(),
                description: None,
                price: Cents::new(500).unwrap(),
            };
            catalog.upsert(&sku(), draft, t0).unwrap();
            book.set_level(
                &sku(),
                StockLevel::new(10).unwrap(),
                MovementKind::Receipt,
                Source::Api,
                t0,
            )
            .unwrap();
        });
        let place = |key: &str, at: Timestamp| {
            in_tx(&store, |catalog, book| {
                book.place_order(catalog, &keyed_order(key), Currency::EUR, at)
                    .unwrap()
            })
        };
        let old = place("old", t0);
        let new = place("new", Timestamp(2_000_000));
        let purge = |cutoff: i64, max: usize| {
            in_tx(&store, |_, book| {
                book.purge_idempotency(Timestamp(cutoff), max).unwrap()
            })
        };
        assert_eq!(purge(1_000_000, 10), 0, "created at the cutoff: kept");
        assert_eq!(purge(1_500_000, 10), 1);
        assert_eq!(purge(1_500_000, 10), 0);

        let again = place("old", Timestamp(3_000_000));
        assert!(!again.replayed, "a purged key starts a new order");
        assert_ne!(again.order.id, old.order.id);
        let replay = place("new", Timestamp(3_000_000));
        assert!(
            replay.replayed,
            "a key younger than the cutoff still replays"
        );
        assert_eq!(replay.order.id, new.order.id);
    }
}
