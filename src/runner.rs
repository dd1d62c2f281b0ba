//! One run, stage by stage: plan the services → start the environment → for each scenario:
//! reset, seed, run the DAG, read the sinks, compare with the goldens → stop the environment.
//! Each stage consumes the previous one's output; progress leaves as events, results as a
//! `RunOutcome` that the reporters render.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::backend::connect::ConnectEndpoint;
use crate::backend::{Environment, InfraError, Resolved};
use crate::config::{
    ConfigError, ExpectedFailure, Origin, Pipeline, Project, PythonTarget, Scenario, ScenarioName,
    Seed, SeedKind, ServiceKind, Sink, SinkSpec, SparkApp, SparkMode, Task, TaskId, TaskKind,
    spark_mode,
};
use crate::dag::executor::{self, Action, ExecContext, ExecTask};
use crate::dag::process::ProcessSpec;
use crate::dag::{TaskOutcome, TaskStatus};
use crate::report::events::{Event, Events};
use crate::services::ServiceError;
use crate::snapshot::canonical::Header;
use crate::snapshot::diff;
use crate::snapshot::golden::{self, WritePolicy};
use crate::snapshot::table::{self, TableDiff};

/// How to run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// What to do with snapshots that differ.
    pub policy: WritePolicy,
    /// Where logs and snapshots of the run go.
    pub report_dir: PathBuf,
    /// Tasks at once within a scenario.
    pub task_jobs: usize,
    /// The backend in use.
    pub backend: Resolved,
    /// Extra attempts for a scenario that fails; a pass after a failure is reported as flaky.
    pub retries: u32,
    /// Environments running scenarios at once, at most.
    pub jobs: usize,
    /// `--spark-mode`: how `spark` tasks run, over their own `spark_mode` and harness.toml's.
    pub spark_mode: Option<SparkMode>,
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
}

