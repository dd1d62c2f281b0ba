//! The lifecycle side of services: bringing up an environment (one started set of services with
//! its endpoints), handing its addresses to tasks, and tearing it down. `local` runs PostgreSQL
//! and Redis as private processes; `spark` runs the Hive metastore, lays out the HDFS namespace,
//! writes the Spark configuration and starts the harness's own Spark session and, for tasks in
//! connect mode, the Spark Connect server on first use.

pub mod connect;
pub mod docker;
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
    /// Which.
    pub kind: BackendKind,
    /// Why.
    pub reason: String,
}

/// A concrete backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    /// Processes on this machine.
    Local,
    /// Containers.
    Docker,
}

impl BackendKind {
    /// Its name.
    pub fn name(self) -> &'static str {
        match self {
            BackendKind::Local => "local",
            BackendKind::Docker => "docker",
        }
    }
}

/// Resolves `auto`: docker when a Docker daemon answers, local otherwise.
pub async fn resolve(choice: BackendChoice) -> Resolved {
    match choice {
        BackendChoice::Local => Resolved {
            kind: BackendKind::Local,
            reason: "requested".into(),
        },
        BackendChoice::Docker => Resolved {
            kind: BackendKind::Docker,
            reason: "requested".into(),
        },
        BackendChoice::Auto => match docker::connect().await {
            Ok(_) => Resolved {
                kind: BackendKind::Docker,
                reason: "auto: a Docker daemon answers".into(),
            },
            Err(e) => Resolved {
                kind: BackendKind::Local,
                reason: format!("auto: {e}"),
            },
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
    connect_memory: String,
    /// The Spark Connect server, started by the first scenario with a task in connect mode;
    /// guarded so that scenarios asking at the same time start one server, not several.
    connect: Mutex<ConnectSlot>,
}

#[derive(Debug, Default)]
struct ConnectSlot {
    endpoint: Option<connect::ConnectEndpoint>,
    process: Option<local::ServiceProcess>,
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
    containers: Vec<docker::ServiceContainer>,
    pg_baseline: Option<crate::services::postgres::Globals>,
}

impl Environment {
    /// Starts `services` in `dir` (which the environment owns from now on).
    pub async fn start(
        services: &[ServiceKind],
        settings: &Settings,
        backend: BackendKind,
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
            containers: Vec::new(),
            pg_baseline: None,
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

        let mut first_error = None;
        if backend == BackendKind::Docker {
            if let Err(e) = env
                .start_containers(services, settings, install.as_ref(), events)
                .await
            {
                first_error = Some(e);
            }
        } else {
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
            let pg_backed =
                settings.hive.database == crate::config::settings::MetastoreDb::Postgres;
            let hv = async {
                match (&install, &env.hdfs) {
                    (Some(i), Some(h)) if wants(ServiceKind::Hive) && !pg_backed => {
                        Some(spark::start_metastore(&settings.hive, i, h, None, dir).await)
                    }
                    _ => None,
                }
            };
            let (pg, rd, hv) = tokio::join!(pg, rd, hv);
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
                        connect_memory: settings.spark.connect_memory.clone(),
                        connect: Mutex::new(ConnectSlot::default()),
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
        // What PostgreSQL holds once every service is up (its own databases, the metastore's,
        // its roles) is what a reset goes back to.
        if first_error.is_none()
            && let Some(pg) = &env.postgres
        {
            match pg.globals().await {
                Ok(g) => env.pg_baseline = Some(g),
                Err(e) => {
                    first_error = Some(InfraError {
                        service: "postgres".into(),
                        message: format!("cannot list databases and roles: {e}"),
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

    /// Starts PostgreSQL, Redis and the Hive metastore as containers (the HDFS namespace and Spark
    /// stay local; the namespace's folder is mounted at the same path so table locations agree).
    async fn start_containers(
        &mut self,
        services: &[ServiceKind],
        settings: &Settings,
        install: Option<&spark::SparkInstall>,
        events: &Events,
    ) -> Result<(), InfraError> {
        let wants = |s: ServiceKind| services.contains(&s);
        let docker_err = |m: String| InfraError {
            service: "docker".into(),
            message: m,
            log_tail: vec![],
        };
        let client = docker::connect().await.map_err(docker_err)?;
        docker::remove_orphans(&client, events)
            .await
            .map_err(docker_err)?;
        let run_id = format!(
            "{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis())
                .unwrap_or(0)
        );
        let base = settings.image_base.as_str();
        let image = |service: &'static str| {
            docker::image_spec(service).ok_or_else(|| docker_err(format!("no image for {service}")))
        };
        let ready = |service: ServiceKind, endpoint: String, elapsed: Duration| {
            events.emit(Event::ServiceReady {
                service,
                endpoint,
                elapsed,
            })
        };

        let mut specs = Vec::new();
        if wants(ServiceKind::Postgres) {
            let tag =
                docker::ensure_image(&client, &image("postgres")?, base, None, events).await?;
            specs.push(docker::ContainerSpec {
                service: "postgres",
                image: tag,
                port: 5432,
                env: vec![],
                mounts: vec![],
                args: settings
                    .postgres
                    .settings
                    .iter()
                    .flat_map(|s| ["-c".to_string(), s.clone()])
                    .collect(),
            });
        }
        if wants(ServiceKind::Redis) {
            let tag = docker::ensure_image(&client, &image("redis")?, base, None, events).await?;
            specs.push(docker::ContainerSpec {
                service: "redis",
                image: tag,
                port: 6379,
                env: vec![],
                mounts: vec![],
                args: vec![],
            });
        }
        if wants(ServiceKind::Hive) {
            let (Some(install), Some(hdfs)) = (install, &self.hdfs) else {
                return Err(docker_err(
                    "the metastore image needs PySpark's jars and the HDFS namespace".into(),
                ));
            };
            if settings.hive.database == crate::config::settings::MetastoreDb::Postgres {
                return Err(InfraError { service: "hive".into(), message: "a metastore kept in PostgreSQL runs on the local backend only; the docker backend's metastore uses Derby".into(), log_tail: vec![] });
            }
            let tag = docker::ensure_image(
                &client,
                &image("hive")?,
                base,
                Some(&install.spark_home.join("jars")),
                events,
            )
            .await?;
            let env = vec![
                ("HDFS_ROOT".to_string(), hdfs.root.display().to_string()),
                ("HDFS_AUTHORITY".to_string(), hdfs.authority.clone()),
                (
                    "WAREHOUSE_DIR".to_string(),
                    hdfs.url_of(crate::services::hdfs::WAREHOUSE),
                ),
            ];
            specs.push(docker::ContainerSpec {
                service: "hive",
                image: tag,
                port: 9083,
                env,
                mounts: vec![hdfs.root.clone()],
                args: vec![],
            });
        }

        let warehouse = self
            .hdfs
            .as_ref()
            .map(|h| h.url_of(crate::services::hdfs::WAREHOUSE))
            .unwrap_or_default();
        let starts = specs.into_iter().map(|spec| {
            let (client, run_id, warehouse) = (&client, run_id.as_str(), warehouse.clone());
            async move {
                let service = spec.service;
                let timeout = match service {
                    "postgres" => settings.postgres.start_timeout,
                    "redis" => settings.redis.start_timeout,
                    _ => settings.hive.start_timeout,
                };
                let probe = move |port: u16| {
                    let warehouse = warehouse.clone();
                    async move {
                        match service {
                            "postgres" => pg_at(port).ready().await,
                            "redis" => redis_at(port).ready().await,
                            _ => {
                                HiveEndpoint {
                                    host: "127.0.0.1".into(),
                                    port,
                                    warehouse,
                                    log: None,
                                }
                                .ready()
                                .await
                            }
                        }
                    }
                };
                docker::start_container(client, spec, run_id, timeout, probe).await
            }
        });
        let mut first_error = None;
        for result in futures_util::future::join_all(starts).await {
            match result {
                Ok((c, elapsed)) => {
                    match c.service {
                        "postgres" => {
                            let ep = pg_at(c.port);
                            if let Err(e) = ep.reset(None).await {
                                first_error = first_error.or(Some(InfraError {
                                    service: "postgres".into(),
                                    message: e.to_string(),
                                    log_tail: vec![],
                                }));
                            }
                            ready(
                                ServiceKind::Postgres,
                                format!("{} (container)", ep.url()),
                                elapsed,
                            );
                            self.postgres = Some(ep);
                        }
                        "redis" => {
                            let ep = redis_at(c.port);
                            ready(
                                ServiceKind::Redis,
                                format!("{} (container)", ep.url()),
                                elapsed,
                            );
                            self.redis = Some(ep);
                        }
                        _ => {
                            let ep = HiveEndpoint {
                                host: "127.0.0.1".into(),
                                port: c.port,
                                warehouse: warehouse.clone(),
                                log: None,
                            };
                            ready(
                                ServiceKind::Hive,
                                format!("{} (container)", ep.uri()),
                                elapsed,
                            );
                            self.hive = Some(ep);
                        }
                    }
                    self.containers.push(c);
                }
                Err(e) => first_error = first_error.or(Some(e)),
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Local Spark, or an error naming `service` when the environment has none.
    fn local_spark(&self, service: &str) -> Result<&SparkEnv, InfraError> {
        self.spark.as_ref().ok_or_else(|| InfraError {
            service: service.into(),
            message: "spark is not part of this environment".into(),
            log_tail: vec![],
        })
    }

    /// The harness's Spark session, started on first use.
    pub async fn spark_session(
        &self,
        events: &Events,
    ) -> Result<MappedMutexGuard<'_, SparkSession>, InfraError> {
        let spark = self.local_spark("spark")?;
        let mut slot = spark.session.lock().await;
        if !slot.process.as_mut().is_some_and(|p| p.is_running()) {
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

    /// The Spark Connect server, started on first use (and again if it died).
    pub async fn spark_connect(
        &self,
        events: &Events,
    ) -> Result<connect::ConnectEndpoint, InfraError> {
        let spark = self.local_spark("spark-connect")?;
        let mut slot = spark.connect.lock().await;
        if slot.process.as_mut().is_some_and(|p| p.is_running())
            && let Some(ep) = &slot.endpoint
        {
            return Ok(ep.clone());
        }
        if let Some(p) = slot.process.take() {
            p.stop().await;
        }
        let (proc, ep, elapsed) = connect::start_server(
            &spark.install,
            &spark.conf_dir,
            &self.dir,
            &spark.connect_memory,
            spark.start_timeout,
        )
        .await?;
        events.notice(format!(
            "spark connect server ready at {} in {:.1}s",
            ep.url(),
            elapsed.as_secs_f64()
        ));
        slot.process = Some(proc);
        slot.endpoint = Some(ep.clone());
        Ok(ep)
    }

    /// Brings every service back to empty: a fresh database (and no database or role but those
    /// there when the environment started), no Redis keys in any database, no Hive databases or
    /// tables but `default`, an empty HDFS namespace.
    pub async fn reset(&self) -> Result<(), ServiceError> {
        if let Some(pg) = &self.postgres {
            pg.reset(self.pg_baseline.as_ref()).await?;
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
            if let Some(p) = spark.connect.into_inner().process.take() {
                p.stop().await;
            }
        }
        for s in self.services.drain(..) {
            s.stop().await;
        }
        for c in self.containers.drain(..) {
            c.stop().await;
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn pg_at(port: u16) -> PostgresEndpoint {
    PostgresEndpoint {
        host: "127.0.0.1".into(),
        port,
        user: "harness".into(),
        password: "harness".into(),
        database: crate::services::postgres::DATABASE.into(),
    }
}

fn redis_at(port: u16) -> RedisEndpoint {
    RedisEndpoint {
        host: "127.0.0.1".into(),
        port,
        db: 0,
    }
}
