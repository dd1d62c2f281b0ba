//! A small builder for end-to-end tests: a temporary project, a way to run the built binary in
//! it, and checks for processes the run may have left behind.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository root (for the example project and the managed Python environment).
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Fails with a message naming what is missing when a server program is not installed.
pub fn require_servers() {
    let pg = Path::new("/usr/lib/postgresql")
        .read_dir()
        .is_ok_and(|mut d| d.next().is_some())
        || which("initdb");
    assert!(
        pg,
        "PostgreSQL server programs (initdb, postgres) are missing: run scripts/setup.sh"
    );
    assert!(
        which("redis-server"),
        "redis-server is missing: run scripts/setup.sh"
    );
}

fn which(name: &str) -> bool {
    find_program(name).is_some()
}

/// Where `name` is on PATH, if it is.
pub fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// What a run of the binary gave.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn from(out: Output) -> Self {
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Everything printed.
    pub fn all(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
}

/// A project in a temporary folder.
pub struct Project {
    dir: tempfile::TempDir,
}

impl Project {
    /// An empty project.
    pub fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("harness-test-")
            .tempdir()
            .expect("tempdir");
        // Reachable by the unprivileged user PostgreSQL runs as.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
            .expect("chmod");
        std::fs::create_dir_all(dir.path().join(".tmp")).expect("tmp");
        // `auto` would pick docker on a machine with a daemon; these projects test the local
        // backend unless they say otherwise.
        std::fs::write(dir.path().join("harness.toml"), "backend = \"local\"\n")
            .expect("harness.toml");
        std::fs::set_permissions(
            dir.path().join(".tmp"),
            std::fs::Permissions::from_mode(0o755),
        )
        .expect("chmod");
        Project { dir }
    }

    /// A copy of the repository's example suite, using the repository's managed Python.
    pub fn example() -> Self {
        let p = Project::new();
        for d in ["pipelines", "scenarios", "fixtures"] {
            copy_dir(&repo().join(d), &p.path().join(d));
        }
        std::fs::copy(repo().join("harness.toml"), p.path().join("harness.toml"))
            .expect("copy harness.toml");
        let venv = repo().join(".venv");
        assert!(
            venv.join("bin/python").exists(),
            "the managed Python environment .venv is missing: run scripts/setup.sh"
        );
        std::os::unix::fs::symlink(&venv, p.path().join(".venv")).expect("symlink .venv");
        p.link_airflow();
        for entry in walk(&p.path().join("scenarios")) {
            if entry.to_string_lossy().ends_with(".snap.new") {
                std::fs::remove_file(entry).expect("remove pending");
            }
        }
        p
    }

    /// An empty project using the repository's managed Python environment (with PySpark).
    pub fn example_venv() -> Self {
        let p = Project::new();
        let venv = repo().join(".venv");
        assert!(
            venv.join("bin/python").exists(),
            "the managed Python environment .venv is missing: run scripts/setup.sh"
        );
        std::os::unix::fs::symlink(&venv, p.path().join(".venv")).expect("symlink .venv");
        p
    }

    /// An empty project using the repository's managed Python and managed Airflow.
    pub fn with_airflow() -> Self {
        let p = Project::example_venv();
        p.link_airflow();
        p
    }

    /// Links the repository's managed Airflow (.venv-airflow) into the project.
    fn link_airflow(&self) {
        let venv = repo().join(".venv-airflow");
        assert!(
            venv.join("bin/python").exists(),
            "the managed Airflow .venv-airflow is missing: run scripts/setup.sh"
        );
        std::os::unix::fs::symlink(&venv, self.path().join(".venv-airflow"))
            .expect("symlink .venv-airflow");
    }

    /// The project folder.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The folder runs use as TMPDIR: every service and work folder of a run lives under it.
    pub fn tmp(&self) -> PathBuf {
        self.path().join(".tmp")
    }

    /// Writes a file (creating folders).
    pub fn file(&self, rel: &str, content: &str) -> &Self {
        let path = self.path().join(rel);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, content).expect("write");
        self
    }

    /// Reads a file.
    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path().join(rel)).unwrap_or_else(|e| panic!("read {rel}: {e}"))
    }

    /// True when the file exists.
    pub fn exists(&self, rel: &str) -> bool {
        self.path().join(rel).exists()
    }

    /// A command running the binary in the project, with a clean environment for colour and CI.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_harness"));
        cmd.args(args)
            .current_dir(self.path())
            .env("TMPDIR", self.tmp())
            .env("NO_COLOR", "1")
            .env_remove("CI");
        cmd
    }

    /// Runs the binary and waits.
    pub fn run(&self, args: &[&str]) -> Run {
        Run::from(self.command(args).output().expect("run harness"))
    }

    /// Runs the binary with extra environment variables.
    pub fn run_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut cmd = self.command(args);
        cmd.envs(env.iter().copied());
        Run::from(cmd.output().expect("run harness"))
    }

    /// Every file under the project's scenarios folder with its content.
    pub fn goldens(&self) -> Vec<(PathBuf, String)> {
        let mut files: Vec<(PathBuf, String)> = walk(&self.path().join("scenarios"))
            .into_iter()
            .filter(|p| p.to_string_lossy().contains("/golden/"))
            .map(|p| (p.clone(), std::fs::read_to_string(&p).expect("read")))
            .collect();
        files.sort();
        files
    }

    /// Processes (not zombies) whose working folder or command line is under this project,
    /// after giving processes that were just killed up to 5 s to go.
    pub fn leftover_processes(&self) -> Vec<String> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            let found = self.processes();
            if found.is_empty() || std::time::Instant::now() > deadline {
                return found;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    /// Processes (not zombies) whose working folder or command line is under this project, now.
    pub fn processes(&self) -> Vec<String> {
        let marker = self.path().to_string_lossy().into_owned();
        live_processes()
            .into_iter()
            .filter_map(|p| {
                let cwd = std::fs::read_link(p.dir.join("cwd"))
                    .map(|c| c.to_string_lossy().into_owned())
                    .unwrap_or_default();
                (cwd.starts_with(&marker) || p.cmdline.contains(&marker))
                    .then(|| format!("{}: {} (cwd {cwd})", p.pid, p.cmdline))
            })
            .collect()
    }
}

