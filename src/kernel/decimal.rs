//! Numbers read exactly as written: a decimal in text (`19.99`, `20`, `1e3`,
//! `5.0`) becomes digits and a power of ten, never a binary float, so that
//! `19.9999999999999999` stays what it is instead of rounding to `20`.

/// `digits × 10^exponent`, with its sign.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decimal {
    negative: bool,
    /// Without leading or trailing zeros (empty for zero).
    digits: Vec<u8>,
    exponent: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DecimalError {
    #[error("not a number")]
    NotANumber,
    #[error("has more decimal places than allowed")]
    TooPrecise,
    #[error("is too large")]
    TooLarge,
}

impl Decimal {
    /// A JSON-style number: `-?digits(.digits)?([eE][+-]?digits)?` (a leading `.` is allowed too).
    pub fn parse(text: &str) -> Result<Decimal, DecimalError> {
        let text = text.trim();
        let (negative, rest) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text.strip_prefix('+').unwrap_or(text)),
        };
        let (mantissa, exp) = match rest.find(['e', 'E']) {
            Some(i) => (&rest[..i], Some(&rest[i + 1..])),
            None => (rest, None),
        };
        let (whole, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
        let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty() && frac.is_empty() || !all_digits(whole) || !all_digits(frac) {
            return Err(DecimalError::NotANumber);
        }
        let mut exponent: i64 = match exp {
            None => 0,
            Some(e) => {
                let digits = e.strip_prefix(['+', '-']).unwrap_or(e);
                if digits.is_empty() || !all_digits(digits) || digits.len() > 6 {
                    return Err(if digits.len() > 6 && all_digits(digits) {
                        DecimalError::TooLarge
                    } else {
                        DecimalError::NotANumber
                    });
                }
                let n: i64 = digits.parse().map_err(|_| DecimalError::NotANumber)?;
                if e.starts_with('-') { -n } else { n }
            }
        };
        exponent -= frac.len() as i64;
        let mut digits: Vec<u8> = whole.bytes().chain(frac.bytes()).map(|b| b - b'0').collect();
        let leading = digits.iter().take_while(|d| **d == 0).count();
        digits.drain(..leading);
        while digits.last() == Some(&0) {
            digits.pop();
            exponent += 1;
        }
        Ok(Decimal { negative: negative && !digits.is_empty(), digits, exponent })
    }

    pub fn is_negative(&self) -> bool {
        self.negative
    }

    /// The value in units of `10^-places` (cents for 2), when it is whole at
    /// that scale and fits in an `i64`.
    pub fn scaled(&self, places: u32) -> Result<i64, DecimalError> {
        if self.digits.is_empty() {
            return Ok(0);
        }
        let shift = self.exponent + i64::from(places);
        if shift < 0 {
            return Err(DecimalError::TooPrecise);
        }
        if self.digits.len() as i64 + shift > 18 {
            return Err(DecimalError::TooLarge);
        }
        let mut value: i64 = 0;
        for d in &self.digits {
            value = value * 10 + i64::from(*d);
        }
        for _ in 0..shift {
            value *= 10;
        }
        Ok(if self.negative { -value } else { value })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cents(s: &str) -> Result<i64, DecimalError> {
        Decimal::parse(s)?.scaled(2)
    }

    #[test]
    fn reads_what_was_written() {
        assert_eq!(cents("19.99"), Ok(1999));
        assert_eq!(cents("20"), Ok(2000));
        assert_eq!(cents("0.1"), Ok(10));
        assert_eq!(cents("1.10"), Ok(110));
        assert_eq!(cents("1e3"), Ok(100_000));
        assert_eq!(cents("1.5E-1"), Ok(15));
        assert_eq!(cents("0"), Ok(0));
        assert_eq!(cents("-0"), Ok(0));
        assert_eq!(cents("-2.5"), Ok(-250));
        assert_eq!(cents("19.9999999999999999"), Err(DecimalError::TooPrecise), "no float rounds this to 20");
        assert_eq!(cents("1.999"), Err(DecimalError::TooPrecise));
        assert_eq!(cents("1e-3"), Err(DecimalError::TooPrecise));
        assert_eq!(cents("1e40"), Err(DecimalError::TooLarge));
        assert_eq!(cents("1e9999999"), Err(DecimalError::TooLarge));
        for bad in ["", ".", "abc", "1..2", "1e", "1e+", "--1", "1.2.3", "0x10", " "] {
            assert_eq!(cents(bad), Err(DecimalError::NotANumber), "{bad:?}");
        }
        assert_eq!(Decimal::parse("5.0").unwrap().scaled(0), Ok(5));
        assert_eq!(Decimal::parse("5.5").unwrap().scaled(0), Err(DecimalError::TooPrecise));
    }
}
