//! Malformed configurations: each gives exit code 2 and names the file and line.

use crate::support::Project;

const PIPELINE: &str = r#"description = "two steps"

[tasks.extract]
kind = "command"
argv = ["true"]

[tasks.load]
kind = "command"
argv = ["true"]
depends_on = ["extract"]
"#;

const SCENARIO: &str = r#"pipeline = "p"

[[sink]]
name = "out"
service = "redis"
keys = "out:*"
"#;

/// A valid project, then `file` replaced by `content`.
fn project_with(file: &str, content: &str) -> Project {
    let p = Project::new();
    p.file("pipelines/p/pipeline.toml", PIPELINE)
        .file("scenarios/s/scenario.toml", SCENARIO)
        .file("fixtures/rows.csv", "id,name\n1,a\n");
    p.file(file, content);
    p
}

/// Runs `harness check` and expects exit 2 with every `needle` in stderr.
fn expect_error(p: &Project, needles: &[&str]) {
    let r = p.run(&["check"]);
    assert_eq!(r.code, 2, "expected exit 2\n{}", r.all());
    for n in needles {
        assert!(r.stderr.contains(n), "stderr lacks {n:?}:\n{}", r.stderr);
    }
}

#[test]
fn the_valid_base_project_passes_check() {
    let p = project_with("fixtures/other.csv", "x\n1\n");
    let r = p.run(&["check"]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(
        r.stdout
            .contains("1 pipeline, 1 scenario: no problems found"),
        "{}",
        r.stdout
    );
}

#[test]
fn unknown_scenario_key_names_file_line_and_suggests() {
    let p = project_with(
        "scenarios/s/scenario.toml",
        &SCENARIO.replace("keys = ", "kyes = "),
    );
    expect_error(
        &p,
        &[
            "scenarios/s/scenario.toml:6:1",
            "unknown field `kyes`",
            "did you mean `keys`?",
        ],
    );
}

#[test]
fn unknown_task_key_names_file_and_line() {
    let p = project_with(
        "pipelines/p/pipeline.toml",
        &PIPELINE.replace(
            "argv = [\"true\"]\ndepends_on",
            "argv = [\"true\"]\ntimout = \"1s\"\ndepends_on",
        ),
    );
    expect_error(
        &p,
        &[
            "pipelines/p/pipeline.toml:10:1",
            "unknown field `timout`",
            "did you mean `timeout`?",
        ],
    );
}

#[test]
fn dependency_cycle_names_every_task_on_it() {
    let cyclic = PIPELINE.replace(
        "[tasks.extract]\nkind = \"command\"\nargv = [\"true\"]",
        "[tasks.extract]\nkind = \"command\"\nargv = [\"true\"]\ndepends_on = [\"load\"]",
    );
    let p = project_with("pipelines/p/pipeline.toml", &cyclic);
    expect_error(
        &p,
        &[
            "pipelines/p/pipeline.toml:6:",
            "dependency cycle: extract -> load -> extract",
        ],
    );
}

#[test]
fn unknown_dependency_is_reported_with_a_suggestion() {
    let p = project_with(
        "pipelines/p/pipeline.toml",
        &PIPELINE.replace("depends_on = [\"extract\"]", "depends_on = [\"extrct\"]"),
    );
    expect_error(
        &p,
        &[
            "pipelines/p/pipeline.toml:10:15",
            "unknown task `extrct`",
            "did you mean `extract`?",
        ],
    );
}

#[test]
fn missing_fixture_file() {
    let seeded = format!(
        "{SCENARIO}\n[[seed]]\nservice = \"postgres\"\ntable = \"t\"\ncsv = \"nope.csv\"\n"
    );
    let p = project_with("scenarios/s/scenario.toml", &seeded);
    expect_error(
        &p,
        &[
            "scenarios/s/scenario.toml:11:7",
            "fixture `nope.csv` not found",
        ],
    );
}

#[test]
fn fixture_path_escaping_the_project() {
    let seeded = format!(
        "{SCENARIO}\n[[seed]]\nservice = \"postgres\"\nsql = \"../../../../../../etc/hostname\"\n"
    );
    let p = project_with("scenarios/s/scenario.toml", &seeded);
    expect_error(
        &p,
        &[
            "scenarios/s/scenario.toml:10:7",
            "leads outside the project",
        ],
    );
}

#[test]
fn fixture_symlink_escaping_the_project() {
    let p = project_with(
        "scenarios/s/scenario.toml",
        &format!("{SCENARIO}\n[[seed]]\nservice = \"postgres\"\nsql = \"link.sql\"\n"),
    );
    std::os::unix::fs::symlink("/etc/hostname", p.path().join("scenarios/s/link.sql"))
        .expect("symlink");
    expect_error(
        &p,
        &[
            "scenarios/s/scenario.toml:10:7",
            "leads outside the project",
        ],
    );
}

#[test]
fn unknown_pipeline() {
    let p = project_with(
        "scenarios/s/scenario.toml",
        &SCENARIO.replace("pipeline = \"p\"", "pipeline = \"q\""),
    );
    expect_error(
        &p,
        &["scenarios/s/scenario.toml:1:12", "unknown pipeline `q`"],
    );
}

#[test]
fn invalid_duration() {
    let p = project_with(
        "pipelines/p/pipeline.toml",
        &PIPELINE.replace(
            "argv = [\"true\"]\ndepends_on",
            "argv = [\"true\"]\ntimeout = \"soon\"\ndepends_on",
        ),
    );
    expect_error(
        &p,
        &["pipelines/p/pipeline.toml:10:11", "invalid duration `soon`"],
    );
}

#[test]
fn unknown_task_kind() {
    let p = project_with(
        "pipelines/p/pipeline.toml",
        &PIPELINE.replacen("kind = \"command\"", "kind = \"comand\"", 1),
    );
    expect_error(
        &p,
        &[
            "pipelines/p/pipeline.toml:4:8",
            "unknown task kind `comand`",
            "did you mean `command`?",
        ],
    );
}

#[test]
fn toml_syntax_error() {
    let p = project_with(
        "scenarios/s/scenario.toml",
        &SCENARIO.replace("[[sink]]", "[[sink]"),
    );
    expect_error(&p, &["scenarios/s/scenario.toml:3:"]);
}

#[test]
fn wrong_value_type() {
    let p = project_with(
        "pipelines/p/pipeline.toml",
        &PIPELINE.replace(
            "argv = [\"true\"]\ndepends_on",
            "argv = [\"true\"]\nretries = \"two\"\ndepends_on",
        ),
    );
    expect_error(&p, &["pipelines/p/pipeline.toml:10:11", "invalid type"]);
}

#[test]
fn malformed_redis_fixture_names_the_key_and_line() {
    let p = project_with(
        "scenarios/s/scenario.toml",
        &format!("{SCENARIO}\n[[seed]]\nservice = \"redis\"\njson = \"keys.json\"\n"),
    );
    p.file("scenarios/s/keys.json", "{\n  \"a\": \"x\",\n  \"b\": {\"type\": \"hash\", \"value\": [\"not\", \"a\", \"map\"]}\n}\n");
    expect_error(
        &p,
        &[
            "scenarios/s/keys.json:3:3",
            "key \"b\"",
            "a hash is an object of strings",
        ],
    );
}

#[test]
fn unknown_key_in_harness_toml() {
    let p = project_with("harness.toml", "task_jobs = 2\nbacknd = \"local\"\n");
    expect_error(
        &p,
        &[
            "harness.toml:2:1",
            "unknown field `backnd`",
            "did you mean `backend`?",
        ],
    );
}

#[test]
fn unknown_task_in_scenario_subset() {
    let p = project_with(
        "scenarios/s/scenario.toml",
        &SCENARIO.replace("pipeline = \"p\"", "pipeline = \"p\"\ntasks = [\"lod\"]"),
    );
    expect_error(
        &p,
        &[
            "scenarios/s/scenario.toml:2:10",
            "pipeline `p` has no task `lod`",
            "did you mean `load`?",
        ],
    );
}

#[test]
fn option_of_another_task_kind() {
    let p = project_with(
        "pipelines/p/pipeline.toml",
        &PIPELINE.replacen(
            "argv = [\"true\"]",
            "argv = [\"true\"]\nscript = \"x.py\"",
            1,
        ),
    );
    expect_error(
        &p,
        &[
            "pipelines/p/pipeline.toml:6:10",
            "`script` does not apply to a `command` task",
        ],
    );
}

#[test]
fn python_task_without_the_managed_environment() {
    let p = project_with(
        "pipelines/p/pipeline.toml",
        &PIPELINE.replacen(
            "kind = \"command\"\nargv = [\"true\"]",
            "kind = \"python\"\nscript = \"job.py\"",
            1,
        ),
    );
    p.file("pipelines/p/job.py", "print('hi')\n");
    expect_error(
        &p,
        &[
            "pipelines/p/pipeline.toml:4:8",
            "needs the managed Python environment",
            "scripts/setup.sh",
        ],
    );
}

#[test]
fn every_problem_is_reported_at_once() {
    let p = project_with(
        "scenarios/s/scenario.toml",
        &SCENARIO.replace("pipeline = \"p\"", "pipeline = \"q\""),
    );
    p.file(
        "pipelines/p/pipeline.toml",
        &PIPELINE.replace("depends_on = [\"extract\"]", "depends_on = [\"nothing\"]"),
    );
    p.file("scenarios/t/scenario.toml", "pipeline = \"p\"\nbogus = 1\n");
    let r = p.run(&["check"]);
    assert_eq!(r.code, 2, "{}", r.all());
    for n in [
        "pipelines/p/pipeline.toml:10:15",
        "scenarios/t/scenario.toml:2:1",
        "3 problems found",
    ] {
        assert!(r.stderr.contains(n), "stderr lacks {n:?}:\n{}", r.stderr);
    }
}

#[test]
fn run_refuses_a_broken_project_with_exit_2() {
    let p = project_with(
        "scenarios/s/scenario.toml",
        &SCENARIO.replace("keys = ", "keyz = "),
    );
    let r = p.run(&["run"]);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(
        r.stderr.contains("scenarios/s/scenario.toml:6:1"),
        "{}",
        r.stderr
    );
}

#[test]
fn unknown_scenario_on_the_command_line() {
    let p = project_with("fixtures/x.csv", "a\n");
    let r = p.run(&["run", "z"]);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(r.stderr.contains("no scenario matches `z`"), "{}", r.stderr);
    let r = p.run(&["run", "--bogus"]);
    assert_eq!(r.code, 2, "{}", r.all());
}

#[test]
fn expectation_naming_an_unknown_sink() {
    let p = project_with(
        "scenarios/s/scenario.toml",
        &format!("{SCENARIO}\n[expect]\noutcome = \"fail\"\nsinks = [\"nope\"]\n"),
    );
    expect_error(
        &p,
        &[
            "scenarios/s/scenario.toml:10:10",
            "expected differing sink `nope` is not a sink of this scenario",
        ],
    );
}

/// A postgres sink after the base scenario's redis sink, with `extra` lines.
fn with_table_sink(extra: &str) -> Project {
    project_with(
        "scenarios/s/scenario.toml",
        &format!(
            "{SCENARIO}\n[[sink]]\nname = \"rows\"\nservice = \"postgres\"\ntable = \"rows\"\n{extra}\n"
        ),
    )
}

#[test]
fn tolerance_without_a_key_and_bad_bounds_are_refused() {
    let p = with_table_sink("tolerance = { score = { abs = 0.1 } }");
    expect_error(
        &p,
        &["scenarios/s/scenario.toml:12:13", "`tolerance` needs `key`"],
    );
    let p = with_table_sink("key = [\"id\"]\ntolerance = { score = { abs = -1 }, ctr = {} }");
    expect_error(
        &p,
        &[
            "scenarios/s/scenario.toml:13:",
            "tolerance of `score` must be a finite number ≥ 0",
            "tolerance of `ctr` sets neither `abs` nor `rel`",
        ],
    );
    let p = with_table_sink("key = [\"id\"]\ntolerance = { score = { abss = 1 } }");
    expect_error(
        &p,
        &["scenarios/s/scenario.toml:13:", "unknown field `abss`"],
    );
}

#[test]
fn bad_redactions_are_refused_with_their_line() {
    let p = with_table_sink("redact = [{ regex = \"([0-9]+\" }]");
    expect_error(&p, &["scenarios/s/scenario.toml:12:21", "invalid regex"]);
    let p = with_table_sink("redact = [{ with = \"x\" }]");
    expect_error(
        &p,
        &[
            "scenarios/s/scenario.toml:12:",
            "needs `column`, `regex` or both",
        ],
    );
    let p = with_table_sink("redact = [{ column = \"at\", with = \"a|b\" }]");
    expect_error(&p, &["unusable placeholder `a|b`"]);
    // A column redaction on Redis keys, which have no columns.
    let p = project_with(
        "scenarios/s/scenario.toml",
        &format!("{SCENARIO}redact = [{{ column = \"at\" }}]\n"),
    );
    expect_error(
        &p,
        &[
            "scenarios/s/scenario.toml:7:",
            "`column` redactions apply to table sinks",
        ],
    );
}

#[test]
fn written_by_and_outputs_must_name_real_things() {
    let p = project_with(
        "scenarios/s/scenario.toml",
        &format!("{SCENARIO}written_by = \"lod\"\n"),
    );
    expect_error(
        &p,
        &[
            "scenarios/s/scenario.toml:7:",
            "pipeline `p` has no task `lod`",
            "did you mean `load`?",
        ],
    );
    let p = project_with(
        "pipelines/p/pipeline.toml",
        &PIPELINE.replace(
            "depends_on = [\"extract\"]",
            "depends_on = [\"extract\"]\noutputs = [\"redis\", \"spark:x\"]",
        ),
    );
    expect_error(
        &p,
        &[
            "pipelines/p/pipeline.toml:11:12",
            "output `redis` is not `service:target`",
            "spark holds no data",
        ],
    );
}

#[test]
fn spark_mode_values_and_where_they_apply() {
    let pipeline = format!(
        "{PIPELINE}\n[tasks.train]\nkind = \"spark\"\nscript = \"train.py\"\nspark_mode = \"warm\"\n\n\
         [tasks.legacy]\nkind = \"spark\"\njar = \"legacy.jar\"\nmain_class = \"Legacy\"\nspark_mode = \"connect\"\n"
    );
    let p = project_with("pipelines/p/pipeline.toml", &pipeline);
    p.file("pipelines/p/train.py", "")
        .file("pipelines/p/legacy.jar", "")
        .file(
            "harness.toml",
            "[services.spark]\nmode = \"remote\"\nconnect_memory = \"lots\"\n",
        );
    expect_error(
        &p,
        &[
            "pipelines/p/pipeline.toml:15:14",
            "unknown spark mode `warm`; write \"submit\" or \"connect\"",
            "pipelines/p/pipeline.toml:21:14",
            "task `legacy` runs a jar, which Spark Connect cannot run",
            "harness.toml:2:8",
            "unknown spark mode `remote`",
            "harness.toml:3:18",
            "invalid memory size `lots`",
        ],
    );

    let p = project_with(
        "pipelines/p/pipeline.toml",
        &PIPELINE.replacen(
            "argv = [\"true\"]",
            "argv = [\"true\"]\nspark_mode = \"connect\"",
            1,
        ),
    );
    expect_error(
        &p,
        &[
            "pipelines/p/pipeline.toml:6:14",
            "`spark_mode` does not apply to a `command` task",
        ],
    );
}
