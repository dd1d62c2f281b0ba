//! The passwords of an environment's services: random per environment, carried in the URLs
//! tasks get, and masked as `***` in everything the harness prints or writes (terminal, JSON
//! events, JUnit, the HTML report, results.json and the tasks' logs).

use std::path::Path;

use crate::support::{Project, find_program, require_servers, walk};

/// A task that prints the URLs it was given (with their passwords) on both streams, keeps a
/// copy where the harness does not look, then fails.
const PIPELINE: &str = r#"
services = ["postgres", "redis", "clickhouse"]

[tasks.leak]
kind = "command"
argv = ["sh", "-c", "env | grep -E '^(HARNESS|AIRFLOW_CONN)_' | sort | tee urls.txt; echo \"cannot reach $HARNESS_POSTGRES_URL or $HARNESS_REDIS_URL\" >&2; exit 3"]
"#;

const SCENARIO: &str = r#"
pipeline = "p"

[[sink]]
name = "keys"
service = "redis"
keys = "*"
"#;

fn project() -> Project {
    require_servers();
    assert!(
        find_program("clickhouse-server").is_some()
            || Path::new("/usr/sbin/clickhouse-server").is_file(),
        "clickhouse-server is missing: run scripts/setup.sh"
    );
    let p = Project::new();
    p.file("pipelines/p/pipeline.toml", PIPELINE)
        .file("scenarios/s/scenario.toml", SCENARIO);
    p
}

