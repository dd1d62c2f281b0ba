//! Fault trials: a run that ends normally, fails, or is hit by SIGINT, SIGTERM or SIGKILL at a
//! random point; a hung task whose grandchild ignores SIGTERM and left its session; a service
//! killed while a task runs. After each trial the processes, folders, ledgers and containers the
//! run left are counted: the goal is zero, the SIGKILL trials after the next harness command.
//!
//! `HARNESS_FAULT_TRIALS=N` sets the trials per fault (3 by default, the figures of
//! docs/reliability.md come from 20); each trial prints a line to stderr (`--no-capture`).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{Project, live_processes, require_servers, wait_exit, wait_for};

/// Trials per fault: `HARNESS_FAULT_TRIALS`, else `default`.
fn trials(default: usize) -> usize {
    std::env::var("HARNESS_FAULT_TRIALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A small random number generator (xorshift), seeded from the clock; the seed is printed so a
/// failing trial can be replayed.
struct Rng(u64);

impl Rng {
    fn new() -> Rng {
        let seed = std::env::var("HARNESS_FAULT_SEED")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos() as u64)
                    .unwrap_or(1)
                    | 1
            });
        eprintln!("fault trials: seed {seed} (HARNESS_FAULT_SEED replays it)");
        Rng(seed)
    }

    /// A number in [0, 1).
    fn unit(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// A project whose runs are told apart by a variable every process they start inherits, with a
/// ledger folder of its own, so that what a trial leaves can be counted exactly.
struct Trials {
    p: Project,
    backend: String,
    ledger: PathBuf,
    tag: String,
    n: usize,
}

/// What one trial left.
#[derive(Debug, Default, PartialEq)]
struct Left {
    processes: Vec<String>,
    folders: Vec<PathBuf>,
    ledgers: Vec<PathBuf>,
    containers: Vec<String>,
}

impl Left {
    fn total(&self) -> usize {
        self.processes.len() + self.folders.len() + self.ledgers.len() + self.containers.len()
    }
}

impl Trials {
    fn new(p: Project) -> Trials {
        let ledger = p.path().join(".ledger");
        Trials {
            backend: "local".into(),
            p,
            ledger,
            tag: String::new(),
            n: 0,
        }
    }

    /// The harness command of the next trial.
    fn command(&mut self, args: &[&str]) -> Command {
        self.n += 1;
        self.tag = format!("{}-{}", std::process::id(), self.n);
        let mut cmd = self.p.command(args);
        let stderr = std::fs::File::create(self.stderr_file()).expect("stderr file");
        cmd.env("HARNESS_LEDGER_DIR", &self.ledger)
            .env("FAULT_TRIAL", &self.tag)
            .stdout(Stdio::null())
            .stderr(stderr);
        cmd
    }

    /// Where the current trial's harness writes its stderr.
    fn stderr_file(&self) -> PathBuf {
        self.p.path().join("stderr.txt")
    }

    /// The current trial's stderr.
    fn stderr(&self) -> String {
        std::fs::read_to_string(self.stderr_file()).unwrap_or_default()
    }

    /// A harness command run to its end (a command after a trial, which sweeps what it left).
    fn after(&mut self, args: &[&str]) -> std::process::Output {
        let tag = self.tag.clone();
        let out = self.command(args).output().expect("run harness");
        self.tag = tag;
        out
    }

    /// What the current trial left, after giving what was just killed up to 5 s to go.
    fn left(&self) -> Left {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let left = self.left_now();
            if left.total() == 0 || Instant::now() > deadline {
                return left;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Trials {
    /// What the current trial left, now.
    fn left_now(&self) -> Left {
        // Servers that rewrite their process title (redis-server) lose the variable from
        // /proc/<pid>/environ: they are found by their folder, under the project.
        let mut processes = tagged_processes(&format!("FAULT_TRIAL={}", self.tag));
        processes.extend(self.p.processes());
        processes.sort();
        processes.dedup_by(|a, b| a.split(':').next() == b.split(':').next());
        Left {
            processes,
            folders: entries(&self.p.tmp(), |_| true),
            ledgers: entries(&self.ledger, |n| n.ends_with(".ledger")),
            containers: containers_of(&self.ledger),
        }
    }
}

/// Every entry under the folder `dir` that a run left, for the message of a failed trial: its
/// owner, size, and when it was last written relative to the harness's exit (`exited`).
fn listing(dir: &Path, exited: std::time::SystemTime) -> String {
    use std::os::unix::fs::MetadataExt as _;
    let mut out = format!("{}:\n", dir.display());
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let path = e.path();
            let Ok(m) = std::fs::symlink_metadata(&path) else {
                continue;
            };
            let when = m.modified().ok().map(|t| match t.duration_since(exited) {
                Ok(after) => format!("{:.3} s after the exit", after.as_secs_f64()),
                Err(e) => format!("{:.3} s before the exit", e.duration().as_secs_f64()),
            });
            out.push_str(&format!(
                "  {} (uid {}, {} bytes, written {})\n",
                path.strip_prefix(dir).unwrap_or(&path).display(),
                m.uid(),
                m.len(),
                when.unwrap_or_default()
            ));
            if m.is_dir() {
                stack.push(path);
            }
        }
    }
    out
}

/// Entries of `dir` whose name passes `keep`.
fn entries(dir: &Path, keep: impl Fn(&str) -> bool) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .filter(|e| keep(&e.file_name().to_string_lossy()))
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default()
}

/// Live processes whose environment holds `var` (`NAME=value`), as `pid: command line`.
fn tagged_processes(var: &str) -> Vec<String> {
    live_processes()
        .into_iter()
        .filter(|p| {
            std::fs::read(p.dir.join("environ"))
                .unwrap_or_default()
                .split(|b| *b == 0)
                .any(|kv| kv == var.as_bytes())
        })
        .map(|p| format!("{}: {}", p.pid, p.cmdline))
        .collect()
}

/// Containers (running or not) of runs whose ledger lives in `ledger_dir`.
fn containers_of(ledger_dir: &Path) -> Vec<String> {
    let Ok(out) = Command::new("docker")
        .args([
            "ps",
            "-a",
            "--filter",
            "label=org.harness.owner",
            "--format",
            "{{.ID}} {{.Label \"org.harness.ledger\"}}",
        ])
        .output()
    else {
        return vec![];
    };
    let dir = ledger_dir.to_string_lossy().into_owned();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.split_once(' ').is_some_and(|(_, d)| d.starts_with(&dir)))
        .map(str::to_string)
        .collect()
}

