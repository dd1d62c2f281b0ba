//! Capturing ClickHouse tables and queries as SQL fixtures (the `sql` seed): the database, the
//! table with its column types and engine, and `INSERT ... VALUES` of every value as a literal
//! ClickHouse reads back to the same value: numbers, decimals, arrays and tuples as the server
//! prints them, everything else (strings, dates, times, enums, UUIDs) quoted, NULL as NULL.

use std::fmt::Write as _;

use sha2::{Digest, Sha256};

use super::values::strip_wrappers;
use super::{ChError, ClickHouseEndpoint, ident, quote_table, unescape};
use crate::config::capture::{
    self, CaptureError, CapturePlan, Captured, MaskRule, TableTarget, toml_string,
};
use crate::names::ServiceKind;

/// Rows per INSERT statement.
const INSERT_BATCH: usize = 500;

/// How a column's values are written.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Form {
    /// As printed: numbers, decimals, arrays, tuples.
    Raw,
    /// Quoted: strings, dates, times, enums, UUIDs.
    Quoted,
}

fn form(ty: &str) -> Form {
    let base = strip_wrappers(ty);
    if ["Int", "UInt", "Float", "Decimal", "Array(", "Tuple("]
        .iter()
        .any(|p| base.starts_with(p))
    {
        Form::Raw
    } else {
        Form::Quoted
    }
}

