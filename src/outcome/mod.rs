//! What happened, as data: how each task, sink, scenario and run ended, and why a service did
//! not start. The runner produces these values; the reporters only read them. This is the
//! ground floor: it imports nothing above itself.

pub mod ranking_diff;
pub mod table_diff;

use std::path::PathBuf;
use std::time::Duration;

use crate::diagnostic::{ConfigError, Origin};
use crate::names::{ScenarioName, TaskId};
use crate::redact::redact;
pub use ranking_diff::RankingDiff;
pub use table_diff::TableDiff;

/// A service that did not come up, or stopped while scenarios ran. Shown with every password
/// masked: its message and log may quote a URL or a command line.
#[derive(Debug, thiserror::Error)]
#[error("{service} {}: {}{}", if *.stopped { "stopped during the run" } else { "did not start" }, redact(.message), redact(&tail(.log_tail)))]
pub struct InfraError {
    /// True for a service that was up and then stopped; false for one that did not start.
    pub stopped: bool,
    /// Which service.
    pub service: String,
    /// What went wrong.
    pub message: String,
    /// The last lines of its log.
    pub log_tail: Vec<String>,
}

fn tail(lines: &[String]) -> String {
    if lines.is_empty() {
        String::new()
    } else {
        format!("\nlast log lines:\n  {}", lines.join("\n  "))
    }
}

/// How one attempt ended.
#[derive(Debug, Clone)]
pub struct Attempt {
    /// The result in words (`exit code 1`, `timed out after 30s`...).
    pub result: String,
    /// Its duration.
    pub elapsed: Duration,
}

/// Where a task ended up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskStatus {
    /// It succeeded.
    Succeeded,
    /// Its last attempt failed.
    Failed(String),
    /// Its last attempt ran past its timeout.
    TimedOut(Duration),
    /// It did not run because a task it depends on failed.
    Skipped {
        /// The failed upstream task.
        upstream: TaskId,
    },
    /// Airflow skipped it: a branch not taken, a short-circuit, or a trigger rule.
    SkippedByDag,
    /// The run was interrupted.
    Cancelled,
}

impl TaskStatus {
    /// True for success, and for a task the DAG itself chose not to run.
    pub fn ok(&self) -> bool {
        matches!(self, TaskStatus::Succeeded | TaskStatus::SkippedByDag)
    }
}

impl std::fmt::Display for TaskStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TaskStatus::Succeeded => f.write_str("succeeded"),
            TaskStatus::Failed(why) => write!(f, "failed: {why}"),
            TaskStatus::TimedOut(t) => {
                write!(f, "timed out after {}", humantime::format_duration(*t))
            }
            TaskStatus::Skipped { upstream } => write!(f, "skipped (upstream `{upstream}` failed)"),
            TaskStatus::SkippedByDag => {
                f.write_str("skipped by the DAG (branch, short-circuit or trigger rule)")
            }
            TaskStatus::Cancelled => f.write_str("cancelled"),
        }
    }
}

/// The result of one task.
#[derive(Debug, Clone)]
pub struct TaskOutcome {
    /// Its name.
    pub id: TaskId,
    /// Where it ended up.
    pub status: TaskStatus,
    /// Each attempt.
    pub attempts: Vec<Attempt>,
    /// When it started, counted from the start of the DAG (zero when it never ran).
    pub started: Duration,
    /// Total time.
    pub elapsed: Duration,
    /// Its log file (all attempts), when it ran.
    pub log: Option<PathBuf>,
}

/// Time spent in each stage, summed over the run.
#[derive(Debug, Clone, Copy, Default)]
pub struct Timings {
    /// Starting and stopping services.
    pub services: Duration,
    /// Resetting services between scenarios.
    pub reset: Duration,
    /// Seeding.
    pub seed: Duration,
    /// Running tasks (the pipeline's own time).
    pub tasks: Duration,
    /// Reading sinks and rendering snapshots.
    pub read: Duration,
    /// Comparing with goldens and writing files.
    pub compare: Duration,
    /// From the scenario's start to its first task running, whether the tasks of pipeline.toml
    /// or an Airflow DAG's (the latter: when the driver said the task's process runs).
    pub first_task: Option<Duration>,
}

impl Timings {
    /// Adds another's times to these.
    pub fn add(&mut self, o: &Timings) {
        self.services += o.services;
        self.reset += o.reset;
        self.seed += o.seed;
        self.tasks += o.tasks;
        self.read += o.read;
        self.compare += o.compare;
        // Not a sum: the latest scenario's (or attempt's) figure.
        if o.first_task.is_some() {
            self.first_task = o.first_task;
        }
    }

    /// Everything but the tasks: the harness's own share.
    pub fn overhead(&self) -> Duration {
        self.services + self.reset + self.seed + self.read + self.compare
    }
}

