//! What a harness command owns on this machine, written down before it exists, so that whatever a
//! command leaves when it dies without cleaning up (SIGKILL, a crash) is found and removed by the
//! next harness command, or by `harness clean`.
//!
//! Every command keeps a ledger file, `<ledger dir>/<run id>.ledger`, holding an exclusive lock on
//! it for as long as it lives: the kernel drops the lock when the process dies, however it dies, so
//! "the lock is free" means "the run is dead" — a reused PID cannot fake that. The file lists, one
//! JSON object per line, the folders the run made (recorded before they are made), the processes
//! it started (PID and start time, so that a reused PID is never killed), and the containers it
//! labelled with its id. Every process the run starts also carries `HARNESS_OWNER=<run id>.<n>` in
//! its environment (`<n>` is its process group's number, `0` for the run itself): descendants
//! inherit it, so a grandchild that left its process group or session is still found.
//!
//! Atomic writes (goldens, cache entries) leave no ledger line: their temporary entries carry the
//! writer's pid in their name, and the next write to the same folder sweeps those of dead writers
//! ([`sweep_temps`]).

use std::io::{BufRead as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

/// The environment variable that marks every process a run started.
pub const OWNER_VAR: &str = "HARNESS_OWNER";
/// Overrides the ledger folder (by default `/tmp/harness-ledger-<uid>`).
pub const DIR_VAR: &str = "HARNESS_LEDGER_DIR";

mod procs;
mod temps;

pub use procs::{alive, kill_group_mark, mark_of, marked_processes, start_time};
use procs::{comm, is_zombie, kill_marked, kill_within, wait_gone};
pub use temps::{TEMP_PREFIX, TEMP_SUFFIX, is_temp, remove_entry, sweep_temps};

/// The ledger of this process's run.
#[derive(Debug)]
pub struct Ledger {
    id: String,
    path: PathBuf,
    /// The open, locked ledger file; appends are serialised through the mutex.
    file: Mutex<std::fs::File>,
    /// The number given to the next process group.
    next_group: AtomicU64,
}

static CURRENT: OnceLock<Option<Ledger>> = OnceLock::new();

/// The ledger folder of this machine and user.
pub fn dir() -> PathBuf {
    match std::env::var_os(DIR_VAR) {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        // SAFETY: geteuid has no preconditions.
        _ => PathBuf::from(format!("/tmp/harness-ledger-{}", unsafe {
            libc::geteuid()
        })),
    }
}

/// Opens this run's ledger and marks the process (and so every child) with the run's id. Call
/// once, at the start of `main`, while the process has a single thread (it sets a variable of
/// the process's environment). Returns the error when no ledger can be kept; the run goes on
/// without one.
pub fn open() -> Result<&'static Ledger, String> {
    let ledger = CURRENT.get_or_init(|| Ledger::create(&dir()).ok());
    match ledger {
        Some(l) => {
            // SAFETY: called from `main` before any thread starts (the contract of `open`).
            unsafe { std::env::set_var(OWNER_VAR, format!("{}.0", l.id)) };
            Ok(l)
        }
        None => Err(format!(
            "cannot keep a ledger in {} (set {DIR_VAR} to a writable folder); what a killed run leaves will not be swept",
            dir().display()
        )),
    }
}

/// This run's ledger, once opened.
pub fn current() -> Option<&'static Ledger> {
    CURRENT.get().and_then(|l| l.as_ref())
}

/// A new owner mark for a process group: `<run id>.<n>`.
pub fn group_mark() -> Option<String> {
    current().map(|l| format!("{}.{}", l.id, l.next_group.fetch_add(1, Ordering::Relaxed)))
}

/// Records a process the run started (its PID and start time).
pub fn process(pid: u32) {
    if let (Some(l), Some(start)) = (current(), start_time(pid)) {
        l.append(&Entry::Process { pid, start });
    }
}

/// Records a container the run is about to create (its name, for people; containers are found
/// by the run id in their labels).
pub fn container(name: &str) {
    if let Some(l) = current() {
        l.append(&Entry::Container {
            name: name.to_string(),
        });
    }
}

/// Makes a new private folder `<prefix><run id>-<n>` in `parent`, recorded in the ledger before
/// it exists. `prefix` must start with `harness-`: the sweep removes no folder of any other name.
pub fn make_dir(parent: &Path, prefix: &str) -> std::io::Result<PathBuf> {
    debug_assert!(prefix.starts_with("harness-"));
    let (run, n) = match current() {
        Some(l) => (l.id.clone(), l.next_group.fetch_add(1, Ordering::Relaxed)),
        None => (format!("{}", std::process::id()), nanos()),
    };
    let path = parent.join(format!("{prefix}{run}-{n}"));
    if let Some(l) = current() {
        l.append(&Entry::Folder { path: path.clone() });
    }
    std::fs::create_dir_all(parent)?;
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&path)
        .map(|()| path)
}

