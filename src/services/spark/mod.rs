//! Local Spark, from the PySpark install of the managed Python environment: the generated
//! `SPARK_CONF_DIR` every application gets (master, metastore, warehouse, the HDFS namespace),
//! the variables of spark-submit tasks, the harness's own long-lived Spark session (`session`)
//! that seeds and reads Hive tables and HDFS datasets, and the Spark Connect server (`connect`)
//! for tasks in connect mode. Both start on first use; neither runs in a container. When the run
//! has tasks on the Connect server, the session is a client of that server, so one Spark driver
//! JVM serves both.

pub mod class_archive;
pub mod connect;
pub mod session;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures_util::future::BoxFuture;
use tokio::sync::{MappedMutexGuard, Mutex, MutexGuard};

use super::hdfs::{HdfsEndpoint, HdfsRunning};
use super::hive::{HiveEndpoint, HiveRunning};
use super::{DataContext, Prerequisite, Running, Service, ServiceError, StartContext};
use crate::config::Settings;
use crate::config::rules::DataRules;
use crate::config::settings::SparkSettings;
use crate::events::Events;
use crate::names::ServiceKind;
use crate::outcome::InfraError;
use crate::process::{ServiceProcess, which};
use connect::ConnectEndpoint;
use session::SparkSession;

/// The Spark Connect server's share of memory, MB, when a task runs on it.
pub const CONNECT_SERVER_MB: u64 = 1200;
/// The harness's own Spark session's share of memory, MB, with a JVM of its own.
pub const SESSION_MB: u64 = 1200;
/// The harness's own Spark session's share of memory, MB, as a client of the Connect server
/// (a Python process with the client's libraries).
pub const CLIENT_SESSION_MB: u64 = 200;
/// One spark-submit driver's share of memory, MB.
pub const DRIVER_MB: u64 = 1100;

/// Where Spark and Java are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SparkInstall {
    /// The `pyspark` package folder (it holds `bin/spark-submit` and `jars/`).
    pub spark_home: PathBuf,
    /// The Java installation.
    pub java_home: PathBuf,
    /// Java's major version.
    pub java_version: u32,
    /// The managed Python interpreter (PySpark's driver and workers).
    pub python: PathBuf,
}

/// Finds PySpark in the managed Python environment and a Java 17+.
pub fn discover(python: &Path) -> Result<SparkInstall, String> {
    if !python.exists() {
        return Err(format!(
            "the managed Python environment ({}) is missing: run scripts/setup.sh",
            python.display()
        ));
    }
    let venv = python
        .parent()
        .and_then(Path::parent)
        .ok_or("cannot tell the Python environment's folder")?;
    let spark_home = std::fs::read_dir(venv.join("lib"))
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .map(|e| e.path().join("site-packages/pyspark"))
        .find(|p| p.join("bin/spark-submit").is_file())
        .ok_or_else(|| format!("PySpark is not installed in {}: run scripts/setup.sh (it installs the pinned pyspark)", venv.display()))?;
    let (java_home, java_version) = find_java()?;
    Ok(SparkInstall {
        spark_home,
        java_home,
        java_version,
        python: python.to_path_buf(),
    })
}

/// Java's home and major version: `JAVA_HOME`, else `java` on PATH; 17 or newer.
pub fn find_java() -> Result<(PathBuf, u32), String> {
    let java = match std::env::var_os("JAVA_HOME").map(PathBuf::from).filter(|h| h.join("bin/java").is_file()) {
        Some(home) => home.join("bin/java"),
        None => which("java").ok_or("Java not found: install Java 17 (Debian: openjdk-17-jdk-headless; scripts/setup.sh does)")?,
    };
    let real = std::fs::canonicalize(&java).unwrap_or(java.clone());
    let home = real
        .parent()
        .and_then(Path::parent)
        .ok_or("cannot tell Java's home")?
        .to_path_buf();
    let out = std::process::Command::new(&real)
        .arg("-version")
        .output()
        .map_err(|e| format!("cannot run {}: {e}", real.display()))?;
    let text = String::from_utf8_lossy(&out.stderr);
    let version = text
        .split('"')
        .nth(1)
        .and_then(|v| v.split(['.', '-', '+']).next())
        .and_then(|m| m.parse::<u32>().ok())
        .ok_or_else(|| {
            format!(
                "cannot read Java's version from: {}",
                text.lines().next().unwrap_or("")
            )
        })?;
    if version < 17 {
        return Err(format!(
            "Java {version} found at {}, Spark 4 needs 17 or newer (Debian: openjdk-17-jre-headless)",
            real.display()
        ));
    }
    Ok((home, version))
}

