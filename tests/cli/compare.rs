//! Table-aware comparison against a real PostgreSQL and Redis: keyed row diffs naming the
//! changed column, float tolerance, redactions, schema changes, and sinks attributed to the task
//! that wrote them.

use crate::support::{Project, require_servers};

/// `load` writes a scores table from the scenario's environment (SCORE, EXTRA_COLUMN); `stamp`
/// writes a row with the current time and a random id; `publish` copies scores to Redis.
const PIPELINE: &str = r#"
services = ["postgres", "redis"]

[tasks.load]
kind = "command"
outputs = ["postgres:scores"]
argv = ["sh", "-c", """
psql -qAt -v ON_ERROR_STOP=1 "$HARNESS_POSTGRES_URL" <<SQL
CREATE TABLE scores (user_id int, item text, score float8 ${EXTRA_COLUMN:-});
INSERT INTO scores (user_id, item, score) VALUES (1, 'a', 0.5), (2, 'b', $SCORE), (3, 'c', 0.125);
SQL
echo loaded scores with SCORE=$SCORE
"""]

[tasks.stamp]
kind = "command"
argv = ["sh", "-c", """
psql -qAt -v ON_ERROR_STOP=1 "$HARNESS_POSTGRES_URL" -c "CREATE TABLE runs AS SELECT 1 AS id, now() AS started_at, 'run ' || md5(random()::text) || ' done' AS note"
"""]

[tasks.publish]
kind = "command"
outputs = ["redis:score:*"]
depends_on = ["load"]
argv = ["sh", "-c", """
psql -qAt "$HARNESS_POSTGRES_URL" -c 'SELECT user_id, score FROM scores' | while IFS='|' read u s; do redis-cli -u "$HARNESS_REDIS_URL" SET "score:$u" "$s" >/dev/null; done
echo published
"""]
"#;

/// The scenario: SCORE is user 2's score, `tolerance` a line added to the scores sink,
/// `extra_column` a column definition added to the table. Redis holds only user 1's score, which
/// never changes.
fn scenario(score: &str, tolerance: &str, extra_column: &str) -> String {
    format!(
        r#"
pipeline = "scores"
env = {{ SCORE = "{score}", EXTRA_COLUMN = "{extra_column}" }}

[[sink]]
name = "scores"
service = "postgres"
table = "scores"
key = ["user_id"]
{tolerance}

[[sink]]
name = "published"
service = "redis"
keys = "score:1"

[[sink]]
name = "runs"
service = "postgres"
table = "runs"
key = ["id"]
written_by = "stamp"
redact = [
  {{ column = "started_at", with = "[timestamp]" }},
  {{ regex = "[0-9a-f]{{32}}", with = "[md5]" }},
]
"#
    )
}

fn project(score: &str) -> Project {
    require_servers();
    let p = Project::new();
    p.file("pipelines/scores/pipeline.toml", PIPELINE)
        .file("scenarios/daily/scenario.toml", &scenario(score, "", ""));
    p
}

#[test]
fn a_keyed_table_diff_names_the_changed_column_and_the_task_that_wrote_it() {
    let p = project("0.25");
    let r = p.run(&["run", "--update"]);
    assert_eq!(r.code, 0, "{}", r.all());

    p.file("scenarios/daily/scenario.toml", &scenario("0.75", "", ""));
    let junit = p.path().join("junit.xml");
    let r = p.run(&["run", "--junit", junit.to_str().expect("utf-8")]);
    assert_eq!(r.code, 1, "{}", r.all());
    let out = &r.stdout;
    // The row, the column, old and new.
    assert!(out.contains("~ user_id=2: score: 0.25 → 0.75"), "{out}");
    assert!(out.contains("changed columns: score (1 row)"), "{out}");
    assert!(
        out.contains("table: 1 row changed, 0 added, 0 removed (rows paired by user_id"),
        "{out}"
    );
    // The task behind each differing sink, with its log.
    let log = p
        .path()
        .join(".harness/report/daily/tasks/load.log")
        .display()
        .to_string();
    assert!(
        out.contains(&format!(
            "`load` changed postgres table scores (sink `scores`, differs from its golden); log: {log}"
        )),
        "{out}"
    );
    // The same in results.json and in the JUnit message.
    let results: serde_json::Value =
        serde_json::from_str(&p.read(".harness/report/results.json")).expect("results.json");
    let sinks = &results["scenarios"][0]["sinks"];
    let scores = sinks
        .as_array()
        .expect("sinks")
        .iter()
        .find(|s| s["name"] == "scores")
        .expect("scores sink");
    assert_eq!(scores["written_by"], serde_json::json!(["load"]));
    assert_eq!(
        scores["table_diff"]["changed"][0]["cells"][0],
        serde_json::json!({"column": "score", "old": "0.25", "new": "0.75"})
    );
    // The HTML report links the sink to its task's log.
    let html = p.read(".harness/report/report.html");
    assert!(
        html.contains("`load` changed postgres table scores") && html.contains(">log of load</a>"),
        "report.html lacks the attribution"
    );
    let junit = std::fs::read_to_string(&junit).expect("junit written");
    assert!(
        junit.contains("`load` changed postgres table scores"),
        "{junit}"
    );
    assert!(junit.contains("score: 0.25 → 0.75"), "{junit}");
}

