//! JUnit XML: one test case per scenario; the failure message carries the diff or the failing
//! task, system-out carries every task's log.

use std::path::Path;

use junit_report::{Duration, ReportBuilder, TestCase, TestSuiteBuilder};

use crate::outcome::TaskStatus;
use crate::outcome::{RunOutcome, ScenarioStatus};

/// Lines of a failed task's log repeated in the failure message (the whole log is in
/// system-out), so that CI pages show the error without a click.
const LOG_TAIL: usize = 40;

/// Writes the report to `path` (atomically).
pub fn write(outcome: &RunOutcome, path: &Path) -> std::io::Result<()> {
    let mut suite = TestSuiteBuilder::new("harness");
    for s in &outcome.scenarios {
        let time = Duration::milliseconds(s.elapsed.as_millis() as i64);
        let name = s.name.0.as_str();
        let mut case = match s.status {
            ScenarioStatus::Passed => TestCase::success(name, time),
            ScenarioStatus::Cancelled => {
                TestCase::skipped_with_cause(name, "cancelled", "the run was interrupted")
            }
            ScenarioStatus::InfraError | ScenarioStatus::InputError => {
                TestCase::error(name, time, "error", s.error.as_deref().unwrap_or("error"))
            }
            ScenarioStatus::Failed => {
                let mut message = crate::outcome::summary_line(s);
                for t in s
                    .tasks
                    .iter()
                    .filter(|t| matches!(t.status, TaskStatus::Failed(_) | TaskStatus::TimedOut(_)))
                {
                    let log = t
                        .log
                        .as_ref()
                        .and_then(|l| std::fs::read_to_string(l).ok())
                        .unwrap_or_default();
                    let (_, tail) = super::last_lines(&log, LOG_TAIL);
                    let tail = tail.lines().collect::<Vec<_>>().join("\n");
                    message.push_str(&format!(
                        "\n\ntask {} {}; end of its log:\n{tail}",
                        t.id, t.status
                    ));
                }
                for sink in &s.sinks {
                    if let Some(details) = sink.details() {
                        message.push_str(&format!("\n\n{}\n{details}", sink.headline(&s.tasks)));
                    }
                }
                TestCase::failure(name, time, "failure", &message)
            }
        };
        case.set_classname("harness.scenario");
        let mut logs = String::new();
        for t in &s.tasks {
            logs.push_str(&format!("=== task {} {} ===\n", t.id, t.status));
            if let Some(text) = t.log.as_ref().and_then(|l| std::fs::read_to_string(l).ok()) {
                logs.push_str(&text);
            }
        }
        if !logs.is_empty() {
            case.set_system_out(&logs);
        }
        if s.flaky() {
            // Passed, but not at once: say so where CI servers show a passing case's output.
            case.set_system_err(&format!("FLAKY: {}\n", crate::outcome::summary_line(s)));
        }
        suite.add_testcase(case);
    }
    let report = ReportBuilder::new().add_testsuite(suite.build()).build();
    let mut buf = Vec::new();
    report.write_xml(&mut buf).map_err(std::io::Error::other)?;
    // Messages and logs may quote what a task printed, or an error naming a URL.
    let mut xml = crate::redact::redact_owned(String::from_utf8_lossy(&buf).into_owned());
    xml.push('\n');
    crate::snapshot::golden::write_atomic(path, &xml)
}
