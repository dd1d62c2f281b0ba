//! `--format json`: the run as machine-readable events on stdout, one JSON object per line, each
//! with `event` (its kind) and `t_ms` (milliseconds since the run began); the last line is
//! `run_finished` with the totals and the exit code.

use std::io::Write as _;
use std::time::Instant;

use serde_json::{Value as J, json};
use tokio::sync::mpsc::UnboundedReceiver;

use crate::events::Event;
use crate::outcome::{RunOutcome, ScenarioStatus, summary_line};
use crate::process::Stream;
use crate::redact::redact;

/// Prints every event until the stream closes.
pub fn spawn(mut rx: UnboundedReceiver<Event>, started: Instant) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while let Some(e) = rx.recv().await {
            print_line(event(&e), started);
        }
    })
}

fn print_line(mut v: J, started: Instant) {
    if let Some(obj) = v.as_object_mut() {
        obj.insert("t_ms".into(), json!(started.elapsed().as_millis() as u64));
    }
    let text = v.to_string();
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{}", redact(&text));
    let _ = out.flush();
}

fn ms(d: std::time::Duration) -> u64 {
    d.as_millis() as u64
}

/// One event as JSON.
pub fn event(e: &Event) -> J {
    match e {
        Event::RunStarted { scenarios, backend } => {
            json!({"event": "run_started", "scenarios": scenarios, "backend": backend})
        }
        Event::ServiceReady {
            service,
            endpoint,
            elapsed,
        } => json!({
            "event": "service_ready",
            "service": service.name(),
            "endpoint": endpoint,
            "elapsed_ms": ms(*elapsed),
        }),
        Event::ScenarioStarted { scenario } => {
            json!({"event": "scenario_started", "scenario": scenario.0})
        }
        Event::TaskStarted {
            scenario,
            task,
            attempt,
            attempts,
        } => json!({
            "event": "task_started",
            "scenario": scenario.0,
            "task": task.0,
            "attempt": attempt,
            "attempts": attempts,
        }),
        Event::TaskOutput {
            scenario,
            task,
            stream,
            line,
        } => json!({
            "event": "task_output",
            "scenario": scenario.0,
            "task": task.0,
            "stream": match stream {
                Stream::Stdout => "stdout",
                Stream::Stderr => "stderr",
            },
            "line": line,
        }),
        Event::TaskFinished {
            scenario,
            task,
            status,
            elapsed,
        } => json!({
            "event": "task_finished",
            "scenario": scenario.0,
            "task": task.0,
            "status": status.to_string(),
            "ok": status.ok(),
            "elapsed_ms": ms(*elapsed),
        }),
        Event::TaskState {
            scenario,
            task,
            state,
            attempt,
        } => json!({
            "event": "task_state",
            "scenario": scenario.0,
            "task": task.0,
            "state": state,
            "attempt": attempt,
        }),
        Event::ScenarioRetrying {
            scenario,
            attempt,
            attempts,
            reason,
        } => json!({
            "event": "scenario_retrying",
            "scenario": scenario.0,
            "attempt": attempt,
            "attempts": attempts,
            "reason": reason,
        }),
        Event::ScenarioFinished {
            scenario,
            passed,
            flaky,
            summary,
            elapsed,
        } => json!({
            "event": "scenario_finished",
            "scenario": scenario.0,
            "passed": passed,
            "flaky": flaky,
            "summary": summary,
            "elapsed_ms": ms(*elapsed),
        }),
        Event::Notice { message } => json!({"event": "notice", "message": message}),
    }
}

/// The closing line: totals, every scenario with its failing sinks, and the exit code.
pub fn finish(outcome: &RunOutcome, exit_code: i32, started: Instant) {
    let count = |st: ScenarioStatus| outcome.scenarios.iter().filter(|s| s.status == st).count();
    let scenarios: Vec<J> = outcome
        .scenarios
        .iter()
        .map(|s| {
            let sinks: Vec<J> = s
                .sinks
                .iter()
                .filter(|k| !k.ok())
                .map(|k| json!({"name": k.name, "headline": k.headline(&s.tasks)}))
                .collect();
            json!({
                "name": s.name.0,
                "passed": s.status == ScenarioStatus::Passed,
                "flaky": s.flaky(),
                "summary": summary_line(s),
                "failing_sinks": sinks,
                "report_dir": s.report_dir,
            })
        })
        .collect();
    print_line(
        json!({
            "event": "run_finished",
            "passed": count(ScenarioStatus::Passed),
            "failed": count(ScenarioStatus::Failed),
            "flaky": outcome.scenarios.iter().filter(|s| s.flaky()).count(),
            "errors": count(ScenarioStatus::InputError) + count(ScenarioStatus::InfraError),
            "cancelled": count(ScenarioStatus::Cancelled),
            "infra_error": outcome.infra_error.as_ref().map(ToString::to_string),
            "exit_code": exit_code,
            "elapsed_ms": ms(outcome.elapsed),
            "scenarios": scenarios,
        }),
        started,
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ScenarioName, TaskId};
    use crate::outcome::TaskStatus;
    use std::time::Duration;

    #[test]
    fn events_carry_their_kind_and_fields() {
        let v = event(&Event::TaskOutput {
            scenario: ScenarioName("s".into()),
            task: TaskId("t".into()),
            stream: Stream::Stderr,
            line: "boom \"quoted\"".into(),
        });
        assert_eq!(
            v,
            json!({"event": "task_output", "scenario": "s", "task": "t", "stream": "stderr", "line": "boom \"quoted\""})
        );
        let v = event(&Event::TaskFinished {
            scenario: ScenarioName("s".into()),
            task: TaskId("t".into()),
            status: TaskStatus::Failed("exit code 3".into()),
            elapsed: Duration::from_millis(1500),
        });
        assert_eq!(v["ok"], json!(false));
        assert_eq!(v["elapsed_ms"], json!(1500));
        assert!(
            v["status"].as_str().unwrap_or("").contains("exit code 3"),
            "{v}"
        );
    }
}
