//! The seeds of a scenario: `[[seed]]` blocks checked against the rules of the kind they name
//! (`super::rules`) and loaded into service-neutral forms, with every fixture read enough to
//! report a problem at its file and line (a CSV header, a JSON line) before anything runs.

use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use super::fixture::{RedisFixture, csv_columns, parquet_files};
use super::rules::{RowSeeds, SchemaRule};
use super::scenario::{LoadContext, TableFormat, fixture_path, hdfs_path, only, valid_table_name};
use super::{Checker, ServiceKind, display_path};
use crate::diagnostic::{ConfigError, Origin, did_you_mean};

/// What a seed loads; which kinds take which form is in their [`DataRules`].
#[derive(Debug, Clone)]
pub enum SeedKind {
    /// SQL statements from a file.
    Sql {
        /// The file.
        path: PathBuf,
    },
    /// A file (or folder) of rows loaded into a table.
    Rows {
        /// `db.table` (or `table` in the kind's default namespace).
        table: String,
        /// Format of the input.
        format: TableFormat,
        /// The input file or folder.
        path: PathBuf,
        /// The columns a CSV header or JSON Lines keys name, in order (empty for Parquet).
        columns: Vec<String>,
        /// Column definitions in the kind's own dialect, when given.
        schema: Option<String>,
        /// Partition columns.
        partition_by: Vec<String>,
        /// Table engine (with `schema`), when the kind has engines.
        engine: Option<String>,
        /// CSV delimiter.
        delimiter: u8,
        /// CSV text meaning NULL, when not the default.
        null: Option<String>,
    },
    /// Keys from a key fixture.
    Keys {
        /// The file.
        path: PathBuf,
        /// Its parsed content.
        fixture: RedisFixture,
    },
    /// Files copied in.
    Files {
        /// Absolute path inside the service.
        path: String,
        /// Fixture file or folder.
        source: PathBuf,
    },
}

/// One seed step.
#[derive(Debug, Clone)]
pub struct Seed {
    /// Where it is declared.
    pub origin: Origin,
    /// The fixture file as shown to users.
    pub display: PathBuf,
    /// The service it writes to.
    pub service: ServiceKind,
    /// What it loads.
    pub kind: SeedKind,
    /// The index of the step it goes in before; `None` for a seed of the whole scenario, which
    /// goes in before the first step.
    pub step: Option<usize>,
}

