//! Several runs in one scenario: `[[step]]` blocks run in order on one environment (no reset
//! between them), each with its own seeds, environment, tasks and goldens under
//! `golden/<step>/`, against a real Redis.

use crate::support::{Project, require_servers};

/// `record` appends `<step>:<RUN_DATE>` to the list `days`; `count` stores its length; `fail`
/// fails when FAIL_ON names the step.
const PIPELINE: &str = r#"
services = ["redis"]

[tasks.record]
kind = "command"
outputs = ["redis:days"]
argv = ["sh", "-c", "redis-cli --no-auth-warning -u \"$HARNESS_REDIS_URL\" RPUSH days \"$HARNESS_STEP:$RUN_DATE\" >/dev/null && echo recorded $RUN_DATE"]

[tasks.count]
kind = "command"
outputs = ["redis:count"]
depends_on = ["record"]
argv = ["sh", "-c", "redis-cli --no-auth-warning -u \"$HARNESS_REDIS_URL\" SET count $(redis-cli --no-auth-warning -u \"$HARNESS_REDIS_URL\" LLEN days) >/dev/null"]

[tasks.fail]
kind = "command"
argv = ["sh", "-c", "test \"$HARNESS_STEP\" != \"$FAIL_ON\""]
"#;

/// Two days; the second seeds a key of its own and also runs `count`; `all` is read after the
/// last step. `fail_on` names the step whose `fail` task fails (none when empty).
fn scenario(fail_on: &str) -> String {
    format!(
        r#"
pipeline = "days"
tasks = ["record", "fail"]
env = {{ FAIL_ON = "{fail_on}" }}

[[seed]]
service = "redis"
json = "before.json"

[[step]]
name = "day1"
env = {{ RUN_DATE = "2024-05-01" }}

[[step.sink]]
name = "days"
service = "redis"
keys = "days"

[[step]]
name = "day2"
env = {{ RUN_DATE = "2024-05-02" }}
tasks = ["record", "count", "fail"]

[[step.seed]]
service = "redis"
json = "late.json"

[[step.sink]]
name = "days"
service = "redis"
keys = "days"

[[step.sink]]
name = "count"
service = "redis"
keys = "count"

[[step]]
name = "day3"
env = {{ RUN_DATE = "2024-05-03" }}

[[sink]]
name = "all"
service = "redis"
keys = "*"
"#
    )
}

fn project(fail_on: &str) -> Project {
    require_servers();
    let p = Project::new();
    p.file("pipelines/days/pipeline.toml", PIPELINE)
        .file("scenarios/days/scenario.toml", &scenario(fail_on))
        .file(
            "scenarios/days/before.json",
            r#"{"seeded": "before the first step"}"#,
        )
        .file(
            "scenarios/days/late.json",
            r#"{"late": "seeded before day2"}"#,
        );
    p
}

#[test]
fn steps_run_in_order_on_one_environment_with_their_own_seeds_env_tasks_and_goldens() {
    let p = project("");
    let run = p.run(&["run", "--update"]);
    assert_eq!(run.code, 0, "{}", run.all());

    // After day1: only its own day.
    let day1 = p.read("scenarios/days/golden/day1/days.snap");
    assert!(day1.contains("# sink: day1/days"), "{day1}");
    assert!(day1.contains("\"day1:2024-05-01\""), "{day1}");
    assert!(!day1.contains("2024-05-02"), "{day1}");
    // After day2: day1's entry is still there (no reset), day2's env reached its task, and
    // `count`, run only in day2, saw both.
    let day2 = p.read("scenarios/days/golden/day2/days.snap");
    assert!(
        day2.contains("\"day1:2024-05-01\"") && day2.contains("\"day2:2024-05-02\""),
        "{day2}"
    );
    let count = p.read("scenarios/days/golden/day2/count.snap");
    assert!(count.contains("\"2\""), "{count}");
    // Read after the last step: the scenario's seed, day2's seed, three days, and a count that
    // day3 (which does not run `count`) left alone.
    let all = p.read("scenarios/days/golden/all.snap");
    for expected in [
        "before the first step",
        "seeded before day2",
        "day3:2024-05-03",
    ] {
        assert!(all.contains(expected), "{expected} missing from:\n{all}");
    }
    assert!(all.contains("count") && all.contains("\"2\""), "{all}");
    // Each step's task logs, in the step's folder of the report.
    for log in ["day1/record.log", "day2/count.log", "day3/record.log"] {
        assert!(
            p.exists(&format!(".harness/report/days/tasks/{log}")),
            "no task log {log}"
        );
    }

    // The same run again matches every golden of every step.
    let again = p.run(&["run"]);
    assert_eq!(again.code, 0, "{}", again.all());
    let listed = p.run(&["list"]);
    assert!(
        listed
            .stdout
            .contains("step day2: tasks: record, count, fail"),
        "{}",
        listed.stdout
    );
    assert!(
        listed
            .stdout
            .contains("sinks: day1/days, day2/days, day2/count, all"),
        "{}",
        listed.stdout
    );
}

