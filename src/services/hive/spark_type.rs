//! Spark's data types as a table's metastore entry stores them (`spark.sql.sources.schema`,
//! Spark's JSON form): the types the harness reads and writes itself, their simple-string names
//! (what a snapshot's header shows), their Hive names (what the metastore's columns say), and
//! the JSON value of each as the harness's Spark session encodes it, so that both ways render
//! the same snapshot. A type outside this set is `None`: its table goes through Spark.

use serde_json::{Value as J, json};

/// A Spark type the harness handles without Spark.
#[derive(Debug, Clone, PartialEq)]
pub enum SparkType {
    /// `tinyint`.
    Byte,
    /// `smallint`.
    Short,
    /// `int`.
    Int,
    /// `bigint`.
    Long,
    /// `float`.
    Float,
    /// `double`.
    Double,
    /// `decimal(p,s)`.
    Decimal(u8, i8),
    /// `string` (not a char/varchar: Spark pads those when it reads them).
    String,
    /// `binary`.
    Binary,
    /// `boolean`.
    Boolean,
    /// `date`.
    Date,
    /// `timestamp` (instants, shown in UTC).
    Timestamp,
    /// `timestamp_ntz` (wall-clock times).
    TimestampNtz,
    /// `array<element>`.
    Array(Box<SparkType>),
    /// `map<key,value>`.
    Map(Box<SparkType>, Box<SparkType>),
    /// `struct<name:type,...>`.
    Struct(Vec<Field>),
}

/// A named field of a struct or a table.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    /// Its name, as written.
    pub name: String,
    /// Its type.
    pub ty: SparkType,
}

impl Field {
    /// A field named `name` of type `ty`.
    pub fn new(name: &str, ty: SparkType) -> Field {
        Field {
            name: name.to_string(),
            ty,
        }
    }
}

impl SparkType {
    /// The type of Spark's JSON form (`"long"`, `{"type": "array", ...}`); `None` for a type
    /// the harness does not handle itself.
    pub fn from_json(v: &J) -> Option<SparkType> {
        match v {
            J::String(name) => atomic(name),
            J::Object(o) => match o.get("type")?.as_str()? {
                "array" => Some(SparkType::Array(Box::new(SparkType::from_json(
                    o.get("elementType")?,
                )?))),
                "map" => Some(SparkType::Map(
                    Box::new(SparkType::from_json(o.get("keyType")?)?),
                    Box::new(SparkType::from_json(o.get("valueType")?)?),
                )),
                "struct" => fields_from_json(v).map(SparkType::Struct),
                _ => None,
            },
            _ => None,
        }
    }

    /// Spark's JSON form of the type.
    pub fn to_json(&self) -> J {
        match self {
            SparkType::Array(e) => {
                json!({"type": "array", "elementType": e.to_json(), "containsNull": true})
            }
            SparkType::Map(k, v) => json!({"type": "map", "keyType": k.to_json(),
                "valueType": v.to_json(), "valueContainsNull": true}),
            SparkType::Struct(fields) => fields_to_json(fields),
            atomic => J::String(atomic.json_name()),
        }
    }

    fn json_name(&self) -> String {
        match self {
            SparkType::Byte => "byte".into(),
            SparkType::Short => "short".into(),
            SparkType::Int => "integer".into(),
            SparkType::Long => "long".into(),
            other => other.simple_string(),
        }
    }

    /// Spark's simple string (`bigint`, `array<int>`, `struct<a:int>`), as PySpark spells it.
    pub fn simple_string(&self) -> String {
        match self {
            SparkType::Byte => "tinyint".into(),
            SparkType::Short => "smallint".into(),
            SparkType::Int => "int".into(),
            SparkType::Long => "bigint".into(),
            SparkType::Float => "float".into(),
            SparkType::Double => "double".into(),
            SparkType::Decimal(p, s) => format!("decimal({p},{s})"),
            SparkType::String => "string".into(),
            SparkType::Binary => "binary".into(),
            SparkType::Boolean => "boolean".into(),
            SparkType::Date => "date".into(),
            SparkType::Timestamp => "timestamp".into(),
            SparkType::TimestampNtz => "timestamp_ntz".into(),
            SparkType::Array(e) => format!("array<{}>", e.simple_string()),
            SparkType::Map(k, v) => format!("map<{},{}>", k.simple_string(), v.simple_string()),
            SparkType::Struct(fields) => {
                let inner: Vec<String> = fields
                    .iter()
                    .map(|f| format!("{}:{}", f.name, f.ty.simple_string()))
                    .collect();
                format!("struct<{}>", inner.join(","))
            }
        }
    }

