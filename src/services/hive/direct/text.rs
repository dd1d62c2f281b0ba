//! Scalar values written as text, parsed as Spark's text readers (CSV, JSON) parse them and
//! encoded as the harness's Spark session encodes them: Java's number grammar, `BigDecimal`s
//! fitted to a column's precision and scale, dates and timestamps in the forms Spark's writers
//! emit. Each answers `None` for any text outside the forms it is sure of, so that the caller
//! leaves the file to Spark rather than guess.

use serde_json::Value as J;

use crate::services::hive::spark_type::{self, SparkType};

/// An integer as Java's `parseInt`/`parseLong` reads it (an optional sign, ASCII digits),
/// within `min..=max`.
pub fn integer(text: &str, min: i64, max: i64) -> Option<i64> {
    let digits = text.strip_prefix(['+', '-']).unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse::<i64>().ok().filter(|n| (min..=max).contains(n))
}

/// The range of an integer type.
pub fn integer_range(ty: &SparkType) -> Option<(i64, i64)> {
    Some(match ty {
        SparkType::Byte => (i8::MIN.into(), i8::MAX.into()),
        SparkType::Short => (i16::MIN.into(), i16::MAX.into()),
        SparkType::Int => (i32::MIN.into(), i32::MAX.into()),
        SparkType::Long => (i64::MIN, i64::MAX),
        _ => return None,
    })
}

