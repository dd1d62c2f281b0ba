//! Runs a scenario's DAG through Airflow: one driver process per environment and DAG (see
//! `crate::airflow`), started when the first scenario that needs it starts so that Airflow loads
//! while the seeds go in, then asked to run one DagRun per scenario (each in a child it forks).
//! Every task state change it reports becomes the harness's own task event as it happens, every
//! line a task writes is streamed with the task's name and kept in the task's log, and the end
//! of each task becomes a `TaskOutcome` like a `pipeline.toml` task's.
//!
//! Airflow decides what runs (trigger rules, branches, retries); the harness only watches, and
//! kills: a task past its time limit loses its whole process tree (the driver does that, and
//! Airflow then retries or fails it), and a DagRun past its limit, or a cancelled run, loses the
//! driver's whole process group (a later scenario starts a new driver).

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt as _;

use super::executor::ExecContext;
use crate::airflow::DriverEvent;
use crate::events::Event;
use crate::names::TaskId;
use crate::outcome::{Attempt, TaskOutcome, TaskStatus};
use crate::process::{Exit, ProcessSpec, Spawned, Stream};
use crate::redact::redact_owned;

/// A selected task of the DAG, as the harness knows it.
#[derive(Debug, Clone)]
pub struct DagTaskRef {
    /// Its id.
    pub id: TaskId,
    /// Its direct upstream tasks (selected or not).
    pub upstream: Vec<TaskId>,
}

/// How a DagRun ended, besides its tasks.
#[derive(Debug, Clone)]
pub struct DagRunResult {
    /// One outcome per selected task, in the order given.
    pub tasks: Vec<TaskOutcome>,
    /// Why the run as a whole failed, when no task outcome says it (the DagRun failed with
    /// every task fine, the driver died, the DAG no longer imports).
    pub error: Option<String>,
    /// When the first task started running.
    pub first_task_at: Option<Instant>,
}

/// The drivers of one environment, by DAG file and id; each is killed with its process group
/// when dropped.
#[derive(Debug, Default)]
pub struct Drivers {
    running: tokio::sync::Mutex<BTreeMap<(PathBuf, String), Driver>>,
}

/// A driver process, whether it said it is ready, and whether it waits for the services'
/// variables before it parses the DAG.
#[derive(Debug)]
struct Driver {
    spawned: Spawned,
    ready: bool,
    waiting: bool,
}

impl Driver {
    /// Starts the process of `spec`, in a process group of its own, with a pipe to its standard
    /// input.
    fn start(spec: &ProcessSpec, waiting: bool) -> std::io::Result<Driver> {
        Ok(Driver {
            spawned: Spawned::start(spec, true)?,
            ready: false,
            waiting,
        })
    }
}

impl Drivers {
    /// Starts the driver of `key` with `spec` (`python harness_airflow.py serve ...
    /// --wait-load`) before the environment's services are up, unless one runs already: it
    /// loads Airflow and writes the DAG into its database meanwhile, and parses the DAG again
    /// when [`Drivers::start`] gives it the services' variables.
    pub async fn start_early(
        &self,
        key: &(PathBuf, String),
        spec: &ProcessSpec,
    ) -> std::io::Result<()> {
        let mut running = self.running.lock().await;
        if !running.contains_key(key) {
            running.insert(key.clone(), Driver::start(spec, true)?);
        }
        Ok(())
    }

    /// Starts the driver of `key` with `spec` (`python harness_airflow.py serve ...`) unless it
    /// runs already. A driver started early gets the variables of `spec` (those of the
    /// services among them) and parses the DAG; if it can no longer be told, it is stopped and
    /// `spec` started instead.
    pub async fn start(&self, key: &(PathBuf, String), spec: &ProcessSpec) -> std::io::Result<()> {
        let mut running = self.running.lock().await;
        if let Some(driver) = running.get_mut(key)
            && driver.waiting
        {
            driver.waiting = false;
            let line = serde_json::json!({
                "load": {"env": spec.env.iter().cloned().collect::<BTreeMap<String, String>>()},
            })
            .to_string()
                + "\n";
            if send(&mut driver.spawned, &line).await.is_err()
                && let Some(dead) = running.remove(key)
            {
                dead.spawned.terminate().await;
            }
        }
        if !running.contains_key(key) {
            running.insert(key.clone(), Driver::start(spec, false)?);
        }
        Ok(())
    }

