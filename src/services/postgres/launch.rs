//! The local server: where PostgreSQL's server programs are, and a private cluster started with
//! initdb and run as an unprivileged user, its superuser's password never on a command line.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;

use super::{PostgresEndpoint, at};
use crate::config::settings::PostgresSettings;
use crate::outcome::InfraError;
use crate::process::{
    Serve, ServiceProcess, as_user, isolate, log_tail, serve, unprivileged_user, which,
};

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
pub(super) async fn start_postgres(
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
