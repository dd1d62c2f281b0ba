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
        &[
            "pipelines/p/pipeline.toml:10:11",
            "`timeout`: invalid duration `soon`",
        ],
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
fn unordered_applies_to_the_rows_of_table_sinks_only() {
    let p = with_table_sink("unordered = [\"tags\"]");
    let r = p.run(&["check"]);
    assert_eq!(r.code, 0, "{}", r.all());
    let p = project_with(
        "scenarios/s/scenario.toml",
        &format!("{SCENARIO}unordered = [\"tags\"]\n"),
    );
    expect_error(&p, &["scenarios/s/scenario.toml:7:", "`unordered`"]);
    let p = project_with(
        "scenarios/s/scenario.toml",
        &format!(
            "{SCENARIO}\n[[sink]]\nname = \"files\"\nservice = \"hdfs\"\npath = \"/out\"\nunordered = [\"tags\"]\n"
        ),
    );
    expect_error(
        &p,
        &[
            "scenarios/s/scenario.toml:12:14",
            "`unordered` applies to the rows of a tabular hdfs sink",
        ],
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

/// What a file of a malformed case holds.
enum Content {
    /// Text.
    Text(String),
    /// Bytes that need not be UTF-8.
    Bytes(Vec<u8>),
    /// A symbolic link to this target.
    Link(&'static str),
}

/// One malformed case: files over the valid base project, and what stderr must say.
struct Case {
    /// What is wrong, for the failure message.
    what: &'static str,
    files: Vec<(&'static str, Content)>,
    needles: Vec<&'static str>,
}

fn text(s: impl Into<String>) -> Content {
    Content::Text(s.into())
}

/// The base scenario with `seed` appended.
fn seeded(seed: &str) -> Content {
    text(format!("{SCENARIO}\n[[seed]]\n{seed}"))
}

/// The base pipeline with `extra` lines in the `load` task.
fn load_task_with(extra: &str) -> Content {
    text(PIPELINE.replace(
        "depends_on = [\"extract\"]",
        &format!("depends_on = [\"extract\"]\n{extra}"),
    ))
}

/// A Parquet file's frame: magic, a body, a footer of `footer` bytes, its length and the magic.
fn parquet(footer: usize) -> Vec<u8> {
    let mut b = b"PAR1".to_vec();
    b.extend(std::iter::repeat_n(7u8, 64));
    b.extend(std::iter::repeat_n(9u8, footer));
    b.extend((footer as u32).to_le_bytes());
    b.extend(b"PAR1");
    b
}

const HIVE_PARQUET: &str =
    "service = \"hive\"\ntable = \"raw.views\"\nparquet = \"views.parquet\"\n";
const CLICKHOUSE_JSONL: &str = "service = \"clickhouse\"\ntable = \"events.views\"\njsonl = \"views.jsonl\"\nschema = \"id UInt64, name String\"\n";
const POSTGRES_CSV: &str = "service = \"postgres\"\ntable = \"t\"\ncsv = \"rows.csv\"\n";

fn malformed_cases() -> Vec<Case> {
    use Content::{Bytes, Link};
    vec![
        Case {
            what: "harness.toml that is not UTF-8",
            files: vec![(
                "harness.toml",
                Bytes(b"backend = \"local\"\ntask_jobs = \"\xff\"\n".to_vec()),
            )],
            needles: vec!["harness.toml:2:14", "invalid UTF-8 (byte 0xff)"],
        },
        Case {
            what: "pipeline.toml that is not UTF-8",
            files: vec![(
                "pipelines/p/pipeline.toml",
                Bytes([PIPELINE.as_bytes(), b"# caf\xe9\n"].concat()),
            )],
            needles: vec!["pipelines/p/pipeline.toml:11:6", "invalid UTF-8"],
        },
        Case {
            what: "scenario.toml that is not UTF-8",
            files: vec![(
                "scenarios/s/scenario.toml",
                Bytes(b"pipeline = \"p\xc3\"\n".to_vec()),
            )],
            needles: vec!["scenarios/s/scenario.toml:1:14", "invalid UTF-8"],
        },
        Case {
            what: "absurd start timeout in harness.toml",
            files: vec![(
                "harness.toml",
                text(
                    "backend = \"local\"\n[services.postgres]\nstart_timeout = \"500000000 years\"\n",
                ),
            )],
            needles: vec![
                "harness.toml:3:17",
                "`start_timeout`: duration `500000000 years` is longer than the limit of 7 days",
            ],
        },
        Case {
            what: "absurd task timeout in pipeline.toml",
            files: vec![(
                "pipelines/p/pipeline.toml",
                load_task_with("timeout = \"8days\""),
            )],
            needles: vec![
                "pipelines/p/pipeline.toml:11:11",
                "`timeout`: duration `8days` is longer than the limit of 7 days",
            ],
        },
        Case {
            what: "absurd default timeout in pipeline.toml",
            files: vec![(
                "pipelines/p/pipeline.toml",
                text(PIPELINE.replacen(
                    "\n[tasks.extract]",
                    "\n[defaults]\ntimeout = \"1000000h\"\n\n[tasks.extract]",
                    1,
                )),
            )],
            needles: vec![
                "pipelines/p/pipeline.toml:4:11",
                "`timeout`: duration `1000000h` is longer than the limit of 7 days",
            ],
        },
        Case {
            what: "a duration past what humantime counts",
            files: vec![(
                "harness.toml",
                text("[services.spark]\nstart_timeout = \"99999999999999999999999s\"\n"),
            )],
            needles: vec!["harness.toml:2:17", "`start_timeout`: invalid duration"],
        },
        Case {
            what: "an integer past 64 bits",
            files: vec![("harness.toml", text("task_jobs = 99999999999999999999\n"))],
            needles: vec!["harness.toml:1:13"],
        },
        Case {
            what: "zero task_jobs",
            files: vec![("harness.toml", text("task_jobs = 0\n"))],
            needles: vec!["harness.toml:1:13", "`task_jobs` must be a positive number"],
        },
        Case {
            what: "a million retries",
            files: vec![(
                "pipelines/p/pipeline.toml",
                load_task_with("retries = 1000000"),
            )],
            needles: vec![
                "pipelines/p/pipeline.toml:11:11",
                "`retries` must be a number from 0 to 100",
            ],
        },
        Case {
            what: "float_digits far past what a float holds",
            files: vec![(
                "scenarios/s/scenario.toml",
                text(format!(
                    "{SCENARIO}\n[[sink]]\nname = \"rows\"\nservice = \"postgres\"\ntable = \"rows\"\nfloat_digits = 99999\n"
                )),
            )],
            needles: vec![
                "scenarios/s/scenario.toml:12:16",
                "`float_digits` must be a number from 0 to 15",
            ],
        },
        Case {
            what: "a task depending on itself",
            files: vec![(
                "pipelines/p/pipeline.toml",
                text(PIPELINE.replace("depends_on = [\"extract\"]", "depends_on = [\"load\"]")),
            )],
            needles: vec![
                "pipelines/p/pipeline.toml:",
                "dependency cycle: load -> load",
            ],
        },
        Case {
            what: "a key written twice",
            files: vec![(
                "scenarios/s/scenario.toml",
                text(SCENARIO.replace("pipeline = \"p\"", "pipeline = \"p\"\npipeline = \"p\"")),
            )],
            needles: vec!["scenarios/s/scenario.toml:2:1", "duplicate key"],
        },
        Case {
            what: "an empty scenario.toml",
            files: vec![("scenarios/s/scenario.toml", text(""))],
            needles: vec!["scenarios/s/scenario.toml", "missing field `pipeline`"],
        },
        Case {
            what: "a sink name leading out of the golden folder",
            files: vec![(
                "scenarios/s/scenario.toml",
                text(SCENARIO.replace("name = \"out\"", "name = \"../../evil\"")),
            )],
            needles: vec![
                "scenarios/s/scenario.toml:4:8",
                "invalid sink name `../../evil`",
            ],
        },
        Case {
            what: "a golden folder linked out of the project",
            files: vec![("scenarios/s/golden", Link("/tmp"))],
            needles: vec![
                "scenarios/s/golden",
                "the golden folder leads outside the project",
            ],
        },
        Case {
            what: "an SQL task file reached through `..`",
            files: vec![(
                "pipelines/p/pipeline.toml",
                text(format!(
                    "{PIPELINE}\n[tasks.ddl]\nkind = \"sql\"\nservice = \"postgres\"\nfile = \"../../../../etc/hostname\"\n"
                )),
            )],
            needles: vec!["pipelines/p/pipeline.toml:15:8", "is outside the project"],
        },
        Case {
            what: "an SQL task file linked out of the project",
            files: vec![
                (
                    "pipelines/p/pipeline.toml",
                    text(format!(
                        "{PIPELINE}\n[tasks.ddl]\nkind = \"sql\"\nservice = \"postgres\"\nfile = \"ddl.sql\"\n"
                    )),
                ),
                ("pipelines/p/ddl.sql", Link("/etc/hostname")),
            ],
            needles: vec!["pipelines/p/pipeline.toml:15:8", "is outside the project"],
        },
        Case {
            what: "an SQL task file that is not UTF-8",
            files: vec![
                (
                    "pipelines/p/pipeline.toml",
                    text(format!(
                        "{PIPELINE}\n[tasks.ddl]\nkind = \"sql\"\nservice = \"postgres\"\nfile = \"ddl.sql\"\n"
                    )),
                ),
                (
                    "pipelines/p/ddl.sql",
                    Bytes(b"CREATE TABLE t (x int);\nINSERT INTO t VALUES ('\xff');\n".to_vec()),
                ),
            ],
            needles: vec!["pipelines/p/ddl.sql:2:24", "invalid UTF-8"],
        },
        Case {
            what: "an SQL seed that is not UTF-8",
            files: vec![
                (
                    "scenarios/s/scenario.toml",
                    seeded("service = \"postgres\"\nsql = \"schema.sql\"\n"),
                ),
                (
                    "scenarios/s/schema.sql",
                    Bytes(b"-- schema\nCREATE TABLE \x80t (x int);\n".to_vec()),
                ),
            ],
            needles: vec!["scenarios/s/schema.sql:2:14", "invalid UTF-8 (byte 0x80)"],
        },
        Case {
            what: "a CSV record that is not UTF-8",
            files: vec![
                ("scenarios/s/scenario.toml", seeded(POSTGRES_CSV)),
                (
                    "scenarios/s/rows.csv",
                    Bytes(b"id,name\n1,a\n2,\xfe\xff\n".to_vec()),
                ),
            ],
            needles: vec![
                "scenarios/s/rows.csv:3:1",
                "invalid UTF-8 in field 2 (column `name`)",
            ],
        },
        Case {
            what: "a CSV header that is not UTF-8",
            files: vec![
                ("scenarios/s/scenario.toml", seeded(POSTGRES_CSV)),
                ("scenarios/s/rows.csv", Bytes(b"id,n\xe4me\n1,a\n".to_vec())),
            ],
            needles: vec!["scenarios/s/rows.csv:1:1", "invalid UTF-8 in the header"],
        },
        Case {
            what: "a CSV record with a field too many",
            files: vec![
                ("scenarios/s/scenario.toml", seeded(POSTGRES_CSV)),
                (
                    "scenarios/s/rows.csv",
                    text("id,name\n1,a\n2,b,extra\n3,c\n"),
                ),
            ],
            needles: vec![
                "scenarios/s/rows.csv:3:1",
                "this record has 3 fields where the header has 2",
            ],
        },
        Case {
            what: "a CSV record with a field missing",
            files: vec![
                ("scenarios/s/scenario.toml", seeded(POSTGRES_CSV)),
                (
                    "scenarios/s/rows.csv",
                    text("id,name,score\n1,a,2\n2,b,3\n3,c\n"),
                ),
            ],
            needles: vec![
                "scenarios/s/rows.csv:4:1",
                "this record has 2 fields where the header has 3",
            ],
        },
        Case {
            what: "a CSV header with a nameless column",
            files: vec![
                ("scenarios/s/scenario.toml", seeded(POSTGRES_CSV)),
                ("scenarios/s/rows.csv", text("id,,name\n1,2,3\n")),
            ],
            needles: vec![
                "scenarios/s/rows.csv:1:1",
                "column 2 of the header has no name",
            ],
        },
        Case {
            what: "an empty CSV file",
            files: vec![
                ("scenarios/s/scenario.toml", seeded(POSTGRES_CSV)),
                ("scenarios/s/rows.csv", text("")),
            ],
            needles: vec![
                "scenarios/s/rows.csv:1:1",
                "the first line must name the columns",
            ],
        },
        Case {
            what: "a CSV column the declared schema lacks",
            files: vec![
                (
                    "scenarios/s/scenario.toml",
                    seeded(
                        "service = \"clickhouse\"\ntable = \"events.views\"\ncsv = \"rows.csv\"\nschema = \"id UInt64, name String\"\n",
                    ),
                ),
                ("scenarios/s/rows.csv", text("id,nmae\n1,a\n")),
            ],
            needles: vec![
                "scenarios/s/rows.csv:1:1",
                "column `nmae` is not in the table's schema",
                "did you mean `name`?",
            ],
        },
        Case {
            what: "a CSV fixture reached through `..`",
            files: vec![(
                "scenarios/s/scenario.toml",
                seeded("service = \"postgres\"\ntable = \"t\"\ncsv = \"../../../../etc/passwd\"\n"),
            )],
            needles: vec![
                "scenarios/s/scenario.toml:11:7",
                "leads outside the project",
            ],
        },
        Case {
            what: "a CSV fixture linked out of the project",
            files: vec![
                ("scenarios/s/scenario.toml", seeded(POSTGRES_CSV)),
                ("scenarios/s/rows.csv", Link("/etc/passwd")),
            ],
            needles: vec![
                "scenarios/s/scenario.toml:11:7",
                "leads outside the project",
            ],
        },
        Case {
            what: "a JSON Lines line that is not JSON",
            files: vec![
                ("scenarios/s/scenario.toml", seeded(CLICKHOUSE_JSONL)),
                (
                    "scenarios/s/views.jsonl",
                    text("{\"id\": 1, \"name\": \"a\"}\n{\"id\": 2, \"name\": \n"),
                ),
            ],
            needles: vec!["scenarios/s/views.jsonl:2:1", "not a JSON object"],
        },
        Case {
            what: "a JSON Lines line that is an array",
            files: vec![
                ("scenarios/s/scenario.toml", seeded(CLICKHOUSE_JSONL)),
                ("scenarios/s/views.jsonl", text("{\"id\": 1}\n[1, 2]\n")),
            ],
            needles: vec![
                "scenarios/s/views.jsonl:2:1",
                "each line must be one JSON object",
            ],
        },
        Case {
            what: "a JSON Lines file that is not UTF-8",
            files: vec![
                ("scenarios/s/scenario.toml", seeded(CLICKHOUSE_JSONL)),
                (
                    "scenarios/s/views.jsonl",
                    Bytes(b"{\"id\": 1}\n{\"id\": 2}\n{\"name\": \"\xc0\"}\n".to_vec()),
                ),
            ],
            needles: vec!["scenarios/s/views.jsonl:3:", "invalid UTF-8"],
        },
        Case {
            what: "a JSON Lines key the declared schema lacks",
            files: vec![
                ("scenarios/s/scenario.toml", seeded(CLICKHOUSE_JSONL)),
                (
                    "scenarios/s/views.jsonl",
                    text("{\"id\": 1}\n{\"id\": 2, \"nme\": \"x\"}\n"),
                ),
            ],
            needles: vec![
                "scenarios/s/views.jsonl:2:1",
                "column `nme` is not in the table's schema",
            ],
        },
        Case {
            what: "a truncated Parquet file",
            files: vec![
                ("scenarios/s/scenario.toml", seeded(HIVE_PARQUET)),
                (
                    "scenarios/s/views.parquet",
                    Bytes(parquet(300)[..200].to_vec()),
                ),
            ],
            needles: vec![
                "scenarios/s/views.parquet",
                "not a complete Parquet file (200 bytes)",
            ],
        },
        Case {
            what: "a Parquet file whose footer is longer than the file",
            files: vec![
                ("scenarios/s/scenario.toml", seeded(HIVE_PARQUET)),
                (
                    "scenarios/s/views.parquet",
                    Bytes({
                        let mut b = parquet(16);
                        let n = b.len();
                        b[n - 8..n - 4].copy_from_slice(&100_000u32.to_le_bytes());
                        b
                    }),
                ),
            ],
            needles: vec![
                "scenarios/s/views.parquet",
                "its footer claims 100000 bytes, more than the file holds",
            ],
        },
        Case {
            what: "a CSV file given as Parquet",
            files: vec![
                ("scenarios/s/scenario.toml", seeded(HIVE_PARQUET)),
                (
                    "scenarios/s/views.parquet",
                    text("id,name\n1,a\n2,b\n3,c\n"),
                ),
            ],
            needles: vec![
                "scenarios/s/views.parquet",
                "not a Parquet file: it does not start with the magic bytes `PAR1`",
            ],
        },
        Case {
            what: "a truncated Parquet part in a dataset folder",
            files: vec![
                (
                    "scenarios/s/scenario.toml",
                    seeded("service = \"hive\"\ntable = \"raw.views\"\nparquet = \"views\"\n"),
                ),
                ("scenarios/s/views/part-0.parquet", Bytes(parquet(40))),
                (
                    "scenarios/s/views/part-1.parquet",
                    Bytes(parquet(40)[..30].to_vec()),
                ),
                ("scenarios/s/views/_SUCCESS", text("")),
            ],
            needles: vec![
                "scenarios/s/views/part-1.parquet",
                "not a complete Parquet file",
            ],
        },
        Case {
            what: "a Redis fixture that is not UTF-8",
            files: vec![
                (
                    "scenarios/s/scenario.toml",
                    seeded("service = \"redis\"\njson = \"keys.json\"\n"),
                ),
                (
                    "scenarios/s/keys.json",
                    Bytes(b"{\n  \"a\": \"x\",\n  \"b\": \"\xff\"\n}\n".to_vec()),
                ),
            ],
            needles: vec!["scenarios/s/keys.json:3:9", "invalid UTF-8"],
        },
        Case {
            what: "a truncated Redis fixture",
            files: vec![
                (
                    "scenarios/s/scenario.toml",
                    seeded("service = \"redis\"\njson = \"keys.json\"\n"),
                ),
                (
                    "scenarios/s/keys.json",
                    text("{\n  \"a\": \"x\",\n  \"b\": {\"type\": \"li"),
                ),
            ],
            needles: vec!["scenarios/s/keys.json:3:", "EOF while parsing"],
        },
        Case {
            what: "a Redis fixture that is an array",
            files: vec![
                (
                    "scenarios/s/scenario.toml",
                    seeded("service = \"redis\"\njson = \"keys.json\"\n"),
                ),
                ("scenarios/s/keys.json", text("[\"a\", \"b\"]\n")),
            ],
            needles: vec![
                "scenarios/s/keys.json:1:",
                "expected a JSON object from Redis key to value",
            ],
        },
        Case {
            what: "a Redis time to live of centuries",
            files: vec![
                (
                    "scenarios/s/scenario.toml",
                    seeded("service = \"redis\"\njson = \"keys.json\"\n"),
                ),
                (
                    "scenarios/s/keys.json",
                    text(
                        "{\n  \"a\": \"x\",\n  \"b\": {\"type\": \"string\", \"value\": \"y\", \"ttl\": 9223372036854775807}\n}\n",
                    ),
                ),
            ],
            needles: vec![
                "scenarios/s/keys.json:3:3",
                "key \"b\"",
                "more than the limit of 2147483647",
            ],
        },
        Case {
            what: "an HDFS seed path leading up",
            files: vec![
                (
                    "scenarios/s/scenario.toml",
                    seeded("service = \"hdfs\"\npath = \"/data/../../etc\"\nfiles = \"in\"\n"),
                ),
                ("scenarios/s/in/a.txt", text("a\n")),
            ],
            needles: vec![
                "scenarios/s/scenario.toml:10:8",
                "invalid HDFS path `/data/../../etc`",
            ],
        },
        Case {
            what: "a two-character CSV delimiter",
            files: vec![
                (
                    "scenarios/s/scenario.toml",
                    seeded(&format!("{POSTGRES_CSV}delimiter = \";;\"\n")),
                ),
                ("scenarios/s/rows.csv", text("id;name\n1;a\n")),
            ],
            needles: vec![
                "scenarios/s/scenario.toml:12:13",
                "`delimiter` must be a single character",
            ],
        },
    ]
}

#[test]
fn every_malformed_input_exits_2_naming_file_and_line_without_panicking() {
    let cases = malformed_cases();
    assert!(cases.len() >= 30, "{} cases", cases.len());
    let mut failures = Vec::new();
    for case in &cases {
        let p = project_with("fixtures/other.csv", "x\n1\n");
        for (rel, content) in &case.files {
            let path = p.path().join(rel);
            std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            match content {
                Content::Text(t) => std::fs::write(&path, t).expect("write"),
                Content::Bytes(b) => std::fs::write(&path, b).expect("write"),
                Content::Link(target) => {
                    std::os::unix::fs::symlink(target, &path).expect("symlink")
                }
            }
        }
        let r = p.run(&["check"]);
        let missing: Vec<&&str> = case
            .needles
            .iter()
            .filter(|n| !r.stderr.contains(**n))
            .collect();
        if r.code != 2 || !missing.is_empty() || r.all().contains("panicked") {
            failures.push(format!(
                "{}: exit {} (expected 2), missing {missing:?}:\n{}",
                case.what,
                r.code,
                r.all()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n\n")
    );
}

#[test]
fn bad_ranking_rules_are_refused_with_their_line_and_key() {
    let redis = |rule: &str| {
        project_with(
            "scenarios/s/scenario.toml",
            &format!("{SCENARIO}compare = {rule}\n"),
        )
    };
    let table = |rule: &str| with_table_sink(&format!("compare = {rule}"));
    let hdfs = |rule: &str| {
        project_with(
            "scenarios/s/scenario.toml",
            &format!(
                "{SCENARIO}\n[[sink]]\nname = \"files\"\nservice = \"hdfs\"\npath = \"/out\"\ncompare = {rule}\n"
            ),
        )
    };
    // (project, where, what stderr says)
    let cases: Vec<(Project, &str, &[&str])> = vec![
        (
            redis("{ top_k = 0, min_overlap = 0.8 }"),
            "scenarios/s/scenario.toml:7:21",
            &["`top_k` must be a whole number from 1 to 10000"],
        ),
        (
            redis("{ top_k = 5, min_overlap = 1.5 }"),
            "scenarios/s/scenario.toml:7:38",
            &["`min_overlap` must be from 0 to 1"],
        ),
        (
            redis("{ top_k = 5, min_overlap = 0.8, min_rank_correlation = -2 }"),
            "scenarios/s/scenario.toml:7:",
            &["`min_rank_correlation` must be from -1 to 1"],
        ),
        (
            redis("{ top_k = 5 }"),
            "scenarios/s/scenario.toml:7:11",
            &["`compare` needs `min_overlap`"],
        ),
        (
            redis("{ top_k = 5, min_overap = 0.8 }"),
            "scenarios/s/scenario.toml:7:",
            &["unknown field `min_overap`"],
        ),
        (
            redis("{ top_k = 5, min_overlap = 0.8, order = \"up\" }"),
            "scenarios/s/scenario.toml:7:",
            &["unknown order `up`; expected `desc` or `asc`"],
        ),
        (
            redis("{ top_k = 5, min_overlap = 0.8, tolerance = { abs = -1 } }"),
            "scenarios/s/scenario.toml:7:",
            &["tolerance of the scores must be a finite number ≥ 0"],
        ),
        (
            redis("{ top_k = 5, min_overlap = 0.8, group = [\"u\"] }"),
            "scenarios/s/scenario.toml:7:",
            &["`compare.group` applies to table sinks"],
        ),
        (
            table("{ top_k = 5, min_overlap = 0.8 }"),
            "scenarios/s/scenario.toml:12:11",
            &[
                "`compare` on a table needs `item`",
                "`compare` on a table needs `rank` or `score`",
            ],
        ),
        (
            hdfs("{ top_k = 5, min_overlap = 0.8 }"),
            "scenarios/s/scenario.toml:12:11",
            &["`compare` applies to sinks holding lists"],
        ),
    ];
    for (p, at, needles) in &cases {
        let mut all = vec![*at];
        all.extend(needles.iter());
        expect_error(p, &all);
    }
}
