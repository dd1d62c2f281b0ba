//! Whether a sink's snapshot is the same on every run of a scenario (`harness run --repeat N`):
//! what moved between the runs — the columns of a table with how far their values moved, the
//! rows that came and went, the lines of any other sink — and the smallest `tolerance` or
//! `redact` lines that would make it stable, ready to paste into the sink's `[[sink]]` table.

use std::collections::BTreeMap;

use super::table::{self, Tolerances};

/// How the values of one table column moved between runs.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ColumnMove {
    /// The column.
    pub column: String,
    /// How many cells differed from the first run's, over all runs.
    pub cells: usize,
    /// The largest |difference|, when every moved value is a number on both sides.
    pub max_abs: Option<f64>,
    /// The largest |difference| / |first run's value| (numbers only; `None` past a zero).
    pub max_rel: Option<f64>,
    /// One moved value: the first run's and another run's.
    pub example: (String, String),
}

/// What one sink did over the runs.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct SinkStability {
    /// Runs compared.
    pub runs: usize,
    /// True when some run's snapshot differs from the first.
    pub moved: bool,
    /// Table columns whose values moved, by name.
    pub columns: Vec<ColumnMove>,
    /// Keys (`col=value, ...`) of rows present in some runs and not in others.
    pub rows: Vec<String>,
    /// Lines that moved, for a sink that is not a table (or a table without `key`), as
    /// `-line` (first run) and `+line` (another run); at most [`MAX_LINES`].
    pub lines: Vec<String>,
    /// Other observations (a schema that changed, rows that cannot be paired).
    pub notes: Vec<String>,
    /// TOML lines for the sink's `[[sink]]` table that would make it stable.
    pub suggestions: Vec<String>,
}

/// How many moved lines or rows are listed.
pub const MAX_LINES: usize = 10;

/// Compares the snapshots of one sink over several runs (`snapshots[0]` is the first run's).
/// `key` is the sink's declared key (empty: none); `table` is true for a table sink.
pub fn analyse(snapshots: &[String], key: &[String], table_sink: bool) -> SinkStability {
    let mut out = SinkStability {
        runs: snapshots.len(),
        ..SinkStability::default()
    };
    let Some(first) = snapshots.first() else {
        return out;
    };
    let others: Vec<&String> = snapshots[1..].iter().filter(|s| *s != first).collect();
    if others.is_empty() {
        return out;
    }
    out.moved = true;
    let parsed_first = if table_sink && !key.is_empty() {
        table::parse(first)
    } else {
        None
    };
    match parsed_first {
        Some(g) => {
            let mut columns: BTreeMap<String, ColumnMove> = BTreeMap::new();
            for other in &others {
                let Some(a) = table::parse(other) else {
                    out.notes
                        .push("a run's snapshot is not a table; compared by lines".into());
                    lines_moved(first, other, &mut out.lines);
                    continue;
                };
                let diff = table::compare(&g, &a, key, &Tolerances::default());
                for change in &diff.schema {
                    let note = format!("the columns changed between runs: {change}");
                    if !out.notes.contains(&note) {
                        out.notes.push(note);
                    }
                }
                if let Some(note) = diff.key_note
                    && !out.notes.contains(&note)
                {
                    out.notes.push(note);
                }
                for row in diff.added.iter().chain(&diff.removed) {
                    if out.rows.len() < MAX_LINES && !out.rows.contains(row) {
                        out.rows.push(row.clone());
                    }
                }
                for row in &diff.changed {
                    for cell in &row.cells {
                        let entry =
                            columns
                                .entry(cell.column.clone())
                                .or_insert_with(|| ColumnMove {
                                    column: cell.column.clone(),
                                    cells: 0,
                                    max_abs: Some(0.0),
                                    max_rel: Some(0.0),
                                    example: (cell.old.clone(), cell.new.clone()),
                                });
                        entry.cells += 1;
                        match (cell.old.parse::<f64>(), cell.new.parse::<f64>()) {
                            (Ok(o), Ok(n)) if o.is_finite() && n.is_finite() => {
                                let abs = (n - o).abs();
                                entry.max_abs = entry.max_abs.map(|m| m.max(abs));
                                entry.max_rel = match (entry.max_rel, o != 0.0) {
                                    (Some(m), true) => Some(m.max(abs / o.abs())),
                                    _ => None,
                                };
                            }
                            _ => {
                                entry.max_abs = None;
                                entry.max_rel = None;
                            }
                        }
                    }
                }
            }
            out.columns = columns.into_values().collect();
        }
        None => {
            for other in &others {
                lines_moved(first, other, &mut out.lines);
            }
            if table_sink && key.is_empty() {
                out.notes.push(
                    "the sink has no `key`: rows cannot be paired, so no tolerance applies; declare the columns that identify a row"
                        .into(),
                );
            }
        }
    }
    out.suggestions = suggestions(&out);
    out
}