/// PIDs of live processes of the current trial whose command line contains `needle`.
fn trial_pids(t: &Trials, needle: &str) -> Vec<i32> {
    tagged_processes(&format!("FAULT_TRIAL={}", t.tag))
        .iter()
        .filter(|l| l.contains(needle))
        .filter_map(|l| l.split(':').next()?.parse().ok())
        .collect()
}

fn signal(child: &Child, sig: i32) {
    if sig != libc::SIGKILL {
        wait_until_caught(child, sig);
    }
    // SAFETY: kill with a valid pid and signal.
    unsafe {
        libc::kill(child.id() as i32, sig);
    }
}

/// Waits until `child` catches `sig` (its /proc status's SigCgt), or has exited. A signal that
/// lands before the program's first instructions meets the default action in any program; from
/// the moment the harness has parsed its arguments it must be caught, and this fails if it
/// never is.
fn wait_until_caught(child: &Child, sig: i32) {
    let status = format!("/proc/{}/status", child.id());
    let caught = || {
        let Ok(text) = std::fs::read_to_string(&status) else {
            return true; // gone: nothing to wait for
        };
        if text.lines().any(|l| l.starts_with("State:\tZ")) {
            return true;
        }
        text.lines()
            .find_map(|l| l.strip_prefix("SigCgt:\t"))
            .and_then(|m| u64::from_str_radix(m.trim(), 16).ok())
            .is_some_and(|mask| mask & (1 << (sig - 1)) != 0)
    };
    let since = Instant::now();
    while !caught() {
        assert!(
            since.elapsed() < Duration::from_secs(10),
            "harness never caught signal {sig}"
        );
        std::thread::sleep(Duration::from_micros(200));
    }
}

/// harness.toml of a trial project on `backend` (the docker one on the offline base image).
fn harness_toml(backend: &str) -> String {
    format!("backend = \"{backend}\"\n[images]\nbase = \"harness-base:bookworm\"\n")
}

