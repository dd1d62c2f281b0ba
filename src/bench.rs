//! `harness bench`: the harness's own speed, each figure measured next to a real baseline in the
//! same run (a bare task, the services started one by one, GNU `sort` + `diff`, `psql \copy`,
//! `redis-cli --pipe`) and printed as a ratio with its goal and a PASS/MISS mark.
//!
//! The benches form a registry ([`BENCHES`]); one that needs a feature this version lacks is an
//! entry that says why it is not measured. Peak memory is read from `wait4`'s resource usage of
//! a child process: the harness's part runs in `harness bench-worker` (a hidden subcommand), the
//! baselines' programs run as children the same way.

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::backend::{BackendKind, Environment, Resolved};
use crate::config::fixture::RedisFixture;
use crate::config::{self, ServiceKind, Settings};
use crate::events::Events;
use crate::outcome::ScenarioStatus;
use crate::runner::{self, RunOptions};
use crate::services::postgres::PostgresEndpoint;
use crate::services::redis::RedisEndpoint;
use crate::snapshot::golden::WritePolicy;

mod airflow;
mod cold_start;
mod kept;
mod suite;
mod table;

pub use table::{WorkerJob, generate_table, worker};

/// Rows of the data-size benches unless `--rows` says otherwise.
pub const DEFAULT_ROWS: usize = 1_000_000;
/// Scenarios of the overhead bench.
const SCENARIOS: usize = 5;
/// Rounds of each seeding bench (the best round counts, for the harness and the baseline alike).
const SEED_ROUNDS: usize = 2;

/// What to measure.
#[derive(Debug, Clone)]
pub struct Options {
    /// Bench numbers to run; all when empty.
    pub only: Vec<u32>,
    /// Rows of the data-size benches.
    pub rows: usize,
    /// Where to write the figures as JSON, if anywhere.
    pub json: Option<PathBuf>,
    /// Project settings (Python with PySpark, server locations).
    pub settings: Settings,
    /// The project root (benches 7 and 10 run the example project found there).
    pub root: PathBuf,
    /// The fewest runs that still give every figure: bench 2 runs its job twice in each mode,
    /// benches 3 and 9 start the set without a warm-up start first.
    pub quick: bool,
}

/// What a figure counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    /// Wall time, in seconds.
    Seconds,
    /// Peak resident memory, in bytes.
    Bytes,
    /// Rows (or keys) written per second.
    RowsPerSecond,
}

/// What a figure must reach.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "kind", content = "limit", rename_all = "snake_case")]
pub enum Goal {
    /// The measured value at most this (in the figure's unit).
    AtMost(f64),
    /// The ratio to the baseline at most this.
    RatioAtMost(f64),
    /// The ratio to the baseline at least this.
    RatioAtLeast(f64),
}

/// One measured figure with its baseline.
#[derive(Debug, Clone, Serialize)]
pub struct Figure {
    /// `1`, `4.time`, `5.redis`...
    pub id: String,
    /// What was measured.
    pub name: String,
    /// Its unit (the baseline's too).
    pub unit: Unit,
    /// The harness's value.
    pub value: f64,
    /// The baseline's value, measured in the same run.
    pub baseline: f64,
    /// What the baseline is.
    pub baseline_what: String,
    /// The goal.
    pub goal: Goal,
}

impl Figure {
    /// Value over baseline.
    pub fn ratio(&self) -> f64 {
        if self.baseline > 0.0 {
            self.value / self.baseline
        } else {
            f64::INFINITY
        }
    }

    /// True when the goal is reached.
    pub fn passes(&self) -> bool {
        match self.goal {
            Goal::AtMost(limit) => self.value <= limit,
            Goal::RatioAtMost(limit) => self.ratio() <= limit,
            Goal::RatioAtLeast(limit) => self.ratio() >= limit,
        }
    }

    /// The goal as people read it: `≤ 1 s`, `≥ 0.8× baseline`.
    pub fn goal_text(&self) -> String {
        match self.goal {
            Goal::AtMost(limit) => format!("≤ {}", human(self.unit, limit)),
            Goal::RatioAtMost(r) => format!("≤ {}× baseline", trim_float(r)),
            Goal::RatioAtLeast(r) => format!("≥ {}× baseline", trim_float(r)),
        }
    }
}

/// A bench's result.
#[derive(Debug)]
pub enum Outcome {
    /// Its figures.
    Measured(Vec<Figure>),
    /// Why it was not measured.
    NotMeasured(String),
}

type Measure = fn(&Bench, &Ctx) -> Result<Vec<Figure>, String>;

