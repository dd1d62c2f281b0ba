//! Fault test 4: `harness run --update` killed with SIGKILL at random points of a run. After
//! every kill, each golden is byte-identical to the old file or to the new one (never partial),
//! and a temporary file a killed write left behind is never taken for a golden: `check
//! --unreferenced reject` passes, and the next write to the folder removes it.
//!
//! Trials: 5 by default; `HARNESS_FAULT_TRIALS=N` runs N. Each trial prints its figures to stderr
//! (`cargo test --test cli update_killed -- --nocapture` shows them).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::support::{Project, require_servers, wait_exit};

/// Table sinks of the scenario, each a golden of `ROWS` rows (about 1 MB).
const SINKS: usize = 4;
/// Rows of each table.
const ROWS: usize = 20_000;

/// The pipeline: one SQL task writing every table, its values scaled by `factor` (so that two
/// factors give two different sets of goldens).
fn pipeline(factor: u32) -> String {
    let mut sql = String::new();
    for k in 1..=SINKS {
        sql.push_str(&format!(
            "CREATE TABLE out_{k} AS SELECT g AS id, md5(g::text || '{k}') AS name, g * {factor} AS v, \
             repeat('x', 8) AS pad FROM generate_series(1, {ROWS}) g;\n"
        ));
    }
    format!(
        "services = [\"postgres\"]\n\n[tasks.build]\nkind = \"sql\"\nservice = \"postgres\"\nsql = \"\"\"\n{sql}\"\"\"\n"
    )
}

fn scenario() -> String {
    let mut s = String::from("pipeline = \"big\"\n");
    for k in 1..=SINKS {
        s.push_str(&format!(
            "\n[[sink]]\nname = \"out_{k}\"\nservice = \"postgres\"\ntable = \"out_{k}\"\nkey = [\"id\"]\n"
        ));
    }
    s
}

/// The golden folder of the scenario.
fn golden_dir(p: &Project) -> PathBuf {
    p.path().join("scenarios/big/golden")
}

/// Every file of the golden folder (temporary files included) with its bytes.
fn files(p: &Project) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    if let Ok(entries) = std::fs::read_dir(golden_dir(p)) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            out.insert(name, std::fs::read(e.path()).expect("read golden file"));
        }
    }
    out
}

/// Puts exactly `goldens` back in the golden folder.
fn restore(p: &Project, goldens: &BTreeMap<String, Vec<u8>>) {
    let dir = golden_dir(p);
    for name in files(p).keys() {
        if !goldens.contains_key(name) {
            std::fs::remove_file(dir.join(name)).expect("remove");
        }
    }
    for (name, bytes) in goldens {
        std::fs::write(dir.join(name), bytes).expect("restore golden");
    }
}

/// A small generator for the kill points (xorshift), seeded from the clock and printed, so a
/// failing trial can be told apart.
struct Rng(u64);

