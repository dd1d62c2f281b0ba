//! `spark_mode`: how a `spark` task runs. `submit` makes it its own Spark application
//! (spark-submit, a JVM per task); `connect` runs its script as a plain Python client of the
//! environment's one Spark Connect server. The mode comes from `[services.spark] mode`, a task's
//! `spark_mode` and `harness run --spark-mode`; [`resolve`] says which wins.

use super::pipeline::{SparkApp, Task, TaskKind};

/// How a `spark` task runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SparkMode {
    /// Its own application through spark-submit.
    #[default]
    Submit,
    /// A Python client of the shared Spark Connect server (`SPARK_REMOTE`).
    Connect,
}

impl SparkMode {
    /// Parses `submit` or `connect`.
    pub fn parse(s: &str) -> Result<Self, String> {
        match s {
            "submit" => Ok(SparkMode::Submit),
            "connect" => Ok(SparkMode::Connect),
            other => Err(format!(
                "unknown spark mode `{other}`; write \"submit\" or \"connect\""
            )),
        }
    }

    /// Its name as written in configuration.
    pub fn name(self) -> &'static str {
        match self {
            SparkMode::Submit => "submit",
            SparkMode::Connect => "connect",
        }
    }
}

/// The mode a task runs in. A task that must be submitted (a jar, or one marked
/// `spark_mode = "submit"` because it uses what Connect lacks) always is; otherwise the command
/// line wins over the task, and the task over `harness.toml`.
pub fn resolve(
    app: &SparkApp,
    task: Option<SparkMode>,
    command_line: Option<SparkMode>,
    settings: SparkMode,
) -> SparkMode {
    if matches!(app, SparkApp::Jar { .. }) || task == Some(SparkMode::Submit) {
        return SparkMode::Submit;
    }
    command_line.or(task).unwrap_or(settings)
}

/// The mode a task runs in: `None` for a task that is not a `spark` task.
pub fn of_task(
    task: &Task,
    command_line: Option<SparkMode>,
    settings: SparkMode,
) -> Option<SparkMode> {
    match &task.kind {
        TaskKind::Spark { app, mode, .. } => Some(resolve(app, *mode, command_line, settings)),
        // Airflow's SparkSubmitOperator runs spark-submit: a driver JVM of its own.
        TaskKind::Airflow { operator, .. } if operator.contains("SparkSubmit") => {
            Some(SparkMode::Submit)
        }
        _ => None,
    }
}

/// What of a task's settings one shared Spark Connect server cannot honour (its
/// `driver_memory`, and `conf` keys other than `spark.sql.*`, which a session cannot change), as a
/// line for the run's notices; `None` when everything applies.
pub fn connect_caveat(task: &Task) -> Option<String> {
    let TaskKind::Spark {
        conf,
        driver_memory,
        ..
    } = &task.kind
    else {
        return None;
    };
    let mut ignored: Vec<String> = driver_memory
        .iter()
        .map(|_| "driver_memory".to_string())
        .collect();
    ignored.extend(
        conf.keys()
            .filter(|k| !k.starts_with("spark.sql."))
            .map(|k| format!("conf {k}")),
    );
    (!ignored.is_empty()).then(|| {
        format!(
            "task `{}` runs on Spark Connect: {} not applied (a shared server takes only spark.sql.* settings per task)",
            task.id,
            ignored.join(", ")
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use SparkMode::{Connect, Submit};

    fn script() -> SparkApp {
        SparkApp::Python("/p/jobs/a.py".into())
    }

    fn jar() -> SparkApp {
        SparkApp::Jar {
            jar: "/p/a.jar".into(),
            main_class: "A".into(),
        }
    }

    #[test]
    fn parses_both_names_and_rejects_others() {
        assert_eq!(SparkMode::parse("submit"), Ok(Submit));
        assert_eq!(SparkMode::parse("connect"), Ok(Connect));
        assert!(SparkMode::parse("Connect").is_err());
        assert_eq!(SparkMode::default(), Submit);
    }

    #[test]
    fn command_line_over_task_over_settings() {
        assert_eq!(resolve(&script(), None, None, Submit), Submit);
        assert_eq!(resolve(&script(), None, None, Connect), Connect);
        assert_eq!(resolve(&script(), Some(Connect), None, Submit), Connect);
        assert_eq!(resolve(&script(), None, Some(Connect), Submit), Connect);
        assert_eq!(
            resolve(&script(), Some(Connect), Some(Submit), Connect),
            Submit
        );
        assert_eq!(resolve(&script(), None, Some(Submit), Connect), Submit);
    }

    fn spark_task(conf: &[(&str, &str)], driver_memory: Option<&str>) -> Task {
        Task {
            id: crate::config::TaskId("train".into()),
            kind: TaskKind::Spark {
                app: script(),
                args: vec![],
                conf: conf
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                driver_memory: driver_memory.map(Into::into),
                mode: None,
            },
            depends_on: vec![],
            timeout: std::time::Duration::from_secs(60),
            retries: 0,
            env: Default::default(),
            cwd: "/p".into(),
            services: None,
            outputs: vec![],
        }
    }

    #[test]
    fn what_connect_does_not_apply_is_named() {
        let sql_only = spark_task(&[("spark.sql.shuffle.partitions", "2")], None);
        assert_eq!(connect_caveat(&sql_only), None);
        assert_eq!(of_task(&sql_only, Some(Connect), Submit), Some(Connect));
        let more = spark_task(
            &[
                ("spark.sql.shuffle.partitions", "2"),
                ("spark.driver.extraJavaOptions", "-Xss16m"),
            ],
            Some("1g"),
        );
        assert_eq!(
            connect_caveat(&more).as_deref(),
            Some(
                "task `train` runs on Spark Connect: driver_memory, conf spark.driver.extraJavaOptions not applied (a shared server takes only spark.sql.* settings per task)"
            )
        );
    }

    #[test]
    fn a_task_that_must_be_submitted_always_is() {
        assert_eq!(
            resolve(&script(), Some(Submit), Some(Connect), Connect),
            Submit
        );
        assert_eq!(resolve(&jar(), None, Some(Connect), Connect), Submit);
        assert_eq!(resolve(&jar(), Some(Connect), None, Connect), Submit);
    }
}
