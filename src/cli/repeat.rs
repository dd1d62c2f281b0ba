//! `harness run --repeat N`: the selected scenarios run N times, each time on fresh
//! environments, and every sink's snapshots are compared across the runs
//! (`crate::snapshot::stability`): what moved, and the `tolerance` or `redact` lines that would
//! make it stable. Goldens are neither compared for the verdict nor written.

use std::path::Path;

use tokio_util::sync::CancellationToken;

use crate::config::{Project, Scenario};
use crate::events::Events;
use crate::exit;
use crate::outcome::TaskStatus;
use crate::report::{self, Style};
use crate::runner::{self, RunOptions};
use crate::snapshot::golden::WritePolicy;
use crate::snapshot::stability::{self, SinkStability};

/// Runs `selected` `n` times and reports their stability; exit 1 when anything moved.
pub(super) fn repeat(
    project: &Project,
    selected: &[&Scenario],
    opts: &RunOptions,
    backend: crate::config::BackendChoice,
    n: u32,
    style: Style,
) -> i32 {
    let Some(rt) = super::runtime() else {
        return exit::INFRA;
    };
    let base = opts.report_dir.clone();
    rt.block_on(async {
        let cancel = CancellationToken::new();
        if let Err(e) = crate::signals::install(cancel.clone()) {
            eprintln!("error: cannot install signal handlers: {e}");
            return exit::INFRA;
        }
        let resolved = crate::backend::resolve(backend).await;
        for i in 1..=n {
            let run_opts = RunOptions {
                policy: WritePolicy::Nothing,
                report_dir: base.join(format!("repeat-{i}")),
                backend: resolved.clone(),
                retries: 0,
                ..opts.clone()
            };
            eprintln!("harness: run {i} of {n}");
            let (events, rx) = Events::channel();
            let view = report::terminal::spawn(rx, style);
            let outcome = runner::run(project, selected, &run_opts, &events, &cancel).await;
            drop(events);
            let _ = view.await;
            let code = super::exit_code(&outcome);
            if code != exit::OK && code != exit::FAILED {
                print!("{}", report::summary::render(&outcome, style));
                if let Some(e) = &outcome.infra_error {
                    eprintln!("error: {e}");
                }
                return code;
            }
            // A task that fails makes the comparison meaningless; a snapshot that differs from
            // its golden does not.
            let failed: Vec<String> = outcome
                .scenarios
                .iter()
                .flat_map(|s| {
                    s.tasks
                        .iter()
                        .filter(|t| matches!(t.status, TaskStatus::Failed(_) | TaskStatus::TimedOut(_)))
                        .map(move |t| format!("{}/{}", s.name, t.id))
                })
                .collect();
            if !failed.is_empty() {
                print!("{}", report::summary::render(&outcome, style));
                eprintln!(
                    "error: run {i} of {n}: task{} {} failed; stability is measured on runs whose tasks pass",
                    if failed.len() == 1 { "" } else { "s" },
                    failed.join(", ")
                );
                return exit::FAILED;
            }
        }
        let results = compare(selected, &base, n);
        print!("{}", render(&results, n, style));
        let json = serde_json::json!({
            "runs": n,
            "sinks": results.iter().map(|(scenario, sink, s)| serde_json::json!({
                "scenario": scenario, "sink": sink, "stability": s,
            })).collect::<Vec<_>>(),
        });
        let path = base.join("stability.json");
        if let Err(e) = std::fs::write(&path, format!("{json:#}\n")) {
            eprintln!("warning: cannot write {}: {e}", path.display());
        }
        if results.iter().any(|(_, _, s)| s.moved) {
            exit::FAILED
        } else {
            exit::OK
        }
    })
}

/// Every sink of every selected scenario, with what it did over the runs.
fn compare(selected: &[&Scenario], base: &Path, n: u32) -> Vec<(String, String, SinkStability)> {
    let mut out = Vec::new();
    for s in selected {
        for sink in &s.sinks {
            let mut snapshots = Vec::new();
            let mut missing = Vec::new();
            for i in 1..=n {
                let path = base
                    .join(format!("repeat-{i}"))
                    .join(&s.name.0)
                    .join("snapshots")
                    .join(format!("{}.snap", sink.name));
                match std::fs::read_to_string(&path) {
                    Ok(t) => snapshots.push(t),
                    Err(_) => missing.push(i.to_string()),
                }
            }
            let mut result = stability::analyse(&snapshots, sink.key(), sink.is_table());
            if !missing.is_empty() {
                result.moved = true;
                result
                    .notes
                    .push(format!("not read in run {}", missing.join(", ")));
            }
            out.push((s.name.0.clone(), sink.name.clone(), result));
        }
    }
    out
}

/// The report for people.
fn render(results: &[(String, String, SinkStability)], n: u32, style: Style) -> String {
    use std::fmt::Write as _;
    let mut out = format!("\nstability over {n} runs\n");
    for (scenario, sink, s) in results {
        let label = format!("{scenario}/{sink}");
        if !s.moved {
            let _ = writeln!(
                out,
                "  {} {label}",
                style.paint("stable", console::Style::new().green())
            );
            continue;
        }
        let _ = writeln!(
            out,
            "  {} {label}",
            style.paint("moved ", console::Style::new().red().bold())
        );
        for c in &s.columns {
            let by = match (c.max_abs, c.max_rel) {
                (Some(a), Some(r)) => format!(", by at most {a:.3e} ({r:.1e} relative)"),
                (Some(a), None) => format!(", by at most {a:.3e}"),
                _ => String::new(),
            };
            let _ = writeln!(
                out,
                "    column `{}`: {} value{} moved{by}, e.g. {} → {}",
                c.column,
                c.cells,
                if c.cells == 1 { "" } else { "s" },
                c.example.0,
                c.example.1
            );
        }
        if !s.rows.is_empty() {
            let _ = writeln!(out, "    rows in some runs only: {}", s.rows.join("; "));
        }
        for line in &s.lines {
            let _ = writeln!(out, "    {line}");
        }
        for note in &s.notes {
            let _ = writeln!(out, "    note: {note}");
        }
        if !s.suggestions.is_empty() {
            let _ = writeln!(out, "    to make it stable, add to its [[sink]] table:");
            for line in &s.suggestions {
                let _ = writeln!(out, "      {line}");
            }
        }
    }
    let moved = results.iter().filter(|r| r.2.moved).count();
    let _ = writeln!(
        out,
        "{} sink{} stable, {moved} moved",
        results.len() - moved,
        if results.len() - moved == 1 { "" } else { "s" }
    );
    out
}