    /// The type's name in the metastore's columns (Hive's catalog string).
    pub fn hive_name(&self) -> String {
        match self {
            SparkType::TimestampNtz => "timestamp".into(),
            SparkType::Array(e) => format!("array<{}>", e.hive_name()),
            SparkType::Map(k, v) => format!("map<{},{}>", k.hive_name(), v.hive_name()),
            SparkType::Struct(fields) => {
                let inner: Vec<String> = fields
                    .iter()
                    .map(|f| format!("{}:{}", f.name, f.ty.hive_name()))
                    .collect();
                format!("struct<{}>", inner.join(","))
            }
            other => other.simple_string(),
        }
    }

    /// True for arrays, maps and structs (read by their JSON type, not their name).
    pub fn nested(&self) -> bool {
        matches!(
            self,
            SparkType::Array(_) | SparkType::Map(..) | SparkType::Struct(_)
        )
    }
}

fn atomic(name: &str) -> Option<SparkType> {
    Some(match name {
        "byte" => SparkType::Byte,
        "short" => SparkType::Short,
        "integer" => SparkType::Int,
        "long" => SparkType::Long,
        "float" => SparkType::Float,
        "double" => SparkType::Double,
        "string" => SparkType::String,
        "binary" => SparkType::Binary,
        "boolean" => SparkType::Boolean,
        "date" => SparkType::Date,
        "timestamp" => SparkType::Timestamp,
        "timestamp_ntz" => SparkType::TimestampNtz,
        other => {
            let inner = other.strip_prefix("decimal(")?.strip_suffix(')')?;
            let (p, s) = inner.split_once(',')?;
            let (p, s): (u8, i8) = (p.trim().parse().ok()?, s.trim().parse().ok()?);
            if !(1..=38).contains(&p) || s < 0 || s as u8 > p {
                return None;
            }
            SparkType::Decimal(p, s)
        }
    })
}

/// The fields of a struct type in Spark's JSON form; `None` when one is not handled (or is a
/// char/varchar, which Spark keeps as metadata on a string field and pads when read).
pub fn fields_from_json(v: &J) -> Option<Vec<Field>> {
    v.get("fields")?
        .as_array()?
        .iter()
        .map(|f| {
            let char_varchar = f
                .get("metadata")
                .and_then(|m| m.get("__CHAR_VARCHAR_TYPE_STRING"))
                .is_some();
            if char_varchar {
                return None;
            }
            Some(Field {
                name: f.get("name")?.as_str()?.to_string(),
                ty: SparkType::from_json(f.get("type")?)?,
            })
        })
        .collect()
}

/// A struct type's JSON form (every field nullable, no metadata), as Spark stores a table's
/// schema.
pub fn fields_to_json(fields: &[Field]) -> J {
    let fields: Vec<J> = fields
        .iter()
        .map(|f| json!({"name": f.name, "type": f.ty.to_json(), "nullable": true, "metadata": {}}))
        .collect();
    json!({"type": "struct", "fields": fields})
}

/// A float as Python's `repr` writes it (and so the session's JSON): the shortest digits that
/// round-trip, in positional notation when the decimal point falls within 16 places, else as
/// `d.ddde+XX`. NaN and infinities are the session's strings.
pub fn python_float(f: f64) -> J {
    if f.is_nan() {
        return J::String("NaN".into());
    }
    if f.is_infinite() {
        return J::String(if f > 0.0 { "Infinity" } else { "-Infinity" }.into());
    }
    let text = python_repr(f);
    // The session's JSON is parsed the same way, so the value is the one it would give.
    serde_json::from_str(&text).unwrap_or(J::Null)
}

fn python_repr(f: f64) -> String {
    let sci = format!("{:e}", f.abs());
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let sign = if f.is_sign_negative() { "-" } else { "" };
    // The decimal point's place after the first digit, as Python's `decpt`.
    let decpt = exp + 1;
    if (-4 < decpt) && decpt <= 16 {
        let whole = decpt >= digits.len() as i32;
        format!(
            "{sign}{}{}",
            with_point(&digits, decpt),
            if whole { ".0" } else { "" }
        )
    } else {
        let e = decpt - 1;
        let e_sign = if e < 0 { '-' } else { '+' };
        format!("{sign}{}e{e_sign}{:02}", with_point(&digits, 1), e.abs())
    }
}

/// `digits` with a decimal point after the first `point` of them: zeros added before them when
/// `point` is not positive, after them (and no point) when it is past their end.
fn with_point(digits: &str, point: i32) -> String {
    let n = digits.len() as i32;
    if point <= 0 {
        format!("0.{}{digits}", "0".repeat((-point) as usize))
    } else if point >= n {
        format!("{digits}{}", "0".repeat((point - n) as usize))
    } else {
        let (a, b) = digits.split_at(point as usize);
        format!("{a}.{b}")
    }
}

