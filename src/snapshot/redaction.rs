//! Redactions, applied to a sink's rows before its snapshot is rendered (`redact_table`) or to
//! the rendered lines of a sink with no rows (`redact_lines`): a whole column, a regex over
//! every value, or a regex within one column, each replaced by a placeholder.

use regex::Regex;

use super::canonical::{Table, Value};
use super::nested;

/// The placeholder a redacted value gets when the rule names none.
pub const DEFAULT_PLACEHOLDER: &str = "[redacted]";

/// One redaction rule: a whole column, a regex over every value, or a regex within one column.
#[derive(Debug, Clone)]
pub struct Redaction {
    /// The column it applies to; every column when `None`.
    pub column: Option<String>,
    /// The text to replace; the whole value when `None`.
    pub pattern: Option<Regex>,
    /// What replaces it.
    pub with: String,
}

impl Redaction {
    /// Applies the rule to `text`: the replaced text, or `None` when nothing matched.
    fn replace(&self, text: &str) -> Option<String> {
        match &self.pattern {
            None => Some(self.with.clone()),
            Some(re) => match re.replace_all(text, self.with.as_str()) {
                std::borrow::Cow::Borrowed(_) => None,
                std::borrow::Cow::Owned(s) => Some(s),
            },
        }
    }
}

/// Applies redactions to a table before it is rendered. A whole-column rule turns every value
/// but NULL into the bare placeholder; a regex rule replaces what it matches inside the value's
/// text, which stays quoted text (inside a nested value: in each element and map key, so the
/// value keeps its shape). Fails on a column the table does not have.
pub fn redact_table(table: &mut Table, rules: &[Redaction]) -> Result<(), String> {
    for rule in rules {
        let cols: Vec<usize> = match &rule.column {
            Some(c) => match table.columns.iter().position(|col| &col.name == c) {
                Some(i) => vec![i],
                None => {
                    let names: Vec<&str> = table.columns.iter().map(|c| c.name.as_str()).collect();
                    return Err(format!(
                        "redacted column `{c}` is not among the columns: {}",
                        names.join(", ")
                    ));
                }
            },
            None => (0..table.columns.len()).collect(),
        };
        for row in &mut table.rows {
            for &i in &cols {
                let v = &mut row[i];
                if rule.pattern.is_some() && nested::redact_inside(v, &|t| rule.replace(t)) {
                    continue;
                }
                let text = match &*v {
                    Value::Null | Value::Redacted(_) => continue,
                    Value::Text(s) => s.to_string(),
                    other => other.render(None),
                };
                if let Some(new) = rule.replace(&text) {
                    *v = if rule.pattern.is_none() {
                        Value::Redacted(new.into())
                    } else {
                        Value::Text(new.into())
                    };
                }
            }
        }
    }
    Ok(())
}

/// Applies the regex rules that name no column to every line of a rendered snapshot's body (the
/// header lines are kept): for sinks that are not tables, such as Redis keys and file listings.
pub fn redact_lines(text: &str, rules: &[Redaction]) -> String {
    let rules: Vec<&Redaction> = rules
        .iter()
        .filter(|r| r.column.is_none() && r.pattern.is_some())
        .collect();
    if rules.is_empty() {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    for full in text.split_inclusive('\n') {
        let (line, end) = match full.strip_suffix('\n') {
            Some(l) => (l, "\n"),
            None => (full, ""),
        };
        let mut line = line.to_string();
        let is_header = ["# harness snapshot", "# sink:", "# source:"]
            .iter()
            .any(|h| line.starts_with(h));
        if !is_header {
            for r in &rules {
                if let Some(new) = r.replace(&line) {
                    line = new;
                }
            }
        }
        out.push_str(&line);
        out.push_str(end);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::table::parse;
    use crate::snapshot::table::tests::{render, table};

    #[test]
    fn redactions_replace_columns_and_matches() {
        let mut t = table(
            &[("id", "int4"), ("at", "timestamp"), ("msg", "text")],
            vec![
                vec![
                    Value::Int(1),
                    Value::Text("2026-11-25 10:00:01".into()),
                    Value::Text("run 3f2a9c at 2026-11-25T10:00:01Z".into()),
                ],
                vec![Value::Int(2), Value::Null, Value::Text("plain".into())],
            ],
        );
        let rules = vec![
            Redaction {
                column: Some("at".into()),
                pattern: None,
                with: "[timestamp]".into(),
            },
            Redaction {
                column: None,
                pattern: Some(Regex::new(r"\d{4}-\d{2}-\d{2}T[0-9:]+Z").expect("regex")),
                with: "[ts]".into(),
            },
        ];
        redact_table(&mut t, &rules).expect("redacts");
        let text = render(&t, &["id"]);
        assert!(
            text.contains(r#"id=1 | at=[timestamp] | msg="run 3f2a9c at [ts]""#),
            "{text}"
        );
        assert!(text.contains(r#"id=2 | at=NULL | msg="plain""#), "{text}");
        let p = parse(&text).expect("redacted tables parse");
        assert_eq!(p.cells(0)[1], "[timestamp]");
        let bad = vec![Redaction {
            column: Some("nope".into()),
            pattern: None,
            with: "x".into(),
        }];
        let err = redact_table(&mut t, &bad).expect_err("unknown column");
        assert!(err.contains("`nope`"), "{err}");
    }

    #[test]
    fn line_redactions_keep_the_header() {
        let rules = vec![Redaction {
            column: None,
            pattern: Some(Regex::new("[0-9]+").expect("regex")),
            with: "N".into(),
        }];
        let text = "# harness snapshot v1\n# sink: s1\n\"k:1\" string\n  \"v2\"\n";
        let anchored = vec![Redaction {
            column: None,
            pattern: Some(Regex::new("^  \"v[0-9]\"$").expect("regex")),
            with: "  V".into(),
        }];
        assert!(redact_lines(text, &anchored).ends_with("string\n  V\n"));
        assert_eq!(
            redact_lines(text, &rules),
            "# harness snapshot v1\n# sink: s1\n\"k:N\" string\n  \"vN\"\n"
        );
    }
}
