//! From a planned scenario to the executor's tasks: each task's command line (spark-submit,
//! Python, a command, or SQL on PostgreSQL) and its environment (the contract's variables, the
//! pipeline's, the scenario's and the task's own).

use std::path::Path;

use crate::backend::Environment;
use crate::config::{Project, PythonTarget, SparkApp, SparkMode, TaskKind, spark_mode};
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
        service: "spark-connect".into(),
        message: "spark is not part of this environment".into(),
        log_tail: vec![],
    })?;
    spark.connect_server(events).await.map(Some)
}

/// The tasks the scenario runs, with their environment, in the pipeline's order.
pub fn exec_tasks(
    project: &Project,
    plan: &ScenarioPlan<'_>,
    env: &Environment,
    work_dir: &Path,
    connect: Option<&ConnectEndpoint>,
) -> Vec<ExecTask> {
    let (scenario, pipeline) = (plan.scenario, plan.pipeline);
    let spark = env.get::<SparkRunning>();
    let mut base_env: Vec<(String, String)> = vec![
        ("HARNESS_SCENARIO".into(), scenario.name.0.clone()),
        ("HARNESS_WORK_DIR".into(), work_dir.display().to_string()),
        ("PYTHONUNBUFFERED".into(), "1".into()),
    ];
    base_env.extend(env.task_env());
    // Variables of the contract come from this run only, never from the caller's shell.
    let env_remove: Vec<String> = std::env::vars_os()
        .filter_map(|(k, _)| k.into_string().ok())
        .filter(|k| k.starts_with("HARNESS_") || k.starts_with("AIRFLOW_CONN_"))
        .collect();
    plan.tasks
        .iter()
        .map(|planned| {
            let t = planned.task;
            let deps = t
                .depends_on
                .iter()
                .filter_map(|d| plan.tasks.iter().position(|s| &s.task.id == d))
                .collect();
            let mut vars = base_env.clone();
            vars.extend(
                pipeline
                    .env
                    .iter()
                    .chain(&scenario.env)
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
                id: t.id.clone(),
                deps,
                timeout: t.timeout,
                retries: t.retries,
                action,
            }
        })
        .collect()
}
