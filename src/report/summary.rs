//! The human summary printed when a run ends: for every scenario that did not pass, what went
//! wrong (the failing task and the end of its log, or each sink's diff), then the totals and
//! where the time went.

use std::fmt::Write as _;

use console::Style as C;

use super::Style;
use crate::outcome::TaskStatus;
use crate::outcome::{RunOutcome, ScenarioStatus, SinkOutcome, SinkResult};

/// Lines of a failed task's log shown in the summary.
const LOG_TAIL: usize = 30;

/// Colours a unified diff.
pub fn paint_diff(diff: &str, style: Style) -> String {
    let mut out = String::new();
    for line in diff.lines() {
        let painted = if line.starts_with("+++") || line.starts_with("---") {
            style.paint(line, C::new().bold())
        } else if line.starts_with('+') {
            style.paint(line, C::new().green())
        } else if line.starts_with('-') {
            style.paint(line, C::new().red())
        } else if line.starts_with("@@") {
            style.paint(line, C::new().cyan())
        } else {
            line.to_string()
        };
        let _ = writeln!(out, "{painted}");
    }
    out
}

/// A passing sink whose ranked lists changed within their bounds: which lists, what entered
/// and what left.
fn within_ranking_bounds(out: &mut String, scenario: &str, sink: &SinkOutcome, style: Style) {
    let Some(r) = sink.ranking.as_ref().filter(|r| !r.changed.is_empty()) else {
        return;
    };
    if !sink.ok() {
        return;
    }
    let _ = writeln!(
        out,
        "\n{} {scenario}: sink `{}` ({}) passes within its ranking bounds",
        style.paint("──", C::new().green()),
        sink.name,
        sink.source
    );
    out.push_str(&r.render());
}

/// The whole summary.
pub fn render(outcome: &RunOutcome, style: Style) -> String {
    let mut out = String::new();
    for s in &outcome.scenarios {
        if s.status == ScenarioStatus::Passed {
            for sink in &s.sinks {
                within_ranking_bounds(&mut out, &s.name.0, sink, style);
            }
        }
        if matches!(s.status, ScenarioStatus::Passed | ScenarioStatus::Cancelled) {
            continue;
        }
        let _ = writeln!(
            out,
            "\n{} {}",
            style.paint("──", C::new().red()),
            style.paint(&format!("{} failed", s.name), C::new().red().bold())
        );
        // A failed task is shown below with its log; other errors (seed, reset, expectation) here.
        if let Some(e) = s.error.as_ref().filter(|e| !e.starts_with("task `")) {
            let _ = writeln!(out, "{e}");
        }
        for t in &s.tasks {
            if matches!(
                t.status,
                TaskStatus::Succeeded | TaskStatus::Cancelled | TaskStatus::SkippedByDag
            ) {
                continue;
            }
            let _ = writeln!(out, "task `{}` {}", t.id, t.status);
            if let TaskStatus::Skipped { .. } = t.status {
                continue;
            }
            if let Some(log) = &t.log {
                let text = std::fs::read_to_string(log).unwrap_or_default();
                let (_, tail) = super::last_lines(&text, LOG_TAIL);
                let shown = tail.lines().count();
                let _ = writeln!(
                    out,
                    "  last {} of {}:",
                    if shown == 1 {
                        "line".to_string()
                    } else {
                        format!("{shown} lines")
                    },
                    log.display()
                );
                for l in tail.lines() {
                    let _ = writeln!(out, "  | {l}");
                }
            }
        }
        for sink in &s.sinks {
            match &sink.result {
                SinkResult::Differs { diff, table } => {
                    let _ = writeln!(out, "{}", sink.headline(&s.tasks));
                    let _ = writeln!(out, "  golden: {}", sink.golden.display());
                    out.push_str(&sink.explained(table));
                    out.push_str(&paint_diff(diff, style));
                }
                SinkResult::NoGolden => {
                    let _ = writeln!(out, "{}", sink.headline(&s.tasks));
                    let _ = writeln!(out, "  golden: {} (missing)", sink.golden.display());
                }
                SinkResult::ReadFailed(e) | SinkResult::WriteFailed(e) => {
                    let _ = writeln!(out, "sink `{}` ({}): {e}", sink.name, sink.origin);
                }
                _ => within_ranking_bounds(&mut out, &s.name.0, sink, style),
            }
            match &sink.pending {
                Some(p) if *p == crate::snapshot::golden::pending_path(&sink.golden) => {
                    let _ = writeln!(
                        out,
                        "  new snapshot written to {} (accept it with --update)",
                        p.display()
                    );
                }
                Some(p) => {
                    let _ = writeln!(
                        out,
                        "  new snapshot kept in {} (copy the report's pending/ folder into the project, then `harness review`)",
                        p.display()
                    );
                }
                None if !sink.ok() => {
                    let kept = s
                        .report_dir
                        .join("snapshots")
                        .join(format!("{}.snap", sink.name));
                    if kept.exists() {
                        let _ = writeln!(out, "  actual snapshot kept in {}", kept.display());
                    }
                }
                None => {}
            }
        }
    }
    let count = |st: ScenarioStatus| outcome.scenarios.iter().filter(|s| s.status == st).count();
    let (passed, failed) = (count(ScenarioStatus::Passed), count(ScenarioStatus::Failed));
    let errors = count(ScenarioStatus::InputError) + count(ScenarioStatus::InfraError);
    let cancelled = count(ScenarioStatus::Cancelled);
    let t = &outcome.timings;
    let _ = writeln!(out);
    let flaky = outcome.scenarios.iter().filter(|s| s.flaky()).count();
    let mut totals = if flaky > 0 {
        format!("{passed} passed ({flaky} flaky), {failed} failed")
    } else {
        format!("{passed} passed, {failed} failed")
    };
    if errors > 0 {
        totals.push_str(&format!(", {errors} errors"));
    }
    if cancelled > 0 {
        totals.push_str(&format!(", {cancelled} cancelled"));
    }
    let color = if failed + errors > 0 || outcome.infra_error.is_some() {
        C::new().red().bold()
    } else {
        C::new().green().bold()
    };
    let _ = writeln!(out, "{}", style.paint(&totals, color));
    let _ = writeln!(
        out,
        "time: {:.2}s total; tasks {:.2}s; harness {:.2}s (services {:.2}s, reset {:.2}s, seed {:.2}s, read {:.2}s, compare {:.2}s)",
        outcome.elapsed.as_secs_f64(),
        t.tasks.as_secs_f64(),
        t.overhead().as_secs_f64(),
        t.services.as_secs_f64(),
        t.reset.as_secs_f64(),
        t.seed.as_secs_f64(),
        t.read.as_secs_f64(),
        t.compare.as_secs_f64()
    );
    crate::redact::redact_owned(out)
}