/// Writes `spark-defaults.conf` and a quiet `log4j2.properties` into `dir`.
pub fn write_spark_conf(
    dir: &Path,
    settings: &SparkSettings,
    hive: &HiveEndpoint,
    hdfs: &HdfsEndpoint,
    python: &Path,
) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut conf: BTreeMap<String, String> = BTreeMap::new();
    conf.insert("spark.master".into(), settings.master.clone());
    conf.insert("spark.sql.catalogImplementation".into(), "hive".into());
    conf.insert("spark.hadoop.hive.metastore.uris".into(), hive.uri());
    conf.insert("spark.sql.warehouse.dir".into(), hive.warehouse.clone());
    conf.insert("spark.ui.enabled".into(), "false".into());
    conf.insert("spark.ui.showConsoleProgress".into(), "false".into());
    conf.insert("spark.driver.host".into(), "127.0.0.1".into());
    conf.insert("spark.driver.bindAddress".into(), "127.0.0.1".into());
    conf.insert("spark.sql.session.timeZone".into(), "UTC".into());
    conf.insert("spark.sql.shuffle.partitions".into(), "4".into());
    // Without it every write into an existing partitioned table logs a lost-connection stack
    // trace and waits a second (Spark's Hive client looks for an authorizer it does not ship).
    conf.insert(
        "spark.hadoop.hive.security.authorization.manager".into(),
        "org.apache.hadoop.hive.ql.security.authorization.DefaultHiveAuthorizationProvider".into(),
    );
    conf.insert("spark.pyspark.python".into(), python.display().to_string());
    // Java ignores TMPDIR: without these, every JVM of the environment leaves block managers,
    // Connect artifacts and Hive's `<session>_resources` folders in /tmp for good.
    let tmp = dir.parent().unwrap_or(dir).join("java-tmp");
    std::fs::create_dir_all(&tmp)?;
    let tmp = tmp.display().to_string();
    conf.insert("spark.local.dir".into(), tmp.clone());
    conf.insert(
        "spark.driver.defaultJavaOptions".into(),
        format!("-Djava.io.tmpdir={tmp}"),
    );
    conf.insert(
        "spark.hadoop.hive.downloaded.resources.dir".into(),
        format!("{tmp}/${{hive.session.id}}_resources"),
    );
    conf.insert(
        "spark.hadoop.hive.exec.local.scratchdir".into(),
        format!("{tmp}/hive"),
    );
    for (k, v) in super::hdfs::hadoop_fs(hdfs) {
        conf.insert(format!("spark.hadoop.{k}"), v);
    }
    conf.extend(settings.conf.clone());
    let mut text = String::from("# Generated by harness for this environment.\n");
    for (k, v) in &conf {
        let _ = writeln!(text, "{k} {v}");
    }
    std::fs::write(dir.join("spark-defaults.conf"), text)?;
    std::fs::write(
        dir.join("log4j2.properties"),
        "# Generated by harness: warnings and errors only, on stderr.\n\
         rootLogger.level = warn\nrootLogger.appenderRef.console.ref = console\n\
         appender.console.type = Console\nappender.console.name = console\nappender.console.target = SYSTEM_ERR\n\
         appender.console.layout.type = PatternLayout\nappender.console.layout.pattern = %d{HH:mm:ss} %p %c{1}: %m%n%ex\n\
         logger.jetty.name = org.sparkproject.jetty\nlogger.jetty.level = warn\n",
    )
}

/// The environment variables Spark applications need besides `SPARK_CONF_DIR`.
pub fn spark_env(install: &SparkInstall) -> Vec<(String, String)> {
    vec![
        (
            "SPARK_HOME".into(),
            install.spark_home.display().to_string(),
        ),
        ("JAVA_HOME".into(), install.java_home.display().to_string()),
        ("SPARK_LOCAL_IP".into(), "127.0.0.1".into()),
        (
            "PYSPARK_PYTHON".into(),
            install.python.display().to_string(),
        ),
        (
            "PYSPARK_DRIVER_PYTHON".into(),
            install.python.display().to_string(),
        ),
    ]
}

