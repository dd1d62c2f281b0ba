//! A pipeline whose tasks come from an Airflow DAG: `[airflow] dag_file` and `dag_id` in
//! pipeline.toml. The DAG file is parsed by Airflow (that file only) for its tasks, their
//! upstream edges, operators, retries and execution timeouts; `[tasks.<task_id>]` tables may
//! add what only the harness needs: `outputs`, `services`, `timeout` and `env`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::pipeline::{RawTask, parse_outputs};
use super::rules::Rules;
use super::{
    Checker, PathProblem, Settings, Task, TaskKind, display_path, parse_duration, parse_services,
    resolve_inside,
};
use crate::airflow::{self, DescribeError};
use crate::diagnostic::{ConfigError, Origin, did_you_mean};
use crate::names::TaskId;

/// The `[airflow]` table of pipeline.toml.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAirflow {
    dag_file: Spanned<String>,
    dag_id: Spanned<String>,
}

/// The DAG a pipeline is.
#[derive(Debug, Clone)]
pub struct AirflowDag {
    /// The DAG file (absolute).
    pub file: PathBuf,
    /// The DAG's id.
    pub dag_id: String,
    /// The interpreter of the managed Airflow.
    pub python: PathBuf,
}

/// Keys a `[tasks.<id>]` table of an Airflow pipeline may not have: the DAG says these.
const FROM_THE_DAG: &str = "in a pipeline whose tasks come from [airflow], a [tasks.<task_id>] table only adds `outputs`, `services`, `timeout` and `env`; what the task runs, its upstream tasks and its retries come from the DAG";

/// Describes the DAG and builds the pipeline's tasks; `None` when something is wrong (pushed
/// to `check`).
#[allow(clippy::too_many_arguments)]
pub(super) fn load(
    root: &Path,
    settings: &Settings,
    dir: &Path,
    raw: &Spanned<RawAirflow>,
    extras: &BTreeMap<Spanned<String>, Spanned<RawTask>>,
    default_timeout: Duration,
    rules: Rules<'_>,
    check: &mut Checker<'_>,
) -> Option<(AirflowDag, Vec<Task>)> {
    let a = raw.get_ref();
    let file = match resolve_inside(root, dir, a.dag_file.get_ref()) {
        Ok(p) if p.is_file() => p,
        Ok(p) | Err(PathProblem::Missing(p)) => {
            check.error(
                a.dag_file.span(),
                format!(
                    "DAG file `{}` not found (looked for {})",
                    a.dag_file.get_ref(),
                    display_path(root, &p).display()
                ),
            );
            return None;
        }
        Err(_) => {
            check.error(
                a.dag_file.span(),
                format!("DAG file `{}` is outside the project", a.dag_file.get_ref()),
            );
            return None;
        }
    };
    let dag_id = a.dag_id.get_ref().clone();
    let shown = display_path(root, &file);
    let described = match airflow::describe(&settings.airflow_python, &file, &dag_id) {
        Ok(tasks) => tasks,
        Err(DescribeError::Missing(message)) => {
            check.push(ConfigError::at_origin(check.origin(&raw.span()), message).prerequisite());
            return None;
        }
        Err(DescribeError::Import {
            message,
            line,
            column,
        }) => {
            let origin = Origin {
                file: shown,
                line_col: line.map(|l| (l, column.unwrap_or(1))),
            };
            check.push(
                ConfigError::at_origin(origin, format!("the DAG file does not import: {message}"))
                    .with_help("this is the error Airflow gives when it parses the file"),
            );
            return None;
        }
        Err(DescribeError::NoDag { found }) => {
            let help = match did_you_mean(&dag_id, found.iter().map(String::as_str)) {
                Some(best) => format!("did you mean `{best}`?"),
                None if found.is_empty() => "the file defines no DAG".to_string(),
                None => format!("the file defines: {}", found.join(", ")),
            };
            check.error_help(
                a.dag_id.span(),
                format!("{} defines no DAG `{dag_id}`", shown.display()),
                help,
            );
            return None;
        }
        Err(DescribeError::Failed(message)) => {
            check.push(ConfigError::at_origin(Origin::file(shown), message));
            return None;
        }
    };

    let ids: Vec<&str> = described.iter().map(|t| t.id.as_str()).collect();
    let mut ok = true;
    for (key, table) in extras {
        let t = table.get_ref();
        if !ids.contains(&key.get_ref().as_str()) {
            let help = match did_you_mean(key.get_ref(), ids.iter().copied()) {
                Some(best) => format!("did you mean `{best}`?"),
                None => format!("the DAG's tasks are: {}", ids.join(", ")),
            };
            check.error_help(
                key.span(),
                format!("DAG `{dag_id}` has no task `{}`", key.get_ref()),
                help,
            );
            ok = false;
        }
        let from_dag = [
            ("kind", t.kind.as_ref().map(Spanned::span)),
            ("depends_on", t.depends_on.first().map(Spanned::span)),
            ("retries", t.retries.as_ref().map(Spanned::span)),
            ("cwd", t.cwd.as_ref().map(Spanned::span)),
        ];
        for (name, span) in from_dag {
            if let Some(span) = span {
                check.error_help(
                    span,
                    format!(
                        "`{name}` does not apply to task `{}` of an Airflow DAG",
                        key.get_ref()
                    ),
                    FROM_THE_DAG,
                );
                ok = false;
            }
        }
        if t.kind.is_none() && has_run_keys(t) {
            check.error_help(
                table.span(),
                format!(
                    "task `{}` of an Airflow DAG has keys that say what it runs",
                    key.get_ref()
                ),
                FROM_THE_DAG,
            );
            ok = false;
        }
    }

    let mut tasks = Vec::new();
    for d in &described {
        let extra = extras
            .iter()
            .find(|(k, _)| k.get_ref() == &d.id)
            .map(|(_, v)| v.get_ref());
        let timeout = extra
            .and_then(|e| e.timeout.as_ref())
            .and_then(|x| parse_duration("timeout", x, check))
            // The DAG's own execution_timeout, held to the same ceiling as a written duration.
            .or_else(|| {
                d.timeout
                    .filter(|s| *s > 0.0)
                    .and_then(|s| Duration::try_from_secs_f64(s).ok())
                    .map(|t| t.min(super::MAX_DURATION))
            })
            .unwrap_or(default_timeout);
        tasks.push(Task {
            id: TaskId(d.id.clone()),
            kind: TaskKind::Airflow {
                operator: d.operator.clone(),
                trigger_rule: d.trigger_rule.clone(),
            },
            depends_on: d.upstream.iter().map(|u| TaskId(u.clone())).collect(),
            timeout,
            retries: d.retries,
            env: extra.map(|e| e.env.clone()).unwrap_or_default(),
            cwd: dir.to_path_buf(),
            services: extra
                .and_then(|e| e.services.as_ref())
                .map(|v| parse_services(v, check)),
            outputs: extra
                .map(|e| parse_outputs(&e.outputs, rules, check))
                .unwrap_or_default(),
        });
    }
    tasks.sort_by(|a, b| a.id.0.cmp(&b.id.0));
    ok.then(|| {
        (
            AirflowDag {
                file,
                dag_id,
                python: settings.airflow_python.clone(),
            },
            tasks,
        )
    })
}