/// What became of one sink.
#[derive(Debug, Clone)]
pub enum SinkResult {
    /// Same as the golden.
    Matched,
    /// Differs from the golden.
    Differs {
        /// Unified diff, golden → actual.
        diff: String,
        /// For a table sink: the rows and columns that changed.
        table: Option<TableDiff>,
    },
    /// No golden exists yet.
    NoGolden,
    /// The golden was (re)written by `--update`.
    Updated {
        /// The diff that was accepted, `None` for a new golden.
        diff: Option<String>,
    },
    /// Reading it failed.
    ReadFailed(String),
    /// Its new snapshot (a golden under `--update`, or a pending `.snap.new`) could not be
    /// written; the message names the file.
    WriteFailed(String),
}

/// One sink's outcome.
#[derive(Debug, Clone)]
pub struct SinkOutcome {
    /// Its name.
    pub name: String,
    /// Its golden file.
    pub golden: PathBuf,
    /// Where it is declared.
    pub origin: Origin,
    /// The result.
    pub result: SinkResult,
    /// A pending file written for review, if any.
    pub pending: Option<PathBuf>,
    /// What it reads (`redis keys recs:*`).
    pub source: String,
    /// The tasks that write it.
    pub writers: Vec<TaskId>,
    /// Values that differ from the golden within their column's tolerance.
    pub tolerated: usize,
    /// For a sink with a ranking rule whose snapshot differs: how its lists changed (also when
    /// they stayed within the bounds and the sink passed).
    pub ranking: Option<RankingDiff>,
}

impl SinkOutcome {
    /// What went wrong with the sink in one line, naming the task that wrote it when one is
    /// known, with that task's log: "`train_als` changed redis keys recs:* (sink `recs`)...".
    pub fn headline(&self, tasks: &[TaskOutcome]) -> String {
        let what = match &self.result {
            SinkResult::Differs { .. } => "differs from its golden",
            SinkResult::NoGolden => "has no golden file yet",
            SinkResult::ReadFailed(_) => "could not be read",
            SinkResult::WriteFailed(_) => "has a snapshot that could not be written",
            SinkResult::Matched | SinkResult::Updated { .. } => "matches its golden",
        };
        let names: Vec<String> = self.writers.iter().map(|w| format!("`{w}`")).collect();
        let logs: Vec<String> = tasks
            .iter()
            .filter(|t| self.writers.contains(&t.id))
            .filter_map(|t| t.log.as_ref().map(|l| l.display().to_string()))
            .collect();
        let mut line = match (&self.result, names.is_empty()) {
            (SinkResult::Differs { .. }, false) => format!(
                "{} changed {} (sink `{}`, {what})",
                names.join(" or "),
                self.source,
                self.name
            ),
            (_, false) => format!(
                "sink `{}` ({}) {what}; written by {}",
                self.name,
                self.source,
                names.join(" and ")
            ),
            (_, true) => format!(
                "sink `{}` ({}) {what}; no task declares it writes this (give the task `outputs` or the sink `written_by`)",
                self.name, self.source
            ),
        };
        if !logs.is_empty() {
            line.push_str(&format!("; log: {}", logs.join(", ")));
        }
        line
    }

    /// The whole account of a failing sink: the row-by-row table diff or the list-by-list
    /// ranking account when there is one, then the text diff (or the error).
    pub fn details(&self) -> Option<String> {
        match &self.result {
            SinkResult::Differs { diff, table } => Some(match self.explained(table) {
                e if e.is_empty() => diff.clone(),
                e => format!("{e}\n{diff}"),
            }),
            SinkResult::NoGolden => Some(format!("no golden file {}", self.golden.display())),
            SinkResult::ReadFailed(e) | SinkResult::WriteFailed(e) => Some(e.clone()),
            SinkResult::Matched | SinkResult::Updated { .. } => None,
        }
    }

    /// What precedes the text diff of a differing sink: its table diff or its ranking account,
    /// each ending with a line break (empty when there is neither).
    pub fn explained(&self, table: &Option<TableDiff>) -> String {
        let mut out = table.as_ref().map(TableDiff::render).unwrap_or_default();
        if let Some(r) = &self.ranking {
            out.push_str(&r.render());
        }
        out
    }

    /// True when the sink does not fail the scenario.
    pub fn ok(&self) -> bool {
        matches!(
            self.result,
            SinkResult::Matched | SinkResult::Updated { .. }
        )
    }
}

/// Where a scenario ended up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScenarioStatus {
    /// Every task succeeded and every sink matched (or was updated).
    Passed,
    /// A task failed or a sink differs.
    Failed,
    /// A seed or input was rejected (bad input: exit 2).
    InputError,
    /// A service misbehaved (exit 3).
    InfraError,
    /// The run was interrupted first.
    Cancelled,
}

