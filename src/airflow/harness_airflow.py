"""The harness's driver of Airflow, run with the interpreter of the managed Airflow.

    harness_airflow.py describe DAG_FILE DAG_ID
        Parses only DAG_FILE and prints one JSON object: the DAG's tasks (id, operator,
        upstream ids, retries, execution timeout, trigger rule), or the import error with the
        file and line it points at.

    harness_airflow.py serve DAG_FILE DAG_ID TEMPLATES [--wait-load]
        Makes the migrated template database in the folder TEMPLATES when it is missing
        (`airflow db migrate`; one template per set of installed versions), loads
        Airflow and the DAG once, prints {"event": "ready", "stages": [[PART, SECONDS], ...]}
        (where its start went), and then reads requests on standard input. With --wait-load,
        the driver starts while the services do: Airflow, its database, the execution API,
        and the DAG parsed with placeholders for the services' variables and written into
        the database; then it waits for a first line on standard input, {"load": {"env":
        {...}}}, with the variables of the services, which the DAG's top-level code may read,
        and parses the DAG again with them: when that gives another DAG, it goes into the
        database again, from a clean copy. Requests come one JSON line each:
        {"spec": SPEC_FILE, "env": {...}}. For each it forks a child
        that sets the variables, starts from a fresh copy of the template database, and runs
        one DagRun of the DAG the way `airflow dags test` does (Airflow's own scheduling
        decisions: trigger rules, branching, retries), except that ready task instances run
        side by side, each in a child process of its own. Prints one JSON line per event on
        standard output: every task state change, every line a task writes, and the DagRun's
        end; then the server prints {"event": "exited", "code": N}. Airflow's own messages go
        to standard error.

The metadata database is the one AIRFLOW_HOME's configuration names; it must be migrated.
"""

import json
import os
import re
import select
import signal
import sys
import threading
import time
import traceback

OUT_LOCK = threading.Lock()
# A fork copies the lock as it is. Taken by a thread relaying a task's output at that moment, it
# would stay taken in the child for good, and the child's first event would wait forever (a task
# stuck before it starts, until its time limit): no fork happens while an event is written.
os.register_at_fork(before=OUT_LOCK.acquire, after_in_parent=OUT_LOCK.release, after_in_child=OUT_LOCK.release)
OUT = None


# Airflow's console lines: `<time>Z [<level> ] <message> [<logger>] key=value ... loc=<file:line>`.
# The logger is the bracketed name (a letter first) followed only by key=value fields: a message
# may hold brackets of its own (`--master local[2]`, `rows[2] of table[main]`).
CONSOLE_LINE = re.compile(
    r"^\d{4}-\d\d-\d\dT[\d:.]+Z \[(\w+)\s*\] (.*?)\s*\[([A-Za-z_][\w.]*)\]((?:\s+[\w.]+=.*)?)$"
)


def readable(line):
    """An Airflow console line without its time stamp, logger name and source location (the
    message and its key=value fields stay); other lines as they are."""
    m = CONSOLE_LINE.match(line)
    if not m:
        return line
    level, message, _logger, fields = m.groups()
    fields = re.sub(r"\s*\bloc=\S+", "", fields).strip()
    text = f"{message} {fields}" if fields else message
    return text if level in ("info", "debug") else f"{level.upper()}: {text}"


def emit(**event):
    line = json.dumps(event, default=str)
    with OUT_LOCK:
        OUT.write(line + "\n")
        OUT.flush()


def emit_state(ti, state):
    """A task instance's state change, as the harness reads it."""
    emit(
        event="state",
        task=ti.task_id,
        map_index=ti.map_index,
        state=state,
        try_number=ti.try_number,
        max_tries=ti.max_tries,
    )


def import_error_location(dag_file, text):
    """The last frame of a traceback that is in DAG_FILE: (line, the message)."""
    line = None
    real = os.path.realpath(dag_file)
    for m in re.finditer(r'File "([^"]+)", line (\d+)', text):
        if os.path.realpath(m.group(1)) == real:
            line = int(m.group(2))
    lines = [x for x in text.strip().splitlines() if x.strip()]
    return line, (lines[-1].strip() if lines else text.strip())


