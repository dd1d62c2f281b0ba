//! The sinks of a scenario: `[[sink]]` blocks checked against the sink rules of the kind they
//! name (`super::rules`), with their comparison options (key, tolerance, redactions) and the
//! tasks that write them.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use super::compare::{self, RawCompare};
use super::pipeline::Output;
use super::rules::SinkRules;
use super::scenario::{LoadContext, TableFormat, hdfs_path, only, task_list, valid_table_name};
use super::{Checker, Pipeline, ServiceKind, TaskId, glob_match, valid_name};
use crate::diagnostic::{Origin, did_you_mean};
use crate::snapshot::ranking::RankRule;
use crate::snapshot::redaction::{DEFAULT_PLACEHOLDER, Redaction};
use crate::snapshot::table::{Tolerance, Tolerances};

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
    /// Columns whose arrays are multisets, rendered sorted (table sinks).
    pub unordered: Vec<String>,
    /// The tasks that write it: its `written_by`, else the tasks whose `outputs` cover it.
    pub writers: Vec<TaskId>,
    /// The index of the step after which it is read; `None` for a sink of the whole scenario,
    /// read after the last step.
    pub step: Option<usize>,
    /// Its ranking rule (`compare`): its lists compared by overlap@K instead of line by line.
    pub compare: Option<RankRule>,
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSink {
    pub(super) name: Spanned<String>,
    service: Spanned<String>,
    table: Option<Spanned<String>>,
    query: Option<Spanned<String>>,
    key: Option<Vec<Spanned<String>>>,
    unordered: Option<Vec<Spanned<String>>>,
    float_digits: Option<Spanned<i64>>,
    keys: Option<Spanned<String>>,
    decode: Option<Spanned<String>>,
    path: Option<Spanned<String>>,
    format: Option<Spanned<String>>,
    tolerance: Option<Spanned<BTreeMap<String, Spanned<RawTolerance>>>>,
    redact: Option<Spanned<Vec<Spanned<RawRedaction>>>>,
    written_by: Option<Spanned<toml::Value>>,
    compare: Option<Spanned<RawCompare>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTolerance {
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
    pub(super) fn present(&self) -> Vec<(&'static str, Range<usize>)> {
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
            "unordered",
            self.unordered
                .as_ref()
                .and_then(|k| k.first())
                .map(Spanned::span),
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
        add("compare", self.compare.as_ref().map(Spanned::span));
        out
    }
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

const TOLERANCE: &str = "tolerance";

/// The keys a sink takes: its service's own, the table options when it reads a table, and those
/// every sink takes.
fn sink_keys(own: &[&'static str], table: bool) -> Vec<&'static str> {
    let mut keys = own.to_vec();
    if table {
        keys.extend(["key", "unordered", "float_digits", TOLERANCE, "compare"]);
    }
    keys.extend(["redact", "written_by"]);
    keys
}

pub(super) fn sink(
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
                &sink_keys(&["keys", "decode", "float_digits", "compare"], false),
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
                for k in ["key", "unordered", "float_digits", TOLERANCE] {
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
        unordered: r
            .unordered
            .as_ref()
            .map(|k| k.iter().map(|c| c.get_ref().clone()).collect())
            .unwrap_or_default(),
        writers: vec![],
        step: None,
        compare: None,
    };
    if let Some(c) = &r.compare {
        sink.compare = Some(compare::rule(c, &sink.spec, check)?);
    }
    sink.tolerance = tolerances(&sink, r, check)?;
    sink.redact = redactions(&sink, r, check)?;
    sink.writers = writers(&sink, r, pipeline, check)?;
    Some(sink)
}

fn tolerances(sink: &Sink, r: &RawSink, check: &mut Checker<'_>) -> Option<Tolerances> {
    let Some(raw) = &r.tolerance else {
        return Some(Tolerances::new());
    };
    // A ranking rule pairs the items of each list by itself.
    if sink.key().is_empty() && sink.compare.is_none() {
        check.error_help(
            raw.span(),
            "`tolerance` needs `key` (or `compare`): rows are paired by key before their values are compared",
            "add key = [\"id\"] with the columns that identify a row",
        );
        return None;
    }
    let mut out = Tolerances::new();
    let mut ok = true;
    for (column, t) in raw.get_ref() {
        match tolerance_of(&format!("`{column}`"), t, check) {
            Some(t) => {
                out.insert(column.clone(), t);
            }
            None => ok = false,
        }
    }
    ok.then_some(out)
}

/// One `{ abs, rel }` tolerance of `what`, checked; `None` after reporting what is wrong.
pub(super) fn tolerance_of(
    what: &str,
    t: &Spanned<RawTolerance>,
    check: &mut Checker<'_>,
) -> Option<Tolerance> {
    let RawTolerance { abs, rel } = *t.get_ref();
    let bad = |v: Option<f64>| v.is_some_and(|v| !v.is_finite() || v < 0.0);
    if abs.is_none() && rel.is_none() {
        check.error_help(
            t.span(),
            format!("tolerance of {what} sets neither `abs` nor `rel`"),
            "write { abs = 1e-6 } or { rel = 0.001 } (or both: either bound passes)",
        );
        None
    } else if bad(abs) || bad(rel) {
        check.error(
            t.span(),
            format!("tolerance of {what} must be a finite number ≥ 0"),
        );
        None
    } else {
        Some(Tolerance { abs, rel })
    }
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
