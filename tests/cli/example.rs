//! The repository's example suite, run on a copy: it passes, is deterministic, and its gate
//! bites when an input changes. The whole suite runs twice, each time another way, so that
//! between them both backends and both Spark modes are covered: here on the local backend
//! through its Airflow DAG, whose Spark jobs Airflow spark-submits; in docker.rs on the docker
//! backend as the tasks of pipeline.toml on Spark Connect. Both runs must give the same
//! committed goldens byte for byte, which is also the determinism check, and proves the DAG and
//! pipeline.toml do the same work.

use crate::support::{Project, require_servers};

#[test]
fn example_suite_passes_through_its_airflow_dag_and_leaves_goldens_untouched() {
    require_servers();
    let p = Project::example();
    let before = p.goldens();
    assert!(!before.is_empty(), "the example suite has goldens");
    let r = p.run(&["run", "--pipeline", "hydramatrices_airflow"]);
    assert_eq!(r.code, 0, "{}", r.all());
    // Every task ran in Airflow: the sensor was marked successful, the SQL check ran.
    assert!(
        r.stderr.contains("✔ full_pipeline/check_dictionaries"),
        "{}",
        r.stderr
    );
    assert!(
        p.read(".harness/report/full_pipeline/tasks/wait_for_views_ingest.log")
            .contains("marked success"),
        "the sensor is stubbed"
    );
    assert!(
        p.leftover_processes().is_empty(),
        "{:?}",
        p.leftover_processes()
    );
    assert_eq!(
        p.goldens(),
        before,
        "a passing run must not write goldens or pending files"
    );
    partitions_by_duration_are_balanced(&p);
}

/// With the durations of the run that just ended, two partitions split the suite by time: every
/// scenario in exactly one, and the longer one within 1.2× of the mean.
fn partitions_by_duration_are_balanced(p: &Project) {
    let file = ".harness/report/durations.json";
    let durations: std::collections::BTreeMap<String, f64> =
        serde_json::from_str(&p.read(file)).expect("durations.json");
    let mut seen = Vec::new();
    let mut loads = Vec::new();
    for k in 1..=2 {
        let r = p.run(&[
            "list",
            "--partition",
            &format!("{k}/2"),
            "--durations",
            file,
        ]);
        assert_eq!(r.code, 0, "{}", r.all());
        let names: Vec<String> = r
            .stdout
            .lines()
            .filter(|l| !l.starts_with(' ') && !l.starts_with("pipeline "))
            .map(str::to_string)
            .collect();
        loads.push(names.iter().map(|n| durations[n]).sum::<f64>());
        seen.extend(names);
    }
    seen.sort();
    let all: Vec<String> = durations.keys().cloned().collect();
    assert_eq!(seen, all, "every scenario in exactly one partition");
    let mean = loads.iter().sum::<f64>() / 2.0;
    let longest = loads.iter().copied().fold(0.0, f64::max);
    assert!(
        longest <= 1.2 * mean,
        "partitions of {loads:?} s: the longest is {:.2}× the mean",
        longest / mean
    );
}

#[test]
fn changed_dictionary_row_fails_the_example_with_a_diff() {
    require_servers();
    let p = Project::example();
    let csv = p.read("fixtures/hydramatrices/monetization_types.csv");
    let changed = csv.replace("Subscription", "Subscription plus");
    assert_ne!(csv, changed, "fixture has the row this test edits");
    p.file("fixtures/hydramatrices/monetization_types.csv", &changed);
    let r = p.run(&["run", "monetization_to_redis"]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(
        r.stdout.contains("+  \"title\": \"Subscription plus\""),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("+id=2 | code=\"svod\" | title=\"Subscription plus\""),
        "{}",
        r.stdout
    );
    // Through the DAG the same diff names the same task, from the DAG pipeline's `outputs`.
    let r = p.run(&[
        "run",
        "monetization_to_redis",
        "--pipeline",
        "hydramatrices_airflow",
    ]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(
        r.all()
            .contains("`export_monetization` changed redis keys monetization:*"),
        "{}",
        r.all()
    );
    let r = p.run(&["run", "monetization_to_redis", "--update"]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(
        p.read("scenarios/monetization_to_redis/golden/monetization_keys.snap")
            .contains("Subscription plus")
    );
}

#[test]
fn scenarios_that_must_fail_hold_the_gate_and_their_goldens_survive_update() {
    require_servers();
    let p = Project::example();
    let before = p.goldens();
    let r = p.run(&["run", "monetization_gate_*", "--update"]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(
        r.stderr
            .contains("failed as expected: task `export_monetization` failed"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains(
            "failed as expected: sinks not matching their goldens (1 of 1): monetization_types"
        ),
        "{}",
        r.stderr
    );
    assert_eq!(
        p.goldens(),
        before,
        "--update must not rewrite the golden of a scenario that must fail"
    );

    // Repair the wrong golden: the scenario now passes, which is a failure of the expectation.
    let golden = "scenarios/monetization_gate_wrong_golden/golden/monetization_types.snap";
    p.file(golden, &p.read(golden).replace("\"8.99\"", "\"9.99\""));
    let r = p.run(&["run", "monetization_gate_wrong_golden"]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(
        r.stdout
            .contains("expected sinks monetization_types to differ, but the scenario passed"),
        "{}",
        r.stdout
    );
}
