//! `pipelines/<name>/pipeline.toml`: the DAG of tasks of one pipeline.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::rules::{Rules, SinkRules};
use super::{
    Checker, PathProblem, ServiceKind, Settings, SparkMode, parse_duration, parse_services,
    resolve_inside, valid_name,
};
use crate::diagnostic::{ConfigError, Origin, did_you_mean};
use crate::names::TaskId;

mod kind;

/// What a python task runs.
#[derive(Debug, Clone)]
pub enum PythonTarget {
    /// A script file (absolute path).
    Script(PathBuf),
    /// A module run with `-m`.
    Module(String),
}

/// What a spark task submits.
#[derive(Debug, Clone)]
pub enum SparkApp {
    /// A PySpark script (absolute path).
    Python(PathBuf),
    /// A jar with its main class.
    Jar {
        /// The jar (absolute path).
        jar: PathBuf,
        /// Its main class.
        main_class: String,
    },
}

/// Where the statements of a sql task come from.
#[derive(Debug, Clone)]
pub struct SqlSource {
    /// The statements.
    pub text: String,
    /// The file they were read from, or the pipeline.toml holding them inline.
    pub origin: Origin,
}

/// What a task does.
#[derive(Debug, Clone)]
pub enum TaskKind {
    /// Runs a program with arguments, no shell.
    Command {
        /// Program and arguments.
        argv: Vec<String>,
    },
    /// Runs a Python script or module with the managed interpreter.
    Python {
        /// Script or module.
        target: PythonTarget,
        /// Arguments after the target.
        args: Vec<String>,
    },
    /// Submits a Spark application (spark-submit) with the environment's Spark configuration.
    Spark {
        /// The application.
        app: SparkApp,
        /// Arguments of the application.
        args: Vec<String>,
        /// Extra `--conf` settings.
        conf: BTreeMap<String, String>,
        /// `--driver-memory`.
        driver_memory: Option<String>,
        /// The task's own `spark_mode`, if it has one.
        mode: Option<SparkMode>,
    },
    /// A task of an Airflow DAG: Airflow runs it, with the operator the DAG gives it.
    Airflow {
        /// The operator's class name.
        operator: String,
        /// Its trigger rule.
        trigger_rule: String,
    },
    /// Runs SQL statements against a service.
    Sql {
        /// The service (PostgreSQL).
        service: ServiceKind,
        /// The statements.
        source: SqlSource,
    },
}

impl TaskKind {
    /// The kind's name as written in pipeline.toml.
    pub fn name(&self) -> &'static str {
        match self {
            TaskKind::Command { .. } => "command",
            TaskKind::Python { .. } => "python",
            TaskKind::Sql { .. } => "sql",
            TaskKind::Spark { .. } => "spark",
            TaskKind::Airflow { .. } => "airflow",
        }
    }
}

/// One node of the DAG.
#[derive(Debug, Clone)]
pub struct Task {
    /// Its name.
    pub id: TaskId,
    /// What it runs.
    pub kind: TaskKind,
    /// Tasks that must succeed before it starts.
    pub depends_on: Vec<TaskId>,
    /// Time limit of one attempt.
    pub timeout: Duration,
    /// Extra attempts after a failure.
    pub retries: u32,
    /// Extra environment.
    pub env: BTreeMap<String, String>,
    /// Working directory.
    pub cwd: PathBuf,
    /// Services this task talks to, when it says (else the pipeline's).
    pub services: Option<Vec<ServiceKind>>,
    /// What it writes, so that a differing sink can name the task behind it.
    pub outputs: Vec<Output>,
}

/// Something a task writes: `postgres:schema.table`, `redis:prefix:*`, `hive:db.table` or
/// `hdfs:/path`. `*` matches any run of characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    /// The service written to.
    pub service: ServiceKind,
    /// The table, key pattern or path.
    pub target: String,
}

impl Output {
    /// Parses `service:target`, checked against what the service holds.
    pub fn parse(text: &str, rules: Rules<'_>) -> Result<Output, String> {
        let Some((service, target)) = text.split_once(':') else {
            return Err(format!(
                "output `{text}` is not `service:target` (e.g. `redis:recs:*`, `postgres:schema.table`, `hive:db.table`, `hdfs:/path`)"
            ));
        };
        let service = ServiceKind::parse(service)?;
        let own = rules(service);
        let Some(sink) = own.sink else {
            return Err(format!("{service} holds no data; {}", own.no_data));
        };
        if target.trim().is_empty() {
            return Err(format!("output `{text}` names no {service} target"));
        }
        if matches!(sink, SinkRules::Path) && !target.starts_with('/') {
            return Err(format!(
                "{service} output `{target}` must be an absolute path"
            ));
        }
        Ok(Output {
            service,
            target: target.to_string(),
        })
    }
}