/// A double as Java's `Double.parseDouble` reads it: plain decimal notation with an optional
/// exponent, `NaN`, `Infinity` with a sign (no hexadecimal, no `d`/`f` suffix, no spaces).
pub fn double(text: &str) -> Option<f64> {
    match text {
        "NaN" => return Some(f64::NAN),
        "Infinity" | "+Infinity" => return Some(f64::INFINITY),
        "-Infinity" => return Some(f64::NEG_INFINITY),
        _ => {}
    }
    let body = text.strip_prefix(['+', '-']).unwrap_or(text);
    let (mantissa, exp) = match body.split_once(['e', 'E']) {
        Some((m, e)) => (m, Some(e.strip_prefix(['+', '-']).unwrap_or(e))),
        None => (body, None),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let ok = (!int.is_empty() || !frac.is_empty())
        && digits(int)
        && digits(frac)
        && exp.is_none_or(|e| !e.is_empty() && digits(e));
    ok.then(|| text.parse::<f64>().ok()).flatten()
}

/// A float as Java's `Float.parseFloat` reads it (from the text directly, as Rust does, not
/// through a double), widened as the session widens it.
pub fn float(text: &str) -> Option<f64> {
    let wide = double(text)?;
    if !wide.is_finite() {
        return Some(wide);
    }
    text.parse::<f32>().ok().map(f64::from)
}

/// A double or float of Spark's CSV reader: its `Inf`/`-Inf` defaults, or Java's grammar.
pub fn csv_floating(text: &str, single: bool) -> Option<f64> {
    match text {
        "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        _ if single => float(text),
        _ => double(text),
    }
}

/// `true`/`false` in any case, as Scala's `toBoolean`.
pub fn boolean(text: &str) -> Option<bool> {
    match text.to_ascii_lowercase().as_str() {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

/// A decimal in Java's notation (`new java.math.BigDecimal(text)`): its sign, the digits before
/// and after the point (either may be empty, not both) and the exponent (at most 4 digits);
/// `None` for any other text.
pub fn decimal_parts(text: &str) -> Option<(bool, &str, &str, i64)> {
    let (negative, body) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let (mantissa, exp) = match body.split_once(['e', 'E']) {
        Some((m, e)) => {
            let digits = e.strip_prefix(['+', '-']).unwrap_or(e);
            if digits.is_empty() || digits.len() > 4 || !digits.bytes().all(|b| b.is_ascii_digit())
            {
                return None;
            }
            (m, e.parse::<i64>().ok()?)
        }
        None => (body, 0),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let all_digits = |t: &str| t.bytes().all(|b| b.is_ascii_digit());
    if (int.is_empty() && frac.is_empty()) || !all_digits(int) || !all_digits(frac) {
        return None;
    }
    Some((negative, int, frac, exp))
}

/// A `java.math.BigDecimal` text (`-12.50`, `1.00E-8`, `0E-18`) as a value of
/// `decimal(precision, scale)`, spelled as the session spells it; `None` where Spark would have
/// to round it (or fails: too many digits for the precision).
pub fn decimal(text: &str, precision: u8, scale: i8) -> Option<String> {
    let (negative, int, frac, exp) = decimal_parts(text)?;
    if int.is_empty() {
        return None;
    }
    let exp = exp as i32;
    let mut digits: String = format!("{int}{frac}").trim_start_matches('0').to_string();
    let mut text_scale = frac.len() as i32 - exp;
    let scale_wanted = i32::from(scale);
    // Digits dropped by the column's scale must be zeros: anything else Spark rounds.
    while text_scale > scale_wanted {
        if digits.is_empty() {
            text_scale = scale_wanted;
            break;
        }
        digits = digits.strip_suffix('0')?.to_string();
        text_scale -= 1;
    }
    if !digits.is_empty() {
        digits.push_str(&"0".repeat((scale_wanted - text_scale) as usize));
    }
    if digits.len() > usize::from(precision) {
        return None;
    }
    let unscaled: i128 = if digits.is_empty() {
        0
    } else {
        digits.parse().ok()?
    };
    Some(spark_type::decimal_string(
        if negative { -unscaled } else { unscaled },
        scale,
    ))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `n` ASCII digits at the start of `text`, and the rest.
fn number(text: &str, n: usize) -> Option<(u32, &str)> {
    let (head, rest) = (text.get(..n)?, text.get(n..)?);
    if !head.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((head.parse().ok()?, rest))
}

/// `YYYY-MM-DD` as days since the epoch, and what follows it.
fn days(text: &str) -> Option<(i64, &str)> {
    let (y, rest) = number(text, 4)?;
    let (m, rest) = number(rest.strip_prefix('-')?, 2)?;
    let (d, rest) = number(rest.strip_prefix('-')?, 2)?;
    let days = days_from_civil(i64::from(y), m, d);
    // A day the calendar does not have (2024-02-30) comes back as another one.
    (spark_type::civil(days) == (i64::from(y), m, d)).then_some((days, rest))
}

/// A date as Spark's `yyyy-MM-dd` reads it, spelled as the session spells it.
pub fn date(text: &str) -> Option<String> {
    match days(text)? {
        (days, "") => spark_type::date_string(days),
        _ => None,
    }
}

/// A timestamp as Spark's writers spell it (`yyyy-MM-dd'T'HH:mm:ss[.SSS]`, with a zone `Z` or
/// `+HH:MM` when `zoned`, without one otherwise), spelled as the session spells it (UTC).
pub fn timestamp(text: &str, zoned: bool) -> Option<String> {
    let (days, rest) = days(text)?;
    let (h, rest) = number(rest.strip_prefix('T')?, 2)?;
    let (m, rest) = number(rest.strip_prefix(':')?, 2)?;
    let (s, rest) = number(rest.strip_prefix(':')?, 2)?;
    if h > 23 || m > 59 || s > 59 {
        return None;
    }
    let (millis, rest) = match rest.strip_prefix('.') {
        Some(frac) => number(frac, 3)?,
        None => (0, rest),
    };
    let offset_secs: i64 = match (zoned, rest) {
        (false, "") => 0,
        (true, "Z") => 0,
        (true, zone) => {
            let (sign, zone) = match zone.split_at_checked(1)? {
                ("+", z) => (1, z),
                ("-", z) => (-1, z),
                _ => return None,
            };
            let (oh, zone) = number(zone, 2)?;
            let (om, zone) = number(zone.strip_prefix(':')?, 2)?;
            if !zone.is_empty() || oh > 18 || om > 59 {
                return None;
            }
            sign * i64::from(oh * 3600 + om * 60)
        }
        _ => return None,
    };
    let secs = days * 86_400 + i64::from(h * 3600 + m * 60 + s) - offset_secs;
    spark_type::timestamp_string(secs * 1_000_000 + i64::from(millis) * 1000)
}

/// Base64 (standard alphabet, padded, as Jackson writes binary) decoded; `None` for any other
/// spelling.
pub fn base64(text: &str) -> Option<Vec<u8>> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes = text.as_bytes();
    if !bytes.len().is_multiple_of(4) {
        return None;
    }
    let mut out = Vec::with_capacity(bytes.len() / 4 * 3);
    for (i, chunk) in bytes.chunks(4).enumerate() {
        let last = i + 1 == bytes.len() / 4;
        let pad = chunk.iter().rev().take_while(|&&b| b == b'=').count();
        if pad > 2 || (pad > 0 && !last) {
            return None;
        }
        let mut n: u32 = 0;
        for &b in &chunk[..4 - pad] {
            n = n << 6 | ALPHABET.iter().position(|&a| a == b)? as u32;
        }
        n <<= 6 * pad as u32;
        let three = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        // Bits past the last byte must be zero, or the text is not the canonical spelling.
        if n & ((1 << (8 * pad as u32)) - 1) != 0 {
            return None;
        }
        out.extend_from_slice(&three[..3 - pad]);
    }
    Some(out)
}

/// The rows of a file's lines, each read by `row`; `Err` names the first line it does not read
/// (`first` is the number of the first line given).
pub fn rows_of_lines<'a>(
    lines: impl Iterator<Item = &'a str>,
    first: usize,
    row: impl Fn(&str) -> Option<Vec<J>>,
) -> Result<Vec<Vec<J>>, String> {
    lines
        .enumerate()
        .map(|(i, line)| {
            row(line).ok_or_else(|| {
                format!(
                    "line {} is not one the harness reads as Spark does",
                    first + i
                )
            })
        })
        .collect()
}

/// Bytes as the session spells binary: lowercase hex.
pub fn hex(bytes: &[u8]) -> J {
    J::String(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_follow_java_or_are_left_to_spark() {
        assert_eq!(integer("+7", i64::MIN, i64::MAX), Some(7));
        assert_eq!(integer("-128", -128, 127), Some(-128));
        assert_eq!(integer("128", -128, 127), None);
        assert_eq!(integer(" 7", i64::MIN, i64::MAX), None);
        assert_eq!(integer("1.0", i64::MIN, i64::MAX), None);
        assert_eq!(double("1.0E16"), Some(1e16));
        assert_eq!(double("-0.0").map(f64::is_sign_negative), Some(true));
        assert!(double("NaN").is_some_and(f64::is_nan));
        assert_eq!(double("-Infinity"), Some(f64::NEG_INFINITY));
        assert_eq!(double("Inf"), None);
        assert_eq!(csv_floating("Inf", false), Some(f64::INFINITY));
        assert_eq!(double("0x1p3"), None);
        assert_eq!(double("1.5d"), None);
        assert_eq!(float("0.1"), Some(f64::from(0.1f32)));
        assert_eq!(boolean("FALSE"), Some(false));
        assert_eq!(boolean("1"), None);
    }

    #[test]
    fn decimals_fit_the_column_or_are_left_to_spark() {
        assert_eq!(decimal("1.50", 10, 2).as_deref(), Some("1.50"));
        assert_eq!(decimal("1.5", 10, 2).as_deref(), Some("1.50"));
        assert_eq!(decimal("-0.00", 10, 2).as_deref(), Some("0.00"));
        assert_eq!(decimal("0E-18", 38, 18).as_deref(), Some("0E-18"));
        assert_eq!(decimal("1.00E-8", 12, 10).as_deref(), Some("1.00E-8"));
        assert_eq!(
            decimal("-12345678901234567890.123456789012345678", 38, 18).as_deref(),
            Some("-12345678901234567890.123456789012345678")
        );
        assert_eq!(decimal("1.2E+2", 10, 0).as_deref(), Some("120"));
        assert_eq!(decimal("1.250", 10, 2).as_deref(), Some("1.25"));
        // Rounding, too many digits, other spellings: Spark's.
        assert_eq!(decimal("1.255", 10, 2), None);
        assert_eq!(decimal("123456789.5", 10, 2), None);
        assert_eq!(decimal("1,000", 10, 2), None);
        assert_eq!(decimal(".5", 10, 2), None);
        assert_eq!(decimal("NaN", 10, 2), None);
    }

    #[test]
    fn dates_and_timestamps_in_spark_s_written_forms() {
        assert_eq!(date("2024-05-01").as_deref(), Some("2024-05-01"));
        assert_eq!(date("2024-02-30"), None);
        assert_eq!(date("0000-01-01"), None);
        assert_eq!(date("2024-5-1"), None);
        assert_eq!(
            timestamp("2024-05-01T12:30:15.123Z", true).as_deref(),
            Some("2024-05-01 12:30:15.123000")
        );
        assert_eq!(
            timestamp("2024-05-01T02:00:00+02:30", true).as_deref(),
            Some("2024-04-30 23:30:00")
        );
        assert_eq!(
            timestamp("1999-12-31T23:59:59.000", false).as_deref(),
            Some("1999-12-31 23:59:59")
        );
        // No zone where one is needed, one where none is, six digits, a space: Spark's.
        assert_eq!(timestamp("2024-05-01T12:30:15", true), None);
        assert_eq!(timestamp("2024-05-01T12:30:15Z", false), None);
        assert_eq!(timestamp("2024-05-01T12:30:15.123456Z", true), None);
        assert_eq!(timestamp("2024-05-01 12:30:15Z", true), None);
    }

    #[test]
    fn base64_is_read_only_in_its_canonical_spelling() {
        assert_eq!(base64("AP9hYg=="), Some(vec![0, 255, b'a', b'b']));
        assert_eq!(base64(""), Some(vec![]));
        assert_eq!(base64("AP9hYh=="), None);
        assert_eq!(base64("AP9hYg"), None);
        assert_eq!(hex(&[0, 255]), J::String("00ff".into()));
    }
}
