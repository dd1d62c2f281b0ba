//! Nested values in table sinks for real: PostgreSQL arrays and JSON, ClickHouse arrays and
//! tuples, and a Hive table (and Parquet and JSON Lines datasets) of Spark arrays, maps and
//! structs, rendered canonically, with a changed element reported by its path inside the cell.

use crate::support::{Project, require_servers};

/// `load` writes a table of arrays and JSON; SCORE and COLOR change one element each.
const PG_PIPELINE: &str = r#"
services = ["postgres"]

[tasks.load]
kind = "command"
outputs = ["postgres:items"]
argv = ["sh", "-c", """
psql -qAt -v ON_ERROR_STOP=1 "$HARNESS_POSTGRES_URL" <<SQL
CREATE TABLE items (id int, tags text[], scores float8[], grid int[][], attrs jsonb, doc json);
INSERT INTO items VALUES
  (1, ARRAY['b', 'a', NULL, 'a'], ARRAY[0.5, $SCORE], '{{1,2},{3,4}}',
   '{"size": 3, "color": "$COLOR", "dims": [1, 2.5, null]}', '[]'),
  (2, '{}', NULL, NULL, NULL, '{"z": "x, ] } | y", "a": ""}');
SQL
"""]
"#;

fn pg_scenario(score: &str, color: &str, unordered: &str) -> String {
    format!(
        r#"
pipeline = "items"
env = {{ SCORE = "{score}", COLOR = "{color}" }}

[[sink]]
name = "items"
service = "postgres"
table = "items"
key = ["id"]
unordered = [{unordered}]
tolerance = {{ scores = {{ abs = 0.01 }} }}
"#
    )
}

