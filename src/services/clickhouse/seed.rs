//! Writing into a ClickHouse server: SQL text run statement by statement (seed files and `sql`
//! tasks), and CSV or JSON Lines seeds inserted into a table by the columns they name, the table
//! created first from a declared schema; a rejected statement or row is reported at its line.

use std::path::Path;

use bytes::Bytes;

use super::{ChError, ClickHouseEndpoint, ident, quote_table};
use crate::config::{Origin, TableFormat};
use crate::services::ServiceError;

/// Engine of a table a seed creates from its schema when it names none.
const DEFAULT_ENGINE: &str = "MergeTree ORDER BY tuple()";

impl ClickHouseEndpoint {
    /// Runs the statements of an SQL file one by one; a rejected one is reported at its line.
    pub(super) async fn seed_sql(&self, path: &Path, display: &Path) -> Result<(), ServiceError> {
        let text = std::fs::read_to_string(path).map_err(|e| ServiceError::Input {
            origin: Origin::file(display),
            message: format!("cannot read: {e}"),
        })?;
        self.run_sql(&text, &Origin::file(display)).await
    }

    /// Runs SQL text statement by statement (the HTTP interface takes one per request); a
    /// rejected statement is reported at its line, counted from `origin` (a file, or inline SQL
    /// starting at a line of pipeline.toml).
    pub async fn run_sql(&self, text: &str, origin: &Origin) -> Result<(), ServiceError> {
        for (offset, statement) in statements(text) {
            if let Err(e) = self.request(statement, None, &[]).await {
                return Err(match e {
                    ChError::Unreachable(m) => ServiceError::Unavailable {
                        service: "clickhouse",
                        message: m,
                    },
                    ChError::Refused(m) => ServiceError::Input {
                        origin: origin.within(text, offset),
                        message: m,
                    },
                });
            }
        }
        Ok(())
    }

    /// Inserts a CSV (with a header) or JSON Lines file into `table` by the columns it names,
    /// creating the database and table first from `schema` when one is given.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn seed_table(
        &self,
        table: &str,
        format: TableFormat,
        path: &Path,
        display: &Path,
        columns: &[String],
        schema: Option<&str>,
        engine: Option<&str>,
    ) -> Result<(), ServiceError> {
        let input = |message: String, line: Option<usize>| ServiceError::Input {
            origin: Origin {
                file: display.to_path_buf(),
                line_col: line.map(|l| (l, 1)),
            },
            message,
        };
        let refused = |e: ChError| match e {
            ChError::Unreachable(m) => ServiceError::Unavailable {
                service: "clickhouse",
                message: m,
            },
            ChError::Refused(m) => input(format!("table {table}: {m}"), None),
        };
        if let Some(schema) = schema {
            if let Some((db, _)) = table.split_once('.') {
                self.request(
                    &format!("CREATE DATABASE IF NOT EXISTS {}", ident(db)),
                    None,
                    &[],
                )
                .await
                .map_err(refused)?;
            }
            self.request(
                &format!(
                    "CREATE TABLE IF NOT EXISTS {} ({schema}) ENGINE = {}",
                    quote_table(table),
                    engine.unwrap_or(DEFAULT_ENGINE)
                ),
                None,
                &[],
            )
            .await
            .map_err(refused)?;
        }
        let data = std::fs::read(path).map_err(|e| input(format!("cannot read: {e}"), None))?;
        // A header alone, or nothing at all, inserts no rows (and ClickHouse refuses an empty
        // body).
        let rows_follow = match format {
            TableFormat::Csv => data
                .splitn(2, |b| *b == b'\n')
                .nth(1)
                .is_some_and(|rest| rest.iter().any(|b| !b.is_ascii_whitespace())),
            _ => data.iter().any(|b| !b.is_ascii_whitespace()),
        };
        if !rows_follow || columns.is_empty() {
            return Ok(());
        }
        let (fmt, header_lines) = match format {
            TableFormat::Csv => ("CSVWithNames", 1),
            _ => ("JSONEachRow", 0),
        };
        let cols: Vec<String> = columns.iter().map(|c| ident(c)).collect();
        let sql = format!(
            "INSERT INTO {} ({}) FORMAT {fmt}",
            quote_table(table),
            cols.join(", ")
        );
        match self
            .request(
                &sql,
                Some(Bytes::from(data)),
                &[("date_time_input_format", "best_effort")],
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(ChError::Refused(m)) => {
                let line = row_of(&m)
                    .map(|r| r + header_lines)
                    .or_else(|| unknown_column(&m).and_then(|c| line_naming(path, format, c)));
                Err(input(format!("table {table}: {m}"), line))
            }
            Err(e) => Err(refused(e)),
        }
    }
}