/// How a registry entry is measured.
#[derive(Debug, Clone, Copy)]
pub enum Method {
    /// By this function.
    Measure(Measure),
    /// Not in this version, for this reason.
    Pending(&'static str),
}

/// One entry of the registry.
#[derive(Debug, Clone, Copy)]
pub struct Bench {
    /// Its number (`--only` picks by it).
    pub id: u32,
    /// What it measures.
    pub name: &'static str,
    /// How.
    pub method: Method,
}

/// Every bench, by number.
pub const BENCHES: &[Bench] = &[
    Bench {
        id: 1,
        name: "per-scenario overhead, reused environment",
        method: Method::Measure(overhead),
    },
    Bench {
        id: 2,
        name: "warm (Spark Connect) versus submitted Spark task, same job",
        method: Method::Measure(warm_spark),
    },
    Bench {
        id: 3,
        name: "cold start of the full local service set",
        method: Method::Measure(cold_start::local_set),
    },
    Bench {
        id: 4,
        name: "canonicalize + diff of a table sink",
        method: Method::Measure(table::canonicalize_and_diff),
    },
    Bench {
        id: 5,
        name: "seeding PostgreSQL (CSV) and Redis (JSON)",
        method: Method::Measure(seeding),
    },
    Bench {
        id: 6,
        name: "-j2 versus -j1 over 10 scenarios",
        method: Method::Measure(parallel),
    },
    Bench {
        id: 7,
        name: "the example suite's wall time versus its tasks' time",
        method: Method::Measure(suite::wall_versus_tasks),
    },
    Bench {
        id: 8,
        name: "one scenario on a kept environment versus on its own (example `als_recommendations`)",
        method: Method::Measure(kept::kept_versus_cold),
    },
    Bench {
        id: 9,
        name: "cold start of the local set with the JVMs a Hive scenario needs",
        method: Method::Measure(cold_start::with_hive_jvm),
    },
    Bench {
        id: 10,
        name: "the example DAG through Airflow versus the same tasks in pipeline.toml",
        method: Method::Measure(airflow::dag_versus_declared),
    },
];

/// What the benches share: settings, an async runtime and a scratch folder.
#[derive(Debug)]
pub struct Ctx {
    rows: usize,
    quick: bool,
    settings: Settings,
    root: PathBuf,
    rt: tokio::runtime::Runtime,
    scratch: crate::ledger::OwnedDir,
}

impl Ctx {
    /// A fresh folder under the scratch folder, reachable by the user PostgreSQL runs as.
    fn folder(&self, name: &str) -> Result<PathBuf, String> {
        let dir = self.scratch.path().join(name);
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        open_up(&dir)?;
        Ok(dir)
    }
}

fn open_up(dir: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))
        .map_err(|e| format!("cannot open {} to other users: {e}", dir.display()))
}

/// What `--check` fails on: every figure that misses its goal and every bench not measured, in
/// words.
pub fn missed(results: &[(Bench, Outcome)]) -> Vec<String> {
    let mut out = Vec::new();
    for (bench, outcome) in results {
        match outcome {
            Outcome::Measured(figures) => out.extend(
                figures
                    .iter()
                    .filter(|f| !f.passes())
                    .map(|f| format!("{} missed its goal ({})", f.id, f.goal_text())),
            ),
            Outcome::NotMeasured(why) => out.push(format!("{} not measured: {why}", bench.id)),
        }
    }
    out
}

/// The numbers `--only` names that no bench has, if any.
pub fn unknown(only: &[u32]) -> Vec<u32> {
    only.iter()
        .copied()
        .filter(|n| !BENCHES.iter().any(|b| b.id == *n))
        .collect()
}

/// Runs the selected benches, prints each figure and the final table, writes the JSON, and
/// returns every bench with its outcome.
pub fn run(opts: &Options) -> Result<Vec<(Bench, Outcome)>, String> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    let scratch = crate::ledger::OwnedDir::new(&std::env::temp_dir(), "harness-bench-")
        .map_err(|e| format!("cannot create a scratch folder: {e}"))?;
    rt.block_on(async { crate::signals::install_abort() })
        .map_err(|e| format!("cannot handle signals: {e}"))?;
    open_up(scratch.path())?;
    let ctx = Ctx {
        rows: opts.rows,
        quick: opts.quick,
        settings: opts.settings.clone(),
        root: opts.root.clone(),
        rt,
        scratch,
    };
    let machine = Machine::detect();
    println!("{}", machine.line());
    let mut results = Vec::new();
    for bench in BENCHES
        .iter()
        .filter(|b| opts.only.is_empty() || opts.only.contains(&b.id))
    {
        println!("{}. {}", bench.id, bench.name);
        let outcome = match bench.method {
            Method::Pending(reason) => Outcome::NotMeasured(reason.to_string()),
            Method::Measure(f) => match f(bench, &ctx) {
                Ok(figures) => Outcome::Measured(figures),
                Err(e) => Outcome::NotMeasured(e),
            },
        };
        match &outcome {
            Outcome::Measured(figures) => {
                for f in figures {
                    println!(
                        "   {}: {} vs {} ({})",
                        f.name,
                        human(f.unit, f.value),
                        human(f.unit, f.baseline),
                        f.baseline_what
                    );
                }
            }
            Outcome::NotMeasured(reason) => println!("   not measured: {reason}"),
        }
        results.push((*bench, outcome));
    }
    println!();
    print!("{}", render_table(&results));
    if let Some(path) = &opts.json {
        let text = to_json(&results, &machine, opts.rows);
        std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    Ok(results)
}

