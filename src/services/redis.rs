//! Redis: its description (a private server without persistence, or a container), FLUSHALL
//! between scenarios, JSON key fixtures as seeds, and key-pattern sinks read (with SCAN, never
//! KEYS) into a canonical `KeySpace`. Its `default` user has the environment's own password; the
//! server is told only the password's SHA-256 (an ACL rule), so no command line shows it.

pub mod capture;

use redis::AsyncCommands;
use redis::aio::MultiplexedConnection;

use std::time::Duration;

use futures_util::future::BoxFuture;
use tokio::process::Command;

use super::{
    Container, DataContext, ImageSpec, Prerequisite, Running, Service, ServiceError, StartContext,
};
use crate::config::fixture::{RedisEntry, RedisFixture, RedisValue};
use crate::config::rules::{DataRules, SinkRules};
use crate::config::{Seed, SeedKind, Settings, Sink, SinkSpec};
use crate::names::ServiceKind;
use crate::outcome::InfraError;
use crate::process::{Serve, ServiceProcess, first_line, serve, which};
use crate::snapshot::redaction::redact_lines;
use crate::snapshot::{KeyEntry, KeySpace, KeyValue};

/// Keys per pipelined round trip when seeding or reading.
const BATCH: usize = 1000;
/// Keys per pipeline when seeding.
const SEED_BATCH: usize = 10_000;
/// Seed pipelines awaiting their replies at once.
const IN_FLIGHT: usize = 4;

/// The longest a command's reply may take before the command fails: a server that answers
/// nothing for a minute is hung, while a FLUSHALL of millions of keys takes seconds.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(60);

/// How the harness's connections to Redis wait: up to [`REPLY_TIMEOUT`] for each reply (the
/// client's own default, half a second, fails a FLUSHALL of a million keys).
pub fn connection_config() -> redis::AsyncConnectionConfig {
    redis::AsyncConnectionConfig::new().set_response_timeout(Some(REPLY_TIMEOUT))
}

/// The user the password belongs to: Redis's own, the one `AUTH <password>` logs in as.
pub const USER: &str = "default";

/// Where a Redis server listens and how to log in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisEndpoint {
    /// Host (loopback).
    pub host: String,
    /// Port.
    pub port: u16,
    /// Database number.
    pub db: u32,
    /// The password of user [`USER`].
    pub password: String,
}

impl RedisEndpoint {
    /// `redis://default:PASSWORD@host:port/db`. The user is named, not left empty
    /// (`redis://:PASSWORD@`): redis-cli 7.0 would send `AUTH "" PASSWORD` for that, and fail.
    pub fn url(&self) -> String {
        format!(
            "redis://{USER}:{}@{}:{}/{}",
            self.password, self.host, self.port, self.db
        )
    }

    /// `redis://host:port/db`: where it listens, for people.
    pub fn address(&self) -> String {
        format!("redis://{}:{}/{}", self.host, self.port, self.db)
    }

    /// A connection (see [`connection_config`]).
    pub async fn connect(&self) -> redis::RedisResult<MultiplexedConnection> {
        redis::Client::open(self.url())?
            .get_multiplexed_async_connection_with_config(&connection_config())
            .await
    }

    /// True when the server answers PING.
    pub async fn ready(&self) -> bool {
        match self.connect().await {
            Ok(mut c) => redis::cmd("PING")
                .query_async::<String>(&mut c)
                .await
                .is_ok(),
            Err(_) => false,
        }
    }

    /// Removes every key.
    pub async fn reset(&self) -> Result<(), ServiceError> {
        let mut c = self.connect().await.map_err(unavailable)?;
        redis::cmd("FLUSHALL")
            .query_async::<()>(&mut c)
            .await
            .map_err(unavailable)
    }

    /// Writes the keys of a fixture (replacing keys of the same name).
    pub async fn seed(&self, fixture: &RedisFixture) -> Result<usize, ServiceError> {
        use futures_util::{StreamExt, TryStreamExt};
        let c = self.connect().await.map_err(unavailable)?;
        // Batches go out back to back on the one connection, a few awaiting their replies at
        // once, so that the server never waits for the harness between two batches.
        // The batches' futures are made up front (each starts when polled): a stream of
        // closures here would make the future not provably `Send`.
        let batches: Vec<_> = fixture
            .0
            .chunks(SEED_BATCH)
            .map(|chunk| {
                let pipe = seed_pipeline(chunk);
                let mut c = c.clone();
                async move { pipe.query_async::<()>(&mut c).await }
            })
            .collect();
        futures_util::stream::iter(batches)
            .buffered(IN_FLIGHT)
            .try_for_each(|()| std::future::ready(Ok(())))
            .await
            .map_err(unavailable)?;
        Ok(fixture.0.len())
    }

