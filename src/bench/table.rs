//! Bench 4, canonicalizing and diffing a large table sink: a generated table rendered and freed,
//! its golden read, the unified diff and the row-by-row account, as the runner does with a table
//! sink, in a child process (`harness bench-worker`) so that its peak memory is its own; against
//! GNU `sort` of the same rows as text and `diff` against the sorted golden rows.

use std::io::{BufWriter, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use compact_str::format_compact;

use super::{
    Bench, Capture, Ctx, Figure, Goal, Rng, Unit, human, measure_child, median, write_file,
};
use crate::snapshot::canonical::{Column, Header, Table, Value};
use crate::snapshot::golden;
use crate::snapshot::{diff, table};

/// One row in this many differs between the generated golden and the generated table.
const CHANGED_EVERY: u64 = 100;

/// The generated table sink: `rows` rows of 10 columns, in no particular order (as a database
/// returns them), each made in its turn (so they lie in memory in that order). With `golden`, one row in [`CHANGED_EVERY`] has another score and title.
pub fn generate_table(rows: usize, golden: bool) -> Table {
    let col = |name: &str, type_name: &str| Column {
        name: name.into(),
        type_name: type_name.into(),
    };
    let columns = vec![
        col("id", "int8"),
        col("user_id", "int8"),
        col("item_id", "int8"),
        col("score", "float8"),
        col("price", "numeric"),
        col("views", "int4"),
        col("is_paid", "bool"),
        col("dt", "date"),
        col("title", "text"),
        col("note", "text"),
    ];
    // The order a database returns them in, drawn first: rows are made in that order, so that
    // they lie in memory as a sink's read leaves them, and each row's values come from its id
    // alone.
    let mut ids: Vec<u64> = (0..rows as u64).collect();
    let mut order = Rng::new(0x0dde);
    for i in (1..ids.len()).rev() {
        let j = order.below(i as u64 + 1) as usize;
        ids.swap(i, j);
    }
    let data: Vec<Vec<Value>> = ids
        .into_iter()
        .map(|id| {
            let mut rng = Rng::new(0x5eed ^ id.wrapping_mul(0x9e37_79b9_7f4a_7c15));
            let item = rng.below(50_000) as i64;
            let mut score = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64 * 10.0;
            let mut title = format_compact!("item {item}");
            if golden && id % CHANGED_EVERY == 42 {
                score += 1.0;
                title.push_str(" (old)");
            }
            let note = match rng.below(8) {
                0 => Value::Null,
                1 => Value::Text(Default::default()),
                2 => Value::Text(format_compact!("said \"hi\"\tto {id}")),
                _ => Value::Text(format_compact!("note {}", rng.below(1000))),
            };
            vec![
                Value::Int(id as i64),
                Value::Int(rng.below(100_000) as i64),
                Value::Int(item),
                Value::Float(score),
                Value::Numeric(format_compact!("{}.{:02}", rng.below(100), rng.below(100))),
                Value::Int(rng.below(10_000) as i64),
                Value::Bool(rng.below(2) == 1),
                Value::Text(format_compact!(
                    "2026-{:02}-{:02}",
                    1 + rng.below(12),
                    1 + rng.below(28)
                )),
                Value::Text(title),
                note,
            ]
        })
        .collect();
    Table {
        columns,
        rows: data,
    }
}

fn bench_header() -> Header {
    Header {
        sink: "bench".into(),
        source: "generated table".into(),
    }
}

fn bench_key() -> Vec<String> {
    vec!["id".into()]
}

/// The work of a `harness bench-worker` child.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum WorkerJob {
    /// Write the golden snapshot and the rows as text for the `sort` + `diff` baseline.
    Prepare,
    /// Render the generated table, diff it against the golden, and compare it row by row.
    Compare,
}