/// The final table: figure, measured value, baseline, ratio, goal, PASS/MISS.
pub fn render_table(results: &[(Bench, Outcome)]) -> String {
    let mut rows: Vec<[String; 7]> = vec![[
        "".into(),
        "figure".into(),
        "measured".into(),
        "baseline".into(),
        "ratio".into(),
        "goal".into(),
        "".into(),
    ]];
    let mut notes = Vec::new();
    let mut pending = Vec::new();
    for (bench, outcome) in results {
        match outcome {
            Outcome::Measured(figures) => {
                for f in figures {
                    rows.push([
                        f.id.clone(),
                        f.name.clone(),
                        human(f.unit, f.value),
                        human(f.unit, f.baseline),
                        format!("{}×", trim_float(round_sig(f.ratio(), 3))),
                        f.goal_text(),
                        if f.passes() { "PASS" } else { "MISS" }.into(),
                    ]);
                    notes.push(format!("{}: baseline = {}", f.id, f.baseline_what));
                }
            }
            Outcome::NotMeasured(reason) => pending.push((
                rows.len(),
                [bench.id.to_string(), bench.name.to_string()],
                format!("not measured: {reason}"),
            )),
        }
    }
    let mut widths = [0usize; 7];
    for r in &rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    for (_, [id, name], _) in &pending {
        widths[0] = widths[0].max(id.chars().count());
        widths[1] = widths[1].max(name.chars().count());
    }
    let pad = |cell: &str, w: usize| format!("{cell}{}", " ".repeat(w - cell.chars().count()));
    let mut lines: Vec<String> = rows
        .iter()
        .map(|r| {
            let cells: Vec<String> = r.iter().zip(widths).map(|(c, w)| pad(c, w)).collect();
            cells.join("  ").trim_end().to_string()
        })
        .collect();
    // A bench not measured says why across the value columns, in its place by number.
    for (at, [id, name], why) in pending.into_iter().rev() {
        lines.insert(
            at,
            format!("{}  {}  {why}", pad(&id, widths[0]), pad(&name, widths[1])),
        );
    }
    let mut out = String::new();
    for l in lines {
        out.push_str(&l);
        out.push('\n');
    }
    for n in notes {
        let _ = writeln!(out, "{n}");
    }
    out
}

/// A value with its unit, the way people read it: `0.182 s`, `12.4 ms`, `412 MB`, `1.25 M rows/s`.
pub fn human(unit: Unit, v: f64) -> String {
    match unit {
        Unit::Seconds if v < 1.0 => format!("{} ms", trim_float(round_sig(v * 1e3, 3))),
        Unit::Seconds => format!("{} s", trim_float(round_sig(v, 3))),
        Unit::Bytes if v >= 1e9 => format!("{} GB", trim_float(round_sig(v / 1e9, 3))),
        Unit::Bytes => format!("{} MB", trim_float(round_sig(v / 1e6, 3))),
        Unit::RowsPerSecond if v >= 1e6 => {
            format!("{} M rows/s", trim_float(round_sig(v / 1e6, 3)))
        }
        Unit::RowsPerSecond => format!("{} k rows/s", trim_float(round_sig(v / 1e3, 3))),
    }
}

/// `v` rounded to `digits` significant digits.
fn round_sig(v: f64, digits: i32) -> f64 {
    if v == 0.0 || !v.is_finite() {
        return v;
    }
    let scale = 10f64.powi(digits - 1 - v.abs().log10().floor() as i32);
    (v * scale).round() / scale
}

/// A float without a trailing `.0` or zeros: `1`, `0.8`, `12.5`.
fn trim_float(v: f64) -> String {
    if !v.is_finite() {
        return format!("{v}");
    }
    let s = format!("{v:.6}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// The machine the figures come from.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    /// Processors available.
    pub nproc: usize,
    /// Total memory, bytes.
    pub memory: u64,
    /// CPU model.
    pub cpu: String,
    /// UTC date of the run.
    pub date: String,
}

impl Machine {
    fn detect() -> Machine {
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let memory = meminfo
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map_or(0, |kb| kb * 1024);
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split_once(':'))
            .map_or_else(|| "unknown".into(), |(_, m)| m.trim().to_string());
        let days = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() / 86_400);
        Machine {
            nproc: std::thread::available_parallelism().map_or(1, |n| n.get()),
            memory,
            cpu,
            date: civil_date(days as i64),
        }
    }

    fn line(&self) -> String {
        format!(
            "machine: {} CPUs ({}), {} memory, {}",
            self.nproc,
            self.cpu,
            human(Unit::Bytes, self.memory as f64),
            self.date
        )
    }
}

/// `YYYY-MM-DD` of a day counted from 1970-01-01 (proleptic Gregorian calendar).
pub fn civil_date(days: i64) -> String {
    let (year, month, day) = crate::services::hive::spark_type::civil(days);
    format!("{year:04}-{month:02}-{day:02}")
}

#[derive(Serialize)]
struct JsonFigure<'a> {
    bench: u32,
    #[serde(flatten)]
    figure: &'a Figure,
    ratio: f64,
    goal_text: String,
    pass: bool,
}

#[derive(Serialize)]
struct JsonPending {
    bench: u32,
    name: &'static str,
    reason: String,
}

#[derive(Serialize)]
struct JsonReport<'a> {
    machine: &'a Machine,
    rows: usize,
    figures: Vec<JsonFigure<'a>>,
    not_measured: Vec<JsonPending>,
}

/// The figures as JSON.
pub fn to_json(results: &[(Bench, Outcome)], machine: &Machine, rows: usize) -> String {
    let mut figures = Vec::new();
    let mut not_measured = Vec::new();
    for (bench, outcome) in results {
        match outcome {
            Outcome::Measured(fs) => figures.extend(fs.iter().map(|f| JsonFigure {
                bench: bench.id,
                figure: f,
                ratio: f.ratio(),
                goal_text: f.goal_text(),
                pass: f.passes(),
            })),
            Outcome::NotMeasured(reason) => not_measured.push(JsonPending {
                bench: bench.id,
                name: bench.name,
                reason: reason.clone(),
            }),
        }
    }
    let report = JsonReport {
        machine,
        rows,
        figures,
        not_measured,
    };
    serde_json::to_string_pretty(&report).unwrap_or_default() + "\n"
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

fn write_file(path: &Path, text: &str) -> Result<(), String> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    }
    std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

// ---------------------------------------------------------------------------------------------
// 1. Per-scenario overhead.

const OVERHEAD_PIPELINE: &str = r#"
services = ["postgres", "redis"]

