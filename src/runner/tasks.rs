//! From a planned scenario to the executor's tasks: each task's command line (spark-submit,
//! Python, a command, or SQL on PostgreSQL) and its environment (the contract's variables, the
//! pipeline's, the scenario's and the task's own).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::airflow::{self, RunSpec};
use crate::config::airflow_dag::AirflowDag;
use crate::dag::airflow::DagTaskRef;

use crate::backend::Environment;
use crate::config::scenario::Step;
use crate::config::{
    Pipeline, Project, PythonTarget, SparkApp, SparkMode, TaskId, TaskKind, spark_mode,
};
use crate::dag::executor::{Action, ExecTask};
use crate::events::Events;
use crate::outcome::InfraError;
use crate::process::ProcessSpec;
use crate::services::spark::SparkRunning;
use crate::services::spark::connect::ConnectEndpoint;

use super::plan::ScenarioPlan;

/// Starts (or finds) the Spark Connect server when a planned task runs in connect mode.
pub async fn start_connect_if_used(
    plan: &ScenarioPlan<'_>,
    env: &Environment,
    events: &Events,
) -> Result<Option<ConnectEndpoint>, InfraError> {
    if !plan.uses_connect() {
        return Ok(None);
    }
    for note in plan
        .tasks
        .iter()
        .filter(|t| t.spark_mode == Some(SparkMode::Connect))
        .filter_map(|t| spark_mode::connect_caveat(t.task))
    {
        events.notice(note);
    }
    let spark = env.get::<SparkRunning>().ok_or_else(|| InfraError {
        stopped: false,
        service: "spark-connect".into(),
        message: "spark is not part of this environment".into(),
        log_tail: vec![],
    })?;
    spark.connect_server(events).await.map(Some)
}

/// The variables of the contract every task gets, and the caller's variables that must not
/// reach tasks (the contract's come from this run only, never from the caller's shell).
fn contract_env(
    plan: &ScenarioPlan<'_>,
    env: &Environment,
    work_dir: &Path,
) -> (Vec<(String, String)>, Vec<String>) {
    let mut base_env: Vec<(String, String)> = vec![
        ("HARNESS_SCENARIO".into(), plan.scenario.name.0.clone()),
        ("HARNESS_WORK_DIR".into(), work_dir.display().to_string()),
        ("PYTHONUNBUFFERED".into(), "1".into()),
    ];
    base_env.extend(env.task_env());
    let env_remove: Vec<String> = std::env::vars_os()
        .filter_map(|(k, _)| k.into_string().ok())
        .filter(|k| k.starts_with("HARNESS_") || k.starts_with("AIRFLOW_CONN_"))
        .collect();
    (base_env, env_remove)
}

/// A scenario's DagRun through Airflow: the environment's driver of the DAG (its command line
/// and the variables every scenario shares), and this scenario's request.
pub struct AirflowRun {
    /// The driver's key: DAG file and DAG id.
    pub key: (PathBuf, String),
    /// The driver process, for when it is not running yet.
    pub driver: ProcessSpec,
    /// The spec of this DagRun.
    pub spec_file: PathBuf,
    /// Variables of this scenario: `HARNESS_SCENARIO`, `HARNESS_WORK_DIR`, the pipeline's and the
    /// scenario's `[env]`, and the scenario's Airflow Variables.
    pub env: Vec<(String, String)>,
    /// The selected tasks.
    pub tasks: Vec<DagTaskRef>,
    /// Per-task time limits, in seconds.
    pub timeouts: BTreeMap<String, f64>,
    /// Limit of the whole DagRun.
    pub limit: Duration,
}

/// The Airflow home of the environment in `env_dir`: its database, logs and scratch files.
fn airflow_home(env_dir: &Path) -> PathBuf {
    env_dir.join("airflow")
}

/// The key of the driver of `dag` among an environment's drivers: DAG file and DAG id.
fn driver_key(dag: &AirflowDag) -> (PathBuf, String) {
    (dag.file.clone(), dag.dag_id.clone())
}

