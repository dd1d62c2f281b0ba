//! Table-aware comparison of table snapshots: rows paired by the sink's key, the columns that
//! changed named with their old and new values, per-column float tolerance, and schema changes
//! reported as such.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use super::nested::{self, quoted_len};
pub use crate::outcome::table_diff::{CellChange, ChangedRow, SchemaChange, TableDiff};

/// How far a number may move before it counts as changed.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Tolerance {
    /// Absolute: `|new - golden| <= abs`.
    pub abs: Option<f64>,
    /// Relative to the golden value: `|new - golden| <= rel * |golden|`.
    pub rel: Option<f64>,
}

impl Tolerance {
    /// True when `new` is close enough to the golden `old` (within either bound).
    pub fn allows(&self, old: f64, new: f64) -> bool {
        if old == new {
            return true;
        }
        if !old.is_finite() || !new.is_finite() {
            return false;
        }
        let d = (old - new).abs();
        self.abs.is_some_and(|a| d <= a) || self.rel.is_some_and(|r| d <= r * old.abs())
    }
}

/// Tolerances by column name; `*` applies to every column not named.
pub type Tolerances = BTreeMap<String, Tolerance>;

pub(super) fn tolerance_for<'a>(tol: &'a Tolerances, column: &str) -> Option<&'a Tolerance> {
    tol.get(column).or_else(|| tol.get("*"))
}

/// A rendered table read back: what precedes the table, its columns and its rows. Rows stay
/// lines of the text they were read from (a million-row snapshot is read without a string per
/// cell); [`Parsed::cells`] splits one into its cells.
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed<'a> {
    /// Lines before the `columns:` line (header, order, file listing).
    pub preamble: String,
    /// `(name, type)` of every column.
    pub columns: Vec<(String, String)>,
    /// Each row's line, checked to hold one cell per column.
    pub rows: Vec<&'a str>,
}

impl<'a> Parsed<'a> {
    /// The cells of row `i`, in column order, each in its rendered spelling.
    pub fn cells(&self, i: usize) -> Vec<&'a str> {
        let mut out = Vec::with_capacity(self.columns.len());
        // Every row was split once by `parse`, so this cannot fail.
        let _ = split_row(self.rows[i], &self.columns, &mut out);
        out
    }
}

/// Reads a rendered table snapshot back; `None` when the text is not one (or is damaged).
pub fn parse(text: &str) -> Option<Parsed<'_>> {
    let mut lines = text.lines();
    let mut preamble = String::new();
    let columns_line = loop {
        let line = lines.next()?;
        if let Some(rest) = line.strip_prefix("columns:") {
            break rest.trim_start();
        }
        preamble.push_str(line);
        preamble.push('\n');
    };
    let columns = parse_columns(columns_line);
    let count: usize = lines.next()?.strip_prefix("rows: ")?.trim().parse().ok()?;
    if !lines.next()?.is_empty() {
        return None;
    }
    let mut rows = Vec::with_capacity(count);
    let mut cells = Vec::with_capacity(columns.len());
    for _ in 0..count {
        let line = lines.next()?;
        cells.clear();
        split_row(line, &columns, &mut cells)?;
        rows.push(line);
    }
    if lines.any(|l| !l.is_empty()) {
        return None;
    }
    Some(Parsed {
        preamble,
        columns,
        rows,
    })
}

/// The `(name, type)` of every column of a `columns:` line (what follows `columns:`).
pub(super) fn parse_columns(line: &str) -> Vec<(String, String)> {
    if line.is_empty() {
        return vec![];
    }
    line.split(" | ")
        .map(|c| match c.split_once(' ') {
            Some((n, t)) => (n.to_string(), t.to_string()),
            None => (c.to_string(), String::new()),
        })
        .collect()
}

