//! The golden store: committed snapshots at `scenarios/<name>/golden/<sink>.snap`, pending
//! results beside them as `<sink>.snap.new`. Every write is atomic (a temporary file in the same
//! folder, flushed to disk, renamed over the target, then the folder flushed), so an interrupted
//! run never leaves a half-written golden: a reader sees the old file or the new one.
//!
//! A process killed mid-write can leave its temporary file behind. Those are named
//! `.harness-<pid>-<random>.tmp`: every reader of a golden folder skips them ([`is_temp`]), and
//! the next write to the folder removes those whose writing process is gone (or, for a name
//! without a pid, that are older than a minute).

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use crate::ledger::is_temp;
use crate::ledger::{TEMP_PREFIX, TEMP_SUFFIX, sweep_temps};
use crate::prefault;

/// How old a temporary file with no pid in its name must be before a write sweeps it away.
const TEMP_MAX_AGE: Duration = Duration::from_secs(60);

/// What to do with a snapshot that differs from its golden (or has none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WritePolicy {
    /// Write `<golden>.new` for later review (the default off CI).
    Pending,
    /// Overwrite the golden (`--update`).
    Update,
    /// Write nothing (CI without `--update`).
    Nothing,
}

impl WritePolicy {
    /// The policy for a run: `--update` wins; on CI nothing is written; else pending files.
    pub fn choose(update: bool, on_ci: bool) -> Self {
        match (update, on_ci) {
            (true, _) => WritePolicy::Update,
            (false, true) => WritePolicy::Nothing,
            (false, false) => WritePolicy::Pending,
        }
    }
}

/// True when the `CI` environment variable says we run on CI.
pub fn on_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && !v.eq_ignore_ascii_case("false"))
}

/// The pending file of a golden.
pub fn pending_path(golden: &Path) -> PathBuf {
    let mut name = golden
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(".new");
    golden.with_file_name(name)
}

/// The golden's current content, or `None` when there is no golden yet.
///
/// A large golden is read a [`READ_STEP`] at a time into room reserved for its whole size,
/// whose pages another CPU faults in ahead of the reads ([`prefault::ahead`]).
pub fn read(golden: &Path) -> std::io::Result<Option<String>> {
    let mut file = match std::fs::File::open(golden) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let size = file.metadata().map_or(0, |m| m.len());
    let mut bytes = Vec::new();
    let _ = bytes.try_reserve_exact(usize::try_from(size).unwrap_or(0));
    let (start, room) = (bytes.as_ptr(), bytes.capacity());
    prefault::ahead(start, room, |progress| {
        loop {
            // Past the size the file had, the reads go on to its end, as it is now.
            if (&mut file).take(READ_STEP).read_to_end(&mut bytes)? == 0 {
                return Ok::<_, std::io::Error>(());
            }
            progress.at(bytes.len(), bytes.capacity());
        }
    })?;
    String::from_utf8(bytes).map(Some).map_err(|_| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "stream did not contain valid UTF-8",
        )
    })
}

/// The bytes of a golden read at once.
const READ_STEP: u64 = 4 << 20;

/// Writes `contents` to `path` atomically, creating the folder when needed: the old file or the
/// new one is there at every instant, even across a crash of the machine.
pub fn write_atomic(path: &Path, contents: &str) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    sweep_temps(dir, TEMP_MAX_AGE);
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!("{TEMP_PREFIX}{}-", std::process::id()))
        .suffix(TEMP_SUFFIX)
        .tempfile_in(dir)?;
    tmp.write_all(contents.as_bytes())?;
    // Keep the mode of the file replaced; a new file gets the usual 0644, not the temp file's 0600.
    let mode = std::fs::metadata(path)
        .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o7777)
        .unwrap_or(0o644);
    tmp.as_file()
        .set_permissions(std::os::unix::fs::PermissionsExt::from_mode(mode))?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    // The rename is a change of the folder: without this, a crash can forget it.
    std::fs::File::open(dir)?.sync_all()
}

