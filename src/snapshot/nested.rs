//! Nested values in table cells (arrays, maps, structs, JSON): their one spelling, their order,
//! multiset columns, and their comparison element by element, so a table diff says where inside
//! a cell a value changed (`scores[2]: 0.5 → 0.7`, `attrs["color"]: "red" → "blue"`).
//!
//! Spelling: `[1, 2, NULL]` for a list; `{"a": 1, "b": [true]}` for a map, entries sorted by
//! key; `{id: 1, name: "x"}` for a struct, fields in declared order, a name bare when it is an
//! identifier and not a word a value could be, else between backquotes. Elements are spelled as
//! the scalars of a cell are.

use std::cmp::Ordering;
use std::collections::HashMap;

use super::canonical::{Table, Value};
use super::table::{CellChange, Tolerance, number};

impl Value {
    /// A JSON value as a canonical one: objects as maps (by key), arrays as lists, integers as
    /// integers, other numbers as floats.
    pub fn from_json(json: serde_json::Value) -> Value {
        use serde_json::Value as J;
        match json {
            J::Null => Value::Null,
            J::Bool(b) => Value::Bool(b),
            J::Number(n) => match (n.as_i64(), n.is_u64()) {
                (Some(i), _) => Value::Int(i),
                (None, true) => Value::Numeric(n.to_string().into()),
                _ => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
            },
            J::String(s) => Value::Text(s.into()),
            J::Array(items) => Value::List(items.into_iter().map(Value::from_json).collect()),
            J::Object(map) => Value::Map(
                map.into_iter()
                    .map(|(k, v)| (Value::Text(k.into()), Value::from_json(v)))
                    .collect(),
            ),
        }
    }

    /// JSON text as a canonical value, or the text itself when it is not JSON this reads (a
    /// number beyond a float's range).
    pub fn from_json_text(text: &str) -> Value {
        serde_json::from_str(text)
            .map(Value::from_json)
            .unwrap_or_else(|_| Value::Text(text.into()))
    }
}

/// Appends `[a, b, ...]`.
pub(super) fn write_list(out: &mut String, items: &[Value], float_digits: Option<u32>) {
    out.push('[');
    for (i, v) in items.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        v.write_to(out, float_digits);
    }
    out.push(']');
}

/// Appends `{k: v, ...}` with the entries sorted by key.
pub(super) fn write_map(out: &mut String, entries: &[(Value, Value)], float_digits: Option<u32>) {
    out.push('{');
    for (i, (k, v)) in sorted(entries).into_iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        k.write_to(out, float_digits);
        out.push_str(": ");
        v.write_to(out, float_digits);
    }
    out.push('}');
}

/// Appends `{name: v, ...}` in the fields' declared order.
pub(super) fn write_struct(
    out: &mut String,
    fields: &[(String, Value)],
    float_digits: Option<u32>,
) {
    out.push('{');
    for (i, (name, v)) in fields.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        write_field_name(out, name);
        out.push_str(": ");
        v.write_to(out, float_digits);
    }
    out.push('}');
}

/// Words that are values when bare, so a field of that name is backquoted.
const VALUE_WORDS: [&str; 5] = ["true", "false", "NULL", "NaN", "inf"];

fn bare_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !VALUE_WORDS.contains(&name)
}

