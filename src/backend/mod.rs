//! The lifecycle of environments: bringing up one started set of services from their
//! descriptions (`crate::services::REGISTRY`), in waves of kinds whose requirements are up,
//! handing their addresses to tasks, resetting them between scenarios and tearing them down.
//! The `local` way is each description's own start on this machine; `docker` starts the kinds
//! that have a container image as containers, and the rest locally. Nothing here names a kind.

pub mod docker;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::config::{BackendChoice, Settings};
use crate::events::{Event, Events};
use crate::names::ServiceKind;
pub use crate::outcome::InfraError;
use crate::services::{self, DataContext, Running, Service, ServiceError, StartContext, Started};

/// The backend actually used, and why it was chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// Which.
    pub kind: BackendKind,
    /// Why.
    pub reason: String,
}

/// A concrete backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    /// Processes on this machine.
    Local,
    /// Containers.
    Docker,
}

impl BackendKind {
    /// Its name.
    pub fn name(self) -> &'static str {
        match self {
            BackendKind::Local => "local",
            BackendKind::Docker => "docker",
        }
    }
}

/// Resolves `auto`: docker when a Docker daemon answers, local otherwise.
pub async fn resolve(choice: BackendChoice) -> Resolved {
    match choice {
        BackendChoice::Local => Resolved {
            kind: BackendKind::Local,
            reason: "requested".into(),
        },
        BackendChoice::Docker => Resolved {
            kind: BackendKind::Docker,
            reason: "requested".into(),
        },
        BackendChoice::Auto => match docker::connect().await {
            Ok(_) => Resolved {
                kind: BackendKind::Docker,
                reason: "auto: a Docker daemon answers".into(),
            },
            Err(e) => Resolved {
                kind: BackendKind::Local,
                reason: format!("auto: {e}"),
            },
        },
    }
}

/// One started set of services.
#[derive(Debug)]
pub struct Environment {
    /// Its running services, in start order.
    pub started: Started,
    /// Folder holding the services' data and logs.
    pub dir: PathBuf,
    containers: Vec<docker::ServiceContainer>,
}

/// The docker side of a start: the daemon, the run's label and the base image.
struct Docker<'a> {
    client: bollard::Docker,
    run_id: String,
    base: &'a str,
}