/// Splits `name=value | ...` into its values; `None` when the line does not hold the columns.
pub(super) fn split_row<'a>(
    line: &'a str,
    columns: &[(String, String)],
    out: &mut Vec<&'a str>,
) -> Option<()> {
    split_row_upto(line, columns, columns.len(), out)?
        .is_empty()
        .then_some(())
}

/// Splits the first `upto` cells of `name=value | ...` into `out`; what follows them, or `None`
/// when the line does not hold those columns.
pub(super) fn split_row_upto<'a>(
    line: &'a str,
    columns: &[(String, String)],
    upto: usize,
    out: &mut Vec<&'a str>,
) -> Option<&'a str> {
    let mut rest = line;
    for (i, (name, _)) in columns.iter().take(upto).enumerate() {
        if i > 0 {
            rest = rest.strip_prefix(" | ")?;
        }
        rest = rest.strip_prefix(name.as_str())?.strip_prefix('=')?;
        let to_bar = |rest: &str| rest.find(" | ").unwrap_or(rest.len());
        let len = if rest.starts_with('"') {
            quoted_len(rest, b'"')?
        } else if rest.starts_with(['[', '{']) {
            // A list or map ends where its brackets close; a bare placeholder that only looks
            // like one (`[ts`, `[a]b`) ends at the next ` | ` as any bare value does.
            match nested::value_len(rest) {
                Some(n) if rest[n..].is_empty() || rest[n..].starts_with(" | ") => n,
                _ => to_bar(rest),
            }
        } else {
            to_bar(rest)
        };
        out.push(&rest[..len]);
        rest = &rest[len..];
    }
    Some(rest)
}

/// FNV-1a: row keys come from snapshot files, not from an adversary, and a million of them
/// hash several times faster than with the default (DoS-resistant) hasher.
#[derive(Debug, Clone, Copy, Default)]
struct FastHash;

#[derive(Debug)]
struct Fnv(u64);

impl std::hash::BuildHasher for FastHash {
    type Hasher = Fnv;
    fn build_hasher(&self) -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl std::hash::Hasher for Fnv {
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

/// The number a cell (or an element of one) spells, if it spells one.
pub(super) fn number(cell: &str) -> Option<f64> {
    match cell {
        "NaN" => Some(f64::NAN),
        "inf" => Some(f64::INFINITY),
        "-inf" => Some(f64::NEG_INFINITY),
        _ => cell.parse().ok(),
    }
}

/// How the columns of two rendered tables relate.
pub(super) struct Schema<'c> {
    /// Columns added, removed, retyped or reordered.
    pub changes: Vec<SchemaChange>,
    /// Columns on both sides, in the golden's order, with their index on each side.
    pub common: Vec<(&'c str, usize, usize)>,
    /// True when the columns on both sides come in the same order.
    pub same_order: bool,
}

/// The schema changes from the `golden` columns to the `actual` ones.
pub(super) fn schema<'c>(
    golden: &'c [(String, String)],
    actual: &'c [(String, String)],
) -> Schema<'c> {
    let g_names: Vec<&str> = golden.iter().map(|c| c.0.as_str()).collect();
    let a_names: Vec<&str> = actual.iter().map(|c| c.0.as_str()).collect();
    let mut changes = Vec::new();
    for (name, ty) in golden {
        match actual.iter().find(|c| &c.0 == name) {
            None => changes.push(SchemaChange::Removed {
                column: name.clone(),
                type_name: ty.clone(),
            }),
            Some((_, t)) if t != ty => changes.push(SchemaChange::TypeChanged {
                column: name.clone(),
                old: ty.clone(),
                new: t.clone(),
            }),
            Some(_) => {}
        }
    }
    for (name, ty) in actual {
        if !g_names.contains(&name.as_str()) {
            changes.push(SchemaChange::Added {
                column: name.clone(),
                type_name: ty.clone(),
            });
        }
    }
    let common: Vec<(&str, usize, usize)> = g_names
        .iter()
        .enumerate()
        .filter_map(|(gi, n)| a_names.iter().position(|a| a == n).map(|ai| (*n, gi, ai)))
        .collect();
    let a_order: Vec<&str> = a_names
        .iter()
        .copied()
        .filter(|n| g_names.contains(n))
        .collect();
    let g_order: Vec<&str> = common.iter().map(|c| c.0).collect();
    let same_order = a_order == g_order;
    if !same_order {
        changes.push(SchemaChange::Reordered {
            old: g_order.iter().map(|s| s.to_string()).collect(),
            new: a_order.iter().map(|s| s.to_string()).collect(),
        });
    }
    Schema {
        changes,
        common,
        same_order,
    }
}

