//! The docker backend: every service whose description has a container, through
//! testcontainers (lifecycle) and bollard (image builds, finding containers by label). Images are
//! built here from `containers/<service>/` (embedded in the binary) on a base image given as a
//! build argument, tagged with a hash of their build context so an unchanged image is never
//! rebuilt. Ports are published on 127.0.0.1 only. Every container carries the run's labels, so
//! containers of a run that died (SIGKILL) are found and removed by the next run.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::query_parameters::{
    BuildImageOptionsBuilder, ListContainersOptionsBuilder, LogsOptionsBuilder,
    RemoveContainerOptionsBuilder,
};
use futures_util::StreamExt;
use sha2::{Digest, Sha256};
use testcontainers::core::{IntoContainerPort, Mount};
use testcontainers::runners::AsyncRunner;
use testcontainers::{ContainerAsync, GenericImage, ImageExt};

use crate::events::Events;
use crate::outcome::InfraError;
use crate::services::{Container, ImageSpec, Running};

/// Label every container of harness carries.
pub const LABEL_OWNER: &str = "org.harness.owner";
/// Label naming the run a container belongs to.
pub const LABEL_RUN: &str = "org.harness.run";
/// Label holding the pid of the harness process that started the container.
pub const LABEL_PID: &str = "org.harness.pid";
/// Label: the ledger file of the run; the run is alive while the file's lock is held.
pub const LABEL_LEDGER: &str = "org.harness.ledger";

/// The base image when none is configured.
pub const DEFAULT_BASE: &str = "debian:bookworm-slim";

/// Connects to the local Docker daemon and checks that it answers.
pub async fn connect() -> Result<Docker, String> {
    let docker = Docker::connect_with_local_defaults()
        .map_err(|e| format!("cannot reach the Docker daemon: {e}"))?;
    match tokio::time::timeout(Duration::from_secs(3), docker.ping()).await {
        Ok(Ok(_)) => Ok(docker),
        Ok(Err(e)) => Err(format!("the Docker daemon does not answer: {e}")),
        Err(_) => Err("the Docker daemon does not answer within 3 s".into()),
    }
}

/// The tag of an image: a hash of everything that goes into it (`base` is the base image's id).
pub fn image_tag(spec: &ImageSpec, base: &str, jars: Option<&Path>) -> String {
    let mut h = Sha256::new();
    h.update(base.as_bytes());
    for (path, content) in spec.files {
        h.update(path.as_bytes());
        h.update([0]);
        h.update(content.as_bytes());
        h.update([0]);
    }
    if let Some(dir) = jars {
        // The jars of one PySpark version: names and sizes identify them.
        let mut names: Vec<(String, u64)> = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| {
                (
                    e.file_name().to_string_lossy().into_owned(),
                    e.metadata().map(|m| m.len()).unwrap_or(0),
                )
            })
            .collect();
        names.sort();
        for (n, size) in names {
            h.update(format!("{n}:{size}\n").as_bytes());
        }
    }
    h.finalize()
        .iter()
        .take(6)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Builds an image unless one with the same tag exists; returns `name:tag`.
pub async fn ensure_image(
    docker: &Docker,
    spec: &ImageSpec,
    base: &str,
    jars: Option<&Path>,
    events: &Events,
) -> Result<String, InfraError> {
    let fail = |m: String, tail: Vec<String>| InfraError {
        stopped: false,
        service: spec.service.into(),
        message: m,
        log_tail: tail,
    };
    // The base's id, not its name, goes into the tag: a rebuilt base gives new images.
    let Some(base_id) = docker.inspect_image(base).await.ok().and_then(|i| i.id) else {
        return Err(fail(
            format!(
                "base image `{base}` is not here and no registry can be reached: build it offline with containers/base/build-base-image.sh and use --base harness-base:bookworm (or [images] base in harness.toml)"
            ),
            vec![],
        ));
    };
    let tag = image_tag(spec, &base_id, jars);
    let name = format!("harness-{}:{tag}", spec.service);
    if docker.inspect_image(&name).await.is_ok() {
        return Ok(name);
    }
    let started = Instant::now();
    events.notice(format!("building image {name} (base {base})"));
    let context = build_context(spec, jars)
        .map_err(|e| fail(format!("cannot pack the build context: {e}"), vec![]))?;
    let args: HashMap<String, String> = HashMap::from([("BASE".to_string(), base.to_string())]);
    let labels: HashMap<String, String> =
        HashMap::from([(LABEL_OWNER.to_string(), "harness".to_string())]);
    let options = BuildImageOptionsBuilder::default()
        .dockerfile("Dockerfile")
        .t(&name)
        .rm(true)
        .forcerm(true)
        .buildargs(&args)
        .labels(&labels)
        .build();
    let mut stream = docker.build_image(options, None, Some(bollard::body_full(context.into())));
    let mut log: Vec<String> = Vec::new();
    while let Some(item) = stream.next().await {
        match item {
            Ok(info) => {
                if let Some(s) = info.stream {
                    log.extend(s.lines().map(str::to_string));
                }
                if let Some(e) = info.error_detail.and_then(|d| d.message) {
                    return Err(fail(format!("image build failed: {e}"), tail(&log, 20)));
                }
            }
            Err(e) => return Err(fail(format!("image build failed: {e}"), tail(&log, 20))),
        }
    }
    events.notice(format!(
        "built image {name} in {:.1}s",
        started.elapsed().as_secs_f64()
    ));
    Ok(name)
}

