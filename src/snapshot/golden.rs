//! The golden store: committed snapshots at `scenarios/<name>/golden/<sink>.snap`, pending
//! results beside them as `<sink>.snap.new`. Every write is atomic (a temporary file in the same
//! folder, then a rename), so an interrupted run never leaves a half-written golden.

use std::io::Write as _;
use std::path::{Path, PathBuf};

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
pub fn read(golden: &Path) -> std::io::Result<Option<String>> {
    match std::fs::read_to_string(golden) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Writes `contents` to `path` atomically, creating the folder when needed.
pub fn write_atomic(path: &Path, contents: &str) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".harness-")
        .suffix(".tmp")
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
    Ok(())
}

/// Golden files (`.snap` and pending `.snap.new`) in the scenarios' golden folders that no
/// sink refers to, sorted. `scenarios` gives each scenario's folder with its sinks' goldens.
pub fn unreferenced<'a>(
    scenarios: impl IntoIterator<Item = (&'a Path, Vec<&'a Path>)>,
) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for (dir, goldens) in scenarios {
        let Ok(entries) = std::fs::read_dir(dir.join("golden")) else {
            continue;
        };
        for e in entries.flatten() {
            let path = e.path();
            let referenced = goldens
                .iter()
                .any(|g| *g == path || pending_path(g) == path);
            if path.is_file() && !referenced {
                out.push(path);
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
}