/// A validated pipeline.
#[derive(Debug, Clone)]
pub struct Pipeline {
    /// Its name (the folder name).
    pub name: String,
    /// Its folder.
    pub dir: PathBuf,
    /// One-line description.
    pub description: Option<String>,
    /// Services its tasks talk to.
    pub services: Vec<ServiceKind>,
    /// Environment for every task.
    pub env: BTreeMap<String, String>,
    /// Tasks, sorted by name.
    pub tasks: Vec<Task>,
    /// The Airflow DAG the tasks come from, for a pipeline that is one.
    pub airflow: Option<super::airflow_dag::AirflowDag>,
}

impl Pipeline {
    /// Services a task talks to: its own `services`, else the pipeline's, plus what its kind
    /// needs (postgres for sql, spark for spark).
    pub fn task_services(&self, task: &Task) -> Vec<ServiceKind> {
        let mut all = task
            .services
            .clone()
            .unwrap_or_else(|| self.services.clone());
        match task.kind {
            TaskKind::Sql { service, .. } => all.push(service),
            TaskKind::Spark { .. } => all.push(ServiceKind::Spark),
            _ => {}
        }
        all
    }

    /// A task by name.
    pub fn task(&self, id: &str) -> Option<&Task> {
        self.tasks.iter().find(|t| t.id.0 == id)
    }
}

/// Default timeout of a task.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPipeline {
    description: Option<String>,
    #[serde(default)]
    services: Vec<Spanned<String>>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    #[serde(default)]
    defaults: RawDefaults,
    #[serde(default)]
    tasks: BTreeMap<Spanned<String>, Spanned<RawTask>>,
    airflow: Option<Spanned<super::airflow_dag::RawAirflow>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawDefaults {
    timeout: Option<Spanned<String>>,
    retries: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTask {
    pub(super) kind: Option<Spanned<String>>,
    argv: Option<Spanned<Vec<String>>>,
    script: Option<Spanned<String>>,
    module: Option<Spanned<String>>,
    args: Option<Spanned<Vec<String>>>,
    service: Option<Spanned<String>>,
    sql: Option<Spanned<String>>,
    file: Option<Spanned<String>>,
    jar: Option<Spanned<String>>,
    main_class: Option<Spanned<String>>,
    conf: Option<Spanned<BTreeMap<String, String>>>,
    driver_memory: Option<Spanned<String>>,
    spark_mode: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) depends_on: Vec<Spanned<String>>,
    pub(super) timeout: Option<Spanned<String>>,
    pub(super) retries: Option<Spanned<i64>>,
    #[serde(default)]
    pub(super) env: BTreeMap<String, String>,
    pub(super) cwd: Option<Spanned<String>>,
    pub(super) services: Option<Vec<Spanned<String>>>,
    #[serde(default)]
    pub(super) outputs: Vec<Spanned<String>>,
}

impl RawTask {
    /// True when the table says what to run (`script`, `argv`, `sql`, ...).
    pub(super) fn has_run_keys(&self) -> bool {
        self.argv.is_some()
            || self.script.is_some()
            || self.module.is_some()
            || self.args.is_some()
            || self.service.is_some()
            || self.sql.is_some()
            || self.file.is_some()
            || self.jar.is_some()
            || self.main_class.is_some()
            || self.conf.is_some()
            || self.driver_memory.is_some()
            || self.spark_mode.is_some()
    }
}