impl Timings {
    fn add(&mut self, o: &Timings) {
        self.services += o.services;
        self.reset += o.reset;
        self.seed += o.seed;
        self.tasks += o.tasks;
        self.read += o.read;
        self.compare += o.compare;
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
}

impl SinkOutcome {
    /// What went wrong with the sink in one line, naming the task that wrote it when one is
    /// known, with that task's log: "`train_als` changed redis keys recs:* (sink `recs`)...".
    pub fn headline(&self, tasks: &[TaskOutcome]) -> String {
        let what = match &self.result {
            SinkResult::Differs { .. } => "differs from its golden",
            SinkResult::NoGolden => "has no golden file yet",
            SinkResult::ReadFailed(_) => "could not be read",
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

    /// The whole account of a failing sink: the row-by-row table diff when there is one, then
    /// the text diff (or the error).
    pub fn details(&self) -> Option<String> {
        match &self.result {
            SinkResult::Differs { diff, table } => Some(match table {
                Some(t) => format!("{}\n{diff}", t.render()),
                None => diff.clone(),
            }),
            SinkResult::NoGolden => Some(format!("no golden file {}", self.golden.display())),
            SinkResult::ReadFailed(e) => Some(e.clone()),
            SinkResult::Matched | SinkResult::Updated { .. } => None,
        }
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

/// The services a set of scenarios needs.
pub fn plan_services(project: &Project, scenarios: &[&Scenario]) -> Vec<ServiceKind> {
    let set: BTreeSet<ServiceKind> = scenarios
        .iter()
        .flat_map(|s| s.services_needed(project.pipeline_of(s)))
        .collect();
    let mut all: Vec<ServiceKind> = set.into_iter().collect();
    // A metastore kept in PostgreSQL needs the environment's PostgreSQL.
    if all.contains(&ServiceKind::Hive)
        && project.settings.hive.database == crate::config::settings::MetastoreDb::Postgres
        && !all.contains(&ServiceKind::Postgres)
    {
        all.insert(0, ServiceKind::Postgres);
    }
    all
}

/// Runs the scenarios on `opts.jobs` environments at once (fewer when memory is short, see
/// [`environments`]), each environment reset between the scenarios it runs. Scenarios are handed
/// out in order to whichever environment is free; outcomes come back in the scenarios' order.
pub async fn run(
    project: &Project,
    scenarios: &[&Scenario],
    opts: &RunOptions,
    events: &Events,
    cancel: &CancellationToken,
) -> RunOutcome {
    let started = Instant::now();
    events.emit(Event::RunStarted {
        scenarios: scenarios.len(),
        backend: format!("{} ({})", opts.backend.kind.name(), opts.backend.reason),
    });
    let services = plan_services(project, scenarios);
    let per_env = memory_estimate_mb(project, scenarios, &services, opts);
    let available = available_memory_mb();
    let jobs = environments(opts.jobs, scenarios.len(), per_env, available);
    if jobs > 1 || opts.jobs > 1 {
        events.notice(format!(
            "{jobs} environment{} at once (asked for {}; each needs about {} MB, {} MB available)",
            if jobs == 1 { "" } else { "s" },
            opts.jobs,
            per_env,
            available.map_or("unknown".to_string(), |a| a.to_string()),
        ));
    }

    let queue = std::sync::Mutex::new(scenarios.iter().copied().enumerate());
    let workers = (0..jobs).map(|_| worker(project, &services, &queue, opts, events, cancel));
    let results = futures_util::future::join_all(workers).await;

    let mut timings = Timings::default();
    let mut infra_error = None;
    let mut slots: Vec<Option<ScenarioOutcome>> = scenarios.iter().map(|_| None).collect();
    for r in results {
        timings.add(&r.timings);
        for (i, o) in r.outcomes {
            slots[i] = Some(o);
        }
        if infra_error.is_none() {
            infra_error = r.infra_error;
        }
    }
    let outcomes = slots
        .into_iter()
        .zip(scenarios)
        .map(|(o, s)| {
            o.unwrap_or_else(|| match &infra_error {
                Some(e) if !cancel.is_cancelled() => ScenarioOutcome {
                    status: ScenarioStatus::InfraError,
                    error: Some(format!("not run: {} did not start", e.service)),
                    ..not_run(s, opts)
                },
                _ => not_run(s, opts),
            })
        })
        .collect();
    RunOutcome {
        scenarios: outcomes,
        infra_error,
        interrupted: cancel.is_cancelled(),
        timings,
        elapsed: started.elapsed(),
    }
}

/// A scenario that did not run: cancelled, unless the caller says otherwise.
fn not_run(s: &Scenario, opts: &RunOptions) -> ScenarioOutcome {
    ScenarioOutcome {
        name: s.name.clone(),
        status: ScenarioStatus::Cancelled,
        error: None,
        input_error: None,
        tasks: vec![],
        sinks: vec![],
        timings: Timings::default(),
        elapsed: Duration::ZERO,
        report_dir: opts.report_dir.join(&s.name.0),
        expected_failure: None,
        failed_attempts: vec![],
    }
}

/// What one environment did.
struct WorkerResult {
    outcomes: Vec<(usize, ScenarioOutcome)>,
    timings: Timings,
    infra_error: Option<InfraError>,
}

type Queue<'a, 'b> =
    std::sync::Mutex<std::iter::Enumerate<std::iter::Copied<std::slice::Iter<'a, &'b Scenario>>>>;

/// Starts one environment, runs scenarios from the queue on it until the queue is empty, and
/// stops it.
async fn worker(
    project: &Project,
    services: &[ServiceKind],
    queue: &Queue<'_, '_>,
    opts: &RunOptions,
    events: &Events,
    cancel: &CancellationToken,
) -> WorkerResult {
    let mut result = WorkerResult {
        outcomes: vec![],
        timings: Timings::default(),
        infra_error: None,
    };
    let env_dir = match tempfile::Builder::new().prefix("harness-env-").tempdir() {
        Ok(d) => d.keep(),
        Err(e) => {
            result.infra_error = Some(InfraError {
                service: "environment".into(),
                message: format!("cannot create a temporary folder: {e}"),
                log_tail: vec![],
            });
            return result;
        }
    };
    let t0 = Instant::now();
    let env = tokio::select! {
        env = Environment::start(services, &project.settings, opts.backend.kind, &env_dir, events) => env,
        () = cancel.cancelled() => {
            let _ = std::fs::remove_dir_all(&env_dir);
            return result;
        }
    };
    result.timings.services += t0.elapsed();
    let env = match env {
        Ok(env) => env,
        Err(e) => {
            result.infra_error = Some(e);
            return result;
        }
    };
    loop {
        if cancel.is_cancelled() {
            break;
        }
        let next = queue.lock().map(|mut q| q.next()).unwrap_or(None);
        let Some((i, s)) = next else { break };
        let outcome = run_with_retries(project, s, &env, opts, events, cancel).await;
        events.emit(Event::ScenarioFinished {
            scenario: outcome.name.clone(),
            passed: outcome.status == ScenarioStatus::Passed,
            flaky: outcome.flaky(),
            summary: summary_line(&outcome),
            elapsed: outcome.elapsed,
        });
        result.timings.add(&outcome.timings);
        result.outcomes.push((i, outcome));
    }
    let t0 = Instant::now();
    env.stop().await;
    result.timings.services += t0.elapsed();
    result
}

/// Roughly how much memory one environment takes at its peak, in MB: its services, the Spark
/// Connect server when a task uses it, plus the Spark drivers of the submitted tasks that may run
/// at once. JVMs dominate; the figures are what they were seen to take here, rounded up.
pub fn memory_estimate_mb(
    project: &Project,
    scenarios: &[&Scenario],
    services: &[ServiceKind],
    opts: &RunOptions,
) -> u64 {
    let mut mb: u64 = services
        .iter()
        .map(|s| match s {
            ServiceKind::Postgres => 100,
            ServiceKind::Redis => 20,
            ServiceKind::Hive => 600,
            ServiceKind::Hdfs => 0,
            ServiceKind::Spark => 1200,
        })
        .sum();
    let mode = |t: &Task| spark_mode_of(t, project, opts);
    let (mut submitted, mut connect) = (0, false);
    for s in scenarios {
        let tasks = selected_tasks(project.pipeline_of(s), s);
        submitted = submitted.max(
            tasks
                .iter()
                .filter(|t| mode(t) == Some(SparkMode::Submit))
                .count(),
        );
        connect |= tasks.iter().any(|t| mode(t) == Some(SparkMode::Connect));
    }
    if connect {
        mb += 1200;
    }
    mb + 1100 * submitted.min(opts.task_jobs) as u64
}

/// Memory the kernel says is available for new work, in MB.
pub fn available_memory_mb() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024)
}

/// How many environments to run at once: what was asked, no more than there are scenarios, and
/// no more than three quarters of the available memory holds (never fewer than one).
pub fn environments(
    requested: usize,
    scenarios: usize,
    per_env_mb: u64,
    available_mb: Option<u64>,
) -> usize {
    let by_memory = match available_mb {
        Some(avail) if per_env_mb > 0 => (avail * 3 / 4 / per_env_mb) as usize,
        _ => usize::MAX,
    };
    requested.min(scenarios).min(by_memory).max(1)
}

/// Runs a scenario, and again up to `opts.retries` times while it fails (a diff or a task
/// failure; not bad input, a broken service or an interruption). The report folder of each failed
/// attempt is kept beside the last one as `<scenario>.attempt-N`.
async fn run_with_retries(
    project: &Project,
    scenario: &Scenario,
    env: &Environment,
    opts: &RunOptions,
    events: &Events,
    cancel: &CancellationToken,
) -> ScenarioOutcome {
    let mut failed = Vec::new();
    let mut timings = Timings::default();
    let mut elapsed = Duration::ZERO;
    loop {
        let outcome = run_scenario(project, scenario, env, opts, events, cancel).await;
        let mut outcome = apply_expectation(outcome, scenario.expect_failure.as_ref());
        timings.add(&outcome.timings);
        elapsed += outcome.elapsed;
        let attempt = failed.len() as u32 + 1;
        if outcome.status == ScenarioStatus::Failed
            && attempt <= opts.retries
            && !cancel.is_cancelled()
        {
            let why = summary_line(&outcome);
            events.emit(Event::ScenarioRetrying {
                scenario: scenario.name.clone(),
                attempt,
                attempts: opts.retries + 1,
                reason: why.clone(),
            });
            let kept = opts
                .report_dir
                .join(format!("{}.attempt-{attempt}", scenario.name));
            let _ = std::fs::remove_dir_all(&kept);
            let _ = std::fs::rename(&outcome.report_dir, &kept);
            failed.push(format!("attempt {attempt}: {why}"));
            continue;
        }
        outcome.failed_attempts = failed;
        outcome.timings = timings;
        outcome.elapsed = elapsed;
        return outcome;
    }
}

async fn run_scenario(
    project: &Project,
    scenario: &Scenario,
    env: &Environment,
    opts: &RunOptions,
    events: &Events,
    cancel: &CancellationToken,
) -> ScenarioOutcome {
    let started = Instant::now();
    events.emit(Event::ScenarioStarted {
        scenario: scenario.name.clone(),
    });
    let report_dir = opts.report_dir.join(&scenario.name.0);
    let _ = std::fs::remove_dir_all(&report_dir);
    let mut out = ScenarioOutcome {
        name: scenario.name.clone(),
        status: ScenarioStatus::Passed,
        error: None,
        input_error: None,
        tasks: vec![],
        sinks: vec![],
        timings: Timings::default(),
        elapsed: Duration::ZERO,
        report_dir: report_dir.clone(),
        expected_failure: None,
        failed_attempts: vec![],
    };
    let pipeline = project.pipeline_of(scenario);

    let t0 = Instant::now();
    let reset = env.reset().await;
    out.timings.reset = t0.elapsed();
    if let Err(e) = reset {
        return finish(
            out,
            ScenarioStatus::InfraError,
            Some(format!("reset failed: {e}")),
            started,
            events,
        );
    }

    let t0 = Instant::now();
    // The Spark Connect server, when a task runs on it, comes up while the seeds go in.
    let seeding = async {
        for seed in &scenario.seeds {
            run_seed(seed, env, events).await?;
        }
        Ok(())
    };
    let (seeded, connect) = tokio::join!(
        seeding,
        start_connect_if_used(project, pipeline, scenario, env, opts, events)
    );
    out.timings.seed = t0.elapsed();
    if let Err(e) = seeded {
        return match e {
            ServiceError::Input { origin, message } => {
                let err = ConfigError::at_origin(origin, format!("seed rejected: {message}"));
                out.input_error = Some(err.clone());
                finish(
                    out,
                    ScenarioStatus::InputError,
                    Some(err.to_string()),
                    started,
                    events,
                )
            }
            other => finish(
                out,
                ScenarioStatus::InfraError,
                Some(format!("seeding failed: {other}")),
                started,
                events,
            ),
        };
    }

    let work_dir = env.dir.join("work").join(&scenario.name.0);
    let _ = std::fs::remove_dir_all(&work_dir);
    if let Err(e) = std::fs::create_dir_all(&work_dir) {
        return finish(
            out,
            ScenarioStatus::InfraError,
            Some(format!("cannot create {}: {e}", work_dir.display())),
            started,
            events,
        );
    }
    let connect = match connect {
        Ok(c) => c,
        Err(e) => {
            return finish(
                out,
                ScenarioStatus::InfraError,
                Some(e.to_string()),
                started,
                events,
            );
        }
    };
    let tasks = exec_tasks(
        project,
        pipeline,
        scenario,
        env,
        &work_dir,
        opts,
        connect.as_ref(),
    );
    let ctx = ExecContext {
        scenario: scenario.name.clone(),
        log_dir: report_dir.join("tasks"),
        max_parallel: opts.task_jobs,
        events: events.clone(),
        cancel: cancel.clone(),
    };
    let t0 = Instant::now();
    out.tasks = executor::run(tasks, &ctx).await;
    out.timings.tasks = t0.elapsed();

    if cancel.is_cancelled() {
        return finish(out, ScenarioStatus::Cancelled, None, started, events);
    }
    let failed = out
        .tasks
        .iter()
        .find(|t| !matches!(t.status, TaskStatus::Succeeded | TaskStatus::Skipped { .. }));
    if let Some(failed) = failed.or_else(|| out.tasks.iter().find(|t| !t.status.ok())) {
        let msg = format!("task `{}` {}", failed.id, failed.status);
        return finish(out, ScenarioStatus::Failed, Some(msg), started, events);
    }

    // A scenario that must fail compares against goldens that are wrong on purpose: never
    // rewrite them, not even with --update.
    let policy = if scenario.expect_failure.is_some() {
        WritePolicy::Nothing
    } else {
        opts.policy
    };
    // On CI nothing is written beside the goldens; new snapshots go to the report's `pending/`
    // folder instead, laid out like the project, for a developer to unpack and review.
    let mirror = (policy == WritePolicy::Nothing && scenario.expect_failure.is_none())
        .then(|| (project.root.clone(), opts.report_dir.join("pending")));
    for sink in &scenario.sinks {
        let t0 = Instant::now();
        let scratch = env
            .dir
            .join("work")
            .join(format!("{}.{}.rows.jsonl", scenario.name, sink.name));
        let rendered = read_sink(sink, env, &scratch, events).await;
        out.timings.read += t0.elapsed();
        let t0 = Instant::now();
        let outcome = compare_sink(sink, rendered, policy, &report_dir, &mirror, events);
        out.timings.compare += t0.elapsed();
        out.sinks.push(outcome);
    }
    let status = if out.sinks.iter().all(SinkOutcome::ok) {
        ScenarioStatus::Passed
    } else {
        ScenarioStatus::Failed
    };
    finish(out, status, None, started, events)
}

fn finish(
    mut out: ScenarioOutcome,
    status: ScenarioStatus,
    error: Option<String>,
    started: Instant,
    events: &Events,
) -> ScenarioOutcome {
    out.status = status;
    out.error = error;
    out.elapsed = started.elapsed();
    let _ = events;
    out
}

/// Holds a scenario that must fail to its expectation: failing as expected passes it (with a
/// note), passing or failing otherwise fails it.
pub fn apply_expectation(
    mut out: ScenarioOutcome,
    expect: Option<&ExpectedFailure>,
) -> ScenarioOutcome {
    let Some(expect) = expect else { return out };
    let what = match expect {
        ExpectedFailure::Any => "to fail".to_string(),
        ExpectedFailure::Task(t) => format!("task `{t}` to fail"),
        ExpectedFailure::Sinks(s) => format!("sinks {} to differ", s.join(", ")),
    };
    match out.status {
        ScenarioStatus::Passed => {
            out.status = ScenarioStatus::Failed;
            out.error = Some(format!("expected {what}, but the scenario passed"));
        }
        ScenarioStatus::Failed => {
            let actual = summary_line(&out);
            let as_expected = match expect {
                ExpectedFailure::Any => true,
                ExpectedFailure::Task(t) => out.tasks.iter().any(|o| {
                    &o.id == t
                        && matches!(o.status, TaskStatus::Failed(_) | TaskStatus::TimedOut(_))
                }),
                ExpectedFailure::Sinks(names) => {
                    let mut differ: Vec<String> = out
                        .sinks
                        .iter()
                        .filter(|s| !s.ok())
                        .map(|s| s.name.clone())
                        .collect();
                    differ.sort();
                    out.tasks.iter().all(|t| t.status.ok()) && &differ == names
                }
            };
            if as_expected {
                out.status = ScenarioStatus::Passed;
                out.error = None;
                out.expected_failure = Some(actual);
            } else {
                out.error = Some(format!("expected {what}, but: {actual}"));
            }
        }
        _ => {}
    }
    out
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
    let updated = o
        .sinks
        .iter()
        .filter(|s| matches!(s.result, SinkResult::Updated { .. }))
        .count();
    let n = crate::report::count;
    match o.status {
        ScenarioStatus::Cancelled => "cancelled".into(),
        _ if !differ.is_empty() || !missing.is_empty() => {
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
            line
        }
    }
}

async fn run_seed(seed: &Seed, env: &Environment, events: &Events) -> Result<(), ServiceError> {
    let missing = |s: &'static str| ServiceError::Unavailable {
        service: s,
        message: "not started".into(),
    };
    match &seed.kind {
        SeedKind::PostgresSql { path } => {
            env.postgres
                .as_ref()
                .ok_or_else(|| missing("postgres"))?
                .seed_sql(path, &seed.display)
                .await
        }
        SeedKind::PostgresCsv {
            table,
            path,
            columns,
            delimiter,
            null,
        } => env
            .postgres
            .as_ref()
            .ok_or_else(|| missing("postgres"))?
            .seed_csv(
                table,
                path,
                &seed.display,
                columns,
                *delimiter,
                null.as_deref(),
            )
            .await
            .map(|_| ()),
        SeedKind::RedisJson { fixture, .. } => env
            .redis
            .as_ref()
            .ok_or_else(|| missing("redis"))?
            .seed(fixture)
            .await
            .map(|_| ()),
        SeedKind::HiveTable {
            table,
            format,
            path,
            schema,
            partition_by,
            delimiter,
            null,
        } => {
            let mut session =
                env.spark_session(events)
                    .await
                    .map_err(|e| ServiceError::Unavailable {
                        service: "spark",
                        message: e.to_string(),
                    })?;
            match session
                .seed_table(
                    table,
                    *format,
                    path,
                    schema.as_deref(),
                    partition_by,
                    *delimiter,
                    null.as_deref(),
                )
                .await
            {
                Ok(_) => Ok(()),
                Err(e) if e.broken => Err(ServiceError::Unavailable {
                    service: "spark",
                    message: e.message,
                }),
                Err(e) => Err(ServiceError::Input {
                    origin: Origin::file(&seed.display),
                    message: format!("table {table}: {}", e.message),
                }),
            }
        }
        SeedKind::HdfsFiles { path, source } => {
            let hdfs = env.hdfs.as_ref().ok_or_else(|| missing("hdfs"))?;
            hdfs.seed(source, path)
                .map(|_| ())
                .map_err(|e| ServiceError::Unavailable {
                    service: "hdfs",
                    message: format!("cannot copy {} to {path}: {e}", seed.display.display()),
                })
        }
    }
}

/// The tasks of the pipeline the scenario selects, in the pipeline's order.
fn selected_tasks<'p>(pipeline: &'p Pipeline, scenario: &Scenario) -> Vec<&'p Task> {
    pipeline
        .tasks
        .iter()
        .filter(|t| {
            scenario
                .tasks
                .as_ref()
                .is_none_or(|sel| sel.contains(&t.id))
        })
        .collect()
}

