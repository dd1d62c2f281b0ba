//! Airflow as the harness uses it: the managed installation (an interpreter whose environment
//! holds Airflow and its providers), the driver script run with that interpreter, the shape of a
//! DAG read by parsing only its file, and the events the driver prints while a DagRun runs.
//!
//! It knows files and processes, not services: the runner hands it the variables tasks see.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// The driver: `describe` a DAG, or `run` one DagRun of it (see its docstring).
pub const DRIVER: &str = include_str!("harness_airflow.py");

/// How long parsing a DAG file may take before it is given up.
pub const DESCRIBE_TIMEOUT: Duration = Duration::from_secs(120);

/// What `scripts/setup.sh` installs, said where Airflow is missing.
pub const INSTALL_HINT: &str = "run `scripts/setup.sh` (it installs Airflow and its providers into .venv-airflow), or point `[airflow] python` in harness.toml at an interpreter that has apache-airflow";

/// One task of a DAG, as Airflow sees it after parsing the file.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct DagTask {
    /// The task id.
    pub id: String,
    /// The operator's class name (`SparkSubmitOperator`).
    pub operator: String,
    /// Ids of the tasks directly upstream.
    pub upstream: Vec<String>,
    /// Airflow's `retries`.
    pub retries: u32,
    /// Airflow's `execution_timeout`, in seconds.
    pub timeout: Option<f64>,
    /// Airflow's trigger rule (`all_success`, `all_done`, ...).
    pub trigger_rule: String,
}

/// Why a DAG could not be described.
#[derive(Debug, Clone, PartialEq)]
pub enum DescribeError {
    /// The interpreter or Airflow itself is missing.
    Missing(String),
    /// The file does not import: the Python error and the line of the file it points at.
    Import {
        /// The error, one line.
        message: String,
        /// 1-based line of the DAG file, when the error points into it.
        line: Option<usize>,
        /// 1-based column, for syntax errors.
        column: Option<usize>,
    },
    /// The file imports but defines no DAG of that id.
    NoDag {
        /// The DAG ids it does define.
        found: Vec<String>,
    },
    /// Anything else (the parse hung, the driver's answer made no sense).
    Failed(String),
}

#[derive(Deserialize)]
struct Described {
    ok: bool,
    #[serde(default)]
    tasks: Vec<DagTask>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    missing: Option<String>,
    #[serde(default)]
    line: Option<usize>,
    #[serde(default)]
    column: Option<usize>,
    #[serde(default)]
    dag_ids: Option<Vec<String>>,
}

/// The variables that make Airflow run from `home` with only `dag_file`'s folder as its DAG
/// folder and without the example DAGs.
pub fn base_env(home: &Path, dag_file: &Path) -> Vec<(String, String)> {
    let folder = dag_file.parent().unwrap_or(Path::new("/"));
    vec![
        ("AIRFLOW_HOME".into(), home.display().to_string()),
        ("AIRFLOW__CORE__LOAD_EXAMPLES".into(), "False".into()),
        (
            "AIRFLOW__CORE__DAGS_FOLDER".into(),
            folder.display().to_string(),
        ),
        (
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN".into(),
            // Parallel tasks write to one SQLite file: wait for its lock rather than fail.
            format!("sqlite:///{}?timeout=60", home.join("airflow.db").display()),
        ),
        ("AIRFLOW__CORE__UNIT_TEST_MODE".into(), "False".into()),
        (
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER".into(),
            home.join("logs").display().to_string(),
        ),
        // One line per message: the harness streams them with the task's name.
        (
            "AIRFLOW__LOGGING__COLORED_CONSOLE_LOG".into(),
            "False".into(),
        ),
        ("PYTHONUNBUFFERED".into(), "1".into()),
        // Scratch files of tasks (a BashOperator's working folder) go with the home.
        ("TMPDIR".into(), home.join("tmp").display().to_string()),
        (
            "PYTHONWARNINGS".into(),
            "ignore::DeprecationWarning,ignore::PendingDeprecationWarning".into(),
        ),
    ]
}

/// Variables of the caller that must not reach Airflow: its own settings and connections come
/// from the run only.
pub fn foreign_env() -> Vec<String> {
    std::env::vars_os()
        .filter_map(|(k, _)| k.into_string().ok())
        .filter(|k| k.starts_with("AIRFLOW") || k.starts_with("HARNESS_"))
        // The owner mark stays: what the DAG starts belongs to the run.
        .filter(|k| k != crate::ledger::OWNER_VAR)
        .collect()
}

/// Writes the driver into `dir` and returns its path.
pub fn write_driver(dir: &Path) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join("harness_airflow.py");
    std::fs::write(&path, DRIVER)?;
    Ok(path)
}

/// Checks that `python` exists; the message says how to install Airflow when it does not.
pub fn check_python(python: &Path) -> Result<(), String> {
    if python.is_file() {
        Ok(())
    } else {
        Err(format!(
            "Airflow is not installed: {} does not exist; {INSTALL_HINT}",
            python.display()
        ))
    }
}

