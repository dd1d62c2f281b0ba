//! `scenarios/<name>/scenario.toml`: which pipeline (and tasks) to run, the seeds, and the sinks
//! with their golden files.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use super::fixture::{RedisFixture, csv_header};
use super::pipeline::Output;
use super::rules::{RowSeeds, Rules, SchemaRule, SinkRules};
use super::{
    Checker, PathProblem, Pipeline, ServiceKind, Settings, Task, TaskId, display_path, glob_match,
    parse_services, resolve_inside, valid_name,
};
use crate::diagnostic::{ConfigError, Origin, did_you_mean};
use crate::names::ScenarioName;
use crate::snapshot::table::{DEFAULT_PLACEHOLDER, Redaction, Tolerance, Tolerances};

/// A tabular file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableFormat {
    /// CSV with a header row.
    Csv,
    /// JSON Lines.
    Jsonl,
    /// Parquet.
    Parquet,
}

impl TableFormat {
    /// Parses `csv`, `jsonl` or `parquet`.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "csv" => Some(TableFormat::Csv),
            "jsonl" => Some(TableFormat::Jsonl),
            "parquet" => Some(TableFormat::Parquet),
            _ => None,
        }
    }

    /// The format's name.
    pub fn name(self) -> &'static str {
        match self {
            TableFormat::Csv => "csv",
            TableFormat::Jsonl => "jsonl",
            TableFormat::Parquet => "parquet",
        }
    }
}

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
}

impl Seed {
    /// The service the seed writes to.
    pub fn service(&self) -> ServiceKind {
        self.service
    }
}

/// What a sink reads; which kinds have which form is in their [`DataRules`].
#[derive(Debug, Clone)]
pub enum SinkSpec {
    /// A table, or a query's rows.
    Table {
        /// A full table name, or `None` for a query.
        table: Option<String>,
        /// The query to read (`SELECT * FROM` the table when a table is named), for kinds that
        /// take queries.
        query: Option<String>,
        /// Columns ordering the rows (empty: the whole row).
        key: Vec<String>,
        /// Decimals to round float columns to.
        float_digits: Option<u32>,
    },
    /// Keys matching a pattern.
    Keys {
        /// MATCH pattern.
        pattern: String,
        /// Render string values holding JSON canonically.
        decode_json: bool,
        /// Decimals to round floats inside decoded JSON to.
        float_digits: Option<u32>,
    },
    /// A path: its file listing, and the rows of the dataset there when `format` is set.
    Path {
        /// Absolute path.
        path: String,
        /// Format of the dataset at the path.
        format: Option<TableFormat>,
        /// Columns ordering the rows.
        key: Vec<String>,
        /// Decimals to round float columns to.
        float_digits: Option<u32>,
    },
}

/// One sink: something the pipeline writes, compared with a golden snapshot.
#[derive(Debug, Clone)]
pub struct Sink {
    /// Its name, unique within the scenario.
    pub name: String,
    /// Where it is declared.
    pub origin: Origin,
    /// The golden file.
    pub golden: PathBuf,
    /// The service it reads.
    pub service: ServiceKind,
    /// How that kind's sinks are written (table names, for matching outputs).
    pub rules: SinkRules,
    /// What it reads.
    pub spec: SinkSpec,
    /// Per-column float tolerance (table sinks).
    pub tolerance: Tolerances,
    /// Redactions applied before rendering.
    pub redact: Vec<Redaction>,
    /// The tasks that write it: its `written_by`, else the tasks whose `outputs` cover it.
    pub writers: Vec<TaskId>,
}

impl Sink {
    /// True when the snapshot holds a table (compared row by row).
    pub fn is_table(&self) -> bool {
        matches!(
            self.spec,
            SinkSpec::Table { .. }
                | SinkSpec::Path {
                    format: Some(_),
                    ..
                }
        )
    }

    /// The columns rows are paired by (empty for sinks that are not tables).
    pub fn key(&self) -> &[String] {
        match &self.spec {
            SinkSpec::Table { key, .. } | SinkSpec::Path { key, .. } => key,
            SinkSpec::Keys { .. } => &[],
        }
    }

