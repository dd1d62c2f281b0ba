//! The processes of a run, as /proc shows them: their owner mark, process group, working folder
//! and start time; killing them and waiting for them to go.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::OWNER_VAR;

/// How long killed processes get to disappear before their folders are removed anyway.
const DEATH_WAIT: Duration = Duration::from_secs(5);

/// Kills (SIGKILL) every process but this one whose owner mark starts with `prefix`, waits for
/// them to go, and returns them.
pub(super) fn kill_marked(prefix: &str) -> Vec<(u32, String)> {
    let me = std::process::id();
    let mut killed = Vec::new();
    // Killing a process can let its children be seen marked only now: a few rounds.
    for _ in 0..3 {
        let found: Vec<u32> = marked_processes(prefix)
            .into_iter()
            .filter(|p| *p != me && !killed.iter().any(|(k, _)| k == p))
            .collect();
        if found.is_empty() {
            break;
        }
        killed.extend(found.into_iter().map(kill));
    }
    wait_gone(killed.iter().map(|p| p.0).collect(), &[]);
    killed
}

/// Kills (SIGKILL) every process whose working folder is one of `folders` or inside one, but
/// this one and its ancestors (the shell a command was typed in may stand in such a folder), and
/// returns them.
pub(super) fn kill_within(folders: &[PathBuf]) -> Vec<(u32, String)> {
    let roots: Vec<PathBuf> = folders
        .iter()
        .filter_map(|f| std::fs::canonicalize(f).ok())
        .collect();
    if roots.is_empty() {
        return vec![];
    }
    let mut spared = vec![std::process::id()];
    while let Some(parent) = spared
        .last()
        .and_then(|p| stat_fields(*p)?.get(1)?.parse::<u32>().ok())
        .filter(|p| *p > 1 && !spared.contains(p))
    {
        spared.push(parent);
    }
    pids()
        .filter(|pid| {
            !spared.contains(pid)
                && std::fs::read_link(format!("/proc/{pid}/cwd"))
                    .is_ok_and(|cwd| roots.iter().any(|r| cwd.starts_with(r)))
                && !is_zombie(*pid)
        })
        .map(kill)
        .collect()
}

/// Kills every process marked exactly `mark` or as a descendant group of it (used when a process
/// group is killed, for what left the group).
pub fn kill_group_mark(mark: &str) {
    let me = std::process::id();
    for pid in marked_processes(mark) {
        if pid != me && mark_of(pid).as_deref() == Some(mark) {
            kill(pid);
        }
    }
}

/// Live (not zombie) processes whose owner mark starts with `prefix`.
pub fn marked_processes(prefix: &str) -> Vec<u32> {
    pids()
        .filter(|pid| mark_of(*pid).is_some_and(|m| m.starts_with(prefix)) && !is_zombie(*pid))
        .collect()
}

/// The owner mark in a process's environment.
pub fn mark_of(pid: u32) -> Option<String> {
    let env = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
    let key = format!("{OWNER_VAR}=");
    env.split(|b| *b == 0)
        .find_map(|kv| kv.strip_prefix(key.as_bytes()))
        .map(|v| String::from_utf8_lossy(v).into_owned())
}

/// Waits (at most [`DEATH_WAIT`]) until none of `pids` is alive and no live process is left in
/// any of the process groups `groups`: a killed process may still finish the system call it was
/// in (a file it creates in a folder about to be removed) until it is gone.
pub(super) fn wait_gone(pids: Vec<u32>, groups: &[u32]) {
    let deadline = Instant::now() + DEATH_WAIT;
    let left = || pids.iter().any(|p| alive(*p)) || !group_members(groups).is_empty();
    while left() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The live (not zombie) processes whose process group is one of `groups`.
pub(super) fn group_members(groups: &[u32]) -> Vec<u32> {
    if groups.is_empty() {
        return vec![];
    }
    pids()
        .filter(|pid| {
            // Fields after the name: state, ppid, pgrp.
            stat_fields(*pid).is_some_and(|f| {
                f.first().is_some_and(|s| s != "Z" && s != "X")
                    && f.get(2)
                        .and_then(|g| g.parse::<u32>().ok())
                        .is_some_and(|g| groups.contains(&g))
            })
        })
        .collect()
}

/// The PIDs /proc lists now.
fn pids() -> impl Iterator<Item = u32> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
}

/// Kills `pid` (SIGKILL); gives it back with its name, read before.
fn kill(pid: u32) -> (u32, String) {
    let name = comm(pid);
    // SAFETY: kill has no memory-safety preconditions.
    unsafe {
        libc::kill(pid as i32, libc::SIGKILL);
    }
    (pid, name)
}

/// True while `pid` exists and is not a zombie.
pub fn alive(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists() && !is_zombie(pid)
}

fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The name may hold spaces and parentheses: the fields start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    Some(rest.split_whitespace().map(str::to_string).collect())
}

pub(super) fn is_zombie(pid: u32) -> bool {
    stat_fields(pid).is_some_and(|f| f.first().is_some_and(|s| s == "Z" || s == "X"))
}

/// A process's start time, in clock ticks since boot (field 22 of `/proc/<pid>/stat`).
pub fn start_time(pid: u32) -> Option<u64> {
    stat_fields(pid)?.get(19)?.parse().ok()
}

/// A process's name.
pub(super) fn comm(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "?".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_time_tells_a_process_from_a_later_one_with_the_same_pid() {
        let me = std::process::id();
        let a = start_time(me).expect("own start time");
        assert_eq!(start_time(me), Some(a));
        let mut child = std::process::Command::new("true").spawn().expect("spawn");
        let pid = child.id();
        let b = start_time(pid);
        child.wait().expect("wait");
        assert!(b.is_some_and(|b| b >= a));
        assert_eq!(start_time(pid), None, "a reaped process has no start time");
    }

    #[test]
    fn the_mark_of_a_child_is_read_from_its_environment() {
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .env(OWNER_VAR, "run-x.7")
            .spawn()
            .expect("spawn");
        let pid = child.id();
        // `spawn` returns once exec has closed the CLOEXEC pipe, which is before the kernel has
        // laid out the new environment: until then /proc/<pid>/environ reads empty.
        let deadline = Instant::now() + Duration::from_secs(2);
        while mark_of(pid).is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(mark_of(pid).as_deref(), Some("run-x.7"));
        assert!(marked_processes("run-x.").contains(&pid));
        assert!(!marked_processes("run-y.").contains(&pid));
        let killed = kill_marked("run-x.");
        assert_eq!(killed.iter().map(|k| k.0).collect::<Vec<_>>(), vec![pid]);
        let status = child.wait().expect("wait");
        assert!(!status.success());
    }
}