/// The command line of the Airflow driver of `dag` for the environment in `env_dir`, and the
/// variables every scenario shares: `services`, the variables of the environment's services,
/// and a `PATH` that starts with the managed Python's `bin` folder and `spark_bin`. The driver
/// runs from the environment's Airflow home (`<environment>/airflow`, its database migrated
/// once and copied fresh for each DagRun). With `wait_load`, the driver parses the DAG only
/// after a first line gives it the services' variables ([`early_driver`]).
fn driver_spec(
    project: &Project,
    pipeline: &Pipeline,
    dag: &AirflowDag,
    env_dir: &Path,
    services: Vec<(String, String)>,
    spark_bin: Option<PathBuf>,
    wait_load: bool,
) -> std::io::Result<ProcessSpec> {
    let home = airflow_home(env_dir);
    let driver = airflow::write_driver(&home)?;
    // Every `HARNESS_*` and `AIRFLOW*` variable of the caller: the run sets its own.
    let env_remove = airflow::foreign_env();
    let mut shared = services;
    shared.extend(airflow::base_env(&home, &dag.file));
    let mut path: Vec<PathBuf> = Vec::new();
    if let Some(bin) = project.settings.python.parent() {
        path.push(bin.to_path_buf());
    }
    path.extend(spark_bin);
    path.extend(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    ));
    if let Ok(joined) = std::env::join_paths(path) {
        shared.push(("PATH".into(), joined.to_string_lossy().into_owned()));
    }
    let mut args: Vec<std::ffi::OsString> = vec![
        driver.into(),
        "serve".into(),
        dag.file.clone().into(),
        dag.dag_id.clone().into(),
        // Migrated templates of Airflow's database: from the per-user cache, so that only a
        // machine's first run (and the first after an upgrade) migrates; in the environment's
        // own folder when the cache cannot be used.
        crate::cache::folder("airflow").unwrap_or(home).into(),
    ];
    if wait_load {
        args.push("--wait-load".into());
    }
    Ok(ProcessSpec {
        program: dag.python.clone().into(),
        args,
        cwd: pipeline.dir.clone(),
        env: shared,
        env_remove,
    })
}

/// The driver of the DAG `plan` runs through, to start with the environment in `env_dir`,
/// before its services are up: Airflow loads and the DAG goes into its database (parsed with
/// placeholders of the services' variables) while they start, and the DAG is parsed again once
/// they are up and the driver has their variables ([`env_driver`], `Drivers::start`). `None`
/// when the pipeline is not an Airflow DAG.
pub fn early_driver(
    project: &Project,
    plan: &ScenarioPlan<'_>,
    env_dir: &Path,
) -> Option<std::io::Result<((PathBuf, String), ProcessSpec)>> {
    let dag = plan.pipeline.airflow.as_ref()?;
    let spec = driver_spec(project, plan.pipeline, dag, env_dir, vec![], None, true);
    Some(spec.map(|s| (driver_key(dag), s)))
}

/// The driver of the DAG `plan` runs through, for the started environment `env`, as
/// [`airflow_run`] gives it: to hand the services' variables to a driver started early as soon
/// as the services are up (`Drivers::start`). `None` when the pipeline is not an Airflow DAG.
pub fn env_driver(
    project: &Project,
    plan: &ScenarioPlan<'_>,
    env: &Environment,
) -> Option<std::io::Result<((PathBuf, String), ProcessSpec)>> {
    let dag = plan.pipeline.airflow.as_ref()?;
    let spec = started_driver_spec(project, plan.pipeline, dag, env);
    Some(spec.map(|s| (driver_key(dag), s)))
}

/// [`driver_spec`] for the started environment `env`: its services' variables, and Spark's
/// `bin` folder when Spark is one of them.
fn started_driver_spec(
    project: &Project,
    pipeline: &Pipeline,
    dag: &AirflowDag,
    env: &Environment,
) -> std::io::Result<ProcessSpec> {
    let spark_bin = env
        .get::<SparkRunning>()
        .map(|spark| spark.install.spark_home.join("bin"));
    driver_spec(
        project,
        pipeline,
        dag,
        &env.dir,
        env.task_env(),
        spark_bin,
        false,
    )
}

