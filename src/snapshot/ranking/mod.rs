//! Ranking-aware comparison of sinks holding ordered lists (a sink's `compare` rule): Redis
//! sorted sets and lists, Redis strings holding JSON arrays, and tables ranked within a group. Both
//! rendered snapshots are read back into their lists; each list passes when its top K keeps
//! enough of the golden's items (overlap@K), optionally keeps their order (Kendall's tau), and
//! keeps the values of the items on both sides within tolerance. Everything outside the lists
//! must be the same as in the golden. The exact rules are in docs/snapshots.md.

use std::collections::{BTreeMap, HashMap};

mod read;

use read::{Entry, Read, read};

use super::table::{Tolerance, Tolerances, number, tolerance_for};
pub use crate::outcome::ranking_diff::{ListChange, RankingDiff, ValueChange};

/// The largest `top_k`: the rank correlation costs K² comparisons per list.
pub const MAX_TOP_K: usize = 10_000;

/// How a list is ordered by its scores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Order {
    /// Highest score first (the default).
    #[default]
    Desc,
    /// Lowest score first.
    Asc,
}

/// Where the lists are in a sink's snapshot.
#[derive(Debug, Clone, PartialEq)]
pub enum Lists {
    /// Redis keys: each sorted set, each Redis list, and each string holding a JSON array, is a
    /// list.
    Keys {
        /// The field identifying a JSON array's object items (else the whole item).
        item: Option<String>,
        /// The field holding a JSON array item's score.
        score: Option<String>,
    },
    /// A table: one list per group, ranked by `rank` (ascending) or else by `score`.
    Table {
        /// Columns naming a list (empty: the whole table is one list).
        group: Vec<String>,
        /// The column identifying an item within its list.
        item: String,
        /// The column holding the rank (1 = first).
        rank: Option<String>,
        /// The column holding the score.
        score: Option<String>,
    },
}

/// A sink's `compare` rule.
#[derive(Debug, Clone, PartialEq)]
pub struct RankRule {
    /// The depth compared: the first K items of each list.
    pub top_k: usize,
    /// The least overlap@K a list may have.
    pub min_overlap: f64,
    /// The least Kendall's tau over the items in both top Ks, if bounded.
    pub min_rank_correlation: Option<f64>,
    /// How scores order a sorted set or a table without `rank`.
    pub order: Order,
    /// The tolerance of scores (for tables, else the sink's tolerance of the score column).
    pub tolerance: Option<Tolerance>,
    /// Where the lists are.
    pub lists: Lists,
}

/// Compares the lists of two rendered snapshots of a sink under `rule`; `tol` is the sink's
/// column tolerance (tables).
pub fn compare(golden: &str, actual: &str, rule: &RankRule, tol: &Tolerances) -> RankingDiff {
    let mut diff = RankingDiff {
        top_k: rule.top_k,
        min_overlap: rule.min_overlap,
        min_rank_correlation: rule.min_rank_correlation,
        lists: 0,
        changed: vec![],
        outside: vec![],
    };
    let (g, a) = match (read(golden, rule, "golden"), read(actual, rule, "new")) {
        (Ok(g), Ok(a)) => (g, a),
        (Err(e), _) | (_, Err(e)) => {
            diff.outside.push(e);
            return diff;
        }
    };
    if g.header != a.header {
        diff.outside
            .push("the header differs (see the text diff)".into());
    }
    for name in union(&g.rest, &a.rest) {
        match (g.rest.get(name), a.rest.get(name)) {
            (Some(x), Some(y)) if x == y => {}
            (Some(_), Some(_)) => diff.outside.push(format!("{name} differs")),
            (Some(_), None) => diff.outside.push(format!("{name} only in the golden")),
            (None, _) => diff
                .outside
                .push(format!("{name} only in the new snapshot")),
        }
    }
    for name in union(&g.list_lines, &a.list_lines) {
        if let (Some(x), Some(y)) = (g.list_lines.get(name), a.list_lines.get(name))
            && x != y
        {
            diff.outside.push(format!("`{x}` is now `{y}`"));
        }
    }
    let score_tol = rule.tolerance.or_else(|| match &rule.lists {
        Lists::Table { score: Some(s), .. } => tolerance_for(tol, s).copied(),
        _ => None,
    });
    let names = union(&g.lists, &a.lists);
    diff.lists = names.len();
    for name in names {
        let top = |r: &Read| {
            r.lists
                .get(name)
                .map(|l| l.iter().take(rule.top_k).cloned().collect::<Vec<_>>())
        };
        let change = match (top(&g), top(&a)) {
            (Some(gl), Some(al)) => list_change(name, &gl, &al, rule, score_tol.as_ref(), tol),
            (gl, al) => {
                let items = |l: Option<Vec<Entry>>| -> Vec<String> {
                    l.unwrap_or_default().into_iter().map(|e| e.item).collect()
                };
                let only = if gl.is_some() {
                    "golden"
                } else {
                    "new snapshot"
                };
                let left = items(gl);
                Some(ListChange {
                    list: name.clone(),
                    kept: 0,
                    of: left.len(),
                    overlap: 0.0,
                    rank_correlation: None,
                    entered: items(al),
                    left,
                    moved: 0,
                    values: vec![],
                    tolerated: 0,
                    broken: vec![format!("the list is only in the {only}")],
                })
            }
        };
        diff.changed.extend(change);
    }
    diff
}

