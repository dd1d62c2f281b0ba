//! Bench 5, seeding: the same rows into PostgreSQL (CSV) and Redis (JSON) by the harness, against
//! `psql \copy` and `redis-cli --pipe`.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use super::{
    Bench, Capture, Ctx, Figure, Goal, Rng, Unit, human, measure_child, program, write_file,
};
use crate::backend::{BackendKind, Environment};
use crate::config::ServiceKind;
use crate::config::fixture::RedisFixture;
use crate::events::Events;
use crate::services::postgres::PostgresEndpoint;
use crate::services::redis::RedisEndpoint;

/// Rounds of each seeding bench (the best round counts, for the harness and the baseline alike).
const SEED_ROUNDS: usize = 2;

const SEED_COLUMNS: &str = "id,user_id,item_id,score,title";

fn seed_csv_text(rows: usize) -> String {
    let mut rng = Rng::new(0xc5c5);
    let mut out = String::with_capacity(rows * 48);
    out.push_str(SEED_COLUMNS);
    out.push('\n');
    for id in 0..rows {
        let item = rng.below(50_000);
        let _ = writeln!(
            out,
            "{id},{},{item},{:.6},\"item {item}, \"\"{}\"\"\"",
            rng.below(100_000),
            rng.below(1_000_000) as f64 / 1e5,
            rng.below(1000)
        );
    }
    out
}

/// Redis keys as a fixture (JSON) and as `redis-cli --pipe` input (RESP): one key in ten a hash.
fn seed_redis_texts(rows: usize) -> (String, Vec<u8>) {
    let mut json = String::with_capacity(rows * 40);
    let mut resp = Vec::with_capacity(rows * 60);
    let bulk = |out: &mut Vec<u8>, s: &str| {
        let _ = write!(out, "${}\r\n{s}\r\n", s.len());
    };
    json.push('{');
    for i in 0..rows {
        let key = format!("bench:{i}");
        if i > 0 {
            json.push(',');
        }
        if i % 10 == 0 {
            let _ = write!(
                json,
                "\"{key}\":{{\"type\":\"hash\",\"value\":{{\"a\":\"{i}\",\"b\":\"x\"}}}}"
            );
            resp.extend_from_slice(b"*6\r\n");
            for part in ["HSET", &key, "a", &i.to_string(), "b", "x"] {
                bulk(&mut resp, part);
            }
        } else {
            let value = format!("value {i}");
            let _ = write!(json, "\"{key}\":\"{value}\"");
            resp.extend_from_slice(b"*3\r\n");
            for part in ["SET", &key, &value] {
                bulk(&mut resp, part);
            }
        }
    }
    json.push('}');
    (json, resp)
}

pub(super) fn seeding(bench: &Bench, ctx: &Ctx) -> Result<Vec<Figure>, String> {
    let dir = ctx.folder("seed")?;
    let psql = program("psql", &ctx.settings)?;
    let redis_cli = program("redis-cli", &ctx.settings)?;
    let csv = dir.join("rows.csv");
    write_file(&csv, &seed_csv_text(ctx.rows))?;
    let (json, resp) = seed_redis_texts(ctx.rows);
    let json_path = dir.join("keys.json");
    write_file(&json_path, &json)?;
    drop(json);
    let resp_path = dir.join("keys.resp");
    std::fs::write(&resp_path, resp).map_err(|e| e.to_string())?;

    let env_dir = crate::ledger::make_dir(&std::env::temp_dir(), "harness-env-")
        .map_err(|e| format!("cannot create a temporary folder: {e}"))?;
    let (events, _rx) = Events::channel();
    let env = ctx
        .rt
        .block_on(Environment::start(
            &[ServiceKind::Postgres, ServiceKind::Redis],
            &ctx.settings,
            BackendKind::Local,
            &env_dir,
            &events,
        ))
        .map_err(|e| e.to_string())?;
    let result = (|| {
        let pg = &env
            .get::<crate::services::postgres::PostgresRunning>()
            .ok_or("postgres did not start")?
            .endpoint;
        let redis = &env
            .get::<crate::services::redis::RedisRunning>()
            .ok_or("redis did not start")?
            .endpoint;
        Ok::<_, String>(vec![
            seed_postgres(bench, ctx, pg, &psql, &csv)?,
            seed_redis(bench, ctx, redis, &redis_cli, &json_path, &resp_path)?,
        ])
    })();
    ctx.rt.block_on(env.stop());
    result
}

