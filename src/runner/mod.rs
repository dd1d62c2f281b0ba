//! One run, stage by stage: plan the services → start the environment → for each scenario:
//! reset, seed, run the DAG, read the sinks, compare with the goldens → stop the environment.
//! Each stage consumes the previous one's output; progress leaves as events, results as a
//! `RunOutcome` that the reporters render.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

pub mod plan;
mod step;
pub mod tasks;

use crate::backend::{Environment, InfraError, Resolved};
use crate::config::{ExpectedFailure, Project, Scenario, ServiceKind, SparkMode};
use crate::dag;
use crate::events::{Event, Events};
use crate::outcome::{
    RunOutcome, ScenarioOutcome, ScenarioStatus, SinkOutcome, TaskStatus, Timings, summary_line,
};
use crate::services::spark::SparkRunning;
use crate::snapshot::golden::WritePolicy;
use crate::snapshot::store::Store;
use plan::ScenarioPlan;
use step::Stage;

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
    /// Environments running scenarios at once, at most; `None` for `-j auto` (as many as the
    /// scenarios, the memory and the cores allow).
    pub jobs: Option<usize>,
    /// `--spark-mode`: how `spark` tasks run, over their own `spark_mode` and harness.toml's.
    pub spark_mode: Option<SparkMode>,
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
    run_with(project, scenarios, opts, None, events, cancel).await
}

/// Runs the scenarios one after another on `env`, a started environment that stays up after
/// them (a kept environment): reset before each scenario as on an environment of the run's own.
/// `opts.jobs` does not apply.
pub async fn run_on(
    project: &Project,
    scenarios: &[&Scenario],
    opts: &RunOptions,
    env: &Environment,
    events: &Events,
    cancel: &CancellationToken,
) -> RunOutcome {
    run_with(project, scenarios, opts, Some(env), events, cancel).await
}

/// The services `env` lacks of those the scenarios need.
pub fn missing_services(
    project: &Project,
    scenarios: &[&Scenario],
    opts: &RunOptions,
    env: &Environment,
) -> Vec<ServiceKind> {
    let plan = plan::plan(project, scenarios, opts.spark_mode, opts.task_jobs);
    plan.services
        .into_iter()
        .filter(|k| !env.started.iter().any(|r| r.kind() == *k))
        .collect()
}

/// Starts ahead what the scenarios' runs would otherwise start on first use on `env`: the Spark
/// Connect server when a task runs in connect mode. (The harness's Spark session is not: the
/// Hive seeds and sinks the harness handles itself do not need it; it starts on the first one
/// that does, and stays with the environment.)
pub async fn warm(
    project: &Project,
    scenarios: &[&Scenario],
    opts: &RunOptions,
    env: &Environment,
    events: &Events,
) -> Result<(), InfraError> {
    let plan = plan::plan(project, scenarios, opts.spark_mode, opts.task_jobs);
    let Some(spark) = env.get::<SparkRunning>() else {
        return Ok(());
    };
    if plan.connect {
        spark.session_on_connect();
        spark.connect_server(events).await?;
    }
    Ok(())
}