/// The column an insert error says the table has not (`No such column x in table t`).
fn unknown_column(message: &str) -> Option<&str> {
    message
        .split("No such column ")
        .nth(1)?
        .split_whitespace()
        .next()
}

/// The 1-based line of a seed file that names `column`: a CSV's header, or the first JSON line
/// with that key.
fn line_naming(path: &Path, format: TableFormat, column: &str) -> Option<usize> {
    if format == TableFormat::Csv {
        return Some(1);
    }
    let text = std::fs::read_to_string(path).ok()?;
    let key = serde_json::to_string(column).ok()?;
    text.lines()
        .position(|l| l.contains(&format!("{key}:")) || l.contains(&format!("{key} :")))
        .map(|i| i + 1)
}

/// The row an insert error names (`… (at row 3)`), 1-based.
fn row_of(message: &str) -> Option<usize> {
    let rest = message.split("(at row ").nth(1)?;
    rest.split(')').next()?.trim().parse().ok()
}

/// The statements of an SQL text, split at `;` outside quotes and comments, each with the byte
/// offset where its text starts; empty and comment-only pieces are left out.
fn statements(text: &str) -> Vec<(usize, &str)> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            q @ (b'\'' | b'"' | b'`') => {
                i += 1;
                while i < bytes.len() && bytes[i] != q {
                    if bytes[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
            }
            b'-' if bytes.get(i + 1) == Some(&b'-') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i + 1 < bytes.len() && !(bytes[i] == b'*' && bytes[i + 1] == b'/') {
                    i += 1;
                }
                i += 1;
            }
            b';' => {
                push(text, start, i, &mut out);
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    if start < text.len() {
        push(text, start, text.len(), &mut out);
    }
    out
}

/// Adds `text[from..to]` to `out` unless it holds nothing but blanks and comments.
fn push<'t>(text: &'t str, from: usize, to: usize, out: &mut Vec<(usize, &'t str)>) {
    let piece = &text[from..to];
    let meaningful = piece
        .lines()
        .map(|l| l.split("--").next().unwrap_or("").trim())
        .any(|l| !l.is_empty());
    if meaningful {
        // Errors point at the statement's first line of code, past comments before it.
        let mut at = 0;
        for line in piece.split_inclusive('\n') {
            let code = line.split("--").next().unwrap_or("");
            if !code.trim().is_empty() {
                at += line.len() - line.trim_start().len();
                break;
            }
            at += line.len();
        }
        out.push((from + at, piece.trim()));
    }
}

#[cfg(test)]
mod tests {
    use super::super::endpoint::server_message;
    use super::*;
    use crate::diagnostic::line_col;

    #[test]
    fn statements_split_outside_quotes_and_comments() {
        let sql = "CREATE DATABASE a; -- one; two\nINSERT INTO t VALUES ('x;y');\n/* ; */ SELECT 1;\n-- only a comment\n";
        let got: Vec<&str> = statements(sql).into_iter().map(|(_, s)| s).collect();
        assert_eq!(
            got,
            vec![
                "CREATE DATABASE a",
                "-- one; two\nINSERT INTO t VALUES ('x;y')",
                "/* ; */ SELECT 1"
            ]
        );
        let (offset, _) = statements(sql)[1];
        assert_eq!(line_col(sql, offset).0, 2);
    }

    #[test]
    fn server_errors_are_reduced_to_their_message_and_row() {
        let body = "Code: 27, e.displayText() = DB::Exception: Cannot parse input: expected , before: x (at row 3)\n, e.what() = DB::Exception\n";
        let m = server_message(body);
        assert_eq!(m, "Cannot parse input: expected , before: x (at row 3)");
        assert_eq!(row_of(&m), Some(3));
    }
}