impl Rng {
    fn unit(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn trials() -> usize {
    match std::env::var("HARNESS_FAULT_TRIALS") {
        Ok(v) => v
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("HARNESS_FAULT_TRIALS={v:?} is not a number")),
        Err(_) => 5,
    }
}

#[test]
fn update_killed_at_random_points_leaves_every_golden_old_or_new() {
    require_servers();
    let p = Project::new();
    p.file("pipelines/big/pipeline.toml", &pipeline(2))
        .file("scenarios/big/scenario.toml", &scenario());

    let r = p.run(&["run", "--update"]);
    assert_eq!(
        r.code,
        0,
        "the first --update writes the old goldens\n{}",
        r.all()
    );
    let old = files(&p);
    assert_eq!(old.len(), SINKS, "{:?}", old.keys());
    assert!(
        old.values().all(|b| b.len() > 500_000),
        "goldens large enough for the write window to matter"
    );

    // Calibration: a whole --update run writing the new goldens, timed.
    p.file("pipelines/big/pipeline.toml", &pipeline(3));
    let started = Instant::now();
    let r = p.run(&["run", "--update"]);
    let span = started.elapsed();
    assert_eq!(
        r.code,
        0,
        "the calibration run writes the new goldens\n{}",
        r.all()
    );
    let new = files(&p);
    assert_eq!(new.len(), SINKS, "{:?}", new.keys());
    for (name, bytes) in &new {
        assert_ne!(Some(bytes), old.get(name), "{name} changed with the factor");
    }

    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64)
        | 1;
    let mut rng = Rng(seed);
    let n = trials();
    eprintln!(
        "update-kill: {n} trials, calibration run {} ms, {SINKS} goldens of {ROWS} rows ({} bytes each), seed {seed}",
        span.as_millis(),
        new.values().next().map_or(0, Vec::len)
    );
    let (mut all_old, mut all_new, mut mixed, mut partial, mut strays) = (0, 0, 0, 0, 0);
    let mut worst_exit = Duration::ZERO;
    let mut failures = Vec::new();
    for trial in 1..=n {
        restore(&p, &old);
        let at = span.mul_f64(rng.unit());
        let log = p.tmp().join(format!("trial-{trial}.stderr"));
        let mut child = p
            .command(&["run", "--update"])
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("start harness");
        std::thread::sleep(at);
        let killed = Instant::now();
        // SIGKILL: nothing of the harness runs after this, no handler, no cleanup.
        let _ = child.kill();
        wait_exit(&mut child, 30);
        worst_exit = worst_exit.max(killed.elapsed());

        let after = files(&p);
        let (mut o, mut w, mut bad, mut tmp) = (0, 0, Vec::new(), Vec::new());
        for (name, bytes) in &after {
            if name.starts_with(".harness-") && name.ends_with(".tmp") {
                tmp.push(name.clone());
            } else if old.get(name) == Some(bytes) {
                o += 1;
            } else if new.get(name) == Some(bytes) {
                w += 1;
            } else {
                bad.push(format!("{name} ({} bytes)", bytes.len()));
            }
        }
        let written = std::fs::read_to_string(&log)
            .unwrap_or_default()
            .matches("wrote golden")
            .count();
        let phase = if !tmp.is_empty() || (o > 0 && w > 0) || (written > 0 && written < SINKS) {
            "during writing"
        } else if w == SINKS {
            "after writing"
        } else {
            "before writing"
        };
        eprintln!(
            "trial {trial}: killed at {} ms of {} ms ({phase}): old {o}, new {w}, partial {}, stray temp files {}",
            at.as_millis(),
            span.as_millis(),
            bad.len(),
            tmp.len()
        );
        match (o, w) {
            (_, 0) => all_old += 1,
            (0, _) => all_new += 1,
            _ => mixed += 1,
        }
        partial += bad.len();
        strays += tmp.len();
        if !bad.is_empty() || o + w != SINKS {
            failures.push(format!(
                "trial {trial}: goldens neither old nor new: {bad:?}; old {o}, new {w} of {SINKS}"
            ));
        }
        // A stray temporary file is not a golden: nothing calls it an unreferenced one.
        let r = p.run(&["check", "--unreferenced", "reject"]);
        if r.code != 0 {
            failures.push(format!(
                "trial {trial}: check --unreferenced reject after the kill:\n{}",
                r.all()
            ));
        }
    }
    eprintln!(
        "update-kill: {n} trials: all old {all_old}, all new {all_new}, some of each {mixed}, \
         partial goldens {partial}, stray temp files {strays}, slowest exit after SIGKILL {} ms",
        worst_exit.as_millis()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // A run to the end writes the new goldens and sweeps what killed writers left.
    let r = p.run(&["run", "--update"]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(files(&p), new, "only the new goldens remain, no temp file");
    assert!(
        p.leftover_processes().is_empty(),
        "{:?}",
        p.leftover_processes()
    );
}
