//! The command line: `harness run | list | check`, their options, and the mapping from what
//! happened to an exit code.

use std::path::PathBuf;

use clap::Parser;

use crate::config::{self, Project, Scenario};
use crate::events::Events;
use crate::exit;
use crate::ledger;

mod args;
mod capture;
mod clean;
mod completions;
mod diff;
mod env;
mod list;
pub mod partition;
mod repeat;
mod run;
use crate::report::{self, Style, diagnostics};
pub use args::{
    BenchArgs, Cli, ColorChoice, Command, EnvCommand, EnvUpArgs, Format, ImagesCommand, Jobs,
    ReviewArgs, RunArgs, Unreferenced,
};
pub use capture::CaptureArgs;
use clean::{clean, remove_containers, sweep_dead_runs};
pub use completions::Shell;
pub use diff::{DiffArgs, DiffFormat};
use list::{airflow_pipelines, list};
pub use run::exit_code;
use run::run;

/// Parses the process's arguments, runs, and returns the exit code. Every command first sweeps
/// what dead harness runs left on the machine (`harness clean` does it out loud), keeps a ledger
/// of what it starts itself, and removes whatever of that is still there when it ends.
pub fn main() -> i32 {
    completions::answer_if_asked();
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                exit::BAD_INPUT
            } else {
                exit::OK
            };
        }
    };
    if let Command::Completions { shell } = cli.command {
        return completions::print(shell);
    }
    // The commands that stop cleanly hold a signal from here until their handlers are in place.
    let holds_signals = match &cli.command {
        Command::Run(args) => args.env.is_none() && !args.keep_env,
        Command::Env(EnvCommand::Serve(_)) => true,
        _ => false,
    };
    if holds_signals {
        crate::signals::defer();
    }
    // Still one thread: the ledger marks the process's own environment.
    let ledger = ledger::open();
    if let Err(e) = &ledger {
        eprintln!("warning: {e}");
    }
    let code = if matches!(cli.command, Command::Clean) {
        clean()
    } else {
        sweep_dead_runs();
        let code = dispatch(cli);
        // A signal held before the handlers were installed that no handler took: the command
        // stopped before its run began, because of it.
        if holds_signals && crate::signals::interrupted() {
            eprintln!("harness: interrupted");
            exit::INTERRUPTED
        } else {
            code
        }
    };
    if let Ok(l) = ledger {
        let left = l.close();
        if left.has_news() {
            eprintln!("harness: removed what this run left: {}", left.describe());
        }
        if !left.containers.is_empty() {
            remove_containers(&[left]);
        }
    }
    code
}