fn tail(lines: &[String], n: usize) -> Vec<String> {
    lines[lines.len().saturating_sub(n)..].to_vec()
}

fn build_context(spec: &ImageSpec, jars: Option<&Path>) -> std::io::Result<Vec<u8>> {
    let mut tar = tar::Builder::new(Vec::new());
    for (path, content) in spec.files {
        let mut header = tar::Header::new_gnu();
        header.set_size(content.len() as u64);
        header.set_mode(if path.ends_with(".sh") { 0o755 } else { 0o644 });
        header.set_cksum();
        tar.append_data(&mut header, path, content.as_bytes())?;
    }
    if let Some(dir) = jars {
        tar.append_dir_all("jars", dir)?;
    }
    tar.into_inner()
}

/// Finds containers of harness runs that are dead (their ledger's lock is free, or the ledger is
/// gone: `crate::ledger`) and removes them.
pub async fn remove_orphans(docker: &Docker, events: &Events) -> Result<usize, String> {
    remove_where(docker, events, None).await
}

/// Removes the containers labelled with run `run` (a run that died, or this one at its end).
pub async fn remove_run(docker: &Docker, events: &Events, run: &str) -> Result<usize, String> {
    remove_where(docker, events, Some(run)).await
}

/// Removes the harness's containers of run `run`, or, when `None`, of every dead run.
async fn remove_where(
    docker: &Docker,
    events: &Events,
    run: Option<&str>,
) -> Result<usize, String> {
    let filters: HashMap<&str, Vec<&str>> = HashMap::from([("label", vec![LABEL_OWNER])]);
    let list = docker
        .list_containers(Some(
            ListContainersOptionsBuilder::default()
                .all(true)
                .filters(&filters)
                .build(),
        ))
        .await
        .map_err(|e| e.to_string())?;
    let mut removed = 0;
    for c in list {
        let labels = c.labels.unwrap_or_default();
        let pid: Option<i32> = labels.get(LABEL_PID).and_then(|p| p.parse().ok());
        let selected = match run {
            Some(run) => labels.get(LABEL_RUN).is_some_and(|r| r == run),
            None => match labels.get(LABEL_LEDGER) {
                Some(ledger) => !crate::ledger::is_alive(Path::new(ledger)),
                // A container of a version without ledgers: its harness's PID is all there is.
                None => !pid.is_some_and(|p| Path::new(&format!("/proc/{p}")).exists()),
            },
        };
        if !selected {
            continue;
        }
        if let Some(id) = c.id {
            let run = labels.get(LABEL_RUN).cloned().unwrap_or_default();
            let _ = docker
                .remove_container(
                    &id,
                    Some(
                        RemoveContainerOptionsBuilder::default()
                            .force(true)
                            .v(true)
                            .build(),
                    ),
                )
                .await;
            events.notice(format!(
                "removed container {} of run {run} (harness pid {}), which ended",
                &id[..12.min(id.len())],
                pid.map_or("?".into(), |p| p.to_string())
            ));
            removed += 1;
        }
    }
    Ok(removed)
}

/// The last lines a container printed.
async fn container_logs(docker: &Docker, id: &str, n: usize) -> Vec<String> {
    let opts = LogsOptionsBuilder::default()
        .stdout(true)
        .stderr(true)
        .tail(&n.to_string())
        .build();
    let mut stream = docker.logs(id, Some(opts));
    let mut out = Vec::new();
    while let Some(Ok(chunk)) = stream.next().await {
        out.extend(chunk.to_string().lines().map(str::to_string));
    }
    tail(&out, n)
}

/// A started service container.
pub struct ServiceContainer {
    /// Service name.
    pub service: &'static str,
    container: ContainerAsync<GenericImage>,
}

impl std::fmt::Debug for ServiceContainer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceContainer")
            .field("service", &self.service)
            .field("id", &self.container.id())
            .finish()
    }
}

