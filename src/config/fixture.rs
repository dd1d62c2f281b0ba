//! Fixture formats that are parsed before anything runs, so `harness check` finds their errors:
//! Redis key fixtures (JSON), CSV table fixtures (every record, for its field count and its
//! encoding) and the frame of Parquet files (magic and footer, which a truncated copy lacks).

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::io::{Read as _, Seek as _, SeekFrom};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde::de::{self, MapAccess, Visitor};

/// A value of one Redis key, as seeded.
#[derive(Debug, Clone, PartialEq)]
pub enum RedisValue {
    /// A string.
    String(String),
    /// A hash of fields.
    Hash(BTreeMap<String, String>),
    /// A list, in order.
    List(Vec<String>),
    /// A set.
    Set(Vec<String>),
    /// A sorted set: member and score.
    ZSet(Vec<(String, f64)>),
}

/// One key of a Redis fixture.
#[derive(Debug, Clone, PartialEq)]
pub struct RedisEntry {
    /// The key.
    pub key: String,
    /// Its value.
    pub value: RedisValue,
    /// Time to live in seconds, if any.
    pub ttl: Option<u64>,
}

/// A parsed Redis fixture file: keys in file order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RedisFixture(pub Vec<RedisEntry>);

/// A problem in a fixture, with its 1-based position.
#[derive(Debug, Clone)]
pub struct FixtureError {
    /// 1-based line and column, when known.
    pub line_col: Option<(usize, usize)>,
    /// What is wrong.
    pub message: String,
}

impl RedisFixture {
    /// Parses the JSON text of a Redis fixture.
    pub fn parse(text: &str) -> Result<Self, FixtureError> {
        serde_json::from_str::<RedisFixture>(text).map_err(|e| {
            let msg = e.to_string();
            // serde_json appends " at line L column C"; the position is reported separately.
            let message = msg.split(" at line ").next().unwrap_or(&msg).to_string();
            // A problem inside an entry is reported after its value; point at its key instead.
            let key_pos = message
                .strip_prefix("key ")
                .and_then(|rest| {
                    serde_json::Deserializer::from_str(rest)
                        .into_iter::<String>()
                        .next()?
                        .ok()
                })
                .and_then(|key| find_key(text, &key));
            let line_col = key_pos.or((e.line() > 0).then(|| (e.line(), e.column())));
            FixtureError { line_col, message }
        })
    }
}

/// Line and column of the first `"key":` in a JSON text.
fn find_key(text: &str, key: &str) -> Option<(usize, usize)> {
    let quoted = serde_json::to_string(key).ok()?;
    let mut from = 0;
    while let Some(i) = text[from..].find(&quoted) {
        let at = from + i;
        if text[at + quoted.len()..].trim_start().starts_with(':') {
            return Some(crate::diagnostic::line_col(text, at));
        }
        from = at + quoted.len();
    }
    None
}

impl<'de> Deserialize<'de> for RedisFixture {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RedisFixture;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object from Redis key to value")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RedisFixture, A::Error> {
                let mut entries: Vec<RedisEntry> = Vec::new();
                // A fixture may hold a million keys: finding a repeated one must neither scan
                // them all nor copy each. The set holds hashes; a hash seen before is checked
                // against the keys themselves.
                let hasher = std::hash::RandomState::new();
                let mut seen: HashSet<u64> = HashSet::new();
                while let Some(key) = map.next_key::<String>()? {
                    let raw: RawEntry = map.next_value()?;
                    let hash = std::hash::BuildHasher::hash_one(&hasher, &key);
                    if !seen.insert(hash) && entries.iter().any(|e| e.key == key) {
                        return Err(de::Error::custom(format!("key \"{key}\": appears twice")));
                    }
                    let (value, ttl) =
                        entry(raw).map_err(|m| de::Error::custom(format!("key \"{key}\": {m}")))?;
                    entries.push(RedisEntry { key, value, ttl });
                }
                Ok(RedisFixture(entries))
            }
        }
        d.deserialize_map(V)
    }
}

