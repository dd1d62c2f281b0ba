//! The HTML report as a person sees it: a run with a passing and a failing scenario writes
//! `report.html`, headless Chromium renders it to a PNG, and OCR must read the failing
//! scenario's name and its status on it.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{Project, find_program, require_servers};

/// Stores twelve daily totals in Redis, after a pause that gives the timeline a visible bar.
const PIPELINE: &str = r#"
services = ["redis"]

[tasks.compute]
kind = "command"
argv = ["sh", "-c", "echo computing daily totals for $HARNESS_SCENARIO; sleep 0.4; for d in $(seq 10 21); do redis-cli -u \"$HARNESS_REDIS_URL\" SET total:day$d $((d * 100)) >/dev/null; done; echo stored 12 daily totals"]

[tasks.publish]
kind = "command"
argv = ["sh", "-c", "sleep 0.2; echo published"]
depends_on = ["compute"]
"#;

const SCENARIO: &str = r#"
pipeline = "totals"

[[sink]]
name = "daily_totals"
service = "redis"
keys = "total:*"
"#;

/// The snapshot the pipeline produces, with `day15` holding `day15`.
fn golden(day15: &str) -> String {
    let entries: Vec<String> = (10..=21)
        .map(|d| {
            let v = if d == 15 {
                day15.to_string()
            } else {
                (d * 100).to_string()
            };
            format!("\"total:day{d}\" string\n  \"{v}\"\n")
        })
        .collect();
    format!(
        "# harness snapshot v1\n# sink: daily_totals\n# source: redis keys total:*\nkeys: 12\n\n{}",
        entries.join("\n")
    )
}

/// The program's path, or a failure naming it: the test needs it and setup installs it.
fn program(name: &str) -> PathBuf {
    find_program(name).unwrap_or_else(|| {
        panic!("`{name}` is not on PATH: scripts/setup.sh installs it (Debian package)")
    })
}

/// Runs `cmd` in a process group of its own, bounded by `limit`; the whole group is killed
/// afterwards, so that no helper process outlives the test.
fn run_bounded(mut cmd: Command, limit: Duration) -> (bool, String) {
    use std::os::unix::process::CommandExt;
    let mut child = cmd
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let group = child.id() as i32;
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break Some(status);
        }
        if Instant::now() > deadline {
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    // SAFETY: kill(2) on a process group this test created; no memory is involved.
    unsafe { libc::kill(-group, libc::SIGKILL) };
    let _ = child.wait();
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        use std::io::Read;
        let _ = e.read_to_string(&mut stderr);
    }
    (status.is_some_and(|s| s.success()), stderr)
}

/// Lower-case letters and digits only, so that OCR's spacing and punctuation do not matter.
fn normalise(text: &str) -> String {
    text.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// Renders `page` with headless Chromium into `png`.
fn screenshot(chromium: &Path, page: &Path, png: &Path, profile: &Path) {
    let mut cmd = Command::new(chromium);
    cmd.arg("--headless")
        .arg("--no-sandbox")
        .arg("--disable-gpu")
        .arg("--disable-dev-shm-usage")
        .arg("--hide-scrollbars")
        .arg("--no-first-run")
        .arg("--disable-background-networking")
        .arg("--disable-component-update")
        .arg("--window-size=1280,2000")
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--screenshot={}", png.display()))
        .arg(format!("file://{}", page.display()));
    let (ok, stderr) = run_bounded(cmd, Duration::from_secs(90));
    assert!(
        ok && png.is_file(),
        "chromium made no screenshot:\n{stderr}"
    );
}

#[test]
fn html_report_shows_the_failing_scenario_in_a_real_browser() {
    let chromium = program("chromium");
    let tesseract = program("tesseract");
    require_servers();
    let p = Project::new();
    p.file("pipelines/totals/pipeline.toml", PIPELINE)
        .file("scenarios/allgood/scenario.toml", SCENARIO)
        .file(
            "scenarios/allgood/golden/daily_totals.snap",
            &golden("1500"),
        )
        .file("scenarios/brokentotals/scenario.toml", SCENARIO)
        .file(
            "scenarios/brokentotals/golden/daily_totals.snap",
            &golden("1515"),
        );
    let r = p.run(&["run"]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(r.stdout.contains("1 passed, 1 failed"), "{}", r.stdout);

    let page = p.path().join(".harness/report/report.html");
    let html = std::fs::read_to_string(&page).expect("report.html written");
    for external in ["http://", "https://", "<link", "<script", " src=", "url("] {
        assert!(
            !html.contains(external),
            "`{external}` in the page:\n{html}"
        );
    }
    assert!(
        html.contains("<mark>1515</mark>") && html.contains("<mark>1500</mark>"),
        "the changed value, marked on both sides:\n{html}"
    );
    assert!(html.contains("stored 12 daily totals"), "task log:\n{html}");
    assert!(
        html.contains("computing daily totals for brokentotals"),
        "task log:\n{html}"
    );
    let failing = html
        .find("<span class=\"name\">brokentotals</span>")
        .expect("a section for brokentotals");
    let passing = html
        .find("<span class=\"name\">allgood</span>")
        .expect("a section for allgood");
    assert!(failing < passing, "the failing scenario comes first");
    // `publish` starts after the 0.4 s of `compute`: its bar starts well into the timeline.
    let lefts: Vec<f64> = html
        .match_indices("style=\"left:")
        .filter_map(|(at, m)| {
            let rest = &html[at + m.len()..];
            rest[..rest.find('%')?].parse().ok()
        })
        .collect();
    assert_eq!(lefts.len(), 4, "one bar per task:\n{html}");
    assert!(lefts.iter().any(|&l| l > 40.0), "{lefts:?}");

    // Kept in the target folder, to look at after the test.
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("report_html");
    std::fs::create_dir_all(&out).expect("mkdir");
    let png = out.join("report.png");
    let _ = std::fs::remove_file(&png);
    std::fs::copy(&page, out.join("report.html")).expect("copy page");
    screenshot(&chromium, &page, &png, &p.path().join(".chromium"));

    let ocr = Command::new(tesseract)
        .arg(&png)
        .arg("stdout")
        .output()
        .expect("run tesseract");
    assert!(
        ocr.status.success(),
        "{}",
        String::from_utf8_lossy(&ocr.stderr)
    );
    let text = normalise(&String::from_utf8_lossy(&ocr.stdout));
    // The status label stands right before the name, in the index and in the heading.
    assert!(
        text.contains(&normalise("FAILED brokentotals")),
        "OCR of {} does not show `FAILED brokentotals`: {text}",
        png.display()
    );
    assert!(
        p.leftover_processes().is_empty(),
        "{:?}",
        p.leftover_processes()
    );
}
