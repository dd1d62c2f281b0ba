//! `report.html` in the report folder: one self-contained page (inline CSS, no script, nothing
//! fetched) with the run's totals and stage times, then one section per scenario, those that
//! did not pass first: its status, a timeline of its tasks, every task's log, and each sink
//! with a side-by-side diff of golden and actual snapshot.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use super::last_lines;
use crate::outcome::{
    RunOutcome, ScenarioOutcome, ScenarioStatus, SinkOutcome, SinkResult, summary_line,
};
use crate::outcome::{TaskOutcome, TaskStatus};
use crate::snapshot::golden::write_atomic;
use diff::{side_by_side_table, unified_block};

mod diff;

/// The page's file name in the report folder.
pub const FILE: &str = "report.html";

/// Lines of a task's log embedded at most (the end of the log is kept).
const LOG_LINES: usize = 2000;

/// Writes `<report_dir>/report.html` (atomically); `backend` says which backend ran.
pub fn write(outcome: &RunOutcome, report_dir: &Path, backend: &str) -> std::io::Result<()> {
    // The page quotes task logs, errors and snapshots: no password in it.
    write_atomic(
        &report_dir.join(FILE),
        &crate::redact::redact(&render(outcome, backend)),
    )
}

/// The whole page. Reads task logs, goldens and actual snapshots from disk.
pub fn render(outcome: &RunOutcome, backend: &str) -> String {
    let count = |st: ScenarioStatus| outcome.scenarios.iter().filter(|s| s.status == st).count();
    let (passed, failed) = (count(ScenarioStatus::Passed), count(ScenarioStatus::Failed));
    let errors = count(ScenarioStatus::InputError) + count(ScenarioStatus::InfraError);
    let cancelled = count(ScenarioStatus::Cancelled);
    let (run_class, run_label) = if outcome.interrupted {
        ("cancelled", "INTERRUPTED")
    } else if failed + errors > 0 || outcome.infra_error.is_some() {
        ("failed", "FAILED")
    } else {
        ("passed", "PASSED")
    };

    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>harness {run_label}: {passed} passed, {failed} failed</title>\n<style>{CSS}</style>\n\
         </head>\n<body>\n"
    );
    let _ = write!(
        h,
        "<header class=\"run {run_class}\">\n<h1><span class=\"badge {run_class}\">{run_label}</span> harness run</h1>\n"
    );
    let _ = writeln!(
        h,
        "<p class=\"meta\">finished {} · wall time {} · backend {}</p>",
        humantime::format_rfc3339_seconds(std::time::SystemTime::now()),
        secs(outcome.elapsed),
        escape(backend)
    );
    h.push_str("<div class=\"tiles\">\n");
    for (n, what, class) in [
        (outcome.scenarios.len(), "scenarios", "total"),
        (passed, "passed", "passed"),
        (failed, "failed", "failed"),
        (errors, "errors", "error"),
        (cancelled, "cancelled", "cancelled"),
    ] {
        let class = if n == 0 && class != "total" {
            "zero"
        } else {
            class
        };
        let _ = writeln!(h, "<div class=\"tile {class}\"><b>{n}</b> {what}</div>");
    }
    h.push_str("</div>\n");
    if outcome.interrupted {
        h.push_str("<p class=\"banner\">The run was interrupted: scenarios not reached are marked CANCELLED.</p>\n");
    }
    if let Some(e) = &outcome.infra_error {
        let _ = writeln!(h, "<pre class=\"banner\">{}</pre>", escape(&e.to_string()));
    }
    stages(&mut h, outcome);
    h.push_str("</header>\n");

    // Problems first; the index keeps the same order so the first rows are what needs a look.
    let mut order: Vec<usize> = (0..outcome.scenarios.len()).collect();
    order.sort_by_key(|&i| rank(&outcome.scenarios[i].status));
    if !order.is_empty() {
        h.push_str("<nav>\n<h2>Scenarios</h2>\n<table class=\"index\">\n");
        for &i in &order {
            let s = &outcome.scenarios[i];
            let (class, label) = scenario_label(s);
            let _ = writeln!(
                h,
                "<tr class=\"{class}\"><td><span class=\"badge {class}\">{label}</span></td>\
                 <td><a href=\"#scenario-{i}\">{}</a></td><td class=\"num\">{}</td><td>{}</td></tr>",
                escape(&s.name.0),
                secs(s.elapsed),
                escape(&summary_line(s))
            );
        }
        h.push_str("</table>\n</nav>\n");
    }
    for &i in &order {
        scenario(&mut h, i, &outcome.scenarios[i]);
    }
    h.push_str("</body>\n</html>\n");
    h
}