/// Golden files (`.snap` and pending `.snap.new`) in the scenarios' golden folders that no
/// sink refers to, sorted. `scenarios` gives each scenario's folder with its sinks' goldens.
pub fn unreferenced<'a>(
    scenarios: impl IntoIterator<Item = (&'a Path, Vec<&'a Path>)>,
) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for (dir, goldens) in scenarios {
        for (_, path) in files(&dir.join("golden")) {
            let referenced = goldens
                .iter()
                .any(|g| *g == path || pending_path(g) == path);
            if !referenced {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// The files of a golden folder and of its step folders (`golden/<step>/`), each with its name
/// relative to the folder (`<step>/<file>` in a step folder), temporary files left out.
pub fn files(golden_dir: &Path) -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    let mut dirs = vec![(String::new(), golden_dir.to_path_buf())];
    while let Some((prefix, dir)) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let name = e.file_name();
            if is_temp(&name) {
                continue;
            }
            let rel = format!("{prefix}{}", name.to_string_lossy());
            let path = e.path();
            if path.is_dir() && prefix.is_empty() {
                dirs.push((format!("{rel}/"), path));
            } else if path.is_file() {
                out.push((rel, path));
            }
        }
    }
    out.sort();
    out
}

/// Removes a pending file if there is one.
pub fn remove_pending(golden: &Path) -> std::io::Result<bool> {
    match std::fs::remove_file(pending_path(golden)) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;

    #[test]
    fn policy_never_writes_on_ci_without_update() {
        assert_eq!(WritePolicy::choose(false, true), WritePolicy::Nothing);
        assert_eq!(WritePolicy::choose(true, true), WritePolicy::Update);
        assert_eq!(WritePolicy::choose(false, false), WritePolicy::Pending);
    }

    #[test]
    fn atomic_write_replaces_and_leaves_no_temp_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let golden = dir.path().join("golden/a.snap");
        write_atomic(&golden, "one\n").expect("write");
        write_atomic(&golden, "two\n").expect("write");
        assert_eq!(read(&golden).expect("read"), Some("two\n".into()));
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(&golden).expect("stat").permissions(),
        );
        assert_eq!(
            mode & 0o777,
            0o644,
            "goldens are readable by others, like any committed file"
        );
        let names: Vec<_> = std::fs::read_dir(golden.parent().expect("dir"))
            .expect("ls")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("a.snap")]);
        assert_eq!(pending_path(&golden), dir.path().join("golden/a.snap.new"));
    }

    #[test]
    fn a_write_sweeps_temp_files_of_dead_writers_and_keeps_live_ones() {
        let dir = tempfile::tempdir().expect("tempdir");
        let golden = dir.path().join("a.snap");
        // A pid above the kernel's maximum (4194304) names no process.
        let dead = dir.path().join(".harness-99999999-abc.tmp");
        let live = dir
            .path()
            .join(format!(".harness-{}-def.tmp", std::process::id()));
        let unnamed_fresh = dir.path().join(".harness-xyz.tmp");
        for f in [&dead, &live, &unnamed_fresh] {
            std::fs::write(f, "half a golden").expect("write");
        }
        write_atomic(&golden, "new\n").expect("write");
        assert!(!dead.exists(), "a dead writer's temp file is removed");
        assert!(live.exists(), "a living writer's temp file is kept");
        assert!(
            unnamed_fresh.exists(),
            "a fresh temp file without a pid is kept"
        );
        assert!(is_temp(dead.file_name().expect("name")));
        assert!(!is_temp(OsStr::new("a.snap")));
        assert!(!is_temp(OsStr::new("a.snap.new")));
    }

    #[test]
    fn temp_files_are_never_unreferenced_goldens() {
        let dir = tempfile::tempdir().expect("tempdir");
        let golden = dir.path().join("golden/a.snap");
        write_atomic(&golden, "one\n").expect("write");
        std::fs::write(dir.path().join("golden/.harness-1-x.tmp"), "partial").expect("write");
        std::fs::write(dir.path().join("golden/old.snap"), "orphan").expect("write");
        let found = unreferenced([(dir.path(), vec![golden.as_path()])]);
        assert_eq!(found, vec![dir.path().join("golden/old.snap")]);
    }
}
