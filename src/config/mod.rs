//! Loading and validating a harness project: `harness.toml`, every `pipeline.toml` and every
//! `scenario.toml`, into models that later stages can trust. Every problem is collected (not just
//! the first) with its file, line and column.

pub use crate::diagnostic;
pub mod airflow_dag;
pub mod capture;
pub mod compare;
pub mod fixture;
pub mod graph;
pub mod pipeline;
pub mod rules;
pub mod scenario;
pub mod seed;
pub mod settings;
pub mod sink;
pub mod spark_mode;
pub mod step;

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use serde::de::DeserializeOwned;
use toml::Spanned;

pub use crate::names::{ScenarioName, ServiceKind, TaskId};
pub use diagnostic::{ConfigError, ConfigErrors, Origin, SourceFile};
pub use pipeline::{Pipeline, PythonTarget, SparkApp, SqlSource, Task, TaskKind};
pub use scenario::{ExpectedFailure, Scenario, Seed, SeedKind, Sink, SinkSpec, TableFormat};
pub use settings::{BackendChoice, Settings};
pub use spark_mode::SparkMode;

/// A loaded, validated project.
#[derive(Debug, Clone)]
pub struct Project {
    /// The folder holding harness.toml (or the working directory).
    pub root: PathBuf,
    /// Project settings.
    pub settings: Settings,
    /// Pipelines by name.
    pub pipelines: BTreeMap<String, Pipeline>,
    /// Scenarios, sorted by name.
    pub scenarios: Vec<Scenario>,
}

impl Project {
    /// The pipeline a scenario runs.
    pub fn pipeline_of(&self, scenario: &Scenario) -> &Pipeline {
        // Loading guarantees the pipeline exists for every scenario it returns.
        &self.pipelines[&scenario.pipeline]
    }
}

/// The project with the scenarios named in `scenarios` running on pipeline `name` instead of
/// their own; an error when the pipeline is unknown or lacks a task a scenario selects or
/// expects to fail.
pub fn retarget(project: &Project, name: &str, scenarios: &[String]) -> Result<Project, String> {
    let Some(pipeline) = project.pipelines.get(name) else {
        let known: Vec<&str> = project.pipelines.keys().map(String::as_str).collect();
        return Err(format!(
            "unknown pipeline `{name}`; known pipelines: {}",
            known.join(", ")
        ));
    };
    let mut out = project.clone();
    let mut problems = Vec::new();
    for s in out
        .scenarios
        .iter_mut()
        .filter(|s| scenarios.contains(&s.name.0))
    {
        // Every step's selection: its own `tasks`, or the scenario's.
        let mut wanted: Vec<&TaskId> = s
            .steps
            .iter()
            .flat_map(|step| step.tasks.iter().flatten())
            .collect();
        if let Some(scenario::ExpectedFailure::Task(t)) = &s.expect_failure {
            wanted.push(t);
        }
        for t in wanted {
            if pipeline.task(&t.0).is_none() {
                problems.push(format!(
                    "scenario `{}` needs task `{t}`, which `{name}` has not",
                    s.name
                ));
            }
        }
        // The tasks whose outputs cover a sink, in the new pipeline; a sink no output covers
        // keeps its `written_by` when those tasks are there too.
        for sink in s.sinks.iter_mut() {
            let writers: Vec<TaskId> = pipeline
                .tasks
                .iter()
                .filter(|t| t.outputs.iter().any(|o| sink.written_by(o)))
                .map(|t| t.id.clone())
                .collect();
            if !writers.is_empty() || sink.writers.iter().any(|w| pipeline.task(&w.0).is_none()) {
                sink.writers = writers;
            }
        }
        s.pipeline = name.to_string();
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems.join("; "))
    }
}

/// Finds the project root: the nearest folder from `start` upwards holding harness.toml,
/// or `start` itself.
pub fn find_root(start: &Path) -> PathBuf {
    start
        .ancestors()
        .find(|dir| dir.join("harness.toml").is_file())
        .unwrap_or(start)
        .to_path_buf()
}

/// The names a project offers on the command line, read without validating anything (for shell
/// completion, which must answer at once and even when files are broken).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Outline {
    /// Scenario names (folders with a scenario.toml), sorted.
    pub scenarios: Vec<String>,
    /// Pipeline names (folders with a pipeline.toml), sorted.
    pub pipelines: Vec<String>,
    /// Sink names of every scenario, sorted, once each.
    pub sinks: Vec<String>,
}