def load_dag(dag_file, dag_id):
    """The DAG, or a dict describing why it cannot be had."""
    try:
        with open(dag_file, "rb") as f:
            source = f.read()
        compile(source, dag_file, "exec")
    except SyntaxError as e:
        return None, {
            "error": f"{type(e).__name__}: {e.msg}",
            "line": e.lineno,
            "column": e.offset,
        }
    except OSError as e:
        return None, {"error": str(e), "line": None}
    os.environ.setdefault("AIRFLOW__CORE__DAGBAG_IMPORT_ERROR_TRACEBACK_DEPTH", "50")
    try:
        from airflow.dag_processing.dagbag import DagBag
    except ImportError as e:
        return None, {"missing": f"{type(e).__name__}: {e}", "line": None}

    bag = DagBag(dag_folder=dag_file, safe_mode=False)
    if bag.import_errors:
        text = next(iter(bag.import_errors.values()))
        line, message = import_error_location(dag_file, text)
        return None, {"error": message, "line": line, "traceback": text}
    dag = bag.dags.get(dag_id)
    if dag is None:
        return None, {
            "error": f"the file defines no DAG `{dag_id}`",
            "line": None,
            "dag_ids": sorted(bag.dags),
        }
    return dag, None


def seconds(delta):
    return None if delta is None else delta.total_seconds()


# What the DAG's top-level code finds, when the project loads, for each variable of the
# services' contract that is not set: addresses of no running service, on loopback (port 1), in
# the forms the harness gives at run time. At run time the DAG is parsed again with the real ones.
PLACEHOLDERS = {
    "HARNESS_POSTGRES_URL": "postgres://harness:placeholder@127.0.0.1:1/harness",
    "AIRFLOW_CONN_POSTGRES_DEFAULT": "postgres://harness:placeholder@127.0.0.1:1/harness",
    "HARNESS_REDIS_URL": "redis://127.0.0.1:1/0",
    "AIRFLOW_CONN_REDIS_DEFAULT": "redis://127.0.0.1:1/0",
    "HARNESS_HIVE_METASTORE_URI": "thrift://127.0.0.1:1",
    "AIRFLOW_CONN_METASTORE_DEFAULT": "hive-metastore://127.0.0.1:1",
    "HARNESS_HDFS_URL": "hdfs://namenode:8020",
    "HARNESS_WAREHOUSE_DIR": "hdfs://namenode:8020/user/hive/warehouse",
    "HARNESS_CLICKHOUSE_URL": "http://harness:placeholder@127.0.0.1:1",
    "AIRFLOW_CONN_CLICKHOUSE_DEFAULT": "clickhouse://harness:placeholder@127.0.0.1:1/default",
    "AIRFLOW_CONN_SPARK_DEFAULT": "spark://local%5B2%5D",
}


class WithPlaceholders(type(os.environ)):
    """`os.environ` that answers the services' variables it lacks with their placeholders
    (`os.environ[...]`, `.get`, `os.getenv`); it still holds only what is set."""

    def __getitem__(self, key):
        try:
            return super().__getitem__(key)
        except KeyError:
            if key in PLACEHOLDERS:
                return PLACEHOLDERS[key]
            raise

    def __contains__(self, key):
        return super().__contains__(key) or key in PLACEHOLDERS


def parse_with_placeholders(dag_file, dag_id):
    """[`load_dag`] with no service running: the top-level code finds [`PLACEHOLDERS`] for
    their variables."""
    plain = type(os.environ)
    os.environ.__class__ = WithPlaceholders
    try:
        return load_dag(dag_file, dag_id)
    finally:
        os.environ.__class__ = plain


def describe(dag_file, dag_id):
    dag, error = parse_with_placeholders(dag_file, dag_id)
    if error:
        OUT.write(json.dumps({"ok": False, **error}) + "\n")
        return 0
    tasks = []
    for task in dag.tasks:
        tasks.append(
            {
                "id": task.task_id,
                "operator": type(task).__name__,
                "upstream": sorted(task.upstream_task_ids),
                "retries": int(task.retries or 0),
                "timeout": seconds(task.execution_timeout),
                "trigger_rule": str(getattr(task.trigger_rule, "value", task.trigger_rule)),
            }
        )
    OUT.write(json.dumps({"ok": True, "dag_id": dag.dag_id, "tasks": tasks}) + "\n")
    return 0