/// Every trial scenario: pipeline `p`, and Redis's keys as its sink.
const SCENARIO: &str =
    "pipeline = \"p\"\n[[sink]]\nname = \"keys\"\nservice = \"redis\"\nkeys = \"*\"\n";

/// The task of the trial pipeline: it leaves a grandchild that ignores SIGTERM in a session of
/// its own (what only the owner mark finds), works a moment, and fails in scenario `fails`.
const TASK: &str = "setsid sh -c 'trap \"\" TERM; exec sleep 600' </dev/null >/dev/null 2>&1 & \
    sleep 1; echo worked; test \"$HARNESS_SCENARIO\" != fails";

fn trial_project(backend: &str) -> Trials {
    require_servers();
    let p = Project::new();
    p.file("harness.toml", &harness_toml(backend));
    p.file(
        "pipelines/p/pipeline.toml",
        &format!(
            "services = [\"postgres\", \"redis\"]\n[tasks.work]\nkind = \"command\"\nargv = [\"sh\", \"-c\", {TASK:?}]\n"
        ),
    );
    for s in ["passes", "fails"] {
        p.file(&format!("scenarios/{s}/scenario.toml"), SCENARIO);
    }
    let mut t = Trials::new(p);
    t.backend = backend.into();
    let out = t.after(&["run", "--update", "passes"]);
    assert!(
        out.status.success(),
        "the trial project's first run failed: {}",
        t.stderr()
    );
    assert_eq!(t.left(), Left::default(), "a normal run left things behind");
    t
}

/// Runs the five faults of a whole run `n` times each; returns (fault, trials, leftovers, worst
/// seconds to exit) per fault.
fn whole_run_faults(t: &mut Trials, n: usize) -> Vec<(String, usize, usize, f64)> {
    let mut rng = Rng::new();
    // How long a run of the passing scenario takes: signals land anywhere within it.
    let t0 = Instant::now();
    let out = t.command(&["run", "passes"]).output().expect("run");
    assert!(out.status.success(), "{}", t.stderr());
    let length = t0.elapsed();
    let mut figures = Vec::new();
    for fault in ["normal end", "task failure", "SIGINT", "SIGTERM", "SIGKILL"] {
        let mut leftovers = 0;
        let mut worst = 0f64;
        for trial in 1..=n {
            let scenario = if fault == "task failure" {
                "fails"
            } else {
                "passes"
            };
            let mut child = t.command(&["run", scenario]).spawn().expect("spawn");
            let started = Instant::now();
            let sig = match fault {
                "SIGINT" => Some(libc::SIGINT),
                "SIGTERM" => Some(libc::SIGTERM),
                "SIGKILL" => Some(libc::SIGKILL),
                _ => None,
            };
            // The first SIGINT lands as soon as the harness catches it, long before its run has
            // begun: the window where the signal is held for the handlers to come.
            let at = if fault == "SIGINT" && trial == 1 {
                Duration::ZERO
            } else {
                length.mul_f64(rng.unit() * 0.95)
            };
            if let Some(sig) = sig {
                std::thread::sleep(at);
                signal(&child, sig);
            }
            let from = Instant::now();
            let status = wait_exit(&mut child, 120);
            let exited = std::time::SystemTime::now();
            let took = if sig.is_some() {
                from.elapsed()
            } else {
                started.elapsed()
            };
            let stderr = t.stderr();
            assert!(!stderr.contains("panicked"), "{fault}: {stderr}");
            let expected: &[Option<i32>] = match fault {
                "normal end" => &[Some(0)],
                "task failure" => &[Some(1)],
                "SIGINT" if at.is_zero() => &[Some(130)],
                // A signal that lands after the end finds a run that passed.
                "SIGINT" | "SIGTERM" => &[Some(130), Some(0)],
                _ => &[None, Some(0)],
            };
            assert!(
                expected.contains(&status.code()),
                "{fault} at {at:?}: exit {status:?}\n{stderr}"
            );
            let before_sweep = t.left_now().total();
            let left = if fault == "SIGKILL" {
                // The next harness command, whatever it is, sweeps what the dead run left.
                let list = t.after(&["list"]);
                assert!(list.status.success());
                t.left()
            } else {
                t.left()
            };
            eprintln!(
                "{fault} trial {trial}: signal at {:.2}s, exit {:?} after {:.2}s, left {}{}",
                at.as_secs_f64(),
                status.code(),
                took.as_secs_f64(),
                left.total(),
                if fault == "SIGKILL" {
                    format!(" (before the next command: {before_sweep})")
                } else {
                    String::new()
                }
            );
            assert_eq!(
                left,
                Left::default(),
                "{fault} trial {trial} left things behind\n{}\nthe harness's stderr:\n{}",
                left.folders
                    .iter()
                    .map(|f| listing(f, exited))
                    .collect::<String>(),
                t.stderr()
            );
            leftovers += left.total();
            worst = worst.max(took.as_secs_f64());
        }
        figures.push((fault.to_string(), n, leftovers, worst));
    }
    for (fault, n, left, worst) in &figures {
        eprintln!("| {fault} ({}) | {n} | {left} | {worst:.1} s |", t.backend);
    }
    figures
}

