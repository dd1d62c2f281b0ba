//! The list-by-list account of a ranking comparison (a sink's `compare` rule): per ranked list,
//! its overlap@K with the golden, its rank correlation, the items that entered and left its top
//! K, scores beyond tolerance, and what differs outside the lists. `crate::snapshot::ranking`
//! computes it; reporters render it.

use std::fmt::Write as _;

use serde::Serialize;

use super::count;

/// A value of an item in both top Ks (its score, or another column or field) that moved beyond
/// its tolerance.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ValueChange {
    /// The item, as shown in the snapshot.
    pub item: String,
    /// What moved: `score`, or the column (`other fields` for JSON objects).
    pub what: String,
    /// Golden value, as rendered (`none` when the item has no score on that side).
    pub old: String,
    /// New score, as rendered.
    pub new: String,
}

/// One ranked list whose top K is not the same as the golden's.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ListChange {
    /// The list: a Redis key as shown (`"recs:user:1"`), or a group (`user_id=1`).
    pub list: String,
    /// Items of the golden's top K still in the new top K.
    pub kept: usize,
    /// Items of the golden's top K.
    pub of: usize,
    /// `kept / of` (1 for two empty lists, 0 for a list on one side only).
    pub overlap: f64,
    /// Kendall's tau over the items in both top Ks; `None` for a list on one side only.
    pub rank_correlation: Option<f64>,
    /// Items in the new top K and not in the golden's, best first.
    pub entered: Vec<String>,
    /// Items in the golden's top K and not in the new one, best first.
    pub left: Vec<String>,
    /// Items in both top Ks at another position.
    pub moved: usize,
    /// Values of items in both top Ks that moved beyond tolerance.
    pub values: Vec<ValueChange>,
    /// Values that moved within tolerance.
    pub tolerated: usize,
    /// Each bound the list broke, in words; empty when it is within them.
    pub broken: Vec<String>,
}

/// How a sink's ranked lists compare with the golden's.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RankingDiff {
    /// The depth compared.
    pub top_k: usize,
    /// The overlap@K bound.
    pub min_overlap: f64,
    /// The rank-correlation bound, if any.
    pub min_rank_correlation: Option<f64>,
    /// Lists on either side.
    pub lists: usize,
    /// The lists whose top K differs, in list order.
    pub changed: Vec<ListChange>,
    /// Differences outside the ranked lists (other keys, the columns, the header); any fails.
    pub outside: Vec<String>,
}

/// How many items of one kind a rendering lists before it says "and N more".
const SHOWN: usize = 20;

impl RankingDiff {
    /// True when every list is within its bounds and nothing differs outside the lists.
    pub fn passes(&self) -> bool {
        self.outside.is_empty() && self.changed.iter().all(|c| c.broken.is_empty())
    }

    /// Values that moved within tolerance, over every list.
    pub fn tolerated(&self) -> usize {
        self.changed.iter().map(|c| c.tolerated).sum()
    }

    /// The lists that broke a bound.
    pub fn broken(&self) -> impl Iterator<Item = &ListChange> {
        self.changed.iter().filter(|c| !c.broken.is_empty())
    }

    /// A readable account: counts and bounds, then each changed list (broken ones first) with
    /// its overlap, correlation, what entered and what left, then what differs outside.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let broken = self.broken().count();
        let mut bounds = format!("top_k {}, min_overlap {}", self.top_k, self.min_overlap);
        if let Some(r) = self.min_rank_correlation {
            let _ = write!(bounds, ", min_rank_correlation {r}");
        }
        let _ = writeln!(
            out,
            "ranking: {} of {} changed in the top {}, {broken} past the bounds ({bounds})",
            self.changed.len(),
            count(self.lists, "list"),
            self.top_k,
        );
        let ordered = self
            .changed
            .iter()
            .filter(|c| !c.broken.is_empty())
            .chain(self.changed.iter().filter(|c| c.broken.is_empty()));
        for (i, c) in ordered.enumerate() {
            if i == SHOWN {
                let _ = writeln!(out, "  … and {} more lists", self.changed.len() - SHOWN);
                break;
            }
            let mut facts = vec![format!(
                "overlap@{} {}/{} = {:.2}",
                self.top_k, c.kept, c.of, c.overlap
            )];
            if let Some(r) = c.rank_correlation {
                facts.push(format!("rank correlation {r:.2}"));
            }
            if c.moved > 0 {
                facts.push(format!("{} moved", count(c.moved, "item")));
            }
            if c.tolerated > 0 {
                facts.push(format!("{} within tolerance", count(c.tolerated, "value")));
            }
            let verdict = if c.broken.is_empty() {
                "within"
            } else {
                "broken"
            };
            let _ = writeln!(out, "  {verdict} {}: {}", c.list, facts.join(", "));
            if !c.broken.is_empty() {
                let _ = writeln!(out, "    past the bounds: {}", c.broken.join("; "));
            }
            items(&mut out, "entered", &c.entered);
            items(&mut out, "left", &c.left);
            for v in c.values.iter().take(SHOWN) {
                let _ = writeln!(out, "    ~ {} {}: {} → {}", v.item, v.what, v.old, v.new);
            }
        }
        for o in self.outside.iter().take(SHOWN) {
            let _ = writeln!(out, "  outside the lists: {o}");
        }
        if self.outside.len() > SHOWN {
            let _ = writeln!(
                out,
                "  … and {} more differences outside the lists",
                self.outside.len() - SHOWN
            );
        }
        out
    }
}

fn items(out: &mut String, what: &str, list: &[String]) {
    if list.is_empty() {
        return;
    }
    let shown: Vec<&str> = list.iter().take(SHOWN).map(String::as_str).collect();
    let more = if list.len() > SHOWN {
        format!(" … and {} more", list.len() - SHOWN)
    } else {
        String::new()
    };
    let _ = writeln!(out, "    {what}: {}{more}", shown.join(", "));
}