/// A key's value as the fixture writes it: a plain string (most keys, taken without an
/// intermediate JSON value), an object, or anything else (an error, reported by [`entry`]).
enum RawEntry {
    Plain(String),
    Object(serde_json::Map<String, serde_json::Value>),
    Other,
}

impl<'de> Deserialize<'de> for RawEntry {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawEntry;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawEntry, E> {
                Ok(RawEntry::Plain(v.to_string()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<RawEntry, E> {
                Ok(RawEntry::Plain(v))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawEntry, A::Error> {
                let mut obj = serde_json::Map::new();
                while let Some((k, v)) = map.next_entry::<String, serde_json::Value>()? {
                    obj.insert(k, v);
                }
                Ok(RawEntry::Object(obj))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<RawEntry, A::Error> {
                while seq.next_element::<de::IgnoredAny>()?.is_some() {}
                Ok(RawEntry::Other)
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<RawEntry, E> {
                Ok(RawEntry::Other)
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<RawEntry, E> {
                Ok(RawEntry::Other)
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<RawEntry, E> {
                Ok(RawEntry::Other)
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<RawEntry, E> {
                Ok(RawEntry::Other)
            }
            fn visit_unit<E: de::Error>(self) -> Result<RawEntry, E> {
                Ok(RawEntry::Other)
            }
        }
        d.deserialize_any(V)
    }
}

/// The longest time to live a key fixture may give: Redis refuses an expiry past what it can
/// count in milliseconds from now, and no test needs more than this.
pub const MAX_TTL: u64 = i32::MAX as u64;

fn entry(raw: RawEntry) -> Result<(RedisValue, Option<u64>), String> {
    use serde_json::Value as J;
    let obj = match raw {
        RawEntry::Plain(s) => return Ok((RedisValue::String(s), None)),
        RawEntry::Object(o) => o,
        RawEntry::Other => {
            return Err("expected a string, or an object with \"type\" and \"value\"".into());
        }
    };
    for k in obj.keys() {
        if !["type", "value", "ttl"].contains(&k.as_str()) {
            return Err(format!(
                "unknown field \"{k}\" (expected \"type\", \"value\", \"ttl\")"
            ));
        }
    }
    let ttl = match obj.get("ttl") {
        None | Some(J::Null) => None,
        Some(J::Number(n)) => match n.as_u64() {
            Some(t) if t > 0 && t <= MAX_TTL => Some(t),
            Some(t) if t > 0 => {
                return Err(format!(
                    "field \"ttl\": {t} seconds is more than the limit of {MAX_TTL} (about 68 years)"
                ));
            }
            _ => return Err("field \"ttl\": expected a positive whole number of seconds".into()),
        },
        Some(_) => return Err("field \"ttl\": expected a positive whole number of seconds".into()),
    };
    let kind = match obj.get("type") {
        Some(J::String(t)) => t.as_str(),
        Some(_) => return Err("field \"type\": expected a string".into()),
        None => return Err("missing field \"type\" (string, hash, list, set or zset)".into()),
    };
    let value = obj
        .get("value")
        .ok_or_else(|| "missing field \"value\"".to_string())?;
    let strings = |v: &J, what: &str| -> Result<Vec<String>, String> {
        let arr = v
            .as_array()
            .ok_or_else(|| format!("field \"value\": a {what} is an array of strings"))?;
        arr.iter()
            .map(|x| {
                x.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| format!("field \"value\": a {what} holds strings only"))
            })
            .collect()
    };
    let value = match kind {
        "string" => RedisValue::String(
            value
                .as_str()
                .ok_or("field \"value\": a string type needs a JSON string")?
                .to_string(),
        ),
        "hash" => {
            let o = value
                .as_object()
                .ok_or("field \"value\": a hash is an object of strings")?;
            let mut h = BTreeMap::new();
            for (f, v) in o {
                let v = v.as_str().ok_or_else(|| {
                    format!("field \"value\": hash field \"{f}\" must be a string")
                })?;
                h.insert(f.clone(), v.to_string());
            }
            RedisValue::Hash(h)
        }
        "list" => RedisValue::List(strings(value, "list")?),
        "set" => RedisValue::Set(strings(value, "set")?),
        "zset" => {
            let o = value
                .as_object()
                .ok_or("field \"value\": a zset is an object from member to score")?;
            let mut z = Vec::new();
            for (m, s) in o {
                let s = s
                    .as_f64()
                    .ok_or_else(|| format!("field \"value\": score of \"{m}\" must be a number"))?;
                z.push((m.clone(), s));
            }
            RedisValue::ZSet(z)
        }
        other => {
            return Err(format!(
                "field \"type\": unknown type \"{other}\" (expected string, hash, list, set or zset)"
            ));
        }
    };
    Ok((value, ttl))
}

/// Reads a CSV fixture through: the column names of its header, after checking that every
/// record is UTF-8 and has as many fields as the header.
pub fn csv_columns(path: &Path, delimiter: u8) -> Result<Vec<String>, FixtureError> {
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(true)
        .from_path(path)
        .map_err(|e| FixtureError {
            line_col: None,
            message: e.to_string(),
        })?;
    let located = |e: csv::Error, line: u64| FixtureError {
        line_col: Some((csv_line(&e).unwrap_or(line) as usize, 1)),
        message: csv_message(&e),
    };
    let headers = reader.byte_headers().map_err(|e| located(e, 1))?.clone();
    let mut names: Vec<String> = Vec::with_capacity(headers.len());
    for field in &headers {
        names.push(
            std::str::from_utf8(field)
                .map_err(|_| FixtureError {
                    line_col: Some((1, 1)),
                    message: "invalid UTF-8 in the header: the file must be UTF-8 text".into(),
                })?
                .to_string(),
        );
    }
    if names.is_empty() || names.iter().all(String::is_empty) {
        return Err(FixtureError {
            line_col: Some((1, 1)),
            message: "the first line must name the columns".into(),
        });
    }
    if let Some(pos) = names.iter().position(String::is_empty) {
        return Err(FixtureError {
            line_col: Some((1, 1)),
            message: format!("column {} of the header has no name", pos + 1),
        });
    }
    let mut record = csv::ByteRecord::new();
    loop {
        let line = reader.position().line();
        match reader.read_byte_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {
                if let Some(field) = record.iter().position(|f| std::str::from_utf8(f).is_err()) {
                    let line = record.position().map_or(line, csv::Position::line);
                    return Err(FixtureError {
                        line_col: Some((line as usize, 1)),
                        message: format!(
                            "invalid UTF-8 in field {} (column `{}`): the file must be UTF-8 text",
                            field + 1,
                            names.get(field).map_or("?", String::as_str)
                        ),
                    });
                }
            }
            Err(e) => return Err(located(e, line)),
        }
    }
    Ok(names)
}

/// The line a CSV error is at, when it says.
fn csv_line(e: &csv::Error) -> Option<u64> {
    match e.kind() {
        csv::ErrorKind::UnequalLengths { pos: Some(p), .. } => Some(p.line()),
        csv::ErrorKind::Utf8 { pos: Some(p), .. } => Some(p.line()),
        csv::ErrorKind::Deserialize { pos: Some(p), .. } => Some(p.line()),
        _ => None,
    }
}

/// A CSV error in words, without the position (reported apart).
fn csv_message(e: &csv::Error) -> String {
    match e.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => format!("this record has {len} fields where the header has {expected_len}"),
        _ => e.to_string(),
    }
}

/// Checks the frame of a Parquet file, or of every `.parquet` file under a folder: the `PAR1`
/// magic at both ends and a footer that fits in the file. A truncated or foreign file fails here
/// rather than halfway through seeding. The error names the file.
pub fn parquet_files(path: &Path) -> Result<(), (PathBuf, String)> {
    if path.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(|e| (path.to_path_buf(), format!("cannot read folder: {e}")))?
            .flatten()
            .map(|e| e.path())
            .collect();
        entries.sort();
        for p in entries {
            let hidden = p
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(['.', '_']));
            if p.is_dir() && !hidden {
                parquet_files(&p)?;
            } else if p.extension().is_some_and(|x| x == "parquet") && !hidden {
                parquet_file(&p).map_err(|m| (p.clone(), m))?;
            }
        }
        return Ok(());
    }
    parquet_file(path).map_err(|m| (path.to_path_buf(), m))
}

fn parquet_file(path: &Path) -> Result<(), String> {
    const MAGIC: &[u8; 4] = b"PAR1";
    let mut f = std::fs::File::open(path).map_err(|e| format!("cannot read: {e}"))?;
    let len = f.metadata().map_err(|e| format!("cannot read: {e}"))?.len();
    let truncated = |what: &str| {
        format!("not a complete Parquet file ({len} bytes): {what}; was it cut short while copied?")
    };
    if len < 12 {
        return Err(truncated("too short to hold the magic and a footer"));
    }
    let mut head = [0u8; 4];
    f.read_exact(&mut head)
        .map_err(|e| format!("cannot read: {e}"))?;
    if &head != MAGIC {
        return Err(format!(
            "not a Parquet file: it does not start with the magic bytes `PAR1` ({len} bytes)"
        ));
    }
    let mut tail = [0u8; 8];
    f.seek(SeekFrom::End(-8))
        .and_then(|_| f.read_exact(&mut tail))
        .map_err(|e| format!("cannot read: {e}"))?;
    if &tail[4..] != MAGIC {
        return Err(truncated("its last bytes are not the footer magic `PAR1`"));
    }
    let footer = u64::from(u32::from_le_bytes([tail[0], tail[1], tail[2], tail[3]]));
    if footer + 12 > len {
        return Err(truncated(&format!(
            "its footer claims {footer} bytes, more than the file holds"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_type() {
        let f = RedisFixture::parse(
            r#"{"a": "x", "b": {"type": "hash", "value": {"f": "1"}, "ttl": 5},
                "c": {"type": "list", "value": ["1", "2"]}, "d": {"type": "set", "value": ["s"]},
                "e": {"type": "zset", "value": {"m": 1.5}}}"#,
        )
        .expect("valid fixture");
        assert_eq!(f.0.len(), 5);
        assert_eq!(f.0[1].ttl, Some(5));
        assert_eq!(f.0[4].value, RedisValue::ZSet(vec![("m".into(), 1.5)]));
    }

    #[test]
    fn errors_name_the_key_and_line() {
        let err = RedisFixture::parse(
            "{\n  \"a\": \"x\",\n  \"b\": {\"type\": \"hash\", \"value\": [1]}\n}",
        )
        .expect_err("invalid");
        assert!(err.message.contains("key \"b\""), "{}", err.message);
        assert_eq!(err.line_col.map(|l| l.0), Some(3));
    }

    #[test]
    fn a_repeated_key_and_a_value_of_no_fixture_type_are_errors_at_their_key() {
        let err = RedisFixture::parse("{\n\"a\": \"x\",\n\"b\": \"y\",\n\"a\": \"z\"\n}")
            .expect_err("repeated");
        assert_eq!(err.message, "key \"a\": appears twice");
        assert_eq!(err.line_col.map(|l| l.0), Some(2));
        for bad in ["7", "true", "null", "[\"x\"]", "1.5"] {
            let err = RedisFixture::parse(&format!("{{\"a\": \"x\",\n\"k\": {bad}}}"))
                .expect_err("not a string or object");
            assert_eq!(
                err.message,
                "key \"k\": expected a string, or an object with \"type\" and \"value\"",
                "{bad}"
            );
            assert_eq!(err.line_col.map(|l| l.0), Some(2), "{bad}");
        }
        // Many keys, none repeated: every one kept, in file order.
        let text = format!(
            "{{{}}}",
            (0..5000)
                .map(|i| format!("\"k{i}\": \"v\\\"{i}\""))
                .collect::<Vec<_>>()
                .join(",")
        );
        let f = RedisFixture::parse(&text).expect("valid");
        assert_eq!(f.0.len(), 5000);
        assert_eq!(f.0[4999].key, "k4999");
        assert_eq!(f.0[7].value, RedisValue::String("v\"7".into()));
    }
}