/// `text` with every byte other than a letter, digit, `-`, `.`, `_` and `~` percent-encoded, as a
/// URI's host may hold it.
/// The Airflow connection whose host (and port) SparkSubmitHook turns back into `master`: a
/// standalone master `spark://H:P` is the host `spark://H` and the port P.
fn airflow_conn(master: &str) -> String {
    if let Some(rest) = master.strip_prefix("spark://")
        && let Some((host, port)) = rest.rsplit_once(':')
        && !host.contains(',')
        && port.parse::<u16>().is_ok()
    {
        return format!(
            "spark://{}:{port}",
            percent_encode(&format!("spark://{host}"))
        );
    }
    format!("spark://{}", percent_encode(master))
}

fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// True when the Java installation has the compiler module (`jdk.compiler`).
fn has_compiler(java_home: &Path) -> bool {
    std::process::Command::new(java_home.join("bin/java"))
        .arg("--list-modules")
        .output()
        .is_ok_and(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .any(|l| l.starts_with("jdk.compiler@"))
        })
}

/// The versions of the Spark Connect client's packages, when they all import.
fn connect_client(python: &Path) -> Option<String> {
    const PROBE: &str = "import grpc, grpc_status, google.rpc, pyarrow, zstandard, pyspark.sql.connect.session; print('grpcio', grpc.__version__, 'pyarrow', pyarrow.__version__)";
    let out = std::process::Command::new(python)
        .args(["-c", PROBE])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

// ---- the description ----

/// Local Spark: its configuration, the harness's session and the Connect server.
#[derive(Debug)]
pub struct Spark;

/// Spark holds no data of its own: what jobs write lands in Hive tables and on HDFS.
static RULES: DataRules = DataRules {
    no_data: "seed and read hive tables (service = \"hive\") or hdfs paths (service = \"hdfs\")",
    ..DataRules::NO_DATA
};

/// Local Spark of an environment: where it is, its configuration, the harness's session and the
/// Connect server.
#[derive(Debug)]
pub struct SparkRunning {
    /// PySpark and Java.
    pub install: SparkInstall,
    /// The generated `SPARK_CONF_DIR`.
    pub conf_dir: PathBuf,
    master: String,
    dir: PathBuf,
    start_timeout: Duration,
    /// The session, started on first use; guarded because scenarios take turns using it.
    session: Mutex<SessionSlot>,
    /// Set once the run has tasks on the Connect server: the session is then a client of it.
    /// Read at each use of the session, under the session's lock; nothing else orders on it.
    session_on_connect: AtomicBool,
    connect_memory: String,
    /// The settings the session's JVM takes from the project's.
    driver: class_archive::DriverConf,
    /// The Spark Connect server, started by the first scenario with a task in connect mode;
    /// guarded so that scenarios asking at the same time start one server, not several.
    connect: Mutex<ConnectSlot>,
}

#[derive(Debug, Default)]
struct ConnectSlot {
    endpoint: Option<ConnectEndpoint>,
    process: Option<ServiceProcess>,
    /// The class-data archive the server's JVM writes when it exits.
    dump: Option<class_archive::Dump>,
}

impl ConnectSlot {
    /// Stops the server, installing the archive its JVM wrote if it exited by itself.
    async fn stop(&mut self) {
        let exit = match self.process.take() {
            Some(p) => p.stop().await,
            None => None,
        };
        if let Some(d) = self.dump.take() {
            d.finish(class_archive::exited_by_itself(exit));
        }
    }
}

#[derive(Debug, Default)]
struct SessionSlot {
    session: Option<SparkSession>,
    process: Option<ServiceProcess>,
    /// The Connect server the session is a client of; `None` for a session with its own JVM.
    server: Option<ConnectEndpoint>,
    /// The class-data archive the session's own JVM writes when it exits.
    dump: Option<class_archive::Dump>,
}

impl SessionSlot {
    /// Stops the session, installing the archive its JVM wrote if it exited by itself.
    async fn stop(&mut self) {
        let clean = match self.session.as_mut() {
            Some(s) => s.shutdown().await,
            None => false,
        };
        self.session = None;
        if let Some(p) = self.process.take() {
            p.stop().await;
        }
        if let Some(d) = self.dump.take() {
            d.finish(clean);
        }
    }
}

impl Service for Spark {
    fn kind(&self) -> ServiceKind {
        ServiceKind::Spark
    }

    fn requires(&self, _settings: &Settings) -> Vec<ServiceKind> {
        vec![ServiceKind::Hive, ServiceKind::Hdfs]
    }

    fn rules(&self) -> &'static DataRules {
        &RULES
    }

    fn memory_mb(&self) -> u64 {
        // The harness's session, with its own JVM (the plan counts it as a client of the
        // Connect server where there is one).
        SESSION_MB
    }

    fn prerequisites(&self, settings: &Settings) -> Vec<Prerequisite> {
        let mut out = Vec::new();
        out.push(Prerequisite {
        name: "java",
        // The metastore's launcher is compiled (once into the cache, or at each start in
        // source-file mode): the runtime alone is not enough.
        found: find_java().ok().filter(|(home, _)| has_compiler(home)).map(|(home, v)| format!("{v} at {}", home.display())),
        how: "Java 17+ with its compiler module runs Spark and the Hive metastore: apt-get install openjdk-17-jdk-headless (scripts/setup.sh does)",
        required: true,
    });
        out.push(Prerequisite {
        name: "pyspark",
        found: discover(&settings.python).ok().map(|i| {
            let version = std::fs::read_to_string(i.spark_home.join("version.py")).ok().and_then(|t| t.split(['"', '\'']).nth(1).map(str::to_string)).unwrap_or_else(|| "?".into());
            format!("{version} at {}", i.spark_home.display())
        }),
        how: "Spark, the Hive metastore jars and Hadoop's client: pinned in the pipeline's requirements.txt, installed by scripts/setup.sh",
        required: true,
    });
        out.push(Prerequisite {
        name: "spark-connect",
        found: connect_client(&settings.python),
        how: "the Spark Connect client packages (grpcio, grpcio-status, googleapis-common-protos, pyarrow, zstandard) that spark tasks need in connect mode: pinned in the pipeline's requirements.txt, installed by scripts/setup.sh",
        required: false,
    });
        out
    }

    fn start_timeout(&self, settings: &Settings) -> Duration {
        settings.spark.start_timeout
    }

    fn start_local<'a>(
        &'a self,
        ctx: &'a StartContext<'a>,
    ) -> BoxFuture<'a, Result<Box<dyn Running>, InfraError>> {
        Box::pin(async move {
            let fail = |m: String| ctx.fail(ServiceKind::Spark, m);
            let install = discover(&ctx.settings.python).map_err(fail)?;
            let (Some(hive), Some(hdfs)) = (
                ctx.started.get::<HiveRunning>(),
                ctx.started.get::<HdfsRunning>(),
            ) else {
                return Err(fail(
                    "spark needs the Hive metastore and the HDFS namespace".into(),
                ));
            };
            let conf_dir = ctx.dir.join("spark-conf");
            write_spark_conf(
                &conf_dir,
                &ctx.settings.spark,
                &hive.endpoint,
                &hdfs.endpoint,
                &install.python,
            )
            .map_err(|e| fail(format!("cannot write the Spark configuration: {e}")))?;
            Ok(Box::new(SparkRunning {
                install,
                conf_dir,
                master: ctx.settings.spark.master.clone(),
                dir: ctx.dir.to_path_buf(),
                start_timeout: ctx.settings.spark.start_timeout,
                session: Mutex::new(SessionSlot::default()),
                session_on_connect: AtomicBool::new(false),
                connect_memory: ctx.settings.spark.connect_memory.clone(),
                driver: class_archive::DriverConf::of(&ctx.settings.spark.conf),
                connect: Mutex::new(ConnectSlot::default()),
            }) as Box<dyn Running>)
        })
    }
}

