//! Hive seeds and sinks without Spark: a scenario with Hive seeds and sinks and no Spark task
//! runs with no JVM but the metastore, and its snapshots are the ones the harness's Spark session
//! gives (`[services.hive] direct = false`); a table a Spark job writes with every type the
//! harness reads itself, in every format it reads (Parquet, ORC, CSV, JSON Lines), and the
//! datasets of `hdfs` sinks render the same from their files as through the session. Each test
//! keeps its own cache: the first run fills the metastore's, the second maps its archive, and a
//! damaged archive gives way to the plain start; the session's JVM writes its own archive at its
//! first stop and maps it at its next start.

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
        if "SparkSubmit" in args and "-XX:SharedArchiveFile=" in args:
            print("spark session: maps the cached class-data archive")
        if "SparkSubmit" in args and "-XX:ArchiveClassesAtExit=" in args:
            print("spark session: writes the class-data archive at exit")
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
    cached_in(cache, "metastore")
}

/// The files of the cache folder `folder` in `cache`, by name.
fn cached_in(cache: &Path, folder: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(cache.join(folder))
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
fn a_hive_scenario_without_spark_tasks_starts_no_jvm_but_the_metastore_and_the_session_s_jvm_maps_its_archive_from_its_second_start()
 {
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
    // The session's JVM wrote its own archive when it stopped; the next session maps it, and
    // reads the environment's configuration all the same (its metastore, not one of its own).
    assert!(
        r.all()
            .contains("spark session: writes the class-data archive at exit"),
        "{}",
        r.all()
    );
    let session_entries = cached_in(cache.path(), "spark-session");
    assert!(
        session_entries
            .iter()
            .any(|n| n.starts_with("classes-") && n.ends_with(".jsa"))
            && session_entries.contains(&"conf".to_string())
            && !session_entries.iter().any(|n| n.starts_with(".harness-")),
        "an archive and the empty configuration folder, no temporary left: {session_entries:?}"
    );
    let r = p.run_env(&["run"], &cache_env);
    assert_eq!(r.code, 0, "the same snapshots again\n{}", r.all());
    assert!(
        r.all()
            .contains("spark session: maps the cached class-data archive"),
        "{}",
        r.all()
    );
    assert_eq!(cached_in(cache.path(), "spark-session"), session_entries);
    assert_eq!(p.goldens(), before);
    assert!(
        p.leftover_processes().is_empty(),
        "{:?}",
        p.leftover_processes()
    );
}

const TYPES_JOB: &str = r#"
import datetime, decimal, os
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
    (5, 5, 5, 5, float("nan"), float("-inf"), decimal.Decimal("-0.05"), None, None, " x \\ y, \"z\"", b"\x01",
     None, None, None, None, [None], {"k": None}, (None, "", None), "p1"),
]
spark.sql("CREATE DATABASE IF NOT EXISTS typed")
df = spark.createDataFrame(rows, schema)
df.write.mode("overwrite").partitionBy("part").saveAsTable("typed.every")
df.drop("part").write.mode("overwrite").saveAsTable("typed.flat")
# The same rows in the other formats the harness reads itself (CSV holds no binary or nested types).
scalars = [c for c in df.columns if c not in ("bin", "ids", "weights", "who", "part")]
df.write.mode("overwrite").format("orc").partitionBy("part").saveAsTable("typed.every_orc")
df.drop("part").write.mode("overwrite").format("json").saveAsTable("typed.flat_json")
df.select(*scalars, "part").write.mode("overwrite").format("csv").partitionBy("part").saveAsTable("typed.every_csv")
(df.select(*scalars).write.mode("overwrite").format("csv").option("header", "true").option("sep", "|")
   .option("nullValue", "\\N").saveAsTable("typed.flat_csv"))
# Datasets of hdfs sinks, which the session reads without a schema.
hdfs = os.environ["HARNESS_HDFS_URL"]
df.drop("part").write.mode("overwrite").parquet(hdfs + "/out/typed_parquet")
df.select(*scalars).write.mode("overwrite").option("header", "true").csv(hdfs + "/out/typed_csv")
# A Hive ORC table (Hive has no timestamp_ntz).
(df.select(*[c for c in scalars if c != "wall"]).write.mode("overwrite").format("hive")
   .option("fileFormat", "orc").saveAsTable("typed.hive_orc"))
"#;

