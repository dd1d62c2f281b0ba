//! Kept environments, the books: where a kept environment's files live, who holds one, and how a
//! run reaches it.
//!
//! A kept environment is one `harness env serve` process (started by `harness env up` or
//! `harness run --keep-env`) that holds a started environment and runs the runs it is asked for.
//! Its files, in `<ledger dir>/envs/`:
//! - `<name>.lock`: the process holds an exclusive lock on it for as long as it lives, so "the
//!   lock is free" means "the environment is gone", however its process ended;
//! - `<name>.json`: its [`Record`] (who, which project, which services, busy or idle);
//! - `<name>.env`: the variables of the contract for its services, `KEY=VALUE` a line, readable
//!   by the user only (it holds the services' passwords);
//! - `<name>.sock`: where runs connect: a run sends its standard output and error as file
//!   descriptors and a [`Request`], and gets [`Reply`] lines back;
//! - `<name>.log`: what the process said once it stopped talking to the terminal that started
//!   it; kept after it ends.
//!
//! The process keeps a ledger like every harness command: what it started is swept by the next
//! command once it is gone, also after a SIGKILL.

use std::io::{IoSlice, IoSliceMut, Write as _};
use std::os::fd::{FromRawFd as _, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use nix::sys::socket::{ControlMessage, ControlMessageOwned, MsgFlags, recvmsg, sendmsg};

/// The folder of kept environments.
pub fn dir() -> PathBuf {
    crate::ledger::dir().join("envs")
}

/// The name a kept environment gets when none is given.
pub const DEFAULT_NAME: &str = "default";
/// Idle time after which a kept environment stops by itself, unless `--idle-timeout` says.
pub const DEFAULT_IDLE: &str = "30m";

/// Checks a kept environment's name: letters, digits, `-`, `_` and `.`, not starting with `.`,
/// at most 64 characters.
pub fn check_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{name}` is not a name for a kept environment: use letters, digits, `-`, `_` and `.` (at most 64, not starting with `.`)"
        ))
    }
}

/// The files of the kept environment `name`.
#[derive(Debug, Clone)]
pub struct Paths {
    /// Held locked by the environment's process.
    pub lock: PathBuf,
    /// Its [`Record`].
    pub record: PathBuf,
    /// The contract's variables.
    pub endpoints: PathBuf,
    /// Where runs connect.
    pub socket: PathBuf,
    /// What the process says once it stopped talking to the terminal that started it.
    pub log: PathBuf,
}

/// The files of the kept environment `name` (which [`check_name`] accepted).
pub fn paths(name: &str) -> Paths {
    let d = dir();
    Paths {
        lock: d.join(format!("{name}.lock")),
        record: d.join(format!("{name}.json")),
        endpoints: d.join(format!("{name}.env")),
        socket: d.join(format!("{name}.sock")),
        log: d.join(format!("{name}.log")),
    }
}

/// What a kept environment says of itself.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Record {
    /// Its name.
    pub name: String,
    /// The PID of its process.
    pub pid: u32,
    /// The project it was started for (runs of other projects are refused).
    pub project: PathBuf,
    /// The backend that started its services.
    pub backend: String,
    /// Its services, in start order.
    pub services: Vec<String>,
    /// Each service and its endpoint (host:port, never a secret).
    pub endpoints: Vec<(String, String)>,
    /// Seconds without a run after which it stops itself; 0 for never.
    pub idle_timeout_secs: u64,
    /// When it was started, in seconds since the epoch.
    pub started: u64,
    /// When its last run ended (or it was started), in seconds since the epoch.
    pub last_used: u64,
    /// The run it is running, if any.
    pub busy: Option<Busy>,
    /// A digest of the project's harness.toml when it was started.
    pub settings_digest: String,
}

/// The run a kept environment is running.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Busy {
    /// The PID of the `harness run` that asked for it.
    pub pid: u32,
    /// Since when, in seconds since the epoch.
    pub since: u64,
}

/// Seconds since the epoch, now.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The hold of a kept environment's process on its name: the locked file, and the files it
/// writes, all removed when dropped.
#[derive(Debug)]
pub struct Hold {
    paths: Paths,
    _lock: std::fs::File,
}

/// Why a name could not be held.
#[derive(Debug)]
pub enum HoldError {
    /// Another live process holds it.
    Taken,
    /// The folder or lock file cannot be made.
    Io(std::io::Error),
}

impl Hold {
    /// Takes the name `name`, which no live process may hold.
    pub fn take(name: &str) -> Result<Hold, HoldError> {
        let paths = paths(name);
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir())
            .map_err(HoldError::Io)?;
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&paths.lock)
            .map_err(HoldError::Io)?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => return Err(HoldError::Taken),
            Err(std::fs::TryLockError::Error(e)) => return Err(HoldError::Io(e)),
        }
        // The holder's PID, for `env down` while there is no record yet.
        let mut pid_file = &lock;
        pid_file
            .set_len(0)
            .and_then(|()| write!(pid_file, "{}", std::process::id()))
            .map_err(HoldError::Io)?;
        // What a dead holder left of its files is stale now.
        for p in [&paths.record, &paths.endpoints, &paths.socket] {
            let _ = std::fs::remove_file(p);
        }
        Ok(Hold { paths, _lock: lock })
    }

    /// The files of the held name.
    pub fn paths(&self) -> &Paths {
        &self.paths
    }

    /// Writes the record, whole or not at all.
    pub fn write_record(&self, record: &Record) -> std::io::Result<()> {
        let text = serde_json::to_string_pretty(record).map_err(std::io::Error::other)?;
        write_private(&self.paths.record, text.as_bytes())
    }

    /// Writes the contract's variables, readable by the user only.
    pub fn write_endpoints(&self, vars: &[(String, String)]) -> std::io::Result<()> {
        let mut text = String::new();
        for (k, v) in vars {
            text.push_str(&format!("{k}={}\n", shell_quote(v)));
        }
        write_private(&self.paths.endpoints, text.as_bytes())
    }
}

impl Drop for Hold {
    fn drop(&mut self) {
        for p in [
            &self.paths.record,
            &self.paths.endpoints,
            &self.paths.socket,
            &self.paths.lock,
        ] {
            let _ = std::fs::remove_file(p);
        }
    }
}

use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};

/// Writes `bytes` to `path` through a temporary file renamed into place, mode 0600.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

/// A value as a POSIX shell reads it back: bare when it is safe, else in single quotes.
fn shell_quote(v: &str) -> String {
    let safe = !v.is_empty()
        && v.chars().all(|c| {
            c.is_ascii_alphanumeric() || matches!(c, '/' | ':' | '.' | '-' | '_' | '@' | '=' | ',')
        });
    if safe {
        v.to_string()
    } else {
        format!("'{}'", v.replace('\'', "'\\''"))
    }
}

/// True while a process holds the name `name`.
pub fn is_up(name: &str) -> bool {
    crate::ledger::is_alive(&paths(name).lock)
}

/// The PID of the process holding the name `name`, while one does.
pub fn holder(name: &str) -> Option<u32> {
    if !is_up(name) {
        return None;
    }
    std::fs::read_to_string(paths(name).lock)
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// The record of the kept environment `name` while it is up; the files of one that is gone are
/// removed (but its lock file, which a process starting under that name may be opening now).
pub fn find(name: &str) -> Option<Record> {
    let p = paths(name);
    if !is_up(name) {
        for f in [&p.record, &p.endpoints, &p.socket] {
            let _ = std::fs::remove_file(f);
        }
        return None;
    }
    let text = std::fs::read_to_string(&p.record).ok()?;
    serde_json::from_str(&text).ok()
}

/// Every kept environment that is up, by name (the files of those gone are removed); with the
/// names of those still starting (locked, no record yet).
pub fn list() -> (Vec<Record>, Vec<String>) {
    let mut up = Vec::new();
    let mut starting = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir()) else {
        return (up, starting);
    };
    let mut names: Vec<String> = entries
        .flatten()
        .filter_map(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            n.strip_suffix(".lock").map(str::to_string)
        })
        .collect();
    names.sort();
    for name in names {
        match find(&name) {
            Some(r) => up.push(r),
            None if is_up(&name) => starting.push(name),
            None => {}
        }
    }
    (up, starting)
}

/// What a run sends a kept environment, after its standard output and error.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct Request {
    /// The run's working folder.
    pub cwd: PathBuf,
    /// Its command line, the program first.
    pub args: Vec<String>,
    /// Its environment variables (those that are UTF-8).
    pub env: Vec<(String, String)>,
    /// Its PID.
    pub pid: u32,
}

/// What a kept environment answers, one JSON object a line.
#[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "reply", rename_all = "snake_case")]
pub enum Reply {
    /// The run started; its output goes to the descriptors sent.
    Accepted,
    /// The run was not started, and why; `code` is the exit code the run gives.
    Refused { message: String, code: i32 },
    /// The run ended with this exit code.
    Exit { code: i32 },
}

/// What a run sends to ask a running run to stop (as Ctrl-C would).
pub const CANCEL: &str = "cancel";

/// Sends `fds` over the connected Unix socket `sock`, with one byte of data.
pub fn send_fds(sock: RawFd, fds: &[RawFd]) -> std::io::Result<()> {
    let data = [b'F'];
    let iov = [IoSlice::new(&data)];
    let cmsg = [ControlMessage::ScmRights(fds)];
    sendmsg::<()>(sock, &iov, &cmsg, MsgFlags::empty(), None)
        .map(|_| ())
        .map_err(std::io::Error::from)
}

/// Receives the descriptors [`send_fds`] sent (at most 4); `WouldBlock` on a non-blocking
/// socket with nothing to read yet.
pub fn recv_fds(sock: RawFd) -> std::io::Result<Vec<OwnedFd>> {
    let mut data = [0u8; 1];
    let mut iov = [IoSliceMut::new(&mut data)];
    let mut space = nix::cmsg_space!([RawFd; 4]);
    let msg = recvmsg::<()>(sock, &mut iov, Some(&mut space), MsgFlags::MSG_CMSG_CLOEXEC)
        .map_err(std::io::Error::from)?;
    let mut fds = Vec::new();
    for c in msg.cmsgs().map_err(std::io::Error::from)? {
        if let ControlMessageOwned::ScmRights(received) = c {
            // SAFETY: the kernel just gave this process these descriptors; nothing else owns
            // them.
            fds.extend(
                received
                    .into_iter()
                    .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }),
            );
        }
    }
    if msg.bytes == 0 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "the run hung up before it said anything",
        ));
    }
    Ok(fds)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_plain_words_that_make_safe_file_names() {
        for ok in ["default", "ci-1", "my_env.2"] {
            assert!(check_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".hidden", "a/b", "with space", "ü", &"x".repeat(65)] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn endpoint_values_are_quoted_for_a_posix_shell() {
        assert_eq!(
            shell_quote("redis://127.0.0.1:6379"),
            "redis://127.0.0.1:6379"
        );
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
        assert_eq!(shell_quote(""), "''");
    }

    #[test]
    fn descriptors_sent_over_a_socket_arrive_as_the_same_open_files() {
        use std::io::{Read as _, Seek as _};
        use std::os::fd::AsRawFd as _;
        let (a, b) = std::os::unix::net::UnixStream::pair().expect("pair");
        let mut file = tempfile::tempfile().expect("tempfile");
        send_fds(a.as_raw_fd(), &[file.as_raw_fd()]).expect("send");
        let fds = recv_fds(b.as_raw_fd()).expect("recv");
        assert_eq!(fds.len(), 1);
        let mut received = std::fs::File::from(fds.into_iter().next().expect("one"));
        received.write_all(b"through the socket").expect("write");
        file.rewind().expect("rewind");
        let mut text = String::new();
        file.read_to_string(&mut text).expect("read");
        assert_eq!(text, "through the socket");
    }
}