class Child:
    """One task instance running in a child process."""

    def __init__(self, ti, task, deadline, env):
        self.ti_key = (ti.task_id, ti.map_index)
        self.task_id = ti.task_id
        self.try_number = ti.try_number
        self.deadline = deadline
        self.timed_out = False
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read)
            os.dup2(write, 1)
            os.dup2(write, 2)
            os.close(write)
            os.environ.update(env or {})
            code = 0
            try:
                from airflow import settings

                settings.engine.dispose(close=False)
                from airflow.sdk.definitions.dag import _run_task

                sys.stdout = os.fdopen(1, "w", buffering=1)
                sys.stderr = os.fdopen(2, "w", buffering=1)
                # Running from now on: a quick task may end before a poll sees it running.
                emit_state(ti, "running")
                _run_task(ti=ti, task=task, run_triggerer=True)
            except BaseException:
                traceback.print_exc()
                code = 1
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        os.close(write)
        self.pid = pid
        # Readable once the child has exited: the DagRun's loop sleeps until then.
        try:
            self.pidfd = os.pidfd_open(pid)
        except (AttributeError, OSError):
            self.pidfd = None
        self.relay = threading.Thread(target=self._relay, args=(read,), daemon=True)
        self.relay.start()

    def close(self):
        if self.pidfd is not None:
            os.close(self.pidfd)
            self.pidfd = None

    def _relay(self, fd):
        with os.fdopen(fd, "rb") as pipe:
            for raw in pipe:
                line = raw.decode("utf-8", "replace").rstrip("\n")
                emit(event="log", task=self.task_id, line=readable(line))

    def kill_tree(self):
        import psutil

        try:
            root = psutil.Process(self.pid)
            procs = root.children(recursive=True) + [root]
        except psutil.NoSuchProcess:
            return
        for p in procs:
            try:
                p.kill()
            except psutil.NoSuchProcess:
                pass


def wait_for_children(children, longest):
    """Sleeps until a child exits, the nearest time limit of a child passes, or `longest`
    seconds have gone by: the DagRun's loop then costs nothing while its tasks run (polling
    Airflow's database took a tenth of a core). Without pidfds, sleeps 0.1 s."""
    timeout = longest
    now = time.monotonic()
    for child in children.values():
        if child.deadline is not None and not child.timed_out:
            timeout = min(timeout, max(0.0, child.deadline - now))
    fds = [child.pidfd for child in children.values()]
    if None in fds:
        time.sleep(min(timeout, 0.1))
        return
    select.select(fds, [], [], timeout)


def only_current_api_version():
    """Narrows the execution API to the one version this install's task SDK speaks, when the
    newest version the API serves is that one. The API serves every version since Airflow 3.0,
    and its first request generates the routes of each (Cadwyn): about 2.5 s of the driver's
    start, against 0.1 s for one version. The tasks it serves here are this install's own, so
    they all send that version. Routes that only older versions have go with them. Returns a
    function that undoes it, or None when nothing was narrowed (another layout of Airflow, or a
    task SDK of another version)."""
    try:
        from airflow.api_fastapi.execution_api import routes, versions
        from airflow.sdk.api.datamodels._generated import API_VERSION
        from cadwyn import HeadVersion, Version, VersionBundle
        from cadwyn.route_generation import _DELETED_ROUTE_TAG
    except ImportError:
        return None
    original = versions.bundle
    if not original.versions or original.versions[0].value != API_VERSION:
        return None
    if original.head_version.changes:
        return None
    router = routes.execution_api_router
    every_route = list(router.routes)
    versions.bundle = VersionBundle(HeadVersion(), Version(API_VERSION))
    router.routes[:] = [
        r for r in every_route if _DELETED_ROUTE_TAG not in (getattr(r, "tags", None) or ())
    ]

    def undo():
        versions.bundle = original
        router.routes[:] = every_route

    return undo


