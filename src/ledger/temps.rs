//! The temporaries of atomic writes (a golden, a cache entry): their names, and the sweep of
//! those their killed writers left.

use std::ffi::OsStr;
use std::path::Path;
use std::time::Duration;

/// The start of the name of a temporary file or folder an atomic write makes (a golden, a cache
/// entry): the writer's pid follows, then `-`.
pub const TEMP_PREFIX: &str = ".harness-";
/// The end of such a name.
pub const TEMP_SUFFIX: &str = ".tmp";

/// True for the name of a temporary entry of an atomic write: never a finished one, whatever is
/// in it.
pub fn is_temp(name: &OsStr) -> bool {
    let name = name.to_string_lossy();
    name.starts_with(TEMP_PREFIX) && name.ends_with(TEMP_SUFFIX)
}

/// Removes the temporary entries that killed writers left in `dir`: those whose pid names no
/// living process, and those without a pid older than `max_age`. An entry it cannot remove stays;
/// readers skip it anyway.
pub fn sweep_temps(dir: &Path, max_age: Duration) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        if !is_temp(&name) {
            continue;
        }
        let name = name.to_string_lossy();
        let pid = name[TEMP_PREFIX.len()..]
            .split_once('-')
            .and_then(|(pid, _)| pid.parse::<u32>().ok());
        let abandoned = match pid {
            Some(pid) => !Path::new(&format!("/proc/{pid}")).exists(),
            None => e
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age > max_age),
        };
        if abandoned {
            // Best effort: another run may be sweeping the same entry right now.
            remove_entry(&e.path());
        }
    }
}

/// Removes a file or a folder with what it holds; a missing one is fine.
pub fn remove_entry(path: &Path) {
    if path.is_dir() {
        let _ = std::fs::remove_dir_all(path);
    } else {
        let _ = std::fs::remove_file(path);
    }
}
