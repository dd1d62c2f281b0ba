//! `harness.toml`: project-wide settings with their defaults.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::{Checker, memory_size, parse_duration};
use crate::diagnostic::ConfigError;

/// Which backend brings services to life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendChoice {
    /// Pick the best available one.
    Auto,
    /// Processes on this machine.
    Local,
    /// Containers through the Docker daemon.
    Docker,
}

impl BackendChoice {
    /// Parses a backend name as written in harness.toml or on the command line.
    pub fn parse(name: &str) -> Result<Self, String> {
        match name {
            "auto" => Ok(BackendChoice::Auto),
            "local" => Ok(BackendChoice::Local),
            "docker" => Ok(BackendChoice::Docker),
            other => Err(format!(
                "unknown backend `{other}`; expected `auto`, `local` or `docker`"
            )),
        }
    }
}

/// Settings of the local PostgreSQL service.
#[derive(Debug, Clone)]
pub struct PostgresSettings {
    /// Folder holding `initdb` and `postgres`; found automatically when `None`.
    pub bin_dir: Option<PathBuf>,
    /// How long to wait for the server to answer a query.
    pub start_timeout: Duration,
    /// Server settings (`name=value`), passed as `-c name=value` on both backends.
    pub settings: Vec<String>,
}

/// Settings of the local Redis service.
#[derive(Debug, Clone)]
pub struct RedisSettings {
    /// The `redis-server` binary (a path, or a name looked up on PATH).
    pub bin: PathBuf,
    /// How long to wait for the server to answer PING.
    pub start_timeout: Duration,
}

/// Settings of the ClickHouse service.
#[derive(Debug, Clone)]
pub struct ClickHouseSettings {
    /// The `clickhouse-server` binary (a path, or a name looked up on PATH and in /usr/sbin).
    pub bin: PathBuf,
    /// How long to wait for the server to answer `SELECT 1`.
    pub start_timeout: Duration,
}

/// Settings of the Hive metastore.
#[derive(Debug, Clone)]
pub struct HiveSettings {
    /// How long to wait for the metastore to answer a call.
    pub start_timeout: Duration,
    /// Heap of the metastore JVM (`-Xmx`).
    pub heap: String,
    /// Where the metastore keeps its tables.
    pub database: MetastoreDb,
    /// True when the harness writes and reads Parquet seeds and sinks itself; false sends every
    /// Hive seed and sink through its Spark session.
    pub direct: bool,
}

/// The metastore's own database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetastoreDb {
    /// Embedded Derby in the environment's folder (the default).
    Derby,
    /// A `metastore` database on the environment's PostgreSQL (which is then started too).
    Postgres,
}

/// Settings of the HDFS namespace.
#[derive(Debug, Clone)]
pub struct HdfsSettings {
    /// The authority of `hdfs://` URLs jobs use (`namenode:8020`).
    pub authority: String,
}

/// Settings of local Spark.
#[derive(Debug, Clone)]
pub struct SparkSettings {
    /// The master of every application (`local[2]`).
    pub master: String,
    /// How long the harness's own Spark session may take to start.
    pub start_timeout: Duration,
    /// Extra Spark configuration for every application.
    pub conf: std::collections::BTreeMap<String, String>,
    /// How `spark` tasks run unless a task or the command line says otherwise.
    pub mode: super::SparkMode,
    /// `--driver-memory` of the Spark Connect server (every connect-mode task shares it).
    pub connect_memory: String,
}

/// Validated `harness.toml`, with defaults filled in and paths made absolute.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Folder of scenario folders.
    pub scenarios_dir: PathBuf,
    /// Folder of pipeline folders.
    pub pipelines_dir: PathBuf,
    /// Shared fixture folder.
    pub fixtures_dir: PathBuf,
    /// Where reports go.
    pub report_dir: PathBuf,
    /// Backend choice.
    pub backend: BackendChoice,
    /// Interpreter of `python` tasks.
    pub python: PathBuf,
    /// Interpreter of the managed Airflow (`[airflow] python`).
    pub airflow_python: PathBuf,
    /// Tasks of one pipeline running at once, at most.
    pub task_jobs: usize,
    /// PostgreSQL settings.
    pub postgres: PostgresSettings,
    /// Redis settings.
    pub redis: RedisSettings,
    /// ClickHouse settings.
    pub clickhouse: ClickHouseSettings,
    /// Hive metastore settings.
    pub hive: HiveSettings,
    /// HDFS settings.
    pub hdfs: HdfsSettings,
    /// Spark settings.
    pub spark: SparkSettings,
    /// Base image of the docker backend's images.
    pub image_base: String,
}

