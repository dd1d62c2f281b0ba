//! `harness capture`: from running services given by URL, write a scenario skeleton
//! (`scenarios/NAME/scenario.toml` with its seeds and sinks) and its fixtures, masked as the
//! rules say. The readers are the kinds' own (`services::<kind>::capture`); this file parses the
//! command line, asks them, and writes the scenario folder whole or not at all.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use clap_complete::engine::ArgValueCompleter;

use crate::config::capture::{
    self, CaptureError, CapturePlan, Captured, MaskRule, MaskTarget, TableTarget, toml_string,
};
use crate::config::{self, ServiceKind};
use crate::exit;
use crate::services::hive::capture::HiveSource;

/// `harness capture`'s arguments.
#[derive(Debug, clap::Args)]
pub struct CaptureArgs {
    /// The scenario to write: `scenarios/NAME/` (letters, digits, `_`, `-`).
    pub name: String,
    /// The pipeline the scenario runs (a folder of `pipelines/`).
    #[arg(long, value_name = "NAME", add = ArgValueCompleter::new(super::completions::pipelines))]
    pub pipeline: String,
    /// PostgreSQL to read: postgres://user:password@host:port/database.
    #[arg(
        long,
        value_name = "URL",
        env = "HARNESS_POSTGRES_URL",
        hide_env_values = true
    )]
    pub postgres: Option<String>,
    /// Redis to read: redis://[user:password@]host:port/db.
    #[arg(
        long,
        value_name = "URL",
        env = "HARNESS_REDIS_URL",
        hide_env_values = true
    )]
    pub redis: Option<String>,
    /// ClickHouse to read, its HTTP interface: http://[user:password@]host:port.
    #[arg(
        long,
        value_name = "URL",
        env = "HARNESS_CLICKHOUSE_URL",
        hide_env_values = true
    )]
    pub clickhouse: Option<String>,
    /// The Hive metastore: thrift://host:port.
    #[arg(
        long,
        value_name = "URI",
        env = "HARNESS_HIVE_METASTORE_URI",
        hide_env_values = true
    )]
    pub hive_metastore: Option<String>,
    /// The Hive warehouse folder (a path or URL Spark reads).
    #[arg(
        long,
        value_name = "DIR",
        env = "HARNESS_WAREHOUSE_DIR",
        hide_env_values = true
    )]
    pub warehouse: Option<String>,
    /// A Spark configuration folder to start from for Hive (its spark-defaults.conf,
    /// hive-site.xml, core-site.xml).
    #[arg(
        long,
        value_name = "DIR",
        env = "SPARK_CONF_DIR",
        hide_env_values = true
    )]
    pub spark_conf_dir: Option<PathBuf>,
    /// A table to capture, `postgres:schema.table`, `hive:db.table` or `clickhouse:db.table`
    /// (repeatable).
    #[arg(long = "table", value_name = "KIND:NAME")]
    pub tables: Vec<String>,
    /// A query's rows to capture as table NAME: `postgres:schema.name=SELECT ...` (repeatable).
    #[arg(long = "query", value_name = "KIND:NAME=SQL")]
    pub queries: Vec<String>,
    /// Redis keys to capture, by pattern (`*` any characters; repeatable).
    #[arg(long = "keys", value_name = "PATTERN")]
    pub keys: Vec<String>,
    /// At most N rows per table: the first in primary-key order (else in the order of every
    /// column).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub limit: Option<u64>,
    /// Keep each row with probability F (0 < F <= 1), chosen by a hash of its primary key (else
    /// of the whole row) and --seed: the same rows every time.
    #[arg(long, value_name = "F", value_parser = capture::parse_sample)]
    pub sample: Option<f64>,
    /// Text mixed into the sample's hash: another seed, another sample.
    #[arg(long, value_name = "TEXT")]
    pub seed: Option<String>,
    /// A masking rule, TARGET=RULE: `postgres:public.users.email=hash`,
    /// `hive:db.t.c=fixed:VALUE`, `redis:session:*=drop`, `redis:user:*#email=hash:8`
    /// (repeatable).
    #[arg(long = "mask", value_name = "TARGET=RULE")]
    pub masks: Vec<String>,
    /// The environment variable holding the salt of `hash` masks (kept off the command line).
    #[arg(long, value_name = "VAR")]
    pub salt_env: Option<String>,
    /// A capture spec file (TOML: tables, queries, keys, limit, sample, seed, masks); the
    /// command line adds to it.
    #[arg(long, value_name = "FILE")]
    pub spec: Option<PathBuf>,
    /// Replace the scenario folder if it exists.
    #[arg(long)]
    pub force: bool,
}