/// Loads one pipeline; `None` when it has errors (pushed to `errors`).
pub fn load(
    root: &Path,
    settings: &Settings,
    name: &str,
    dir: &Path,
    rules: Rules<'_>,
    errors: &mut Vec<ConfigError>,
) -> Option<Pipeline> {
    let before = errors.len();
    let file = dir.join("pipeline.toml");
    let (source, raw) = super::read_toml::<RawPipeline>(root, &file, errors)?;
    let mut check = Checker::new(&source, errors);

    let services = parse_services(&raw.services, &mut check);
    let default_timeout = raw
        .defaults
        .timeout
        .as_ref()
        .and_then(|t| parse_duration("timeout", t, &mut check))
        .unwrap_or(DEFAULT_TIMEOUT);
    let default_retries = raw
        .defaults
        .retries
        .as_ref()
        .and_then(|r| parse_retries(r, &mut check))
        .unwrap_or(0);

    if let Some(airflow) = &raw.airflow {
        let found = super::airflow_dag::load(
            root,
            settings,
            dir,
            airflow,
            &raw.tasks,
            default_timeout,
            rules,
            &mut check,
        );
        if errors.len() > before {
            return None;
        }
        let (dag, tasks) = found?;
        return Some(Pipeline {
            name: name.to_string(),
            dir: dir.to_path_buf(),
            description: raw.description,
            services,
            env: raw.env,
            tasks,
            airflow: Some(dag),
        });
    }

    let names: Vec<String> = raw.tasks.keys().map(|k| k.get_ref().clone()).collect();
    let mut tasks = Vec::new();
    let mut dep_spans = Vec::new();
    for (key, task) in &raw.tasks {
        let id = key.get_ref();
        if !valid_name(id) {
            check.error_help(
                key.span(),
                format!("invalid task name `{id}`"),
                "use letters, digits, `_` and `-`",
            );
        }
        let t = task.get_ref();
        let kind = kind::task_kind(root, settings, dir, id, task, rules, &mut check);
        let mut depends_on = Vec::new();
        for d in &t.depends_on {
            if !names.contains(d.get_ref()) {
                let mut help = String::from("depends_on names tasks of the same pipeline");
                if let Some(best) = did_you_mean(d.get_ref(), names.iter().map(String::as_str)) {
                    help = format!("did you mean `{best}`?");
                }
                check.error_help(
                    d.span(),
                    format!("task `{id}` depends on unknown task `{}`", d.get_ref()),
                    help,
                );
            } else if d.get_ref() == id {
                check.error(d.span(), format!("task `{id}` depends on itself"));
            } else {
                depends_on.push(TaskId(d.get_ref().clone()));
            }
        }
        dep_spans.push(t.depends_on.first().map(|d| d.span()).unwrap_or(key.span()));
        let timeout = t
            .timeout
            .as_ref()
            .and_then(|x| parse_duration("timeout", x, &mut check))
            .unwrap_or(default_timeout);
        let retries = t
            .retries
            .as_ref()
            .and_then(|r| parse_retries(r, &mut check))
            .unwrap_or(default_retries);
        let cwd = match &t.cwd {
            None => dir.to_path_buf(),
            Some(c) => match resolve_inside(root, dir, c.get_ref()) {
                Ok(p) if p.is_dir() => p,
                Ok(_) | Err(PathProblem::Missing(_)) => {
                    check.error(
                        c.span(),
                        format!("working directory `{}` not found", c.get_ref()),
                    );
                    dir.to_path_buf()
                }
                Err(_) => {
                    check.error(
                        c.span(),
                        format!("working directory `{}` is outside the project", c.get_ref()),
                    );
                    dir.to_path_buf()
                }
            },
        };
        if let Some(kind) = kind {
            tasks.push(Task {
                id: TaskId(id.clone()),
                kind,
                depends_on,
                timeout,
                retries,
                env: t.env.clone(),
                cwd,
                services: t.services.as_ref().map(|v| parse_services(v, &mut check)),
                outputs: parse_outputs(&t.outputs, rules, &mut check),
            });
        }
    }

    // A cycle is reported once, at the first task on it, naming every task on it.
    let adjacency: Vec<Vec<usize>> = raw
        .tasks
        .values()
        .map(|t| {
            t.get_ref()
                .depends_on
                .iter()
                .filter_map(|d| names.iter().position(|n| n == d.get_ref()))
                .collect()
        })
        .collect();
    if let Some(cycle) = super::graph::find_cycle(&adjacency) {
        let mut path: Vec<&str> = cycle.iter().map(|&i| names[i].as_str()).collect();
        path.push(names[cycle[0]].as_str());
        check.error_help(
            dep_spans[cycle[0]].clone(),
            format!("dependency cycle: {}", path.join(" -> ")),
            "remove one of these depends_on edges",
        );
    }

    if errors.len() > before {
        return None;
    }
    Some(Pipeline {
        name: name.to_string(),
        dir: dir.to_path_buf(),
        description: raw.description,
        services,
        env: raw.env,
        tasks,
        airflow: None,
    })
}

/// Parses a task's `outputs`; errors go to `check`.
pub(super) fn parse_outputs(
    outputs: &[Spanned<String>],
    rules: Rules<'_>,
    check: &mut Checker<'_>,
) -> Vec<Output> {
    outputs
        .iter()
        .filter_map(|o| match Output::parse(o.get_ref(), rules) {
            Ok(out) => Some(out),
            Err(e) => {
                check.error(o.span(), e);
                None
            }
        })
        .collect()
}

fn parse_retries(value: &Spanned<i64>, check: &mut Checker<'_>) -> Option<u32> {
    match u32::try_from(*value.get_ref()) {
        Ok(n) if n <= 100 => Some(n),
        _ => {
            check.error(value.span(), "`retries` must be a number from 0 to 100");
            None
        }
    }
}