/// Runs a worker job in this process; prints what it measured as one JSON line.
pub fn worker(job: WorkerJob, rows: usize, dir: &Path) -> Result<(), String> {
    let golden_path = dir.join("golden.snap");
    match job {
        WorkerJob::Prepare => {
            let golden = generate_table(rows, true)
                .render(&bench_header(), &bench_key(), None)
                .map_err(|e| e.to_string())?;
            write_file(&golden_path, &golden)?;
            let mut golden_rows: Vec<&str> = body_lines(&golden).collect();
            // GNU sort's order under LC_ALL=C: bytes.
            golden_rows.sort_unstable();
            write_lines(&dir.join("golden.rows"), golden_rows.iter().copied())?;
            drop(golden);
            // The rows as the baseline gets them: unsorted, one per line.
            let actual = generate_table(rows, false)
                .render(&bench_header(), &bench_key(), None)
                .map_err(|e| e.to_string())?;
            let mut lines: Vec<&str> = body_lines(&actual).collect();
            let mut order = Rng::new(0xfeed);
            for i in (1..lines.len()).rev() {
                lines.swap(i, order.below(i as u64 + 1) as usize);
            }
            write_lines(&dir.join("actual.rows"), lines.iter().copied())?;
            println!("{{}}");
        }
        WorkerJob::Compare => {
            let generated = generate_table(rows, false);
            // The table as a sink read gives it; what the harness adds is measured above this.
            let before = resident("VmRSS");
            // What the runner does with a table sink: render and free the table (read stage),
            // then read the golden, diff, and explain the difference row by row (compare stage).
            let t0 = Instant::now();
            // The end of each stage; their times are the gaps.
            let mut ends = vec![t0];
            let actual = generated
                .render(&bench_header(), &bench_key(), None)
                .map_err(|e| e.to_string())?;
            ends.push(Instant::now());
            // The runner's read of a sink frees the table once it is rendered.
            drop(generated);
            ends.push(Instant::now());
            let golden = golden::read(&golden_path)
                .map_err(|e| format!("cannot read {}: {e}", golden_path.display()))?
                .ok_or("no golden")?;
            ends.push(Instant::now());
            let key = bench_key();
            let tolerances = table::Tolerances::new();
            let (text_diff, by_rows) =
                diff::explain(&golden, &actual, "golden.snap", Some((&key, &tolerances)));
            let changed = by_rows.map_or(0, |d| d.changed.len());
            ends.push(Instant::now());
            // The runner keeps the diff in the report, as the baseline writes its own.
            let text_diff = text_diff.unwrap_or_default();
            write_file(&dir.join("harness.diff"), &text_diff)?;
            ends.push(Instant::now());
            let seconds = t0.elapsed().as_secs_f64();
            let stages: Vec<f64> = ends
                .windows(2)
                .map(|w| (w[1] - w[0]).as_secs_f64())
                .collect();
            println!(
                "{}",
                serde_json::json!({
                    "seconds": seconds,
                    "stages": stages,
                    "changed_rows": changed,
                    "rss_before": before,
                    "diff_bytes": text_diff.len(),
                })
            );
        }
    }
    Ok(())
}

/// A memory figure of this process from /proc/self/status, in bytes.
fn resident(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

fn body_lines(snapshot: &str) -> impl Iterator<Item = &str> {
    snapshot.lines().skip_while(|l| !l.is_empty()).skip(1)
}

fn write_lines<'a>(path: &Path, lines: impl Iterator<Item = &'a str>) -> Result<(), String> {
    let err = |e: std::io::Error| format!("cannot write {}: {e}", path.display());
    let mut out = BufWriter::new(std::fs::File::create(path).map_err(err)?);
    for l in lines {
        out.write_all(l.as_bytes()).map_err(err)?;
        out.write_all(b"\n").map_err(err)?;
    }
    out.flush().map_err(err)
}

/// The names of the compare worker's stages, in the order it times them.
const STAGES: [&str; 5] = [
    "render",
    "table freed",
    "golden read",
    "line diff and row account",
    "diff written",
];

/// One trial at one size: the harness's comparison and the baseline's, on the same files.
#[derive(Debug, Clone, Default)]
struct Trial {
    seconds: f64,
    stages: Vec<f64>,
    /// RSS with the table alone, and the peak of the whole comparison above it.
    before: f64,
    above: f64,
    baseline_seconds: f64,
    baseline_rss: f64,
}

impl Trial {
    /// The median of each figure over `trials`, figure by figure.
    fn median(trials: &[Trial]) -> Trial {
        let of = |f: &dyn Fn(&Trial) -> f64| median(trials.iter().map(f).collect());
        Trial {
            seconds: of(&|t| t.seconds),
            stages: (0..STAGES.len())
                .map(|i| of(&|t| t.stages.get(i).copied().unwrap_or(0.0)))
                .collect(),
            before: of(&|t| t.before),
            above: of(&|t| t.above),
            baseline_seconds: of(&|t| t.baseline_seconds),
            baseline_rss: of(&|t| t.baseline_rss),
        }
    }
}

