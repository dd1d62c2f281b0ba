//! GitHub Actions conveniences: failures as `::error` annotations (on the golden file of a sink
//! that differs), flaky passes as `::warning`s, and a Markdown summary appended to `$GITHUB_STEP_SUMMARY`.

use std::fmt::Write as _;
use std::io::Write as _;

use crate::outcome::{RunOutcome, ScenarioStatus, summary_line};

/// True when running as a GitHub Actions step.
pub fn active() -> bool {
    std::env::var("GITHUB_ACTIONS").is_ok_and(|v| v == "true")
}

/// Escapes a workflow-command value (`%`, CR and LF).
fn escape(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// The `::error` lines for every scenario that did not pass.
pub fn annotations(outcome: &RunOutcome, root: &std::path::Path) -> String {
    let mut out = String::new();
    for s in outcome.scenarios.iter().filter(|s| s.flaky()) {
        let _ = writeln!(
            out,
            "::warning title={}::{}",
            escape(&format!("harness: {} is flaky", s.name)),
            escape(&summary_line(s))
        );
    }
    for s in outcome
        .scenarios
        .iter()
        .filter(|s| !matches!(s.status, ScenarioStatus::Passed | ScenarioStatus::Cancelled))
    {
        let mut sink_lines = 0;
        for sink in &s.sinks {
            let Some(details) = sink.details() else {
                continue;
            };
            let detail = format!("{}\n{details}", sink.headline(&s.tasks));
            let file = sink
                .golden
                .strip_prefix(root)
                .unwrap_or(&sink.golden)
                .display()
                .to_string();
            let _ = writeln!(
                out,
                "::error file={},title={}::{}",
                escape(&file),
                escape(&format!("harness: {} sink {}", s.name, sink.name)),
                escape(&detail)
            );
            sink_lines += 1;
        }
        if sink_lines == 0 {
            let _ = writeln!(
                out,
                "::error title={}::{}",
                escape(&format!("harness: {}", s.name)),
                escape(&summary_line(s))
            );
        }
    }
    crate::redact::redact_owned(out)
}

/// The Markdown summary of a run.
pub fn markdown(outcome: &RunOutcome) -> String {
    let mut md =
        String::from("## harness\n\n| scenario | result | time | details |\n|---|---|---|---|\n");
    for s in &outcome.scenarios {
        let result = match s.status {
            ScenarioStatus::Passed if s.flaky() => "⚠️ flaky",
            ScenarioStatus::Passed => "✅ passed",
            ScenarioStatus::Failed => "❌ failed",
            ScenarioStatus::InputError => "⚠️ bad input",
            ScenarioStatus::InfraError => "⚠️ service failure",
            ScenarioStatus::Cancelled => "⏹ cancelled",
        };
        let _ = writeln!(
            md,
            "| {} | {result} | {:.1}s | {} |",
            s.name,
            s.elapsed.as_secs_f64(),
            summary_line(s).replace('|', "\\|")
        );
    }
    md
}

/// Appends the summary to `$GITHUB_STEP_SUMMARY` when it is set.
pub fn append_summary(outcome: &RunOutcome) -> std::io::Result<()> {
    let Some(path) = std::env::var_os("GITHUB_STEP_SUMMARY") else {
        return Ok(());
    };
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    f.write_all(crate::redact::redact(&markdown(outcome)).as_bytes())
}
