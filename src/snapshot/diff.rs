//! Differences between a golden and a new snapshot, as a unified diff (plain text; colour is
//! added by the terminal reporter).

use similar::TextDiff;

use super::merge;
use super::table::{self, TableDiff, Tolerances};

/// A unified diff from `golden` to `actual`, or `None` when they are equal.
pub fn unified(golden: &str, actual: &str, golden_name: &str) -> Option<String> {
    if golden == actual {
        return None;
    }
    let diff = TextDiff::from_lines(golden, actual);
    let text = diff
        .unified_diff()
        .context_radius(3)
        .header(
            &format!("{golden_name} (golden)"),
            &format!("{golden_name} (actual)"),
        )
        .to_string();
    Some(text)
}

/// One changed line between a golden and a pending snapshot.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Change {
    /// `delete` (only in the golden) or `insert` (only in the pending snapshot).
    pub tag: &'static str,
    /// Its line number (1-based) in the golden, for a deletion.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub golden_line: Option<usize>,
    /// Its line number (1-based) in the pending snapshot, for an insertion.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pending_line: Option<usize>,
    /// The line, without its end of line.
    pub text: String,
}

/// Every line deleted from `golden` or inserted in `actual`, in the order of a line diff.
pub fn changes(golden: &str, actual: &str) -> Vec<Change> {
    let diff = TextDiff::from_lines(golden, actual);
    let mut out = Vec::new();
    for op in diff.ops() {
        for change in diff.iter_changes(op) {
            let text = change.value().trim_end_matches(['\n', '\r']).to_string();
            match change.tag() {
                similar::ChangeTag::Delete => out.push(Change {
                    tag: "delete",
                    golden_line: change.old_index().map(|i| i + 1),
                    pending_line: None,
                    text,
                }),
                similar::ChangeTag::Insert => out.push(Change {
                    tag: "insert",
                    golden_line: None,
                    pending_line: change.new_index().map(|i| i + 1),
                    text,
                }),
                similar::ChangeTag::Equal => {}
            }
        }
    }
    out
}

/// The golden (left) and `actual` (right) side by side in `width` columns, three lines of
/// context around each change, or `None` when they are equal. The gutter says what a row is:
/// `|` changed, `<` only in the golden, `>` only in the new snapshot, blank the same.
pub fn side_by_side(golden: &str, actual: &str, golden_name: &str, width: usize) -> Option<String> {
    if golden == actual {
        return None;
    }
    let half = (width.saturating_sub(3) / 2).max(8);
    let cell = |line: Option<&str>| -> String {
        let text: String = line.unwrap_or("").replace('\t', "    ");
        let chars: Vec<char> = text.chars().collect();
        if chars.len() > half {
            let mut cut: String = chars[..half - 1].iter().collect();
            cut.push('…');
            cut
        } else {
            format!("{text:<half$}")
        }
    };
    let old: Vec<&str> = golden.lines().collect();
    let new: Vec<&str> = actual.lines().collect();
    let diff = TextDiff::from_lines(golden, actual);
    let mut out = format!(
        "{} {} {}\n",
        cell(Some(&format!("{golden_name} (golden)"))),
        " ",
        format!("{golden_name} (new)").trim_end()
    );
    for group in diff.grouped_ops(3) {
        let (Some(first), Some(last)) = (group.first(), group.last()) else {
            continue;
        };
        let (o, n) = (first.old_range().start, first.new_range().start);
        out.push_str(&format!(
            "@@ golden {}-{} | new {}-{} @@\n",
            o + 1,
            last.old_range().end,
            n + 1,
            last.new_range().end
        ));
        for op in &group {
            let (tag, old_range, new_range) = op.as_tag_tuple();
            let rows = old_range.len().max(new_range.len());
            for i in 0..rows {
                let left = old_range.clone().nth(i).and_then(|k| old.get(k).copied());
                let right = new_range.clone().nth(i).and_then(|k| new.get(k).copied());
                let mark = match (tag, left.is_some(), right.is_some()) {
                    (similar::DiffTag::Equal, _, _) => ' ',
                    (_, true, true) => '|',
                    (_, true, false) => '<',
                    _ => '>',
                };
                let row = format!("{} {mark} {}", cell(left), cell(right));
                out.push_str(row.trim_end());
                out.push('\n');
            }
        }
    }
    Some(out)
}

/// Above this many bytes of snapshot, the line diff and the row-by-row comparison run on two
/// threads.
const PARALLEL_BYTES: usize = 4 << 20;

