//! `harness env up | down | list`, `harness run --env NAME | --keep-env`: environments kept
//! running between runs (`crate::kept` keeps their books).
//!
//! `env up` starts a process of its own, `harness env serve` (hidden), in a new session: it
//! starts the environment, prints its record on its standard output once it is up, and from then
//! on serves runs on its socket, one at a time, until `env down`, its idle timeout, or a service
//! of it stopping. A run sent to it (`run --env NAME`) hands over its standard output and error,
//! its folder, command line and environment; the kept environment's process runs it as `harness
//! run` would, on its environment, and answers with the exit code.

use std::io::Write as _;
use std::os::fd::{AsRawFd as _, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::Parser as _;
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
use tokio_util::sync::CancellationToken;

use super::{Cli, ColorChoice, Command, EnvCommand, EnvUpArgs, RunArgs, runtime, select};
use crate::backend::{Environment, Resolved};
use crate::config::{self, BackendChoice, Project};
use crate::events::Events;
use crate::exit;
use crate::kept::{self, Hold, HoldError, Record, Reply, Request};
use crate::report::{self, Style};
use crate::runner;

/// How long a run may take to hand itself over once connected.
const HANDOVER: Duration = Duration::from_secs(10);

/// How long `env down` waits for an environment to stop before it kills it.
const STOP_WAIT: Duration = Duration::from_secs(120);

/// `harness env ...`.
pub(super) fn env(project: &Project, command: EnvCommand, style: Style) -> i32 {
    match command {
        EnvCommand::Up(args) => up(project, &args, style),
        EnvCommand::Down { names, all } => down(&names, all),
        EnvCommand::List { json } => list(json),
        EnvCommand::Serve(args) => serve(project, &args, style),
    }
}

/// `harness env up`: starts the kept environment and prints where its services are.
fn up(project: &Project, args: &EnvUpArgs, style: Style) -> i32 {
    match start(project, args, style) {
        Ok(record) => {
            let p = kept::paths(&record.name);
            println!(
                "kept environment `{}` is up (pid {}), for {}",
                record.name,
                record.pid,
                record.project.display()
            );
            for (service, endpoint) in &record.endpoints {
                println!("  {service:<14} {endpoint}");
            }
            println!(
                "variables of the contract (with the services' passwords): {}",
                p.endpoints.display()
            );
            println!(
                "run on it:  harness run --env {} [SCENARIO...]",
                record.name
            );
            println!("stop it:    harness env down {}", record.name);
            if record.idle_timeout_secs > 0 {
                println!(
                    "it stops by itself after {} without a run",
                    humantime::format_duration(Duration::from_secs(record.idle_timeout_secs))
                );
            }
            exit::OK
        }
        Err(code) => code,
    }
}

/// Starts the kept environment `args.name` for `project` and waits until it is up, showing its
/// progress; its record, or the exit code of the failure (said on stderr).
fn start(project: &Project, args: &EnvUpArgs, style: Style) -> Result<Record, i32> {
    if let Err(e) = kept::check_name(&args.name) {
        eprintln!("error: --name: {e}");
        return Err(exit::BAD_INPUT);
    }
    if kept::is_up(&args.name) {
        let who = kept::find(&args.name)
            .map(|r| format!(" (pid {}, for {})", r.pid, r.project.display()))
            .unwrap_or_default();
        eprintln!(
            "error: a kept environment named `{}` is up already{who}: `harness run --env {0}` runs on it, `harness env down {0}` stops it",
            args.name
        );
        return Err(exit::BAD_INPUT);
    }
    // Bad input is said here, before anything starts.
    if let Err(e) = select(project, &args.scenarios) {
        eprintln!("error: {e}");
        return Err(exit::BAD_INPUT);
    }
    if let Some(b) = &args.backend
        && let Err(e) = BackendChoice::parse(b)
    {
        eprintln!("error: --backend: {e}");
        return Err(exit::BAD_INPUT);
    }
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("error: cannot find the harness program: {e}");
            return Err(exit::INFRA);
        }
    };
    let mut cmd = tokio::process::Command::new(exe);
    cmd.arg("-C")
        .arg(&project.root)
        .args(["--color", if style.color { "always" } else { "never" }])
        .args(["env", "serve"])
        .args(args.to_args())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        // Its own run, with its own ledger: nothing of this command's owns it.
        .env_remove(crate::ledger::OWNER_VAR);
    // SAFETY: setsid is async-signal-safe; the child only calls it before exec.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    let Some(rt) = runtime() else {
        return Err(exit::INFRA);
    };
    rt.block_on(async {
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => {
                eprintln!("error: cannot start the kept environment's process: {e}");
                return Err(exit::INFRA);
            }
        };
        let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
            return Err(exit::INFRA);
        };
        // Its progress, shown as it comes, until it stops talking to this terminal.
        let progress = tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                eprintln!("{line}");
            }
        });
        let mut ready = BufReader::new(stdout).lines();
        let mut interrupted = false;
        let line = loop {
            tokio::select! {
                line = ready.next_line() => break line.ok().flatten(),
                _ = tokio::signal::ctrl_c(), if !interrupted => {
                    interrupted = true;
                    eprintln!("harness: interrupted; stopping the environment's services");
                    if let Some(pid) = child.id() {
                        // SAFETY: kill has no memory preconditions; pid is our live child.
                        unsafe { libc::kill(pid as i32, libc::SIGTERM) };
                    }
                }
            }
        };
        let record = line.and_then(|l| serde_json::from_str::<Record>(&l).ok());
        // Its output ends with its last line here, unless a process it started still holds
        // the pipe: that one is not waited for.
        let _ = tokio::time::timeout(Duration::from_millis(500), progress).await;
        match record {
            Some(r) if !interrupted => Ok(r),
            _ => {
                let status = child.wait().await.ok().and_then(|s| s.code());
                Err(if interrupted {
                    exit::INTERRUPTED
                } else {
                    status.filter(|c| *c != 0).unwrap_or(exit::INFRA)
                })
            }
        }
    })
}