fn write_field_name(out: &mut String, name: &str) {
    if bare_name(name) {
        out.push_str(name);
        return;
    }
    out.push('`');
    for c in name.chars() {
        match c {
            '`' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('`');
}

fn sorted(entries: &[(Value, Value)]) -> Vec<&(Value, Value)> {
    let mut e: Vec<&(Value, Value)> = entries.iter().collect();
    e.sort_by(|a, b| a.0.total_cmp(&b.0).then_with(|| a.1.total_cmp(&b.1)));
    e
}

fn lexicographic<T>(a: &[T], b: &[T], cmp: impl Fn(&T, &T) -> Ordering) -> Ordering {
    a.iter()
        .zip(b)
        .map(|(x, y)| cmp(x, y))
        .find(|o| o.is_ne())
        .unwrap_or_else(|| a.len().cmp(&b.len()))
}

pub(super) fn cmp_lists(a: &[Value], b: &[Value]) -> Ordering {
    lexicographic(a, b, Value::total_cmp)
}

pub(super) fn cmp_maps(a: &[(Value, Value)], b: &[(Value, Value)]) -> Ordering {
    lexicographic(&sorted(a), &sorted(b), |x, y| {
        x.0.total_cmp(&y.0).then_with(|| x.1.total_cmp(&y.1))
    })
}

pub(super) fn cmp_structs(a: &[(String, Value)], b: &[(String, Value)]) -> Ordering {
    lexicographic(a, b, |x, y| x.0.cmp(&y.0).then_with(|| x.1.total_cmp(&y.1)))
}

/// Sorts the arrays of the `columns` named (the sink's `unordered`): their order carries no
/// meaning, so they render as sorted multisets. Fails on a column the table does not have and on
/// a value that is not an array (NULL and redacted values are left as they are).
pub fn sort_unordered(table: &mut Table, columns: &[String]) -> Result<(), String> {
    for name in columns {
        let Some(i) = table.columns.iter().position(|c| &c.name == name) else {
            let names: Vec<&str> = table.columns.iter().map(|c| c.name.as_str()).collect();
            return Err(format!(
                "unordered column `{name}` is not among the columns: {}",
                names.join(", ")
            ));
        };
        for row in &mut table.rows {
            match &mut row[i] {
                Value::List(items) => items.sort_by(Value::total_cmp),
                Value::Null | Value::Redacted(_) => {}
                other => {
                    return Err(format!(
                        "unordered column `{name}` ({}) holds {}, not an array",
                        table.columns[i].type_name,
                        other.render(None)
                    ));
                }
            }
        }
    }
    Ok(())
}

/// Applies a regex redaction (`replace`: the new text when the rule matched) to every element
/// and map key of a nested value, each as a cell's value would be; false (nothing done) when
/// `v` is not nested.
pub(super) fn redact_inside(v: &mut Value, replace: &dyn Fn(&str) -> Option<String>) -> bool {
    let leaf = |v: &mut Value| {
        if !redact_inside(v, replace) {
            let text = match &*v {
                Value::Null | Value::Redacted(_) => return,
                Value::Text(s) => replace(s),
                other => replace(&other.render(None)),
            };
            if let Some(new) = text {
                *v = Value::Text(new.into());
            }
        }
    };
    match v {
        Value::List(items) => items.iter_mut().for_each(leaf),
        Value::Map(entries) => entries.iter_mut().for_each(|(k, x)| {
            leaf(k);
            leaf(x);
        }),
        Value::Struct(fields) => fields.iter_mut().for_each(|(_, x)| leaf(x)),
        _ => return false,
    }
    true
}

/// A rendered value read back: its text and, for lists and maps/structs, its parts.
#[derive(Debug, Clone, PartialEq)]
struct Node<'a> {
    text: &'a str,
    kind: Kind<'a>,
}

#[derive(Debug, Clone, PartialEq)]
enum Kind<'a> {
    Leaf,
    List(Vec<Node<'a>>),
    /// Map entries or struct fields: the key as spelled, true for a struct field, the value.
    Entries(Vec<(&'a str, bool, Node<'a>)>),
}

/// Reads rendered values; positions are byte offsets into `s`.
struct Reader<'a> {
    s: &'a str,
    pos: usize,
}

impl<'a> Reader<'a> {
    fn eat(&mut self, token: &str) -> bool {
        let hit = self.s[self.pos..].starts_with(token);
        if hit {
            self.pos += token.len();
        }
        hit
    }

    fn peek(&self) -> Option<u8> {
        self.s.as_bytes().get(self.pos).copied()
    }

