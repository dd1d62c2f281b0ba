//! `harness env up | down | list`, `harness run --env NAME | --keep-env`: environments kept
//! running between runs (`crate::kept` keeps their books).
//!
//! `env up` starts a process of its own, `harness env serve` (hidden), in a new session: it
//! starts the environment, prints its record on its standard output once it is up, and from then
//! on serves runs on its socket, one at a time, until `env down`, its idle timeout, or a service
//! of it stopping. A run sent to it (`run --env NAME`) hands over its standard output and error,
//! its folder, command line and environment; the kept environment's process runs it as `harness
//! run` would, on its environment, and answers with the exit code.

use std::os::fd::AsRawFd as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};

use super::{EnvCommand, EnvUpArgs, RunArgs, runtime, select};
use crate::config::{BackendChoice, Project};
use crate::exit;
use crate::kept::{self, Record, Reply, Request};
use crate::report::Style;

mod serve;

/// How long `env down` waits for an environment to stop before it kills it.
const STOP_WAIT: Duration = Duration::from_secs(120);

/// `harness env ...`.
pub(super) fn env(project: &Project, command: EnvCommand, style: Style) -> i32 {
    match command {
        EnvCommand::Up(args) => up(project, &args, style),
        EnvCommand::Down { names, all } => down(&names, all),
        EnvCommand::List { json } => list(json),
        EnvCommand::Serve(args) => serve::serve(project, &args, style),
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
                idle_timeout: crate::kept::DEFAULT_IDLE
                    .parse()
                    .expect("the default idle timeout is a duration"),
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