#[test]
fn a_task_failing_in_a_step_stops_the_scenario_there_and_names_the_step() {
    let p = project("day2");
    let run = p.run(&["run", "--update"]);
    assert_eq!(run.code, 1, "{}", run.all());
    let all = run.all();
    assert!(all.contains("days/day2/fail"), "{all}");
    // day1 ran and was read; day2's sinks and the later steps never were.
    assert!(p.exists("scenarios/days/golden/day1/days.snap"));
    assert!(!p.exists("scenarios/days/golden/day2/days.snap"));
    assert!(!p.exists("scenarios/days/golden/all.snap"));
    assert!(!p.exists(".harness/report/days/tasks/day3/record.log"));
}

#[test]
fn a_step_golden_that_differs_is_pending_under_its_step_for_review_and_diff() {
    let p = project("");
    assert_eq!(p.run(&["run", "--update"]).code, 0);
    // day2 now records another date: only day2's and the final goldens differ.
    let changed = scenario("").replace("RUN_DATE = \"2024-05-02\"", "RUN_DATE = \"2024-06-02\"");
    p.file("scenarios/days/scenario.toml", &changed);
    let run = p.run(&["run"]);
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(p.exists("scenarios/days/golden/day2/days.snap.new"));
    assert!(!p.exists("scenarios/days/golden/day1/days.snap.new"));
    let diff = p.run(&["diff", "--format", "json"]);
    assert_eq!(diff.code, 1, "{}", diff.all());
    let parsed: serde_json::Value = serde_json::from_str(&diff.stdout).expect("json");
    let text = parsed.to_string();
    assert!(text.contains("day2/days"), "{text}");
    assert!(!text.contains("day1/days"), "{text}");
    // Goldens and pending files in step folders are referenced; a removed step's are not.
    p.file("scenarios/days/golden/day0/days.snap", "old\n");
    let checked = p.run(&["check", "--unreferenced", "warn"]);
    assert_eq!(checked.code, 0, "{}", checked.all());
    let printed = checked.all();
    let orphans: Vec<&str> = printed.lines().filter(|l| l.contains(".snap")).collect();
    assert_eq!(orphans.len(), 1, "{printed}");
    assert!(orphans[0].contains("golden/day0/days.snap"), "{printed}");
}

#[test]
fn malformed_steps_exit_2_naming_file_line_and_what_is_wrong() {
    let cases: [(&str, &[&str]); 6] = [
        (
            "[[step]]\nname = \"d 1\"\n",
            &[
                "scenarios/days/scenario.toml:4:8",
                "invalid step name `d 1`",
            ],
        ),
        (
            "[[step]]\nname = \"d\"\n[[step]]\nname = \"d\"\n",
            &[
                "scenarios/days/scenario.toml:6:8",
                "step `d` is declared twice",
            ],
        ),
        (
            "[[step]]\nname = \"d\"\ntasks = [\"recrod\"]\n",
            &[
                "scenarios/days/scenario.toml:5:10",
                "pipeline `days` has no task `recrod`",
                "did you mean `record`?",
            ],
        ),
        (
            "[[step]]\nname = \"d\"\ntasks = []\n",
            &[
                "scenarios/days/scenario.toml:5:9",
                "`tasks` of step `d` is empty",
            ],
        ),
        (
            "[[step]]\nname = \"d\"\n[[step.sink]]\nname = \"x\"\nservice = \"redis\"\nkeys = \"a\"\n[[step.sink]]\nname = \"x\"\nservice = \"redis\"\nkeys = \"b\"\n",
            &[
                "scenarios/days/scenario.toml:10:8",
                "sink `x` is declared twice in step `d`",
            ],
        ),
        (
            "[[step]]\nname = \"e\"\nrun_date = \"2024-05-01\"\n",
            &[
                "scenarios/days/scenario.toml:5:1",
                "unknown field `run_date`",
            ],
        ),
    ];
    let p = Project::new();
    p.file("pipelines/days/pipeline.toml", PIPELINE);
    for (steps, needles) in cases {
        p.file(
            "scenarios/days/scenario.toml",
            &format!("pipeline = \"days\"\n\n{steps}"),
        );
        let r = p.run(&["check"]);
        assert_eq!(r.code, 2, "{steps}\n{}", r.all());
        for n in needles {
            assert!(
                r.stderr.contains(n),
                "{steps}\nstderr lacks {n:?}:\n{}",
                r.stderr
            );
        }
    }
}

#[test]
fn running_on_another_pipeline_needs_every_task_a_step_selects() {
    let p = Project::new();
    p.file("pipelines/days/pipeline.toml", PIPELINE)
        .file("scenarios/days/scenario.toml", &scenario(""))
        .file("scenarios/days/before.json", "{}")
        .file("scenarios/days/late.json", "{}");
    // `count` is selected by day2 only, not by the scenario's `tasks`.
    let without_count = PIPELINE.replace("[tasks.count]", "[tasks.tally]");
    p.file("pipelines/other/pipeline.toml", &without_count);
    let r = p.run(&["run", "--pipeline", "other"]);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(
        r.stderr
            .contains("scenario `days` needs task `count`, which `other` has not"),
        "{}",
        r.stderr
    );
}
