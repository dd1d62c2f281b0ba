//! The canonical form of a key sink (Redis): keys sorted, each with its type and whether it
//! expires, then its value: a string as canonical JSON when it holds an object or array, hash
//! fields and set members sorted, list items in order, sorted-set members by score.

use std::fmt::Write as _;

use super::{Header, format_float, quote_bytes};

/// The value of one Redis key.
#[derive(Debug, Clone, PartialEq)]
pub enum KeyValue {
    /// A string.
    String(Vec<u8>),
    /// Field/value pairs.
    Hash(Vec<(Vec<u8>, Vec<u8>)>),
    /// Items in order.
    List(Vec<Vec<u8>>),
    /// Members.
    Set(Vec<Vec<u8>>),
    /// Members with scores.
    ZSet(Vec<(Vec<u8>, f64)>),
    /// A type this version does not render (stream, module types); only its name is shown.
    Other(String),
}

impl KeyValue {
    fn type_name(&self) -> &str {
        match self {
            KeyValue::String(_) => "string",
            KeyValue::Hash(_) => "hash",
            KeyValue::List(_) => "list",
            KeyValue::Set(_) => "set",
            KeyValue::ZSet(_) => "zset",
            KeyValue::Other(t) => t,
        }
    }
}

/// One Redis key read from a sink.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyEntry {
    /// The key.
    pub key: Vec<u8>,
    /// True when it expires (the remaining time is not stable, so it is not shown).
    pub expires: bool,
    /// Its value.
    pub value: KeyValue,
}

/// Redis keys read from a sink.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KeySpace(pub Vec<KeyEntry>);

