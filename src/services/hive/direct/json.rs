//! Files of a `USING json` table, read as Spark's JSON reader reads them with the table's
//! schema: one object per line, fields by name (missing ones NULL, unknown ones skipped),
//! values converted as Jackson and Spark convert them. Numbers keep their text until a column's
//! type reads them (a `decimal(38,18)` is not a double), strings are decoded by `serde_json`.
//! Anything Spark would read another way or reject (another token for a type, a key twice, a
//! blank line, single quotes, `NaN` without quotes, options) leaves the table to Spark.

use serde_json::Value as J;

use super::text;
use crate::services::hive::spark_type::{self, Field, SparkType};

/// Options of a `USING json` table the harness reads itself: none (Spark's defaults).
pub fn supported(options: &[(String, String)]) -> Result<(), String> {
    match options.first() {
        None => Ok(()),
        Some((key, value)) => Err(format!("its JSON option {key}={value:?}")),
    }
}

/// A JSON value, numbers kept as their text.
#[derive(Debug, PartialEq)]
enum Node {
    Null,
    Bool(bool),
    Number(String),
    Text(String),
    List(Vec<Node>),
    Object(Vec<(String, Node)>),
}

/// Nesting beyond this is left to Spark.
const MAX_DEPTH: usize = 64;

struct Scanner<'a> {
    text: &'a str,
    at: usize,
}

impl Scanner<'_> {
    fn skip_space(&mut self) {
        let rest = &self.text[self.at..];
        self.at += rest.len() - rest.trim_start_matches([' ', '\t', '\r', '\n']).len();
    }

    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.at).copied()
    }

    fn eat(&mut self, b: u8) -> bool {
        self.skip_space();
        let hit = self.peek() == Some(b);
        if hit {
            self.at += 1;
        }
        hit
    }

    fn value(&mut self, depth: usize) -> Option<Node> {
        if depth > MAX_DEPTH {
            return None;
        }
        self.skip_space();
        match self.peek()? {
            b'{' => {
                self.at += 1;
                let mut entries = Vec::new();
                if self.eat(b'}') {
                    return Some(Node::Object(entries));
                }
                loop {
                    self.skip_space();
                    let key = self.string()?;
                    if !self.eat(b':') {
                        return None;
                    }
                    entries.push((key, self.value(depth + 1)?));
                    if self.eat(b'}') {
                        return Some(Node::Object(entries));
                    }
                    if !self.eat(b',') {
                        return None;
                    }
                }
            }
            b'[' => {
                self.at += 1;
                let mut items = Vec::new();
                if self.eat(b']') {
                    return Some(Node::List(items));
                }
                loop {
                    items.push(self.value(depth + 1)?);
                    if self.eat(b']') {
                        return Some(Node::List(items));
                    }
                    if !self.eat(b',') {
                        return None;
                    }
                }
            }
            b'"' => self.string().map(Node::Text),
            _ => self.literal(),
        }
    }

    /// A string token, decoded by `serde_json` (escapes, surrogate pairs, no raw control
    /// characters).
    fn string(&mut self) -> Option<String> {
        let bytes = self.text.as_bytes();
        if bytes.get(self.at) != Some(&b'"') {
            return None;
        }
        let mut end = self.at + 1;
        loop {
            match bytes.get(end)? {
                b'\\' => end += 2,
                b'"' => break,
                _ => end += 1,
            }
        }
        let token = self.text.get(self.at..=end)?;
        self.at = end + 1;
        serde_json::from_str(token).ok()
    }

    /// `true`, `false`, `null` or a number in JSON's grammar (no leading zeros, no `+`).
    fn literal(&mut self) -> Option<Node> {
        let rest = &self.text[self.at..];
        let len = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || "+-.".contains(c)))
            .unwrap_or(rest.len());
        let token = &rest[..len];
        self.at += len;
        match token {
            "true" => return Some(Node::Bool(true)),
            "false" => return Some(Node::Bool(false)),
            "null" => return Some(Node::Null),
            _ => {}
        }
        let body = token.strip_prefix('-').unwrap_or(token);
        let (mantissa, exp) = match body.split_once(['e', 'E']) {
            Some((m, e)) => (m, Some(e.strip_prefix(['+', '-']).unwrap_or(e))),
            None => (body, None),
        };
        let (int, frac) = match mantissa.split_once('.') {
            Some((i, f)) => (i, Some(f)),
            None => (mantissa, None),
        };
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        let ok = digits(int)
            && (int == "0" || !int.starts_with('0'))
            && frac.is_none_or(digits)
            && exp.is_none_or(digits);
        ok.then(|| Node::Number(token.to_string()))
    }
}