/// The passwords in the URLs the task saw (what is between `user:` and `@`).
fn passwords(urls: &str) -> Vec<String> {
    let mut out: Vec<String> = urls
        .lines()
        .filter_map(|l| l.split_once("://")?.1.split_once('@'))
        .filter_map(|(userinfo, _)| userinfo.split_once(':'))
        .map(|(_, pw)| pw.to_string())
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Every `user:password@127.0.0.1` in `text` whose password is not `***`.
fn unmasked(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (at, _) in text.match_indices("@127.0.0.1") {
        let before = &text[..at];
        let start = before
            .rfind(|c: char| c == '/' || c.is_whitespace() || c == '"' || c == '\'')
            .map_or(0, |i| i + 1);
        let userinfo = &before[start..];
        if let Some((_, pw)) = userinfo.split_once(':')
            && pw != "***"
        {
            out.push(format!("{userinfo}@127.0.0.1"));
        }
    }
    out
}

fn text_of(files: &[std::path::PathBuf]) -> String {
    files
        .iter()
        .filter_map(|f| std::fs::read_to_string(f).ok())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Checks one piece of output: no password, no unmasked userinfo, and the mask shown.
fn check(what: &str, text: &str, passwords: &[String]) {
    for pw in passwords {
        assert!(!text.contains(pw.as_str()), "a password in {what}:\n{text}");
    }
    let found = unmasked(text);
    assert!(found.is_empty(), "unmasked URLs in {what}: {found:?}");
    assert!(
        text.contains(":***@127.0.0.1"),
        "no masked URL in {what}:\n{text}"
    );
}

#[test]
fn passwords_are_random_per_environment_and_shown_as_stars_everywhere_the_harness_writes() {
    let p = project();
    let human = p.run(&["run", "--junit", "junit.xml"]);
    assert_eq!(human.code, 1, "{}", human.all());
    let urls = p.read("pipelines/p/urls.txt");
    let first = passwords(&urls);
    // PostgreSQL, Redis and ClickHouse (HTTP and native share one) each have their own.
    assert_eq!(first.len(), 3, "{urls}");
    assert!(first.iter().all(|pw| pw.len() >= 16), "{first:?}");
    assert!(
        urls.contains("HARNESS_REDIS_URL=redis://default:"),
        "{urls}"
    );
    assert!(
        urls.contains("HARNESS_POSTGRES_URL=postgres://harness:"),
        "{urls}"
    );

    check("the terminal output", &human.all(), &first);
    check("junit.xml", &p.read("junit.xml"), &first);
    let reports = walk(&p.path().join(".harness"));
    let find = |name: &str| -> Vec<std::path::PathBuf> {
        reports
            .iter()
            .filter(|f| f.to_string_lossy().ends_with(name))
            .cloned()
            .collect()
    };
    let html = find("report.html");
    assert!(!html.is_empty(), "no HTML report in {reports:?}");
    check("the HTML report", &text_of(&html), &first);
    let logs = find("leak.log");
    assert!(!logs.is_empty(), "no task log in {reports:?}");
    check("the task's log", &text_of(&logs), &first);
    // Nothing anywhere in the report folder.
    for pw in &first {
        assert!(
            !text_of(&reports).contains(pw.as_str()),
            "a password in .harness"
        );
    }

    let json = p.run(&["run", "--format", "json"]);
    assert_eq!(json.code, 1, "{}", json.all());
    let second = passwords(&p.read("pipelines/p/urls.txt"));
    assert_eq!(second.len(), 3);
    assert!(
        first.iter().all(|pw| !second.contains(pw)),
        "a new environment reuses a password: {first:?} {second:?}"
    );
    check("the JSON events", &json.stdout, &second);
    for pw in &second {
        assert!(!json.stderr.contains(pw.as_str()), "{}", json.stderr);
    }
    assert!(unmasked(&json.stderr).is_empty(), "{}", json.stderr);
    assert!(
        json.stdout
            .lines()
            .any(|l| l.contains("\"task_output\"") && l.contains("redis://default:***@127.0.0.1")),
        "{}",
        json.stdout
    );
}

#[test]
fn the_unmasked_url_check_finds_a_password() {
    assert_eq!(
        unmasked("x postgres://harness:abc123@127.0.0.1:5/h y redis://default:***@127.0.0.1:6/0"),
        vec!["harness:abc123@127.0.0.1".to_string()]
    );
    assert!(unmasked("redis://127.0.0.1:6/0 http://harness:***@127.0.0.1:8").is_empty());
}

#[test]
fn postgres_and_redis_refuse_a_login_without_the_environments_password() {
    require_servers();
    let p = Project::new();
    // Each check prints what it saw; the task fails unless the password is required by both
    // servers and the URLs given to the task log in.
    p.file(
        "pipelines/p/pipeline.toml",
        r#"
services = ["postgres", "redis"]

[tasks.logins]
kind = "command"
argv = ["sh", "-c", """
set -u
pg_port=${HARNESS_POSTGRES_URL##*@127.0.0.1:}; pg_port=${pg_port%%/*}
redis_port=${HARNESS_REDIS_URL##*@127.0.0.1:}; redis_port=${redis_port%%/*}
unset PGPASSWORD
if psql -w -qAt "postgres://harness@127.0.0.1:$pg_port/harness" -c 'SELECT 1'; then echo 'postgres: in without a password'; exit 1; fi
if psql -w -qAt "postgres://harness:wrong-password@127.0.0.1:$pg_port/harness" -c 'SELECT 1'; then echo 'postgres: in with a wrong password'; exit 1; fi
test "$(psql -w -qAt "$HARNESS_POSTGRES_URL" -c 'SELECT 41 + 1')" = 42 || { echo 'postgres: the given URL does not log in'; exit 1; }
test "$(redis-cli -p "$redis_port" PING 2>&1)" = PONG && { echo 'redis: in without a password'; exit 1; }
test "$(redis-cli --no-auth-warning -u "$HARNESS_REDIS_URL" PING)" = PONG || { echo 'redis: the given URL does not log in'; exit 1; }
echo 'both refuse a login without the password'
"""]
"#,
    )
    .file(
        "scenarios/s/scenario.toml",
        "pipeline = \"p\"\n[[sink]]\nname = \"keys\"\nservice = \"redis\"\nkeys = \"*\"\n",
    );
    let r = p.run(&["run", "--update"]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(
        r.stderr
            .contains("both refuse a login without the password"),
        "{}",
        r.stderr
    );
}
