//! The plan of a run, computed once before anything starts: per scenario its pipeline, its
//! selected tasks with their Spark modes, and the services it needs (what its tasks, seeds and
//! sinks name, what the harness needs to seed and read them, and what those require); for the
//! run, the services every environment starts and what one environment costs in memory. Later
//! stages take this value instead of working it out again.

use crate::config::{Pipeline, Project, Scenario, Seed, Sink, SparkMode, Task, spark_mode};
use crate::names::ServiceKind;
use crate::services::{self, spark};

/// A selected task and how it runs on Spark.
#[derive(Debug, Clone, Copy)]
pub struct PlannedTask<'p> {
    /// The task.
    pub task: &'p Task,
    /// Its Spark mode; `None` for a task that is not a `spark` task.
    pub spark_mode: Option<SparkMode>,
}

/// One scenario, planned.
#[derive(Debug, Clone)]
pub struct ScenarioPlan<'p> {
    /// The scenario.
    pub scenario: &'p Scenario,
    /// Its pipeline.
    pub pipeline: &'p Pipeline,
    /// The tasks it runs, in the pipeline's order.
    pub tasks: Vec<PlannedTask<'p>>,
    /// Every service it needs, in start order.
    pub services: Vec<ServiceKind>,
}

impl ScenarioPlan<'_> {
    /// True when a task runs on the Spark Connect server.
    pub fn uses_connect(&self) -> bool {
        self.tasks
            .iter()
            .any(|t| t.spark_mode == Some(SparkMode::Connect))
    }

    /// How many tasks are submitted with spark-submit (each a driver JVM).
    pub fn submitted(&self) -> usize {
        self.tasks
            .iter()
            .filter(|t| t.spark_mode == Some(SparkMode::Submit))
            .count()
    }
}

/// A whole run, planned.
#[derive(Debug, Clone)]
pub struct RunPlan<'p> {
    /// Every selected scenario, in order.
    pub scenarios: Vec<ScenarioPlan<'p>>,
    /// The services every environment starts (what all the scenarios need), in start order.
    pub services: Vec<ServiceKind>,
    /// Roughly what one environment takes at its peak, in MB.
    pub memory_mb: u64,
}

/// Plans `scenarios`: `spark_mode` is `--spark-mode`, `task_jobs` the tasks one scenario runs
/// at once (it bounds the spark-submit drivers alive together).
pub fn plan<'p>(
    project: &'p Project,
    scenarios: &[&'p Scenario],
    spark_mode: Option<SparkMode>,
    task_jobs: usize,
) -> RunPlan<'p> {
    let settings = &project.settings;
    let planned: Vec<ScenarioPlan<'p>> = scenarios
        .iter()
        .map(|s| {
            let pipeline = project.pipeline_of(s);
            let tasks = s
                .selected_tasks(pipeline)
                .into_iter()
                .map(|task| PlannedTask {
                    task,
                    spark_mode: spark_mode::of_task(task, spark_mode, settings.spark.mode),
                })
                .collect();
            let declared = s.declared_services(pipeline);
            let mut wanted = declared.clone();
            for kind in &declared {
                let seeds: Vec<&Seed> = s.seeds.iter().filter(|x| x.service() == *kind).collect();
                let sinks: Vec<&Sink> = s.sinks.iter().filter(|x| x.service() == *kind).collect();
                wanted.extend(services::describe(*kind).needs_for(&seeds, &sinks));
            }
            ScenarioPlan {
                scenario: s,
                pipeline,
                tasks,
                services: services::closure(wanted, settings),
            }
        })
        .collect();
    let services = services::closure(
        planned.iter().flat_map(|p| p.services.iter().copied()),
        settings,
    );
    let mut memory_mb: u64 = services
        .iter()
        .map(|k| services::describe(*k).memory_mb())
        .sum();
    if planned.iter().any(ScenarioPlan::uses_connect) {
        memory_mb += spark::CONNECT_SERVER_MB;
    }
    let submitted = planned
        .iter()
        .map(ScenarioPlan::submitted)
        .max()
        .unwrap_or(0);
    memory_mb += spark::DRIVER_MB * submitted.min(task_jobs) as u64;
    RunPlan {
        scenarios: planned,
        services,
        memory_mb,
    }
}