impl SparkRunning {
    /// Makes the harness's Spark session a client of the Spark Connect server from its next
    /// use on (the server starts then if it is not running yet), instead of a Spark driver of
    /// its own: for a run whose tasks use that server anyway. A session already running with
    /// its own JVM is replaced at its next use.
    pub fn session_on_connect(&self) {
        self.session_on_connect.store(true, Ordering::Relaxed);
    }

    /// The harness's Spark session, started on first use (and again if it died, or if the
    /// Connect server it is a client of was started anew).
    pub async fn session(
        &self,
        events: &Events,
    ) -> Result<MappedMutexGuard<'_, SparkSession>, InfraError> {
        let mut slot = self.session.lock().await;
        let server = match self.session_on_connect.load(Ordering::Relaxed) {
            true => Some(self.connect_server(events).await?),
            false => None,
        };
        if !slot.process.as_mut().is_some_and(|p| p.is_running()) || slot.server != server {
            slot.stop().await;
            let (install, conf, dir, timeout) =
                (&self.install, &self.conf_dir, &self.dir, self.start_timeout);
            let (proc, session, elapsed) = match &server {
                Some(ep) => session::start_client_session(install, conf, dir, timeout, ep).await?,
                None => {
                    let started =
                        session::start_cached_session(install, conf, dir, timeout, &self.driver)
                            .await?;
                    slot.dump = started.dump;
                    (started.process, started.session, started.elapsed)
                }
            };
            events.notice(match &server {
                Some(ep) => format!(
                    "spark session ready in {:.1}s, a client of the Spark Connect server at {}",
                    elapsed.as_secs_f64(),
                    ep.url()
                ),
                None => format!("spark session ready in {:.1}s", elapsed.as_secs_f64()),
            });
            slot.process = Some(proc);
            slot.session = Some(session);
            slot.server = server;
        }
        MutexGuard::try_map(slot, |s| s.session.as_mut()).map_err(|_| InfraError {
            stopped: false,
            service: "spark".into(),
            message: "the Spark session is gone".into(),
            log_tail: vec![],
        })
    }

    /// The Spark Connect server, started on first use (and again if it died).
    pub async fn connect_server(&self, events: &Events) -> Result<ConnectEndpoint, InfraError> {
        let mut slot = self.connect.lock().await;
        if slot.process.as_mut().is_some_and(|p| p.is_running())
            && let Some(ep) = &slot.endpoint
        {
            return Ok(ep.clone());
        }
        slot.stop().await;
        let (proc, ep, elapsed, dump) = connect::start_server(
            &self.install,
            &self.conf_dir,
            &self.dir,
            &self.connect_memory,
            self.start_timeout,
            &self.driver,
        )
        .await?;
        slot.dump = dump;
        events.notice(format!(
            "spark connect server ready at {} in {:.1}s",
            ep.url(),
            elapsed.as_secs_f64()
        ));
        slot.process = Some(proc);
        slot.endpoint = Some(ep.clone());
        Ok(ep)
    }
}

