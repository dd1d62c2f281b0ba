//! The CI gate a pipeline repository would use (`.github/workflows/harness.yml`), checked by
//! actionlint (installed into `.venv` by scripts/setup.sh).

use std::path::PathBuf;
use std::process::Command;

use crate::support::repo;

fn actionlint() -> PathBuf {
    let bin = repo().join(".venv/bin/actionlint");
    assert!(
        bin.is_file(),
        "actionlint is missing at {}: run scripts/setup.sh (it installs scripts/requirements-dev.txt)",
        bin.display()
    );
    bin
}

fn lint(file: &std::path::Path) -> (bool, String) {
    let out = Command::new(actionlint())
        .arg("-no-color")
        .arg(file)
        .output()
        .expect("actionlint runs");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn the_workflow_passes_actionlint() {
    let file = repo().join(".github/workflows/harness.yml");
    let (ok, out) = lint(&file);
    assert!(ok, "actionlint found problems:\n{out}");

    // What the gate must do, as its steps say it.
    let text = std::fs::read_to_string(&file).expect("workflow");
    for needle in [
        "scripts/setup.sh",
        "harness images build",
        "--backend docker",
        "--junit \"$REPORT/junit.xml\"",
        "actions/upload-artifact@",
        "${{ env.REPORT }}/report\n",
        "${{ env.REPORT }}/report/pending",
    ] {
        assert!(text.contains(needle), "the workflow lacks {needle:?}");
    }
}

#[test]
fn actionlint_catches_a_broken_copy_of_the_workflow() {
    // The check above means something only if a mistake fails it.
    let text =
        std::fs::read_to_string(repo().join(".github/workflows/harness.yml")).expect("workflow");
    let broken = text.replace("matrix.partition }}/2", "matrix.partitions }}/2");
    assert_ne!(broken, text, "the mistake was made");
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("harness.yml");
    std::fs::write(&file, broken).expect("write");
    let (ok, out) = lint(&file);
    assert!(!ok, "actionlint passed a broken workflow:\n{out}");
    assert!(out.contains("partitions"), "{out}");
}
