//! The golden store's write policy in one place: what becomes of a sink's new snapshot once it
//! is compared with its golden. It keeps a copy in the report, writes the diff there, and then,
//! by policy, rewrites the golden (`--update`), writes a pending `.snap.new` beside it for review,
//! or (on CI) writes nothing beside the goldens and keeps the pending file in the report's
//! `pending/` folder instead. A difference made only of values within their tolerance passes and
//! leaves the golden as it is, also with `--update`; so does one whose ranked lists stay within
//! the sink's `compare` bounds.

use std::path::{Path, PathBuf};

use super::diff;
use super::golden::{self, WritePolicy};
use super::ranking::{self, RankRule, RankingDiff};
use super::table::Tolerances;
use crate::events::Events;
use crate::outcome::SinkResult;

/// How a sink's snapshot is compared beyond its text.
#[derive(Debug, Clone, Copy, Default)]
pub struct Rules<'a> {
    /// A table sink's key and tolerances: a difference is explained row by row.
    pub table: Option<(&'a [String], &'a Tolerances)>,
    /// The sink's ranking rule and its column tolerances: a difference is judged list by list
    /// (instead of row by row).
    pub ranking: Option<(&'a RankRule, &'a Tolerances)>,
}

/// Where snapshots go and what may be written.
#[derive(Debug, Clone, Copy)]
pub struct Store<'a> {
    /// What to do with snapshots that differ.
    pub policy: WritePolicy,
    /// The scenario's report folder (`snapshots/`, `diffs/`).
    pub report_dir: &'a Path,
    /// With `WritePolicy::Nothing`: (project root, folder) to lay pending files out in, like the
    /// project, instead of beside the goldens.
    pub mirror: Option<(&'a Path, &'a Path)>,
}

/// What became of one snapshot.
#[derive(Debug, Clone)]
pub struct Settled {
    /// The comparison's result.
    pub result: SinkResult,
    /// A pending file written for review, if any.
    pub pending: Option<PathBuf>,
    /// Values that differ from the golden within their column's tolerance.
    pub tolerated: usize,
    /// The ranked lists' account, when the sink has a ranking rule and its text differs.
    pub ranking: Option<RankingDiff>,
}

impl Store<'_> {
    /// Compares `rendered` (the sink's snapshot, or why it could not be read) with the golden at
    /// `golden` and applies the policy; `rules` says how a difference is explained and
    /// whether it may pass.
    pub fn settle(
        &self,
        name: &str,
        golden: &Path,
        rules: Rules<'_>,
        rendered: Result<String, String>,
        events: &Events,
    ) -> Settled {
        let mut out = Settled {
            result: SinkResult::Matched,
            pending: None,
            tolerated: 0,
            ranking: None,
        };
        let table = rules.table.filter(|_| rules.ranking.is_none());
        let actual = match rendered {
            Ok(a) => a,
            Err(e) => {
                out.result = SinkResult::ReadFailed(e);
                return out;
            }
        };
        let snap_dir = self.report_dir.join("snapshots");
        if let Err(e) = keep(&snap_dir.join(format!("{name}.snap")), &actual) {
            events.notice(format!(
                "cannot keep the snapshot of `{name}` in {}: {e}",
                snap_dir.display()
            ));
        }
        let golden_name = golden
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let current = match golden::read(golden) {
            Ok(g) => g,
            Err(e) => {
                out.result =
                    SinkResult::ReadFailed(format!("cannot read golden {}: {e}", golden.display()));
                return out;
            }
        };
        let (diff, table_diff) = match current.as_deref() {
            Some(g) => diff::explain(g, &actual, &golden_name, table),
            None => (None, None),
        };
        let tolerant = table.is_some_and(|(_, t)| !t.is_empty());
        out.ranking = match (rules.ranking, current.as_deref()) {
            (Some((rule, tol)), Some(g)) if diff.is_some() => {
                Some(ranking::compare(g, &actual, rule, tol))
            }
            _ => None,
        };
        let diff = match (&table_diff, &out.ranking) {
            (Some(t), _) if tolerant && t.passes() => {
                out.tolerated = t.tolerated;
                None
            }
            (_, Some(r)) if r.passes() => {
                out.tolerated = r.tolerated();
                None
            }
            _ => diff,
        };
        if current.is_some() && diff.is_none() {
            if self.policy != WritePolicy::Nothing {
                remove_stale_pending(golden, events);
            }
            return out;
        }
        if let Some(d) = &diff {
            let diffs = self.report_dir.join("diffs");
            if let Err(e) = keep(&diffs.join(format!("{name}.diff")), d) {
                events.notice(format!(
                    "cannot keep the diff of `{name}` in {}: {e}",
                    diffs.display()
                ));
            }
        }
        out.result = match self.policy {
            WritePolicy::Update => match golden::write_atomic(golden, &actual) {
                Ok(()) => {
                    remove_stale_pending(golden, events);
                    events.notice(format!("wrote golden {}", golden.display()));
                    SinkResult::Updated { diff }
                }
                Err(e) => SinkResult::WriteFailed(format!(
                    "cannot write golden {}: {e}",
                    golden.display()
                )),
            },
            WritePolicy::Pending | WritePolicy::Nothing => {
                let pending = match self.mirror {
                    _ if self.policy == WritePolicy::Pending => Some(golden::pending_path(golden)),
                    Some((root, dir)) => golden
                        .strip_prefix(root)
                        .ok()
                        .map(|rel| golden::pending_path(&dir.join(rel))),
                    None => None,
                };
                let written = match &pending {
                    Some(pending) => pending
                        .parent()
                        .map_or(Ok(()), std::fs::create_dir_all)
                        .and_then(|()| golden::write_atomic(pending, &actual))
                        .map_err(|e| (pending.clone(), e)),
                    None => Ok(()),
                };
                match (written, diff) {
                    // The new snapshot is what a developer reviews: losing it fails the sink,
                    // naming the file, whatever the comparison said (the diff stays in the
                    // report's diffs/ folder).
                    (Err((pending, e)), _) => SinkResult::WriteFailed(format!(
                        "cannot write the pending snapshot {}: {e}",
                        pending.display()
                    )),
                    (Ok(()), diff) => {
                        out.pending = pending;
                        match diff {
                            Some(diff) => SinkResult::Differs {
                                diff,
                                table: table_diff,
                            },
                            None => SinkResult::NoGolden,
                        }
                    }
                }
            }
        };
        out
    }
}