impl Running for SparkRunning {
    fn kind(&self) -> ServiceKind {
        ServiceKind::Spark
    }

    fn exited(&self) -> Option<String> {
        // A slot being filled right now is not looked at: its process is starting.
        let session = self
            .session
            .try_lock()
            .ok()
            .and_then(|s| s.process.as_ref()?.exit_note());
        session.or_else(|| {
            self.connect
                .try_lock()
                .ok()
                .and_then(|c| c.process.as_ref()?.exit_note())
        })
    }

    fn endpoint(&self) -> String {
        format!(
            "{} (SPARK_CONF_DIR {})",
            self.master,
            self.conf_dir.display()
        )
    }

    fn task_env(&self) -> Vec<(String, String)> {
        let mut vars = vec![
            (
                "SPARK_CONF_DIR".to_string(),
                self.conf_dir.display().to_string(),
            ),
            // Airflow's SparkSubmitHook makes `--master` of the host and port (`spark://local%5B2%5D`
            // is master `local[2]`); the rest comes from SPARK_CONF_DIR.
            (
                "AIRFLOW_CONN_SPARK_DEFAULT".to_string(),
                airflow_conn(&self.master),
            ),
        ];
        vars.extend(spark_env(&self.install));
        vars
    }

    fn reset<'a>(&'a self, _ctx: &'a DataContext<'a>) -> BoxFuture<'a, Result<(), ServiceError>> {
        Box::pin(async move {
            let mut slot = self.session.lock().await;
            if let Some(session) = slot.session.as_mut() {
                session
                    .refresh()
                    .await
                    .map_err(|e| ServiceError::Unavailable {
                        service: "spark",
                        message: e.message,
                    })?;
            }
            Ok(())
        })
    }

    fn stop(self: Box<Self>) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            self.session.into_inner().stop().await;
            self.connect.into_inner().stop().await;
        })
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::airflow_conn;

    #[test]
    fn the_airflow_connection_gives_back_the_master() {
        assert_eq!(airflow_conn("local[2]"), "spark://local%5B2%5D");
        // SparkSubmitHook: master = host:port, the host percent-decoded.
        assert_eq!(
            airflow_conn("spark://127.0.0.1:7077"),
            "spark://spark%3A%2F%2F127.0.0.1:7077"
        );
        assert_eq!(airflow_conn("yarn"), "spark://yarn");
    }
}
