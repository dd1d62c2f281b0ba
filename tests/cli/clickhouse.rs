//! Runs against a real ClickHouse server (Debian's 18.16): SQL, CSV and JSON Lines seeds, table
//! and query sinks, `sql` tasks, the reset between scenarios, and bad seeds reported at their
//! file and line with exit 2.

use crate::support::{Project, find_program};

/// Fails with a message naming what is missing when ClickHouse is not installed.
pub(crate) fn require_clickhouse() {
    let found = find_program("clickhouse-server").is_some()
        || std::path::Path::new("/usr/sbin/clickhouse-server").is_file();
    assert!(
        found,
        "clickhouse-server is missing: run scripts/setup.sh (it installs Debian's clickhouse-server)"
    );
}

const PIPELINE: &str = r#"
services = ["clickhouse"]

[tasks.totals]
kind = "sql"
service = "clickhouse"
sql = """
CREATE TABLE shop.totals ENGINE = MergeTree ORDER BY user_id AS
SELECT user_id, count() AS orders, sum(amount) AS amount FROM shop.orders GROUP BY user_id;
INSERT INTO shop.totals SELECT user_id, 0, 0 FROM shop.users WHERE user_id NOT IN (SELECT user_id FROM shop.orders)
"""
"#;

const SCHEMA: &str = "-- the shop's tables\n\
CREATE DATABASE shop;\n\
CREATE TABLE shop.orders (order_id UInt64, user_id UInt64, amount Decimal(9, 2), note Nullable(String)) ENGINE = MergeTree ORDER BY order_id;\n";

/// Columns in another order than the table's: they are matched by the header.
const ORDERS: &str =
    "user_id,order_id,note,amount\n1,10,first,9.50\n1,11,\\N,0.25\n2,12,\"a, b\",100.00\n";

const USERS: &str = "{\"user_id\": 1, \"name\": \"ann\", \"score\": 0.5}\n\
{\"user_id\": 2, \"name\": \"bob\", \"score\": 1.25}\n\
{\"user_id\": 3, \"name\": \"cy\"}\n";

fn scenario(extra_sink: &str) -> String {
    format!(
        r#"
pipeline = "shop"

[[seed]]
service = "clickhouse"
sql = "schema.sql"

[[seed]]
service = "clickhouse"
table = "shop.orders"
csv = "orders.csv"

[[seed]]
service = "clickhouse"
table = "shop.users"
jsonl = "users.jsonl"
schema = "user_id UInt64, name String, score Float64"
engine = "MergeTree ORDER BY user_id"

[[sink]]
name = "totals"
service = "clickhouse"
table = "shop.totals"
key = ["user_id"]

[[sink]]
name = "users"
service = "clickhouse"
query = "SELECT user_id, name, score, toDate('2024-05-01') AS day FROM shop.users"
key = ["user_id"]
{extra_sink}
"#
    )
}

fn shop() -> Project {
    require_clickhouse();
    let p = Project::new();
    p.file("pipelines/shop/pipeline.toml", PIPELINE)
        .file("fixtures/schema.sql", SCHEMA)
        .file("fixtures/orders.csv", ORDERS)
        .file("fixtures/users.jsonl", USERS);
    p
}

#[test]
fn clickhouse_seeds_sql_tasks_and_sinks_round_trip_and_reset_between_scenarios() {
    let p = shop();
    // Run second, on the same environment: it sees only what it seeded itself.
    let tables = r#"
[[sink]]
name = "tables"
service = "clickhouse"
query = "SELECT database, name FROM system.tables WHERE database != 'system'"
key = ["database", "name"]
"#;
    p.file("scenarios/a_first/scenario.toml", &scenario(""))
        .file("scenarios/b_second/scenario.toml", &scenario(tables));
    let r = p.run(&["run", "--update"]);
    assert_eq!(r.code, 0, "{}", r.all());

    let totals = p.read("scenarios/a_first/golden/totals.snap");
    assert!(totals.contains("clickhouse table shop.totals"), "{totals}");
    // Both orders of user 1 counted, the amounts' decimals kept, user 3 added by the second
    // statement of the task.
    for row in [
        "user_id=1 | orders=2 | amount=9.75",
        "user_id=2 | orders=1 | amount=100.00",
        "user_id=3 | orders=0 | amount=0.00",
    ] {
        assert!(totals.contains(row), "missing {row:?} in\n{totals}");
    }
    let users = p.read("scenarios/a_first/golden/users.snap");
    assert!(users.contains("Float64"), "{users}");
    // A key missing from a JSON line gets the column's zero.
    assert!(
        users.contains("user_id=3 | name=\"cy\" | score=0.0 | day=\"2024-05-01\""),
        "{users}"
    );
    let tables = p.read("scenarios/b_second/golden/tables.snap");
    assert!(
        tables.contains("rows: 3\n"),
        "only its own three tables:\n{tables}"
    );
    for t in ["orders", "totals", "users"] {
        assert!(
            tables.contains(&format!("database=\"shop\" | name=\"{t}\"")),
            "{tables}"
        );
    }

    // The same again: deterministic, nothing written.
    let before = p.goldens();
    let r = p.run(&["run"]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(p.goldens(), before);
    assert!(
        p.leftover_processes().is_empty(),
        "{:?}",
        p.leftover_processes()
    );
}

#[test]
fn clickhouse_gets_its_variables_and_the_password_is_never_printed() {
    let p = shop();
    p.file(
        "pipelines/shop/pipeline.toml",
        r#"
services = ["clickhouse"]

[tasks.env]
kind = "command"
argv = ["sh", "-c", "printf '%s\\n%s\\n' \"$HARNESS_CLICKHOUSE_URL\" \"$AIRFLOW_CONN_CLICKHOUSE_DEFAULT\" > url.txt; echo told"]
"#,
    )
    .file(
        "scenarios/s/scenario.toml",
        r#"
pipeline = "shop"
[[sink]]
name = "one"
service = "clickhouse"
query = "SELECT 1 AS one"
"#,
    );
    let r = p.run(&["run", "--update"]);
    assert_eq!(r.code, 0, "{}", r.all());
    let reports = walk_text(&p.path().join(".harness"));
    // Tasks run in their pipeline's folder.
    let url_file = p.path().join("pipelines/shop/url.txt");
    let text = std::fs::read_to_string(url_file).expect("url");
    let mut lines = text.lines();
    let http = lines.next().expect("HARNESS_CLICKHOUSE_URL");
    let native = lines.next().expect("AIRFLOW_CONN_CLICKHOUSE_DEFAULT");
    assert!(http.starts_with("http://harness:"), "{http}");
    assert!(native.starts_with("clickhouse://harness:"), "{native}");
    let password = http
        .trim_start_matches("http://harness:")
        .split('@')
        .next()
        .expect("password");
    assert!(password.len() >= 16, "a random password: {password}");
    assert!(
        !r.all().contains(password),
        "password printed:\n{}",
        r.all()
    );
    assert!(!reports.contains(password), "password in the report");
}

fn walk_text(dir: &std::path::Path) -> String {
    let mut out = String::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.push_str(&walk_text(&p));
        } else if let Ok(t) = std::fs::read_to_string(&p) {
            out.push_str(&t);
        }
    }
    out
}

