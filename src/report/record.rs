//! What a run leaves in the report folder for machines and for the next run: `results.json`
//! (every scenario, task, sink, duration and diff), `last-failed` (the scenarios that did not
//! pass, for `run --failed`) and `durations.json` (the seconds each scenario took when it last
//! ran, for `--partition` with `--durations`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_json::{Value as J, json};

use crate::outcome::{RunOutcome, ScenarioStatus, SinkResult};
use crate::snapshot::golden::write_atomic;

/// The file listing the scenarios that did not pass.
const LAST_FAILED: &str = "last-failed";

/// The file of the seconds each scenario took when it last ran.
pub const DURATIONS: &str = "durations.json";

/// The seconds each scenario took, from a `durations.json` (`{"scenario": seconds}`) or a
/// `results.json` (its scenarios' `elapsed_ms`).
pub fn read_durations(file: &Path) -> Result<BTreeMap<String, f64>, String> {
    let bad = |why: String| format!("{}: {why}", file.display());
    let text = std::fs::read_to_string(file).map_err(|e| bad(e.to_string()))?;
    let value: J = serde_json::from_str(&text).map_err(|e| bad(format!("not JSON: {e}")))?;
    let mut out = BTreeMap::new();
    if let Some(list) = value.get("scenarios").and_then(J::as_array) {
        for s in list {
            if let (Some(name), Some(ms)) = (
                s.get("name").and_then(J::as_str),
                s.get("elapsed_ms").and_then(J::as_f64),
            ) {
                out.insert(name.to_string(), ms / 1000.0);
            }
        }
        return Ok(out);
    }
    let Some(map) = value.as_object() else {
        return Err(bad(
            "neither a results.json nor an object of scenario names to seconds".into(),
        ));
    };
    for (name, secs) in map {
        match secs.as_f64() {
            Some(v) if v.is_finite() && v >= 0.0 => {
                out.insert(name.clone(), v);
            }
            _ => return Err(bad(format!("`{name}`: {secs} is not a number of seconds"))),
        }
    }
    Ok(out)
}

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
                "first_task_ms": s.timings.first_task.map(ms),
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
    write_atomic(&report_dir.join(LAST_FAILED), &text)?;

    // The times of the scenarios that ran to their end, over those of earlier runs.
    let file = report_dir.join(DURATIONS);
    let mut durations = read_durations(&file).unwrap_or_default();
    for s in &outcome.scenarios {
        if matches!(s.status, ScenarioStatus::Passed | ScenarioStatus::Failed) {
            durations.insert(s.name.0.clone(), (s.elapsed.as_millis() as f64) / 1000.0);
        }
    }
    write_atomic(&file, &format!("{:#}\n", json!(durations)))
}
