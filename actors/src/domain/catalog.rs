use serde::{Deserialize, Serialize};

use super::{InvalidValue, bounded_text};
use crate::limits::{
    CATEGORY_CHARS_MAX, CATEGORY_LEVELS_MAX, CATEGORY_PATH_CHARS_MAX, DESCRIPTION_CHARS_MAX,
    PRODUCT_NAME_CHARS_MAX, SKU_CHARS_MAX, STOCK_UNITS_MAX,
};

/// A stock-keeping unit: 1–64 of `[A-Za-z0-9._-]`, compared exactly.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String")]
pub struct Sku(String);

impl Sku {
    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        if raw.is_empty() {
            return Err(InvalidValue::new("must not be empty"));
        }
        if raw.len() > SKU_CHARS_MAX {
            return Err(InvalidValue::new(format!(
                "must be at most {SKU_CHARS_MAX} characters"
            )));
        }
        if !raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        {
            return Err(InvalidValue::new(
                "may only contain A-Z, a-z, 0-9, '.', '_' and '-'",
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Sku {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A product name: 1–200 characters after trimming.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String")]
pub struct ProductName(String);

impl ProductName {
    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        bounded_text(raw, 1, PRODUCT_NAME_CHARS_MAX).map(Self)
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name as lists sort and search it: case folded ([`fold_case`]).
    pub fn key(&self) -> String {
        fold_case(self.as_str())
    }
}

/// A category: a path of 1–5 levels separated by ` > ` (the Google product
/// taxonomy's separator), each level 1–64 characters after trimming, e.g.
/// `Apparel > Men > T-Shirts`; `uncategorized` when absent. A one-level category
/// is a one-level path. Compared without regard to case ([`Self::key`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String")]
pub struct Category(String);

impl Category {
    pub const DEFAULT: &'static str = "uncategorized";

    /// The path `raw` names, each level trimmed and joined by ` > ` (`a>b` is
    /// `a > b`).
    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        let levels = raw
            .split('>')
            .map(|level| bounded_text(level, 1, CATEGORY_CHARS_MAX))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| {
                InvalidValue::new(format!(
                    "each level of the path {e} (levels are separated by ' > ')"
                ))
            })?;
        if levels.len() > CATEGORY_LEVELS_MAX {
            return Err(InvalidValue::new(format!(
                "must have at most {CATEGORY_LEVELS_MAX} levels"
            )));
        }
        let path = levels.join(" > ");
        debug_assert!(path.chars().count() <= CATEGORY_PATH_CHARS_MAX);
        Ok(Self(path))
    }

    /// A category as a record stored it, kept exactly: an earlier release took
    /// any text as a one-level category, and its counts are keyed by that text.
    pub fn stored(raw: String) -> Self {
        Self(raw)
    }

    /// Whether this category is `ancestor_key` (a [`Self::key`]) or lies below it.
    pub fn is_within(&self, ancestor_key: &str) -> bool {
        let key = self.key();
        key == ancestor_key
            || key
                .strip_prefix(ancestor_key)
                .is_some_and(|rest| rest.starts_with(" > "))
    }

    pub fn uncategorized() -> Self {
        Self(Self::DEFAULT.to_owned())
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The category as filters compare it: case folded ([`fold_case`]).
    pub fn key(&self) -> String {
        fold_case(self.as_str())
    }
}

/// A product description: up to 4,000 characters after trimming (may be empty).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String")]
pub struct Description(String);

impl Description {
    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        bounded_text(raw, 0, DESCRIPTION_CHARS_MAX).map(Self)
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An absolute stock level: 0 – 10^9 units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "u64")]
pub struct StockLevel(u64);

impl StockLevel {
    pub const ZERO: Self = Self(0);

    pub fn new(units: i64) -> Result<Self, InvalidValue> {
        let units = u64::try_from(units).map_err(|_| InvalidValue::new("must not be negative"))?;
        if units > STOCK_UNITS_MAX {
            return Err(InvalidValue::new(format!(
                "must be at most {STOCK_UNITS_MAX}"
            )));
        }
        Ok(Self(units))
    }
    pub fn get(self) -> u64 {
        self.0
    }
}

/// A signed change of stock: non-zero, at most 10^9 units either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "i64")]
pub struct StockDelta(i64);

impl StockDelta {
    pub fn new(units: i64) -> Result<Self, InvalidValue> {
        if units == 0 {
            return Err(InvalidValue::new("must not be zero"));
        }
        if units.unsigned_abs() > STOCK_UNITS_MAX {
            return Err(InvalidValue::new(format!(
                "must be between -{STOCK_UNITS_MAX} and {STOCK_UNITS_MAX}"
            )));
        }
        Ok(Self(units))
    }
    pub fn get(self) -> i64 {
        self.0
    }
}

impl TryFrom<String> for Sku {
    type Error = InvalidValue;
    fn try_from(raw: String) -> Result<Self, InvalidValue> {
        Self::parse(&raw)
    }
}

impl TryFrom<String> for ProductName {
    type Error = InvalidValue;
    fn try_from(raw: String) -> Result<Self, InvalidValue> {
        Self::parse(&raw)
    }
}

/// Records only (the API and the files go through [`Category::parse`]).
impl TryFrom<String> for Category {
    type Error = InvalidValue;
    fn try_from(raw: String) -> Result<Self, InvalidValue> {
        Ok(Self::stored(raw))
    }
}

impl TryFrom<String> for Description {
    type Error = InvalidValue;
    fn try_from(raw: String) -> Result<Self, InvalidValue> {
        Self::parse(&raw)
    }
}

impl TryFrom<u64> for StockLevel {
    type Error = InvalidValue;
    fn try_from(raw: u64) -> Result<Self, InvalidValue> {
        Self::new(i64::try_from(raw).map_err(|_| InvalidValue::new("is too large"))?)
    }
}

impl TryFrom<i64> for StockDelta {
    type Error = InvalidValue;
    fn try_from(raw: i64) -> Result<Self, InvalidValue> {
        Self::new(raw)
    }
}

/// Text as names and categories are compared without regard to case: one rule
/// for the catalog's listing, its filters, PostgreSQL's key columns and the API's
/// query parameters.
pub fn fold_case(text: &str) -> String {
    text.to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sku_bounds() {
        assert!(Sku::parse("").is_err());
        assert!(Sku::parse("A").is_ok());
        assert!(Sku::parse(&"a".repeat(64)).is_ok());
        assert!(Sku::parse(&"a".repeat(65)).is_err());
        assert!(Sku::parse("AB-12_x.9").is_ok());
        for bad in ["a b", "a/b", "../x", "a'b", "é", "a;DROP"] {
            assert!(Sku::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn name_bounds_count_characters_after_trimming() {
        assert!(ProductName::parse("   ").is_err());
        assert_eq!(ProductName::parse("  x ").unwrap().as_str(), "x");
        assert!(ProductName::parse(&"é".repeat(200)).is_ok());
        assert!(ProductName::parse(&"é".repeat(201)).is_err());
        assert!(ProductName::parse("a\u{0}b").is_err());
    }

    #[test]
    fn category_and_description_bounds() {
        assert!(Category::parse(&"c".repeat(64)).is_ok());
        assert!(Category::parse(&"c".repeat(65)).is_err());
        assert!(Category::parse("").is_err());
        assert!(Description::parse("").is_ok());
        assert!(Description::parse(&"d".repeat(4000)).is_ok());
        assert!(Description::parse(&"d".repeat(4001)).is_err());
    }

    #[test]
    fn stock_bounds() {
        assert!(StockLevel::new(-1).is_err());
        assert_eq!(StockLevel::new(0).unwrap().get(), 0);
        assert!(StockLevel::new(1_000_000_000).is_ok());
        assert!(StockLevel::new(1_000_000_001).is_err());
        assert!(StockDelta::new(0).is_err());
        assert!(StockDelta::new(-1_000_000_000).is_ok());
        assert!(StockDelta::new(-1_000_000_001).is_err());
        assert!(StockDelta::new(1_000_000_001).is_err());
        assert!(StockDelta::new(i64::MIN).is_err());
    }
}

#[cfg(test)]
mod category_tests {
    use super::*;

    #[test]
    fn a_category_is_a_path_of_up_to_five_levels() {
        let c = Category::parse(" Apparel>Men >  T-Shirts ").unwrap();
        assert_eq!(c.as_str(), "Apparel > Men > T-Shirts");
        assert_eq!(c.key(), "apparel > men > t-shirts");
        assert_eq!(Category::parse("Kitchen").unwrap().as_str(), "Kitchen");
        for bad in ["", " ", "A >  > B", "A >", "> A", "a>b>c>d>e>f"] {
            assert!(Category::parse(bad).is_err(), "{bad:?}");
        }
        let longest = vec!["x".repeat(64); 5].join(" > ");
        assert_eq!(longest.chars().count(), CATEGORY_PATH_CHARS_MAX);
        assert!(Category::parse(&longest).is_ok());
        assert!(Category::parse(&"x".repeat(65)).is_err(), "a level over 64");
    }

    #[test]
    fn within_means_the_category_or_below_it_by_whole_levels() {
        let c = Category::parse("Apparel > Men > T-Shirts").unwrap();
        for ancestor in ["apparel", "apparel > men", "apparel > men > t-shirts"] {
            assert!(c.is_within(ancestor), "{ancestor}");
        }
        for other in [
            "apparel > m",
            "app",
            "apparel > men > t",
            "men",
            "apparel > women",
        ] {
            assert!(!c.is_within(other), "{other}");
        }
    }

    /// A record of an earlier release keeps its category text exactly (its
    /// counts are keyed by it), even one the path rules would now refuse.
    #[test]
    fn a_stored_category_reads_back_as_it_was_written() {
        for raw in ["a>b", ">x", "Kitchen"] {
            let c: Category = serde_json::from_value(serde_json::json!(raw)).unwrap();
            assert_eq!(c.as_str(), raw);
        }
    }
}