/// `harness env down`: stops the named kept environments (or all), waiting until they are gone.
pub(super) fn down(names: &[String], all: bool) -> i32 {
    let names: Vec<String> = if all {
        kept::list().0.into_iter().map(|r| r.name).collect()
    } else if names.is_empty() {
        vec![kept::DEFAULT_NAME.to_string()]
    } else {
        names.to_vec()
    };
    let mut code = exit::OK;
    for name in &names {
        if let Err(e) = kept::check_name(name) {
            eprintln!("error: {e}");
            code = exit::BAD_INPUT;
            continue;
        }
        let Some(pid) = kept::holder(name) else {
            eprintln!("error: no kept environment named `{name}` is up");
            code = exit::BAD_INPUT;
            continue;
        };
        // SAFETY: kill has no memory preconditions; the lock is held, so pid is still the
        // environment's process and not a reused number.
        unsafe { libc::kill(pid as i32, libc::SIGTERM) };
        let t0 = Instant::now();
        while kept::is_up(name) && t0.elapsed() < STOP_WAIT {
            std::thread::sleep(Duration::from_millis(100));
        }
        if kept::is_up(name) {
            eprintln!(
                "harness: `{name}` did not stop within {}s; killing it",
                STOP_WAIT.as_secs()
            );
            // SAFETY: as above.
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
            while kept::is_up(name) {
                std::thread::sleep(Duration::from_millis(100));
            }
            super::sweep_dead_runs();
        }
        kept::find(name);
        println!("stopped kept environment `{name}`");
    }
    code
}

/// `harness env list`: the kept environments that are up.
pub(super) fn list(json: bool) -> i32 {
    let (up, starting) = kept::list();
    if json {
        println!(
            "{}",
            serde_json::json!({"environments": up, "starting": starting})
        );
        return exit::OK;
    }
    if up.is_empty() && starting.is_empty() {
        println!("no kept environment is up");
        return exit::OK;
    }
    let now = kept::now();
    let ago = |t: u64| humantime::format_duration(Duration::from_secs(now.saturating_sub(t)));
    for r in &up {
        let state = match &r.busy {
            Some(b) => format!("running a run (pid {}) for {}", b.pid, ago(b.since)),
            None if r.idle_timeout_secs > 0 => format!(
                "idle for {}, stops after {}",
                ago(r.last_used),
                humantime::format_duration(Duration::from_secs(r.idle_timeout_secs))
            ),
            None => format!("idle for {}", ago(r.last_used)),
        };
        println!(
            "{}  pid {}  {}  up {}  {state}\n  project {}\n  services {}",
            r.name,
            r.pid,
            r.backend,
            ago(r.started),
            r.project.display(),
            r.services.join(", ")
        );
    }
    for name in &starting {
        println!("{name}  starting");
    }
    exit::OK
}

