//! One step of a scenario on its environment: its seeds, its tasks (spark-submit, Python,
//! commands and SQL through the executor, or a DagRun through Airflow), then the sinks read after
//! it, each compared with its golden through the store.

use std::path::{Path, PathBuf};
use std::time::Instant;

use tokio_util::sync::CancellationToken;

use super::plan::ScenarioPlan;
use super::{RunOptions, tasks};
use crate::backend::Environment;
use crate::config::scenario::Step;
use crate::config::{ConfigError, Project, Seed, Sink};
use crate::dag;
use crate::dag::executor::{self, ExecContext};
use crate::events::Events;
use crate::outcome::{ScenarioOutcome, ScenarioStatus, SinkOutcome, TaskStatus};
use crate::services::ServiceError;
use crate::services::spark::connect::ConnectEndpoint;
use crate::snapshot::store::{Rules, Store};

/// What every step of one scenario shares.
pub(super) struct Stage<'a, 'p> {
    pub(super) project: &'a Project,
    pub(super) plan: &'a ScenarioPlan<'p>,
    pub(super) env: &'a Environment,
    pub(super) drivers: &'a dag::airflow::Drivers,
    pub(super) opts: &'a RunOptions,
    pub(super) events: &'a Events,
    pub(super) cancel: &'a CancellationToken,
    pub(super) work_dir: &'a Path,
    pub(super) report_dir: &'a Path,
    pub(super) store: &'a Store<'a>,
    pub(super) started: Instant,
}

/// How a step ended a scenario early: its status and error.
pub(super) type StepEnd = (ScenarioStatus, Option<String>);

impl Stage<'_, '_> {
    /// Runs step `index`: its seeds (the first step also those of the whole scenario), its
    /// tasks, then the sinks read after it (the last step also those of the whole scenario).
    /// `connect` is the Spark Connect server, started with the first step's seeds.
    pub(super) async fn run_step(
        &self,
        index: usize,
        connect: &mut Option<ConnectEndpoint>,
        out: &mut ScenarioOutcome,
    ) -> Result<(), StepEnd> {
        let (scenario, env, events) = (self.plan.scenario, self.env, self.events);
        let step = &scenario.steps[index];
        let first = index == 0;
        let last = index + 1 == scenario.steps.len();
        let in_step = |at: Option<usize>, whole: bool| at == Some(index) || (at.is_none() && whole);
        // A DAG run through Airflow: the environment's driver of this DAG loads Airflow and the
        // DAG while the seeds go in (the first time; later scenarios find it ready).
        let airflow = match &self.plan.pipeline.airflow {
            None => None,
            Some(dag) => {
                let prepared = match tasks::airflow_run(
                    self.project,
                    self.plan,
                    step,
                    dag,
                    env,
                    self.work_dir,
                    self.opts.task_jobs,
                ) {
                    Ok(run) => self
                        .drivers
                        .start(&run.key, &run.driver)
                        .await
                        .map(|()| run),
                    Err(e) => Err(e),
                };
                match prepared {
                    Ok(run) => Some(run),
                    Err(e) => {
                        let e = format!("cannot start Airflow ({}): {e}", dag.python.display());
                        return Err((ScenarioStatus::InfraError, Some(e)));
                    }
                }
            }
        };

        let t0 = Instant::now();
        // The Spark Connect server, when a task runs on it, comes up while the first seeds go in.
        let seeding = async {
            for seed in scenario.seeds.iter().filter(|s| in_step(s.step, first)) {
                run_seed(seed, env, events).await?;
            }
            Ok(())
        };
        let starting = async {
            match first {
                true => tasks::start_connect_if_used(self.plan, env, events).await,
                false => Ok(None),
            }
        };
        let (seeded, started_connect) = tokio::join!(seeding, starting);
        out.timings.seed += t0.elapsed();
        if let Err(e) = seeded {
            return Err(match e {
                ServiceError::Input { origin, message } => {
                    let err = ConfigError::at_origin(origin, format!("seed rejected: {message}"));
                    out.input_error = Some(err.clone());
                    (ScenarioStatus::InputError, Some(err.to_string()))
                }
                other => (
                    ScenarioStatus::InfraError,
                    Some(format!("{}seeding failed: {other}", step_prefix(step))),
                ),
            });
        }
        match started_connect {
            Ok(Some(c)) => *connect = Some(c),
            Ok(None) => {}
            Err(e) => return Err((ScenarioStatus::InfraError, Some(e.to_string()))),
        }

        let ctx = ExecContext {
            scenario: scenario.name.clone(),
            log_dir: self.report_dir.join("tasks"),
            max_parallel: self.opts.task_jobs,
            events: events.clone(),
            cancel: self.cancel.clone(),
        };
        let t0 = Instant::now();
        let mut dag_error = None;
        let ran = if let Some(run) = airflow {
            let request = dag::airflow::Request {
                key: &run.key,
                spec_file: &run.spec_file,
                env: &run.env,
                tasks: &run.tasks,
                timeouts: &run.timeouts,
                limit: run.limit,
                step: step.name.as_deref(),
            };
            let result = dag::airflow::run(self.drivers, &request, &ctx).await;
            if out.timings.first_task.is_none() {
                out.timings.first_task = result.first_task_at.map(|at| at - self.started);
            }
            dag_error = result.error;
            result.tasks
        } else {
            let tasks = tasks::exec_tasks(
                self.project,
                self.plan,
                step,
                env,
                self.work_dir,
                connect.as_ref(),
            );
            let ran = executor::run(tasks, &ctx).await;
            if out.timings.first_task.is_none() {
                out.timings.first_task = ran
                    .iter()
                    .filter(|t| !t.attempts.is_empty())
                    .map(|t| (t0 + t.started) - self.started)
                    .min();
            }
            ran
        };
        out.tasks.extend(ran);
        out.timings.tasks += t0.elapsed();

        if self.cancel.is_cancelled() {
            return Err((ScenarioStatus::Cancelled, None));
        }
        // The DagRun's own failure (the DAG no longer imports, the driver died) is the news when
        // no task failed by itself.
        if let Some(e) = dag_error
            && !out
                .tasks
                .iter()
                .any(|t| matches!(t.status, TaskStatus::Failed(_) | TaskStatus::TimedOut(_)))
        {
            return Err((
                ScenarioStatus::Failed,
                Some(format!("{}{e}", step_prefix(step))),
            ));
        }
        let failed = out.tasks.iter().find(|t| {
            !matches!(
                t.status,
                TaskStatus::Succeeded | TaskStatus::Skipped { .. } | TaskStatus::SkippedByDag
            )
        });
        if let Some(failed) = failed.or_else(|| out.tasks.iter().find(|t| !t.status.ok())) {
            let msg = format!("task `{}` {}", failed.id, failed.status);
            return Err((ScenarioStatus::Failed, Some(msg)));
        }

        for sink in scenario.sinks.iter().filter(|s| in_step(s.step, last)) {
            let t0 = Instant::now();
            let scratch = env.dir.join("work").join(format!(
                "{}.{}.rows.jsonl",
                scenario.name,
                sink.name.replace('/', ".")
            ));
            let rendered = read_sink(sink, env, scratch, events).await;
            out.timings.read += t0.elapsed();
            let t0 = Instant::now();
            let outcome = compare_sink(sink, rendered, self.store, events);
            out.timings.compare += t0.elapsed();
            out.sinks.push(outcome);
        }
        Ok(())
    }
}

