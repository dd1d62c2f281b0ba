//! PostgreSQL: its description (a private server started with initdb as an unprivileged user, or
//! a container), a fresh database per scenario, SQL and CSV (COPY) seeds, SQL tasks, and
//! table/query sinks read into a canonical `Table`.

pub mod capture;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use bytes::Bytes;
use futures_util::SinkExt;
use tokio::io::AsyncReadExt;
use tokio_postgres::types::{Kind, Type};
use tokio_postgres::{Client, NoTls, SimpleQueryMessage};

use futures_util::future::BoxFuture;
use tokio::process::Command;

mod values;

use values::value;

use super::{
    Container, DataContext, ImageSpec, Prerequisite, Running, Service, ServiceError, SqlRunner,
    StartContext,
};
use crate::config::TableFormat;
use crate::config::rules::{DataRules, RowSeeds, SchemaRule, SinkRules};
use crate::config::scenario::quote_table;
use crate::config::settings::PostgresSettings;
use crate::config::{Origin, Seed, SeedKind, Settings, Sink, SinkSpec};
use crate::names::ServiceKind;
use crate::outcome::InfraError;
use crate::process::{
    Serve, ServiceProcess, as_user, first_line, isolate, log_tail, serve, unprivileged_user, which,
};
use crate::snapshot::{Column, Table};

/// The database every scenario gets afresh.
pub const DATABASE: &str = "harness";

/// Where a PostgreSQL server listens and how to log in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostgresEndpoint {
    /// Host (loopback).
    pub host: String,
    /// Port.
    pub port: u16,
    /// User.
    pub user: String,
    /// Password.
    pub password: String,
    /// Database the pipeline uses.
    pub database: String,
}

/// Cluster-wide objects: what a database reset alone would leave behind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Globals {
    /// Database names.
    pub databases: Vec<String>,
    /// Role names.
    pub roles: Vec<String>,
}

impl PostgresEndpoint {
    /// `postgres://user:pass@host:port/db`.
    pub fn url(&self) -> String {
        format!(
            "postgres://{}:{}@{}:{}/{}",
            self.user, self.password, self.host, self.port, self.database
        )
    }

    fn config(&self, database: &str) -> tokio_postgres::Config {
        let mut c = tokio_postgres::Config::new();
        c.host(&self.host)
            .port(self.port)
            .user(&self.user)
            .password(&self.password)
            .dbname(database)
            .application_name("harness");
        c.connect_timeout(std::time::Duration::from_secs(5));
        c
    }

    /// Connects to `database` (the pipeline's when `None`).
    pub async fn connect_to(
        &self,
        database: Option<&str>,
    ) -> Result<Client, tokio_postgres::Error> {
        let (client, conn) = self
            .config(database.unwrap_or(&self.database))
            .connect(NoTls)
            .await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(client)
    }

    /// True when the server answers a real query.
    pub async fn ready(&self) -> bool {
        match self.connect_to(Some("postgres")).await {
            Ok(c) => c.simple_query("SELECT 1").await.is_ok(),
            Err(_) => false,
        }
    }

