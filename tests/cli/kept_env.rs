//! Kept environments (`harness env up | down | list`, `run --env`, `run --keep-env`) on a real
//! Redis: runs reuse the same services, reset between them; one run at a time; Ctrl-C stops the
//! run, not the environment; a killed environment is swept; an idle one stops by itself.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::support::{Project, Run, every_thread_exited, require_servers, wait_exit, wait_for};

/// `mark` pushes onto the list `seen` (one element after a reset) and appends the Redis
/// endpoint it was given to `ports.txt`; `slow` says it started, then sleeps.
fn project() -> Project {
    require_servers();
    let p = Project::new();
    let ports = p.path().join("ports.txt");
    let started = p.path().join("started");
    p.file(
        "pipelines/quick/pipeline.toml",
        &format!(
            r#"
services = ["redis"]

[tasks.mark]
kind = "command"
outputs = ["redis:seen"]
argv = ["sh", "-c", "redis-cli --no-auth-warning -u \"$HARNESS_REDIS_URL\" RPUSH seen \"$GREETING\" >/dev/null && echo \"$HARNESS_REDIS_URL\" | sed 's/.*@//' >> {}"]
"#,
            ports.display()
        ),
    )
    .file(
        "pipelines/slow/pipeline.toml",
        &format!(
            "services = [\"redis\"]\n[tasks.wait]\nkind = \"command\"\nargv = [\"sh\", \"-c\", \"touch {}; sleep 600\"]\n",
            started.display()
        ),
    )
    .file(
        "pipelines/pg/pipeline.toml",
        "services = [\"postgres\"]\n[tasks.noop]\nkind = \"command\"\nargv = [\"true\"]\n",
    )
    .file(
        "scenarios/quick/scenario.toml",
        "pipeline = \"quick\"\n[[seed]]\nservice = \"redis\"\njson = \"given.json\"\n[[sink]]\nname = \"keys\"\nservice = \"redis\"\nkeys = \"*\"\n",
    )
    .file("scenarios/quick/given.json", "{\"given\": \"1\"}\n")
    .file(
        "scenarios/slow/scenario.toml",
        "pipeline = \"slow\"\n[[sink]]\nname = \"keys\"\nservice = \"redis\"\nkeys = \"*\"\n",
    )
    .file(
        "scenarios/pg/scenario.toml",
        "pipeline = \"pg\"\n[[sink]]\nname = \"t\"\nservice = \"postgres\"\nquery = \"SELECT 1 AS one\"\n",
    );
    p
}

/// The project's own ledger folder, so that its kept environments are its own.
fn ledger(p: &Project) -> PathBuf {
    p.path().join("ledger")
}

fn harness(p: &Project, args: &[&str]) -> Run {
    let ledger = ledger(p);
    p.run_env(
        args,
        &[
            ("HARNESS_LEDGER_DIR", ledger.to_str().expect("utf-8")),
            ("GREETING", "hello"),
        ],
    )
}

fn command(p: &Project, args: &[&str]) -> std::process::Command {
    let mut cmd = p.command(args);
    cmd.env("HARNESS_LEDGER_DIR", ledger(p))
        .env("GREETING", "hello");
    cmd
}

/// The kept environments `env list --json` shows.
fn listed(p: &Project) -> Vec<serde_json::Value> {
    let r = harness(p, &["env", "list", "--json"]);
    assert_eq!(r.code, 0, "{}", r.all());
    let v: serde_json::Value = serde_json::from_str(r.stdout.trim()).expect("json");
    v["environments"].as_array().cloned().unwrap_or_default()
}

fn redis_servers(p: &Project) -> Vec<String> {
    p.processes()
        .into_iter()
        .filter(|l| l.contains("redis-server"))
        .collect()
}