/// How a task runs on Spark: `None` for a task that is not a `spark` task.
fn spark_mode_of(task: &Task, project: &Project, opts: &RunOptions) -> Option<SparkMode> {
    spark_mode::of_task(task, opts.spark_mode, project.settings.spark.mode)
}

/// Starts (or finds) the Spark Connect server when a selected task runs in connect mode.
async fn start_connect_if_used(
    project: &Project,
    pipeline: &Pipeline,
    scenario: &Scenario,
    env: &Environment,
    opts: &RunOptions,
    events: &Events,
) -> Result<Option<ConnectEndpoint>, InfraError> {
    let on_connect: Vec<&Task> = selected_tasks(pipeline, scenario)
        .into_iter()
        .filter(|t| spark_mode_of(t, project, opts) == Some(SparkMode::Connect))
        .collect();
    if on_connect.is_empty() {
        return Ok(None);
    }
    for note in on_connect
        .iter()
        .filter_map(|t| spark_mode::connect_caveat(t))
    {
        events.notice(note);
    }
    env.spark_connect(events).await.map(Some)
}

/// The tasks the scenario runs, with their environment, in the pipeline's order.
fn exec_tasks(
    project: &Project,
    pipeline: &Pipeline,
    scenario: &Scenario,
    env: &Environment,
    work_dir: &Path,
    opts: &RunOptions,
    connect: Option<&ConnectEndpoint>,
) -> Vec<ExecTask> {
    let selected = selected_tasks(pipeline, scenario);
    let mut base_env: Vec<(String, String)> = vec![
        ("HARNESS_SCENARIO".into(), scenario.name.0.clone()),
        ("HARNESS_WORK_DIR".into(), work_dir.display().to_string()),
        ("PYTHONUNBUFFERED".into(), "1".into()),
    ];
    base_env.extend(env.task_env());
    // Variables of the contract come from this run only, never from the caller's shell.
    let env_remove: Vec<String> = std::env::vars_os()
        .filter_map(|(k, _)| k.into_string().ok())
        .filter(|k| k.starts_with("HARNESS_") || k.starts_with("AIRFLOW_CONN_"))
        .collect();
    selected
        .iter()
        .map(|t| {
            let deps = t
                .depends_on
                .iter()
                .filter_map(|d| selected.iter().position(|s| &s.id == d))
                .collect();
            let mut vars = base_env.clone();
            vars.extend(
                pipeline
                    .env
                    .iter()
                    .chain(&scenario.env)
                    .chain(&t.env)
                    .map(|(k, v)| (k.clone(), v.clone())),
            );
            let spec = |program: std::ffi::OsString, args: Vec<std::ffi::OsString>| ProcessSpec {
                program,
                args,
                cwd: t.cwd.clone(),
                env: vars.clone(),
                env_remove: env_remove.clone(),
            };
            let process = |program, args| Action::Process(spec(program, args));
            let action = match &t.kind {
                TaskKind::Command { argv } => process(
                    argv[0].clone().into(),
                    argv[1..].iter().map(Into::into).collect(),
                ),
                TaskKind::Python { target, args } => {
                    let mut a: Vec<std::ffi::OsString> = match target {
                        PythonTarget::Script(p) => vec![p.clone().into()],
                        PythonTarget::Module(m) => vec!["-m".into(), m.into()],
                    };
                    a.extend(args.iter().map(Into::into));
                    process(project.settings.python.clone().into(), a)
                }
                TaskKind::Spark {
                    app: SparkApp::Python(script),
                    args,
                    conf,
                    ..
                } if spark_mode_of(t, project, opts) == Some(SparkMode::Connect)
                    && let Some(server) = connect =>
                {
                    // The same script as a plain client of the shared server; its spark.sql.*
                    // settings reach the session through PySpark's own start-up options.
                    let mut a: Vec<std::ffi::OsString> = vec![script.clone().into()];
                    a.extend(args.iter().map(Into::into));
                    let mut spec = spec(project.settings.python.clone().into(), a);
                    spec.env.push(("SPARK_REMOTE".into(), server.url()));
                    if !conf.is_empty() {
                        spec.env.extend([
                            ("PYSPARK_REMOTE_INIT_CONF_LEN".into(), "1".into()),
                            (
                                "PYSPARK_REMOTE_INIT_CONF_0".into(),
                                serde_json::to_string(conf).unwrap_or_default(),
                            ),
                        ]);
                    }
                    Action::Process(spec)
                }
                TaskKind::Spark {
                    app,
                    args,
                    conf,
                    driver_memory,
                    ..
                } => match &env.spark {
                    Some(spark) => {
                        let mut a: Vec<std::ffi::OsString> = Vec::new();
                        if let Some(m) = driver_memory {
                            a.extend(["--driver-memory".into(), m.into()]);
                        }
                        for (k, v) in conf {
                            a.extend(["--conf".into(), format!("{k}={v}").into()]);
                        }
                        match app {
                            SparkApp::Python(script) => a.push(script.clone().into()),
                            SparkApp::Jar { jar, main_class } => {
                                a.extend(["--class".into(), main_class.into(), jar.clone().into()])
                            }
                        }
                        a.extend(args.iter().map(Into::into));
                        process(spark.install.spark_home.join("bin/spark-submit").into(), a)
                    }
                    // Planning starts spark for every spark task; this cannot be reached.
                    None => process("false".into(), vec![]),
                },
                TaskKind::Sql { source, .. } => match &env.postgres {
                    Some(ep) => Action::Sql {
                        endpoint: ep.clone(),
                        text: source.text.clone(),
                        origin: source.origin.clone(),
                    },
                    // Planning starts postgres for every sql task; this cannot be reached.
                    None => process("false".into(), vec![]),
                },
            };
            ExecTask {
                id: t.id.clone(),
                deps,
                timeout: t.timeout,
                retries: t.retries,
                action,
            }
        })
        .collect()
}