[tasks.noop]
kind = "command"
argv = ["sh", "-c", "true"]
"#;

const OVERHEAD_SCENARIO: &str = r#"
pipeline = "bench"

[[seed]]
service = "postgres"
sql = "schema.sql"

[[seed]]
service = "postgres"
table = "items"
csv = "items.csv"

[[seed]]
service = "redis"
json = "keys.json"

[[sink]]
name = "items"
service = "postgres"
table = "items"
key = ["id"]
written_by = "noop"

[[sink]]
name = "keys"
service = "redis"
keys = "item:*"
written_by = "noop"
"#;

/// A small project: `scenarios` scenarios seeding PostgreSQL (SQL + CSV) and Redis, the task of
/// `pipeline`, a table sink and a key sink each.
fn overhead_project(dir: &Path, scenarios: usize, pipeline: &str) -> Result<(), String> {
    write_file(&dir.join("harness.toml"), "backend = \"local\"\n")?;
    write_file(&dir.join("pipelines/bench/pipeline.toml"), pipeline)?;
    let mut csv = String::from("id,title,price\n");
    let mut keys = serde_json::Map::new();
    for i in 0..100 {
        let _ = writeln!(csv, "{i},item {i},{}.{:02}", i % 17, i % 100);
        if i < 20 {
            keys.insert(format!("item:{i}"), format!("title {i}").into());
        }
    }
    let keys = serde_json::Value::Object(keys).to_string();
    for s in 1..=scenarios {
        let d = dir.join(format!("scenarios/s{s}"));
        write_file(&d.join("scenario.toml"), OVERHEAD_SCENARIO)?;
        write_file(
            &d.join("schema.sql"),
            "CREATE TABLE items (id int PRIMARY KEY, title text, price numeric(8,2));\n",
        )?;
        write_file(&d.join("items.csv"), &csv)?;
        write_file(&d.join("keys.json"), &keys)?;
    }
    Ok(())
}

/// Loads the bench project in `dir`.
fn load_project(dir: &Path) -> Result<config::Project, String> {
    config::load(dir, &crate::services::rules).map_err(|e| {
        let msgs: Vec<String> = e.0.iter().map(|c| c.to_string()).collect();
        format!("the bench project does not load: {}", msgs.join("; "))
    })
}

/// Run options for a bench: the local backend, goldens written, one task at a time.
fn bench_options(dir: &Path) -> RunOptions {
    RunOptions {
        policy: WritePolicy::Update,
        report_dir: dir.join("report"),
        task_jobs: 1,
        backend: Resolved {
            kind: BackendKind::Local,
            reason: "bench".into(),
        },
        retries: 0,
        jobs: Some(1),
        spark_mode: None,
    }
}

/// Runs every scenario of `project` with `opts`; fails unless every one passed.
fn run_all(
    ctx: &Ctx,
    project: &config::Project,
    opts: &RunOptions,
) -> Result<crate::outcome::RunOutcome, String> {
    let selected: Vec<&config::Scenario> = project.scenarios.iter().collect();
    let (events, _rx) = Events::channel();
    let cancel = tokio_util::sync::CancellationToken::new();
    let outcome = ctx
        .rt
        .block_on(runner::run(project, &selected, opts, &events, &cancel));
    if let Some(e) = &outcome.infra_error {
        return Err(e.to_string());
    }
    if let Some(s) = outcome
        .scenarios
        .iter()
        .find(|s| s.status != ScenarioStatus::Passed)
    {
        return Err(format!(
            "scenario {} did not pass: {}",
            s.name,
            crate::outcome::summary_line(s)
        ));
    }
    Ok(outcome)
}

/// The median over scenarios of one stage time, in seconds.
fn median_of(
    scenarios: &[crate::outcome::ScenarioOutcome],
    f: fn(&crate::outcome::Timings) -> Duration,
) -> f64 {
    median(
        scenarios
            .iter()
            .map(|s| f(&s.timings).as_secs_f64())
            .collect(),
    )
}

fn overhead(bench: &Bench, ctx: &Ctx) -> Result<Vec<Figure>, String> {
    let dir = ctx.folder("overhead")?;
    overhead_project(&dir, SCENARIOS, OVERHEAD_PIPELINE)?;
    let project = load_project(&dir)?;
    let mut opts = bench_options(&dir);
    // The first run writes the goldens; the second one is measured and compares with them.
    run_all(ctx, &project, &opts)?;
    opts.policy = WritePolicy::Nothing;
    let outcome = run_all(ctx, &project, &opts)?;
    Ok(vec![Figure {
        id: bench.id.to_string(),
        name: "overhead per scenario (reset + seed + read + compare)".into(),
        unit: Unit::Seconds,
        value: median_of(&outcome.scenarios, crate::outcome::Timings::overhead),
        baseline: median_of(&outcome.scenarios, |t| t.tasks),
        baseline_what: format!(
            "the same scenarios' task time (one `sh -c true` run by the executor), median of {SCENARIOS}"
        ),
        goal: Goal::AtMost(1.0),
    }])
}

// ---------------------------------------------------------------------------------------------
// 2. Warm Spark.

/// Runs of the job in each mode (2 with `--quick`); the first is left out of the median (it warms
/// the JIT and, in connect mode, the new server).
const SPARK_RUNS: usize = 4;

const SPARK_PIPELINE: &str = r#"
services = ["spark", "redis"]

[tasks.job]
kind = "spark"
script = "job.py"
conf = { "spark.sql.shuffle.partitions" = "2" }
"#;