use std::os::unix::fs::DirBuilderExt as _;

/// A folder made by [`make_dir`], removed when dropped.
#[derive(Debug)]
pub struct OwnedDir(PathBuf);

impl OwnedDir {
    /// Makes it: see [`make_dir`].
    pub fn new(parent: &Path, prefix: &str) -> std::io::Result<OwnedDir> {
        make_dir(parent, prefix).map(OwnedDir)
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for OwnedDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Ledger {
    /// This run's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The ledger file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn create(dir: &Path) -> std::io::Result<Ledger> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
        let id = format!("{}-{:x}", std::process::id(), nanos());
        let path = dir.join(format!("{id}.ledger"));
        // Locked under another name first: a sweep must never see the ledger unlocked.
        let opening = dir.join(format!("{id}.opening"));
        let file = std::fs::OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(&opening)?;
        file.try_lock().map_err(std::io::Error::other)?;
        std::fs::rename(&opening, &path)?;
        let ledger = Ledger {
            id,
            path,
            file: Mutex::new(file),
            next_group: AtomicU64::new(1),
        };
        ledger.append(&Entry::Run {
            pid: std::process::id(),
            start: start_time(std::process::id()).unwrap_or(0),
            command: std::env::args().collect::<Vec<_>>().join(" "),
        });
        Ok(ledger)
    }

    fn append(&self, entry: &Entry) {
        let Ok(mut line) = serde_json::to_vec(entry) else {
            return;
        };
        line.push(b'\n');
        if let Ok(mut f) = self.file.lock() {
            // One write per line on an O_APPEND file: a reader never sees half a line unless the
            // disk is full, and then the sweep skips the broken line.
            let _ = f.write_all(&line);
        }
    }

    /// Everything this run still owns, removed: its marked processes killed (but this one), its
    /// folders deleted; then the ledger itself, unless the run made containers: those are the
    /// backend's to remove (by the run's label), and the ledger stays until [`forget`], so that a
    /// run that exits before that is swept by the next command.
    pub fn close(&self) -> Swept {
        let swept = sweep_entries(&self.id, &self.path);
        if swept.containers.is_empty() {
            let _ = std::fs::remove_file(&self.path);
        }
        swept
    }

    /// Kills the processes of this run that are still alive (but this one), and waits for them
    /// to go; used before removing a folder they may still write into.
    pub fn kill_own(&self) -> Vec<(u32, String)> {
        kill_marked(&format!("{}.", self.id))
    }
}

/// Removes the ledger file of this run once its containers are gone too.
pub fn forget(swept: &Swept) {
    let _ = std::fs::remove_file(&swept.ledger);
}

/// One line of a ledger.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
enum Entry {
    Run {
        pid: u32,
        start: u64,
        command: String,
    },
    Folder {
        path: PathBuf,
    },
    Process {
        pid: u32,
        start: u64,
    },
    Container {
        name: String,
    },
}

/// What a sweep removed for one run.
#[derive(Debug, Default)]
pub struct Swept {
    /// The run's id.
    pub run: String,
    /// Its ledger file.
    pub ledger: PathBuf,
    /// The command line of the run.
    pub command: String,
    /// Processes killed: PID and name.
    pub processes: Vec<(u32, String)>,
    /// Folders removed.
    pub folders: Vec<PathBuf>,
    /// Containers the run recorded: the backend removes those labelled with the run's id.
    pub containers: Vec<String>,
    /// What could not be removed.
    pub failures: Vec<String>,
}

impl Swept {
    /// True when nothing was left.
    pub fn is_empty(&self) -> bool {
        self.processes.is_empty() && self.folders.is_empty() && self.containers.is_empty()
    }

    /// True when the sweep has something to say for itself: processes killed, folders removed,
    /// or something it could not remove (containers are the backend's to report).
    pub fn has_news(&self) -> bool {
        !self.processes.is_empty() || !self.folders.is_empty() || !self.failures.is_empty()
    }

    /// One line for people: what was removed.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if !self.processes.is_empty() {
            let names: Vec<String> = self
                .processes
                .iter()
                .map(|(pid, name)| format!("{name} ({pid})"))
                .collect();
            parts.push(format!(
                "killed {} process{} [{}]",
                names.len(),
                if names.len() == 1 { "" } else { "es" },
                names.join(", ")
            ));
        }
        if !self.folders.is_empty() {
            let names: Vec<String> = self
                .folders
                .iter()
                .map(|p| p.display().to_string())
                .collect();
            parts.push(format!("removed {}", names.join(", ")));
        }
        for f in &self.failures {
            parts.push(format!("could not remove {f}"));
        }
        parts.join("; ")
    }
}