/// `harness run --env NAME` / `--keep-env`: sends the run to the kept environment (starting it
/// first with `--keep-env`) and gives its exit code.
pub(super) fn run_client(
    root: &Path,
    args: &RunArgs,
    style: Style,
    load: impl FnOnce() -> Result<Project, i32>,
) -> i32 {
    let name = args
        .env
        .clone()
        .unwrap_or_else(|| kept::DEFAULT_NAME.to_string());
    if let Err(e) = kept::check_name(&name) {
        eprintln!("error: --env: {e}");
        return exit::BAD_INPUT;
    }
    if args.repeat.is_some() {
        eprintln!(
            "error: --repeat runs each round on fresh environments; drop --env and --keep-env"
        );
        return exit::BAD_INPUT;
    }
    let record = match kept::find(&name) {
        Some(r) => r,
        None if args.keep_env && !kept::is_up(&name) => {
            let up = EnvUpArgs {
                name: name.clone(),
                scenarios: args.scenarios.clone(),
                backend: args.backend.clone(),
                spark_mode: args.spark_mode,
                idle_timeout: humantime::Duration::from(DEFAULT_IDLE),
            };
            let project = match load() {
                Ok(p) => p,
                Err(code) => return code,
            };
            match start(&project, &up, style) {
                Ok(r) => r,
                Err(code) => return code,
            }
        }
        None if kept::is_up(&name) => {
            eprintln!(
                "error: the kept environment `{name}` is still starting; run again once `harness env up` is done"
            );
            return exit::INFRA;
        }
        None => {
            eprintln!(
                "error: no kept environment named `{name}` is up: `harness env up --name {name}` starts one (or add --keep-env){}",
                last_log(&name)
            );
            return exit::BAD_INPUT;
        }
    };
    if record.project != root {
        eprintln!(
            "error: the kept environment `{name}` was started for {}, not {}",
            record.project.display(),
            root.display()
        );
        return exit::BAD_INPUT;
    }
    if args.jobs.0 != Some(1) {
        eprintln!(
            "note: -j does not apply on a kept environment: it runs the scenarios one at a time"
        );
    }
    let Some(rt) = runtime() else {
        return exit::INFRA;
    };
    rt.block_on(send_run(&name))
}

/// Idle time after which a kept environment stops by itself, unless `--idle-timeout` says.
pub const DEFAULT_IDLE: Duration = Duration::from_secs(30 * 60);

/// " (its last words: LOG)" when the environment `name` left a log.
fn last_log(name: &str) -> String {
    let log = kept::paths(name).log;
    if log.is_file() {
        format!("; the log of the last one of that name: {}", log.display())
    } else {
        String::new()
    }
}

/// Sends this process's run to the kept environment `name` and waits for its exit code; Ctrl-C
/// asks it to stop the run, a second one leaves at once.
async fn send_run(name: &str) -> i32 {
    let paths = kept::paths(name);
    let stream = match tokio::net::UnixStream::connect(&paths.socket).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!(
                "error: cannot reach the kept environment `{name}` at {}: {e}",
                paths.socket.display()
            );
            return exit::INFRA;
        }
    };
    let request = Request {
        cwd: std::env::current_dir().unwrap_or_else(|_| PathBuf::from(".")),
        args: std::env::args().collect(),
        env: std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .collect(),
        pid: std::process::id(),
    };
    let Ok(mut line) = serde_json::to_string(&request) else {
        return exit::INFRA;
    };
    line.push('\n');
    let fds = [std::io::stdout().as_raw_fd(), std::io::stderr().as_raw_fd()];
    let sent = async {
        stream.writable().await?;
        stream.try_io(tokio::io::Interest::WRITABLE, || {
            kept::send_fds(stream.as_raw_fd(), &fds)
        })
    };
    // A refusal comes before the request is read: what failed to go is said only when no
    // answer explains it.
    let mut failed = sent.await.err();
    let (read, mut write) = stream.into_split();
    if failed.is_none() {
        failed = write.write_all(line.as_bytes()).await.err();
    }
    let mut replies = BufReader::new(read).lines();
    let mut interrupted = false;
    loop {
        tokio::select! {
            line = replies.next_line() => {
                let reply = line.ok().flatten().and_then(|l| serde_json::from_str::<Reply>(&l).ok());
                match reply {
                    Some(Reply::Accepted) => {}
                    Some(Reply::Refused { message, code }) => {
                        eprintln!("error: {message}");
                        return code;
                    }
                    Some(Reply::Exit { code }) => return code,
                    None if let Some(e) = &failed => {
                        eprintln!("error: cannot hand the run to the kept environment `{name}`: {e}");
                        return exit::INFRA;
                    }
                    None => {
                        eprintln!(
                            "error: the kept environment `{name}` stopped during the run; its log: {}",
                            paths.log.display()
                        );
                        return if interrupted { exit::INTERRUPTED } else { exit::INFRA };
                    }
                }
            }
            _ = tokio::signal::ctrl_c() => {
                if interrupted {
                    return exit::INTERRUPTED;
                }
                interrupted = true;
                let _ = write.write_all(format!("{}\n", kept::CANCEL).as_bytes()).await;
            }
        }
    }
}