/// Dates, timestamps (with and without a zone), decimals (rounded half up, with grouping
/// commas, of every Parquet layout), quoted fields with the delimiter and doubled quotes inside.
const TYPED_CSV: &str = "\
id,day,at,price,big,tiny,note,dt
1,2024-05-01,2024-05-01 12:30:15,19.99,12345678901234567890.123456789,0.5,\"plain, with a comma\",2024-05-01
2,1970-01-01,2024-05-01T12:30:15.123456Z,-0.005,0,1,\"say \"\"hi\"\"\",2024-05-01
3,,2024-05-01 23:59:59+02:00,\"1,234.5\",-1e3,,\"\",2024-05-02
4,2024-02-29,2024-05-01,1.005,,9,,2024-05-02
";

/// JSON Lines with a schema: other keys left out, missing keys and nulls, decimals from numbers
/// and strings, NaN as a string.
const EVENTS_JSONL: &str = r#"{"id": 1, "name": "a \"q\" é", "amount": 12.34567, "at": "2024-05-01T10:00:00Z", "day": "2024-05-01", "score": 1.5, "w": 0.1, "ok": true, "n": 7, "extra": {"x": [1]}}
{"id": 2, "name": "", "amount": "-0.00005", "at": "2024-05-01 10:00:00.5+05:30", "score": "NaN", "ok": false}
{"id": 3, "name": null, "amount": 1e2, "day": null, "n": -32768}
"#;

/// JSON Lines without a schema: the types Spark infers (integers and other numbers together as
/// `double`, only nulls as `string`, a date as text), columns sorted by name.
const INFERRED_JSONL: &str = r#"{"user": 1, "score": 2, "label": "a", "flag": true, "day": "2024-05-01", "none": null}
{"user": 2, "score": 2.5, "label": null, "flag": false, "day": "2024-05-02"}
"#;

/// Reads the seeded tables back in Spark (with filters Spark pushes down into Parquet) and
/// writes what it sees.
const READ_JOB: &str = r#"
from pyspark.sql import SparkSession, functions as F

spark = SparkSession.builder.enableHiveSupport().getOrCreate()
spark.sql("CREATE DATABASE IF NOT EXISTS out")
t = spark.table("seeds.typed")
(t.select("id", "dt", F.date_format("at", "yyyy-MM-dd HH:mm:ss.SSSSSS").alias("at_text"),
          F.unix_micros("at").alias("at_us"), F.date_add("day", 1).alias("next_day"),
          (F.col("price") * 2).alias("twice"), F.col("big").cast("string").alias("big_text"),
          (F.col("tiny") + 1).alias("tiny_plus"), F.length("note").alias("note_len"))
  .write.mode("overwrite").saveAsTable("out.typed"))
(t.where((F.col("price") > 0) & (F.col("day") >= F.lit("2000-01-01").cast("date"))
         & (F.col("at") < F.lit("2024-05-01 12:30:16").cast("timestamp")))
  .select("id").write.mode("overwrite").saveAsTable("out.filtered"))
e = spark.table("seeds.events")
(e.select("id", F.coalesce("name", F.lit("<null>")).alias("name"), (F.col("amount") * 10).alias("amount10"),
          F.unix_micros("at").alias("at_us"), F.datediff("day", F.lit("2024-01-01").cast("date")).alias("days"),
          F.isnan("score").alias("nan"), F.col("w").cast("double").alias("w"), "ok", "n")
  .write.mode("overwrite").saveAsTable("out.events"))
(spark.table("seeds.inferred").select("user", (F.col("score") * 2).alias("score2"), F.length("day").alias("day_len"))
  .write.mode("overwrite").saveAsTable("out.inferred"))
"#;

/// The seeds the harness writes itself, the tables the job writes from them and from its own
/// rows of every type, and every sink of both.
const SEEDS_AND_SINKS: &str = r#"[[seed]]
service = "hive"
table = "seeds.typed"
csv = "typed.csv"
schema = "id INT, day DATE, at TIMESTAMP, price DECIMAL(10,2), big DECIMAL(38,9), tiny DECIMAL(1,0), note STRING, dt STRING"
partition_by = ["dt"]

[[seed]]
service = "hive"
table = "seeds.events"
jsonl = "events.jsonl"
schema = "id BIGINT, name STRING, amount DECIMAL(20,4), at TIMESTAMP, day DATE, score DOUBLE, w FLOAT, ok BOOLEAN, n SMALLINT"

[[seed]]
service = "hive"
table = "seeds.inferred"
jsonl = "inferred.jsonl"

[[sink]]
name = "typed"
service = "hive"
table = "seeds.typed"
key = ["id"]

[[sink]]
name = "events"
service = "hive"
table = "seeds.events"
key = ["id"]

