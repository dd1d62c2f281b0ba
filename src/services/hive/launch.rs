//! How the metastore's JVM is started. The plain start runs the launcher in Java's source-file
//! mode, which compiles it at every start, and loads and verifies some 6,000 classes from
//! PySpark's jars. The cached start (the per-user [`crate::cache`], folder `metastore`) runs the
//! launcher compiled once into a jar, and maps a class-data-sharing archive of the classes a
//! metastore loads: the first cached start writes the archive when its JVM exits
//! (`-XX:ArchiveClassesAtExit`), the starts after it use it (`-XX:SharedArchiveFile`).
//!
//! Each entry is named by a key of what it depends on (the launcher's source, the Java
//! installation, the jars with their sizes and times, the heap), so an upgrade makes a new entry
//! rather than a stale one. Java ignores an archive that does not match (with a warning in
//! `hive/cds.log`), but a damaged one can crash it: the caller then starts the plain way and,
//! when that works, drops the entries this start used.

use std::path::{Path, PathBuf};
use std::process::ExitStatus;

use tokio::process::Command;

use crate::cache;
use crate::services::spark::SparkInstall;

/// The launcher's main class.
const MAIN_CLASS: &str = "LoopbackMetaStore";
/// The cache folder of the metastore's entries.
const CACHE_FOLDER: &str = "metastore";

/// One way to start the metastore's JVM.
#[derive(Debug)]
pub struct Launch {
    /// JVM options that come with it (the class-data archive to use or to write, and where
    /// Java's messages about it go).
    pub options: Vec<String>,
    /// The class path.
    pub classpath: String,
    /// The main class, or the launcher's source file in source-file mode.
    pub main: String,
    /// The cache entries this start uses.
    pub uses: Vec<PathBuf>,
    /// The archive the JVM writes when it exits, installed then.
    pub dump: Option<Dump>,
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
    /// Installs the archive when the JVM exited by itself (a JVM killed while writing leaves
    /// half a file, and a half file can crash the JVMs that map it); else removes it.
    pub fn finish(&self, exit: Option<ExitStatus>) {
        let written = std::fs::metadata(&self.tmp).is_ok_and(|m| m.is_file() && m.len() > 0);
        if written && exit.is_some_and(|s| s.code().is_some()) {
            let _ = cache::install(&self.tmp, &self.target);
        } else {
            cache::remove(&self.tmp);
        }
    }
}

impl Launch {
    /// The plain start: the launcher's source file in source-file mode, the configuration
    /// folder first on the class path, then PySpark's jars and `extra_jars`.
    pub fn plain(
        install: &SparkInstall,
        conf_dir: &Path,
        source: &Path,
        extra_jars: &[&Path],
    ) -> Self {
        let mut classpath = format!(
            "{}:{}/jars/*",
            conf_dir.display(),
            install.spark_home.display()
        );
        for j in extra_jars {
            classpath.push(':');
            classpath.push_str(&j.display().to_string());
        }
        Launch {
            options: vec![],
            classpath,
            main: source.display().to_string(),
            uses: vec![],
            dump: None,
        }
    }

    /// True when it uses or writes cache entries.
    pub fn is_cached(&self) -> bool {
        !self.uses.is_empty() || self.dump.is_some()
    }

    /// Removes the cache entries it used (after it failed where the plain start worked).
    pub fn forget(&self) {
        for e in &self.uses {
            cache::remove(e);
        }
    }
}

