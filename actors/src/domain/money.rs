//! Money: integer minor units and the store's one currency; never a float.
//!
//! `parse_decimal_price` reads the notations suppliers actually send (`1234.56`,
//! `1,234.56`, `1234,56`, `1.234,56`, `€12.50`, `12.50 EUR`, JSON numbers such as
//! `120.50` or `1.2e2`) by working on the decimal digits themselves, so no value is
//! ever rounded through binary floating point. A notation that could mean two
//! amounts (`1,234`: one thousand or one point two?) is refused rather than guessed.

use serde::{Deserialize, Serialize};

use super::InvalidValue;
use crate::limits::PRICE_CENTS_MAX;

/// A unit price in minor units: 1 – 10^11.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "u64")]
pub struct Cents(u64);

impl Cents {
    pub fn new(minor_units: i64) -> Result<Self, InvalidValue> {
        let minor_units = u64::try_from(minor_units)
            .ok()
            .filter(|&u| u > 0)
            .ok_or_else(|| InvalidValue::new("must be greater than 0"))?;
        if minor_units > PRICE_CENTS_MAX {
            return Err(InvalidValue::new(format!(
                "must be at most {PRICE_CENTS_MAX}"
            )));
        }
        Ok(Self(minor_units))
    }
    pub fn get(self) -> u64 {
        self.0
    }
}

/// An ISO 4217 currency code with its number of minor digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Currency {
    code: [u8; 3],
    minor_digits: u8,
}

impl Currency {
    pub const EUR: Self = Self {
        code: *b"EUR",
        minor_digits: 2,
    };

    /// Parses a three-letter upper-case code. Currencies without minor units (JPY,
    /// KRW, ...) or with three (BHD, KWD, ...) get the right exponent; every other
    /// code has two.
    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        let bytes = raw.as_bytes();
        if bytes.len() != 3 || !bytes.iter().all(u8::is_ascii_uppercase) {
            return Err(InvalidValue::new(
                "must be a three-letter ISO 4217 code such as EUR",
            ));
        }
        let code = [bytes[0], bytes[1], bytes[2]];
        let minor_digits = match raw {
            "BIF" | "CLP" | "DJF" | "GNF" | "ISK" | "JPY" | "KMF" | "KRW" | "PYG" | "RWF"
            | "UGX" | "VND" | "VUV" | "XAF" | "XOF" | "XPF" => 0,
            "BHD" | "IQD" | "JOD" | "KWD" | "LYD" | "OMR" | "TND" => 3,
            _ => 2,
        };
        Ok(Self { code, minor_digits })
    }

    pub fn code(&self) -> &str {
        // The constructor admits ASCII upper-case letters only.
        std::str::from_utf8(&self.code).expect("currency code is ASCII")
    }

    pub fn minor_digits(&self) -> u8 {
        self.minor_digits
    }
}

impl std::fmt::Display for Currency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code())
    }
}

/// Why an import price was refused; the `Display` text is the reject reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PriceError {
    #[error("price is empty")]
    Empty,
    #[error("price '{0}' is not a number")]
    NotANumber(String),
    #[error("price '{0}' is ambiguous: write 1234 or 1234.00 (or 1.234,00)")]
    Ambiguous(String),
    #[error("price '{raw}' has more than {digits} decimal places")]
    TooPrecise { raw: String, digits: u8 },
    #[error("price must be greater than 0 (got {0})")]
    NotPositive(String),
    #[error("price '{0}' is above the maximum")]
    TooLarge(String),
    #[error("currency {found} is not the store currency {store}")]
    ForeignCurrency { found: String, store: String },
}