fn bad(message: impl std::fmt::Display) -> i32 {
    eprintln!("error: {}", crate::redact::redact(&message.to_string()));
    exit::BAD_INPUT
}

/// The plan of the command line (after the spec file's).
fn plan(args: &CaptureArgs) -> Result<CapturePlan, CaptureError> {
    let mut plan = CapturePlan::default();
    if let Some(spec) = &args.spec {
        capture::read_spec(spec, &mut plan)?;
    }
    for t in &args.tables {
        plan.tables
            .push(capture::parse_table(t).map_err(CaptureError::Input)?);
    }
    for q in &args.queries {
        plan.tables
            .push(capture::parse_query(q).map_err(CaptureError::Input)?);
    }
    plan.keys.extend(args.keys.iter().cloned());
    if args.limit.is_some() {
        plan.limit = args.limit;
    }
    if args.sample.is_some() {
        plan.sample = args.sample;
    }
    if let Some(s) = &args.seed {
        plan.seed = s.clone();
    }
    for m in &args.masks {
        plan.masks
            .push(capture::parse_mask(m, &format!("--mask {m}")).map_err(CaptureError::Input)?);
    }
    if let Some(var) = &args.salt_env {
        plan.salt = std::env::var(var).map_err(|_| {
            CaptureError::Input(format!("--salt-env {var}: that variable is not set"))
        })?;
        crate::redact::register(&plan.salt);
    }
    plan.check()?;
    Ok(plan)
}

/// `harness capture`: reads, masks, writes; exit 2 for bad input, 3 for a service that does not
/// answer.
pub(super) fn capture(root: &Path, settings: &config::Settings, args: &CaptureArgs) -> i32 {
    if args.name.is_empty()
        || !args
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return bad(format!(
            "`{}` is not a scenario name: use ASCII letters, digits, `_` and `-`",
            args.name
        ));
    }
    let outline = config::outline(root);
    if !outline.pipelines.contains(&args.pipeline) {
        let hint = match config::diagnostic::did_you_mean(
            &args.pipeline,
            outline.pipelines.iter().map(String::as_str),
        ) {
            Some(b) => format!("; did you mean `{b}`?"),
            None => format!(
                "; the project has: {}",
                if outline.pipelines.is_empty() {
                    "none".to_string()
                } else {
                    outline.pipelines.join(", ")
                }
            ),
        };
        return bad(format!(
            "--pipeline {}: no such pipeline in {}{hint}",
            args.pipeline,
            config::display_path(root, &settings.pipelines_dir).display()
        ));
    }
    let target = settings.scenarios_dir.join(&args.name);
    let shown = config::display_path(root, &target);
    if target.exists() && !args.force {
        return bad(format!(
            "{} exists: give --force to replace it",
            shown.display()
        ));
    }
    let plan = match plan(args) {
        Ok(p) => p,
        Err(e) => return bad(e),
    };
    let of = |kind: ServiceKind| -> Vec<&TableTarget> {
        plan.tables.iter().filter(|t| t.kind == kind).collect()
    };
    let (pg, hive, ch) = (
        of(ServiceKind::Postgres),
        of(ServiceKind::Hive),
        of(ServiceKind::ClickHouse),
    );
    if !ch.is_empty() && args.clickhouse.is_none() {
        return bad(
            "clickhouse tables are asked for but no server is given: --clickhouse URL (or HARNESS_CLICKHOUSE_URL)",
        );
    }
    if !pg.is_empty() && args.postgres.is_none() {
        return bad(
            "postgres tables are asked for but no server is given: --postgres URL (or HARNESS_POSTGRES_URL)",
        );
    }
    if !plan.keys.is_empty() && args.redis.is_none() {
        return bad(
            "redis keys are asked for but no server is given: --redis URL (or HARNESS_REDIS_URL)",
        );
    }
    let Some(rt) = super::runtime() else {
        return exit::INFRA;
    };
    let work = match tempfile::Builder::new()
        .prefix("harness-capture-")
        .tempdir()
    {
        Ok(w) => w,
        Err(e) => {
            eprintln!("error: cannot make a scratch folder: {e}");
            return exit::INFRA;
        }
    };
    let captured = rt.block_on(async {
        let mut all: Vec<Captured> = Vec::new();
        if let (false, Some(url)) = (pg.is_empty(), &args.postgres) {
            all.extend(crate::services::postgres::capture::capture(url, &pg, &plan).await?);
        }
        if let (false, Some(url)) = (ch.is_empty(), &args.clickhouse) {
            all.extend(crate::services::clickhouse::capture::capture(url, &ch, &plan).await?);
        }
        if !hive.is_empty() {
            let source = HiveSource {
                metastore: args.hive_metastore.clone(),
                warehouse: args.warehouse.clone(),
                spark_conf_dir: args.spark_conf_dir.clone(),
                python: settings.python.clone(),
                start_timeout: settings.spark.start_timeout,
            };
            all.extend(
                crate::services::hive::capture::capture(&source, &hive, &plan, work.path()).await?,
            );
        }
        if let (false, Some(url)) = (plan.keys.is_empty(), &args.redis) {
            all.push(crate::services::redis::capture::capture(url, &plan.keys, &plan).await?);
        }
        Ok::<_, CaptureError>(all)
    });
    let captured = match captured {
        Ok(c) => c,
        Err(e @ CaptureError::Input(_)) => return bad(e),
        Err(e @ CaptureError::Unavailable(_)) => {
            eprintln!("error: {}", crate::redact::redact(&e.to_string()));
            return exit::INFRA;
        }
    };
    let toml = scenario_toml(&args.pipeline, &captured, &plan);
    if let Err(e) = write_scenario(&target, &toml, &captured, args.force) {
        eprintln!("error: cannot write {}: {e}", shown.display());
        return exit::INFRA;
    }
    for c in &captured {
        println!(
            "captured {} {} of {} {} -> {}",
            c.count,
            if c.kind == ServiceKind::Redis {
                "keys"
            } else {
                "rows"
            },
            c.kind.name(),
            c.what,
            shown.join(&c.file).display()
        );
    }
    println!(
        "wrote {}; next: `harness run {} --update` writes its goldens",
        shown.join("scenario.toml").display(),
        args.name
    );
    exit::OK
}

