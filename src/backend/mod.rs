//! The lifecycle side of services: bringing up an environment (one started set of services with
//! its endpoints), handing its addresses to tasks, and tearing it down. `local` runs PostgreSQL
//! and Redis as private processes; `spark` runs the Hive metastore, lays out the HDFS namespace,
//! writes the Spark configuration and starts the harness's own Spark session on first use.

pub mod local;
pub mod spark;

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::sync::{MappedMutexGuard, Mutex, MutexGuard};

use crate::config::{BackendChoice, ServiceKind, Settings};
use crate::report::events::{Event, Events};
use crate::services::ServiceError;
use crate::services::hdfs::HdfsEndpoint;
use crate::services::hive::HiveEndpoint;
use crate::services::postgres::PostgresEndpoint;
use crate::services::redis::RedisEndpoint;
use crate::services::spark::SparkSession;

/// A service that did not come up.
#[derive(Debug, thiserror::Error)]
#[error("{service} did not start: {message}{}", tail(.log_tail))]
pub struct InfraError {
    /// Which service.
    pub service: String,
    /// What went wrong.
    pub message: String,
    /// The last lines of its log.
    pub log_tail: Vec<String>,
}

fn tail(lines: &[String]) -> String {
    if lines.is_empty() {
        String::new()
    } else {
        format!("\nlast log lines:\n  {}", lines.join("\n  "))
    }
}

/// The backend actually used, and why it was chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// Backend name.
    pub name: &'static str,
    /// Why.
    pub reason: &'static str,
}

/// Resolves `auto` to a concrete backend.
pub fn resolve(choice: BackendChoice) -> Resolved {
    match choice {
        BackendChoice::Local => Resolved {
            name: "local",
            reason: "requested",
        },
        BackendChoice::Auto => Resolved {
            name: "local",
            reason: "auto: local is the only backend of this version",
        },
    }
}

/// Local Spark of an environment: where it is, its configuration, and the harness's session.
#[derive(Debug)]
pub struct SparkEnv {
    /// PySpark and Java.
    pub install: spark::SparkInstall,
    /// The generated `SPARK_CONF_DIR`.
    pub conf_dir: PathBuf,
    start_timeout: Duration,
    /// The session, started on first use; guarded because scenarios take turns using it.
    session: Mutex<SessionSlot>,
}

#[derive(Debug, Default)]
struct SessionSlot {
    session: Option<SparkSession>,
    process: Option<local::ServiceProcess>,
}

/// One started set of services.
#[derive(Debug)]
pub struct Environment {
    /// PostgreSQL, when started.
    pub postgres: Option<PostgresEndpoint>,
    /// Redis, when started.
    pub redis: Option<RedisEndpoint>,
    /// The HDFS namespace, when started.
    pub hdfs: Option<HdfsEndpoint>,
    /// The Hive metastore, when started.
    pub hive: Option<HiveEndpoint>,
    /// Local Spark, when started.
    pub spark: Option<SparkEnv>,
    /// Folder holding the services' data and logs.
    pub dir: PathBuf,
    services: Vec<local::ServiceProcess>,
}

