//! Errors that are reported, never dropped: a broken harness.toml stops every command that reads
//! it, a pending snapshot that cannot be written fails its sink naming the file, and a report
//! folder that cannot be kept is said.

use crate::support::{Project, require_servers};

const PIPELINE: &str = "[tasks.write]\nkind = \"command\"\nargv = [\"true\"]\n";

const SCENARIO: &str = "pipeline = \"p\"\n\n[[sink]]\nname = \"out\"\nservice = \"redis\"\nkeys = \"out:*\"\nwritten_by = \"write\"\n";

/// A project whose one scenario reads Redis keys the task does not write.
fn project() -> Project {
    let p = Project::new();
    p.file("pipelines/p/pipeline.toml", PIPELINE)
        .file("scenarios/s/scenario.toml", SCENARIO);
    p
}

#[test]
fn bench_doctor_and_images_build_refuse_a_broken_harness_toml_as_run_does() {
    let p = project();
    p.file(
        "harness.toml",
        "backend = \"local\"\ntask_jobs = 0\n[services.redis]\nstart_timeout = \"9days\"\n",
    );
    let run = p.run(&["run"]);
    assert_eq!(run.code, 2, "{}", run.all());
    for needle in [
        "harness.toml:2:13",
        "`task_jobs` must be a positive number",
        "harness.toml:4:17",
        "`start_timeout`: duration `9days` is longer than the limit of 7 days",
        "2 problems found",
    ] {
        assert!(
            run.stderr.contains(needle),
            "run: {needle:?}\n{}",
            run.stderr
        );
    }
    for args in [
        &["bench", "--only", "4"][..],
        &["doctor"][..],
        &["images", "build"][..],
    ] {
        let r = p.run(args);
        assert_eq!(r.code, 2, "{args:?}\n{}", r.all());
        assert_eq!(
            r.stderr, run.stderr,
            "{args:?} renders the errors as run does"
        );
        assert!(
            r.stdout.is_empty(),
            "{args:?} did nothing else:\n{}",
            r.stdout
        );
    }
}

#[test]
fn a_pending_snapshot_that_cannot_be_written_fails_the_sink_naming_the_file() {
    require_servers();
    let p = project();
    // A folder where the pending file goes: the rename onto it fails, even for root.
    p.file("scenarios/s/golden/out.snap.new/keep", "");
    let r = p.run(&["run"]);
    assert_eq!(r.code, 1, "{}", r.all());
    let pending = p.path().join("scenarios/s/golden/out.snap.new");
    let expected = format!("cannot write the pending snapshot {}", pending.display());
    assert!(
        r.stdout.contains(&expected),
        "the summary says so:\n{}",
        r.all()
    );
    assert!(
        r.all().contains("snapshots that could not be written: out"),
        "{}",
        r.all()
    );
    let results: serde_json::Value =
        serde_json::from_str(&p.read(".harness/report/results.json")).expect("results.json");
    let sink = &results["scenarios"][0]["sinks"][0];
    assert_eq!(sink["result"], "write-failed", "{sink}");
    assert!(
        sink["error"]
            .as_str()
            .is_some_and(|e| e.contains(&expected)),
        "{sink}"
    );
}

#[test]
fn a_failed_attempt_whose_report_cannot_be_kept_is_warned_about() {
    require_servers();
    let p = project();
    p.file(
        "pipelines/p/pipeline.toml",
        &PIPELINE.replace("[\"true\"]", "[\"false\"]"),
    );
    // Where the first attempt's report would be kept, a file that is not a folder.
    p.file(".harness/report/s.attempt-1", "in the way\n");
    let r = p.run(&["run", "--retries", "1"]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(
        r.stderr
            .contains("warning: cannot keep the report of attempt 1 as"),
        "{}",
        r.all()
    );
}