    /// Stops every driver (SIGTERM, then SIGKILL).
    pub async fn stop(&self) {
        let drivers = std::mem::take(&mut *self.running.lock().await);
        for (_, d) in drivers {
            d.spawned.terminate().await;
        }
    }
}

/// Writes `line` to the driver's standard input.
async fn send(spawned: &mut Spawned, line: &str) -> std::io::Result<()> {
    match spawned.stdin.as_mut() {
        Some(stdin) => {
            stdin.write_all(line.as_bytes()).await?;
            stdin.flush().await
        }
        None => Err(std::io::Error::other("no standard input")),
    }
}

/// One DagRun to ask a driver for.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    /// The driver (DAG file, DAG id).
    pub key: &'a (PathBuf, String),
    /// The run's spec file.
    pub spec_file: &'a std::path::Path,
    /// Variables of this scenario only.
    pub env: &'a [(String, String)],
    /// The selected tasks.
    pub tasks: &'a [DagTaskRef],
    /// Per-task time limits, in seconds.
    pub timeouts: &'a BTreeMap<String, f64>,
    /// Limit of the whole DagRun.
    pub limit: Duration,
    /// The scenario's step this DagRun is, when it is a named one: its tasks are then called
    /// `<step>/<task>`.
    pub step: Option<&'a str>,
}

/// Tracks each task's attempts and status from the driver's events.
struct Tracker<'a> {
    ctx: &'a ExecContext,
    tasks: &'a [DagTaskRef],
    go: Instant,
    first_running: Option<Instant>,
    per_task: BTreeMap<String, TaskTrack>,
    dag_state: Option<String>,
    import_error: Option<String>,
    timeouts: &'a BTreeMap<String, f64>,
    step: Option<&'a str>,
}

struct TaskTrack {
    log_path: PathBuf,
    log: Option<std::io::BufWriter<std::fs::File>>,
    first_start: Option<Instant>,
    attempt_start: Option<Instant>,
    attempts: Vec<Attempt>,
    status: Option<TaskStatus>,
    timed_out: bool,
    last_error: Option<String>,
    end: Option<Instant>,
}