/// A small aggregation of the kind the example jobs do: a generated table, a group-by, a join,
/// and a few rows back to the driver.
const SPARK_JOB: &str = r#"
from pyspark.sql import SparkSession, functions as F

spark = SparkSession.builder.appName("bench").getOrCreate()
views = spark.range(0, 200000).select(
    (F.col("id") % 1000).alias("user_id"),
    (F.col("id") % 97).alias("item_id"),
    (F.col("id") % 600).cast("double").alias("secs"),
)
items = spark.range(0, 97).select(F.col("id").alias("item_id"), (F.col("id") % 5).alias("genre"))
top = (
    views.join(items, "item_id")
    .groupBy("genre")
    .agg(F.count("*").alias("views"), F.sum("secs").alias("secs"))
    .orderBy("genre")
    .collect()
)
print("genres:", len(top))
"#;

fn warm_spark(bench: &Bench, ctx: &Ctx) -> Result<Vec<Figure>, String> {
    crate::services::spark::discover(&ctx.settings.python)
        .map_err(|e| format!("Spark is not installed here: {e}"))?;
    let dir = ctx.folder("warm_spark")?;
    let python = toml::Value::String(ctx.settings.python.display().to_string());
    write_file(
        &dir.join("harness.toml"),
        &format!("backend = \"local\"\npython = {python}\n"),
    )?;
    write_file(&dir.join("pipelines/bench/pipeline.toml"), SPARK_PIPELINE)?;
    write_file(&dir.join("pipelines/bench/job.py"), SPARK_JOB)?;
    let runs = if ctx.quick { 2 } else { SPARK_RUNS };
    for s in 1..=runs {
        write_file(
            &dir.join(format!("scenarios/s{s}/scenario.toml")),
            "pipeline = \"bench\"\n[[sink]]\nname = \"nothing\"\nservice = \"redis\"\nkeys = \"*\"\n",
        )?;
    }
    let project = load_project(&dir)?;
    let mut opts = bench_options(&dir);
    let mut task_secs = |mode: config::SparkMode| -> Result<f64, String> {
        opts.spark_mode = Some(mode);
        let outcome = run_all(ctx, &project, &opts)?;
        Ok(median_of(&outcome.scenarios[1..], |t| t.tasks))
    };
    let submit = task_secs(config::SparkMode::Submit)?;
    let connect = task_secs(config::SparkMode::Connect)?;
    Ok(vec![Figure {
        id: bench.id.to_string(),
        name: "Spark task on a warm Spark Connect server".into(),
        unit: Unit::Seconds,
        value: connect,
        baseline: submit,
        baseline_what: format!(
            "the same job through spark-submit (local[2]); median of runs 2 to {runs} in each mode"
        ),
        goal: Goal::RatioAtMost(0.3),
    }])
}

// ---------------------------------------------------------------------------------------------
// 6. Parallel scenarios.

/// Scenarios of the parallel bench.
const PARALLEL_SCENARIOS: usize = 10;

/// The overhead bench's pipeline with a task that spends a second away from the CPU, as a job
/// waiting on a database or a remote service does.
const PARALLEL_PIPELINE: &str = r#"
services = ["postgres", "redis"]

[tasks.noop]
kind = "command"
argv = ["sh", "-c", "sleep 1"]
"#;

fn parallel(bench: &Bench, ctx: &Ctx) -> Result<Vec<Figure>, String> {
    let dir = ctx.folder("parallel")?;
    overhead_project(&dir, PARALLEL_SCENARIOS, PARALLEL_PIPELINE)?;
    let project = load_project(&dir)?;
    let mut opts = bench_options(&dir);
    // A first run writes the goldens and warms the page cache and the servers' binaries; both
    // measured runs then do the same work: start, seed, run, read, compare, write nothing.
    run_all(ctx, &project, &opts)?;
    opts.policy = WritePolicy::Nothing;
    let mut wall = |jobs: usize| -> Result<f64, String> {
        opts.jobs = Some(jobs);
        Ok(run_all(ctx, &project, &opts)?.elapsed.as_secs_f64())
    };
    let one = wall(1)?;
    let two = wall(2)?;
    Ok(vec![Figure {
        id: bench.id.to_string(),
        name: format!("wall time of {PARALLEL_SCENARIOS} scenarios with -j2"),
        unit: Unit::Seconds,
        value: two,
        baseline: one,
        baseline_what: format!(
            "the same {PARALLEL_SCENARIOS} scenarios (PostgreSQL and Redis seeds and sinks, a 1 s task each) with -j1, services started included"
        ),
        goal: Goal::RatioAtMost(0.65),
    }])
}

// ---------------------------------------------------------------------------------------------
// Shared by the data benches: generated data and measured children.

/// SplitMix64: a small deterministic generator, so that every run benches the same data.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next number.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number below `n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

/// A child process that ran to its end: wall time, peak resident memory and what it printed.
#[derive(Debug)]
struct ChildRun {
    elapsed: f64,
    max_rss: f64,
    code: i32,
    stdout: Vec<u8>,
}

/// Runs `cmd` and measures it with `wait4` (the child's own peak RSS, not its siblings').
/// Whether [`measure_child`] keeps what the child prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Capture {
    /// Read its stdout into the result.
    Stdout,
    /// Leave its stdout as the command has it (a file, or inherited).
    Nothing,
}

