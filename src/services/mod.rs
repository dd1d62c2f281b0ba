//! Every kind of service, described once. A description ([`Service`]) says what the kind depends
//! on, how it starts on this machine, its container image and how a started container is reached,
//! and its memory estimate; what it hands back once started ([`Running`]) says which variables
//! and Airflow connection tasks get, how it is reset between scenarios, how seeds go in and how
//! sinks are read. The backends, the environment and the runner loop over [`REGISTRY`] and never
//! name a kind: adding one is a new file here, its image under `containers/`, a line in
//! `crate::names` and a line in [`REGISTRY`].

pub mod clickhouse;
pub mod hdfs;
pub mod hive;
pub mod postgres;
pub mod redis;
pub mod spark;

use std::any::Any;
use std::path::{Path, PathBuf};
use std::time::Duration;

use futures_util::future::BoxFuture;

use crate::config::rules::DataRules;
use crate::config::{Origin, Seed, Settings, Sink};
use crate::events::Events;
use crate::names::ServiceKind;
use crate::outcome::InfraError;
use crate::snapshot::canonical::Header;
use crate::snapshot::redaction::redact_table;
use crate::snapshot::{Table, nested};

/// Every description, one line per kind, in the order independent services are started.
pub static REGISTRY: [&dyn Service; 6] = [
    &hdfs::Hdfs,
    &postgres::Postgres,
    &redis::Redis,
    &clickhouse::ClickHouse,
    &hive::Hive,
    &spark::Spark,
];

/// What `kind` takes in the project's files (loading checks scenarios and pipelines against it).
pub fn rules(kind: ServiceKind) -> &'static DataRules {
    describe(kind).rules()
}

/// Runs SQL text on a running service (a `sql` task's statements, with where they come from);
/// a rejected statement is an input error at its line.
#[derive(Clone)]
pub struct SqlRunner(pub std::sync::Arc<SqlFn>);

/// The function behind a [`SqlRunner`]: statements and their origin in, done or why not out.
pub type SqlFn =
    dyn Fn(String, Origin) -> BoxFuture<'static, Result<(), ServiceError>> + Send + Sync;

impl std::fmt::Debug for SqlRunner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SqlRunner")
    }
}

/// The description of `kind`.
pub fn describe(kind: ServiceKind) -> &'static dyn Service {
    match REGISTRY.iter().find(|s| s.kind() == kind) {
        Some(service) => *service,
        // The registry test below proves every kind has its description.
        None => unreachable!("service kind {kind} has no description in REGISTRY"),
    }
}

/// `kinds` plus every kind they require (for these settings), in start order: a kind comes
/// after everything it requires.
pub fn closure(
    kinds: impl IntoIterator<Item = ServiceKind>,
    settings: &Settings,
) -> Vec<ServiceKind> {
    let mut all: Vec<ServiceKind> = kinds.into_iter().collect();
    let mut i = 0;
    while i < all.len() {
        for r in describe(all[i]).requires(settings) {
            if !all.contains(&r) {
                all.push(r);
            }
        }
        i += 1;
    }
    start_order(&all, settings)
}

/// `kinds` in waves: each wave's kinds require only kinds of earlier waves, so a wave can start
/// all at once.
pub fn waves(kinds: &[ServiceKind], settings: &Settings) -> Vec<Vec<ServiceKind>> {
    let mut left: Vec<ServiceKind> = start_order(kinds, settings);
    let mut done: Vec<ServiceKind> = Vec::new();
    let mut out = Vec::new();
    while !left.is_empty() {
        let (ready, rest): (Vec<ServiceKind>, Vec<ServiceKind>) = left.iter().partition(|k| {
            describe(**k)
                .requires(settings)
                .iter()
                .all(|r| done.contains(r) || !kinds.contains(r))
        });
        if ready.is_empty() {
            // A requirement loop cannot be started in any order; start what is left one by one.
            out.extend(rest.into_iter().map(|k| vec![k]));
            break;
        }
        done.extend(&ready);
        out.push(ready);
        left = rest;
    }
    out
}

