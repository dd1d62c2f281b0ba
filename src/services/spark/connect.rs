//! The environment's Spark Connect server: one long-lived Spark driver that `spark` tasks in
//! connect mode use as plain Python clients (`SPARK_REMOTE`), instead of starting a JVM each.
//! It is started from the same PySpark install with the same generated `SPARK_CONF_DIR` as
//! spark-submit tasks (master, metastore, warehouse, HDFS namespace), listens on 127.0.0.1 only,
//! and is ready when a real client's query answers, not when its port opens.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::process::Command;

use super::class_archive::{self, CachedDriver, DriverConf, Dump};
use super::{SparkInstall, spark_env};
use crate::outcome::InfraError;
use crate::process::{ServiceProcess, free_port, isolate, log_tail};

/// The server's entry point in the spark-connect jar.
const SERVER_CLASS: &str = "org.apache.spark.sql.connect.service.SparkConnectServer";

/// What the readiness probe runs: a query through the real client, and one that reaches the
/// metastore (which also warms the server's Hive client for the first task). Exit code 3 means
/// the client itself cannot load, which no amount of waiting fixes.
const PROBE: &str = r#"
import sys
try:
    from pyspark.sql import SparkSession
    spark = SparkSession.builder.getOrCreate()
except ImportError as e:
    print(f"the Spark Connect client cannot load: {e}", file=sys.stderr)
    sys.exit(3)
assert spark.sql("SELECT 1").collect()[0][0] == 1
spark.sql("SHOW DATABASES").collect()
spark.stop()
"#;

/// How long one probe may take once the port accepts.
const PROBE_TIMEOUT: Duration = Duration::from_secs(60);

/// A running Spark Connect server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectEndpoint {
    /// Its gRPC port on 127.0.0.1.
    pub port: u16,
    /// Its log file.
    pub log: PathBuf,
}

impl ConnectEndpoint {
    /// The `SPARK_REMOTE` URL clients connect with.
    pub fn url(&self) -> String {
        format!("sc://127.0.0.1:{}", self.port)
    }
}

/// The cache folder of the server JVM's class-data archives and of its empty configuration
/// folder ([`CachedDriver`]).
const CACHE_FOLDER: &str = "spark-connect";

/// A started server: its process, where it answers, how long it took, and the class-data
/// archive its JVM writes when it exits (installed by the caller once it exited by itself).
pub type Started = (ServiceProcess, ConnectEndpoint, Duration, Option<Dump>);

/// Starts the server in `env_dir/spark-connect` with `memory` as its driver memory, and waits
/// until a client's query answers. Its JVM starts from the cache when it can (an empty
/// `SPARK_CONF_DIR` of the cache, the configuration of `conf_dir` given by file, a class-data
/// archive of the server's classes, written by the first such start at its exit), else the
/// plain way; a cached start that fails is tried again the plain way, and its archive is dropped
/// when that works. Unlike the harness's session, the server keeps the C2 compiler: it runs the
/// tasks' jobs.
pub async fn start_server(
    install: &SparkInstall,
    conf_dir: &Path,
    env_dir: &Path,
    memory: &str,
    timeout: Duration,
    driver: &DriverConf,
) -> Result<Started, InfraError> {
    let began = Instant::now();
    let dir = env_dir.join("spark-connect");
    let key = [SERVER_CLASS.to_string(), format!("memory={memory}")];
    let cached = CachedDriver::new(
        install,
        CACHE_FOLDER,
        conf_dir,
        &dir.join("cds.log"),
        driver,
        "",
        &key,
    );
    let plain_jvm = Jvm {
        spark_home: &install.spark_home,
        conf_dir,
        properties_file: None,
        java_options: None,
    };
    let plain = || serve(install, &plain_jvm, env_dir, memory, timeout);
    let ((proc, ep), dump) = match cached {
        Some(cached) => {
            let jvm = Jvm {
                spark_home: &cached.spark_home,
                conf_dir: &cached.conf_dir,
                properties_file: Some(&cached.properties_file),
                java_options: Some(&cached.java_options),
            };
            let start = serve(install, &jvm, env_dir, memory, timeout);
            cached
                .archive
                .start_or_plain(began + timeout, start, plain)
                .await?
        }
        None => (plain().await?, None),
    };
    // Writing the archive at exit takes a few seconds, once.
    let proc = match &dump {
        Some(_) => proc.with_grace(class_archive::DUMP_GRACE),
        None => proc,
    };
    Ok((proc, ep, began.elapsed(), dump))
}

/// How the server's JVM starts: from which PySpark folder, with which `SPARK_CONF_DIR`, and for
/// the cached start the configuration file and Java options.
struct Jvm<'a> {
    spark_home: &'a Path,
    conf_dir: &'a Path,
    properties_file: Option<&'a Path>,
    java_options: Option<&'a str>,
}