    /// True when `output` (something a task declares it writes) covers what the sink reads.
    pub fn written_by(&self, output: &Output) -> bool {
        if output.service != self.service {
            return false;
        }
        let target = output.target.as_str();
        match &self.spec {
            SinkSpec::Table { table: None, .. } => false,
            SinkSpec::Table { table: Some(t), .. } => {
                glob_match(&self.rules.normalize(target), &self.rules.normalize(t))
            }
            SinkSpec::Keys { pattern, .. } => {
                glob_match(target, pattern) || glob_match(pattern, target)
            }
            SinkSpec::Path { path, .. } => {
                let under = |inner: &str, outer: &str| {
                    let outer = outer.trim_end_matches('/');
                    inner == outer || inner.starts_with(&format!("{outer}/")) || outer.is_empty()
                };
                let target = target.trim_end_matches('/');
                under(path, target) || under(target, path) || glob_match(target, path)
            }
        }
    }

    /// The service the sink reads.
    pub fn service(&self) -> ServiceKind {
        self.service
    }

    /// A short description of what is read, for snapshot headers (`postgres table s.t`).
    pub fn describe(&self) -> String {
        let kind = self.service;
        match &self.spec {
            SinkSpec::Table { table: Some(t), .. } => format!("{kind} table {t}"),
            SinkSpec::Table { query, .. } => format!(
                "{kind} query {}",
                query
                    .as_deref()
                    .unwrap_or("")
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
            SinkSpec::Keys { pattern, .. } => format!("{kind} keys {pattern}"),
            SinkSpec::Path {
                path, format: None, ..
            } => format!("{kind} path {path}"),
            SinkSpec::Path {
                path,
                format: Some(f),
                ..
            } => format!("{kind} path {path} ({} rows)", f.name()),
        }
    }
}

/// A validated scenario.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// Its name.
    pub name: ScenarioName,
    /// Its folder.
    pub dir: PathBuf,
    /// Its scenario.toml, as shown to users.
    pub file: PathBuf,
    /// One-line description.
    pub description: Option<String>,
    /// Pipeline name.
    pub pipeline: String,
    /// Subset of tasks to run; `None` for all.
    pub tasks: Option<Vec<TaskId>>,
    /// Extra services.
    pub services: Vec<ServiceKind>,
    /// Extra environment for every task.
    pub env: BTreeMap<String, String>,
    /// Seeds, in order.
    pub seeds: Vec<Seed>,
    /// Sinks.
    pub sinks: Vec<Sink>,
    /// Set when the scenario must fail.
    pub expect_failure: Option<ExpectedFailure>,
}

