//! One seed value's text read into a column's type as Spark's CSV and JSON readers read it with
//! the harness's session options (US locale, no date or timestamp format given, session time
//! zone UTC). Each answers `None` where Spark would fail, or where the harness is not sure to
//! read it the same way: the seed then goes through Spark.

use crate::services::hive::direct::text;
use crate::services::hive::spark_type::SparkType;

/// A value of a seed's column.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    /// NULL.
    Null,
    /// Any integer type.
    Int(i64),
    /// `double`, or a `float` widened exactly.
    Float(f64),
    /// `boolean`.
    Bool(bool),
    /// `string`.
    Text(String),
    /// `date`: days since 1970-01-01.
    Date(i32),
    /// `timestamp`: microseconds since 1970-01-01T00:00:00Z.
    Timestamp(i64),
    /// `decimal(p,s)`: the unscaled value.
    Decimal(i128),
}

/// 1900-01-01, the first day and instant written directly: Spark rebases older dates and
/// timestamps between calendars depending on its settings and the file's metadata.
const FIRST_DAY: i32 = -25_567;

/// A field of a CSV file (after unquoting, not NULL) as Spark's CSV reader reads it into `ty`.
pub fn csv(text: &str, ty: &SparkType) -> Option<Cell> {
    match ty {
        SparkType::Long | SparkType::Int | SparkType::Short | SparkType::Byte => {
            let (min, max) = text::integer_range(ty)?;
            integer(text, min, max)
        }
        SparkType::Double => text::csv_floating(text, false).map(Cell::Float),
        SparkType::Float => text::csv_floating(text, true).map(Cell::Float),
        SparkType::Boolean => text::boolean(text).map(Cell::Bool),
        SparkType::String => Some(Cell::Text(text.to_string())),
        SparkType::Date => date(text).map(Cell::Date),
        SparkType::Timestamp => timestamp(text).map(Cell::Timestamp),
        // The US locale's parser drops every comma before `new java.math.BigDecimal(text)`.
        SparkType::Decimal(p, s) => decimal(&text.replace(',', ""), *p, *s).map(Cell::Decimal),
        _ => None,
    }
}

/// Java's `Long.parseLong`, then a range check: digits with an optional sign, nothing else.
pub fn integer(text: &str, min: i64, max: i64) -> Option<Cell> {
    text::integer(text, min, max).map(Cell::Int)
}

/// Exactly `n` ASCII digits as a number.
fn digits(text: &str, n: usize) -> Option<i64> {
    (text.len() == n && text.bytes().all(|b| b.is_ascii_digit()))
        .then(|| text.parse().ok())
        .flatten()
}

/// `YYYY-MM-DD` (a real day, from 1900 on) as days since 1970-01-01. Spark also takes one-digit
/// months and days, years alone, and anything after a `T` or a space: those go through Spark.
pub fn date(text: &str) -> Option<i32> {
    let (y, rest) = text.split_at_checked(4)?;
    let (m, d) = rest.strip_prefix('-')?.split_once('-')?;
    let (y, m, d) = (digits(y, 4)?, digits(m, 2)?, digits(d, 2)?);
    let leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
    let len = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    if !(1..=len).contains(&d) {
        return None;
    }
    // `m` and `d` are checked above: 1 to 12 and 1 to 31.
    let days = i32::try_from(text::days_from_civil(y, m as u32, d as u32)).ok()?;
    (days >= FIRST_DAY).then_some(days)
}