async fn read_sink(
    sink: &Sink,
    env: &Environment,
    scratch: &Path,
    events: &Events,
) -> Result<String, String> {
    let header = Header {
        sink: sink.name.clone(),
        source: sink.describe(),
    };
    let located = |e: String| format!("{}: {e}", sink.origin);
    match &sink.spec {
        SinkSpec::Postgres {
            query,
            key,
            float_digits,
            ..
        } => {
            let pg = env.postgres.as_ref().ok_or("postgres is not running")?;
            let mut table = pg.read(query).await?;
            table::redact_table(&mut table, &sink.redact).map_err(located)?;
            table.render(&header, key, *float_digits).map_err(located)
        }
        SinkSpec::Redis {
            pattern,
            decode_json,
            float_digits,
        } => {
            let r = env.redis.as_ref().ok_or("redis is not running")?;
            let text = r
                .read(pattern)
                .await?
                .render(&header, *decode_json, *float_digits);
            Ok(table::redact_lines(&text, &sink.redact))
        }
        SinkSpec::Hive {
            table,
            key,
            float_digits,
        } => {
            let mut session = env.spark_session(events).await.map_err(|e| e.to_string())?;
            let mut rows = session
                .read_table(table, scratch)
                .await
                .map_err(|e| e.message)?;
            table::redact_table(&mut rows, &sink.redact).map_err(located)?;
            rows.render(&header, key, *float_digits).map_err(located)
        }
        SinkSpec::Hdfs {
            path,
            format,
            key,
            float_digits,
        } => {
            let hdfs = env.hdfs.as_ref().ok_or("hdfs is not running")?;
            let files = hdfs.list(path)?;
            let mut out = String::new();
            header.write(&mut out);
            out.push_str(&crate::services::hdfs::render_listing(
                &files,
                format.is_some(),
            ));
            let mut out = table::redact_lines(&out, &sink.redact);
            if let Some(f) = format {
                let mut session = env.spark_session(events).await.map_err(|e| e.to_string())?;
                let mut rows = session
                    .read_path(&hdfs.url_of(path), *f, scratch)
                    .await
                    .map_err(|e| e.message)?;
                table::redact_table(&mut rows, &sink.redact).map_err(located)?;
                out.push_str(&rows.render_rows(key, *float_digits).map_err(located)?);
            }
            Ok(out)
        }
    }
}