fn dispatch(cli: Cli) -> i32 {
    let style = Style::detect(match cli.color {
        ColorChoice::Auto => None,
        ColorChoice::Always => Some(true),
        ColorChoice::Never => Some(false),
    });
    let start = match &cli.dir {
        Some(d) => d.clone(),
        None => std::env::current_dir().unwrap_or_else(|_| PathBuf::from(".")),
    };
    let start = std::fs::canonicalize(&start).unwrap_or(start);
    if !start.is_dir() {
        eprintln!("error: -C {}: not a folder", start.display());
        return exit::BAD_INPUT;
    }
    let root = config::find_root(&start);
    if let Command::Images(ImagesCommand::Build { base }) = &cli.command {
        return match settings_only(&root, style) {
            Ok(settings) => build_images(&settings, base.as_deref(), style),
            Err(code) => code,
        };
    }
    if let Command::BenchWorker { job, rows, dir } = &cli.command {
        return match crate::bench::worker(*job, *rows, dir) {
            Ok(()) => exit::OK,
            Err(e) => {
                eprintln!("error: {e}");
                exit::INFRA
            }
        };
    }
    if let Command::Bench(args) = &cli.command {
        return match settings_only(&root, style) {
            Ok(settings) => bench(args, settings, root),
            Err(code) => code,
        };
    }
    if let Command::Capture(args) = &cli.command {
        // A capture writes a new scenario: the project's other files need not load.
        return match settings_only(&root, style) {
            Ok(settings) => capture::capture(&root, &settings, args),
            Err(code) => code,
        };
    }
    // Kept environments are listed and stopped wherever the command runs.
    match &cli.command {
        Command::Env(EnvCommand::List { json }) => return env::list(*json),
        Command::Env(EnvCommand::Down { names, all }) => return env::down(names, *all),
        _ => {}
    }
    if let Command::Doctor = cli.command {
        // Doctor must work on a project whose pipelines and scenarios do not load; it reads
        // harness.toml only, which must be right.
        return match settings_only(&root, style) {
            Ok(settings) => doctor(&settings, style),
            Err(code) => code,
        };
    }
    // A run sent to a kept environment is loaded there; here only to start one.
    if let Command::Run(args) = &cli.command
        && (args.env.is_some() || args.keep_env)
    {
        return env::run_client(&root, args, style, || {
            config::load(&root, &crate::services::rules)
                .map_err(|errors| config_failure(&errors.0, style))
        });
    }
    let project = match config::load(&root, &crate::services::rules) {
        Ok(p) => p,
        // The project's DAG parse stopped by a held signal: said as the interruption it is.
        Err(_) if crate::signals::interrupted() => return exit::INTERRUPTED,
        Err(errors) => return config_failure(&errors.0, style),
    };
    match cli.command {
        Command::Check { unreferenced } => {
            if let Some(action) = unreferenced {
                let orphans =
                    crate::snapshot::golden::unreferenced(project.scenarios.iter().map(|s| {
                        (
                            s.dir.as_path(),
                            s.sinks.iter().map(|k| k.golden.as_path()).collect(),
                        )
                    }));
                for o in &orphans {
                    let shown = config::display_path(&project.root, o);
                    match action {
                        Unreferenced::Delete => match std::fs::remove_file(o) {
                            Ok(()) => println!("deleted {}: no sink refers to it", shown.display()),
                            Err(e) => {
                                eprintln!("error: cannot delete {}: {e}", shown.display());
                                return exit::BAD_INPUT;
                            }
                        },
                        _ => eprintln!(
                            "{}: {}: no sink refers to this golden file",
                            if action == Unreferenced::Reject {
                                "error"
                            } else {
                                "warning"
                            },
                            shown.display()
                        ),
                    }
                }
                if action == Unreferenced::Reject && !orphans.is_empty() {
                    eprintln!(
                        "error: {} unreferenced",
                        report::count(orphans.len(), "golden file")
                    );
                    return exit::BAD_INPUT;
                }
            }
            println!(
                "{}, {}: no problems found",
                report::count(project.pipelines.len(), "pipeline"),
                report::count(project.scenarios.len(), "scenario")
            );
            print!("{}", airflow_pipelines(&project));
            exit::OK
        }
        Command::List {
            partition,
            durations,
        } => {
            let mut scenarios: Vec<&Scenario> = project.scenarios.iter().collect();
            if let Some(p) = partition {
                match partition::durations(durations.as_deref()) {
                    Ok(d) => scenarios = p.pick(scenarios, d.as_ref()),
                    Err(e) => {
                        eprintln!("error: --durations {e}");
                        return exit::BAD_INPUT;
                    }
                }
            }
            print!("{}", list(&project, &scenarios));
            print!("{}", airflow_pipelines(&project));
            exit::OK
        }
        Command::Run(args) => run(&project, args, style),
        Command::Env(command) => env::env(&project, command, style),
        Command::Review(args) => review(&project, &args, style),
        Command::Diff(args) => diff::diff(&project, &args, style),
        Command::Doctor => doctor(&project.settings, style),
        Command::Images(ImagesCommand::Build { base }) => {
            build_images(&project.settings, base.as_deref(), style)
        }
        Command::Bench(_)
        | Command::Capture(_)
        | Command::BenchWorker { .. }
        | Command::Clean
        | Command::Completions { .. } => exit::OK,
    }
}