    /// Creates a database of the harness's own (the metastore's), if missing.
    pub async fn create_database(&self, name: &str) -> Result<(), ServiceError> {
        let admin = self
            .connect_to(Some("postgres"))
            .await
            .map_err(unavailable)?;
        let exists = admin
            .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&name])
            .await
            .map_err(unavailable)?
            .is_some();
        if !exists {
            admin
                .batch_execute(&format!(
                    "CREATE DATABASE \"{}\"",
                    name.replace('"', "\"\"")
                ))
                .await
                .map_err(unavailable)?;
        }
        Ok(())
    }

    /// The databases and roles that exist now.
    pub async fn globals(&self) -> Result<Globals, ServiceError> {
        let admin = self
            .connect_to(Some("postgres"))
            .await
            .map_err(unavailable)?;
        let names = |rows: Vec<tokio_postgres::Row>| -> Vec<String> {
            rows.iter().map(|r| r.get::<_, String>(0)).collect()
        };
        let databases = names(
            admin
                .query("SELECT datname::text FROM pg_database", &[])
                .await
                .map_err(unavailable)?,
        );
        let roles = names(
            admin
                .query("SELECT rolname::text FROM pg_roles", &[])
                .await
                .map_err(unavailable)?,
        );
        Ok(Globals { databases, roles })
    }

    /// Drops and recreates the pipeline's database; with a baseline, also drops every database
    /// and role not in it (what earlier scenarios created besides their tables).
    pub async fn reset(&self, baseline: Option<&Globals>) -> Result<(), ServiceError> {
        let admin = self
            .connect_to(Some("postgres"))
            .await
            .map_err(unavailable)?;
        let ident = |n: &str| format!("\"{}\"", n.replace('"', "\"\""));
        let db = ident(&self.database);
        admin
            .batch_execute(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"))
            .await
            .map_err(unavailable)?;
        if let Some(base) = baseline {
            let now = self.globals().await?;
            for extra in now.databases.iter().filter(|d| !base.databases.contains(d)) {
                admin
                    .batch_execute(&format!(
                        "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                        ident(extra)
                    ))
                    .await
                    .map_err(unavailable)?;
            }
            for extra in now.roles.iter().filter(|r| !base.roles.contains(r)) {
                let r = ident(extra);
                admin
                    .batch_execute(&format!("DROP OWNED BY {r}; DROP ROLE IF EXISTS {r}"))
                    .await
                    .map_err(unavailable)?;
            }
        }
        admin
            .batch_execute(&format!("CREATE DATABASE {db}"))
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    /// Runs the statements of an SQL file.
    pub async fn seed_sql(&self, path: &Path, display: &Path) -> Result<(), ServiceError> {
        let text = std::fs::read_to_string(path).map_err(|e| ServiceError::Input {
            origin: Origin::file(display),
            message: format!("cannot read: {e}"),
        })?;
        execute(self, &text, &Origin::file(display)).await
    }

    /// Loads a CSV file into `table` with COPY; the header names the columns. Returns the rows loaded.
    pub async fn seed_csv(
        &self,
        table: &str,
        path: &Path,
        display: &Path,
        columns: &[String],
        delimiter: u8,
        null: Option<&str>,
    ) -> Result<u64, ServiceError> {
        let client = self.connect_to(None).await.map_err(unavailable)?;
        let cols: Vec<String> = columns
            .iter()
            .map(|c| format!("\"{}\"", c.replace('"', "\"\"")))
            .collect();
        let mut opts = format!(
            "FORMAT csv, HEADER true, DELIMITER {}",
            sql_literal(&(delimiter as char).to_string())
        );
        if let Some(n) = null {
            opts.push_str(&format!(", NULL {}", sql_literal(n)));
        }
        let stmt = format!(
            "COPY {} ({}) FROM STDIN ({opts})",
            crate::config::scenario::quote_table(table),
            cols.join(", ")
        );
        let input_error = |e: tokio_postgres::Error| ServiceError::Input {
            origin: copy_origin(&e, display, columns),
            message: db_message(&e),
        };
        let sink = client
            .copy_in::<_, Bytes>(&stmt)
            .await
            .map_err(input_error)?;
        futures_util::pin_mut!(sink);
        let mut file = tokio::fs::File::open(path)
            .await
            .map_err(|e| ServiceError::Input {
                origin: Origin::file(display),
                message: format!("cannot read: {e}"),
            })?;
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = file.read(&mut buf).await.map_err(|e| ServiceError::Input {
                origin: Origin::file(display),
                message: format!("cannot read: {e}"),
            })?;
            if n == 0 {
                break;
            }
            sink.send(Bytes::copy_from_slice(&buf[..n]))
                .await
                .map_err(input_error)?;
        }
        sink.as_mut().finish().await.map_err(input_error)
    }

    /// Reads a query's rows with their column types.
    pub async fn read(&self, query: &str) -> Result<Table, String> {
        let client = self.connect_to(None).await.map_err(|e| e.to_string())?;
        // A stable rendering of dates and times whatever the server's defaults.
        client.batch_execute("SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD'; SET IntervalStyle = 'iso_8601'; SET extra_float_digits = 1").await.map_err(|e| db_message(&e))?;
        let stmt = client.prepare(query).await.map_err(|e| db_message(&e))?;
        let columns: Vec<Column> = stmt
            .columns()
            .iter()
            .map(|c| Column {
                name: c.name().to_string(),
                // `text[]`, not PostgreSQL's internal `_text`.
                type_name: match c.type_().kind() {
                    Kind::Array(elem) => format!("{}[]", elem.name()),
                    _ => c.type_().name().to_string(),
                },
            })
            .collect();
        let types: Vec<Type> = stmt.columns().iter().map(|c| c.type_().clone()).collect();
        let mut rows = Vec::new();
        for msg in client
            .simple_query(query)
            .await
            .map_err(|e| db_message(&e))?
        {
            if let SimpleQueryMessage::Row(row) = msg {
                let mut values = Vec::with_capacity(types.len());
                for (i, ty) in types.iter().enumerate() {
                    values.push(value(ty, row.get(i)));
                }
                rows.push(values);
            }
        }
        Ok(Table { columns, rows })
    }
}