pub(super) fn canonicalize_and_diff(bench: &Bench, ctx: &Ctx) -> Result<Vec<Figure>, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this program: {e}"))?;
    let mut sizes = vec![ctx.rows];
    if let Some(factor) = ctx.scale {
        sizes.push(
            ctx.rows
                .checked_mul(factor)
                .ok_or("--scale times --rows is too large")?,
        );
    }
    let mut dirs = Vec::new();
    for &rows in &sizes {
        let dir = ctx.folder(&format!("table-{rows}"))?;
        run_worker(&exe, "prepare", rows, &dir)?;
        dirs.push(dir);
    }
    // Trials take the sizes in turn, so that each size sees the machine as the other does.
    let mut trials: Vec<Vec<Trial>> = vec![Vec::new(); sizes.len()];
    for n in 1..=ctx.trials {
        for ((&rows, dir), done) in sizes.iter().zip(&dirs).zip(&mut trials) {
            let trial = one_trial(&exe, rows, dir)?;
            let parts: Vec<String> = STAGES
                .iter()
                .zip(&trial.stages)
                .map(|(n, s)| format!("{n} {}", human(Unit::Seconds, *s)))
                .collect();
            let which = if ctx.trials > 1 {
                format!(", trial {n} of {}", ctx.trials)
            } else {
                String::new()
            };
            println!("   {rows} rows{which}: stages: {}", parts.join(", "));
            done.push(trial);
        }
    }
    let measured: Vec<Trial> = trials.iter().map(|t| Trial::median(t)).collect();
    let mut figures = Vec::new();
    for (n, (&rows, m)) in sizes.iter().zip(&measured).enumerate() {
        let suffix = if n == 0 {
            String::new()
        } else {
            format!(".x{}", rows / ctx.rows)
        };
        figures.extend(size_figures(bench, ctx, rows, &suffix, m));
    }
    if let ([small, large], Some(factor)) = (measured.as_slice(), ctx.scale) {
        let big = ctx.rows * factor;
        let scaled = |what: &str, name: String, unit, value: f64, small: f64| Figure {
            id: format!("{}.scale.{what}", bench.id),
            name,
            unit,
            value,
            baseline: factor as f64 * small,
            baseline_what: format!("{factor}× the same at {} rows, in the same run", ctx.rows),
            goal: Goal::RatioAtMost(1.0),
        };
        figures.push(scaled(
            "time",
            format!("render + diff + row compare, {big} rows"),
            Unit::Seconds,
            large.seconds,
            small.seconds,
        ));
        figures.push(scaled(
            "memory",
            format!("peak memory of the same above the table, {big} rows"),
            Unit::Bytes,
            large.above,
            small.above,
        ));
    }
    Ok(figures)
}

/// Runs a `harness bench-worker` job in a child process; what it printed.
fn run_worker(
    exe: &Path,
    job: &str,
    rows: usize,
    dir: &Path,
) -> Result<super::child::ChildRun, String> {
    let mut cmd = Command::new(exe);
    cmd.args(["bench-worker", job, "--rows"])
        .arg(rows.to_string())
        .arg("--dir")
        .arg(dir)
        .stdin(Stdio::null());
    let run = measure_child(&mut cmd, Capture::Stdout)?;
    if run.code != 0 {
        return Err(format!("bench-worker {job} failed (exit {})", run.code));
    }
    Ok(run)
}

