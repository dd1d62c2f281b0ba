//! Local Spark and what comes with the PySpark jars: the Hive metastore as its own JVM, the HDFS
//! namespace (a local folder behind Hadoop's client), the generated Spark configuration every
//! application gets, and the harness's own long-lived Spark session.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::process::Command;

use super::InfraError;
use super::local::{ServiceProcess, free_port, log_tail, wait_ready, which};
use crate::config::settings::{HiveSettings, SparkSettings};
use crate::dag::process::isolate;
use crate::services::hdfs::{HdfsEndpoint, WAREHOUSE};
use crate::services::hive::HiveEndpoint;
use crate::services::postgres::PostgresEndpoint;
use crate::services::spark::SparkSession;

/// The session script, shipped inside the binary.
const SESSION_SCRIPT: &str = include_str!("harness_spark.py");

/// The metastore's entry point: Hive 2.3's own `HiveMetaStore -p` listens on every interface
/// and has no setting for that, so this starts the same handler on 127.0.0.1 only. Run in
/// Java's source-file mode (it needs the JDK's compiler module).
const METASTORE_LAUNCHER: &str = include_str!("LoopbackMetaStore.java");

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

/// Hadoop's settings that serve `hdfs://` from the namespace's local folder.
fn hadoop_fs(hdfs: &HdfsEndpoint) -> Vec<(String, String)> {
    vec![
        ("fs.defaultFS".into(), hdfs.url()),
        (
            "fs.hdfs.impl".into(),
            "org.apache.hadoop.fs.viewfs.ViewFileSystemOverloadScheme".into(),
        ),
        (
            "fs.viewfs.overload.scheme.target.hdfs.impl".into(),
            "org.apache.hadoop.hdfs.DistributedFileSystem".into(),
        ),
        (
            format!("fs.viewfs.mounttable.{}.linkFallback", hdfs.mount_table()),
            format!("file://{}", hdfs.root.display()),
        ),
    ]
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
    for (k, v) in hadoop_fs(hdfs) {
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

fn hive_site(props: &[(String, String)]) -> String {
    let mut xml = String::from(
        "<?xml version=\"1.0\"?>\n<!-- Generated by harness for this environment. -->\n<configuration>\n",
    );
    for (k, v) in props {
        let esc = |s: &str| {
            s.replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('>', "&gt;")
        };
        let _ = writeln!(
            xml,
            "  <property><name>{}</name><value>{}</value></property>",
            esc(k),
            esc(v)
        );
    }
    xml.push_str("</configuration>\n");
    xml
}

/// The Debian package's PostgreSQL JDBC driver.
pub const POSTGRES_JDBC: &str = "/usr/share/java/postgresql.jar";
/// The metastore's database on the environment's PostgreSQL.
const METASTORE_DB: &str = "metastore";

/// Starts a Hive metastore in `env_dir/hive`, its warehouse on the namespace: embedded Derby, or
/// a database on `pg` when given.
pub async fn start_metastore(
    settings: &HiveSettings,
    install: &SparkInstall,
    hdfs: &HdfsEndpoint,
    pg: Option<&PostgresEndpoint>,
    env_dir: &Path,
) -> Result<(ServiceProcess, HiveEndpoint, Duration), InfraError> {
    let started = Instant::now();
    let dir = env_dir.join("hive");
    let fail = |m: String, log: Option<&Path>| InfraError {
        service: "hive".into(),
        message: m,
        log_tail: log.map(|l| log_tail(l, 20)).unwrap_or_default(),
    };
    std::fs::create_dir_all(&dir)
        .map_err(|e| fail(format!("cannot create {}: {e}", dir.display()), None))?;
    let warehouse = hdfs.url_of(WAREHOUSE);
    let mut props: Vec<(String, String)> = vec![
        ("hive.metastore.schema.verification".into(), "false".into()),
        ("hive.metastore.warehouse.dir".into(), warehouse.clone()),
        ("hive.async.log.enabled".into(), "false".into()),
        // New folders would otherwise inherit the read-only mode of the view file system's root.
        ("hive.warehouse.subdir.inherit.perms".into(), "false".into()),
        (
            "hive.metastore.event.db.notification.api.auth".into(),
            "false".into(),
        ),
        // drop_database needs a connection pool whose jar ships with Spark (BoneCP does not).
        (
            "datanucleus.connectionPoolingType".into(),
            "HikariCP".into(),
        ),
    ];
    let mut classpath = format!("{}:{}/jars/*", dir.display(), install.spark_home.display());
    match pg {
        None => props.extend([
            (
                "javax.jdo.option.ConnectionURL".to_string(),
                format!(
                    "jdbc:derby:;databaseName={}/metastore_db;create=true",
                    dir.display()
                ),
            ),
            ("datanucleus.schema.autoCreateAll".into(), "true".into()),
        ]),
        Some(pg) => {
            if !Path::new(POSTGRES_JDBC).is_file() {
                return Err(fail(
                    format!(
                        "a metastore in PostgreSQL needs the JDBC driver {POSTGRES_JDBC}: apt-get install libpostgresql-jdbc-java (scripts/setup.sh does)"
                    ),
                    None,
                ));
            }
            pg.create_database(METASTORE_DB)
                .await
                .map_err(|e| fail(e.to_string(), None))?;
            classpath.push(':');
            classpath.push_str(POSTGRES_JDBC);
            props.extend([
                (
                    "javax.jdo.option.ConnectionURL".to_string(),
                    format!("jdbc:postgresql://{}:{}/{METASTORE_DB}", pg.host, pg.port),
                ),
                (
                    "javax.jdo.option.ConnectionDriverName".into(),
                    "org.postgresql.Driver".into(),
                ),
                (
                    "javax.jdo.option.ConnectionUserName".into(),
                    pg.user.clone(),
                ),
                (
                    "javax.jdo.option.ConnectionPassword".into(),
                    pg.password.clone(),
                ),
                // autoCreateAll deadlocks on PostgreSQL (a foreign key added while DataNucleus's
                // own insert holds a lock); tables and columns without constraints work.
                ("datanucleus.schema.autoCreateAll".into(), "false".into()),
                ("datanucleus.schema.autoCreateTables".into(), "true".into()),
                ("datanucleus.schema.autoCreateColumns".into(), "true".into()),
                (
                    "datanucleus.schema.autoCreateConstraints".into(),
                    "false".into(),
                ),
            ]);
        }
    }
    props.extend(hadoop_fs(hdfs));
    std::fs::write(dir.join("hive-site.xml"), hive_site(&props))
        .map_err(|e| fail(e.to_string(), None))?;
    let log = dir.join("metastore.log");
    let launcher = dir.join("LoopbackMetaStore.java");
    std::fs::write(&launcher, METASTORE_LAUNCHER).map_err(|e| fail(e.to_string(), None))?;

    let mut last = None;
    for _ in 0..3 {
        let port = free_port().map_err(|e| fail(format!("no free port: {e}"), None))?;
        let logfile = std::fs::File::create(&log).map_err(|e| fail(e.to_string(), None))?;
        let mut cmd = Command::new(install.java_home.join("bin/java"));
        cmd.arg(format!("-Xmx{}", settings.heap))
            .arg(format!("-Dderby.system.home={}", dir.display()))
            .arg("-Djava.net.preferIPv4Stack=true")
            .arg("-cp")
            .arg(&classpath)
            .arg(&launcher)
            .arg(port.to_string());
        cmd.env("JAVA_HOME", &install.java_home)
            .current_dir(&dir)
            .stdin(Stdio::null());
        cmd.stdout(logfile.try_clone().map_err(|e| fail(e.to_string(), None))?)
            .stderr(logfile);
        isolate(&mut cmd);
        let child = cmd
            .spawn()
            .map_err(|e| fail(format!("cannot start java: {e}"), None))?;
        let mut proc = ServiceProcess::new("hive", child, libc::SIGTERM);
        let ep = HiveEndpoint {
            host: "127.0.0.1".into(),
            port,
            warehouse: warehouse.clone(),
            log: Some(log.clone()),
        };
        match wait_ready(proc.child_mut(), settings.start_timeout, || ep.ready()).await {
            Ok(()) => return Ok((proc, ep, started.elapsed())),
            Err(e) => {
                let taken = std::fs::read_to_string(&log)
                    .unwrap_or_default()
                    .contains("Address already in use");
                proc.stop().await;
                last = Some(fail(format!("metastore: {e}"), Some(&log)));
                if !taken {
                    break;
                }
            }
        }
    }
    Err(last.unwrap_or_else(|| fail("did not start".into(), None)))
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

/// Starts the harness's own Spark session process and waits until it answers.
pub async fn start_session(
    install: &SparkInstall,
    conf_dir: &Path,
    env_dir: &Path,
    timeout: Duration,
) -> Result<(ServiceProcess, SparkSession, Duration), InfraError> {
    let started = Instant::now();
    let dir = env_dir.join("spark-session");
    let log = dir.join("session.log");
    let fail = |m: String, with_log: bool| InfraError {
        service: "spark".into(),
        message: m,
        log_tail: if with_log { log_tail(&log, 25) } else { vec![] },
    };
    std::fs::create_dir_all(&dir).map_err(|e| fail(e.to_string(), false))?;
    let script = dir.join("harness_spark.py");
    std::fs::write(&script, SESSION_SCRIPT).map_err(|e| fail(e.to_string(), false))?;
    let logfile = std::fs::File::create(&log).map_err(|e| fail(e.to_string(), false))?;
    let mut cmd = Command::new(&install.python);
    cmd.arg(&script)
        .current_dir(&dir)
        .envs(spark_env(install))
        .env("SPARK_CONF_DIR", conf_dir)
        .env("PYTHONUNBUFFERED", "1");
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(logfile);
    isolate(&mut cmd);
    let mut child = cmd
        .spawn()
        .map_err(|e| fail(format!("cannot start the Spark session: {e}"), false))?;
    let (stdin, stdout) = (child.stdin.take(), child.stdout.take());
    let proc = ServiceProcess::new("spark", child, libc::SIGTERM);
    let (Some(stdin), Some(stdout)) = (stdin, stdout) else {
        proc.stop().await;
        return Err(fail("the Spark session has no pipes".into(), false));
    };
    match SparkSession::handshake(stdin, stdout, timeout).await {
        Ok(session) => Ok((proc, session, started.elapsed())),
        Err(e) => {
            proc.stop().await;
            Err(fail(e, true))
        }
    }
}
