//! Where a PostgreSQL server listens and how to log in: connections, the server's readiness,
//! the cluster-wide objects (databases and roles) and the reset that gives every scenario a fresh
//! database, and the server's error messages.

use tokio_postgres::{Client, NoTls};

use crate::services::ServiceError;

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

pub(super) fn unavailable(e: tokio_postgres::Error) -> ServiceError {
    ServiceError::Unavailable {
        service: "postgres",
        message: db_message(&e),
    }
}