/// A sink name made of what it reads: `postgres_public_users`, `redis_user`.
fn sink_name(kind: ServiceKind, what: &str, taken: &[String]) -> String {
    let mut name = format!("{}_", kind.name());
    for c in what.chars() {
        if c.is_ascii_alphanumeric() || c == '-' {
            name.push(c);
        } else if !name.ends_with('_') {
            name.push('_');
        }
    }
    let name = name.trim_end_matches('_').to_string();
    let mut unique = name.clone();
    let mut n = 2;
    while taken.contains(&unique) {
        unique = format!("{name}_{n}");
        n += 1;
    }
    unique
}

fn rule_text(rule: &MaskRule) -> String {
    match rule {
        MaskRule::Drop => "drop".into(),
        MaskRule::Fixed(v) => format!("fixed:{v}"),
        MaskRule::Hash { len } => format!("hash:{len}"),
    }
}

/// The scenario skeleton: what was captured and masked (comments), its seeds, and one sink per
/// table and key pattern.
fn scenario_toml(pipeline: &str, captured: &[Captured], plan: &CapturePlan) -> String {
    let mut out = String::from("# Captured by `harness capture`:\n");
    for c in captured {
        let _ = writeln!(
            out,
            "#   {} {}: {} in {}",
            c.kind.name(),
            c.what,
            c.count,
            c.file
        );
    }
    for m in &plan.masks {
        let target = match &m.target {
            MaskTarget::Column {
                kind,
                table,
                column,
            } => format!("{}:{table}.{column}", kind.name()),
            MaskTarget::Keys { pattern } => format!("redis:{pattern}"),
            MaskTarget::Field { pattern, field } => format!("redis:{pattern}#{field}"),
        };
        let _ = writeln!(out, "# Masked: {target}={}", rule_text(&m.rule));
    }
    out.push_str(
        "# The seeds load the captured fixtures. The sinks read the same tables and keys back:\n\
         # a starting point, to be changed into what the pipeline writes.\n",
    );
    let _ = writeln!(out, "pipeline = {}", toml_string(pipeline));
    for c in captured {
        let _ = writeln!(out, "\n[[seed]]\nservice = {}", toml_string(c.kind.name()));
        for line in &c.seed {
            let _ = writeln!(out, "{line}");
        }
    }
    let mut names: Vec<String> = Vec::new();
    for c in captured {
        // One sink per table; one per key pattern for Redis.
        let groups: Vec<Vec<&String>> = if c.kind == ServiceKind::Redis {
            c.sink.iter().map(|l| vec![l]).collect()
        } else {
            vec![c.sink.iter().collect()]
        };
        for lines in groups {
            let what = lines[0]
                .split_once(" = ")
                .map_or("", |(_, v)| v.trim_matches('"'));
            let name = sink_name(c.kind, what, &names);
            let _ = writeln!(
                out,
                "\n[[sink]]\nname = {}\nservice = {}",
                toml_string(&name),
                toml_string(c.kind.name())
            );
            for line in lines {
                let _ = writeln!(out, "{line}");
            }
            names.push(name);
        }
    }
    out
}