/// Runs SQL statements (a task or a seed); errors point at the line of the failing statement.
pub async fn execute(
    endpoint: &PostgresEndpoint,
    text: &str,
    origin: &Origin,
) -> Result<(), ServiceError> {
    let client = endpoint.connect_to(None).await.map_err(unavailable)?;
    client.batch_execute(text).await.map_err(|e| {
        let mut at = origin.clone();
        if let Some(tokio_postgres::error::ErrorPosition::Original(pos)) =
            e.as_db_error().and_then(|d| d.position())
        {
            // The position counts characters from 1 in the text sent.
            let byte = text
                .char_indices()
                .nth((*pos as usize).saturating_sub(1))
                .map_or(text.len(), |(b, _)| b);
            at = origin.within(text, byte);
        }
        ServiceError::Input {
            origin: at,
            message: db_message(&e),
        }
    })
}

/// COPY errors carry `COPY table, line N, column c: ...` in their context.
fn copy_origin(e: &tokio_postgres::Error, display: &Path, columns: &[String]) -> Origin {
    let line = e.as_db_error().and_then(|d| d.where_()).and_then(|w| {
        let rest = w.split(", line ").nth(1)?;
        rest.split(|c: char| !c.is_ascii_digit())
            .next()?
            .parse::<usize>()
            .ok()
    });
    // A header column the table does not have: the header's line, at that column.
    let header = || {
        let message = e.as_db_error()?.message();
        let name = message.strip_prefix("column \"")?.split('"').next()?;
        let at = columns.iter().position(|c| c == name)?;
        let col = columns[..at]
            .iter()
            .map(|c| c.chars().count() + 1)
            .sum::<usize>()
            + 1;
        Some((1, col))
    };
    Origin {
        file: display.to_path_buf(),
        line_col: line.map(|l| (l, 1)).or_else(header),
    }
}

/// The server's message with its detail and context, or the client error.
pub fn db_message(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(d) => {
            let mut m = d.message().to_string();
            if let Some(detail) = d.detail() {
                m.push_str(&format!(" ({detail})"));
            }
            if let Some(w) = d.where_() {
                m.push_str(&format!(" [{w}]"));
            }
            m
        }
        None => e.to_string(),
    }
}

fn unavailable(e: tokio_postgres::Error) -> ServiceError {
    ServiceError::Unavailable {
        service: "postgres",
        message: db_message(&e),
    }
}

fn sql_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}
// ---- the local server ----

