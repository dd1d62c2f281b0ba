//! Spark, the Hive metastore and the HDFS namespace for real: Hive seeds and sinks through the
//! harness's Spark session, spark-submit tasks sharing the metastore, HDFS seeds and sinks,
//! the reset between scenarios, a failing Spark job's traceback, and jobs run as clients of a
//! Spark Connect server.

use crate::support::{Project, require_servers};

pub(crate) fn require_spark() {
    require_servers();
    let venv = crate::support::repo().join(".venv");
    assert!(
        std::fs::read_dir(venv.join("lib"))
            .into_iter()
            .flatten()
            .flatten()
            .any(|e| e
                .path()
                .join("site-packages/pyspark/bin/spark-submit")
                .exists()),
        "PySpark is missing from .venv: run scripts/setup.sh"
    );
    assert!(
        std::process::Command::new("java")
            .arg("-version")
            .output()
            .is_ok_and(|o| o.status.success()),
        "java is missing: run scripts/setup.sh"
    );
}

const PIPELINE: &str = r#"
services = ["spark"]

[tasks.aggregate]
kind = "spark"
script = "jobs/aggregate.py"
conf = { "spark.sql.shuffle.partitions" = "2" }
driver_memory = "512m"

[tasks.boom]
kind = "spark"
script = "jobs/boom.py"

[tasks.after_boom]
kind = "command"
argv = ["true"]
depends_on = ["boom"]

[tasks.check_reset]
kind = "spark"
script = "jobs/check_reset.py"
"#;

const AGGREGATE: &str = r#"
import os
from pyspark.sql import SparkSession

spark = SparkSession.builder.enableHiveSupport().getOrCreate()
print("metastore", os.environ["HARNESS_HIVE_METASTORE_URI"], "hdfs", os.environ["HARNESS_HDFS_URL"])
spark.sql("CREATE DATABASE IF NOT EXISTS agg")
spark.sql("SELECT dt, count(*) AS views, sum(secs) AS total FROM raw.views GROUP BY dt") \
    .write.mode("overwrite").partitionBy("dt").saveAsTable("agg.daily")
spark.table("raw.views").where("secs > 2").select("user_id", "secs") \
    .write.mode("overwrite").parquet("hdfs://namenode:8020/out/long_views")
model = spark.sparkContext._jvm.org.apache.hadoop.fs.Path("/models/in/weights.txt")
fs = model.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
print("seeded model file exists:", fs.exists(model))
"#;

const BOOM: &str = r#"
from pyspark.sql import SparkSession

spark = SparkSession.builder.enableHiveSupport().getOrCreate()
def explode(rows):
    raise ValueError("bad row in partition")
spark.range(4).rdd.mapPartitions(explode).collect()
"#;

const INSPECT: &str = r#"
from pyspark.sql import SparkSession

spark = SparkSession.builder.enableHiveSupport().getOrCreate()
dbs = sorted(d.name for d in spark.catalog.listDatabases())
tables = sorted(t.name for t in spark.catalog.listTables("default"))
jvm = spark.sparkContext._jvm
fs = jvm.org.apache.hadoop.fs.Path("/").getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
left = sorted(s.getPath().getName() for s in fs.listStatus(jvm.org.apache.hadoop.fs.Path("/")))
print("databases", dbs, "default tables", tables, "hdfs root", left)
spark.createDataFrame([(",".join(dbs), ",".join(tables), ",".join(left))], "dbs string, tables string, hdfs_root string") \
    .write.mode("overwrite").saveAsTable("default.seen")
"#;

const VIEWS: &str =
    "user_id,secs,dt\n1,1.5,2024-05-01\n2,2.25,2024-05-01\n1,3,2024-05-02\n3,,2024-05-02\n";

fn spark_project() -> Project {
    require_spark();
    let p = Project::example_venv();
    p.file("pipelines/p/pipeline.toml", PIPELINE)
        .file("pipelines/p/jobs/aggregate.py", AGGREGATE)
        .file("pipelines/p/jobs/boom.py", BOOM)
        .file("pipelines/p/jobs/check_reset.py", INSPECT)
        .file("fixtures/views.csv", VIEWS)
        .file("fixtures/model/weights.txt", "0.25 0.75\n")
        .file(
            "scenarios/a_aggregate/scenario.toml",
            r#"pipeline = "p"
tasks = ["aggregate"]

[[seed]]
service = "hive"
table = "raw.views"
csv = "views.csv"
schema = "user_id BIGINT, secs DOUBLE, dt STRING"
partition_by = ["dt"]

[[seed]]
service = "hdfs"
path = "/models/in"
files = "model"

[[sink]]
name = "daily"
service = "hive"
table = "agg.daily"
key = ["dt"]

[[sink]]
name = "long_views"
service = "hdfs"
path = "/out/long_views"
format = "parquet"
key = ["user_id"]

[[sink]]
name = "models"
service = "hdfs"
path = "/models"
"#,
        )
        .file(
            "scenarios/b_boom/scenario.toml",
            "pipeline = \"p\"\ntasks = [\"boom\", \"after_boom\"]\n[[sink]]\nname = \"nothing\"\nservice = \"hive\"\ntable = \"default.none\"\n",
        )
        .file(
            "scenarios/c_reset_check/scenario.toml",
            "pipeline = \"p\"\ntasks = [\"check_reset\"]\n[[sink]]\nname = \"seen\"\nservice = \"hive\"\ntable = \"default.seen\"\n",
        );
    p
}

