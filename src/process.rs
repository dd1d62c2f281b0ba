//! Child processes that never outlive the harness: each runs in its own process group, the group
//! is killed on timeout, on cancellation and when its owner is dropped, and the kernel kills the
//! child if the harness itself dies (parent-death signal).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::outcome::InfraError;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Time a process group gets between SIGTERM and SIGKILL.
pub const KILL_GRACE: Duration = Duration::from_secs(3);

/// Which output stream a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

/// The last `n` lines of a log file.
pub fn log_tail(path: &std::path::Path, n: usize) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

/// Sends `signal` to every process of group `pgid`; a group that is gone already is fine.
pub fn signal_group(pgid: u32, signal: i32) {
    if let Ok(pgid) = i32::try_from(pgid)
        && pgid > 0
    {
        // SAFETY: killpg has no memory-safety preconditions; errors (ESRCH) are ignored.
        unsafe {
            libc::killpg(pgid, signal);
        }
    }
}

/// Every process group a `GroupGuard` currently owns. Kept so that a second Ctrl-C, which exits
/// at once without unwinding, can still take every group down (the parent-death signal only
/// reaches direct children, not what they started).
static LIVE_GROUPS: std::sync::Mutex<std::collections::BTreeSet<u32>> =
    std::sync::Mutex::new(std::collections::BTreeSet::new());

/// Kills every process group owned by a live `GroupGuard`, and every process the run marked.
pub fn kill_all_groups() {
    let groups = LIVE_GROUPS.lock().map(|g| g.clone()).unwrap_or_default();
    for pgid in groups {
        signal_group(pgid, libc::SIGKILL);
    }
    if let Some(l) = crate::ledger::current() {
        l.kill_own();
    }
}

/// Kills a process group (SIGKILL) when dropped, and the processes that carry the group's owner
/// mark but left it (`setsid`, a daemon's double fork).
#[derive(Debug)]
pub struct GroupGuard {
    pgid: Option<u32>,
    mark: Option<String>,
}

impl GroupGuard {
    /// Guards the group led by `pid`, just started (so its environment holds its owner mark),
    /// and records the process in the run's ledger.
    pub fn new(pid: Option<u32>) -> Self {
        if let (Some(p), Ok(mut live)) = (pid, LIVE_GROUPS.lock()) {
            live.insert(p);
        }
        if let Some(p) = pid {
            crate::ledger::process(p);
        }
        let mark = pid
            .and_then(crate::ledger::mark_of)
            .filter(|m| !m.ends_with(".0"));
        GroupGuard { pgid: pid, mark }
    }

    /// The group id.
    pub fn pgid(&self) -> Option<u32> {
        self.pgid
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if let Some(pgid) = self.pgid.take() {
            signal_group(pgid, libc::SIGKILL);
            if let Ok(mut live) = LIVE_GROUPS.lock() {
                live.remove(&pgid);
            }
        }
        if let Some(mark) = self.mark.take() {
            crate::ledger::kill_group_mark(&mark);
        }
    }
}

/// Prepares a command to run as the leader of a new process group that dies with the harness.
pub fn isolate(cmd: &mut Command) {
    cmd.process_group(0);
    if let Some(mark) = crate::ledger::group_mark() {
        cmd.env(crate::ledger::OWNER_VAR, mark);
    }
    // SAFETY: prctl and getppid are async-signal-safe; the closure allocates nothing.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGKILL as libc::c_ulong,
                0,
                0,
                0,
            ) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            // The parent may have died between fork and prctl.
            if libc::getppid() == 1 {
                return Err(std::io::Error::other("parent exited"));
            }
            Ok(())
        });
    }
}

/// A program to run.
#[derive(Debug, Clone)]
pub struct ProcessSpec {
    /// The program.
    pub program: OsString,
    /// Its arguments.
    pub args: Vec<OsString>,
    /// Working directory.
    pub cwd: PathBuf,
    /// Variables to set.
    pub env: Vec<(String, String)>,
    /// Inherited variables to remove.
    pub env_remove: Vec<String>,
}