async fn run_with(
    project: &Project,
    scenarios: &[&Scenario],
    opts: &RunOptions,
    kept: Option<&Environment>,
    events: &Events,
    cancel: &CancellationToken,
) -> RunOutcome {
    let started = Instant::now();
    events.emit(Event::RunStarted {
        scenarios: scenarios.len(),
        backend: format!("{} ({})", opts.backend.kind.name(), opts.backend.reason),
    });
    let plan = plan::plan(project, scenarios, opts.spark_mode, opts.task_jobs);
    let per_env = plan.memory_mb;
    let available = available_memory_mb();
    let machine = plan.machine_cores;
    let jobs = environments(
        if kept.is_some() { Some(1) } else { opts.jobs },
        scenarios.len(),
        (per_env, available),
        (plan.cores, machine),
    );
    if kept.is_none() && (jobs > 1 || opts.jobs != Some(1)) {
        let asked = opts
            .jobs
            .map_or("-j auto".to_string(), |j| format!("asked for {j}"));
        events.notice(format!(
            "{jobs} environment{} at once ({asked}; each needs about {per_env} MB of {} MB available, and {} of {machine} cores: {})",
            if jobs == 1 { "" } else { "s" },
            available.map_or("unknown".to_string(), |a| a.to_string()),
            plan.cores,
            plan.cores_why,
        ));
    }

    let queue = std::sync::Mutex::new(plan.scenarios.iter().enumerate());
    let workers = (0..jobs).map(|_| worker(project, &plan, &queue, opts, kept, events, cancel));
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
                    error: Some(format!(
                        "not run: {} {}",
                        e.service,
                        if e.stopped {
                            "stopped"
                        } else {
                            "did not start"
                        }
                    )),
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

type Queue<'a, 'p> = std::sync::Mutex<std::iter::Enumerate<std::slice::Iter<'a, ScenarioPlan<'p>>>>;

/// Starts one environment (or takes `kept`, started before), runs scenarios from the queue on
/// it until the queue is empty, and stops it (but not `kept`).
async fn worker(
    project: &Project,
    plan: &plan::RunPlan<'_>,
    queue: &Queue<'_, '_>,
    opts: &RunOptions,
    kept: Option<&Environment>,
    events: &Events,
    cancel: &CancellationToken,
) -> WorkerResult {
    let mut result = WorkerResult {
        outcomes: vec![],
        timings: Timings::default(),
        infra_error: None,
    };
    // The Airflow drivers of this environment, one per DAG: the one of the next scenario starts
    // with the environment, the others with the first scenario that needs each.
    let drivers = dag::airflow::Drivers::default();
    let owned = match kept {
        Some(_) => None,
        None => {
            let next = queue
                .lock()
                .ok()
                .and_then(|q| q.clone().next())
                .map(|(_, s)| s);
            let early = Early {
                next,
                drivers: &drivers,
            };
            match start_environment(
                project,
                &plan.services,
                opts,
                events,
                cancel,
                &mut result,
                early,
            )
            .await
            {
                Some(env) => Some(env),
                None => return result,
            }
        }
    };
    let Some(env) = kept.or(owned.as_ref()) else {
        return result;
    };
    // Tasks run on a Spark Connect server: the harness's own session is one of its clients,
    // not a second Spark driver.
    if plan.connect
        && let Some(spark) = env.get::<SparkRunning>()
    {
        spark.session_on_connect();
    }
    loop {
        if cancel.is_cancelled() {
            break;
        }
        let next = queue.lock().map(|mut q| q.next()).unwrap_or(None);
        let Some((i, s)) = next else { break };
        // A service that stops while the scenario runs ends the scenario (its tasks are killed
        // with their groups as the scenario is dropped) and the environment.
        let outcome = tokio::select! {
            outcome = run_with_retries(project, s, env, &drivers, opts, events, cancel) => outcome,
            died = env.died() => {
                let outcome = ScenarioOutcome {
                    status: ScenarioStatus::InfraError,
                    error: Some(died.to_string()),
                    ..not_run(s.scenario, opts)
                };
                result.infra_error = Some(died);
                outcome
            }
        };
        // A task that failed because a service died is the service's failure, not the task's.
        let dead = match outcome.status {
            ScenarioStatus::Failed | ScenarioStatus::InfraError => {
                env.dead_service_after_failure().await
            }
            _ => env.dead_service().await,
        };
        let outcome = match dead {
            Some(died) if result.infra_error.is_none() => {
                let outcome = ScenarioOutcome {
                    status: ScenarioStatus::InfraError,
                    error: Some(died.to_string()),
                    ..outcome
                };
                result.infra_error = Some(died);
                outcome
            }
            _ => outcome,
        };
        events.emit(Event::ScenarioFinished {
            scenario: outcome.name.clone(),
            passed: outcome.status == ScenarioStatus::Passed,
            flaky: outcome.flaky(),
            summary: summary_line(&outcome),
            elapsed: outcome.elapsed,
        });
        result.timings.add(&outcome.timings);
        result.outcomes.push((i, outcome));
        if result.infra_error.is_some() {
            break;
        }
    }
    let t0 = Instant::now();
    drivers.stop().await;
    if let Some(env) = owned {
        env.stop().await;
    }
    result.timings.services += t0.elapsed();
    result
}

/// The Airflow driver to start with an environment: that of the DAG of `next`, the scenario
/// the environment will likely run first.
struct Early<'a, 'p> {
    next: Option<&'a ScenarioPlan<'p>>,
    drivers: &'a dag::airflow::Drivers,
}

impl Early<'_, '_> {
    /// Starts the driver when `next` runs through an Airflow DAG. A driver that cannot start
    /// here is left to the scenario, which starts it again and says why when it cannot.
    async fn start(&self, project: &Project, env_dir: &Path) {
        let Some(next) = self.next else { return };
        if let Some(Ok((key, spec))) = tasks::early_driver(project, next, env_dir) {
            let _ = self.drivers.start_early(&key, &spec).await;
        }
    }

    /// Gives the driver started early the variables of the services now up: it parses the DAG
    /// again with them (it parsed it with placeholders while they started) while the first
    /// scenario resets and seeds. What cannot be done here is left to the scenario, as in
    /// [`Early::start`].
    async fn load(&self, project: &Project, env: &Environment) {
        let Some(next) = self.next else { return };
        if let Some(Ok((key, spec))) = tasks::env_driver(project, next, env) {
            let _ = self.drivers.start(&key, &spec).await;
        }
    }
}

/// Starts the environment of one worker in a new folder, and the Airflow driver of `early`
/// while its services start; `None` (with `result.infra_error` set, unless cancelled) when it
/// did not come up.
async fn start_environment(
    project: &Project,
    services: &[ServiceKind],
    opts: &RunOptions,
    events: &Events,
    cancel: &CancellationToken,
    result: &mut WorkerResult,
    early: Early<'_, '_>,
) -> Option<Environment> {
    let env_dir = match crate::ledger::make_dir(&std::env::temp_dir(), "harness-env-") {
        Ok(d) => d,
        Err(e) => {
            result.infra_error = Some(InfraError {
                stopped: false,
                service: "environment".into(),
                message: format!("cannot create a temporary folder: {e}"),
                log_tail: vec![],
            });
            return None;
        }
    };
    let t0 = Instant::now();
    early.start(project, &env_dir).await;
    let env = tokio::select! {
        env = Environment::start(services, &project.settings, opts.backend.kind, &env_dir, events) => env,
        () = cancel.cancelled() => {
            // The services half up were killed with their groups when their starts were
            // dropped; what they started must be gone before their folder goes.
            if let Some(l) = crate::ledger::current() {
                l.kill_own();
            }
            let _ = std::fs::remove_dir_all(&env_dir);
            return None;
        }
    };
    result.timings.services += t0.elapsed();
    let env = match env {
        Ok(env) => env,
        Err(e) => {
            // The driver writes into the environment's folder: what it wrote goes after it.
            early.drivers.stop().await;
            let _ = std::fs::remove_dir_all(&env_dir);
            result.infra_error = Some(e);
            return None;
        }
    };
    early.load(project, &env).await;
    Some(env)
}

/// Memory the kernel says is available for new work, in MB.
pub fn available_memory_mb() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024)
}