#[test]
fn hive_and_hdfs_seeds_spark_tasks_sinks_reset_and_a_failing_job() {
    let p = spark_project();
    let junit = p.path().join("junit.xml");
    let r = p.run(&["run", "--update", "--junit", junit.to_str().expect("utf-8")]);
    assert_eq!(r.code, 1, "only b_boom fails\n{}", r.all());

    // The Spark job's output is streamed live with the task's name.
    assert!(
        r.stderr
            .contains("a_aggregate/aggregate | metastore thrift://127.0.0.1:"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains("a_aggregate/aggregate | seeded model file exists: True"),
        "{}",
        r.stderr
    );
    assert_eq!(
        p.read("scenarios/a_aggregate/golden/daily.snap"),
        "# harness snapshot v1\n# sink: daily\n# source: hive table agg.daily\n# order: dt\n\
         columns: views bigint | total double | dt string\nrows: 2\n\n\
         views=2 | total=3.75 | dt=\"2024-05-01\"\nviews=2 | total=3.0 | dt=\"2024-05-02\"\n"
    );
    let long = p.read("scenarios/a_aggregate/golden/long_views.snap");
    assert!(
        long.contains("\"_SUCCESS\" 0 bytes sha256:e3b0c442"),
        "{long}"
    );
    assert!(
        long.contains("-{uuid}-c000.snappy.parquet\" (data)"),
        "{long}"
    );
    assert!(long.contains("columns: user_id bigint | secs double\nrows: 2\n\nuser_id=1 | secs=3.0\nuser_id=2 | secs=2.25\n"), "{long}");
    let models = p.read("scenarios/a_aggregate/golden/models.snap");
    assert!(
        models.contains("\"in/weights.txt\" 10 bytes sha256:"),
        "{models}"
    );

    // The failing job: traceback in the live log, the dependant skipped, JUnit carrying both.
    assert!(
        r.stderr.contains("b_boom/boom | ")
            && r.stderr.contains("ValueError: bad row in partition"),
        "{}",
        r.stderr
    );
    assert!(
        r.stdout
            .contains("task `after_boom` skipped (upstream `boom` failed)"),
        "{}",
        r.stdout
    );
    assert!(
        !p.exists("scenarios/b_boom/golden"),
        "no golden for a scenario whose task failed"
    );
    let xml = std::fs::read_to_string(&junit).expect("junit");
    assert!(xml.contains("<testcase name=\"b_boom\""), "{xml}");
    assert!(
        xml.matches("ValueError: bad row in partition").count() >= 2,
        "traceback in the failure message and system-out:\n{xml}"
    );

    // The scenario after them sees nothing of theirs: no database but default, no table, an
    // HDFS namespace holding only the warehouse.
    let seen = p.read("scenarios/c_reset_check/golden/seen.snap");
    assert!(
        seen.contains("dbs=\"default\" | tables=\"\" | hdfs_root=\"user\""),
        "{seen}"
    );

    // A changed input row fails the scenario with a diff naming the changed output; --update passes.
    p.file(
        "fixtures/views.csv",
        &VIEWS.replace("1,3,2024-05-02", "1,5,2024-05-02"),
    );
    let r = p.run(&["run", "a_aggregate"]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(
        r.stdout
            .contains("-views=2 | total=3.0 | dt=\"2024-05-02\""),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("+views=2 | total=5.0 | dt=\"2024-05-02\""),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("+user_id=1 | secs=5.0"), "{}", r.stdout);
    // Row by row too, for the Hive table and the HDFS dataset alike.
    assert!(
        r.stdout.contains("~ dt=\"2024-05-02\": total: 3.0 → 5.0"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("~ user_id=1: secs: 3.0 → 5.0"),
        "{}",
        r.stdout
    );
    let r = p.run(&["run", "a_aggregate", "--update"]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(
        p.leftover_processes().is_empty(),
        "{:?}",
        p.leftover_processes()
    );
}

#[test]
fn a_hive_seed_the_table_rejects_is_bad_input() {
    let p = spark_project();
    p.file(
        "fixtures/views.csv",
        "user_id,secs,dt\n1,not-a-number,2024-05-01\n",
    );
    let r = p.run(&["run", "a_aggregate"]);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(r.all().contains("fixtures/views.csv"), "{}", r.all());
    assert!(r.all().contains("raw.views"), "{}", r.all());
}

#[test]
fn a_metastore_kept_in_postgresql_serves_jobs_and_resets() {
    let p = spark_project();
    p.file(
        "harness.toml",
        "backend = \"local\"\n[services.hive]\ndatabase = \"postgres\"\n",
    );
    let r = p.run(&["run", "--update", "a_aggregate", "c_reset_check"]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(
        r.stderr.contains("service postgres ready"),
        "the metastore's PostgreSQL is started: {}",
        r.stderr
    );
    assert!(
        p.read("scenarios/a_aggregate/golden/daily.snap")
            .contains("views=2 | total=3.75 | dt=\"2024-05-01\"")
    );
    let seen = p.read("scenarios/c_reset_check/golden/seen.snap");
    assert!(
        seen.contains("dbs=\"default\" | tables=\"\" | hdfs_root=\"user\""),
        "{seen}"
    );
}

const CONNECT_PIPELINE: &str = r#"
services = ["spark"]

[tasks.aggregate]
kind = "spark"
script = "jobs/aggregate.py"
conf = { "spark.sql.shuffle.partitions" = "3" }
outputs = ["hive:agg.daily"]

[tasks.legacy]
kind = "spark"
script = "jobs/legacy.py"
spark_mode = "submit"
"#;

/// Counts spark-submit JVMs in the task's own process group (the task is its leader): one when
/// the harness submitted the script, none when it runs as a client of the Connect server.
const WHO_RUNS_ME: &str = r#"
import os

def submit_jvms():
    group, n = os.getpgid(0), 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            same = os.getpgid(int(pid)) == group
            cmd = open(f"/proc/{pid}/cmdline", "rb").read()
        except OSError:
            continue
        n += same and b"org.apache.spark.deploy.SparkSubmit" in cmd
    return n

print("spark-submit JVMs of this task:", submit_jvms())
"#;

const CONNECT_AGGREGATE: &str = r#"
from pyspark.sql import SparkSession

def server_archive():
    """What the JVM of the Connect server this task uses does with a class-data archive."""
    if "SPARK_REMOTE" not in os.environ:
        return "not on Spark Connect"
    port = os.environ["SPARK_REMOTE"].rsplit(":", 1)[-1]
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmd = open(f"/proc/{pid}/cmdline", "rb").read()
        except OSError:
            continue
        if b"SparkConnectServer" in cmd and f"spark.connect.grpc.binding.port={port}".encode() in cmd:
            if b"-XX:SharedArchiveFile=" in cmd:
                return "maps the cached one"
            if b"-XX:ArchiveClassesAtExit=" in cmd:
                return "writes one at exit"
            return "none"
    return "no server found"

print("connect server's class-data archive:", server_archive())

spark = SparkSession.builder.enableHiveSupport().getOrCreate()
print("shuffle partitions:", spark.conf.get("spark.sql.shuffle.partitions"))
spark.sql("CREATE DATABASE IF NOT EXISTS agg")
spark.sql("SELECT dt, count(*) AS views, sum(secs) AS total FROM raw.views GROUP BY dt") \
    .write.mode("overwrite").saveAsTable("agg.daily")
spark.stop()
"#;

const LEGACY: &str = r#"
from pyspark.sql import SparkSession

spark = SparkSession.builder.enableHiveSupport().getOrCreate()
parallelism = spark.sparkContext.defaultParallelism
spark.createDataFrame([(parallelism,)], "parallelism int").write.saveAsTable("default.legacy")
spark.stop()
"#;

#[test]
fn a_job_runs_on_spark_connect_against_the_same_tables_and_goldens_and_the_server_maps_its_archive_from_its_second_start()
 {
    require_spark();
    let p = Project::example_venv();
    p.file("pipelines/p/pipeline.toml", CONNECT_PIPELINE)
        .file(
            "pipelines/p/jobs/aggregate.py",
            &format!("{WHO_RUNS_ME}{CONNECT_AGGREGATE}"),
        )
        .file(
            "pipelines/p/jobs/legacy.py",
            &format!("{WHO_RUNS_ME}{LEGACY}"),
        )
        .file("fixtures/views.csv", VIEWS)
        .file(
            "scenarios/s/scenario.toml",
            r#"pipeline = "p"
tasks = ["aggregate"]

[[seed]]
service = "hive"
table = "raw.views"
csv = "views.csv"
schema = "user_id BIGINT, secs DOUBLE, dt STRING"

[[sink]]
name = "daily"
service = "hive"
table = "agg.daily"
key = ["dt"]
"#,
        )
        .file(
            "scenarios/t_legacy/scenario.toml",
            "pipeline = \"p\"\ntasks = [\"legacy\"]\n[[sink]]\nname = \"legacy\"\nservice = \"hive\"\ntable = \"default.legacy\"\n",
        );

    // Submitted: the golden is written.
    let r = p.run(&["run", "s", "--update", "--spark-mode", "submit"]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(
        r.stderr
            .contains("s/aggregate | spark-submit JVMs of this task: 1"),
        "{}",
        r.stderr
    );
    assert!(
        !r.stderr.contains("spark connect server ready"),
        "{}",
        r.stderr
    );
    let golden = p.read("scenarios/s/golden/daily.snap");
    assert!(
        golden.contains("dt=\"2024-05-01\" | views=2 | total=3.75"),
        "{golden}"
    );

    // On Spark Connect (from harness.toml): a plain Python process against the one server,
    // the task's SQL conf applied, the same golden matched; the task marked `submit` still is.
    p.file(
        "harness.toml",
        "backend = \"local\"\n[services.spark]\nmode = \"connect\"\n",
    );
    // (--update: a snapshot that differed would be rewritten, which the comparison below catches.)
    // A cache of its own: the server's JVM writes its class-data archive at its first stop.
    let cache = tempfile::tempdir().expect("tempdir");
    let cache_env = [("HARNESS_CACHE_DIR", cache.path().to_str().expect("utf-8"))];
    let r = p.run_env(&["run", "--update"], &cache_env);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(
        r.stderr
            .contains("s/aggregate | connect server's class-data archive: writes one at exit"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains("spark connect server ready at sc://127.0.0.1:"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains("s/aggregate | spark-submit JVMs of this task: 0"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("s/aggregate | shuffle partitions: 3"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains("t_legacy/legacy | spark-submit JVMs of this task: 1"),
        "{}",
        r.stderr
    );
    assert_eq!(p.read("scenarios/s/golden/daily.snap"), golden);
    assert!(!p.exists("scenarios/s/golden/daily.snap.new"));

    // The next server maps that archive, and reads the environment's configuration all the same
    // (its metastore and warehouse: the same golden; the task's SQL conf).
    let archives: Vec<String> = std::fs::read_dir(cache.path().join("spark-connect"))
        .expect("the server's cache folder")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("classes-") && n.ends_with(".jsa"))
        .collect();
    assert_eq!(archives.len(), 1, "{archives:?}");
    let r = p.run_env(&["run", "s"], &cache_env);
    assert_eq!(r.code, 0, "{}", r.all());
    for line in [
        "s/aggregate | connect server's class-data archive: maps the cached one",
        "s/aggregate | shuffle partitions: 3",
    ] {
        assert!(r.stderr.contains(line), "{line}\n{}", r.stderr);
    }
    assert_eq!(p.read("scenarios/s/golden/daily.snap"), golden);
    assert!(
        p.leftover_processes().is_empty(),
        "{:?}",
        p.leftover_processes()
    );
}

#[test]
fn sigint_during_a_connect_task_stops_the_server_and_the_task() {
    require_spark();
    let p = Project::example_venv();
    let started = p.path().join("started");
    p.file(
        "pipelines/p/pipeline.toml",
        "services = [\"spark\", \"redis\"]\n[tasks.long]\nkind = \"spark\"\nscript = \"long.py\"\n",
    )
    .file(
        "pipelines/p/long.py",
        &format!(
            "import pathlib, time\nfrom pyspark.sql import SparkSession\n\
             SparkSession.builder.getOrCreate().sql(\"SELECT 1\").collect()\n\
             pathlib.Path({:?}).touch()\ntime.sleep(600)\n",
            started.display().to_string()
        ),
    )
    .file(
        "scenarios/s/scenario.toml",
        "pipeline = \"p\"\n[[sink]]\nname = \"k\"\nservice = \"redis\"\nkeys = \"*\"\n",
    );
    let mut child = p
        .command(&["run", "--spark-mode", "connect"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn harness");
    assert!(
        crate::support::wait_for(&started, 180),
        "the task never reached the server"
    );
    let during = p.processes();
    assert!(
        during.iter().any(|l| l.contains("SparkConnectServer")),
        "no Spark Connect server while running: {during:?}"
    );
    // SAFETY: kill with a valid pid and signal.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    assert_eq!(crate::support::wait_exit(&mut child, 30).code(), Some(130));
    let left = p.leftover_processes();
    assert!(left.is_empty(), "processes left behind: {left:?}");
}
