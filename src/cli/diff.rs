//! `harness diff`: the pending snapshots' differences from their goldens, without the
//! interactive review: unified (the default), side by side, or JSON for tools.

use clap::ValueEnum;
use clap_complete::engine::ArgValueCompleter;

use crate::config::Project;
use crate::exit;
use crate::report::{self, Style};
use crate::snapshot::diff;
use crate::snapshot::review::Pending;

/// How `harness diff` shows the differences.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DiffFormat {
    /// Unified diffs (or side by side with `--side-by-side`).
    Text,
    /// One JSON document on stdout.
    Json,
}

/// `harness diff`'s arguments.
#[derive(Debug, clap::Args)]
pub struct DiffArgs {
    /// Scenarios to show (names or patterns with `*`); all when none is given.
    #[arg(add = ArgValueCompleter::new(super::completions::scenarios))]
    pub scenarios: Vec<String>,
    /// Only these sinks (repeatable).
    #[arg(long, value_name = "NAME", add = ArgValueCompleter::new(super::completions::sinks))]
    pub sink: Vec<String>,
    /// The golden and the new snapshot in two columns.
    #[arg(long, conflicts_with = "format")]
    pub side_by_side: bool,
    /// Total width of `--side-by-side` (default: the terminal's, else 160).
    #[arg(long, value_name = "COLUMNS", requires = "side_by_side")]
    pub width: Option<usize>,
    /// `text` or `json`.
    #[arg(long, value_enum, default_value_t = DiffFormat::Text)]
    pub format: DiffFormat,
}

/// Shows the pending differences; exit 1 when there is at least one, 0 when there is none.
pub(super) fn diff(project: &Project, args: &DiffArgs, style: Style) -> i32 {
    let (selected, pending) = match super::pending_of(project, &args.scenarios) {
        Ok(found) => found,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::BAD_INPUT;
        }
    };
    for name in &args.sink {
        if !selected
            .iter()
            .any(|s| s.sinks.iter().any(|k| &k.name == name))
        {
            eprintln!(
                "error: --sink {name}: no selected scenario has a sink of that name (`harness list` shows them)"
            );
            return exit::BAD_INPUT;
        }
    }
    let pending: Vec<Pending> = pending
        .into_iter()
        .filter(|p| args.sink.is_empty() || args.sink.contains(&p.sink))
        .collect();
    let mut shown = Vec::new();
    for p in &pending {
        match p.texts() {
            Ok((golden, new)) => shown.push((p, golden, new)),
            Err(e) => {
                eprintln!("error: {}/{}: {e}", p.scenario, p.sink);
                return exit::BAD_INPUT;
            }
        }
    }
    match args.format {
        DiffFormat::Json => {
            let items: Vec<serde_json::Value> = shown
                .iter()
                .map(|(p, golden, new)| {
                    let changes = diff::changes(golden, new);
                    let count = |tag: &str| changes.iter().filter(|c| c.tag == tag).count();
                    serde_json::json!({
                        "scenario": p.scenario,
                        "sink": p.sink,
                        "golden": p.golden,
                        "pending": p.pending,
                        "golden_exists": p.golden.exists(),
                        "removed": count("delete"),
                        "added": count("insert"),
                        "unified": diff::unified(golden, new, &p.file_name()),
                        "changes": changes,
                    })
                })
                .collect();
            println!(
                "{}",
                serde_json::to_string_pretty(&serde_json::json!({ "pending": items }))
                    .unwrap_or_default()
            );
        }
        DiffFormat::Text if shown.is_empty() => println!("no pending snapshots"),
        DiffFormat::Text => {
            let width = args.width.unwrap_or_else(|| {
                console::Term::stdout()
                    .size_checked()
                    .map_or(160, |(_, cols)| usize::from(cols))
            });
            for (p, golden, new) in &shown {
                println!(
                    "{}",
                    style.paint(
                        &format!("── {}/{}", p.scenario, p.sink),
                        console::Style::new().bold()
                    )
                );
                let name = p.file_name();
                let text = if args.side_by_side {
                    diff::side_by_side(golden, new, &name, width)
                } else {
                    diff::unified(golden, new, &name)
                        .map(|d| report::summary::paint_diff(&d, style))
                };
                print!(
                    "{}",
                    text.unwrap_or_else(|| "(same as the golden)\n".into())
                );
            }
        }
    }
    if shown.is_empty() {
        exit::OK
    } else {
        exit::FAILED
    }
}
