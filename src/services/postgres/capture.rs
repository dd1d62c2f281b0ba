//! Capturing PostgreSQL tables and queries as SQL fixtures that seed them back exactly: a typed
//! `CREATE TABLE` (columns with their types and modifiers, NOT NULL, the primary key) and
//! `INSERT`s of every value as PostgreSQL prints it (read with UTC, ISO dates, shortest-exact
//! floats and hex bytea), which its own input functions read back to the same value.

use std::fmt::Write as _;

use tokio_postgres::{Client, NoTls, SimpleQueryMessage};

use crate::config::capture::{
    self, CaptureError, CapturePlan, Captured, MaskRule, TableTarget, toml_string,
};
use crate::config::scenario::quote_table;
use crate::names::ServiceKind;

/// Rows per INSERT statement.
const INSERT_BATCH: usize = 500;

/// One column as the catalog describes it.
#[derive(Debug)]
struct ColumnDef {
    name: String,
    /// `format_type`: `numeric(10,3)`, `timestamp with time zone`.
    sql_type: String,
    /// The base type's name: `int4`, `varchar`.
    base: String,
    not_null: bool,
}

fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn literal(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

/// Captures `targets` (all PostgreSQL) from the server at `url`, in one snapshot of the data.
pub async fn capture(
    url: &str,
    targets: &[&TableTarget],
    plan: &CapturePlan,
) -> Result<Vec<Captured>, CaptureError> {
    let config: tokio_postgres::Config = url.parse().map_err(|e| {
        CaptureError::Input(format!(
            "--postgres: not a PostgreSQL URL (postgres://user:password@host:port/database): {e}"
        ))
    })?;
    let place = crate::redact::register_url(url);
    if let Some(p) = config.get_password() {
        crate::redact::register(&String::from_utf8_lossy(p));
    }
    let mut config = config;
    config.connect_timeout(std::time::Duration::from_secs(10));
    config.application_name("harness capture");
    let (client, conn) = config.connect(NoTls).await.map_err(|e| {
        CaptureError::Unavailable(format!(
            "postgres at {place}: cannot connect: {}",
            super::db_message(&e)
        ))
    })?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let broken = |e: tokio_postgres::Error| {
        CaptureError::Unavailable(format!("postgres at {place}: {}", super::db_message(&e)))
    };
    // One snapshot for every table, printed the same whatever the server's settings; rolled
    // back at the end, so the temporary views of queries go with it.
    client
        .batch_execute(
            "BEGIN ISOLATION LEVEL REPEATABLE READ; SET LOCAL TimeZone = 'UTC'; \
             SET LOCAL DateStyle = 'ISO, YMD'; SET LOCAL IntervalStyle = 'iso_8601'; \
             SET LOCAL extra_float_digits = 3; SET LOCAL bytea_output = 'hex'",
        )
        .await
        .map_err(broken)?;
    let mut out = Vec::new();
    for (i, target) in targets.iter().enumerate() {
        out.push(capture_one(&client, target, i, plan).await?);
    }
    let _ = client.batch_execute("ROLLBACK").await;
    Ok(out)
}

async fn capture_one(
    client: &Client,
    target: &TableTarget,
    index: usize,
    plan: &CapturePlan,
) -> Result<Captured, CaptureError> {
    let flag = target.flag();
    let input = |m: String| CaptureError::Input(format!("{flag}: {m}"));
    let relation = match &target.query {
        None => quote_table(&target.name),
        Some(q) => {
            let view = format!("harness_capture_{index}");
            client
                .batch_execute(&format!("CREATE TEMP VIEW {view} AS {q}"))
                .await
                .map_err(|e| input(super::db_message(&e)))?;
            view
        }
    };
    let oid: Option<u32> = client
        .query_one("SELECT to_regclass($1)::oid", &[&relation])
        .await
        .map_err(|e| input(super::db_message(&e)))?
        .get(0);
    let Some(oid) = oid else {
        return Err(input(
            "no such table or view (names are as written: schema.table, in lower case unless created quoted)".into(),
        ));
    };
    let columns: Vec<ColumnDef> = client
        .query(
            "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod), t.typname::text, a.attnotnull \
             FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid \
             WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
            &[&oid],
        )
        .await
        .map_err(|e| input(super::db_message(&e)))?
        .iter()
        .map(|r| ColumnDef {
            name: r.get(0),
            sql_type: r.get(1),
            base: r.get(2),
            not_null: r.get(3),
        })
        .collect();
    for (i, c) in columns.iter().enumerate() {
        if columns[..i].iter().any(|o| o.name == c.name) {
            return Err(input(format!(
                "the query gives two columns named `{}`: name them apart with AS",
                c.name
            )));
        }
    }
    let primary_key: Vec<String> = client
        .query(
            "SELECT a.attname::text FROM pg_index i \
             JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) \
             WHERE i.indrelid = $1 AND i.indisprimary \
             ORDER BY array_position(i.indkey::int2[], a.attnum)",
            &[&oid],
        )
        .await
        .map_err(|e| input(super::db_message(&e)))?
        .iter()
        .map(|r| r.get(0))
        .collect();

    // Each column's mask, checked against its type before anything is read.
    let masks = plan.column_masks(ServiceKind::Postgres, &target.name);
    let mut rules: Vec<Option<&MaskRule>> = vec![None; columns.len()];
    for (column, rule) in &masks {
        let Some(at) = columns.iter().position(|c| c.name == *column) else {
            let names: Vec<&str> = columns.iter().map(|c| c.name.as_str()).collect();
            return Err(input(format!(
                "a mask names column `{column}`, which it does not have (columns: {})",
                names.join(", ")
            )));
        };
        let c = &columns[at];
        match rule {
            MaskRule::Hash { .. } if hash_kind(&c.base).is_none() => {
                return Err(input(format!(
                    "column `{column}` is {}: a hash mask takes text and integer columns; use fixed:VALUE or drop",
                    c.sql_type
                )));
            }
            MaskRule::Fixed(v) => {
                let probe = format!("SELECT CAST({} AS {})", literal(v), c.sql_type);
                if let Err(e) = client
                    .batch_execute(&format!("SAVEPOINT m; {probe}; RELEASE SAVEPOINT m"))
                    .await
                {
                    let _ = client.batch_execute("ROLLBACK TO SAVEPOINT m").await;
                    return Err(input(format!(
                        "the fixed value for column `{column}` is not a {}: {}",
                        c.sql_type,
                        super::db_message(&e)
                    )));
                }
            }
            _ => {}
        }
        rules[at] = Some(rule);
    }
    let kept = capture::kept_columns(&rules, &flag)?;
    let key_masked = primary_key.iter().any(|k| {
        columns
            .iter()
            .zip(&rules)
            .any(|(c, r)| &c.name == k && r.is_some())
    });

    let select: Vec<String> = kept
        .iter()
        .map(|i| format!("t.{}", ident(&columns[*i].name)))
        .collect();
    let key_expr = if primary_key.is_empty() {
        "t::text".to_string()
    } else {
        let cols: Vec<String> = primary_key
            .iter()
            .map(|k| format!("t.{}", ident(k)))
            .collect();
        format!("ROW({})::text", cols.join(", "))
    };
    let mut sql = format!("SELECT {} FROM {relation} AS t", select.join(", "));
    if let Some(f) = plan.sample {
        let threshold = (f * 4_294_967_296.0).floor() as u64;
        let _ = write!(
            sql,
            " WHERE ('x' || substr(md5({} || {key_expr}), 1, 8))::bit(32)::bigint < {threshold}",
            literal(&format!("{}:", plan.seed))
        );
    }
    if primary_key.is_empty() {
        sql.push_str(" ORDER BY t::text COLLATE \"C\"");
    } else {
        let cols: Vec<String> = primary_key
            .iter()
            .map(|k| format!("t.{}", ident(k)))
            .collect();
        let _ = write!(sql, " ORDER BY {}", cols.join(", "));
    }
    if let Some(n) = plan.limit {
        let _ = write!(sql, " LIMIT {n}");
    }
    let mut rows: Vec<Vec<Option<String>>> = Vec::new();
    for msg in client
        .simple_query(&sql)
        .await
        .map_err(|e| input(super::db_message(&e)))?
    {
        if let SimpleQueryMessage::Row(row) = msg {
            let mut values = Vec::with_capacity(kept.len());
            for (j, i) in kept.iter().enumerate() {
                let v = row.get(j).map(|text| match rules[*i] {
                    Some(rule) => mask(rule, &columns[*i], text, &plan.salt),
                    None => text.to_string(),
                });
                values.push(v);
            }
            rows.push(values);
        }
    }
    if primary_key.is_empty() || key_masked {
        // The order of what is written, so that capturing the capture gives the same file.
        rows.sort();
    }

    let kept_cols: Vec<&ColumnDef> = kept.iter().map(|i| &columns[*i]).collect();
    let key: Vec<String> = if key_masked
        || primary_key
            .iter()
            .any(|k| !kept_cols.iter().any(|c| &c.name == k))
    {
        Vec::new()
    } else {
        primary_key.clone()
    };
    let file = capture::fixture_name(ServiceKind::Postgres, &target.name, "sql");
    let what = target.what();
    let bytes = render(&target.name, &kept_cols, &key, &rows, &what).into_bytes();
    let mut sink = vec![format!("table = {}", toml_string(&target.name))];
    if !key.is_empty() {
        let quoted: Vec<String> = key.iter().map(|k| toml_string(k)).collect();
        sink.push(format!("key = [{}]", quoted.join(", ")));
    }
    Ok(Captured {
        kind: ServiceKind::Postgres,
        what,
        file: file.clone(),
        bytes,
        count: rows.len() as u64,
        seed: vec![format!("sql = {}", toml_string(&file))],
        sink,
    })
}

/// How a hash mask treats a base type: `Some(None)` text, `Some(Some(m))` an integer modulo m.
fn hash_kind(base: &str) -> Option<Option<u64>> {
    match base {
        "text" | "varchar" | "bpchar" | "name" | "citext" => Some(None),
        "int2" => Some(Some(32_768)),
        "int4" | "int8" => Some(Some(u64::from(u32::MAX >> 1) + 1)),
        _ => None,
    }
}

fn mask(rule: &MaskRule, column: &ColumnDef, text: &str, salt: &str) -> String {
    match (rule, hash_kind(&column.base)) {
        (MaskRule::Hash { .. }, Some(Some(modulus))) => {
            capture::hash_int(salt, text.as_bytes(), Some(modulus)).to_string()
        }
        (MaskRule::Hash { len }, _) => {
            // varchar(n) and char(n) hold at most n characters.
            let limit = column
                .sql_type
                .rsplit_once('(')
                .and_then(|(_, n)| n.trim_end_matches(')').parse::<usize>().ok())
                .unwrap_or(*len);
            capture::hash_text(salt, text.as_bytes(), (*len).min(limit))
        }
        (rule, _) => {
            String::from_utf8_lossy(&capture::mask_text(rule, salt, text.as_bytes())).into_owned()
        }
    }
}

/// The SQL fixture: schema, typed table, then the rows in batches.
fn render(
    table: &str,
    columns: &[&ColumnDef],
    key: &[String],
    rows: &[Vec<Option<String>>],
    what: &str,
) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "-- Captured by `harness capture` from postgres {what}: {} rows.",
        rows.len()
    );
    out.push_str("SET standard_conforming_strings = on;\n");
    if let Some((schema, _)) = table.split_once('.') {
        let _ = writeln!(out, "CREATE SCHEMA IF NOT EXISTS {};", ident(schema));
    }
    let quoted = quote_table(table);
    let _ = writeln!(out, "CREATE TABLE {quoted} (");
    let mut defs: Vec<String> = columns
        .iter()
        .map(|c| {
            format!(
                "  {} {}{}",
                ident(&c.name),
                c.sql_type,
                if c.not_null { " NOT NULL" } else { "" }
            )
        })
        .collect();
    if !key.is_empty() {
        let k: Vec<String> = key.iter().map(|k| ident(k)).collect();
        defs.push(format!("  PRIMARY KEY ({})", k.join(", ")));
    }
    out.push_str(&defs.join(",\n"));
    out.push_str("\n);\n");
    let names: Vec<String> = columns.iter().map(|c| ident(&c.name)).collect();
    for batch in rows.chunks(INSERT_BATCH) {
        let _ = writeln!(out, "INSERT INTO {quoted} ({}) VALUES", names.join(", "));
        let lines: Vec<String> = batch
            .iter()
            .map(|r| {
                let v: Vec<String> = r
                    .iter()
                    .map(|v| v.as_deref().map_or("NULL".into(), literal))
                    .collect();
                format!("({})", v.join(", "))
            })
            .collect();
        out.push_str(&lines.join(",\n"));
        out.push_str(";\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fixture_has_typed_columns_and_quoted_values() {
        let cols = [
            ColumnDef {
                name: "id".into(),
                sql_type: "integer".into(),
                base: "int4".into(),
                not_null: true,
            },
            ColumnDef {
                name: "note".into(),
                sql_type: "text".into(),
                base: "text".into(),
                not_null: false,
            },
        ];
        let refs: Vec<&ColumnDef> = cols.iter().collect();
        let rows = vec![
            vec![Some("1".into()), Some("it's".into())],
            vec![Some("2".into()), Some(String::new())],
            vec![Some("3".into()), None],
        ];
        assert_eq!(
            render("public.t", &refs, &["id".into()], &rows, "table public.t"),
            "-- Captured by `harness capture` from postgres table public.t: 3 rows.\n\
             SET standard_conforming_strings = on;\n\
             CREATE SCHEMA IF NOT EXISTS \"public\";\n\
             CREATE TABLE \"public\".\"t\" (\n  \"id\" integer NOT NULL,\n  \"note\" text,\n  PRIMARY KEY (\"id\")\n);\n\
             INSERT INTO \"public\".\"t\" (\"id\", \"note\") VALUES\n('1', 'it''s'),\n('2', ''),\n('3', NULL);\n"
        );
    }

    #[test]
    fn hash_masks_fit_the_column() {
        let c = |sql_type: &str, base: &str| ColumnDef {
            name: "c".into(),
            sql_type: sql_type.into(),
            base: base.into(),
            not_null: false,
        };
        let rule = MaskRule::Hash { len: 16 };
        assert_eq!(
            mask(&rule, &c("character varying(8)", "varchar"), "a", "").len(),
            8
        );
        assert_eq!(mask(&rule, &c("text", "text"), "a", "").len(), 16);
        let n: i64 = mask(&rule, &c("smallint", "int2"), "7", "")
            .parse()
            .expect("int");
        assert!((0..32_768).contains(&n));
        assert_eq!(
            mask(&MaskRule::Fixed("x".into()), &c("text", "text"), "a", ""),
            "x"
        );
    }
}