    fn value(&mut self) -> Option<Node<'a>> {
        let start = self.pos;
        let kind = match self.peek()? {
            b'[' => {
                self.pos += 1;
                let mut items = Vec::new();
                if !self.eat("]") {
                    loop {
                        items.push(self.value()?);
                        if self.eat("]") {
                            break;
                        }
                        self.eat(", ").then_some(())?;
                    }
                }
                Kind::List(items)
            }
            b'{' => {
                self.pos += 1;
                let mut entries = Vec::new();
                if !self.eat("}") {
                    loop {
                        let (key, field) = self.key()?;
                        self.eat(": ").then_some(())?;
                        entries.push((key, field, self.value()?));
                        if self.eat("}") {
                            break;
                        }
                        self.eat(", ").then_some(())?;
                    }
                }
                Kind::Entries(entries)
            }
            b'"' => {
                self.pos += quoted_len(&self.s[self.pos..], b'"')?;
                Kind::Leaf
            }
            _ => {
                let len = self.s[self.pos..]
                    .find([',', ']', '}', ':'])
                    .unwrap_or(self.s.len() - self.pos);
                (len > 0).then_some(())?;
                self.pos += len;
                Kind::Leaf
            }
        };
        Some(Node {
            text: &self.s[start..self.pos],
            kind,
        })
    }

    /// A map key (any value) or a struct field name (bare or backquoted).
    fn key(&mut self) -> Option<(&'a str, bool)> {
        let start = self.pos;
        if self.peek()? == b'`' {
            self.pos += quoted_len(&self.s[self.pos..], b'`')?;
            return Some((&self.s[start..self.pos], true));
        }
        let key = self.value()?;
        let field = matches!(key.kind, Kind::Leaf) && bare_name(key.text);
        Some((key.text, field))
    }
}

/// Length of the literal `s` starts with, up to its closing `close` (backslash escapes).
pub(super) fn quoted_len(s: &str, close: u8) -> Option<usize> {
    let b = s.as_bytes();
    let mut i = 1;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            c if c == close => return Some(i + 1),
            _ => i += 1,
        }
    }
    None
}

/// Length of the list or map spelled at the start of `s`, if one is.
pub(super) fn value_len(s: &str) -> Option<usize> {
    let mut r = Reader { s, pos: 0 };
    r.value().map(|_| r.pos)
}

fn parse(s: &str) -> Option<Node<'_>> {
    let mut r = Reader { s, pos: 0 };
    let node = r.value()?;
    (r.pos == s.len()).then_some(node)
}

fn is_nested(cell: &str) -> bool {
    cell.starts_with('[') || cell.starts_with('{')
}

/// Spelling of a side that has no value at a path (a map key on one side only).
const ABSENT: &str = "(absent)";

/// What one comparison of two cells found: the changes beyond tolerance, the values within it.
struct Walk<'t, 'o> {
    column: &'t str,
    tol: Option<&'t Tolerance>,
    out: &'o mut Vec<CellChange>,
    tolerated: usize,
}

impl Walk<'_, '_> {
    fn change(&mut self, path: &str, old: &str, new: &str) {
        self.out.push(CellChange {
            column: self.column.to_string(),
            path: path.to_string(),
            old: old.to_string(),
            new: new.to_string(),
        });
    }

    fn leaf(&mut self, path: &str, old: &str, new: &str) {
        if old == new {
            return;
        }
        let within = self.tol.is_some_and(
            |t| matches!((number(old), number(new)), (Some(o), Some(n)) if t.allows(o, n)),
        );
        if within {
            self.tolerated += 1;
        } else {
            self.change(path, old, new);
        }
    }

    fn node<'n, 'a: 'n>(&mut self, path: &str, old: &'n Node<'a>, new: &'n Node<'a>) {
        if old.text == new.text {
            return;
        }
        match (&old.kind, &new.kind) {
            (Kind::Leaf, Kind::Leaf) => self.leaf(path, old.text, new.text),
            (Kind::List(a), Kind::List(b)) if a.len() == b.len() => {
                for (i, (x, y)) in a.iter().zip(b).enumerate() {
                    self.node(&format!("{path}[{i}]"), x, y);
                }
            }
            (Kind::Entries(a), Kind::Entries(b)) => {
                let at = |key: &str, field: bool| {
                    if field {
                        format!("{path}.{key}")
                    } else {
                        format!("{path}[{key}]")
                    }
                };
                // A JSON document can hold thousands of keys: look them up, not scan for them.
                let index =
                    |e: &'n [(&'a str, bool, Node<'a>)]| -> HashMap<(&'a str, bool), &'n Node<'a>> {
                        e.iter().map(|(k, f, v)| ((*k, *f), v)).collect()
                    };
                let (in_a, in_b) = (index(a), index(b));
                for (key, field, x) in a {
                    match in_b.get(&(*key, *field)) {
                        Some(y) => self.node(&at(key, *field), x, y),
                        None => self.change(&at(key, *field), x.text, ABSENT),
                    }
                }
                for (key, field, y) in b {
                    if !in_a.contains_key(&(*key, *field)) {
                        self.change(&at(key, *field), ABSENT, y.text);
                    }
                }
            }
            // Another shape, or a list of another length: the whole value at this path.
            _ if old.text != new.text => self.change(path, old.text, new.text),
            _ => {}
        }
    }
}