#[test]
fn normal_failed_interrupted_and_killed_runs_leave_nothing_behind_on_the_local_backend() {
    let mut t = trial_project("local");
    let n = trials(3);
    whole_run_faults(&mut t, n);
}

#[test]
fn normal_failed_interrupted_and_killed_docker_runs_leave_no_container() {
    crate::docker::require_docker();
    let mut t = trial_project("docker");
    // Containers take seconds to start: a quarter of the local backend's trials.
    let n = (trials(4) / 4).max(1);
    whole_run_faults(&mut t, n);
    // And once more with the kill landing for sure while the containers run.
    for trial in 1..=n {
        let mut child = t.command(&["run", "passes"]).spawn().expect("spawn");
        // Killed once its containers are up: the task has started.
        let deadline = Instant::now() + Duration::from_secs(120);
        while trial_pids(&t, "sleep 600").is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(!containers_of(&t.ledger).is_empty(), "no container running");
        signal(&child, libc::SIGKILL);
        wait_exit(&mut child, 30);
        let before = containers_of(&t.ledger).len();
        let list = t.after(&["list"]);
        assert!(list.status.success());
        let stderr = t.stderr();
        let left = t.left();
        eprintln!(
            "docker SIGKILL trial {trial}: {before} containers before the next command, {} after",
            left.containers.len()
        );
        assert!(before > 0, "the killed run's containers were gone at once");
        assert!(stderr.contains("removed container"), "{stderr}");
        assert_eq!(
            left,
            Left::default(),
            "the killed docker run left things behind"
        );
    }
}