/// The cached start when the cache can serve it (compiling the launcher on first use, a few
/// seconds once), else `None`. `heap` is the JVM's `-Xmx` value: an archive depends on it.
pub async fn cached(
    install: &SparkInstall,
    conf_dir: &Path,
    extra_jars: &[&Path],
    heap: &str,
) -> Option<Launch> {
    let dir = cache::folder(CACHE_FOLDER)?;
    let java = java_identity(&install.java_home)?;
    let jar = launcher_jar(install, &dir, &java).await?;
    let jars = jars_of(install)?;
    // The configuration folder goes last: an archive covers the class path up to its last jar,
    // holds no class of a folder and refuses a non-empty folder before that jar; and no jar of
    // PySpark holds a hive-site.xml, so the same file is found.
    let mut classpath = format!("{}:{}/jars/*", jar.display(), install.spark_home.display());
    for j in extra_jars {
        classpath.push(':');
        classpath.push_str(&j.display().to_string());
    }
    let mut parts = vec![
        java.clone(),
        heap.to_string(),
        cache::stamp(&jar)?,
        classpath.clone(),
    ];
    parts.extend(jars);
    for j in extra_jars {
        parts.push(cache::stamp(j)?);
    }
    classpath.push(':');
    classpath.push_str(&conf_dir.display().to_string());
    let archive = dir.join(format!("classes-{}.jsa", cache::key(&parts)));
    let mut options = vec![
        // Java's messages about the archive (hundreds of classes it cannot archive, a stale
        // archive ignored) go to their own file, not into the metastore's log.
        "-Xlog:cds*=off".to_string(),
        format!(
            "-Xlog:cds*=warning:file={}",
            conf_dir.join("cds.log").display()
        ),
    ];
    let (uses, dump) = if archive.is_file() {
        options.push(format!("-XX:SharedArchiveFile={}", archive.display()));
        (vec![jar, archive], None)
    } else {
        let name = archive.file_name()?.to_string_lossy().into_owned();
        match lock(&dir.join(format!("{name}.lock"))) {
            Some(writing) => {
                let tmp = cache::temp_path(&dir, &name);
                options.push(format!("-XX:ArchiveClassesAtExit={}", tmp.display()));
                let dump = Dump {
                    tmp,
                    target: archive,
                    _writing: Some(writing),
                };
                (vec![jar], Some(dump))
            }
            // Another run's JVM is writing it.
            None => (vec![jar], None),
        }
    };
    Some(Launch {
        options,
        classpath,
        main: MAIN_CLASS.into(),
        uses,
        dump,
    })
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
    Some(file)
}

/// What identifies the Java installation's build: its folder and the sizes and times of the
/// JVM library and of the class library.
fn java_identity(java_home: &Path) -> Option<String> {
    let home = std::fs::canonicalize(java_home).ok()?;
    let jvm = cache::stamp(&home.join("lib/server/libjvm.so"))?;
    let modules = cache::stamp(&home.join("lib/modules"))?;
    Some(format!("{}\0{jvm}\0{modules}", home.display()))
}

/// The stamps of PySpark's jars, in name order.
fn jars_of(install: &SparkInstall) -> Option<Vec<String>> {
    let mut jars: Vec<PathBuf> = std::fs::read_dir(install.spark_home.join("jars"))
        .ok()?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "jar"))
        .collect();
    jars.sort();
    jars.iter().map(|j| cache::stamp(j)).collect()
}

/// The launcher compiled into a jar of the cache, compiled now when missing; `None` when it
/// cannot be (no `javac` or `jar` in this Java: the plain start needs only the compiler module).
async fn launcher_jar(install: &SparkInstall, dir: &Path, java: &str) -> Option<PathBuf> {
    let target = dir.join(format!(
        "launcher-{}.jar",
        cache::key([super::METASTORE_LAUNCHER, java])
    ));
    if target.is_file() {
        return Some(target);
    }
    let tmp = cache::temp_path(dir, "launcher");
    let built = async {
        std::fs::create_dir(&tmp).ok()?;
        let source = tmp.join(format!("{MAIN_CLASS}.java"));
        std::fs::write(&source, super::METASTORE_LAUNCHER).ok()?;
        let classes = tmp.join("classes");
        let classpath = format!("{}/jars/*", install.spark_home.display());
        let mut javac = vec!["-nowarn", "-implicit:none", "-proc:none", "-d"];
        let (classes_arg, source_arg) = (classes.to_str()?, source.to_str()?);
        javac.extend([classes_arg, "-cp", &classpath, source_arg]);
        jdk_tool(install, "javac", &javac).await?;
        let jar = tmp.join("launcher.jar");
        let jar_arg = jar.to_str()?;
        jdk_tool(
            install,
            "jar",
            &["--create", "--file", jar_arg, "-C", classes_arg, "."],
        )
        .await?;
        cache::install(&jar, &target).ok()
    }
    .await;
    cache::remove(&tmp);
    built.map(|()| target)
}

