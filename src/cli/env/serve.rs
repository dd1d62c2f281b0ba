//! The kept environment's own process (`harness env serve`, hidden): it starts the
//! environment, tells `env up` it is up, and serves the runs sent to it, one at a time, each on
//! the terminal of the `harness run` that sent it.

use std::io::Write as _;
use std::os::fd::{AsRawFd as _, OwnedFd};
use std::path::Path;
use std::time::Duration;

use clap::Parser as _;
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
use tokio_util::sync::CancellationToken;

use super::super::{Cli, ColorChoice, Command, EnvUpArgs, runtime, select};
use crate::backend::{Environment, Resolved};
use crate::config::{self, BackendChoice, Project};
use crate::events::Events;
use crate::exit;
use crate::kept::{self, Hold, HoldError, Record, Reply, Request};
use crate::report::{self, Style};
use crate::runner;

/// How long a run may take to hand itself over once connected.
const HANDOVER: Duration = Duration::from_secs(10);

/// `harness env serve` (hidden): the kept environment's own process.
pub(super) fn serve(project: &Project, args: &EnvUpArgs, style: Style) -> i32 {
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
        Err(errors) => return super::super::config_failure(&errors.0, style),
    };
    super::super::run::run_kept(&project, &args, style, env, backend, cancel).await
}