/// The folder holding PostgreSQL's server programs.
pub fn postgres_bin_dir(settings: &PostgresSettings) -> Result<PathBuf, String> {
    let has_server = |d: &Path| d.join("initdb").is_file() && d.join("postgres").is_file();
    if let Some(d) = &settings.bin_dir {
        return if has_server(d) {
            Ok(d.clone())
        } else {
            Err(format!("no initdb and postgres in {}", d.display()))
        };
    }
    if let Some(initdb) = which("initdb")
        && let Some(dir) = std::fs::canonicalize(&initdb)
            .ok()
            .and_then(|p| p.parent().map(Path::to_path_buf))
        && has_server(&dir)
    {
        return Ok(dir);
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin"))))
        .filter(|(_, d)| has_server(d))
        .collect();
    versions.sort();
    versions.pop().map(|(_, d)| d).ok_or_else(|| "PostgreSQL server programs (initdb, postgres) not found; install the `postgresql` package (scripts/setup.sh does) or set services.postgres.bin_dir".into())
}

/// Starts a private PostgreSQL server in `env_dir/postgres` whose superuser `harness` logs in
/// with `password` (SCRAM, over TCP and the unix socket alike).
async fn start_postgres(
    settings: &PostgresSettings,
    env_dir: &Path,
    password: &str,
) -> Result<(ServiceProcess, PostgresEndpoint), InfraError> {
    let fail = |m: String| InfraError {
        stopped: false,
        service: "postgres".into(),
        message: m,
        log_tail: vec![],
    };
    let bin = postgres_bin_dir(settings).map_err(fail)?;
    let user = unprivileged_user().map_err(fail)?;
    // The server's user must be able to reach its folder: when some parent of the environment
    // is private to us (a 0700 TMPDIR), its folder goes to /tmp instead.
    let reachable = env_dir.ancestors().skip(1).all(|a| {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(a).is_ok_and(|m| m.permissions().mode() & 0o001 != 0)
    });
    let (dir, owned_dir) = if user.is_none() || reachable {
        (env_dir.join("postgres"), None)
    } else {
        let d = crate::ledger::make_dir(Path::new("/tmp"), "harness-pg-")
            .map_err(|e| fail(format!("cannot create a folder in /tmp: {e}")))?;
        (d.clone(), Some(d))
    };
    let data = dir.join("data");
    std::fs::create_dir_all(&dir)
        .map_err(|e| fail(format!("cannot create {}: {e}", dir.display())))?;
    if let Some((uid, gid)) = user {
        use std::os::unix::fs::PermissionsExt;
        // The server's user must be able to reach its folder.
        std::fs::set_permissions(env_dir, std::fs::Permissions::from_mode(0o755))
            .map_err(|e| fail(e.to_string()))?;
        std::os::unix::fs::chown(&dir, Some(uid), Some(gid)).map_err(|e| {
            fail(format!(
                "cannot hand {} to the postgres user: {e}",
                dir.display()
            ))
        })?;
    }
    let log = dir.join("postgres.log");

    // initdb reads the superuser's password from a file, readable by the server's user only and
    // removed as soon as initdb is done: the password is on no command line and in no file left.
    let pwfile = dir.join(".pwfile");
    write_private(&pwfile, password, user).map_err(|e| {
        drop_dir(&owned_dir);
        fail(format!("cannot write {}: {e}", pwfile.display()))
    })?;
    let mut initdb = Command::new(bin.join("initdb"));
    initdb
        .arg("-D")
        .arg(&data)
        .arg("--pwfile")
        .arg(&pwfile)
        .args([
            "-A",
            "scram-sha-256",
            "-U",
            "harness",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
            "--no-instructions",
        ]);
    initdb
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .current_dir(&dir);
    as_user(&mut initdb, user);
    isolate(&mut initdb);
    // A dropped initdb (timeout, cancellation) is killed with the backend it started: its
    // whole process group goes with the guard.
    let child = match initdb.spawn() {
        Ok(c) => c,
        Err(e) => {
            let _ = std::fs::remove_file(&pwfile);
            drop_dir(&owned_dir);
            return Err(fail(format!("cannot run initdb: {e}")));
        }
    };
    let _group = crate::process::GroupGuard::new(child.id());
    let out = tokio::time::timeout(Duration::from_secs(120), child.wait_with_output()).await;
    let _ = std::fs::remove_file(&pwfile);
    let out = match out {
        Ok(Ok(out)) => out,
        Ok(Err(e)) => {
            drop_dir(&owned_dir);
            return Err(fail(format!("cannot run initdb: {e}")));
        }
        Err(_) => {
            drop_dir(&owned_dir);
            return Err(fail("initdb did not finish within 120 s".into()));
        }
    };
    if !out.status.success() {
        drop_dir(&owned_dir);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        return Err(InfraError {
            stopped: false,
            service: "postgres".into(),
            message: format!("initdb failed ({})", out.status),
            log_tail: {
                let lines: Vec<&str> = text.lines().collect();
                lines[lines.len().saturating_sub(15)..]
                    .iter()
                    .map(|l| l.to_string())
                    .collect()
            },
        });
    }

    let how = Serve {
        service: "postgres",
        log: &log,
        port_taken: "could not bind",
        timeout: settings.start_timeout,
        stop_signal: libc::SIGINT,
        log_owner: user,
    };
    let command = |port: u16| {
        let mut cmd = Command::new(bin.join("postgres"));
        cmd.arg("-D")
            .arg(&data)
            .arg("-p")
            .arg(port.to_string())
            .arg("-k")
            .arg(&dir);
        for setting in [
            "listen_addresses=127.0.0.1",
            "fsync=off",
            "synchronous_commit=off",
            "full_page_writes=off",
            "max_connections=100",
            "log_min_messages=warning",
        ] {
            cmd.arg("-c").arg(setting);
        }
        for setting in &settings.settings {
            cmd.arg("-c").arg(setting);
        }
        cmd.current_dir(&dir);
        as_user(&mut cmd, user);
        cmd
    };
    let (proc, port) = serve(how, command, |port| async move {
        at(port, password).ready().await
    })
    .await
    .inspect_err(|_| drop_dir(&owned_dir))?;
    let proc = proc.owning(owned_dir);
    let ep = at(port, password);
    if let Err(e) = ep.reset(None).await {
        proc.stop().await;
        return Err(InfraError {
            stopped: false,
            service: "postgres".into(),
            message: e.to_string(),
            log_tail: log_tail(&log, 15),
        });
    }
    Ok((proc, ep))
}

/// Writes `text` to a new file only its owner can read, owned by `user` when the server runs as
/// another user than ours.
fn write_private(path: &Path, text: &str, user: Option<(u32, u32)>) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt;
    let _ = std::fs::remove_file(path);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(text.as_bytes())?;
    if let Some((uid, gid)) = user {
        std::os::unix::fs::chown(path, Some(uid), Some(gid))?;
    }
    Ok(())
}

