//! The one place that knows about signals: SIGINT and SIGTERM become a cancellation the runner
//! receives as a value. The first signal stops the run cleanly (tasks' process groups killed,
//! services stopped, reports written); a second one kills every process group the run owns and
//! exits at once.
//!
//! A command that stops cleanly asks for [`defer`] as soon as its arguments are parsed, before
//! it loads the project: a signal that comes before [`install`] is held and becomes the
//! cancellation as the handlers are installed, so that no signal finds the default action (death
//! without a report, an exit code of "killed by SIGINT") in the run's first milliseconds.

use std::sync::atomic::{AtomicBool, Ordering};

use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;

/// Set by a SIGINT/SIGTERM that came after [`defer`] and before [`install`] took it over.
static PENDING: AtomicBool = AtomicBool::new(false);
/// Set once [`install`] has taken the signals over: the holding action does nothing more.
static HANDED: AtomicBool = AtomicBool::new(false);

/// From now on SIGINT and SIGTERM are held for [`install`] instead of ending the process. Call
/// only for commands that then install the handlers (`run`, `env serve`), in the main thread
/// before any other starts: no other command's Ctrl-C may be swallowed.
pub fn defer() {
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: the action only stores to an atomic, which is async-signal-safe.
        let registered = unsafe {
            signal_hook_registry::register(sig, || {
                if !HANDED.load(Ordering::SeqCst) {
                    PENDING.store(true, Ordering::SeqCst);
                }
            })
        };
        if let Err(e) = registered {
            eprintln!("warning: cannot hold signals until the run starts: {e}");
        }
    }
}

/// Whether a signal came while held and no [`install`] has taken it yet: the command should
/// stop with `exit::INTERRUPTED` before it starts anything more.
pub fn interrupted() -> bool {
    PENDING.load(Ordering::SeqCst)
}

/// Cancels `cancel` on the first SIGINT/SIGTERM (or at once when one came while held, see
/// [`defer`]); kills every child group and exits with `exit::INTERRUPTED` on the second.
pub fn install(cancel: CancellationToken) -> std::io::Result<()> {
    let mut int = signal(SignalKind::interrupt())?;
    let mut term = signal(SignalKind::terminate())?;
    HANDED.store(true, Ordering::SeqCst);
    if PENDING.swap(false, Ordering::SeqCst) {
        // Not counted as the first signal: one that comes while Tokio's handler is being added
        // reaches both, and must not count twice.
        eprintln!("harness: interrupted; stopping tasks and services");
        cancel.cancel();
    }
    tokio::spawn(async move {
        let mut seen = 0;
        loop {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
            seen += 1;
            if seen == 1 {
                eprintln!(
                    "harness: interrupted; stopping tasks and services (press Ctrl-C again to exit at once)"
                );
                cancel.cancel();
            } else {
                abort();
            }
        }
    });
    Ok(())
}

/// For commands that have no clean stop of their own (`bench`): the first SIGINT or SIGTERM
/// kills everything the command started, removes its folders, and exits. Call from within a
/// Tokio runtime.
pub fn install_abort() -> std::io::Result<()> {
    let mut int = signal(SignalKind::interrupt())?;
    let mut term = signal(SignalKind::terminate())?;
    tokio::spawn(async move {
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
        eprintln!("harness: interrupted; removing what this command started");
        abort();
    });
    Ok(())
}

/// Kills every process group and marked process of the run, removes its folders (the ledger
/// keeps its containers for the next start to remove), and exits.
fn abort() -> ! {
    crate::process::kill_all_groups();
    if let Some(l) = crate::ledger::current() {
        l.close();
    }
    std::process::exit(crate::exit::INTERRUPTED);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signal_held_before_the_handlers_are_installed_becomes_the_cancellation() {
        defer();
        assert!(!interrupted());
        // SAFETY: raising a signal this process now holds.
        unsafe {
            libc::raise(libc::SIGINT);
        }
        // Still alive: the signal was held, not given the default action.
        assert!(interrupted());
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let cancel = CancellationToken::new();
        rt.block_on(async { install(cancel.clone()) })
            .expect("handlers");
        assert!(cancel.is_cancelled());
        assert!(!interrupted(), "the held signal was taken by the handlers");
    }
}