    /// Reads every key matching `pattern` with its type, expiry and value.
    pub async fn read(&self, pattern: &str) -> Result<KeySpace, String> {
        let mut c = self.connect().await.map_err(|e| e.to_string())?;
        let mut keys: Vec<Vec<u8>> = Vec::new();
        {
            let mut iter = c
                .scan_options::<Vec<u8>>(
                    redis::ScanOptions::default()
                        .with_pattern(pattern)
                        .with_count(BATCH),
                )
                .await
                .map_err(|e| e.to_string())?;
            use futures_util::StreamExt;
            while let Some(k) = iter.next().await {
                keys.push(k.map_err(|e| e.to_string())?);
            }
        }
        keys.sort();
        keys.dedup();
        let mut out = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(BATCH) {
            let mut pipe = redis::pipe();
            for k in chunk {
                pipe.cmd("TYPE").arg(k).cmd("PTTL").arg(k);
            }
            let meta: Vec<redis::Value> =
                pipe.query_async(&mut c).await.map_err(|e| e.to_string())?;
            let mut pipe = redis::pipe();
            let mut kinds = Vec::with_capacity(chunk.len());
            for (i, k) in chunk.iter().enumerate() {
                let kind = match &meta[2 * i] {
                    redis::Value::SimpleString(s) => s.clone(),
                    redis::Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
                    other => format!("{other:?}"),
                };
                let expires = matches!(meta[2 * i + 1], redis::Value::Int(t) if t >= 0);
                match kind.as_str() {
                    "string" => pipe.cmd("GET").arg(k),
                    "hash" => pipe.cmd("HGETALL").arg(k),
                    "list" => pipe.cmd("LRANGE").arg(k).arg(0).arg(-1),
                    "set" => pipe.cmd("SMEMBERS").arg(k),
                    "zset" => pipe.cmd("ZRANGE").arg(k).arg(0).arg(-1).arg("WITHSCORES"),
                    _ => pipe.cmd("TYPE").arg(k),
                };
                kinds.push((kind, expires));
            }
            let values: Vec<redis::Value> =
                pipe.query_async(&mut c).await.map_err(|e| e.to_string())?;
            for ((k, (kind, expires)), v) in chunk.iter().zip(kinds).zip(values) {
                if kind == "none" {
                    continue; // expired or deleted between SCAN and TYPE
                }
                out.push(KeyEntry {
                    key: k.clone(),
                    expires,
                    value: key_value(&kind, v)?,
                });
            }
        }
        Ok(KeySpace(out))
    }
}

/// The commands writing `entries` (keys of a fixture are unique, so their order is free): one
/// MSET for every string (it replaces a key of any type, and its expiry, as SET does); the other
/// types add to what is there, so their key is deleted first; expiries last.
fn seed_pipeline(entries: &[RedisEntry]) -> redis::Pipeline {
    let mut pipe = redis::pipe();
    let mut mset = redis::cmd("MSET");
    let mut strings = 0;
    for e in entries {
        match &e.value {
            RedisValue::String(v) => {
                mset.arg(&e.key).arg(v);
                strings += 1;
            }
            other => {
                pipe.del(&e.key).ignore();
                match other {
                    RedisValue::Hash(h) if !h.is_empty() => pipe
                        .hset_multiple(&e.key, &h.iter().collect::<Vec<_>>())
                        .ignore(),
                    RedisValue::List(l) if !l.is_empty() => pipe.rpush(&e.key, l).ignore(),
                    RedisValue::Set(s) if !s.is_empty() => pipe.sadd(&e.key, s).ignore(),
                    RedisValue::ZSet(z) if !z.is_empty() => pipe
                        .zadd_multiple(&e.key, &z.iter().map(|(m, s)| (*s, m)).collect::<Vec<_>>())
                        .ignore(),
                    _ => &mut pipe,
                };
            }
        }
    }
    if strings > 0 {
        pipe.add_command(mset).ignore();
    }
    for e in entries {
        if let Some(ttl) = e.ttl {
            pipe.expire(&e.key, ttl as i64).ignore();
        }
    }
    pipe
}

