//! A JSON Lines seed's rows as the session's Spark JSON reader reads them with the seed's schema
//! (FAILFAST, one object per line): a key names its column exactly, a missing key or `null` is
//! NULL, other keys are left out, and a value of another JSON kind than its column takes (a
//! string for a number, a number for a string) fails in Spark, so it goes through Spark.

use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

use super::value::{self, Cell};
use crate::services::hive::direct::{Direct, spark};
use crate::services::hive::spark_type::{Field, SparkType};

/// The members of one JSON object in their order, each value as its text.
struct Members(Vec<(String, Box<RawValue>)>);

impl<'de> Deserialize<'de> for Members {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Members;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Members, A::Error> {
                let mut members = Vec::new();
                while let Some(entry) = map.next_entry::<String, Box<RawValue>>()? {
                    members.push(entry);
                }
                Ok(Members(members))
            }
        }
        d.deserialize_map(V)
    }
}

/// True for JSON's number syntax (serde_json checked it): an integer has no point or exponent,
/// which Jackson reads as an integer token.
fn integral(number: &str) -> bool {
    !number.contains(['.', 'e', 'E'])
}

/// One JSON value read into `ty`; `None` where Spark fails or reads it another way.
fn cell(raw: &str, ty: &SparkType) -> Option<Cell> {
    if raw == "null" {
        return Some(Cell::Null);
    }
    if raw.starts_with('"') {
        let text: String = serde_json::from_str(raw).ok()?;
        return match ty {
            SparkType::String => Some(Cell::Text(text)),
            SparkType::Double => match text.as_str() {
                "NaN" => Some(Cell::Float(f64::NAN)),
                "Infinity" => Some(Cell::Float(f64::INFINITY)),
                "-Infinity" => Some(Cell::Float(f64::NEG_INFINITY)),
                _ => None,
            },
            SparkType::Date => value::date(&text).map(Cell::Date),
            SparkType::Timestamp => value::timestamp(&text).map(Cell::Timestamp),
            SparkType::Decimal(p, s) if !text.contains(',') => {
                value::decimal(&text, *p, *s).map(Cell::Decimal)
            }
            _ => None,
        };
    }
    let number = raw.starts_with(['-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
    match ty {
        SparkType::Boolean => match raw {
            "true" => Some(Cell::Bool(true)),
            "false" => Some(Cell::Bool(false)),
            _ => None,
        },
        SparkType::Long if number && integral(raw) => value::integer(raw, i64::MIN, i64::MAX),
        SparkType::Int if number && integral(raw) => {
            value::integer(raw, i32::MIN.into(), i32::MAX.into())
        }
        SparkType::Short if number && integral(raw) => {
            value::integer(raw, i16::MIN.into(), i16::MAX.into())
        }
        SparkType::Byte if number && integral(raw) => {
            value::integer(raw, i8::MIN.into(), i8::MAX.into())
        }
        SparkType::Double if number => raw
            .parse::<f64>()
            .ok()
            .filter(|f| f.is_finite())
            .map(Cell::Float),
        // Jackson may read a float through a double: only values both ways agree on.
        SparkType::Float if number => {
            let single = raw.parse::<f32>().ok().filter(|f| f.is_finite())?;
            let double = raw.parse::<f64>().ok()?;
            (double as f32 == single).then_some(Cell::Float(f64::from(single)))
        }
        SparkType::Decimal(p, s) if number => value::decimal(raw, *p, *s).map(Cell::Decimal),
        _ => None,
    }
}

/// The kind of a JSON value as Spark's schema inference types it: `None` for `null`, and also
/// `None` (as the outer option) for what the harness does not infer (objects, arrays, integers
/// beyond a `long`).
fn kind(raw: &str) -> Option<Option<SparkType>> {
    Some(match raw.as_bytes().first()? {
        b'n' => None,
        b'"' => Some(SparkType::String),
        b't' | b'f' => Some(SparkType::Boolean),
        b'{' | b'[' => return None,
        _ if integral(raw) => {
            raw.parse::<i64>().ok()?;
            Some(SparkType::Long)
        }
        _ => Some(SparkType::Double),
    })
}

/// The columns Spark's JSON reader infers without a schema, when every key holds one kind of
/// value in every line (`bigint`, `double`, `string`, `boolean`; integers and other numbers
/// together are `double`; only nulls is `string`), sorted by name. Other mixes (Spark renders
/// the values of the others as JSON text in a string column), nested values, names Parquet or
/// Hive would spell otherwise, and empty files are `None`.
pub fn infer(text: &str) -> Option<Vec<Field>> {
    let mut types: std::collections::BTreeMap<String, Option<SparkType>> = Default::default();
    for line in text.strip_suffix('\n').unwrap_or(text).split('\n') {
        let Members(members) = serde_json::from_str::<Members>(line).ok()?;
        for (key, raw) in members {
            let kind = kind(raw.get())?;
            let merged = match (types.remove(&key).flatten(), kind) {
                (None, k) | (k, None) => k,
                (Some(a), Some(b)) if a == b => Some(a),
                (
                    Some(SparkType::Long | SparkType::Double),
                    Some(SparkType::Long | SparkType::Double),
                ) => Some(SparkType::Double),
                _ => return None,
            };
            types.insert(key, merged);
        }
    }
    let plain = |name: &str| {
        name.bytes().next().is_some_and(|b| !b.is_ascii_digit())
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
    };
    let mut lower: Vec<String> = types.keys().map(|k| k.to_ascii_lowercase()).collect();
    lower.sort();
    lower.dedup();
    if types.is_empty() || lower.len() != types.len() || !types.keys().all(|k| plain(k)) {
        return None;
    }
    let fields = types.into_iter().map(|(name, ty)| Field {
        name,
        ty: ty.unwrap_or(SparkType::String),
    });
    Some(fields.collect())
}

/// Every row of `text`, in the schema's column order.
pub fn rows(text: &str, columns: &[Field]) -> Result<Direct<Vec<Vec<Cell>>>, String> {
    if text.starts_with('\u{feff}') || text.contains('\r') {
        spark!("it has carriage returns or a byte-order mark");
    }
    let mut rows = Vec::new();
    for line in text.strip_suffix('\n').unwrap_or(text).split('\n') {
        if line.trim().is_empty() {
            spark!("a line is blank");
        }
        let Ok(Members(members)) = serde_json::from_str::<Members>(line) else {
            spark!("a line is not one JSON object in strict JSON");
        };
        let mut cells = vec![Cell::Null; columns.len()];
        let mut seen = vec![false; columns.len()];
        for (key, raw) in &members {
            let Some(i) = columns
                .iter()
                .position(|c| c.name.eq_ignore_ascii_case(key))
            else {
                continue;
            };
            if columns[i].name != *key || seen[i] {
                spark!("key {key} is repeated or not spelled as its column");
            }
            seen[i] = true;
            match cell(raw.get(), &columns[i].ty) {
                Some(c) => cells[i] = c,
                None => spark!("a value of column {key} is not one read exactly"),
            }
        }
        rows.push(cells);
    }
    Ok(Direct::Done(rows))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Option<Vec<Vec<Cell>>> {
        let columns: Vec<Field> = [
            ("id", SparkType::Long),
            ("name", SparkType::String),
            ("price", SparkType::Decimal(6, 2)),
            ("at", SparkType::Timestamp),
            ("w", SparkType::Float),
        ]
        .into_iter()
        .map(|(n, ty)| Field { name: n.into(), ty })
        .collect();
        match rows(text, &columns).expect("no error") {
            Direct::Done(r) => Some(r),
            Direct::Spark(_) => None,
        }
    }

    #[test]
    fn missing_keys_and_nulls_are_null_and_other_keys_are_left_out() {
        let r = read(concat!(
            r#"{"id": 1, "name": "a\"b", "price": 1.005, "at": "2024-05-01T10:00:00Z", "w": 0.5, "x": [1]}"#,
            "\n",
            r#"{"id": null, "name": ""}"#,
            "\n"
        ))
        .expect("read");
        assert_eq!(r[0][0], Cell::Int(1));
        assert_eq!(r[0][1], Cell::Text("a\"b".into()));
        assert_eq!(r[0][2], Cell::Decimal(101));
        assert_eq!(r[0][3], Cell::Timestamp(1_714_557_600_000_000));
        assert_eq!(r[0][4], Cell::Float(0.5));
        assert_eq!(
            r[1],
            vec![
                Cell::Null,
                Cell::Text(String::new()),
                Cell::Null,
                Cell::Null,
                Cell::Null
            ]
        );
        assert_eq!(
            read(r#"{"price": "12.5"}"#).expect("read")[0][2],
            Cell::Decimal(1250)
        );
    }

    #[test]
    fn types_are_inferred_as_spark_infers_them_when_each_key_holds_one_kind() {
        let fields = infer(concat!(
            r#"{"b": 1, "a": "x", "c": null, "d": true, "e": 1}"#,
            "\n",
            r#"{"b": 2, "a": null, "e": 2.5, "Z_1": false}"#,
            "\n"
        ))
        .expect("inferred");
        let got: Vec<(&str, SparkType)> = fields
            .iter()
            .map(|f| (f.name.as_str(), f.ty.clone()))
            .collect();
        assert_eq!(
            got,
            [
                ("Z_1", SparkType::Boolean),
                ("a", SparkType::String),
                ("b", SparkType::Long),
                ("c", SparkType::String),
                ("d", SparkType::Boolean),
                ("e", SparkType::Double),
            ]
        );
        for text in [
            "{\"a\": 1}\n{\"a\": \"1\"}\n",
            "{\"a\": true}\n{\"a\": 1}\n",
            "{\"a\": {\"b\": 1}}\n",
            "{\"a\": [1]}\n",
            "{\"a\": 9223372036854775808}\n",
            "{\"a\": 1, \"A\": 2}\n",
            "{\"a b\": 1}\n",
            "{}\n",
            "",
        ] {
            assert_eq!(infer(text), None, "{text}");
        }
    }

    #[test]
    fn mistyped_values_and_loose_json_go_to_spark() {
        for line in [
            r#"{"id": "1"}"#,
            r#"{"id": 1.0}"#,
            r#"{"id": 9223372036854775808}"#,
            r#"{"name": 5}"#,
            r#"{"price": 10000}"#,
            r#"{"at": 1714557600}"#,
            r#"{"at": ""}"#,
            r#"{"id": 1, "id": 2}"#,
            r#"{"ID": 1}"#,
            r#"{'id': 1}"#,
            r#"[{"id": 1}]"#,
            "{\"id\": 1}\n\n{\"id\": 2}",
        ] {
            assert_eq!(read(line), None, "{line}");
        }
    }
}
