//! What the data benches share: generated data and children measured with `wait4`.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::Instant;

/// SplitMix64: a small deterministic generator, so that every run benches the same data.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next number.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number below `n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

/// A child process that ran to its end: wall time, peak resident memory and what it printed.
#[derive(Debug)]
pub(super) struct ChildRun {
    pub elapsed: f64,
    pub max_rss: f64,
    pub code: i32,
    pub stdout: Vec<u8>,
}

/// Runs `cmd` and measures it with `wait4` (the child's own peak RSS, not its siblings').
/// Whether [`measure_child`] keeps what the child prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Capture {
    /// Read its stdout into the result.
    Stdout,
    /// Leave its stdout as the command has it (a file, or inherited).
    Nothing,
}

pub(super) fn measure_child(cmd: &mut Command, capture: Capture) -> Result<ChildRun, String> {
    let what = format!("{:?}", cmd.get_program());
    if capture == Capture::Stdout {
        cmd.stdout(Stdio::piped());
    }
    let t0 = Instant::now();
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot start {what}: {e}"))?;
    let mut stdout = Vec::new();
    if let Some(mut out) = child.stdout.take() {
        let _ = out.read_to_end(&mut stdout);
    }
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: rusage is plain data, valid when zeroed; wait4 writes into the two locals only.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let elapsed = t0.elapsed().as_secs_f64();
    if r != pid {
        return Err(format!(
            "cannot wait for {what}: {}",
            std::io::Error::last_os_error()
        ));
    }
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -1
    };
    Ok(ChildRun {
        elapsed,
        // Linux reports kilobytes.
        max_rss: usage.ru_maxrss as f64 * 1024.0,
        code,
        stdout,
    })
}
