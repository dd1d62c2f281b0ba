//! `scenarios/<name>/scenario.toml`: which pipeline (and tasks) to run, the seeds, and the sinks
//! with their golden files.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use super::diagnostic::{ConfigError, Origin, did_you_mean};
use super::fixture::{RedisFixture, csv_header};
use super::{
    Checker, PathProblem, Pipeline, ServiceKind, Settings, TaskId, display_path, parse_services,
    resolve_inside, valid_name,
};

/// Name of a scenario (its folder name).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ScenarioName(pub String);

impl std::fmt::Display for ScenarioName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a seed loads.
#[derive(Debug, Clone)]
pub enum SeedKind {
    /// SQL statements run on PostgreSQL.
    PostgresSql {
        /// The file.
        path: PathBuf,
    },
    /// A CSV file loaded into a PostgreSQL table with COPY.
    PostgresCsv {
        /// Target table, possibly schema-qualified.
        table: String,
        /// The file.
        path: PathBuf,
        /// Column names from the header.
        columns: Vec<String>,
        /// Field delimiter.
        delimiter: u8,
        /// Text meaning NULL, when not the default.
        null: Option<String>,
    },
    /// Redis keys.
    RedisJson {
        /// The file.
        path: PathBuf,
        /// Its parsed content.
        fixture: RedisFixture,
    },
}

/// One seed step.
#[derive(Debug, Clone)]
pub struct Seed {
    /// Where it is declared.
    pub origin: Origin,
    /// The fixture file as shown to users.
    pub display: PathBuf,
    /// What it loads.
    pub kind: SeedKind,
}

impl Seed {
    /// The service the seed writes to.
    pub fn service(&self) -> ServiceKind {
        match self.kind {
            SeedKind::PostgresSql { .. } | SeedKind::PostgresCsv { .. } => ServiceKind::Postgres,
            SeedKind::RedisJson { .. } => ServiceKind::Redis,
        }
    }
}

/// What a sink reads.
#[derive(Debug, Clone)]
pub enum SinkSpec {
    /// A PostgreSQL table or query.
    Postgres {
        /// A full table name, or `None` for a query.
        table: Option<String>,
        /// The query to read.
        query: String,
        /// Columns ordering the rows (empty: the whole row).
        key: Vec<String>,
        /// Decimals to round float columns to.
        float_digits: Option<u32>,
    },
    /// Redis keys matching a pattern.
    Redis {
        /// MATCH pattern.
        pattern: String,
        /// Render string values holding JSON canonically.
        decode_json: bool,
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
    /// What it reads.
    pub spec: SinkSpec,
}

impl Sink {
    /// The service the sink reads.
    pub fn service(&self) -> ServiceKind {
        match self.spec {
            SinkSpec::Postgres { .. } => ServiceKind::Postgres,
            SinkSpec::Redis { .. } => ServiceKind::Redis,
        }
    }