/// The account of one paired row whose line differs: its changed cells (`None` when every
/// difference is within its tolerance), counting the tolerated ones in `tolerated`.
pub(super) fn changed_row(
    key: &[String],
    key_cells: &[&str],
    (g, a): (&[&str], &[&str]),
    common: &[(&str, usize, usize)],
    tol: &Tolerances,
    tolerated: &mut usize,
) -> Option<ChangedRow> {
    let mut cells = Vec::new();
    for &(name, gi, ai) in common {
        let (old, new) = (g[gi], a[ai]);
        if old != new {
            *tolerated +=
                nested::compare_cell(name, old, new, tolerance_for(tol, name), &mut cells);
        }
    }
    (!cells.is_empty()).then(|| ChangedRow {
        key: key
            .iter()
            .zip(key_cells)
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(", "),
        cells,
    })
}

/// Compares two rendered tables. Rows are paired by `key` when every key column is on both
/// sides (the n-th golden row of a key with the n-th new one), else matched whole over the
/// columns both sides have.
pub fn compare<'a>(
    golden: &Parsed<'a>,
    actual: &Parsed<'a>,
    key: &[String],
    tol: &Tolerances,
) -> TableDiff {
    let g_names: Vec<&str> = golden.columns.iter().map(|c| c.0.as_str()).collect();
    let a_names: Vec<&str> = actual.columns.iter().map(|c| c.0.as_str()).collect();
    let Schema {
        changes: schema,
        common,
        same_order,
    } = schema(&golden.columns, &actual.columns);
    let key_cols: Option<Vec<(usize, usize)>> = key
        .iter()
        .map(|k| {
            let gi = g_names.iter().position(|n| n == k)?;
            let ai = a_names.iter().position(|n| n == k)?;
            Some((gi, ai))
        })
        .collect();
    let mut diff = TableDiff {
        key: vec![],
        key_note: None,
        preamble_changed: golden.preamble != actual.preamble,
        schema,
        added: vec![],
        removed: vec![],
        changed: vec![],
        tolerated: 0,
        golden_rows: golden.rows.len(),
        actual_rows: actual.rows.len(),
    };
    // A row rendered from all its columns in order is its line, so removed and added rows are
    // shown as read.
    match key_cols {
        Some(kc) if !key.is_empty() => {
            diff.key = key.to_vec();
            // Key cells of a row, into a buffer that is reused from row to row.
            let key_cells = |p: &Parsed<'a>,
                             i: usize,
                             golden_side: bool,
                             row: &mut Vec<&'a str>,
                             out: &mut Vec<&'a str>| {
                row.clear();
                let _ = split_row(p.rows[i], &p.columns, row);
                out.clear();
                out.extend(
                    kc.iter()
                        .map(|(gi, ai)| row[if golden_side { *gi } else { *ai }]),
                );
            };
            // The actual rows of each key, in order: the first and last in the map, the rest
            // chained through `next` (a million rows cost two numbers each, not a queue each).
            const NONE: usize = usize::MAX;
            let mut by_key: HashMap<Box<[&'a str]>, (usize, usize), FastHash> =
                HashMap::with_capacity_and_hasher(actual.rows.len(), FastHash);
            let mut next = vec![NONE; actual.rows.len()];
            let mut unique = true;
            let (mut row, mut k) = (Vec::new(), Vec::new());
            for i in 0..actual.rows.len() {
                key_cells(actual, i, false, &mut row, &mut k);
                match by_key.get_mut(k.as_slice()) {
                    Some((_, last)) => {
                        next[*last] = i;
                        *last = i;
                        unique = false;
                    }
                    None => {
                        by_key.insert(k.as_slice().into(), (i, i));
                    }
                }
            }
            if !unique {
                diff.key_note = Some(format!(
                    "the key ({}) is not unique; rows of one key are paired in order",
                    key.join(", ")
                ));
            }
            let mut paired = vec![false; actual.rows.len()];
            for (gi_row, g_line) in golden.rows.iter().enumerate() {
                key_cells(golden, gi_row, true, &mut row, &mut k);
                let ai = match by_key.get_mut(k.as_slice()) {
                    Some(slot) if slot.0 != NONE => {
                        let ai = slot.0;
                        slot.0 = next[ai];
                        ai
                    }
                    _ => {
                        diff.removed.push(g_line.to_string());
                        continue;
                    }
                };
                paired[ai] = true;
                // The same line holds the same columns with the same values.
                if *g_line == actual.rows[ai] {
                    continue;
                }
                let a = actual.cells(ai);
                if let Some(changed) =
                    changed_row(key, &k, (&row, &a), &common, tol, &mut diff.tolerated)
                {
                    diff.changed.push(changed);
                }
            }
            for (i, line) in actual.rows.iter().enumerate() {
                if !paired[i] {
                    diff.added.push(line.to_string());
                }
            }
        }
        other => {
            if other.is_none() {
                let missing: Vec<&String> = key
                    .iter()
                    .filter(|k| !g_names.contains(&k.as_str()) || !a_names.contains(&k.as_str()))
                    .collect();
                diff.key_note = Some(format!(
                    "key column {} is not on both sides; rows are matched whole",
                    missing
                        .iter()
                        .map(|k| format!("`{k}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
            // With the same columns in the same order, a row's projection is its line.
            let whole =
                common.len() == g_names.len() && common.len() == a_names.len() && same_order;
            let project = |p: &Parsed<'a>, i: usize, golden_side: bool| -> Cow<'a, str> {
                if whole {
                    return Cow::Borrowed(p.rows[i]);
                }
                let row = p.cells(i);
                Cow::Owned(
                    common
                        .iter()
                        .map(|&(n, gi, ai)| {
                            format!("{n}={}", row[if golden_side { gi } else { ai }])
                        })
                        .collect::<Vec<_>>()
                        .join(" | "),
                )
            };
            let mut counts: HashMap<Cow<'a, str>, isize> = HashMap::new();
            for i in 0..actual.rows.len() {
                *counts.entry(project(actual, i, false)).or_default() += 1;
            }
            for (i, line) in golden.rows.iter().enumerate() {
                match counts.get_mut(&project(golden, i, true)) {
                    Some(n) if *n > 0 => *n -= 1,
                    _ => diff.removed.push(line.to_string()),
                }
            }
            for i in (0..actual.rows.len()).rev() {
                if let Some(n) = counts.get_mut(&project(actual, i, false))
                    && *n > 0
                {
                    *n -= 1;
                    diff.added.push(actual.rows[i].to_string());
                }
            }
            diff.added.reverse();
        }
    }
    diff
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::snapshot::canonical::{Column, Header};
    use crate::snapshot::canonical::{Table, Value};

    pub(in crate::snapshot) fn table(cols: &[(&str, &str)], rows: Vec<Vec<Value>>) -> Table {
        Table {
            columns: cols
                .iter()
                .map(|(n, t)| Column {
                    name: n.to_string(),
                    type_name: t.to_string(),
                })
                .collect(),
            rows,
        }
    }

    pub(in crate::snapshot) fn render(t: &Table, key: &[&str]) -> String {
        let key: Vec<String> = key.iter().map(|k| k.to_string()).collect();
        t.render(
            &Header {
                sink: "s".into(),
                source: "test".into(),
            },
            &key,
            None,
        )
        .expect("renders")
    }

    fn scores(rows: &[(i64, f64, &str)]) -> Table {
        table(
            &[("id", "int4"), ("score", "float8"), ("note", "text")],
            rows.iter()
                .map(|(i, s, n)| vec![Value::Int(*i), Value::Float(*s), Value::Text((*n).into())])
                .collect(),
        )
    }

    fn keyed(g: &Table, a: &Table, tol: &Tolerances) -> TableDiff {
        let (g, a) = (render(g, &["id"]), render(a, &["id"]));
        compare(
            &parse(&g).expect("golden parses"),
            &parse(&a).expect("actual parses"),
            &["id".to_string()],
            tol,
        )
    }

    #[test]
    fn rendered_tables_parse_back_cell_by_cell() {
        let t = table(
            &[("id", "int4"), ("t", "text"), ("n", "numeric")],
            vec![
                vec![
                    Value::Int(1),
                    Value::Text("a | b=\"c\"".into()),
                    Value::Null,
                ],
                vec![
                    Value::Int(2),
                    Value::Text("".into()),
                    Value::Numeric("1.50".into()),
                ],
            ],
        );
        let text = render(&t, &["id"]);
        let p = parse(&text).expect("parses");
        assert_eq!(p.columns[1], ("t".to_string(), "text".to_string()));
        assert_eq!(p.cells(0), vec!["1", r#""a | b=\"c\"""#, "NULL"]);
        assert_eq!(p.cells(1), vec!["2", r#""""#, "1.50"]);
        assert!(p.preamble.contains("# order: id"), "{}", p.preamble);
    }

    #[test]
    fn damaged_text_does_not_parse() {
        let t = scores(&[(1, 0.5, "x")]);
        let text = render(&t, &["id"]);
        assert!(parse(&text.replace("rows: 1", "rows: 2")).is_none());
        assert!(parse(&text.replace("score=", "scor=")).is_none());
        assert!(parse("just text\n").is_none());
    }

    #[test]
    fn keyed_diff_names_the_changed_column_with_old_and_new_values() {
        let g = scores(&[(1, 0.5, "a"), (2, 0.25, "b"), (3, 1.0, "c")]);
        let a = scores(&[(1, 0.5, "a"), (2, 0.75, "b"), (4, 2.0, "d")]);
        let d = keyed(&g, &a, &Tolerances::new());
        assert!(!d.passes());
        assert_eq!(
            d.changed,
            vec![ChangedRow {
                key: "id=2".into(),
                cells: vec![CellChange {
                    column: "score".into(),
                    path: String::new(),
                    old: "0.25".into(),
                    new: "0.75".into()
                }]
            }]
        );
        assert_eq!(d.added, vec![r#"id=4 | score=2.0 | note="d""#.to_string()]);
        assert_eq!(
            d.removed,
            vec![r#"id=3 | score=1.0 | note="c""#.to_string()]
        );
        let text = d.render();
        assert!(text.contains("~ id=2: score: 0.25 → 0.75"), "{text}");
        assert!(text.contains("changed columns: score (1 row)"), "{text}");
    }

    #[test]
    fn a_change_within_tolerance_passes_and_one_beyond_fails() {
        let g = scores(&[(1, 100.0, "a"), (2, 0.5, "b")]);
        let near = scores(&[(1, 100.0005, "a"), (2, 0.5001, "b")]);
        let far = scores(&[(1, 100.5, "a"), (2, 0.5001, "b")]);
        let tol: Tolerances = [(
            "score".to_string(),
            Tolerance {
                abs: Some(0.001),
                rel: None,
            },
        )]
        .into();
        let d = keyed(&g, &near, &tol);
        assert!(d.passes(), "{}", d.render());
        assert_eq!(d.tolerated, 2);
        let d = keyed(&g, &far, &tol);
        assert!(!d.passes());
        assert_eq!(d.changed.len(), 1);
        assert_eq!(d.changed[0].cells[0].new, "100.5");
        // Relative: 0.1% of 100 allows 100.05, not 100.5.
        let rel: Tolerances = [(
            "*".to_string(),
            Tolerance {
                abs: None,
                rel: Some(0.001),
            },
        )]
        .into();
        assert!(keyed(&g, &scores(&[(1, 100.05, "a"), (2, 0.5, "b")]), &rel).passes());
        assert!(!keyed(&g, &far, &rel).passes());
        // Tolerance never hides a change of text.
        assert!(!keyed(&g, &scores(&[(1, 100.0, "z"), (2, 0.5, "b")]), &rel).passes());
    }

    #[test]
    fn tolerance_handles_special_values() {
        let t = Tolerance {
            abs: Some(1.0),
            rel: Some(1.0),
        };
        assert!(t.allows(f64::INFINITY, f64::INFINITY));
        assert!(!t.allows(1.0, f64::NAN));
        assert!(!t.allows(f64::INFINITY, 1e308));
        assert!(t.allows(0.0, 1.0));
        assert!(!t.allows(0.0, 1.5));
    }

    #[test]
    fn schema_changes_are_reported_as_such() {
        let g = table(
            &[("id", "int4"), ("a", "text"), ("b", "int4")],
            vec![vec![Value::Int(1), Value::Text("x".into()), Value::Int(2)]],
        );
        let a = table(
            &[("id", "int4"), ("b", "int8"), ("c", "bool")],
            vec![vec![Value::Int(1), Value::Int(2), Value::Bool(true)]],
        );
        let d = keyed(&g, &a, &Tolerances::new());
        assert_eq!(
            d.schema,
            vec![
                SchemaChange::Removed {
                    column: "a".into(),
                    type_name: "text".into()
                },
                SchemaChange::TypeChanged {
                    column: "b".into(),
                    old: "int4".into(),
                    new: "int8".into()
                },
                SchemaChange::Added {
                    column: "c".into(),
                    type_name: "bool".into()
                },
            ]
        );
        assert!(d.changed.is_empty(), "{:?}", d.changed);
        assert!(!d.passes());
        assert!(
            d.render()
                .contains("schema: column `b` changed type: int4 → int8")
        );
    }

    #[test]
    fn without_a_key_rows_are_matched_whole() {
        let g = scores(&[(1, 0.5, "a"), (1, 0.5, "a"), (2, 1.0, "b")]);
        let a = scores(&[(1, 0.5, "a"), (2, 1.0, "b"), (3, 1.0, "c")]);
        let d = compare(
            &parse(&render(&g, &[])).expect("parses"),
            &parse(&render(&a, &[])).expect("parses"),
            &[],
            &Tolerances::new(),
        );
        assert_eq!(
            d.removed,
            vec![r#"id=1 | score=0.5 | note="a""#.to_string()]
        );
        assert_eq!(d.added, vec![r#"id=3 | score=1.0 | note="c""#.to_string()]);
        assert!(d.key_note.is_none());
    }

    #[test]
    fn a_key_column_gone_from_one_side_falls_back_to_whole_rows() {
        let g = scores(&[(1, 0.5, "a")]);
        let a = table(
            &[("score", "float8"), ("note", "text")],
            vec![vec![Value::Float(0.5), Value::Text("a".into())]],
        );
        let d = compare(
            &parse(&render(&g, &["id"])).expect("parses"),
            &parse(&render(&a, &[])).expect("parses"),
            &["id".to_string()],
            &Tolerances::new(),
        );
        assert!(d.key.is_empty());
        assert!(d.key_note.as_deref().unwrap_or("").contains("`id`"));
        assert!(d.added.is_empty() && d.removed.is_empty());
        assert!(!d.passes(), "a removed column still fails");
    }
}