/// `harness env serve` (hidden): the kept environment's own process.
fn serve(project: &Project, args: &EnvUpArgs, style: Style) -> i32 {
    let hold = match Hold::take(&args.name) {
        Ok(h) => h,
        Err(HoldError::Taken) => {
            eprintln!(
                "error: a kept environment named `{}` is up already",
                args.name
            );
            return exit::BAD_INPUT;
        }
        Err(HoldError::Io(e)) => {
            eprintln!(
                "error: cannot keep an environment in {}: {e}",
                kept::dir().display()
            );
            return exit::INFRA;
        }
    };
    let selected = match select(project, &args.scenarios) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::BAD_INPUT;
        }
    };
    let choice = match args.backend.as_deref().map(BackendChoice::parse) {
        None => project.settings.backend,
        Some(Ok(c)) => c,
        Some(Err(e)) => {
            eprintln!("error: --backend: {e}");
            return exit::BAD_INPUT;
        }
    };
    let Some(rt) = runtime() else {
        return exit::INFRA;
    };
    let own_mark = std::env::var(crate::ledger::OWNER_VAR).ok();
    rt.block_on(async {
        let cancel = CancellationToken::new();
        if let Err(e) = crate::signals::install(cancel.clone()) {
            eprintln!("error: cannot install signal handlers: {e}");
            return exit::INFRA;
        }
        let backend = crate::backend::resolve(choice).await;
        let opts = runner::RunOptions {
            policy: crate::snapshot::golden::WritePolicy::Nothing,
            report_dir: project.settings.report_dir.clone(),
            task_jobs: project.settings.task_jobs,
            retries: 0,
            jobs: Some(1),
            backend: backend.clone(),
            spark_mode: args.spark_mode,
        };
        let services = runner::plan::plan(project, &selected, opts.spark_mode, opts.task_jobs)
            .services;
        let env_dir = match crate::ledger::make_dir(&std::env::temp_dir(), "harness-env-") {
            Ok(d) => d,
            Err(e) => {
                eprintln!("error: cannot create a temporary folder: {e}");
                return exit::INFRA;
            }
        };
        let (events, rx) = Events::channel();
        let view = report::terminal::spawn(rx, style);
        let started = tokio::select! {
            env = Environment::start(&services, &project.settings, backend.kind, &env_dir, &events) => Some(env),
            () = cancel.cancelled() => None,
        };
        let env = match started {
            Some(Ok(env)) => env,
            Some(Err(e)) => {
                drop(events);
                let _ = view.await;
                eprintln!("error: {e}");
                return exit::INFRA;
            }
            None => {
                drop(events);
                let _ = view.await;
                if let Some(l) = crate::ledger::current() {
                    l.kill_own();
                }
                let _ = std::fs::remove_dir_all(&env_dir);
                return exit::INTERRUPTED;
            }
        };
        let warmed = tokio::select! {
            w = runner::warm(project, &selected, &opts, &env, &events) => w,
            () = cancel.cancelled() => Ok(()),
        };
        drop(events);
        let _ = view.await;
        if let Err(e) = warmed {
            eprintln!("error: {e}");
            env.stop().await;
            return exit::INFRA;
        }
        if cancel.is_cancelled() {
            env.stop().await;
            return exit::INTERRUPTED;
        }
        let mut record = Record {
            name: args.name.clone(),
            pid: std::process::id(),
            project: project.root.clone(),
            backend: backend.kind.name().to_string(),
            services: env.started.iter().map(|r| r.kind().name().to_string()).collect(),
            endpoints: env
                .started
                .iter()
                .map(|r| (r.kind().name().to_string(), r.endpoint()))
                .collect(),
            idle_timeout_secs: Duration::from(args.idle_timeout).as_secs(),
            started: kept::now(),
            last_used: kept::now(),
            busy: None,
            settings_digest: settings_digest(&project.root),
        };
        let listener = match bind(&hold, &env, &record) {
            Ok(l) => l,
            Err(e) => {
                eprintln!("error: {e}");
                env.stop().await;
                return exit::INFRA;
            }
        };
        // Up: the record tells `env up` so, and the terminal is let go of.
        let mut out = std::io::stdout();
        let _ = writeln!(
            out,
            "{}",
            serde_json::to_string(&record).unwrap_or_default()
        );
        let _ = out.flush();
        let log = match Output::to_log(&hold.paths().log) {
            Ok(l) => l,
            Err(e) => {
                env.stop().await;
                let _ = writeln!(std::io::stderr(), "error: cannot open the log: {e}");
                return exit::INFRA;
            }
        };
        let server = Server {
            name: &args.name,
            env: &env,
            backend: &backend,
            own_mark: own_mark.as_deref(),
            log: &log,
        };
        server.serve(&hold, &mut record, listener, &cancel).await;
        env.stop().await;
        log.say("stopped");
        exit::OK
    })
}