fn measure_child(cmd: &mut Command, capture: Capture) -> Result<ChildRun, String> {
    let what = format!("{:?}", cmd.get_program());
    if capture == Capture::Stdout {
        cmd.stdout(Stdio::piped());
    }
    let t0 = Instant::now();
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot start {what}: {e}"))?;
    let mut stdout = Vec::new();
    if let Some(mut out) = child.stdout.take() {
        let _ = out.read_to_end(&mut stdout);
    }
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: rusage is plain data, valid when zeroed; wait4 writes into the two locals only.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let elapsed = t0.elapsed().as_secs_f64();
    if r != pid {
        return Err(format!(
            "cannot wait for {what}: {}",
            std::io::Error::last_os_error()
        ));
    }
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -1
    };
    Ok(ChildRun {
        elapsed,
        // Linux reports kilobytes.
        max_rss: usage.ru_maxrss as f64 * 1024.0,
        code,
        stdout,
    })
}

// ---------------------------------------------------------------------------------------------
// 5. Seeding.

const SEED_COLUMNS: &str = "id,user_id,item_id,score,title";

fn seed_csv_text(rows: usize) -> String {
    let mut rng = Rng::new(0xc5c5);
    let mut out = String::with_capacity(rows * 48);
    out.push_str(SEED_COLUMNS);
    out.push('\n');
    for id in 0..rows {
        let item = rng.below(50_000);
        let _ = writeln!(
            out,
            "{id},{},{item},{:.6},\"item {item}, \"\"{}\"\"\"",
            rng.below(100_000),
            rng.below(1_000_000) as f64 / 1e5,
            rng.below(1000)
        );
    }
    out
}

/// Redis keys as a fixture (JSON) and as `redis-cli --pipe` input (RESP): one key in ten a hash.
fn seed_redis_texts(rows: usize) -> (String, Vec<u8>) {
    let mut json = String::with_capacity(rows * 40);
    let mut resp = Vec::with_capacity(rows * 60);
    let bulk = |out: &mut Vec<u8>, s: &str| {
        let _ = write!(out, "${}\r\n{s}\r\n", s.len());
    };
    json.push('{');
    for i in 0..rows {
        let key = format!("bench:{i}");
        if i > 0 {
            json.push(',');
        }
        if i % 10 == 0 {
            let _ = write!(
                json,
                "\"{key}\":{{\"type\":\"hash\",\"value\":{{\"a\":\"{i}\",\"b\":\"x\"}}}}"
            );
            resp.extend_from_slice(b"*6\r\n");
            for part in ["HSET", &key, "a", &i.to_string(), "b", "x"] {
                bulk(&mut resp, part);
            }
        } else {
            let value = format!("value {i}");
            let _ = write!(json, "\"{key}\":\"{value}\"");
            resp.extend_from_slice(b"*3\r\n");
            for part in ["SET", &key, &value] {
                bulk(&mut resp, part);
            }
        }
    }
    json.push('}');
    (json, resp)
}

fn program(name: &str, settings: &Settings) -> Result<PathBuf, String> {
    crate::process::which(name)
        .or_else(|| {
            crate::services::postgres::postgres_bin_dir(&settings.postgres)
                .ok()
                .map(|d| d.join(name))
                .filter(|p| p.is_file())
        })
        .ok_or_else(|| format!("`{name}` not found"))
}

fn seeding(bench: &Bench, ctx: &Ctx) -> Result<Vec<Figure>, String> {
    let dir = ctx.folder("seed")?;
    let psql = program("psql", &ctx.settings)?;
    let redis_cli = program("redis-cli", &ctx.settings)?;
    let csv = dir.join("rows.csv");
    write_file(&csv, &seed_csv_text(ctx.rows))?;
    let (json, resp) = seed_redis_texts(ctx.rows);
    let json_path = dir.join("keys.json");
    write_file(&json_path, &json)?;
    drop(json);
    let resp_path = dir.join("keys.resp");
    std::fs::write(&resp_path, resp).map_err(|e| e.to_string())?;

    let env_dir = crate::ledger::make_dir(&std::env::temp_dir(), "harness-env-")
        .map_err(|e| format!("cannot create a temporary folder: {e}"))?;
    let (events, _rx) = Events::channel();
    let env = ctx
        .rt
        .block_on(Environment::start(
            &[ServiceKind::Postgres, ServiceKind::Redis],
            &ctx.settings,
            BackendKind::Local,
            &env_dir,
            &events,
        ))
        .map_err(|e| e.to_string())?;
    let result = (|| {
        let pg = &env
            .get::<crate::services::postgres::PostgresRunning>()
            .ok_or("postgres did not start")?
            .endpoint;
        let redis = &env
            .get::<crate::services::redis::RedisRunning>()
            .ok_or("redis did not start")?
            .endpoint;
        Ok::<_, String>(vec![
            seed_postgres(bench, ctx, pg, &psql, &csv)?,
            seed_redis(bench, ctx, redis, &redis_cli, &json_path, &resp_path)?,
        ])
    })();
    ctx.rt.block_on(env.stop());
    result
}

