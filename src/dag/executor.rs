//! Runs a scenario's DAG: independent tasks at once (up to a limit), each attempt under its
//! timeout, retries after failures, and every dependant of a failed task skipped. It reports
//! only through events and its returned outcomes; it never writes to the terminal.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::diagnostic::Origin;
use crate::events::{Event, Events};
use crate::names::{ScenarioName, TaskId};
use crate::outcome::{Attempt, TaskOutcome, TaskStatus};
use crate::process::{self, Exit, ProcessSpec, Stream};
use crate::redact::redact_owned;
use crate::services::SqlRunner;

/// What a task does when it runs.
#[derive(Debug, Clone)]
pub enum Action {
    /// Run a process.
    Process(ProcessSpec),
    /// Run SQL statements on a service.
    Sql {
        /// What runs them.
        run: SqlRunner,
        /// The statements.
        text: String,
        /// Where they come from.
        origin: Origin,
    },
}

/// A task ready to be executed.
#[derive(Debug, Clone)]
pub struct ExecTask {
    /// Its name.
    pub id: TaskId,
    /// Indexes of the tasks it waits for.
    pub deps: Vec<usize>,
    /// Limit of one attempt.
    pub timeout: Duration,
    /// Extra attempts after a failure.
    pub retries: u32,
    /// What it does.
    pub action: Action,
}

/// What the executor needs besides the tasks.
#[derive(Debug, Clone)]
pub struct ExecContext {
    /// Scenario the tasks belong to (for events).
    pub scenario: ScenarioName,
    /// Folder for task logs.
    pub log_dir: PathBuf,
    /// Tasks at once, at most.
    pub max_parallel: usize,
    /// Event stream.
    pub events: Events,
    /// Interrupts the run.
    pub cancel: CancellationToken,
}

/// Runs the DAG to the end and returns one outcome per task, in the tasks' order.
pub async fn run(tasks: Vec<ExecTask>, ctx: &ExecContext) -> Vec<TaskOutcome> {
    let n = tasks.len();
    let tasks: Vec<Arc<ExecTask>> = tasks.into_iter().map(Arc::new).collect();
    let mut dependants = vec![Vec::new(); n];
    let mut waiting: Vec<usize> = tasks.iter().map(|t| t.deps.len()).collect();
    for (i, t) in tasks.iter().enumerate() {
        for &d in &t.deps {
            dependants[d].push(i);
        }
    }
    let mut outcomes: Vec<Option<TaskOutcome>> = vec![None; n];
    let mut ready: Vec<usize> = (0..n).filter(|&i| waiting[i] == 0).collect();
    let mut running = JoinSet::new();
    let dag_started = Instant::now();

    loop {
        while running.len() < ctx.max_parallel.max(1)
            && !ready.is_empty()
            && !ctx.cancel.is_cancelled()
        {
            let i = ready.remove(0);
            let task = tasks[i].clone();
            let ctx = ctx.clone();
            running.spawn(async move { (i, run_task(&task, &ctx, dag_started).await) });
        }
        let Some(joined) = running.join_next().await else {
            break;
        };
        let (i, outcome) = match joined {
            Ok(r) => r,
            Err(e) => panic!("task runner panicked: {e}"),
        };
        if outcome.status.ok() {
            for &d in &dependants[i] {
                waiting[d] -= 1;
                if waiting[d] == 0 {
                    ready.push(d);
                }
            }
        } else if outcome.status != TaskStatus::Cancelled {
            skip_dependants(i, &tasks, &dependants, &mut outcomes, ctx);
        }
        outcomes[i] = Some(outcome);
    }

    // Whatever never ran was cut off by cancellation.
    outcomes
        .into_iter()
        .enumerate()
        .map(|(i, o)| {
            o.unwrap_or_else(|| {
                let status = TaskStatus::Cancelled;
                ctx.events.emit(Event::TaskFinished {
                    scenario: ctx.scenario.clone(),
                    task: tasks[i].id.clone(),
                    status: status.clone(),
                    elapsed: Duration::ZERO,
                });
                TaskOutcome {
                    id: tasks[i].id.clone(),
                    status,
                    attempts: vec![],
                    started: Duration::ZERO,
                    elapsed: Duration::ZERO,
                    log: None,
                }
            })
        })
        .collect()
}

