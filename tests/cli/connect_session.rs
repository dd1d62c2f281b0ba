//! The harness's own Spark session in connect mode: a client of the environment's Spark Connect
//! server, so one Spark driver JVM serves the seeds, the tasks and the sinks, and every snapshot
//! is byte for byte the one a session with its own JVM gives in submit mode.

use crate::spark::require_spark;
use crate::support::Project;

const PIPELINE: &str = r#"
services = ["spark"]

[tasks.build]
kind = "spark"
script = "jobs/build.py"
"#;

/// Names every Spark driver JVM of the environment (those started with its SPARK_CONF_DIR) while
/// the task runs, then writes a table and an HDFS dataset from the seeded tables.
const BUILD: &str = r#"
import os
from pyspark.sql import SparkSession

conf = os.environ["SPARK_CONF_DIR"].encode()
drivers = []
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        argv = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")
    except OSError:
        continue
    if b"org.apache.spark.deploy.SparkSubmit" in argv and any(conf in a for a in argv):
        if b"org.apache.spark.sql.connect.service.SparkConnectServer" in argv:
            drivers.append("connect-server")
        elif b"pyspark-shell" in argv:
            drivers.append("harness-session")
        else:
            drivers.append("task")
print("spark drivers of this environment:", ",".join(sorted(drivers)))

spark = SparkSession.builder.enableHiveSupport().getOrCreate()
spark.sql("CREATE DATABASE IF NOT EXISTS out")
spark.sql("""
SELECT dt, count(*) AS n, sum(size(tags)) AS tags, max(ts) AS last,
       map_from_entries(collect_list(struct(id, info.name))) AS names
FROM raw.nested GROUP BY dt
""").write.mode("overwrite").saveAsTable("out.by_day")
spark.table("raw.typed").where("price IS NOT NULL") \
    .write.mode("overwrite").parquet("hdfs://namenode:8020/out/priced")
"#;

const TYPED: &str = "id,price,at,day,name,ratio,flag,small\n\
1,1.50,2024-05-01 10:11:12.123456,2024-05-01,\"a, \"\"q\"\"\",0.1,true,3\n\
2,-0.05,1999-12-31 23:59:59,1999-12-31,,NaN,false,-4\n\
3,,,,ü€,Infinity,,\n";

const TYPED_B: &str = "id,price,at,day,name,ratio,flag,small\n\
7,1234567.89,2030-01-01 00:00:00.5,2030-01-01,b,-Infinity,true,127\n";

const NESTED: &str = r#"{"id":1,"tags":["x",null],"weights":{"b":0.5,"a":0.25},"info":{"name":"n","at":"2024-05-01","deep":{"k":[1,2]}},"blob":"AP9hYg==","dt":"2024-05-01","ts":"2024-05-01T01:02:03.000001Z"}
{"id":2,"tags":[],"weights":{},"info":null,"blob":null,"dt":"2024-05-02","ts":null}
{"id":3,"tags":null,"weights":null,"info":{"name":null,"at":null,"deep":null},"blob":"","dt":"2024-05-02","ts":"1970-01-01T00:00:00Z"}
"#;

const TYPED_SCHEMA: &str = "id INT, price DECIMAL(10,2), at TIMESTAMP, day DATE, name STRING, ratio DOUBLE, flag BOOLEAN, small TINYINT";

fn scenario(typed: &str) -> String {
    format!(
        r#"pipeline = "p"

[[seed]]
service = "hive"
table = "raw.typed"
csv = "{typed}"
schema = "{TYPED_SCHEMA}"

[[seed]]
service = "hive"
table = "raw.nested"
jsonl = "nested.jsonl"
schema = "id BIGINT, tags ARRAY<STRING>, weights MAP<STRING, DOUBLE>, info STRUCT<name: STRING, at: DATE, deep: STRUCT<k: ARRAY<INT>>>, blob BINARY, dt STRING, ts TIMESTAMP"
partition_by = ["dt"]

[[sink]]
name = "typed"
service = "hive"
table = "raw.typed"
key = ["id"]

[[sink]]
name = "nested"
service = "hive"
table = "raw.nested"
key = ["id"]

[[sink]]
name = "by_day"
service = "hive"
table = "out.by_day"
key = ["dt"]

[[sink]]
name = "priced"
service = "hdfs"
path = "/out/priced"
format = "parquet"
key = ["id"]
"#
    )
}

#[test]
fn in_connect_mode_one_spark_driver_seeds_runs_and_reads_with_the_snapshots_of_submit_mode() {
    require_spark();
    let p = Project::example_venv();
    p.file("pipelines/p/pipeline.toml", PIPELINE)
        .file("pipelines/p/jobs/build.py", BUILD)
        .file("fixtures/typed.csv", TYPED)
        .file("fixtures/typed_b.csv", TYPED_B)
        .file("fixtures/nested.jsonl", NESTED)
        // Two scenarios on one environment: the second reads its own rows after the reset.
        .file("scenarios/a/scenario.toml", &scenario("typed.csv"))
        .file("scenarios/b/scenario.toml", &scenario("typed_b.csv"));

    // Submit mode: the session has its own JVM, and the task is a driver of its own.
    let r = p.run(&["run", "--update", "--spark-mode", "submit"]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(
        r.stderr
            .contains("a/build | spark drivers of this environment: harness-session,task"),
        "{}",
        r.stderr
    );
    let submitted = p.goldens();
    assert_eq!(submitted.len(), 8, "{submitted:?}");
    let typed = p.read("scenarios/a/golden/typed.snap");
    assert!(
        typed.contains("id=1 | price=1.50 | at=\"2024-05-01 10:11:12.123456\""),
        "{typed}"
    );
    let nested = p.read("scenarios/a/golden/nested.snap");
    assert!(
        nested.contains("weights={\"a\": 0.25, \"b\": 0.5}"),
        "{nested}"
    );

    // Connect mode: the Connect server is the environment's one Spark driver; the session is
    // its client, and every snapshot matches the golden written in submit mode.
    let r = p.run(&["run", "--spark-mode", "connect"]);
    assert_eq!(r.code, 0, "{}", r.all());
    for s in ["a", "b"] {
        assert!(
            r.stderr.contains(&format!(
                "{s}/build | spark drivers of this environment: connect-server\n"
            )),
            "{}",
            r.stderr
        );
    }
    assert!(
        r.stderr
            .contains("a client of the Spark Connect server at sc://127.0.0.1:"),
        "{}",
        r.stderr
    );
    assert_eq!(
        r.stderr.matches("spark connect server ready").count(),
        1,
        "{}",
        r.stderr
    );
    assert_eq!(p.goldens(), submitted);
    assert!(
        p.leftover_processes().is_empty(),
        "{:?}",
        p.leftover_processes()
    );
}