fn seed_postgres(
    bench: &Bench,
    ctx: &Ctx,
    pg: &PostgresEndpoint,
    psql: &Path,
    csv: &Path,
) -> Result<Figure, String> {
    let columns: Vec<String> = SEED_COLUMNS.split(',').map(String::from).collect();
    let sql = |text: String| {
        ctx.rt.block_on(async {
            let c = pg.connect_to(None).await.map_err(|e| e.to_string())?;
            c.batch_execute(&text).await.map_err(|e| e.to_string())?;
            let n: i64 = c
                .query_one("SELECT count(*) FROM seeded", &[])
                .await
                .map_err(|e| e.to_string())?
                .get(0);
            Ok::<_, String>(n as usize)
        })
    };
    sql("DROP TABLE IF EXISTS seeded; CREATE TABLE seeded (id int8, user_id int8, item_id int8, score float8, title text)".into())?;
    let (mut ours, mut theirs) = (f64::INFINITY, f64::INFINITY);
    for _ in 0..SEED_ROUNDS {
        sql("TRUNCATE seeded".into())?;
        let t0 = Instant::now();
        ctx.rt
            .block_on(pg.seed_csv("seeded", csv, csv, &columns, b',', None))
            .map_err(|e| e.to_string())?;
        ours = ours.min(t0.elapsed().as_secs_f64());
        if sql("SELECT 1".into())? != ctx.rows {
            return Err("the harness's COPY did not load every row".into());
        }
        sql("TRUNCATE seeded".into())?;
        theirs = theirs.min(timed_baseline(
            Command::new(psql)
                .arg(format!(
                    "postgres://{}@{}:{}/{}",
                    pg.user, pg.host, pg.port, pg.database
                ))
                // The password goes by the environment, not the command line (where `ps` shows it).
                .env("PGPASSWORD", &pg.password)
                .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-c"])
                .arg(format!(
                    "\\copy seeded ({SEED_COLUMNS}) FROM '{}' WITH (FORMAT csv, HEADER true)",
                    csv.display()
                ))
                .stdin(Stdio::null()),
            "psql \\copy",
        )?);
        if sql("SELECT 1".into())? != ctx.rows {
            return Err("psql \\copy did not load every row".into());
        }
    }
    Ok(seed_figure(
        bench,
        ctx,
        (
            "postgres",
            format!("PostgreSQL CSV seed (COPY), {} rows", ctx.rows),
        ),
        (ours, theirs),
        format!("psql \\copy of the same CSV into the same server (best of {SEED_ROUNDS} each)"),
    ))
}

fn seed_redis(
    bench: &Bench,
    ctx: &Ctx,
    redis: &RedisEndpoint,
    redis_cli: &Path,
    json_path: &Path,
    resp_path: &Path,
) -> Result<Figure, String> {
    let keys = || {
        ctx.rt.block_on(async {
            let mut c = redis.connect().await.map_err(|e| e.to_string())?;
            redis::cmd("DBSIZE")
                .query_async::<usize>(&mut c)
                .await
                .map_err(|e| e.to_string())
        })
    };
    let flush = || ctx.rt.block_on(redis.reset()).map_err(|e| e.to_string());
    let (mut ours, mut theirs, mut parse) = (f64::INFINITY, f64::INFINITY, f64::INFINITY);
    for _ in 0..SEED_ROUNDS {
        flush()?;
        // From the fixture file to keys in the server, as the baseline goes from its file: the
        // reading and parsing (done when the project loads) is counted with the seed stage.
        let t0 = Instant::now();
        let text = std::fs::read_to_string(json_path).map_err(|e| e.to_string())?;
        let fixture = RedisFixture::parse(&text).map_err(|e| e.message)?;
        let parsed = t0.elapsed().as_secs_f64();
        parse = parse.min(parsed);
        drop(text);
        let t0 = Instant::now();
        ctx.rt
            .block_on(redis.seed(&fixture))
            .map_err(|e| e.to_string())?;
        ours = ours.min(parsed + t0.elapsed().as_secs_f64());
        drop(fixture);
        if keys()? != ctx.rows {
            return Err("the harness's seed did not write every key".into());
        }
        flush()?;
        let input = std::fs::File::open(resp_path).map_err(|e| e.to_string())?;
        theirs = theirs.min(timed_baseline(
            Command::new(redis_cli)
                .args(["-h", &redis.host, "-p", &redis.port.to_string(), "--pipe"])
                // The password goes by the environment, not the command line (where `ps` shows it).
                .env("REDISCLI_AUTH", &redis.password)
                .stdin(input),
            "redis-cli --pipe",
        )?);
        if keys()? != ctx.rows {
            return Err("redis-cli --pipe did not write every key".into());
        }
    }
    Ok(seed_figure(
        bench,
        ctx,
        (
            "redis",
            format!(
                "Redis JSON fixture read, parsed and seeded, {} keys",
                ctx.rows
            ),
        ),
        (ours, theirs),
        format!(
            "redis-cli --pipe of the same keys from a RESP file into the same server (best of {SEED_ROUNDS} each); of the harness's time, reading and parsing the JSON fixture took {}",
            human(Unit::Seconds, parse)
        ),
    ))
}

/// Runs a baseline program to its end: its wall time, or why it failed.
fn timed_baseline(cmd: &mut Command, what: &str) -> Result<f64, String> {
    let run = measure_child(cmd, Capture::Nothing)?;
    if run.code != 0 {
        return Err(format!("{what} failed (exit {})", run.code));
    }
    Ok(run.elapsed)
}