/// One line's object; `None` when it is not exactly one JSON object.
fn parse_line(line: &str) -> Option<Vec<(String, Node)>> {
    let mut scanner = Scanner { text: line, at: 0 };
    let value = scanner.value(0)?;
    scanner.skip_space();
    match value {
        Node::Object(entries) if scanner.at == line.len() => Some(entries),
        _ => None,
    }
}

/// The values of `fields` in an object, by name: `None` for a key given twice or one that
/// names a field only when case is ignored (Spark's matching of those is not certain).
fn by_name(fields: &[Field], entries: Vec<(String, Node)>) -> Option<Vec<Node>> {
    let mut values: Vec<Option<Node>> = fields.iter().map(|_| None).collect();
    let mut seen: Vec<String> = Vec::with_capacity(entries.len());
    for (key, node) in entries {
        if seen.contains(&key) {
            return None;
        }
        match fields.iter().position(|f| f.name == key) {
            Some(i) => values[i] = Some(node),
            None if fields.iter().any(|f| f.name.eq_ignore_ascii_case(&key)) => return None,
            None => {}
        }
        seen.push(key);
    }
    Some(
        values
            .into_iter()
            .map(|v| v.unwrap_or(Node::Null))
            .collect(),
    )
}

/// A value as Spark reads a token into `ty`, encoded as the session encodes it.
fn convert(node: Node, ty: &SparkType) -> Option<J> {
    let special = |s: &str| match s {
        "NaN" | "Infinity" | "-Infinity" => text::double(s),
        _ => None,
    };
    Some(match (ty, node) {
        (_, Node::Null) => J::Null,
        (SparkType::Boolean, Node::Bool(b)) => J::Bool(b),
        (
            SparkType::Byte | SparkType::Short | SparkType::Int | SparkType::Long,
            Node::Number(n),
        ) => {
            let (min, max) = text::integer_range(ty)?;
            if n.contains(['.', 'e', 'E']) {
                return None;
            }
            J::from(text::integer(&n, min, max)?)
        }
        (SparkType::Double, Node::Number(n)) => spark_type::python_float(n.parse().ok()?),
        (SparkType::Double, Node::Text(s)) => spark_type::python_float(special(&s)?),
        // Jackson may read a float through a double: only where both ways agree.
        (SparkType::Float, Node::Number(n)) => {
            let direct: f32 = n.parse().ok()?;
            let through: f64 = n.parse().ok()?;
            if direct.to_bits() != (through as f32).to_bits() {
                return None;
            }
            spark_type::python_float(f64::from(direct))
        }
        (SparkType::Float, Node::Text(s)) => spark_type::python_float(special(&s)?),
        (SparkType::Decimal(p, s), Node::Number(n)) => J::String(text::decimal(&n, *p, *s)?),
        (SparkType::String, Node::Text(s)) => J::String(s),
        (SparkType::Binary, Node::Text(s)) => text::hex(&text::base64(&s)?),
        (SparkType::Date, Node::Text(s)) => J::String(text::date(&s)?),
        (SparkType::Timestamp, Node::Text(s)) => J::String(text::timestamp(&s, true)?),
        (SparkType::TimestampNtz, Node::Text(s)) => J::String(text::timestamp(&s, false)?),
        (SparkType::Array(e), Node::List(items)) => J::Array(
            items
                .into_iter()
                .map(|item| convert(item, e))
                .collect::<Option<_>>()?,
        ),
        (SparkType::Map(k, v), Node::Object(entries)) if **k == SparkType::String => {
            let mut pairs = Vec::with_capacity(entries.len());
            let mut seen: Vec<String> = Vec::with_capacity(entries.len());
            for (key, node) in entries {
                if seen.contains(&key) {
                    return None;
                }
                seen.push(key.clone());
                pairs.push(J::Array(vec![J::String(key), convert(node, v)?]));
            }
            J::Array(pairs)
        }
        (SparkType::Struct(fields), Node::Object(entries)) => J::Array(row(fields, entries)?),
        _ => return None,
    })
}