/// A ClickHouse string literal.
fn literal(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('\'');
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\0' => out.push_str("\\0"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// A `fixed:VALUE` mask's value as a literal of a column of type `ty`: as written for numbers,
/// arrays and tuples (`0`, `[]`), quoted for the rest.
fn fixed(value: &str, ty: &str) -> String {
    match form(ty) {
        Form::Raw => value.to_string(),
        Form::Quoted => literal(value),
    }
}

/// How a hash mask treats a type: `Some(None)` text, `Some(Some(m))` an integer modulo m.
fn hash_kind(ty: &str) -> Option<Option<u64>> {
    let base = strip_wrappers(ty);
    match base {
        "String" => Some(None),
        "Int8" | "UInt8" => Some(Some(128)),
        "Int16" | "UInt16" => Some(Some(32_768)),
        b if b.starts_with("Int") || b.starts_with("UInt") => {
            Some(Some(u64::from(u32::MAX >> 1) + 1))
        }
        _ => None,
    }
}

/// Captures `targets` (all ClickHouse) from the server at `url`.
pub async fn capture(
    url: &str,
    targets: &[&TableTarget],
    plan: &CapturePlan,
) -> Result<Vec<Captured>, CaptureError> {
    let place = crate::redact::register_url(url);
    let endpoint = ClickHouseEndpoint::from_url(url)
        .map_err(|e| CaptureError::Input(format!("--clickhouse: not a ClickHouse URL: {e}")))?;
    let mut out = Vec::new();
    for t in targets {
        out.push(capture_one(&endpoint, &place, t, plan).await?);
    }
    Ok(out)
}

async fn capture_one(
    ch: &ClickHouseEndpoint,
    place: &str,
    target: &TableTarget,
    plan: &CapturePlan,
) -> Result<Captured, CaptureError> {
    let flag = target.flag();
    let flag = flag.as_str();
    let ask = |sql: String| async move {
        ch.request(&sql, None, &[("wait_end_of_query", "1")])
            .await
            .map_err(|e| match e {
                ChError::Unreachable(m) => CaptureError::Unavailable(format!(
                    "clickhouse at {place}: {}",
                    crate::redact::redact(&m)
                )),
                ChError::Refused(m) => CaptureError::Input(format!("{flag}: {m}")),
            })
    };
    let source = match &target.query {
        Some(q) => format!("({q})"),
        None => quote_table(&target.name),
    };
    let (database, table) = target
        .name
        .split_once('.')
        .unwrap_or(("default", &target.name));
    let mut engine = "MergeTree ORDER BY tuple()".to_string();
    if target.query.is_none() {
        let create = ask(format!(
            "SHOW CREATE TABLE {}.{} FORMAT TabSeparatedRaw",
            ident(database),
            ident(table)
        ))
        .await?;
        if let Some((_, e)) = create.trim_end().split_once(" ENGINE = ") {
            engine = e.to_string();
        }
    }
    let head = ask(format!(
        "SELECT * FROM {source} LIMIT 0 FORMAT TabSeparatedWithNamesAndTypes"
    ))
    .await?;
    let mut lines = head.lines();
    let names: Vec<String> = lines
        .next()
        .unwrap_or("")
        .split('\t')
        .map(unescape)
        .collect();
    let types: Vec<String> = lines
        .next()
        .unwrap_or("")
        .split('\t')
        .map(unescape)
        .collect();

    let mut rules: Vec<Option<&MaskRule>> = vec![None; names.len()];
    for (column, rule) in plan.column_masks(ServiceKind::ClickHouse, &target.name) {
        let Some(at) = names.iter().position(|n| n == column) else {
            return Err(CaptureError::Input(format!(
                "{flag}: a mask names column `{column}`, which it does not have (columns: {})",
                names.join(", ")
            )));
        };
        match rule {
            MaskRule::Hash { .. } if hash_kind(&types[at]).is_none() => {
                return Err(CaptureError::Input(format!(
                    "{flag}: column `{column}` is {}: a hash mask takes String and integer columns; use fixed:VALUE or drop",
                    types[at]
                )));
            }
            MaskRule::Fixed(v) => {
                ask(format!(
                    "SELECT CAST({} AS {})",
                    fixed(v, &types[at]),
                    types[at]
                ))
                .await
                .map_err(|e| {
                    CaptureError::Input(format!(
                        "{e} (the fixed value for column `{column}` is not a {})",
                        types[at]
                    ))
                })?;
            }
            _ => {}
        }
        rules[at] = Some(rule);
    }
    let kept = capture::kept_columns(&rules, flag)?;
    if kept.len() < names.len() {
        // The engine's keys may name a dropped column.
        engine = "MergeTree ORDER BY tuple()".into();
    }
    let order: Vec<String> = names.iter().map(|n| ident(n)).collect();
    let text = ask(format!(
        "SELECT * FROM {source} ORDER BY {} FORMAT TabSeparated",
        order.join(", ")
    ))
    .await?;
    let mut rows: Vec<String> = Vec::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split('\t').collect();
        if plan.sample.is_some_and(|f| !sampled(&plan.seed, line, f)) {
            continue;
        }
        if plan.limit.is_some_and(|n| rows.len() as u64 >= n) {
            break;
        }
        let values: Vec<String> = kept
            .iter()
            .map(|i| {
                let field = fields.get(*i).copied().unwrap_or("\\N");
                if field == "\\N" {
                    return "NULL".to_string();
                }
                let ty = &types[*i];
                match (rules[*i], hash_kind(ty)) {
                    (Some(MaskRule::Hash { .. }), Some(Some(m))) => {
                        capture::hash_int(&plan.salt, unescape(field).as_bytes(), Some(m))
                            .to_string()
                    }
                    (Some(MaskRule::Hash { len }), _) => literal(&capture::hash_text(
                        &plan.salt,
                        unescape(field).as_bytes(),
                        *len,
                    )),
                    (Some(MaskRule::Fixed(v)), _) => fixed(v, ty),
                    // Arrays and tuples are printed as literals, not escaped again.
                    _ if form(ty) == Form::Raw => field.to_string(),
                    _ => literal(&unescape(field)),
                }
            })
            .collect();
        rows.push(format!("({})", values.join(", ")));
    }
    // The order of what is written, so that capturing the capture gives the same file.
    rows.sort();

    let mut sql = format!(
        "-- Captured by `harness capture` from clickhouse {}: {} rows.\n",
        target.what(),
        rows.len()
    );
    let _ = writeln!(sql, "CREATE DATABASE IF NOT EXISTS {};", ident(database));
    let defs: Vec<String> = kept
        .iter()
        .map(|i| format!("{} {}", ident(&names[*i]), types[*i]))
        .collect();
    let _ = writeln!(
        sql,
        "CREATE TABLE {}.{} ({}) ENGINE = {engine};",
        ident(database),
        ident(table),
        defs.join(", ")
    );
    let cols: Vec<String> = kept.iter().map(|i| ident(&names[*i])).collect();
    for batch in rows.chunks(INSERT_BATCH) {
        let _ = writeln!(
            sql,
            "INSERT INTO {}.{} ({}) VALUES\n{};",
            ident(database),
            ident(table),
            cols.join(", "),
            batch.join(",\n")
        );
    }
    let file = capture::fixture_name(ServiceKind::ClickHouse, &target.name, "sql");
    Ok(Captured {
        kind: ServiceKind::ClickHouse,
        what: target.what(),
        file: file.clone(),
        bytes: sql.into_bytes(),
        count: rows.len() as u64,
        seed: vec![format!("sql = {}", toml_string(&file))],
        sink: vec![format!("table = {}", toml_string(&target.name))],
    })
}

/// True when a row (its line of TabSeparated) falls in the sample: the first 32 bits of
/// SHA-256(seed + ":" + line) below fraction × 2³².
fn sampled(seed: &str, line: &str, fraction: f64) -> bool {
    let digest = Sha256::digest(format!("{seed}:{line}").as_bytes());
    let n = u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]);
    f64::from(n) < fraction * 4_294_967_296.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_written_as_literals_by_type() {
        assert_eq!(form("Nullable(Decimal(9, 2))"), Form::Raw);
        assert_eq!(form("Array(String)"), Form::Raw);
        assert_eq!(form("DateTime"), Form::Quoted);
        assert_eq!(form("LowCardinality(String)"), Form::Quoted);
        assert_eq!(literal("it's a \\ b\nc"), "'it\\'s a \\\\ b\\nc'");
        assert_eq!(hash_kind("Nullable(UInt16)"), Some(Some(32_768)));
        assert_eq!(hash_kind("Date"), None);
        assert!(sampled("s", "1\ta", 1.0));
    }
}
