//! SIGINT and SIGTERM in the middle of a task: the task's process group, PostgreSQL and Redis
//! are all gone afterwards, and the run says it was interrupted.

use std::time::Duration;

use crate::support::{Project, require_servers, wait_exit, wait_for};

/// Runs `jobs` scenarios at once (one environment each), each stuck in a long task, then sends
/// `signal` (twice when asked).
fn interrupted_run(signal: i32, twice: bool, jobs: usize) {
    require_servers();
    let p = Project::new();
    let started = p.path().join("started");
    p.file(
        "pipelines/p/pipeline.toml",
        &format!(
            "services = [\"postgres\", \"redis\"]\n[tasks.long]\nkind = \"command\"\nargv = [\"sh\", \"-c\", \"sleep 600 & touch {}.$HARNESS_SCENARIO; wait\"]\n",
            started.display()
        ),
    );
    let names: Vec<String> = (1..=jobs).map(|i| format!("s{i}")).collect();
    for name in &names {
        p.file(
            &format!("scenarios/{name}/scenario.toml"),
            "pipeline = \"p\"\n[[sink]]\nname = \"k\"\nservice = \"redis\"\nkeys = \"*\"\n",
        );
    }
    let jobs_arg = jobs.to_string();
    let mut child = p
        .command(&["run", "-j", &jobs_arg])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn harness");
    for name in &names {
        let marker = started.with_extension(name);
        assert!(wait_for(&marker, 60), "the task of {name} never started");
    }
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
    assert_eq!(
        during.iter().filter(|l| l.contains("redis-server")).count(),
        jobs,
        "one Redis per environment: {during:?}"
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
    interrupted_run(libc::SIGINT, false, 1);
}

#[test]
fn sigterm_leaves_no_process_behind() {
    interrupted_run(libc::SIGTERM, false, 1);
}

#[test]
fn sigint_during_parallel_scenarios_stops_every_environment() {
    interrupted_run(libc::SIGINT, false, 2);
}

#[test]
fn a_second_sigint_exits_at_once_and_still_kills_everything() {
    interrupted_run(libc::SIGINT, true, 1);
}
