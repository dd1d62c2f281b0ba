//! Review of pending snapshots: the `.snap.new` files a run left beside the goldens. Accepting
//! one replaces its golden atomically; rejecting one deletes it.

use std::path::{Path, PathBuf};

use super::golden::{pending_path, read, write_atomic};

/// One pending snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    /// Scenario name.
    pub scenario: String,
    /// Sink name.
    pub sink: String,
    /// The golden it would replace.
    pub golden: PathBuf,
    /// The pending file.
    pub pending: PathBuf,
}

/// Every pending snapshot in the golden folders of the given scenario folders, sorted.
pub fn find(scenario_dirs: &[(String, PathBuf)]) -> Vec<Pending> {
    let mut out = Vec::new();
    for (scenario, dir) in scenario_dirs {
        for (name, _) in super::golden::files(&dir.join("golden")) {
            if let Some(sink) = name.strip_suffix(".snap.new") {
                let golden = dir.join("golden").join(format!("{sink}.snap"));
                out.push(Pending {
                    scenario: scenario.clone(),
                    sink: sink.to_string(),
                    pending: pending_path(&golden),
                    golden,
                });
            }
        }
    }
    out.sort_by(|a, b| (&a.scenario, &a.sink).cmp(&(&b.scenario, &b.sink)));
    out
}

impl Pending {
    /// The golden's file name (`<sink>.snap`), as diffs name it.
    pub fn file_name(&self) -> String {
        self.golden
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    /// The golden's text (empty when there is none yet) and the pending one.
    pub fn texts(&self) -> std::io::Result<(String, String)> {
        Ok((
            read(&self.golden)?.unwrap_or_default(),
            std::fs::read_to_string(&self.pending)?,
        ))
    }

    /// Makes the pending snapshot the golden.
    pub fn accept(&self) -> std::io::Result<()> {
        let text = std::fs::read_to_string(&self.pending)?;
        write_atomic(&self.golden, &text)?;
        remove(&self.pending)
    }

    /// Drops the pending snapshot.
    pub fn reject(&self) -> std::io::Result<()> {
        remove(&self.pending)
    }
}

fn remove(path: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_replaces_the_golden_and_reject_keeps_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = dir.path().join("s");
        std::fs::create_dir_all(s.join("golden")).expect("mkdir");
        for (name, old, new) in [("a", "old a\n", "new a\n"), ("b", "old b\n", "new b\n")] {
            std::fs::write(s.join(format!("golden/{name}.snap")), old).expect("golden");
            std::fs::write(s.join(format!("golden/{name}.snap.new")), new).expect("pending");
        }
        let pending = find(&[("s".into(), s.clone())]);
        assert_eq!(
            pending.iter().map(|p| p.sink.as_str()).collect::<Vec<_>>(),
            vec!["a", "b"]
        );
        pending[0].accept().expect("accept");
        pending[1].reject().expect("reject");
        assert_eq!(
            std::fs::read_to_string(s.join("golden/a.snap")).expect("a"),
            "new a\n"
        );
        assert_eq!(
            std::fs::read_to_string(s.join("golden/b.snap")).expect("b"),
            "old b\n"
        );
        assert!(find(&[("s".into(), s)]).is_empty());
    }
}