/// How a process ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exit {
    /// It exited with a code.
    Code(i32),
    /// A signal ended it.
    Signal(i32),
    /// It ran past its time limit and its group was killed.
    TimedOut,
    /// The run was cancelled and its group was killed.
    Cancelled,
}

impl Exit {
    /// True for exit code 0.
    pub fn success(&self) -> bool {
        *self == Exit::Code(0)
    }
}

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Exit::Code(c) => write!(f, "exit code {c}"),
            Exit::Signal(s) => write!(f, "killed by signal {s}"),
            Exit::TimedOut => f.write_str("timed out"),
            Exit::Cancelled => f.write_str("cancelled"),
        }
    }
}

/// Runs a program to completion, calling `on_line` for every line it prints, as it prints it.
/// On timeout or cancellation the whole process group gets SIGTERM, then SIGKILL after
/// [`KILL_GRACE`]. Processes the program left behind in its group are killed when it exits.
pub async fn run(
    spec: &ProcessSpec,
    timeout: Duration,
    cancel: &CancellationToken,
    on_line: impl FnMut(Stream, String),
) -> std::io::Result<Exit> {
    Spawned::start(spec, false)?
        .finish(timeout, cancel, on_line)
        .await
}

/// A started program whose lines are read as they come; its process group is killed when it
/// is dropped.
#[derive(Debug)]
pub struct Spawned {
    child: Child,
    guard: GroupGuard,
    rx: mpsc::UnboundedReceiver<(Stream, String)>,
    readers: Vec<tokio::task::JoinHandle<()>>,
    /// Its standard input, when asked for.
    pub stdin: Option<tokio::process::ChildStdin>,
}