def prepare_execution_api():
    """Builds Airflow's in-process execution API once, before any child is forked: each task
    would otherwise build it anew (seconds each). Its transport starts a thread, which a fork
    does not carry over, so each child still makes its own. The API serves only the task SDK's
    version where that can be done (`only_current_api_version`); should that API fail to
    build, the whole one is built instead."""
    undo = only_current_api_version()
    try:
        build_execution_api()
    except Exception:
        if undo is None:
            raise
        traceback.print_exc()
        print(
            "harness: the execution API of one version failed to build; building every version",
            file=sys.stderr,
        )
        undo()
        build_execution_api()


def build_execution_api():
    """Builds the in-process execution API and serves its first request (see
    `prepare_execution_api`)."""
    from airflow.api_fastapi.execution_api.app import InProcessExecutionAPI
    from airflow.sdk.execution_time import supervisor, task_runner  # noqa: F401

    import asyncio
    from contextlib import AsyncExitStack

    import httpx
    from a2wsgi import ASGIMiddleware

    api = InProcessExecutionAPI()
    app = api.app
    # The first request an app serves costs seconds (its routes are built then); serve one
    # here, on a loop thread of our own that is stopped before any fork.
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    stack = AsyncExitStack()

    async def start():
        await stack.enter_async_context(app.router.lifespan_context(app))

    try:
        asyncio.run_coroutine_threadsafe(start(), loop).result()
        with httpx.Client(
            transport=httpx.WSGITransport(app=ASGIMiddleware(app, loop=loop)),
            base_url="http://in-process.invalid./",
        ) as client:
            client.get("/health").raise_for_status()
    finally:
        asyncio.run_coroutine_threadsafe(stack.aclose(), loop).result()
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
    supervisor.in_process_api_server = lambda: api


def template_name():
    """The migrated template's name: a key of every installed distribution and its version,
    because the schema `airflow db migrate` makes is that of Airflow and its providers."""
    import hashlib
    from importlib import metadata

    parts = sorted("%s==%s" % (d.metadata["Name"], d.version) for d in metadata.distributions())
    return "template-%s.db" % hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def prepare_database(templates):
    """Starts from a fresh copy of the migrated template database in the folder `templates`;
    makes the template first. The folder may be shared by runs at the same time: the template
    is written under a temporary name of this process and renamed into place."""
    import shutil
    import subprocess

    home = os.environ["AIRFLOW_HOME"]
    db = os.path.join(home, "airflow.db")
    os.makedirs(home, exist_ok=True)
    os.makedirs(os.environ.get("TMPDIR") or home, exist_ok=True)
    name = template_name()
    template = os.path.join(templates, name)
    if os.path.exists(template):
        shutil.copyfile(template, db)
        # Its last use, which the harness's cache sweep reads: the access time (the
        # modification time stays).
        try:
            os.utime(template, ns=(time.time_ns(), os.stat(template).st_mtime_ns))
        except OSError:
            pass
        # What the `airflow` command does first, as the migration did: the home's airflow.cfg,
        # with the secret keys Airflow generates for it.
        from airflow.configuration import write_default_airflow_configuration_if_needed

        write_default_airflow_configuration_if_needed()
        return
    if os.path.exists(db):
        os.remove(db)
    subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        check=True,
        stdout=sys.stderr,
        stderr=sys.stderr,
    )
    # The harness's name for a temporary entry: swept when this process is gone.
    part = os.path.join(templates, ".harness-%d-0-%s.tmp" % (os.getpid(), name))
    shutil.copyfile(db, part)
    os.replace(part, template)


def sync_dag(dag_file):
    """Writes the DAG bundle and the DAG (only DAG_FILE, from the DAG folder that is its own
    folder) into the metadata database, as `airflow dags test` does before a run."""
    from airflow import settings
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import BundleDagBag, sync_bag_to_db

    session = settings.Session()
    manager = DagBundlesManager()
    manager.sync_bundles_to_db(session=session)
    session.commit()
    for bundle in manager.get_all_dag_bundles():
        if not bundle.is_initialized:
            bundle.initialize()
        bag = BundleDagBag(dag_folder=dag_file, bundle_path=bundle.path, bundle_name=bundle.name)
        sync_bag_to_db(bag, bundle.name, bundle.version)
        break
    session.close()


