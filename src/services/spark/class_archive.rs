//! Class-data-sharing archives of the JVMs the harness starts from PySpark's install (the Hive
//! metastore, the harness's Spark session), kept in the per-user [`crate::cache`]. Such a JVM
//! loads and verifies thousands of classes from PySpark's jars at every start; mapping an archive
//! of them instead takes seconds off each start (docs/performance.md). The first start writes
//! the archive when its JVM exits (`-XX:ArchiveClassesAtExit`), the starts after it use it
//! (`-XX:SharedArchiveFile`).
//!
//! An archive is named by a key of what it depends on (the Java installation, the jars with
//! their sizes and times, the class path...), so an upgrade makes a new archive rather than a
//! stale one. Java ignores an archive that does not match (with a warning in the log given), but
//! a damaged one can crash it: callers then start the plain way and, when that works, drop the
//! archive ([`crate::cache::remove`]). A class path holds no folder with files before its last
//! jar: Java refuses to write an archive for one.

use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::time::Instant;

use crate::cache;

use super::SparkInstall;

/// The JVM options of an archive, and what they use or write.
#[derive(Debug)]
pub struct Archive {
    /// `-XX:SharedArchiveFile` or `-XX:ArchiveClassesAtExit`, and where Java's messages about
    /// the archive go.
    pub options: Vec<String>,
    /// The archive this start maps, when it exists.
    pub uses: Option<PathBuf>,
    /// The archive this start's JVM writes when it exits.
    pub dump: Option<Dump>,
}

impl Archive {
    /// Starts a JVM the cached way (`cached`, a start with these options); when that fails
    /// before `deadline` (a damaged archive can crash the JVM), the plain way (`plain`), and
    /// when that works the archive the failed start mapped is removed. A cached start that failed
    /// at its deadline was slow, not damaged: its error stands. Gives back what started and the
    /// archive its JVM writes at exit, if any.
    pub async fn start_or_plain<T, E, C, P, F>(
        self,
        deadline: Instant,
        cached: C,
        plain: P,
    ) -> Result<(T, Option<Dump>), E>
    where
        C: Future<Output = Result<T, E>>,
        P: FnOnce() -> F,
        F: Future<Output = Result<T, E>>,
    {
        match cached.await {
            Ok(started) => Ok((started, self.dump)),
            Err(e) if Instant::now() >= deadline => Err(e),
            Err(_) => {
                if let Some(d) = &self.dump {
                    d.finish(false);
                }
                let started = plain().await?;
                if let Some(a) = &self.uses {
                    cache::remove(a);
                }
                Ok((started, None))
            }
        }
    }
}

/// The archive named by `key_parts` in the cache folder `dir`: the options that map it when it
/// exists, else those that write it at the JVM's exit (unless another JVM is writing it). Java's
/// messages about it (hundreds of classes it cannot archive, a stale archive ignored) go to
/// `log`, not into the JVM's own output.
pub fn archive(dir: &Path, key_parts: &[String], log: &Path) -> Option<Archive> {
    let path = dir.join(format!("classes-{}.jsa", cache::key(key_parts)));
    let mut options = vec![
        "-Xlog:cds*=off".to_string(),
        format!("-Xlog:cds*=warning:file={}", log.display()),
    ];
    if path.is_file() {
        cache::used(&path);
        options.push(format!("-XX:SharedArchiveFile={}", path.display()));
        return Some(Archive {
            options,
            uses: Some(path),
            dump: None,
        });
    }
    let name = path.file_name()?.to_string_lossy().into_owned();
    let dump = lock(&dir.join(format!("{name}.lock"))).map(|writing| {
        let tmp = cache::temp_path(dir, &name);
        options.push(format!("-XX:ArchiveClassesAtExit={}", tmp.display()));
        Dump {
            tmp,
            target: path,
            _writing: Some(writing),
        }
    });
    Some(Archive {
        options,
        uses: None,
        dump,
    })
}

/// How long a JVM that writes its class-data archive at exit gets to stop: about 3 s of CPU for
/// the metastore's, but 33 s were measured on 2 CPUs under a load average of 15, and more than
/// 30 s under 23. Killing it wastes the work and leaves the archive to the next start, so it
/// gets long.
pub const DUMP_GRACE: std::time::Duration = std::time::Duration::from_secs(120);

/// What a Spark driver JVM takes from the project's Spark settings (`[spark] conf`).
#[derive(Debug, Clone, Default)]
pub struct DriverConf {
    /// `spark.driver.extraJavaOptions`: the harness's own options are added to them.
    java_options: String,
    /// The settings that change the JVM's class path or heap (`spark.driver.extraClassPath`,
    /// `spark.driver.memory`...): part of the archive's key.
    key: Vec<String>,
}

impl DriverConf {
    /// The driver's settings among `conf`.
    pub fn of(conf: &std::collections::BTreeMap<String, String>) -> Self {
        let java_options = conf
            .get("spark.driver.extraJavaOptions")
            .cloned()
            .unwrap_or_default();
        let key = conf
            .iter()
            .filter(|(k, _)| k.starts_with("spark.driver.") || k.starts_with("spark.jars"))
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        DriverConf { java_options, key }
    }

