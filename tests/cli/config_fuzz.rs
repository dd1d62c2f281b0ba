//! Configuration fuzzing: the example project's real harness.toml, pipeline.toml, scenario.toml
//! and two of its fixtures, mutated (bytes flipped, cut short, lines deleted or repeated, values
//! replaced by random TOML values, bytes inserted) and handed to the library's loader, which
//! must return (a project or errors) and never panic.
//!
//! 256 cases by default; `PROPTEST_CASES=100000 cargo test --test cli config_fuzz` runs more
//! (see docs/reliability.md).

use std::path::PathBuf;
use std::sync::OnceLock;

use proptest::prelude::*;
use proptest::test_runner::Config;

use crate::support::{copy_dir, repo};

/// The files mutated, relative to the project root.
const TARGETS: &[&str] = &[
    "harness.toml",
    "pipelines/hydramatrices/pipeline.toml",
    "scenarios/monetization_to_redis/scenario.toml",
    "scenarios/monetization_to_redis/stale_keys.json",
    "fixtures/hydramatrices/monetization_types.csv",
];

/// A copy of the example project with one pipeline (not the Airflow one, whose loading runs
/// Python) and one scenario, made once for every case.
struct Base {
    _dir: tempfile::TempDir,
    root: PathBuf,
    originals: Vec<Vec<u8>>,
}

static BASE: OnceLock<Base> = OnceLock::new();

/// Removes the copy when the test process exits: a static is never dropped, so its `TempDir`
/// alone would leave the folder behind.
extern "C" fn remove_base() {
    if let Some(b) = BASE.get() {
        let _ = std::fs::remove_dir_all(&b.root);
    }
}

fn base() -> &'static Base {
    BASE.get_or_init(|| {
        // SAFETY: atexit only records the function, which runs once at the process's exit.
        unsafe {
            libc::atexit(remove_base);
        }
        let dir = tempfile::Builder::new()
            .prefix("harness-fuzz-")
            .tempdir()
            .expect("tempdir");
        let root = dir.path().to_path_buf();
        let from = repo();
        copy_dir(
            &from.join("pipelines/hydramatrices"),
            &root.join("pipelines/hydramatrices"),
        );
        copy_dir(
            &from.join("scenarios/monetization_to_redis"),
            &root.join("scenarios/monetization_to_redis"),
        );
        copy_dir(&from.join("fixtures"), &root.join("fixtures"));
        std::fs::copy(from.join("harness.toml"), root.join("harness.toml")).expect("copy");
        if from.join(".venv/bin/python").exists() {
            std::os::unix::fs::symlink(from.join(".venv"), root.join(".venv")).expect("link");
        }
        let originals = TARGETS
            .iter()
            .map(|t| std::fs::read(root.join(t)).expect("read target"))
            .collect();
        Base {
            _dir: dir,
            root,
            originals,
        }
    })
}

/// One change to a file.
#[derive(Debug, Clone)]
enum Mutation {
    /// XOR the byte at (position modulo length) with a mask.
    Flip(usize, u8),
    /// Keep only the first (position modulo length) bytes.
    Truncate(usize),
    /// Remove a line (a key, a table header, a row).
    DeleteLine(usize),
    /// Repeat a line (a duplicated key or table).
    DuplicateLine(usize),
    /// Replace the value of a `key = value` line.
    Value(usize, String),
    /// Insert bytes at a position.
    Insert(usize, Vec<u8>),
}

