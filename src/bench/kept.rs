//! Bench 8: a one-scenario run on a kept environment against the same run on an environment of its
//! own: the example's `als_recommendations` (Hive seeds through the metastore, two Spark jobs,
//! Redis sinks), run by the `harness` program as a tester runs it. The cold side is `harness run
//! SCENARIO`; the kept side `harness run --env NAME SCENARIO` after `harness env up NAME
//! SCENARIO`. Each side runs twice and is measured on its second run, so both find the machine
//! warmed the same way (page cache, Python's compiled files, the first run's JVM class data).
//! Measured: the whole command's wall time, and the run's tasks stage from its results.json,
//! which the goal adds one second to.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use super::{Bench, Ctx, Figure, Goal, Unit, load_project};

/// The scenario run.
const SCENARIO: &str = "als_recommendations";

pub(super) fn kept_versus_cold(bench: &Bench, ctx: &Ctx) -> Result<Vec<Figure>, String> {
    let project = load_project(&ctx.root)?;
    if !project.scenarios.iter().any(|s| s.name.0 == SCENARIO) {
        return Err(format!(
            "needs the example project (scenario `{SCENARIO}`); run it in the repository"
        ));
    }
    let exe = std::env::current_exe().map_err(|e| format!("cannot find the harness: {e}"))?;
    let dir = ctx.folder("kept")?;
    let name = format!("bench-{}", std::process::id());
    let harness = |args: &[&str]| {
        let mut c = Command::new(&exe);
        c.arg("-C")
            .arg(&ctx.root)
            .args(["--color", "never"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        c
    };
    let timed = |args: &[&str]| -> Result<f64, String> {
        let t0 = Instant::now();
        let status = harness(args)
            .status()
            .map_err(|e| format!("cannot run the harness: {e}"))?;
        if !status.success() {
            return Err(format!("`harness {}` failed: {status}", args.join(" ")));
        }
        Ok(t0.elapsed().as_secs_f64())
    };
    let cold_dir = dir.join("cold");
    let cold_dir = cold_dir.to_str().ok_or("the scratch folder is not UTF-8")?;
    let kept_dir = dir.join("kept");
    let kept_dir = kept_dir.to_str().ok_or("the scratch folder is not UTF-8")?;
    let cold_args = ["run", SCENARIO, "--report-dir", cold_dir];
    timed(&cold_args)?;
    let cold = timed(&cold_args)?;

    timed(&[
        "env",
        "up",
        "--name",
        &name,
        "--idle-timeout",
        "10m",
        SCENARIO,
    ])?;
    // Stopped whatever happens below.
    let _down = Down(|| {
        let _ = harness(&["env", "down", &name]).status();
    });
    let kept_args = ["run", "--env", &name, SCENARIO, "--report-dir", kept_dir];
    timed(&kept_args)?;
    let kept = timed(&kept_args)?;
    let tasks = tasks_seconds(&dir.join("kept/results.json"))?;
    Ok(vec![Figure {
        id: format!("{}.wall", bench.id),
        name: format!("`harness run --env NAME {SCENARIO}` on a kept environment"),
        unit: Unit::Seconds,
        value: kept,
        baseline: cold,
        baseline_what: format!(
            "`harness run {SCENARIO}` starting its own services; each the second of two runs; goal: the run's tasks stage ({tasks:.1} s) + 1 s"
        ),
        goal: Goal::AtMost(tasks + 1.0),
    }])
}

/// Runs its closure when dropped.
struct Down<F: FnMut()>(F);

impl<F: FnMut()> Drop for Down<F> {
    fn drop(&mut self) {
        (self.0)();
    }
}

/// The tasks stage of a run, from its results.json.
fn tasks_seconds(results: &Path) -> Result<f64, String> {
    let text = std::fs::read_to_string(results)
        .map_err(|e| format!("cannot read {}: {e}", results.display()))?;
    let v: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("{}: not JSON: {e}", results.display()))?;
    v["timings_ms"]["tasks"]
        .as_f64()
        .map(|ms| ms / 1000.0)
        .ok_or_else(|| format!("{}: no timings_ms.tasks", results.display()))
}
