//! The HDFS namespace jobs see. No NameNode can run on these machines, so the local backend
//! serves `hdfs://AUTHORITY/...` from a local folder through Hadoop's own client
//! (`ViewFileSystemOverloadScheme` with a fallback link to `file:///ROOT`): jobs keep their
//! `hdfs://` paths and the Hadoop FileSystem API, but this is a local folder, not a NameNode
//! (no replication, permissions or quotas). This file describes it: laying it out, the Hadoop
//! settings that serve it, reset, seeding files, and reading a path back as a listing (and the
//! rows of a dataset, from its files where the harness reads them exactly, through the
//! harness's Spark session otherwise).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use std::time::Duration;

use futures_util::future::BoxFuture;

use super::hive::direct::{self, Direct};
use super::spark::SparkRunning;
use super::{DataContext, Running, Service, ServiceError, StartContext};
use crate::config::rules::{DataRules, SinkRules};
use crate::config::{Seed, SeedKind, Settings, Sink, SinkSpec, TableFormat};
use crate::names::ServiceKind;
use crate::outcome::InfraError;
use crate::snapshot::Table;
use crate::snapshot::canonical::quote;
use crate::snapshot::redaction::redact_lines;

/// Where the warehouse lives inside the namespace.
pub const WAREHOUSE: &str = "/user/hive/warehouse";

/// The HDFS namespace of an environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HdfsEndpoint {
    /// `host:port` of the `hdfs://` URLs.
    pub authority: String,
    /// The local folder behind it.
    pub root: PathBuf,
}

/// One file of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// Path relative to the listed folder, with generated ids replaced by `{uuid}`.
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256 of the content, hex.
    pub sha256: String,
}

impl HdfsEndpoint {
    /// `hdfs://authority`.
    pub fn url(&self) -> String {
        format!("hdfs://{}", self.authority)
    }

    /// The `hdfs://` URL of an absolute path.
    pub fn url_of(&self, path: &str) -> String {
        format!("hdfs://{}{}", self.authority, path)
    }

    /// The mount table name Hadoop's view file system uses: the authority's host.
    pub fn mount_table(&self) -> &str {
        self.authority.split(':').next().unwrap_or(&self.authority)
    }

    /// The local file behind an absolute HDFS path.
    pub fn local(&self, path: &str) -> PathBuf {
        self.root.join(path.trim_start_matches('/'))
    }

    /// The local file behind a URL of this namespace (`hdfs://AUTHORITY/path`), or behind a
    /// `file:` URL; `None` for any other place.
    pub fn local_of_url(&self, url: &str) -> Option<PathBuf> {
        if let Some(path) = url.strip_prefix(&self.url()) {
            return path.starts_with('/').then(|| self.local(path));
        }
        let path = url
            .strip_prefix("file://")
            .or_else(|| url.strip_prefix("file:"))?;
        path.starts_with('/').then(|| PathBuf::from(path))
    }

    /// Empties the namespace, keeping an empty warehouse folder.
    pub fn reset(&self) -> Result<(), ServiceError> {
        let fail = |e: std::io::Error| ServiceError::Unavailable {
            service: "hdfs",
            message: format!("cannot empty {}: {e}", self.root.display()),
        };
        if self.root.exists() {
            for entry in std::fs::read_dir(&self.root).map_err(fail)? {
                let p = entry.map_err(fail)?.path();
                if p.is_dir() {
                    std::fs::remove_dir_all(&p)
                } else {
                    std::fs::remove_file(&p)
                }
                .map_err(fail)?;
            }
        }
        std::fs::create_dir_all(self.local(WAREHOUSE)).map_err(fail)
    }

    /// Copies a fixture file or folder to `path`.
    pub fn seed(&self, source: &Path, path: &str) -> std::io::Result<u64> {
        let target = self.local(path);
        if source.is_dir() {
            copy_tree(source, &target)
        } else {
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::copy(source, &target)
        }
    }