/// `step `<name>`: ` before a message about a named step.
fn step_prefix(step: &Step) -> String {
    step.name
        .as_ref()
        .map_or_else(String::new, |n| format!("step `{n}`: "))
}

/// Loads one seed into the running service of its kind.
async fn run_seed(seed: &Seed, env: &Environment, events: &Events) -> Result<(), ServiceError> {
    let kind = seed.service();
    let running = env
        .started
        .of(kind)
        .ok_or_else(|| ServiceError::Unavailable {
            service: kind.name(),
            message: "not started".into(),
        })?;
    let ctx = env.data_context(events, env.dir.join("work").join("seed.rows"));
    running.seed(seed, &ctx).await
}

/// Reads one sink from the running service of its kind, as its canonical snapshot.
async fn read_sink(
    sink: &Sink,
    env: &Environment,
    scratch: PathBuf,
    events: &Events,
) -> Result<String, String> {
    let kind = sink.service();
    let running = env
        .started
        .of(kind)
        .ok_or_else(|| format!("{kind} is not running"))?;
    running.read(sink, &env.data_context(events, scratch)).await
}

/// Compares a sink's snapshot with its golden through the store, which applies the write policy.
fn compare_sink(
    sink: &Sink,
    rendered: Result<String, String>,
    store: &Store<'_>,
    events: &Events,
) -> SinkOutcome {
    let rules = Rules {
        table: sink.is_table().then(|| (sink.key(), &sink.tolerance)),
        ranking: sink.compare.as_ref().map(|r| (r, &sink.tolerance)),
    };
    let settled = store.settle(&sink.name, &sink.golden, rules, rendered, events);
    SinkOutcome {
        name: sink.name.clone(),
        golden: sink.golden.clone(),
        origin: sink.origin.clone(),
        result: settled.result,
        pending: settled.pending,
        source: sink.describe(),
        writers: sink.writers.clone(),
        tolerated: settled.tolerated,
        ranking: settled.ranking,
    }
}