#[test]
fn a_hung_task_and_its_grandchild_that_ignores_sigterm_are_gone_within_the_timeout_plus_5_s() {
    require_servers();
    let p = Project::new();
    let started = p.path().join("started");
    p.file(
        "pipelines/p/pipeline.toml",
        &format!(
            "services = [\"redis\"]\n[tasks.hang]\nkind = \"command\"\ntimeout = \"2s\"\nargv = [\"sh\", \"-c\", {:?}]\n",
            format!(
                "setsid sh -c 'trap \"\" TERM; exec sleep 600' </dev/null >/dev/null 2>&1 & \
                 trap '' TERM; echo hanging now; touch {}; sleep 600",
                started.display()
            )
        ),
    );
    p.file("scenarios/s/scenario.toml", SCENARIO);
    let mut t = Trials::new(p);
    let mut worst = 0f64;
    for trial in 1..=trials(1) {
        let _ = std::fs::remove_file(&started);
        let mut child = t.command(&["run"]).spawn().expect("spawn");
        assert!(wait_for(&started, 60), "the task never started");
        let t0 = Instant::now();
        let sleeps = || {
            tagged_processes(&format!("FAULT_TRIAL={}", t.tag))
                .iter()
                .filter(|l| l.ends_with(": sleep 600 "))
                .count()
        };
        // The marker is touched just before the task's own sleep starts.
        while sleeps() < 2 && t0.elapsed() < Duration::from_secs(1) {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(sleeps(), 2, "the task's sleep and its grandchild");
        while !trial_pids(&t, "sleep 600").is_empty() && t0.elapsed() < Duration::from_secs(30) {
            std::thread::sleep(Duration::from_millis(20));
        }
        let gone = t0.elapsed();
        let status = wait_exit(&mut child, 60);
        let stderr = t.stderr();
        assert_eq!(status.code(), Some(1), "{stderr}");
        assert!(stderr.contains("timed out"), "{stderr}");
        eprintln!(
            "hung task trial {trial}: gone {:.2}s after it started (timeout 2 s)",
            gone.as_secs_f64()
        );
        assert!(
            gone <= Duration::from_secs(7),
            "the hung task's processes lived {gone:?}, past its timeout + 5 s"
        );
        assert!(
            t.p.read(".harness/report/s/tasks/hang.log")
                .contains("hanging now"),
            "the hung task's log was not kept"
        );
        assert_eq!(
            t.left(),
            Left::default(),
            "the hung task left things behind"
        );
        worst = worst.max(gone.as_secs_f64());
    }
    eprintln!(
        "| hung task + grandchild ignoring SIGTERM | {} | 0 | {worst:.1} s |",
        trials(1)
    );
}

/// Kills the service whose process or container `kill` finds while the task runs; the run must
/// end with exit 3 naming the service within 30 s and leave nothing.
fn service_killed(backend: &str, services: &str, service: &str, kill: impl Fn(&Trials)) -> f64 {
    require_servers();
    if backend == "docker" {
        crate::docker::require_docker();
    }
    // The metastore runs on the project's Python environment's Java and jars.
    let p = if services.contains("hive") {
        Project::example_venv()
    } else {
        Project::new()
    };
    let started = p.path().join("started");
    p.file("harness.toml", &harness_toml(backend));
    p.file(
        "pipelines/p/pipeline.toml",
        &format!(
            "services = {services}\n[tasks.wait]\nkind = \"command\"\nargv = [\"sh\", \"-c\", \"touch {}; sleep 120\"]\n",
            started.display()
        ),
    );
    p.file("scenarios/s/scenario.toml", SCENARIO);
    let mut t = Trials::new(p);
    let mut worst = 0f64;
    for trial in 1..=trials(1) {
        let _ = std::fs::remove_file(&started);
        let mut child = t.command(&["run"]).spawn().expect("spawn");
        assert!(wait_for(&started, 180), "the task never started");
        kill(&t);
        let t0 = Instant::now();
        let status = wait_exit(&mut child, 60);
        let took = t0.elapsed();
        let stderr = t.stderr();
        assert_eq!(status.code(), Some(3), "{stderr}");
        assert!(
            stderr.contains(&format!("{service} stopped during the run")),
            "the message does not name {service}: {stderr}"
        );
        eprintln!(
            "{service} killed ({backend}) trial {trial}: exit 3 after {:.2}s",
            took.as_secs_f64()
        );
        assert!(took <= Duration::from_secs(30), "exit took {took:?}");
        assert_eq!(t.left(), Left::default(), "the run left things behind");
        worst = worst.max(took.as_secs_f64());
    }
    eprintln!(
        "| {service} killed ({backend}) | {} | 0 | {worst:.1} s |",
        trials(1)
    );
    worst
}

fn kill_process(t: &Trials, needle: &str) {
    let mut pids = trial_pids(t, needle);
    pids.extend(
        t.p.processes()
            .iter()
            .filter(|l| l.contains(needle))
            .filter_map(|l| l.split(':').next()?.parse::<i32>().ok()),
    );
    pids.sort();
    pids.dedup();
    assert!(!pids.is_empty(), "no process `{needle}` of the run to kill");
    for pid in pids {
        // SAFETY: kill with a valid pid and signal.
        unsafe {
            libc::kill(pid, libc::SIGKILL);
        }
    }
}

#[test]
fn postgres_killed_mid_run_is_exit_3_naming_it() {
    service_killed("local", "[\"postgres\", \"redis\"]", "postgres", |t| {
        kill_process(t, "postgres -D")
    });
}

#[test]
fn redis_killed_mid_run_is_exit_3_naming_it() {
    service_killed("local", "[\"postgres\", \"redis\"]", "redis", |t| {
        kill_process(t, "redis-server")
    });
}

#[test]
fn the_metastore_killed_mid_run_is_exit_3_naming_it() {
    service_killed("local", "[\"hive\", \"redis\"]", "hive", |t| {
        kill_process(t, "LoopbackMetaStore")
    });
}

#[test]
fn a_container_killed_mid_run_is_exit_3_naming_its_service() {
    service_killed("docker", "[\"redis\"]", "redis", |t| {
        let ids: Vec<String> = containers_of(&t.ledger)
            .iter()
            .filter_map(|l| l.split(' ').next().map(str::to_string))
            .collect();
        assert!(!ids.is_empty(), "no container of the run to kill");
        for id in ids {
            let out = Command::new("docker")
                .args(["kill", &id])
                .output()
                .expect("docker kill");
            assert!(out.status.success(), "docker kill {id}");
        }
    });
}

#[test]
fn a_postgres_whose_initdb_fails_leaves_no_folder_in_tmp() {
    require_servers();
    let p = Project::new();
    // A private TMPDIR sends the server's folder to /tmp, where the server's user can reach it.
    let private = p.path().join("private");
    std::fs::create_dir(&private).expect("mkdir");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    for (name, body) in [
        (
            "initdb",
            "echo 'initdb: cannot create the cluster' >&2; exit 1",
        ),
        ("postgres", "exit 1"),
    ] {
        p.file(&format!("fakebin/{name}"), &format!("#!/bin/sh\n{body}\n"));
        std::fs::set_permissions(
            p.path().join("fakebin").join(name),
            std::fs::Permissions::from_mode(0o755),
        )
        .expect("chmod");
    }
    p.file(
        "harness.toml",
        &format!(
            "backend = \"local\"\n[services.postgres]\nbin_dir = \"{}\"\n",
            p.path().join("fakebin").display()
        ),
    );
    p.file(
        "pipelines/p/pipeline.toml",
        "services = [\"postgres\"]\n[tasks.t]\nkind = \"command\"\nargv = [\"true\"]\n",
    );
    p.file(
        "scenarios/s/scenario.toml",
        "pipeline = \"p\"\n[[sink]]\nname = \"t\"\nservice = \"postgres\"\ntable = \"t\"\n",
    );
    let child = p
        .command(&["run"])
        .env("TMPDIR", &private)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let pid = child.id();
    let out = child.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("initdb failed"), "{stderr}");
    let left: Vec<PathBuf> = entries(Path::new("/tmp"), |n| {
        n.starts_with(&format!("harness-pg-{pid}-"))
    });
    assert!(left.is_empty(), "server folders left in /tmp: {left:?}");
}