/// The names on either side, in order.
fn union<'a, V>(g: &'a BTreeMap<String, V>, a: &'a BTreeMap<String, V>) -> Vec<&'a String> {
    let mut names: Vec<&String> = g.keys().chain(a.keys()).collect();
    names.sort();
    names.dedup();
    names
}

/// How a list's top K changed, or `None` when it is the same.
fn list_change(
    name: &str,
    g: &[Entry],
    a: &[Entry],
    rule: &RankRule,
    score_tol: Option<&Tolerance>,
    tol: &Tolerances,
) -> Option<ListChange> {
    if g == a {
        return None;
    }
    let g_pos: HashMap<&str, usize> = g
        .iter()
        .enumerate()
        .map(|(i, e)| (e.item.as_str(), i))
        .collect();
    let a_pos: HashMap<&str, usize> = a
        .iter()
        .enumerate()
        .map(|(i, e)| (e.item.as_str(), i))
        .collect();
    let entered: Vec<String> = a
        .iter()
        .filter(|e| !g_pos.contains_key(e.item.as_str()))
        .map(|e| e.item.clone())
        .collect();
    let left: Vec<String> = g
        .iter()
        .filter(|e| !a_pos.contains_key(e.item.as_str()))
        .map(|e| e.item.clone())
        .collect();
    // The new places of the items on both sides, in their golden order.
    let common: Vec<(&Entry, &Entry, usize)> = g
        .iter()
        .filter_map(|e| a_pos.get(e.item.as_str()).map(|&i| (e, &a[i], i)))
        .collect();
    let kept = common.len();
    let overlap = match (g.len(), a.len()) {
        (0, 0) => 1.0,
        (0, _) => 0.0,
        (of, _) => kept as f64 / of as f64,
    };
    let places: Vec<usize> = common.iter().map(|c| c.2).collect();
    let mut sorted = places.clone();
    sorted.sort_unstable();
    let moved = places.iter().zip(&sorted).filter(|(p, s)| p != s).count();
    let tau = kendall_tau(&places);
    let mut values = Vec::new();
    let mut tolerated = 0;
    let mut check = |item: &str, what: &str, old: Option<&str>, new: Option<&str>, t| {
        if old == new {
            return;
        }
        let within = match (old.and_then(number), new.and_then(number), t) {
            (Some(o), Some(n), Some(t)) => Tolerance::allows(t, o, n),
            _ => false,
        };
        if within {
            tolerated += 1;
        } else {
            values.push(ValueChange {
                item: item.to_string(),
                what: what.to_string(),
                old: old.unwrap_or("none").to_string(),
                new: new.unwrap_or("none").to_string(),
            });
        }
    };
    for (ge, ae, _) in &common {
        check(
            &ge.item,
            "score",
            ge.score.as_deref(),
            ae.score.as_deref(),
            score_tol,
        );
        for (column, old) in &ge.others {
            let new = ae.others.iter().find(|(c, _)| c == column).map(|(_, v)| v);
            let t = tolerance_for(tol, column);
            check(&ge.item, column, Some(old), new.map(String::as_str), t);
        }
    }
    let mut broken = Vec::new();
    // A margin, so that 4 of 5 meets 0.8 whatever the rounding of the two.
    if overlap < rule.min_overlap - 1e-9 {
        broken.push(format!(
            "overlap@{} {overlap:.2} below min_overlap {}",
            rule.top_k, rule.min_overlap
        ));
    }
    if let Some(min) = rule.min_rank_correlation
        && tau < min - 1e-9
    {
        broken.push(format!(
            "rank correlation {tau:.2} below min_rank_correlation {min}"
        ));
    }
    if !values.is_empty() {
        broken.push(format!(
            "{} beyond tolerance",
            crate::outcome::count(values.len(), "value")
        ));
    }
    Some(ListChange {
        list: name.to_string(),
        kept,
        of: g.len(),
        overlap,
        rank_correlation: Some(tau),
        entered,
        left,
        moved,
        values,
        tolerated,
        broken,
    })
}