fn seed_postgres(
    bench: &Bench,
    ctx: &Ctx,
    pg: &PostgresEndpoint,
    psql: &Path,
    csv: &Path,
) -> Result<Figure, String> {
    let columns: Vec<String> = SEED_COLUMNS.split(',').map(String::from).collect();
    let sql = |text: String| {
        ctx.rt.block_on(async {
            let c = pg.connect_to(None).await.map_err(|e| e.to_string())?;
            c.batch_execute(&text).await.map_err(|e| e.to_string())?;
            let n: i64 = c
                .query_one("SELECT count(*) FROM seeded", &[])
                .await
                .map_err(|e| e.to_string())?
                .get(0);
            Ok::<_, String>(n as usize)
        })
    };
    sql("DROP TABLE IF EXISTS seeded; CREATE TABLE seeded (id int8, user_id int8, item_id int8, score float8, title text)".into())?;
    let (mut ours, mut theirs) = (f64::INFINITY, f64::INFINITY);
    for _ in 0..SEED_ROUNDS {
        sql("TRUNCATE seeded".into())?;
        let t0 = Instant::now();
        ctx.rt
            .block_on(pg.seed_csv("seeded", csv, csv, &columns, b',', None))
            .map_err(|e| e.to_string())?;
        ours = ours.min(t0.elapsed().as_secs_f64());
        if sql("SELECT 1".into())? != ctx.rows {
            return Err("the harness's COPY did not load every row".into());
        }
        sql("TRUNCATE seeded".into())?;
        theirs = theirs.min(timed_baseline(
            Command::new(psql)
                .arg(format!(
                    "postgres://{}@{}:{}/{}",
                    pg.user, pg.host, pg.port, pg.database
                ))
                // The password goes by the environment, not the command line (where `ps` shows it).
                .env("PGPASSWORD", &pg.password)
                .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-c"])
                .arg(format!(
                    "\\copy seeded ({SEED_COLUMNS}) FROM '{}' WITH (FORMAT csv, HEADER true)",
                    csv.display()
                ))
                .stdin(Stdio::null()),
            "psql \\copy",
        )?);
        if sql("SELECT 1".into())? != ctx.rows {
            return Err("psql \\copy did not load every row".into());
        }
    }
    Ok(seed_figure(
        bench,
        ctx,
        (
            "postgres",
            format!("PostgreSQL CSV seed (COPY), {} rows", ctx.rows),
        ),
        (ours, theirs),
        format!("psql \\copy of the same CSV into the same server (best of {SEED_ROUNDS} each)"),
    ))
}

fn seed_redis(
    bench: &Bench,
    ctx: &Ctx,
    redis: &RedisEndpoint,
    redis_cli: &Path,
    json_path: &Path,
    resp_path: &Path,
) -> Result<Figure, String> {
    let keys = || {
        ctx.rt.block_on(async {
            let mut c = redis.connect().await.map_err(|e| e.to_string())?;
            redis::cmd("DBSIZE")
                .query_async::<usize>(&mut c)
                .await
                .map_err(|e| e.to_string())
        })
    };
    let flush = || ctx.rt.block_on(redis.reset()).map_err(|e| e.to_string());
    let (mut ours, mut theirs, mut parse) = (f64::INFINITY, f64::INFINITY, f64::INFINITY);
    for _ in 0..SEED_ROUNDS {
        flush()?;
        // From the fixture file to keys in the server, as the baseline goes from its file: the
        // reading and parsing (done when the project loads) is counted with the seed stage.
        let t0 = Instant::now();
        let text = std::fs::read_to_string(json_path).map_err(|e| e.to_string())?;
        let fixture = RedisFixture::parse(&text).map_err(|e| e.message)?;
        let parsed = t0.elapsed().as_secs_f64();
        parse = parse.min(parsed);
        drop(text);
        let t0 = Instant::now();
        ctx.rt
            .block_on(redis.seed(&fixture))
            .map_err(|e| e.to_string())?;
        ours = ours.min(parsed + t0.elapsed().as_secs_f64());
        drop(fixture);
        if keys()? != ctx.rows {
            return Err("the harness's seed did not write every key".into());
        }
        flush()?;
        let input = std::fs::File::open(resp_path).map_err(|e| e.to_string())?;
        theirs = theirs.min(timed_baseline(
            Command::new(redis_cli)
                .args(["-h", &redis.host, "-p", &redis.port.to_string(), "--pipe"])
                // The password goes by the environment, not the command line (where `ps` shows it).
                .env("REDISCLI_AUTH", &redis.password)
                .stdin(input),
            "redis-cli --pipe",
        )?);
        if keys()? != ctx.rows {
            return Err("redis-cli --pipe did not write every key".into());
        }
    }
    Ok(seed_figure(
        bench,
        ctx,
        (
            "redis",
            format!(
                "Redis JSON fixture read, parsed and seeded, {} keys",
                ctx.rows
            ),
        ),
        (ours, theirs),
        format!(
            "redis-cli --pipe of the same keys from a RESP file into the same server (best of {SEED_ROUNDS} each); of the harness's time, reading and parsing the JSON fixture took {}",
            human(Unit::Seconds, parse)
        ),
    ))
}

/// Runs a baseline program to its end: its wall time, or why it failed.
fn timed_baseline(cmd: &mut Command, what: &str) -> Result<f64, String> {
    let run = measure_child(cmd, Capture::Nothing)?;
    if run.code != 0 {
        return Err(format!("{what} failed (exit {})", run.code));
    }
    Ok(run.elapsed)
}

/// A seeding figure: rows per second of the harness against the baseline's, from their times.
fn seed_figure(
    bench: &Bench,
    ctx: &Ctx,
    (which, name): (&str, String),
    (ours, theirs): (f64, f64),
    baseline_what: String,
) -> Figure {
    let rows = ctx.rows as f64;
    Figure {
        id: format!("{}.{which}", bench.id),
        name,
        unit: Unit::RowsPerSecond,
        value: rows / ours,
        baseline: rows / theirs,
        baseline_what,
        goal: Goal::RatioAtLeast(0.8),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_seed_data_is_the_same_every_time() {
        assert_eq!(seed_csv_text(50), seed_csv_text(50));
        assert_eq!(seed_redis_texts(50), seed_redis_texts(50));
    }

    #[test]
    fn redis_fixture_and_pipe_input_hold_the_same_keys() {
        let (json, resp) = seed_redis_texts(20);
        let fixture = RedisFixture::parse(&json).expect("valid fixture");
        assert_eq!(fixture.0.len(), 20);
        let resp = String::from_utf8(resp).expect("utf-8");
        assert_eq!(resp.matches("*3\r\n$3\r\nSET\r\n").count(), 18);
        assert_eq!(resp.matches("*6\r\n$4\r\nHSET\r\n").count(), 2);
    }
}