impl Tracker<'_> {
    /// The harness's name of an Airflow task: `<step>/<task>` in a named step.
    fn id(&self, task: &str) -> TaskId {
        match self.step {
            Some(step) => TaskId(format!("{step}/{task}")),
            None => TaskId(task.to_string()),
        }
    }

    fn track(&mut self, task: &str) -> Option<&mut TaskTrack> {
        if !self.per_task.contains_key(task) && self.tasks.iter().any(|t| t.id.0 == task) {
            let log_path = self.ctx.log_dir.join(format!("{}.log", self.id(task)));
            let log = std::fs::create_dir_all(log_path.parent().unwrap_or(&self.ctx.log_dir))
                .and_then(|()| std::fs::File::create(&log_path))
                .ok()
                .map(std::io::BufWriter::new);
            self.per_task.insert(
                task.to_string(),
                TaskTrack {
                    log_path,
                    log,
                    first_start: None,
                    attempt_start: None,
                    attempts: vec![],
                    status: None,
                    timed_out: false,
                    last_error: None,
                    end: None,
                },
            );
        }
        self.per_task.get_mut(task)
    }

    fn on_event(&mut self, event: DriverEvent) {
        let scenario = self.ctx.scenario.clone();
        match event {
            DriverEvent::Ready { .. } | DriverEvent::Exited { .. } => {}
            DriverEvent::DagRun { state } => self.dag_state = Some(state),
            DriverEvent::ImportError { error, line } => {
                self.import_error = Some(match line {
                    Some(l) => format!("the DAG file no longer imports (line {l}): {error}"),
                    None => format!("the DAG file no longer imports: {error}"),
                });
            }
            DriverEvent::Log { task, line } => {
                let id = self.id(&task);
                if let Some(t) = self.track(&task) {
                    if let Some(l) = t.log.as_mut() {
                        let _ = writeln!(l, "{line}");
                    }
                    if looks_like_error(&line) {
                        t.last_error = Some(line.trim().to_string());
                    }
                    self.ctx.events.emit(Event::TaskOutput {
                        scenario,
                        task: id,
                        stream: Stream::Stdout,
                        line,
                    });
                }
            }
            DriverEvent::TimedOut { task } => {
                let limit = self.timeouts.get(&task).copied().unwrap_or(0.0);
                if let Some(t) = self.track(&task) {
                    t.timed_out = true;
                    if let Some(l) = t.log.as_mut() {
                        let _ = writeln!(
                            l,
                            "--- harness: over its time limit ({limit}s): its processes were killed ---"
                        );
                    }
                }
            }
            DriverEvent::State {
                task,
                state,
                try_number,
                max_tries,
            } => self.on_state(&task, &state, try_number, max_tries),
        }
    }

    fn on_state(&mut self, task: &str, state: &str, try_number: u32, max_tries: u32) {
        let scenario = self.ctx.scenario.clone();
        let id = self.id(task);
        let now = Instant::now();
        let attempts = max_tries + 1;
        let timeout = self.timeouts.get(task).copied();
        if self.track(task).is_none() {
            return;
        }
        let first_running = &mut self.first_running;
        let Some(t) = self.per_task.get_mut(task) else {
            return;
        };
        let attempt_result = |t: &mut TaskTrack, result: String| {
            let elapsed = t.attempt_start.take().map(|s| now - s).unwrap_or_default();
            t.attempts.push(Attempt { result, elapsed });
        };
        let finish = |t: &mut TaskTrack, status: TaskStatus| {
            t.end = Some(now);
            t.status = Some(status);
        };
        match state {
            // Said once per attempt (the driver says it when the attempt's process starts).
            "running" if t.attempt_start.is_some() => return,
            "running" => {
                first_running.get_or_insert(now);
                t.first_start.get_or_insert(now);
                t.attempt_start = Some(now);
                if attempts > 1
                    && let Some(l) = t.log.as_mut()
                {
                    let _ = writeln!(l, "--- attempt {try_number}/{attempts} ---");
                }
                self.ctx.events.emit(Event::TaskStarted {
                    scenario,
                    task: id,
                    attempt: try_number,
                    attempts,
                });
                return;
            }
            "success" => {
                if t.attempt_start.is_some() {
                    attempt_result(t, "succeeded".into());
                }
                finish(t, TaskStatus::Succeeded);
            }
            "failed" => {
                let status = if t.timed_out {
                    TaskStatus::TimedOut(Duration::from_secs_f64(timeout.unwrap_or(0.0)))
                } else {
                    TaskStatus::Failed(
                        t.last_error
                            .clone()
                            .unwrap_or_else(|| "Airflow marked it failed".into()),
                    )
                };
                attempt_result(t, status.to_string());
                finish(t, status);
            }
            "up_for_retry" => {
                let result = if std::mem::take(&mut t.timed_out) {
                    format!("timed out after {}s", timeout.unwrap_or(0.0))
                } else {
                    t.last_error.take().unwrap_or_else(|| "failed".into())
                };
                attempt_result(t, result);
                self.ctx.events.emit(Event::TaskState {
                    scenario,
                    task: id,
                    state: state.to_string(),
                    attempt: try_number,
                });
                return;
            }
            "skipped" => finish(t, TaskStatus::SkippedByDag),
            "upstream_failed" => {
                let upstream = self.failed_upstream(task);
                if let Some(t) = self.per_task.get_mut(task) {
                    finish(t, TaskStatus::Skipped { upstream });
                }
            }
            other => {
                self.ctx.events.emit(Event::TaskState {
                    scenario,
                    task: id,
                    state: other.to_string(),
                    attempt: try_number,
                });
                return;
            }
        }
        let t = &self.per_task[task];
        let elapsed = match (t.first_start, t.end) {
            (Some(s), Some(e)) => e - s,
            _ => Duration::ZERO,
        };
        self.ctx.events.emit(Event::TaskFinished {
            scenario,
            task: id,
            status: t.status.clone().unwrap_or(TaskStatus::Cancelled),
            elapsed,
        });
    }

    /// The failed task behind an `upstream_failed` one: the first upstream that failed, or
    /// whatever an upstream that was itself cut off names.
    fn failed_upstream(&self, task: &str) -> TaskId {
        let Some(me) = self.tasks.iter().find(|t| t.id.0 == task) else {
            return self.id(task);
        };
        for up in &me.upstream {
            match self.per_task.get(&up.0).and_then(|t| t.status.as_ref()) {
                Some(TaskStatus::Failed(_) | TaskStatus::TimedOut(_)) => return self.id(&up.0),
                Some(TaskStatus::Skipped { upstream }) => return upstream.clone(),
                _ => {}
            }
        }
        me.upstream
            .first()
            .map_or_else(|| self.id(task), |up| self.id(&up.0))
    }

    fn into_result(mut self, exit: std::io::Result<Exit>, stderr_tail: &[String]) -> DagRunResult {
        let dag_started = self.go;
        let mut outcomes = Vec::new();
        for task in self.tasks {
            let mut tracked = self.per_task.remove(&task.id.0);
            if let Some(mut l) = tracked.as_mut().and_then(|t| t.log.take()) {
                let _ = l.flush();
            }
            // A task Airflow never ended was cut off (cancelled, or the run died).
            let status = tracked.as_ref().and_then(|t| t.status.clone());
            let id = self.id(&task.id.0);
            if status.is_none() {
                self.ctx.events.emit(Event::TaskFinished {
                    scenario: self.ctx.scenario.clone(),
                    task: id.clone(),
                    status: TaskStatus::Cancelled,
                    elapsed: Duration::ZERO,
                });
            }
            let (first, end) = tracked
                .as_ref()
                .map_or((None, None), |t| (t.first_start, t.end));
            outcomes.push(TaskOutcome {
                id,
                status: status.unwrap_or(TaskStatus::Cancelled),
                started: first.map(|s| s - dag_started).unwrap_or_default(),
                elapsed: match (first, end) {
                    (Some(s), Some(e)) => e - s,
                    (Some(s), None) => s.elapsed(),
                    _ => Duration::ZERO,
                },
                attempts: tracked
                    .as_mut()
                    .map(|t| std::mem::take(&mut t.attempts))
                    .unwrap_or_default(),
                log: tracked.map(|t| t.log_path),
            });
        }
        let tail = || {
            if stderr_tail.is_empty() {
                String::new()
            } else {
                format!("; Airflow's last lines:\n{}", stderr_tail.join("\n"))
            }
        };
        let error = if let Some(e) = self.import_error {
            Some(e)
        } else {
            match (&exit, self.dag_state.as_deref()) {
                (Ok(Exit::Cancelled), _) => None,
                (Ok(Exit::TimedOut), _) => Some(
                    "the DagRun ran past the time limit of the whole run and was killed".into(),
                ),
                (_, Some("success")) => None,
                (_, Some("failed")) => {
                    (!outcomes.iter().any(|o| !o.status.ok())).then(|| "the DagRun failed".into())
                }
                (Ok(exit), _) => Some(format!(
                    "the Airflow driver ended ({exit}) before the DagRun did{}",
                    tail()
                )),
                (Err(e), _) => Some(format!("the Airflow driver failed: {e}")),
            }
        };
        DagRunResult {
            tasks: outcomes,
            error,
            first_task_at: self.first_running,
        }
    }
}

