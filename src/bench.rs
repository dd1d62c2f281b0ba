//! `harness bench`: the harness's own speed, each figure measured next to a real baseline in the
//! same run (a bare task, the services started one by one, GNU `sort` + `diff`, `psql \copy`,
//! `redis-cli --pipe`) and printed as a ratio with its goal and a PASS/MISS mark.
//!
//! The benches form a registry ([`BENCHES`]); one that needs a feature this version lacks is an
//! entry that says why it is not measured. Peak memory is read from `wait4`'s resource usage of
//! a child process: the harness's part runs in `harness bench-worker` (a hidden subcommand), the
//! baselines' programs run as children the same way.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

use crate::backend::{BackendKind, Resolved};
use crate::config::{self, Settings};
use crate::events::{Event, Events};
use crate::outcome::ScenarioStatus;
use crate::runner::{self, RunOptions};
use crate::snapshot::golden::WritePolicy;

mod airflow;
mod child;
mod cold_start;
mod kept;
mod scenarios;
mod seeding;
mod suite;
mod table;

pub use child::Rng;
pub use table::{WorkerJob, generate_table, worker};

use child::{Capture, measure_child};

/// Rows of the data-size benches unless `--rows` says otherwise.
pub const DEFAULT_ROWS: usize = 1_000_000;

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
    /// Bench 4 also at this many times `rows`, with figures of how it scales.
    pub scale: Option<usize>,
    /// Bench 4's trials at each size; its figures are their medians.
    pub trials: usize,
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
        method: Method::Measure(scenarios::overhead),
    },
    Bench {
        id: 2,
        name: "warm (Spark Connect) versus submitted Spark task, same job",
        method: Method::Measure(scenarios::warm_spark),
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
        method: Method::Measure(seeding::seeding),
    },
    Bench {
        id: 6,
        name: "-j2 versus -j1 over 10 scenarios",
        method: Method::Measure(scenarios::parallel),
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
    scale: Option<usize>,
    trials: usize,
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
        scale: opts.scale,
        trials: opts.trials.max(1),
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
    run_noting(ctx, project, opts).map(|(outcome, _)| outcome)
}

/// As [`run_all`], with the notices the run gave (services ready, the Airflow driver ready...),
/// in order.
fn run_noting(
    ctx: &Ctx,
    project: &config::Project,
    opts: &RunOptions,
) -> Result<(crate::outcome::RunOutcome, Vec<String>), String> {
    let selected: Vec<&config::Scenario> = project.scenarios.iter().collect();
    let (events, mut rx) = Events::channel();
    let cancel = tokio_util::sync::CancellationToken::new();
    let outcome = ctx
        .rt
        .block_on(runner::run(project, &selected, opts, &events, &cancel));
    let mut notices = Vec::new();
    while let Ok(event) = rx.try_recv() {
        if let Event::Notice { message } = event {
            notices.push(message);
        }
    }
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
    Ok((outcome, notices))
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
    }
}
