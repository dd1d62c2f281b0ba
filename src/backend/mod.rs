//! The lifecycle side of services: bringing up an environment (one started set of services with
//! its endpoints), handing its addresses to tasks, and tearing it down. `local` runs services
//! as private processes on this machine.

pub mod local;

use std::path::{Path, PathBuf};

use crate::config::{BackendChoice, ServiceKind, Settings};
use crate::report::events::Events;
use crate::services::ServiceError;
use crate::services::postgres::PostgresEndpoint;
use crate::services::redis::RedisEndpoint;

/// A service that did not come up.
#[derive(Debug, thiserror::Error)]
#[error("{service} did not start: {message}{}", tail(.log_tail))]
pub struct InfraError {
    /// Which service.
    pub service: String,
    /// What went wrong.
    pub message: String,
    /// The last lines of its log.
    pub log_tail: Vec<String>,
}

fn tail(lines: &[String]) -> String {
    if lines.is_empty() {
        String::new()
    } else {
        format!("\nlast log lines:\n  {}", lines.join("\n  "))
    }
}

/// The backend actually used, and why it was chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// Backend name.
    pub name: &'static str,
    /// Why.
    pub reason: &'static str,
}

/// Resolves `auto` to a concrete backend.
pub fn resolve(choice: BackendChoice) -> Resolved {
    match choice {
        BackendChoice::Local => Resolved {
            name: "local",
            reason: "requested",
        },
        BackendChoice::Auto => Resolved {
            name: "local",
            reason: "auto: local is the only backend of this version",
        },
    }
}

/// One started set of services.
#[derive(Debug)]
pub struct Environment {
    /// PostgreSQL, when started.
    pub postgres: Option<PostgresEndpoint>,
    /// Redis, when started.
    pub redis: Option<RedisEndpoint>,
    /// Folder holding the services' data and logs.
    pub dir: PathBuf,
    services: Vec<local::ServiceProcess>,
}

impl Environment {
    /// Starts `services` in `dir` (which the environment owns from now on).
    pub async fn start(
        services: &[ServiceKind],
        settings: &Settings,
        dir: &Path,
        events: &Events,
    ) -> Result<Environment, InfraError> {
        let mut env = Environment {
            postgres: None,
            redis: None,
            dir: dir.to_path_buf(),
            services: Vec::new(),
        };
        // Start everything at once; a failure stops whatever did come up (on drop).
        let pg = async {
            if services.contains(&ServiceKind::Postgres) {
                Some(local::start_postgres(&settings.postgres, dir).await)
            } else {
                None
            }
        };
        let rd = async {
            if services.contains(&ServiceKind::Redis) {
                Some(local::start_redis(&settings.redis, dir).await)
            } else {
                None
            }
        };
        let (pg, rd) = tokio::join!(pg, rd);
        let mut first_error = None;
        if let Some(r) = pg {
            match r {
                Ok((proc, ep, elapsed)) => {
                    events.emit(crate::report::events::Event::ServiceReady {
                        service: ServiceKind::Postgres,
                        endpoint: ep.url(),
                        elapsed,
                    });
                    env.postgres = Some(ep);
                    env.services.push(proc);
                }
                Err(e) => first_error = Some(e),
            }
        }
        if let Some(r) = rd {
            match r {
                Ok((proc, ep, elapsed)) => {
                    events.emit(crate::report::events::Event::ServiceReady {
                        service: ServiceKind::Redis,
                        endpoint: ep.url(),
                        elapsed,
                    });
                    env.redis = Some(ep);
                    env.services.push(proc);
                }
                Err(e) => first_error = first_error.or(Some(e)),
            }
        }
        match first_error {
            Some(e) => {
                env.stop().await;
                Err(e)
            }
            None => Ok(env),
        }
    }

    /// Brings every service back to empty: a fresh database, no Redis keys.
    pub async fn reset(&self) -> Result<(), ServiceError> {
        if let Some(pg) = &self.postgres {
            pg.reset().await?;
        }
        if let Some(r) = &self.redis {
            r.reset().await?;
        }
        Ok(())
    }

    /// The environment variables of the contract with pipeline code, for the services started.
    pub fn task_env(&self) -> Vec<(String, String)> {
        let mut vars = Vec::new();
        if let Some(pg) = &self.postgres {
            vars.push(("HARNESS_POSTGRES_URL".into(), pg.url()));
            vars.push(("AIRFLOW_CONN_POSTGRES_DEFAULT".into(), pg.url()));
        }
        if let Some(r) = &self.redis {
            vars.push(("HARNESS_REDIS_URL".into(), r.url()));
            vars.push(("AIRFLOW_CONN_REDIS_DEFAULT".into(), r.url()));
        }
        vars
    }

    /// Stops every service and removes their data.
    pub async fn stop(mut self) {
        for s in self.services.drain(..) {
            s.stop().await;
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