/// How many environments to run at once: what was asked (`None`: as many as there are
/// scenarios), no more than there are scenarios, than three quarters of the available memory
/// holds (`memory`: MB one environment needs, MB available), and than the machine's cores hold
/// (`cores`: cores one environment keeps busy, cores of the machine; an environment that keeps
/// none busy is not limited by them). Never fewer than one.
pub fn environments(
    requested: Option<usize>,
    scenarios: usize,
    memory: (u64, Option<u64>),
    cores: (u32, u32),
) -> usize {
    let by_memory = match memory {
        (per_env, Some(avail)) if per_env > 0 => (avail * 3 / 4 / per_env) as usize,
        _ => usize::MAX,
    };
    let by_cores = match cores {
        (0, _) => usize::MAX,
        (per_env, machine) => (machine / per_env) as usize,
    };
    requested
        .unwrap_or(scenarios)
        .min(scenarios)
        .min(by_memory)
        .min(by_cores)
        .max(1)
}

/// Runs a scenario, and again up to `opts.retries` times while it fails (a diff or a task
/// failure; not bad input, a broken service or an interruption). The report folder of each failed
/// attempt is kept beside the last one as `<scenario>.attempt-N`.
async fn run_with_retries(
    project: &Project,
    plan: &ScenarioPlan<'_>,
    env: &Environment,
    drivers: &dag::airflow::Drivers,
    opts: &RunOptions,
    events: &Events,
    cancel: &CancellationToken,
) -> ScenarioOutcome {
    let scenario = plan.scenario;
    let mut failed = Vec::new();
    let mut timings = Timings::default();
    let mut elapsed = Duration::ZERO;
    loop {
        let outcome = run_scenario(project, plan, env, drivers, opts, events, cancel).await;
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
            // The failed attempt's logs and diffs are the evidence of a flaky scenario: losing
            // them is said, not hidden.
            if let Err(e) =
                remove_dir_if_any(&kept).and_then(|()| std::fs::rename(&outcome.report_dir, &kept))
            {
                events.notice(format!(
                    "warning: cannot keep the report of attempt {attempt} as {}: {e}",
                    kept.display()
                ));
            }
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
    plan: &ScenarioPlan<'_>,
    env: &Environment,
    drivers: &dag::airflow::Drivers,
    opts: &RunOptions,
    events: &Events,
    cancel: &CancellationToken,
) -> ScenarioOutcome {
    let scenario = plan.scenario;
    let started = Instant::now();
    events.emit(Event::ScenarioStarted {
        scenario: scenario.name.clone(),
    });
    let report_dir = opts.report_dir.join(&scenario.name.0);
    if let Err(e) = remove_dir_if_any(&report_dir) {
        events.notice(format!(
            "warning: cannot clear the previous report {}: {e}; its files may mix with this run's",
            report_dir.display()
        ));
    }
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
    let t0 = Instant::now();
    let reset = env.reset(events).await;
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

    let work_dir = env.dir.join("work").join(&scenario.name.0);
    if let Err(e) = remove_dir_if_any(&work_dir) {
        events.notice(format!(
            "warning: cannot clear the work folder {}: {e}",
            work_dir.display()
        ));
    }
    if let Err(e) = std::fs::create_dir_all(&work_dir) {
        return finish(
            out,
            ScenarioStatus::InfraError,
            Some(format!("cannot create {}: {e}", work_dir.display())),
            started,
            events,
        );
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
    let store = Store {
        policy,
        report_dir: &report_dir,
        mirror: mirror.as_ref().map(|(a, b)| (a.as_path(), b.as_path())),
    };
    let stage = Stage {
        project,
        plan,
        env,
        drivers,
        opts,
        events,
        cancel,
        work_dir: &work_dir,
        report_dir: &report_dir,
        store: &store,
        started,
    };
    // The steps in order, on the same environment: a step whose task fails ends the scenario.
    let mut connect = None;
    for index in 0..scenario.steps.len() {
        if let Err((status, error)) = stage.run_step(index, &mut connect, &mut out).await {
            return finish(out, status, error, started, events);
        }
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

/// Removes a folder and everything in it; one that is not there is not an error.
fn remove_dir_if_any(dir: &Path) -> std::io::Result<()> {
    match std::fs::remove_dir_all(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
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
                // A task of a named step is `<step>/<task>`.
                ExpectedFailure::Task(t) => out.tasks.iter().any(|o| {
                    (&o.id == t || o.id.0.ends_with(&format!("/{t}")))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environments_are_capped_by_scenarios_and_memory() {
        let no_spark = (0, 2);
        // As asked when memory allows.
        assert_eq!(environments(Some(4), 10, (1000, Some(16_000)), no_spark), 4);
        // Never more than there are scenarios.
        assert_eq!(environments(Some(4), 2, (1000, Some(16_000)), no_spark), 2);
        // Three quarters of 4000 MB hold three environments of 1000 MB.
        assert_eq!(environments(Some(8), 10, (1000, Some(4000)), no_spark), 3);
        // Too little memory for even one still runs one.
        assert_eq!(environments(Some(4), 10, (5000, Some(1000)), no_spark), 1);
        // Unknown memory: as asked.
        assert_eq!(environments(Some(3), 10, (5000, None), no_spark), 3);
    }

    #[test]
    fn environments_are_capped_by_cores_and_auto_takes_what_the_machine_holds() {
        let plenty = (1000, Some(64_000));
        // Two cores of Spark local[2] per environment: a 2-core machine runs one, also when
        // two are asked for; an 8-core machine runs four.
        assert_eq!(environments(Some(2), 10, plenty, (2, 2)), 1);
        assert_eq!(environments(None, 10, plenty, (2, 2)), 1);
        assert_eq!(environments(None, 10, plenty, (2, 8)), 4);
        // Auto: as many as there are scenarios when nothing else limits.
        assert_eq!(environments(None, 3, plenty, (0, 2)), 3);
        // More cores per environment than the machine has: still one.
        assert_eq!(environments(None, 10, plenty, (4, 2)), 1);
    }
}
