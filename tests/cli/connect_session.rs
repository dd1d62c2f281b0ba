//! The harness's own Spark session in connect mode: a client of the environment's Spark Connect
//! server, so one Spark driver JVM serves the seeds and the sinks, and every snapshot is byte for
//! byte the one a session with its own JVM gives in submit mode. (That the tasks are clients of
//! the same server: the example suite in connect mode, in docker.rs.)

use crate::spark::require_spark;
use crate::support::{Project, SparkDrivers};

/// One Spark task, so that connect mode has a Connect server (the session is its client).
const PIPELINE: &str = r#"
services = ["spark"]

[tasks.touch]
kind = "spark"
script = "touch.py"
"#;

const TOUCH: &str = r#"
from pyspark.sql import SparkSession

print("tables:", len(SparkSession.builder.getOrCreate().catalog.listTables("raw")))
"#;

/// No Spark task: a scenario of it on the same environment still has the session as a client.
const PLAIN: &str = r#"
[tasks.noop]
kind = "command"
argv = ["true"]
"#;

/// Every Hive seed and sink through the session, which is what is compared here.
const SETTINGS: &str = "backend = \"local\"\n[services.hive]\ndirect = false\n";

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

fn scenario(pipeline: &str, typed: &str) -> String {
    format!(
        r#"pipeline = "{pipeline}"

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
"#
    )
}

#[test]
fn in_connect_mode_one_spark_driver_seeds_and_reads_with_the_snapshots_of_submit_mode() {
    require_spark();
    let p = Project::example_venv();
    p.file("harness.toml", SETTINGS)
        .file("pipelines/p/pipeline.toml", PIPELINE)
        .file("pipelines/p/touch.py", TOUCH)
        .file("pipelines/q/pipeline.toml", PLAIN)
        .file("fixtures/typed.csv", TYPED)
        .file("fixtures/typed_b.csv", TYPED_B)
        .file("fixtures/nested.jsonl", NESTED)
        // Two scenarios on one environment: the second reads its own rows after the reset.
        .file("scenarios/a/scenario.toml", &scenario("p", "typed.csv"))
        .file("scenarios/b/scenario.toml", &scenario("q", "typed_b.csv"));

    // Submit mode: the session is a Spark driver of its own, and so is the task.
    let drivers = SparkDrivers::watch(&p);
    let r = p.run(&["run", "--update", "--spark-mode", "submit"]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(drivers.seen(), ["harness-session", "task"], "{}", r.stderr);
    let submitted = p.goldens();
    assert_eq!(submitted.len(), 4, "{submitted:?}");
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
    let drivers = SparkDrivers::watch(&p);
    let r = p.run(&["run", "--spark-mode", "connect"]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(drivers.seen(), ["connect-server"], "{}", r.stderr);
    assert!(r.stderr.contains("a/touch | tables: 2"), "{}", r.stderr);
    assert!(
        r.stderr
            .contains("a client of the Spark Connect server at sc://127.0.0.1:"),
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
