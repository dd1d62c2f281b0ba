//! The diffs of `report.html`: a sink's golden and actual snapshot side by side, changed lines
//! paired and the values that differ marked, or a unified diff as text when the snapshots
//! cannot be read.

use std::fmt::Write as _;
use std::time::Duration;

use similar::{Algorithm, DiffOp};

use super::escape;

/// Equal lines shown around each change of a side-by-side diff.
const DIFF_CONTEXT: usize = 3;

/// Rows of one side-by-side diff at most; the rest is in the `.diff` file of the report folder.
const DIFF_ROWS: usize = 3000;

/// How long the line diff of one sink may take before it settles for a coarser answer.
const DIFF_DEADLINE: Duration = Duration::from_secs(2);

/// A unified diff as text, its lines coloured.
pub(super) fn unified_block(h: &mut String, diff: &str) {
    h.push_str("<pre class=\"udiff\">");
    for line in diff.lines() {
        let class = if line.starts_with("+++") || line.starts_with("---") {
            "hd"
        } else if line.starts_with('+') {
            "ins"
        } else if line.starts_with('-') {
            "del"
        } else if line.starts_with("@@") {
            "hunk"
        } else {
            "eq"
        };
        let _ = writeln!(h, "<span class=\"{class}\">{}</span>", escape(line));
    }
    h.push_str("</pre>\n");
}

