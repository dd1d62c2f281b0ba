//! 7. The example pipeline's Airflow DAG against the same tasks declared in pipeline.toml: the
//! example's `full_pipeline` scenario run once on `hydramatrices` (pipeline.toml) and once on
//! `hydramatrices_airflow` (its DAG), each in a fresh environment started the same way, same
//! seeds, same jobs, same sinks, the same number of tasks at once. Measured: the scenario's
//! wall time (reset to compare), and the time from the scenario's start to its first task
//! running (Airflow loads while the seeds go in).

use super::{Bench, Ctx, Figure, Goal, Unit, bench_options, load_project, run_all};
use crate::config;
use crate::snapshot::golden::WritePolicy;

/// The scenario, the pipeline declared task by task, and its Airflow twin.
const SCENARIO: &str = "full_pipeline";
const DECLARED: &str = "hydramatrices";
const DAG: &str = "hydramatrices_airflow";

pub(super) fn dag_versus_declared(bench: &Bench, ctx: &Ctx) -> Result<Vec<Figure>, String> {
    let project = load_project(&ctx.root)?;
    for name in [DECLARED, DAG] {
        if !project.pipelines.contains_key(name) {
            return Err(format!(
                "needs the example project (pipelines `{DECLARED}` and `{DAG}`); run it in the repository"
            ));
        }
    }
    let one = |pipeline: &str| -> Result<config::Project, String> {
        let mut p = config::retarget(&project, pipeline, &[SCENARIO.to_string()])?;
        p.scenarios.retain(|s| s.name.0 == SCENARIO);
        if p.scenarios.is_empty() {
            return Err(format!("the example project has no scenario `{SCENARIO}`"));
        }
        Ok(p)
    };
    let declared = one(DECLARED)?;
    let dag = one(DAG)?;
    let dir = ctx.folder("airflow")?;
    let mut opts = bench_options(&dir);
    opts.policy = WritePolicy::Nothing;
    opts.task_jobs = ctx.settings.task_jobs;
    let declared_run = run_all(ctx, &declared, &opts)?;
    let dag_run = run_all(ctx, &dag, &opts)?;
    let (d, a) = (&declared_run.scenarios[0], &dag_run.scenarios[0]);
    // A declared DAG's first task starts once reset and seeds are done.
    let declared_first = (d.timings.reset + d.timings.seed).as_secs_f64();
    let airflow_first = a
        .timings
        .first_airflow_task
        .ok_or("no Airflow task ran")?
        .as_secs_f64();
    Ok(vec![
        Figure {
            id: format!("{}.wall", bench.id),
            name: format!("`{SCENARIO}` through its Airflow DAG"),
            unit: Unit::Seconds,
            value: a.elapsed.as_secs_f64(),
            baseline: d.elapsed.as_secs_f64(),
            baseline_what: format!(
                "the same scenario on the tasks of pipeline.toml (`{DECLARED}`), same services, seeds, jobs and task_jobs"
            ),
            goal: Goal::RatioAtMost(1.15),
        },
        Figure {
            id: format!("{}.first_task", bench.id),
            name: format!("from the start of `{SCENARIO}` to its first Airflow task running"),
            unit: Unit::Seconds,
            value: airflow_first,
            baseline: declared_first,
            baseline_what: "the same for the first task of pipeline.toml (reset and seeds done)"
                .into(),
            goal: Goal::RatioAtMost(1.2),
        },
    ])
}