/// A seeding figure: rows per second of the harness against the baseline's, from their times.
fn seed_figure(
    bench: &Bench,
    ctx: &Ctx,
    (which, name): (&str, String),
    (ours, theirs): (f64, f64),
    baseline_what: String,
) -> Figure {
    let rows = ctx.rows as f64;
    Figure {
        id: format!("{}.{which}", bench.id),
        name,
        unit: Unit::RowsPerSecond,
        value: rows / ours,
        baseline: rows / theirs,
        baseline_what,
        goal: Goal::RatioAtLeast(0.8),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::Value;

    fn figure(unit: Unit, value: f64, baseline: f64, goal: Goal) -> Figure {
        Figure {
            id: "1".into(),
            name: "x".into(),
            unit,
            value,
            baseline,
            baseline_what: "y".into(),
            goal,
        }
    }

    #[test]
    fn values_read_the_way_people_say_them() {
        assert_eq!(human(Unit::Seconds, 0.18234), "182 ms");
        assert_eq!(human(Unit::Seconds, 4.0), "4 s");
        assert_eq!(human(Unit::Seconds, 12.345), "12.3 s");
        assert_eq!(human(Unit::Bytes, 412_345_678.0), "412 MB");
        assert_eq!(human(Unit::Bytes, 1.5e9), "1.5 GB");
        assert_eq!(human(Unit::RowsPerSecond, 1_254_000.0), "1.25 M rows/s");
        assert_eq!(human(Unit::RowsPerSecond, 98_765.0), "98.8 k rows/s");
    }

    #[test]
    fn check_names_every_missed_goal_and_every_bench_not_measured() {
        let met = figure(Unit::Seconds, 0.5, 1.0, Goal::RatioAtMost(1.0));
        let mut missed_figure = figure(Unit::Seconds, 2.0, 1.0, Goal::RatioAtMost(1.0));
        missed_figure.id = "4.time".into();
        let results = vec![
            (BENCHES[0], Outcome::Measured(vec![met.clone()])),
            (BENCHES[3], Outcome::Measured(vec![met, missed_figure])),
            (BENCHES[1], Outcome::NotMeasured("no Java".into())),
        ];
        assert_eq!(
            missed(&results),
            [
                "4.time missed its goal (≤ 1× baseline)".to_string(),
                "2 not measured: no Java".to_string()
            ]
        );
        assert!(missed(&results[..1]).is_empty());
    }

    #[test]
    fn goals_pass_or_miss_on_value_or_ratio() {
        let f = figure(Unit::Seconds, 0.5, 0.01, Goal::AtMost(1.0));
        assert!(f.passes());
        assert_eq!(f.goal_text(), "≤ 1 s");
        assert_eq!(f.ratio(), 50.0);
        let f = figure(Unit::Seconds, 2.0, 1.0, Goal::RatioAtMost(1.0));
        assert!(!f.passes());
        assert_eq!(f.goal_text(), "≤ 1× baseline");
        let f = figure(Unit::RowsPerSecond, 80.0, 100.0, Goal::RatioAtLeast(0.8));
        assert!(f.passes());
        assert_eq!(f.goal_text(), "≥ 0.8× baseline");
        let f = figure(Unit::Bytes, 6e8, 1e8, Goal::AtMost(0.5e9));
        assert!(!f.passes());
        assert_eq!(f.goal_text(), "≤ 500 MB");
    }

    #[test]
    fn the_table_marks_each_goal_and_says_what_was_not_measured() {
        let results = vec![
            (
                BENCHES[0],
                Outcome::Measured(vec![figure(Unit::Seconds, 0.2, 0.004, Goal::AtMost(1.0))]),
            ),
            (BENCHES[1], Outcome::NotMeasured("later".into())),
        ];
        let text = render_table(&results);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("   figure"), "{text}");
        assert!(
            lines[1].contains("200 ms") && lines[1].contains("4 ms"),
            "{text}"
        );
        assert!(
            lines[1].contains("50×") && lines[1].ends_with("PASS"),
            "{text}"
        );
        assert!(lines[2].contains("not measured: later"), "{text}");
        assert_eq!(lines[3], "1: baseline = y");
    }

    #[test]
    fn json_has_each_figure_with_baseline_and_ratio() {
        let results = vec![(
            BENCHES[0],
            Outcome::Measured(vec![figure(Unit::Seconds, 0.2, 0.1, Goal::AtMost(1.0))]),
        )];
        let machine = Machine {
            nproc: 2,
            memory: 1,
            cpu: "c".into(),
            date: "2026-01-01".into(),
        };
        let v: serde_json::Value =
            serde_json::from_str(&to_json(&results, &machine, 10)).expect("json");
        let f = &v["figures"][0];
        assert_eq!(f["id"], "1");
        assert_eq!(f["baseline"], 0.1);
        assert_eq!(f["ratio"], 2.0);
        assert_eq!(f["pass"], true);
        assert_eq!(f["goal"]["kind"], "at_most");
    }

    #[test]
    fn dates_are_civil() {
        assert_eq!(civil_date(0), "1970-01-01");
        assert_eq!(civil_date(20_417), "2025-11-25");
        assert_eq!(civil_date(11_016), "2000-02-29");
    }

    #[test]
    fn generated_data_is_the_same_every_time() {
        let a = generate_table(500, false);
        assert_eq!(a, generate_table(500, false));
        assert_eq!(a.rows.len(), 500);
        let g = generate_table(500, true);
        let differ = a.rows.iter().zip(&g.rows).filter(|(x, y)| x != y).count();
        assert_eq!(differ, 5);
        // Shuffled: not in id order.
        assert_ne!(a.rows[0][0], Value::Int(0));
        assert_eq!(seed_csv_text(50), seed_csv_text(50));
        assert_eq!(seed_redis_texts(50), seed_redis_texts(50));
    }

    #[test]
    fn redis_fixture_and_pipe_input_hold_the_same_keys() {
        let (json, resp) = seed_redis_texts(20);
        let fixture = RedisFixture::parse(&json).expect("valid fixture");
        assert_eq!(fixture.0.len(), 20);
        let resp = String::from_utf8(resp).expect("utf-8");
        assert_eq!(resp.matches("*3\r\n$3\r\nSET\r\n").count(), 18);
        assert_eq!(resp.matches("*6\r\n$4\r\nHSET\r\n").count(), 2);
    }
}