/// True while the run whose ledger file is `path` is alive (holds its lock). A missing file is a
/// run that ended or was swept.
pub fn is_alive(path: &Path) -> bool {
    match std::fs::File::open(path) {
        Ok(f) => matches!(f.try_lock(), Err(std::fs::TryLockError::WouldBlock)),
        Err(_) => false,
    }
}

/// Sweeps every dead run of the ledger folder: kills what is left of its processes, removes its
/// folders, and deletes its ledger unless it recorded containers (the caller removes those and
/// then calls [`forget`]). Live runs, this one included, are left alone.
pub fn sweep_dead() -> Vec<Swept> {
    let Ok(entries) = std::fs::read_dir(dir()) else {
        return vec![];
    };
    let own = current().map(|l| l.path.clone());
    let mut swept = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "opening") {
            // A run killed while opening its ledger owned nothing yet.
            if std::fs::File::open(&path).is_ok_and(|f| f.try_lock().is_ok()) {
                let _ = std::fs::remove_file(&path);
            }
            continue;
        }
        if path.extension().is_none_or(|e| e != "ledger") || Some(&path) == own.as_ref() {
            continue;
        }
        let Ok(file) = std::fs::OpenOptions::new().read(true).open(&path) else {
            continue;
        };
        // Held while sweeping, so two harnesses never sweep the same run at once.
        if file.try_lock().is_err() {
            continue;
        }
        let run = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let s = sweep_entries(&run, &path);
        if s.containers.is_empty() {
            let _ = std::fs::remove_file(&path);
        }
        swept.push(s);
    }
    swept
}

/// Kills the processes of run `run` (from `path`) and removes its folders (this process is never
/// killed).
fn sweep_entries(run: &str, path: &Path) -> Swept {
    let mut swept = Swept {
        run: run.to_string(),
        ledger: path.to_path_buf(),
        ..Swept::default()
    };
    let mut folders = Vec::new();
    let mut recorded = Vec::new();
    if let Ok(f) = std::fs::File::open(path) {
        for line in std::io::BufReader::new(f).lines().map_while(Result::ok) {
            match serde_json::from_str::<Entry>(&line) {
                Ok(Entry::Run { command, .. }) => swept.command = command,
                Ok(Entry::Folder { path }) => folders.push(path),
                Ok(Entry::Process { pid, start }) => recorded.push((pid, start)),
                Ok(Entry::Container { name }) => swept.containers.push(name),
                Err(_) => {}
            }
        }
    }
    // Recorded processes whose start time still matches (a reused PID does not), then everything
    // that carries the run's mark.
    let me = std::process::id();
    // Every recorded process led a group: what is left of those groups is waited for too, as a
    // server that rewrote its process title (PostgreSQL, Redis) no longer shows its mark.
    let groups: Vec<u32> = recorded
        .iter()
        .map(|(pid, _)| *pid)
        .filter(|p| *p != me)
        .collect();
    for (pid, start) in recorded {
        if pid != me && start_time(pid) == Some(start) && !is_zombie(pid) {
            let name = comm(pid);
            // SAFETY: kill and killpg have no memory-safety preconditions.
            unsafe {
                libc::killpg(pid as i32, libc::SIGKILL);
                libc::kill(pid as i32, libc::SIGKILL);
            }
            swept.processes.push((pid, name));
        }
    }
    for p in kill_marked(&format!("{run}.")) {
        if !swept.processes.iter().any(|(pid, _)| *pid == p.0) {
            swept.processes.push(p);
        }
    }
    // What still works inside the run's folders: PostgreSQL's backends make sessions of their
    // own and rewrite their titles, so neither the groups nor the marks find them, and one busy
    // in a command (a CREATE DATABASE) outlives its server by a while, writing.
    for p in kill_within(&folders) {
        if !swept.processes.iter().any(|(pid, _)| *pid == p.0) {
            swept.processes.push(p);
        }
    }
    wait_gone(swept.processes.iter().map(|p| p.0).collect(), &groups);
    for folder in folders {
        let safe = folder
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("harness-"))
            && folder.is_absolute();
        if !safe || std::fs::symlink_metadata(&folder).is_err() {
            continue;
        }
        match std::fs::remove_dir_all(&folder) {
            Ok(()) => swept.folders.push(folder),
            Err(e) => swept.failures.push(format!("{}: {e}", folder.display())),
        }
    }
    swept
}