fn row(fields: &[Field], entries: Vec<(String, Node)>) -> Option<Vec<J>> {
    by_name(fields, entries)?
        .into_iter()
        .zip(fields)
        .map(|(node, f)| convert(node, &f.ty))
        .collect()
}

/// The rows of one file's text, with `data` as the columns; `Err` names the first line Spark
/// may read otherwise.
pub fn read(content: &str, data: &[Field]) -> Result<Vec<Vec<J>>, String> {
    text::rows_of_lines(content.lines(), 1, |line| {
        parse_line(line).and_then(|entries| row(data, entries))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lines_spark_writes_are_read_as_the_session_reads_them() {
        let data = [
            Field::new("l", SparkType::Long),
            Field::new("f", SparkType::Float),
            Field::new("d", SparkType::Double),
            Field::new("big", SparkType::Decimal(38, 18)),
            Field::new("t", SparkType::String),
            Field::new("at", SparkType::Timestamp),
            Field::new("bin", SparkType::Binary),
            Field::new(
                "m",
                SparkType::Map(Box::new(SparkType::String), Box::new(SparkType::Double)),
            ),
            Field::new(
                "who",
                SparkType::Struct(vec![Field::new(
                    "tags",
                    SparkType::Array(Box::new(SparkType::String)),
                )]),
            ),
        ];
        let text = concat!(
            r#"{"l":-9223372036854775808,"f":0.1,"d":"-Infinity","big":0E-18,"t":"h\u00e9 \"q\"","#,
            r#""at":"2024-05-01T12:30:15.123Z","bin":"AP8=","m":{"a":0.5,"b":"NaN"},"who":{"tags":["p",null]}}"#,
            "\n{\"x\":1}\n"
        );
        let rows = read(text, &data).expect("read");
        assert_eq!(
            rows[0],
            vec![
                json!(-9223372036854775808i64),
                json!(0.10000000149011612),
                json!("-Infinity"),
                json!("0E-18"),
                json!("hé \"q\""),
                json!("2024-05-01 12:30:15.123000"),
                json!("00ff"),
                json!([["a", 0.5], ["b", "NaN"]]),
                json!([["p", null]]),
            ]
        );
        assert_eq!(rows[1], vec![J::Null; 9]);
    }

    #[test]
    fn anything_spark_reads_another_way_is_left_to_it() {
        let data = [
            Field::new("n", SparkType::Int),
            Field::new("t", SparkType::String),
        ];
        for line in [
            "{\"n\": 1}\n\n{\"n\": 2}",
            "{'n': 1}",
            r#"{"n": 1.0}"#,
            r#"{"n": 2147483648}"#,
            r#"{"n": 01}"#,
            r#"{"t": 5}"#,
            r#"{"n": NaN}"#,
            r#"{"N": 1}"#,
            r#"{"n": 1, "n": 2}"#,
            r#"{"n": 1} x"#,
            r#"[{"n": 1}]"#,
            r#"{"t": "\ud800"}"#,
        ] {
            assert!(read(line, &data).is_err(), "{line:?}");
        }
        assert_eq!(
            read("{ \"n\" : -0 , \"z\": [1, {\"a\": null}] }", &data).expect("read"),
            vec![vec![json!(0), J::Null]]
        );
        assert!(supported(&[("dateFormat".into(), "d/M/y".into())]).is_err());
    }
}