/// Parses a price written for people into minor units of `store` currency.
pub fn parse_decimal_price(raw: &str, store: Currency) -> Result<Cents, PriceError> {
    let text = raw.trim();
    if text.is_empty() {
        return Err(PriceError::Empty);
    }
    let (number, currency) = split_currency(text);
    if let Some(found) = currency
        && found != store.code()
    {
        return Err(PriceError::ForeignCurrency {
            found: found.to_owned(),
            store: store.code().to_owned(),
        });
    }
    let (negative, unsigned) = split_sign(number.trim());
    let (int_digits, frac_digits) = split_decimal(unsigned, text)?;
    to_minor_units(text, negative, &int_digits, &frac_digits, store)
}

/// Parses the literal text of a JSON number (`120.50`, `1.2e2`) into minor units.
/// In JSON the `.` is always the decimal point, so nothing here is ambiguous.
pub fn parse_json_number_price(literal: &str, store: Currency) -> Result<Cents, PriceError> {
    let text = literal.trim();
    let (negative, unsigned) = split_sign(text);
    let nan = || PriceError::NotANumber(text.to_owned());
    let (mantissa, exponent) = match unsigned.find(['e', 'E']) {
        Some(pos) => (&unsigned[..pos], &unsigned[pos + 1..]),
        None => (unsigned, "0"),
    };
    let (int_digits, frac_digits) = shift_decimal(mantissa, exponent).ok_or_else(nan)?;
    to_minor_units(text, negative, &int_digits, &frac_digits, store)
}

fn split_sign(number: &str) -> (bool, &str) {
    match number.as_bytes().first() {
        Some(b'-') => (true, number[1..].trim_start()),
        Some(b'+') => (false, number[1..].trim_start()),
        _ => (false, number),
    }
}

/// Turns validated digit strings into minor units, refusing excess precision,
/// overflow, zero and negatives.
fn to_minor_units(
    text: &str,
    negative: bool,
    int_digits: &str,
    frac_digits: &str,
    store: Currency,
) -> Result<Cents, PriceError> {
    let digits = store.minor_digits() as usize;
    let frac_significant = frac_digits.trim_end_matches('0');
    if frac_significant.len() > digits {
        return Err(PriceError::TooPrecise {
            raw: text.to_owned(),
            digits: store.minor_digits(),
        });
    }
    let too_large = || PriceError::TooLarge(text.to_owned());
    let mut minor: u64 = 0;
    let frac = frac_significant
        .bytes()
        .chain(std::iter::repeat(b'0'))
        .take(digits);
    for b in int_digits.bytes().chain(frac) {
        minor = minor
            .checked_mul(10)
            .and_then(|m| m.checked_add(u64::from(b - b'0')))
            .ok_or_else(too_large)?;
    }
    if negative || minor == 0 {
        return Err(PriceError::NotPositive(text.to_owned()));
    }
    if minor > PRICE_CENTS_MAX {
        return Err(too_large());
    }
    Ok(Cents(minor))
}

/// Separates a leading or trailing currency marker (symbol or ISO code) from the number.
fn split_currency(text: &str) -> (&str, Option<&str>) {
    const SYMBOLS: [(&str, &str); 4] = [("€", "EUR"), ("$", "USD"), ("£", "GBP"), ("¥", "JPY")];
    for (symbol, code) in SYMBOLS {
        if let Some(rest) = text.strip_prefix(symbol) {
            return (rest, Some(code));
        }
        if let Some(rest) = text.strip_suffix(symbol) {
            return (rest, Some(code));
        }
    }
    let is_code = |s: &str| s.len() == 3 && s.bytes().all(|b| b.is_ascii_uppercase());
    if text.len() > 3 {
        if text.is_char_boundary(3) && is_code(&text[..3]) {
            return (&text[3..], Some(&text[..3]));
        }
        let cut = text.len() - 3;
        if text.is_char_boundary(cut) && is_code(&text[cut..]) {
            return (&text[..cut], Some(&text[cut..]));
        }
    }
    (text, None)
}