/// What [`describe`] answered in this process, by interpreter, DAG file, DAG id and the
/// [`fingerprint`] of the DAG file's folder: a long-lived process (a kept environment loads the
/// project for every run) parses a DAG again only when a file beside it changed.
type DescribedDags = std::collections::HashMap<(PathBuf, PathBuf, String, Vec<u8>), Vec<DagTask>>;
static DESCRIBED: std::sync::Mutex<Option<DescribedDags>> = std::sync::Mutex::new(None);

/// Past this many files under a DAG's folder, its answers are not remembered.
const FINGERPRINT_FILES: usize = 5000;

/// Every file under `dir` (the DAG file's folder, the modules it may import from) with its size
/// and modification time; empty when the folder cannot be read (nothing is then remembered).
fn fingerprint(dir: &Path) -> Vec<u8> {
    let mut entries = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(read) = std::fs::read_dir(&d) else {
            return Vec::new();
        };
        for e in read.flatten() {
            let Ok(meta) = e.metadata() else { continue };
            if entries.len() > FINGERPRINT_FILES {
                return Vec::new();
            }
            if meta.is_dir() {
                stack.push(e.path());
            } else {
                let mtime = meta
                    .modified()
                    .ok()
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .map_or(0, |d| d.as_nanos());
                entries.push(format!("{}\0{}\0{mtime}", e.path().display(), meta.len()));
            }
        }
    }
    entries.sort();
    entries.join("\n").into_bytes()
}

/// Parses `dag_file` with Airflow (that file only) and returns the tasks of `dag_id`; the same
/// DAG is parsed once per process while no file of its folder changes.
pub fn describe(
    python: &Path,
    dag_file: &Path,
    dag_id: &str,
) -> Result<Vec<DagTask>, DescribeError> {
    let print = fingerprint(dag_file.parent().unwrap_or(Path::new("/")));
    let key = (
        python.to_path_buf(),
        dag_file.to_path_buf(),
        dag_id.to_string(),
        print,
    );
    if !key.3.is_empty()
        && let Some(tasks) = DESCRIBED
            .lock()
            .ok()
            .and_then(|m| m.as_ref().and_then(|m| m.get(&key).cloned()))
    {
        return Ok(tasks);
    }
    let tasks = describe_now(python, dag_file, dag_id)?;
    if !key.3.is_empty()
        && let Ok(mut m) = DESCRIBED.lock()
    {
        m.get_or_insert_with(Default::default)
            .insert(key, tasks.clone());
    }
    Ok(tasks)
}

/// [`describe`], without remembering.
fn describe_now(
    python: &Path,
    dag_file: &Path,
    dag_id: &str,
) -> Result<Vec<DagTask>, DescribeError> {
    check_python(python).map_err(DescribeError::Missing)?;
    let scratch = crate::ledger::OwnedDir::new(&std::env::temp_dir(), "harness-airflow-")
        .map_err(|e| DescribeError::Failed(format!("cannot create a scratch folder: {e}")))?;
    let driver = write_driver(scratch.path())
        .map_err(|e| DescribeError::Failed(format!("cannot write the driver: {e}")))?;
    let mut cmd = Command::new(python);
    cmd.arg(&driver)
        .arg("describe")
        .arg(dag_file)
        .arg(dag_id)
        .current_dir(dag_file.parent().unwrap_or(Path::new("/")))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for k in foreign_env() {
        cmd.env_remove(k);
    }
    cmd.envs(base_env(&scratch.path().join("home"), dag_file));
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let child = cmd.spawn().map_err(|e| {
        DescribeError::Missing(format!(
            "cannot run {}: {e}; {INSTALL_HINT}",
            python.display()
        ))
    })?;
    let output = wait_with_timeout(child, DESCRIBE_TIMEOUT).map_err(DescribeError::Failed)?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let Some(answer) = stdout
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str::<Described>(l).ok())
    else {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(15).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        return Err(DescribeError::Failed(format!(
            "parsing the DAG with {} gave no answer ({}):\n{}",
            python.display(),
            output.status,
            tail.join("\n")
        )));
    };
    if answer.ok {
        return Ok(answer.tasks);
    }
    if let Some(missing) = answer.missing {
        return Err(DescribeError::Missing(format!(
            "Airflow cannot be imported with {}: {missing}; {INSTALL_HINT}",
            python.display()
        )));
    }
    if let Some(found) = answer.dag_ids {
        return Err(DescribeError::NoDag { found });
    }
    Err(DescribeError::Import {
        message: answer
            .error
            .unwrap_or_else(|| "the DAG file does not import".into()),
        line: answer.line,
        column: answer.column,
    })
}

