//! ClickHouse: its description (Debian's `clickhouse-server`, 18.16 on bookworm, as a private
//! process on loopback, or the image in `containers/clickhouse/`), and its client side over the
//! HTTP interface, the most portable one: every version since 2016 speaks it the same way, where
//! the native protocol and the typed formats of newer clients (RowBinaryWithNamesAndTypes) are
//! not there in 18.16. One user, `harness`, with the environment's own password; the server's
//! time zone is UTC whatever the machine's.
//!
//! Seeds: SQL files (run statement by statement: the HTTP interface takes one per request) and
//! CSV or JSON Lines files inserted into a table by the columns they name, the table created
//! first from a declared schema. Sinks: a table or a query, read as TabSeparatedWithNamesAndTypes
//! into the canonical table snapshot. Reset: every database but `system` and `default` dropped,
//! and every table of `default`.
//!
//! Here: the description and the running server. The HTTP client and the reset are in
//! `endpoint`, the local server's binary and files in `launch`, seeds and SQL in `seed`, sink
//! reads in `read` (values by type in `values`), fixtures in `capture`.

pub mod capture;
mod endpoint;
mod launch;
mod read;
mod seed;
mod values;

use std::time::Duration;

use futures_util::future::BoxFuture;
use tokio::process::Command;

pub use endpoint::ClickHouseEndpoint;
use endpoint::{ChError, ident, unescape};
pub use launch::server_bin;
use launch::{config_xml, users_xml};

use super::{
    Container, DataContext, ImageSpec, Prerequisite, Running, Service, ServiceError, SqlRunner,
    StartContext,
};
use crate::config::rules::{DataRules, RowSeeds, SchemaRule, SinkRules};
use crate::config::{Seed, SeedKind, Settings, Sink, SinkSpec, TableFormat};
use crate::names::ServiceKind;
use crate::outcome::InfraError;
use crate::process::{Serve, ServiceProcess, serve};

/// The one user of every server.
const USER: &str = "harness";

/// ClickHouse, described.
#[derive(Debug)]
pub struct ClickHouse;

/// Seeds: SQL files; CSV (with a header) or JSON Lines files into a table by the columns they
/// name, the table created from `schema` (ClickHouse types) and `engine` when given. Sinks: a
/// table or a query. `sql` tasks.
static RULES: DataRules = DataRules {
    seed_sql: true,
    seed_rows: Some(RowSeeds {
        formats: &[TableFormat::Csv, TableFormat::Jsonl],
        schema: SchemaRule::Optional,
        partition_by: false,
        engine: true,
        csv_options: false,
        folders: false,
        columns_by_name: true,
        example: "table = \"db.table\" with csv = \"rows.csv\" (and schema to create the table)",
        schema_example: "id UInt64, name String",
    }),
    seed_keys: false,
    seed_files: false,
    sink: Some(SinkRules::Table {
        query: true,
        quote: quote_table,
        namespace: "default",
        case_insensitive: false,
    }),
    sql_tasks: true,
    no_data: "",
};

/// `db.table` quoted for ClickHouse: `` `db`.`table` ``.
pub fn quote_table(name: &str) -> String {
    name.split('.').map(ident).collect::<Vec<_>>().join(".")
}

/// A running ClickHouse.
#[derive(Debug)]
pub struct ClickHouseRunning {
    /// Where it listens.
    pub endpoint: ClickHouseEndpoint,
    process: Option<ServiceProcess>,
}

impl Service for ClickHouse {
    fn kind(&self) -> ServiceKind {
        ServiceKind::ClickHouse
    }

