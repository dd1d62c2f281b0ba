//! Bench 10, the example pipeline's Airflow DAG against the same tasks declared in pipeline.toml:
//! the example's `full_pipeline` scenario run twice in a row on `hydramatrices` (pipeline.toml) and
//! twice on `hydramatrices_airflow` (its DAG), each pair in a fresh environment started the same
//! way: same seeds, same jobs, same sinks, the same number of tasks at once. Measured on the second
//! run of each pair (an environment that ran a scenario before, as every scenario but the first of
//! a run finds it): the scenario's wall time (reset to compare) and the time from its start to its
//! first task running; and on the first run, that time again, which for the DAG includes migrating
//! Airflow's database and loading Airflow (while the services start). The measured runs' tasks
//! are printed with their times, and the Airflow driver's start with its parts, so that a figure
//! that moves says which task or which part of the start moved it. With
//! `--trials K` the four runs are made K times and each figure is the median of its trials.

use super::{
    Bench, Ctx, Figure, Goal, Unit, bench_options, human, load_project, median, run_all, run_noting,
};
use crate::config;
use crate::dag::airflow::READY_NOTICE;
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
        let Some(first) = p.scenarios.first().cloned() else {
            return Err(format!("the example project has no scenario `{SCENARIO}`"));
        };
        let mut again = first;
        again.name = crate::names::ScenarioName(format!("{SCENARIO}_again"));
        p.scenarios.push(again);
        Ok(p)
    };
    let declared = one(DECLARED)?;
    let dag = one(DAG)?;
    let dir = ctx.folder("airflow")?;
    let mut opts = bench_options(&dir);
    opts.policy = WritePolicy::Nothing;
    opts.task_jobs = ctx.settings.task_jobs;
    let mut trials = Vec::new();
    for n in 1..=ctx.trials {
        // Odd trials run pipeline.toml first and even ones the DAG first, so that neither side
        // always finds the machine as the other left it.
        let (declared_run, (dag_run, notices)) = if n % 2 == 1 {
            let d = run_all(ctx, &declared, &opts)?;
            (d, run_noting(ctx, &dag, &opts)?)
        } else {
            let a = run_noting(ctx, &dag, &opts)?;
            (run_all(ctx, &declared, &opts)?, a)
        };
        let of = if ctx.trials > 1 {
            format!(" (trial {n} of {})", ctx.trials)
        } else {
            String::new()
        };
        // Where the driver's start went, which the first task of the DAG's first run waits for.
        for notice in notices.iter().filter(|m| m.starts_with(READY_NOTICE)) {
            println!("   the DAG's environment{of}: {notice}");
        }
        let (d, a) = (&declared_run.scenarios[1], &dag_run.scenarios[1]);
        // Each measured run's tasks, longest first: a figure that moves says where from.
        for (what, run) in [("pipeline.toml", d), ("the DAG", a)] {
            println!(
                "   the measured run through {what}{of}: {} in all; tasks {}",
                human(Unit::Seconds, run.elapsed.as_secs_f64()),
                task_times(run)
            );
        }
        trials.push(Trial {
            wall: (a.elapsed.as_secs_f64(), d.elapsed.as_secs_f64()),
            first_task: (first_task(a)?, first_task(d)?),
            first_task_cold: (
                first_task(&dag_run.scenarios[0])?,
                first_task(&declared_run.scenarios[0])?,
            ),
        });
    }
    // With several trials, each value and each baseline is the median of its trials.
    let m = |f: fn(&Trial) -> (f64, f64)| {
        (
            median(trials.iter().map(|t| f(t).0).collect()),
            median(trials.iter().map(|t| f(t).1).collect()),
        )
    };
    let (wall, first, cold) = (m(|t| t.wall), m(|t| t.first_task), m(|t| t.first_task_cold));
    let medians = if ctx.trials > 1 {
        format!("; medians of {} trials", ctx.trials)
    } else {
        String::new()
    };
    Ok(vec![
        Figure {
            id: format!("{}.wall", bench.id),
            name: format!("`{SCENARIO}` through its Airflow DAG"),
            unit: Unit::Seconds,
            value: wall.0,
            baseline: wall.1,
            baseline_what: format!(
                "the same scenario on the tasks of pipeline.toml (`{DECLARED}`), same services, seeds, jobs and task_jobs; the second run of each in its environment{medians}"
            ),
            goal: Goal::RatioAtMost(1.15),
        },
        Figure {
            id: format!("{}.first_task", bench.id),
            name: format!("from the start of `{SCENARIO}` to its first Airflow task running"),
            unit: Unit::Seconds,
            value: first.0,
            baseline: first.1,
            baseline_what: format!("the same for the first task of pipeline.toml{medians}"),
            goal: Goal::RatioAtMost(1.2),
        },
        Figure {
            id: format!("{}.first_task_cold", bench.id),
            name: "the same in a new environment (Airflow's database migrated, Airflow loaded)"
                .into(),
            unit: Unit::Seconds,
            value: cold.0,
            baseline: cold.1,
            baseline_what: format!("the same for pipeline.toml in a new environment{medians}"),
            goal: Goal::RatioAtMost(1.5),
        },
    ])
}

/// One trial of bench 10: each figure's value (the DAG) and baseline (pipeline.toml), in seconds.
struct Trial {
    wall: (f64, f64),
    first_task: (f64, f64),
    first_task_cold: (f64, f64),
}

/// From the start of a scenario to its first task running, in seconds.
fn first_task(s: &crate::outcome::ScenarioOutcome) -> Result<f64, String> {
    s.timings
        .first_task
        .map(|d| d.as_secs_f64())
        .ok_or(format!("no task of `{}` ran", s.name))
}

/// The tasks of a run with their times, longest first: `train_als 52.8 s, daily_views 46.7 s`.
fn task_times(run: &crate::outcome::ScenarioOutcome) -> String {
    let mut tasks: Vec<_> = run.tasks.iter().collect();
    tasks.sort_by_key(|t| std::cmp::Reverse(t.elapsed));
    let parts: Vec<String> = tasks
        .iter()
        .map(|t| format!("{} {}", t.id, human(Unit::Seconds, t.elapsed.as_secs_f64())))
        .collect();
    parts.join(", ")
}
