//! `harness capture` against real services: a scenario seeds PostgreSQL, Redis and Hive and its
//! task captures them (masking a column, a hash field and some keys); the captured scenario
//! seeds what was captured and captures it again, and so on once more. The fixtures come back
//! byte for byte, and the two captured scenarios' snapshots are the same. Plus the errors that
//! need no service: a bad flag or rule is exit 2, a server that does not answer exit 3.

use std::path::Path;

use sha2::{Digest, Sha256};

use crate::support::{Project, require_servers};

const SCHEMA: &str = r#"
CREATE TABLE t (
  id integer PRIMARY KEY,
  name text,
  email text NOT NULL,
  note varchar(20),
  amount numeric(10,3),
  at_local timestamp,
  at_zone timestamptz,
  raw bytea,
  score double precision,
  tags text[]
);
INSERT INTO t VALUES
  (1, 'Ann', 'ann@example.com', '', 1.5, '2024-05-01 10:00:00', '2024-05-01 10:00:00+02', '\x00ff10', 0.1, '{a,"b c"}'),
  (2, NULL, 'bob@example.com', NULL, NULL, NULL, NULL, NULL, NULL, NULL),
  (3, 'Zoë 東京 🚀', 'zoe@example.com', E'it''s "q"\nnew', -0.001, '1999-12-31 23:59:59.999999', '2000-01-01 00:00:00.5-05', '\x', 1e300, '{}');
CREATE TABLE plain (k text, v int);
INSERT INTO plain VALUES ('b', 2), ('a', 1), ('a', 1), (NULL, NULL), ('', 0);
"#;

const KEYS: &str = r#"{
  "config:version": "42",
  "empty": "",
  "user:1": {"type": "hash", "value": {"name": "Ann", "email": "ann@example.com"}},
  "queue": {"type": "list", "value": ["a", "b", "a"]},
  "tags": {"type": "set", "value": ["y", "x"]},
  "top": {"type": "zset", "value": {"item:1": 0.5, "item:2": 1.25, "item:3": 1e-7}},
  "unicode:ключ": "значение ✓",
  "session:abc": {"type": "string", "value": "token", "ttl": 3600},
  "cache:x": {"type": "hash", "value": {"a": "1"}, "ttl": 86400}
}
"#;

const VIEWS: &str = r#"{"id": 1, "name": "Ann", "amount": 1.5, "at": "2024-05-01T10:00:00.123456Z", "raw": "AP8Q", "dt": "2024-05-01"}
{"id": 2, "name": "", "amount": null, "at": null, "dt": "2024-05-01"}
{"id": 3, "name": null, "amount": -0.001, "at": "1999-12-31T23:59:59Z", "dt": "2024-05-02"}
{"id": 4, "name": "Zoë 東京 🚀", "amount": 1234567.125, "at": "2024-05-02T00:00:00Z", "dt": "2024-05-02"}
"#;

/// The capture command a task runs, into `$TARGET` (a shell word).
fn capture_argv(target: &str, masks: &str) -> String {
    format!(
        "[\"sh\", \"-c\", \"exec \\\"$HARNESS_BIN\\\" -C \\\"$PROJECT\\\" capture {target} --pipeline recapture --force --table postgres:public.t --query 'postgres:public.plain=SELECT * FROM plain' --table hive:raw.views --keys '*' {masks}\"]"
    )
}

fn fixtures(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .expect("captured folder")
        .flatten()
        .filter(|e| e.path().is_file())
        .map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let mut bytes = std::fs::read(e.path()).expect("read");
            if name == "redis.json" {
                // The time left to live is the one thing that moves between two captures.
                let text = String::from_utf8(bytes).expect("utf-8");
                let re = regex::Regex::new(r#""ttl":(\d+)"#).expect("re");
                for c in re.captures_iter(&text) {
                    let ttl: u64 = c[1].parse().expect("ttl");
                    assert!((3000..=86_400).contains(&ttl), "{text}");
                }
                bytes = re.replace_all(&text, "\"ttl\":N").into_owned().into_bytes();
            }
            if name == "scenario.toml" {
                let text = String::from_utf8(bytes).expect("utf-8");
                bytes = text
                    .lines()
                    .filter(|l| !l.starts_with("# Masked:"))
                    .map(|l| format!("{l}\n"))
                    .collect::<String>()
                    .into_bytes();
            }
            (name, bytes)
        })
        .collect();
    out.sort();
    out
}