/// One scenario's outcome.
#[derive(Debug, Clone)]
pub struct ScenarioOutcome {
    /// Its name.
    pub name: ScenarioName,
    /// Status.
    pub status: ScenarioStatus,
    /// Why it failed before its tasks ran (seed, reset), if it did.
    pub error: Option<String>,
    /// Input problem details, for exit-2 rendering.
    pub input_error: Option<ConfigError>,
    /// Its tasks.
    pub tasks: Vec<TaskOutcome>,
    /// Its sinks (empty when the tasks did not all succeed).
    pub sinks: Vec<SinkOutcome>,
    /// Stage times.
    pub timings: Timings,
    /// Total time.
    pub elapsed: Duration,
    /// Its folder in the report directory.
    pub report_dir: PathBuf,
    /// For a scenario that must fail and did: how it failed.
    pub expected_failure: Option<String>,
    /// How each earlier attempt failed, when the scenario was retried.
    pub failed_attempts: Vec<String>,
}

impl ScenarioOutcome {
    /// True when the scenario passed only after failing: flaky, not a plain pass.
    pub fn flaky(&self) -> bool {
        self.status == ScenarioStatus::Passed && !self.failed_attempts.is_empty()
    }

    /// Attempts made.
    pub fn attempts(&self) -> usize {
        self.failed_attempts.len() + 1
    }
}

/// The outcome of a whole run.
#[derive(Debug)]
pub struct RunOutcome {
    /// Every selected scenario.
    pub scenarios: Vec<ScenarioOutcome>,
    /// A service that did not start, if any.
    pub infra_error: Option<InfraError>,
    /// True when a signal interrupted the run.
    pub interrupted: bool,
    /// Stage times over the run.
    pub timings: Timings,
    /// Wall time.
    pub elapsed: Duration,
}

/// One line saying how a scenario ended.
pub fn summary_line(o: &ScenarioOutcome) -> String {
    if let Some(e) = &o.error {
        return e.clone();
    }
    if let Some(f) = &o.expected_failure {
        return format!("failed as expected: {f}");
    }
    if o.flaky() {
        return format!(
            "flaky: passed on attempt {} after {}",
            o.attempts(),
            o.failed_attempts.join("; ")
        );
    }
    let names = |pick: fn(&SinkResult) -> bool| -> Vec<&str> {
        o.sinks
            .iter()
            .filter(|s| pick(&s.result))
            .map(|s| s.name.as_str())
            .collect()
    };
    let differ = names(|r| matches!(r, SinkResult::Differs { .. } | SinkResult::ReadFailed(_)));
    let missing = names(|r| matches!(r, SinkResult::NoGolden));
    let unwritten = names(|r| matches!(r, SinkResult::WriteFailed(_)));
    let updated = o
        .sinks
        .iter()
        .filter(|s| matches!(s.result, SinkResult::Updated { .. }))
        .count();
    let n = count;
    match o.status {
        ScenarioStatus::Cancelled => "cancelled".into(),
        _ if !differ.is_empty() || !missing.is_empty() || !unwritten.is_empty() => {
            let mut parts = Vec::new();
            if !differ.is_empty() {
                parts.push(format!(
                    "sinks not matching their goldens ({} of {}): {}",
                    differ.len(),
                    o.sinks.len(),
                    differ.join(", ")
                ));
            }
            if !missing.is_empty() {
                parts.push(format!(
                    "sinks without a golden yet: {}",
                    missing.join(", ")
                ));
            }
            if !unwritten.is_empty() {
                parts.push(format!(
                    "snapshots that could not be written: {}",
                    unwritten.join(", ")
                ));
            }
            parts.join("; ")
        }
        _ if updated > 0 => format!(
            "{} succeeded, {} written",
            n(o.tasks.len(), "task"),
            n(updated, "golden")
        ),
        _ => {
            let tolerated: usize = o.sinks.iter().map(|s| s.tolerated).sum();
            let mut line = format!(
                "{} succeeded, {} matching",
                n(o.tasks.len(), "task"),
                n(o.sinks.len(), "sink")
            );
            if tolerated > 0 {
                line.push_str(&format!(" ({} within tolerance)", n(tolerated, "value")));
            }
            let reranked: usize = o
                .sinks
                .iter()
                .filter_map(|s| s.ranking.as_ref())
                .map(|r| r.changed.len())
                .sum();
            if reranked > 0 {
                line.push_str(&format!(
                    " ({} changed within the ranking bounds)",
                    n(reranked, "list")
                ));
            }
            line
        }
    }
}

/// `1 sink`, `2 sinks`: a count with its noun.
pub fn count(n: usize, noun: &str) -> String {
    format!("{n} {noun}{}", if n == 1 { "" } else { "s" })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_service_error_is_shown_with_its_passwords_masked() {
        crate::redact::register("infra-error-password");
        let e = InfraError {
            stopped: false,
            service: "hive".into(),
            message: "cannot reach jdbc:postgresql://harness:infra-error-password@127.0.0.1:5432/m"
                .into(),
            log_tail: vec!["login with infra-error-password refused".into()],
        };
        let shown = e.to_string();
        assert!(!shown.contains("infra-error-password"), "{shown}");
        assert!(shown.contains("harness:***@127.0.0.1"), "{shown}");
        assert!(shown.contains("login with *** refused"), "{shown}");
    }
}
