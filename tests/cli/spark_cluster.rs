//! Spark tasks past one process: a Spark standalone master and worker, started from the PySpark
//! install on loopback, run the example's Spark jobs (and the harness's own Hive seeds and
//! sinks) against `spark://127.0.0.1:PORT`, with the same goldens as `local[2]`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{Project, repo, require_servers};

/// The PySpark install of the managed Python: its `bin/spark-class` starts the daemons.
fn spark_home() -> PathBuf {
    let lib = repo().join(".venv/lib");
    std::fs::read_dir(&lib)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("site-packages/pyspark"))
        .find(|p| p.join("bin/spark-class").exists())
        .expect("PySpark is missing from .venv: run scripts/setup.sh")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A Spark daemon in its own process group, killed with it when dropped.
struct Daemon {
    child: Child,
    log: PathBuf,
}

impl Daemon {
    fn start(home: &Path, dir: &Path, name: &str, args: &[String]) -> Self {
        use std::os::unix::process::CommandExt;
        let log = dir.join(format!("{name}.log"));
        let out = std::fs::File::create(&log).expect("daemon log");
        // The daemons' scratch folders (and the executors' the worker makes) go with the
        // project's folder, and they keep no performance data file in /tmp/hsperfdata_*: a
        // daemon killed at the end would leave both behind.
        let tmp = dir.join("tmp");
        std::fs::create_dir_all(&tmp).expect("daemon scratch folder");
        let child = Command::new(home.join("bin/spark-class"))
            .args(args)
            .env("SPARK_HOME", home)
            .env("SPARK_LOCAL_IP", "127.0.0.1")
            .env("SPARK_LOG_DIR", dir)
            .env("SPARK_WORKER_DIR", dir.join("work"))
            .env("SPARK_LOCAL_DIRS", &tmp)
            .env(
                "SPARK_DAEMON_JAVA_OPTS",
                format!("-Djava.io.tmpdir={} -XX:-UsePerfData", tmp.display()),
            )
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("log"))
            .stderr(out)
            .process_group(0)
            .spawn()
            .expect("spark-class");
        Daemon { child, log }
    }

    /// Waits until its log says `needle`; panics with the log after `secs`.
    fn wait_for(&mut self, needle: &str, secs: u64) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let text = std::fs::read_to_string(&self.log).unwrap_or_default();
            if text.contains(needle) {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("the daemon exited ({status}):\n{text}");
            }
            assert!(Instant::now() < deadline, "no `{needle}` in:\n{text}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        // SAFETY: signals the daemon's own process group (its JVM and anything it started).
        unsafe { libc::kill(-(self.child.id() as i32), libc::SIGKILL) };
        let _ = self.child.wait();
    }
}

#[test]
fn the_examples_spark_jobs_give_the_same_goldens_on_a_standalone_cluster() {
    require_servers();
    let home = spark_home();
    let p = Project::example();
    let dir = p.path().join(".cluster");
    std::fs::create_dir_all(dir.join("work")).expect("cluster folder");
    let port = free_port();
    let master_url = format!("spark://127.0.0.1:{port}");
    let arg = |s: &str| s.to_string();
    let mut master = Daemon::start(
        &home,
        &dir,
        "master",
        &[
            arg("org.apache.spark.deploy.master.Master"),
            arg("--host"),
            arg("127.0.0.1"),
            arg("--port"),
            port.to_string(),
            arg("--webui-port"),
            free_port().to_string(),
        ],
    );
    master.wait_for("I have been elected leader", 120);
    let mut worker = Daemon::start(
        &home,
        &dir,
        "worker",
        &[
            arg("org.apache.spark.deploy.worker.Worker"),
            arg("--host"),
            arg("127.0.0.1"),
            arg("--cores"),
            arg("4"),
            arg("--memory"),
            arg("4g"),
            arg("--webui-port"),
            free_port().to_string(),
            arg("--work-dir"),
            dir.join("work").display().to_string(),
            master_url.clone(),
        ],
    );
    worker.wait_for("Successfully registered with master", 120);

    // Every application of the run (spark-submit tasks and the harness's session for the Hive
    // seeds and sinks) on the cluster. A standalone application takes every free core unless
    // capped: the session, which lives through the run, would leave none to the jobs.
    let settings = p.read("harness.toml");
    p.file(
        "harness.toml",
        &format!(
            "{settings}\n[services.spark]\nmaster = \"{master_url}\"\nconf = {{ \"spark.cores.max\" = \"2\", \"spark.executor.memory\" = \"1g\" }}\n"
        ),
    );
    let before = p.goldens();
    let r = p.run(&["run", "daily_views_aggregation", "item_similarity"]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(p.goldens(), before, "the same goldens as on local[2]");
    // The applications ran on the cluster's executors, not in their drivers.
    let master_log = std::fs::read_to_string(&master.log).unwrap_or_default();
    for app in ["daily_views", "item_similarity"] {
        assert!(
            master_log.contains(&format!("Registering app {app}")),
            "no application {app} on the master:\n{master_log}"
        );
    }
    assert!(
        std::fs::read_dir(dir.join("work"))
            .expect("worker folder")
            .flatten()
            .any(|e| e.file_name().to_string_lossy().starts_with("app-")),
        "no executor ran on the worker"
    );
}