/// Where the run's time went, stage by stage.
fn stages(h: &mut String, outcome: &RunOutcome) {
    let t = &outcome.timings;
    let rows = [
        ("services", t.services),
        ("reset", t.reset),
        ("seed", t.seed),
        ("tasks", t.tasks),
        ("read", t.read),
        ("compare", t.compare),
    ];
    let longest = rows.iter().map(|(_, d)| *d).max().unwrap_or_default();
    h.push_str("<table class=\"stages\">\n<caption>time by stage</caption>\n");
    for (name, d) in rows {
        let _ = writeln!(
            h,
            "<tr><th>{name}</th><td class=\"num\">{}</td><td class=\"gauge\"><span style=\"width:{:.2}%\"></span></td></tr>",
            secs(d),
            percent(d, longest)
        );
    }
    h.push_str("</table>\n");
}

fn scenario(h: &mut String, i: usize, s: &ScenarioOutcome) {
    let (class, label) = scenario_label(s);
    let _ = writeln!(
        h,
        "<section class=\"scenario {class}\" id=\"scenario-{i}\">\n\
         <h2><span class=\"badge {class}\">{label}</span> <span class=\"name\">{}</span> <span class=\"time\">{}</span></h2>",
        escape(&s.name.0),
        secs(s.elapsed)
    );
    let summary = escape(&summary_line(s));
    if s.error.is_some() {
        let _ = writeln!(h, "<pre class=\"error\">{summary}</pre>");
    } else {
        let _ = writeln!(h, "<p class=\"summary\">{summary}</p>");
    }
    let t = &s.timings;
    let _ = writeln!(
        h,
        "<p class=\"meta\">reset {} · seed {} · tasks {} · read {} · compare {} · report folder <code>{}</code></p>",
        secs(t.reset),
        secs(t.seed),
        secs(t.tasks),
        secs(t.read),
        secs(t.compare),
        escape(&s.report_dir.display().to_string())
    );

    h.push_str("<h3>Tasks</h3>\n");
    if s.tasks.is_empty() {
        h.push_str("<p class=\"meta\">No task ran.</p>\n");
    } else {
        timeline(h, i, &s.tasks);
        for (j, t) in s.tasks.iter().enumerate() {
            task_log(h, &format!("scenario-{i}-task-{j}"), t);
        }
    }

    h.push_str("<h3>Sinks</h3>\n");
    if s.sinks.is_empty() {
        let why = if s.tasks.iter().all(|t| t.status.ok()) {
            "No sink was read."
        } else {
            "No sink was read: not every task succeeded."
        };
        let _ = writeln!(h, "<p class=\"meta\">{why}</p>");
    }
    for sink in &s.sinks {
        sink_block(h, i, s, sink);
    }
    h.push_str("</section>\n");
}