fn compare_sink(
    sink: &Sink,
    rendered: Result<String, String>,
    policy: WritePolicy,
    report_dir: &Path,
    mirror: &Option<(PathBuf, PathBuf)>,
    events: &Events,
) -> SinkOutcome {
    let mut outcome = SinkOutcome {
        name: sink.name.clone(),
        golden: sink.golden.clone(),
        origin: sink.origin.clone(),
        result: SinkResult::Matched,
        pending: None,
        source: sink.describe(),
        writers: sink.writers.clone(),
        tolerated: 0,
    };
    let actual = match rendered {
        Ok(a) => a,
        Err(e) => {
            outcome.result = SinkResult::ReadFailed(e);
            return outcome;
        }
    };
    let snap_dir = report_dir.join("snapshots");
    let _ = std::fs::create_dir_all(&snap_dir)
        .and_then(|()| std::fs::write(snap_dir.join(format!("{}.snap", sink.name)), &actual));
    let golden_name = sink
        .golden
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let golden = match golden::read(&sink.golden) {
        Ok(g) => g,
        Err(e) => {
            outcome.result = SinkResult::ReadFailed(format!(
                "cannot read golden {}: {e}",
                sink.golden.display()
            ));
            return outcome;
        }
    };
    // A table sink explains a difference row by row; with a tolerance, a difference made only of
    // values within it passes (and the golden is left as it is).
    let table_rules = sink.is_table().then(|| (sink.key(), &sink.tolerance));
    let (diff, table_diff) = match golden.as_deref() {
        Some(g) => diff::explain(g, &actual, &golden_name, table_rules),
        None => (None, None),
    };
    let diff = match &table_diff {
        Some(t) if !sink.tolerance.is_empty() && t.passes() => {
            outcome.tolerated = t.tolerated;
            None
        }
        _ => diff,
    };
    if golden.is_some() && diff.is_none() {
        if policy != WritePolicy::Nothing {
            let _ = golden::remove_pending(&sink.golden);
        }
        return outcome;
    }
    if let Some(d) = &diff {
        let diffs = report_dir.join("diffs");
        let _ = std::fs::create_dir_all(&diffs)
            .and_then(|()| std::fs::write(diffs.join(format!("{}.diff", sink.name)), d));
    }
    outcome.result = match policy {
        WritePolicy::Update => match golden::write_atomic(&sink.golden, &actual) {
            Ok(()) => {
                let _ = golden::remove_pending(&sink.golden);
                events.notice(format!("wrote golden {}", sink.golden.display()));
                SinkResult::Updated { diff }
            }
            Err(e) => SinkResult::ReadFailed(format!(
                "cannot write golden {}: {e}",
                sink.golden.display()
            )),
        },
        WritePolicy::Pending | WritePolicy::Nothing => {
            let pending = match mirror {
                _ if policy == WritePolicy::Pending => Some(golden::pending_path(&sink.golden)),
                Some((root, dir)) => sink
                    .golden
                    .strip_prefix(root)
                    .ok()
                    .map(|rel| golden::pending_path(&dir.join(rel))),
                None => None,
            };
            if let Some(pending) = pending {
                let written = pending
                    .parent()
                    .map_or(Ok(()), std::fs::create_dir_all)
                    .and_then(|()| golden::write_atomic(&pending, &actual));
                if written.is_ok() {
                    outcome.pending = Some(pending);
                }
            }
            match diff {
                Some(diff) => SinkResult::Differs {
                    diff,
                    table: table_diff,
                },
                None => SinkResult::NoGolden,
            }
        }
    };
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environments_are_capped_by_scenarios_and_memory() {
        // As asked when memory allows.
        assert_eq!(environments(4, 10, 1000, Some(16_000)), 4);
        // Never more than there are scenarios.
        assert_eq!(environments(4, 2, 1000, Some(16_000)), 2);
        // Three quarters of 4000 MB hold three environments of 1000 MB.
        assert_eq!(environments(8, 10, 1000, Some(4000)), 3);
        // Too little memory for even one still runs one.
        assert_eq!(environments(4, 10, 5000, Some(1000)), 1);
        // Unknown memory: as asked.
        assert_eq!(environments(3, 10, 5000, None), 3);
    }
}
