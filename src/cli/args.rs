//! The command line's arguments: the commands, their options and how `-j` is read.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};
use clap_complete::engine::ArgValueCompleter;

use super::capture::CaptureArgs;
use super::completions::{self, Shell};
use super::diff::DiffArgs;
use super::partition::{self, Partition};
use crate::config;

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
    /// Bench 4 also at F times `--rows` (F ≥ 2), with figures 4.scale.time and 4.scale.memory:
    /// the larger size against F times the smaller, goal ≤ 1×.
    #[arg(long, value_name = "F", value_parser = clap::value_parser!(u32).range(2..))]
    pub scale: Option<u32>,
    /// Trials of benches 4 (at each size, sizes taken in turn) and 10; their figures are the
    /// medians.
    #[arg(long, value_name = "K", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub trials: u32,
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