/// Splits an unsigned amount into integer and fraction digits, deciding which of `,`
/// and `.` is the decimal separator.
fn split_decimal(s: &str, whole: &str) -> Result<(String, String), PriceError> {
    let nan = || PriceError::NotANumber(whole.to_owned());
    if s.is_empty() {
        return Err(nan());
    }
    if !s
        .bytes()
        .all(|b| b.is_ascii_digit() || b == b',' || b == b'.')
    {
        return Err(nan());
    }
    let commas = s.matches(',').count();
    let dots = s.matches('.').count();
    let (decimal, thousands) = match (commas, dots) {
        (0, 0) => (None, None),
        (_, 0) if commas > 1 => (None, Some(',')),
        (0, _) if dots > 1 => (None, Some('.')),
        (1, 0) | (0, 1) => {
            let sep = if commas == 1 { ',' } else { '.' };
            let after = s.len() - s.find(sep).expect("counted") - 1;
            if after == 3 && !s.starts_with(sep) {
                return Err(PriceError::Ambiguous(whole.to_owned()));
            }
            (Some(sep), None)
        }
        _ => {
            let last_comma = s.rfind(',').expect("counted");
            let last_dot = s.rfind('.').expect("counted");
            if last_comma > last_dot {
                if commas > 1 {
                    return Err(nan());
                }
                (Some(','), Some('.'))
            } else {
                if dots > 1 {
                    return Err(nan());
                }
                (Some('.'), Some(','))
            }
        }
    };
    let (int_part, frac_part) = match decimal {
        Some(sep) => s.split_once(sep).expect("separator present"),
        None => (s, ""),
    };
    let int_digits = match thousands {
        Some(sep) => {
            let groups: Vec<&str> = int_part.split(sep).collect();
            let first_ok = (1..=3).contains(&groups[0].len());
            if !first_ok || groups[1..].iter().any(|g| g.len() != 3) {
                return Err(nan());
            }
            groups.concat()
        }
        None => int_part.to_owned(),
    };
    if !frac_part.bytes().all(|b| b.is_ascii_digit())
        || !int_digits.bytes().all(|b| b.is_ascii_digit())
        || (int_digits.is_empty() && frac_part.is_empty())
    {
        return Err(nan());
    }
    Ok((int_digits, frac_part.to_owned()))
}

/// `mantissa` × 10^`exponent` as integer and fraction digit strings, without floats.
fn shift_decimal(mantissa: &str, exponent: &str) -> Option<(String, String)> {
    let exp: i32 = exponent.parse().ok().filter(|e: &i32| e.abs() <= 30)?;
    let (int_part, frac_part) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if int_part.is_empty()
        || !int_part.bytes().all(|b| b.is_ascii_digit())
        || !frac_part.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let digits = format!("{int_part}{frac_part}");
    // Where the decimal point falls in `digits`; the exponent is bounded by the
    // caller and numbers by the row limit, so this fits an i64.
    let point = i64::try_from(int_part.len()).ok()? + i64::from(exp);
    match usize::try_from(point) {
        Err(_) | Ok(0) => Some((
            "0".to_owned(),
            format!("{}{digits}", "0".repeat(usize::try_from(-point).ok()?)),
        )),
        Ok(at) if at >= digits.len() => Some((
            format!("{digits}{}", "0".repeat(at - digits.len())),
            String::new(),
        )),
        Ok(at) => {
            let (i, f) = digits.split_at(at);
            Some((i.to_owned(), f.to_owned()))
        }
    }
}