/// Adds the lines that differ between `first` and `other` to `lines` (at most [`MAX_LINES`]).
fn lines_moved(first: &str, other: &str, lines: &mut Vec<String>) {
    let diff = similar::TextDiff::from_lines(first, other);
    for change in diff.iter_all_changes() {
        let sign = match change.tag() {
            similar::ChangeTag::Delete => '-',
            similar::ChangeTag::Insert => '+',
            similar::ChangeTag::Equal => continue,
        };
        let line = format!("{sign}{}", change.value().trim_end_matches(['\n', '\r']));
        if lines.len() < MAX_LINES && !lines.contains(&line) {
            lines.push(line);
        }
    }
}

/// The `tolerance` and `redact` lines that cover every moved column.
fn suggestions(s: &SinkStability) -> Vec<String> {
    let mut out = Vec::new();
    let numeric: Vec<String> = s
        .columns
        .iter()
        .filter_map(|c| {
            let abs = c.max_abs?;
            Some(format!(
                "{} = {{ abs = {} }}",
                toml_key(&c.column),
                bound(abs)
            ))
        })
        .collect();
    if !numeric.is_empty() {
        out.push(format!("tolerance = {{ {} }}", numeric.join(", ")));
    }
    let text: Vec<String> = s
        .columns
        .iter()
        .filter(|c| c.max_abs.is_none())
        .map(|c| format!("{{ column = \"{}\" }}", c.column.replace('"', "\\\"")))
        .collect();
    if !text.is_empty() {
        out.push(format!("redact = [{}]", text.join(", ")));
    }
    out
}

/// The smallest bound of one significant digit that is at least `x` (0.000342 → 0.0004).
pub fn bound(x: f64) -> String {
    if x <= 0.0 || !x.is_finite() {
        return "0".into();
    }
    let exp = x.log10().floor() as i32;
    let scale = 10f64.powi(exp);
    let mut digit = (x / scale).ceil();
    // (x / scale) may land a hair above an integer through rounding.
    if digit - x / scale > 1.0 - 1e-9 {
        digit -= 1.0;
    }
    let value = digit * scale;
    let decimals = (-exp).max(0) as usize;
    let text = format!("{value:.decimals$}");
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    }
}

fn toml_key(name: &str) -> String {
    if !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        name.to_string()
    } else {
        format!("\"{}\"", name.replace('"', "\\\""))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(rows: &[(&str, &str, &str)]) -> String {
        let mut t = format!(
            "# harness snapshot v1\n# sink: s\n# source: t\n# order: id\ncolumns: id int4 | score float8 | label text\nrows: {}\n\n",
            rows.len()
        );
        for (id, score, label) in rows {
            t.push_str(&format!("id={id} | score={score} | label=\"{label}\"\n"));
        }
        t
    }

    #[test]
    fn bounds_round_up_to_one_significant_digit() {
        assert_eq!(bound(0.000342), "0.0004");
        assert_eq!(bound(0.03), "0.03");
        assert_eq!(bound(2.5), "3");
        assert_eq!(bound(120.0), "200");
        assert_eq!(bound(0.0), "0");
    }

    #[test]
    fn stable_runs_move_nothing() {
        let a = table(&[("1", "0.5", "x")]);
        let s = analyse(&[a.clone(), a.clone(), a], &["id".into()], true);
        assert!(!s.moved);
        assert!(s.suggestions.is_empty());
    }

    #[test]
    fn a_moving_number_gets_a_tolerance_and_a_moving_text_a_redaction() {
        let runs = [
            table(&[("1", "0.5", "x"), ("2", "1.0", "y")]),
            table(&[("1", "0.5003", "x"), ("2", "1.0", "z")]),
            table(&[("1", "0.4999", "x"), ("2", "1.0", "y")]),
        ];
        let s = analyse(&runs, &["id".into()], true);
        assert!(s.moved);
        let cols: Vec<&str> = s.columns.iter().map(|c| c.column.as_str()).collect();
        assert_eq!(cols, ["label", "score"], "{s:?}");
        assert_eq!(
            s.suggestions,
            [
                "tolerance = { score = { abs = 0.0003 } }",
                "redact = [{ column = \"label\" }]"
            ]
        );
    }

    #[test]
    fn a_sink_that_is_no_table_lists_the_lines_that_moved() {
        let runs = [
            "k1 = a\nk2 = b\n".to_string(),
            "k1 = a\nk2 = c\n".to_string(),
        ];
        let s = analyse(&runs, &[], false);
        assert!(s.moved);
        assert_eq!(s.lines, ["-k2 = b", "+k2 = c"]);
    }
}