/// One row per task: a bar from its start to its end on the scale of the whole DAG.
fn timeline(h: &mut String, i: usize, tasks: &[TaskOutcome]) {
    let scale = tasks
        .iter()
        .map(|t| t.started + t.elapsed)
        .max()
        .unwrap_or_default()
        .max(Duration::from_millis(1));
    h.push_str("<div class=\"timeline\">\n");
    for (j, t) in tasks.iter().enumerate() {
        let (class, label) = task_label(&t.status);
        let name = escape(&t.id.0);
        let _ = write!(
            h,
            "<a class=\"task\" href=\"#scenario-{i}-task-{j}\" title=\"{name}\">{name}</a><div class=\"track {class}\">"
        );
        let ran = !matches!(
            t.status,
            TaskStatus::Skipped { .. } | TaskStatus::SkippedByDag
        ) && !t.attempts.is_empty();
        let right = if ran {
            let mut tip = format!(
                "{}: {}; started at {}, took {}",
                t.id,
                t.status,
                secs(t.started),
                secs(t.elapsed)
            );
            for (n, a) in t.attempts.iter().enumerate() {
                let _ = write!(
                    tip,
                    "\nattempt {}: {} ({})",
                    n + 1,
                    a.result,
                    secs(a.elapsed)
                );
            }
            let _ = write!(
                h,
                "<span class=\"bar {class}\" style=\"left:{:.2}%;width:{:.2}%\" title=\"{}\"></span>",
                percent(t.started, scale),
                percent(t.elapsed, scale),
                escape(&tip)
            );
            let attempts = if t.attempts.len() > 1 {
                format!(" · {} attempts", t.attempts.len())
            } else {
                String::new()
            };
            format!("{}{attempts}", secs(t.elapsed))
        } else {
            let _ = write!(
                h,
                "<span class=\"note\">{}</span>",
                escape(&t.status.to_string())
            );
            String::new()
        };
        let _ = writeln!(
            h,
            "</div><span class=\"when\"><span class=\"badge small {class}\">{label}</span> {right}</span>"
        );
    }
    let _ = writeln!(
        h,
        "<span></span><div class=\"axis\"><span>0s</span><span>{}</span></div><span></span>\n</div>",
        secs(scale)
    );
}

/// A task's log in a `<details>`, open when the task failed.
fn task_log(h: &mut String, id: &str, t: &TaskOutcome) {
    let (class, label) = task_label(&t.status);
    let failed = matches!(t.status, TaskStatus::Failed(_) | TaskStatus::TimedOut(_));
    let _ = write!(
        h,
        "<details class=\"log\" id=\"{id}\"{}>\n<summary><span class=\"badge small {class}\">{label}</span> <b>{}</b> {}</summary>\n",
        if failed { " open" } else { "" },
        escape(&t.id.0),
        escape(&format!("— {} · {}", t.status, secs(t.elapsed)))
    );
    if t.attempts.len() > 1 {
        h.push_str("<ol class=\"attempts\">");
        for a in &t.attempts {
            let _ = write!(h, "<li>{} ({})</li>", escape(&a.result), secs(a.elapsed));
        }
        h.push_str("</ol>\n");
    }
    match &t.log {
        None => h.push_str("<p class=\"meta\">It did not run: no log.</p>\n"),
        Some(path) => {
            let shown = escape(&path.display().to_string());
            match std::fs::read(path) {
                Ok(bytes) => {
                    let text = String::from_utf8_lossy(&bytes);
                    let (left_out, tail) = last_lines(&text, LOG_LINES);
                    let _ = write!(h, "<p class=\"meta\">log file <code>{shown}</code>");
                    if left_out > 0 {
                        let _ = write!(
                            h,
                            " · the first {left_out} lines are left out here, the last {LOG_LINES} follow"
                        );
                    }
                    h.push_str("</p>\n");
                    if tail.is_empty() {
                        h.push_str("<p class=\"meta\">The log is empty.</p>\n");
                    } else {
                        let _ = writeln!(h, "<pre class=\"logtext\">{}</pre>", escape(tail));
                    }
                }
                Err(e) => {
                    let _ = writeln!(
                        h,
                        "<p class=\"meta\">log file <code>{shown}</code> cannot be read: {}</p>",
                        escape(&e.to_string())
                    );
                }
            }
        }
    }
    h.push_str("</details>\n");
}