#[test]
fn runs_on_a_kept_environment_reuse_its_services_reset_between_runs_until_env_down() {
    let p = project();
    let up = harness(&p, &["env", "up", "--name", "t", "quick", "slow"]);
    assert_eq!(up.code, 0, "{}", up.all());
    assert!(
        up.stdout.contains("kept environment `t` is up"),
        "{}",
        up.all()
    );
    assert!(up.stdout.contains("redis"), "{}", up.all());
    // `up` returned; the services stay.
    assert_eq!(redis_servers(&p).len(), 1, "{:?}", p.processes());

    let first = harness(&p, &["run", "--env", "t", "quick", "--update"]);
    assert_eq!(first.code, 0, "{}", first.all());
    // The run's output reaches this run's own standard output and error.
    assert!(first.stdout.contains("1 passed"), "{}", first.all());
    assert!(first.stderr.contains("PASS quick"), "{}", first.all());
    assert!(p.exists("scenarios/quick/golden/keys.snap"));
    for _ in 0..2 {
        let again = harness(&p, &["run", "--env", "t", "quick"]);
        assert_eq!(
            again.code,
            0,
            "reset between runs keeps `seen` at one element: {}",
            again.all()
        );
    }
    let golden = p.read("scenarios/quick/golden/keys.snap");
    assert!(golden.contains("hello"), "{golden}");
    // The same Redis each time: three runs, one endpoint, one server.
    let ports = p.read("ports.txt");
    let lines: Vec<&str> = ports.lines().collect();
    assert_eq!(lines.len(), 3, "{ports}");
    assert!(lines.iter().all(|l| *l == lines[0]), "{ports}");
    assert_eq!(redis_servers(&p).len(), 1, "{:?}", p.processes());

    let envs = listed(&p);
    assert_eq!(envs.len(), 1, "{envs:?}");
    assert_eq!(envs[0]["name"], "t");
    assert!(envs[0]["busy"].is_null(), "{envs:?}");
    assert_eq!(envs[0]["services"], serde_json::json!(["redis"]));
    // The contract's variables, with the password, for the user only.
    let env_file = ledger(&p).join("envs/t.env");
    let text = std::fs::read_to_string(&env_file).expect("env file");
    assert!(text.contains("HARNESS_REDIS_URL=redis://"), "{text}");
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(&env_file)
        .expect("meta")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    // The listing and `up` never print the password.
    let secret = text
        .lines()
        .find_map(|l| l.strip_prefix("HARNESS_REDIS_URL=redis://default:"))
        .and_then(|rest| rest.split('@').next())
        .expect("a password in the URL");
    assert!(!up.all().contains(secret), "{}", up.all());
    assert!(!harness(&p, &["env", "list"]).all().contains(secret));

    let down = harness(&p, &["env", "down", "t"]);
    assert_eq!(down.code, 0, "{}", down.all());
    assert!(listed(&p).is_empty());
    let left = p.leftover_processes();
    assert!(left.is_empty(), "processes left behind: {left:?}");
    assert!(!env_file.exists());
}

