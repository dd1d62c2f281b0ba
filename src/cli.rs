//! The command line: `harness run | list | check`, their options, and the mapping from what
//! happened to an exit code.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

use crate::config::{self, Project, Scenario};
use crate::events::Events;
use crate::exit;
use crate::ledger;

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
pub use capture::CaptureArgs;
use clap_complete::engine::ArgValueCompleter;
use clean::{clean, remove_containers, sweep_dead_runs};
pub use completions::Shell;
pub use diff::{DiffArgs, DiffFormat};
use list::{airflow_pipelines, list};
use partition::Partition;
pub use run::exit_code;
use run::run;

/// Tests data pipelines end to end: services up, fixtures in, DAG run, sinks diffed against
/// golden snapshots.
#[derive(Debug, Parser)]
#[command(name = "harness", version, about)]
pub struct Cli {
    /// Run as if started in DIR.
    #[arg(short = 'C', value_name = "DIR", global = true)]
    pub dir: Option<PathBuf>,
    /// When to colour output (NO_COLOR is honoured by `auto`).
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto, global = true)]
    pub color: ColorChoice,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Colour choice.
/// How a run reports as it goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// The live display on stderr and a summary on stdout.
    Human,
    /// One JSON object per event on stdout, ending with `run_finished`.
    Json,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ColorChoice {
    /// Colour on a terminal unless NO_COLOR is set.
    Auto,
    /// Always colour.
    Always,
    /// Never colour.
    Never,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run scenarios (all, or those named; `*` matches any characters).
    Run(RunArgs),
    /// List the scenarios with their pipeline, tasks, seeds and sinks.
    List {
        /// Only the scenarios of partition K of N (as `run --partition` would run them).
        #[arg(long, value_name = "K/N", value_parser = partition::parse)]
        partition: Option<Partition>,
        /// With --partition: balance the partitions by the seconds each scenario took, from
        /// FILE (a `durations.json` or `results.json` of the report folder).
        #[arg(long, value_name = "FILE", requires = "partition")]
        durations: Option<PathBuf>,
    },
    /// Validate every configuration file and fixture; report every problem.
    Check {
        /// What to do with golden files no sink refers to: report them (`warn`), fail on them
        /// (`reject`, exit 2) or remove them (`delete`).
        #[arg(long, value_enum, value_name = "ACTION")]
        unreferenced: Option<Unreferenced>,
    },
    /// List every prerequisite (java, pyspark, postgres, redis-server, docker), found or missing.
    Doctor,
    /// Remove what harness runs that died (SIGKILL, a crash) left: processes, folders and
    /// containers; every command also does it quietly when it starts.
    Clean,
    /// Review pending snapshots (`.snap.new`): accept, reject or skip each, with its diff.
    Review(ReviewArgs),
    /// Show the pending snapshots' differences from their goldens without reviewing them:
    /// unified, `--side-by-side` or `--format json`; exit 1 when there is any.
    Diff(DiffArgs),
    /// Write a scenario and its fixtures from running services: tables, queries and Redis keys,
    /// limited or sampled, with masked columns and keys (see docs/capture.md).
    Capture(Box<CaptureArgs>),
    /// Print the shell script that completes harness's commands, flags, and the project's
    /// scenario, pipeline and sink names: `source <(harness completions bash)`.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: Shell,
    },
    /// Environments kept running between runs: `up`, `down`, `list` (see docs/environments.md).
    #[command(subcommand)]
    Env(EnvCommand),
    /// Docker images of the docker backend.
    #[command(subcommand)]
    Images(ImagesCommand),
    /// Measure the harness's own speed against baselines measured in the same run.
    Bench(BenchArgs),
    /// One measured part of `bench`, run as a child so that its peak memory is its own.
    #[command(hide = true)]
    BenchWorker {
        /// What to do.
        #[arg(value_enum)]
        job: crate::bench::WorkerJob,
        /// Rows of the generated table.
        #[arg(long)]
        rows: usize,
        /// Folder for the golden and the rows as text.
        #[arg(long)]
        dir: PathBuf,
    },
}