fn sink_block(h: &mut String, i: usize, s: &ScenarioOutcome, sink: &SinkOutcome) {
    let (class, label) = sink_label(&sink.result);
    let _ = writeln!(
        h,
        "<div class=\"sink {class}\">\n<h4><span class=\"badge small {class}\">{label}</span> {}</h4>",
        escape(&sink.name)
    );
    let _ = write!(
        h,
        "<p class=\"meta\">golden <code>{}</code>",
        escape(&sink.golden.display().to_string())
    );
    if let Some(p) = &sink.pending {
        let _ = write!(
            h,
            " · new snapshot for review <code>{}</code>",
            escape(&p.display().to_string())
        );
    }
    h.push_str("</p>\n");
    if !sink.ok() {
        // The task that writes the sink, linked to its log above.
        let links: Vec<String> = s
            .tasks
            .iter()
            .enumerate()
            .filter(|(_, t)| sink.writers.contains(&t.id))
            .map(|(j, t)| {
                format!(
                    "<a href=\"#scenario-{i}-task-{j}\">log of {}</a>",
                    escape(&t.id.0)
                )
            })
            .collect();
        let _ = writeln!(
            h,
            "<p class=\"culprit\">{}{}</p>",
            escape(&sink.headline(&s.tasks)),
            if links.is_empty() {
                String::new()
            } else {
                format!(" · {}", links.join(" · "))
            }
        );
    } else if sink.tolerated > 0 {
        let _ = writeln!(
            h,
            "<p class=\"meta\">{} within tolerance</p>",
            crate::report::count(sink.tolerated, "value")
        );
    }
    let actual_path = s
        .report_dir
        .join("snapshots")
        .join(format!("{}.snap", sink.name));
    match &sink.result {
        SinkResult::Matched => {
            if let Some(r) = sink.ranking.as_ref().filter(|r| !r.changed.is_empty()) {
                let _ = writeln!(
                    h,
                    "<p class=\"meta\">The ranked lists changed within their bounds:</p>\n<pre class=\"tdiff\">{}</pre>",
                    escape(&r.render())
                );
            }
        }
        SinkResult::Differs { diff, table } => {
            let explained = sink.explained(table);
            if !explained.is_empty() {
                let _ = writeln!(h, "<pre class=\"tdiff\">{}</pre>", escape(&explained));
            }
            let texts = std::fs::read_to_string(&sink.golden)
                .and_then(|g| std::fs::read_to_string(&actual_path).map(|a| (g, a)));
            match texts {
                Ok((golden, actual)) => side_by_side_table(h, &golden, &actual),
                Err(_) => unified_block(h, diff),
            }
        }
        SinkResult::NoGolden => match std::fs::read_to_string(&actual_path) {
            Ok(actual) => {
                let _ = writeln!(
                    h,
                    "<details open><summary>No golden file yet. This run saw ({} lines):</summary><pre class=\"snap\">{}</pre></details>",
                    actual.lines().count(),
                    escape(&actual)
                );
            }
            Err(_) => h.push_str("<p class=\"meta\">No golden file yet.</p>\n"),
        },
        SinkResult::Updated { diff: Some(diff) } => {
            h.push_str(
                "<details><summary>The golden was rewritten; the accepted change:</summary>\n",
            );
            unified_block(h, diff);
            h.push_str("</details>\n");
        }
        SinkResult::Updated { diff: None } => {
            h.push_str("<p class=\"meta\">A new golden file was written.</p>\n")
        }
        SinkResult::ReadFailed(e) | SinkResult::WriteFailed(e) => {
            let _ = writeln!(h, "<pre class=\"error\">{}</pre>", escape(e));
        }
    }
    h.push_str("</div>\n");
}

/// Escapes text for element content and quoted attribute values. Control characters other
/// than tab and line breaks (terminal colour codes in logs, say) become their visible symbols,
/// since HTML does not allow them.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\t' | '\n' | '\r' => out.push(c),
            '\u{7f}' => out.push('\u{2421}'),
            c if (c as u32) < 0x20 => {
                out.push(char::from_u32(0x2400 + c as u32).unwrap_or('\u{fffd}'))
            }
            c => out.push(c),
        }
    }
    out
}

