//! Differences between a golden and a new snapshot, as a unified diff (plain text; colour is
//! added by the terminal reporter).

use similar::TextDiff;

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

#[cfg(test)]
mod tests {
    use super::*;

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