fn key_value(kind: &str, v: redis::Value) -> Result<KeyValue, String> {
    let conv = |e: redis::ParsingError| e.to_string();
    Ok(match kind {
        "string" => KeyValue::String(redis::from_redis_value::<Vec<u8>>(v).map_err(conv)?),
        "hash" => {
            KeyValue::Hash(redis::from_redis_value::<Vec<(Vec<u8>, Vec<u8>)>>(v).map_err(conv)?)
        }
        "list" => KeyValue::List(redis::from_redis_value::<Vec<Vec<u8>>>(v).map_err(conv)?),
        "set" => KeyValue::Set(redis::from_redis_value::<Vec<Vec<u8>>>(v).map_err(conv)?),
        "zset" => KeyValue::ZSet(redis::from_redis_value::<Vec<(Vec<u8>, f64)>>(v).map_err(conv)?),
        other => KeyValue::Other(other.to_string()),
    })
}

fn unavailable(e: redis::RedisError) -> ServiceError {
    ServiceError::Unavailable {
        service: "redis",
        message: e.to_string(),
    }
}

// ---- the description ----

/// Redis: a private server without persistence (local backend) or a container; emptied between
/// scenarios with FLUSHALL.
#[derive(Debug)]
pub struct Redis;

/// The `redis-server` binary: the setting's path, or the name looked up on PATH.
fn server_bin(settings: &Settings) -> Option<std::path::PathBuf> {
    let bin = &settings.redis.bin;
    let found = if bin.components().count() > 1 {
        Some(bin.clone())
    } else {
        which(&bin.to_string_lossy())
    };
    found.filter(|b| b.is_file())
}

/// Seeds: key fixtures (JSON); sinks: keys by pattern.
static RULES: DataRules = DataRules {
    seed_keys: true,
    sink: Some(SinkRules::Keys),
    ..DataRules::NO_DATA
};

/// A running Redis.
#[derive(Debug)]
pub struct RedisRunning {
    /// Where it listens.
    pub endpoint: RedisEndpoint,
    process: Option<ServiceProcess>,
}

fn at(port: u16, password: &str) -> RedisEndpoint {
    RedisEndpoint {
        host: "127.0.0.1".into(),
        port,
        db: 0,
        password: password.into(),
    }
}