/// Kendall's tau of `places` against their order: (concordant − discordant pairs) / all pairs;
/// 1 with fewer than two items (nothing to disagree on). Places are distinct, so there are no
/// ties.
fn kendall_tau(places: &[usize]) -> f64 {
    let n = places.len();
    if n < 2 {
        return 1.0;
    }
    let mut score: i64 = 0;
    for i in 0..n {
        for j in i + 1..n {
            score += if places[i] < places[j] { 1 } else { -1 };
        }
    }
    score as f64 / (n * (n - 1) / 2) as f64
}

#[cfg(test)]
mod tests {
    use super::read::read_keys;
    use super::*;
    use crate::snapshot::canonical::{Column, Header, KeyEntry, KeySpace, KeyValue, Table, Value};

    fn header() -> Header {
        Header {
            sink: "recs".into(),
            source: "redis keys recs:*".into(),
        }
    }

    /// A keys snapshot: each (key, members with scores) a sorted set, plus a plain string key.
    fn zsets(lists: &[(&str, &[(&str, f64)])], other: &str) -> String {
        let mut keys: Vec<KeyEntry> = lists
            .iter()
            .map(|(k, members)| KeyEntry {
                key: k.as_bytes().to_vec(),
                expires: false,
                value: KeyValue::ZSet(
                    members
                        .iter()
                        .map(|(m, s)| (m.as_bytes().to_vec(), *s))
                        .collect(),
                ),
            })
            .collect();
        keys.push(KeyEntry {
            key: b"recs:version".to_vec(),
            expires: false,
            value: KeyValue::String(other.as_bytes().to_vec()),
        });
        KeySpace(keys).render(&header(), false, None)
    }

    fn rule(top_k: usize, min_overlap: f64) -> RankRule {
        RankRule {
            top_k,
            min_overlap,
            min_rank_correlation: None,
            order: Order::Desc,
            tolerance: Some(Tolerance {
                abs: Some(0.1),
                rel: None,
            }),
            lists: Lists::Keys {
                item: None,
                score: None,
            },
        }
    }

    const GOLDEN: &[(&str, f64)] = &[
        ("a", 0.9),
        ("b", 0.8),
        ("c", 0.7),
        ("d", 0.6),
        ("e", 0.5),
        ("f", 0.4),
    ];

    #[test]
    fn a_small_reordering_passes_and_names_what_entered_and_left() {
        let g = zsets(&[("recs:1", GOLDEN), ("recs:2", GOLDEN)], "v1");
        // b and c swap (scores within 0.1), e falls out of the top 5 for f.
        let moved: &[(&str, f64)] = &[
            ("a", 0.9),
            ("c", 0.79),
            ("b", 0.78),
            ("d", 0.6),
            ("f", 0.55),
            ("e", 0.45),
        ];
        let a = zsets(&[("recs:1", moved), ("recs:2", GOLDEN)], "v1");
        let d = compare(&g, &a, &rule(5, 0.8), &Tolerances::new());
        assert!(d.passes(), "{}", d.render());
        assert_eq!(d.lists, 2);
        assert_eq!(d.changed.len(), 1, "recs:2 is the same");
        let c = &d.changed[0];
        assert_eq!(c.list, "\"recs:1\"");
        assert_eq!((c.kept, c.of), (4, 5));
        assert_eq!(c.entered, vec!["\"f\""]);
        assert_eq!(c.left, vec!["\"e\""]);
        assert_eq!(c.moved, 2);
        // Of the 6 pairs among a, b, c, d, one (b, c) is reversed: (5 - 1) / 6.
        assert_eq!(c.rank_correlation, Some(4.0 / 6.0));
        assert_eq!(c.tolerated, 2, "c and b moved within 0.1");
        let text = d.render();
        assert!(
            text.contains("within \"recs:1\": overlap@5 4/5 = 0.80"),
            "{text}"
        );
        assert!(
            text.contains("entered: \"f\"") && text.contains("left: \"e\""),
            "{text}"
        );
    }

