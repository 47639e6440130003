//! Exact arithmetic, comparison, parsing and display of the WIT `decimal` and
//! `money` records. Values of different scales compare by their numeric value
//! (`1.5 == 1.50`), computed in `i128` so no scale the contract allows (0 to
//! 18) can overflow.

use core::cmp::Ordering;
use core::fmt;
use core::str::FromStr;

use crate::{Decimal, Money};

impl Decimal {
    /// Zero, at scale 0.
    pub const ZERO: Decimal = Decimal { units: 0, scale: 0 };

    /// `units * 10^-scale`: `Decimal::new(1250, 2)` is 12.50.
    pub const fn new(units: i64, scale: u8) -> Self {
        Decimal { units, scale }
    }

    /// A whole number, at scale 0.
    pub const fn from_integer(value: i64) -> Self {
        Decimal { units: value, scale: 0 }
    }

    /// Whether the value is zero, at any scale.
    pub const fn is_zero(self) -> bool {
        self.units == 0
    }

    /// Whether the value is below zero.
    pub const fn is_negative(self) -> bool {
        self.units < 0
    }

    /// The same value with `scale` digits after the point, or `None` when that
    /// would lose digits or overflow.
    pub fn rescale(self, scale: u8) -> Option<Decimal> {
        if scale >= self.scale {
            let factor = 10i64.checked_pow(u32::from(scale - self.scale))?;
            Some(Decimal::new(self.units.checked_mul(factor)?, scale))
        } else {
            let factor = 10i64.checked_pow(u32::from(self.scale - scale))?;
            (self.units % factor == 0).then(|| Decimal::new(self.units / factor, scale))
        }
    }

    /// The exact sum, at the larger of the two scales; `None` on overflow.
    pub fn checked_add(self, other: Decimal) -> Option<Decimal> {
        let scale = self.scale.max(other.scale);
        let (a, b) = (self.rescale(scale)?, other.rescale(scale)?);
        Some(Decimal::new(a.units.checked_add(b.units)?, scale))
    }
}

/// Compares `units * 10^shift` with `other` without overflowing.
fn cmp_shifted(units: i64, shift: u8, other: i64) -> Ordering {
    if units == 0 {
        return 0.cmp(&other);
    }
    match 10i128
        .checked_pow(u32::from(shift))
        .and_then(|factor| i128::from(units).checked_mul(factor))
    {
        Some(shifted) => shifted.cmp(&i128::from(other)),
        // Beyond i128 the shifted value dwarfs any i64, so its sign decides.
        None => units.cmp(&0),
    }
}

impl Ord for Decimal {
    fn cmp(&self, other: &Self) -> Ordering {
        match self.scale.cmp(&other.scale) {
            Ordering::Equal => self.units.cmp(&other.units),
            Ordering::Less => cmp_shifted(self.units, other.scale - self.scale, other.units),
            Ordering::Greater => cmp_shifted(other.units, self.scale - other.scale, self.units).reverse(),
        }
    }
}

impl PartialOrd for Decimal {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Decimal {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Decimal {}

/// Shows every digit of the scale: units 1250 at scale 2 is `12.50`.
impl fmt::Display for Decimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let digits = self.units.unsigned_abs().to_string();
        let sign = if self.units < 0 { "-" } else { "" };
        let scale = usize::from(self.scale);
        if scale == 0 {
            return write!(f, "{sign}{digits}");
        }
        let padded = format!("{digits:0>width$}", width = scale + 1);
        let (whole, fraction) = padded.split_at(padded.len() - scale);
        write!(f, "{sign}{whole}.{fraction}")
    }
}

/// Why a text is not a decimal number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseDecimalError {
    reason: &'static str,
}

impl fmt::Display for ParseDecimalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "not a decimal number: {}", self.reason)
    }
}

impl std::error::Error for ParseDecimalError {}

