//! Domain newtypes: every value that crosses into the actors is parsed here first.
//!
//! A newtype can only be built through its `parse` (or `new`) constructor, which
//! enforces the contract's bounds, so an actor holding a `Sku` or a `Quantity` never
//! re-checks it and never sees a raw string or a float. The HTTP layer and the import
//! pipeline both go through these same constructors, so a row in a file and a field
//! in a request body obey one rule.

mod catalog;
mod import;
mod money;
mod order;
mod time;
mod user;
mod variant;

pub use catalog::{Category, Description, ProductName, Sku, StockDelta, StockLevel, fold_case};
pub use import::{Kind, RejectCode};
pub use money::{Cents, Currency, PriceError, parse_decimal_price, parse_json_number_price};
pub use order::{
    CheckoutRejection, IdempotencyKey, JobId, MovementKind, OrderId, OrderLines, OrderRef,
    OrderStatus, Quantity, Reason,
};
pub use time::Timestamp;
pub use user::{Email, KeyName, Password, Role, Scope, UserId, Username};
pub use variant::{Barcode, GroupHandle, Options, TaxClass, WeightGrams};

/// Why a value was refused. The caller attaches the field name it came from.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidValue(pub String);

impl InvalidValue {
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

/// Trims `raw` and checks its length in characters and that it holds no control
/// characters; shared by every free-text newtype.
fn bounded_text(raw: &str, min: usize, max: usize) -> Result<String, InvalidValue> {
    let trimmed = raw.trim();
    let chars = trimmed.chars().count();
    if chars < min {
        return Err(if min == 1 {
            InvalidValue::new("must not be empty")
        } else {
            InvalidValue::new(format!("must be at least {min} characters"))
        });
    }
    if chars > max {
        return Err(InvalidValue::new(format!(
            "must be at most {max} characters (got {chars})"
        )));
    }
    if trimmed
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err(InvalidValue::new("must not contain control characters"));
    }
    Ok(trimmed.to_owned())
}

#[cfg(test)]
mod deserialize_tests {
    use super::*;

    /// Newtypes are built only through their parsers, by serde too: a stored or
    /// sent value that breaks a bound is refused, not smuggled in.
    #[test]
    fn deserializing_goes_through_the_parser() {
        assert!(serde_json::from_str::<Sku>("\"bad sku\"").is_err());
        assert!(serde_json::from_str::<Sku>("\"GOOD-1\"").is_ok());
        assert!(serde_json::from_str::<ProductName>("\"   \"").is_err());
        assert!(serde_json::from_str::<Cents>("0").is_err());
        assert!(serde_json::from_str::<Quantity>("1001").is_err());
        assert!(serde_json::from_str::<StockLevel>("1000000001").is_err());
        assert!(serde_json::from_str::<Email>("\"no-at-sign\"").is_err());
        let bytes = postcard::to_allocvec("not a sku!").unwrap();
        assert!(postcard::from_bytes::<Sku>(&bytes).is_err());
        let good = postcard::to_allocvec(&Sku::parse("P-1").unwrap()).unwrap();
        assert_eq!(postcard::from_bytes::<Sku>(&good).unwrap().as_str(), "P-1");
    }
}