/// An unscaled decimal with its scale as Python's `str(Decimal)` writes it (and Java's
/// `BigDecimal.toString`): positional unless the adjusted exponent is below -6.
pub fn decimal_string(unscaled: i128, scale: i8) -> String {
    let sign = if unscaled < 0 { "-" } else { "" };
    let digits = unscaled.unsigned_abs().to_string();
    let exp = -(scale as i32);
    let left = exp + digits.len() as i32;
    if exp <= 0 && left > -6 {
        format!("{sign}{}", with_point(&digits, left))
    } else {
        format!("{sign}{}E{:+}", with_point(&digits, 1), left - 1)
    }
}

/// Days since 1970-01-01 as `YYYY-MM-DD` (proleptic Gregorian, as Python's dates); `None`
/// outside Python's years 1..=9999, where the session fails.
pub fn date_string(days: i64) -> Option<String> {
    let (y, m, d) = civil(days);
    (1..=9999)
        .contains(&y)
        .then(|| format!("{y:04}-{m:02}-{d:02}"))
}

/// Microseconds since the epoch as the session writes a timestamp:
/// `YYYY-MM-DD HH:MM:SS[.ffffff]`.
pub fn timestamp_string(micros: i64) -> Option<String> {
    let days = micros.div_euclid(86_400_000_000);
    let rest = micros.rem_euclid(86_400_000_000);
    let date = date_string(days)?;
    let (secs, frac) = (rest / 1_000_000, rest % 1_000_000);
    let mut out = format!(
        "{date} {:02}:{:02}:{:02}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    );
    if frac != 0 {
        out.push_str(&format!(".{frac:06}"));
    }
    Some(out)
}

/// (year, month, day) of a day counted from 1970-01-01 in the proleptic Gregorian calendar
/// (Howard Hinnant's `civil_from_days`).
pub fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_are_spelled_as_python_spells_them() {
        for (f, text) in [
            (0.1, "0.1"),
            (100.0, "100.0"),
            (1e15, "1000000000000000.0"),
            (1e16, "1e+16"),
            (1.5e16, "1.5e+16"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (-2.5e-7, "-2.5e-07"),
            (913.3333333333334, "913.3333333333334"),
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
        ] {
            assert_eq!(python_repr(f), text, "{f}");
        }
        assert_eq!(python_float(f64::NAN), json!("NaN"));
        assert_eq!(python_float(f64::NEG_INFINITY), json!("-Infinity"));
    }

    #[test]
    fn decimals_are_spelled_as_java_and_python_spell_them() {
        assert_eq!(decimal_string(150, 2), "1.50");
        assert_eq!(decimal_string(-5, 3), "-0.005");
        assert_eq!(decimal_string(0, 2), "0.00");
        assert_eq!(decimal_string(12345, 0), "12345");
        assert_eq!(decimal_string(1, 7), "1E-7");
        assert_eq!(decimal_string(10, 8), "1.0E-7");
        assert_eq!(decimal_string(0, 8), "0E-8");
        assert_eq!(decimal_string(1, 6), "0.000001");
    }

    #[test]
    fn dates_and_timestamps_are_spelled_as_the_session_spells_them() {
        assert_eq!(date_string(0).as_deref(), Some("1970-01-01"));
        assert_eq!(date_string(19_844).as_deref(), Some("2024-05-01"));
        assert_eq!(date_string(-719_162).as_deref(), Some("0001-01-01"));
        assert_eq!(date_string(-719_163), None);
        assert_eq!(
            timestamp_string(1_714_521_600_000_000).as_deref(),
            Some("2024-05-01 00:00:00")
        );
        assert_eq!(
            timestamp_string(-1).as_deref(),
            Some("1969-12-31 23:59:59.999999")
        );
    }

    #[test]
    fn spark_types_round_trip_their_json_and_name_themselves() {
        let t = json!({"type": "map", "keyType": "integer", "valueType":
            {"type": "array", "elementType": "decimal(10,2)", "containsNull": true},
            "valueContainsNull": true});
        let ty = SparkType::from_json(&t).expect("handled");
        assert_eq!(ty.simple_string(), "map<int,array<decimal(10,2)>>");
        assert_eq!(SparkType::from_json(&ty.to_json()), Some(ty));
        assert_eq!(SparkType::from_json(&json!("interval")), None);
        let varchar = json!({"type": "struct", "fields": [{"name": "c", "type": "string",
            "nullable": true, "metadata": {"__CHAR_VARCHAR_TYPE_STRING": "char(3)"}}]});
        assert_eq!(fields_from_json(&varchar), None);
    }
}