/// Prepares the DagRun of a scenario whose pipeline is an Airflow DAG: the environment's driver
/// ([`driver_spec`]) with the contract's variables of the environment's services and Spark's
/// `bin` folder in `PATH`, so that `python` and `spark-submit` in a DAG are the harness's.
pub fn airflow_run(
    project: &Project,
    plan: &ScenarioPlan<'_>,
    step: &Step,
    dag: &AirflowDag,
    env: &Environment,
    work_dir: &Path,
    task_jobs: usize,
) -> std::io::Result<AirflowRun> {
    let (scenario, pipeline) = (plan.scenario, plan.pipeline);
    let home = airflow_home(&env.dir);
    let driver = started_driver_spec(project, pipeline, dag, env)?;
    let mut own: Vec<(String, String)> = vec![
        ("HARNESS_SCENARIO".into(), scenario.name.0.clone()),
        ("HARNESS_WORK_DIR".into(), work_dir.display().to_string()),
    ];
    own.extend(step_var(step));
    own.extend(
        pipeline
            .env
            .iter()
            .chain(&scenario.env)
            .chain(&step.env)
            .map(|(k, v)| (k.clone(), v.clone())),
    );
    for (k, v) in &step.airflow.variables {
        own.push((format!("AIRFLOW_VAR_{}", k.to_uppercase()), v.clone()));
    }

    let selected: Vec<&crate::config::Task> = plan
        .tasks
        .iter()
        .map(|t| t.task)
        .filter(|t| step.selects(&t.id))
        .collect();
    let timeouts: BTreeMap<String, f64> = selected
        .iter()
        .map(|t| (t.id.0.clone(), t.timeout.as_secs_f64()))
        .collect();
    let spec = RunSpec {
        tasks: step
            .tasks
            .as_ref()
            .map(|ids| ids.iter().map(|t| t.0.clone()).collect()),
        logical_date: step.airflow.logical_date.clone(),
        conf: step.airflow.conf.clone(),
        mark_success: step.airflow.mark_success.clone(),
        timeouts: timeouts.clone(),
        task_env: selected
            .iter()
            .filter(|t| !t.env.is_empty())
            .map(|t| (t.id.0.clone(), t.env.clone()))
            .collect(),
        parallel: task_jobs,
    };
    let spec_file = home.join(format!(
        "{}.run.json",
        step.qualify(&scenario.name.0).replace('/', ".")
    ));
    std::fs::write(
        &spec_file,
        serde_json::to_vec_pretty(&spec).map_err(std::io::Error::other)?,
    )?;
    // The whole DagRun: every attempt of every task at its limit, one after the other, plus
    // Airflow's own start (a first migration included).
    let limit = selected
        .iter()
        .map(|t| t.timeout.saturating_mul(t.retries.saturating_add(1)))
        .fold(Duration::from_secs(180), Duration::saturating_add);
    Ok(AirflowRun {
        key: driver_key(dag),
        driver,
        spec_file,
        env: own,
        tasks: selected
            .iter()
            .map(|t| DagTaskRef {
                id: t.id.clone(),
                upstream: t.depends_on.clone(),
            })
            .collect(),
        timeouts,
        limit,
    })
}

/// `HARNESS_STEP` for a task of a named step.
fn step_var(step: &Step) -> Option<(String, String)> {
    step.name
        .as_ref()
        .map(|name| ("HARNESS_STEP".to_string(), name.clone()))
}