#[test]
fn a_clickhouse_seed_naming_a_column_not_in_its_schema_is_exit_2_at_the_fixture_line() {
    let p = shop();
    p.file(
        "fixtures/users.jsonl",
        "{\"user_id\": 1, \"name\": \"ann\"}\n\n{\"user_id\": 2, \"nmae\": \"bob\"}\n",
    )
    .file("scenarios/s/scenario.toml", &scenario(""));
    for args in [&["check"][..], &["run"][..]] {
        let r = p.run(args);
        assert_eq!(r.code, 2, "{args:?}: {}", r.all());
        let all = r.all();
        assert!(all.contains("fixtures/users.jsonl:3:1"), "{all}");
        assert!(
            all.contains("column `nmae` is not in the table's schema (user_id, name, score)"),
            "{all}"
        );
        assert!(all.contains("did you mean `name`"), "{all}");
    }
    // The same in a CSV header: its first line.
    p.file("fixtures/users.jsonl", USERS).file(
        "scenarios/s/scenario.toml",
        &scenario("").replace("jsonl = \"users.jsonl\"", "csv = \"users.csv\""),
    );
    p.file("fixtures/users.csv", "user_id,name,rank\n1,ann,3\n");
    let r = p.run(&["check"]);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(r.all().contains("fixtures/users.csv:1:1"), "{}", r.all());
    assert!(
        r.all()
            .contains("column `rank` is not in the table's schema"),
        "{}",
        r.all()
    );
}

#[test]
fn a_clickhouse_seed_naming_a_column_its_table_has_not_is_exit_2_at_the_header() {
    let p = shop();
    // No schema: the table comes from the SQL seed, so the server finds the unknown column.
    p.file(
        "fixtures/orders.csv",
        "user_id,order_id,remark,amount\n1,10,a,1.00\n",
    )
    .file("scenarios/s/scenario.toml", &scenario(""));
    let r = p.run(&["run"]);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(r.all().contains("fixtures/orders.csv:1:1"), "{}", r.all());
    assert!(r.all().contains("remark"), "{}", r.all());
}

#[test]
fn a_bad_value_in_a_clickhouse_seed_is_exit_2_at_its_line() {
    let p = shop();
    p.file(
        "fixtures/orders.csv",
        "user_id,order_id,note,amount\n1,10,a,1.00\n2,11,b,2.00\nabc,12,c,3.00\n",
    )
    .file("scenarios/s/scenario.toml", &scenario(""));
    let r = p.run(&["run"]);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(r.all().contains("fixtures/orders.csv:4"), "{}", r.all());
    assert!(r.all().contains("table shop.orders"), "{}", r.all());
    assert!(p.leftover_processes().is_empty());
}

#[test]
fn a_failing_clickhouse_statement_names_its_line() {
    let p = shop();
    p.file(
        "fixtures/schema.sql",
        &format!("{SCHEMA}\n-- a typo below\nCREATE TABLE shop.broken (x UInt64) ENGINE = NoSuchEngine;\n"),
    )
    .file("scenarios/s/scenario.toml", &scenario(""));
    let r = p.run(&["run"]);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(r.all().contains("fixtures/schema.sql:6:1"), "{}", r.all());
}