    /// Every file under `path` (a file or a folder), sorted, without hidden files (Hadoop's
    /// `.crc` checksums).
    pub fn list(&self, path: &str) -> Result<Vec<Listed>, String> {
        let base = self.local(path);
        if !base.exists() {
            return Err(format!("{} does not exist", self.url_of(path)));
        }
        let files = if base.is_file() {
            vec![base.clone()]
        } else {
            walk(&base)
        };
        let mut out = Vec::new();
        for f in files {
            let rel = if f == base {
                f.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default()
            } else {
                f.strip_prefix(&base)
                    .unwrap_or(&f)
                    .to_string_lossy()
                    .into_owned()
            };
            if rel.split('/').any(|part| part.starts_with('.')) {
                continue;
            }
            let data = std::fs::read(&f).map_err(|e| format!("{}: {e}", f.display()))?;
            out.push(Listed {
                name: redact_uuids(&rel),
                size: data.len() as u64,
                sha256: hex(&Sha256::digest(&data)),
            });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }
}

/// Renders a listing: every file with its size and SHA-256; with `data_files_by_rows`, files
/// holding the rows of a tabular dataset (not `_`-prefixed markers) show no size or hash,
/// as their encoding is not their content: the rows are rendered after the listing.
pub fn render_listing(files: &[Listed], data_files_by_rows: bool) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "files: {}", files.len());
    for f in files {
        let is_data =
            data_files_by_rows && !f.name.rsplit('/').next().unwrap_or("").starts_with('_');
        if is_data {
            let _ = writeln!(out, "{} (data)", quote(&f.name));
        } else {
            let _ = writeln!(
                out,
                "{} {} bytes sha256:{}",
                quote(&f.name),
                f.size,
                f.sha256
            );
        }
    }
    out
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

fn copy_tree(from: &Path, to: &Path) -> std::io::Result<u64> {
    std::fs::create_dir_all(to)?;
    let mut total = 0;
    for e in std::fs::read_dir(from)? {
        let e = e?;
        let (src, dst) = (e.path(), to.join(e.file_name()));
        total += if src.is_dir() {
            copy_tree(&src, &dst)?
        } else {
            std::fs::copy(&src, &dst)?
        };
    }
    Ok(total)
}

fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// Replaces every UUID (8-4-4-4-12 hex digits), as Spark puts in part-file names, by `{uuid}`.
pub fn redact_uuids(s: &str) -> String {
    const SHAPE: [usize; 5] = [8, 4, 4, 4, 12];
    let b = s.as_bytes();
    let is_uuid_at = |i: usize| {
        let mut j = i;
        for (k, n) in SHAPE.iter().enumerate() {
            if j + n > b.len() || !b[j..j + n].iter().all(u8::is_ascii_hexdigit) {
                return false;
            }
            j += n;
            if k < 4 {
                if b.get(j) != Some(&b'-') {
                    return false;
                }
                j += 1;
            }
        }
        true
    };
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < b.len() {
        if (i == 0 || !b[i - 1].is_ascii_hexdigit())
            && is_uuid_at(i)
            && b.get(i + 36).is_none_or(|c| !c.is_ascii_hexdigit())
        {
            out.push_str("{uuid}");
            i += 36;
        } else {
            let ch = s[i..].chars().next().unwrap_or(' ');
            out.push(ch);
            i += ch.len_utf8();
        }
    }
    out
}

/// Hadoop's settings that serve `hdfs://` from the namespace's local folder.
pub fn hadoop_fs(hdfs: &HdfsEndpoint) -> Vec<(String, String)> {
    vec![
        ("fs.defaultFS".into(), hdfs.url()),
        (
            "fs.hdfs.impl".into(),
            "org.apache.hadoop.fs.viewfs.ViewFileSystemOverloadScheme".into(),
        ),
        (
            "fs.viewfs.overload.scheme.target.hdfs.impl".into(),
            "org.apache.hadoop.hdfs.DistributedFileSystem".into(),
        ),
        (
            format!("fs.viewfs.mounttable.{}.linkFallback", hdfs.mount_table()),
            format!("file://{}", hdfs.root.display()),
        ),
    ]
}