fn skip_dependants(
    failed: usize,
    tasks: &[Arc<ExecTask>],
    dependants: &[Vec<usize>],
    outcomes: &mut [Option<TaskOutcome>],
    ctx: &ExecContext,
) {
    let mut stack = dependants[failed].clone();
    while let Some(d) = stack.pop() {
        if outcomes[d].is_some() {
            continue;
        }
        let status = TaskStatus::Skipped {
            upstream: tasks[failed].id.clone(),
        };
        ctx.events.emit(Event::TaskFinished {
            scenario: ctx.scenario.clone(),
            task: tasks[d].id.clone(),
            status: status.clone(),
            elapsed: Duration::ZERO,
        });
        outcomes[d] = Some(TaskOutcome {
            id: tasks[d].id.clone(),
            status,
            attempts: vec![],
            started: Duration::ZERO,
            elapsed: Duration::ZERO,
            log: None,
        });
        stack.extend(dependants[d].iter().copied());
    }
}

async fn run_task(task: &ExecTask, ctx: &ExecContext, dag_started: Instant) -> TaskOutcome {
    let started = Instant::now();
    // A task of a named step is `<step>/<task>`: its log goes in the step's folder.
    let log_path = ctx.log_dir.join(format!("{}.log", task.id));
    let mut log = std::fs::create_dir_all(log_path.parent().unwrap_or(&ctx.log_dir))
        .and_then(|()| std::fs::File::create(&log_path))
        .ok()
        .map(std::io::BufWriter::new);
    let attempts_allowed = task.retries + 1;
    let mut attempts = Vec::new();
    let mut status = TaskStatus::Cancelled;
    for attempt in 1..=attempts_allowed {
        if ctx.cancel.is_cancelled() {
            status = TaskStatus::Cancelled;
            break;
        }
        ctx.events.emit(Event::TaskStarted {
            scenario: ctx.scenario.clone(),
            task: task.id.clone(),
            attempt,
            attempts: attempts_allowed,
        });
        if attempts_allowed > 1 {
            let marker = format!("--- attempt {attempt}/{attempts_allowed} ---");
            if let Some(l) = log.as_mut() {
                let _ = writeln!(l, "{marker}");
            }
        }
        let t0 = Instant::now();
        let mut emit_line = |stream: Stream, line: String| {
            // Masked before it is kept or shown: a task may print the URLs it was given.
            let line = redact_owned(line);
            if let Some(l) = log.as_mut() {
                let _ = writeln!(l, "{line}");
            }
            ctx.events.emit(Event::TaskOutput {
                scenario: ctx.scenario.clone(),
                task: task.id.clone(),
                stream,
                line,
            });
        };
        status = match &task.action {
            Action::Process(spec) => {
                match process::run(spec, task.timeout, &ctx.cancel, &mut emit_line).await {
                    Ok(Exit::Code(0)) => TaskStatus::Succeeded,
                    Ok(Exit::TimedOut) => TaskStatus::TimedOut(task.timeout),
                    Ok(Exit::Cancelled) => TaskStatus::Cancelled,
                    Ok(other) => TaskStatus::Failed(other.to_string()),
                    Err(e) => TaskStatus::Failed(format!(
                        "cannot start `{}`: {e}",
                        spec.program.to_string_lossy()
                    )),
                }
            }
            Action::Sql { run, text, origin } => {
                let exec = (run.0)(text.clone(), origin.clone());
                tokio::select! {
                    r = tokio::time::timeout(task.timeout, exec) => match r {
                        Ok(Ok(())) => {
                            emit_line(Stream::Stdout, format!("executed {} ({} bytes of SQL)", origin, text.len()));
                            TaskStatus::Succeeded
                        }
                        Ok(Err(e)) => {
                            emit_line(Stream::Stderr, e.to_string());
                            TaskStatus::Failed(e.to_string())
                        }
                        Err(_) => TaskStatus::TimedOut(task.timeout),
                    },
                    () = ctx.cancel.cancelled() => TaskStatus::Cancelled,
                }
            }
        };
        attempts.push(Attempt {
            result: status.to_string(),
            elapsed: t0.elapsed(),
        });
        if matches!(status, TaskStatus::Succeeded | TaskStatus::Cancelled) {
            break;
        }
    }
    if let Some(mut l) = log {
        let _ = l.flush();
    }
    let elapsed = started.elapsed();
    ctx.events.emit(Event::TaskFinished {
        scenario: ctx.scenario.clone(),
        task: task.id.clone(),
        status: status.clone(),
        elapsed,
    });
    TaskOutcome {
        id: task.id.clone(),
        status,
        attempts,
        started: started.duration_since(dag_started),
        elapsed,
        log: Some(log_path),
    }
}

