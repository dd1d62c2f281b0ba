//! The local backend: PostgreSQL and Redis as private processes of this run, on free loopback
//! ports, with their data in the environment's folder. PostgreSQL runs as an unprivileged user
//! when the harness runs as root (initdb refuses root). Each server is the leader of its own
//! process group, killed with the group when its owner goes away.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::process::{Child, Command};

use super::InfraError;
use crate::config::settings::{PostgresSettings, RedisSettings};
use crate::dag::process::{GroupGuard, isolate, signal_group};
use crate::services::postgres::{DATABASE, PostgresEndpoint};
use crate::services::redis::RedisEndpoint;

/// How many times a server is started on a new port when the port was taken meanwhile.
const PORT_ATTEMPTS: usize = 3;
/// How long a server gets to stop by itself before its group is killed.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// A running server process; killed with its process group when dropped.
#[derive(Debug)]
pub struct ServiceProcess {
    name: &'static str,
    child: Child,
    stop_signal: i32,
    guard: GroupGuard,
    /// A folder outside the environment's that the server's data lives in, removed on stop.
    owned_dir: Option<PathBuf>,
}

impl ServiceProcess {
    /// Takes ownership of a started server (leader of its own process group).
    pub fn new(name: &'static str, child: Child, stop_signal: i32) -> Self {
        let guard = GroupGuard::new(child.id());
        ServiceProcess {
            name,
            child,
            stop_signal,
            guard,
            owned_dir: None,
        }
    }

    /// The process, to check whether it is still running.
    pub fn child_mut(&mut self) -> &mut Child {
        &mut self.child
    }

