//! PostgreSQL client side: a fresh database per scenario, SQL and CSV (COPY) seeds, SQL tasks,
//! and table/query sinks read into a canonical `Table`.

use std::path::Path;

use bytes::Bytes;
use futures_util::SinkExt;
use tokio::io::AsyncReadExt;
use tokio_postgres::types::Type;
use tokio_postgres::{Client, NoTls, SimpleQueryMessage};

use super::ServiceError;
use crate::config::Origin;
use crate::config::diagnostic::line_col;
use crate::snapshot::{Column, Table, Value};

/// The database every scenario gets afresh.
pub const DATABASE: &str = "harness";

/// Where a PostgreSQL server listens and how to log in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostgresEndpoint {
    /// Host (loopback).
    pub host: String,
    /// Port.
    pub port: u16,
    /// User.
    pub user: String,
    /// Password.
    pub password: String,
    /// Database the pipeline uses.
    pub database: String,
}

/// Cluster-wide objects: what a database reset alone would leave behind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Globals {
    /// Database names.
    pub databases: Vec<String>,
    /// Role names.
    pub roles: Vec<String>,
}

impl PostgresEndpoint {
    /// `postgres://user:pass@host:port/db`.
    pub fn url(&self) -> String {
        format!(
            "postgres://{}:{}@{}:{}/{}",
            self.user, self.password, self.host, self.port, self.database
        )
    }

    fn config(&self, database: &str) -> tokio_postgres::Config {
        let mut c = tokio_postgres::Config::new();
        c.host(&self.host)
            .port(self.port)
            .user(&self.user)
            .password(&self.password)
            .dbname(database)
            .application_name("harness");
        c.connect_timeout(std::time::Duration::from_secs(5));
        c
    }

    /// Connects to `database` (the pipeline's when `None`).
    pub async fn connect_to(
        &self,
        database: Option<&str>,
    ) -> Result<Client, tokio_postgres::Error> {
        let (client, conn) = self
            .config(database.unwrap_or(&self.database))
            .connect(NoTls)
            .await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(client)
    }

    /// True when the server answers a real query.
    pub async fn ready(&self) -> bool {
        match self.connect_to(Some("postgres")).await {
            Ok(c) => c.simple_query("SELECT 1").await.is_ok(),
            Err(_) => false,
        }
    }

