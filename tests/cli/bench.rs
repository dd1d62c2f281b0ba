//! `harness bench` on small data: every requested figure is measured against a baseline and
//! written to the JSON file. Speed itself is never asserted.

use crate::support::{Project, require_servers};

/// The JSON `--json out.json` wrote, and the ids of its figures in order.
fn written_figures(p: &Project) -> (serde_json::Value, Vec<String>) {
    let json: serde_json::Value =
        serde_json::from_str(&p.read("out.json")).expect("out.json is JSON");
    let ids = json["figures"]
        .as_array()
        .expect("figures")
        .iter()
        .filter_map(|f| f["id"].as_str().map(String::from))
        .collect();
    (json, ids)
}

#[test]
fn bench_writes_every_requested_figure_with_its_baseline_and_ratio() {
    require_servers();
    let p = Project::new();
    let r = p.run(&[
        "bench", "--rows", "2000", "--only", "1,4,5,6", "--json", "out.json",
    ]);
    assert_eq!(r.code, 0, "{}", r.all());
    let (json, ids) = written_figures(&p);
    let figures = json["figures"].as_array().expect("figures");
    assert_eq!(
        ids,
        ["1", "4.time", "4.memory", "5.postgres", "5.redis", "6"],
        "{}",
        r.all()
    );
    for f in figures {
        for field in ["value", "baseline", "ratio"] {
            let v = f[field].as_f64().unwrap_or(-1.0);
            assert!(v > 0.0 && v.is_finite(), "{field} of {f}");
        }
        assert!(!f["baseline_what"].as_str().unwrap_or("").is_empty(), "{f}");
        assert!(f["pass"].is_boolean(), "{f}");
    }
    assert!(
        json["not_measured"]
            .as_array()
            .is_some_and(|a| a.is_empty())
    );
    assert!(json["machine"]["nproc"].as_u64().is_some_and(|n| n > 0));
    // The final table lists every figure with its mark.
    for id in ["4.memory", "5.redis"] {
        assert!(
            r.stdout
                .lines()
                .any(|l| l.starts_with(id) && (l.ends_with("PASS") || l.ends_with("MISS"))),
            "{}",
            r.stdout
        );
    }
    assert!(
        p.leftover_processes().is_empty(),
        "{:?}",
        p.leftover_processes()
    );
}

#[test]
fn bench_4_with_scale_and_trials_gives_the_larger_size_against_the_smaller_times_the_factor() {
    let p = Project::new();
    let r = p.run(&[
        "bench", "--only", "4", "--rows", "2000", "--scale", "3", "--trials", "2", "--json",
        "out.json",
    ]);
    assert_eq!(r.code, 0, "{}", r.all());
    // The sizes are taken in turn, each trial printing its stages.
    let trials: Vec<&str> = r
        .stdout
        .lines()
        .filter(|l| l.contains(" rows, trial "))
        .map(str::trim)
        .collect();
    let starts: Vec<String> = trials
        .iter()
        .map(|l| l.split(':').next().unwrap_or("").to_string())
        .collect();
    assert_eq!(
        starts,
        [
            "2000 rows, trial 1 of 2",
            "6000 rows, trial 1 of 2",
            "2000 rows, trial 2 of 2",
            "6000 rows, trial 2 of 2"
        ],
        "{}",
        r.stdout
    );
    let (json, ids) = written_figures(&p);
    let figures = json["figures"].as_array().expect("figures");
    assert_eq!(
        ids,
        [
            "4.time",
            "4.memory",
            "4.time.x3",
            "4.memory.x3",
            "4.scale.time",
            "4.scale.memory"
        ]
    );
    let value = |id: &str, field: &str| {
        figures
            .iter()
            .find(|f| f["id"] == id)
            .and_then(|f| f[field].as_f64())
            .unwrap_or(f64::NAN)
    };
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * b.abs().max(1.0);
    for (scaled, small, large) in [
        ("4.scale.time", "4.time", "4.time.x3"),
        ("4.scale.memory", "4.memory", "4.memory.x3"),
    ] {
        assert!(
            close(value(scaled, "baseline"), 3.0 * value(small, "value")),
            "{scaled}'s baseline is 3x {small}: {}",
            r.stdout
        );
        assert!(
            close(value(scaled, "value"), value(large, "value")),
            "{scaled} is {large}: {}",
            r.stdout
        );
    }
    let r = p.run(&["bench", "--only", "4", "--scale", "1"]);
    assert_eq!(r.code, 2, "a factor below 2 is refused: {}", r.all());
}

#[test]
fn bench_check_exits_1_naming_a_bench_that_could_not_be_measured() {
    // No managed Python in this project: bench 2 cannot find Spark.
    let p = Project::new();
    let r = p.run(&["bench", "--only", "2", "--check"]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(
        r.stderr
            .contains("bench --check: 2 not measured: Spark is not installed here"),
        "{}",
        r.stderr
    );
    let r = p.run(&["bench", "--only", "2"]);
    assert_eq!(
        r.code,
        0,
        "without --check a bench not measured is only reported: {}",
        r.all()
    );
}

#[test]
fn benches_2_and_3_measure_their_figures_against_measured_baselines() {
    require_servers();
    let p = Project::example_venv();
    let r = p.run(&["bench", "--only", "2,3", "--quick", "--json", "out.json"]);
    assert_eq!(r.code, 0, "{}", r.all());
    let (json, ids) = written_figures(&p);
    assert!(
        json["not_measured"]
            .as_array()
            .is_some_and(|a| a.is_empty()),
        "{}",
        r.all()
    );
    let figures = json["figures"].as_array().expect("figures");
    assert_eq!(ids, ["2", "3"], "{}", r.all());
    for f in figures {
        let (value, baseline) = (
            f["value"].as_f64().unwrap_or(-1.0),
            f["baseline"].as_f64().unwrap_or(-1.0),
        );
        // Seconds of a Spark job or of service starts, the baseline's too: more than nothing,
        // less than minutes.
        for v in [value, baseline] {
            assert!(v > 0.01 && v < 300.0, "{f}");
        }
        assert_eq!(f["unit"], "seconds", "{f}");
    }
    assert!(
        p.leftover_processes().is_empty(),
        "{:?}",
        p.leftover_processes()
    );
}

#[test]
fn bench_rejects_an_unknown_number() {
    let p = Project::new();
    let r = p.run(&["bench", "--only", "99"]);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(r.stderr.contains("no bench numbered [99]"), "{}", r.stderr);
}

#[test]
fn an_interrupted_bench_leaves_no_process_and_no_folder() {
    require_servers();
    let p = Project::new();
    let mut child = p
        .command(&["bench", "--rows", "300000", "--only", "5"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    // Interrupted once its servers are up and seeding is under way.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !p.processes().iter().any(|l| l.contains("redis-server"))
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert!(
        std::fs::read_dir(p.tmp()).expect("tmp").next().is_some(),
        "the bench made no folder"
    );
    // SAFETY: kill with a valid pid and signal.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    let status = crate::support::wait_exit(&mut child, 30);
    assert_eq!(status.code(), Some(130));
    let left = p.leftover_processes();
    assert!(left.is_empty(), "processes left behind: {left:?}");
    let folders: Vec<_> = std::fs::read_dir(p.tmp())
        .expect("tmp")
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(folders.is_empty(), "folders left behind: {folders:?}");
}