fn drop_dir(dir: &Option<PathBuf>) {
    if let Some(d) = dir {
        let _ = std::fs::remove_dir_all(d);
    }
}

// ---- the description ----

/// PostgreSQL: a private server (local backend) or a container; every scenario gets a fresh
/// database, and databases and roles created by earlier scenarios are dropped.
#[derive(Debug)]
pub struct Postgres;

/// Seeds: SQL files, CSV files (COPY, columns by the header); sinks: a table or query; `sql`
/// tasks.
static RULES: DataRules = DataRules {
    seed_sql: true,
    seed_rows: Some(RowSeeds {
        formats: &[TableFormat::Csv],
        schema: SchemaRule::None,
        partition_by: false,
        engine: false,
        csv_options: true,
        folders: false,
        columns_by_name: true,
        example: "table = \"schema.table\" with csv = \"rows.csv\"",
        schema_example: "",
    }),
    seed_keys: false,
    seed_files: false,
    sink: Some(SinkRules::Table {
        query: true,
        quote: quote_table,
        namespace: "public",
        case_insensitive: false,
    }),
    sql_tasks: true,
    no_data: "",
};

/// A running PostgreSQL.
#[derive(Debug)]
pub struct PostgresRunning {
    /// Where it listens.
    pub endpoint: PostgresEndpoint,
    /// What the server held once every service of the environment was up: what a reset goes
    /// back to. Set once, by `settle`.
    baseline: std::sync::Mutex<Option<Globals>>,
    process: Option<ServiceProcess>,
}

/// The endpoint of a server on `port` of loopback whose user `harness` has `password`.
fn at(port: u16, password: &str) -> PostgresEndpoint {
    PostgresEndpoint {
        host: "127.0.0.1".into(),
        port,
        user: "harness".into(),
        password: password.into(),
        database: DATABASE.into(),
    }
}

impl Service for Postgres {
    fn kind(&self) -> ServiceKind {
        ServiceKind::Postgres
    }

    fn rules(&self) -> &'static DataRules {
        &RULES
    }

    fn memory_mb(&self) -> u64 {
        100
    }

    fn prerequisites(&self, settings: &Settings) -> Vec<Prerequisite> {
        vec![Prerequisite {
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
        }]
    }

    fn start_timeout(&self, settings: &Settings) -> Duration {
        settings.postgres.start_timeout
    }

    fn start_local<'a>(
        &'a self,
        ctx: &'a StartContext<'a>,
    ) -> BoxFuture<'a, Result<Box<dyn Running>, InfraError>> {
        Box::pin(async move {
            let password = super::password(ctx.secret, ServiceKind::Postgres);
            let (proc, endpoint) =
                start_postgres(&ctx.settings.postgres, ctx.dir, &password).await?;
            Ok(Box::new(PostgresRunning {
                endpoint,
                baseline: std::sync::Mutex::new(None),
                process: Some(proc),
            }) as Box<dyn Running>)
        })
    }

    fn image(&self) -> Option<ImageSpec> {
        Some(ImageSpec {
            service: "postgres",
            files: &[
                (
                    "Dockerfile",
                    include_str!("../../../containers/postgres/Dockerfile"),
                ),
                (
                    "entrypoint.sh",
                    include_str!("../../../containers/postgres/entrypoint.sh"),
                ),
            ],
            needs_jars: false,
        })
    }

    fn container(&self, ctx: &StartContext<'_>) -> Option<Result<Container, InfraError>> {
        let image = self.image()?;
        Some(Ok(Container {
            image,
            jars: None,
            ports: vec![5432],
            env: vec![(
                "POSTGRES_PASSWORD".into(),
                super::password(ctx.secret, ServiceKind::Postgres),
            )],
            mounts: vec![],
            args: ctx
                .settings
                .postgres
                .settings
                .iter()
                .flat_map(|s| ["-c".to_string(), s.clone()])
                .collect(),
        }))
    }

    fn connect<'a>(
        &'a self,
        ports: Vec<u16>,
        ctx: &'a StartContext<'a>,
    ) -> BoxFuture<'a, Result<Box<dyn Running>, String>> {
        Box::pin(async move {
            let password = super::password(ctx.secret, ServiceKind::Postgres);
            let endpoint = at(*ports.first().ok_or("no port")?, &password);
            if !endpoint.ready().await {
                return Err("not answering yet".into());
            }
            endpoint.reset(None).await.map_err(|e| e.to_string())?;
            Ok(Box::new(PostgresRunning {
                endpoint,
                baseline: std::sync::Mutex::new(None),
                process: None,
            }) as Box<dyn Running>)
        })
    }
}