/// The [`Outline`] of the project at `root`.
pub fn outline(root: &Path) -> Outline {
    let settings = settings::load(root, &mut Vec::new());
    let with = |dir: &Path, file: &str| -> Vec<PathBuf> {
        subdirs(dir, root, &mut Vec::new())
            .into_iter()
            .filter(|d| d.join(file).is_file())
            .collect()
    };
    let scenario_dirs = with(&settings.scenarios_dir, "scenario.toml");
    let mut sinks: Vec<String> = scenario_dirs
        .iter()
        .filter_map(|d| std::fs::read_to_string(d.join("scenario.toml")).ok())
        .filter_map(|text| text.parse::<toml::Table>().ok())
        .flat_map(|t| match t.get("sink") {
            Some(toml::Value::Array(sinks)) => sinks
                .iter()
                .filter_map(|k| k.get("name")?.as_str().map(str::to_string))
                .collect(),
            _ => vec![],
        })
        .collect();
    sinks.sort();
    sinks.dedup();
    Outline {
        scenarios: scenario_dirs.iter().map(|d| dir_name(d)).collect(),
        pipelines: with(&settings.pipelines_dir, "pipeline.toml")
            .iter()
            .map(|d| dir_name(d))
            .collect(),
        sinks,
    }
}

/// Loads and validates the whole project. Returns every problem found when there is any.
pub fn load(root: &Path, rules: rules::Rules<'_>) -> Result<Project, ConfigErrors> {
    let mut errors = Vec::new();
    let settings = settings::load(root, &mut errors);

    let mut pipelines = BTreeMap::new();
    for dir in subdirs(&settings.pipelines_dir, root, &mut errors) {
        let name = dir_name(&dir);
        let file = dir.join("pipeline.toml");
        if !file.is_file() {
            errors.push(
                ConfigError::in_file(
                    &display_path(root, &dir),
                    "pipeline folder without a pipeline.toml",
                )
                .with_help("add pipeline.toml, or move the folder out of the pipelines folder"),
            );
            continue;
        }
        if let Some(p) = pipeline::load(root, &settings, &name, &dir, rules, &mut errors) {
            pipelines.insert(name, p);
        }
    }

    let mut scenarios = Vec::new();
    let mut broken_pipelines = Vec::new();
    for dir in subdirs(&settings.pipelines_dir, root, &mut Vec::new()) {
        let name = dir_name(&dir);
        if !pipelines.contains_key(&name) {
            broken_pipelines.push(name);
        }
    }
    if !settings.scenarios_dir.is_dir() {
        errors.push(
            ConfigError::in_file(
                &display_path(root, &settings.scenarios_dir),
                "scenarios folder not found",
            )
            .with_help(
                "create it with one sub-folder per scenario, or set `scenarios` in harness.toml",
            ),
        );
    }
    for dir in subdirs(&settings.scenarios_dir, root, &mut errors) {
        let file = dir.join("scenario.toml");
        if !file.is_file() {
            errors.push(
                ConfigError::in_file(
                    &display_path(root, &dir),
                    "scenario folder without a scenario.toml",
                )
                .with_help("add scenario.toml, or move the folder out of the scenarios folder"),
            );
            continue;
        }
        let ctx = scenario::LoadContext {
            root,
            settings: &settings,
            pipelines: &pipelines,
            broken_pipelines: &broken_pipelines,
            rules,
        };
        if let Some(s) = scenario::load(&ctx, &dir, &mut errors) {
            scenarios.push(s);
        }
    }
    scenarios.sort_by(|a, b| a.name.cmp(&b.name));

    if errors.is_empty() {
        Ok(Project {
            root: root.to_path_buf(),
            settings,
            pipelines,
            scenarios,
        })
    } else {
        Err(ConfigErrors(errors))
    }
}

fn subdirs(dir: &Path, root: &Path, errors: &mut Vec<ConfigError>) -> Vec<PathBuf> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
        Err(e) => {
            errors.push(ConfigError::in_file(
                &display_path(root, dir),
                format!("cannot read folder: {e}"),
            ));
            return Vec::new();
        }
    };
    let mut dirs: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_dir() && !dir_name(p).starts_with('.'))
        .collect();
    dirs.sort();
    dirs
}

fn dir_name(dir: &Path) -> String {
    dir.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// `*` matches any run of characters; everything else matches itself.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == name;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !name.starts_with(first)
        || !name[first.len()..].ends_with(last)
        || name.len() < first.len() + last.len()
    {
        return false;
    }
    let mut rest = &name[first.len()..name.len() - last.len()];
    for mid in &parts[1..parts.len() - 1] {
        match rest.find(mid) {
            Some(i) => rest = &rest[i + mid.len()..],
            None => return false,
        }
    }
    true
}

/// A path as shown to the user: relative to the project root when under it.
pub fn display_path(root: &Path, path: &Path) -> PathBuf {
    path.strip_prefix(root)
        .map(Path::to_path_buf)
        .unwrap_or_else(|_| path.to_path_buf())
}

/// Reads and parses a TOML file; a problem is pushed to `errors` and gives `None`.
fn read_toml<T: DeserializeOwned>(
    root: &Path,
    path: &Path,
    errors: &mut Vec<ConfigError>,
) -> Option<(SourceFile, T)> {
    let display = display_path(root, path);
    let text = diagnostic::read_text_reporting(path, &display, errors)?;
    let source = SourceFile::new(display, text);
    match toml::from_str::<T>(&source.text) {
        Ok(v) => Some((source, v)),
        Err(e) => {
            errors.push(diagnostic::from_toml(&source, &e));
            None
        }
    }
}