/// True for a line that states an exception (`airflow.sdk.exceptions.AirflowException: ...`).
fn looks_like_error(line: &str) -> bool {
    let head = line.split(':').next().unwrap_or("");
    !head.is_empty()
        && !head.contains(' ')
        && line.contains(": ")
        && (head.ends_with("Error") || head.ends_with("Exception") || head.ends_with("Timeout"))
}

/// How the notice that the Airflow driver is ready begins.
pub const READY_NOTICE: &str = "airflow driver ready";

/// The line that says the Airflow driver is ready, and where its start went:
/// `airflow driver ready in 9.8s (import Airflow 3.1s, database 0.2s, ...)`.
fn ready_notice(stages: &[(String, f64)]) -> String {
    let total: f64 = stages.iter().map(|(_, s)| s).sum();
    let parts: Vec<String> = stages
        .iter()
        .map(|(name, s)| format!("{name} {s:.1}s"))
        .collect();
    if parts.is_empty() {
        READY_NOTICE.into()
    } else {
        format!("{READY_NOTICE} in {total:.1}s ({})", parts.join(", "))
    }
}

/// Asks the driver for one DagRun (waiting for it to be ready first) and follows it to its
/// end. A driver that dies, runs past the limit or is cancelled is killed and forgotten.
pub async fn run(drivers: &Drivers, request: &Request<'_>, ctx: &ExecContext) -> DagRunResult {
    let driver_log_path = ctx.log_dir.join("airflow.log");
    let _ = std::fs::create_dir_all(&ctx.log_dir);
    let mut driver_log = std::fs::File::create(&driver_log_path)
        .ok()
        .map(std::io::BufWriter::new);
    let mut stderr_tail: Vec<String> = Vec::new();
    let mut keep = |line: &str, tail: &mut Vec<String>| {
        if let Some(l) = driver_log.as_mut() {
            let _ = writeln!(l, "{line}");
        }
        tail.push(line.to_string());
        if tail.len() > 20 {
            tail.remove(0);
        }
    };
    let mut tracker = Tracker {
        ctx,
        tasks: request.tasks,
        go: Instant::now(),
        first_running: None,
        per_task: BTreeMap::new(),
        dag_state: None,
        import_error: None,
        timeouts: request.timeouts,
        step: request.step,
    };
    let mut running = drivers.running.lock().await;
    let Some(mut driver) = running.remove(request.key) else {
        return tracker.into_result(
            Err(std::io::Error::other("the Airflow driver was not started")),
            &stderr_tail,
        );
    };
    let deadline = tokio::time::sleep(request.limit);
    tokio::pin!(deadline);
    let mut asked = false;
    let exit: std::io::Result<Exit> = loop {
        if !asked && driver.ready {
            asked = true;
            let line = serde_json::json!({
                "spec": request.spec_file,
                "env": request.env.iter().cloned().collect::<BTreeMap<String, String>>(),
            })
            .to_string()
                + "\n";
            tracker.go = Instant::now();
            if let Err(e) = send(&mut driver.spawned, &line).await {
                break Err(e);
            }
        }
        tokio::select! {
            // Lines are masked as they arrive: the driver's log, the tasks' logs and their
            // events never hold a password.
            line = driver.spawned.next_line() => match line.map(|(stream, text)| (stream, redact_owned(text))) {
                None => break Ok(Exit::Code(-1)),
                Some((Stream::Stdout, text)) => match DriverEvent::parse(&text) {
                    Some(DriverEvent::Ready { stages }) => {
                        driver.ready = true;
                        ctx.events.notice(ready_notice(&stages));
                    }
                    Some(DriverEvent::Exited { code }) if asked => break Ok(Exit::Code(code)),
                    Some(e) => tracker.on_event(e),
                    None => keep(&text, &mut stderr_tail),
                },
                Some((Stream::Stderr, text)) => keep(&text, &mut stderr_tail),
            },
            () = ctx.cancel.cancelled() => break Ok(Exit::Cancelled),
            () = &mut deadline => break Ok(Exit::TimedOut),
        }
    };
    // A driver that finished its DagRun serves the next scenario; any other is killed here.
    let healthy = matches!(exit, Ok(Exit::Code(_))) && tracker.import_error.is_none() && asked;
    if healthy {
        running.insert(request.key.clone(), driver);
    } else {
        driver.spawned.terminate().await;
    }
    drop(running);
    if let Some(mut l) = driver_log {
        let _ = l.flush();
    }
    tracker.into_result(exit, &stderr_tail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ready_notice_gives_the_start_and_its_parts() {
        assert_eq!(
            ready_notice(&[("import Airflow".into(), 3.12), ("database".into(), 0.2)]),
            "airflow driver ready in 3.3s (import Airflow 3.1s, database 0.2s)"
        );
        assert_eq!(ready_notice(&[]), "airflow driver ready");
    }

    #[test]
    fn exception_lines_are_told_from_log_lines() {
        assert!(looks_like_error(
            "airflow.sdk.exceptions.AirflowException: Bash command failed. The command returned a non-zero exit code 3."
        ));
        assert!(looks_like_error("ValueError: bad value"));
        assert!(!looks_like_error(
            "2026-12-02T09:45:06Z [info     ] Output: something"
        ));
        assert!(!looks_like_error("Traceback (most recent call last):"));
    }
}