fn wait_with_timeout(
    mut child: std::process::Child,
    timeout: Duration,
) -> Result<std::process::Output, String> {
    // Read both pipes on threads so that a chatty DAG file cannot fill one and block.
    let mut out = child.stdout.take();
    let mut err = child.stderr.take();
    let read_out = std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(o) = out.as_mut() {
            let _ = std::io::Read::read_to_end(o, &mut buf);
        }
        buf
    });
    let read_err = std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(e) = err.as_mut() {
            let _ = std::io::Read::read_to_end(e, &mut buf);
        }
        buf
    });
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if crate::signals::interrupted() => {
                crate::process::signal_group(child.id(), libc::SIGKILL);
                let _ = child.wait();
                return Err("interrupted while parsing the DAG file".to_string());
            }
            Ok(None) if started.elapsed() < timeout => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Ok(None) => {
                crate::process::signal_group(child.id(), libc::SIGKILL);
                let _ = child.wait();
                return Err(format!(
                    "parsing the DAG file took longer than {}s and was stopped",
                    timeout.as_secs()
                ));
            }
            Err(e) => return Err(format!("cannot wait for the DAG parser: {e}")),
        }
    };
    Ok(std::process::Output {
        status,
        stdout: read_out.join().unwrap_or_default(),
        stderr: read_err.join().unwrap_or_default(),
    })
}

/// What one DagRun is asked to do (the driver's `run` argument).
#[derive(Debug, Clone, Serialize, Default)]
pub struct RunSpec {
    /// The tasks to run (a subset of the DAG); `None` for all.
    pub tasks: Option<Vec<String>>,
    /// The logical date (ISO 8601); `None` for now, as Airflow does.
    pub logical_date: Option<String>,
    /// `dag_run.conf` (also overrides params of the same name).
    pub conf: serde_json::Map<String, serde_json::Value>,
    /// Task id patterns (`*`, `?`) marked successful without running.
    pub mark_success: Vec<String>,
    /// Per task, the time one attempt may take, in seconds.
    pub timeouts: BTreeMap<String, f64>,
    /// Per task, variables set for it alone.
    pub task_env: BTreeMap<String, BTreeMap<String, String>>,
    /// Task instances running at once, at most.
    pub parallel: usize,
}

/// One line the driver prints while it runs a DagRun.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum DriverEvent {
    /// Airflow is loaded, the DAG parsed and the database ready; waiting for requests.
    Ready {
        /// The parts of the driver's start and their seconds, in order.
        #[serde(default)]
        stages: Vec<(String, f64)>,
    },
    /// The DagRun changed state (`running`, `success`, `failed`).
    DagRun {
        /// Its state.
        state: String,
    },
    /// A task instance changed state.
    State {
        /// Task id.
        task: String,
        /// Airflow's state name.
        state: String,
        /// Airflow's try number.
        try_number: u32,
        /// Airflow's max tries (retries).
        max_tries: u32,
    },
    /// A line a task wrote.
    Log {
        /// Task id.
        task: String,
        /// The line.
        line: String,
    },
    /// The child that ran a DagRun ended, with this exit code.
    Exited {
        /// Its exit code.
        code: i32,
    },
    /// A task ran past its time limit and its processes were killed.
    TimedOut {
        /// Task id.
        task: String,
    },
    /// The DAG file no longer imports.
    ImportError {
        /// The error.
        error: String,
        /// Line of the DAG file.
        line: Option<usize>,
    },
}

impl DriverEvent {
    /// Parses one line of the driver's standard output; `None` for anything else.
    pub fn parse(line: &str) -> Option<DriverEvent> {
        line.starts_with('{')
            .then(|| serde_json::from_str(line).ok())
            .flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_lines_parse_into_events_and_other_lines_do_not() {
        let e = DriverEvent::parse(
            r#"{"event": "state", "task": "a", "map_index": -1, "state": "up_for_retry", "try_number": 1, "max_tries": 2}"#,
        );
        assert_eq!(
            e,
            Some(DriverEvent::State {
                task: "a".into(),
                state: "up_for_retry".into(),
                try_number: 1,
                max_tries: 2
            })
        );
        assert_eq!(
            DriverEvent::parse(
                r#"{"event": "ready", "stages": [["import Airflow", 2.5], ["database", 0.1]]}"#
            ),
            Some(DriverEvent::Ready {
                stages: vec![("import Airflow".into(), 2.5), ("database".into(), 0.1)]
            })
        );
        assert_eq!(DriverEvent::parse("[info] Filling up the DagBag"), None);
        assert_eq!(DriverEvent::parse(r#"{"event": "unknown"}"#), None);
    }

    #[test]
    fn a_missing_interpreter_says_how_to_install_airflow() {
        let err = describe(
            Path::new("/nonexistent/python"),
            Path::new("/tmp/x.py"),
            "x",
        )
        .expect_err("no interpreter");
        match err {
            DescribeError::Missing(m) => assert!(m.contains("scripts/setup.sh"), "{m}"),
            other => panic!("{other:?}"),
        }
    }
}