/// The tasks one step of the scenario runs, with their environment, in the pipeline's order.
/// Those of a named step are called `<step>/<task>`.
pub fn exec_tasks(
    project: &Project,
    plan: &ScenarioPlan<'_>,
    step: &Step,
    env: &Environment,
    work_dir: &Path,
    connect: Option<&ConnectEndpoint>,
) -> Vec<ExecTask> {
    let (scenario, pipeline) = (plan.scenario, plan.pipeline);
    let spark = env.get::<SparkRunning>();
    let (mut base_env, env_remove) = contract_env(plan, env, work_dir);
    base_env.extend(step_var(step));
    let selected: Vec<_> = plan
        .tasks
        .iter()
        .filter(|p| step.selects(&p.task.id))
        .collect();
    selected
        .iter()
        .map(|planned| {
            let t = planned.task;
            let deps = t
                .depends_on
                .iter()
                .filter_map(|d| selected.iter().position(|s| &s.task.id == d))
                .collect();
            let mut vars = base_env.clone();
            vars.extend(
                pipeline
                    .env
                    .iter()
                    .chain(&scenario.env)
                    .chain(&step.env)
                    .chain(&t.env)
                    .map(|(k, v)| (k.clone(), v.clone())),
            );
            let spec = |program: std::ffi::OsString, args: Vec<std::ffi::OsString>| ProcessSpec {
                program,
                args,
                cwd: t.cwd.clone(),
                env: vars.clone(),
                env_remove: env_remove.clone(),
            };
            let process = |program, args| Action::Process(spec(program, args));
            let action = match &t.kind {
                TaskKind::Command { argv } => process(
                    argv[0].clone().into(),
                    argv[1..].iter().map(Into::into).collect(),
                ),
                TaskKind::Python { target, args } => {
                    let mut a: Vec<std::ffi::OsString> = match target {
                        PythonTarget::Script(p) => vec![p.clone().into()],
                        PythonTarget::Module(m) => vec!["-m".into(), m.into()],
                    };
                    a.extend(args.iter().map(Into::into));
                    process(project.settings.python.clone().into(), a)
                }
                TaskKind::Spark {
                    app: SparkApp::Python(script),
                    args,
                    conf,
                    ..
                } if planned.spark_mode == Some(SparkMode::Connect)
                    && let Some(server) = connect =>
                {
                    // The same script as a plain client of the shared server; its spark.sql.*
                    // settings reach the session through PySpark's own start-up options.
                    let mut a: Vec<std::ffi::OsString> = vec![script.clone().into()];
                    a.extend(args.iter().map(Into::into));
                    let mut spec = spec(project.settings.python.clone().into(), a);
                    spec.env.push(("SPARK_REMOTE".into(), server.url()));
                    if !conf.is_empty() {
                        spec.env.extend([
                            ("PYSPARK_REMOTE_INIT_CONF_LEN".into(), "1".into()),
                            (
                                "PYSPARK_REMOTE_INIT_CONF_0".into(),
                                serde_json::to_string(conf).unwrap_or_default(),
                            ),
                        ]);
                    }
                    Action::Process(spec)
                }
                TaskKind::Spark {
                    app,
                    args,
                    conf,
                    driver_memory,
                    ..
                } => match spark {
                    Some(spark) => {
                        let mut a: Vec<std::ffi::OsString> = Vec::new();
                        if let Some(m) = driver_memory {
                            a.extend(["--driver-memory".into(), m.into()]);
                        }
                        for (k, v) in conf {
                            a.extend(["--conf".into(), format!("{k}={v}").into()]);
                        }
                        match app {
                            SparkApp::Python(script) => a.push(script.clone().into()),
                            SparkApp::Jar { jar, main_class } => {
                                a.extend(["--class".into(), main_class.into(), jar.clone().into()])
                            }
                        }
                        a.extend(args.iter().map(Into::into));
                        process(spark.install.spark_home.join("bin/spark-submit").into(), a)
                    }
                    // Planning starts spark for every spark task; this cannot be reached.
                    None => process("false".into(), vec![]),
                },
                // The runner hands the tasks of an Airflow DAG to Airflow; this cannot be
                // reached.
                TaskKind::Airflow { .. } => process("false".into(), vec![]),
                TaskKind::Sql { source, service } => {
                    match env.started.of(*service).and_then(|r| r.sql()) {
                        Some(run) => Action::Sql {
                            run,
                            text: source.text.clone(),
                            origin: source.origin.clone(),
                        },
                        // Planning starts the service of every sql task, and loading lets sql
                        // tasks name only kinds that run SQL; this cannot be reached.
                        None => process("false".into(), vec![]),
                    }
                }
            };
            ExecTask {
                id: TaskId(step.qualify(&t.id.0)),
                deps,
                timeout: t.timeout,
                retries: t.retries,
                action,
            }
        })
        .collect()
}