fn start_order(kinds: &[ServiceKind], settings: &Settings) -> Vec<ServiceKind> {
    let mut out: Vec<ServiceKind> = Vec::new();
    let mut left: Vec<ServiceKind> = REGISTRY
        .iter()
        .map(|s| s.kind())
        .filter(|k| kinds.contains(k))
        .collect();
    while !left.is_empty() {
        let before = left.len();
        left.retain(|k| {
            let ready = describe(*k)
                .requires(settings)
                .iter()
                .all(|r| out.contains(r) || !kinds.contains(r));
            if ready {
                out.push(*k);
            }
            !ready
        });
        if left.len() == before {
            out.append(&mut left);
        }
    }
    out
}

/// The description of one kind of service.
pub trait Service: Sync {
    /// Which kind it describes.
    fn kind(&self) -> ServiceKind;

    /// Kinds that must run before this one starts, and that it cannot work without.
    fn requires(&self, _settings: &Settings) -> Vec<ServiceKind> {
        vec![]
    }

    /// Kinds the harness itself needs to put `seeds` into this kind or read `sinks` from it
    /// (what the harness cannot write or read itself goes through its Spark session).
    fn needs_for(&self, _seeds: &[&Seed], _sinks: &[&Sink]) -> Vec<ServiceKind> {
        vec![]
    }

    /// What it takes in the project's files: its seeds, its sink, `sql` tasks.
    fn rules(&self) -> &'static DataRules;

    /// Roughly what it takes at its peak, in MB (what it was seen to take here, rounded up).
    fn memory_mb(&self) -> u64;

    /// Starts it on this machine (the local backend, and on the docker backend a kind without a
    /// container).
    fn start_local<'a>(
        &'a self,
        ctx: &'a StartContext<'a>,
    ) -> BoxFuture<'a, Result<Box<dyn Running>, InfraError>>;

    /// The image its container runs, when it has one; built by `harness images build` too.
    fn image(&self) -> Option<ImageSpec> {
        None
    }

    /// How its container is started on the docker backend; `None` to start it on this machine
    /// there too.
    fn container(&self, _ctx: &StartContext<'_>) -> Option<Result<Container, InfraError>> {
        None
    }

    /// Reaches a started container through its published ports (in [`Container::ports`]
    /// order) with a real call; an error means "not ready yet" and the backend asks again until
    /// the start timeout.
    fn connect<'a>(
        &'a self,
        _ports: Vec<u16>,
        _ctx: &'a StartContext<'a>,
    ) -> BoxFuture<'a, Result<Box<dyn Running>, String>> {
        Box::pin(async { Err("this service has no container".to_string()) })
    }

    /// How long it gets to become ready.
    fn start_timeout(&self, settings: &Settings) -> Duration;

    /// What it needs on this machine, found or missing (`harness doctor`).
    fn prerequisites(&self, _settings: &Settings) -> Vec<Prerequisite> {
        vec![]
    }
}

/// A started service, as the rest of the harness sees it.
pub trait Running: Send + Sync + Any {
    /// Which kind.
    fn kind(&self) -> ServiceKind;

    /// Where it listens, for people (never with a password).
    fn endpoint(&self) -> String;

    /// The variables of the contract with pipeline code: `HARNESS_*` and `AIRFLOW_CONN_*`.
    fn task_env(&self) -> Vec<(String, String)> {
        vec![]
    }

    /// Called once every service of the environment is up: what the service holds now is what
    /// a reset goes back to.
    fn settle(&self) -> BoxFuture<'_, Result<(), ServiceError>> {
        Box::pin(async { Ok(()) })
    }

    /// Back to empty, as it was when it started.
    fn reset<'a>(&'a self, _ctx: &'a DataContext<'a>) -> BoxFuture<'a, Result<(), ServiceError>> {
        Box::pin(async { Ok(()) })
    }

    /// Loads one seed declared for this kind.
    fn seed<'a>(
        &'a self,
        seed: &'a Seed,
        _ctx: &'a DataContext<'a>,
    ) -> BoxFuture<'a, Result<(), ServiceError>> {
        Box::pin(async move {
            Err(ServiceError::Input {
                origin: seed.origin.clone(),
                message: format!("{} takes no seeds", self.kind()),
            })
        })
    }

    /// Reads one sink declared for this kind and renders its canonical snapshot.
    fn read<'a>(
        &'a self,
        _sink: &'a Sink,
        _ctx: &'a DataContext<'a>,
    ) -> BoxFuture<'a, Result<String, String>> {
        Box::pin(async move { Err(format!("{} has no sinks", self.kind())) })
    }

    /// What runs a `sql` task's statements on it, for a kind that takes `sql` tasks.
    fn sql(&self) -> Option<SqlRunner> {
        None
    }

    /// Why it no longer runs, when its process has exited; asked while scenarios run, so that a
    /// service that died is reported as such rather than as the next task's failure. A kind
    /// with no process of its own, or in a container (the backend watches those), says `None`.
    fn exited(&self) -> Option<String> {
        None
    }

    /// Stops it and removes what it wrote outside the environment's folder.
    fn stop(self: Box<Self>) -> BoxFuture<'static, ()> {
        Box::pin(async {})
    }

    /// For typed lookups ([`Started::get`]).
    fn as_any(&self) -> &dyn Any;
}

