//! How the metastore's JVM is started. The plain start runs the launcher in Java's source-file
//! mode, which compiles it at every start, and loads and verifies some 6,000 classes from
//! PySpark's jars. The cached start (the per-user [`crate::cache`], folder `metastore`) runs the
//! launcher compiled once into a jar, and maps a class-data-sharing archive of the classes a
//! metastore loads ([`class_archive`]; Java's messages about it go to `hive/cds.log`).
//!
//! Each entry is named by a key of what it depends on (the launcher's source, the Java
//! installation, the jars with their sizes and times, the heap), so an upgrade makes a new entry
//! rather than a stale one. A damaged entry can crash the JVM: the caller then starts the plain
//! way and, when that works, drops the entries this start used.

use std::path::{Path, PathBuf};

use tokio::process::Command;

use crate::cache;
use crate::services::spark::SparkInstall;
use crate::services::spark::class_archive::{self, Dump, jars_of, java_identity};

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
    let spark_home = class_archive::spark_home(install)?;
    let jars = jars_of(&spark_home)?;
    // The configuration folder goes last: an archive covers the class path up to its last jar,
    // holds no class of a folder and refuses a non-empty folder before that jar; and no jar of
    // PySpark holds a hive-site.xml, so the same file is found.
    let mut classpath = format!("{}:{}/jars/*", jar.display(), spark_home.display());
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
    let log = conf_dir.join("cds.log");
    let archive = class_archive::archive(&dir, &parts, &log)?;
    let uses = std::iter::once(jar).chain(archive.uses).collect();
    Some(Launch {
        options: archive.options,
        classpath,
        main: MAIN_CLASS.into(),
        uses,
        dump: archive.dump,
    })
}

/// The launcher compiled into a jar of the cache, compiled now when missing; `None` when it
/// cannot be (no `javac` or `jar` in this Java: the plain start needs only the compiler module).
async fn launcher_jar(install: &SparkInstall, dir: &Path, java: &str) -> Option<PathBuf> {
    let target = dir.join(format!(
        "launcher-{}.jar",
        cache::key([super::METASTORE_LAUNCHER, java])
    ));
    if target.is_file() {
        cache::used(&target);
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
