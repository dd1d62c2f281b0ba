//! Every socket the services of a run listen on is bound to loopback: a task walks up to the
//! `harness` process, collects its whole tree of descendants and checks each of their listening
//! TCP sockets (from /proc/net/tcp and tcp6, mapped to processes through /proc/<pid>/fd).

use crate::support::{Project, find_program, require_servers};

/// Lists the listening sockets of the harness's process tree; exits 1 when one is bound to an
/// address other than 127.0.0.1 or ::1. With `READY` set, waits for that file first (a Spark job
/// running beside it writes it once its driver is up) and writes `DONE` when finished.
const LISTENERS: &str = r#"
import os, sys, time

def ppid(pid):
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[1])

def comm(pid):
    with open(f"/proc/{pid}/comm") as f:
        return f.read().strip()

def harness_pid():
    pid = os.getpid()
    while pid > 1:
        if comm(pid) == "harness":
            return pid
        pid = ppid(pid)
    sys.exit("no `harness` process above this task")

def descendants(root):
    children = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                children.setdefault(ppid(int(d)), []).append(int(d))
            except (OSError, ValueError, IndexError):
                pass
    out, todo = set(), [root]
    while todo:
        p = todo.pop()
        out.add(p)
        todo.extend(children.get(p, []))
    return out

def address(hexaddr):
    raw = bytes.fromhex(hexaddr)
    if len(raw) == 4:
        return ".".join(str(b) for b in reversed(raw))
    # IPv6: four 32-bit words, each in host (little-endian) order.
    words = b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4))
    if words[:12] == b"\0" * 10 + b"\xff\xff":
        return "::ffff:" + ".".join(str(b) for b in words[12:])
    import ipaddress
    return str(ipaddress.IPv6Address(words))

def listening():
    found = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            next(f)
            for line in f:
                cols = line.split()
                if cols[3] != "0A":  # LISTEN
                    continue
                host, port = cols[1].split(":")
                found[cols[9]] = (address(host), int(port, 16))
    return found

ready = os.environ.get("READY")
if ready:
    deadline = time.time() + 300
    while not os.path.exists(ready):
        if time.time() > deadline:
            sys.exit("the Spark job never said it was up")
        time.sleep(0.2)

sockets = listening()
bad = 0
seen = 0
for pid in sorted(descendants(harness_pid())):
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        continue
    inodes = set()
    for fd in fds:
        try:
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if link.startswith("socket:["):
            inodes.add(link[8:-1])
    for inode in sorted(inodes):
        if inode in sockets:
            host, port = sockets[inode]
            ok = host in ("127.0.0.1", "::1", "::ffff:127.0.0.1")
            seen += 1
            bad += not ok
            print(f"listener {'ok' if ok else 'BAD'} {host} port {port} pid {pid} {comm(pid)}")
print(f"listeners: {seen}, not on loopback: {bad}")
if ready:
    open(os.environ["DONE"], "w").close()
sys.exit(1 if bad else 0)
"#;

/// A Spark application that stays up (driver, block manager and Py4J listening) until the
/// listener check is done.
const SPARK_JOB: &str = r#"
import os, time
from pyspark.sql import SparkSession

spark = SparkSession.builder.enableHiveSupport().getOrCreate()
print("rows", spark.table("raw.items").count())
open(os.environ["READY"], "w").close()
deadline = time.time() + 300
while not os.path.exists(os.environ["DONE"]) and time.time() < deadline:
    time.sleep(0.2)
"#;

/// The number of `service ... ready` lines and the `listeners: N` line of a run.
fn counts(stderr: &str) -> (usize, usize) {
    let services = stderr
        .lines()
        .filter(|l| l.trim_start().starts_with("service ") && l.contains(" ready at "))
        .count();
    let listeners = stderr
        .lines()
        .find_map(|l| l.split("listeners: ").nth(1))
        .and_then(|r| r.split(',').next())
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0);
    (services, listeners)
}

#[test]
fn every_service_postgres_redis_clickhouse_hive_and_spark_listens_on_loopback_only() {
    require_servers();
    assert!(
        find_program("clickhouse-server").is_some()
            || std::path::Path::new("/usr/sbin/clickhouse-server").is_file(),
        "clickhouse-server is missing: run scripts/setup.sh"
    );
    let p = Project::example_venv();
    // The metastore keeps its tables in the environment's PostgreSQL: its JDBC login is
    // exercised too.
    p.file(
        "harness.toml",
        "backend = \"local\"\ntask_jobs = 2\n[services.hive]\ndatabase = \"postgres\"\n",
    )
    .file(
        "pipelines/net/pipeline.toml",
        &format!(
            r#"
services = ["postgres", "redis", "clickhouse", "hive", "hdfs", "spark"]

[env]
READY = "{0}/spark-up"
DONE = "{0}/listeners-done"

[tasks.job]
kind = "spark"
script = "job.py"
driver_memory = "512m"

[tasks.listeners]
kind = "python"
script = "listeners.py"
"#,
            p.path().display()
        ),
    )
    .file("pipelines/net/job.py", SPARK_JOB)
    .file("pipelines/net/listeners.py", LISTENERS)
    .file("fixtures/items.csv", "id,name\n1,a\n2,b\n")
    .file(
        "scenarios/s/scenario.toml",
        r#"
pipeline = "net"

[[seed]]
service = "hive"
table = "raw.items"
csv = "items.csv"
schema = "id BIGINT, name STRING"

[[seed]]
service = "postgres"
sql = "schema.sql"

[[sink]]
name = "keys"
service = "redis"
keys = "*"
"#,
    )
    .file("scenarios/s/schema.sql", "CREATE TABLE t (x int);\n");
    let r = p.run(&["run", "--update"]);
    let (services, listeners) = counts(&r.stderr);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(
        !r.stderr.contains("listener BAD"),
        "a listener not on loopback:\n{}",
        r.stderr
    );
    assert!(services >= 6, "services started: {services}\n{}", r.stderr);
    assert!(
        listeners >= services,
        "the check saw {listeners} listeners for {services} services: it cannot have looked\n{}",
        r.stderr
    );
    for what in ["postgres", "redis-server", "clickhouse", "java"] {
        assert!(
            r.stderr
                .lines()
                .any(|l| l.contains("listener ok ") && l.contains(what)),
            "no listener of {what} seen:\n{}",
            r.stderr
        );
    }
}

#[test]
fn the_listener_check_fails_on_a_socket_bound_to_every_interface() {
    require_servers();
    let p = Project::example_venv();
    p.file(
        "pipelines/net/pipeline.toml",
        r#"
services = ["redis"]

[tasks.wide]
kind = "command"
argv = ["python3", "-c", "import socket, subprocess, sys; s = socket.socket(); s.bind(('0.0.0.0', 0)); s.listen(); sys.exit(subprocess.call([sys.argv[1], 'listeners.py']))", "../../.venv/bin/python"]
"#,
    )
    .file("pipelines/net/listeners.py", LISTENERS)
    .file(
        "scenarios/s/scenario.toml",
        "pipeline = \"net\"\n[[sink]]\nname = \"keys\"\nservice = \"redis\"\nkeys = \"*\"\n",
    );
    let r = p.run(&["run", "--update"]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(r.stderr.contains("listener BAD 0.0.0.0"), "{}", r.stderr);
    assert!(r.stderr.contains("listener ok 127.0.0.1"), "{}", r.stderr);
}