impl Scenario {
    /// The tasks of `pipeline` the scenario selects (all without `tasks`), in the pipeline's
    /// order.
    pub fn selected_tasks<'p>(&self, pipeline: &'p Pipeline) -> Vec<&'p Task> {
        pipeline
            .tasks
            .iter()
            .filter(|t| self.tasks.as_ref().is_none_or(|sel| sel.contains(&t.id)))
            .collect()
    }

    /// The services the scenario names: its own, its selected tasks' (each task's `services`,
    /// else the pipeline's), and those of its seeds and sinks. What those need in turn is the
    /// planner's business (`crate::runner::plan`).
    pub fn declared_services(&self, pipeline: &Pipeline) -> Vec<ServiceKind> {
        let mut all: Vec<ServiceKind> = self.services.clone();
        all.extend(
            self.selected_tasks(pipeline)
                .into_iter()
                .flat_map(|t| pipeline.task_services(t)),
        );
        all.extend(self.seeds.iter().map(Seed::service));
        all.extend(self.sinks.iter().map(Sink::service));
        all.sort();
        all.dedup();
        all
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScenario {
    description: Option<String>,
    pipeline: Spanned<String>,
    tasks: Option<Vec<Spanned<String>>>,
    #[serde(default)]
    services: Vec<Spanned<String>>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    #[serde(default)]
    seed: Vec<Spanned<RawSeed>>,
    #[serde(default)]
    sink: Vec<Spanned<RawSink>>,
    expect: Option<Spanned<RawExpect>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExpect {
    outcome: Spanned<String>,
    task: Option<Spanned<String>>,
    sinks: Option<Vec<Spanned<String>>>,
}

/// A scenario that must fail, to prove the gate bites (like pytest's strict xfail).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExpectedFailure {
    /// Any failure will do.
    Any,
    /// This task must fail (or time out).
    Task(TaskId),
    /// Exactly these sinks must differ from their goldens.
    Sinks(Vec<String>),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSeed {
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
    fn present(&self) -> Vec<(&'static str, Range<usize>)> {
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSink {
    name: Spanned<String>,
    service: Spanned<String>,
    table: Option<Spanned<String>>,
    query: Option<Spanned<String>>,
    key: Option<Vec<Spanned<String>>>,
    float_digits: Option<Spanned<i64>>,
    keys: Option<Spanned<String>>,
    decode: Option<Spanned<String>>,
    path: Option<Spanned<String>>,
    format: Option<Spanned<String>>,
    tolerance: Option<Spanned<BTreeMap<String, Spanned<RawTolerance>>>>,
    redact: Option<Spanned<Vec<Spanned<RawRedaction>>>>,
    written_by: Option<Spanned<toml::Value>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTolerance {
    abs: Option<f64>,
    rel: Option<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRedaction {
    column: Option<String>,
    regex: Option<Spanned<String>>,
    with: Option<Spanned<String>>,
}

impl RawSink {
    fn present(&self) -> Vec<(&'static str, Range<usize>)> {
        let mut out = Vec::new();
        let mut add = |k: &'static str, span: Option<Range<usize>>| {
            if let Some(span) = span {
                out.push((k, span));
            }
        };
        add("table", self.table.as_ref().map(Spanned::span));
        add("query", self.query.as_ref().map(Spanned::span));
        add(
            "key",
            self.key.as_ref().and_then(|k| k.first()).map(Spanned::span),
        );
        add(
            "float_digits",
            self.float_digits.as_ref().map(Spanned::span),
        );
        add("keys", self.keys.as_ref().map(Spanned::span));
        add("decode", self.decode.as_ref().map(Spanned::span));
        add("path", self.path.as_ref().map(Spanned::span));
        add("format", self.format.as_ref().map(Spanned::span));
        add("tolerance", self.tolerance.as_ref().map(Spanned::span));
        add("redact", self.redact.as_ref().map(Spanned::span));
        add("written_by", self.written_by.as_ref().map(Spanned::span));
        out
    }
}

/// Reports every key of `present` that is not in `allowed`; true when there was none.
fn only(
    check: &mut Checker<'_>,
    present: &[(&'static str, Range<usize>)],
    allowed: &[&str],
    what: &str,
) -> bool {
    let mut ok = true;
    for (key, span) in present {
        if !allowed.contains(key) {
            check.error_help(
                span.clone(),
                format!("`{key}` does not apply to {what}"),
                format!("{what} takes: {}", allowed.join(", ")),
            );
            ok = false;
        }
    }
    ok
}

/// What loading a scenario needs to know about the rest of the project.
pub struct LoadContext<'a> {
    /// Project root.
    pub root: &'a Path,
    /// Settings.
    pub settings: &'a Settings,
    /// Valid pipelines.
    pub pipelines: &'a BTreeMap<String, Pipeline>,
    /// Pipelines that exist but have errors (reported on their own).
    pub broken_pipelines: &'a [String],
    /// What each kind of service takes.
    pub rules: Rules<'a>,
}

/// Loads one scenario; `None` when it has errors (pushed to `errors`).
pub fn load(ctx: &LoadContext<'_>, dir: &Path, errors: &mut Vec<ConfigError>) -> Option<Scenario> {
    let before = errors.len();
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let file = dir.join("scenario.toml");
    let (source, raw) = super::read_toml::<RawScenario>(ctx.root, &file, errors)?;
    let mut check = Checker::new(&source, errors);
    if !valid_name(&name) {
        check.errors.push(
            ConfigError::in_file(&source.display, format!("invalid scenario name `{name}`"))
                .with_help("name scenario folders with letters, digits, `_` and `-`"),
        );
    }

    let pipeline = ctx.pipelines.get(raw.pipeline.get_ref());
    if pipeline.is_none() && !ctx.broken_pipelines.contains(raw.pipeline.get_ref()) {
        let known: Vec<&str> = ctx
            .pipelines
            .keys()
            .map(String::as_str)
            .chain(ctx.broken_pipelines.iter().map(String::as_str))
            .collect();
        let help = match did_you_mean(raw.pipeline.get_ref(), known.iter().copied()) {
            Some(b) => format!("did you mean `{b}`?"),
            None if known.is_empty() => format!(
                "no pipelines found under {}",
                display_path(ctx.root, &ctx.settings.pipelines_dir).display()
            ),
            None => format!("known pipelines: {}", known.join(", ")),
        };
        check.error_help(
            raw.pipeline.span(),
            format!("unknown pipeline `{}`", raw.pipeline.get_ref()),
            help,
        );
    }

    let tasks = raw.tasks.as_ref().map(|list| {
        let mut out = Vec::new();
        for t in list {
            if let Some(p) = pipeline
                && p.task(t.get_ref()).is_none()
            {
                let help = did_you_mean(t.get_ref(), p.tasks.iter().map(|t| t.id.0.as_str()))
                    .map_or_else(
                        || format!("tasks of `{}`: {}", p.name, task_list(p)),
                        |b| format!("did you mean `{b}`?"),
                    );
                check.error_help(
                    t.span(),
                    format!("pipeline `{}` has no task `{}`", p.name, t.get_ref()),
                    help,
                );
                continue;
            }
            out.push(TaskId(t.get_ref().clone()));
        }
        if list.is_empty() {
            check.errors.push(ConfigError::in_file(
                &source.display,
                "`tasks` is empty; remove it to run every task",
            ));
        }
        out
    });

    let services = parse_services(&raw.services, &mut check);
    let seeds = raw
        .seed
        .iter()
        .filter_map(|s| seed(ctx, dir, s, &mut check))
        .collect();

    let mut sinks: Vec<Sink> = Vec::new();
    for s in &raw.sink {
        if let Some(sink) = sink(ctx, dir, s, pipeline, &mut check) {
            if sinks.iter().any(|o| o.name == sink.name) {
                check.error(
                    s.get_ref().name.span(),
                    format!("sink `{}` is declared twice", sink.name),
                );
            } else {
                sinks.push(sink);
            }
        }
    }
    let expect_failure = raw
        .expect
        .as_ref()
        .and_then(|e| expectation(e, pipeline, &raw, &sinks, &mut check));
    if raw.sink.is_empty() {
        check.errors.push(
            ConfigError::in_file(
                &source.display,
                "scenario has no sinks: nothing would be checked",
            )
            .with_help("add a [[sink]] table"),
        );
    }

    if errors.len() > before {
        return None;
    }
    Some(Scenario {
        name: ScenarioName(name),
        dir: dir.to_path_buf(),
        file: source.display.clone(),
        description: raw.description,
        pipeline: raw.pipeline.into_inner(),
        tasks,
        services,
        env: raw.env,
        seeds,
        sinks,
        expect_failure,
    })
}

/// Looks a fixture up in the scenario folder, then in the fixtures folder.
fn fixture_path(
    ctx: &LoadContext<'_>,
    dir: &Path,
    value: &Spanned<String>,
    allow_dir: bool,
    check: &mut Checker<'_>,
) -> Option<PathBuf> {
    let written = value.get_ref();
    let mut tried = Vec::new();
    for base in [dir, ctx.settings.fixtures_dir.as_path()] {
        match resolve_inside(ctx.root, base, written) {
            Ok(p) if p.is_file() || (allow_dir && p.is_dir()) => return Some(p),
            Ok(p) => {
                check.error(
                    value.span(),
                    format!(
                        "fixture `{written}` is not a file ({})",
                        display_path(ctx.root, &p).display()
                    ),
                );
                return None;
            }
            Err(PathProblem::Missing(p)) => {
                tried.push(display_path(ctx.root, &p).display().to_string())
            }
            Err(PathProblem::Escapes) => {
                check.error_help(
                    value.span(),
                    format!("fixture path `{written}` leads outside the project"),
                    "keep fixtures inside the project folder",
                );
                return None;
            }
            Err(PathProblem::Absolute) => {
                check.error_help(
                    value.span(),
                    format!("fixture path `{written}` is absolute"),
                    "write it relative to the scenario folder or the fixtures folder",
                );
                return None;
            }
        }
    }
    check.error_help(
        value.span(),
        format!("fixture `{written}` not found"),
        format!("looked for {}", tried.join(" and ")),
    );
    None
}

fn seed(
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
        })
    };
    if let Some(sql) = &r.sql {
        if !rules.seed_sql {
            unsupported(check, sql.span(), "`sql`");
            return None;
        }
        only(check, &present, &["sql"], &format!("a {service} sql seed")).then_some(())?;
        let path = fixture_path(ctx, dir, sql, false, check)?;
        return made(display_path(ctx.root, &path), SeedKind::Sql { path });
    }
    if let Some(json) = &r.json {
        if !rules.seed_keys {
            unsupported(check, json.span(), "`json`");
            return None;
        }
        only(check, &present, &["json"], &format!("a {service} seed")).then_some(())?;
        let path = fixture_path(ctx, dir, json, false, check)?;
        let display = display_path(ctx.root, &path);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) => {
                check
                    .errors
                    .push(ConfigError::in_file(&display, format!("cannot read: {e}")));
                return None;
            }
        };
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
            let columns = match csv_header(&path, delimiter) {
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
        TableFormat::Jsonl if rows.columns_by_name && path.is_file() => {
            match jsonl_columns(&path, &unknown) {
                Ok(c) => c,
                Err((line, message)) => {
                    located(check, line.map(|l| (l, 1)), message);
                    return None;
                }
            }
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

/// A table sink's `table` or `query`, as (the table, when one is named; the query to read).
fn table_or_query(
    r: &RawSink,
    s: &Spanned<RawSink>,
    name: &str,
    service: ServiceKind,
    quote: Option<fn(&str) -> String>,
    check: &mut Checker<'_>,
) -> Option<(Option<String>, Option<String>)> {
    match (&r.table, &r.query) {
        (Some(t), None) if valid_table_name(t.get_ref()) => Some((
            Some(t.get_ref().clone()),
            quote.map(|q| format!("SELECT * FROM {}", q(t.get_ref()))),
        )),
        (Some(t), None) => {
            check.error_help(
                t.span(),
                format!("invalid table name `{}`", t.get_ref()),
                "write `table` or `schema.table`, or use `query`",
            );
            None
        }
        (None, Some(q)) if !q.get_ref().trim().is_empty() => Some((
            None,
            Some(q.get_ref().trim().trim_end_matches(';').to_string()),
        )),
        (None, Some(q)) => {
            check.error(q.span(), "`query` is empty");
            None
        }
        (Some(_), Some(q)) => {
            check.error(q.span(), "a sink reads either `table` or `query`, not both");
            None
        }
        (None, None) => {
            let needs = if quote.is_some() {
                "`table` or `query`"
            } else {
                "`table`"
            };
            check.error_help(
                s.span(),
                format!("{service} sink `{name}` needs {needs}"),
                "add table = \"schema.table\"",
            );
            None
        }
    }
}

/// Every key of a JSON Lines file, in order of first use; each line must be an object, and
/// `unknown` rejects a key (with why). Errors carry their 1-based line.
fn jsonl_columns(
    path: &Path,
    unknown: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<String>, (Option<usize>, String)> {
    let text = std::fs::read_to_string(path).map_err(|e| (None, format!("cannot read: {e}")))?;
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
fn ddl_column_names(ddl: &str) -> Vec<String> {
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

/// An absolute HDFS path without `..`, as written in a seed or sink.
fn hdfs_path(value: &Spanned<String>, check: &mut Checker<'_>) -> Option<String> {
    let v = value.get_ref();
    if !v.starts_with('/') || v.split('/').any(|p| p == ".." || p == ".") || v.contains("//") {
        check.error_help(
            value.span(),
            format!("invalid HDFS path `{v}`"),
            "write an absolute path without `..`, like \"/data/models\"",
        );
        return None;
    }
    Some(v.trim_end_matches('/').to_string())
        .filter(|p| !p.is_empty())
        .or(Some("/".into()))
}

const TOLERANCE: &str = "tolerance";

/// The keys a sink takes: its service's own, the table options when it reads a table, and those
/// every sink takes.
fn sink_keys(own: &[&'static str], table: bool) -> Vec<&'static str> {
    let mut keys = own.to_vec();
    if table {
        keys.extend(["key", "float_digits", TOLERANCE]);
    }
    keys.extend(["redact", "written_by"]);
    keys
}

fn sink(
    ctx: &LoadContext<'_>,
    dir: &Path,
    s: &Spanned<RawSink>,
    pipeline: Option<&Pipeline>,
    check: &mut Checker<'_>,
) -> Option<Sink> {
    let r = s.get_ref();
    let name = r.name.get_ref().clone();
    if !valid_name(&name) {
        check.error_help(
            r.name.span(),
            format!("invalid sink name `{name}`"),
            "sink names are file names: use letters, digits, `_` and `-`",
        );
        return None;
    }
    let origin = check.origin(&s.span());
    let golden = dir.join("golden").join(format!("{name}.snap"));
    let service = match ServiceKind::parse(r.service.get_ref()) {
        Ok(svc) => svc,
        Err(msg) => {
            check.error(r.service.span(), msg);
            return None;
        }
    };
    let present = r.present();
    let what = format!("a {service} sink");
    let key: Vec<String> = r
        .key
        .as_ref()
        .map(|k| k.iter().map(|c| c.get_ref().clone()).collect())
        .unwrap_or_default();
    let float_digits = match &r.float_digits {
        None => None,
        Some(d) => match u32::try_from(*d.get_ref()) {
            Ok(n) if n <= 15 => Some(n),
            _ => {
                check.error(d.span(), "`float_digits` must be a number from 0 to 15");
                return None;
            }
        },
    };
    let rules = (ctx.rules)(service);
    let Some(sink_rules) = rules.sink else {
        check.error_help(
            r.service.span(),
            format!("{service} holds no data to read"),
            rules.no_data,
        );
        return None;
    };
    let spec = match sink_rules {
        SinkRules::Table { query, quote, .. } => {
            let own: &[&'static str] = if query {
                &["table", "query"]
            } else {
                &["table"]
            };
            only(check, &present, &sink_keys(own, true), &what).then_some(())?;
            let (table, query) =
                table_or_query(r, s, &name, service, query.then_some(quote), check)?;
            SinkSpec::Table {
                table,
                query,
                key,
                float_digits,
            }
        }
        SinkRules::Keys => {
            only(
                check,
                &present,
                &sink_keys(&["keys", "decode", "float_digits"], false),
                &what,
            )
            .then_some(())?;
            let Some(pattern) = &r.keys else {
                check.error_help(
                    s.span(),
                    format!("{service} sink `{name}` needs `keys`"),
                    "add keys = \"prefix:*\"",
                );
                return None;
            };
            let decode_json = match &r.decode {
                None => false,
                Some(d) if d.get_ref() == "json" => true,
                Some(d) if d.get_ref() == "none" => false,
                Some(d) => {
                    check.error(
                        d.span(),
                        format!(
                            "unknown decode `{}`; expected `json` or `none`",
                            d.get_ref()
                        ),
                    );
                    return None;
                }
            };
            if let (Some(d), false) = (&r.float_digits, decode_json) {
                check.error_help(
                    d.span(),
                    format!("`float_digits` of a {service} sink applies to decoded JSON values"),
                    "add decode = \"json\"",
                );
                return None;
            }
            SinkSpec::Keys {
                pattern: pattern.get_ref().clone(),
                decode_json,
                float_digits,
            }
        }
        SinkRules::Path => {
            only(
                check,
                &present,
                &sink_keys(&["path", "format"], true),
                &what,
            )
            .then_some(())?;
            let Some(p) = &r.path else {
                check.error_help(
                    s.span(),
                    format!("{service} sink `{name}` needs `path`"),
                    "add path = \"/data/out\"",
                );
                return None;
            };
            let path = hdfs_path(p, check)?;
            let format = match &r.format {
                None => None,
                Some(f) => match TableFormat::parse(f.get_ref()) {
                    Some(t) => Some(t),
                    None => {
                        check.error(
                            f.span(),
                            format!(
                                "unknown format `{}`; expected csv, jsonl or parquet",
                                f.get_ref()
                            ),
                        );
                        return None;
                    }
                },
            };
            if format.is_none() {
                for k in ["key", "float_digits", TOLERANCE] {
                    if let Some((_, span)) = present.iter().find(|(p, _)| *p == k) {
                        check.error_help(
                            span.clone(),
                            format!("`{k}` applies to the rows of a tabular {service} sink"),
                            "add format = \"parquet\" (or csv, jsonl)",
                        );
                        return None;
                    }
                }
            }
            SinkSpec::Path {
                path,
                format,
                key,
                float_digits,
            }
        }
    };
    let mut sink = Sink {
        name,
        origin,
        golden,
        service,
        rules: sink_rules,
        spec,
        tolerance: Tolerances::new(),
        redact: vec![],
        writers: vec![],
    };
    sink.tolerance = tolerances(&sink, r, check)?;
    sink.redact = redactions(&sink, r, check)?;
    sink.writers = writers(&sink, r, pipeline, check)?;
    Some(sink)
}

fn tolerances(sink: &Sink, r: &RawSink, check: &mut Checker<'_>) -> Option<Tolerances> {
    let Some(raw) = &r.tolerance else {
        return Some(Tolerances::new());
    };
    if sink.key().is_empty() {
        check.error_help(
            raw.span(),
            "`tolerance` needs `key`: rows are paired by key before their values are compared",
            "add key = [\"id\"] with the columns that identify a row",
        );
        return None;
    }
    let mut out = Tolerances::new();
    let mut ok = true;
    for (column, t) in raw.get_ref() {
        let RawTolerance { abs, rel } = *t.get_ref();
        let bad = |v: Option<f64>| v.is_some_and(|v| !v.is_finite() || v < 0.0);
        if abs.is_none() && rel.is_none() {
            check.error_help(
                t.span(),
                format!("tolerance of `{column}` sets neither `abs` nor `rel`"),
                "write { abs = 1e-6 } or { rel = 0.001 } (or both: either bound passes)",
            );
            ok = false;
        } else if bad(abs) || bad(rel) {
            check.error(
                t.span(),
                format!("tolerance of `{column}` must be a finite number ≥ 0"),
            );
            ok = false;
        } else {
            out.insert(column.clone(), Tolerance { abs, rel });
        }
    }
    ok.then_some(out)
}

fn redactions(sink: &Sink, r: &RawSink, check: &mut Checker<'_>) -> Option<Vec<Redaction>> {
    let Some(raw) = &r.redact else {
        return Some(vec![]);
    };
    let mut out = Vec::new();
    let mut ok = true;
    for item in raw.get_ref() {
        let span = item.span();
        let RawRedaction {
            column,
            regex,
            with,
        } = item.get_ref();
        if column.is_none() && regex.is_none() {
            check.error_help(
                span,
                "a redaction needs `column`, `regex` or both",
                "write { column = \"updated_at\" } or { regex = '\\d{4}-\\d{2}-\\d{2}', with = \"[date]\" }",
            );
            ok = false;
            continue;
        }
        if column.is_some() && !sink.is_table() {
            check.error_help(
                span,
                format!(
                    "`column` redactions apply to table sinks; `{}` is not one",
                    sink.name
                ),
                "use { regex = \"...\" }, applied to every line of the snapshot",
            );
            ok = false;
            continue;
        }
        let pattern = match regex {
            None => None,
            Some(re) => match regex::Regex::new(re.get_ref()) {
                Ok(p) if p.is_match("") => {
                    check.error(re.span(), "this regex matches the empty string");
                    ok = false;
                    continue;
                }
                Ok(p) => Some(p),
                Err(e) => {
                    let msg = e.to_string();
                    let last = msg.lines().last().unwrap_or("").trim().to_string();
                    check.error(re.span(), format!("invalid regex: {last}"));
                    ok = false;
                    continue;
                }
            },
        };
        let placeholder = with
            .as_ref()
            .map_or(DEFAULT_PLACEHOLDER.to_string(), |w| w.get_ref().clone());
        // A whole-value placeholder is shown bare in the snapshot: it must not look like
        // another value or break the row apart.
        let bare = pattern.is_none();
        let bad = placeholder.contains('\n')
            || bare
                && (placeholder.is_empty()
                    || placeholder.contains('|')
                    || placeholder.starts_with('"')
                    || placeholder == "NULL");
        if bad {
            check.error_help(
                with.as_ref().map_or(span, Spanned::span),
                format!("unusable placeholder `{placeholder}`"),
                "a placeholder is one line; a whole-value one is not empty, not NULL, has no `|` and does not start with `\"`",
            );
            ok = false;
            continue;
        }
        out.push(Redaction {
            column: column.clone(),
            pattern,
            with: placeholder,
        });
    }
    ok.then_some(out)
}

fn writers(
    sink: &Sink,
    r: &RawSink,
    pipeline: Option<&Pipeline>,
    check: &mut Checker<'_>,
) -> Option<Vec<TaskId>> {
    let Some(pipeline) = pipeline else {
        return Some(vec![]);
    };
    let Some(raw) = &r.written_by else {
        return Some(
            pipeline
                .tasks
                .iter()
                .filter(|t| t.outputs.iter().any(|o| sink.written_by(o)))
                .map(|t| t.id.clone())
                .collect(),
        );
    };
    let names: Vec<&str> = match raw.get_ref() {
        toml::Value::String(s) => vec![s.as_str()],
        toml::Value::Array(items) if items.iter().all(toml::Value::is_str) => {
            items.iter().filter_map(toml::Value::as_str).collect()
        }
        _ => {
            check.error(
                raw.span(),
                "`written_by` is a task name or a list of task names",
            );
            return None;
        }
    };
    let mut out = Vec::new();
    for name in names {
        if pipeline.task(name).is_none() {
            let help = did_you_mean(name, pipeline.tasks.iter().map(|t| t.id.0.as_str()))
                .map_or_else(
                    || format!("tasks of `{}`: {}", pipeline.name, task_list(pipeline)),
                    |b| format!("did you mean `{b}`?"),
                );
            check.error_help(
                raw.span(),
                format!("pipeline `{}` has no task `{name}`", pipeline.name),
                help,
            );
            return None;
        }
        out.push(TaskId(name.to_string()));
    }
    Some(out)
}

fn task_list(p: &Pipeline) -> String {
    p.tasks
        .iter()
        .map(|t| t.id.0.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn valid_table_name(name: &str) -> bool {
    let parts: Vec<&str> = name.split('.').collect();
    parts.len() <= 2
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_alphanumeric() || c == '_'))
}

/// Quotes `schema.table` as identifiers, keeping each part's case.
pub fn quote_table(name: &str) -> String {
    name.split('.')
        .map(|p| format!("\"{p}\""))
        .collect::<Vec<_>>()
        .join(".")
}

fn expectation(
    e: &Spanned<RawExpect>,
    pipeline: Option<&Pipeline>,
    raw: &RawScenario,
    sinks: &[Sink],
    check: &mut Checker<'_>,
) -> Option<ExpectedFailure> {
    let r = e.get_ref();
    match r.outcome.get_ref().as_str() {
        "fail" => {}
        "pass" => {
            if let Some(t) = &r.task {
                check.error(t.span(), "`task` applies only to outcome = \"fail\"");
            }
            return None;
        }
        other => {
            check.error_help(
                r.outcome.span(),
                format!("unknown outcome `{other}`"),
                "expect.outcome is \"pass\" or \"fail\"",
            );
            return None;
        }
    }
    match (&r.task, &r.sinks) {
        (Some(_), Some(s)) => {
            let span = s.first().map_or(e.span(), Spanned::span);
            check.error_help(
                span,
                "expect either a failing `task` or differing `sinks`, not both",
                "a failed task stops the scenario before its sinks are read",
            );
            None
        }
        (Some(t), None) => {
            let name = t.get_ref();
            let in_pipeline = pipeline.is_none_or(|p| p.task(name).is_some());
            let selected = raw
                .tasks
                .as_ref()
                .is_none_or(|sel| sel.iter().any(|s| s.get_ref() == name));
            if !in_pipeline || !selected {
                check.error(
                    t.span(),
                    format!("expected failing task `{name}` is not run by this scenario"),
                );
                return None;
            }
            Some(ExpectedFailure::Task(TaskId(name.clone())))
        }
        (None, Some(list)) => {
            let mut names = Vec::new();
            for s in list {
                if sinks.iter().any(|k| &k.name == s.get_ref()) {
                    names.push(s.get_ref().clone());
                } else {
                    check.error(
                        s.span(),
                        format!(
                            "expected differing sink `{}` is not a sink of this scenario",
                            s.get_ref()
                        ),
                    );
                }
            }
            names.sort();
            names.dedup();
            Some(ExpectedFailure::Sinks(names))
        }
        (None, None) => Some(ExpectedFailure::Any),
    }
}