/// Collects errors for one source file.
pub(crate) struct Checker<'a> {
    source: &'a SourceFile,
    errors: &'a mut Vec<ConfigError>,
}

impl<'a> Checker<'a> {
    fn new(source: &'a SourceFile, errors: &'a mut Vec<ConfigError>) -> Self {
        Checker { source, errors }
    }

    fn error(&mut self, span: Range<usize>, message: impl Into<String>) {
        self.errors
            .push(ConfigError::at(self.source, span, message));
    }

    fn error_help(
        &mut self,
        span: Range<usize>,
        message: impl Into<String>,
        help: impl Into<String>,
    ) {
        self.errors
            .push(ConfigError::at(self.source, span, message).with_help(help));
    }

    fn origin(&self, span: &Range<usize>) -> Origin {
        Origin::at(self.source, span)
    }

    fn push(&mut self, error: ConfigError) {
        self.errors.push(error);
    }
}

/// True for a JVM memory size: digits and a unit, `k`, `m` or `g` (`"512m"`, `"1g"`).
fn memory_size(v: &str) -> bool {
    v.len() > 1
        && v[..v.len() - 1].chars().all(|c| c.is_ascii_digit())
        && v.ends_with(['k', 'm', 'g'])
}

/// The longest duration any key takes (a timeout, a start timeout): 7 days. Anything longer is a
/// typo or a unit mistake, not a limit anyone waits for.
pub const MAX_DURATION: Duration = Duration::from_secs(7 * 24 * 60 * 60);

/// Parses the humantime duration (`"90s"`, `"5m"`) of `key`, reporting at its span; zero and
/// anything longer than [`MAX_DURATION`] are refused.
fn parse_duration(key: &str, value: &Spanned<String>, check: &mut Checker<'_>) -> Option<Duration> {
    match humantime::parse_duration(value.get_ref()) {
        Ok(d) if d > MAX_DURATION => {
            check.error_help(
                value.span(),
                format!(
                    "`{key}`: duration `{}` is longer than the limit of 7 days",
                    value.get_ref()
                ),
                "write a duration of at most \"7days\" (\"168h\")",
            );
            None
        }
        Ok(d) if !d.is_zero() => Some(d),
        Ok(_) => {
            check.error(
                value.span(),
                format!("`{key}`: a duration must be longer than zero"),
            );
            None
        }
        Err(e) => {
            check.error_help(
                value.span(),
                format!("`{key}`: invalid duration `{}`: {e}", value.get_ref()),
                "write durations like \"90s\", \"5m\" or \"1h 30m\"",
            );
            None
        }
    }
}

/// Parses a list of service names, reporting each bad one at its span.
fn parse_services(values: &[Spanned<String>], check: &mut Checker<'_>) -> Vec<ServiceKind> {
    let mut out = Vec::new();
    for v in values {
        match ServiceKind::parse(v.get_ref()) {
            Ok(s) if !out.contains(&s) => out.push(s),
            Ok(_) => {}
            Err(msg) => check.error(v.span(), msg),
        }
    }
    out
}

/// Resolves a path written in a config file against `base`, refusing paths that leave the
/// project root (through `..` or a symlink). The file must exist.
fn resolve_inside(root: &Path, base: &Path, written: &str) -> Result<PathBuf, PathProblem> {
    let rel = Path::new(written);
    if rel.is_absolute() {
        return Err(PathProblem::Absolute);
    }
    let joined = base.join(rel);
    let normal = normalize(&joined);
    if !normal.starts_with(root) {
        return Err(PathProblem::Escapes);
    }
    match std::fs::canonicalize(&joined) {
        Ok(real) => {
            let real_root = std::fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
            if real.starts_with(&real_root) {
                Ok(normal)
            } else {
                Err(PathProblem::Escapes)
            }
        }
        Err(_) => Err(PathProblem::Missing(normal)),
    }
}

/// Why a configured path cannot be used.
#[derive(Debug)]
enum PathProblem {
    Absolute,
    Escapes,
    Missing(PathBuf),
}

/// Removes `.` and folds `..` without touching the file system.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// True when `name` is a valid task, scenario or sink name.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_matches_stars_anywhere() {
        assert!(glob_match("monetization_*", "monetization_to_redis"));
        assert!(glob_match("*redis", "monetization_to_redis"));
        assert!(glob_match("m*to*s", "monetization_to_redis"));
        assert!(glob_match("exact", "exact"));
        assert!(!glob_match("exact", "exactly"));
        assert!(!glob_match("a*b", "ab_"));
        assert!(!glob_match("ab*ba", "aba"));
    }

    #[test]
    fn normalize_folds_parent_components() {
        assert_eq!(
            normalize(Path::new("/a/b/../c/./d")),
            PathBuf::from("/a/c/d")
        );
        assert_eq!(normalize(Path::new("/a/../../x")), PathBuf::from("/x"));
    }

    #[test]
    fn names_are_restricted() {
        assert!(valid_name("train_als-2"));
        assert!(!valid_name("a b"));
        assert!(!valid_name(""));
        assert!(!valid_name("x/y"));
    }
}