def serialized(dag):
    """The DAG as Airflow writes it into its database, as text; None when it cannot say."""
    from airflow.serialization.serialized_objects import DagSerialization

    try:
        return json.dumps(DagSerialization.serialize_dag(dag), sort_keys=True, default=str)
    except Exception:
        return None


def into_database(dag, lap):
    """Writes the DAG into the database once, keeps a copy of that (every DagRun starts from
    it) and warms up a DagRun."""
    import shutil

    from airflow import settings

    sync_dag(dag.fileloc)
    # No connection of the metadata database crosses a fork.
    settings.engine.dispose()
    home = os.environ["AIRFLOW_HOME"]
    # Every DagRun starts from this copy (`serve`).
    shutil.copyfile(os.path.join(home, "airflow.db"), os.path.join(home, "synced.db"))
    lap("DAG into the database")
    warm_up(dag)
    settings.engine.dispose()
    lap("warm up a DagRun")


def serve(dag_file, dag_id, templates, wait_load=False):
    """Loads once, then runs one DagRun per request line, each in a forked child; with
    `wait_load`, writes the DAG parsed with placeholders into the database before the line that
    gives the services' variables, and keeps it when the DAG parsed with those is the same."""
    # How long each part of the start took, for the "ready" event.
    stages = []
    mark = [time.monotonic()]

    def lap(name):
        now = time.monotonic()
        stages.append([name, round(now - mark[0], 3)])
        mark[0] = now

    # Copying the template imports Airflow's configuration, and so Airflow.
    prepare_database(templates)
    lap("import Airflow, database")
    prepare_execution_api()
    lap("execution API")
    import shutil

    from airflow import settings

    home = os.environ["AIRFLOW_HOME"]
    db = os.path.join(home, "airflow.db")
    synced = os.path.join(home, "synced.db")
    # Whether the DAG went into the database ahead of the services, and its form as it did.
    went_ahead, ahead = False, None
    if wait_load:
        # Parsed and written into the database before the services are up, with placeholders
        # for their variables: kept when the parse with the real ones gives the same DAG.
        clean = os.path.join(home, "clean.db")
        shutil.copyfile(db, clean)
        dag, error = parse_with_placeholders(dag_file, dag_id)
        lap("parse the DAG ahead")
        if not error:
            went_ahead = True
            try:
                into_database(dag, lap)
                ahead = serialized(dag)
            except Exception as e:
                print(f"harness: the DAG did not go into the database ahead: {e}", file=sys.stderr)
        line = sys.stdin.readline()
        if not line:
            return 0
        os.environ.update(json.loads(line)["load"].get("env") or {})
        lap("waiting for the services")
    dag, error = load_dag(dag_file, dag_id)
    if error:
        emit(event="import_error", error=error.get("error") or error.get("missing"), line=error.get("line"))
        return 2
    lap("parse the DAG")
    if ahead is None or ahead != serialized(dag):
        if went_ahead:
            # The services' variables made another DAG: from the clean database again.
            settings.engine.dispose()
            shutil.copyfile(clean, db + ".fresh")
            os.replace(db + ".fresh", db)
        into_database(dag, lap)
    emit(event="ready", stages=stages)
    base_env = dict(os.environ)
    for line in sys.stdin:
        if not line.strip():
            continue
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                os.environ.clear()
                os.environ.update(base_env)
                os.environ.update(request.get("env") or {})
                with open(request["spec"]) as f:
                    spec = json.load(f)
                # The fresh copy is a new file renamed into place, not the old one rewritten: a
                # process of the previous DagRun still winding down writes into the old file, not
                # into this run's. A hot journal it left would be rolled back into the copy.
                for leftover in (db + "-journal", db + "-wal", db + "-shm"):
                    if os.path.exists(leftover):
                        os.remove(leftover)
                shutil.copyfile(synced, db + ".fresh")
                os.replace(db + ".fresh", db)
                settings.engine.dispose(close=False)
                code = run(dag, spec)
            except BaseException:
                traceback.print_exc()
            finally:
                OUT.flush()
                sys.stderr.flush()
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        emit(event="exited", code=os.waitstatus_to_exitcode(status))
    return 0


