//! `harness run`: the scenarios selected (by name, `--failed`, `--partition`), run on their
//! environments with the live display, then reported (terminal, JSON, JUnit, HTML, GitHub) and
//! recorded for the next run.

use tokio_util::sync::CancellationToken;

use super::{Format, RunArgs, partition, repeat, runtime, select};
use crate::config::{self, BackendChoice, Project};
use crate::events::Events;
use crate::exit;
use crate::outcome::ScenarioStatus;
use crate::report::{self, Style, diagnostics};
use crate::runner::{self, RunOptions};
use crate::snapshot::golden::{self, WritePolicy};

/// `harness run`: selects, plans and runs the scenarios, reports, and gives the exit code.
pub(super) fn run(project: &Project, args: RunArgs, style: Style) -> i32 {
    let retargeted;
    let project = match &args.pipeline {
        None => project,
        Some(name) => {
            let names: Vec<String> = match select(project, &args.scenarios) {
                Ok(s) => s.iter().map(|s| s.name.0.clone()).collect(),
                Err(e) => {
                    eprintln!("error: {e}");
                    return exit::BAD_INPUT;
                }
            };
            match config::retarget(project, name, &names) {
                Ok(p) => {
                    retargeted = p;
                    &retargeted
                }
                Err(e) => {
                    eprintln!("error: --pipeline: {e}");
                    return exit::BAD_INPUT;
                }
            }
        }
    };
    let mut selected = match select(project, &args.scenarios) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::BAD_INPUT;
        }
    };
    let report_dir = match args.report_dir.clone() {
        Some(d) if d.is_absolute() => d,
        Some(d) => std::env::current_dir().map(|c| c.join(&d)).unwrap_or(d),
        None => project.settings.report_dir.clone(),
    };
    if args.failed {
        let failed = report::record::last_failed(&report_dir);
        selected.retain(|s| failed.contains(&s.name.0));
        if selected.is_empty() {
            let msg = "no scenario failed in the last recorded run: nothing to re-run";
            if args.format == Format::Json {
                println!("{}", serde_json::json!({"event": "notice", "message": msg}));
            } else {
                println!("{msg}");
            }
            return exit::OK;
        }
    }
    if let Some(p) = args.partition {
        match partition::durations(args.durations.as_deref()) {
            Ok(d) => selected = p.pick(selected, d.as_ref()),
            Err(e) => {
                eprintln!("error: --durations {e}");
                return exit::BAD_INPUT;
            }
        }
    }
    let backend = match &args.backend {
        None => project.settings.backend,
        Some(b) => match BackendChoice::parse(b) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("error: --backend: {e}");
                return exit::BAD_INPUT;
            }
        },
    };
    if args.task_jobs == Some(0) {
        eprintln!("error: --task-jobs must be at least 1");
        return exit::BAD_INPUT;
    }
    let mut opts = RunOptions {
        policy: WritePolicy::choose(args.update, golden::on_ci()),
        report_dir,
        task_jobs: args.task_jobs.unwrap_or(project.settings.task_jobs),
        retries: args.retries,
        jobs: args.jobs.0,
        backend: crate::backend::Resolved {
            kind: crate::backend::BackendKind::Local,
            reason: String::new(),
        },
        spark_mode: args.spark_mode,
    };

    if let Some(n) = args.repeat {
        if args.format == Format::Json || args.junit.is_some() {
            eprintln!(
                "error: --repeat reports on the terminal and in stability.json; drop --format json and --junit"
            );
            return exit::BAD_INPUT;
        }
        return repeat::repeat(project, &selected, &opts, backend, n, style);
    }
    let Some(rt) = runtime() else {
        return exit::INFRA;
    };
    rt.block_on(async {
        let cancel = CancellationToken::new();
        if let Err(e) = crate::signals::install(cancel.clone()) {
            eprintln!("error: cannot install signal handlers: {e}");
            return exit::INFRA;
        }
        opts.backend = crate::backend::resolve(backend).await;
        let (events, rx) = Events::channel();
        let started = std::time::Instant::now();
        let json = args.format == Format::Json;
        let view = if json {
            report::json::spawn(rx, started)
        } else {
            report::terminal::spawn(rx, style)
        };
        let outcome = runner::run(project, &selected, &opts, &events, &cancel).await;
        drop(events);
        let _ = view.await;

        let code = exit_code(&outcome);
        if let Err(e) = report::record::write(&outcome, &opts.report_dir, code) {
            eprintln!(
                "error: cannot write the run's records in {}: {e}",
                opts.report_dir.display()
            );
        }
        let backend = format!("{} ({})", opts.backend.kind.name(), opts.backend.reason);
        let html = match report::html::write(&outcome, &opts.report_dir, &backend) {
            Ok(()) => Some(opts.report_dir.join("report.html")),
            Err(e) => {
                eprintln!(
                    "warning: cannot write the HTML report in {}: {e}",
                    opts.report_dir.display()
                );
                None
            }
        };
        if let Some(path) = &args.junit
            && let Err(e) = report::junit::write(&outcome, path)
        {
            eprintln!("error: cannot write JUnit report {}: {e}", path.display());
        }
        if json {
            report::json::finish(&outcome, code, started);
        } else {
            print!("{}", report::summary::render(&outcome, style));
            if let Some(html) = html {
                println!("report: {}", html.display());
            }
        }
        if report::github::active() {
            // Annotations are lines on stdout, which JSON output keeps for its events.
            if !json {
                print!("{}", report::github::annotations(&outcome, &project.root));
            }
            if let Err(e) = report::github::append_summary(&outcome) {
                eprintln!("error: cannot append to $GITHUB_STEP_SUMMARY: {e}");
            }
        }
        for s in &outcome.scenarios {
            if let Some(err) = &s.input_error {
                eprint!("{}", diagnostics::render(err, style));
            }
        }
        if let Some(e) = &outcome.infra_error {
            eprintln!("error: {e}");
        }
        code
    })
}

/// The exit code of a run: interruption, then infrastructure, then bad input, then failures.
pub fn exit_code(outcome: &crate::outcome::RunOutcome) -> i32 {
    let any = |st: ScenarioStatus| outcome.scenarios.iter().any(|s| s.status == st);
    if outcome.interrupted {
        exit::INTERRUPTED
    } else if outcome.infra_error.is_some() || any(ScenarioStatus::InfraError) {
        exit::INFRA
    } else if any(ScenarioStatus::InputError) {
        exit::BAD_INPUT
    } else if any(ScenarioStatus::Failed) {
        exit::FAILED
    } else {
        exit::OK
    }
}