/// `YYYY-MM-DD`, or `YYYY-MM-DD HH:MM:SS[.f]` (`T` or a space between, 1 to 6 fraction digits)
/// with an optional zone `Z` or `±HH:MM`, as microseconds since the epoch; without a zone the
/// time is in the session time zone, UTC. Spark's other forms (no seconds, more fraction
/// digits, zone names, a time alone) go through Spark.
pub fn timestamp(text: &str) -> Option<i64> {
    let (day, time) = match text.split_at_checked(10) {
        Some((day, "")) => (day, None),
        Some((day, rest)) => (day, Some(rest.strip_prefix([' ', 'T'])?)),
        None => return None,
    };
    let day = i64::from(date(day)?);
    let Some(time) = time else {
        return Some(day * 86_400_000_000);
    };
    let (clock, zone) = match time.find(['Z', '+', '-']) {
        Some(i) => time.split_at(i),
        None => (time, ""),
    };
    let (hms, frac) = clock.split_once('.').unwrap_or((clock, ""));
    let mut parts = hms.split(':');
    let (h, m, s) = (
        digits(parts.next()?, 2)?,
        digits(parts.next()?, 2)?,
        digits(parts.next()?, 2)?,
    );
    if parts.next().is_some() || h > 23 || m > 59 || s > 59 {
        return None;
    }
    let micros = if clock.contains('.') {
        if frac.is_empty() || frac.len() > 6 {
            return None;
        }
        digits(frac, frac.len())? * 10_i64.pow(6 - frac.len() as u32)
    } else {
        0
    };
    let offset = match zone {
        "" | "Z" => 0,
        _ => {
            let sign = if zone.starts_with('-') { -1 } else { 1 };
            let (zh, zm) = zone[1..].split_once(':')?;
            let (zh, zm) = (digits(zh, 2)?, digits(zm, 2)?);
            if zm > 59 || zh * 60 + zm > 18 * 60 {
                return None;
            }
            sign * (zh * 3600 + zm * 60)
        }
    };
    let secs = day * 86_400 + h * 3600 + m * 60 + s - offset;
    (secs >= i64::from(FIRST_DAY) * 86_400).then_some(secs * 1_000_000 + micros)
}