/// True when a table without `kind` still says what to run (`script`, `argv`, ...).
fn has_run_keys(t: &RawTask) -> bool {
    t.has_run_keys()
}

/// The `[airflow]` table of scenario.toml.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawScenarioAirflow {
    logical_date: Option<Spanned<String>>,
    #[serde(default)]
    conf: toml::Table,
    #[serde(default)]
    variables: toml::Table,
    #[serde(default)]
    mark_success: Vec<Spanned<String>>,
}

/// How a scenario's DagRun is made, when its pipeline is an Airflow DAG.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ScenarioAirflow {
    /// The logical date, ISO 8601 (`2024-05-01` or `2024-05-01T06:00:00+00:00`); `None` for
    /// the time of the run, as Airflow does.
    pub logical_date: Option<String>,
    /// `dag_run.conf` (also overrides the DAG's params of the same names).
    pub conf: serde_json::Map<String, serde_json::Value>,
    /// Airflow Variables: strings as they are, other values as JSON text.
    pub variables: BTreeMap<String, String>,
    /// Task id patterns (`*`, `?`) marked successful without running.
    pub mark_success: Vec<String>,
}

/// True for `YYYY-MM-DD`, optionally followed by `T` and a time.
fn iso_date(text: &str) -> bool {
    let b = text.as_bytes();
    b.len() >= 10
        && b[..4].iter().all(u8::is_ascii_digit)
        && b[4] == b'-'
        && b[5..7].iter().all(u8::is_ascii_digit)
        && b[7] == b'-'
        && b[8..10].iter().all(u8::is_ascii_digit)
        && (b.len() == 10 || b[10] == b'T' || b[10] == b' ')
}

/// Checks a scenario's `[airflow]` table; `pipeline` is the pipeline it names, when loaded.
pub(super) fn scenario_airflow(
    raw: &Spanned<RawScenarioAirflow>,
    pipeline: Option<&super::Pipeline>,
    check: &mut Checker<'_>,
) -> ScenarioAirflow {
    let a = raw.get_ref();
    if let Some(d) = &a.logical_date
        && !iso_date(d.get_ref())
    {
        check.error_help(
            d.span(),
            format!("`logical_date` `{}` is not an ISO 8601 date", d.get_ref()),
            "write 2024-05-01, or 2024-05-01T06:00:00+00:00",
        );
    }
    if let Some(p) = pipeline.filter(|p| p.airflow.is_some()) {
        for pattern in &a.mark_success {
            if !p
                .tasks
                .iter()
                .any(|t| super::glob_match(pattern.get_ref(), &t.id.0))
            {
                check.error_help(
                    pattern.span(),
                    format!(
                        "`mark_success` pattern `{}` matches no task of DAG `{}`",
                        pattern.get_ref(),
                        p.name
                    ),
                    format!(
                        "its tasks: {}",
                        p.tasks
                            .iter()
                            .map(|t| t.id.0.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                );
            }
        }
    }
    let json = |v: &toml::Value| serde_json::to_value(v).unwrap_or(serde_json::Value::Null);
    ScenarioAirflow {
        logical_date: a.logical_date.as_ref().map(|d| d.get_ref().clone()),
        conf: a.conf.iter().map(|(k, v)| (k.clone(), json(v))).collect(),
        variables: a
            .variables
            .iter()
            .map(|(k, v)| {
                let text = match v {
                    toml::Value::String(s) => s.clone(),
                    other => json(other).to_string(),
                };
                (k.clone(), text)
            })
            .collect(),
        mark_success: a.mark_success.iter().map(|p| p.get_ref().clone()).collect(),
    }
}
