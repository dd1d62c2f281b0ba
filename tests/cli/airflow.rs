//! Pipelines that are Airflow DAGs, run by the managed Airflow against real services: exit
//! codes that never lie (a failed task is exit 1 even when Airflow calls the DagRun a success,
//! a DAG that does not import is exit 2 at its line, Airflow missing is exit 3), unmodified
//! operators and hooks on the connections the harness provides, branching and trigger rules as
//! Airflow decides them, and time limits that kill a task's processes.

use crate::support::{Project, require_servers, wait_exit, wait_for};

const PIPELINE: &str = r#"services = ["postgres", "redis"]
[airflow]
dag_file = "dags/flow.py"
dag_id = "flow"
"#;

const REDIS_SINK: &str = r#"
[[sink]]
name = "keys"
service = "redis"
keys = "out:*"
"#;

fn dag_project(dag: &str, pipeline_extra: &str, scenario: &str) -> Project {
    require_servers();
    let p = Project::with_airflow();
    p.file("pipelines/p/dags/flow.py", dag);
    p.file(
        "pipelines/p/pipeline.toml",
        &format!("{PIPELINE}{pipeline_extra}"),
    );
    p.file("scenarios/s/scenario.toml", scenario);
    p
}

const HEADER: &str = r#"import datetime as dt
from airflow.sdk import DAG
from airflow.providers.standard.operators.bash import BashOperator
from airflow.providers.standard.operators.python import BranchPythonOperator, PythonOperator
"#;

