//! The per-user cache: files a run can rebuild but should not rebuild at every start (the Hive
//! metastore's compiled launcher and its class-data archive, `services::hive::launch`; the
//! class-data archives of the Spark session and the Connect server,
//! `services::spark::class_archive`; the
//! migrated templates of Airflow's database, made and named by the Airflow driver).
//!
//! It lives beside the ledger, in `/tmp/harness-cache-<uid>` (or `$HARNESS_CACHE_DIR`), and
//! removing it is always safe. Every entry is named by a key of everything that went into it,
//! so a changed input gives a new entry instead of a stale one. Entries are built under a
//! temporary name and renamed into place, so concurrent runs never see half an entry: the rename
//! is atomic, and two runs building the same entry each install a complete copy. Since the
//! folder holds code that runs, it is used only when this user owns it and nobody else can
//! write to it.
//!
//! A changed input leaves the entry of the old key behind (an archive is 55–240 MB), so every
//! use of an entry sets its access time ([`used`]), and opening a folder removes its entries
//! unused for [`MAX_UNUSED`]. The access time is set by the harness itself, whatever the
//! file system's `atime` options, and the modification time is left alone: the launcher's is
//! part of its archive's key.

use std::os::unix::fs::{DirBuilderExt as _, MetadataExt as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::ledger::{TEMP_PREFIX, TEMP_SUFFIX, sweep_temps};

/// Overrides the cache folder (by default `/tmp/harness-cache-<uid>`).
pub const DIR_VAR: &str = "HARNESS_CACHE_DIR";

/// How old a temporary entry with no pid in its name must be before it is swept away.
const TEMP_MAX_AGE: Duration = Duration::from_secs(60);

/// How long an entry may go unused before opening its folder removes it: two weeks.
pub const MAX_UNUSED: Duration = Duration::from_secs(14 * 24 * 3600);

/// The cache folder of this machine and user (it may not exist yet).
pub fn dir() -> PathBuf {
    match std::env::var_os(DIR_VAR) {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        // SAFETY: geteuid has no preconditions.
        _ => PathBuf::from(format!("/tmp/harness-cache-{}", unsafe { libc::geteuid() })),
    }
}

/// The folder `name` of the cache, made when missing, with the temporaries of dead runs and the
/// entries unused for [`MAX_UNUSED`] swept away; `None` when the cache cannot be used (then
/// callers do without it).
pub fn folder(name: &str) -> Option<PathBuf> {
    let root = dir();
    private_dir(&root)?;
    let sub = root.join(name);
    private_dir(&sub)?;
    sweep_temps(&sub, TEMP_MAX_AGE);
    sweep_unused(&sub, MAX_UNUSED);
    Some(sub)
}

/// Notes that the entry at `path` is being used now: its access time becomes the present one
/// (its modification time stays). Best effort: an entry whose time cannot be set is only swept
/// earlier, and rebuilt then.
pub fn used(path: &Path) {
    // Times set explicitly need only the owner, not a writable file; the modification time,
    // not given, stays.
    let now = std::fs::FileTimes::new().set_accessed(std::time::SystemTime::now());
    let _ = std::fs::File::open(path).and_then(|f| f.set_times(now));
}

/// Removes the files of `dir` (not its folders, nor its temporaries, which `sweep_temps` sees
/// to) whose last use, their access time, is older than `max`.
fn sweep_unused(dir: &Path, max: Duration) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        if crate::ledger::is_temp(&e.file_name()) {
            continue;
        }
        let stale = e.metadata().ok().filter(|m| m.is_file()).is_some_and(|m| {
            m.accessed()
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age > max)
        });
        if stale {
            remove(&e.path());
        }
    }
}

/// Makes `dir` (mode 0700) unless it exists, and checks that it is a real folder of this user
/// that no one else can write to.
fn private_dir(dir: &Path) -> Option<()> {
    if let Some(parent) = dir.parent() {
        std::fs::create_dir_all(parent).ok()?;
    }
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(_) => return None,
    }
    let meta = std::fs::symlink_metadata(dir).ok()?;
    // SAFETY: geteuid has no preconditions.
    let me = unsafe { libc::geteuid() };
    (meta.is_dir() && meta.uid() == me && meta.mode() & 0o022 == 0).then_some(())
}

/// A key naming an entry: the first 16 hex digits of a SHA-256 of `parts` (each length-prefixed,
/// so that moving bytes from one part to the next changes the key).
pub fn key<I, P>(parts: I) -> String
where
    I: IntoIterator<Item = P>,
    P: AsRef<[u8]>,
{
    let mut h = Sha256::new();
    for p in parts {
        let p = p.as_ref();
        h.update((p.len() as u64).to_le_bytes());
        h.update(p);
    }
    h.finalize()
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// What identifies a file's content cheaply: its path, size and modification time (in
/// nanoseconds); `None` when it cannot be read.
pub fn stamp(path: &Path) -> Option<String> {
    let m = std::fs::metadata(path).ok()?;
    Some(format!(
        "{}\0{}\0{}.{}",
        path.display(),
        m.len(),
        m.mtime(),
        m.mtime_nsec()
    ))
}

/// A new, unused name in `dir` to build an entry under before [`install`]ing it:
/// `.harness-<pid>-<n>-<name>.tmp`.
pub fn temp_path(dir: &Path, name: &str) -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    dir.join(format!(
        "{TEMP_PREFIX}{}-{n}-{name}{TEMP_SUFFIX}",
        std::process::id()
    ))
}