impl Seed {
    /// The service the seed writes to.
    pub fn service(&self) -> ServiceKind {
        self.service
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSeed {
    service: Spanned<String>,
    sql: Option<Spanned<String>>,
    table: Option<Spanned<String>>,
    csv: Option<Spanned<String>>,
    delimiter: Option<Spanned<String>>,
    null: Option<Spanned<String>>,
    json: Option<Spanned<String>>,
    jsonl: Option<Spanned<String>>,
    parquet: Option<Spanned<String>>,
    schema: Option<Spanned<String>>,
    partition_by: Option<Spanned<Vec<String>>>,
    path: Option<Spanned<String>>,
    files: Option<Spanned<String>>,
    engine: Option<Spanned<String>>,
}

impl RawSeed {
    pub(super) fn present(&self) -> Vec<(&'static str, Range<usize>)> {
        let mut out = Vec::new();
        let mut add = |k: &'static str, span: Option<Range<usize>>| {
            if let Some(span) = span {
                out.push((k, span));
            }
        };
        add("sql", self.sql.as_ref().map(Spanned::span));
        add("table", self.table.as_ref().map(Spanned::span));
        add("csv", self.csv.as_ref().map(Spanned::span));
        add("delimiter", self.delimiter.as_ref().map(Spanned::span));
        add("null", self.null.as_ref().map(Spanned::span));
        add("json", self.json.as_ref().map(Spanned::span));
        add("jsonl", self.jsonl.as_ref().map(Spanned::span));
        add("parquet", self.parquet.as_ref().map(Spanned::span));
        add("schema", self.schema.as_ref().map(Spanned::span));
        add(
            "partition_by",
            self.partition_by.as_ref().map(Spanned::span),
        );
        add("path", self.path.as_ref().map(Spanned::span));
        add("files", self.files.as_ref().map(Spanned::span));
        add("engine", self.engine.as_ref().map(Spanned::span));
        out
    }
}

pub(super) fn seed(
    ctx: &LoadContext<'_>,
    dir: &Path,
    s: &Spanned<RawSeed>,
    check: &mut Checker<'_>,
) -> Option<Seed> {
    let r = s.get_ref();
    let service = match ServiceKind::parse(r.service.get_ref()) {
        Ok(svc) => svc,
        Err(msg) => {
            check.error(r.service.span(), msg);
            return None;
        }
    };
    let rules = (ctx.rules)(service);
    let origin = check.origin(&s.span());
    let present = r.present();
    let forms = rules.seed_forms();
    if forms.is_empty() {
        check.error_help(
            r.service.span(),
            format!("{service} holds no data to seed"),
            rules.no_data,
        );
        return None;
    }
    let unsupported = |check: &mut Checker<'_>, span: Range<usize>, form: &str| {
        check.error_help(
            span,
            format!("{service} takes no {form} seeds"),
            format!("a {service} seed is one of: {}", forms.join("; ")),
        );
    };
    let made = |display: PathBuf, kind: SeedKind| {
        Some(Seed {
            origin: origin.clone(),
            display,
            service,
            kind,
            step: None,
        })
    };
    if let Some(sql) = &r.sql {
        if !rules.seed_sql {
            unsupported(check, sql.span(), "`sql`");
            return None;
        }
        only(check, &present, &["sql"], &format!("a {service} sql seed")).then_some(())?;
        let path = fixture_path(ctx, dir, sql, false, check)?;
        let display = display_path(ctx.root, &path);
        // Read now so that text the server would refuse is reported before anything starts.
        crate::diagnostic::read_text_reporting(&path, &display, check.errors)?;
        return made(display, SeedKind::Sql { path });
    }
    if let Some(json) = &r.json {
        if !rules.seed_keys {
            unsupported(check, json.span(), "`json`");
            return None;
        }
        only(check, &present, &["json"], &format!("a {service} seed")).then_some(())?;
        let path = fixture_path(ctx, dir, json, false, check)?;
        let display = display_path(ctx.root, &path);
        let text = crate::diagnostic::read_text_reporting(&path, &display, check.errors)?;
        return match RedisFixture::parse(&text) {
            Ok(fixture) => made(display, SeedKind::Keys { path, fixture }),
            Err(e) => {
                check.errors.push(ConfigError::at_origin(
                    Origin {
                        file: display,
                        line_col: e.line_col,
                    },
                    e.message,
                ));
                None
            }
        };
    }
    if r.path.is_some() || r.files.is_some() {
        if !rules.seed_files {
            let span = r
                .path
                .as_ref()
                .or(r.files.as_ref())
                .map_or(s.span(), Spanned::span);
            unsupported(check, span, "`path`/`files`");
            return None;
        }
        only(
            check,
            &present,
            &["path", "files"],
            &format!("a {service} seed"),
        )
        .then_some(())?;
        let (Some(target), Some(files)) = (&r.path, &r.files) else {
            check.error_help(
                s.span(),
                format!("a {service} seed needs `path` (where in {service}) and `files` (a fixture file or folder)"),
                "add path = \"/data/in\" and files = \"my_files\"",
            );
            return None;
        };
        let target_path = hdfs_path(target, check)?;
        let source = fixture_path(ctx, dir, files, true, check)?;
        return made(
            display_path(ctx.root, &source),
            SeedKind::Files {
                path: target_path,
                source,
            },
        );
    }
    if r.csv.is_some() || r.jsonl.is_some() || r.parquet.is_some() || r.table.is_some() {
        let Some(rows) = rules.seed_rows else {
            let span = r.table.as_ref().map_or(s.span(), Spanned::span);
            unsupported(check, span, "`table`");
            return None;
        };
        let (display, kind) = rows_seed(ctx, dir, s, service, &rows, &present, check)?;
        return made(display, kind);
    }
    check.error_help(
        s.span(),
        format!("this {service} seed says nothing to load"),
        format!("a {service} seed is one of: {}", forms.join("; ")),
    );
    None
}

