//! The harness's own Spark session: one long-lived PySpark process per environment (started
//! on first use by the backend) that seeds Hive tables and reads Hive tables and HDFS datasets
//! back. One JVM start per run instead of one per operation: a spark-submit costs 8–12 s here.
//! Where the environment runs a Spark Connect server, the process is a client of that server
//! instead and starts no JVM of its own. It speaks JSON lines over its stdin/stdout (see
//! `harness_spark.py` beside this file).

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{Value as J, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{ChildStdin, ChildStdout, Command};

use super::class_archive::{CachedDriver, DriverConf, Dump};
use super::connect::ConnectEndpoint;
use super::{SparkInstall, spark_env};
use crate::config::TableFormat;
use crate::outcome::InfraError;
use crate::process::{ServiceProcess, isolate, log_tail};
use crate::snapshot::{Column, Table, Value};

/// How long one request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(600);
/// How long the session may take to stop, its JVM included (the script gives its JVM a minute).
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(80);

/// A connection to the session process.
#[derive(Debug)]
pub struct SparkSession {
    stdin: ChildStdin,
    stdout: Lines<BufReader<ChildStdout>>,
    next_id: u64,
}

/// A request the session rejected, or a broken session.
#[derive(Debug, Clone)]
pub struct SparkError {
    /// The session's message.
    pub message: String,
    /// True when the session itself failed (not the request).
    pub broken: bool,
}

impl std::fmt::Display for SparkError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl SparkSession {
    /// Wraps the pipes of a started session process and waits for its `{"ready": true}`.
    pub async fn handshake(
        stdin: ChildStdin,
        stdout: ChildStdout,
        timeout: Duration,
    ) -> Result<SparkSession, String> {
        let mut s = SparkSession {
            stdin,
            stdout: BufReader::new(stdout).lines(),
            next_id: 0,
        };
        match tokio::time::timeout(timeout, s.stdout.next_line()).await {
            Err(_) => Err(format!(
                "the Spark session was not ready within {}",
                humantime::format_duration(timeout)
            )),
            Ok(Err(e)) => Err(format!("the Spark session's output: {e}")),
            Ok(Ok(None)) => Err("the Spark session exited before it was ready".into()),
            Ok(Ok(Some(line))) => match serde_json::from_str::<J>(&line) {
                Ok(v) if v["ready"] == json!(true) => Ok(s),
                _ => Err(format!(
                    "unexpected first line from the Spark session: {line}"
                )),
            },
        }
    }

    async fn request(&mut self, mut req: J) -> Result<J, SparkError> {
        let broken = |message: String| SparkError {
            message,
            broken: true,
        };
        self.next_id += 1;
        req["id"] = json!(self.next_id);
        let mut line = req.to_string();
        line.push('\n');
        self.stdin
            .write_all(line.as_bytes())
            .await
            .map_err(|e| broken(format!("cannot talk to the Spark session: {e}")))?;
        self.stdin
            .flush()
            .await
            .map_err(|e| broken(e.to_string()))?;
        let reply = tokio::time::timeout(REQUEST_TIMEOUT, self.stdout.next_line())
            .await
            .map_err(|_| broken("the Spark session did not answer within 10 minutes".into()))?
            .map_err(|e| broken(e.to_string()))?
            .ok_or_else(|| broken("the Spark session exited".into()))?;
        let v: J = serde_json::from_str(&reply)
            .map_err(|e| broken(format!("bad reply from the Spark session ({e}): {reply}")))?;
        if v["ok"] == json!(true) {
            Ok(v)
        } else {
            Err(SparkError {
                message: v["error"].as_str().unwrap_or("unknown error").to_string(),
                broken: false,
            })
        }
    }

    /// Forgets cached table metadata (after the metastore was reset behind its back).
    pub async fn refresh(&mut self) -> Result<(), SparkError> {
        self.request(json!({"op": "refresh"})).await.map(drop)
    }

    /// Creates (or replaces) a Hive table from a local file or folder. Returns the rows written.
    #[allow(clippy::too_many_arguments)]
    pub async fn seed_table(
        &mut self,
        table: &str,
        format: TableFormat,
        path: &Path,
        schema: Option<&str>,
        partition_by: &[String],
        delimiter: u8,
        null: Option<&str>,
    ) -> Result<u64, SparkError> {
        let (delimiter, null_value) = ((delimiter as char).to_string(), null.unwrap_or(""));
        let req = json!({
            "op": "seed_table",
            "table": table,
            "input": {"format": format.name(), "path": path.display().to_string()},
            "schema": schema,
            "partition_by": partition_by,
            "storage": "parquet",
            "csv": {"delimiter": delimiter, "null_value": null_value},
        });
        Ok(self.request(req).await?["rows"].as_u64().unwrap_or(0))
    }

    /// Reads a Hive table (partition columns included).
    pub async fn read_table(&mut self, table: &str, scratch: &Path) -> Result<Table, SparkError> {
        let reply = self
            .request(
                json!({"op": "read_table", "table": table, "out": scratch.display().to_string()}),
            )
            .await?;
        table_from(&reply, scratch)
    }

    /// Reads the dataset at a path (`hdfs://...`) in a format.
    pub async fn read_path(
        &mut self,
        url: &str,
        format: TableFormat,
        scratch: &Path,
    ) -> Result<Table, SparkError> {
        let reply = self.request(json!({"op": "read_path", "path": url, "format": format.name(), "out": scratch.display().to_string()})).await?;
        table_from(&reply, scratch)
    }

    /// Captures a Hive table or a query's rows into one Parquet file (`harness capture`): the
    /// request's fields are those of the session's `capture_table` op.
    pub async fn capture_table(&mut self, mut request: J) -> Result<J, SparkError> {
        request["op"] = json!("capture_table");
        self.request(request).await
    }

    /// Stops the session; true when its own JVM then exited by itself (with a class-data
    /// archive to write, it does so before exiting: a few seconds).
    pub async fn shutdown(&mut self) -> bool {
        let reply =
            tokio::time::timeout(SHUTDOWN_TIMEOUT, self.request(json!({"op": "shutdown"}))).await;
        matches!(reply, Ok(Ok(r)) if r.get("jvm_exit").and_then(J::as_i64).is_some_and(|c| c >= 0))
    }
}

fn table_from(reply: &J, rows_file: &Path) -> Result<Table, SparkError> {
    let bad = |m: String| SparkError {
        message: m,
        broken: false,
    };
    let described = reply["columns"]
        .as_array()
        .ok_or_else(|| bad("reply without columns".into()))?;
    let columns: Vec<Column> = described
        .iter()
        .map(|c| Column {
            name: c["name"].as_str().unwrap_or("").to_string(),
            type_name: c["type"].as_str().unwrap_or("").to_string(),
        })
        .collect();
    // Spark's JSON form of each column's type: what nested values are read by.
    let schemas: Vec<&J> = described.iter().map(|c| &c["schema"]).collect();
    let text = std::fs::read_to_string(rows_file)
        .map_err(|e| bad(format!("{}: {e}", rows_file.display())))?;
    let _ = std::fs::remove_file(rows_file);
    let mut rows = Vec::new();
    for line in text.lines().filter(|l| !l.is_empty()) {
        let cells: Vec<J> = serde_json::from_str(line)
            .map_err(|e| bad(format!("bad row from the Spark session: {e}")))?;
        rows.push(
            columns
                .iter()
                .zip(&schemas)
                .zip(cells)
                .map(|((c, schema), v)| match schema {
                    J::Object(_) => typed(schema, v),
                    _ => value(&c.type_name, v),
                })
                .collect(),
        );
    }
    Ok(Table { columns, rows })
}

/// A Spark value as a canonical one, by the column's Spark type.
pub fn value(spark_type: &str, v: J) -> Value {
    match v {
        J::Null => Value::Null,
        J::Bool(b) => Value::Bool(b),
        J::Number(n) if matches!(spark_type, "tinyint" | "smallint" | "int" | "bigint") => n
            .as_i64()
            .map(Value::Int)
            .unwrap_or_else(|| Value::Numeric(n.to_string().into())),
        J::Number(n) if spark_type.starts_with("decimal") => Value::Numeric(n.to_string().into()),
        J::Number(n) => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
        J::String(s) if matches!(spark_type, "float" | "double") => {
            Value::Float(match s.as_str() {
                "Infinity" => f64::INFINITY,
                "-Infinity" => f64::NEG_INFINITY,
                _ => f64::NAN,
            })
        }
        J::String(s) if spark_type.starts_with("decimal") => Value::Numeric(s.into()),
        J::String(s) => Value::Text(s.into()),
        other => Value::Text(other.to_string().into()),
    }
}

/// A value of the Spark type given as Spark's JSON (`{"type": "array", "elementType": ...}`):
/// arrays as lists, maps (sent as `[key, value]` pairs) as maps, structs (sent as their
/// fields' values in order) as structs, and scalars as [`value`] reads them.
pub fn typed(spark_type: &J, v: J) -> Value {
    let kind = spark_type["type"].as_str();
    match (kind, v) {
        (_, J::Null) => Value::Null,
        (Some("array"), J::Array(items)) => Value::List(
            items
                .into_iter()
                .map(|x| typed(&spark_type["elementType"], x))
                .collect(),
        ),
        (Some("map"), J::Array(pairs)) => Value::Map(
            pairs
                .into_iter()
                .map(|pair| {
                    let (k, v) = match pair {
                        J::Array(kv) if kv.len() == 2 => {
                            let mut kv = kv.into_iter();
                            (kv.next().unwrap_or(J::Null), kv.next().unwrap_or(J::Null))
                        }
                        other => (other, J::Null),
                    };
                    (
                        typed(&spark_type["keyType"], k),
                        typed(&spark_type["valueType"], v),
                    )
                })
                .collect(),
        ),
        (Some("struct"), J::Array(values)) => {
            let fields = spark_type["fields"]
                .as_array()
                .map_or(&[][..], Vec::as_slice);
            Value::Struct(
                fields
                    .iter()
                    .zip(values)
                    .map(|(f, x)| {
                        let name = f["name"].as_str().unwrap_or("").to_string();
                        (name, typed(&f["type"], x))
                    })
                    .collect(),
            )
        }
        (_, v) => value(simple_name(spark_type.as_str().unwrap_or("")), v),
    }
}

/// The simple-string name of an atomic Spark type given by its JSON name.
fn simple_name(json_name: &str) -> &str {
    match json_name {
        "byte" => "tinyint",
        "short" => "smallint",
        "integer" => "int",
        "long" => "bigint",
        other => other,
    }
}

/// The session script, shipped inside the binary.
const SESSION_SCRIPT: &str = include_str!("harness_spark.py");

/// Starts the harness's own Spark session process, with a JVM of its own started the plain way
/// (`conf_dir` as its `SPARK_CONF_DIR`), and waits until it answers.
pub async fn start_session(
    install: &SparkInstall,
    conf_dir: &Path,
    env_dir: &Path,
    timeout: Duration,
) -> Result<(ServiceProcess, SparkSession, Duration), InfraError> {
    launch(install, conf_dir, None, env_dir, timeout, &[]).await
}

/// The cache folder of the session JVM's class-data archives and of its empty configuration
/// folder ([`CachedDriver`]).
const CACHE_FOLDER: &str = "spark-session";

/// A session with a JVM of its own, started.
#[derive(Debug)]
pub struct Started {
    /// The session script's process (its JVM is its child).
    pub process: ServiceProcess,
    /// The connection to it.
    pub session: SparkSession,
    /// How long it took to answer.
    pub elapsed: Duration,
    /// The class-data archive its JVM writes when it exits: installed when the session's
    /// [`SparkSession::shutdown`] reports a clean exit.
    pub dump: Option<Dump>,
}

/// The session JVM's own options: the C2 compiler's threads take CPU from the start and seldom
/// pay back in the session's seeds and reads (docs/performance.md).
const SESSION_JAVA_OPTIONS: &str = "-XX:TieredStopAtLevel=1";

/// Starts the harness's own Spark session process with a JVM of its own, started from the cache
/// when it can be (an empty `SPARK_CONF_DIR` of the cache, the configuration of `conf_dir`
/// given by file, a class-data archive of the session's classes, written by the first such
/// start at its exit), else the plain way; and waits until it answers. A cached start that
/// fails is tried again the plain way, and its archive is dropped when that works.
pub async fn start_cached_session(
    install: &SparkInstall,
    conf_dir: &Path,
    env_dir: &Path,
    timeout: Duration,
    driver: &DriverConf,
) -> Result<Started, InfraError> {
    let began = Instant::now();
    let plain_args = [
        "--java-options".to_string(),
        driver.java_options(SESSION_JAVA_OPTIONS),
    ];
    let plain = || launch(install, conf_dir, None, env_dir, timeout, &plain_args);
    let log = env_dir.join("spark-session").join("cds.log");
    let cached = CachedDriver::new(
        install,
        CACHE_FOLDER,
        conf_dir,
        &log,
        driver,
        SESSION_JAVA_OPTIONS,
        &[],
    );
    let ((process, session, _), dump) = match cached {
        Some(jvm) => {
            let args = [
                "--properties-file".to_string(),
                jvm.properties_file.display().to_string(),
                "--java-options".to_string(),
                jvm.java_options.clone(),
            ];
            let home = Some(jvm.spark_home.as_path());
            let start = launch(install, &jvm.conf_dir, home, env_dir, timeout, &args);
            jvm.archive
                .start_or_plain(began + timeout, start, plain)
                .await?
        }
        None => (plain().await?, None),
    };
    Ok(Started {
        process,
        session,
        elapsed: began.elapsed(),
        dump,
    })
}

/// Starts the harness's own Spark session process as a client of the Spark Connect server at
/// `server` (no JVM of its own), and waits until it answers.
pub async fn start_client_session(
    install: &SparkInstall,
    conf_dir: &Path,
    env_dir: &Path,
    timeout: Duration,
    server: &ConnectEndpoint,
) -> Result<(ServiceProcess, SparkSession, Duration), InfraError> {
    let args = ["--remote".to_string(), server.url()];
    launch(install, conf_dir, None, env_dir, timeout, &args).await
}

/// Starts the session script with `args`, `conf_dir` as its `SPARK_CONF_DIR` and `spark_home`
/// (by default the install's) as its `SPARK_HOME`.
async fn launch(
    install: &SparkInstall,
    conf_dir: &Path,
    spark_home: Option<&Path>,
    env_dir: &Path,
    timeout: Duration,
    args: &[String],
) -> Result<(ServiceProcess, SparkSession, Duration), InfraError> {
    let started = Instant::now();
    let dir = env_dir.join("spark-session");
    let log = dir.join("session.log");
    let fail = |m: String, with_log: bool| InfraError {
        stopped: false,
        service: "spark".into(),
        message: m,
        log_tail: if with_log { log_tail(&log, 25) } else { vec![] },
    };
    std::fs::create_dir_all(&dir).map_err(|e| fail(e.to_string(), false))?;
    let script = dir.join("harness_spark.py");
    std::fs::write(&script, SESSION_SCRIPT).map_err(|e| fail(e.to_string(), false))?;
    let logfile = std::fs::File::create(&log).map_err(|e| fail(e.to_string(), false))?;
    let mut cmd = Command::new(&install.python);
    cmd.arg(&script).args(args);
    cmd.current_dir(&dir)
        .envs(spark_env(install))
        .env("SPARK_CONF_DIR", conf_dir)
        .env("PYTHONUNBUFFERED", "1");
    if let Some(home) = spark_home {
        cmd.env("SPARK_HOME", home);
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spark_values_map_by_type() {
        assert_eq!(value("bigint", json!(5)), Value::Int(5));
        assert_eq!(value("double", json!(0.5)), Value::Float(0.5));
        assert_eq!(
            value("double", json!("Infinity")),
            Value::Float(f64::INFINITY)
        );
        assert_eq!(
            value("decimal(10,2)", json!("1.50")),
            Value::Numeric("1.50".into())
        );
        assert_eq!(
            value("date", json!("2024-05-01")),
            Value::Text("2024-05-01".into())
        );
        assert_eq!(value("string", J::Null), Value::Null);
        assert_eq!(value("boolean", json!(true)), Value::Bool(true));
    }

    #[test]
    fn nested_spark_values_are_read_by_their_type() {
        let schema = json!({"type": "struct", "fields": [
            {"name": "ids", "type": {"type": "array", "elementType": "long", "containsNull": true}, "nullable": true, "metadata": {}},
            {"name": "by_day", "type": {"type": "map", "keyType": "integer", "valueType": "double", "valueContainsNull": true}, "nullable": true, "metadata": {}},
            {"name": "price", "type": "decimal(10,2)", "nullable": true, "metadata": {}}
        ]});
        let v = typed(
            &schema,
            json!([[3, null, 1], [[10, 0.5], [9, "NaN"]], "1.50"]),
        );
        assert_eq!(
            v.render(None),
            "{ids: [3, NULL, 1], by_day: {9: NaN, 10: 0.5}, price: 1.50}"
        );
        assert_eq!(typed(&schema, J::Null), Value::Null);
        assert_eq!(typed(&json!("integer"), json!(7)), Value::Int(7));
    }
}
