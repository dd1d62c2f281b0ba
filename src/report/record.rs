//! What a run leaves in the report folder for machines and for the next run: `results.json`
//! (every scenario, task, sink, duration and diff) and `last-failed` (the scenarios that did not
//! pass, for `run --failed`).

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::{Value as J, json};

use crate::outcome::{RunOutcome, ScenarioStatus, SinkResult};
use crate::snapshot::golden::write_atomic;

/// The file listing the scenarios that did not pass.
const LAST_FAILED: &str = "last-failed";

/// Names of the scenarios recorded as not passing.
pub fn last_failed(report_dir: &Path) -> BTreeSet<String> {
    std::fs::read_to_string(report_dir.join(LAST_FAILED))
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

fn status(s: &ScenarioStatus) -> &'static str {
    match s {
        ScenarioStatus::Passed => "passed",
        ScenarioStatus::Failed => "failed",
        ScenarioStatus::InputError => "input-error",
        ScenarioStatus::InfraError => "infra-error",
        ScenarioStatus::Cancelled => "cancelled",
    }
}

/// Writes `results.json` and updates `last-failed`: scenarios of this run are recorded as
/// they ended; failures of scenarios this run did not select are kept.
pub fn write(outcome: &RunOutcome, report_dir: &Path, exit_code: i32) -> std::io::Result<()> {
    std::fs::create_dir_all(report_dir)?;
    let ms = |d: std::time::Duration| d.as_millis() as u64;
    let scenarios: Vec<J> = outcome
        .scenarios
        .iter()
        .map(|s| {
            let tasks: Vec<J> = s
                .tasks
                .iter()
                .map(|t| json!({"name": t.id.0, "status": t.status.to_string(), "ok": t.status.ok(), "elapsed_ms": ms(t.elapsed), "attempts": t.attempts.len(), "log": t.log}))
                .collect();
            let sinks: Vec<J> = s
                .sinks
                .iter()
                .map(|k| {
                    let (result, diff, table, error) = match &k.result {
                        SinkResult::Matched => ("matched", None, None, None),
                        SinkResult::Differs { diff, table } => {
                            ("differs", Some(diff.clone()), table.as_ref(), None)
                        }
                        SinkResult::NoGolden => ("no-golden", None, None, None),
                        SinkResult::Updated { diff } => ("updated", diff.clone(), None, None),
                        SinkResult::ReadFailed(e) => ("read-failed", None, None, Some(e.clone())),
                        SinkResult::WriteFailed(e) => {
                            ("write-failed", None, None, Some(e.clone()))
                        }
                    };
                    let written_by: Vec<&str> = k.writers.iter().map(|w| w.0.as_str()).collect();
                    json!({
                        "name": k.name,
                        "source": k.source,
                        "result": result,
                        "ok": k.ok(),
                        "written_by": written_by,
                        "headline": (!k.ok()).then(|| k.headline(&s.tasks)),
                        "golden": k.golden,
                        "pending": k.pending,
                        "diff": diff,
                        "table_diff": table,
                        "tolerated": k.tolerated,
                        "ranking": k.ranking,
                        "error": error,
                    })
                })
                .collect();
            json!({
                "name": s.name.0,
                "status": status(&s.status),
                "error": s.error,
                "expected_failure": s.expected_failure,
                "flaky": s.flaky(),
                "attempts": s.attempts(),
                "failed_attempts": s.failed_attempts,
                "elapsed_ms": ms(s.elapsed),
                "first_airflow_task_ms": s.timings.first_airflow_task.map(ms),
                "tasks": tasks,
                "sinks": sinks,
            })
        })
        .collect();
    let t = &outcome.timings;
    let results = json!({
        "exit_code": exit_code,
        "interrupted": outcome.interrupted,
        "infra_error": outcome.infra_error.as_ref().map(|e| e.to_string()),
        "elapsed_ms": ms(outcome.elapsed),
        "timings_ms": {"services": ms(t.services), "reset": ms(t.reset), "seed": ms(t.seed), "tasks": ms(t.tasks), "read": ms(t.read), "compare": ms(t.compare)},
        "scenarios": scenarios,
    });
    write_atomic(
        &report_dir.join("results.json"),
        &crate::redact::redact(&format!("{:#}\n", results)),
    )?;

    let mut failed = last_failed(report_dir);
    for s in &outcome.scenarios {
        if s.status == ScenarioStatus::Passed {
            failed.remove(&s.name.0);
        } else {
            failed.insert(s.name.0.clone());
        }
    }
    let text: String = failed.iter().map(|n| format!("{n}\n")).collect();
    write_atomic(&report_dir.join(LAST_FAILED), &text)
}
