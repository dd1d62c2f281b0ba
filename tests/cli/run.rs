//! Runs against real PostgreSQL and Redis: seeds, tasks, sinks, goldens, failures, timeouts,
//! JUnit, and the environment-variable contract.

use crate::support::{Project, alive, require_servers};

/// A pipeline: an SQL task derives a table from a seeded one, a command task copies it to Redis.
const PIPELINE: &str = r#"
services = ["postgres", "redis"]

[tasks.summarize]
kind = "sql"
sql = """
CREATE TABLE totals AS
SELECT user_id, count(*)::int AS views, sum(seconds) AS seconds, max(note) AS note
FROM views GROUP BY user_id;
"""

[tasks.publish]
kind = "command"
argv = ["sh", "-c", "psql -qAt \"$HARNESS_POSTGRES_URL\" -c 'SELECT user_id, views FROM totals' | while IFS='|' read u v; do redis-cli -u \"$HARNESS_REDIS_URL\" SET \"views:$u\" \"$v\" >/dev/null; done"]
depends_on = ["summarize"]
"#;

const SCENARIO: &str = r#"
pipeline = "views"

[[seed]]
service = "postgres"
sql = "schema.sql"

[[seed]]
service = "postgres"
table = "views"
csv = "views.csv"

[[sink]]
name = "totals"
service = "postgres"
table = "totals"
key = ["user_id"]

[[sink]]
name = "published"
service = "redis"
keys = "views:*"
"#;

const VIEWS: &str = "user_id,seconds,note\n1,10.5,a\n1,2.25,\n2,7,\"\"\n3,1,x\n";

fn views_project() -> Project {
    require_servers();
    let p = Project::new();
    p.file("pipelines/views/pipeline.toml", PIPELINE)
        .file("scenarios/daily/scenario.toml", SCENARIO)
        .file("scenarios/daily/schema.sql", "CREATE TABLE views (user_id int NOT NULL, seconds numeric(8,2) NOT NULL, note text);\n")
        .file("fixtures/views.csv", VIEWS);
    p
}

#[test]
fn a_csv_header_naming_a_column_the_table_has_not_is_exit_2_at_the_header() {
    let p = views_project();
    p.file("fixtures/views.csv", "user_id,secs,note\n1,10.5,a\n")
        .file("scenarios/daily/scenario.toml", SCENARIO);
    let r = p.run(&["run"]);
    assert_eq!(r.code, 2, "{}", r.all());
    // `secs` is the header's second column: line 1, column 9.
    assert!(r.all().contains("fixtures/views.csv:1:9"), "{}", r.all());
    assert!(r.all().contains("\"secs\""), "{}", r.all());
}