/// Parses `12.50`, `-3`, `+0.001`; the scale is the number of digits after
/// the point, as written.
impl FromStr for Decimal {
    type Err = ParseDecimalError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let fail = |reason| Err(ParseDecimalError { reason });
        let (negative, unsigned) = match text.as_bytes().first() {
            Some(b'-') => (true, &text[1..]),
            Some(b'+') => (false, &text[1..]),
            _ => (false, text),
        };
        let (whole, fraction) = unsigned.split_once('.').unwrap_or((unsigned, ""));
        let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty() || !all_digits(whole) || !all_digits(fraction) {
            return fail("expected digits with an optional sign and decimal point");
        }
        if unsigned.ends_with('.') {
            return fail("expected digits after the decimal point");
        }
        let Ok(scale) = u8::try_from(fraction.len()) else {
            return fail("more than 18 digits after the decimal point");
        };
        if scale > 18 {
            return fail("more than 18 digits after the decimal point");
        }
        let mut units: i64 = 0;
        for digit in whole.bytes().chain(fraction.bytes()) {
            let digit = i64::from(digit - b'0');
            let next = units.checked_mul(10).and_then(|u| {
                if negative {
                    u.checked_sub(digit)
                } else {
                    u.checked_add(digit)
                }
            });
            match next {
                Some(next) => units = next,
                None => return fail("too many digits"),
            }
        }
        Ok(Decimal::new(units, scale))
    }
}

impl Money {
    /// An amount in the currency with ISO 4217 code `currency`.
    pub fn new(amount: Decimal, currency: impl Into<String>) -> Self {
        Money {
            amount,
            currency: currency.into(),
        }
    }
}

/// `12.50 RUB`.
impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.amount, self.currency)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(text: &str) -> Decimal {
        text.parse().unwrap()
    }

    #[test]
    fn compares_across_scales() {
        assert_eq!(d("1.5"), d("1.50"));
        assert_eq!(Decimal::new(0, 0), Decimal::new(0, 18));
        assert!(d("1.49") < d("1.5"));
        assert!(d("-1.5") < d("-1.49"));
        assert!(d("100") > d("99.9999999999999999"));
        assert!(Decimal::new(i64::MAX, 0) > Decimal::new(i64::MAX, 18));
        assert!(Decimal::new(i64::MIN, 0) < Decimal::new(i64::MIN, 18));
        assert_eq!(d("1000000").cmp(&Decimal::new(1, 0)), Ordering::Greater);
    }

    #[test]
    fn compares_scales_beyond_the_contract_without_overflow() {
        // Scale 200 is outside the contract, but a bad host must not make a
        // guest panic.
        assert!(Decimal::new(1, 0) > Decimal::new(i64::MAX, 200));
        assert!(Decimal::new(-1, 0) < Decimal::new(i64::MAX, 200));
        assert!(Decimal::new(0, 0) < Decimal::new(1, 200));
    }

    #[test]
    fn displays_every_digit_of_the_scale() {
        assert_eq!(Decimal::new(1250, 2).to_string(), "12.50");
        assert_eq!(Decimal::new(-5, 2).to_string(), "-0.05");
        assert_eq!(Decimal::new(7, 0).to_string(), "7");
        assert_eq!(Decimal::new(0, 3).to_string(), "0.000");
        assert_eq!(Decimal::new(i64::MIN, 0).to_string(), "-9223372036854775808");
        assert_eq!(Decimal::new(1, 18).to_string(), "0.000000000000000001");
        assert_eq!(Money::new(d("12.50"), "RUB").to_string(), "12.50 RUB");
    }

    #[test]
    fn parses_what_it_displays() {
        for text in [
            "12.50",
            "-0.05",
            "7",
            "0.000",
            "-9223372036854775808",
            "0.000000000000000001",
        ] {
            assert_eq!(d(text).to_string(), text);
        }
        assert_eq!(d("+3"), Decimal::new(3, 0));
    }

    #[test]
    fn rejects_malformed_numbers() {
        for text in [
            "",
            "-",
            ".5",
            "5.",
            "1.2.3",
            "1e5",
            "12,50",
            " 1",
            "9223372036854775808",
        ] {
            assert!(text.parse::<Decimal>().is_err(), "{text:?} parsed");
        }
        let err = "0.1234567890123456789".parse::<Decimal>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "not a decimal number: more than 18 digits after the decimal point"
        );
    }

    #[test]
    fn adds_exactly_at_the_larger_scale() {
        assert_eq!(d("1.5").checked_add(d("0.25")), Some(Decimal::new(175, 2)));
        assert_eq!(d("1.5").checked_add(d("0.25")).unwrap().to_string(), "1.75");
        assert_eq!(Decimal::new(i64::MAX, 0).checked_add(d("1")), None);
        assert_eq!(Decimal::new(i64::MAX, 0).checked_add(d("0.1")), None);
    }

    #[test]
    fn rescales_only_without_loss() {
        assert_eq!(d("1.5").rescale(3).unwrap().to_string(), "1.500");
        assert_eq!(d("1.500").rescale(1).unwrap().to_string(), "1.5");
        assert_eq!(d("1.55").rescale(1), None);
    }
}