def create_dag_run(dag, spec, session):
    """A manual DagRun of `dag` with the logical date and conf of `spec` (now and none when it
    gives none), as `airflow dags test` makes it; with that logical date."""
    from airflow.models.dagrun import DagRun, get_or_create_dagrun
    from airflow.sdk import timezone
    from airflow.serialization.encoders import coerce_to_core_timetable
    from airflow.serialization.serialized_objects import DagSerialization
    from airflow.utils.types import DagRunTriggeredByType, DagRunType

    scheduler_dag = DagSerialization.deserialize_dag(DagSerialization.serialize_dag(dag))
    logical_date = timezone.parse(spec["logical_date"]) if spec.get("logical_date") else timezone.utcnow()
    run_after = timezone.utcnow()
    timetable = coerce_to_core_timetable(dag.timetable)
    data_interval = timetable.infer_manual_data_interval(run_after=logical_date)
    dr = get_or_create_dagrun(
        dag=scheduler_dag,
        start_date=logical_date,
        logical_date=logical_date,
        data_interval=data_interval,
        run_after=run_after,
        run_id=DagRun.generate_run_id(
            run_type=DagRunType.MANUAL, logical_date=logical_date, run_after=run_after
        ),
        session=session,
        conf=spec.get("conf") or {},
        triggered_by=DagRunTriggeredByType.TEST,
        triggering_user_name="harness",
    )
    return dr, logical_date


def warm_up(dag):
    """Makes a DagRun of `dag` in the driver's own database, schedules it once and reads its
    task instances, then throws it away (the DagRuns start from the copy made before): the
    queries of each are compiled here once, and every DagRun forked later finds them compiled
    (SQLAlchemy keeps them with the engine) instead of compiling them again before its first
    task. A failure only leaves them cold, said on stderr."""
    from airflow import settings

    session = settings.Session()
    try:
        dr, _ = create_dag_run(dag, {}, session)
        dr.update_state(session=session)
        dr.get_task_instances(session=session)
    except Exception as e:
        print(f"harness: the DagRun's queries were not warmed up: {e}", file=sys.stderr)
    finally:
        session.rollback()
        session.close()