impl KeySpace {
    /// Renders the keys sorted, each with its type and its value; hash fields and set members
    /// sorted, lists in order, sorted-set members by score then member. With `decode_json`,
    /// string values (and hash values) that hold JSON are shown as canonical JSON.
    pub fn render(&self, header: &Header, decode_json: bool, float_digits: Option<u32>) -> String {
        let mut entries: Vec<&KeyEntry> = self.0.iter().collect();
        entries.sort_by(|a, b| a.key.cmp(&b.key));
        let mut out = String::new();
        header.write(&mut out);
        let _ = writeln!(out, "keys: {}", entries.len());
        for e in entries {
            out.push('\n');
            let ttl = if e.expires { " (expires)" } else { "" };
            let _ = writeln!(out, "{} {}{ttl}", quote_bytes(&e.key), e.value.type_name());
            let val = |v: &[u8]| {
                if decode_json {
                    json_or_quoted(v, float_digits)
                } else {
                    quote_bytes(v)
                }
            };
            match &e.value {
                KeyValue::String(v) => {
                    for line in val(v).lines() {
                        let _ = writeln!(out, "  {line}");
                    }
                }
                KeyValue::Hash(fields) => {
                    let mut fields: Vec<_> = fields.iter().collect();
                    fields.sort();
                    for (f, v) in fields {
                        let _ = writeln!(
                            out,
                            "  {}: {}",
                            quote_bytes(f),
                            val(v).replace('\n', "\n  ")
                        );
                    }
                }
                KeyValue::List(items) => {
                    for (i, v) in items.iter().enumerate() {
                        let _ = writeln!(out, "  [{i}] {}", val(v).replace('\n', "\n  "));
                    }
                }
                KeyValue::Set(members) => {
                    let mut members: Vec<_> = members.iter().collect();
                    members.sort();
                    for m in members {
                        let _ = writeln!(out, "  {}", val(m).replace('\n', "\n  "));
                    }
                }
                KeyValue::ZSet(members) => {
                    let mut members: Vec<_> = members.iter().collect();
                    members.sort_by(|a, b| a.1.total_cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
                    for (m, s) in members {
                        let _ = writeln!(out, "  {} {}", format_float(*s, None), quote_bytes(m));
                    }
                }
                KeyValue::Other(_) => {
                    let _ = writeln!(out, "  (value of this type is not rendered)");
                }
            }
        }
        out
    }
}

/// Canonical JSON (sorted object keys; compact when short, indented when long) for a JSON
/// object or array, else the quoted text: a scalar keeps its exact spelling ("19.90" stays
/// "19.90", not the number 19.9).
fn json_or_quoted(v: &[u8], float_digits: Option<u32>) -> String {
    match serde_json::from_slice::<serde_json::Value>(v) {
        Ok(mut json) if json.is_object() || json.is_array() => {
            if let Some(d) = float_digits {
                round_json(&mut json, d);
            }
            layout_json(&json, 0)
        }
        _ => quote_bytes(v),
    }
}

/// Lines of canonical JSON no wider than this (past the indentation) stay on one line.
const JSON_WIDTH: usize = 100;

/// Canonical JSON laid out for diffs: a value that fits on one line stays compact; a wider
/// array or object puts each element on its own line, recursively.
fn layout_json(v: &serde_json::Value, indent: usize) -> String {
    let compact = v.to_string();
    if compact.len() + indent <= JSON_WIDTH {
        return compact;
    }
    let pad = " ".repeat(indent + 2);
    let (open, close, items): (&str, &str, Vec<String>) = match v {
        serde_json::Value::Array(a) => (
            "[",
            "]",
            a.iter()
                .map(|x| format!("{pad}{}", layout_json(x, indent + 2)))
                .collect(),
        ),
        serde_json::Value::Object(o) => (
            "{",
            "}",
            o.iter()
                .map(|(k, x)| {
                    format!(
                        "{pad}{}: {}",
                        serde_json::Value::from(k.as_str()),
                        layout_json(x, indent + 2)
                    )
                })
                .collect(),
        ),
        _ => return compact,
    };
    if items.is_empty() {
        return compact;
    }
    format!(
        "{open}\n{}\n{}{close}",
        items.join(",\n"),
        " ".repeat(indent)
    )
}

/// Rounds every non-integer number inside a JSON value to `digits` decimals.
fn round_json(v: &mut serde_json::Value, digits: u32) {
    match v {
        serde_json::Value::Number(n) if n.is_f64() => {
            if let Some(r) = n
                .as_f64()
                .and_then(|f| format!("{:.*}", digits as usize, f).parse::<f64>().ok())
                .and_then(serde_json::Number::from_f64)
            {
                *n = r;
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(|i| round_json(i, digits)),
        serde_json::Value::Object(map) => map.values_mut().for_each(|i| round_json(i, digits)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::canonical::tests::header;

    #[test]
    fn wide_json_puts_one_element_per_line() {
        let items: Vec<String> = (0..6)
            .map(|i| format!(r#"{{"item":{i},"score":0.123456789}}"#))
            .collect();
        let v: serde_json::Value =
            serde_json::from_str(&format!("[{}]", items.join(","))).expect("json");
        let text = layout_json(&v, 0);
        assert_eq!(text.lines().count(), 8, "{text}");
        assert_eq!(
            text.lines().nth(1),
            Some(r#"  {"item":0,"score":0.123456789},"#)
        );
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&text).expect("still JSON"),
            v
        );
    }

    #[test]
    fn floats_inside_json_are_rounded_on_request() {
        let ks = KeySpace(vec![KeyEntry {
            key: b"r".to_vec(),
            expires: false,
            value: KeyValue::String(
                br#"[{"item":7,"score":0.123456},{"item":8,"score":2}]"#.to_vec(),
            ),
        }]);
        let text = ks.render(&header(), true, Some(3));
        assert!(
            text.contains(r#"[{"item":7,"score":0.123},{"item":8,"score":2}]"#),
            "{text}"
        );
    }

    #[test]
    fn redis_keys_render_sorted_with_types() {
        let ks = KeySpace(vec![
            KeyEntry {
                key: b"z".to_vec(),
                expires: true,
                value: KeyValue::ZSet(vec![
                    (b"b".to_vec(), 2.0),
                    (b"a".to_vec(), 2.0),
                    (b"c".to_vec(), 1.5),
                ]),
            },
            KeyEntry {
                key: b"a".to_vec(),
                expires: false,
                value: KeyValue::String(br#"{"b":1,"a":[1,2]}"#.to_vec()),
            },
            KeyEntry {
                key: b"h".to_vec(),
                expires: false,
                value: KeyValue::Hash(vec![
                    (b"y".to_vec(), b"2".to_vec()),
                    (b"x".to_vec(), b"".to_vec()),
                ]),
            },
        ]);
        let text = ks.render(&header(), true, None);
        let body: Vec<&str> = text.lines().skip(3).collect();
        assert_eq!(
            body,
            vec![
                "keys: 3",
                "",
                "\"a\" string",
                "  {\"a\":[1,2],\"b\":1}",
                "",
                "\"h\" hash",
                "  \"x\": \"\"",
                "  \"y\": \"2\"",
                "",
                "\"z\" zset (expires)",
                "  1.5 \"c\"",
                "  2.0 \"a\"",
                "  2.0 \"b\""
            ]
        );
    }
}