    /// Creates a database of the harness's own (the metastore's), if missing.
    pub async fn create_database(&self, name: &str) -> Result<(), ServiceError> {
        let admin = self
            .connect_to(Some("postgres"))
            .await
            .map_err(unavailable)?;
        let exists = admin
            .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&name])
            .await
            .map_err(unavailable)?
            .is_some();
        if !exists {
            admin
                .batch_execute(&format!(
                    "CREATE DATABASE \"{}\"",
                    name.replace('"', "\"\"")
                ))
                .await
                .map_err(unavailable)?;
        }
        Ok(())
    }

    /// The databases and roles that exist now.
    pub async fn globals(&self) -> Result<Globals, ServiceError> {
        let admin = self
            .connect_to(Some("postgres"))
            .await
            .map_err(unavailable)?;
        let names = |rows: Vec<tokio_postgres::Row>| -> Vec<String> {
            rows.iter().map(|r| r.get::<_, String>(0)).collect()
        };
        let databases = names(
            admin
                .query("SELECT datname::text FROM pg_database", &[])
                .await
                .map_err(unavailable)?,
        );
        let roles = names(
            admin
                .query("SELECT rolname::text FROM pg_roles", &[])
                .await
                .map_err(unavailable)?,
        );
        Ok(Globals { databases, roles })
    }

    /// Drops and recreates the pipeline's database; with a baseline, also drops every database
    /// and role not in it (what earlier scenarios created besides their tables).
    pub async fn reset(&self, baseline: Option<&Globals>) -> Result<(), ServiceError> {
        let admin = self
            .connect_to(Some("postgres"))
            .await
            .map_err(unavailable)?;
        let ident = |n: &str| format!("\"{}\"", n.replace('"', "\"\""));
        let db = ident(&self.database);
        admin
            .batch_execute(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"))
            .await
            .map_err(unavailable)?;
        if let Some(base) = baseline {
            let now = self.globals().await?;
            for extra in now.databases.iter().filter(|d| !base.databases.contains(d)) {
                admin
                    .batch_execute(&format!(
                        "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                        ident(extra)
                    ))
                    .await
                    .map_err(unavailable)?;
            }
            for extra in now.roles.iter().filter(|r| !base.roles.contains(r)) {
                let r = ident(extra);
                admin
                    .batch_execute(&format!("DROP OWNED BY {r}; DROP ROLE IF EXISTS {r}"))
                    .await
                    .map_err(unavailable)?;
            }
        }
        admin
            .batch_execute(&format!("CREATE DATABASE {db}"))
            .await
            .map_err(unavailable)?;
        Ok(())
    }

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
            origin: copy_origin(&e, display),
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

    /// Reads a query's rows with their column types.
    pub async fn read(&self, query: &str) -> Result<Table, String> {
        let client = self.connect_to(None).await.map_err(|e| e.to_string())?;
        // A stable rendering of dates and times whatever the server's defaults.
        client.batch_execute("SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD'; SET IntervalStyle = 'iso_8601'; SET extra_float_digits = 1").await.map_err(|e| db_message(&e))?;
        let stmt = client.prepare(query).await.map_err(|e| db_message(&e))?;
        let columns: Vec<Column> = stmt
            .columns()
            .iter()
            .map(|c| Column {
                name: c.name().to_string(),
                type_name: c.type_().name().to_string(),
            })
            .collect();
        let types: Vec<Type> = stmt.columns().iter().map(|c| c.type_().clone()).collect();
        let mut rows = Vec::new();
        for msg in client
            .simple_query(query)
            .await
            .map_err(|e| db_message(&e))?
        {
            if let SimpleQueryMessage::Row(row) = msg {
                let mut values = Vec::with_capacity(types.len());
                for (i, ty) in types.iter().enumerate() {
                    values.push(value(ty, row.get(i)));
                }
                rows.push(values);
            }
        }
        Ok(Table { columns, rows })
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
            let (line, col) = line_col(text, byte);
            at.line_col = Some(match origin.line_col {
                // Inline SQL: count from where the string's content starts in pipeline.toml.
                Some((l, c)) if line == 1 => (l, c + col - 1),
                Some((l, _)) => (l + line - 1, col),
                None => (line, col),
            });
        }
        ServiceError::Input {
            origin: at,
            message: db_message(&e),
        }
    })
}

fn value(ty: &Type, text: Option<&str>) -> Value {
    let Some(t) = text else { return Value::Null };
    match *ty {
        Type::BOOL => Value::Bool(t == "t"),
        Type::INT2 | Type::INT4 | Type::INT8 | Type::OID => t
            .parse()
            .map(Value::Int)
            .unwrap_or_else(|_| Value::Text(t.into())),
        Type::FLOAT4 | Type::FLOAT8 => match t {
            "NaN" => Value::Float(f64::NAN),
            "Infinity" => Value::Float(f64::INFINITY),
            "-Infinity" => Value::Float(f64::NEG_INFINITY),
            _ => t
                .parse()
                .map(Value::Float)
                .unwrap_or_else(|_| Value::Text(t.into())),
        },
        Type::NUMERIC => Value::Numeric(t.into()),
        _ => Value::Text(t.into()),
    }
}

/// COPY errors carry `COPY table, line N, column c: ...` in their context.
fn copy_origin(e: &tokio_postgres::Error, display: &Path) -> Origin {
    let line = e.as_db_error().and_then(|d| d.where_()).and_then(|w| {
        let rest = w.split(", line ").nth(1)?;
        rest.split(|c: char| !c.is_ascii_digit())
            .next()?
            .parse::<usize>()
            .ok()
    });
    Origin {
        file: display.to_path_buf(),
        line_col: line.map(|l| (l, 1)),
    }
}

/// The server's message with its detail and context, or the client error.
pub fn db_message(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(d) => {
            let mut m = d.message().to_string();
            if let Some(detail) = d.detail() {
                m.push_str(&format!(" ({detail})"));
            }
            if let Some(w) = d.where_() {
                m.push_str(&format!(" [{w}]"));
            }
            m
        }
        None => e.to_string(),
    }
}

fn unavailable(e: tokio_postgres::Error) -> ServiceError {
    ServiceError::Unavailable {
        service: "postgres",
        message: db_message(&e),
    }
}

fn sql_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}