/// `new java.math.BigDecimal(text)` set to scale `s` rounding half up, as Spark's
/// `Decimal(value, p, s)` does: its unscaled value, or `None` when it has more than `p` digits
/// (Spark fails on it) or the text is not Java's decimal notation.
pub fn decimal(text: &str, p: u8, s: i8) -> Option<i128> {
    let (negative, int, frac, exp) = text::decimal_parts(text)?;
    // The digits, and how many of them are after the point once the exponent is applied.
    let digits: Vec<u8> = int.bytes().chain(frac.bytes()).map(|b| b - b'0').collect();
    let point = int.len() as i64 + exp;
    // Keep the digits up to `s` places after the point; the first one dropped rounds.
    let keep = point + i64::from(s);
    let mut unscaled: i128 = 0;
    let mut count = 0usize;
    for i in 0..keep.max(0) {
        let d = usize::try_from(i)
            .ok()
            .and_then(|i| digits.get(i))
            .copied()
            .unwrap_or(0);
        unscaled = unscaled.checked_mul(10)?.checked_add(i128::from(d))?;
        if unscaled != 0 {
            count += 1;
        }
        if count > 38 {
            return None;
        }
    }
    let next = usize::try_from(keep)
        .ok()
        .and_then(|i| digits.get(i))
        .copied()
        .unwrap_or(0);
    // (With `keep < 0` the digit right below the last kept place is a leading zero.)
    if keep >= 0 && next >= 5 {
        unscaled += 1;
    }
    if unscaled.to_string().len() > usize::from(p) {
        return None;
    }
    Some(if negative { -unscaled } else { unscaled })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_booleans_and_strings() {
        assert_eq!(csv("+7", &SparkType::Int), Some(Cell::Int(7)));
        assert_eq!(csv("2147483648", &SparkType::Int), None);
        assert_eq!(csv(" 7", &SparkType::Int), None);
        assert_eq!(csv("1.5", &SparkType::Long), None);
        assert_eq!(csv("4.0", &SparkType::Double), Some(Cell::Float(4.0)));
        assert_eq!(csv(".5e1", &SparkType::Double), Some(Cell::Float(5.0)));
        assert_eq!(csv("1.5d", &SparkType::Double), None);
        assert_eq!(csv("TRUE", &SparkType::Boolean), Some(Cell::Bool(true)));
        assert_eq!(
            csv("0.1", &SparkType::Float),
            Some(Cell::Float(f64::from(0.1f32)))
        );
        assert_eq!(
            csv(" x ", &SparkType::String),
            Some(Cell::Text(" x ".into()))
        );
    }

    #[test]
    fn dates_are_iso_days_from_1900() {
        assert_eq!(date("1970-01-01"), Some(0));
        assert_eq!(date("2024-02-29"), Some(19_782));
        assert_eq!(date("1900-01-01"), Some(FIRST_DAY));
        assert_eq!(date("1899-12-31"), None);
        assert_eq!(date("2023-02-29"), None);
        assert_eq!(date("2024-13-01"), None);
        assert_eq!(date("2024-5-1"), None);
        assert_eq!(date("2024-05-01T00:00"), None);
        assert_eq!(date(" 2024-05-01"), None);
        assert_eq!(date("20240501"), None);
    }

    #[test]
    fn timestamps_are_utc_unless_they_say_their_zone() {
        let day = 19_844 * 86_400_000_000_i64; // 2024-05-01
        assert_eq!(timestamp("2024-05-01"), Some(day));
        assert_eq!(timestamp("2024-05-01 12:30:15"), Some(day + 45_015_000_000));
        assert_eq!(
            timestamp("2024-05-01T12:30:15.5"),
            Some(day + 45_015_500_000)
        );
        assert_eq!(
            timestamp("2024-05-01T12:30:15.123456Z"),
            Some(day + 45_015_123_456)
        );
        assert_eq!(
            timestamp("2024-05-01 12:30:15+02:00"),
            Some(day + 45_015_000_000 - 7_200_000_000)
        );
        assert_eq!(
            timestamp("2024-05-01 00:30:00-01:30"),
            Some(day + 7_200_000_000)
        );
        assert_eq!(timestamp("2024-05-01 12:30"), None);
        assert_eq!(timestamp("2024-05-01 12:30:15.1234567"), None);
        assert_eq!(timestamp("2024-05-01 12:30:15."), None);
        assert_eq!(timestamp("2024-05-01 24:00:00"), None);
        assert_eq!(timestamp("2024-05-01 12:30:15 UTC"), None);
        assert_eq!(timestamp("2024-05-01 12:30:15+19:00"), None);
        assert_eq!(timestamp("2024-05-01 12:30:15Europe/Paris"), None);
        assert_eq!(timestamp("1900-01-01 00:00:00+00:01"), None);
        assert_eq!(timestamp("12:30:15"), None);
    }

    #[test]
    fn decimals_round_half_up_and_overflow_goes_to_spark() {
        assert_eq!(decimal("1.5", 10, 2), Some(150));
        assert_eq!(decimal("-1.005", 10, 2), Some(-101));
        assert_eq!(decimal("1.004", 10, 2), Some(100));
        assert_eq!(decimal("0.995", 3, 2), Some(100));
        assert_eq!(decimal("9.995", 3, 2), None);
        assert_eq!(decimal("99.9", 3, 1), Some(999));
        assert_eq!(decimal("100", 3, 1), None);
        assert_eq!(decimal("0", 2, 2), Some(0));
        assert_eq!(decimal("-0.00", 5, 2), Some(0));
        assert_eq!(decimal(".5", 1, 0), Some(1));
        assert_eq!(decimal("5.", 1, 0), Some(5));
        assert_eq!(decimal("0.05", 2, 0), Some(0));
        assert_eq!(decimal("0.5", 2, 0), Some(1));
        assert_eq!(decimal("0.005", 2, 1), Some(0));
        assert_eq!(decimal("1e3", 6, 2), Some(100_000));
        assert_eq!(decimal("1.5E-1", 4, 2), Some(15));
        assert_eq!(
            decimal("12345678901234567890.123456789012345678", 38, 18),
            Some(12_345_678_901_234_567_890_123_456_789_012_345_678)
        );
        assert_eq!(decimal("1e38", 38, 0), None);
        assert_eq!(decimal(".", 5, 2), None);
        assert_eq!(decimal("1e", 5, 2), None);
        assert_eq!(decimal(" 1", 5, 2), None);
        assert_eq!(decimal("1_0", 5, 2), None);
        assert_eq!(decimal("NaN", 5, 2), None);
        assert_eq!(
            csv("1,234.5", &SparkType::Decimal(6, 1)),
            Some(Cell::Decimal(12_345))
        );
    }
}