/// The harness's comparison of `rows` rows, then the baseline's, both checked.
fn one_trial(exe: &Path, rows: usize, dir: &Path) -> Result<Trial, String> {
    let run = run_worker(exe, "compare", rows, dir)?;
    let report: serde_json::Value = serde_json::from_slice(&run.stdout)
        .map_err(|e| format!("bench-worker compare printed no figures: {e}"))?;
    let seconds = report["seconds"].as_f64().ok_or("no seconds")?;
    let stages = report["stages"]
        .as_array()
        .map(|a| a.iter().map(|s| s.as_f64().unwrap_or(0.0)).collect())
        .unwrap_or_default();
    let changed = report["changed_rows"].as_u64().unwrap_or(0);
    let expected = (0..rows as u64).filter(|i| i % CHANGED_EVERY == 42).count() as u64;
    if changed != expected {
        return Err(format!(
            "the row-by-row comparison found {changed} changed rows, not {expected}"
        ));
    }

    let sorted = dir.join("actual.sorted");
    let sort = measure_child(
        Command::new("sort")
            .env("LC_ALL", "C")
            .arg("-o")
            .arg(&sorted)
            .arg(dir.join("actual.rows")),
        Capture::Nothing,
    )
    .map_err(|e| format!("GNU sort: {e}"))?;
    if sort.code != 0 {
        return Err(format!("sort failed (exit {})", sort.code));
    }
    let diff_path = dir.join("rows.diff");
    let out = std::fs::File::create(&diff_path).map_err(|e| e.to_string())?;
    let diff_run = measure_child(
        Command::new("diff")
            .arg(dir.join("golden.rows"))
            .arg(&sorted)
            .stdout(out),
        Capture::Nothing,
    )
    .map_err(|e| format!("GNU diff: {e}"))?;
    if diff_run.code != 1 {
        return Err(format!(
            "diff should find differences (exit 1), exited {}",
            diff_run.code
        ));
    }
    // The baseline wrote its whole diff, as the harness writes its own.
    let diff_lines = std::fs::read_to_string(&diff_path)
        .map_err(|e| e.to_string())?
        .lines()
        .filter(|l| l.starts_with('<') || l.starts_with('>'))
        .count() as u64;
    if diff_lines != 2 * expected {
        return Err(format!(
            "diff wrote {diff_lines} changed lines, not the {} of {expected} changed rows",
            2 * expected
        ));
    }
    let before = report["rss_before"].as_f64().unwrap_or(0.0);
    Ok(Trial {
        seconds,
        stages,
        before,
        above: run.max_rss - before,
        baseline_seconds: sort.elapsed + diff_run.elapsed,
        baseline_rss: sort.max_rss.max(diff_run.max_rss),
    })
}

/// Figures 4.time and 4.memory of one size (`suffix` names a size other than `--rows`).
fn size_figures(bench: &Bench, ctx: &Ctx, rows: usize, suffix: &str, m: &Trial) -> Vec<Figure> {
    let of = if ctx.trials > 1 {
        format!(", median of {} trials", ctx.trials)
    } else {
        String::new()
    };
    vec![
        Figure {
            id: format!("{}.time{suffix}", bench.id),
            name: format!("render + diff + row compare, {rows} rows × 10 columns, 1% changed{of}"),
            unit: Unit::Seconds,
            value: m.seconds,
            baseline: m.baseline_seconds,
            baseline_what:
                "LC_ALL=C sort of the same rows as text + diff against the sorted golden rows"
                    .into(),
            goal: Goal::RatioAtMost(1.0),
        },
        Figure {
            id: format!("{}.memory{suffix}", bench.id),
            name: format!(
                "peak memory of the same, above the {} the table itself takes ({} in all){of}",
                human(Unit::Bytes, m.before),
                human(Unit::Bytes, m.before + m.above)
            ),
            unit: Unit::Bytes,
            value: m.above,
            baseline: m.baseline_rss,
            baseline_what: "peak RSS of that sort and diff, the larger".into(),
            // 0.5 GB for the million rows of the goal; beyond, in proportion.
            goal: Goal::AtMost(0.5e9 * (rows as f64 / 1e6).max(1.0)),
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::merge;

    /// Rows of the generated table in the test below; the bench's million in a release build
    /// gives the same.
    const ROWS: usize = 20_000;

    #[test]
    fn the_merge_pass_gives_the_line_diff_and_account_of_the_general_comparison() {
        let render = |golden| {
            generate_table(ROWS, golden)
                .render(&bench_header(), &bench_key(), None)
                .expect("renders")
        };
        let (g, a) = (render(true), render(false));
        let tol = table::Tolerances::new();
        let (lines, rows) =
            merge::explain(&g, &a, "golden.snap", &bench_key(), &tol).expect("the pass applies");
        assert_eq!(lines, diff::unified(&g, &a, "golden.snap"));
        let general = table::compare(
            &table::parse(&g).expect("parses"),
            &table::parse(&a).expect("parses"),
            &bench_key(),
            &tol,
        );
        assert_eq!(rows, general);
        assert_eq!(rows.changed.len(), ROWS / CHANGED_EVERY as usize);
    }
}
