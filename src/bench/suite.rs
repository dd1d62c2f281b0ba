//! Bench 7, the example suite's wall time against its tasks' time: every scenario of the project
//! (the example suite, in this repository) run once as `harness run` runs it (the local backend,
//! one environment, goldens only compared), its wall time from the first service start to the last
//! compare against its tasks' time: each scenario's task stage, summed. What lies between the two
//! is the harness: starting and resetting services, seeding, reading sinks, comparing.

use super::{Bench, Ctx, Figure, Goal, Unit, bench_options, load_project, run_all};
use crate::snapshot::golden::WritePolicy;

/// The pipeline of the example suite.
const EXAMPLE: &str = "hydramatrices";

pub(super) fn wall_versus_tasks(bench: &Bench, ctx: &Ctx) -> Result<Vec<Figure>, String> {
    let project = load_project(&ctx.root)?;
    if !project.pipelines.contains_key(EXAMPLE) {
        return Err(format!(
            "needs the example project (pipeline `{EXAMPLE}`); run it in the repository"
        ));
    }
    let dir = ctx.folder("suite")?;
    let mut opts = bench_options(&dir);
    opts.policy = WritePolicy::Nothing;
    opts.task_jobs = ctx.settings.task_jobs;
    let outcome = run_all(ctx, &project, &opts)?;
    // The task stage's wall time of each scenario: tasks that run at once (`task_jobs`) count
    // once, as they take the suite's time once.
    let tasks: f64 = outcome
        .scenarios
        .iter()
        .map(|s| s.timings.tasks.as_secs_f64())
        .sum();
    let count = outcome.scenarios.len();
    Ok(vec![Figure {
        id: bench.id.to_string(),
        name: format!("wall time of the example suite ({count} scenarios, -j1)"),
        unit: Unit::Seconds,
        value: outcome.elapsed.as_secs_f64(),
        baseline: tasks,
        baseline_what: "the suite's task time in the same run: each scenario's task stage (its DAG from the first task's start to the last one's end), summed".into(),
        goal: Goal::RatioAtMost(1.1),
    }])
}
