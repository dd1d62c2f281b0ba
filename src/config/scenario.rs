//! `scenarios/<name>/scenario.toml`: which pipeline (and tasks) to run, its environment, what it
//! expects, and its seeds (`super::seed`) and sinks with their golden files (`super::sink`).

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use super::rules::Rules;
use super::seed::{RawSeed, seed};
pub use super::seed::{Seed, SeedKind};
use super::sink::{RawSink, sink};
pub use super::sink::{Sink, SinkSpec};
pub use super::step::Step;
use super::step::{Defaults, RawStep, task_selection};
use super::{
    Checker, PathProblem, Pipeline, ServiceKind, Settings, Task, TaskId, display_path,
    parse_services, resolve_inside, valid_name,
};
use crate::diagnostic::{ConfigError, did_you_mean};
use crate::names::ScenarioName;

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
    /// Its runs of the pipeline, in order: its `[[step]]` blocks, or one unnamed step.
    pub steps: Vec<Step>,
}

impl Scenario {
    /// The tasks of `pipeline` some step of the scenario runs, in the pipeline's order.
    pub fn selected_tasks<'p>(&self, pipeline: &'p Pipeline) -> Vec<&'p Task> {
        pipeline
            .tasks
            .iter()
            .filter(|t| self.steps.iter().any(|s| s.selects(&t.id)))
            .collect()
    }

    /// True when the scenario has `[[step]]` blocks.
    pub fn has_steps(&self) -> bool {
        self.steps.iter().any(|s| s.name.is_some())
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
    airflow: Option<Spanned<super::airflow_dag::RawScenarioAirflow>>,
    #[serde(default)]
    step: Vec<Spanned<RawStep>>,
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

/// Reports every key of `present` that is not in `allowed`; true when there was none.
pub(super) fn only(
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
    // `--update` writes here: a golden folder that is a link out of the project would have it
    // write elsewhere.
    let golden_dir = dir.join("golden");
    if let (Ok(real), Ok(real_root)) = (
        std::fs::canonicalize(&golden_dir),
        std::fs::canonicalize(ctx.root),
    ) && !real.starts_with(&real_root)
    {
        check.errors.push(
            ConfigError::in_file(
                &display_path(ctx.root, &golden_dir),
                format!(
                    "the golden folder leads outside the project (to {})",
                    real.display()
                ),
            )
            .with_help("make `golden` a folder of the scenario, not a link out of the project"),
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
        if list.is_empty() {
            check.errors.push(ConfigError::in_file(
                &source.display,
                "`tasks` is empty; remove it to run every task",
            ));
        }
        task_selection(list, pipeline, &mut check)
    });

    let services = parse_services(&raw.services, &mut check);
    let mut seeds: Vec<Seed> = raw
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
    let airflow = raw
        .airflow
        .as_ref()
        .map(|a| super::airflow_dag::scenario_airflow(a, pipeline, &mut check))
        .unwrap_or_default();
    let steps = if raw.step.is_empty() {
        vec![Step::whole(tasks.clone(), airflow.clone())]
    } else {
        let defaults = Defaults {
            tasks: tasks.as_ref(),
            airflow: &airflow,
        };
        let made = super::step::steps(ctx, dir, &raw.step, pipeline, &defaults, &mut check);
        seeds.extend(made.seeds);
        // In the order they are read: each step's, then the scenario's, after the last step.
        sinks.splice(0..0, made.sinks);
        made.steps
    };
    let expect_failure = raw
        .expect
        .as_ref()
        .and_then(|e| expectation(e, pipeline, &steps, &sinks, &mut check));
    if sinks.is_empty() && no_sink_written(&raw) {
        check.errors.push(
            ConfigError::in_file(
                &source.display,
                "scenario has no sinks: nothing would be checked",
            )
            .with_help("add a [[sink]] table (or a [[step.sink]] table to a step)"),
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
        steps,
    })
}

/// True when no `[[sink]]` is written anywhere in the scenario (a sink written wrong is
/// reported on its own).
fn no_sink_written(raw: &RawScenario) -> bool {
    raw.sink.is_empty() && raw.step.iter().all(|s| s.get_ref().sink_count() == 0)
}

/// Looks a fixture up in the scenario folder, then in the fixtures folder.
pub(super) fn fixture_path(
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

/// An absolute HDFS path without `..`, as written in a seed or sink.
pub(super) fn hdfs_path(value: &Spanned<String>, check: &mut Checker<'_>) -> Option<String> {
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

pub(super) fn task_list(p: &Pipeline) -> String {
    p.tasks
        .iter()
        .map(|t| t.id.0.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

pub(super) fn valid_table_name(name: &str) -> bool {
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
    steps: &[Step],
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
            let id = TaskId(name.clone());
            let selected = steps.iter().any(|s| s.selects(&id));
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
