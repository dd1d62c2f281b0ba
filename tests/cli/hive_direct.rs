//! Hive seeds and sinks without Spark: a scenario with Hive seeds and sinks and no Spark task
//! runs with no JVM but the metastore, and its snapshots are the ones the harness's Spark session
//! gives (`[services.hive] direct = false`); a table a Spark job writes with every type the
//! harness reads itself renders the same from its files as through the session. Each test keeps
//! its own metastore cache: the first run fills it, the second maps its archive, and a damaged
//! archive gives way to the plain start.

use std::path::Path;

use crate::spark::require_spark;
use crate::support::Project;

/// Lists the JVMs of this project's environment while the task runs: the processes whose
/// command line names `java`/`harness_spark.py` and the project's folder.
const JVMS: &str = r#"
import os, sys
root = sys.argv[1]
for pid in sorted(p for p in os.listdir("/proc") if p.isdigit()):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            args = f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        continue
    if root not in args:
        continue
    if "LoopbackMetaStore" in args:
        print("jvm: metastore")
        if "-XX:SharedArchiveFile=" in args:
            print("metastore: maps the cached class-data archive")
        if "-XX:ArchiveClassesAtExit=" in args:
            print("metastore: writes the class-data archive at exit")
    elif "harness_spark.py" in args or "SparkSubmit" in args or "spark-session" in args:
        print("jvm: spark session")
    elif args.split(" ")[0].endswith("/java"):
        print("jvm: other", args[:200])
"#;

const VIEWS: &str = "user_id,item_id,secs,ok,dt\n1,10,1.5,true,2024-05-01\n2,10,2.25,FALSE,2024-05-01\n1,11,3,,2024-05-02\n3,,NaN,true,2024-05-02\n4,12,-0.1,false,2024-05-03\n";
const RATINGS: &str =
    "user_id\tscore\tnote\n1\t5\tgood\n2\t-3\t\\N\n3\t\\N\tplain text, with a comma\n";

fn project() -> Project {
    require_spark();
    let p = Project::example_venv();
    let root = p.path().to_string_lossy().into_owned();
    p.file(
        "pipelines/p/pipeline.toml",
        &format!(
            "[tasks.jvms]\nkind = \"command\"\nargv = [\"python3\", \"jvms.py\", \"{root}\"]\n"
        ),
    )
    .file("pipelines/p/jvms.py", JVMS)
    .file("fixtures/views.csv", VIEWS)
    .file("fixtures/ratings.tsv", RATINGS)
    .file(
        "scenarios/hive_only/scenario.toml",
        r#"pipeline = "p"

[[seed]]
service = "hive"
table = "raw.views"
csv = "views.csv"
schema = "user_id BIGINT, item_id INT, secs DOUBLE, ok BOOLEAN, dt STRING"
partition_by = ["dt"]

[[seed]]
service = "hive"
table = "ratings"
csv = "ratings.tsv"
delimiter = "\t"
null = "\\N"
schema = "user_id SMALLINT, score TINYINT, note STRING"

[[sink]]
name = "views"
service = "hive"
table = "raw.views"
key = ["dt", "user_id"]

[[sink]]
name = "ratings"
service = "hive"
table = "default.ratings"
key = ["user_id"]
"#,
    );
    p
}