/// Starts the server's JVM as `jvm` says on a free port (three tries when the port is taken
/// meanwhile), and waits until a client's query answers.
async fn serve(
    install: &SparkInstall,
    jvm: &Jvm<'_>,
    env_dir: &Path,
    memory: &str,
    timeout: Duration,
) -> Result<(ServiceProcess, ConnectEndpoint), InfraError> {
    let started = Instant::now();
    let dir = env_dir.join("spark-connect");
    let log = dir.join("server.log");
    let fail = |m: String, with_log: bool| InfraError {
        stopped: false,
        service: "spark-connect".into(),
        message: m,
        log_tail: if with_log { log_tail(&log, 25) } else { vec![] },
    };
    std::fs::create_dir_all(&dir).map_err(|e| fail(e.to_string(), false))?;
    let mut last = None;
    for _ in 0..3 {
        let port = free_port().map_err(|e| fail(format!("no free port: {e}"), false))?;
        let logfile = std::fs::File::create(&log).map_err(|e| fail(e.to_string(), false))?;
        let mut cmd = Command::new(jvm.spark_home.join("bin/spark-submit"));
        if let Some(file) = jvm.properties_file {
            cmd.arg("--properties-file").arg(file);
        }
        if let Some(options) = jvm.java_options {
            cmd.args(["--driver-java-options", options]);
        }
        cmd.args(["--name", "harness-spark-connect", "--driver-memory", memory])
            .args(["--conf", "spark.connect.grpc.binding.address=127.0.0.1"])
            .arg("--conf")
            .arg(format!("spark.connect.grpc.binding.port={port}"))
            // Clients cannot reach sparkContext.setCheckpointDir: jobs that checkpoint (ALS
            // every few iterations) use the server's own folder.
            .arg("--conf")
            .arg(format!(
                "spark.checkpoint.dir=file://{}",
                dir.join("checkpoints").display()
            ))
            .args(["--class", SERVER_CLASS, "spark-internal"])
            .current_dir(&dir)
            .envs(spark_env(install))
            .env("SPARK_HOME", jvm.spark_home)
            .env("SPARK_CONF_DIR", jvm.conf_dir)
            .stdin(Stdio::null())
            .stdout(
                logfile
                    .try_clone()
                    .map_err(|e| fail(e.to_string(), false))?,
            )
            .stderr(logfile);
        isolate(&mut cmd);
        let child = cmd
            .spawn()
            .map_err(|e| fail(format!("cannot start spark-submit: {e}"), false))?;
        let mut proc = ServiceProcess::new("spark-connect", child, libc::SIGTERM);
        let ep = ConnectEndpoint {
            port,
            log: log.clone(),
        };
        match wait_answering(
            &mut proc,
            install,
            &ep,
            crate::process::deadline_after(started, timeout),
        )
        .await
        {
            Ok(()) => return Ok((proc, ep)),
            Err(e) => {
                proc.stop().await;
                let taken = std::fs::read_to_string(&log)
                    .unwrap_or_default()
                    .contains("Address already in use");
                last = Some(fail(e, true));
                if !taken {
                    break;
                }
            }
        }
    }
    Err(last.unwrap_or_else(|| fail("did not start".into(), true)))
}

/// Waits for the port to accept, then for the probe to succeed.
async fn wait_answering(
    proc: &mut ServiceProcess,
    install: &SparkInstall,
    ep: &ConnectEndpoint,
    deadline: Instant,
) -> Result<(), String> {
    loop {
        if let Some(status) = proc.child_mut().try_wait().map_err(|e| e.to_string())? {
            return Err(format!("the server exited before it was ready ({status})"));
        }
        if tokio::net::TcpStream::connect(("127.0.0.1", ep.port))
            .await
            .is_ok()
        {
            match probe(install, ep).await {
                Ok(()) => return Ok(()),
                Err(Some(fatal)) => return Err(fatal),
                Err(None) => {}
            }
        }
        if Instant::now() >= deadline {
            return Err("not answering a query in time".into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// One probe: `Ok` when the query answered; `Err(Some(..))` when retrying cannot help.
async fn probe(install: &SparkInstall, ep: &ConnectEndpoint) -> Result<(), Option<String>> {
    let mut cmd = Command::new(&install.python);
    cmd.args(["-c", PROBE])
        .env("SPARK_REMOTE", ep.url())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let run = cmd.output();
    match tokio::time::timeout(PROBE_TIMEOUT, run).await {
        Ok(Ok(out)) if out.status.success() => Ok(()),
        Ok(Ok(out)) if out.status.code() == Some(3) => Err(Some(format!(
            "{} (scripts/setup.sh installs the client's packages)",
            String::from_utf8_lossy(&out.stderr).trim()
        ))),
        Ok(Err(e)) => Err(Some(format!(
            "cannot run {}: {e}",
            install.python.display()
        ))),
        Ok(Ok(_)) | Err(_) => Err(None),
    }
}