/// The fixtures of two captures are the same, file by file.
fn same_files(a: &Path, b: &Path) {
    let (fa, fb) = (fixtures(a), fixtures(b));
    let names = |f: &[(String, Vec<u8>)]| f.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
    assert_eq!(names(&fa), names(&fb));
    for ((name, x), (_, y)) in fa.iter().zip(&fb) {
        if x != y {
            let at = x.iter().zip(y).position(|(p, q)| p != q);
            panic!(
                "{name} differs between {} and {} ({} and {} bytes, first at {at:?}):\n{}\n---\n{}",
                a.display(),
                b.display(),
                x.len(),
                y.len(),
                String::from_utf8_lossy(x),
                String::from_utf8_lossy(y)
            );
        }
    }
}

fn goldens(dir: &Path) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = std::fs::read_dir(dir.join("golden"))
        .expect("goldens")
        .flatten()
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read_to_string(e.path()).expect("read"),
            )
        })
        .collect();
    out.sort();
    out
}

/// The pipeline `[env]` that lets a task run this harness on this project.
fn harness_env(p: &Project) -> String {
    format!(
        "[env]\nHARNESS_BIN = \"{}\"\nPROJECT = \"{}\"\n",
        env!("CARGO_BIN_EXE_harness"),
        p.path().display()
    )
}

fn has_all(text: &str, parts: &[&str]) {
    for part in parts {
        assert!(text.contains(part), "no {part:?} in:\n{text}");
    }
}

fn sha16(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>()[..16]
        .to_string()
}