// ---- the description ----

/// The HDFS namespace: a folder of the environment behind Hadoop's client, on both backends (a
/// container's metastore mounts it at the same path).
#[derive(Debug)]
pub struct Hdfs;

/// Seeds: files copied in; sinks: a path (its files, and the rows of a dataset there).
static RULES: DataRules = DataRules {
    seed_files: true,
    sink: Some(SinkRules::Path),
    ..DataRules::NO_DATA
};

/// A laid-out namespace.
#[derive(Debug)]
pub struct HdfsRunning {
    /// Its authority and folder.
    pub endpoint: HdfsEndpoint,
    /// Datasets read by the harness itself where it reads them exactly (`[services.hive]
    /// direct`), through the Spark session otherwise.
    direct: bool,
}

impl Service for Hdfs {
    fn kind(&self) -> ServiceKind {
        ServiceKind::Hdfs
    }

    fn needs_for(&self, _seeds: &[&Seed], sinks: &[&Sink]) -> Vec<ServiceKind> {
        // The rows of a dataset are read through the harness's Spark session.
        let tabular = sinks.iter().any(|s| {
            matches!(
                s.spec,
                SinkSpec::Path {
                    format: Some(_),
                    ..
                }
            )
        });
        if tabular {
            vec![ServiceKind::Spark]
        } else {
            vec![]
        }
    }

    fn rules(&self) -> &'static DataRules {
        &RULES
    }

    fn memory_mb(&self) -> u64 {
        0
    }

    fn start_timeout(&self, _settings: &Settings) -> Duration {
        Duration::ZERO
    }

    fn start_local<'a>(
        &'a self,
        ctx: &'a StartContext<'a>,
    ) -> BoxFuture<'a, Result<Box<dyn Running>, InfraError>> {
        Box::pin(async move {
            let endpoint = HdfsEndpoint {
                authority: ctx.settings.hdfs.authority.clone(),
                root: ctx.dir.join("hdfs"),
            };
            endpoint
                .reset()
                .map_err(|e| ctx.fail(ServiceKind::Hdfs, e.to_string()))?;
            Ok(Box::new(HdfsRunning {
                endpoint,
                direct: ctx.settings.hive.direct,
            }) as Box<dyn Running>)
        })
    }
}

impl Running for HdfsRunning {
    fn kind(&self) -> ServiceKind {
        ServiceKind::Hdfs
    }

    fn endpoint(&self) -> String {
        format!(
            "{} (local folder {})",
            self.endpoint.url(),
            self.endpoint.root.display()
        )
    }

    fn task_env(&self) -> Vec<(String, String)> {
        vec![("HARNESS_HDFS_URL".into(), self.endpoint.url())]
    }

    fn reset<'a>(&'a self, _ctx: &'a DataContext<'a>) -> BoxFuture<'a, Result<(), ServiceError>> {
        Box::pin(async move { self.endpoint.reset() })
    }

    fn seed<'a>(
        &'a self,
        seed: &'a Seed,
        _ctx: &'a DataContext<'a>,
    ) -> BoxFuture<'a, Result<(), ServiceError>> {
        Box::pin(async move {
            let SeedKind::Files { path, source } = &seed.kind else {
                return Err(super::not_for(seed, ServiceKind::Hdfs));
            };
            self.endpoint
                .seed(source, path)
                .map(|_| ())
                .map_err(|e| ServiceError::Unavailable {
                    service: "hdfs",
                    message: format!("cannot copy {} to {path}: {e}", seed.display.display()),
                })
        })
    }

    fn read<'a>(
        &'a self,
        sink: &'a Sink,
        ctx: &'a DataContext<'a>,
    ) -> BoxFuture<'a, Result<String, String>> {
        Box::pin(async move {
            let SinkSpec::Path {
                path,
                format,
                key,
                float_digits,
            } = &sink.spec
            else {
                return Err(format!("{}: not an hdfs sink", sink.origin));
            };
            let located = |e: String| format!("{}: {e}", sink.origin);
            let files = self.endpoint.list(path)?;
            let mut out = String::new();
            super::header(sink).write(&mut out);
            out.push_str(&render_listing(&files, format.is_some()));
            let mut out = redact_lines(&out, &sink.redact);
            if let Some(f) = format {
                let mut rows = match self.read_direct(path, *f, sink, ctx).await? {
                    Some(rows) => rows,
                    None => self.read_spark(path, *f, ctx).await?,
                };
                super::prepare_table(sink, &mut rows).map_err(located)?;
                out.push_str(&rows.render_rows(key, *float_digits).map_err(located)?);
            }
            Ok(out)
        })
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