    /// A short description of what is read, for snapshot headers.
    pub fn describe(&self) -> String {
        match &self.spec {
            SinkSpec::Postgres { table: Some(t), .. } => format!("postgres table {t}"),
            SinkSpec::Postgres { query, .. } => format!(
                "postgres query {}",
                query.split_whitespace().collect::<Vec<_>>().join(" ")
            ),
            SinkSpec::Redis { pattern, .. } => format!("redis keys {pattern}"),
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
    /// Every service the scenario needs: the pipeline's, its own, its seeds' and sinks'.
    pub fn services_needed(&self, pipeline: &Pipeline) -> Vec<ServiceKind> {
        let mut all: Vec<ServiceKind> = pipeline
            .services
            .iter()
            .chain(&self.services)
            .copied()
            .collect();
        all.extend(self.seeds.iter().map(Seed::service));
        all.extend(self.sinks.iter().map(Sink::service));
        all.extend(pipeline.tasks.iter().filter_map(|t| match t.kind {
            super::TaskKind::Sql { service, .. } => Some(service),
            _ => None,
        }));
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
    null: Option<String>,
    json: Option<Spanned<String>>,
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
                        || {
                            format!(
                                "tasks of `{}`: {}",
                                p.name,
                                p.tasks
                                    .iter()
                                    .map(|t| t.id.0.as_str())
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            )
                        },
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
        if let Some(sink) = sink(dir, s, &mut check) {
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
    check: &mut Checker<'_>,
) -> Option<PathBuf> {
    let written = value.get_ref();
    let mut tried = Vec::new();
    for base in [dir, ctx.settings.fixtures_dir.as_path()] {
        match resolve_inside(ctx.root, base, written) {
            Ok(p) if p.is_file() => return Some(p),
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
    let origin = check.origin(&s.span());
    let extra = |check: &mut Checker<'_>, key: &str, span: Option<Range<usize>>, allowed: &str| {
        if let Some(span) = span {
            check.error_help(
                span,
                format!("`{key}` does not apply to this seed"),
                allowed.to_string(),
            );
        }
    };
    match service {
        ServiceKind::Postgres => {
            extra(
                check,
                "json",
                r.json.as_ref().map(Spanned::span),
                "json fixtures are for redis seeds",
            );
            match (&r.sql, &r.csv) {
                (Some(sql), None) => {
                    extra(
                        check,
                        "table",
                        r.table.as_ref().map(Spanned::span),
                        "a sql seed takes only `sql`",
                    );
                    extra(
                        check,
                        "delimiter",
                        r.delimiter.as_ref().map(Spanned::span),
                        "a sql seed takes only `sql`",
                    );
                    let path = fixture_path(ctx, dir, sql, check)?;
                    Some(Seed {
                        origin,
                        display: display_path(ctx.root, &path),
                        kind: SeedKind::PostgresSql { path },
                    })
                }
                (None, Some(csv)) => {
                    let Some(table) = &r.table else {
                        check.error_help(
                            s.span(),
                            "a csv seed needs `table`",
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
                    let delimiter = match &r.delimiter {
                        None => b',',
                        Some(d) if d.get_ref().len() == 1 => d.get_ref().as_bytes()[0],
                        Some(d) => {
                            check.error(d.span(), "`delimiter` must be a single character");
                            return None;
                        }
                    };
                    let path = fixture_path(ctx, dir, csv, check)?;
                    let display = display_path(ctx.root, &path);
                    let columns = match csv_header(&path, delimiter) {
                        Ok(c) => c,
                        Err(e) => {
                            let origin = Origin {
                                file: display.clone(),
                                line_col: e.line_col,
                            };
                            check.errors.push(ConfigError::at_origin(origin, e.message));
                            return None;
                        }
                    };
                    Some(Seed {
                        origin,
                        display,
                        kind: SeedKind::PostgresCsv {
                            table: table.get_ref().clone(),
                            path,
                            columns,
                            delimiter,
                            null: r.null.clone(),
                        },
                    })
                }
                (Some(_), Some(csv)) => {
                    check.error(csv.span(), "a seed has either `sql` or `csv`, not both");
                    None
                }
                (None, None) => {
                    check.error_help(
                        s.span(),
                        "a postgres seed needs `sql` or `csv`",
                        "add sql = \"schema.sql\", or table + csv",
                    );
                    None
                }
            }
        }
        ServiceKind::Redis => {
            for (key, span) in [
                ("sql", &r.sql),
                ("csv", &r.csv),
                ("table", &r.table),
                ("delimiter", &r.delimiter),
            ] {
                extra(
                    check,
                    key,
                    span.as_ref().map(Spanned::span),
                    "a redis seed takes only `json`",
                );
            }
            let Some(json) = &r.json else {
                check.error_help(
                    s.span(),
                    "a redis seed needs `json`",
                    "add json = \"keys.json\"",
                );
                return None;
            };
            let path = fixture_path(ctx, dir, json, check)?;
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
            match RedisFixture::parse(&text) {
                Ok(fixture) => Some(Seed {
                    origin,
                    display,
                    kind: SeedKind::RedisJson { path, fixture },
                }),
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
            }
        }
    }
}

fn sink(dir: &Path, s: &Spanned<RawSink>, check: &mut Checker<'_>) -> Option<Sink> {
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
    let not_for = |check: &mut Checker<'_>, key: &str, span: Option<Range<usize>>| {
        if let Some(span) = span {
            check.error(span, format!("`{key}` does not apply to a {service} sink"));
        }
    };
    let spec = match service {
        ServiceKind::Postgres => {
            not_for(check, "keys", r.keys.as_ref().map(Spanned::span));
            not_for(check, "decode", r.decode.as_ref().map(Spanned::span));
            let (table, query) = match (&r.table, &r.query) {
                (Some(t), None) if valid_table_name(t.get_ref()) => (
                    Some(t.get_ref().clone()),
                    format!("SELECT * FROM {}", quote_table(t.get_ref())),
                ),
                (Some(t), None) => {
                    check.error_help(
                        t.span(),
                        format!("invalid table name `{}`", t.get_ref()),
                        "write `table` or `schema.table`, or use `query`",
                    );
                    return None;
                }
                (None, Some(q)) if !q.get_ref().trim().is_empty() => {
                    (None, q.get_ref().trim().trim_end_matches(';').to_string())
                }
                (None, Some(q)) => {
                    check.error(q.span(), "`query` is empty");
                    return None;
                }
                (Some(_), Some(q)) => {
                    check.error(q.span(), "a sink reads either `table` or `query`, not both");
                    return None;
                }
                (None, None) => {
                    check.error_help(
                        s.span(),
                        format!("postgres sink `{name}` needs `table` or `query`"),
                        "add table = \"schema.table\"",
                    );
                    return None;
                }
            };
            let key = r
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
            SinkSpec::Postgres {
                table,
                query,
                key,
                float_digits,
            }
        }
        ServiceKind::Redis => {
            for (key, span) in [("table", &r.table), ("query", &r.query)] {
                not_for(check, key, span.as_ref().map(Spanned::span));
            }
            not_for(
                check,
                "key",
                r.key.as_ref().and_then(|k| k.first()).map(Spanned::span),
            );
            not_for(
                check,
                "float_digits",
                r.float_digits.as_ref().map(Spanned::span),
            );
            let Some(pattern) = &r.keys else {
                check.error_help(
                    s.span(),
                    format!("redis sink `{name}` needs `keys`"),
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
            SinkSpec::Redis {
                pattern: pattern.get_ref().clone(),
                decode_json,
            }
        }
    };
    Some(Sink {
        name,
        origin,
        golden,
        spec,
    })
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