/// Compares a golden cell with a new one of `column` and records what changed: one change for
/// a scalar, one per differing element (with its path) for lists, maps and structs. Numbers
/// within `tol` (anywhere inside the cell) count in the returned number instead.
pub(super) fn compare_cell(
    column: &str,
    old: &str,
    new: &str,
    tol: Option<&Tolerance>,
    out: &mut Vec<CellChange>,
) -> usize {
    let mut walk = Walk {
        column,
        tol,
        out,
        tolerated: 0,
    };
    match (is_nested(old) || is_nested(new))
        .then(|| parse(old).zip(parse(new)))
        .flatten()
    {
        Some((o, n)) => walk.node("", &o, &n),
        None => walk.leaf("", old, new),
    }
    walk.tolerated
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::canonical::Column;

    fn t(s: &str) -> Value {
        Value::Text(s.into())
    }

    fn attrs() -> Value {
        Value::Map(vec![
            (t("size"), Value::Int(3)),
            (t("color"), t("red")),
            (t("tags"), Value::List(vec![Value::Bool(true), Value::Null])),
        ])
    }

    #[test]
    fn nested_values_have_one_spelling() {
        let v = Value::List(vec![Value::Int(1), Value::Null, Value::Float(0.5)]);
        assert_eq!(v.render(None), "[1, NULL, 0.5]");
        assert_eq!(Value::List(vec![]).render(None), "[]");
        assert_eq!(Value::List(vec![t("")]).render(None), r#"[""]"#);
        assert_eq!(Value::List(vec![Value::Null]).render(None), "[NULL]");
        assert_eq!(
            attrs().render(None),
            r#"{"color": "red", "size": 3, "tags": [true, NULL]}"#
        );
        let s = Value::Struct(vec![
            ("id".into(), Value::Int(7)),
            ("a b".into(), t("x")),
            ("true".into(), Value::Float(1.0 / 3.0)),
            ("`q`".into(), Value::Map(vec![])),
        ]);
        assert_eq!(
            s.render(Some(3)),
            r#"{id: 7, `a b`: "x", `true`: 0.333, `\`q\``: {}}"#
        );
    }

    #[test]
    fn json_becomes_maps_and_lists() {
        let v = Value::from_json_text(r#"{"b": [1, 2.5, null, "x"], "a": {"z": true, "y": {}}}"#);
        assert_eq!(
            v.render(None),
            r#"{"a": {"y": {}, "z": true}, "b": [1, 2.5, NULL, "x"]}"#
        );
        assert_eq!(Value::from_json_text("1e999"), t("1e999"));
        assert_eq!(Value::from_json_text(r#""s""#), t("s"));
    }

    #[test]
    fn regex_redactions_reach_inside_nested_values_and_keep_their_shape() {
        use crate::snapshot::redaction::{Redaction, redact_table};
        let mut table = Table {
            columns: vec![Column {
                name: "doc".into(),
                type_name: "jsonb".into(),
            }],
            rows: vec![vec![Value::from_json_text(
                r#"{"run-4f2a": {"ids": ["run-77", 5], "at": "2024-05-01"}, "n": 1}"#,
            )]],
        };
        let rule = Redaction {
            column: None,
            pattern: Some(regex::Regex::new("run-[0-9a-f]+").expect("regex")),
            with: "[run]".into(),
        };
        redact_table(&mut table, &[rule]).expect("redacts");
        assert_eq!(
            table.rows[0][0].render(None),
            r#"{"[run]": {"at": "2024-05-01", "ids": ["[run]", 5]}, "n": 1}"#
        );
    }

    #[test]
    fn map_keys_sort_by_their_value_not_their_text() {
        let m = Value::Map(vec![
            (Value::Int(10), t("ten")),
            (Value::Int(9), t("nine")),
            (Value::Int(-1), t("minus")),
        ]);
        assert_eq!(m.render(None), r#"{-1: "minus", 9: "nine", 10: "ten"}"#);
        let mut same = m.clone();
        if let Value::Map(e) = &mut same {
            e.reverse();
        }
        assert_eq!(m.total_cmp(&same), Ordering::Equal);
    }

    #[test]
    fn unordered_columns_render_as_sorted_multisets() {
        let mut table = Table {
            columns: vec![
                Column {
                    name: "tags".into(),
                    type_name: "text[]".into(),
                },
                Column {
                    name: "n".into(),
                    type_name: "int4".into(),
                },
            ],
            rows: vec![
                vec![
                    Value::List(vec![t("b"), Value::Null, t("a"), t("b")]),
                    Value::Int(1),
                ],
                vec![Value::Null, Value::Int(2)],
            ],
        };
        sort_unordered(&mut table, &["tags".into()]).expect("sorts");
        assert_eq!(table.rows[0][0].render(None), r#"[NULL, "a", "b", "b"]"#);
        let err = sort_unordered(&mut table, &["nope".into()]).expect_err("unknown");
        assert!(err.contains("`nope`") && err.contains("tags, n"), "{err}");
        let err = sort_unordered(&mut table, &["n".into()]).expect_err("not a list");
        assert!(err.contains("`n` (int4) holds 1, not an array"), "{err}");
    }

    #[test]
    fn rendered_values_parse_back_whole() {
        let s = Value::Struct(vec![
            ("id".into(), Value::Int(7)),
            ("odd name".into(), t("x, ] } \" ` {")),
            ("m".into(), attrs()),
            (
                "l".into(),
                Value::List(vec![Value::List(vec![]), Value::Map(vec![])]),
            ),
        ]);
        let text = s.render(None);
        assert_eq!(value_len(&format!("{text} | x=1")), Some(text.len()));
        let node = parse(&text).expect("parses");
        let Kind::Entries(fields) = &node.kind else {
            panic!("{node:?}")
        };
        let keys: Vec<(&str, bool)> = fields.iter().map(|(k, f, _)| (*k, *f)).collect();
        assert_eq!(
            keys,
            vec![("id", true), ("`odd name`", true), ("m", true), ("l", true)]
        );
        assert_eq!(fields[1].2.text, r#""x, ] } \" ` {""#);
        assert!(parse("[1, 2").is_none());
        assert!(parse("[1,2]").is_none());
        assert!(parse("{a 1}").is_none());
    }

    fn changes(old: &Value, new: &Value, tol: Option<&Tolerance>) -> (Vec<String>, usize) {
        let mut out = Vec::new();
        let n = compare_cell("c", &old.render(None), &new.render(None), tol, &mut out);
        let lines = out
            .iter()
            .map(|c| format!("{}{}: {} → {}", c.column, c.path, c.old, c.new))
            .collect();
        (lines, n)
    }

    #[test]
    fn a_changed_element_is_named_by_its_path() {
        let old = Value::Struct(vec![
            (
                "scores".into(),
                Value::List(vec![Value::Float(0.1), Value::Float(0.5)]),
            ),
            ("attrs".into(), attrs()),
        ]);
        let new = Value::Struct(vec![
            (
                "scores".into(),
                Value::List(vec![Value::Float(0.1), Value::Float(0.7)]),
            ),
            (
                "attrs".into(),
                Value::Map(vec![
                    (t("color"), t("blue")),
                    (t("tags"), Value::List(vec![Value::Bool(true)])),
                    (t("weight"), Value::Int(2)),
                ]),
            ),
        ]);
        let (lines, _) = changes(&old, &new, None);
        assert_eq!(
            lines,
            vec![
                "c.scores[1]: 0.5 → 0.7",
                r#"c.attrs["color"]: "red" → "blue""#,
                r#"c.attrs["size"]: 3 → (absent)"#,
                r#"c.attrs["tags"]: [true, NULL] → [true]"#,
                r#"c.attrs["weight"]: (absent) → 2"#,
            ]
        );
        let (lines, _) = changes(&Value::Null, &Value::List(vec![]), None);
        assert_eq!(lines, vec!["c: NULL → []"]);
    }

    #[test]
    fn tolerance_applies_to_every_number_inside_a_cell() {
        let old = Value::List(vec![Value::Float(1.0), Value::Float(2.0), t("x")]);
        let near = Value::List(vec![Value::Float(1.0004), Value::Float(2.0), t("x")]);
        let far = Value::List(vec![Value::Float(1.0004), Value::Float(2.1), t("y")]);
        let tol = Tolerance {
            abs: Some(0.001),
            rel: None,
        };
        assert_eq!(changes(&old, &near, Some(&tol)), (vec![], 1));
        let (lines, n) = changes(&old, &far, Some(&tol));
        assert_eq!(n, 1);
        assert_eq!(lines, vec!["c[1]: 2.0 → 2.1", r#"c[2]: "x" → "y""#]);
    }

    #[test]
    fn tables_with_nested_cells_round_trip_and_diff_per_element() {
        use crate::snapshot::canonical::Header;
        use crate::snapshot::table::{Tolerances, compare, parse};
        let table = |score: f64, color: &str| Table {
            columns: vec![
                Column {
                    name: "id".into(),
                    type_name: "int".into(),
                },
                Column {
                    name: "scores".into(),
                    type_name: "array<double>".into(),
                },
                Column {
                    name: "attrs".into(),
                    type_name: "map<string,string>".into(),
                },
                Column {
                    name: "note".into(),
                    type_name: "string".into(),
                },
            ],
            rows: vec![
                vec![
                    Value::Int(1),
                    Value::List(vec![Value::Float(0.1), Value::Float(score)]),
                    Value::Map(vec![(t("color"), t(color)), (t("a | b"), t("]}, \""))]),
                    t("x"),
                ],
                vec![
                    Value::Int(2),
                    Value::List(vec![]),
                    Value::Null,
                    t("[not, a list]"),
                ],
            ],
        };
        let header = Header {
            sink: "s".into(),
            source: "test".into(),
        };
        let key = ["id".to_string()];
        let golden = table(0.5, "red")
            .render(&header, &key, None)
            .expect("renders");
        assert!(
            golden.contains(
                r#"id=1 | scores=[0.1, 0.5] | attrs={"a | b": "]}, \"", "color": "red"} | note="x""#
            ),
            "{golden}"
        );
        assert!(golden.contains(r#"id=2 | scores=[] | attrs=NULL | note="[not, a list]""#));
        let g = parse(&golden).expect("parses");
        assert_eq!(g.cells(0)[2], r#"{"a | b": "]}, \"", "color": "red"}"#);
        let actual = table(0.7, "blue")
            .render(&header, &key, None)
            .expect("renders");
        let d = compare(
            &g,
            &parse(&actual).expect("parses"),
            &key,
            &Tolerances::new(),
        );
        let text = d.render();
        assert!(
            text.contains(r#"~ id=1: scores[1]: 0.5 → 0.7; attrs["color"]: "red" → "blue""#),
            "{text}"
        );
        assert!(
            text.contains("changed columns: attrs (1 row), scores (1 row)"),
            "{text}"
        );
    }

    #[test]
    fn scalar_cells_compare_as_before() {
        let (lines, _) = changes(&Value::Float(0.25), &Value::Float(0.75), None);
        assert_eq!(lines, vec!["c: 0.25 → 0.75"]);
        // A redaction placeholder in brackets is compared as a whole.
        let mut out = Vec::new();
        compare_cell("c", "[timestamp]", "[1, 2]", None, &mut out);
        assert_eq!(
            (out[0].path.as_str(), out[0].old.as_str()),
            ("", "[timestamp]")
        );
        compare_cell("c", "[ts", "[1]", None, &mut out);
        assert_eq!((out[1].path.as_str(), out[1].old.as_str()), ("", "[ts"));
    }
}