/// Runs a tool of the Java installation (`javac`, `jar`); `Some` when it succeeded.
async fn jdk_tool(install: &SparkInstall, tool: &str, args: &[&str]) -> Option<()> {
    let out = Command::new(install.java_home.join("bin").join(tool))
        .args(args)
        .env("JAVA_HOME", &install.java_home)
        .kill_on_drop(true)
        .output()
        .await
        .ok()?;
    out.status.success().then_some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn install(root: &Path) -> SparkInstall {
        SparkInstall {
            spark_home: root.join("pyspark"),
            java_home: root.join("java"),
            java_version: 17,
            python: root.join("python"),
        }
    }

    #[test]
    fn the_plain_start_is_the_source_file_with_the_configuration_first() {
        let root = Path::new("/x");
        let l = Launch::plain(
            &install(root),
            Path::new("/env/hive"),
            Path::new("/env/hive/L.java"),
            &[Path::new("/pg.jar")],
        );
        assert_eq!(l.classpath, "/env/hive:/x/pyspark/jars/*:/pg.jar");
        assert_eq!(l.main, "/env/hive/L.java");
        assert!(l.options.is_empty());
        assert!(!l.is_cached());
    }

    #[test]
    fn an_archive_is_installed_only_after_a_clean_exit() {
        use std::os::unix::process::ExitStatusExt as _;
        let dir = tempfile::tempdir().expect("tempdir");
        let dump = Dump {
            tmp: cache::temp_path(dir.path(), "a.jsa"),
            target: dir.path().join("a.jsa"),
            _writing: None,
        };
        // Killed while writing (SIGKILL after the grace time): the half file goes.
        std::fs::write(&dump.tmp, "half").expect("write");
        dump.finish(Some(ExitStatus::from_raw(libc::SIGKILL)));
        assert!(!dump.tmp.exists() && !dump.target.exists());
        // Not waited for at all: the same.
        std::fs::write(&dump.tmp, "half").expect("write");
        dump.finish(None);
        assert!(!dump.tmp.exists() && !dump.target.exists());
        // Nothing written (Java could not dump): nothing installed.
        dump.finish(Some(ExitStatus::from_raw(143 << 8)));
        assert!(!dump.target.exists());
        // Exited by itself after SIGTERM (status 143): installed.
        std::fs::write(&dump.tmp, "whole").expect("write");
        dump.finish(Some(ExitStatus::from_raw(143 << 8)));
        assert!(!dump.tmp.exists());
        assert_eq!(
            std::fs::read_to_string(&dump.target).expect("read"),
            "whole"
        );
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
    fn forgetting_removes_the_entries_used() {
        let dir = tempfile::tempdir().expect("tempdir");
        let jar = dir.path().join("launcher-1.jar");
        let jsa = dir.path().join("classes-1.jsa");
        std::fs::write(&jar, "j").expect("write");
        std::fs::write(&jsa, "a").expect("write");
        let l = Launch {
            options: vec![],
            classpath: String::new(),
            main: MAIN_CLASS.into(),
            uses: vec![jar.clone(), jsa.clone()],
            dump: None,
        };
        assert!(l.is_cached());
        l.forget();
        assert!(!jar.exists() && !jsa.exists());
    }
}