impl HdfsRunning {
    /// The dataset at `path` read from its files, when the harness reads it exactly; `None`
    /// (with a notice saying why) when it goes through Spark.
    async fn read_direct(
        &self,
        path: &str,
        format: TableFormat,
        sink: &Sink,
        ctx: &DataContext<'_>,
    ) -> Result<Option<Table>, String> {
        if !self.direct {
            return Ok(None);
        }
        let dir = self.endpoint.local(path);
        let read = tokio::task::spawn_blocking(move || direct::read_path(&dir, format))
            .await
            .map_err(|e| e.to_string())??;
        Ok(match read {
            Direct::Done(rows) => Some(rows),
            Direct::Spark(why) => {
                ctx.events.notice(format!(
                    "hdfs sink {} is read through Spark: {why}",
                    sink.name
                ));
                None
            }
        })
    }

    /// The dataset at `path` read through the harness's Spark session.
    async fn read_spark(
        &self,
        path: &str,
        format: TableFormat,
        ctx: &DataContext<'_>,
    ) -> Result<Table, String> {
        let spark = ctx
            .started
            .get::<SparkRunning>()
            .ok_or("spark is not part of this environment")?;
        let mut session = spark.session(ctx.events).await.map_err(|e| e.to_string())?;
        session
            .read_path(&self.endpoint.url_of(path), format, &ctx.scratch)
            .await
            .map_err(|e| e.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_in_part_file_names_are_redacted() {
        assert_eq!(
            redact_uuids("part-00000-8f14e45f-ceea-467f-a0e4-3c5b2f1d9a10-c000.snappy.parquet"),
            "part-00000-{uuid}-c000.snappy.parquet"
        );
        assert_eq!(redact_uuids("plain.txt"), "plain.txt");
        assert_eq!(
            redact_uuids("ab8f14e45f-ceea-467f-a0e4-3c5b2f1d9a10"),
            "ab8f14e45f-ceea-467f-a0e4-3c5b2f1d9a10"
        );
    }

    #[test]
    fn listing_is_sorted_hashed_and_skips_checksums() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ns = HdfsEndpoint {
            authority: "namenode:8020".into(),
            root: dir.path().to_path_buf(),
        };
        ns.reset().expect("reset");
        std::fs::create_dir_all(ns.local("/out/sub")).expect("mkdir");
        std::fs::write(ns.local("/out/b.txt"), "b").expect("write");
        std::fs::write(ns.local("/out/sub/a.txt"), "").expect("write");
        std::fs::write(ns.local("/out/.b.txt.crc"), "x").expect("write");
        let files = ns.list("/out").expect("list");
        let text = render_listing(&files, false);
        assert_eq!(
            text,
            "files: 2\n\"b.txt\" 1 bytes sha256:3e23e8160039594a33894f6564e1b1348bbd7a0088d42c4acb73eeaed59c009d\n\
             \"sub/a.txt\" 0 bytes sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n"
        );
        assert!(ns.list("/missing").is_err());
        assert!(ns.local(WAREHOUSE).is_dir());
    }
}