    #[test]
    fn a_drift_past_the_bound_fails_naming_the_list_and_its_overlap() {
        let g = zsets(&[("recs:1", GOLDEN)], "v1");
        let drift: &[(&str, f64)] = &[
            ("a", 0.9),
            ("x", 0.85),
            ("y", 0.84),
            ("b", 0.8),
            ("z", 0.75),
        ];
        let a = zsets(&[("recs:1", drift)], "v1");
        let d = compare(&g, &a, &rule(5, 0.8), &Tolerances::new());
        assert!(!d.passes());
        let c = &d.changed[0];
        assert_eq!((c.kept, c.of), (2, 5));
        assert_eq!(c.entered, vec!["\"x\"", "\"y\"", "\"z\""]);
        assert_eq!(c.left, vec!["\"c\"", "\"d\"", "\"e\""]);
        let text = d.render();
        assert!(
            text.contains("broken \"recs:1\": overlap@5 2/5 = 0.40"),
            "{text}"
        );
        assert!(
            text.contains("overlap@5 0.40 below min_overlap 0.8"),
            "{text}"
        );
        // The same drift passes a looser bound.
        assert!(compare(&g, &a, &rule(5, 0.4), &Tolerances::new()).passes());
    }

    #[test]
    fn the_rank_correlation_bound_catches_a_reversal_that_keeps_every_item() {
        let g = zsets(&[("recs:1", &GOLDEN[..3])], "v1");
        let reversed: &[(&str, f64)] = &[("c", 0.9), ("b", 0.8), ("a", 0.7)];
        let a = zsets(&[("recs:1", reversed)], "v1");
        let mut r = rule(3, 1.0);
        r.tolerance = Some(Tolerance {
            abs: Some(1.0),
            rel: None,
        });
        assert!(compare(&g, &a, &r, &Tolerances::new()).passes());
        r.min_rank_correlation = Some(0.0);
        let d = compare(&g, &a, &r, &Tolerances::new());
        assert!(!d.passes());
        assert_eq!(d.changed[0].rank_correlation, Some(-1.0));
        assert!(
            d.render()
                .contains("rank correlation -1.00 below min_rank_correlation 0"),
            "{}",
            d.render()
        );
    }

    #[test]
    fn a_score_beyond_tolerance_fails_even_in_place() {
        let g = zsets(&[("recs:1", GOLDEN)], "v1");
        let mut moved = GOLDEN.to_vec();
        moved[1].1 = 0.65;
        let a = zsets(&[("recs:1", &moved)], "v1");
        let d = compare(&g, &a, &rule(5, 0.8), &Tolerances::new());
        assert!(!d.passes());
        let c = &d.changed[0];
        assert_eq!(c.overlap, 1.0);
        assert_eq!(
            c.values,
            vec![ValueChange {
                item: "\"b\"".into(),
                what: "score".into(),
                old: "0.8".into(),
                new: "0.65".into()
            }]
        );
        assert!(d.render().contains("~ \"b\" score: 0.8 → 0.65"));
        // Below the top K, nothing is compared.
        let mut tail = GOLDEN.to_vec();
        tail[5].1 = 0.01;
        let a = zsets(&[("recs:1", &tail)], "v1");
        let d = compare(&g, &a, &rule(5, 0.8), &Tolerances::new());
        assert!(d.passes() && d.changed.is_empty(), "{}", d.render());
    }

    #[test]
    fn a_list_on_one_side_only_and_a_change_outside_the_lists_fail() {
        let g = zsets(&[("recs:1", GOLDEN), ("recs:2", GOLDEN)], "v1");
        let a = zsets(&[("recs:1", GOLDEN)], "v1");
        let d = compare(&g, &a, &rule(5, 0.0), &Tolerances::new());
        assert!(!d.passes());
        assert_eq!(d.changed[0].list, "\"recs:2\"");
        assert_eq!(d.changed[0].left.len(), 5);
        assert!(d.render().contains("the list is only in the golden"));
        let d = compare(&a, &g, &rule(5, 0.0), &Tolerances::new());
        assert!(d.render().contains("the list is only in the new snapshot"));
        let d = compare(
            &g,
            &zsets(&[("recs:1", GOLDEN), ("recs:2", GOLDEN)], "v2"),
            &rule(5, 0.8),
            &Tolerances::new(),
        );
        assert!(!d.passes());
        assert_eq!(d.outside, vec!["key \"recs:version\" differs"]);
    }