/// Binds the kept environment's socket and writes its record and the contract's variables.
fn bind(
    hold: &Hold,
    env: &Environment,
    record: &Record,
) -> Result<tokio::net::UnixListener, String> {
    let p = hold.paths();
    hold.write_endpoints(&env.task_env())
        .map_err(|e| format!("cannot write {}: {e}", p.endpoints.display()))?;
    let listener = tokio::net::UnixListener::bind(&p.socket)
        .map_err(|e| format!("cannot listen on {}: {e}", p.socket.display()))?;
    hold.write_record(record)
        .map_err(|e| format!("cannot write {}: {e}", p.record.display()))?;
    Ok(listener)
}

/// A digest of the project's harness.toml, to tell when it changed under a kept environment.
fn settings_digest(root: &Path) -> String {
    use sha2::Digest as _;
    let text = std::fs::read(root.join("harness.toml")).unwrap_or_default();
    sha2::Sha256::digest(&text)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Where the kept environment's process writes: its log, or a run's terminal while it runs one.
struct Output {
    log: std::fs::File,
}

impl Output {
    /// Points standard output and error at the log (created anew).
    fn to_log(path: &Path) -> std::io::Result<Output> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .open(path)?;
        let out = Output { log };
        out.restore();
        Ok(out)
    }

    /// Standard output and error back to the log.
    fn restore(&self) {
        let _ = std::io::stdout().flush();
        let _ = std::io::stderr().flush();
        redirect(&[self.log.as_raw_fd(), self.log.as_raw_fd()]);
    }

    /// A line in the log.
    fn say(&self, text: &str) {
        let mut log = &self.log;
        let _ = writeln!(
            log,
            "{} {text}",
            humantime::format_rfc3339_seconds(std::time::SystemTime::now())
        );
    }
}

/// Makes `fds[0]` and `fds[1]` this process's standard output and error.
fn redirect(fds: &[std::os::fd::RawFd; 2]) {
    for (fd, target) in fds.iter().zip([1, 2]) {
        // SAFETY: dup2 has no memory preconditions; on failure the old descriptor stays.
        unsafe { libc::dup2(*fd, target) };
    }
}

/// The kept environment's process once its environment is up.
struct Server<'a> {
    name: &'a str,
    env: &'a Environment,
    backend: &'a Resolved,
    /// This process's own owner mark, which runs keep over the caller's.
    own_mark: Option<&'a str>,
    log: &'a Output,
}

/// A run in progress: its exit code and the connection to answer on.
type Running<'a> = std::pin::Pin<
    Box<dyn std::future::Future<Output = (i32, tokio::net::unix::OwnedWriteHalf)> + 'a>,
>;