#[test]
fn a_kept_environment_refuses_a_second_run_and_ctrl_c_stops_the_run_but_not_the_environment() {
    let p = project();
    let up = harness(&p, &["env", "up", "--name", "busy"]);
    assert_eq!(up.code, 0, "{}", up.all());
    let mut slow = command(&p, &["run", "--env", "busy", "slow"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    assert!(
        wait_for(&p.path().join("started"), 60),
        "the slow task never started"
    );
    let envs = listed(&p);
    assert_eq!(envs[0]["busy"]["pid"], slow.id(), "{envs:?}");

    let second = harness(&p, &["run", "--env", "busy", "quick", "--update"]);
    assert_eq!(second.code, 3, "{}", second.all());
    assert!(
        second.stderr.contains("running another run"),
        "{}",
        second.all()
    );

    // SAFETY: kill with a valid pid and signal.
    unsafe { libc::kill(slow.id() as i32, libc::SIGINT) };
    assert_eq!(wait_exit(&mut slow, 60).code(), Some(130));
    let deadline = Instant::now() + Duration::from_secs(10);
    while p.processes().iter().any(|l| l.contains("sleep 600")) {
        assert!(
            Instant::now() < deadline,
            "the task outlived its run: {:?}",
            p.processes()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // The environment is still up and takes the next run.
    let after = harness(&p, &["run", "--env", "busy", "quick", "--update"]);
    assert_eq!(after.code, 0, "{}", after.all());
    assert_eq!(listed(&p)[0]["busy"], serde_json::Value::Null);

    assert_eq!(harness(&p, &["env", "down", "busy"]).code, 0);
    let left = p.leftover_processes();
    assert!(left.is_empty(), "processes left behind: {left:?}");
}

#[test]
fn a_killed_kept_environment_is_swept_by_the_next_command_and_an_idle_one_stops_by_itself() {
    let p = project();
    let up = harness(&p, &["env", "up", "--name", "k", "--idle-timeout", "0"]);
    assert_eq!(up.code, 0, "{}", up.all());
    let pid = listed(&p)[0]["pid"].as_u64().expect("pid") as i32;
    assert_eq!(redis_servers(&p).len(), 1);
    // SAFETY: kill with a valid pid and signal.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    // Dead once every thread is: its other threads may hold the name's lock after its main
    // thread is a zombie.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !every_thread_exited(pid) {
        assert!(
            Instant::now() < deadline,
            "the kept environment did not die"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // The next command sweeps what it left and no longer lists it.
    let list = harness(&p, &["env", "list"]);
    assert!(
        list.stdout.contains("no kept environment is up"),
        "{}",
        list.all()
    );
    assert!(
        list.stderr.contains("ended without cleaning up"),
        "{}",
        list.all()
    );
    let left = p.leftover_processes();
    assert!(left.is_empty(), "processes left behind: {left:?}");

    let up = harness(&p, &["env", "up", "--name", "idle", "--idle-timeout", "2s"]);
    assert_eq!(up.code, 0, "{}", up.all());
    let deadline = Instant::now() + Duration::from_secs(60);
    while !listed(&p).is_empty() {
        assert!(
            Instant::now() < deadline,
            "the idle environment did not stop"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let log = std::fs::read_to_string(ledger(&p).join("envs/idle.log")).expect("log");
    assert!(log.contains("no run for 2s: stopping"), "{log}");
    assert!(log.contains("stopped"), "{log}");
    let left = p.leftover_processes();
    assert!(left.is_empty(), "processes left behind: {left:?}");
}

#[test]
fn keep_env_starts_the_environment_once_and_unusable_requests_are_exit_2() {
    let p = project();
    let first = harness(
        &p,
        &["run", "--keep-env", "--env", "kk", "quick", "--update"],
    );
    assert_eq!(first.code, 0, "{}", first.all());
    let second = harness(&p, &["run", "--keep-env", "--env", "kk", "quick"]);
    assert_eq!(second.code, 0, "{}", second.all());
    let ports = p.read("ports.txt");
    let lines: Vec<&str> = ports.lines().collect();
    assert_eq!(lines.len(), 2, "{ports}");
    assert_eq!(
        lines[0], lines[1],
        "the second run started no Redis of its own"
    );

    let none = harness(&p, &["run", "--env", "nope", "quick"]);
    assert_eq!(none.code, 2, "{}", none.all());
    assert!(
        none.stderr
            .contains("no kept environment named `nope` is up"),
        "{}",
        none.all()
    );
    let taken = harness(&p, &["env", "up", "--name", "kk"]);
    assert_eq!(taken.code, 2, "{}", taken.all());
    assert!(taken.stderr.contains("is up already"), "{}", taken.all());
    let bad = harness(&p, &["env", "up", "--name", "a/b"]);
    assert_eq!(bad.code, 2, "{}", bad.all());
    // Only the services of `quick` were started: a scenario needing PostgreSQL is refused.
    let pg = harness(&p, &["run", "--env", "kk", "pg"]);
    assert_eq!(pg.code, 2, "{}", pg.all());
    assert!(pg.stderr.contains("has no postgres"), "{}", pg.all());
    let repeat = harness(&p, &["run", "--env", "kk", "--repeat", "2", "quick"]);
    assert_eq!(repeat.code, 2, "{}", repeat.all());
    // Another project's run is refused.
    let other = Project::new();
    other.file(
        "pipelines/quick/pipeline.toml",
        "services = [\"redis\"]\n[tasks.t]\nkind = \"command\"\nargv = [\"true\"]\n",
    );
    other.file(
        "scenarios/quick/scenario.toml",
        "pipeline = \"quick\"\n[[sink]]\nname = \"keys\"\nservice = \"redis\"\nkeys = \"*\"\n",
    );
    let ledger = ledger(&p);
    let foreign = other.run_env(
        &["run", "--env", "kk", "quick"],
        &[("HARNESS_LEDGER_DIR", ledger.to_str().expect("utf-8"))],
    );
    assert_eq!(foreign.code, 2, "{}", foreign.all());
    assert!(
        foreign.stderr.contains("was started for"),
        "{}",
        foreign.all()
    );

    assert_eq!(harness(&p, &["env", "down", "kk"]).code, 0);
    assert_eq!(harness(&p, &["env", "down", "kk"]).code, 2);
    let left = p.leftover_processes();
    assert!(left.is_empty(), "processes left behind: {left:?}");
}