    /// The project's driver options followed by `own`.
    pub fn java_options(&self, own: &str) -> String {
        format!("{} {own}", self.java_options).trim().to_string()
    }
}

/// A Spark driver JVM (started by spark-submit, directly or through PySpark) started from the
/// cache. Spark puts `SPARK_CONF_DIR` first on the driver's class path, and Java writes no
/// archive for a class path with a folder holding files before its jars: so the driver's
/// `SPARK_CONF_DIR` is an empty folder of the cache (the same for every environment, as the
/// archive's class path must be), and the environment's generated configuration comes by
/// `--properties-file` and `-Dlog4j.configurationFile`.
#[derive(Debug)]
pub struct CachedDriver {
    /// Its `SPARK_CONF_DIR`: the empty folder `conf` of the cache folder.
    pub conf_dir: PathBuf,
    /// PySpark's folder with its links resolved: its `SPARK_HOME`.
    pub spark_home: PathBuf,
    /// The environment's `spark-defaults.conf`, for `--properties-file`.
    pub properties_file: PathBuf,
    /// Its Java options (`spark.driver.extraJavaOptions`): the project's, then `own`, the
    /// logging configuration and the archive's.
    pub java_options: String,
    /// The archive it maps or writes.
    pub archive: Archive,
}

impl CachedDriver {
    /// The cached start of a driver whose archives live in the cache folder `folder`, for the
    /// environment's configuration folder `env_conf`; Java's messages about the archive go to
    /// `log`. `own` are the harness's Java options for this driver and `key` what else names
    /// its archive (its heap, its main class). `None` when the cache cannot serve it (then the
    /// caller starts the plain way).
    pub fn new(
        install: &SparkInstall,
        folder: &str,
        env_conf: &Path,
        log: &Path,
        driver: &DriverConf,
        own: &str,
        key: &[String],
    ) -> Option<Self> {
        let dir = cache::folder(folder)?;
        let empty = dir.join("conf");
        std::fs::create_dir_all(&empty).ok()?;
        if std::fs::read_dir(&empty).ok()?.next().is_some() {
            return None;
        }
        let log4j = env_conf.join("log4j2.properties");
        // Spark splits the options at white space: paths with any go the plain way.
        if [&dir, &log4j, &log.to_path_buf()]
            .iter()
            .any(|p| p.to_string_lossy().contains(char::is_whitespace))
        {
            return None;
        }
        let spark_home = spark_home(install)?;
        let mut parts = vec![
            java_identity(&install.java_home)?,
            empty.display().to_string(),
            spark_home.display().to_string(),
        ];
        parts.extend(jars_of(&spark_home)?);
        // What else Spark's launcher puts on the class path.
        for var in ["HADOOP_CONF_DIR", "YARN_CONF_DIR", "SPARK_DIST_CLASSPATH"] {
            parts.push(format!("{var}={}", std::env::var(var).unwrap_or_default()));
        }
        parts.extend(driver.key.iter().cloned());
        parts.extend(key.iter().cloned());
        let archive = archive(&dir, &parts, log)?;
        let mut java_options = driver.java_options(&format!(
            "{own} -Dlog4j.configurationFile={}",
            log4j.display()
        ));
        for o in &archive.options {
            java_options.push(' ');
            java_options.push_str(o);
        }
        Some(CachedDriver {
            conf_dir: empty,
            spark_home,
            properties_file: env_conf.join("spark-defaults.conf"),
            java_options,
            archive,
        })
    }
}

/// A class-data archive being written by a JVM: at `tmp` until the JVM has exited cleanly, then
/// renamed to `target`.
#[derive(Debug)]
pub struct Dump {
    /// Where the JVM writes it.
    pub tmp: PathBuf,
    /// Where it goes once complete.
    pub target: PathBuf,
    /// The lock that makes this JVM the only one writing this archive, held until it is dropped
    /// (runs starting meanwhile go without: writing it costs a few seconds of CPU).
    _writing: Option<std::fs::File>,
}

impl Dump {
    /// Installs the archive when its JVM exited by itself (`clean`: a JVM killed while writing
    /// leaves half a file, and a half file can crash the JVMs that map it); else removes it.
    pub fn finish(&self, clean: bool) {
        let written = std::fs::metadata(&self.tmp).is_ok_and(|m| m.is_file() && m.len() > 0);
        if written && clean {
            let _ = cache::install(&self.tmp, &self.target);
        } else {
            cache::remove(&self.tmp);
        }
    }
}

/// True when a JVM that `exit` describes exited by itself: with a code, including 143 for a JVM
/// that ran its shutdown after SIGTERM (and wrote its archive then). `None` is a JVM that had to
/// be killed, or was not waited for.
pub fn exited_by_itself(exit: Option<ExitStatus>) -> bool {
    exit.is_some_and(|s| s.code().is_some())
}