fn nanos() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::procs::group_members;
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn a_ledger_is_alive_while_its_lock_is_held_and_dead_after() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("x.ledger");
        let f = std::fs::File::create(&path).expect("create");
        f.lock().expect("lock");
        assert!(is_alive(&path));
        drop(f);
        assert!(!is_alive(&path));
        assert!(!is_alive(&dir.path().join("missing.ledger")));
    }

    #[test]
    fn a_sweep_removes_a_dead_runs_harness_folders_and_nothing_else() {
        let dir = tempfile::tempdir().expect("tempdir");
        let owned = dir.path().join("harness-env-x-1");
        let foreign = dir.path().join("precious");
        std::fs::create_dir_all(owned.join("data")).expect("mkdir");
        std::fs::create_dir_all(&foreign).expect("mkdir");
        let ledger = dir.path().join("dead.ledger");
        let lines: Vec<String> = [&owned, &foreign, &PathBuf::from("relative/harness-env-y")]
            .iter()
            .map(|p| {
                serde_json::to_string(&Entry::Folder {
                    path: p.to_path_buf(),
                })
                .expect("json")
            })
            .collect();
        std::fs::write(&ledger, lines.join("\n") + "\n").expect("ledger");
        let swept = sweep_entries("dead", &ledger);
        assert_eq!(swept.folders, vec![owned.clone()]);
        assert!(!owned.exists());
        assert!(
            foreign.exists(),
            "a folder not named harness-* is never removed"
        );
    }

    #[test]
    fn a_sweep_waits_for_the_unmarked_members_of_a_recorded_group_before_removing_folders() {
        use std::os::unix::process::CommandExt as _;
        let dir = tempfile::tempdir().expect("tempdir");
        let owned = dir.path().join("harness-env-x-1");
        std::fs::create_dir_all(&owned).expect("mkdir");
        // A group leader that is gone, and a member that outlives it by a moment and then writes
        // into the folder, with no owner mark: as a server that rewrote its title.
        let late = owned.join("late");
        let mut leader = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!(
                "(sleep 0.5; mkdir -p {}) </dev/null >/dev/null 2>&1 &",
                late.display()
            ))
            .process_group(0)
            .spawn()
            .expect("spawn");
        let pgid = leader.id();
        leader.wait().expect("wait");
        assert!(
            !group_members(&[pgid]).is_empty(),
            "the member is still in the group"
        );
        let ledger = dir.path().join("dead.ledger");
        let lines = [
            serde_json::to_string(&Entry::Process {
                pid: pgid,
                start: 0,
            })
            .expect("json"),
            serde_json::to_string(&Entry::Folder {
                path: owned.clone(),
            })
            .expect("json"),
        ];
        std::fs::write(&ledger, lines.join("\n") + "\n").expect("ledger");
        let swept = sweep_entries("dead", &ledger);
        assert!(group_members(&[pgid]).is_empty());
        assert_eq!(swept.folders, vec![owned.clone()], "{:?}", swept.failures);
        assert!(
            !owned.exists(),
            "the member wrote into the folder after it was removed"
        );
    }

    #[test]
    fn a_sweep_kills_an_unmarked_process_of_another_session_working_in_a_run_folder() {
        let dir = tempfile::tempdir().expect("tempdir");
        let owned = dir.path().join("harness-env-x-1");
        std::fs::create_dir_all(owned.join("data")).expect("mkdir");
        // As a PostgreSQL backend: a session of its own, no mark, its working folder in the
        // run's folder, and it writes there a moment later.
        let mut child = std::process::Command::new("setsid")
            .arg("sh")
            .arg("-c")
            .arg("sleep 1; mkdir -p late")
            .current_dir(owned.join("data"))
            .spawn()
            .expect("spawn");
        // Until it has exec'd, it is a copy of this process with its working folder set.
        let data = std::fs::canonicalize(owned.join("data")).expect("canonical");
        let deadline = Instant::now() + Duration::from_secs(2);
        while std::fs::read_link(format!("/proc/{}/cwd", child.id())).ok() != Some(data.clone())
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(5));
        }
        let ledger = dir.path().join("dead.ledger");
        let line = serde_json::to_string(&Entry::Folder {
            path: owned.clone(),
        })
        .expect("json");
        std::fs::write(&ledger, line + "\n").expect("ledger");
        let swept = sweep_entries("dead", &ledger);
        assert!(
            swept.processes.iter().any(|(pid, _)| *pid == child.id()),
            "{:?}",
            swept.processes
        );
        assert!(!child.wait().expect("wait").success());
        std::thread::sleep(Duration::from_millis(1200));
        assert!(
            !owned.exists(),
            "the process wrote into the folder after it was removed"
        );
        assert!(swept.has_news());
    }
}