/// One row of a side-by-side diff; line numbers count from 1.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Row<'a> {
    /// The same line on both sides.
    Same {
        old: usize,
        new: usize,
        text: &'a str,
    },
    /// A golden line, an actual line, or a golden line paired with the actual line replacing it.
    Changed {
        old: Option<(usize, &'a str)>,
        new: Option<(usize, &'a str)>,
    },
    /// Equal lines left out.
    Hidden(usize),
}

/// The rows of a side-by-side diff from `golden` to `actual`: changed lines paired up, `context`
/// equal lines around each change, longer runs of equal lines folded into `Hidden`. Empty when
/// the lines are the same.
fn side_by_side<'a>(golden: &'a str, actual: &'a str, context: usize) -> Vec<Row<'a>> {
    let old: Vec<&str> = golden.lines().collect();
    let new: Vec<&str> = actual.lines().collect();
    let deadline = std::time::Instant::now() + DIFF_DEADLINE;
    let ops = similar::capture_diff_slices_deadline(Algorithm::Myers, &old, &new, Some(deadline));
    let mut rows = Vec::new();
    let mut shown_to = 0;
    for group in similar::group_diff_ops(ops, context) {
        let Some(first) = group.first() else { continue };
        let from = first.old_range().start;
        if from > shown_to {
            rows.push(Row::Hidden(from - shown_to));
        }
        for op in &group {
            let (o, n) = (op.old_range(), op.new_range());
            match op {
                DiffOp::Equal { .. } => {
                    rows.extend(o.clone().zip(n.clone()).map(|(a, b)| Row::Same {
                        old: a + 1,
                        new: b + 1,
                        text: old[a],
                    }))
                }
                DiffOp::Delete { .. } | DiffOp::Insert { .. } | DiffOp::Replace { .. } => {
                    for k in 0..o.len().max(n.len()) {
                        rows.push(Row::Changed {
                            old: (k < o.len()).then(|| (o.start + k + 1, old[o.start + k])),
                            new: (k < n.len()).then(|| (n.start + k + 1, new[n.start + k])),
                        });
                    }
                }
            }
            shown_to = o.end;
        }
    }
    if !rows.is_empty() && shown_to < old.len() {
        rows.push(Row::Hidden(old.len() - shown_to));
    }
    rows
}

/// `text` cut into values (runs of letters, digits and `_.-:`) and single other characters,
/// so that a diff of two snapshot rows points at the value that changed, not at `name=value`.
fn tokens(text: &str) -> Vec<&str> {
    let value = |c: char| c.is_alphanumeric() || "_.-:".contains(c);
    let mut out = Vec::new();
    let mut start = 0;
    for (i, c) in text.char_indices() {
        let end = i + c.len_utf8();
        let joins = value(c) && text[end..].chars().next().is_some_and(value);
        if !joins {
            out.push(&text[start..end]);
            start = end;
        }
    }
    out
}

/// A changed pair with the values that differ marked on each side (escaped HTML).
fn marked_pair(old: &str, new: &str) -> (String, String) {
    let (a, b) = (tokens(old), tokens(new));
    let (mut left, mut right) = (String::new(), String::new());
    for op in similar::capture_diff_slices(Algorithm::Myers, &a, &b) {
        let (removed, added) = (a[op.old_range()].concat(), b[op.new_range()].concat());
        if let DiffOp::Equal { .. } = op {
            left.push_str(&escape(&removed));
            right.push_str(&escape(&added));
            continue;
        }
        if !removed.is_empty() {
            let _ = write!(left, "<mark>{}</mark>", escape(&removed));
        }
        if !added.is_empty() {
            let _ = write!(right, "<mark>{}</mark>", escape(&added));
        }
    }
    (left, right)
}

/// Golden on the left, actual on the right: removed lines red, added lines green.
pub(super) fn side_by_side_table(h: &mut String, golden: &str, actual: &str) {
    let rows = side_by_side(golden, actual, DIFF_CONTEXT);
    if rows.is_empty() {
        h.push_str("<p class=\"meta\">The lines are the same; the files differ in line endings or the final newline.</p>\n");
        return;
    }
    h.push_str(
        "<table class=\"sbs\">\n<colgroup><col class=\"ln\"><col><col class=\"ln\"><col></colgroup>\n\
         <thead><tr><th colspan=\"2\">golden</th><th colspan=\"2\">actual</th></tr></thead>\n<tbody>\n",
    );
    for row in rows.iter().take(DIFF_ROWS) {
        match row {
            Row::Same { old, new, text } => {
                let t = escape(text);
                let _ = writeln!(
                    h,
                    "<tr><td class=\"ln\">{old}</td><td>{t}</td><td class=\"ln\">{new}</td><td>{t}</td></tr>"
                );
            }
            Row::Hidden(n) => {
                let _ = writeln!(
                    h,
                    "<tr class=\"fold\"><td colspan=\"4\">⋯ {} the same on both sides ⋯</td></tr>",
                    crate::report::count(*n, "line")
                );
            }
            Row::Changed { old, new } => {
                let (left, right) = match (old, new) {
                    (Some((_, a)), Some((_, b))) => marked_pair(a, b),
                    _ => (
                        old.map(|(_, a)| escape(a)).unwrap_or_default(),
                        new.map(|(_, b)| escape(b)).unwrap_or_default(),
                    ),
                };
                let cell = |side: Option<(usize, &str)>, text: String, class: &str| match side {
                    Some((n, _)) => format!(
                        "<td class=\"ln {class}\">{n}</td><td class=\"{class}\">{text}</td>"
                    ),
                    None => "<td class=\"ln none\"></td><td class=\"none\"></td>".to_string(),
                };
                let _ = writeln!(
                    h,
                    "<tr>{}{}</tr>",
                    cell(*old, left, "del"),
                    cell(*new, right, "ins")
                );
            }
        }
    }
    if rows.len() > DIFF_ROWS {
        let _ = writeln!(
            h,
            "<tr class=\"fold\"><td colspan=\"4\">{} more left out here: the whole diff is in the report folder's diffs/</td></tr>",
            crate::report::count(rows.len() - DIFF_ROWS, "row")
        );
    }
    h.push_str("</tbody>\n</table>\n");
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// Lines `line 1` … `line n`, each ending with a newline.
    pub(in crate::report::html) fn numbered(n: usize) -> String {
        (1..=n).map(|i| format!("line {i}\n")).collect()
    }

    #[test]
    fn side_by_side_pairs_a_changed_line_and_folds_far_equal_lines() {
        let golden = numbered(20);
        let actual = golden.replace("line 10\n", "line ten\n");
        let rows = side_by_side(&golden, &actual, 2);
        let same = |n: usize, text: &'static str| Row::Same {
            old: n,
            new: n,
            text,
        };
        assert_eq!(
            rows,
            vec![
                Row::Hidden(7),
                same(8, "line 8"),
                same(9, "line 9"),
                Row::Changed {
                    old: Some((10, "line 10")),
                    new: Some((10, "line ten")),
                },
                same(11, "line 11"),
                same(12, "line 12"),
                Row::Hidden(8),
            ]
        );
    }

    #[test]
    fn side_by_side_leaves_the_short_side_empty_and_numbers_each_side() {
        // Two golden lines replaced by one, and a line added at the end.
        let rows = side_by_side("a\nb\nc\nd\n", "a\nB\nd\ne\n", 1);
        assert_eq!(
            rows,
            vec![
                Row::Same {
                    old: 1,
                    new: 1,
                    text: "a"
                },
                Row::Changed {
                    old: Some((2, "b")),
                    new: Some((2, "B")),
                },
                Row::Changed {
                    old: Some((3, "c")),
                    new: None,
                },
                Row::Same {
                    old: 4,
                    new: 3,
                    text: "d"
                },
                Row::Changed {
                    old: None,
                    new: Some((4, "e")),
                },
            ]
        );
    }

    #[test]
    fn side_by_side_of_equal_texts_is_empty() {
        assert!(side_by_side(&numbered(5), &numbered(5), 3).is_empty());
    }

    #[test]
    fn side_by_side_table_escapes_and_marks_the_changed_words() {
        let mut h = String::new();
        side_by_side_table(
            &mut h,
            "id=1 | note=\"<b>\" | total=41\n",
            "id=1 | note=\"<b>\" | total=42\n",
        );
        assert!(!h.contains("<b>"), "{h}");
        assert!(
            h.contains(
                "<td class=\"del\">id=1 | note=&quot;&lt;b&gt;&quot; | total=<mark>41</mark></td>"
            ),
            "{h}"
        );
        assert!(h.contains("total=<mark>42</mark></td>"), "{h}");
    }

    #[test]
    fn tokens_keep_values_whole_and_cover_the_text() {
        let row = "id=7 | at=\"2024-01-05 10:00\" | x=-0.5";
        let t = tokens(row);
        assert_eq!(t.concat(), row);
        for value in ["id", "7", "2024-01-05", "10:00", "-0.5"] {
            assert!(t.contains(&value), "{value} in {t:?}");
        }
        assert_eq!(tokens("é|"), vec!["é", "|"]);
    }
}
