//! Pages of a large buffer asked for ahead of the code that fills it.
//!
//! The first touch of each page of new memory costs a fault in the kernel, and on a virtual
//! machine whose host takes back the memory its guest frees, a dear one: 15 µs a page for a
//! 1.7 GB buffer on the machines `harness bench` figure 4 is measured on, about as long as
//! rendering a table's text into that page takes. While one thread fills a buffer front to
//! back, [`ahead`] has a second one fault its next pages in (`MADV_POPULATE_WRITE`, which
//! writes no byte), so the two costs overlap on two CPUs instead of adding up.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// Buffers smaller than this are filled without help: their faults cost less than a thread.
pub const WORTH: usize = 64 << 20;

/// How far past the filling code the helper goes, at most: what it faults in is used soon, and
/// what a buffer reserved too large never gets is never faulted in.
const WINDOW: usize = 64 << 20;

/// Where the helper goes when the filling code has overtaken it: far enough past it that the
/// two never fault the same pages.
const LEAP: usize = 16 << 20;

/// The pages asked for at once.
const STEP: usize = 2 << 20;

/// How long the helper waits when it is a whole window ahead.
const PAUSE: Duration = Duration::from_micros(200);

/// Offsets from the buffer's start; this one says the helper must stop.
const STOPPED: usize = usize::MAX;

/// How far the filling code has got, told to the helper.
#[derive(Debug)]
pub struct Progress {
    filled: AtomicUsize,
    /// The buffer's room when the helper was given it.
    room: usize,
}

impl Progress {
    /// The buffer holds `len` bytes of a room of `capacity`. A room other than the one the
    /// helper was given means the buffer grew past it and moved: the helper stops.
    pub fn at(&self, len: usize, capacity: usize) {
        if capacity == self.room {
            self.filled.store(len.min(STOPPED - 1), Ordering::Relaxed);
        } else {
            self.stop();
        }
    }

    /// The helper stops.
    fn stop(&self) {
        self.filled.store(STOPPED, Ordering::Relaxed);
    }
}

/// Runs `fill`, which writes the `len` bytes from `start` front to back and tells its progress,
/// while another thread faults in the pages ahead of it. Buffers under [`WORTH`], a machine of
/// one CPU or a kernel without `MADV_POPULATE_WRITE` (before Linux 5.14) get no helper: `fill`
/// runs alone, as fast as it would without this.
///
/// Only the address is used, never dereferenced: should the buffer move or go while the helper
/// runs, it asks for pages that are no longer there (and stops at the kernel's refusal) or for
/// pages of other memory of this process, whose content the request never changes.
pub fn ahead<R>(start: *const u8, len: usize, fill: impl FnOnce(&Progress) -> R) -> R {
    let progress = Progress {
        filled: AtomicUsize::new(0),
        room: len,
    };
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    if len < WORTH || cpus < 2 || !cfg!(target_os = "linux") {
        return fill(&progress);
    }
    let region = (start as usize, len);
    std::thread::scope(|s| {
        let helper = std::thread::Builder::new()
            .name("prefault".into())
            .spawn_scoped(s, || populate(region, &progress));
        let out = fill(&progress);
        progress.stop();
        if let Ok(helper) = helper {
            let _ = helper.join();
        }
        out
    })
}

/// The helper: faults in the region's pages a [`STEP`] at a time, up to a [`WINDOW`] past the
/// filling code, until it is stopped, reaches the region's end or is refused.
fn populate((start, len): (usize, usize), progress: &Progress) {
    let page = page_size();
    let end = start.saturating_add(len);
    let mut next = start.next_multiple_of(page);
    while next < end {
        let filled = progress.filled.load(Ordering::Relaxed);
        if filled == STOPPED {
            return;
        }
        let filled = start.saturating_add(filled);
        if next < filled {
            next = filled.saturating_add(LEAP).next_multiple_of(page);
            continue;
        }
        if next >= filled.saturating_add(WINDOW) {
            std::thread::sleep(PAUSE);
            continue;
        }
        let n = STEP.min(end - next);
        if !request(next, n) {
            return;
        }
        next += n;
    }
}

fn page_size() -> usize {
    // SAFETY: sysconf reads a constant of the system.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(size)
        .ok()
        .filter(|&s| s > 0)
        .unwrap_or(4096)
}

/// Asks the kernel to fault in the pages of `[at, at + len)` for writing; false when it refuses
/// (no such request on this kernel, or pages not mapped writable).
#[cfg(target_os = "linux")]
fn request(at: usize, len: usize) -> bool {
    // SAFETY: MADV_POPULATE_WRITE only faults pages in: it reads and writes no byte of them, so
    // whatever the range holds (or if nothing is mapped there) no memory the program sees
    // changes; the kernel checks the range and fails the call for what is not mapped.
    unsafe { libc::madvise(at as *mut libc::c_void, len, libc::MADV_POPULATE_WRITE) == 0 }
}

#[cfg(not(target_os = "linux"))]
fn request(_at: usize, _len: usize) -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_buffer_filled_with_the_helper_holds_exactly_what_was_written() {
        let len = WORTH + (3 << 20) + 123;
        let mut buf: Vec<u8> = Vec::with_capacity(len);
        let start = buf.as_ptr();
        ahead(start, len, |progress| {
            for i in 0..len {
                buf.push((i % 251) as u8);
                if i % 4096 == 0 {
                    progress.at(i, len);
                }
            }
        });
        assert_eq!(buf.len(), len);
        assert!(buf.iter().enumerate().all(|(i, &b)| b == (i % 251) as u8));
    }

    #[test]
    fn the_helper_faults_in_pages_ahead_of_the_filling_code() {
        let len = WORTH + (8 << 20);
        let buf: Vec<u8> = Vec::with_capacity(len);
        let resident_before = resident_pages(buf.as_ptr(), len);
        // The filling code writes nothing and waits until the helper has faulted pages in.
        let resident = ahead(buf.as_ptr(), len, |progress| {
            progress.at(0, buf.capacity());
            let mut seen = 0;
            for _ in 0..2000 {
                seen = resident_pages(buf.as_ptr(), len);
                if seen >= WINDOW / page_size() / 2 {
                    break;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            seen
        });
        assert_eq!(resident_before, 0, "a new buffer has no page yet");
        assert!(
            resident >= WINDOW / page_size() / 2,
            "the helper faulted in {resident} pages ahead of a filling code at 0"
        );
    }

    /// The pages of `[at, at + len)` in memory, by `mincore`.
    fn resident_pages(at: *const u8, len: usize) -> usize {
        let page = page_size();
        let first = (at as usize).next_multiple_of(page);
        let pages = (at as usize + len - first) / page;
        let mut vec = vec![0u8; pages];
        // SAFETY: the range lies within the Vec's allocation; mincore writes one byte a page
        // into `vec`, which has that many.
        let r = unsafe {
            libc::mincore(
                first as *mut libc::c_void,
                pages * page,
                vec.as_mut_ptr().cast(),
            )
        };
        assert_eq!(r, 0, "mincore");
        vec.iter().filter(|&&b| b & 1 == 1).count()
    }
}
