//! `harness doctor`: every prerequisite found or missing, with how to get it.

use crate::support::{Project, require_servers};

#[test]
fn doctor_finds_everything_the_setup_installs() {
    require_servers();
    let p = Project::with_airflow();
    let r = p.run(&["doctor"]);
    assert_eq!(r.code, 0, "{}", r.all());
    for name in [
        "python",
        "java",
        "pyspark",
        "spark-connect",
        "postgres",
        "redis-server",
        "clickhouse-server",
        "airflow",
        "docker",
    ] {
        assert!(
            r.stdout
                .lines()
                .any(|l| l.split_whitespace().nth(1) == Some(name)),
            "{name} not listed:\n{}",
            r.stdout
        );
    }
    assert!(
        r.stdout.contains("everything needed is here"),
        "{}",
        r.stdout
    );
}

#[test]
fn doctor_names_what_is_missing_and_how_to_get_it() {
    let p = Project::new();
    let r = p.run_env(
        &["doctor"],
        &[("PATH", "/nonexistent"), ("JAVA_HOME", "/nonexistent")],
    );
    assert_eq!(r.code, 3, "{}", r.all());
    let line = |name: &str| {
        r.stdout
            .lines()
            .find(|l| l.split_whitespace().nth(1) == Some(name))
            .unwrap_or_default()
            .to_string()
    };
    assert!(
        line("java").starts_with("MISSING") && line("java").contains("openjdk-17-jdk-headless"),
        "{}",
        r.stdout
    );
    assert!(
        line("redis-server").starts_with("MISSING")
            && line("redis-server").contains("apt-get install redis-server"),
        "{}",
        r.stdout
    );
    assert!(
        line("python").starts_with("MISSING") && line("python").contains("scripts/setup.sh"),
        "{}",
        r.stdout
    );
    assert!(
        !line("airflow").starts_with("found") && line("airflow").contains("creates .venv-airflow"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("missing; scripts/setup.sh installs them"),
        "{}",
        r.stdout
    );
}