/// A process seen in /proc.
pub struct LiveProcess {
    /// Its PID.
    pub pid: String,
    /// Its /proc folder.
    pub dir: PathBuf,
    /// Its command line, arguments separated (and ended) by spaces.
    pub cmdline: String,
}

/// Every process but this one that is not a zombie, now.
pub fn live_processes() -> Vec<LiveProcess> {
    let me = std::process::id().to_string();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let pid = entry.file_name().to_string_lossy().into_owned();
        if !pid.chars().all(|c| c.is_ascii_digit()) || pid == me {
            continue;
        }
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        if stat
            .rsplit(')')
            .next()
            .is_some_and(|r| r.trim_start().starts_with('Z'))
        {
            continue;
        }
        let cmdline = std::fs::read(entry.path().join("cmdline"))
            .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
            .unwrap_or_default();
        found.push(LiveProcess {
            pid,
            dir: entry.path(),
            cmdline,
        });
    }
    found
}

/// Every file under `dir`.
pub fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// Copies folder `from` to `to`, recursively.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read dir").flatten() {
        let (src, dst) = (e.path(), to.join(e.file_name()));
        if src.is_dir() {
            copy_dir(&src, &dst);
        } else {
            std::fs::copy(&src, &dst).expect("copy");
        }
    }
}

/// True when the process is still alive 5 s from now (a killed process takes a moment to go).
pub fn alive(pid: i32) -> bool {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while running(pid) {
        if std::time::Instant::now() > deadline {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    false
}

/// True when the process exists and is not a zombie.
fn running(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| state(&s) != Some('Z'))
}

/// True once every thread of the process has exited: a killed process's main thread is a zombie
/// while its other threads may still be exiting, holding its files and locks.
pub fn every_thread_exited(pid: i32) -> bool {
    match std::fs::read_dir(format!("/proc/{pid}/task")) {
        Err(_) => true,
        Ok(tasks) => tasks.flatten().all(|t| {
            std::fs::read_to_string(t.path().join("stat"))
                .map_or(true, |s| matches!(state(&s), Some('Z' | 'X')))
        }),
    }
}

/// The state letter of a `/proc/.../stat` line (the fields after the name, which may hold
/// spaces and parentheses, start after its last ')').
fn state(stat: &str) -> Option<char> {
    stat.rsplit(')').next()?.trim_start().chars().next()
}

/// Waits for a process to exit after it was signalled; panics after `secs` seconds.
pub fn wait_exit(child: &mut std::process::Child, secs: u64) -> std::process::ExitStatus {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        if let Some(s) = child.try_wait().expect("wait") {
            return s;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "harness did not exit within {secs} s of the signal"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// Waits for a file to appear, up to `secs` seconds.
pub fn wait_for(path: &Path, secs: u64) -> bool {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while std::time::Instant::now() < deadline {
        if path.exists() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    false
}

/// The Spark driver JVMs of one project, sampled from /proc every 100 ms in a thread while a run
/// goes on: what each driver is (the Spark Connect server; a `pyspark-shell` driver, which the
/// harness's own session in submit mode is; or a task's spark-submit).
pub struct SparkDrivers {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<std::collections::BTreeMap<String, &'static str>>,
}

impl SparkDrivers {
    /// Starts sampling the drivers whose working folder or command line is under `project`.
    pub fn watch(project: &Project) -> Self {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let marker = project.path().to_string_lossy().into_owned();
        let thread = std::thread::spawn({
            let stop = stop.clone();
            move || {
                let mut seen = std::collections::BTreeMap::new();
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    for p in live_processes() {
                        // The driver's JVM itself: not the scripts that start it (which exec into
                        // it, keeping the PID) nor the short-lived launcher JVM they run first.
                        let program = p.cmdline.split(' ').next().unwrap_or_default();
                        if !program.ends_with("/java")
                            || !p.cmdline.contains("org.apache.spark.deploy.SparkSubmit")
                            || p.cmdline.contains("org.apache.spark.launcher.Main")
                        {
                            continue;
                        }
                        let cwd = std::fs::read_link(p.dir.join("cwd"))
                            .map(|c| c.to_string_lossy().into_owned())
                            .unwrap_or_default();
                        if !cwd.starts_with(&marker) && !p.cmdline.contains(&marker) {
                            continue;
                        }
                        let what = if p
                            .cmdline
                            .contains("org.apache.spark.sql.connect.service.SparkConnectServer")
                        {
                            "connect-server"
                        } else if p.cmdline.contains("pyspark-shell") {
                            "harness-session"
                        } else {
                            "task"
                        };
                        seen.insert(p.pid, what);
                    }
                    std::thread::sleep(std::time::Duration::from_millis(100));
                }
                seen
            }
        });
        SparkDrivers { stop, thread }
    }

    /// Stops sampling: the kinds of driver seen, sorted.
    pub fn seen(self) -> Vec<&'static str> {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let seen = self.thread.join().expect("the sampler");
        let kinds: std::collections::BTreeSet<&'static str> = seen.into_values().collect();
        kinds.into_iter().collect()
    }
}