/// A seed of rows from a file into a table, as the kind's [`RowSeeds`] allow.
fn rows_seed(
    ctx: &LoadContext<'_>,
    dir: &Path,
    s: &Spanned<RawSeed>,
    service: ServiceKind,
    rows: &RowSeeds,
    present: &[(&'static str, Range<usize>)],
    check: &mut Checker<'_>,
) -> Option<(PathBuf, SeedKind)> {
    let r = s.get_ref();
    let what = format!("a {service} seed");
    let mut allowed: Vec<&str> = vec!["table"];
    allowed.extend(rows.formats.iter().map(|f| f.name()));
    if rows.schema != SchemaRule::None {
        allowed.push("schema");
    }
    if rows.partition_by {
        allowed.push("partition_by");
    }
    if rows.engine {
        allowed.push("engine");
    }
    if rows.csv_options {
        allowed.extend(["delimiter", "null"]);
    }
    only(check, present, &allowed, &what).then_some(())?;
    let inputs: Vec<(TableFormat, &Spanned<String>)> = [
        (TableFormat::Csv, &r.csv),
        (TableFormat::Jsonl, &r.jsonl),
        (TableFormat::Parquet, &r.parquet),
    ]
    .into_iter()
    .filter_map(|(f, v)| v.as_ref().map(|v| (f, v)))
    .collect();
    let names: Vec<String> = rows
        .formats
        .iter()
        .map(|f| format!("`{}`", f.name()))
        .collect();
    let (format, file) = match inputs.as_slice() {
        [one] => *one,
        [] => {
            check.error_help(
                s.span(),
                format!("{what} needs one of {}", names.join(", ")),
                format!("add {}", rows.example),
            );
            return None;
        }
        [_, second, ..] => {
            check.error(
                second.1.span(),
                format!("{what} reads one file: keep one of {}", names.join(", ")),
            );
            return None;
        }
    };
    if format != TableFormat::Csv {
        for key in ["delimiter", "null"] {
            if let Some((_, span)) = present.iter().find(|(k, _)| *k == key) {
                check.error(span.clone(), format!("`{key}` applies to csv input only"));
                return None;
            }
        }
    }
    let table = seed_table(r, s, check)?;
    let delimiter = delimiter(r, check)?;
    let schema = r.schema.as_ref().map(|x| x.get_ref().trim().to_string());
    if schema.is_none() && format == TableFormat::Csv && rows.schema == SchemaRule::RequiredForCsv {
        check.error_help(
            s.span(),
            format!("{what} from csv needs `schema`"),
            format!("add schema = \"{}\"", rows.schema_example),
        );
        return None;
    }
    if let (None, Some(e)) = (&schema, &r.engine) {
        check.error(
            e.span(),
            "`engine` needs `schema`: it is the engine of the table `schema` creates",
        );
        return None;
    }
    let engine = r.engine.as_ref().map(|x| x.get_ref().trim().to_string());
    let partition_by = r
        .partition_by
        .as_ref()
        .map(|p| p.get_ref().clone())
        .unwrap_or_default();
    let schema_columns = schema.as_deref().map(ddl_column_names);
    if let (Some(names), Some(p)) = (&schema_columns, &r.partition_by) {
        for col in p.get_ref() {
            if !names.iter().any(|n| n.eq_ignore_ascii_case(col)) {
                check.error(
                    p.span(),
                    format!(
                        "partition column `{col}` is not in the schema ({})",
                        names.join(", ")
                    ),
                );
                return None;
            }
        }
    }
    let path = fixture_path(ctx, dir, file, rows.folders, check)?;
    let display = display_path(ctx.root, &path);
    let located = |check: &mut Checker<'_>, line_col: Option<(usize, usize)>, message: String| {
        check.errors.push(ConfigError::at_origin(
            Origin {
                file: display.clone(),
                line_col,
            },
            message,
        ));
    };
    // Columns matched by name must be columns of the declared schema.
    let unknown = |col: &str| {
        let names = schema_columns.as_ref().filter(|_| rows.columns_by_name)?;
        (!names.iter().any(|n| n == col)).then(|| {
            let hint = did_you_mean(col, names.iter().map(String::as_str))
                .map(|b| format!("; did you mean `{b}`?"))
                .unwrap_or_default();
            format!(
                "column `{col}` is not in the table's schema ({}){hint}",
                names.join(", ")
            )
        })
    };
    let columns = match format {
        TableFormat::Csv if path.is_file() => {
            let columns = match csv_columns(&path, delimiter) {
                Ok(c) => c,
                Err(e) => {
                    located(check, e.line_col, e.message);
                    return None;
                }
            };
            if let Some(message) = columns.iter().find_map(|c| unknown(c)) {
                located(check, Some((1, 1)), message);
                return None;
            }
            columns
        }
        TableFormat::Jsonl if path.is_file() => match jsonl_columns(&path, &unknown) {
            Ok(c) => c,
            Err((line, message)) => {
                located(check, line.map(|l| (l, 1)), message);
                return None;
            }
        },
        TableFormat::Parquet => {
            if let Err((file, message)) = parquet_files(&path) {
                check.errors.push(ConfigError::at_origin(
                    Origin::file(display_path(ctx.root, &file)),
                    message,
                ));
                return None;
            }
            vec![]
        }
        _ => vec![],
    };
    let null = r.null.as_ref().map(|n| n.get_ref().clone());
    Some((
        display,
        SeedKind::Rows {
            table,
            format,
            path,
            columns,
            schema,
            partition_by,
            engine,
            delimiter,
            null,
        },
    ))
}

/// Every key of a JSON Lines file, in order of first use; each line must be an object, and
/// `unknown` rejects a key (with why). Errors carry their 1-based line.
fn jsonl_columns(
    path: &Path,
    unknown: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<String>, (Option<usize>, String)> {
    let text = crate::diagnostic::read_text(path).map_err(|(at, m)| (at.map(|(l, _)| l), m))?;
    let mut columns: Vec<String> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let value: serde_json::Value = serde_json::from_str(line)
            .map_err(|e| (Some(i + 1), format!("not a JSON object: {e}")))?;
        let Some(object) = value.as_object() else {
            return Err((Some(i + 1), "each line must be one JSON object".into()));
        };
        for key in object.keys() {
            if let Some(why) = unknown(key) {
                return Err((Some(i + 1), why));
            }
            if !columns.contains(key) {
                columns.push(key.clone());
            }
        }
    }
    Ok(columns)
}

fn seed_table(r: &RawSeed, s: &Spanned<RawSeed>, check: &mut Checker<'_>) -> Option<String> {
    let Some(table) = &r.table else {
        check.error_help(
            s.span(),
            "this seed needs `table`",
            "add table = \"schema.table\"",
        );
        return None;
    };
    if !valid_table_name(table.get_ref()) {
        check.error_help(
            table.span(),
            format!("invalid table name `{}`", table.get_ref()),
            "write `table` or `schema.table`",
        );
        return None;
    }
    Some(table.get_ref().clone())
}

fn delimiter(r: &RawSeed, check: &mut Checker<'_>) -> Option<u8> {
    match &r.delimiter {
        None => Some(b','),
        Some(d) if d.get_ref().len() == 1 => Some(d.get_ref().as_bytes()[0]),
        Some(d) => {
            check.error(d.span(), "`delimiter` must be a single character");
            None
        }
    }
}

/// Column names of a Spark DDL schema (`a INT, b DECIMAL(10,2), c STRUCT<x: INT>`).
pub(super) fn ddl_column_names(ddl: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut depth = 0i32;
    let mut start = true;
    let mut current = String::new();
    for c in ddl.chars() {
        match c {
            '<' | '(' => depth += 1,
            '>' | ')' => depth -= 1,
            ',' if depth == 0 => {
                start = true;
                continue;
            }
            _ => {}
        }
        if start {
            if c.is_whitespace() && current.is_empty() {
                continue;
            }
            if c.is_whitespace() || c == ':' {
                names.push(current.trim_matches('`').to_string());
                current.clear();
                start = false;
            } else {
                current.push(c);
            }
        }
    }
    if start && !current.is_empty() {
        names.push(current.trim_matches('`').to_string());
    }
    names
}