/// Writes the scenario folder whole: every file into a hidden folder beside it, synced, then
/// renamed into place (an existing one, with `force`, moved aside first and removed after).
fn write_scenario(
    target: &Path,
    toml: &str,
    captured: &[Captured],
    force: bool,
) -> std::io::Result<()> {
    use std::io::Write as _;
    let parent = target.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent)?;
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let staging = tempfile::Builder::new()
        .prefix(&format!(".{name}.capture-{}-", std::process::id()))
        .tempdir_in(parent)?;
    let mut files: Vec<(&str, &[u8])> = vec![("scenario.toml", toml.as_bytes())];
    files.extend(
        captured
            .iter()
            .map(|c| (c.file.as_str(), c.bytes.as_slice())),
    );
    for (file, bytes) in files {
        let mut f = std::fs::File::create(staging.path().join(file))?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::set_permissions(
        staging.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )?;
    std::fs::File::open(staging.path())?.sync_all()?;
    let staged = staging.keep();
    let aside = parent.join(format!(".{name}.replaced-{}", std::process::id()));
    let replaced = force && target.exists();
    if replaced {
        std::fs::rename(target, &aside)?;
    }
    if let Err(e) = std::fs::rename(&staged, target) {
        if replaced {
            let _ = std::fs::rename(&aside, target);
        }
        let _ = std::fs::remove_dir_all(&staged);
        return Err(e);
    }
    std::fs::File::open(parent)?.sync_all()?;
    if replaced {
        std::fs::remove_dir_all(&aside)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_skeleton_names_its_sinks_after_what_they_read() {
        let captured = vec![
            Captured {
                kind: ServiceKind::Postgres,
                what: "table public.users".into(),
                file: "postgres.public.users.sql".into(),
                bytes: vec![],
                count: 2,
                seed: vec!["sql = \"postgres.public.users.sql\"".into()],
                sink: vec!["table = \"public.users\"".into(), "key = [\"id\"]".into()],
            },
            Captured {
                kind: ServiceKind::Redis,
                what: "keys user:*, *".into(),
                file: "redis.json".into(),
                bytes: vec![],
                count: 3,
                seed: vec!["json = \"redis.json\"".into()],
                sink: vec!["keys = \"user:*\"".into(), "keys = \"*\"".into()],
            },
        ];
        let mut plan = CapturePlan::default();
        plan.masks
            .push(capture::parse_mask("postgres:public.users.email=hash", "--mask").expect("m"));
        let text = scenario_toml("p", &captured, &plan);
        assert!(
            text.contains("# Masked: postgres:public.users.email=hash:16\n"),
            "{text}"
        );
        assert!(text.contains("\n[[sink]]\nname = \"postgres_public_users\"\nservice = \"postgres\"\ntable = \"public.users\"\nkey = [\"id\"]\n"), "{text}");
        assert!(
            text.contains("name = \"redis_user\"\nservice = \"redis\"\nkeys = \"user:*\"\n"),
            "{text}"
        );
        assert!(
            text.contains("name = \"redis\"\nservice = \"redis\"\nkeys = \"*\"\n"),
            "{text}"
        );
        let parsed: toml::Value = toml::from_str(&text).expect("valid TOML");
        assert_eq!(parsed["seed"].as_array().map(Vec::len), Some(2));
    }

    #[test]
    fn a_scenario_folder_is_replaced_whole_or_not_at_all() {
        let dir = tempfile::tempdir().expect("tmp");
        let target = dir.path().join("scenarios/cap");
        let c = |bytes: &[u8]| Captured {
            kind: ServiceKind::Redis,
            what: "keys *".into(),
            file: "redis.json".into(),
            bytes: bytes.to_vec(),
            count: 0,
            seed: vec![],
            sink: vec![],
        };
        write_scenario(&target, "a", &[c(b"{}")], false).expect("first");
        std::fs::write(target.join("old.txt"), "x").expect("extra");
        write_scenario(&target, "b", &[c(b"{ }")], true).expect("forced");
        assert_eq!(
            std::fs::read_to_string(target.join("scenario.toml")).expect("r"),
            "b"
        );
        assert!(!target.join("old.txt").exists());
        let left: Vec<_> = std::fs::read_dir(dir.path().join("scenarios"))
            .expect("ls")
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(left, vec![std::ffi::OsString::from("cap")]);
    }
}
