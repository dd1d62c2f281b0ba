//! SIGINT and SIGTERM in the middle of a task: the task's process group, PostgreSQL and Redis
//! are all gone afterwards, and the run says it was interrupted.

use std::time::Duration;

use crate::support::{Project, require_servers, wait_exit, wait_for};

fn interrupted_run(signal: i32, twice: bool) {
    require_servers();
    let p = Project::new();
    let started = p.path().join("started");
    p.file(
        "pipelines/p/pipeline.toml",
        &format!(
            "services = [\"postgres\", \"redis\"]\n[tasks.long]\nkind = \"command\"\nargv = [\"sh\", \"-c\", \"sleep 600 & touch {}; wait\"]\n",
            started.display()
        ),
    )
    .file("scenarios/s/scenario.toml", "pipeline = \"p\"\n[[sink]]\nname = \"k\"\nservice = \"redis\"\nkeys = \"*\"\n");
    let mut child = p
        .command(&["run"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn harness");
    assert!(wait_for(&started, 60), "the task never started");
    // The servers of this run are up, under the project's TMPDIR.
    let during = p.processes();
    assert!(
        during.iter().any(|l| l.contains("postgres")),
        "postgres not found while running: {during:?}"
    );
    assert!(
        during.iter().any(|l| l.contains("redis-server")),
        "redis not found while running: {during:?}"
    );

    // SAFETY: kill with a valid pid and signal.
    unsafe {
        libc::kill(child.id() as i32, signal);
    }
    if twice {
        std::thread::sleep(Duration::from_millis(100));
        // SAFETY: as above.
        unsafe {
            libc::kill(child.id() as i32, signal);
        }
    }
    assert_eq!(wait_exit(&mut child, 30).code(), Some(130));
    let left = p.leftover_processes();
    assert!(left.is_empty(), "processes left behind: {left:?}");
    if twice {
        return; // an immediate exit leaves the service folders; only processes must be gone
    }
    let tmp_left: Vec<_> = std::fs::read_dir(p.tmp())
        .expect("tmp")
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(
        tmp_left.is_empty(),
        "service folders left behind: {tmp_left:?}"
    );
}

#[test]
fn sigint_leaves_no_process_behind() {
    interrupted_run(libc::SIGINT, false);
}

#[test]
fn sigterm_leaves_no_process_behind() {
    interrupted_run(libc::SIGTERM, false);
}

#[test]
fn a_second_sigint_exits_at_once_and_still_kills_everything() {
    interrupted_run(libc::SIGINT, true);
}
