//! Differences between a golden and a new snapshot, as a unified diff (plain text; colour is
//! added by the terminal reporter).

use similar::TextDiff;

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

/// Above this many bytes of snapshot, the line diff and the row-by-row comparison run on two
/// threads.
const PARALLEL_BYTES: usize = 4 << 20;

/// The unified diff of two snapshots and, when `table` gives a table sink's key and tolerances,
/// its row-by-row account; both `None` when the texts are equal.
pub fn explain(
    golden: &str,
    actual: &str,
    golden_name: &str,
    table: Option<(&[String], &Tolerances)>,
) -> (Option<String>, Option<TableDiff>) {
    if golden == actual {
        return (None, None);
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
