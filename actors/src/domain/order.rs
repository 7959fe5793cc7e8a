use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{InvalidValue, Sku, bounded_text};
use crate::limits::{
    IDEMPOTENCY_KEY_BYTES_MAX, LINE_QUANTITY_MAX, ORDER_LINES_MAX, ORDER_REF_CHARS_MAX,
    REASON_CHARS_MAX,
};

/// An order's id: assigned by the ledger in commit order, never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct OrderId(pub u64);

/// An import job's id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct JobId(pub u64);

/// Units of one order line: 1–1000.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "u32")]
pub struct Quantity(u32);

impl Quantity {
    pub fn new(units: i64) -> Result<Self, InvalidValue> {
        match u32::try_from(units) {
            Ok(q) if (1..=LINE_QUANTITY_MAX).contains(&q) => Ok(Self(q)),
            _ => Err(InvalidValue::new(format!(
                "must be between 1 and {LINE_QUANTITY_MAX}"
            ))),
        }
    }
    pub fn get(self) -> u32 {
        self.0
    }
}

/// The lines of one order: 1–100 distinct SKUs, repeated SKUs merged, sorted by SKU
/// (so two bodies that differ only in line order are the same order).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderLines(Vec<(Sku, Quantity)>);

impl OrderLines {
    /// Merges repeated SKUs. Fails (with the offending SKU in the message) when there
    /// are no lines, too many, or a merged quantity exceeds the per-line maximum.
    pub fn merge(lines: impl IntoIterator<Item = (Sku, Quantity)>) -> Result<Self, InvalidValue> {
        let mut merged: BTreeMap<Sku, u32> = BTreeMap::new();
        let mut count = 0usize;
        for (sku, quantity) in lines {
            count += 1;
            *merged.entry(sku).or_default() += quantity.get();
        }
        if count == 0 {
            return Err(InvalidValue::new("must contain at least one line"));
        }
        if count > ORDER_LINES_MAX {
            return Err(InvalidValue::new(format!(
                "must contain at most {ORDER_LINES_MAX} lines"
            )));
        }
        let mut out = Vec::with_capacity(merged.len());
        for (sku, units) in merged {
            let quantity = Quantity::new(i64::from(units)).map_err(|_| {
                InvalidValue::new(format!(
                    "quantity of {sku} adds up to {units}, above {LINE_QUANTITY_MAX}"
                ))
            })?;
            out.push((sku, quantity));
        }
        Ok(Self(out))
    }

    pub fn iter(&self) -> impl Iterator<Item = &(Sku, Quantity)> {
        self.0.iter()
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Where an order is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum OrderStatus {
    Placed,
    Paid,
    Shipped,
    Delivered,
    Cancelled,
}

impl OrderStatus {
    pub const ALL: [OrderStatus; 5] = [
        OrderStatus::Placed,
        OrderStatus::Paid,
        OrderStatus::Shipped,
        OrderStatus::Delivered,
        OrderStatus::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Placed => "placed",
            OrderStatus::Paid => "paid",
            OrderStatus::Shipped => "shipped",
            OrderStatus::Delivered => "delivered",
            OrderStatus::Cancelled => "cancelled",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == raw)
    }

    /// The lifecycle: `placed → paid → shipped → delivered`, `placed|paid → cancelled`.
    pub fn can_become(self, next: OrderStatus) -> bool {
        use OrderStatus::*;
        matches!(
            (self, next),
            (Placed, Paid) | (Paid, Shipped) | (Shipped, Delivered) | (Placed | Paid, Cancelled)
        )
    }
}

/// Why stock moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum MovementKind {
    Receipt,
    Sale,
    Cancel,
    Adjustment,
    Import,
}

impl MovementKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MovementKind::Receipt => "receipt",
            MovementKind::Sale => "sale",
            MovementKind::Cancel => "cancel",
            MovementKind::Adjustment => "adjustment",
            MovementKind::Import => "import",
        }
    }
}