/// The server arguments giving user `default` the password `password`, with every right: an ACL
/// rule holding the password's SHA-256, not the password.
fn user_args(password: &str) -> Vec<String> {
    use sha2::{Digest, Sha256};
    let hash: String = Sha256::digest(password.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    [
        "--user",
        USER,
        "on",
        &format!("#{hash}"),
        "~*",
        "&*",
        "+@all",
    ]
    .map(String::from)
    .to_vec()
}

impl Service for Redis {
    fn kind(&self) -> ServiceKind {
        ServiceKind::Redis
    }

    fn rules(&self) -> &'static DataRules {
        &RULES
    }

    fn memory_mb(&self) -> u64 {
        20
    }

    fn prerequisites(&self, settings: &Settings) -> Vec<Prerequisite> {
        let mut out = Vec::new();
        let redis = server_bin(settings);
        out.push(Prerequisite {
            name: "redis-server",
            found: redis.map(|p| {
                let line = first_line(&p, &["--version"]).unwrap_or_default();
                let version = line
                    .split_whitespace()
                    .find_map(|w| w.strip_prefix("v="))
                    .unwrap_or("?")
                    .to_string();
                format!("{version} at {}", p.display())
            }),
            how: "Redis server: apt-get install redis-server (scripts/setup.sh does)",
            required: true,
        });
        out
    }

    fn start_timeout(&self, settings: &Settings) -> Duration {
        settings.redis.start_timeout
    }

    fn start_local<'a>(
        &'a self,
        ctx: &'a StartContext<'a>,
    ) -> BoxFuture<'a, Result<Box<dyn Running>, InfraError>> {
        Box::pin(async move {
            let settings = &ctx.settings.redis;
            let bin = server_bin(ctx.settings).ok_or_else(|| {
                ctx.fail(
                    ServiceKind::Redis,
                    format!(
                        "`{}` not found; install the `redis-server` package (scripts/setup.sh does) or set services.redis.bin",
                        settings.bin.display()
                    ),
                )
            })?;
            let dir = ctx.dir.join("redis");
            std::fs::create_dir_all(&dir).map_err(|e| {
                ctx.fail(
                    ServiceKind::Redis,
                    format!("cannot create {}: {e}", dir.display()),
                )
            })?;
            let log = dir.join("redis.log");
            let password = super::password(ctx.secret, ServiceKind::Redis);
            let how = Serve {
                service: "redis",
                log: &log,
                port_taken: "Address already in use",
                timeout: settings.start_timeout,
                stop_signal: libc::SIGTERM,
                log_owner: None,
            };
            let command = |port: u16| {
                let mut cmd = Command::new(&bin);
                cmd.args([
                    "--port",
                    &port.to_string(),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--daemonize",
                    "no",
                ]);
                cmd.args(user_args(&password));
                cmd.arg("--dir").arg(&dir).current_dir(&dir);
                cmd
            };
            let (proc, port) = serve(how, command, |port| {
                let ep = at(port, &password);
                async move { ep.ready().await }
            })
            .await?;
            Ok(Box::new(RedisRunning {
                endpoint: at(port, &password),
                process: Some(proc),
            }) as Box<dyn Running>)
        })
    }

    fn image(&self) -> Option<ImageSpec> {
        Some(ImageSpec {
            service: "redis",
            files: &[(
                "Dockerfile",
                include_str!("../../containers/redis/Dockerfile"),
            )],
            needs_jars: false,
        })
    }

    fn container(&self, ctx: &StartContext<'_>) -> Option<Result<Container, InfraError>> {
        Some(Ok(Container {
            image: self.image()?,
            jars: None,
            ports: vec![6379],
            env: vec![],
            mounts: vec![],
            args: user_args(&super::password(ctx.secret, ServiceKind::Redis)),
        }))
    }

    fn connect<'a>(
        &'a self,
        ports: Vec<u16>,
        ctx: &'a StartContext<'a>,
    ) -> BoxFuture<'a, Result<Box<dyn Running>, String>> {
        Box::pin(async move {
            let password = super::password(ctx.secret, ServiceKind::Redis);
            let endpoint = at(*ports.first().ok_or("no port")?, &password);
            if !endpoint.ready().await {
                return Err("not answering PING yet".into());
            }
            Ok(Box::new(RedisRunning {
                endpoint,
                process: None,
            }) as Box<dyn Running>)
        })
    }
}

impl Running for RedisRunning {
    fn kind(&self) -> ServiceKind {
        ServiceKind::Redis
    }

    fn exited(&self) -> Option<String> {
        self.process.as_ref()?.exit_note()
    }

    fn endpoint(&self) -> String {
        self.endpoint.address()
    }

    fn task_env(&self) -> Vec<(String, String)> {
        vec![
            ("HARNESS_REDIS_URL".into(), self.endpoint.url()),
            ("AIRFLOW_CONN_REDIS_DEFAULT".into(), self.endpoint.url()),
        ]
    }

    fn reset<'a>(&'a self, _ctx: &'a DataContext<'a>) -> BoxFuture<'a, Result<(), ServiceError>> {
        Box::pin(self.endpoint.reset())
    }

    fn seed<'a>(
        &'a self,
        seed: &'a Seed,
        _ctx: &'a DataContext<'a>,
    ) -> BoxFuture<'a, Result<(), ServiceError>> {
        Box::pin(async move {
            match &seed.kind {
                SeedKind::Keys { fixture, .. } => self.endpoint.seed(fixture).await.map(|_| ()),
                _ => Err(super::not_for(seed, ServiceKind::Redis)),
            }
        })
    }

    fn read<'a>(
        &'a self,
        sink: &'a Sink,
        _ctx: &'a DataContext<'a>,
    ) -> BoxFuture<'a, Result<String, String>> {
        Box::pin(async move {
            let SinkSpec::Keys {
                pattern,
                decode_json,
                float_digits,
            } = &sink.spec
            else {
                return Err(format!("{}: not a redis sink", sink.origin));
            };
            let text = self.endpoint.read(pattern).await?.render(
                &super::header(sink),
                *decode_json,
                *float_digits,
            );
            Ok(redact_lines(&text, &sink.redact))
        })
    }

    fn stop(self: Box<Self>) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            if let Some(p) = self.process {
                p.stop().await;
            }
        })
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}
