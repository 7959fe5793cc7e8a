//! What contract §7 adds to a product: the variant group it belongs to and its
//! option values, its weight, its tax class and its barcode. Each is parsed here
//! once, for the API and the import files alike.

use serde::{Deserialize, Serialize};

use super::{InvalidValue, bounded_text, fold_case};
use crate::limits::{
    BARCODE_DIGITS_MAX, BARCODE_DIGITS_MIN, GROUP_HANDLE_CHARS_MAX, OPTION_NAME_CHARS_MAX,
    OPTION_VALUE_CHARS_MAX, OPTIONS_MAX, TAX_CLASS_CHARS_MAX, WEIGHT_GRAMS_MAX,
};

/// A lowercase identifier: 1–`max` of `[a-z0-9]` and `extra`.
fn identifier(raw: &str, max: usize, extra: &[u8], allowed: &str) -> Result<String, InvalidValue> {
    if raw.is_empty() || raw.len() > max {
        return Err(InvalidValue::new(format!("must be 1 to {max} characters")));
    }
    if !raw
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || extra.contains(&b))
    {
        return Err(InvalidValue::new(format!("may only contain {allowed}")));
    }
    Ok(raw.to_owned())
}

/// The handle of a variant group (a T-shirt in sizes and colours): 1–64 of
/// `[a-z0-9-]`, Shopify's product handle and Google Merchant's `item_group_id`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String")]
pub struct GroupHandle(String);

