//! Benches 1, 2 and 6: small projects run as `harness run` runs them, in this process: the
//! per-scenario overhead on a reused environment, a Spark task warm on a Spark Connect server
//! against the same job submitted, and ten off-CPU scenarios with `-j2` against `-j1`.

use std::fmt::Write as _;
use std::path::Path;

use super::{
    Bench, Ctx, Figure, Goal, Unit, bench_options, load_project, median_of, run_all, write_file,
};
use crate::config;
use crate::snapshot::golden::WritePolicy;

/// Scenarios of the overhead bench.
const SCENARIOS: usize = 5;

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

pub(super) fn overhead(bench: &Bench, ctx: &Ctx) -> Result<Vec<Figure>, String> {
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

pub(super) fn warm_spark(bench: &Bench, ctx: &Ctx) -> Result<Vec<Figure>, String> {
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

pub(super) fn parallel(bench: &Bench, ctx: &Ctx) -> Result<Vec<Figure>, String> {
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