[[sink]]
name = "out_typed"
service = "hive"
table = "out.typed"
key = ["id"]

[[sink]]
name = "out_filtered"
service = "hive"
table = "out.filtered"
key = ["id"]

[[sink]]
name = "out_events"
service = "hive"
table = "out.events"
key = ["id"]

[[sink]]
name = "inferred"
service = "hive"
table = "seeds.inferred"
key = ["user"]

[[sink]]
name = "out_inferred"
service = "hive"
table = "out.inferred"
key = ["user"]

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

[[sink]]
name = "every_orc"
service = "hive"
table = "typed.every_orc"
key = ["part", "l"]

[[sink]]
name = "flat_json"
service = "hive"
table = "typed.flat_json"
key = ["l"]

[[sink]]
name = "every_csv"
service = "hive"
table = "typed.every_csv"
key = ["part", "l"]

[[sink]]
name = "flat_csv"
service = "hive"
table = "typed.flat_csv"
key = ["l"]

[[sink]]
name = "hive_orc"
service = "hive"
table = "typed.hive_orc"
key = ["l"]

[[sink]]
name = "typed_parquet"
service = "hdfs"
path = "/out/typed_parquet"
format = "parquet"
key = ["l"]

[[sink]]
name = "typed_csv"
service = "hdfs"
path = "/out/typed_csv"
format = "csv"
key = ["l"]
"#;

#[test]
fn hive_seeds_and_tables_of_every_type_give_the_session_s_snapshots_without_it() {
    let p = project();
    p.file(
        "pipelines/w/pipeline.toml",
        "services = [\"spark\"]\n[tasks.write]\nkind = \"spark\"\nscript = \"write.py\"\n",
    )
    .file("pipelines/w/write.py", &format!("{TYPES_JOB}\n{READ_JOB}"))
    .file("fixtures/typed.csv", TYPED_CSV)
    .file("fixtures/events.jsonl", EVENTS_JSONL)
    .file("fixtures/inferred.jsonl", INFERRED_JSONL)
    .file(
        "scenarios/typed/scenario.toml",
        &format!("pipeline = \"w\"\n{SEEDS_AND_SINKS}"),
    )
    .file(
        "harness.toml",
        "backend = \"local\"\n[services.hive]\ndirect = false\n",
    );
    let cache = tempfile::tempdir().expect("tempdir");
    let cache_env = [("HARNESS_CACHE_DIR", cache.path().to_str().expect("utf-8"))];
    // Goldens through the session: it seeds the tables and reads every sink...
    let r = p.run_env(&["run", "typed", "--update"], &cache_env);
    assert_eq!(r.code, 0, "{}", r.all());
    let every = p.read("scenarios/typed/golden/every.snap");
    assert!(every.contains("rows: 4\n"), "{every}");
    let typed = p.read("scenarios/typed/golden/typed.snap");
    for row in [
        "id=1 | day=\"2024-05-01\" | at=\"2024-05-01 12:30:15\" | price=19.99 | big=12345678901234567890.123456789 | tiny=1 | note=\"plain, with a comma\"",
        "id=2 | day=\"1970-01-01\" | at=\"2024-05-01 12:30:15.123456\" | price=-0.01 | big=0E-9 | tiny=1 | note=\"say \\\"hi\\\"\"",
        "id=3 | day=NULL | at=\"2024-05-01 21:59:59\" | price=1234.50 | big=-1000.000000000 | tiny=NULL | note=NULL",
        "id=4 | day=\"2024-02-29\" | at=\"2024-05-01 00:00:00\" | price=1.01 | big=NULL | tiny=9",
    ] {
        assert!(typed.contains(row), "{row}\n{typed}");
    }
    let inferred = p.read("scenarios/typed/golden/inferred.snap");
    assert!(
        inferred.contains(
            "columns: day string | flag boolean | label string | none string | score double | user bigint\n"
        ),
        "{inferred}"
    );
    let filtered = p.read("scenarios/typed/golden/out_filtered.snap");
    assert!(filtered.contains("rows: 2\n"), "{filtered}");

    // ...then the harness seeds and reads them itself: the Spark job sees the same tables, the
    // snapshots are the same, and nothing goes through the session.
    let before = p.goldens();
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
    p.file("harness.toml", "backend = \"local\"\n");
    let r = p.run_env(&["run", "typed"], &cache_env);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(!archive.exists(), "{:?}", cached(cache.path()));
    assert!(!r.all().contains("through Spark"), "{}", r.all());
    assert!(!r.all().contains("spark session ready"), "{}", r.all());
    assert_eq!(p.goldens(), before);
}