/// Moves the finished temporary file or folder `tmp` to `target` in one rename. When another
/// run installed the same folder first, theirs stays and `tmp` is removed (the key says both
/// are the same).
pub fn install(tmp: &Path, target: &Path) -> std::io::Result<()> {
    match std::fs::rename(tmp, target) {
        Ok(()) => Ok(()),
        Err(_) if tmp.is_dir() && target.is_dir() => {
            let _ = std::fs::remove_dir_all(tmp);
            Ok(())
        }
        Err(e) => {
            remove(tmp);
            Err(e)
        }
    }
}

/// Removes an entry (file or folder), whatever it holds; a missing one is fine.
pub fn remove(path: &Path) {
    crate::ledger::remove_entry(path);
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn keys_follow_every_part_and_its_boundaries() {
        assert_eq!(key(["a", "bc"]), key(["a", "bc"]));
        assert_ne!(key(["a", "bc"]), key(["ab", "c"]));
        assert_ne!(key(["a", "bc"]), key(["a", "bd"]));
        assert_eq!(key(["x"]).len(), 16);
    }

    #[test]
    fn stamps_change_with_the_content() {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = dir.path().join("a.jar");
        std::fs::write(&f, "one").expect("write");
        let before = stamp(&f);
        std::fs::write(&f, "three").expect("write");
        assert!(before.is_some());
        assert_ne!(stamp(&f), before);
        assert_eq!(stamp(&dir.path().join("missing")), None);
    }

    #[test]
    fn entries_are_installed_whole_and_a_second_copy_of_a_folder_is_dropped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let target = dir.path().join("entry");
        for round in 0..2 {
            let tmp = temp_path(dir.path(), "entry");
            assert!(crate::ledger::is_temp(tmp.file_name().expect("name")));
            std::fs::create_dir(&tmp).expect("mkdir");
            std::fs::write(tmp.join("f"), format!("{round}")).expect("write");
            install(&tmp, &target).expect("install");
            assert!(!tmp.exists());
        }
        assert_eq!(
            std::fs::read_to_string(target.join("f")).expect("read"),
            "0",
            "the first complete copy stays"
        );
        // A file replaces the one before it in one rename.
        let file = dir.path().join("file");
        for round in ["1", "2"] {
            let tmp = temp_path(dir.path(), "file");
            std::fs::write(&tmp, round).expect("write");
            install(&tmp, &file).expect("install");
        }
        assert_eq!(std::fs::read_to_string(&file).expect("read"), "2");
    }

    #[test]
    fn temporary_folders_of_dead_processes_are_swept_and_living_ones_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let dead = dir.path().join(".harness-99999999-0-launcher.tmp");
        let mine = temp_path(dir.path(), "launcher");
        let entry = dir.path().join("launcher-1.jar");
        for d in [&dead, &mine] {
            std::fs::create_dir(d).expect("mkdir");
            std::fs::write(d.join("half"), "x").expect("write");
        }
        std::fs::write(&entry, "x").expect("write");
        sweep_temps(dir.path(), TEMP_MAX_AGE);
        assert!(!dead.exists());
        assert!(mine.exists());
        assert!(entry.exists());
    }

    /// Sets the access time of `path` to `age` ago.
    pub(crate) fn last_used(path: &Path, age: Duration) {
        let when = std::time::SystemTime::now() - age;
        let file = std::fs::File::options()
            .write(true)
            .open(path)
            .expect("open");
        file.set_times(std::fs::FileTimes::new().set_accessed(when))
            .expect("set times");
    }

    #[test]
    fn entries_unused_for_the_longest_allowed_are_swept_and_used_ones_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let old = dir.path().join("classes-old.jsa");
        let recent = dir.path().join("classes-new.jsa");
        let used_again = dir.path().join("launcher-1.jar");
        let conf = dir.path().join("conf");
        std::fs::create_dir(&conf).expect("mkdir");
        for f in [&old, &recent, &used_again] {
            std::fs::write(f, "x").expect("write");
        }
        let modified = std::fs::metadata(&used_again)
            .expect("meta")
            .modified()
            .ok();
        let long_ago = MAX_UNUSED + Duration::from_secs(3600);
        last_used(&old, long_ago);
        last_used(&used_again, long_ago);
        last_used(&recent, MAX_UNUSED - Duration::from_secs(3600));
        used(&used_again);
        sweep_unused(dir.path(), MAX_UNUSED);
        assert!(!old.exists(), "an entry unused for longer is removed");
        assert!(recent.exists(), "one used within the time stays");
        assert!(used_again.exists(), "`used` renews an entry");
        assert!(conf.is_dir(), "folders stay");
        assert_eq!(
            std::fs::metadata(&used_again)
                .expect("meta")
                .modified()
                .ok(),
            modified,
            "`used` leaves the modification time (part of keys) alone"
        );
    }

    #[test]
    fn a_folder_others_can_write_to_is_not_used() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().expect("tempdir");
        let open = dir.path().join("open");
        std::fs::create_dir(&open).expect("mkdir");
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).expect("chmod");
        assert_eq!(private_dir(&open), None);
        let made = dir.path().join("made");
        assert_eq!(private_dir(&made), Some(()));
        let mode = std::fs::metadata(&made).expect("meta").mode() & 0o777;
        assert_eq!(mode, 0o700);
    }
}