impl TryFrom<u64> for Cents {
    type Error = InvalidValue;
    fn try_from(raw: u64) -> Result<Self, InvalidValue> {
        Self::new(i64::try_from(raw).map_err(|_| InvalidValue::new("is too large"))?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eur(s: &str) -> Result<u64, PriceError> {
        parse_decimal_price(s, Currency::EUR).map(Cents::get)
    }

    #[test]
    fn accepts_every_contract_notation() {
        assert_eq!(eur("1234.56"), Ok(123_456));
        assert_eq!(eur("1,234.56"), Ok(123_456));
        assert_eq!(eur("1234,56"), Ok(123_456));
        assert_eq!(eur("1.234,56"), Ok(123_456));
        assert_eq!(eur("€12.50"), Ok(1_250));
        assert_eq!(eur("12.50 EUR"), Ok(1_250));
        assert_eq!(eur("EUR 12.50"), Ok(1_250));
        assert_eq!(eur("12.50€"), Ok(1_250));
        assert_eq!(eur("1,234,567.8"), Ok(123_456_780));
        assert_eq!(eur("7"), Ok(700));
        assert_eq!(eur(".5"), Ok(50));
        assert_eq!(eur("0,99"), Ok(99));
    }

    #[test]
    fn json_numbers_are_exact() {
        let json = |s: &str| parse_json_number_price(s, Currency::EUR).map(Cents::get);
        assert_eq!(json("120.50"), Ok(12_050));
        assert_eq!(json("120.5"), Ok(12_050));
        assert_eq!(json("450.00"), Ok(45_000));
        assert_eq!(json("0.1"), Ok(10));
        assert_eq!(json("100.000"), Ok(10_000));
        assert_eq!(json("1.2e2"), Ok(12_000));
        assert_eq!(json("125E-2"), Ok(125));
        assert_eq!(
            json("1e-3"),
            Err(PriceError::TooPrecise {
                raw: "1e-3".into(),
                digits: 2
            })
        );
        assert_eq!(
            json("-10.00"),
            Err(PriceError::NotPositive("-10.00".into()))
        );
        assert!(json("1e400").is_err());
        assert!(json("").is_err());
        assert!(json("1.").is_ok());
    }

    #[test]
    fn refuses_what_it_cannot_read_exactly() {
        assert_eq!(eur("-10.00"), Err(PriceError::NotPositive("-10.00".into())));
        assert_eq!(eur("0"), Err(PriceError::NotPositive("0".into())));
        assert_eq!(eur("0.00"), Err(PriceError::NotPositive("0.00".into())));
        assert!(matches!(eur("1,234"), Err(PriceError::Ambiguous(_))));
        assert!(matches!(eur("1.234"), Err(PriceError::Ambiguous(_))));
        assert!(matches!(eur("12.345"), Err(PriceError::Ambiguous(_))));
        assert!(matches!(eur("12.3456"), Err(PriceError::TooPrecise { .. })));
        assert_eq!(eur("12.5000"), Ok(1_250));
        assert!(matches!(
            eur("12.50 USD"),
            Err(PriceError::ForeignCurrency { .. })
        ));
        assert!(matches!(eur("$3"), Err(PriceError::ForeignCurrency { .. })));
        for bad in [
            "abc",
            "1..2",
            "1,2,3.4.5",
            "12,34,567.00",
            "1 2",
            "",
            "€",
            "1.2.3,4,5",
        ] {
            assert!(eur(bad).is_err(), "{bad}");
        }
        assert_eq!(eur("1000000000.00"), Ok(100_000_000_000));
        assert!(matches!(eur("1000000000.01"), Err(PriceError::TooLarge(_))));
        assert!(matches!(
            eur("99999999999999999999999"),
            Err(PriceError::TooLarge(_))
        ));
    }

    #[test]
    fn currency_exponents() {
        let jpy = Currency::parse("JPY").unwrap();
        assert_eq!(parse_decimal_price("1200", jpy).unwrap().get(), 1200);
        assert!(parse_decimal_price("12.5", jpy).is_err());
        assert!(Currency::parse("eur").is_err());
        assert!(Currency::parse("EURO").is_err());
    }

    #[test]
    fn cents_bounds() {
        assert!(Cents::new(0).is_err());
        assert!(Cents::new(1).is_ok());
        assert!(Cents::new(100_000_000_000).is_ok());
        assert!(Cents::new(100_000_000_001).is_err());
        assert!(Cents::new(-5).is_err());
    }
}