/// The files of the metastore's cache folder in `cache`, by name.
fn cached(cache: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(cache.join("metastore"))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[test]
fn a_hive_scenario_without_spark_tasks_starts_no_jvm_but_the_metastore() {
    let p = project();
    let cache = tempfile::tempdir().expect("tempdir");
    let cache_env = [("HARNESS_CACHE_DIR", cache.path().to_str().expect("utf-8"))];
    let r = p.run_env(&["run", "--update"], &cache_env);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(r.all().contains("jvm: metastore"), "{}", r.all());
    assert!(
        r.all()
            .contains("metastore: writes the class-data archive at exit"),
        "{}",
        r.all()
    );
    let entries = cached(cache.path());
    assert!(
        entries
            .iter()
            .any(|n| n.starts_with("launcher-") && n.ends_with(".jar"))
            && entries
                .iter()
                .any(|n| n.starts_with("classes-") && n.ends_with(".jsa"))
            && !entries.iter().any(|n| n.starts_with(".harness-")),
        "a compiled launcher and an archive, no temporary left: {entries:?}"
    );
    assert!(!r.all().contains("jvm: spark session"), "{}", r.all());
    assert!(!r.all().contains("jvm: other"), "{}", r.all());
    assert!(!r.all().contains("spark session ready"), "{}", r.all());
    assert!(!r.all().contains("through Spark"), "{}", r.all());
    let views = p.read("scenarios/hive_only/golden/views.snap");
    assert!(
        views.contains(
            "columns: user_id bigint | item_id int | secs double | ok boolean | dt string\nrows: 5\n"
        ),
        "{views}"
    );
    assert!(
        views.contains("user_id=3 | item_id=NULL | secs=NaN | ok=true | dt=\"2024-05-02\""),
        "{views}"
    );
    let ratings = p.read("scenarios/hive_only/golden/ratings.snap");
    assert!(
        ratings.contains("user_id=3 | score=NULL | note=\"plain text, with a comma\""),
        "{ratings}"
    );

    // The same scenario through the harness's Spark session: a JVM more, the same snapshots.
    let before = p.goldens();
    p.file(
        "harness.toml",
        "backend = \"local\"\n[services.hive]\ndirect = false\n",
    );
    let r = p.run_env(&["run"], &cache_env);
    assert_eq!(
        r.code,
        0,
        "the session's snapshots are the same\n{}",
        r.all()
    );
    assert!(r.all().contains("jvm: spark session"), "{}", r.all());
    assert!(
        r.all()
            .contains("metastore: maps the cached class-data archive"),
        "{}",
        r.all()
    );
    assert_eq!(cached(cache.path()), entries);
    assert_eq!(p.goldens(), before);
    assert!(
        p.leftover_processes().is_empty(),
        "{:?}",
        p.leftover_processes()
    );
}

const TYPES_JOB: &str = r#"
import datetime, decimal
from pyspark.sql import SparkSession

spark = SparkSession.builder.enableHiveSupport().getOrCreate()
schema = ("b TINYINT, s SMALLINT, i INT, l BIGINT, f FLOAT, d DOUBLE, small DECIMAL(10,2), "
          "big DECIMAL(38,18), tiny DECIMAL(12,10), t STRING, bin BINARY, ok BOOLEAN, day DATE, "
          "at TIMESTAMP, wall TIMESTAMP_NTZ, ids ARRAY<BIGINT>, weights MAP<STRING,DOUBLE>, "
          "who STRUCT<id: INT, name: STRING, tags: ARRAY<STRING>>, part STRING")
rows = [
    (1, 2, 3, 4, 0.1, 1e16, decimal.Decimal("1.50"), decimal.Decimal("-12345678901234567890.123456789012345678"),
     decimal.Decimal("0.0000000100"), "héllo \"quoted\"", b"\x00\xffab", True, datetime.date(2024, 5, 1),
     datetime.datetime(2024, 5, 1, 12, 30, 15, 123456), datetime.datetime(1999, 12, 31, 23, 59, 59),
     [3, None, 1], {"a": 0.5, "b": float("nan")}, (7, "x", ["p", "q"]), "p1"),
    (-128, -32768, -2147483648, -9223372036854775808, float("inf"), -0.0, decimal.Decimal("0.00"),
     decimal.Decimal("0E-18"), decimal.Decimal("0E-10"), "", b"", False, datetime.date(1970, 1, 1),
     datetime.datetime(1970, 1, 1, 0, 0, 0), datetime.datetime(2038, 1, 19, 3, 14, 8, 1),
     [], {}, (None, None, []), "p2"),
    (None,) * 18 + ("p2",),
]
spark.sql("CREATE DATABASE IF NOT EXISTS typed")
spark.createDataFrame(rows, schema).write.mode("overwrite").partitionBy("part").saveAsTable("typed.every")
spark.createDataFrame(rows, schema).drop("part").write.mode("overwrite").saveAsTable("typed.flat")
"#;

#[test]
fn a_table_of_every_type_spark_writes_renders_the_same_from_its_files() {
    let p = project();
    p.file(
        "pipelines/w/pipeline.toml",
        "services = [\"spark\"]\n[tasks.write]\nkind = \"spark\"\nscript = \"write.py\"\n",
    )
    .file("pipelines/w/write.py", TYPES_JOB)
    .file(
        "scenarios/typed/scenario.toml",
        r#"pipeline = "w"

[[sink]]
name = "every"
service = "hive"
table = "typed.every"
key = ["part", "l"]

[[sink]]
name = "flat"
service = "hive"
table = "typed.flat"
key = ["l"]
"#,
    )
    .file(
        "harness.toml",
        "backend = \"local\"\n[services.hive]\ndirect = false\n",
    );
    let cache = tempfile::tempdir().expect("tempdir");
    let cache_env = [("HARNESS_CACHE_DIR", cache.path().to_str().expect("utf-8"))];
    // Goldens through the session...
    let r = p.run_env(&["run", "typed", "--update"], &cache_env);
    assert_eq!(r.code, 0, "{}", r.all());
    let every = p.read("scenarios/typed/golden/every.snap");
    assert!(every.contains("rows: 3\n"), "{every}");
    // A damaged archive (cut short, as a full disk would leave it) crashes the JVM that maps
    // it: the metastore starts the plain way, and the damaged entry goes.
    let archives: Vec<String> = cached(cache.path())
        .into_iter()
        .filter(|n| n.ends_with(".jsa"))
        .collect();
    assert_eq!(archives.len(), 1, "{:?}", cached(cache.path()));
    let archive = cache.path().join("metastore").join(&archives[0]);
    std::fs::OpenOptions::new()
        .write(true)
        .open(&archive)
        .and_then(|f| f.set_len(1 << 20))
        .expect("truncate");
    // ...then read from the files: the same snapshots, and nothing read through Spark.
    p.file("harness.toml", "backend = \"local\"\n");
    let r = p.run_env(&["run", "typed"], &cache_env);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(!archive.exists(), "{:?}", cached(cache.path()));
    assert!(!r.all().contains("through Spark"), "{}", r.all());
    assert!(!r.all().contains("spark session ready"), "{}", r.all());
}