    /// True while the server process has not exited.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Asks the server to stop, then kills its group if it has not stopped within the grace time.
    pub async fn stop(mut self) {
        if let Some(pid) = self.child.id() {
            // SAFETY: kill has no memory-safety preconditions.
            unsafe {
                libc::kill(pid as i32, self.stop_signal);
            }
            if tokio::time::timeout(STOP_GRACE, self.child.wait())
                .await
                .is_err()
            {
                if let Some(pgid) = self.guard.pgid() {
                    signal_group(pgid, libc::SIGKILL);
                }
                let _ = self.child.wait().await;
            }
        }
        let _ = self.name;
        drop(self.guard);
        if let Some(d) = self.owned_dir.take() {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

/// A free TCP port on 127.0.0.1 (free when asked; a server may still lose it to a race, which
/// the callers handle by retrying).
pub fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn infra(service: &str, message: impl Into<String>, log: Option<&Path>) -> InfraError {
    InfraError {
        service: service.into(),
        message: message.into(),
        log_tail: log.map(|l| log_tail(l, 15)).unwrap_or_default(),
    }
}

/// The last `n` lines of a log file.
pub fn log_tail(path: &Path, n: usize) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

/// Finds a program on PATH.
pub fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

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

/// The user PostgreSQL runs as: `None` to stay as we are; the `postgres` (or `nobody`) user
/// when we are root.
fn unprivileged_user() -> Result<Option<(u32, u32)>, String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Ok(None);
    }
    for name in [c"postgres", c"nobody"] {
        // SAFETY: getpwnam gets a valid C string; the result is copied out at once.
        let pw = unsafe { libc::getpwnam(name.as_ptr()) };
        if !pw.is_null() {
            // SAFETY: pw is non-null and points to a passwd record.
            let (uid, gid) = unsafe { ((*pw).pw_uid, (*pw).pw_gid) };
            return Ok(Some((uid, gid)));
        }
    }
    Err(
        "running as root, and neither a `postgres` nor a `nobody` user exists to run PostgreSQL as"
            .into(),
    )
}

fn as_user(cmd: &mut Command, user: Option<(u32, u32)>) {
    if let Some((uid, gid)) = user {
        cmd.uid(uid).gid(gid);
    }
}

/// Starts a private PostgreSQL server in `env_dir/postgres`.
pub async fn start_postgres(
    settings: &PostgresSettings,
    env_dir: &Path,
) -> Result<(ServiceProcess, PostgresEndpoint, Duration), InfraError> {
    let started = Instant::now();
    let fail = |m: String| infra("postgres", m, None);
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
        let d = tempfile::Builder::new()
            .prefix("harness-pg-")
            .tempdir_in("/tmp")
            .map_err(|e| fail(format!("cannot create a folder in /tmp: {e}")))?
            .keep();
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

    let mut initdb = Command::new(bin.join("initdb"));
    initdb.arg("-D").arg(&data).args([
        "-A",
        "trust",
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
    let out = tokio::time::timeout(Duration::from_secs(120), initdb.output())
        .await
        .map_err(|_| fail("initdb did not finish within 120 s".into()))?
        .map_err(|e| fail(format!("cannot run initdb: {e}")))?;
    if !out.status.success() {
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        return Err(InfraError {
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

    let mut last = None;
    for _ in 0..PORT_ATTEMPTS {
        let port = free_port().map_err(|e| fail(format!("no free port: {e}")))?;
        let logfile = std::fs::File::create(&log).map_err(|e| fail(e.to_string()))?;
        if let Some((uid, gid)) = user {
            let _ = std::os::unix::fs::chown(&log, Some(uid), Some(gid));
        }
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
        cmd.stdin(Stdio::null())
            .stdout(logfile.try_clone().map_err(|e| fail(e.to_string()))?)
            .stderr(logfile)
            .current_dir(&dir);
        as_user(&mut cmd, user);
        isolate(&mut cmd);
        let child = cmd
            .spawn()
            .map_err(|e| fail(format!("cannot start postgres: {e}")))?;
        let guard = GroupGuard::new(child.id());
        let mut proc = ServiceProcess {
            name: "postgres",
            child,
            stop_signal: libc::SIGINT,
            guard,
            owned_dir: owned_dir.clone(),
        };
        let ep = PostgresEndpoint {
            host: "127.0.0.1".into(),
            port,
            user: "harness".into(),
            password: "harness".into(),
            database: DATABASE.into(),
        };
        match wait_ready(&mut proc.child, settings.start_timeout, || ep.ready()).await {
            Ok(()) => {
                ep.reset(None)
                    .await
                    .map_err(|e| infra("postgres", e.to_string(), Some(&log)))?;
                return Ok((proc, ep, started.elapsed()));
            }
            Err(e) => {
                let port_taken = std::fs::read_to_string(&log)
                    .unwrap_or_default()
                    .contains("could not bind");
                proc.stop().await;
                last = Some(infra("postgres", e, Some(&log)));
                if !port_taken {
                    break;
                }
            }
        }
    }
    Err(last.unwrap_or_else(|| fail("did not start".into())))
}

/// Starts a private Redis server (no persistence) in `env_dir/redis`.
pub async fn start_redis(
    settings: &RedisSettings,
    env_dir: &Path,
) -> Result<(ServiceProcess, RedisEndpoint, Duration), InfraError> {
    let started = Instant::now();
    let fail = |m: String| infra("redis", m, None);
    let bin = if settings.bin.components().count() > 1 {
        Some(settings.bin.clone())
    } else {
        which(&settings.bin.to_string_lossy())
    };
    let bin = bin.filter(|b| b.is_file()).ok_or_else(|| fail(format!("`{}` not found; install the `redis-server` package (scripts/setup.sh does) or set services.redis.bin", settings.bin.display())))?;
    let dir = env_dir.join("redis");
    std::fs::create_dir_all(&dir)
        .map_err(|e| fail(format!("cannot create {}: {e}", dir.display())))?;
    let log = dir.join("redis.log");
    let mut last = None;
    for _ in 0..PORT_ATTEMPTS {
        let port = free_port().map_err(|e| fail(format!("no free port: {e}")))?;
        let logfile = std::fs::File::create(&log).map_err(|e| fail(e.to_string()))?;
        let mut cmd = Command::new(&bin);
        cmd.args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
        ]);
        cmd.arg("--dir").arg(&dir);
        cmd.stdin(Stdio::null())
            .stdout(logfile.try_clone().map_err(|e| fail(e.to_string()))?)
            .stderr(logfile)
            .current_dir(&dir);
        isolate(&mut cmd);
        let child = cmd
            .spawn()
            .map_err(|e| fail(format!("cannot start {}: {e}", bin.display())))?;
        let guard = GroupGuard::new(child.id());
        let mut proc = ServiceProcess {
            name: "redis",
            child,
            stop_signal: libc::SIGTERM,
            guard,
            owned_dir: None,
        };
        let ep = RedisEndpoint {
            host: "127.0.0.1".into(),
            port,
            db: 0,
        };
        match wait_ready(&mut proc.child, settings.start_timeout, || ep.ready()).await {
            Ok(()) => return Ok((proc, ep, started.elapsed())),
            Err(e) => {
                let port_taken = std::fs::read_to_string(&log)
                    .unwrap_or_default()
                    .contains("Address already in use");
                proc.stop().await;
                last = Some(infra("redis", e, Some(&log)));
                if !port_taken {
                    break;
                }
            }
        }
    }
    Err(last.unwrap_or_else(|| fail("did not start".into())))
}

/// Polls `ready` until it answers, the process exits, or `timeout` passes.
pub async fn wait_ready<F, Fut>(
    child: &mut Child,
    timeout: Duration,
    ready: F,
) -> Result<(), String>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            return Err(format!("the server exited before it was ready ({status})"));
        }
        if ready().await {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "not ready within {}",
                humantime::format_duration(timeout)
            ));
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}