/// `d` as a share of `whole`, in percent.
fn percent(d: Duration, whole: Duration) -> f64 {
    if whole.is_zero() {
        0.0
    } else {
        100.0 * d.as_secs_f64() / whole.as_secs_f64()
    }
}

/// `0.31s`, `12.50s`, `2m 05.3s`.
fn secs(d: Duration) -> String {
    if d < Duration::from_secs(60) {
        return format!("{:.2}s", d.as_secs_f64());
    }
    let tenths = (d.as_millis() + 50) / 100;
    format!(
        "{}m {:02}.{}s",
        tenths / 600,
        tenths % 600 / 10,
        tenths % 10
    )
}

/// Scenarios that need a look come first.
fn rank(status: &ScenarioStatus) -> u8 {
    match status {
        ScenarioStatus::Failed => 0,
        ScenarioStatus::InfraError => 1,
        ScenarioStatus::InputError => 2,
        ScenarioStatus::Cancelled => 3,
        ScenarioStatus::Passed => 4,
    }
}

fn scenario_label(s: &ScenarioOutcome) -> (&'static str, &'static str) {
    match s.status {
        ScenarioStatus::Passed if s.flaky() => ("cancelled", "FLAKY"),
        ScenarioStatus::Passed => ("passed", "PASSED"),
        ScenarioStatus::Failed => ("failed", "FAILED"),
        ScenarioStatus::InputError => ("error", "INPUT ERROR"),
        ScenarioStatus::InfraError => ("error", "INFRA ERROR"),
        ScenarioStatus::Cancelled => ("cancelled", "CANCELLED"),
    }
}

fn task_label(status: &TaskStatus) -> (&'static str, &'static str) {
    match status {
        TaskStatus::Succeeded => ("passed", "OK"),
        TaskStatus::Failed(_) => ("failed", "FAILED"),
        TaskStatus::TimedOut(_) => ("failed", "TIMED OUT"),
        TaskStatus::Skipped { .. } | TaskStatus::SkippedByDag => ("skipped", "SKIPPED"),
        TaskStatus::Cancelled => ("cancelled", "CANCELLED"),
    }
}

fn sink_label(result: &SinkResult) -> (&'static str, &'static str) {
    match result {
        SinkResult::Matched => ("passed", "MATCHES"),
        SinkResult::Differs { .. } => ("failed", "DIFFERS"),
        SinkResult::NoGolden => ("failed", "NO GOLDEN"),
        SinkResult::Updated { .. } => ("updated", "UPDATED"),
        SinkResult::ReadFailed(_) => ("failed", "READ FAILED"),
        SinkResult::WriteFailed(_) => ("failed", "NOT WRITTEN"),
    }
}