/// The services of one environment that are running, in start order.
#[derive(Default)]
pub struct Started {
    list: Vec<Box<dyn Running>>,
}

impl std::fmt::Debug for Started {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.list.iter().map(|r| r.kind()))
            .finish()
    }
}

impl Started {
    /// Adds one.
    pub fn push(&mut self, running: Box<dyn Running>) {
        self.list.push(running);
    }

    /// The running service of `kind`.
    pub fn of(&self, kind: ServiceKind) -> Option<&dyn Running> {
        self.list
            .iter()
            .find(|r| r.kind() == kind)
            .map(|r| r.as_ref())
    }

    /// The running service of concrete type `T` (a kind's own handle, for what only that kind
    /// offers: the Spark session, PostgreSQL's endpoint for SQL tasks).
    pub fn get<T: 'static>(&self) -> Option<&T> {
        self.list
            .iter()
            .find_map(|r| r.as_any().downcast_ref::<T>())
    }

    /// Every running service, in start order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &dyn Running> {
        self.list.iter().map(|r| r.as_ref())
    }

    /// Takes them all out, in start order.
    pub fn drain(&mut self) -> Vec<Box<dyn Running>> {
        std::mem::take(&mut self.list)
    }
}

/// What starting a service needs to know.
#[derive(Debug)]
pub struct StartContext<'a> {
    /// Project settings.
    pub settings: &'a Settings,
    /// The environment's folder (services keep their data and logs under it).
    pub dir: &'a Path,
    /// What is running already (everything this kind requires).
    pub started: &'a Started,
    /// The environment's secret: every password of its services derives from it.
    pub secret: &'a str,
}

impl StartContext<'_> {
    /// An error of service `kind` that did not start.
    pub fn fail(&self, kind: ServiceKind, message: impl Into<String>) -> InfraError {
        InfraError {
            stopped: false,
            service: kind.name().into(),
            message: message.into(),
            log_tail: vec![],
        }
    }
}

/// What reset, seeding and reading a sink may need besides the service itself.
#[derive(Debug)]
pub struct DataContext<'a> {
    /// The environment's other services.
    pub started: &'a Started,
    /// The run's events (a Spark session starting on first use says so).
    pub events: &'a Events,
    /// A file the service may use for rows on their way (large tables pass through a file).
    pub scratch: PathBuf,
}

/// An image of a service: its build context, embedded in the binary.
#[derive(Debug, Clone, Copy)]
pub struct ImageSpec {
    /// Service name, also the image's name `harness-<service>`.
    pub service: &'static str,
    /// Files of the build context: (path, content).
    pub files: &'static [(&'static str, &'static str)],
    /// True when the context also holds the PySpark jars (`jars/`).
    pub needs_jars: bool,
}

/// How a service's container is started.
#[derive(Debug, Clone)]
pub struct Container {
    /// Its image.
    pub image: ImageSpec,
    /// PySpark's jars folder, for an image that holds them.
    pub jars: Option<PathBuf>,
    /// Ports the service listens on inside, published on 127.0.0.1.
    pub ports: Vec<u16>,
    /// Environment.
    pub env: Vec<(String, String)>,
    /// Folders mounted at the same path inside.
    pub mounts: Vec<PathBuf>,
    /// Arguments for the image's entrypoint.
    pub args: Vec<String>,
}