/// Renders configuration errors and gives the exit code they mean.
fn config_failure(errors: &[config::ConfigError], style: Style) -> i32 {
    eprint!("{}", diagnostics::render_all(errors, style));
    // Airflow missing is this machine's problem, not the user's files.
    if errors.iter().any(|e| e.missing_prerequisite) {
        exit::INFRA
    } else {
        exit::BAD_INPUT
    }
}

/// The project's settings alone (harness.toml), for the commands that need nothing else; its
/// errors are rendered as `run` renders them, and give the exit code.
fn settings_only(root: &std::path::Path, style: Style) -> Result<config::Settings, i32> {
    let mut errors = Vec::new();
    let settings = config::settings::load(root, &mut errors);
    if errors.is_empty() {
        Ok(settings)
    } else {
        Err(config_failure(&errors, style))
    }
}

fn bench(args: &BenchArgs, settings: config::Settings, root: PathBuf) -> i32 {
    let unknown = crate::bench::unknown(&args.only);
    if !unknown.is_empty() {
        let known: Vec<String> = crate::bench::BENCHES
            .iter()
            .map(|b| b.id.to_string())
            .collect();
        eprintln!(
            "error: --only: no bench numbered {unknown:?}; the benches are {}",
            known.join(", ")
        );
        return exit::BAD_INPUT;
    }
    if args.rows == 0 {
        eprintln!("error: --rows must be at least 1");
        return exit::BAD_INPUT;
    }
    let opts = crate::bench::Options {
        only: args.only.clone(),
        rows: args.rows,
        json: args.json.clone(),
        settings,
        root,
        quick: args.quick,
        scale: args.scale.map(|f| f as usize),
        trials: args.trials as usize,
    };
    match crate::bench::run(&opts) {
        Ok(results) if args.check => {
            let missed = crate::bench::missed(&results);
            if missed.is_empty() {
                exit::OK
            } else {
                eprintln!("bench --check: {}", missed.join("; "));
                exit::FAILED
            }
        }
        Ok(_) => exit::OK,
        Err(e) => {
            eprintln!("error: {e}");
            exit::INFRA
        }
    }
}

/// The async runtime of a command, or `None` (said on stderr) when it cannot start.
fn runtime() -> Option<tokio::runtime::Runtime> {
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => Some(rt),
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            None
        }
    }
}

fn build_images(settings: &config::Settings, base: Option<&str>, style: Style) -> i32 {
    let base = base.unwrap_or(&settings.image_base).to_string();
    let Some(rt) = runtime() else {
        return exit::INFRA;
    };
    rt.block_on(async {
        let docker = match crate::backend::docker::connect().await {
            Ok(d) => d,
            Err(e) => {
                eprintln!("error: {e}");
                return exit::INFRA;
            }
        };
        let jars = match crate::services::spark::discover(&settings.python) {
            Ok(i) => i.spark_home.join("jars"),
            Err(e) => {
                eprintln!("error: the metastore image takes PySpark's jars: {e}");
                return exit::INFRA;
            }
        };
        let (events, rx) = Events::channel();
        let view = report::terminal::spawn(rx, style);
        let mut code = exit::OK;
        for spec in crate::services::REGISTRY.iter().filter_map(|s| s.image()) {
            let jars = spec.needs_jars.then_some(jars.as_path());
            match crate::backend::docker::ensure_image(&docker, &spec, &base, jars, &events).await {
                Ok(name) => println!("{name}"),
                Err(e) => {
                    eprintln!("error: {e}");
                    code = exit::INFRA;
                    break;
                }
            }
        }
        drop(events);
        let _ = view.await;
        code
    })
}

fn doctor(settings: &config::Settings, style: Style) -> i32 {
    let checks = crate::doctor::checks(settings);
    let width = checks.iter().map(|c| c.name.len()).max().unwrap_or(0);
    for c in &checks {
        match &c.found {
            Some(found) => println!(
                "{} {:width$}  {found}",
                style.paint("found  ", console::Style::new().green()),
                c.name
            ),
            None => {
                let tag = if c.required {
                    style.paint("MISSING", console::Style::new().red().bold())
                } else {
                    style.paint("absent ", console::Style::new().yellow())
                };
                println!("{tag} {:width$}  {}", c.name, c.how);
            }
        }
    }
    let missing = checks
        .iter()
        .filter(|c| c.required && c.found.is_none())
        .count();
    if missing == 0 {
        println!("everything needed is here");
        exit::OK
    } else {
        println!("{missing} missing; scripts/setup.sh installs them");
        exit::INFRA
    }
}