#[test]
fn postgres_arrays_and_json_render_canonically_and_diff_per_element() {
    require_servers();
    let p = Project::new();
    p.file("pipelines/items/pipeline.toml", PG_PIPELINE).file(
        "scenarios/nested/scenario.toml",
        &pg_scenario("0.25", "red", r#""tags""#),
    );
    let r = p.run(&["run", "--update"]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(
        p.read("scenarios/nested/golden/items.snap"),
        "# harness snapshot v1\n# sink: items\n# source: postgres table items\n# order: id\n\
         columns: id int4 | tags text[] | scores float8[] | grid int4[] | attrs jsonb | doc json\n\
         rows: 2\n\n\
         id=1 | tags=[NULL, \"a\", \"a\", \"b\"] | scores=[0.5, 0.25] | grid=[[1, 2], [3, 4]] \
         | attrs={\"color\": \"red\", \"dims\": [1, 2.5, NULL], \"size\": 3} | doc=[]\n\
         id=2 | tags=[] | scores=NULL | grid=NULL | attrs=NULL | doc={\"a\": \"\", \"z\": \"x, ] } | y\"}\n"
    );

    // A number inside the array within the column's tolerance passes.
    p.file(
        "scenarios/nested/scenario.toml",
        &pg_scenario("0.255", "red", r#""tags""#),
    );
    let r = p.run(&["run"]);
    assert_eq!(r.code, 0, "{}", r.all());

    // Elements beyond it, and inside the JSON, are named by their path.
    p.file(
        "scenarios/nested/scenario.toml",
        &pg_scenario("0.75", "blue", r#""tags""#),
    );
    let r = p.run(&["run"]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(
        r.stdout
            .contains(r#"~ id=1: scores[1]: 0.25 → 0.75; attrs["color"]: "red" → "blue""#),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("changed columns: attrs (1 row), scores (1 row)"),
        "{}",
        r.stdout
    );
    let results: serde_json::Value =
        serde_json::from_str(&p.read(".harness/report/results.json")).expect("results.json");
    assert_eq!(
        results["scenarios"][0]["sinks"][0]["table_diff"]["changed"][0]["cells"][0],
        serde_json::json!({"column": "scores", "path": "[1]", "old": "0.25", "new": "0.75"})
    );

    // `unordered` names array columns only, and columns the table has.
    for (unordered, message) in [
        (
            r#""nope""#,
            "unordered column `nope` is not among the columns: id, tags",
        ),
        (
            r#""id""#,
            "unordered column `id` (int4) holds 1, not an array",
        ),
    ] {
        p.file(
            "scenarios/nested/scenario.toml",
            &pg_scenario("0.25", "red", unordered),
        );
        let r = p.run(&["run"]);
        assert_ne!(r.code, 0, "{}", r.all());
        assert!(r.all().contains(message), "{}", r.all());
    }
}

const SPARK_PIPELINE: &str = r#"
services = ["spark"]

[tasks.build]
kind = "spark"
script = "jobs/build.py"
conf = { "spark.sql.shuffle.partitions" = "2" }
driver_memory = "512m"
"#;

const BUILD: &str = r#"
import os
from pyspark.sql import SparkSession

spark = SparkSession.builder.enableHiveSupport().getOrCreate()
weight = os.environ.get("WEIGHT", "0.5")
spark.sql("CREATE DATABASE IF NOT EXISTS out")
spark.sql("""
SELECT 1 AS id,
       array(3, 1, 2) AS ranks,
       map('b', WEIGHTD, 'a', 0.25D) AS weights,
       named_struct('name', 'x, ] }', 'tags', array('t', CAST(NULL AS STRING)), 'at', DATE'2024-05-01') AS info
UNION ALL
SELECT 2, CAST(array() AS ARRAY<INT>), CAST(map() AS MAP<STRING, DOUBLE>), CAST(NULL AS STRUCT<name: STRING, tags: ARRAY<STRING>, at: DATE>)
""".replace("WEIGHT", weight)).write.mode("overwrite").saveAsTable("out.nested")
rows = spark.table("out.nested").coalesce(1)
rows.write.mode("overwrite").parquet("hdfs://namenode:8020/out/nested_parquet")
rows.where("id = 1").write.mode("overwrite").json("hdfs://namenode:8020/out/nested_jsonl")
"#;

fn spark_scenario(weight: &str) -> String {
    format!(
        r#"pipeline = "p"
env = {{ WEIGHT = "{weight}" }}

[[sink]]
name = "nested"
service = "hive"
table = "out.nested"
key = ["id"]

[[sink]]
name = "nested_parquet"
service = "hdfs"
path = "/out/nested_parquet"
format = "parquet"
key = ["id"]

[[sink]]
name = "nested_jsonl"
service = "hdfs"
path = "/out/nested_jsonl"
format = "jsonl"
key = ["id"]
unordered = ["ranks"]
"#
    )
}

#[test]
fn hive_arrays_maps_and_structs_render_canonically_and_diff_per_element() {
    crate::spark::require_spark();
    let p = Project::example_venv();
    p.file("pipelines/p/pipeline.toml", SPARK_PIPELINE)
        .file("pipelines/p/jobs/build.py", BUILD)
        .file("scenarios/nested/scenario.toml", &spark_scenario("0.5"));
    let r = p.run(&["run", "--update"]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(
        p.read("scenarios/nested/golden/nested.snap"),
        "# harness snapshot v1\n# sink: nested\n# source: hive table out.nested\n# order: id\n\
         columns: id int | ranks array<int> | weights map<string,double> \
         | info struct<name:string,tags:array<string>,at:date>\n\
         rows: 2\n\n\
         id=1 | ranks=[3, 1, 2] | weights={\"a\": 0.25, \"b\": 0.5} \
         | info={name: \"x, ] }\", tags: [\"t\", NULL], at: \"2024-05-01\"}\n\
         id=2 | ranks=[] | weights={} | info=NULL\n"
    );

    // Parquet keeps the types; JSON Lines has no maps: Spark reads objects as structs, their
    // fields sorted by name.
    let parquet = p.read("scenarios/nested/golden/nested_parquet.snap");
    assert!(
        parquet.contains(
            "id=1 | ranks=[3, 1, 2] | weights={\"a\": 0.25, \"b\": 0.5} \
             | info={name: \"x, ] }\", tags: [\"t\", NULL], at: \"2024-05-01\"}\n"
        ),
        "{parquet}"
    );
    let jsonl = p.read("scenarios/nested/golden/nested_jsonl.snap");
    assert!(
        jsonl.contains(
            "columns: id bigint | info struct<at:string,name:string,tags:array<string>> \
             | ranks array<bigint> | weights struct<a:double,b:double>\nrows: 1\n\n\
             id=1 | info={at: \"2024-05-01\", name: \"x, ] }\", tags: [\"t\", NULL]} \
             | ranks=[1, 2, 3] | weights={a: 0.25, b: 0.5}\n"
        ),
        "{jsonl}"
    );

    p.file("scenarios/nested/scenario.toml", &spark_scenario("0.75"));
    let r = p.run(&["run"]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(
        r.stdout.contains(r#"~ id=1: weights["b"]: 0.5 → 0.75"#),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("~ id=1: weights.b: 0.5 → 0.75"),
        "{}",
        r.stdout
    );
}

fn clickhouse_scenario(last_rank: u32) -> String {
    format!(
        r#"pipeline = "ch"

[[sink]]
name = "ranks"
service = "clickhouse"
query = '''SELECT toUInt8(1) AS id, [3, 1, {last_rank}] AS ranks, ['a', 'b\'c', NULL] AS tags,
  (1, 'x') AS pair, [(1.5, 'a, ]')] AS pairs'''
key = ["id"]
"#
    )
}

#[test]
fn clickhouse_arrays_and_tuples_render_canonically_and_diff_per_element() {
    crate::clickhouse::require_clickhouse();
    let p = Project::new();
    p.file(
        "pipelines/ch/pipeline.toml",
        "services = [\"clickhouse\"]\n\n[tasks.noop]\nkind = \"sql\"\nservice = \"clickhouse\"\nsql = \"SELECT 1\"\n",
    )
    .file("scenarios/nested/scenario.toml", &clickhouse_scenario(2));
    let r = p.run(&["run", "--update"]);
    assert_eq!(r.code, 0, "{}", r.all());
    let snap = p.read("scenarios/nested/golden/ranks.snap");
    assert!(
        snap.ends_with(
            "columns: id UInt8 | ranks Array(UInt8) | tags Array(Nullable(String)) \
             | pair Tuple(UInt8, String) | pairs Array(Tuple(Float64, String))\nrows: 1\n\n\
             id=1 | ranks=[3, 1, 2] | tags=[\"a\", \"b'c\", NULL] | pair=[1, \"x\"] \
             | pairs=[[1.5, \"a, ]\"]]\n"
        ),
        "{snap}"
    );
    p.file("scenarios/nested/scenario.toml", &clickhouse_scenario(5));
    let r = p.run(&["run"]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(r.stdout.contains("~ id=1: ranks[2]: 2 → 5"), "{}", r.stdout);
}