/// Random TOML values, with the ones most likely to find a gap: extreme numbers, absurd
/// durations, paths leading out, odd strings.
fn toml_value() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        Just("99999999999999999999999".to_string()),
        Just("-1".to_string()),
        Just("0".to_string()),
        any::<f64>().prop_map(|f| format!("{f:?}")),
        Just("inf".to_string()),
        Just("nan".to_string()),
        Just("1e308".to_string()),
        any::<bool>().prop_map(|b| b.to_string()),
        ".{0,40}".prop_map(|s| format!("{s:?}")),
        prop_oneof![
            Just("500000000 years"),
            Just("0s"),
            Just("18446744073709551615s"),
            Just("../../../../etc/passwd"),
            Just("/etc/passwd"),
            Just(""),
            Just("*"),
            Just("a.b.c"),
            Just("postgres:"),
            Just("9999999999999m"),
        ]
        .prop_map(|s| format!("{s:?}")),
        prop::collection::vec(".{0,8}", 0..4).prop_map(|v| format!("{v:?}")),
        Just("[]".to_string()),
        Just("{}".to_string()),
        Just("{ a = 1 }".to_string()),
        Just("[[1], [\"x\"]]".to_string()),
        Just("1979-05-27T07:32:00Z".to_string()),
    ]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 1..=255u8).prop_map(|(i, m)| Mutation::Flip(i, m)),
        any::<usize>().prop_map(Mutation::Truncate),
        any::<usize>().prop_map(Mutation::DeleteLine),
        any::<usize>().prop_map(Mutation::DuplicateLine),
        (any::<usize>(), toml_value()).prop_map(|(i, v)| Mutation::Value(i, v)),
        (any::<usize>(), prop::collection::vec(any::<u8>(), 1..8))
            .prop_map(|(i, b)| Mutation::Insert(i, b)),
    ]
}

fn apply(text: &[u8], m: &Mutation) -> Vec<u8> {
    let mut out = text.to_vec();
    let at = |i: usize, len: usize| if len == 0 { 0 } else { i % len };
    let lines =
        |t: &[u8]| -> Vec<Vec<u8>> { t.split(|b| *b == b'\n').map(<[u8]>::to_vec).collect() };
    match m {
        Mutation::Flip(i, mask) => {
            if !out.is_empty() {
                let i = at(*i, out.len());
                out[i] ^= mask;
            }
        }
        Mutation::Truncate(i) => out.truncate(at(*i, out.len())),
        Mutation::DeleteLine(i) => {
            let mut l = lines(&out);
            let i = at(*i, l.len());
            l.remove(i);
            out = l.join(&b'\n');
        }
        Mutation::DuplicateLine(i) => {
            let mut l = lines(&out);
            let i = at(*i, l.len());
            let copy = l[i].clone();
            l.insert(i, copy);
            out = l.join(&b'\n');
        }
        Mutation::Value(i, value) => {
            let mut l = lines(&out);
            let assignments: Vec<usize> = (0..l.len())
                .filter(|&k| l[k].contains(&b'=') && !l[k].starts_with(b"#"))
                .collect();
            if !assignments.is_empty() {
                let k = assignments[at(*i, assignments.len())];
                let eq = l[k].iter().position(|b| *b == b'=').unwrap_or(0);
                let mut line = l[k][..=eq].to_vec();
                line.push(b' ');
                line.extend_from_slice(value.as_bytes());
                l[k] = line;
                out = l.join(&b'\n');
            }
        }
        Mutation::Insert(i, bytes) => {
            let i = at(*i, out.len() + 1);
            out.splice(i..i, bytes.iter().copied());
        }
    }
    out
}

/// Loads the project with `target` replaced by its mutated text, then puts the original back.
fn load_mutated(target: usize, mutations: &[Mutation]) {
    let b = base();
    let mut text = b.originals[target].clone();
    for m in mutations {
        text = apply(&text, m);
    }
    let path = b.root.join(TARGETS[target]);
    std::fs::write(&path, &text).expect("write mutated");
    let loaded = std::panic::catch_unwind(|| {
        // Errors are fine; only a panic fails the property.
        let _ = harness::config::load(&b.root, &harness::services::rules);
    });
    std::fs::write(&path, &b.originals[target]).expect("restore");
    if let Err(panic) = loaded {
        std::panic::resume_unwind(panic);
    }
}

#[test]
fn the_unmutated_base_project_loads() {
    let b = base();
    if let Err(e) = harness::config::load(&b.root, &harness::services::rules) {
        // Without the managed Python environment the python tasks are refused; nothing else.
        for err in &e.0 {
            assert!(
                err.message.contains("managed Python environment"),
                "the base of the fuzzing does not load: {err}"
            );
        }
    }
}

proptest! {
    #![proptest_config(Config {
        // Cases from PROPTEST_CASES (256 when unset); a failing input is printed, not written
        // into the source tree.
        failure_persistence: None,
        ..Config::default()
    })]

    #[test]
    fn mutated_configuration_files_never_make_the_loader_panic(
        target in 0..TARGETS.len(),
        mutations in prop::collection::vec(mutation(), 1..4),
    ) {
        load_mutated(target, &mutations);
    }
}