impl Environment {
    /// Starts `services` in `dir` (which the environment owns from now on).
    pub async fn start(
        services: &[ServiceKind],
        settings: &Settings,
        dir: &Path,
        events: &Events,
    ) -> Result<Environment, InfraError> {
        let mut env = Environment {
            postgres: None,
            redis: None,
            hdfs: None,
            hive: None,
            spark: None,
            dir: dir.to_path_buf(),
            services: Vec::new(),
        };
        let wants = |s: ServiceKind| services.contains(&s);
        let ready = |service: ServiceKind, endpoint: String, elapsed: Duration| {
            events.emit(Event::ServiceReady {
                service,
                endpoint,
                elapsed,
            })
        };

        let install = if wants(ServiceKind::Hive) || wants(ServiceKind::Spark) {
            match spark::discover(&settings.python) {
                Ok(i) => Some(i),
                Err(message) => {
                    return Err(InfraError {
                        service: "spark".into(),
                        message,
                        log_tail: vec![],
                    });
                }
            }
        } else {
            None
        };
        if wants(ServiceKind::Hdfs) {
            let hdfs = HdfsEndpoint {
                authority: settings.hdfs.authority.clone(),
                root: dir.join("hdfs"),
            };
            hdfs.reset().map_err(|e| InfraError {
                service: "hdfs".into(),
                message: e.to_string(),
                log_tail: vec![],
            })?;
            ready(
                ServiceKind::Hdfs,
                format!("{} (local folder {})", hdfs.url(), hdfs.root.display()),
                Duration::ZERO,
            );
            env.hdfs = Some(hdfs);
        }

        // Everything at once; a failure stops whatever did come up.
        let pg = async {
            if wants(ServiceKind::Postgres) {
                Some(local::start_postgres(&settings.postgres, dir).await)
            } else {
                None
            }
        };
        let rd = async {
            if wants(ServiceKind::Redis) {
                Some(local::start_redis(&settings.redis, dir).await)
            } else {
                None
            }
        };
        // A metastore kept in PostgreSQL starts once PostgreSQL answers; one on Derby at once.
        let pg_backed = settings.hive.database == crate::config::settings::MetastoreDb::Postgres;
        let hv = async {
            match (&install, &env.hdfs) {
                (Some(i), Some(h)) if wants(ServiceKind::Hive) && !pg_backed => {
                    Some(spark::start_metastore(&settings.hive, i, h, None, dir).await)
                }
                _ => None,
            }
        };
        let (pg, rd, hv) = tokio::join!(pg, rd, hv);
        let mut first_error = None;
        match pg {
            Some(Ok((proc, ep, elapsed))) => {
                ready(ServiceKind::Postgres, ep.url(), elapsed);
                env.postgres = Some(ep);
                env.services.push(proc);
            }
            Some(Err(e)) => first_error = first_error.or(Some(e)),
            None => {}
        }
        match rd {
            Some(Ok((proc, ep, elapsed))) => {
                ready(ServiceKind::Redis, ep.url(), elapsed);
                env.redis = Some(ep);
                env.services.push(proc);
            }
            Some(Err(e)) => first_error = first_error.or(Some(e)),
            None => {}
        }
        let hv = match (hv, &install, &env.hdfs, &env.postgres) {
            (None, Some(i), Some(h), Some(p))
                if wants(ServiceKind::Hive) && pg_backed && first_error.is_none() =>
            {
                Some(spark::start_metastore(&settings.hive, i, h, Some(p), dir).await)
            }
            (hv, ..) => hv,
        };
        match hv {
            Some(Ok((proc, ep, elapsed))) => {
                ready(ServiceKind::Hive, ep.uri(), elapsed);
                env.hive = Some(ep);
                env.services.push(proc);
            }
            Some(Err(e)) => first_error = first_error.or(Some(e)),
            None => {}
        }
        if first_error.is_none()
            && wants(ServiceKind::Spark)
            && let (Some(install), Some(hive), Some(hdfs)) = (install, &env.hive, &env.hdfs)
        {
            let conf_dir = dir.join("spark-conf");
            match spark::write_spark_conf(&conf_dir, &settings.spark, hive, hdfs, &install.python) {
                Ok(()) => {
                    ready(
                        ServiceKind::Spark,
                        format!(
                            "{} (SPARK_CONF_DIR {})",
                            settings.spark.master,
                            conf_dir.display()
                        ),
                        Duration::ZERO,
                    );
                    env.spark = Some(SparkEnv {
                        install,
                        conf_dir,
                        start_timeout: settings.spark.start_timeout,
                        session: Mutex::new(SessionSlot::default()),
                    });
                }
                Err(e) => {
                    first_error = Some(InfraError {
                        service: "spark".into(),
                        message: format!("cannot write the Spark configuration: {e}"),
                        log_tail: vec![],
                    })
                }
            }
        }
        match first_error {
            Some(e) => {
                env.stop().await;
                Err(e)
            }
            None => Ok(env),
        }
    }