impl<'a> Server<'a> {
    /// Serves runs one at a time until cancelled, idle for the timeout, or a service stops.
    async fn serve(
        &self,
        hold: &Hold,
        record: &mut Record,
        listener: tokio::net::UnixListener,
        cancel: &CancellationToken,
    ) {
        let idle = Duration::from_secs(record.idle_timeout_secs);
        let mut idle_since = tokio::time::Instant::now();
        let mut running: Option<Running<'_>> = None;
        let mut stopping = false;
        loop {
            let deadline = idle_since
                + if idle.is_zero() {
                    Duration::from_secs(86_400 * 365)
                } else {
                    idle
                };
            tokio::select! {
                done = async { running.as_mut().expect("guarded").await }, if running.is_some() => {
                    running = None;
                    let (code, mut conn) = done;
                    self.log.restore();
                    record.busy = None;
                    record.last_used = kept::now();
                    let _ = hold.write_record(record);
                    let reply = serde_json::to_string(&Reply::Exit { code }).unwrap_or_default();
                    let _ = conn.write_all(format!("{reply}\n").as_bytes()).await;
                    idle_since = tokio::time::Instant::now();
                    self.log.say(&format!("run ended with exit code {code}"));
                    if stopping {
                        break;
                    }
                }
                conn = listener.accept(), if !stopping => {
                    let Ok((stream, _)) = conn else { continue };
                    match &record.busy {
                        Some(b) => refuse(stream, format!(
                            "the kept environment `{}` is running another run (pid {}); it runs one at a time",
                            self.name, b.pid
                        ), exit::INFRA).await,
                        None => {
                            // A caller that connects and says nothing is not waited for long.
                            let begun = tokio::time::timeout(HANDOVER, self.begin(stream, cancel)).await;
                            if let Ok(Some((run, pid))) = begun {
                                record.busy = Some(kept::Busy { pid, since: kept::now() });
                                let _ = hold.write_record(record);
                                running = Some(run);
                            }
                        }
                    }
                }
                () = tokio::time::sleep_until(deadline), if running.is_none() && !idle.is_zero() => {
                    self.log.say(&format!("no run for {}: stopping", humantime::format_duration(idle)));
                    break;
                }
                () = cancel.cancelled(), if !stopping => {
                    self.log.say("asked to stop");
                    if running.is_none() {
                        break;
                    }
                    // The run in progress sees the same cancellation and ends first.
                    stopping = true;
                }
                died = self.env.died(), if running.is_none() => {
                    self.log.say(&format!("stopping: {died}"));
                    break;
                }
            }
        }
    }

    /// Takes a run from `stream`: its descriptors become this process's output, its folder and
    /// environment this process's, and the run starts. `None` when the request is unusable
    /// (answered on the stream).
    async fn begin(
        &self,
        stream: tokio::net::UnixStream,
        cancel: &CancellationToken,
    ) -> Option<(Running<'a>, u32)> {
        let fds = loop {
            if stream.readable().await.is_err() {
                return None;
            }
            match stream.try_io(tokio::io::Interest::READABLE, || {
                kept::recv_fds(stream.as_raw_fd())
            }) {
                Ok(fds) => break fds,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                Err(_) => return None,
            }
        };
        let (read, write) = stream.into_split();
        let mut lines = BufReader::new(read).lines();
        let request = match lines.next_line().await {
            Ok(Some(l)) => serde_json::from_str::<Request>(&l).ok(),
            _ => None,
        };
        let (Some(request), [out, err]) = (request, <[OwnedFd; 2]>::try_from(fds).ok()?) else {
            return None;
        };
        let mut write = write;
        let accepted = serde_json::to_string(&Reply::Accepted).unwrap_or_default();
        if write
            .write_all(format!("{accepted}\n").as_bytes())
            .await
            .is_err()
        {
            return None;
        }
        // The run's own cancellation: the caller's Ctrl-C (or its going away) or this process
        // being stopped.
        let run_cancel = cancel.child_token();
        let watch = run_cancel.clone();
        tokio::spawn(async move {
            loop {
                match lines.next_line().await {
                    Ok(Some(l)) if l.trim() != kept::CANCEL => continue,
                    _ => break,
                }
            }
            watch.cancel();
        });
        let _ = std::io::stdout().flush();
        let _ = std::io::stderr().flush();
        redirect(&[out.as_raw_fd(), err.as_raw_fd()]);
        drop((out, err));
        self.adopt(&request);
        self.log.say(&format!(
            "run from pid {}: {}",
            request.pid,
            request.args.join(" ")
        ));
        let pid = request.pid;
        let (name, env, backend) = (self.name.to_string(), self.env, self.backend.clone());
        let run: Running<'a> = Box::pin(async move {
            let code = run_request(&name, &request, env, &backend, &run_cancel).await;
            let _ = std::io::stdout().flush();
            let _ = std::io::stderr().flush();
            (code, write)
        });
        Some((run, pid))
    }

    /// Takes the run's folder and environment variables as this process's (keeping this
    /// process's owner mark, so that what the run starts is this process's to sweep).
    fn adopt(&self, request: &Request) {
        let _ = std::env::set_current_dir(&request.cwd);
        let keep: Vec<(String, String)> = self
            .own_mark
            .map(|m| vec![(crate::ledger::OWNER_VAR.to_string(), m.to_string())])
            .unwrap_or_default();
        let old: Vec<std::ffi::OsString> = std::env::vars_os().map(|(k, _)| k).collect();
        // SAFETY: this runs between runs, on the thread that serves them: no run is in
        // progress, so nothing of this process spawns a child or reads the environment outside
        // std's own lock while it changes.
        unsafe {
            for k in old {
                std::env::remove_var(k);
            }
            for (k, v) in request.env.iter().chain(&keep) {
                if !k.is_empty() && !k.contains('=') && !k.contains('\0') && !v.contains('\0') {
                    std::env::set_var(k, v);
                }
            }
        }
    }
}