impl Environment {
    /// Starts `services` (with everything they require) in `dir`, which the environment owns
    /// from now on. A failure stops whatever did come up.
    pub async fn start(
        services: &[ServiceKind],
        settings: &Settings,
        backend: BackendKind,
        dir: &Path,
        events: &Events,
    ) -> Result<Environment, InfraError> {
        let mut env = Environment {
            started: Started::default(),
            dir: dir.to_path_buf(),
            containers: Vec::new(),
        };
        let docker = match backend {
            BackendKind::Local => None,
            BackendKind::Docker => Some(connect_docker(settings, events).await?),
        };
        let secret = secret();
        let mut first_error = None;
        for wave in services::waves(
            &services::closure(services.iter().copied(), settings),
            settings,
        ) {
            let results = {
                let ctx = StartContext {
                    settings,
                    dir,
                    started: &env.started,
                    secret: &secret,
                };
                let starts = wave
                    .iter()
                    .map(|k| start_one(services::describe(*k), &ctx, docker.as_ref(), events));
                futures_util::future::join_all(starts).await
            };
            for result in results {
                match result {
                    Ok((running, container, elapsed)) => {
                        let place = if container.is_some() {
                            " (container)"
                        } else {
                            ""
                        };
                        events.emit(Event::ServiceReady {
                            service: running.kind(),
                            endpoint: format!("{}{place}", running.endpoint()),
                            elapsed,
                        });
                        env.started.push(running);
                        env.containers.extend(container);
                    }
                    Err(e) => first_error = first_error.or(Some(e)),
                }
            }
            if first_error.is_some() {
                break;
            }
        }
        if first_error.is_none() {
            // What the services hold once all are up (the metastore's database in PostgreSQL,
            // say) is what a reset goes back to.
            for running in env.started.iter() {
                if let Err(e) = running.settle().await {
                    first_error = Some(InfraError {
                        stopped: false,
                        service: running.kind().name().into(),
                        message: e.to_string(),
                        log_tail: vec![],
                    });
                    break;
                }
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

    /// The running service of concrete type `T`.
    pub fn get<T: 'static>(&self) -> Option<&T> {
        self.started.get::<T>()
    }

    /// What seeding and reading sinks need besides the service: the other services, the events,
    /// and a scratch file for rows on their way.
    pub fn data_context<'a>(&'a self, events: &'a Events, scratch: PathBuf) -> DataContext<'a> {
        DataContext {
            started: &self.started,
            events,
            scratch,
        }
    }

    /// Brings every service back to empty, the last started first (the Spark session forgets
    /// its cached tables, the metastore drops them, the namespace's files go last).
    pub async fn reset(&self, events: &Events) -> Result<(), ServiceError> {
        let ctx = self.data_context(events, self.dir.join("work").join("reset.rows"));
        for running in self.started.iter().rev() {
            running.reset(&ctx).await?;
        }
        Ok(())
    }

    /// The first service of the environment found stopped (its process exited, its container
    /// stopped), now.
    pub async fn dead_service(&self) -> Option<InfraError> {
        for running in self.started.iter() {
            if let Some(why) = running.exited() {
                return Some(stopped(running.kind().name(), why));
            }
        }
        for c in &self.containers {
            if let Some(why) = c.exit_note().await {
                return Some(stopped(c.service, why));
            }
        }
        None
    }

    /// [`Self::dead_service`] after a scenario failed: Docker may take a moment to see a
    /// container stop that its clients saw at once, so containers get a few looks.
    pub async fn dead_service_after_failure(&self) -> Option<InfraError> {
        let looks = if self.containers.is_empty() { 1 } else { 5 };
        for look in 0..looks {
            if look > 0 {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            if let Some(e) = self.dead_service().await {
                return Some(e);
            }
        }
        None
    }

    /// Resolves when a service of the environment has stopped, looking every [`WATCH_EVERY`].
    pub async fn died(&self) -> InfraError {
        loop {
            tokio::time::sleep(WATCH_EVERY).await;
            if let Some(e) = self.dead_service().await {
                return e;
            }
        }
    }

    /// The environment variables of the contract with pipeline code, for the services started.
    pub fn task_env(&self) -> Vec<(String, String)> {
        self.started.iter().flat_map(|r| r.task_env()).collect()
    }

    /// Stops every service, the last started first, and removes their data.
    pub async fn stop(mut self) {
        for running in self.started.drain().into_iter().rev() {
            running.stop().await;
        }
        for c in self.containers.drain(..) {
            c.stop().await;
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Connects to the daemon and removes what dead runs left.
async fn connect_docker<'a>(
    settings: &'a Settings,
    events: &Events,
) -> Result<Docker<'a>, InfraError> {
    let docker_err = |m: String| InfraError {
        stopped: false,
        service: "docker".into(),
        message: m,
        log_tail: vec![],
    };
    let client = docker::connect().await.map_err(docker_err)?;
    docker::remove_orphans(&client, events)
        .await
        .map_err(docker_err)?;
    let run_id = match crate::ledger::current() {
        Some(l) => l.id().to_string(),
        None => format!(
            "{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis())
                .unwrap_or(0)
        ),
    };
    Ok(Docker {
        client,
        run_id,
        base: settings.image_base.as_str(),
    })
}

/// Starts one service: as a container when the backend is docker and the kind has one, on this
/// machine otherwise.
async fn start_one(
    service: &dyn Service,
    ctx: &StartContext<'_>,
    docker: Option<&Docker<'_>>,
    events: &Events,
) -> Result<(Box<dyn Running>, Option<docker::ServiceContainer>, Duration), InfraError> {
    let t0 = Instant::now();
    let plan = match docker {
        Some(d) => service.container(ctx).map(|p| (d, p)),
        None => None,
    };
    match plan {
        Some((d, plan)) => {
            let plan = plan?;
            let tag =
                docker::ensure_image(&d.client, &plan.image, d.base, plan.jars.as_deref(), events)
                    .await?;
            let (container, running) = docker::start_container(
                &d.client,
                &plan,
                &tag,
                &d.run_id,
                service.start_timeout(ctx.settings),
                |ports| service.connect(ports, ctx),
            )
            .await?;
            Ok((running, Some(container), t0.elapsed()))
        }
        None => {
            let running = service.start_local(ctx).await?;
            Ok((running, None, t0.elapsed()))
        }
    }
}

/// How often a running environment's services are looked at.
pub const WATCH_EVERY: Duration = Duration::from_secs(1);

fn stopped(service: &str, why: String) -> InfraError {
    InfraError {
        stopped: true,
        service: service.into(),
        message: why,
        log_tail: vec![],
    }
}

/// A secret for one environment, from the kernel's random source: its services' passwords
/// derive from it, so no two environments share one and none is written in a file of ours.
fn secret() -> String {
    let mut bytes = [0u8; 16];
    let ok = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes))
        .is_ok();
    if !ok {
        // No random source: still unique per environment, though guessable.
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        bytes[..16].copy_from_slice(&(t ^ u128::from(std::process::id())).to_le_bytes());
    }
    let secret: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    crate::redact::register(&secret);
    secret
}