    /// The harness's Spark session, started on first use.
    pub async fn spark_session(
        &self,
        events: &Events,
    ) -> Result<MappedMutexGuard<'_, SparkSession>, InfraError> {
        let spark = self.spark.as_ref().ok_or_else(|| InfraError {
            service: "spark".into(),
            message: "spark is not part of this environment".into(),
            log_tail: vec![],
        })?;
        let mut slot = spark.session.lock().await;
        let alive = match slot.process.as_mut() {
            Some(p) => matches!(p.child_mut().try_wait(), Ok(None)),
            None => false,
        };
        if !alive {
            if let Some(p) = slot.process.take() {
                p.stop().await;
            }
            slot.session = None;
            let (proc, session, elapsed) = spark::start_session(
                &spark.install,
                &spark.conf_dir,
                &self.dir,
                spark.start_timeout,
            )
            .await?;
            events.notice(format!(
                "spark session ready in {:.1}s",
                elapsed.as_secs_f64()
            ));
            slot.process = Some(proc);
            slot.session = Some(session);
        }
        MutexGuard::try_map(slot, |s| s.session.as_mut()).map_err(|_| InfraError {
            service: "spark".into(),
            message: "the Spark session is gone".into(),
            log_tail: vec![],
        })
    }

    /// Brings every service back to empty: a fresh database, no Redis keys, no Hive databases
    /// or tables but `default`, an empty HDFS namespace.
    pub async fn reset(&self) -> Result<(), ServiceError> {
        if let Some(pg) = &self.postgres {
            pg.reset().await?;
        }
        if let Some(r) = &self.redis {
            r.reset().await?;
        }
        if let Some(h) = &self.hive {
            h.reset().await?;
        }
        if let Some(h) = &self.hdfs {
            h.reset()?;
        }
        if let Some(spark) = &self.spark {
            let mut slot = spark.session.lock().await;
            if let Some(session) = slot.session.as_mut() {
                session
                    .refresh()
                    .await
                    .map_err(|e| ServiceError::Unavailable {
                        service: "spark",
                        message: e.message,
                    })?;
            }
        }
        Ok(())
    }

    /// The environment variables of the contract with pipeline code, for the services started.
    pub fn task_env(&self) -> Vec<(String, String)> {
        let mut vars = Vec::new();
        if let Some(pg) = &self.postgres {
            vars.push(("HARNESS_POSTGRES_URL".into(), pg.url()));
            vars.push(("AIRFLOW_CONN_POSTGRES_DEFAULT".into(), pg.url()));
        }
        if let Some(r) = &self.redis {
            vars.push(("HARNESS_REDIS_URL".into(), r.url()));
            vars.push(("AIRFLOW_CONN_REDIS_DEFAULT".into(), r.url()));
        }
        if let Some(h) = &self.hdfs {
            vars.push(("HARNESS_HDFS_URL".into(), h.url()));
        }
        if let Some(h) = &self.hive {
            vars.push(("HARNESS_HIVE_METASTORE_URI".into(), h.uri()));
            vars.push(("HARNESS_WAREHOUSE_DIR".into(), h.warehouse.clone()));
            vars.push((
                "AIRFLOW_CONN_METASTORE_DEFAULT".into(),
                format!("hive-metastore://{}:{}", h.host, h.port),
            ));
        }
        if let Some(s) = &self.spark {
            vars.push(("SPARK_CONF_DIR".into(), s.conf_dir.display().to_string()));
            vars.extend(spark::spark_env(&s.install));
        }
        vars
    }

    /// Stops every service and removes their data.
    pub async fn stop(mut self) {
        if let Some(spark) = self.spark.take() {
            let mut slot = spark.session.into_inner();
            if let Some(s) = slot.session.as_mut() {
                s.shutdown().await;
            }
            if let Some(p) = slot.process.take() {
                p.stop().await;
            }
        }
        for s in self.services.drain(..) {
            s.stop().await;
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