/// Removes the pending file of a golden that is now settled; one that cannot be removed would be
/// offered for review again, so that is said.
/// Writes a file of the report, with its folder (a sink of a named step is `<step>/<sink>`, so
/// its files go in a folder of the step's).
fn keep(path: &Path, contents: &str) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, contents)
}

fn remove_stale_pending(golden: &Path, events: &Events) {
    if let Err(e) = golden::remove_pending(golden) {
        events.notice(format!(
            "warning: cannot remove the stale pending snapshot {}: {e}",
            golden::pending_path(golden).display()
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::ranking::{Lists, Order};

    fn zset(members: &[(&str, f64)]) -> String {
        let mut out =
            String::from("# harness snapshot v1\n# sink: recs\nkeys: 1\n\n\"recs:1\" zset\n");
        for (m, s) in members {
            out.push_str(&format!("  {s:?} \"{m}\"\n"));
        }
        out
    }

    /// Settles `actual` against the golden `golden` under `policy` with a top-3 rule; returns
    /// the result and the golden afterwards.
    fn settle(golden: &str, actual: &str, policy: WritePolicy) -> (Settled, String, bool) {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("golden").join("recs.snap");
        std::fs::create_dir_all(path.parent().expect("parent")).expect("golden dir");
        std::fs::write(&path, golden).expect("golden");
        let rule = RankRule {
            top_k: 3,
            min_overlap: 0.6,
            min_rank_correlation: None,
            order: Order::Desc,
            tolerance: None,
            lists: Lists::Keys {
                item: None,
                score: None,
            },
        };
        let tol = Tolerances::new();
        let store = Store {
            policy,
            report_dir: &dir.path().join("report"),
            mirror: None,
        };
        let (events, _rx) = Events::channel();
        let rules = Rules {
            table: None,
            ranking: Some((&rule, &tol)),
        };
        let settled = store.settle("recs", &path, rules, Ok(actual.to_string()), &events);
        let after = std::fs::read_to_string(&path).expect("golden after");
        (settled, after, golden::pending_path(&path).exists())
    }

    #[test]
    fn lists_within_the_bounds_pass_and_leave_the_golden_unless_updating() {
        let g = zset(&[("a", 0.9), ("b", 0.8), ("c", 0.7)]);
        // c leaves the top 3 for d (2 of 3 kept), scores of a and b unchanged.
        let within = zset(&[("a", 0.9), ("b", 0.8), ("d", 0.75), ("c", 0.7)]);
        let (s, after, pending) = settle(&g, &within, WritePolicy::Pending);
        assert!(matches!(s.result, SinkResult::Matched), "{:?}", s.result);
        assert_eq!(after, g);
        assert!(!pending);
        let account = s.ranking.expect("the lists' account");
        assert_eq!(account.changed[0].entered, vec!["\"d\""]);
        // Like a difference within tolerance, --update leaves it alone too.
        let (s, after, _) = settle(&g, &within, WritePolicy::Update);
        assert!(matches!(s.result, SinkResult::Matched), "{:?}", s.result);
        assert_eq!(after, g);
        // Past the bound: the sink differs, a pending file is written, the golden stays.
        let drift = zset(&[("a", 0.9), ("x", 0.85), ("y", 0.84), ("b", 0.8)]);
        let (s, after, pending) = settle(&g, &drift, WritePolicy::Pending);
        assert!(
            matches!(s.result, SinkResult::Differs { .. }),
            "{:?}",
            s.result
        );
        assert_eq!(after, g);
        assert!(pending);
        assert!(!s.ranking.expect("the lists' account").passes());
    }
}