#[test]
fn a_change_within_tolerance_passes_and_one_beyond_it_fails() {
    let tolerance = "tolerance = { score = { abs = 0.001 } }";
    let p = project("0.25");
    p.file(
        "scenarios/daily/scenario.toml",
        &scenario("0.25", tolerance, ""),
    );
    let r = p.run(&["run", "--update"]);
    assert_eq!(r.code, 0, "{}", r.all());
    let golden = p.read("scenarios/daily/golden/scores.snap");

    // 0.2504 is within 0.001 of 0.25: the table passes, the golden is left as it is.
    p.file(
        "scenarios/daily/scenario.toml",
        &scenario("0.2504", tolerance, ""),
    );
    let r = p.run(&["run"]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(
        r.all().contains("(1 value within tolerance)"),
        "{}",
        r.all()
    );
    assert_eq!(p.read("scenarios/daily/golden/scores.snap"), golden);
    assert!(!p.exists("scenarios/daily/golden/scores.snap.new"));

    // 0.26 is not.
    p.file(
        "scenarios/daily/scenario.toml",
        &scenario("0.26", tolerance, ""),
    );
    let r = p.run(&["run"]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(
        r.stdout.contains("~ user_id=2: score: 0.25 → 0.26"),
        "{}",
        r.stdout
    );
}

#[test]
fn a_redacted_timestamp_and_generated_id_do_not_fail_the_comparison() {
    let p = project("0.25");
    let r = p.run(&["run", "--update"]);
    assert_eq!(r.code, 0, "{}", r.all());
    let runs = p.read("scenarios/daily/golden/runs.snap");
    assert!(
        runs.contains("id=1 | started_at=[timestamp] | note=\"run [md5] done\""),
        "the redactions are visible in the golden:\n{runs}"
    );
    // now() and random() differ on every run; the redacted snapshot does not.
    for _ in 0..2 {
        let r = p.run(&["run"]);
        assert_eq!(r.code, 0, "{}", r.all());
    }
    // Without the redactions the same sink fails.
    let plain = scenario("0.25", "", "").replace(
        "redact = [\n  { column = \"started_at\", with = \"[timestamp]\" },\n  { regex = \"[0-9a-f]{32}\", with = \"[md5]\" },\n]\n",
        "",
    );
    assert!(!plain.contains("redact"), "{plain}");
    p.file("scenarios/daily/scenario.toml", &plain);
    let r = p.run(&["run"]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(
        r.stdout
            .contains("changed columns: note (1 row), started_at (1 row)"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains(
            "sink `runs` (postgres table runs) differs from its golden; written by `stamp`"
        ) || r.stdout.contains("`stamp` changed postgres table runs"),
        "{}",
        r.stdout
    );
}

#[test]
fn schema_changes_are_reported_as_such() {
    let p = project("0.25");
    let r = p.run(&["run", "--update"]);
    assert_eq!(r.code, 0, "{}", r.all());
    p.file(
        "scenarios/daily/scenario.toml",
        &scenario("0.25", "", ", source text DEFAULT 'etl'"),
    );
    let r = p.run(&["run"]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(
        r.stdout.contains("schema: column `source` (text) added"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("table: 0 rows changed, 0 added, 0 removed"),
        "the rows themselves are unchanged: {}",
        r.stdout
    );
}

#[test]
fn repeat_names_the_columns_that_moved_and_the_lines_that_would_make_them_stable() {
    require_servers();
    let p = Project::new();
    p.file(
        "pipelines/noisy/pipeline.toml",
        r#"services = ["postgres"]
[tasks.write]
kind = "command"
argv = ["sh", "-c", "psql -q -v ON_ERROR_STOP=1 \"$HARNESS_POSTGRES_URL\" -c \"create table t (id int, score float8, label text, fixed int); insert into t values (1, 1.0 + random() / 1000, md5(random()::text), 7), (2, 2.0, 'same', 8)\""]
"#,
    );
    p.file(
        "scenarios/noisy/scenario.toml",
        r#"pipeline = "noisy"

[[sink]]
name = "t"
service = "postgres"
table = "t"
key = ["id"]

[[sink]]
name = "fixed"
service = "postgres"
query = "select id, fixed from t"
key = ["id"]
"#,
    );
    let r = p.run(&["run", "--repeat", "3"]);
    assert_eq!(r.code, 1, "something moved: {}", r.all());
    assert!(r.stdout.contains("stability over 3 runs"), "{}", r.stdout);
    assert!(r.stdout.contains("moved  noisy/t"), "{}", r.stdout);
    assert!(r.stdout.contains("stable noisy/fixed"), "{}", r.stdout);
    assert!(r.stdout.contains("column `score`"), "{}", r.stdout);
    assert!(
        r.stdout.contains("tolerance = { score = { abs = 0.00"),
        "a tolerance of the order of the noise: {}",
        r.stdout
    );
    assert!(
        r.stdout.contains("redact = [{ column = \"label\" }]"),
        "{}",
        r.stdout
    );
    assert!(!r.stdout.contains("column `fixed`"), "{}", r.stdout);
    let json: serde_json::Value =
        serde_json::from_str(&p.read(".harness/report/stability.json")).expect("JSON");
    assert_eq!(json["runs"], 3);
    assert_eq!(json["sinks"][0]["stability"]["moved"], true);
    assert_eq!(json["sinks"][1]["stability"]["moved"], false);
    // Nothing is written beside the goldens.
    assert!(!p.exists("scenarios/noisy/golden/t.snap.new"));
    assert_eq!(
        p.run(&["run", "--repeat", "1"]).code,
        2,
        "one run compares nothing"
    );
}
