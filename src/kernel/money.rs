//! Exact money: amounts are kept in minor units (cents) and shown in JSON as a
//! decimal number with at most two places (`19.99`). Binary floats never hold a
//! price; they appear only at the JSON boundary, where a shortest-round-trip
//! decimal rendering makes the conversion exact for every two-place amount.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer, de};

use super::decimal::{Decimal, DecimalError};

/// Largest accepted amount: 1 000 000 000.00, far below where an f64 loses cents.
const MAX_CENTS: i64 = 100_000_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Money(i64);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("must be a number")]
    NotANumber,
    #[error("must not be negative")]
    Negative,
    #[error("must have at most two decimal places")]
    TooPrecise,
    #[error("must be at most 1000000000")]
    TooLarge,
}

impl Money {
    pub const ZERO: Money = Money(0);

    pub fn from_cents(cents: i64) -> Self {
        Money(cents)
    }

    pub fn cents(self) -> i64 {
        self.0
    }

    /// Parses a decimal exactly as written, such as `19.99`, `20`, `0.5` or `1e3`.
    pub fn parse(text: &str) -> Result<Self, MoneyError> {
        let decimal = Decimal::parse(text).map_err(|_| MoneyError::NotANumber)?;
        if decimal.is_negative() {
            return Err(MoneyError::Negative);
        }
        match decimal.scaled(2) {
            Ok(cents) if cents <= MAX_CENTS => Ok(Money(cents)),
            Ok(_) | Err(DecimalError::TooLarge) => Err(MoneyError::TooLarge),
            Err(DecimalError::TooPrecise) => Err(MoneyError::TooPrecise),
            Err(DecimalError::NotANumber) => Err(MoneyError::NotANumber),
        }
    }

    /// Converts a float that stands for a two-place amount: the one whose
    /// shortest decimal rendering has at most two places, which is exactly what
    /// the writer meant for any amount up to `MAX_CENTS`. Such a float is the
    /// nearest one to `cents / 100` (a correctly rounded division), so the check
    /// needs no rendering.
    pub fn from_f64(value: f64) -> Result<Self, MoneyError> {
        if !value.is_finite() {
            return Err(MoneyError::NotANumber);
        }
        if value < 0.0 {
            return Err(MoneyError::Negative);
        }
        if value > (MAX_CENTS / 100) as f64 {
            return Err(MoneyError::TooLarge);
        }
        let cents = (value * 100.0).round();
        if cents / 100.0 != value {
            return Err(MoneyError::TooPrecise);
        }
        Ok(Money(cents as i64))
    }

    pub fn times(self, quantity: u32) -> Money {
        Money(self.0 * i64::from(quantity))
    }

    fn as_f64(self) -> f64 {
        // Exact for |cents| < 2^53: the division is correctly rounded, and the
        // shortest rendering of the result is the two-place decimal.
        self.0 as f64 / 100.0
    }
}

impl std::ops::Add for Money {
    type Output = Money;
    fn add(self, rhs: Money) -> Money {
        Money(self.0 + rhs.0)
    }
}

impl std::iter::Sum for Money {
    fn sum<I: Iterator<Item = Money>>(iter: I) -> Money {
        iter.fold(Money::ZERO, |a, b| a + b)
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:02}", self.0 / 100, self.0 % 100)
    }
}

impl Serialize for Money {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // Whole amounts print as integers (`20`, not `20.0`).
        if self.0 % 100 == 0 { serializer.serialize_i64(self.0 / 100) } else { serializer.serialize_f64(self.as_f64()) }
    }
}

impl<'de> Deserialize<'de> for Money {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl de::Visitor<'_> for Visitor {
            type Value = Money;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a non-negative amount with at most two decimal places")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Money, E> {
                if v > (MAX_CENTS / 100) as u64 {
                    return Err(E::custom(MoneyError::TooLarge));
                }
                Ok(Money(v as i64 * 100))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Money, E> {
                if v < 0 {
                    return Err(E::custom(MoneyError::Negative));
                }
                self.visit_u64(v as u64)
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Money, E> {
                Money::from_f64(v).map_err(E::custom)
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_two_place_decimals_exactly() {
        assert_eq!(Money::parse("19.99"), Ok(Money(1999)));
        assert_eq!(Money::parse("0.1"), Ok(Money(10)));
        assert_eq!(Money::parse("20"), Ok(Money(2000)));
        assert_eq!(Money::parse("1.10"), Ok(Money(110)));
        assert_eq!(Money::parse("1.999"), Err(MoneyError::TooPrecise));
        assert_eq!(Money::parse("-1"), Err(MoneyError::Negative));
        assert_eq!(Money::parse("abc"), Err(MoneyError::NotANumber));
        assert_eq!(Money::parse("19.9999999999999999"), Err(MoneyError::TooPrecise));
        assert_eq!(Money::parse("1e3"), Ok(Money(100_000)));
        assert_eq!(Money::parse("1000000000.01"), Err(MoneyError::TooLarge));
    }

    #[test]
    fn json_round_trip_is_exact_for_every_cent_value() {
        for cents in (0..200_000).chain([99_999_999_999, 100_000_000_000]) {
            let json = serde_json::to_string(&Money(cents)).unwrap();
            let back: Money = serde_json::from_str(&json).unwrap();
            assert_eq!(back, Money(cents), "{json}");
        }
        assert_eq!(serde_json::to_string(&Money(1999)).unwrap(), "19.99");
        assert_eq!(serde_json::to_string(&Money(2000)).unwrap(), "20");
        assert_eq!(serde_json::to_string(&Money(0)).unwrap(), "0");
    }

    #[test]
    fn json_rejects_bad_amounts() {
        assert!(serde_json::from_str::<Money>("19.999").is_err());
        assert!(serde_json::from_str::<Money>("-5").is_err());
        assert!(serde_json::from_str::<Money>("\"5\"").is_err());
        assert!(serde_json::from_str::<Money>("1e20").is_err());
        assert_eq!(serde_json::from_str::<Money>("0.30").unwrap(), Money(30));
        assert_eq!(serde_json::from_str::<Money>("0.1").unwrap(), Money(10));
    }

    #[test]
    fn floats_convert_as_their_shortest_rendering_parses() {
        let by_rendering = |v: f64| Money::parse(&format!("{v}"));
        let mut values: Vec<f64> = (0..300_000).map(|c| c as f64 / 100.0).collect();
        values.extend((0..100_000).map(|i| i as f64 / 1000.0 + 0.0005));
        values.extend((0..100_000).map(|i| i as f64 * 0.7));
        values.extend([0.1 + 0.2, 19.99 + 1e-9, 999_999_999.99, 1_000_000_000.0, 1e9 + 0.01, 5e-324, 0.005]);
        for v in values {
            assert_eq!(Money::from_f64(v), by_rendering(v), "{v}");
        }
    }

    #[test]
    fn arithmetic() {
        assert_eq!(Money(1999).times(3), Money(5997));
        assert_eq!([Money(1), Money(2)].into_iter().sum::<Money>(), Money(3));
        assert_eq!(Money(1999).to_string(), "19.99");
    }
}