impl Settings {
    /// The defaults, for a project without harness.toml.
    pub fn defaults(root: &Path) -> Self {
        Settings {
            scenarios_dir: root.join("scenarios"),
            pipelines_dir: root.join("pipelines"),
            fixtures_dir: root.join("fixtures"),
            report_dir: root.join(".harness/report"),
            backend: BackendChoice::Auto,
            python: root.join(".venv/bin/python"),
            airflow_python: root.join(".venv-airflow/bin/python"),
            task_jobs: 4,
            postgres: PostgresSettings {
                bin_dir: None,
                start_timeout: Duration::from_secs(30),
                settings: Vec::new(),
            },
            clickhouse: ClickHouseSettings {
                bin: PathBuf::from("clickhouse-server"),
                start_timeout: Duration::from_secs(30),
            },
            redis: RedisSettings {
                bin: PathBuf::from("redis-server"),
                start_timeout: Duration::from_secs(10),
            },
            hive: HiveSettings {
                start_timeout: Duration::from_secs(90),
                heap: "512m".into(),
                database: MetastoreDb::Derby,
                direct: true,
            },
            image_base: "debian:bookworm-slim".into(),
            hdfs: HdfsSettings {
                authority: "namenode:8020".into(),
            },
            spark: SparkSettings {
                master: "local[2]".into(),
                start_timeout: Duration::from_secs(180),
                conf: Default::default(),
                mode: super::SparkMode::Submit,
                connect_memory: "1g".into(),
            },
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawSettings {
    scenarios: Option<String>,
    pipelines: Option<String>,
    fixtures: Option<String>,
    report_dir: Option<String>,
    backend: Option<Spanned<String>>,
    python: Option<String>,
    task_jobs: Option<Spanned<i64>>,
    #[serde(default)]
    services: RawServices,
    images: Option<RawImages>,
    airflow: Option<RawAirflowSettings>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAirflowSettings {
    python: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawImages {
    base: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawServices {
    postgres: Option<RawPostgres>,
    redis: Option<RawRedis>,
    clickhouse: Option<RawRedis>,
    hive: Option<RawHive>,
    hdfs: Option<RawHdfs>,
    spark: Option<RawSpark>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHive {
    start_timeout: Option<Spanned<String>>,
    heap: Option<Spanned<String>>,
    database: Option<Spanned<String>>,
    direct: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHdfs {
    authority: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSpark {
    master: Option<String>,
    start_timeout: Option<Spanned<String>>,
    #[serde(default)]
    conf: std::collections::BTreeMap<String, String>,
    mode: Option<Spanned<String>>,
    connect_memory: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPostgres {
    bin_dir: Option<String>,
    start_timeout: Option<Spanned<String>>,
    #[serde(default)]
    settings: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRedis {
    bin: Option<String>,
    start_timeout: Option<Spanned<String>>,
}

/// Reads `harness.toml` (when present) into settings; problems go to `errors`.
pub fn load(root: &Path, errors: &mut Vec<ConfigError>) -> Settings {
    let mut settings = Settings::defaults(root);
    let path = root.join("harness.toml");
    if !path.exists() {
        return settings;
    }
    let Some((source, raw)) = super::read_toml::<RawSettings>(root, &path, errors) else {
        return settings;
    };
    let mut check = Checker::new(&source, errors);
    let abs = |p: String| root.join(p);
    if let Some(p) = raw.scenarios {
        settings.scenarios_dir = abs(p);
    }
    if let Some(p) = raw.pipelines {
        settings.pipelines_dir = abs(p);
    }
    if let Some(p) = raw.fixtures {
        settings.fixtures_dir = abs(p);
    }
    if let Some(p) = raw.report_dir {
        settings.report_dir = abs(p);
    }
    if let Some(p) = raw.python {
        settings.python = abs(p);
    }
    if let Some(p) = raw.airflow.and_then(|a| a.python) {
        settings.airflow_python = abs(p);
    }
    if let Some(b) = raw.backend {
        match BackendChoice::parse(b.get_ref()) {
            Ok(choice) => settings.backend = choice,
            Err(msg) => check.error(b.span(), msg),
        }
    }
    if let Some(j) = raw.task_jobs {
        match usize::try_from(*j.get_ref()) {
            Ok(n) if n > 0 => settings.task_jobs = n,
            _ => check.error(j.span(), "`task_jobs` must be a positive number"),
        }
    }
    if let Some(pg) = raw.services.postgres {
        settings.postgres.bin_dir = pg.bin_dir.map(abs);
        for setting in &pg.settings {
            if setting
                .get_ref()
                .split_once('=')
                .is_some_and(|(k, _)| !k.trim().is_empty())
            {
                settings.postgres.settings.push(setting.get_ref().clone());
            } else {
                check.error_help(
                    setting.span(),
                    format!("invalid server setting `{}`", setting.get_ref()),
                    "write settings as \"name=value\", like \"work_mem=64MB\"",
                );
            }
        }
        if let Some(t) = pg.start_timeout
            && let Some(d) = parse_duration("start_timeout", &t, &mut check)
        {
            settings.postgres.start_timeout = d;
        }
    }
    if let Some(r) = raw.services.redis {
        if let Some(bin) = r.bin {
            settings.redis.bin = if bin.contains('/') {
                abs(bin)
            } else {
                PathBuf::from(bin)
            };
        }
        if let Some(t) = r.start_timeout
            && let Some(d) = parse_duration("start_timeout", &t, &mut check)
        {
            settings.redis.start_timeout = d;
        }
    }
    if let Some(c) = raw.services.clickhouse {
        if let Some(bin) = c.bin {
            settings.clickhouse.bin = if bin.contains('/') {
                abs(bin)
            } else {
                PathBuf::from(bin)
            };
        }
        if let Some(t) = c.start_timeout
            && let Some(d) = parse_duration("start_timeout", &t, &mut check)
        {
            settings.clickhouse.start_timeout = d;
        }
    }
    if let Some(base) = raw.images.and_then(|i| i.base) {
        settings.image_base = base;
    }
    if let Some(h) = raw.services.hive {
        if let Some(direct) = h.direct {
            settings.hive.direct = direct;
        }
        match h.database.as_ref().map(|d| (d, d.get_ref().as_str())) {
            None | Some((_, "derby")) => {}
            Some((_, "postgres")) => settings.hive.database = MetastoreDb::Postgres,
            Some((d, other)) => check.error_help(
                d.span(),
                format!("unknown metastore database `{other}`"),
                "write \"derby\" or \"postgres\"",
            ),
        }
        if let Some(d) = h
            .start_timeout
            .as_ref()
            .and_then(|t| parse_duration("start_timeout", t, &mut check))
        {
            settings.hive.start_timeout = d;
        }
        if let Some(heap) = h.heap {
            let v = heap.get_ref();
            if memory_size(v) {
                settings.hive.heap = v.clone();
            } else {
                check.error_help(
                    heap.span(),
                    format!("invalid heap size `{v}`"),
                    "write it like \"512m\" or \"1g\"",
                );
            }
        }
    }
    if let Some(h) = raw.services.hdfs
        && let Some(a) = h.authority
    {
        let v = a.get_ref();
        let valid = v
            .split_once(':')
            .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok())
            && v.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == ':');
        if valid {
            settings.hdfs.authority = v.clone();
        } else {
            check.error_help(
                a.span(),
                format!("invalid HDFS authority `{v}`"),
                "write it as host:port, like \"namenode:8020\"",
            );
        }
    }
    if let Some(sp) = raw.services.spark {
        if let Some(m) = sp.master {
            settings.spark.master = m;
        }
        if let Some(d) = sp
            .start_timeout
            .as_ref()
            .and_then(|t| parse_duration("start_timeout", t, &mut check))
        {
            settings.spark.start_timeout = d;
        }
        settings.spark.conf = sp.conf;
        if let Some(m) = sp.mode {
            match super::SparkMode::parse(m.get_ref()) {
                Ok(mode) => settings.spark.mode = mode,
                Err(msg) => check.error(m.span(), msg),
            }
        }
        if let Some(mem) = sp.connect_memory {
            if memory_size(mem.get_ref()) {
                settings.spark.connect_memory = mem.get_ref().clone();
            } else {
                check.error_help(
                    mem.span(),
                    format!("invalid memory size `{}`", mem.get_ref()),
                    "write it like \"2g\" or \"1536m\"",
                );
            }
        }
    }
    settings
}
