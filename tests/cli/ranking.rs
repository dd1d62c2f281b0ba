//! Ranking-aware comparison against a real Redis and PostgreSQL: a sorted set, a JSON array and
//! a table ranked within each user, compared by overlap@K. A small reordering passes and names
//! what entered and left; a drift past the bound fails with exit 1, naming the list and its
//! overlap.

use crate::support::{Project, require_servers};

/// `publish` writes the recommendations of VARIANT: `golden`, `reordered` (two items swap
/// places within the score tolerance, one item falls out of the top 5 for another) or `drifted`
/// (three of the top 5 replaced).
const PIPELINE: &str = r#"
services = ["postgres", "redis"]

[tasks.publish]
kind = "command"
outputs = ["redis:recs:*", "postgres:ranked"]
argv = ["sh", "-c", """
set -e
r() { redis-cli -u "$HARNESS_REDIS_URL" "$@" >/dev/null; }
case "$VARIANT" in
  golden)
    r ZADD recs:user:1 0.9 a 0.8 b 0.7 c 0.6 d 0.5 e 0.4 f
    r SET recs:similar:a '[{"id":"b","sim":0.9},{"id":"c","sim":0.8},{"id":"d","sim":0.7}]'
    ROWS="(1,'a',1,0.9),(1,'b',2,0.8),(1,'c',3,0.7),(1,'d',4,0.6)" ;;
  reordered)
    r ZADD recs:user:1 0.9 a 0.79 c 0.78 b 0.6 d 0.55 f 0.45 e
    r SET recs:similar:a '[{"id":"c","sim":0.82},{"id":"b","sim":0.88},{"id":"d","sim":0.7}]'
    ROWS="(1,'b',1,0.82),(1,'a',2,0.88),(1,'c',3,0.7),(1,'d',4,0.6)" ;;
  drifted)
    r ZADD recs:user:1 0.9 a 0.85 x 0.84 y 0.8 b 0.75 z 0.7 c
    r SET recs:similar:a '[{"id":"b","sim":0.9},{"id":"c","sim":0.8},{"id":"d","sim":0.7}]'
    ROWS="(1,'a',1,0.9),(1,'x',2,0.85),(1,'y',3,0.84),(1,'b',4,0.8)" ;;
esac
r SET recs:version v1
psql -qAt -v ON_ERROR_STOP=1 "$HARNESS_POSTGRES_URL" -c "CREATE TABLE ranked (user_id int, item text, rank int, score float8); INSERT INTO ranked VALUES $ROWS"
echo published $VARIANT
"""]
"#;

fn scenario(variant: &str) -> String {
    format!(
        r#"
pipeline = "recs"
env = {{ VARIANT = "{variant}" }}

[[sink]]
name = "recs"
service = "redis"
keys = "recs:*"
decode = "json"
compare = {{ top_k = 5, min_overlap = 0.8, min_rank_correlation = 0.3, item = "id", score = "sim", tolerance = {{ abs = 0.1 }} }}

[[sink]]
name = "ranked"
service = "postgres"
table = "ranked"
key = ["user_id", "item"]
compare = {{ top_k = 3, min_overlap = 0.6, group = ["user_id"], item = "item", rank = "rank", score = "score" }}
tolerance = {{ score = {{ abs = 0.1 }} }}
"#
    )
}

#[test]
fn a_small_reordering_passes_and_a_drift_past_the_bound_fails() {
    require_servers();
    let p = Project::new();
    p.file("pipelines/recs/pipeline.toml", PIPELINE)
        .file("scenarios/daily/scenario.toml", &scenario("golden"));
    let r = p.run(&["run", "--update"]);
    assert_eq!(r.code, 0, "{}", r.all());
    let goldens = p.goldens();

    // The reordering stays within the bounds: the run passes, the goldens are left as they
    // are, nothing is pending, and the summary says per list what entered and what left.
    p.file("scenarios/daily/scenario.toml", &scenario("reordered"));
    let r = p.run(&["run"]);
    assert_eq!(r.code, 0, "{}", r.all());
    let out = &r.stdout;
    assert!(
        r.all()
            .contains("(3 lists changed within the ranking bounds)"),
        "{}",
        r.all()
    );
    assert!(
        out.contains("daily: sink `recs` (redis keys recs:*) passes within its ranking bounds"),
        "{out}"
    );
    assert!(
        out.contains("within \"recs:user:1\": overlap@5 4/5 = 0.80, rank correlation 0.67"),
        "{out}"
    );
    assert!(
        out.contains("entered: \"f\"") && out.contains("left: \"e\""),
        "{out}"
    );
    assert!(
        out.contains("within user_id=1: overlap@3 3/3 = 1.00, rank correlation 0.33"),
        "{out}"
    );
    assert_eq!(p.goldens(), goldens, "the goldens are left as they are");
    assert!(!p.exists("scenarios/daily/golden/recs.snap.new"));

    // The drift replaces three of the top 5: the sink fails, naming the list, its overlap,
    // what entered and what left, in the summary, results.json and the JUnit report.
    p.file("scenarios/daily/scenario.toml", &scenario("drifted"));
    let junit = p.path().join("junit.xml");
    let r = p.run(&["run", "--junit", junit.to_str().expect("utf-8")]);
    assert_eq!(r.code, 1, "{}", r.all());
    let out = &r.stdout;
    assert!(
        r.all()
            .contains("sinks not matching their goldens (2 of 2): recs, ranked"),
        "{}",
        r.all()
    );
    assert!(
        out.contains("broken \"recs:user:1\": overlap@5 2/5 = 0.40"),
        "{out}"
    );
    assert!(
        out.contains("past the bounds: overlap@5 0.40 below min_overlap 0.8"),
        "{out}"
    );
    assert!(
        out.contains("entered: \"x\", \"y\", \"z\"") && out.contains("left: \"c\", \"d\", \"e\""),
        "{out}"
    );
    assert!(
        out.contains("broken user_id=1: overlap@3 1/3 = 0.33"),
        "{out}"
    );
    let results: serde_json::Value =
        serde_json::from_str(&p.read(".harness/report/results.json")).expect("results.json");
    let recs = &results["scenarios"][0]["sinks"]
        .as_array()
        .expect("sinks")
        .iter()
        .find(|s| s["name"] == "recs")
        .expect("recs sink")["ranking"];
    assert_eq!(recs["changed"][0]["list"], "\"recs:user:1\"");
    assert_eq!(recs["changed"][0]["overlap"], 0.4);
    assert_eq!(
        recs["changed"][0]["entered"],
        serde_json::json!(["\"x\"", "\"y\"", "\"z\""])
    );
    let junit = std::fs::read_to_string(&junit).expect("junit written");
    assert!(junit.contains("overlap@5 2/5 = 0.40"), "{junit}");
    let html = p.read(".harness/report/report.html");
    assert!(
        html.contains("broken &quot;recs:user:1&quot;: overlap@5 2/5 = 0.40"),
        "report.html lacks the ranking account"
    );
    let kept: Vec<_> = p
        .goldens()
        .into_iter()
        .filter(|(path, _)| path.extension().is_some_and(|e| e == "snap"))
        .collect();
    assert_eq!(
        kept, goldens,
        "a failing run leaves the goldens as they are"
    );
}
