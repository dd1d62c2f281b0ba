//! `harness run`: the scenarios selected (by name, `--failed`, `--partition`), run on their
//! environments with the live display, then reported (terminal, JSON, JUnit, HTML, GitHub) and
//! recorded for the next run.

use tokio_util::sync::CancellationToken;

use super::{Format, RunArgs, partition, repeat, runtime, select};
use crate::backend::{BackendKind, Environment, Resolved};
use crate::config::Scenario;
use crate::config::{self, BackendChoice, Project};
use crate::events::Events;
use crate::exit;
use crate::outcome::ScenarioStatus;
use crate::report::{self, Style, diagnostics};
use crate::runner::{self, RunOptions};
use crate::snapshot::golden::{self, WritePolicy};

/// `harness run`: selects, plans and runs the scenarios, reports, and gives the exit code. (With
/// `--env`/`--keep-env` the run goes to a kept environment instead: `super::env::run_client`.)
pub(super) fn run(project: &Project, args: RunArgs, style: Style) -> i32 {
    let retargeted = match retarget(project, &args) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let project = retargeted.as_ref().unwrap_or(project);
    let (selected, mut opts, backend) = match prepare(project, &args) {
        Ok(p) => p,
        Err(code) => return code,
    };
    if let Some(n) = args.repeat {
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
        execute(project, &selected, &opts, &args, style, None, &cancel).await
    })
}

/// `harness run --env NAME` as the kept environment `env` runs it, in its own process: the
/// same selection, options and reports as [`run`], on `env` (started by `backend`).
pub(super) async fn run_kept(
    project: &Project,
    args: &RunArgs,
    style: Style,
    env: &Environment,
    backend: &Resolved,
    cancel: &CancellationToken,
) -> i32 {
    if args.repeat.is_some() {
        eprintln!(
            "error: --repeat runs each round on fresh environments; drop --env or --keep-env"
        );
        return exit::BAD_INPUT;
    }
    let asked = args.backend.as_deref().map(BackendChoice::parse);
    let clash = match asked {
        Some(Ok(BackendChoice::Local)) => backend.kind != BackendKind::Local,
        Some(Ok(BackendChoice::Docker)) => backend.kind != BackendKind::Docker,
        _ => false,
    };
    if let (true, Some(b)) = (clash, &args.backend) {
        eprintln!(
            "error: --backend {b}: the kept environment runs on the {} backend",
            backend.kind.name()
        );
        return exit::BAD_INPUT;
    }
    let retargeted = match retarget(project, args) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let project = retargeted.as_ref().unwrap_or(project);
    let (selected, mut opts, _) = match prepare(project, args) {
        Ok(p) => p,
        Err(code) => return code,
    };
    opts.backend = backend.clone();
    let missing = runner::missing_services(project, &selected, &opts, env);
    if !missing.is_empty() {
        let names: Vec<&str> = missing.iter().map(|k| k.name()).collect();
        eprintln!(
            "error: the kept environment has no {} (these scenarios need it); stop it with `harness env down` and start it for them with `harness env up SCENARIO...`",
            names.join(", ")
        );
        return exit::BAD_INPUT;
    }
    execute(project, &selected, &opts, args, style, Some(env), cancel).await
}

/// The project as `--pipeline` retargets it, when it is given.
fn retarget(project: &Project, args: &RunArgs) -> Result<Option<Project>, i32> {
    let Some(name) = &args.pipeline else {
        return Ok(None);
    };
    let names: Vec<String> = match select(project, &args.scenarios) {
        Ok(s) => s.iter().map(|s| s.name.0.clone()).collect(),
        Err(e) => {
            eprintln!("error: {e}");
            return Err(exit::BAD_INPUT);
        }
    };
    match config::retarget(project, name, &names) {
        Ok(p) => Ok(Some(p)),
        Err(e) => {
            eprintln!("error: --pipeline: {e}");
            Err(exit::BAD_INPUT)
        }
    }
}

/// The scenarios to run, the options to run them with (the backend left for the caller to
/// resolve) and the backend asked for; `Err` with the exit code when there is nothing to run.
pub(super) fn prepare<'p>(
    project: &'p Project,
    args: &RunArgs,
) -> Result<(Vec<&'p Scenario>, RunOptions, BackendChoice), i32> {
    let mut selected = match select(project, &args.scenarios) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return Err(exit::BAD_INPUT);
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
            return Err(exit::OK);
        }
    }
    if let Some(p) = args.partition {
        match partition::durations(args.durations.as_deref()) {
            Ok(d) => selected = p.pick(selected, d.as_ref()),
            Err(e) => {
                eprintln!("error: --durations {e}");
                return Err(exit::BAD_INPUT);
            }
        }
    }
    let backend = match &args.backend {
        None => project.settings.backend,
        Some(b) => match BackendChoice::parse(b) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("error: --backend: {e}");
                return Err(exit::BAD_INPUT);
            }
        },
    };
    if args.task_jobs == Some(0) {
        eprintln!("error: --task-jobs must be at least 1");
        return Err(exit::BAD_INPUT);
    }
    if args.repeat.is_some() && (args.format == Format::Json || args.junit.is_some()) {
        eprintln!(
            "error: --repeat reports on the terminal and in stability.json; drop --format json and --junit"
        );
        return Err(exit::BAD_INPUT);
    }
    let opts = RunOptions {
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
    Ok((selected, opts, backend))
}

/// Runs `selected` (on `kept` when given, else on environments of their own) with the live
/// display, writes the reports, and gives the exit code.
async fn execute(
    project: &Project,
    selected: &[&Scenario],
    opts: &RunOptions,
    args: &RunArgs,
    style: Style,
    kept: Option<&Environment>,
    cancel: &CancellationToken,
) -> i32 {
    let (events, rx) = Events::channel();
    let started = std::time::Instant::now();
    let json = args.format == Format::Json;
    let view = if json {
        report::json::spawn(rx, started)
    } else {
        report::terminal::spawn(rx, style)
    };
    let outcome = match kept {
        Some(env) => runner::run_on(project, selected, opts, env, &events, cancel).await,
        None => runner::run(project, selected, opts, &events, cancel).await,
    };
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
