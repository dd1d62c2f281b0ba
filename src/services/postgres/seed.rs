//! Writing into PostgreSQL: SQL text (seed files and `sql` tasks), its errors pointed at the
//! failing statement's line, and CSV seeds loaded with COPY by the columns their header names.

use std::path::Path;

use bytes::Bytes;
use futures_util::SinkExt;
use tokio::io::AsyncReadExt;

use super::PostgresEndpoint;
use super::endpoint::{db_message, unavailable};
use crate::config::Origin;
use crate::services::ServiceError;

impl PostgresEndpoint {
    /// Runs the statements of an SQL file.
    pub async fn seed_sql(&self, path: &Path, display: &Path) -> Result<(), ServiceError> {
        let text = std::fs::read_to_string(path).map_err(|e| ServiceError::Input {
            origin: Origin::file(display),
            message: format!("cannot read: {e}"),
        })?;
        execute(self, &text, &Origin::file(display)).await
    }

    /// Loads a CSV file into `table` with COPY; the header names the columns. Returns the rows loaded.
    pub async fn seed_csv(
        &self,
        table: &str,
        path: &Path,
        display: &Path,
        columns: &[String],
        delimiter: u8,
        null: Option<&str>,
    ) -> Result<u64, ServiceError> {
        let client = self.connect_to(None).await.map_err(unavailable)?;
        let cols: Vec<String> = columns
            .iter()
            .map(|c| format!("\"{}\"", c.replace('"', "\"\"")))
            .collect();
        let mut opts = format!(
            "FORMAT csv, HEADER true, DELIMITER {}",
            sql_literal(&(delimiter as char).to_string())
        );
        if let Some(n) = null {
            opts.push_str(&format!(", NULL {}", sql_literal(n)));
        }
        let stmt = format!(
            "COPY {} ({}) FROM STDIN ({opts})",
            crate::config::scenario::quote_table(table),
            cols.join(", ")
        );
        let input_error = |e: tokio_postgres::Error| ServiceError::Input {
            origin: copy_origin(&e, display, columns),
            message: db_message(&e),
        };
        let sink = client
            .copy_in::<_, Bytes>(&stmt)
            .await
            .map_err(input_error)?;
        futures_util::pin_mut!(sink);
        let mut file = tokio::fs::File::open(path)
            .await
            .map_err(|e| ServiceError::Input {
                origin: Origin::file(display),
                message: format!("cannot read: {e}"),
            })?;
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = file.read(&mut buf).await.map_err(|e| ServiceError::Input {
                origin: Origin::file(display),
                message: format!("cannot read: {e}"),
            })?;
            if n == 0 {
                break;
            }
            sink.send(Bytes::copy_from_slice(&buf[..n]))
                .await
                .map_err(input_error)?;
        }
        sink.as_mut().finish().await.map_err(input_error)
    }
}

/// Runs SQL statements (a task or a seed); errors point at the line of the failing statement.
pub async fn execute(
    endpoint: &PostgresEndpoint,
    text: &str,
    origin: &Origin,
) -> Result<(), ServiceError> {
    let client = endpoint.connect_to(None).await.map_err(unavailable)?;
    client.batch_execute(text).await.map_err(|e| {
        let mut at = origin.clone();
        if let Some(tokio_postgres::error::ErrorPosition::Original(pos)) =
            e.as_db_error().and_then(|d| d.position())
        {
            // The position counts characters from 1 in the text sent.
            let byte = text
                .char_indices()
                .nth((*pos as usize).saturating_sub(1))
                .map_or(text.len(), |(b, _)| b);
            at = origin.within(text, byte);
        }
        ServiceError::Input {
            origin: at,
            message: db_message(&e),
        }
    })
}

/// COPY errors carry `COPY table, line N, column c: ...` in their context.
fn copy_origin(e: &tokio_postgres::Error, display: &Path, columns: &[String]) -> Origin {
    let line = e.as_db_error().and_then(|d| d.where_()).and_then(|w| {
        let rest = w.split(", line ").nth(1)?;
        rest.split(|c: char| !c.is_ascii_digit())
            .next()?
            .parse::<usize>()
            .ok()
    });
    // A header column the table does not have: the header's line, at that column.
    let header = || {
        let message = e.as_db_error()?.message();
        let name = message.strip_prefix("column \"")?.split('"').next()?;
        let at = columns.iter().position(|c| c == name)?;
        let col = columns[..at]
            .iter()
            .map(|c| c.chars().count() + 1)
            .sum::<usize>()
            + 1;
        Some((1, col))
    };
    Origin {
        file: display.to_path_buf(),
        line_col: line.map(|l| (l, 1)).or_else(header),
    }
}

fn sql_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}