#[test]
fn a_capture_seeded_back_captures_the_same_bytes_and_snapshots() {
    require_servers();
    let p = Project::example_venv();
    let env = harness_env(&p);
    let masks = "--mask postgres:public.t.email=hash --mask 'redis:user:*#email=hash' --mask 'redis:session:*=drop'";
    p.file(
        "pipelines/first/pipeline.toml",
        &format!(
            "services = [\"postgres\", \"redis\", \"spark\"]\n{env}\n[tasks.capture]\nkind = \"command\"\nargv = {}\n\n\
             [tasks.unknown_table]\nkind = \"command\"\nargv = [\"sh\", \"-c\", \"\\\"$HARNESS_BIN\\\" -C \\\"$PROJECT\\\" capture nope --pipeline recapture --table postgres:public.missing; test $? -eq 2\"]\n",
            capture_argv("cap", masks)
        ),
    )
    .file(
        "pipelines/recapture/pipeline.toml",
        &format!(
            "services = [\"postgres\", \"redis\", \"spark\"]\n{env}\n[tasks.capture]\nkind = \"command\"\nargv = {}\n",
            capture_argv("\\\"${HARNESS_SCENARIO}_again\\\"", "")
        ),
    )
    .file("scenarios/source/schema.sql", SCHEMA)
    .file("scenarios/source/keys.json", KEYS)
    .file("scenarios/source/views.jsonl", VIEWS)
    .file(
        "scenarios/source/scenario.toml",
        "pipeline = \"first\"\n\n[[seed]]\nservice = \"postgres\"\nsql = \"schema.sql\"\n\n\
         [[seed]]\nservice = \"redis\"\njson = \"keys.json\"\n\n\
         [[seed]]\nservice = \"hive\"\ntable = \"raw.views\"\njsonl = \"views.jsonl\"\n\
         schema = \"id BIGINT, name STRING, amount DECIMAL(10,3), at TIMESTAMP, raw BINARY, dt STRING\"\n\
         partition_by = [\"dt\"]\n\n\
         [[sink]]\nname = \"plain\"\nservice = \"postgres\"\ntable = \"public.plain\"\n",
    );

    let r = p.run(&["run", "source", "--update"]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(
        r.stderr
            .contains("captured 3 rows of postgres table public.t"),
        "{}",
        r.stderr
    );
    let cap = p.path().join("scenarios/cap");
    let sql = p.read("scenarios/cap/postgres.public.t.sql");
    assert!(!sql.contains("@example.com"), "{sql}");
    assert!(sql.contains(&sha16("ann@example.com")), "{sql}");
    has_all(
        &sql,
        &[
            "\"amount\" numeric(10,3)",
            "\"at_zone\" timestamp with time zone",
            "'\\x00ff10'",
            "'Zoë 東京 🚀'",
            "NULL",
        ],
    );
    has_all(
        &p.read("scenarios/cap/hive.raw.views.jsonl"),
        &[
            "\"amount\":1234567.125,",
            "\"at\":\"2024-05-01T10:00:00.123456Z\"",
            "\"raw\":\"AP8Q\"",
            "\"name\":\"\",",
            "\"name\":null,",
        ],
    );
    let keys = p.read("scenarios/cap/redis.json");
    assert!(
        !keys.contains("session:abc") && !keys.contains("ann@example.com"),
        "{keys}"
    );
    assert!(keys.contains(&sha16("ann@example.com")), "{keys}");
    let toml = p.read("scenarios/cap/scenario.toml");
    has_all(
        &toml,
        &[
            "# Masked: postgres:public.t.email=hash:16",
            "pipeline = \"recapture\"",
            "partition_by = [\"dt\"]",
        ],
    );

    // Seed the capture, capture it again (without masks), twice over.
    let r = p.run(&["run", "cap", "--update"]);
    assert_eq!(r.code, 0, "{}", r.all());
    let r = p.run(&["run", "cap_again", "--update"]);
    assert_eq!(r.code, 0, "{}", r.all());
    let again = p.path().join("scenarios/cap_again");
    let twice = p.path().join("scenarios/cap_again_again");
    same_files(&cap, &again);
    same_files(&again, &twice);
    let (g1, g2) = (goldens(&cap), goldens(&again));
    assert_eq!(g1.len(), 4, "{g1:?}");
    assert_eq!(g1, g2);
    let hive = &g1
        .iter()
        .find(|(n, _)| n == "hive_raw_views.snap")
        .expect("hive sink")
        .1;
    has_all(
        hive,
        &[
            "amount=1234567.125",
            "name=\"\"",
            "name=NULL",
            "\"Zoë 東京 🚀\"",
            "2024-05-01 10:00:00.123456",
            "raw=\"00ff10\"",
        ],
    );
}

#[test]
fn bad_capture_input_is_exit_2_and_an_unreachable_server_exit_3() {
    let p = Project::new();
    p.file(
        "pipelines/p/pipeline.toml",
        "[tasks.t]\nkind = \"command\"\nargv = [\"true\"]\n",
    )
    .file("scenarios/taken/scenario.toml", "pipeline = \"p\"\n");
    let run = |args: &[&str]| {
        let mut all = vec!["capture"];
        all.extend_from_slice(args);
        let mut cmd = p.command(&all);
        for v in [
            "HARNESS_POSTGRES_URL",
            "HARNESS_REDIS_URL",
            "HARNESS_HIVE_METASTORE_URI",
            "HARNESS_WAREHOUSE_DIR",
            "SPARK_CONF_DIR",
        ] {
            cmd.env_remove(v);
        }
        let out = cmd.output().expect("run");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    // Arguments split at spaces, and what the error says.
    for (args, says) in [
        (
            "c --pipeline q --keys *",
            "--pipeline q: no such pipeline in pipelines",
        ),
        (
            "c --pipeline p --table postgres:t --mask postgres:t.c=scramble",
            "--mask postgres:t.c=scramble: `postgres:t.c=scramble`: the rule is `drop`, `fixed:VALUE`, `hash` or `hash:N`",
        ),
        (
            "c --pipeline p --table postgres:t --mask postgres:u.c=drop",
            "--mask postgres:u.c=drop: postgres:u is not captured",
        ),
        (
            "c --pipeline p --table postgres:t",
            "no server is given: --postgres URL (or HARNESS_POSTGRES_URL)",
        ),
        (
            "taken --pipeline p --keys *",
            "scenarios/taken exists: give --force to replace it",
        ),
        (
            "c --pipeline p --table mysql:t",
            "--table mysql:t: `mysql` is not a kind with tables",
        ),
        (
            "c --pipeline p --table postgres:t --postgres postgres://u:pw@h:notaport/db",
            "--postgres: not a PostgreSQL URL",
        ),
        ("c --pipeline p --sample 2 --keys *", "is not a fraction"),
        ("c --pipeline p", "nothing to capture"),
    ] {
        let args: Vec<&str> = args.split(' ').collect();
        let (code, stderr) = run(&args);
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
    let (code, stderr) = run(&[
        "c",
        "--pipeline",
        "p",
        "--table",
        "postgres:t",
        "--postgres",
        "postgres://u:capture-secret-77@127.0.0.1:1/db",
    ]);
    assert_eq!(code, 3, "{stderr}");
    assert!(
        stderr.contains("postgres at 127.0.0.1:1: cannot connect"),
        "{stderr}"
    );
    assert!(!stderr.contains("capture-secret-77"), "{stderr}");
    let (code, stderr) = run(&[
        "c",
        "--pipeline",
        "p",
        "--keys",
        "*",
        "--redis",
        "redis://127.0.0.1:1/0",
    ]);
    assert_eq!(code, 3, "{stderr}");
    assert!(!p.exists("scenarios/c"));
}

#[test]
fn a_limit_takes_the_first_rows_by_key_and_a_sample_is_the_same_every_time() {
    require_servers();
    let p = Project::new();
    let capture = |name: &str, rest: &str| {
        format!(
            "[tasks.{name}]\nkind = \"command\"\nargv = [\"sh\", \"-c\", \"exec \\\"$HARNESS_BIN\\\" -C \\\"$PROJECT\\\" capture {name} --pipeline grab {rest}\"]\n\n"
        )
    };
    let mut pipeline = format!("services = [\"postgres\"]\n{}\n", harness_env(&p));
    for (name, rest) in [
        (
            "limited",
            "--table postgres:public.n --limit 3 --mask postgres:public.n.secret=drop --mask postgres:public.n.label=fixed:x",
        ),
        (
            "sampled",
            "--table postgres:public.n --sample 0.5 --seed s1",
        ),
        ("sampled_again", "--spec \\\"$PROJECT/capture.toml\\\""),
        (
            "other_seed",
            "--table postgres:public.n --sample 0.5 --seed s2",
        ),
    ] {
        pipeline.push_str(&capture(name, rest));
    }
    p.file("pipelines/grab/pipeline.toml", &pipeline)
        .file(
            "capture.toml",
            "tables = [\"postgres:public.n\"]\nsample = 0.5\nseed = \"s1\"\n",
        )
        .file(
            "scenarios/source/schema.sql",
            "CREATE TABLE n (id integer PRIMARY KEY, label text, secret text);\n\
             INSERT INTO n SELECT i, CASE WHEN i = 2 THEN NULL ELSE 'l' || i END, 's' || i FROM generate_series(1, 40) i;\n",
        )
        .file(
            "scenarios/source/scenario.toml",
            "pipeline = \"grab\"\n[[seed]]\nservice = \"postgres\"\nsql = \"schema.sql\"\n\
             [[sink]]\nname = \"n\"\nservice = \"postgres\"\ntable = \"public.n\"\n",
        );
    let r = p.run(&["run", "source", "--update"]);
    assert_eq!(r.code, 0, "{}", r.all());
    let limited = p.read("scenarios/limited/postgres.public.n.sql");
    has_all(
        &limited,
        &[
            "CREATE TABLE \"public\".\"n\" (\n  \"id\" integer NOT NULL,\n  \"label\" text,\n  PRIMARY KEY (\"id\")\n);\n",
            "VALUES\n('1', 'x'),\n('2', NULL),\n('3', 'x');\n",
        ],
    );
    assert!(!limited.contains("secret"), "{limited}");
    let sampled = p.read("scenarios/sampled/postgres.public.n.sql");
    assert_eq!(
        sampled,
        p.read("scenarios/sampled_again/postgres.public.n.sql")
    );
    assert_ne!(
        sampled,
        p.read("scenarios/other_seed/postgres.public.n.sql")
    );
    let rows = sampled.lines().filter(|l| l.starts_with("('")).count();
    assert!((5..=35).contains(&rows), "{sampled}");
}

const SHOP: &str = r#"CREATE DATABASE shop;
CREATE TABLE shop.items (id UInt64, name Nullable(String), email String, price Decimal(9, 2), at DateTime, day Date, score Float64, tags Array(String)) ENGINE = MergeTree ORDER BY id;
INSERT INTO shop.items VALUES
(1, 'Ann', 'ann@example.com', 9.50, '2024-05-01 10:00:00', '2024-05-01', 0.1, ['a', 'b c']),
(2, NULL, 'bob@example.com', 0.00, '2000-01-01 00:00:00', '2000-01-02', 1e300, []),
(3, '', 'zoe@example.com', -1.25, '2024-05-02 00:00:01', '2024-05-02', -0.5, ['it\'s']),
(4, 'Zoë 東京 🚀 it\'s \\ "q"\nnew', 'x@example.com', 1234567.89, '2024-05-03 00:00:00', '2024-05-03', 2.5, ['x']);
"#;

#[test]
fn a_clickhouse_capture_seeded_back_captures_the_same_bytes_and_snapshots() {
    require_servers();
    let p = Project::new();
    let env = harness_env(&p);
    let task = |target: &str, masks: &str| {
        format!(
            "services = [\"clickhouse\"]\n{env}\n[tasks.capture]\nkind = \"command\"\nargv = [\"sh\", \"-c\", \"exec \\\"$HARNESS_BIN\\\" -C \\\"$PROJECT\\\" capture {target} --pipeline again --force --table clickhouse:shop.items {masks}\"]\n"
        )
    };
    p.file(
        "pipelines/first/pipeline.toml",
        &task("chcap", "--mask clickhouse:shop.items.email=hash"),
    )
    .file(
        "pipelines/again/pipeline.toml",
        &task("\\\"${HARNESS_SCENARIO}_again\\\"", ""),
    )
    .file("scenarios/source/shop.sql", SHOP)
    .file(
        "scenarios/source/scenario.toml",
        "pipeline = \"first\"\n[[seed]]\nservice = \"clickhouse\"\nsql = \"shop.sql\"\n\
         [[sink]]\nname = \"items\"\nservice = \"clickhouse\"\ntable = \"shop.items\"\n",
    );
    let r = p.run(&["run", "source", "--update"]);
    assert_eq!(r.code, 0, "{}", r.all());
    let sql = p.read("scenarios/chcap/clickhouse.shop.items.sql");
    has_all(
        &sql,
        &[
            "CREATE TABLE `shop`.`items` (`id` UInt64, `name` Nullable(String), `email` String, `price` Decimal(9, 2),",
            "ENGINE = MergeTree ORDER BY id",
            &format!(
                "(1, 'Ann', '{}', 9.50, '2024-05-01 10:00:00', '2024-05-01', 0.1, ['a','b c'])",
                sha16("ann@example.com")
            ),
            "(2, NULL, ",
            "(3, '', ",
            "'Zoë 東京 🚀 it\\'s \\\\ \"q\"\\nnew'",
            "1e300",
        ],
    );
    assert!(!sql.contains("@example.com"), "{sql}");
    let r = p.run(&["run", "chcap", "--update"]);
    assert_eq!(r.code, 0, "{}", r.all());
    let r = p.run(&["run", "chcap_again", "--update"]);
    assert_eq!(r.code, 0, "{}", r.all());
    let dirs =
        ["chcap", "chcap_again", "chcap_again_again"].map(|d| p.path().join("scenarios").join(d));
    same_files(&dirs[0], &dirs[1]);
    same_files(&dirs[1], &dirs[2]);
    assert_eq!(goldens(&dirs[0]), goldens(&dirs[1]));
}
