//! `harness.toml`: project-wide settings with their defaults.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::diagnostic::ConfigError;
use super::{Checker, parse_duration};

/// Which backend brings services to life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendChoice {
    /// Pick the best available one.
    Auto,
    /// Processes on this machine.
    Local,
}

impl BackendChoice {
    /// Parses a backend name as written in harness.toml or on the command line.
    pub fn parse(name: &str) -> Result<Self, String> {
        match name {
            "auto" => Ok(BackendChoice::Auto),
            "local" => Ok(BackendChoice::Local),
            "docker" => Err(
                "the `docker` backend is not available in this version; use `local` or `auto`"
                    .into(),
            ),
            other => Err(format!(
                "unknown backend `{other}`; expected `auto` or `local`"
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
}

/// Settings of the local Redis service.
#[derive(Debug, Clone)]
pub struct RedisSettings {
    /// The `redis-server` binary (a path, or a name looked up on PATH).
    pub bin: PathBuf,
    /// How long to wait for the server to answer PING.
    pub start_timeout: Duration,
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
    /// Tasks of one pipeline running at once, at most.
    pub task_jobs: usize,
    /// PostgreSQL settings.
    pub postgres: PostgresSettings,
    /// Redis settings.
    pub redis: RedisSettings,
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
            task_jobs: 4,
            postgres: PostgresSettings {
                bin_dir: None,
                start_timeout: Duration::from_secs(30),
            },
            redis: RedisSettings {
                bin: PathBuf::from("redis-server"),
                start_timeout: Duration::from_secs(10),
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
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawServices {
    postgres: Option<RawPostgres>,
    redis: Option<RawRedis>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPostgres {
    bin_dir: Option<String>,
    start_timeout: Option<Spanned<String>>,
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
        if let Some(t) = pg.start_timeout
            && let Some(d) = parse_duration(&t, &mut check)
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
            && let Some(d) = parse_duration(&t, &mut check)
        {
            settings.redis.start_timeout = d;
        }
    }
    settings
}