    #[test]
    fn json_arrays_are_lists_in_array_order_identified_by_a_field() {
        let snap = |json: &str| {
            KeySpace(vec![KeyEntry {
                key: b"similar:1".to_vec(),
                expires: false,
                value: KeyValue::String(json.as_bytes().to_vec()),
            }])
            .render(&header(), true, None)
        };
        let g =
            snap(r#"[{"id":1,"s":0.9,"t":"x"},{"id":2,"s":0.8,"t":"y"},{"id":3,"s":0.7,"t":"z"}]"#);
        let a = snap(
            r#"[{"id":2,"s":0.81,"t":"y"},{"id":1,"s":0.9,"t":"x"},{"id":4,"s":0.7,"t":"w"}]"#,
        );
        let mut r = rule(3, 0.6);
        r.lists = Lists::Keys {
            item: Some("id".into()),
            score: Some("s".into()),
        };
        let d = compare(&g, &a, &r, &Tolerances::new());
        assert!(d.passes(), "{}", d.render());
        let c = &d.changed[0];
        assert_eq!(
            (c.entered.as_slice(), c.left.as_slice()),
            (&["4".to_string()][..], &["3".to_string()][..])
        );
        assert_eq!(c.rank_correlation, Some(-1.0));
        // Another field of an item on both sides is compared exactly.
        let a = snap(
            r#"[{"id":1,"s":0.9,"t":"changed"},{"id":2,"s":0.8,"t":"y"},{"id":3,"s":0.7,"t":"z"}]"#,
        );
        let d = compare(&g, &a, &r, &Tolerances::new());
        assert!(!d.passes());
        assert_eq!(d.changed[0].values[0].what, "other fields");
        // Without decode = "json" the array is quoted text, read the same way.
        let quoted = KeySpace(vec![KeyEntry {
            key: b"similar:1".to_vec(),
            expires: false,
            value: KeyValue::String(br#"[1,2,3]"#.to_vec()),
        }])
        .render(&header(), false, None);
        let lists = read_keys(&quoted, Order::Desc, None, None).lists;
        let items: Vec<&str> = lists["\"similar:1\""]
            .iter()
            .map(|e| e.item.as_str())
            .collect();
        assert_eq!(items, vec!["1", "2", "3"]);
    }

    #[test]
    fn redis_lists_are_lists_in_index_order() {
        let snap = |items: &[&str]| {
            KeySpace(vec![KeyEntry {
                key: b"top".to_vec(),
                expires: false,
                value: KeyValue::List(items.iter().map(|i| i.as_bytes().to_vec()).collect()),
            }])
            .render(&header(), true, None)
        };
        let long = format!(r#"{{"id":"c","pad":"{}"}}"#, "x".repeat(120));
        let g = snap(&[r#"{"id":"a"}"#, r#"{"id":"b"}"#, &long, "plain"]);
        assert!(g.contains("  [2] {\n"), "a long value goes over lines: {g}");
        let lists = read_keys(&g, Order::Desc, Some("id"), None).lists;
        let items: Vec<&str> = lists["\"top\""].iter().map(|e| e.item.as_str()).collect();
        assert_eq!(items, vec!["\"a\"", "\"b\"", "\"c\"", "\"plain\""]);
        let a = snap(&[r#"{"id":"b"}"#, r#"{"id":"a"}"#, &long, "plain"]);
        let mut r = rule(4, 1.0);
        r.lists = Lists::Keys {
            item: Some("id".into()),
            score: None,
        };
        let d = compare(&g, &a, &r, &Tolerances::new());
        assert!(d.passes(), "{}", d.render());
        assert_eq!(d.changed[0].moved, 2);
    }

    #[test]
    fn the_example_als_golden_reads_as_ten_lists_of_five() {
        let g = include_str!("../../../scenarios/als_recommendations/golden/recommendations.snap");
        let mut r = rule(5, 0.8);
        r.lists = Lists::Keys {
            item: Some("item".into()),
            score: Some("score".into()),
        };
        let read = read_keys(g, Order::Desc, Some("item"), Some("score"));
        assert_eq!(read.lists.len(), 10);
        assert!(read.rest.is_empty());
        let first = &read.lists["\"recs:user:101\""];
        assert_eq!(first.len(), 5);
        assert_eq!(
            (first[0].item.as_str(), first[0].score.as_deref()),
            ("1003", Some("4.3941"))
        );
        // The first two swap places in the array, each keeping its score: it passes.
        let swapped = g.replacen(
            "    {\"item\":1003,\"score\":4.3941},\n    {\"item\":1002,\"score\":4.0354},",
            "    {\"item\":1002,\"score\":4.0354},\n    {\"item\":1003,\"score\":4.3941},",
            1,
        );
        assert_ne!(swapped, g);
        let d = compare(g, &swapped, &r, &Tolerances::new());
        assert!(d.passes(), "{}", d.render());
        assert_eq!(d.changed.len(), 1);
        // One of the 10 pairs reversed: (9 - 1) / 10.
        assert_eq!(d.changed[0].rank_correlation, Some(0.8));
    }

    fn ranked_table(rows: &[(i64, &str, i64, f64)]) -> String {
        let t = Table {
            columns: [
                ("user_id", "int4"),
                ("item", "text"),
                ("rank", "int4"),
                ("score", "float8"),
            ]
            .iter()
            .map(|(n, t)| Column {
                name: n.to_string(),
                type_name: t.to_string(),
            })
            .collect(),
            rows: rows
                .iter()
                .map(|(u, i, r, s)| {
                    vec![
                        Value::Int(*u),
                        Value::Text(i.to_string().into()),
                        Value::Int(*r),
                        Value::Float(*s),
                    ]
                })
                .collect(),
        };
        t.render(&header(), &["user_id".into(), "item".into()], None)
            .expect("renders")
    }

    #[test]
    fn a_table_is_ranked_within_each_group() {
        let g = ranked_table(&[
            (1, "a", 1, 0.9),
            (1, "b", 2, 0.8),
            (1, "c", 3, 0.7),
            (2, "a", 1, 0.5),
        ]);
        let a = ranked_table(&[
            (1, "a", 2, 0.9),
            (1, "b", 1, 0.8),
            (1, "d", 3, 0.7),
            (2, "a", 1, 0.5),
        ]);
        let by = |rank: Option<&str>, score: Option<&str>| RankRule {
            lists: Lists::Table {
                group: vec!["user_id".into()],
                item: "item".into(),
                rank: rank.map(str::to_string),
                score: score.map(str::to_string),
            },
            ..rule(3, 0.6)
        };
        let d = compare(&g, &a, &by(Some("rank"), None), &Tolerances::new());
        assert!(d.passes(), "{}", d.render());
        let c = &d.changed[0];
        assert_eq!(c.list, "user_id=1");
        assert_eq!(
            (c.entered.clone(), c.left.clone()),
            (vec!["\"d\"".to_string()], vec!["\"c\"".to_string()])
        );
        assert_eq!(c.moved, 2);
        // Ranked by rank with the score compared: the scores did not move.
        let d = compare(&g, &a, &by(Some("rank"), Some("score")), &Tolerances::new());
        assert!(d.passes(), "{}", d.render());
        // Ranked by score, a comes first on both sides, and `rank` is one more column whose
        // values must not move.
        let d = compare(&g, &a, &by(None, Some("score")), &Tolerances::new());
        assert!(!d.passes());
        assert_eq!(d.changed[0].moved, 0);
        assert!(d.render().contains("~ \"a\" rank: 1 → 2"), "{}", d.render());
        // A missing column is said as such.
        let d = compare(&g, &a, &by(Some("position"), None), &Tolerances::new());
        assert!(!d.passes());
        assert!(
            d.outside[0].contains("no column `position`"),
            "{:?}",
            d.outside
        );
    }

    #[test]
    fn the_overlap_of_short_and_empty_lists() {
        // A golden shorter than K: the overlap is over its items.
        let g = zsets(&[("recs:1", &GOLDEN[..2])], "v1");
        let a = zsets(&[("recs:1", &GOLDEN[..4])], "v1");
        let d = compare(&g, &a, &rule(5, 1.0), &Tolerances::new());
        assert!(d.passes(), "{}", d.render());
        assert_eq!((d.changed[0].kept, d.changed[0].of), (2, 2));
        // The other way round, half of the golden's items left.
        let d = compare(&a, &g, &rule(5, 1.0), &Tolerances::new());
        assert!(!d.passes());
        assert_eq!(d.changed[0].overlap, 0.5);
        assert_eq!(kendall_tau(&[]), 1.0);
        assert_eq!(kendall_tau(&[0, 1, 2]), 1.0);
    }
}
