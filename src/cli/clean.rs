//! What dead runs left, swept: at the start of every command, by `harness clean`, and the
//! containers of this run at its end (`crate::ledger` keeps the books).

use crate::events::{Event, Events};
use crate::exit;
use crate::ledger;

use super::runtime;

/// Sweeps the runs that died without cleaning up, saying what was removed; returns how many
/// things went.
pub(super) fn sweep_dead_runs() -> usize {
    let swept = ledger::sweep_dead();
    let mut n = 0;
    for s in swept.iter().filter(|s| s.has_news()) {
        n += s.processes.len() + s.folders.len();
        eprintln!(
            "harness: run {} (`{}`) ended without cleaning up; {}",
            s.run,
            s.command,
            s.describe()
        );
    }
    let with_containers: Vec<ledger::Swept> = swept
        .into_iter()
        .filter(|s| !s.containers.is_empty())
        .collect();
    if !with_containers.is_empty() {
        n += remove_containers(&with_containers);
    }
    n
}

/// Removes the containers of `runs` (their ledgers are forgotten once that worked), and returns
/// how many were removed.
pub(super) fn remove_containers(runs: &[ledger::Swept]) -> usize {
    let Some(rt) = runtime() else { return 0 };
    rt.block_on(async {
        let docker = match crate::backend::docker::connect().await {
            Ok(d) => d,
            Err(e) => {
                eprintln!(
                    "harness: the containers of {} stay until Docker answers (`harness clean`): {e}",
                    runs.iter().map(|r| r.run.as_str()).collect::<Vec<_>>().join(", ")
                );
                return 0;
            }
        };
        let (events, mut rx) = Events::channel();
        let mut removed = 0;
        for run in runs {
            match crate::backend::docker::remove_run(&docker, &events, &run.run).await {
                Ok(n) => {
                    removed += n;
                    ledger::forget(run);
                }
                Err(e) => eprintln!("harness: cannot remove the containers of {}: {e}", run.run),
            }
        }
        drop(events);
        while let Some(e) = rx.recv().await {
            if let Event::Notice { message } = e {
                eprintln!("harness: {message}");
            }
        }
        removed
    })
}

/// `harness clean`: sweeps dead runs and the containers of dead runs, and says what went.
pub(super) fn clean() -> i32 {
    let mut n = sweep_dead_runs();
    if let Some(rt) = runtime() {
        n += rt.block_on(async {
            let Ok(docker) = crate::backend::docker::connect().await else {
                return 0;
            };
            let (events, mut rx) = Events::channel();
            let removed = crate::backend::docker::remove_orphans(&docker, &events)
                .await
                .unwrap_or_else(|e| {
                    eprintln!("harness: cannot list containers: {e}");
                    0
                });
            drop(events);
            while let Some(e) = rx.recv().await {
                if let Event::Notice { message } = e {
                    eprintln!("harness: {message}");
                }
            }
            removed
        });
    }
    if n == 0 {
        println!("nothing to clean: no harness run left anything behind");
    }
    exit::OK
}
