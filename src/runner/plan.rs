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
    /// True when a task of some scenario runs on the Spark Connect server: every environment
    /// may then run one, and the harness's own Spark session is its client.
    pub connect: bool,
    /// Roughly what one environment takes at its peak, in MB.
    pub memory_mb: u64,
    /// The cores one environment keeps busy at its peak: Spark's local cores for each driver
    /// running at once (spark-submit drivers up to the task limit, the Connect server, the
    /// harness's own session); 0 when nothing runs Spark here, as the CPU use of other tasks is
    /// not known.
    pub cores: u32,
    /// How `cores` was counted, for the first lines of a run.
    pub cores_why: String,
    /// The cores of this machine.
    pub machine_cores: u32,
}

/// The cores a Spark master runs an application on, on this machine: `local` 1, `local[N]` and
/// `local[N,F]` N, `local[*]` every core; a cluster master (`spark://`, `yarn`, `k8s://`) none.
pub fn local_cores(master: &str, machine: u32) -> u32 {
    let m = master.trim();
    if m == "local" {
        return 1;
    }
    let Some(inner) = m
        .strip_prefix("local[")
        .or_else(|| m.strip_prefix("local-cluster["))
        .and_then(|r| r.strip_suffix(']'))
    else {
        return 0;
    };
    let first = inner.split(',').next().unwrap_or("").trim();
    match first {
        "*" => machine,
        n => n.parse().unwrap_or(1),
    }
}

/// True for a task that starts a Spark driver of its own: a `spark` task submitted, or an
/// Airflow operator that submits one.
fn submits_spark(t: &PlannedTask<'_>) -> bool {
    match &t.task.kind {
        crate::config::TaskKind::Airflow { operator, .. } => operator.contains("Spark"),
        _ => t.spark_mode == Some(SparkMode::Submit),
    }
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
    let connect = planned.iter().any(ScenarioPlan::uses_connect);
    if connect {
        // The server's driver replaces the session's: the session is only its client.
        memory_mb = memory_mb.saturating_sub(spark::SESSION_MB)
            + spark::CONNECT_SERVER_MB
            + spark::CLIENT_SESSION_MB;
    }
    let submitted = planned
        .iter()
        .map(ScenarioPlan::submitted)
        .max()
        .unwrap_or(0);
    memory_mb += spark::DRIVER_MB * submitted.min(task_jobs) as u64;
    let machine_cores = std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
    let (cores, cores_why) = cores(
        &planned,
        &services,
        &settings.spark.master,
        task_jobs,
        machine_cores,
    );
    RunPlan {
        scenarios: planned,
        services,
        connect,
        memory_mb,
        cores,
        cores_why,
        machine_cores,
    }
}

/// The cores one environment keeps busy at its peak, and how they were counted.
fn cores(
    planned: &[ScenarioPlan<'_>],
    services: &[ServiceKind],
    master: &str,
    task_jobs: usize,
    machine: u32,
) -> (u32, String) {
    let per_driver = local_cores(master, machine);
    if per_driver == 0 || !services.contains(&ServiceKind::Spark) {
        return (0, "no local Spark".into());
    }
    let drivers = planned
        .iter()
        .map(|p| {
            let submitted = p.tasks.iter().filter(|t| submits_spark(t)).count();
            submitted.min(task_jobs.max(1)) + usize::from(p.uses_connect())
        })
        .max()
        .unwrap_or(0)
        // The harness's own session reads and seeds between the tasks.
        .max(1) as u32;
    (
        per_driver * drivers,
        format!(
            "Spark {master}: {per_driver} core{} × {drivers} driver{} at once",
            if per_driver == 1 { "" } else { "s" },
            if drivers == 1 { "" } else { "s" }
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::local_cores;

    #[test]
    fn a_local_master_counts_its_cores_and_a_cluster_master_none() {
        assert_eq!(local_cores("local", 8), 1);
        assert_eq!(local_cores("local[2]", 8), 2);
        assert_eq!(local_cores("local[3,2]", 8), 3);
        assert_eq!(local_cores("local[*]", 8), 8);
        assert_eq!(local_cores("spark://127.0.0.1:7077", 8), 0);
        assert_eq!(local_cores("yarn", 8), 0);
    }
}