impl Running for PostgresRunning {
    fn kind(&self) -> ServiceKind {
        ServiceKind::Postgres
    }

    fn exited(&self) -> Option<String> {
        self.process.as_ref()?.exit_note()
    }

    fn endpoint(&self) -> String {
        format!(
            "postgres://{}@{}:{}/{}",
            self.endpoint.user, self.endpoint.host, self.endpoint.port, self.endpoint.database
        )
    }

    fn task_env(&self) -> Vec<(String, String)> {
        vec![
            ("HARNESS_POSTGRES_URL".into(), self.endpoint.url()),
            ("AIRFLOW_CONN_POSTGRES_DEFAULT".into(), self.endpoint.url()),
        ]
    }

    fn settle<'a>(&'a self) -> BoxFuture<'a, Result<(), ServiceError>> {
        Box::pin(async move {
            let globals = self.endpoint.globals().await?;
            if let Ok(mut b) = self.baseline.lock() {
                *b = Some(globals);
            }
            Ok(())
        })
    }

    fn reset<'a>(&'a self, _ctx: &'a DataContext<'a>) -> BoxFuture<'a, Result<(), ServiceError>> {
        Box::pin(async move {
            let baseline = self.baseline.lock().ok().and_then(|b| b.clone());
            self.endpoint.reset(baseline.as_ref()).await
        })
    }

    fn seed<'a>(
        &'a self,
        seed: &'a Seed,
        _ctx: &'a DataContext<'a>,
    ) -> BoxFuture<'a, Result<(), ServiceError>> {
        Box::pin(async move {
            match &seed.kind {
                SeedKind::Sql { path } => self.endpoint.seed_sql(path, &seed.display).await,
                SeedKind::Rows {
                    table,
                    path,
                    columns,
                    delimiter,
                    null,
                    ..
                } => self
                    .endpoint
                    .seed_csv(
                        table,
                        path,
                        &seed.display,
                        columns,
                        *delimiter,
                        null.as_deref(),
                    )
                    .await
                    .map(|_| ()),
                _ => Err(super::not_for(seed, ServiceKind::Postgres)),
            }
        })
    }

    fn read<'a>(
        &'a self,
        sink: &'a Sink,
        _ctx: &'a DataContext<'a>,
    ) -> BoxFuture<'a, Result<String, String>> {
        Box::pin(async move {
            let SinkSpec::Table {
                query: Some(query),
                key,
                float_digits,
                ..
            } = &sink.spec
            else {
                return Err(format!("{}: not a postgres sink", sink.origin));
            };
            let table = self.endpoint.read(query).await?;
            super::render_table(sink, table, key, *float_digits)
        })
    }

    fn sql(&self) -> Option<SqlRunner> {
        let endpoint = self.endpoint.clone();
        Some(SqlRunner(std::sync::Arc::new(move |text, origin| {
            let endpoint = endpoint.clone();
            Box::pin(async move { execute(&endpoint, &text, &origin).await })
        })))
    }

    fn stop(self: Box<Self>) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            if let Some(p) = self.process {
                p.stop().await;
            }
        })
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}
