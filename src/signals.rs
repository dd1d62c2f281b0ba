//! The one place that knows about signals: SIGINT and SIGTERM become a cancellation the runner
//! receives as a value. The first signal stops the run cleanly (tasks' process groups killed,
//! services stopped, reports written); a second one kills every process group the run owns and
//! exits at once.

use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;

/// Cancels `cancel` on the first SIGINT/SIGTERM; kills every child group and exits with
/// `exit::INTERRUPTED` on the second.
pub fn install(cancel: CancellationToken) -> std::io::Result<()> {
    let mut int = signal(SignalKind::interrupt())?;
    let mut term = signal(SignalKind::terminate())?;
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