/// Picks scenarios by name or `*` pattern; unknown names are errors.
pub fn select<'a>(project: &'a Project, patterns: &[String]) -> Result<Vec<&'a Scenario>, String> {
    if patterns.is_empty() {
        return Ok(project.scenarios.iter().collect());
    }
    let mut picked: Vec<&Scenario> = Vec::new();
    for pat in patterns {
        let matches: Vec<&Scenario> = project
            .scenarios
            .iter()
            .filter(|s| config::glob_match(pat, &s.name.0))
            .collect();
        if matches.is_empty() {
            let names = project.scenarios.iter().map(|s| s.name.0.as_str());
            let hint = match config::diagnostic::did_you_mean(pat, names) {
                Some(b) => format!("; did you mean `{b}`?"),
                None => "; `harness list` shows the scenarios".into(),
            };
            return Err(format!("no scenario matches `{pat}`{hint}"));
        }
        for m in matches {
            if !picked.iter().any(|p| p.name == m.name) {
                picked.push(m);
            }
        }
    }
    Ok(picked)
}

/// The scenarios `patterns` select, with the pending snapshots beside their goldens.
fn pending_of<'a>(
    project: &'a Project,
    patterns: &[String],
) -> Result<(Vec<&'a Scenario>, Vec<crate::snapshot::review::Pending>), String> {
    let selected = select(project, patterns)?;
    let dirs: Vec<(String, PathBuf)> = selected
        .iter()
        .map(|s| (s.name.0.clone(), s.dir.clone()))
        .collect();
    let pending = crate::snapshot::review::find(&dirs);
    Ok((selected, pending))
}

fn review(project: &Project, args: &ReviewArgs, style: Style) -> i32 {
    use std::io::{BufRead, Write};
    let pending = match pending_of(project, &args.scenarios) {
        Ok((_, p)) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::BAD_INPUT;
        }
    };
    if pending.is_empty() {
        println!("no pending snapshots");
        return exit::OK;
    }
    let stdin = std::io::stdin();
    let mut answers = stdin.lock().lines();
    let (mut accepted, mut rejected, mut skipped) = (0, 0, 0);
    for p in &pending {
        let label = format!("{}/{}", p.scenario, p.sink);
        let choice = if args.accept_all {
            'a'
        } else if args.reject_all {
            'r'
        } else {
            let (golden, new) = match p.texts() {
                Ok(t) => t,
                Err(e) => {
                    eprintln!("error: {label}: {e}");
                    return exit::BAD_INPUT;
                }
            };
            let name = p.file_name();
            println!(
                "{}",
                style.paint(&format!("── {label}"), console::Style::new().bold())
            );
            match crate::snapshot::diff::unified(&golden, &new, &name) {
                Some(d) => print!("{}", report::summary::paint_diff(&d, style)),
                None => println!("(same as the golden)"),
            }
            print!("accept, reject or skip? [a/r/s] ");
            let _ = std::io::stdout().flush();
            match answers.next() {
                Some(Ok(line)) => line
                    .trim()
                    .chars()
                    .next()
                    .unwrap_or('s')
                    .to_ascii_lowercase(),
                _ => {
                    println!();
                    'q'
                }
            }
        };
        let result = match choice {
            'a' => p.accept().map(|()| {
                accepted += 1;
                println!("accepted {label}");
            }),
            'r' => p.reject().map(|()| {
                rejected += 1;
                println!("rejected {label}");
            }),
            'q' => break,
            _ => {
                skipped += 1;
                Ok(())
            }
        };
        if let Err(e) = result {
            eprintln!("error: {label}: {e}");
            return exit::BAD_INPUT;
        }
    }
    println!("{accepted} accepted, {rejected} rejected, {skipped} skipped");
    exit::OK
}