/// Options of `harness bench`.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Run only these benches (by number, e.g. `1,4,5`).
    #[arg(long, value_name = "N[,M]", value_delimiter = ',')]
    pub only: Vec<u32>,
    /// Rows (and Redis keys) of the data-size benches.
    #[arg(long, value_name = "N", default_value_t = crate::bench::DEFAULT_ROWS)]
    pub rows: usize,
    /// Also write the figures as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Exit 1 when a figure misses its goal or a bench could not be measured.
    #[arg(long)]
    pub check: bool,
    /// The fewest runs that still give every figure (bench 2 runs its job twice in each mode,
    /// benches 3 and 9 start without a warm-up start): quicker, less steady figures.
    #[arg(long)]
    pub quick: bool,
}

/// What `check --unreferenced` does with orphaned goldens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Unreferenced {
    /// List them.
    Warn,
    /// List them and exit 2.
    Reject,
    /// Remove them.
    Delete,
}

/// Options of `harness review`.
#[derive(Debug, clap::Args)]
pub struct ReviewArgs {
    /// Scenarios to review (names or patterns with `*`); all when none is given.
    #[arg(add = ArgValueCompleter::new(completions::scenarios))]
    pub scenarios: Vec<String>,
    /// Accept every pending snapshot without asking.
    #[arg(long, conflicts_with = "reject_all")]
    pub accept_all: bool,
    /// Reject every pending snapshot without asking.
    #[arg(long)]
    pub reject_all: bool,
}

/// `harness env ...`.
#[derive(Debug, Subcommand)]
pub enum EnvCommand {
    /// Start an environment (services, metastore, Spark session or Connect server) and keep it
    /// running for `harness run --env NAME`; prints its endpoints and writes the contract's
    /// variables to a file.
    Up(EnvUpArgs),
    /// Stop kept environments (by name; `default` when none is given).
    Down {
        /// Their names.
        names: Vec<String>,
        /// Stop every kept environment that is up.
        #[arg(long, conflicts_with = "names")]
        all: bool,
    },
    /// List the kept environments that are up: name, PID, backend, project, services, busy or
    /// idle.
    List {
        /// As one JSON object on stdout.
        #[arg(long)]
        json: bool,
    },
    /// The process of a kept environment (started by `env up`).
    #[command(hide = true)]
    Serve(EnvUpArgs),
}

/// Options of `harness env up`.
#[derive(Debug, Clone, clap::Args)]
pub struct EnvUpArgs {
    /// Start the services these scenarios need (names or patterns with `*`); all when none is
    /// given.
    #[arg(add = ArgValueCompleter::new(completions::scenarios))]
    pub scenarios: Vec<String>,
    /// Its name, for `run --env NAME` and `env down NAME`.
    #[arg(long, value_name = "NAME", default_value = crate::kept::DEFAULT_NAME)]
    pub name: String,
    /// Backend that starts the services.
    #[arg(long, value_name = "auto|local|docker")]
    pub backend: Option<String>,
    /// Start the Spark Connect server too (`connect`), as runs in that mode would.
    #[arg(long, value_name = "submit|connect", value_parser = config::SparkMode::parse)]
    pub spark_mode: Option<config::SparkMode>,
    /// Stop by itself after this long without a run (`90s`, `30m`, `2h`; `0` for never).
    #[arg(long, value_name = "DURATION", default_value = crate::kept::DEFAULT_IDLE)]
    pub idle_timeout: humantime::Duration,
}

/// `harness images ...`.
#[derive(Debug, Subcommand)]
pub enum ImagesCommand {
    /// Build the images the docker backend runs (an unchanged image is never rebuilt).
    Build {
        /// Base image (default: `[images] base` of harness.toml, else debian:bookworm-slim).
        #[arg(long, value_name = "IMAGE")]
        base: Option<String>,
    },
}