#[test]
fn failed_retried_and_cut_off_dag_tasks_are_exit_1_even_when_airflow_calls_the_dagrun_a_success() {
    // `cleanup` runs whatever happened (trigger rule all_done) and is the only leaf: Airflow
    // marks this DagRun successful, which is how `airflow dags test` once exited 0 on a failure.
    let dag = format!(
        r#"{HEADER}
with DAG("flow", schedule=None, start_date=dt.datetime(2024, 1, 1)) as dag:
    explode = BashOperator(task_id="explode", bash_command="echo boom-marker-41; exit 3")
    cleanup = BashOperator(task_id="cleanup", bash_command="echo tidy", trigger_rule="all_done")
    explode >> cleanup
"#
    );
    let p = dag_project(&dag, "", &format!("pipeline = \"p\"\n{REDIS_SINK}"));
    // A cache of its own: the first run migrates Airflow's database and keeps the template
    // there; the next runs, each in a new environment, start from copies of it.
    let cache = tempfile::tempdir().expect("cache folder");
    let cache_env = [("HARNESS_CACHE_DIR", cache.path().to_str().expect("utf-8"))];
    let templates = || -> Vec<String> {
        std::fs::read_dir(cache.path().join("airflow"))
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    };
    let r = p.run_env(&["run", "--format", "json"], &cache_env);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(
        r.stdout.contains(r#""event":"task_finished""#) && r.stdout.contains(r#""task":"explode""#),
        "{}",
        r.stdout
    );
    let made = templates();
    assert!(
        made.len() == 1 && made[0].starts_with("template-") && made[0].ends_with(".db"),
        "one migrated template and nothing else: {made:?}"
    );
    let modified = |name: &str| {
        std::fs::metadata(cache.path().join("airflow").join(name))
            .and_then(|m| m.modified())
            .expect("template")
    };
    let first = modified(&made[0]);
    let results = p.read(".harness/report/results.json");
    assert!(results.contains("Bash command failed"), "{results}");
    let log = p.read(".harness/report/s/tasks/explode.log");
    assert!(log.contains("boom-marker-41"), "{log}");
    // A new environment from the template: the same failure, reported the same way, and the
    // template neither made again nor joined by another.
    let r = p.run_env(&["run"], &cache_env);
    assert_eq!(templates(), made);
    assert_eq!(modified(&made[0]), first);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(
        r.stderr
            .contains("task `explode` failed: airflow.sdk.exceptions.AirflowException"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("boom-marker-41"),
        "the log tail: {}",
        r.stderr
    );
    assert!(r.all().contains("✔ s/cleanup"), "{}", r.all());
    // `list` shows the tasks the DAG file gives.
    let r = p.run(&["list"]);
    assert!(
        r.stdout
            .contains("  cleanup (BashOperator) after explode, trigger rule all_done, timeout 10m"),
        "{}",
        r.stdout
    );

    // A retried task, and a task cut off by its failure: Airflow's up_for_retry and
    // upstream_failed, as the harness reports them.
    p.file(
        "pipelines/p/dags/flow.py",
        &format!(
            r#"{HEADER}
with DAG("flow", schedule=None, start_date=dt.datetime(2024, 1, 1)) as dag:
    explode = BashOperator(task_id="explode", bash_command="exit 3", retries=1, retry_delay=dt.timedelta(0))
    after = BashOperator(task_id="after", bash_command="echo never")
    explode >> after
"#
        ),
    );
    let r = p.run(&["run", "--format", "json"]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(
        r.stdout.contains(r#""state":"up_for_retry""#),
        "{}",
        r.stdout
    );
    let results = p.read(".harness/report/results.json");
    assert!(
        results.contains("skipped (upstream `explode` failed)"),
        "{results}"
    );
    let log = p.read(".harness/report/s/tasks/explode.log");
    assert!(log.contains("--- attempt 2/2 ---"), "{log}");
    assert!(
        p.leftover_processes().is_empty(),
        "{:?}",
        p.leftover_processes()
    );
}

#[test]
fn a_dag_that_does_not_import_is_exit_2_naming_the_file_and_line() {
    require_servers();
    let p = Project::with_airflow();
    p.file("pipelines/p/pipeline.toml", PIPELINE);
    p.file(
        "scenarios/s/scenario.toml",
        &format!("pipeline = \"p\"\n{REDIS_SINK}"),
    );
    p.file(
        "pipelines/p/dags/flow.py",
        &format!("{HEADER}\nwith DAG(\"flow\", schedule=None) as dag:\n    BashOperator(task_id=\"a\", bash_command=\"true\"\n"),
    );
    let r = p.run(&["check"]);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(
        r.stderr.contains("pipelines/p/dags/flow.py:7:"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("SyntaxError"), "{}", r.stderr);

    // An exception while the file runs points at the raising line of the DAG file.
    p.file(
        "pipelines/p/dags/flow.py",
        &format!("{HEADER}\nlimit = int(\"ten\")\n"),
    );
    let r = p.run(&["run"]);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(
        r.stderr.contains("pipelines/p/dags/flow.py:6:"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("ValueError: invalid literal for int()"),
        "{}",
        r.stderr
    );

    // A DAG id the file does not define, and task tables that say what to run.
    p.file(
        "pipelines/p/dags/flow.py",
        &format!("{HEADER}\nwith DAG(\"flows\", schedule=None) as dag:\n    BashOperator(task_id=\"a\", bash_command=\"true\")\n"),
    );
    p.file(
        "pipelines/p/pipeline.toml",
        &format!("{PIPELINE}[tasks.a]\nkind = \"command\"\nargv = [\"true\"]\n"),
    );
    let r = p.run(&["check"]);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(r.stderr.contains("defines no DAG `flow`"), "{}", r.stderr);
    assert!(r.stderr.contains("did you mean `flows`?"), "{}", r.stderr);
}

#[test]
fn airflow_missing_is_exit_3_saying_how_to_install_it() {
    let p = Project::new();
    p.file(
        "harness.toml",
        "backend = \"local\"\n[airflow]\npython = \"no-airflow/bin/python\"\n",
    );
    p.file("pipelines/p/pipeline.toml", PIPELINE);
    p.file("pipelines/p/dags/flow.py", "raise SystemExit(1)\n");
    p.file(
        "scenarios/s/scenario.toml",
        &format!("pipeline = \"p\"\n{REDIS_SINK}"),
    );
    for cmd in ["check", "run"] {
        let r = p.run(&[cmd]);
        assert_eq!(r.code, 3, "{cmd}: {}", r.all());
        assert!(
            r.stderr.contains("Airflow is not installed"),
            "{}",
            r.stderr
        );
        assert!(r.stderr.contains("scripts/setup.sh"), "{}", r.stderr);
    }
}

#[test]
fn an_unmodified_dag_runs_on_the_provided_connections_and_branches_as_airflow_decides() {
    // Hooks and operators by conn_id, a Variable, dag_run.conf, a branch, a skipped task, a
    // sensor marked successful, and a per-task environment.
    let dag = format!(
        r#"{HEADER}
from airflow.providers.common.sql.operators.sql import SQLExecuteQueryOperator
from airflow.providers.redis.hooks.redis import RedisHook
from airflow.providers.standard.sensors.external_task import ExternalTaskSensor
from airflow.sdk import Variable
import os

from airflow.providers.standard.sensors.python import PythonSensor

def second_poke():
    marker = os.path.join(os.environ["HARNESS_WORK_DIR"], "poked")
    if os.path.exists(marker):
        return True
    open(marker, "w").close()
    return False

def publish(**context):
    conn = RedisHook(redis_conn_id="redis_default").get_conn()
    conn.set("out:region", context["dag_run"].conf["region"])
    conn.set("out:threshold", Variable.get("threshold"))
    conn.set("out:ds", context["ds"])

with DAG("flow", schedule=None, start_date=dt.datetime(2024, 1, 1)) as dag:
    wait = ExternalTaskSensor(task_id="wait_upstream", external_dag_id="elsewhere", poke_interval=60)
    create = SQLExecuteQueryOperator(
        task_id="create",
        conn_id="postgres_default",
        sql="CREATE TABLE public.counts (n INT); INSERT INTO public.counts VALUES (7)",
    )
    pick = BranchPythonOperator(task_id="pick", python_callable=lambda **c: "publish" if c["dag_run"].conf["go"] else "never")
    publish_task = PythonOperator(task_id="publish", python_callable=publish)
    never = BashOperator(task_id="never", bash_command="exit 1")
    stamp = PythonOperator(
        task_id="stamp",
        python_callable=lambda: RedisHook(redis_conn_id="redis_default").get_conn().set("out:stamp", os.environ["STAMP"]),
    )
    # A sensor that gives its slot back between pokes (up_for_reschedule), ready on its second.
    poke = PythonSensor(task_id="poke", python_callable=second_poke, mode="reschedule", poke_interval=1)
    wait >> poke >> create >> pick >> [publish_task, never]
"#
    );
    let scenario = format!(
        r#"pipeline = "p"
[airflow]
logical_date = "2024-05-01"
conf = {{ region = "eu", go = true }}
variables = {{ threshold = "0.5" }}
mark_success = ["wait_*"]
{REDIS_SINK}
[[sink]]
name = "counts"
service = "postgres"
table = "public.counts"
key = ["n"]
"#
    );
    let p = dag_project(
        &dag,
        "[tasks.stamp]\nenv = { STAMP = \"per-task\" }\noutputs = [\"redis:out:stamp\"]\n",
        &scenario,
    );
    let r = p.run(&["run", "--update"]);
    assert_eq!(r.code, 0, "{}", r.all());
    let keys = p.read("scenarios/s/golden/keys.snap");
    for expected in ["\"eu\"", "\"0.5\"", "\"2024-05-01\"", "\"per-task\""] {
        assert!(keys.contains(expected), "{expected} in {keys}");
    }
    assert!(p.read("scenarios/s/golden/counts.snap").contains("n=7"));
    assert!(
        r.all()
            .contains("s/never skipped by the DAG (branch, short-circuit or trigger rule)"),
        "{}",
        r.all()
    );
    assert!(
        p.read(".harness/report/s/tasks/wait_upstream.log")
            .contains("marked success")
    );

    // The same run as JSON events: Airflow's states arrive as the harness's task events.
    let r = p.run(&["run", "--format", "json"]);
    assert_eq!(r.code, 0, "{}", r.all());
    for state in [
        r#""state":"queued""#,
        r#""state":"scheduled""#,
        r#""state":"up_for_reschedule""#,
    ] {
        assert!(r.stdout.contains(state), "{state}: {}", r.stdout);
    }
    assert!(
        r.stdout.contains(r#""event":"task_started""#),
        "{}",
        r.stdout
    );
    assert!(
        p.leftover_processes().is_empty(),
        "{:?}",
        p.leftover_processes()
    );
}

#[test]
fn a_dag_task_past_its_time_limit_loses_its_processes_and_ctrl_c_leaves_nothing() {
    let dag = format!(
        r#"{HEADER}
with DAG("flow", schedule=None, start_date=dt.datetime(2024, 1, 1)) as dag:
    BashOperator(task_id="sleeper", bash_command="sleep 300 & echo $! > $HARNESS_WORK_DIR/../../sleeper.pid; touch $HARNESS_WORK_DIR/../../started; wait")
"#
    );
    let p = dag_project(
        &dag,
        "[tasks.sleeper]\ntimeout = \"4s\"\n",
        &format!("pipeline = \"p\"\n{REDIS_SINK}"),
    );
    let r = p.run(&["run"]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(
        r.stderr.contains("task `sleeper` timed out after 4s"),
        "{}",
        r.stderr
    );
    assert!(
        p.leftover_processes().is_empty(),
        "{:?}",
        p.leftover_processes()
    );

    // Ctrl-C while the task runs: Airflow, the task and its children are gone.
    p.file(
        "pipelines/p/pipeline.toml",
        &format!("{PIPELINE}[tasks.sleeper]\ntimeout = \"5m\"\n"),
    );
    let mut child = p
        .command(&["run"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn harness");
    let marker = find_started(&p);
    assert!(wait_for(&marker, 90), "the sleeper never started");
    // SAFETY: kill with a valid pid and signal.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    assert_eq!(wait_exit(&mut child, 30).code(), Some(130));
    let left = p.leftover_processes();
    assert!(left.is_empty(), "processes left behind: {left:?}");
}

/// Where the sleeper of the example above leaves its marker: the environment folder, two
/// levels above the scenario's work folder (`<env>/work/<scenario>`).
fn find_started(p: &Project) -> std::path::PathBuf {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        if let Some(env) = std::fs::read_dir(p.tmp())
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .find(|e| e.join("work").is_dir())
        {
            return env.join("started");
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no environment folder appeared"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

#[test]
fn each_step_of_a_scenario_is_a_dagrun_of_its_own_logical_date_on_the_same_services() {
    // `stamp` appends the DagRun's {{ ds }} and a Variable to a Redis list.
    let dag = format!(
        r#"{HEADER}
with DAG("flow", schedule="@daily", start_date=dt.datetime(2024, 1, 1), catchup=False) as dag:
    stamp = BashOperator(
        task_id="stamp",
        bash_command='redis-cli --no-auth-warning -u "$HARNESS_REDIS_URL" RPUSH out:days "{{{{ ds }}}}/{{{{ var.value.tag }}}}/$HARNESS_STEP"',
    )
"#
    );
    let scenario = r#"pipeline = "p"

[airflow]
variables = { tag = "t" }

[[step]]
name = "first"
airflow = { logical_date = "2024-05-01" }

[[step]]
name = "second"
airflow = { logical_date = "2024-05-02", variables = { tag = "u" } }

[[step.sink]]
name = "keys"
service = "redis"
keys = "out:*"
"#;
    let p = dag_project(&dag, "[tasks.stamp]\nservices = [\"redis\"]\n", scenario);
    let r = p.run(&["run", "--update"]);
    assert_eq!(r.code, 0, "{}", r.all());
    let golden = p.read("scenarios/s/golden/second/keys.snap");
    assert!(
        golden.contains("\"2024-05-01/t/first\"") && golden.contains("\"2024-05-02/u/second\""),
        "{golden}"
    );
    assert!(p.exists(".harness/report/s/tasks/first/stamp.log"));
    assert!(r.all().contains("s/second/stamp"), "{}", r.all());
}

#[test]
fn airflow_loads_while_the_services_start_and_a_dag_requiring_their_variables_loads_and_runs_with_them()
 {
    // The top-level code reads a service's variable when the DAG is parsed: a driver that
    // parsed it before the services were up would give the task no server to write to. The
    // project's load, with no service up, parses it with a placeholder.
    let dag = format!(
        r#"{HEADER}
import os

REDIS_URL = os.environ["HARNESS_REDIS_URL"]

with DAG("flow", schedule=None, start_date=dt.datetime(2024, 1, 1)) as dag:
    BashOperator(
        task_id="mark",
        bash_command=f'redis-cli --no-auth-warning -u "{{REDIS_URL}}" SET out:parsed yes',
    )
"#
    );
    let scenario = format!("pipeline = \"p\"\n{REDIS_SINK}");
    let p = dag_project(&dag, "[tasks.mark]\nservices = [\"redis\"]\n", &scenario);
    let r = p.run(&["run", "--update"]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(
        p.read("scenarios/s/golden/keys.snap").contains("\"yes\""),
        "{}",
        r.all()
    );
    // The driver started with the environment and waited for the services' variables.
    let ready = r
        .all()
        .lines()
        .find(|l| l.contains("airflow driver ready"))
        .map(str::to_string)
        .unwrap_or_default();
    assert!(ready.contains("waiting for the services"), "{}", r.all());
}

#[test]
fn dag_tasks_forked_while_others_pour_out_output_start_at_once_and_are_never_cut_off() {
    // Three tasks write lines as fast as they can while a chain of quick tasks starts one after
    // the other: every start is a fork of the DagRun while its output is being relayed. A fork
    // that caught the relay mid-line left the new task stuck before it started, killed at its
    // time limit (and, before that was a failure, silently started again).
    let dag = format!(
        r#"{HEADER}
with DAG("flow", schedule=None, start_date=dt.datetime(2024, 1, 1)) as dag:
    for c in range(3):
        BashOperator(task_id=f"chatty_{{c}}", bash_command="seq 1 100000")
    prev = None
    for i in range(20):
        t = BashOperator(
            task_id=f"quick_{{i:02d}}",
            bash_command="true",
            execution_timeout=dt.timedelta(seconds=15),
        )
        if prev is not None:
            prev >> t
        prev = t
"#
    );
    let p = dag_project(&dag, "", &format!("pipeline = \"p\"\n{REDIS_SINK}"));
    p.file("harness.toml", "backend = \"local\"\ntask_jobs = 4\n");
    let r = p.run(&["run", "--update"]);
    // Without the tasks' own lines.
    let all = r.all();
    let summary: Vec<&str> = all.lines().filter(|l| !l.starts_with("    ")).collect();
    let summary = summary.join("\n");
    assert_eq!(r.code, 0, "{summary}");
    assert!(summary.contains("23 tasks succeeded"), "{summary}");
    assert!(!summary.contains("timed out"), "{summary}");
}

#[test]
fn a_dag_task_line_is_shown_and_kept_whole_with_brackets_of_its_own() {
    // Airflow logs each line of a task as `<time> [info] <line> [<logger>] loc=...`; the harness
    // drops time, logger and location, and a bracketed word of the line is not the logger.
    let dag = format!(
        r#"{HEADER}
with DAG("flow", schedule=None, start_date=dt.datetime(2024, 1, 1)) as dag:
    BashOperator(task_id="shout", bash_command="echo 'spark-submit --master local[2] rows[7] of table[main]'")
"#
    );
    let p = dag_project(&dag, "", &format!("pipeline = \"p\"\n{REDIS_SINK}"));
    let r = p.run(&["run", "--update"]);
    assert_eq!(r.code, 0, "{}", r.all());
    let line = "spark-submit --master local[2] rows[7] of table[main]";
    let log = p.read(".harness/report/s/tasks/shout.log");
    assert!(log.lines().any(|l| l.trim_end().ends_with(line)), "{log}");
    assert!(
        r.all().lines().any(|l| l.trim_end().ends_with(line)),
        "{}",
        r.all()
    );
}