#[test]
fn a_task_that_fails_because_redis_died_is_reported_as_redis_not_as_the_task() {
    require_servers();
    let p = Project::new();
    p.file(
        "pipelines/p/pipeline.toml",
        "services = [\"redis\"]\n[tasks.use_redis]\nkind = \"command\"\nargv = [\"sh\", \"-c\", \"redis-cli --no-auth-warning -u $HARNESS_REDIS_URL shutdown nosave; redis-cli --no-auth-warning -u $HARNESS_REDIS_URL set k v | grep -q OK\"]\n",
    );
    p.file("scenarios/s/scenario.toml", SCENARIO);
    let mut t = Trials::new(p);
    let out = t.after(&["run"]);
    let stderr = t.stderr();
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("redis stopped during the run"),
        "the failure is not put on Redis: {stderr}"
    );
    assert_eq!(t.left(), Left::default(), "the run left things behind");
}

#[test]
fn harness_clean_says_what_a_killed_run_left_removes_it_and_then_finds_nothing() {
    let mut t = trial_project("local");
    let mut child = t.command(&["run", "passes"]).spawn().expect("spawn");
    // Killed once the task's grandchild runs (its own command line, not its parent shell's).
    let grandchild = |t: &Trials| {
        tagged_processes(&format!("FAULT_TRIAL={}", t.tag))
            .iter()
            .any(|l| l.ends_with(": sleep 600 "))
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while !grandchild(&t) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(grandchild(&t), "the task's grandchild never started");
    signal(&child, libc::SIGKILL);
    wait_exit(&mut child, 30);
    assert!(
        t.left_now().total() > 0,
        "the killed run left nothing to clean"
    );

    let out = t.after(&["clean"]);
    let stderr = t.stderr();
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("ended without cleaning up"), "{stderr}");
    assert!(
        stderr.contains("sleep ("),
        "the grandchild is named: {stderr}"
    );
    assert!(
        stderr.contains("harness-env-"),
        "the folder is named: {stderr}"
    );
    assert_eq!(t.left(), Left::default(), "clean left things behind");

    let mut cmd = t.command(&["clean"]);
    let out = cmd.stdout(Stdio::piped()).output().expect("clean");
    assert_eq!(out.status.code(), Some(0));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("nothing to clean"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}