/// A client's `Idempotency-Key`: 1–255 visible ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String")]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        if raw.is_empty() || raw.len() > IDEMPOTENCY_KEY_BYTES_MAX {
            return Err(InvalidValue::new(format!(
                "must be 1 to {IDEMPOTENCY_KEY_BYTES_MAX} characters"
            )));
        }
        if !raw.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(InvalidValue::new("must be visible ASCII characters"));
        }
        Ok(Self(raw.to_owned()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An external order reference from an orders file: 1–64 characters after trimming.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String")]
pub struct OrderRef(String);

impl OrderRef {
    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        bounded_text(raw, 1, ORDER_REF_CHARS_MAX).map(Self)
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The free-text reason of a stock adjustment: 1–200 characters after trimming.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String")]
pub struct Reason(String);

impl Reason {
    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        bounded_text(raw, 1, REASON_CHARS_MAX).map(Self)
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<u32> for Quantity {
    type Error = InvalidValue;
    fn try_from(raw: u32) -> Result<Self, InvalidValue> {
        Self::new(i64::from(raw))
    }
}

impl TryFrom<String> for IdempotencyKey {
    type Error = InvalidValue;
    fn try_from(raw: String) -> Result<Self, InvalidValue> {
        Self::parse(&raw)
    }
}

impl TryFrom<String> for OrderRef {
    type Error = InvalidValue;
    fn try_from(raw: String) -> Result<Self, InvalidValue> {
        Self::parse(&raw)
    }
}

impl TryFrom<String> for Reason {
    type Error = InvalidValue;
    fn try_from(raw: String) -> Result<Self, InvalidValue> {
        Self::parse(&raw)
    }
}

/// Why a checkout was refused, as a closed set: the metric label and the import's
/// reject code come from here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CheckoutRejection {
    UnknownSku,
    InsufficientStock,
    IdempotencyKeyReused,
    InFlight,
    DuplicateOrderRef,
    PriceMismatch,
    Storage,
}

impl CheckoutRejection {
    pub fn as_str(self) -> &'static str {
        match self {
            CheckoutRejection::UnknownSku => "unknown_sku",
            CheckoutRejection::InsufficientStock => "insufficient_stock",
            CheckoutRejection::IdempotencyKeyReused => "idempotency_key_reused",
            CheckoutRejection::InFlight => "in_flight",
            CheckoutRejection::DuplicateOrderRef => "duplicate_order_ref",
            CheckoutRejection::PriceMismatch => "price_mismatch",
            CheckoutRejection::Storage => "storage",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(sku: &str, q: i64) -> (Sku, Quantity) {
        (Sku::parse(sku).unwrap(), Quantity::new(q).unwrap())
    }

    #[test]
    fn quantity_bounds() {
        assert!(Quantity::new(0).is_err());
        assert!(Quantity::new(1).is_ok());
        assert!(Quantity::new(1000).is_ok());
        assert!(Quantity::new(1001).is_err());
        assert!(Quantity::new(-3).is_err());
    }

    #[test]
    fn lines_merge_and_bound() {
        let lines = OrderLines::merge([line("B", 2), line("A", 1), line("B", 3)]).unwrap();
        let got: Vec<_> = lines.iter().map(|(s, q)| (s.as_str(), q.get())).collect();
        assert_eq!(got, vec![("A", 1), ("B", 5)]);
        assert!(OrderLines::merge([]).is_err());
        assert!(OrderLines::merge((0..100).map(|i| line(&format!("S{i}"), 1))).is_ok());
        assert!(OrderLines::merge((0..101).map(|i| line(&format!("S{i}"), 1))).is_err());
        assert!(OrderLines::merge([line("A", 1000)]).is_ok());
        let err = OrderLines::merge([line("A", 600), line("A", 401)]).unwrap_err();
        assert!(err.0.contains("A adds up to 1001"), "{err}");
    }

    #[test]
    fn lifecycle() {
        use OrderStatus::*;
        let allowed = [
            (Placed, Paid),
            (Paid, Shipped),
            (Shipped, Delivered),
            (Placed, Cancelled),
            (Paid, Cancelled),
        ];
        for from in OrderStatus::ALL {
            for to in OrderStatus::ALL {
                assert_eq!(
                    from.can_become(to),
                    allowed.contains(&(from, to)),
                    "{from:?}->{to:?}"
                );
            }
        }
    }

    #[test]
    fn idempotency_key_and_refs() {
        assert!(IdempotencyKey::parse("").is_err());
        assert!(IdempotencyKey::parse(&"k".repeat(255)).is_ok());
        assert!(IdempotencyKey::parse(&"k".repeat(256)).is_err());
        assert!(IdempotencyKey::parse("a b").is_err());
        assert!(OrderRef::parse(&"r".repeat(64)).is_ok());
        assert!(OrderRef::parse(&"r".repeat(65)).is_err());
        assert!(Reason::parse(&"r".repeat(200)).is_ok());
        assert!(Reason::parse(&"r".repeat(201)).is_err());
        assert!(Reason::parse(" ").is_err());
    }
}