impl GroupHandle {
    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        identifier(raw, GROUP_HANDLE_CHARS_MAX, b"-", "a-z, 0-9 and '-'").map(Self)
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for GroupHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for GroupHandle {
    type Error = InvalidValue;
    fn try_from(raw: String) -> Result<Self, InvalidValue> {
        Self::parse(&raw)
    }
}

/// A product's option values within its group: 0–3 pairs of a name (1–32
/// characters) and a value (1–64), names distinct without regard to case, kept
/// in the order given.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Options(Vec<(String, String)>);

impl Options {
    pub fn parse<'a>(
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, InvalidValue> {
        let mut out: Vec<(String, String)> = Vec::new();
        for (name, value) in pairs {
            let name = bounded_text(name, 1, OPTION_NAME_CHARS_MAX)
                .map_err(|e| InvalidValue::new(format!("option name {e}")))?;
            let value = bounded_text(value, 1, OPTION_VALUE_CHARS_MAX)
                .map_err(|e| InvalidValue::new(format!("option {name:?} {e}")))?;
            if out.iter().any(|(n, _)| fold_case(n) == fold_case(&name)) {
                return Err(InvalidValue::new(format!("option {name:?} is given twice")));
            }
            out.push((name, value));
            if out.len() > OPTIONS_MAX {
                return Err(InvalidValue::new(format!("at most {OPTIONS_MAX} options")));
            }
        }
        Ok(Self(out))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// The option names, case folded and sorted: every product of a group has
    /// the same.
    pub fn names_key(&self) -> Vec<String> {
        let mut names: Vec<String> = self.0.iter().map(|(n, _)| fold_case(n)).collect();
        names.sort();
        names
    }

    /// The values by folded name, sorted by name: two variants of one group with
    /// the same key are the same variant.
    pub fn values_key(&self) -> Vec<(String, String)> {
        let mut pairs: Vec<(String, String)> = self
            .0
            .iter()
            .map(|(n, v)| (fold_case(n), fold_case(v)))
            .collect();
        pairs.sort();
        pairs
    }
}

/// A product's weight in grams: 0 – 10^7 (shipping rates use it).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(try_from = "u64")]
pub struct WeightGrams(u64);

impl WeightGrams {
    pub fn new(grams: i64) -> Result<Self, InvalidValue> {
        match u64::try_from(grams) {
            Ok(g) if g <= WEIGHT_GRAMS_MAX => Ok(Self(g)),
            _ => Err(InvalidValue::new(format!(
                "must be 0 to {WEIGHT_GRAMS_MAX} grams"
            ))),
        }
    }
    pub fn get(self) -> u64 {
        self.0
    }
}

impl TryFrom<u64> for WeightGrams {
    type Error = InvalidValue;
    fn try_from(g: u64) -> Result<Self, InvalidValue> {
        Self::new(i64::try_from(g).unwrap_or(i64::MAX))
    }
}

/// Which tax rates apply to a product: 1–32 of `[a-z0-9_-]`, `standard` by
/// default. The default is kept as nothing at all (every product row carries a
/// tax class, and most are `standard`: no allocation, one byte in the record).
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TaxClass(Option<String>);

impl TaxClass {
    pub const DEFAULT: &'static str = "standard";

    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        let class = identifier(raw, TAX_CLASS_CHARS_MAX, b"_-", "a-z, 0-9, '_' and '-'")?;
        Ok(Self((class != Self::DEFAULT).then_some(class)))
    }
    pub fn as_str(&self) -> &str {
        self.0.as_deref().unwrap_or(Self::DEFAULT)
    }
}

/// A barcode: a GTIN of 8 to 14 digits whose last digit is its GS1 check digit.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String")]
pub struct Barcode(String);

impl Barcode {
    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        let digits = raw.len();
        if !(BARCODE_DIGITS_MIN..=BARCODE_DIGITS_MAX).contains(&digits)
            || !raw.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(InvalidValue::new(format!(
                "must be {BARCODE_DIGITS_MIN} to {BARCODE_DIGITS_MAX} digits (a GTIN)"
            )));
        }
        let (body, check) = raw.split_at(digits - 1);
        if gs1_check_digit(body) != check.as_bytes()[0] - b'0' {
            return Err(InvalidValue::new("check digit does not match (not a GTIN)"));
        }
        Ok(Self(raw.to_owned()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Barcode {
    type Error = InvalidValue;
    fn try_from(raw: String) -> Result<Self, InvalidValue> {
        Self::parse(&raw)
    }
}

/// GS1's check digit of `body` (the digits before it): from the right, weights
/// 3, 1, 3, 1, …; the digit that brings the sum to a multiple of ten.
fn gs1_check_digit(body: &str) -> u8 {
    let sum: u32 = body
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| u32::from(b - b'0') * if i % 2 == 0 { 3 } else { 1 })
        .sum();
    u8::try_from((10 - sum % 10) % 10).expect("a digit")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Worked cases of the GS1 check digit (EAN-8, UPC-A, EAN-13, GTIN-14),
    /// each also refused with its last digit changed.
    #[test]
    fn barcodes_are_gtins_with_their_check_digit() {
        for good in [
            "96385074",       // EAN-8: 9·3+6+3·3+8+5·3+0+7·3 = 86 → 4
            "036000291452",   // UPC-A
            "4006381333931",  // EAN-13
            "5901234123457",  // EAN-13, GS1's example
            "10614141000415", // GTIN-14
            "00000000",       // all zeros: sum 0 → 0
        ] {
            assert!(Barcode::parse(good).is_ok(), "{good}");
            let mut bad = good.as_bytes().to_vec();
            let last = bad.len() - 1;
            bad[last] = b'0' + (bad[last] - b'0' + 1) % 10;
            let bad = String::from_utf8(bad).unwrap();
            assert!(Barcode::parse(&bad).is_err(), "{bad}");
        }
        for refused in [
            "1234567",
            "123456789012345",
            "3.65275E+11",
            "40063813339 3",
            "",
        ] {
            assert!(Barcode::parse(refused).is_err(), "{refused:?}");
        }
    }

    #[test]
    fn handles_tax_classes_weights_and_options_keep_their_bounds() {
        assert!(GroupHandle::parse("classic-tee-2").is_ok());
        for bad in ["", "Classic", "tee shirt", "tee_shirt", &"a".repeat(65)] {
            assert!(GroupHandle::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(TaxClass::default().as_str(), "standard");
        assert_eq!(TaxClass::parse("standard").unwrap(), TaxClass::default());
        assert!(TaxClass::parse("reduced_7").is_ok());
        assert!(TaxClass::parse("Reduced").is_err());
        assert!(WeightGrams::new(10_000_000).is_ok());
        assert!(WeightGrams::new(10_000_001).is_err());
        assert!(WeightGrams::new(-1).is_err());
        let o = Options::parse([("Size", "M"), ("Color", "Black")]).unwrap();
        assert_eq!(o.names_key(), ["color", "size"]);
        assert_eq!(
            o.values_key(),
            [
                ("color".into(), "black".into()),
                ("size".into(), "m".into())
            ]
        );
        assert!(Options::parse([("Size", "M"), ("size", "L")]).is_err());
        assert!(Options::parse([("a", "1"), ("b", "2"), ("c", "3"), ("d", "4")]).is_err());
        assert!(Options::parse([("Size", "")]).is_err());
        assert!(Options::parse([("", "M")]).is_err());
    }
}