/// Answers a run that cannot be taken, with the exit code it gives.
async fn refuse(stream: tokio::net::UnixStream, message: String, code: i32) {
    let mut stream = stream;
    let reply = serde_json::to_string(&Reply::Refused { message, code }).unwrap_or_default();
    let _ = stream.write_all(format!("{reply}\n").as_bytes()).await;
}

/// Runs what the request's command line asks, as `harness run` would, on `env`.
async fn run_request(
    name: &str,
    request: &Request,
    env: &Environment,
    backend: &Resolved,
    cancel: &CancellationToken,
) -> i32 {
    let cli = match Cli::try_parse_from(&request.args) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return exit::BAD_INPUT;
        }
    };
    let style = Style::detect(match cli.color {
        ColorChoice::Auto => None,
        ColorChoice::Always => Some(true),
        ColorChoice::Never => Some(false),
    });
    let Command::Run(args) = cli.command else {
        eprintln!("error: a kept environment runs `harness run` only");
        return exit::BAD_INPUT;
    };
    if args.env.as_deref().unwrap_or(kept::DEFAULT_NAME) != name {
        eprintln!("error: this is the kept environment `{name}`");
        return exit::BAD_INPUT;
    }
    let start = cli.dir.clone().unwrap_or_else(|| request.cwd.clone());
    let start = std::fs::canonicalize(&start).unwrap_or(start);
    let root = config::find_root(&start);
    let record = kept::find(name);
    if let Some(r) = &record
        && r.project != root
    {
        eprintln!(
            "error: the kept environment `{name}` was started for {}, not {}",
            r.project.display(),
            root.display()
        );
        return exit::BAD_INPUT;
    }
    if let Some(r) = &record
        && r.settings_digest != settings_digest(&root)
    {
        eprintln!(
            "warning: harness.toml changed since the kept environment `{name}` started; its services keep the settings they started with (`harness env down {name}` and up again to apply the change)"
        );
    }
    let project = match config::load(&root, &crate::services::rules) {
        Ok(p) => p,
        Err(errors) => return super::config_failure(&errors.0, style),
    };
    super::run::run_kept(&project, &args, style, env, backend, cancel).await
}

/// `harness env up` and `env serve` as command-line arguments again.
impl EnvUpArgs {
    fn to_args(&self) -> Vec<String> {
        let mut a = vec![
            "--name".to_string(),
            self.name.clone(),
            "--idle-timeout".to_string(),
            self.idle_timeout.to_string(),
        ];
        if let Some(b) = &self.backend {
            a.extend(["--backend".to_string(), b.clone()]);
        }
        if let Some(m) = self.spark_mode {
            a.extend(["--spark-mode".to_string(), m.name().to_string()]);
        }
        a.push("--".to_string());
        a.extend(self.scenarios.iter().cloned());
        a
    }
}