    fn rules(&self) -> &'static DataRules {
        &RULES
    }

    fn memory_mb(&self) -> u64 {
        150
    }

    fn prerequisites(&self, settings: &Settings) -> Vec<Prerequisite> {
        vec![Prerequisite {
            name: "clickhouse-server",
            found: crate::services::clickhouse::server_bin(settings)
                .ok()
                .map(|p| {
                    // 18.16's server has no --version; the package knows.
                    let version = std::process::Command::new("dpkg-query")
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
        }]
    }

    fn start_timeout(&self, settings: &Settings) -> Duration {
        settings.clickhouse.start_timeout
    }

    fn start_local<'a>(
        &'a self,
        ctx: &'a StartContext<'a>,
    ) -> BoxFuture<'a, Result<Box<dyn Running>, InfraError>> {
        Box::pin(async move {
            let fail = |m: String| ctx.fail(ServiceKind::ClickHouse, m);
            let bin = server_bin(ctx.settings).map_err(fail)?;
            let dir = ctx.dir.join("clickhouse");
            std::fs::create_dir_all(dir.join("log"))
                .map_err(|e| fail(format!("cannot create {}: {e}", dir.display())))?;
            let password = super::password(ctx.secret, ServiceKind::ClickHouse);
            std::fs::write(dir.join("users.xml"), users_xml(&password))
                .map_err(|e| fail(e.to_string()))?;
            let log = dir.join("log/clickhouse-server.err.log");
            let how = Serve {
                service: "clickhouse",
                log: &log,
                port_taken: "Address already in use",
                timeout: ctx.settings.clickhouse.start_timeout,
                stop_signal: libc::SIGTERM,
                log_owner: None,
            };
            // Two ports: the native one is chosen afresh for every attempt, like the HTTP one.
            let native = std::sync::Mutex::new(0u16);
            let command = |http_port: u16| {
                let native_port = crate::process::free_port().unwrap_or(0);
                if let Ok(mut n) = native.lock() {
                    *n = native_port;
                }
                let config = dir.join("config.xml");
                let _ = std::fs::write(&config, config_xml(&dir, http_port, native_port));
                let mut cmd = Command::new(&bin);
                cmd.arg(format!("--config-file={}", config.display()))
                    .current_dir(&dir);
                cmd
            };
            let at = |port: u16| ClickHouseEndpoint::new("127.0.0.1", port, 0, password.clone());
            let (proc, http_port) = serve(how, command, |port| {
                let ep = at(port);
                async move { ep.ready().await }
            })
            .await?;
            let native_port = native.lock().map(|n| *n).unwrap_or(0);
            Ok(Box::new(ClickHouseRunning {
                endpoint: ClickHouseEndpoint::new("127.0.0.1", http_port, native_port, password),
                process: Some(proc),
            }) as Box<dyn Running>)
        })
    }

    fn image(&self) -> Option<ImageSpec> {
        Some(ImageSpec {
            service: "clickhouse",
            files: &[
                (
                    "Dockerfile",
                    include_str!("../../../containers/clickhouse/Dockerfile"),
                ),
                (
                    "entrypoint.sh",
                    include_str!("../../../containers/clickhouse/entrypoint.sh"),
                ),
                (
                    "config.xml",
                    include_str!("../../../containers/clickhouse/config.xml"),
                ),
            ],
            needs_jars: false,
        })
    }

    fn container(&self, ctx: &StartContext<'_>) -> Option<Result<Container, InfraError>> {
        Some(Ok(Container {
            image: self.image()?,
            jars: None,
            ports: vec![8123, 9000],
            env: vec![(
                "CLICKHOUSE_PASSWORD".into(),
                super::password(ctx.secret, ServiceKind::ClickHouse),
            )],
            mounts: vec![],
            args: vec![],
        }))
    }

    fn connect<'a>(
        &'a self,
        ports: Vec<u16>,
        ctx: &'a StartContext<'a>,
    ) -> BoxFuture<'a, Result<Box<dyn Running>, String>> {
        Box::pin(async move {
            let [http_port, native_port] = ports[..] else {
                return Err("expected two ports".into());
            };
            let endpoint = ClickHouseEndpoint::new(
                "127.0.0.1",
                http_port,
                native_port,
                super::password(ctx.secret, ServiceKind::ClickHouse),
            );
            if !endpoint.ready().await {
                return Err("not answering SELECT 1 yet".into());
            }
            Ok(Box::new(ClickHouseRunning {
                endpoint,
                process: None,
            }) as Box<dyn Running>)
        })
    }
}

impl Running for ClickHouseRunning {
    fn kind(&self) -> ServiceKind {
        ServiceKind::ClickHouse
    }

    fn exited(&self) -> Option<String> {
        self.process.as_ref()?.exit_note()
    }

    fn endpoint(&self) -> String {
        format!(
            "http://{USER}@{}:{} (native port {})",
            self.endpoint.host, self.endpoint.http_port, self.endpoint.native_port
        )
    }

    fn task_env(&self) -> Vec<(String, String)> {
        vec![
            ("HARNESS_CLICKHOUSE_URL".into(), self.endpoint.url()),
            (
                "AIRFLOW_CONN_CLICKHOUSE_DEFAULT".into(),
                self.endpoint.native_url(),
            ),
        ]
    }

    fn reset<'a>(&'a self, _ctx: &'a DataContext<'a>) -> BoxFuture<'a, Result<(), ServiceError>> {
        Box::pin(self.endpoint.reset())
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
                    format,
                    path,
                    columns,
                    schema,
                    engine,
                    ..
                } => {
                    self.endpoint
                        .seed_table(
                            table,
                            *format,
                            path,
                            &seed.display,
                            columns,
                            schema.as_deref(),
                            engine.as_deref(),
                        )
                        .await
                }
                _ => Err(super::not_for(seed, ServiceKind::ClickHouse)),
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
                return Err(format!("{}: not a clickhouse sink", sink.origin));
            };
            let table = self
                .endpoint
                .read(query)
                .await
                .map_err(|e| format!("{}: {e}", sink.origin))?;
            super::render_table(sink, table, key, *float_digits)
        })
    }

    fn sql(&self) -> Option<SqlRunner> {
        let endpoint = self.endpoint.clone();
        Some(SqlRunner(std::sync::Arc::new(move |text, origin| {
            let endpoint = endpoint.clone();
            Box::pin(async move { endpoint.run_sql(&text, &origin).await })
        })))
    }

    fn stop(self: Box<Self>) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            // The server waits for open connections before it stops: close ours first.
            let ClickHouseRunning { endpoint, process } = *self;
            drop(endpoint);
            if let Some(p) = process {
                p.stop().await;
            }
        })
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}