/// The unified diff of two snapshots and, when `table` gives a table sink's key and tolerances,
/// its row-by-row account; both `None` when the texts are equal. A keyed table whose rows are
/// sorted by their unique key is compared in one merge pass ([`merge::explain`]), which gives
/// the same diff and account; otherwise a line diff and the row account run side by side.
pub fn explain(
    golden: &str,
    actual: &str,
    golden_name: &str,
    table: Option<(&[String], &Tolerances)>,
) -> (Option<String>, Option<TableDiff>) {
    if golden == actual {
        return (None, None);
    }
    if let Some((key, tol)) = table
        && let Some((lines, rows)) = merge::explain(golden, actual, golden_name, key, tol)
    {
        return (lines, Some(rows));
    }
    let rows = || {
        let (key, tol) = table?;
        let (g, a) = table::parse(golden).zip(table::parse(actual))?;
        Some(table::compare(&g, &a, key, tol))
    };
    if table.is_none() || golden.len() + actual.len() < PARALLEL_BYTES {
        return (unified(golden, actual, golden_name), rows());
    }
    std::thread::scope(|s| {
        let by_rows = s.spawn(rows);
        let lines = unified(golden, actual, golden_name);
        let rows = by_rows
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (lines, rows)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_number_the_lines_of_each_side() {
        let c = changes("a\nb\nc\n", "a\nB\nc\nd\n");
        assert_eq!(
            c,
            vec![
                Change {
                    tag: "delete",
                    golden_line: Some(2),
                    pending_line: None,
                    text: "b".into()
                },
                Change {
                    tag: "insert",
                    golden_line: None,
                    pending_line: Some(2),
                    text: "B".into()
                },
                Change {
                    tag: "insert",
                    golden_line: None,
                    pending_line: Some(4),
                    text: "d".into()
                },
            ]
        );
        assert!(changes("same\n", "same\n").is_empty());
    }

    #[test]
    fn side_by_side_marks_changed_removed_and_added_rows() {
        let text = side_by_side("a\nb\nc\n", "a\nB\nc\nd\n", "x.snap", 40).expect("differs");
        let rows: Vec<&str> = text.lines().collect();
        assert!(rows[0].starts_with("x.snap (golden)"), "{text}");
        assert!(rows[1].starts_with("@@ golden 1-3 | new 1-4 @@"), "{text}");
        assert!(
            rows.iter()
                .any(|r| r.starts_with('b') && r.contains(" | B")),
            "{text}"
        );
        assert!(
            rows.iter().any(|r| r.trim_start().starts_with("> d")),
            "{text}"
        );
        assert!(side_by_side("s\n", "s\n", "x", 40).is_none());
    }

    #[test]
    fn explain_gives_the_same_account_on_one_thread_or_two() {
        let row = |i: usize, v: usize| format!("id={i} | v={v}\n");
        let text = |changed: usize, rows: usize| {
            let mut t = format!("# order: id\ncolumns: id int4 | v int4\nrows: {rows}\n\n");
            for i in 0..rows {
                t.push_str(&row(i, if i == changed { 1 } else { 0 }));
            }
            t
        };
        let key = vec!["id".to_string()];
        let tol = Tolerances::new();
        // Small enough for one thread, and large enough for two.
        for rows in [10, 400_000] {
            let (g, a) = (text(usize::MAX, rows), text(7, rows));
            assert!(g.len() + a.len() >= PARALLEL_BYTES || rows == 10);
            let (lines, by_rows) = explain(&g, &a, "g.snap", Some((&key, &tol)));
            let lines = lines.expect("a line diff");
            assert!(lines.contains("-id=7 | v=0\n+id=7 | v=1\n"), "{rows}");
            let by_rows = by_rows.expect("a row account");
            assert_eq!(by_rows.changed.len(), 1);
            assert_eq!(by_rows.changed[0].key, "id=7");
        }
        assert_eq!(explain("a\n", "a\n", "g", None), (None, None));
    }

    #[test]
    fn equal_texts_have_no_diff() {
        assert_eq!(unified("a\n", "a\n", "x"), None);
    }

    #[test]
    fn diff_shows_the_changed_line() {
        let d = unified("a\nb\nc\n", "a\nB\nc\n", "g.snap").expect("differs");
        assert!(d.contains("-b\n") && d.contains("+B\n"), "{d}");
        assert!(d.starts_with("--- g.snap (golden)"), "{d}");
    }
}