/// The file `path` locked for this process, or `None` when another process holds it (the kernel
/// drops the lock of a process that dies).
fn lock(path: &Path) -> Option<std::fs::File> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .ok()?;
    file.try_lock().ok()?;
    cache::used(path);
    Some(file)
}

/// What identifies the Java installation's build: its folder and the sizes and times of the
/// JVM library and of the class library.
pub fn java_identity(java_home: &Path) -> Option<String> {
    let home = std::fs::canonicalize(java_home).ok()?;
    let jvm = cache::stamp(&home.join("lib/server/libjvm.so"))?;
    let modules = cache::stamp(&home.join("lib/modules"))?;
    Some(format!("{}\0{jvm}\0{modules}", home.display()))
}

/// PySpark's folder with every link resolved: the JVMs started from the cache name their class
/// path by it, so that projects reaching the same PySpark through links of their own (a
/// `.venv` linked to another) share one archive.
pub fn spark_home(install: &SparkInstall) -> Option<PathBuf> {
    std::fs::canonicalize(&install.spark_home).ok()
}

/// The stamps of the jars of PySpark's folder `spark_home`, in name order.
pub fn jars_of(spark_home: &Path) -> Option<Vec<String>> {
    let mut jars: Vec<PathBuf> = std::fs::read_dir(spark_home.join("jars"))
        .ok()?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "jar"))
        .collect();
    jars.sort();
    jars.iter().map(|j| cache::stamp(j)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_archive_is_installed_only_after_a_clean_exit() {
        let dir = tempfile::tempdir().expect("tempdir");
        let dump = Dump {
            tmp: cache::temp_path(dir.path(), "a.jsa"),
            target: dir.path().join("a.jsa"),
            _writing: None,
        };
        // Killed while writing: the half file goes.
        std::fs::write(&dump.tmp, "half").expect("write");
        dump.finish(false);
        assert!(!dump.tmp.exists() && !dump.target.exists());
        // Nothing written (Java could not dump): nothing installed.
        dump.finish(true);
        assert!(!dump.target.exists());
        // Exited by itself: installed.
        std::fs::write(&dump.tmp, "whole").expect("write");
        dump.finish(true);
        assert!(!dump.tmp.exists());
        assert_eq!(
            std::fs::read_to_string(&dump.target).expect("read"),
            "whole"
        );
    }

    #[test]
    fn a_jvm_exited_by_itself_with_a_code_even_after_sigterm_and_not_when_killed() {
        use std::os::unix::process::ExitStatusExt as _;
        assert!(exited_by_itself(Some(ExitStatus::from_raw(0))));
        // Ran its shutdown after SIGTERM (status 143).
        assert!(exited_by_itself(Some(ExitStatus::from_raw(143 << 8))));
        // Killed (SIGKILL after the grace time), or not waited for.
        assert!(!exited_by_itself(Some(ExitStatus::from_raw(libc::SIGKILL))));
        assert!(!exited_by_itself(None));
    }

    #[test]
    fn one_process_at_a_time_writes_an_archive() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("a.jsa.lock");
        let first = lock(&path).expect("free");
        assert!(lock(&path).is_none(), "held by the first");
        drop(first);
        assert!(lock(&path).is_some(), "free again");
    }

    #[test]
    fn the_first_start_writes_the_archive_and_the_next_maps_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("cds.log");
        let parts = ["java".to_string(), "jars".to_string()];
        let first = archive(dir.path(), &parts, &log).expect("archive");
        let dump = first.dump.as_ref().expect("writes it");
        assert!(first.uses.is_none());
        assert!(
            first
                .options
                .iter()
                .any(|o| o.starts_with("-XX:ArchiveClassesAtExit="))
        );
        // Meanwhile another start goes without.
        let other = archive(dir.path(), &parts, &log).expect("archive");
        assert!(other.dump.is_none() && other.uses.is_none());
        std::fs::write(&dump.tmp, "jsa").expect("write");
        dump.finish(true);
        drop(first);
        // Last used long ago: mapping it again renews it for the cache's sweep.
        let target = dump_target(dir.path(), &parts);
        cache::tests::last_used(&target, 2 * cache::MAX_UNUSED);
        let next = archive(dir.path(), &parts, &log).expect("archive");
        assert_eq!(next.uses.as_ref(), Some(&target));
        assert!(next.dump.is_none());
        let accessed = std::fs::metadata(&target)
            .and_then(|m| m.accessed())
            .expect("atime");
        assert!(
            accessed.elapsed().unwrap_or_default() < cache::MAX_UNUSED,
            "a mapped archive counts as used now"
        );
        // Another key is another archive.
        let changed = archive(dir.path(), &["java".to_string()], &log).expect("archive");
        assert!(changed.uses.is_none() && changed.dump.is_some());
    }

    fn dump_target(dir: &Path, parts: &[String]) -> PathBuf {
        dir.join(format!("classes-{}.jsa", cache::key(parts)))
    }
}