impl Spawned {
    /// Starts `spec` in a process group of its own; `stdin` gives it a pipe to write to.
    pub fn start(spec: &ProcessSpec, stdin: bool) -> std::io::Result<Spawned> {
        let mut cmd = Command::new(&spec.program);
        cmd.args(&spec.args)
            .current_dir(&spec.cwd)
            .stdin(if stdin { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for k in &spec.env_remove {
            cmd.env_remove(k);
        }
        cmd.envs(spec.env.iter().map(|(k, v)| (k, v)));
        isolate(&mut cmd);
        let mut child = cmd.spawn()?;
        let guard = GroupGuard::new(child.id());
        let (tx, rx) = mpsc::unbounded_channel();
        let mut readers = Vec::new();
        if let Some(o) = child.stdout.take() {
            readers.push(tokio::spawn(read_lines(o, Stream::Stdout, tx.clone())));
        }
        if let Some(e) = child.stderr.take() {
            readers.push(tokio::spawn(read_lines(e, Stream::Stderr, tx.clone())));
        }
        let stdin = child.stdin.take();
        Ok(Spawned {
            child,
            guard,
            rx,
            readers,
            stdin,
        })
    }

    /// Stops it: SIGTERM to its group, SIGKILL after [`KILL_GRACE`].
    pub async fn terminate(mut self) {
        terminate(&mut self.child, &self.guard).await;
    }

    /// The next line it prints; `None` once both streams are closed.
    pub async fn next_line(&mut self) -> Option<(Stream, String)> {
        self.rx.recv().await
    }

    /// Waits for the end, calling `on_line` for every line; on timeout or cancellation the
    /// whole group gets SIGTERM, then SIGKILL after [`KILL_GRACE`].
    pub async fn finish(
        mut self,
        timeout: Duration,
        cancel: &CancellationToken,
        mut on_line: impl FnMut(Stream, String),
    ) -> std::io::Result<Exit> {
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        let mut lines_open = true;
        let exit = loop {
            tokio::select! {
                line = self.rx.recv(), if lines_open => match line {
                    Some((stream, text)) => on_line(stream, text),
                    None => lines_open = false,
                },
                status = self.child.wait() => {
                    let status = status?;
                    break match (status.code(), std::os::unix::process::ExitStatusExt::signal(&status)) {
                        (Some(code), _) => Exit::Code(code),
                        (None, Some(sig)) => Exit::Signal(sig),
                        (None, None) => Exit::Code(-1),
                    };
                }
                () = &mut deadline => {
                    terminate(&mut self.child, &self.guard).await;
                    break Exit::TimedOut;
                }
                () = cancel.cancelled() => {
                    terminate(&mut self.child, &self.guard).await;
                    break Exit::Cancelled;
                }
            }
        };
        // Whatever the program left running in its group goes with it; that also closes the
        // pipes.
        drop(self.stdin.take());
        drop(self.guard);
        let rx = &mut self.rx;
        let drain = async {
            while let Some((stream, text)) = rx.recv().await {
                on_line(stream, text);
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(2), drain).await;
        for r in self.readers {
            r.abort();
        }
        Ok(exit)
    }
}

async fn terminate(child: &mut Child, guard: &GroupGuard) {
    if let Some(pgid) = guard.pgid() {
        signal_group(pgid, libc::SIGTERM);
        if tokio::time::timeout(KILL_GRACE, child.wait())
            .await
            .is_err()
        {
            signal_group(pgid, libc::SIGKILL);
        }
    }
    let _ = child.wait().await;
}

async fn read_lines(
    out: impl AsyncRead + Unpin,
    stream: Stream,
    tx: mpsc::UnboundedSender<(Stream, String)>,
) {
    let mut reader = BufReader::new(out);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match reader.read_until(b'\n', &mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {
                while buf.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                    buf.pop();
                }
                if tx
                    .send((stream, String::from_utf8_lossy(&buf).into_owned()))
                    .is_err()
                {
                    break;
                }
            }
        }
    }
}

// ---- servers: long-running processes a service description starts ----

/// How many times a server is started on a new port when the port was taken meanwhile.
pub const PORT_ATTEMPTS: usize = 3;
/// How long a server gets to stop by itself before its group is killed.
pub const STOP_GRACE: Duration = Duration::from_secs(5);

/// A running server process; killed with its process group when dropped.
#[derive(Debug)]
pub struct ServiceProcess {
    name: &'static str,
    child: Child,
    stop_signal: i32,
    guard: GroupGuard,
    /// A folder outside the environment's that the server's data lives in, removed on stop.
    owned_dir: Option<PathBuf>,
    /// How long it gets to stop by itself ([`STOP_GRACE`] unless it has more to do on exit).
    grace: Duration,
}

impl ServiceProcess {
    /// Removes `dir` (a folder outside the environment's that the server's data lives in) when
    /// the server stops.
    pub fn owning(mut self, dir: Option<PathBuf>) -> Self {
        self.owned_dir = dir;
        self
    }

    /// Gives it `grace` to stop by itself instead of [`STOP_GRACE`] (a server that writes
    /// something on exit).
    pub fn with_grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// Takes ownership of a started server (leader of its own process group).
    pub fn new(name: &'static str, child: Child, stop_signal: i32) -> Self {
        let guard = GroupGuard::new(child.id());
        ServiceProcess {
            name,
            child,
            stop_signal,
            guard,
            owned_dir: None,
            grace: STOP_GRACE,
        }
    }

    /// The process, to check whether it is still running.
    pub fn child_mut(&mut self) -> &mut Child {
        &mut self.child
    }

    /// Why the server is no longer running, once its process has exited (without waiting for
    /// it: a dead server stays a zombie of ours until it is stopped, so its PID is not reused).
    pub fn exit_note(&self) -> Option<String> {
        let pid = self.child.id()?;
        (!crate::ledger::alive(pid)).then(|| format!("its process {pid} ({}) exited", self.name))
    }

