//! Benches 3 and 9, cold starts of the local service set: the set alone (3), and the set with the
//! JVMs a Hive scenario waits for before its first seed (9). A scenario whose Hive seeds and sinks
//! the harness writes and reads itself (CSV and JSON Lines seeds; Parquet, ORC, CSV and JSON
//! tables) needs the metastore only, part of the set (`9.direct`); one with seeds or sinks it
//! cannot (Parquet seeds, Hive text tables, views...) also waits for the harness's Spark session
//! (`9.with_session`). Each against the same services
//! started one at a time by the same code, summed.

use std::time::Instant;

use super::{Bench, Ctx, Figure, Goal, Unit};
use crate::backend::{BackendKind, Environment};
use crate::config::{self, ServiceKind};
use crate::events::Events;

/// The full local set.
const FULL: [ServiceKind; 5] = [
    ServiceKind::Postgres,
    ServiceKind::Redis,
    ServiceKind::Hive,
    ServiceKind::Hdfs,
    ServiceKind::Spark,
];

/// The time to start `services`, and with `session` also the harness's Spark session (the JVM
/// a Hive seed or sink needs), started right after: (services, session) seconds.
fn start(
    ctx: &Ctx,
    services: &[ServiceKind],
    name: &str,
    session: bool,
) -> Result<(f64, f64), String> {
    let dir = crate::ledger::make_dir(&std::env::temp_dir(), "harness-env-")
        .map_err(|e| format!("cannot create a temporary folder: {e}"))?;
    let (events, _rx) = Events::channel();
    ctx.rt.block_on(async {
        let t0 = Instant::now();
        let env = Environment::start(services, &ctx.settings, BackendKind::Local, &dir, &events)
            .await
            .map_err(|e| format!("{name}: {e}"))?;
        let elapsed = t0.elapsed().as_secs_f64();
        let mut with_session = 0.0;
        if session {
            let t0 = Instant::now();
            let started = match env.get::<crate::services::spark::SparkRunning>() {
                Some(spark) => spark
                    .session(&events)
                    .await
                    .map(drop)
                    .map_err(|e| e.to_string()),
                None => Err("spark is not part of the set".to_string()),
            };
            with_session = t0.elapsed().as_secs_f64();
            if let Err(e) = started {
                env.stop().await;
                return Err(format!("{name}: the Spark session: {e}"));
            }
        }
        env.stop().await;
        Ok((elapsed, with_session))
    })
}

/// The services of the full set started one at a time (the metastore with what it needs),
/// their times summed.
fn one_by_one(ctx: &Ctx) -> Result<f64, String> {
    let hive_alone: Vec<ServiceKind> =
        if ctx.settings.hive.database == config::settings::MetastoreDb::Postgres {
            vec![ServiceKind::Postgres, ServiceKind::Hdfs, ServiceKind::Hive]
        } else {
            vec![ServiceKind::Hdfs, ServiceKind::Hive]
        };
    let mut sum = 0.0;
    for set in [
        vec![ServiceKind::Postgres],
        vec![ServiceKind::Redis],
        hive_alone,
    ] {
        sum += start(ctx, &set, "one by one", false)?.0;
    }
    Ok(sum)
}

fn spark_installed(ctx: &Ctx) -> Result<(), String> {
    crate::services::spark::discover(&ctx.settings.python)
        .map(drop)
        .map_err(|e| format!("Spark is not installed here: {e}"))
}

pub(super) fn local_set(bench: &Bench, ctx: &Ctx) -> Result<Vec<Figure>, String> {
    spark_installed(ctx)?;
    // One start first (unless --quick), so that the measured one finds the programs in the page
    // cache, as the baseline's starts after it do.
    if !ctx.quick {
        start(ctx, &FULL, "warm-up", false)?;
    }
    let (value, _) = start(ctx, &FULL, "full set", false)?;
    let baseline = one_by_one(ctx)?;
    Ok(vec![Figure {
        id: bench.id.to_string(),
        name: "cold start: PostgreSQL, Redis, metastore, HDFS, Spark conf".into(),
        unit: Unit::Seconds,
        value,
        baseline,
        baseline_what: "the same services started one at a time, by the same code, summed".into(),
        goal: Goal::AtMost(6.0),
    }])
}

pub(super) fn with_hive_jvm(bench: &Bench, ctx: &Ctx) -> Result<Vec<Figure>, String> {
    spark_installed(ctx)?;
    if !ctx.quick {
        start(ctx, &FULL, "warm-up", true)?;
    }
    let (value, session) = start(ctx, &FULL, "full set", true)?;
    let baseline = one_by_one(ctx)?;
    Ok(vec![
        Figure {
            id: format!("{}.direct", bench.id),
            name: "cold start of the set with the one JVM a Hive scenario of seeds and sinks the harness handles itself needs: the metastore".into(),
            unit: Unit::Seconds,
            value,
            baseline,
            baseline_what: "the services one at a time, summed".into(),
            goal: Goal::AtMost(6.0),
        },
        Figure {
            id: format!("{}.with_session", bench.id),
            name: "the same, then the Spark session the Hive seeds and sinks the harness cannot write or read itself go through".into(),
            unit: Unit::Seconds,
            value: value + session,
            baseline: baseline + session,
            baseline_what: "the services one at a time, summed, and the same session start".into(),
            goal: Goal::AtMost(6.0),
        },
    ])
}
