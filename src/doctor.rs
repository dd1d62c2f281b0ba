//! `harness doctor`: every prerequisite, found or missing, with how to get it.

use std::path::Path;
use std::process::Command;

use crate::config::Settings;
use crate::process::which;
use crate::services::postgres::postgres_bin_dir;
use crate::services::spark;

/// One prerequisite.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// What.
    pub name: &'static str,
    /// What was found (version and place), or `None` when missing.
    pub found: Option<String>,
    /// Why it is needed and how to get it.
    pub how: &'static str,
    /// False for prerequisites only some features need.
    pub required: bool,
}

fn first_line(program: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    let text = if out.stdout.is_empty() {
        out.stderr
    } else {
        out.stdout
    };
    String::from_utf8_lossy(&text)
        .lines()
        .next()
        .map(|l| l.trim().to_string())
}

/// True when the Java installation has the compiler module (`jdk.compiler`).
fn has_compiler(java_home: &Path) -> bool {
    Command::new(java_home.join("bin/java"))
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
    let out = Command::new(python).args(["-c", PROBE]).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Checks every prerequisite.
pub fn checks(settings: &Settings) -> Vec<Check> {
    let mut out = Vec::new();
    out.push(Check {
        name: "python",
        found: settings.python.exists().then(|| format!("{} ({})", settings.python.display(), first_line(&settings.python, &["--version"]).unwrap_or_default())),
        how: "the managed Python environment of python and spark tasks: scripts/setup.sh creates .venv",
        required: true,
    });
    out.push(Check {
        name: "java",
        // The metastore's launcher runs in source-file mode: the runtime alone is not enough.
        found: spark::find_java().ok().filter(|(home, _)| has_compiler(home)).map(|(home, v)| format!("{v} at {}", home.display())),
        how: "Java 17+ with its compiler module runs Spark and the Hive metastore: apt-get install openjdk-17-jdk-headless (scripts/setup.sh does)",
        required: true,
    });
    out.push(Check {
        name: "pyspark",
        found: spark::discover(&settings.python).ok().map(|i| {
            let version = std::fs::read_to_string(i.spark_home.join("version.py")).ok().and_then(|t| t.split(['"', '\'']).nth(1).map(str::to_string)).unwrap_or_else(|| "?".into());
            format!("{version} at {}", i.spark_home.display())
        }),
        how: "Spark, the Hive metastore jars and Hadoop's client: pinned in the pipeline's requirements.txt, installed by scripts/setup.sh",
        required: true,
    });
    out.push(Check {
        name: "spark-connect",
        found: connect_client(&settings.python),
        how: "the Spark Connect client packages (grpcio, grpcio-status, googleapis-common-protos, pyarrow, zstandard) that spark tasks need in connect mode: pinned in the pipeline's requirements.txt, installed by scripts/setup.sh",
        required: false,
    });
    out.push(Check {
        name: "postgres",
        found: postgres_bin_dir(&settings.postgres).ok().map(|d| {
            format!(
                "{} at {}",
                first_line(&d.join("postgres"), &["--version"]).unwrap_or_default(),
                d.display()
            )
        }),
        how: "PostgreSQL server programs: apt-get install postgresql (scripts/setup.sh does)",
        required: true,
    });
    let redis = if settings.redis.bin.components().count() > 1 {
        Some(settings.redis.bin.clone()).filter(|p| p.is_file())
    } else {
        which(&settings.redis.bin.to_string_lossy())
    };
    out.push(Check {
        name: "redis-server",
        found: redis.map(|p| {
            let line = first_line(&p, &["--version"]).unwrap_or_default();
            let version = line
                .split_whitespace()
                .find_map(|w| w.strip_prefix("v="))
                .unwrap_or("?")
                .to_string();
            format!("{version} at {}", p.display())
        }),
        how: "Redis server: apt-get install redis-server (scripts/setup.sh does)",
        required: true,
    });
    out.push(Check {
        name: "clickhouse-server",
        found: crate::services::clickhouse::server_bin(settings).ok().map(|p| {
            // 18.16's server has no --version; the package knows.
            let version = Command::new("dpkg-query")
                .args(["-W", "-f=${Version}", "clickhouse-server"])
                .output()
                .ok()
                .filter(|o| o.status.success())
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
                .unwrap_or_else(|| "?".into());
            format!("{version} at {}", p.display())
        }),
        how: "only for pipelines with a clickhouse service: apt-get install clickhouse-server (scripts/setup.sh does)",
        required: false,
    });
    out.push(Check {
        name: "postgres-jdbc",
        found: std::path::Path::new(crate::services::hive::POSTGRES_JDBC).is_file().then(|| crate::services::hive::POSTGRES_JDBC.to_string()),
        how: "only for a Hive metastore kept in PostgreSQL: apt-get install libpostgresql-jdbc-java (scripts/setup.sh does)",
        required: false,
    });
    let docker = which("docker").and_then(|d| {
        let out = Command::new(&d)
            .args(["version", "--format", "{{.Server.Version}}"])
            .output()
            .ok()?;
        out.status.success().then(|| {
            format!(
                "engine {} via {}",
                String::from_utf8_lossy(&out.stdout).trim(),
                d.display()
            )
        })
    });
    out.push(Check {
        name: "docker",
        found: docker,
        how: "a Docker engine that answers; not used by this version's local backend",
        required: false,
    });
    out
}