const CSS: &str = r#"
:root { --red: #cf222e; --red-bg: #ffebe9; --green: #1a7f37; --green-bg: #dafbe1;
  --amber: #9a6700; --grey: #6e7781; --line: #d0d7de; --soft: #f6f8fa; --ink: #1f2328; }
* { box-sizing: border-box; }
body { margin: 0 auto; max-width: 1240px; padding: 16px 24px 48px; color: var(--ink);
  font: 15px/1.45 system-ui, "Segoe UI", "DejaVu Sans", "Liberation Sans", sans-serif; }
code, pre, .sbs td, .timeline .task { font-family: "DejaVu Sans Mono", "Liberation Mono", Menlo, Consolas, monospace; }
code { font-size: 0.9em; background: var(--soft); padding: 0 3px; border-radius: 3px; word-break: break-all; }
h1 { font-size: 28px; margin: 8px 0; }
h2 { font-size: 24px; margin: 0; }
h3 { font-size: 17px; margin: 20px 0 8px; border-bottom: 1px solid var(--line); padding-bottom: 4px; }
h4 { font-size: 15px; margin: 12px 0 4px; }
a { color: #0969da; }
.meta { color: #57606a; margin: 4px 0; font-size: 13px; }
.culprit { font-weight: 600; margin: 6px 0; }
.tdiff { background: #fff8c5; border: 1px solid #d4a72c; padding: 6px 8px; font-size: 12px; white-space: pre-wrap; }
/* Coloured text and frame on white: as prominent as a filled label, and legible to OCR. */
.badge { display: inline-block; padding: 1px 9px; border-radius: 5px; font-weight: 700; letter-spacing: 0.04em;
  vertical-align: middle; background: #fff; color: #57606a; border: 2px solid var(--grey); }
.badge.small { font-size: 11px; padding: 0 5px; border-width: 1px; }
.badge.passed { color: #116329; border-color: var(--green); }
.badge.failed { color: #b3001b; border-color: var(--red); }
.badge.error { color: #7d4e00; border-color: var(--amber); }
.badge.updated { color: #0550ae; border-color: #0969da; }
.badge.skipped { border-style: dashed; }
header.run { border-bottom: 2px solid var(--line); padding-bottom: 12px; }
.tiles { display: flex; gap: 10px; flex-wrap: wrap; margin: 10px 0; }
.tile { border: 1px solid var(--line); border-radius: 6px; padding: 6px 14px; min-width: 110px; }
.tile b { font-size: 22px; display: block; }
.tile.failed { background: var(--red-bg); border-color: var(--red); color: var(--red); }
.tile.passed { background: var(--green-bg); border-color: var(--green); color: var(--green); }
.tile.error { border-color: var(--amber); color: var(--amber); }
.tile.zero { color: #8c959f; }
.banner { background: var(--red-bg); border: 1px solid var(--red); padding: 8px 12px; border-radius: 6px; white-space: pre-wrap; }
table { border-collapse: collapse; }
.stages caption { text-align: left; color: #57606a; font-size: 13px; padding: 4px 0; }
.stages th { text-align: left; font-weight: 500; padding: 1px 12px 1px 0; }
.stages .gauge { width: 320px; } .stages .gauge span { display: block; height: 10px; background: #8c959f; border-radius: 2px; }
.num { text-align: right; font-variant-numeric: tabular-nums; padding: 1px 12px; white-space: nowrap; }
nav { margin: 18px 0; }
nav h2 { font-size: 18px; margin-bottom: 6px; }
.index td { padding: 4px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
.index tr.failed, .index tr.error { background: var(--red-bg); }
.index a { font-weight: 600; font-size: 16px; }
section.scenario { border: 1px solid var(--line); border-left: 8px solid var(--grey); border-radius: 6px;
  margin: 22px 0; padding: 0 16px 14px; }
section.scenario > h2 { margin: 0 -16px 8px; padding: 12px 16px; border-bottom: 1px solid var(--line); font-size: 26px; }
section.scenario .name { font-weight: 700; }
section.scenario .time { font-size: 14px; font-weight: 400; color: #57606a; }
section.passed { border-left-color: var(--green); }
section.failed { border-left-color: var(--red); } section.failed > h2 { background: var(--red-bg); }
section.error { border-left-color: var(--amber); } section.error > h2 { background: #fff8c5; }
.summary { font-size: 16px; margin: 6px 0; }
pre { margin: 6px 0; padding: 8px 10px; background: var(--soft); border-radius: 6px; overflow-x: auto;
  font-size: 12.5px; line-height: 1.4; white-space: pre-wrap; word-break: break-all; }
pre.error { background: var(--red-bg); border: 1px solid var(--red); color: #82071e; font-size: 14px; }
.timeline { display: grid; grid-template-columns: minmax(90px, 220px) 1fr 210px; gap: 5px 12px; align-items: center; margin: 8px 0 12px; }
.timeline .task { overflow: hidden; text-overflow: ellipsis; white-space: nowrap; font-size: 13px; color: var(--ink); text-decoration: none; }
.track { position: relative; height: 20px; background: var(--soft); border-radius: 3px; }
.track.skipped, .track.cancelled { background: repeating-linear-gradient(135deg, var(--soft) 0 6px, #eaeef2 6px 12px); }
.track .note { position: absolute; left: 8px; top: 1px; font-size: 12px; font-style: italic; color: #57606a; white-space: nowrap; }
.bar { position: absolute; top: 0; bottom: 0; min-width: 3px; border-radius: 3px; background: var(--green); }
.bar.failed { background: var(--red); } .bar.cancelled { background: var(--grey); }
.when { font-size: 13px; white-space: nowrap; font-variant-numeric: tabular-nums; }
.axis { display: flex; justify-content: space-between; font-size: 11px; color: #57606a; border-top: 1px solid var(--line); }
details.log { border: 1px solid var(--line); border-radius: 6px; margin: 6px 0; padding: 4px 10px; }
details.log[open] { padding-bottom: 8px; }
details summary { cursor: pointer; }
.attempts { margin: 4px 0; font-size: 13px; }
.sink { margin: 8px 0 14px; }
.sbs { width: 100%; table-layout: fixed; font-size: 12.5px; border: 1px solid var(--line); }
.sbs col.ln { width: 48px; }
.sbs th { background: var(--soft); text-align: left; padding: 4px 8px; border-bottom: 1px solid var(--line); }
.sbs td { padding: 1px 6px; white-space: pre-wrap; word-break: break-all; vertical-align: top; }
.sbs td.ln { text-align: right; color: #8c959f; user-select: none; }
.sbs td.del { background: #ffebe9; } .sbs td.ln.del { background: #ffd7d5; color: #82071e; }
.sbs td.ins { background: #dafbe1; } .sbs td.ln.ins { background: #aceebb; color: #116329; }
.sbs td.none { background: repeating-linear-gradient(135deg, #fff 0 5px, var(--soft) 5px 10px); }
.sbs mark { font-weight: 700; border-radius: 2px; padding: 0 1px; }
.sbs td.del mark { background: #ffaba8; color: #82071e; }
.sbs td.ins mark { background: #7ee29a; color: #0a3622; }
.sbs tr.fold td { background: #ddf4ff; color: #57606a; text-align: center; font-style: italic; }
.udiff span { display: block; } .udiff .ins { background: #dafbe1; } .udiff .del { background: #ffebe9; }
.udiff .hunk { color: #8250df; } .udiff .hd { font-weight: 700; }
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_neutralises_markup_and_quotes() {
        assert_eq!(
            escape(r#"<a href="x" onclick='y'>&amp;</a>"#),
            "&lt;a href=&quot;x&quot; onclick=&#39;y&#39;&gt;&amp;amp;&lt;/a&gt;"
        );
        assert_eq!(escape("plain text, ünïcode"), "plain text, ünïcode");
    }

    #[test]
    fn escape_shows_control_characters_and_keeps_line_breaks() {
        assert_eq!(
            escape("\u{1b}[31mred\u{1b}[0m\n\tx\u{0}"),
            "␛[31mred␛[0m\n\tx␀"
        );
    }

    #[test]
    fn last_lines_keeps_the_end_and_counts_what_it_leaves_out() {
        let text = diff::tests::numbered(2005);
        let (left_out, tail) = last_lines(&text, 2000);
        assert_eq!(left_out, 5);
        assert!(tail.starts_with("line 6\n"), "{}", &tail[..20]);
        assert!(tail.ends_with("line 2005\n"));
        assert_eq!(last_lines("a\nb", 2), (0, "a\nb"));
    }

    #[test]
    fn durations_read_as_seconds_then_minutes() {
        assert_eq!(secs(Duration::from_millis(310)), "0.31s");
        assert_eq!(secs(Duration::from_millis(125_300)), "2m 05.3s");
        assert_eq!(
            percent(Duration::from_secs(1), Duration::from_secs(4)),
            25.0
        );
        assert_eq!(percent(Duration::from_secs(1), Duration::ZERO), 0.0);
    }
}