/// Something a kind needs on this machine, found or missing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prerequisite {
    /// What.
    pub name: &'static str,
    /// What was found (version and place), or `None` when missing.
    pub found: Option<String>,
    /// Why it is needed and how to get it.
    pub how: &'static str,
    /// False for prerequisites only some features need.
    pub required: bool,
}

/// A failure talking to a service.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The service could not be reached or refused an administrative command.
    #[error("{service}: {message}")]
    Unavailable {
        /// Which service.
        service: &'static str,
        /// What went wrong.
        message: String,
    },
    /// A fixture or statement was rejected; `origin` says where in the user's files.
    #[error("{origin}: {message}")]
    Input {
        /// Where in the user's files.
        origin: Origin,
        /// What the service said.
        message: String,
    },
}

/// The error of a seed handed to a kind it was not declared for (loading routes every seed to
/// its kind, so this is a defect, reported rather than ignored).
pub fn not_for(seed: &Seed, kind: ServiceKind) -> ServiceError {
    ServiceError::Input {
        origin: seed.origin.clone(),
        message: format!("this seed is not one {kind} takes"),
    }
}

/// The canonical snapshot of a table sink: multisets sorted, redactions applied, rows ordered by `key`, floats
/// rounded to `float_digits`; errors name the sink's declaration.
pub fn render_table(
    sink: &Sink,
    mut table: Table,
    key: &[String],
    float_digits: Option<u32>,
) -> Result<String, String> {
    let located = |e: String| format!("{}: {e}", sink.origin);
    prepare_table(sink, &mut table).map_err(located)?;
    table
        .render(&header(sink), key, float_digits)
        .map_err(located)
}

/// A table as read, made ready to render: the sink's `unordered` arrays sorted, then its
/// redactions applied.
pub fn prepare_table(sink: &Sink, table: &mut Table) -> Result<(), String> {
    nested::sort_unordered(table, &sink.unordered)?;
    redact_table(table, &sink.redact)
}

/// The first lines of a sink's snapshot: its name and what it reads.
pub fn header(sink: &Sink) -> Header {
    Header {
        sink: sink.name.clone(),
        source: sink.describe(),
    }
}

/// A password for service `kind` of the environment whose secret is `secret`: stable within the
/// environment, different across environments and kinds, never printed (it is registered with
/// `crate::redact`, so every text leaving the process shows `***` in its place).
pub fn password(secret: &str, kind: ServiceKind) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(format!("{secret}/{}", kind.name()).as_bytes());
    let password: String = digest.iter().take(12).map(|b| format!("{b:02x}")).collect();
    crate::redact::register(&password);
    password
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_exactly_one_description() {
        for kind in ServiceKind::ALL {
            let n = REGISTRY.iter().filter(|s| s.kind() == *kind).count();
            assert_eq!(n, 1, "{kind} is described {n} times");
        }
        assert_eq!(REGISTRY.len(), ServiceKind::ALL.len());
    }

    #[test]
    fn requirements_start_first_and_independent_kinds_start_together() {
        let settings = Settings::defaults(Path::new("."));
        let all = closure([ServiceKind::Spark, ServiceKind::Redis], &settings);
        let pos = |k| all.iter().position(|x| *x == k).expect("in closure");
        assert!(pos(ServiceKind::Hdfs) < pos(ServiceKind::Hive));
        assert!(pos(ServiceKind::Hive) < pos(ServiceKind::Spark));
        let waves = waves(&all, &settings);
        assert_eq!(waves[0], vec![ServiceKind::Hdfs, ServiceKind::Redis]);
        assert_eq!(waves.last(), Some(&vec![ServiceKind::Spark]));
    }

    #[test]
    fn passwords_differ_by_environment_and_kind() {
        let a = password("env-a", ServiceKind::ClickHouse);
        assert_eq!(a, password("env-a", ServiceKind::ClickHouse));
        assert_ne!(a, password("env-b", ServiceKind::ClickHouse));
        assert_ne!(a, password("env-a", ServiceKind::Postgres));
        assert_eq!(a.len(), 24);
    }

    #[test]
    fn a_password_made_is_masked_in_text_leaving_the_process() {
        let pw = password("env-c", ServiceKind::Redis);
        let url = format!("redis://default:{pw}@127.0.0.1:6379/0");
        assert_eq!(
            crate::redact::redact(&url),
            "redis://default:***@127.0.0.1:6379/0"
        );
    }
}