/// Options of `harness run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Scenarios to run (names or patterns with `*`); all when none is given.
    #[arg(add = ArgValueCompleter::new(completions::scenarios))]
    pub scenarios: Vec<String>,
    /// Run the selected scenarios on this pipeline instead of the one each names (the same
    /// scenarios through a pipeline's Airflow DAG, say); the tasks they select must exist there.
    #[arg(long, value_name = "NAME", add = ArgValueCompleter::new(completions::pipelines))]
    pub pipeline: Option<String>,
    /// Backend that starts the services.
    #[arg(long, value_name = "auto|local|docker")]
    pub backend: Option<String>,
    /// Write new snapshots as goldens (only for scenarios whose tasks all succeeded).
    #[arg(long)]
    pub update: bool,
    /// Write a JUnit XML report to FILE.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Folder for task logs, snapshots, diffs, results.json and report.html of this run.
    #[arg(long, value_name = "DIR")]
    pub report_dir: Option<PathBuf>,
    /// Tasks of one scenario running at once, at most.
    #[arg(long, value_name = "N")]
    pub task_jobs: Option<usize>,
    /// Run only partition K of N of the selected scenarios (for splitting CI across machines:
    /// every scenario falls in exactly one partition).
    #[arg(long, value_name = "K/N", value_parser = partition::parse)]
    pub partition: Option<Partition>,
    /// With --partition: balance the partitions by the seconds each scenario took, from FILE
    /// (a `durations.json` or `results.json` of an earlier run's report folder; every machine
    /// must be given the same file). A FILE that is not there means partitions by count.
    #[arg(long, value_name = "FILE", requires = "partition")]
    pub durations: Option<PathBuf>,
    /// Run only the scenarios that did not pass last time (recorded in the report folder).
    #[arg(long)]
    pub failed: bool,
    /// Scenarios running at once, each on its own environment: N, or `auto` for as many as the
    /// memory and the cores hold (N is also capped by them; the first lines say why).
    #[arg(short = 'j', long, value_name = "N|auto", default_value = "1", value_parser = parse_jobs)]
    pub jobs: Jobs,
    /// Output: `human` (live display and summary) or `json` (one event per line on stdout).
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
    /// Run a failing scenario up to N more times; a pass after a failure is reported as flaky.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub retries: u32,
    /// Run the selected scenarios N times (2 or more), each on fresh environments, and report
    /// per sink what moved between the runs, with the `tolerance`/`redact` lines that would make
    /// it stable; goldens are not compared nor written. Exit 1 when anything moved.
    #[arg(long, value_name = "N", conflicts_with_all = ["update", "retries"], value_parser = clap::value_parser!(u32).range(2..))]
    pub repeat: Option<u32>,
    /// Run on the kept environment NAME (`harness env up`) instead of starting services: one
    /// scenario at a time, each reset first; the environment stays up after.
    #[arg(long, value_name = "NAME", add = ArgValueCompleter::new(completions::kept))]
    pub env: Option<String>,
    /// Keep the environment this run starts, as the kept environment of `--env` (`default` when
    /// not given); when one of that name is up already, run on it.
    #[arg(long)]
    pub keep_env: bool,
    /// How `spark` tasks run: `submit` (spark-submit each) or `connect` (Python clients of one
    /// Spark Connect server); over the tasks' `spark_mode` and harness.toml, except that jar tasks
    /// and tasks marked `spark_mode = "submit"` are always submitted.
    #[arg(long, value_name = "submit|connect", value_parser = config::SparkMode::parse)]
    pub spark_mode: Option<config::SparkMode>,
}

/// `-j`: a number of environments, or `auto` (`None`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Jobs(pub Option<usize>);

/// `-j`: a number of environments of at least 1, or `auto`.
fn parse_jobs(text: &str) -> Result<Jobs, String> {
    match text.trim() {
        "auto" => Ok(Jobs(None)),
        n => match n.parse::<usize>() {
            Ok(j) if j >= 1 => Ok(Jobs(Some(j))),
            _ => Err(format!(
                "`{text}` is not a number of environments: write N >= 1 or auto"
            )),
        },
    }
}

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