#[test]
fn passing_scenario_then_changed_fixture_fails_with_a_diff_then_update_passes() {
    let p = views_project();
    // No golden yet: the scenario fails and proposes snapshots.
    let r = p.run(&["run"]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(r.stdout.contains("has no golden file"), "{}", r.stdout);
    assert!(p.exists("scenarios/daily/golden/totals.snap.new"));

    let r = p.run(&["run", "--update"]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(
        !p.exists("scenarios/daily/golden/totals.snap.new"),
        "--update leaves no pending file"
    );
    let totals = p.read("scenarios/daily/golden/totals.snap");
    assert_eq!(
        totals,
        "# harness snapshot v1\n# sink: totals\n# source: postgres table totals\n# order: user_id\n\
         columns: user_id int4 | views int4 | seconds numeric | note text\nrows: 3\n\n\
         user_id=1 | views=2 | seconds=12.75 | note=\"a\"\n\
         user_id=2 | views=1 | seconds=7.00 | note=\"\"\n\
         user_id=3 | views=1 | seconds=1.00 | note=\"x\"\n"
    );
    assert!(
        p.read("scenarios/daily/golden/published.snap")
            .contains("\"views:1\" string\n  \"2\"\n")
    );

    // Same data in: same bytes out, nothing written.
    let before = p.goldens();
    let r = p.run(&["run"]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(r.stdout.contains("1 passed, 0 failed"), "{}", r.stdout);
    assert_eq!(p.goldens(), before);

    // One changed fixture row: exit 1, a diff naming the changed row, golden untouched.
    p.file("fixtures/views.csv", &VIEWS.replace("3,1,x", "3,4,x"));
    let r = p.run(&["run"]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(
        r.stdout
            .contains("-user_id=3 | views=1 | seconds=1.00 | note=\"x\""),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("+user_id=3 | views=1 | seconds=4.00 | note=\"x\""),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("sink `totals` (postgres table totals) differs from its golden"),
        "{}",
        r.stdout
    );
    assert_eq!(
        p.goldens()
            .iter()
            .filter(|(f, _)| !f.to_string_lossy().ends_with(".new"))
            .cloned()
            .collect::<Vec<_>>(),
        before
    );
    assert!(
        p.read("scenarios/daily/golden/totals.snap.new")
            .contains("seconds=4.00")
    );

    // --update accepts it.
    let r = p.run(&["run", "--update"]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(
        p.read("scenarios/daily/golden/totals.snap")
            .contains("user_id=3 | views=1 | seconds=4.00")
    );
    assert!(!p.exists("scenarios/daily/golden/totals.snap.new"));
    let r = p.run(&["run"]);
    assert_eq!(r.code, 0, "{}", r.all());
}

#[test]
fn on_ci_nothing_is_written_without_update() {
    let p = views_project();
    let r = p.run_env(&["run"], &[("CI", "true")]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(
        !p.exists("scenarios/daily/golden"),
        "CI must not write goldens or pending files"
    );
    // The new snapshots are kept in the report, laid out like the project: a developer copies
    // them in (as from a CI artifact) and reviews them.
    let kept = ".harness/report/pending/scenarios/daily/golden/totals.snap.new";
    assert!(p.exists(kept), "{}", r.stdout);
    assert!(
        r.stdout
            .contains("copy the report's pending/ folder into the project"),
        "{}",
        r.stdout
    );
    p.file("scenarios/daily/golden/totals.snap.new", &p.read(kept));
    let r = p.run(&["review", "--accept-all"]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(p.read("scenarios/daily/golden/totals.snap"), p.read(kept));
    let r = p.run_env(&["run", "--update"], &[("CI", "true")]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(p.exists("scenarios/daily/golden/published.snap"));
}

#[test]
fn failed_task_skips_dependants_shows_its_log_and_writes_no_golden() {
    let p = views_project();
    p.file(
        "pipelines/views/pipeline.toml",
        &PIPELINE.replace("sum(seconds)", "sum(no_such_column)"),
    );
    let junit = p.path().join("out/junit.xml");
    let r = p.run(&["run", "--update", "--junit", junit.to_str().expect("utf-8")]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(
        r.all().contains("column \"no_such_column\" does not exist"),
        "{}",
        r.all()
    );
    // The error points into pipeline.toml, at the statement's line.
    assert!(
        r.all().contains("pipelines/views/pipeline.toml:8:"),
        "{}",
        r.all()
    );
    assert!(
        r.stdout
            .contains("task `publish` skipped (upstream `summarize` failed)"),
        "{}",
        r.stdout
    );
    assert!(
        !p.exists("scenarios/daily/golden"),
        "--update must not write for a scenario whose tasks failed"
    );
    let xml = std::fs::read_to_string(&junit).expect("junit written");
    assert!(xml.contains("<testcase name=\"daily\""), "{xml}");
    assert!(xml.contains("<failure"), "{xml}");
    assert!(xml.contains("no_such_column"), "{xml}");
    assert!(xml.contains("<system-out>"), "{xml}");
}

#[test]
fn task_output_is_streamed_with_its_name_and_kept_in_the_report() {
    require_servers();
    let p = Project::new();
    p.file("pipelines/p/pipeline.toml", "[tasks.talk]\nkind = \"command\"\nargv = [\"sh\", \"-c\", \"echo hello out; echo hello err >&2\"]\n")
        .file("scenarios/s/scenario.toml", "pipeline = \"p\"\nservices = [\"redis\"]\n[[sink]]\nname = \"k\"\nservice = \"redis\"\nkeys = \"*\"\n");
    let r = p.run(&["run", "--update", "--report-dir", "rep"]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(r.stderr.contains("s/talk | hello out"), "{}", r.stderr);
    assert!(r.stderr.contains("s/talk | hello err"), "{}", r.stderr);
    let log = p.read("rep/s/tasks/talk.log");
    assert!(
        log.contains("hello out") && log.contains("hello err"),
        "{log}"
    );
    assert!(p.read("rep/s/snapshots/k.snap").contains("keys: 0"));
}

#[test]
fn timeout_kills_the_task_and_its_children() {
    let p = Project::new();
    let out = p.path().join("out");
    std::fs::create_dir_all(&out).expect("mkdir");
    let pipeline = format!(
        "[tasks.hang]\nkind = \"command\"\nargv = [\"sh\", \"-c\", \"sleep 600 & echo $! > {0}/child.pid; sleep 600\"]\ntimeout = \"1s\"\n\n[tasks.after]\nkind = \"command\"\nargv = [\"true\"]\ndepends_on = [\"hang\"]\n",
        out.display()
    );
    p.file("pipelines/p/pipeline.toml", &pipeline).file(
        "scenarios/s/scenario.toml",
        "pipeline = \"p\"\n[[sink]]\nname = \"k\"\nservice = \"redis\"\nkeys = \"*\"\n",
    );
    require_servers();
    let r = p.run(&["run"]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(
        r.stdout.contains("task `hang` timed out after 1s"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("task `after` skipped (upstream `hang` failed)"),
        "{}",
        r.stdout
    );
    let pid: i32 = std::fs::read_to_string(out.join("child.pid"))
        .expect("pid")
        .trim()
        .parse()
        .expect("pid");
    assert!(!alive(pid), "the task's child {pid} survived its timeout");
    assert!(
        p.leftover_processes().is_empty(),
        "{:?}",
        p.leftover_processes()
    );
}

#[test]
fn retries_rerun_a_flaky_task() {
    require_servers();
    let p = Project::new();
    let counter = p.path().join("count");
    p.file(
        "pipelines/p/pipeline.toml",
        &format!("[tasks.flaky]\nkind = \"command\"\nargv = [\"sh\", \"-c\", \"echo x >> {0}; test $(wc -l < {0}) -ge 2\"]\nretries = 2\n", counter.display()),
    )
    .file("scenarios/s/scenario.toml", "pipeline = \"p\"\nservices = [\"redis\"]\n[[sink]]\nname = \"k\"\nservice = \"redis\"\nkeys = \"*\"\n");
    let r = p.run(&["run", "--update"]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(r.stderr.contains("(attempt 2/3)"), "{}", r.stderr);
    assert_eq!(
        std::fs::read_to_string(&counter)
            .expect("count")
            .lines()
            .count(),
        2
    );
}

#[test]
fn tasks_get_the_environment_contract() {
    require_servers();
    let p = Project::new();
    let out = p.path().join("env.txt");
    p.file(
        "pipelines/p/pipeline.toml",
        &format!("services = [\"postgres\", \"redis\"]\n[env]\nFROM_PIPELINE = \"1\"\n[tasks.dump]\nkind = \"command\"\nargv = [\"sh\", \"-c\", \"env | sort > {}; test -d \\\"$HARNESS_WORK_DIR\\\"\"]\nenv = {{ FROM_TASK = \"2\" }}\n", out.display()),
    )
    .file("scenarios/s/scenario.toml", "pipeline = \"p\"\n[env]\nFROM_SCENARIO = \"3\"\n[[sink]]\nname = \"k\"\nservice = \"redis\"\nkeys = \"*\"\n");
    let r = p.run_env(
        &["run", "--update"],
        &[("HARNESS_HIVE_METASTORE_URI", "thrift://elsewhere:9083")],
    );
    assert_eq!(r.code, 0, "{}", r.all());
    let env = std::fs::read_to_string(&out).expect("env dump");
    let var = |k: &str| {
        env.lines()
            .find_map(|l| l.strip_prefix(&format!("{k}=")))
            .map(str::to_string)
    };
    assert_eq!(var("HARNESS_SCENARIO").as_deref(), Some("s"));
    let pg = var("HARNESS_POSTGRES_URL").expect("postgres url");
    let pg_password = pg
        .strip_prefix("postgres://harness:")
        .and_then(|rest| rest.split_once("@127.0.0.1:"))
        .filter(|(_, rest)| rest.ends_with("/harness"))
        .map(|(pw, _)| pw)
        .unwrap_or_else(|| panic!("{pg}"));
    let redis = var("HARNESS_REDIS_URL").expect("redis url");
    let redis_password = redis
        .strip_prefix("redis://default:")
        .and_then(|rest| rest.split_once("@127.0.0.1:"))
        .filter(|(_, rest)| rest.ends_with("/0"))
        .map(|(pw, _)| pw)
        .unwrap_or_else(|| panic!("{redis}"));
    assert!(
        pg_password.len() >= 16 && pg_password != "harness",
        "a random password: {pg}"
    );
    assert!(redis_password.len() >= 16, "a random password: {redis}");
    assert_ne!(pg_password, redis_password, "one password per service");
    assert_eq!(var("AIRFLOW_CONN_POSTGRES_DEFAULT"), Some(pg));
    assert_eq!(var("AIRFLOW_CONN_REDIS_DEFAULT"), Some(redis));
    assert!(
        var("HARNESS_WORK_DIR")
            .is_some_and(|w| w.starts_with(&p.tmp().to_string_lossy().into_owned()))
    );
    assert_eq!(
        var("HARNESS_HIVE_METASTORE_URI"),
        None,
        "a variable for a service not started must be absent"
    );
    assert_eq!(
        (var("FROM_PIPELINE"), var("FROM_SCENARIO"), var("FROM_TASK")),
        (Some("1".into()), Some("3".into()), Some("2".into()))
    );
}

#[test]
fn seeds_of_every_redis_type_and_nulls_render_canonically() {
    require_servers();
    let p = Project::new();
    p.file("pipelines/p/pipeline.toml", "[tasks.noop]\nkind = \"command\"\nargv = [\"true\"]\n")
        .file(
            "scenarios/s/scenario.toml",
            "pipeline = \"p\"\n[[seed]]\nservice = \"redis\"\njson = \"keys.json\"\n[[seed]]\nservice = \"postgres\"\nsql = \"t.sql\"\n\
             [[sink]]\nname = \"keys\"\nservice = \"redis\"\nkeys = \"*\"\n[[sink]]\nname = \"rows\"\nservice = \"postgres\"\nquery = \"SELECT * FROM t\"\nfloat_digits = 2\n",
        )
        .file("scenarios/s/t.sql", "CREATE TABLE t (a text, b double precision, c boolean);\nINSERT INTO t VALUES (NULL, 1.005, true), ('', -0.001, NULL), ('NULL', 2, false);\n")
        .file(
            "scenarios/s/keys.json",
            r#"{"s": "plain", "e": {"type": "string", "value": "gone later", "ttl": 600},
                "h": {"type": "hash", "value": {"b": "2", "a": "1"}},
                "l": {"type": "list", "value": ["z", "a"]},
                "set": {"type": "set", "value": ["y", "x"]},
                "z": {"type": "zset", "value": {"m2": 2, "m1": 0.5}}}"#,
        );
    let r = p.run(&["run", "--update"]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(
        p.read("scenarios/s/golden/keys.snap"),
        "# harness snapshot v1\n# sink: keys\n# source: redis keys *\nkeys: 6\n\n\
         \"e\" string (expires)\n  \"gone later\"\n\n\"h\" hash\n  \"a\": \"1\"\n  \"b\": \"2\"\n\n\
         \"l\" list\n  [0] \"z\"\n  [1] \"a\"\n\n\"s\" string\n  \"plain\"\n\n\"set\" set\n  \"x\"\n  \"y\"\n\n\
         \"z\" zset\n  0.5 \"m1\"\n  2.0 \"m2\"\n"
    );
    assert_eq!(
        p.read("scenarios/s/golden/rows.snap"),
        "# harness snapshot v1\n# sink: rows\n# source: postgres query SELECT * FROM t\n# order: whole row\n\
         columns: a text | b float8 | c bool\nrows: 3\n\n\
         a=NULL | b=1.00 | c=true\na=\"\" | b=0.00 | c=NULL\na=\"NULL\" | b=2.00 | c=false\n"
    );
}

#[test]
fn rejected_csv_row_is_bad_input_naming_file_and_line() {
    let p = views_project();
    p.file(
        "fixtures/views.csv",
        "user_id,seconds,note\n1,10.5,a\n2,ten,b\n",
    );
    let r = p.run(&["run"]);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(r.all().contains("fixtures/views.csv:3:1"), "{}", r.all());
    assert!(
        r.all().contains("invalid input syntax for type numeric"),
        "{}",
        r.all()
    );
}

#[test]
fn a_service_that_does_not_start_is_an_infrastructure_failure_with_its_log() {
    require_servers();
    let p = Project::new();
    p.file(
        "broken-redis",
        "#!/bin/sh\necho 'FATAL: cannot open the listening socket' >&2\nexit 1\n",
    );
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        p.path().join("broken-redis"),
        std::fs::Permissions::from_mode(0o755),
    )
    .expect("chmod");
    p.file(
        "harness.toml",
        "backend = \"local\"\n[services.redis]\nbin = \"./broken-redis\"\nstart_timeout = \"5s\"\n",
    )
    .file(
        "pipelines/p/pipeline.toml",
        "[tasks.noop]\nkind = \"command\"\nargv = [\"true\"]\n",
    )
    .file(
        "scenarios/s/scenario.toml",
        "pipeline = \"p\"\n[[sink]]\nname = \"k\"\nservice = \"redis\"\nkeys = \"*\"\n",
    );
    let r = p.run(&["run"]);
    assert_eq!(r.code, 3, "{}", r.all());
    assert!(r.stderr.contains("redis did not start"), "{}", r.stderr);
    assert!(
        r.stderr.contains("FATAL: cannot open the listening socket"),
        "{}",
        r.stderr
    );
    assert!(
        p.leftover_processes().is_empty(),
        "{:?}",
        p.leftover_processes()
    );
}

/// Five scenarios without services (an HDFS listing is a local folder); `s2` and `s4` fail.
fn five_scenarios() -> Project {
    let p = Project::new();
    p.file("pipelines/p/pipeline.toml", "[tasks.ok]\nkind = \"command\"\nargv = [\"true\"]\n[tasks.bad]\nkind = \"command\"\nargv = [\"false\"]\n");
    for i in 1..=5 {
        let task = if i % 2 == 0 { "bad" } else { "ok" };
        p.file(&format!("scenarios/s{i}/scenario.toml"), &format!("pipeline = \"p\"\ntasks = [\"{task}\"]\n[[sink]]\nname = \"root\"\nservice = \"hdfs\"\npath = \"/\"\n"));
        p.file(
            &format!("scenarios/s{i}/golden/root.snap"),
            "# harness snapshot v1\n# sink: root\n# source: hdfs path /\nfiles: 0\n",
        );
    }
    p
}

#[test]
fn partitions_cover_every_scenario_exactly_once() {
    let p = five_scenarios();
    let mut seen: Vec<String> = Vec::new();
    for k in 1..=3 {
        let r = p.run(&["list", "--partition", &format!("{k}/3")]);
        assert_eq!(r.code, 0, "{}", r.all());
        seen.extend(
            r.stdout
                .lines()
                .filter(|l| l.starts_with('s'))
                .map(str::to_string),
        );
    }
    seen.sort();
    assert_eq!(seen, vec!["s1", "s2", "s3", "s4", "s5"]);
    let r = p.run(&["run", "--partition", "2/3"]);
    assert!(
        r.stderr.contains("▶ s2") && r.stderr.contains("▶ s5") && !r.stderr.contains("▶ s1"),
        "{}",
        r.stderr
    );
    for bad in ["0/3", "4/3", "1/0", "x"] {
        assert_eq!(p.run(&["run", "--partition", bad]).code, 2, "{bad}");
    }
}

#[test]
fn results_json_and_rerunning_only_the_failed_scenarios() {
    let p = five_scenarios();
    let r = p.run(&["run"]);
    assert_eq!(r.code, 1, "{}", r.all());
    let results: serde_json::Value =
        serde_json::from_str(&p.read(".harness/report/results.json")).expect("results.json");
    assert_eq!(results["exit_code"], 1);
    let statuses: Vec<(String, String)> = results["scenarios"]
        .as_array()
        .expect("scenarios")
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap_or("").to_string(),
                s["status"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert_eq!(
        statuses
            .iter()
            .filter(|(_, st)| st == "failed")
            .map(|(n, _)| n.as_str())
            .collect::<Vec<_>>(),
        vec!["s2", "s4"]
    );
    assert_eq!(
        results["scenarios"][1]["tasks"][0]["status"],
        "failed: exit code 1"
    );

    // Only the failed ones run again; one of them is fixed.
    p.file(
        "scenarios/s2/scenario.toml",
        &p.read("scenarios/s2/scenario.toml")
            .replace("\"bad\"", "\"ok\""),
    );
    let r = p.run(&["run", "--failed"]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(r.stderr.contains("running 2 scenarios"), "{}", r.stderr);
    assert!(r.stdout.contains("1 passed, 1 failed"), "{}", r.stdout);
    assert_eq!(p.read(".harness/report/last-failed"), "s4\n");
    p.file(
        "scenarios/s4/scenario.toml",
        &p.read("scenarios/s4/scenario.toml")
            .replace("\"bad\"", "\"ok\""),
    );
    assert_eq!(p.run(&["run", "--failed"]).code, 0);
    let r = p.run(&["run", "--failed"]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(r.stdout.contains("nothing to re-run"), "{}", r.stdout);
}

#[test]
fn review_accepts_one_snapshot_and_rejects_another() {
    let p = five_scenarios();
    for s in ["s1", "s3", "s5"] {
        p.file(
            &format!("scenarios/{s}/golden/root.snap"),
            "# harness snapshot v1\n# sink: root\n# source: hdfs path /\nfiles: 7\n",
        );
    }
    assert_eq!(p.run(&["run", "s1", "s3", "s5"]).code, 1);
    assert!(
        p.exists("scenarios/s1/golden/root.snap.new")
            && p.exists("scenarios/s3/golden/root.snap.new")
    );
    let before = p.read("scenarios/s3/golden/root.snap");

    let mut child = p
        .command(&["review", "s1", "s3"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    {
        use std::io::Write;
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(b"a\nr\n")
            .expect("answers");
    }
    let out = child.wait_with_output().expect("review");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("-files: 7") && stdout.contains("+files: 0"),
        "the diff is shown: {stdout}"
    );
    assert!(
        stdout.contains("1 accepted, 1 rejected, 0 skipped"),
        "{stdout}"
    );
    assert!(
        p.read("scenarios/s1/golden/root.snap")
            .ends_with("files: 0\n"),
        "accepted golden changed"
    );
    assert_eq!(
        p.read("scenarios/s3/golden/root.snap"),
        before,
        "rejected golden unchanged"
    );
    assert!(
        !p.exists("scenarios/s1/golden/root.snap.new")
            && !p.exists("scenarios/s3/golden/root.snap.new")
    );

    // Scripts: accept everything left.
    assert!(p.exists("scenarios/s5/golden/root.snap.new"));
    let r = p.run(&["review", "--accept-all"]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(r.stdout.contains("accepted s5/root"), "{}", r.stdout);
    assert!(
        p.read("scenarios/s5/golden/root.snap")
            .ends_with("files: 0\n")
    );
    assert!(p.run(&["review"]).stdout.contains("no pending snapshots"));
}

#[test]
fn on_github_actions_failures_are_annotations_and_a_step_summary() {
    let p = five_scenarios();
    p.file(
        "scenarios/s1/golden/root.snap",
        "# harness snapshot v1\n# sink: root\n# source: hdfs path /\nfiles: 7\n",
    );
    let summary = p.path().join("step-summary.md");
    let r = p.run_env(
        &["run", "s1", "s2", "s3"],
        &[
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_STEP_SUMMARY", summary.to_str().expect("utf-8")),
            ("CI", "true"),
        ],
    );
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(
        r.stdout.contains(
            "::error file=scenarios/s1/golden/root.snap,title=harness: s1 sink root::sink `root` (hdfs path /) differs from its golden"
        ),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("%0A--- root.snap (golden)%0A"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("::error title=harness: s2::task `bad` failed: exit code 1"),
        "{}",
        r.stdout
    );
    let md = std::fs::read_to_string(&summary).expect("summary");
    assert!(
        md.contains("| s1 | ❌ failed |") && md.contains("| s3 | ✅ passed |"),
        "{md}"
    );
}

#[test]
fn check_finds_golden_files_no_sink_refers_to() {
    let p = five_scenarios();
    p.file("scenarios/s1/golden/old_sink.snap", "left over\n")
        .file("scenarios/s2/golden/renamed.snap.new", "left over\n");
    let r = p.run(&["check", "--unreferenced", "warn"]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(
        r.stderr.contains(
            "warning: scenarios/s1/golden/old_sink.snap: no sink refers to this golden file"
        ),
        "{}",
        r.stderr
    );
    let r = p.run(&["check", "--unreferenced", "reject"]);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(
        r.stderr.contains("2 golden files unreferenced"),
        "{}",
        r.stderr
    );
    let r = p.run(&["check", "--unreferenced", "delete"]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(
        !p.exists("scenarios/s1/golden/old_sink.snap")
            && !p.exists("scenarios/s2/golden/renamed.snap.new")
    );
    assert!(
        p.exists("scenarios/s1/golden/root.snap"),
        "referenced goldens stay"
    );
    assert_eq!(p.run(&["check", "--unreferenced", "reject"]).code, 0);
}

/// A scenario whose only task fails on its first `fails` runs (counted in a file), then writes a
/// Redis key.
fn flaky_project(fails: usize) -> (Project, std::path::PathBuf) {
    require_servers();
    let p = Project::new();
    let counter = p.path().join("count");
    p.file(
        "pipelines/p/pipeline.toml",
        &format!(
            "[tasks.wobbly]\nkind = \"command\"\nargv = [\"sh\", \"-c\", \"echo x >> {0}; n=$(wc -l < {0}); echo run $n; test $n -gt {fails} && redis-cli -u \\\"$HARNESS_REDIS_URL\\\" SET done yes\"]\n",
            counter.display()
        ),
    )
    .file(
        "scenarios/s/scenario.toml",
        "pipeline = \"p\"\nservices = [\"redis\"]\n[[sink]]\nname = \"k\"\nservice = \"redis\"\nkeys = \"*\"\n",
    )
    .file(
        "scenarios/s/golden/k.snap",
        "# harness snapshot v1\n# sink: k\n# source: redis keys *\nkeys: 1\n\n\"done\" string\n  \"yes\"\n",
    );
    (p, counter)
}

#[test]
fn a_scenario_passing_after_a_retry_is_reported_as_flaky() {
    let (p, counter) = flaky_project(1);
    let junit = p.path().join("junit.xml");
    let r = p.run(&[
        "run",
        "--retries",
        "2",
        "--junit",
        junit.to_str().expect("utf-8"),
    ]);
    assert_eq!(r.code, 0, "a flaky pass still passes: {}", r.all());
    assert_eq!(
        std::fs::read_to_string(&counter)
            .expect("count")
            .lines()
            .count(),
        2,
        "one retry was enough"
    );
    assert!(r.stderr.contains("RETRY s (attempt 1/3)"), "{}", r.stderr);
    assert!(r.stderr.contains("FLAKY s"), "{}", r.stderr);
    assert!(
        r.stdout.contains("1 passed (1 flaky), 0 failed"),
        "{}",
        r.stdout
    );
    let page = p.path().join(".harness/report/report.html");
    assert!(
        r.stdout.contains(&format!("report: {}", page.display())),
        "the run points to its HTML report: {}",
        r.stdout
    );
    let results: serde_json::Value =
        serde_json::from_str(&p.read(".harness/report/results.json")).expect("results.json");
    let s = &results["scenarios"][0];
    assert_eq!(s["flaky"], true, "{s}");
    assert_eq!(s["attempts"], 2, "{s}");
    assert!(
        s["failed_attempts"][0]
            .as_str()
            .unwrap_or("")
            .starts_with("attempt 1: task `wobbly` failed"),
        "{s}"
    );
    // The failed attempt's logs are kept beside the last one.
    assert!(
        p.read(".harness/report/s.attempt-1/tasks/wobbly.log")
            .contains("run 1"),
        "first attempt's log kept"
    );
    assert!(
        p.read(".harness/report/s/tasks/wobbly.log")
            .contains("run 2")
    );
    let junit = std::fs::read_to_string(&junit).expect("junit");
    assert!(
        junit.contains("FLAKY: flaky: passed on attempt 2"),
        "{junit}"
    );
    assert!(!junit.contains("<failure"), "{junit}");
}

#[test]
fn retries_run_out_and_without_them_a_failure_stays_a_failure() {
    let (p, counter) = flaky_project(5);
    let r = p.run(&["run", "--retries", "2"]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert_eq!(
        std::fs::read_to_string(&counter)
            .expect("count")
            .lines()
            .count(),
        3,
        "1 attempt + 2 retries"
    );
    assert!(r.stdout.contains("0 passed, 1 failed"), "{}", r.stdout);
    let r = p.run(&["run"]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(!r.stderr.contains("RETRY"), "{}", r.stderr);
}

#[test]
fn format_json_prints_one_event_per_line() {
    let (p, _) = flaky_project(1);
    let r = p.run(&["run", "--format", "json", "--retries", "1"]);
    assert_eq!(r.code, 0, "{}", r.all());
    let events: Vec<serde_json::Value> = r
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l:?}: {e}")))
        .collect();
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().expect("event kind"))
        .collect();
    assert_eq!(kinds.first(), Some(&"run_started"), "{kinds:?}");
    assert_eq!(kinds.last(), Some(&"run_finished"), "{kinds:?}");
    for k in [
        "service_ready",
        "scenario_started",
        "task_started",
        "task_output",
        "task_finished",
        "scenario_retrying",
        "scenario_finished",
    ] {
        assert!(kinds.contains(&k), "no {k} in {kinds:?}");
    }
    let output = events
        .iter()
        .find(|e| e["event"] == "task_output")
        .expect("task output");
    assert_eq!(output["task"], "wobbly");
    assert_eq!(output["line"], "run 1");
    let last = events.last().expect("events");
    assert_eq!(last["exit_code"], 0);
    assert_eq!(last["flaky"], 1);
    assert!(last["t_ms"].is_u64(), "{last}");
    assert!(
        !r.stderr.contains("▶"),
        "no human display alongside: {}",
        r.stderr
    );
}

#[test]
fn jobs_run_scenarios_at_once_on_separate_environments() {
    require_servers();
    let p = Project::new();
    let meet = p.path().join("meet");
    std::fs::create_dir_all(&meet).expect("meeting folder");
    // Each scenario's task announces itself, then waits for the other one: they can only both
    // succeed when they run at the same time. Each writes a key to its own Redis.
    p.file(
        "pipelines/p/pipeline.toml",
        &format!(
            "[tasks.meet]\nkind = \"command\"\ntimeout = \"60s\"\nargv = [\"sh\", \"-c\", \"touch {0}/$ME; i=0; while [ ! -e {0}/$OTHER ]; do i=$((i+1)); [ $i -gt 400 ] && exit 1; sleep 0.1; done; echo redis $HARNESS_REDIS_URL; redis-cli -u \\\"$HARNESS_REDIS_URL\\\" SET $ME here >/dev/null\"]\n",
            meet.display()
        ),
    );
    for (me, other) in [("a", "b"), ("b", "a")] {
        p.file(
            &format!("scenarios/{me}/scenario.toml"),
            &format!("pipeline = \"p\"\nservices = [\"redis\"]\nenv = {{ ME = \"{me}\", OTHER = \"{other}\" }}\n[[sink]]\nname = \"k\"\nservice = \"redis\"\nkeys = \"*\"\n"),
        )
        .file(
            &format!("scenarios/{me}/golden/k.snap"),
            &format!("# harness snapshot v1\n# sink: k\n# source: redis keys *\nkeys: 1\n\n\"{me}\" string\n  \"here\"\n"),
        );
    }
    let r = p.run(&["run", "-j", "2"]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(r.stderr.contains("2 environments at once"), "{}", r.stderr);
    // `-j auto`: no Spark, so no core bound; as many environments as scenarios (the two can
    // only pass together).
    for f in ["a", "b"] {
        let _ = std::fs::remove_file(meet.join(f));
    }
    let auto = p.run(&["run", "-j", "auto"]);
    assert_eq!(auto.code, 0, "{}", auto.all());
    assert!(
        auto.stderr
            .contains("2 environments at once (-j auto; each needs about"),
        "{}",
        auto.stderr
    );
    assert!(auto.stderr.contains("0 of"), "{}", auto.stderr);
    // Each saw only its own key, on its own server.
    let url = |s: &str| {
        p.read(&format!(".harness/report/{s}/tasks/meet.log"))
            .lines()
            .find_map(|l| l.split("redis ").nth(1).map(str::to_string))
            .expect("url in log")
    };
    assert_ne!(url("a"), url("b"));
    // Outcomes are reported in the scenarios' order.
    let results: serde_json::Value =
        serde_json::from_str(&p.read(".harness/report/results.json")).expect("results.json");
    let names: Vec<&str> = results["scenarios"]
        .as_array()
        .expect("scenarios")
        .iter()
        .map(|s| s["name"].as_str().expect("name"))
        .collect();
    assert_eq!(names, ["a", "b"]);
    assert!(
        p.leftover_processes().is_empty(),
        "{:?}",
        p.leftover_processes()
    );
}

#[test]
fn a_reused_environment_is_reset_completely_between_scenarios() {
    require_servers();
    let p = Project::new();
    p.file(
        "pipelines/p/pipeline.toml",
        r#"
services = ["postgres", "redis"]

[tasks.dirty]
kind = "command"
argv = ["sh", "-c", """
psql -qAt -v ON_ERROR_STOP=1 "$HARNESS_POSTGRES_URL" -c 'CREATE TABLE t (x int)' -c 'CREATE DATABASE extra_db' -c 'CREATE ROLE extra_role' -c 'CREATE SCHEMA s' -c 'CREATE TABLE s.u (y int)'
redis-cli -u "$HARNESS_REDIS_URL" SET leftover 1 >/dev/null
redis-cli -u "${HARNESS_REDIS_URL%/0}/5" SET leftover5 1 >/dev/null
"""]

[tasks.look]
kind = "command"
argv = ["sh", "-c", """
psql -qAt -v ON_ERROR_STOP=1 "$HARNESS_POSTGRES_URL" -c "CREATE TABLE seen AS SELECT
  (SELECT count(*) FROM pg_database WHERE datname = 'extra_db')::int AS databases,
  (SELECT count(*) FROM pg_roles WHERE rolname = 'extra_role')::int AS roles,
  (SELECT count(*) FROM information_schema.tables WHERE table_schema NOT IN ('pg_catalog', 'information_schema') AND table_name <> 'seen')::int AS tables,
  (SELECT count(*) FROM information_schema.schemata WHERE schema_name = 's')::int AS schemas"
redis-cli -u "$HARNESS_REDIS_URL" SET db5_keys "$(redis-cli -u "${HARNESS_REDIS_URL%/0}/5" DBSIZE)" >/dev/null
"""]
"#,
    )
    .file(
        "scenarios/a_dirty/scenario.toml",
        "pipeline = \"p\"\ntasks = [\"dirty\"]\n[[sink]]\nname = \"t\"\nservice = \"postgres\"\ntable = \"t\"\n",
    )
    .file(
        "scenarios/a_dirty/golden/t.snap",
        "# harness snapshot v1\n# sink: t\n# source: postgres table t\n# order: whole row\ncolumns: x int4\nrows: 0\n\n",
    )
    .file(
        "scenarios/b_check/scenario.toml",
        "pipeline = \"p\"\ntasks = [\"look\"]\n[[sink]]\nname = \"seen\"\nservice = \"postgres\"\ntable = \"seen\"\n[[sink]]\nname = \"keys\"\nservice = \"redis\"\nkeys = \"*\"\n",
    )
    .file(
        "scenarios/b_check/golden/seen.snap",
        "# harness snapshot v1\n# sink: seen\n# source: postgres table seen\n# order: whole row\ncolumns: databases int4 | roles int4 | tables int4 | schemas int4\nrows: 1\n\ndatabases=0 | roles=0 | tables=0 | schemas=0\n",
    )
    .file(
        "scenarios/b_check/golden/keys.snap",
        "# harness snapshot v1\n# sink: keys\n# source: redis keys *\nkeys: 1\n\n\"db5_keys\" string\n  \"0\"\n",
    );
    // One environment: the second scenario runs where the first one left its mess.
    let r = p.run(&["run"]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(
        r.stderr.matches("service postgres ready").count(),
        1,
        "one environment serves both: {}",
        r.stderr
    );
}

#[test]
fn diff_shows_pending_differences_unified_side_by_side_and_as_json() {
    let p = five_scenarios();
    let r = p.run(&["diff"]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(r.stdout.contains("no pending snapshots"), "{}", r.stdout);
    p.file(
        "scenarios/s1/golden/root.snap.new",
        "# harness snapshot v1\n# sink: root\n# source: hdfs path /\nfiles: 7\n",
    );
    p.file(
        "scenarios/s3/golden/root.snap.new",
        "# harness snapshot v1\n# sink: root\n# source: hdfs path /\nfiles: 0\nextra: 1\n",
    );

    let r = p.run(&["diff", "s1"]);
    assert_eq!(r.code, 1, "a pending difference is exit 1: {}", r.all());
    assert!(r.stdout.contains("── s1/root"), "{}", r.stdout);
    assert!(
        r.stdout.contains("-files: 0") && r.stdout.contains("+files: 7"),
        "{}",
        r.stdout
    );
    assert!(!r.stdout.contains("s3/root"), "{}", r.stdout);

    let r = p.run(&["diff", "--side-by-side", "--width", "60", "s1"]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(
        r.stdout
            .lines()
            .any(|l| l.starts_with("files: 0") && l.contains(" | files: 7")),
        "{}",
        r.stdout
    );

    let r = p.run(&["diff", "--format", "json", "--sink", "root"]);
    assert_eq!(r.code, 1, "{}", r.all());
    let json: serde_json::Value = serde_json::from_str(&r.stdout).expect("JSON");
    let pending = json["pending"].as_array().expect("pending");
    assert_eq!(pending.len(), 2, "{json}");
    assert_eq!(pending[0]["scenario"], "s1");
    assert_eq!(pending[0]["sink"], "root");
    assert_eq!(pending[0]["golden_exists"], true);
    assert_eq!(
        (pending[0]["removed"].as_u64(), pending[0]["added"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(pending[0]["changes"][0]["tag"], "delete");
    assert_eq!(pending[0]["changes"][0]["golden_line"], 4);
    assert_eq!(pending[0]["changes"][1]["text"], "files: 7");
    assert_eq!(pending[1]["scenario"], "s3");
    assert_eq!(
        (pending[1]["removed"].as_u64(), pending[1]["added"].as_u64()),
        (Some(0), Some(1))
    );
    assert_eq!(pending[1]["changes"][0]["pending_line"], 5);

    let r = p.run(&["diff", "--sink", "nope"]);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(r.stderr.contains("--sink nope"), "{}", r.stderr);
    // Reading never changes anything.
    assert!(p.exists("scenarios/s1/golden/root.snap.new"));
    assert!(
        p.read("scenarios/s1/golden/root.snap")
            .ends_with("files: 0\n")
    );
}