/// Orders task outcomes by name, for reports.
pub fn by_name(outcomes: &[TaskOutcome]) -> BTreeMap<&str, &TaskOutcome> {
    outcomes.iter().map(|o| (o.id.0.as_str(), o)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(id: &str, deps: Vec<usize>, script: &str, retries: u32) -> ExecTask {
        ExecTask {
            id: TaskId(id.into()),
            deps,
            timeout: Duration::from_secs(20),
            retries,
            action: Action::Process(ProcessSpec {
                program: "sh".into(),
                args: vec!["-c".into(), script.into()],
                cwd: std::env::temp_dir(),
                env: vec![],
                env_remove: vec![],
            }),
        }
    }

    fn ctx(dir: &std::path::Path, parallel: usize) -> ExecContext {
        let (events, _rx) = Events::channel();
        ExecContext {
            scenario: ScenarioName("s".into()),
            log_dir: dir.to_path_buf(),
            max_parallel: parallel,
            events,
            cancel: CancellationToken::new(),
        }
    }

    #[tokio::test]
    async fn failure_skips_every_dependant_but_not_independent_tasks() {
        let dir = tempfile::tempdir().expect("tempdir");
        let tasks = vec![
            sh("a", vec![], "exit 1", 0),
            sh("b", vec![0], "true", 0),
            sh("c", vec![1], "true", 0),
            sh("d", vec![], "true", 0),
        ];
        let out = run(tasks, &ctx(dir.path(), 2)).await;
        assert_eq!(out[0].status, TaskStatus::Failed("exit code 1".into()));
        assert_eq!(
            out[1].status,
            TaskStatus::Skipped {
                upstream: TaskId("a".into())
            }
        );
        assert_eq!(
            out[2].status,
            TaskStatus::Skipped {
                upstream: TaskId("a".into())
            }
        );
        assert_eq!(out[3].status, TaskStatus::Succeeded);
    }

    #[tokio::test]
    async fn retries_until_success() {
        let dir = tempfile::tempdir().expect("tempdir");
        let counter = dir.path().join("count");
        let script = format!(
            "echo x >> {0}; test $(wc -l < {0}) -ge 3",
            counter.display()
        );
        let out = run(vec![sh("flaky", vec![], &script, 3)], &ctx(dir.path(), 1)).await;
        assert_eq!(out[0].status, TaskStatus::Succeeded);
        assert_eq!(out[0].attempts.len(), 3);
        let log = std::fs::read_to_string(dir.path().join("flaky.log")).expect("log");
        assert!(log.contains("--- attempt 3/4 ---"), "{log}");
    }

    #[tokio::test]
    async fn independent_tasks_run_at_the_same_time() {
        // Each task waits for the other's marker: only concurrent execution lets both finish.
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path().display();
        let a = format!(
            "touch {d}/a; for i in $(seq 100); do [ -f {d}/b ] && exit 0; sleep 0.05; done; exit 1"
        );
        let b = format!(
            "touch {d}/b; for i in $(seq 100); do [ -f {d}/a ] && exit 0; sleep 0.05; done; exit 1"
        );
        let out = run(
            vec![sh("a", vec![], &a, 0), sh("b", vec![], &b, 0)],
            &ctx(dir.path(), 2),
        )
        .await;
        assert!(out.iter().all(|o| o.status.ok()), "{out:?}");
    }

    #[tokio::test]
    async fn dependencies_run_in_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = dir.path().join("order");
        let tasks = vec![
            sh(
                "second",
                vec![1],
                &format!("echo second >> {}", f.display()),
                0,
            ),
            sh(
                "first",
                vec![],
                &format!("sleep 0.2; echo first >> {}", f.display()),
                0,
            ),
        ];
        let out = run(tasks, &ctx(dir.path(), 4)).await;
        assert_eq!(
            std::fs::read_to_string(&f).expect("file"),
            "first\nsecond\n"
        );
        // Start offsets place `second` after the end of `first`, for timelines.
        assert!(out[1].elapsed >= Duration::from_millis(200), "{out:?}");
        assert!(out[0].started >= out[1].started + out[1].elapsed, "{out:?}");
    }
}