impl ServiceContainer {
    /// Why the container no longer runs, once it has stopped.
    pub async fn exit_note(&self) -> Option<String> {
        match self.container.is_running().await {
            Ok(true) => None,
            Ok(false) => Some(format!(
                "its container {} stopped{}",
                &self.container.id()[..12.min(self.container.id().len())],
                match self.container.exit_code().await {
                    Ok(Some(code)) => format!(" (exit code {code})"),
                    _ => String::new(),
                }
            )),
            Err(e) => Some(format!(
                "its container {} cannot be inspected: {e}",
                self.container.id()
            )),
        }
    }

    /// Removes the container.
    pub async fn stop(self) {
        let _ = self.container.rm().await;
    }
}

/// Starts a service container from `image` (built from `plan.image`), publishing its ports on
/// 127.0.0.1, labelled with the run, and asks `connect` with the published ports until it
/// answers or `timeout` passes.
pub async fn start_container<F, Fut>(
    docker: &Docker,
    plan: &Container,
    image: &str,
    run_id: &str,
    timeout: Duration,
    connect: F,
) -> Result<(ServiceContainer, Box<dyn Running>), InfraError>
where
    F: Fn(Vec<u16>) -> Fut,
    Fut: std::future::Future<Output = Result<Box<dyn Running>, String>>,
{
    let service = plan.image.service;
    let fail = |m: String, tail: Vec<String>| InfraError {
        stopped: false,
        service: service.into(),
        message: m,
        log_tail: tail,
    };
    let (name, tag) = image.split_once(':').unwrap_or((image, "latest"));
    let mut image_ports = GenericImage::new(name, tag);
    for port in &plan.ports {
        image_ports = image_ports.with_exposed_port(port.tcp());
    }
    let req = image_ports
        .with_label(LABEL_OWNER, "harness")
        .with_label(LABEL_RUN, run_id)
        .with_label(LABEL_PID, std::process::id().to_string())
        .with_label(
            LABEL_LEDGER,
            crate::ledger::current()
                .map(|l| l.path().display().to_string())
                .unwrap_or_default(),
        );
    crate::ledger::container(&format!("{service} ({image})"));
    let ports = plan.ports.clone();
    let mut req = req.with_host_config_modifier(move |hc| {
        // Published on loopback only, never on every interface.
        hc.publish_all_ports = Some(false);
        let binding = bollard::models::PortBinding {
            host_ip: Some("127.0.0.1".into()),
            host_port: Some(String::new()),
        };
        hc.port_bindings = Some(
            ports
                .iter()
                .map(|p| (format!("{p}/tcp"), Some(vec![binding.clone()])))
                .collect::<HashMap<_, _>>(),
        );
    });
    if !plan.args.is_empty() {
        req = req.with_cmd(plan.args.clone());
    }
    for (k, v) in &plan.env {
        req = req.with_env_var(k, v);
    }
    for m in &plan.mounts {
        let p = m.display().to_string();
        req = req.with_mount(Mount::bind_mount(p.clone(), p));
    }
    let container = req
        .start()
        .await
        .map_err(|e| fail(format!("cannot start a container of {image}: {e}"), vec![]))?;
    let mut host_ports = Vec::new();
    for port in &plan.ports {
        match container.get_host_port_ipv4(port.tcp()).await {
            Ok(p) => host_ports.push(p),
            Err(e) => {
                let _ = container.rm().await;
                return Err(fail(format!("no published port for {port}: {e}"), vec![]));
            }
        }
    }
    let deadline = crate::process::deadline_after(Instant::now(), timeout);
    loop {
        let not_yet = match connect(host_ports.clone()).await {
            Ok(running) => {
                return Ok((ServiceContainer { service, container }, running));
            }
            Err(e) => e,
        };
        let running = docker
            .inspect_container(container.id(), None)
            .await
            .ok()
            .and_then(|i| i.state)
            .and_then(|s| s.running)
            .unwrap_or(false);
        if !running || Instant::now() >= deadline {
            let logs = container_logs(docker, container.id(), 20).await;
            let why = if running {
                format!(
                    "not ready within {} ({not_yet})",
                    humantime::format_duration(timeout)
                )
            } else {
                "the container exited before it was ready".into()
            };
            let _ = container.rm().await;
            return Err(fail(why, logs));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_tags_follow_the_context_and_the_base() {
        let spec = ImageSpec {
            service: "x",
            files: &[("Dockerfile", "FROM a\n")],
            needs_jars: false,
        };
        let other = ImageSpec {
            service: "x",
            files: &[("Dockerfile", "FROM b\n")],
            needs_jars: false,
        };
        assert_eq!(
            image_tag(&spec, "sha256:1", None),
            image_tag(&spec, "sha256:1", None)
        );
        assert_ne!(
            image_tag(&spec, "sha256:1", None),
            image_tag(&spec, "sha256:2", None)
        );
        assert_ne!(
            image_tag(&spec, "sha256:1", None),
            image_tag(&other, "sha256:1", None)
        );
        assert_eq!(image_tag(&spec, "sha256:1", None).len(), 12);
    }
}