    /// True while the server process has not exited.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Asks the server to stop, then kills its group if it has not stopped within the grace time.
    /// Returns how it exited when it stopped by itself (`None` when it had to be killed, or had
    /// been waited for already).
    pub async fn stop(mut self) -> Option<std::process::ExitStatus> {
        let mut stopped = None;
        if let Some(pid) = self.child.id() {
            // SAFETY: kill has no memory-safety preconditions.
            unsafe {
                libc::kill(pid as i32, self.stop_signal);
            }
            match tokio::time::timeout(self.grace, self.child.wait()).await {
                Ok(status) => stopped = status.ok(),
                Err(_) => {
                    if let Some(pgid) = self.guard.pgid() {
                        signal_group(pgid, libc::SIGKILL);
                    }
                    let _ = self.child.wait().await;
                }
            }
        }
        let _ = self.name;
        drop(self.guard);
        if let Some(d) = self.owned_dir.take() {
            let _ = std::fs::remove_dir_all(d);
        }
        stopped
    }
}

/// A free TCP port on 127.0.0.1 (free when asked; a server may still lose it to a race, which
/// the callers handle by retrying).
pub fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Finds a program on PATH.
pub fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// The user PostgreSQL runs as: `None` to stay as we are; the `postgres` (or `nobody`) user
/// when we are root.
pub fn unprivileged_user() -> Result<Option<(u32, u32)>, String> {
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

/// Runs `cmd` as `user` (uid, gid) when one is given.
pub fn as_user(cmd: &mut Command, user: Option<(u32, u32)>) {
    if let Some((uid, gid)) = user {
        cmd.uid(uid).gid(gid);
    }
}

/// `from` plus `after`, or a century from `from` when that is past what an `Instant` holds:
/// a limit that far away is as good as none, and adding must never panic.
pub fn deadline_after(from: Instant, after: Duration) -> Instant {
    from.checked_add(after)
        .or_else(|| from.checked_add(Duration::from_secs(100 * 365 * 24 * 60 * 60)))
        .unwrap_or(from)
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
    let deadline = deadline_after(Instant::now(), timeout);
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

/// How one server process is started on a free port and checked for readiness.
#[derive(Debug)]
pub struct Serve<'a> {
    /// Service name, for errors.
    pub service: &'static str,
    /// Its log file (stdout and stderr go there); its tail goes into errors.
    pub log: &'a Path,
    /// What the log says when the port was taken meanwhile (then a new port is tried).
    pub port_taken: &'a str,
    /// How long it gets to answer.
    pub timeout: Duration,
    /// The signal that asks it to stop.
    pub stop_signal: i32,
    /// Hands the log file to this (uid, gid) when the server runs as another user.
    pub log_owner: Option<(u32, u32)>,
}

/// Starts a server on a free loopback port with `command(port)` (output to the log), in its own
/// process group, and waits until `ready(port)` answers. A port taken between choosing and
/// binding it is retried on a new one, up to `PORT_ATTEMPTS` times.
pub async fn serve<C, R, Fut>(
    how: Serve<'_>,
    command: C,
    ready: R,
) -> Result<(ServiceProcess, u16), InfraError>
where
    C: Fn(u16) -> Command,
    R: Fn(u16) -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let fail = |m: String, with_log: bool| InfraError {
        stopped: false,
        service: how.service.into(),
        message: m,
        log_tail: if with_log {
            log_tail(how.log, 20)
        } else {
            vec![]
        },
    };
    let mut last = None;
    for _ in 0..PORT_ATTEMPTS {
        let port = free_port().map_err(|e| fail(format!("no free port: {e}"), false))?;
        let logfile = std::fs::File::create(how.log).map_err(|e| fail(e.to_string(), false))?;
        if let Some((uid, gid)) = how.log_owner {
            let _ = std::os::unix::fs::chown(how.log, Some(uid), Some(gid));
        }
        let mut cmd = command(port);
        cmd.stdin(Stdio::null())
            .stdout(
                logfile
                    .try_clone()
                    .map_err(|e| fail(e.to_string(), false))?,
            )
            .stderr(logfile);
        isolate(&mut cmd);
        let child = cmd
            .spawn()
            .map_err(|e| fail(format!("cannot start {}: {e}", how.service), false))?;
        let mut proc = ServiceProcess::new(how.service, child, how.stop_signal);
        match wait_ready(&mut proc.child, how.timeout, || ready(port)).await {
            Ok(()) => return Ok((proc, port)),
            Err(e) => {
                let taken = std::fs::read_to_string(how.log)
                    .unwrap_or_default()
                    .contains(how.port_taken);
                proc.stop().await;
                last = Some(fail(e, true));
                if !taken {
                    break;
                }
            }
        }
    }
    Err(last.unwrap_or_else(|| fail("did not start".into(), false)))
}

/// The first line a program prints for `args` (its stdout, or its stderr when stdout is empty),
/// as version checks need it.
pub fn first_line(program: &Path, args: &[&str]) -> Option<String> {
    let out = std::process::Command::new(program)
        .args(args)
        .output()
        .ok()?;
    let text = if out.stdout.is_empty() {
        out.stderr
    } else {
        out.stdout
    };
    String::from_utf8_lossy(&text)
        .lines()
        .next()
        .map(|l| l.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> ProcessSpec {
        ProcessSpec {
            program: "sh".into(),
            args: vec!["-c".into(), script.into()],
            cwd: std::env::temp_dir(),
            env: vec![],
            env_remove: vec![],
        }
    }

    #[tokio::test]
    async fn streams_lines_of_both_streams() {
        let mut lines = Vec::new();
        let exit = run(
            &sh("echo out; echo err >&2; exit 3"),
            Duration::from_secs(10),
            &CancellationToken::new(),
            |s, l| lines.push((s, l)),
        )
        .await
        .expect("runs");
        assert_eq!(exit, Exit::Code(3));
        lines.sort_by_key(|(s, _)| *s == Stream::Stderr);
        assert_eq!(
            lines,
            vec![
                (Stream::Stdout, "out".to_string()),
                (Stream::Stderr, "err".to_string())
            ]
        );
    }

    #[tokio::test]
    async fn timeout_kills_the_group() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pidfile = dir.path().join("pid");
        let script = format!("sleep 300 & echo $! > {}; wait", pidfile.display());
        let exit = run(
            &sh(&script),
            Duration::from_secs(3),
            &CancellationToken::new(),
            |_, _| {},
        )
        .await
        .expect("runs");
        assert_eq!(exit, Exit::TimedOut);
        let pid: i32 = std::fs::read_to_string(&pidfile)
            .expect("pid")
            .trim()
            .parse()
            .expect("number");
        // The signal is sent when run() returns; dying takes the kernel a moment.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while alive(pid) && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(!alive(pid), "background child {pid} survived the timeout");
    }

    #[tokio::test]
    async fn cancellation_kills_the_whole_group_also_what_ignores_sigterm() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pids = dir.path().join("pids");
        let cancel = CancellationToken::new();
        let c = cancel.clone();
        let file = pids.clone();
        tokio::spawn(async move {
            while std::fs::read_to_string(&file).map_or(0, |s| s.lines().count()) < 2 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            c.cancel();
        });
        // The shell and its child both ignore SIGTERM: only the SIGKILL after the grace ends them.
        let script = format!(
            "trap '' TERM; sleep 300 & echo $! >> {0}; echo $$ >> {0}; wait",
            pids.display()
        );
        let exit = run(&sh(&script), Duration::from_secs(60), &cancel, |_, _| {})
            .await
            .expect("runs");
        assert_eq!(exit, Exit::Cancelled);
        let pids: Vec<i32> = std::fs::read_to_string(&pids)
            .expect("pids")
            .lines()
            .map(|l| l.trim().parse().expect("number"))
            .collect();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while pids.iter().any(|p| alive(*p)) && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        for pid in pids {
            assert!(
                !alive(pid),
                "process {pid} of the group survived the cancellation"
            );
        }
    }

    /// True when the process exists and is not a zombie.
    pub(crate) fn alive(pid: i32) -> bool {
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Ok(stat) => !stat
                .rsplit(')')
                .next()
                .is_some_and(|rest| rest.trim_start().starts_with('Z')),
            Err(_) => false,
        }
    }
}