def run(dag, spec):
    from airflow import settings
    from airflow.sdk import DagRunState, timezone
    from airflow.utils.state import State, TaskInstanceState

    selected = spec.get("tasks")
    if selected:
        dag = dag.partial_subset(task_ids=selected, include_upstream=False, include_downstream=False)
    # `*` matches any run of characters; everything else matches itself.
    patterns = [
        re.compile(".*".join(re.escape(part) for part in p.split("*")))
        for p in spec.get("mark_success") or []
    ]
    timeouts = spec.get("timeouts") or {}
    parallel = max(1, int(spec.get("parallel") or 1))
    task_env = spec.get("task_env") or {}
    session = settings.Session()
    dr, logical_date = create_dag_run(dag, spec, session)
    emit(event="dag_run", state="running", run_id=dr.run_id, logical_date=logical_date.isoformat())

    seen = {}
    children = {}

    def report_states():
        session.expire_all()
        for ti in dr.get_task_instances(session=session):
            state = None if ti.state is None else str(getattr(ti.state, "value", ti.state))
            key = (ti.task_id, ti.map_index)
            if key in children and state in ("scheduled", "queued", "running"):
                # Said already, when its child started.
                continue
            if state is not None and seen.get(key) != (state, ti.try_number):
                seen[key] = (state, ti.try_number)
                emit_state(ti, state)

    def reap():
        for key, child in list(children.items()):
            if child.deadline is not None and not child.timed_out and time.monotonic() > child.deadline:
                child.timed_out = True
                emit(event="timed_out", task=child.task_id)
                child.kill_tree()
            try:
                pid, status = os.waitpid(child.pid, os.WNOHANG)
            except ChildProcessError:
                pid, status = child.pid, 0
            if pid == 0:
                continue
            child.relay.join(timeout=5)
            child.close()
            del children[key]
            session.expire_all()
            ti = dr.get_task_instance(child.task_id, session=session, map_index=key[1])
            waiting = (
                TaskInstanceState.UP_FOR_RETRY,
                TaskInstanceState.UP_FOR_RESCHEDULE,
                TaskInstanceState.DEFERRED,
                TaskInstanceState.SCHEDULED,
            )
            # Killed at its time limit, or ended by a crash, before Airflow saw it start: as any
            # task killed or crashed (it would otherwise be scheduled again, and again).
            ended_badly = child.timed_out or os.waitstatus_to_exitcode(status) != 0
            never_ran = ended_badly and ti is not None and ti.state == TaskInstanceState.SCHEDULED
            if ti is not None and ti.state not in State.finished and (ti.state not in waiting or never_ran):
                # Killed or crashed before Airflow recorded an end: a failure, retried as
                # Airflow retries one.
                retry = ti.try_number <= ti.max_tries
                ti.state = TaskInstanceState.UP_FOR_RETRY if retry else TaskInstanceState.FAILED
                ti.end_date = timezone.utcnow()
                session.merge(ti)
                session.commit()

    while dr.state == DagRunState.RUNNING:
        session.expire_all()
        schedulable, _ = dr.update_state(session=session)
        for s in schedulable:
            key = (s.task_id, s.map_index)
            if s.state == TaskInstanceState.UP_FOR_RETRY and seen.get(key) != ("up_for_retry", s.try_number):
                # A retry due at once is scheduled again before polling may have seen it wait
                # (its task's child not reaped yet): said here, before it is overwritten.
                seen[key] = ("up_for_retry", s.try_number)
                emit_state(s, "up_for_retry")
            if s.state != TaskInstanceState.UP_FOR_RESCHEDULE:
                s.try_number += 1
            s.state = TaskInstanceState.SCHEDULED
            s.scheduled_dttm = timezone.utcnow()
        session.commit()
        report_states()
        tis = dr.get_task_instances(session=session)
        for ti in tis:
            key = (ti.task_id, ti.map_index)
            if ti.state != TaskInstanceState.SCHEDULED or key in children:
                continue
            if any(p.fullmatch(ti.task_id) for p in patterns):
                ti.set_state(TaskInstanceState.SUCCESS, session=session)
                session.commit()
                emit(event="log", task=ti.task_id, line="marked success without running (mark_success)")
                continue
            if len(children) >= parallel:
                continue
            limit = timeouts.get(ti.task_id)
            deadline = time.monotonic() + limit if limit else None
            # Queued is a state the child passes through too fast to be seen by polling.
            seen[key] = ("queued", ti.try_number)
            emit_state(ti, "queued")
            children[key] = Child(ti, dag.task_dict[ti.task_id], deadline, task_env.get(ti.task_id))
        report_states()
        if children:
            wait_for_children(children, 1.0)
            reap()
            report_states()
        elif dr.state == DagRunState.RUNNING and not schedulable:
            if not any(ti.state == TaskInstanceState.SCHEDULED for ti in tis):
                time.sleep(0.2)
        session.expire_all()
        dr = session.merge(dr)
        session.refresh(dr)
    report_states()
    emit(event="dag_run", state=str(dr.state.value if hasattr(dr.state, "value") else dr.state))
    return 0 if dr.state == DagRunState.SUCCESS else 1


def terminated(*_):
    """SIGTERM: every process this one started goes first, also those that left the process
    group (a BashOperator's command runs in a session of its own)."""
    try:
        import psutil

        for p in psutil.Process().children(recursive=True):
            try:
                p.kill()
            except psutil.Error:
                pass
    finally:
        os._exit(143)


def main(argv):
    global OUT
    OUT = os.fdopen(os.dup(1), "w")
    # Airflow's own messages must not mix with the events.
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    signal.signal(signal.SIGTERM, terminated)
    if len(argv) >= 3 and argv[0] == "describe":
        return describe(argv[1], argv[2])
    if len(argv) in (4, 5) and argv[0] == "serve" and argv[4:] in ([], ["--wait-load"]):
        return serve(argv[1], argv[2], argv[3], wait_load=argv[4:] == ["--wait-load"])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
