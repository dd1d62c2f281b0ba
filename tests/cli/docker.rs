//! The docker backend against the real Docker engine of this machine: the same scenarios and
//! goldens as the local backend, no container left behind whatever happens to the run, and a
//! container that never becomes ready reported with its last log lines.

use std::time::{Duration, Instant};

use crate::support::{Project, Run, SparkDrivers, require_servers, wait_for};

/// Containers of harness runs started from this project's folder.
fn containers(p: &Project) -> Vec<String> {
    let out = std::process::Command::new("docker")
        .args([
            "ps",
            "-a",
            "--filter",
            "label=org.harness.owner",
            "--format",
            "{{.ID}} {{.Mounts}} {{.Label \"org.harness.pid\"}}",
        ])
        .output()
        .expect("docker ps");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let _ = p;
    text.lines().map(str::to_string).collect()
}

/// Containers carrying the label of a harness pid.
fn containers_of_pid(pid: u32) -> usize {
    let out = std::process::Command::new("docker")
        .args([
            "ps",
            "-a",
            "-q",
            "--filter",
            &format!("label=org.harness.pid={pid}"),
        ])
        .output()
        .expect("docker ps");
    String::from_utf8_lossy(&out.stdout).lines().count()
}

pub(crate) fn require_docker() {
    require_servers();
    let ok = std::process::Command::new("docker")
        .args(["image", "inspect", "harness-base:bookworm"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "the offline base image harness-base:bookworm is missing: run scripts/setup.sh (it runs containers/base/build-base-image.sh)"
    );
}

const HARNESS_TOML: &str = "backend = \"docker\"\n[images]\nbase = \"harness-base:bookworm\"\n";

/// Runs the binary and waits, like `Project::run`, also giving the pid the run had: the
/// containers it started carry it as a label.
fn run_with_pid(p: &Project, args: &[&str]) -> (u32, Run) {
    let child = p
        .command(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let pid = child.id();
    (pid, Run::from(child.wait_with_output().expect("wait")))
}

/// The run was on the docker backend, its services in containers.
fn assert_ran_in_containers(r: &Run) {
    assert!(
        r.stderr.contains("backend: docker (requested)"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("(container)"),
        "services run in containers: {}",
        r.stderr
    );
}

/// The whole example suite on the docker backend, as the tasks of pipeline.toml on Spark Connect
/// (example.rs runs it on the local backend through its Airflow DAG, in submit mode): the same
/// goldens, one Spark Connect server whose clients are the tasks and the harness's own reads and
/// seeds, and nothing left once the run ends, neither process nor container.
#[test]
fn the_example_suite_passes_on_docker_in_spark_connect_mode_with_the_local_goldens() {
    require_docker();
    let p = Project::example();
    p.file("harness.toml", HARNESS_TOML);
    let before = p.goldens();
    let drivers = SparkDrivers::watch(&p);
    let (pid, r) = run_with_pid(&p, &["run", "--spark-mode", "connect"]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_ran_in_containers(&r);
    // The tasks and whatever the harness reads or seeds through Spark are clients of one server;
    // the one other driver is `publish_model_artifacts`, which pins `spark_mode = "submit"`.
    // The harness's own session never has a JVM of its own.
    assert_eq!(drivers.seen(), ["connect-server", "task"], "{}", r.stderr);
    assert_eq!(
        r.stderr.matches("spark connect server ready").count(),
        1,
        "one server for the whole run: {}",
        r.stderr
    );
    assert_eq!(
        p.goldens(),
        before,
        "the local backend's goldens, byte for byte, and no pending files"
    );
    assert!(
        p.leftover_processes().is_empty(),
        "{:?}",
        p.leftover_processes()
    );
    assert_eq!(
        containers_of_pid(pid),
        0,
        "the run's containers are removed"
    );
}

/// The example's Airflow DAG on the docker backend: Airflow runs here, and its connections lead
/// its tasks to the containers (PostgreSQL and Redis for `export_monetization`, ClickHouse and
/// the metastore for the Spark job `export_clickhouse_events`).
#[test]
fn the_examples_airflow_dag_runs_its_tasks_against_the_containers_with_the_local_goldens() {
    require_docker();
    let p = Project::example();
    p.file("harness.toml", HARNESS_TOML);
    let before = p.goldens();
    let r = p.run(&[
        "run",
        "monetization_to_redis",
        "clickhouse_views_to_hive",
        "--pipeline",
        "hydramatrices_airflow",
    ]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_ran_in_containers(&r);
    for task in [
        "monetization_to_redis/export_monetization",
        "clickhouse_views_to_hive/export_clickhouse_events",
    ] {
        assert!(
            r.stderr.contains(&format!("✔ {task}")),
            "{task} ran in Airflow: {}",
            r.stderr
        );
    }
    assert_eq!(p.goldens(), before, "the same goldens serve both backends");
}

fn sleeper_project() -> (Project, std::path::PathBuf) {
    require_docker();
    let p = Project::new();
    let started = p.path().join("started");
    p.file("harness.toml", HARNESS_TOML)
        .file(
            "pipelines/p/pipeline.toml",
            &format!("services = [\"postgres\", \"redis\"]\n[tasks.wait]\nkind = \"command\"\nargv = [\"sh\", \"-c\", \"touch {}; sleep 600\"]\n[tasks.ok]\nkind = \"command\"\nargv = [\"true\"]\n[tasks.bad]\nkind = \"command\"\nargv = [\"false\"]\n", started.display()),
        )
        .file("scenarios/pass/scenario.toml", "pipeline = \"p\"\ntasks = [\"ok\"]\n[[sink]]\nname = \"k\"\nservice = \"redis\"\nkeys = \"*\"\n")
        .file("scenarios/pass/golden/k.snap", "# harness snapshot v1\n# sink: k\n# source: redis keys *\nkeys: 0\n")
        .file("scenarios/fail/scenario.toml", "pipeline = \"p\"\ntasks = [\"bad\"]\n[[sink]]\nname = \"k\"\nservice = \"redis\"\nkeys = \"*\"\n")
        .file("scenarios/wait/scenario.toml", "pipeline = \"p\"\ntasks = [\"wait\"]\n[[sink]]\nname = \"k\"\nservice = \"redis\"\nkeys = \"*\"\n");
    (p, started)
}

#[test]
fn no_container_remains_after_a_pass_a_failure_or_sigint_and_sigkill_leftovers_are_removed() {
    let (p, started) = sleeper_project();

    // A passing run and a failing run: no container of theirs remains.
    for (scenario, code) in [("pass", 0), ("fail", 1)] {
        let (pid, r) = run_with_pid(&p, &["run", scenario]);
        assert_eq!(r.code, code, "{}", r.stderr);
        assert_eq!(
            containers_of_pid(pid),
            0,
            "containers left by the {scenario} run: {:?}",
            containers(&p)
        );
    }

    // SIGINT in the middle of a task.
    let mut child = p
        .command(&["run", "wait"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    assert!(wait_for(&started, 120), "the task never started");
    assert_eq!(
        containers_of_pid(child.id()),
        2,
        "postgres and redis run as containers"
    );
    // SAFETY: kill with a valid pid and signal.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().expect("wait").is_none() {
        assert!(Instant::now() < deadline, "no exit within 60 s of SIGINT");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        containers_of_pid(child.id()),
        0,
        "containers left after SIGINT"
    );

    // SIGKILL leaves them; the next run removes them and says so.
    std::fs::remove_file(&started).expect("reset marker");
    let mut child = p
        .command(&["run", "wait"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    assert!(wait_for(&started, 120), "the task never started");
    let killed = child.id();
    child.kill().expect("SIGKILL");
    let _ = child.wait();
    assert_eq!(
        containers_of_pid(killed),
        2,
        "SIGKILL leaves the containers behind"
    );
    let out = p.command(&["run", "pass"]).output().expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains(&format!("(harness pid {killed}), which ended")),
        "{stderr}"
    );
    assert_eq!(
        containers_of_pid(killed),
        0,
        "leftovers of the killed run: {:?}",
        containers(&p)
    );
}

#[test]
fn a_container_that_never_becomes_ready_is_exit_3_with_its_last_log_lines() {
    let (p, _) = sleeper_project();
    // A setting PostgreSQL does not know: the server stops at start, so it never answers.
    p.file("harness.toml", &format!("{HARNESS_TOML}[services.postgres]\nstart_timeout = \"60s\"\nsettings = [\"no_such_setting=1\"]\n"));
    let (pid, r) = run_with_pid(&p, &["run", "pass"]);
    let stderr = &r.stderr;
    assert_eq!(r.code, 3, "{stderr}");
    assert!(
        stderr.contains("postgres did not start: the container exited before it was ready"),
        "{stderr}"
    );
    assert!(
        stderr.contains("last log lines:") && stderr.contains("no_such_setting"),
        "{stderr}"
    );
    assert_eq!(containers_of_pid(pid), 0);
}

#[test]
fn auto_picks_docker_when_a_daemon_answers_and_local_otherwise_and_says_why() {
    let p = Project::new();
    std::fs::remove_file(p.path().join("harness.toml")).expect("no harness.toml: backend auto");
    p.file(
        "pipelines/p/pipeline.toml",
        "[tasks.t]\nkind = \"command\"\nargv = [\"true\"]\n",
    )
    .file(
        "scenarios/s/scenario.toml",
        "pipeline = \"p\"\n[[sink]]\nname = \"root\"\nservice = \"hdfs\"\npath = \"/\"\n",
    );
    let r = p.run(&["run", "--update"]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(
        r.stderr
            .contains("backend: docker (auto: a Docker daemon answers)"),
        "{}",
        r.stderr
    );
    let r = p.run_env(
        &["run"],
        &[("DOCKER_HOST", "unix:///nonexistent/docker.sock")],
    );
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(r.stderr.contains("backend: local (auto: "), "{}", r.stderr);
}
