//! PostgreSQL: its description (a private server started with initdb as an unprivileged user, or
//! a container), a fresh database per scenario, SQL and CSV (COPY) seeds, SQL tasks, and
//! table/query sinks read into a canonical `Table`.
//!
//! Here: the description and the running server. Connections, the reset and error messages are in
//! `endpoint`, the local server in `launch`, seeds and SQL in `seed`, sink reads in `read` (values
//! by type in `values`), fixtures in `capture`.

pub mod capture;
mod endpoint;
mod launch;
mod read;
mod seed;
mod values;

use std::time::Duration;

use futures_util::future::BoxFuture;

pub use endpoint::{Globals, PostgresEndpoint, db_message};
pub use launch::postgres_bin_dir;
use launch::start_postgres;
pub use seed::execute;

use super::{
    Container, DataContext, ImageSpec, Prerequisite, Running, Service, ServiceError, SqlRunner,
    StartContext,
};
use crate::config::TableFormat;
use crate::config::rules::{DataRules, RowSeeds, SchemaRule, SinkRules};
use crate::config::scenario::quote_table;
use crate::config::{Seed, SeedKind, Settings, Sink, SinkSpec};
use crate::names::ServiceKind;
use crate::outcome::InfraError;
use crate::process::{ServiceProcess, first_line};

/// The database every scenario gets afresh.
pub const DATABASE: &str = "harness";

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
