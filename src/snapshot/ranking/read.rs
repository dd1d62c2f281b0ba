//! Reading a rendered snapshot back into ranked lists: the sorted sets, lists and JSON arrays
//! of a Redis keys snapshot, or the groups of a table snapshot, each ordered best first; and what
//! lies outside the lists, which must not change.

use std::collections::BTreeMap;

use super::{Lists, Order, RankRule};
use crate::snapshot::nested::quoted_len;
use crate::snapshot::table::{self, number};

/// One item of a list, as read from a snapshot.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Entry {
    /// The item's identity, as shown.
    pub(super) item: String,
    /// Its score, as rendered.
    pub(super) score: Option<String>,
    /// Its other values compared when it is on both sides: (column or field, value).
    pub(super) others: Vec<(String, String)>,
}

/// What a snapshot holds: its header, its lists (best item first), and the rest.
#[derive(Debug, Default)]
pub(super) struct Read {
    /// The lines a difference in which fails the sink whatever the lists (header, columns).
    pub(super) header: String,
    /// The lists by name.
    pub(super) lists: BTreeMap<String, Vec<Entry>>,
    /// The line introducing each list (a Redis key's type line), compared when on both sides.
    pub(super) list_lines: BTreeMap<String, String>,
    /// Everything else by name (a key's whole block).
    pub(super) rest: BTreeMap<String, String>,
}

/// Reads a snapshot's lists; `side` names it in errors.
pub(super) fn read(text: &str, rule: &RankRule, side: &str) -> Result<Read, String> {
    match &rule.lists {
        Lists::Keys { item, score } => Ok(read_keys(
            text,
            rule.order,
            item.as_deref(),
            score.as_deref(),
        )),
        Lists::Table {
            group,
            item,
            rank,
            score,
        } => read_table(
            text,
            rule.order,
            group,
            item,
            rank.as_deref(),
            score.as_deref(),
        )
        .map_err(|e| format!("the {side} snapshot: {e}")),
    }
}

/// A Redis keys snapshot: every sorted set, every Redis list and every string holding a JSON
/// array is a list (named by its key as shown); every other key is kept whole.
pub(super) fn read_keys(text: &str, order: Order, item: Option<&str>, score: Option<&str>) -> Read {
    let mut out = Read::default();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next_if(|l| !l.starts_with("keys:")) {
        out.header.push_str(line);
        out.header.push('\n');
    }
    let mut blocks: Vec<(&str, Vec<&str>)> = Vec::new();
    for line in lines.skip(1) {
        if let Some(body) = line.strip_prefix("  ") {
            if let Some((_, b)) = blocks.last_mut() {
                b.push(body);
            }
        } else if !line.is_empty() {
            blocks.push((line, vec![]));
        }
    }
    for (line, body) in blocks {
        let at = usize::from(line.starts_with("b\""));
        let name_len = quoted_len(&line[at..], b'"').map_or(line.len(), |n| n + at);
        let name = line[..name_len].to_string();
        let ty = line[name_len..].split_whitespace().next().unwrap_or("");
        let list = match ty {
            "zset" => Some(zset(&body, order)),
            "string" => json_array(&body.join("\n"), item, score),
            "list" => Some(redis_list(&body, item, score)),
            _ => None,
        };
        match list {
            Some(list) => {
                out.list_lines.insert(name.clone(), line.to_string());
                out.lists.insert(name, list);
            }
            None => {
                let mut block = format!("{line}\n");
                for b in body {
                    block.push_str(b);
                    block.push('\n');
                }
                out.rest.insert(format!("key {name}"), block);
            }
        }
    }
    out
}

/// A sorted set's members (`score "member"` lines) by score in `order`, then by member.
fn zset(body: &[&str], order: Order) -> Vec<Entry> {
    let mut members: Vec<(f64, Entry)> = body
        .iter()
        .map(|l| {
            let (s, m) = l.split_once(' ').unwrap_or(("", l));
            let entry = Entry {
                item: m.to_string(),
                score: Some(s.to_string()),
                others: vec![],
            };
            (number(s).unwrap_or(f64::NAN), entry)
        })
        .collect();
    members.sort_by(|(x, a), (y, b)| {
        let by_score = match order {
            Order::Desc => y.total_cmp(x),
            Order::Asc => x.total_cmp(y),
        };
        by_score.then_with(|| a.item.cmp(&b.item))
    });
    members.into_iter().map(|(_, e)| e).collect()
}

/// A string value holding a JSON array (as decoded JSON, or as quoted text), in array order;
/// `None` for any other value.
fn json_array(text: &str, item: Option<&str>, score: Option<&str>) -> Option<Vec<Entry>> {
    let serde_json::Value::Array(elements) = json(text)? else {
        return None;
    };
    let entries = elements.into_iter().map(|e| entry(e, item, score));
    Some(dedup(entries.collect()))
}

/// A Redis list's values (`[i] value` lines, a long JSON value going on over the lines below),
/// in index order: each read as an element of a JSON array, or, when it is not JSON, its own
/// identity as shown.
fn redis_list(body: &[&str], item: Option<&str>, score: Option<&str>) -> Vec<Entry> {
    let mut values: Vec<String> = Vec::new();
    for line in body {
        let start = line
            .strip_prefix('[')
            .and_then(|r| r.split_once("] "))
            .filter(|(i, _)| !i.is_empty() && i.bytes().all(|b| b.is_ascii_digit()));
        match (start, values.last_mut()) {
            (Some((_, v)), _) => values.push(v.to_string()),
            (None, Some(last)) => {
                last.push('\n');
                last.push_str(line);
            }
            (None, None) => {}
        }
    }
    let entries = values.into_iter().map(|v| match json(&v) {
        Some(j) => entry(j, item, score),
        None => Entry {
            item: v,
            score: None,
            others: vec![],
        },
    });
    dedup(entries.collect())
}

/// The JSON a value shows: decoded JSON, or quoted text holding a JSON object or array, or
/// else a JSON scalar (quoted text itself is a JSON string).
fn json(text: &str) -> Option<serde_json::Value> {
    let v: serde_json::Value = serde_json::from_str(text).ok()?;
    if let serde_json::Value::String(s) = &v
        && let Ok(inner) = serde_json::from_str::<serde_json::Value>(s)
        && (inner.is_object() || inner.is_array())
    {
        return Some(inner);
    }
    Some(v)
}

/// One element of a list as an item: identified by its `item` field (else by itself), scored
/// by its numeric `score` field; with `item`, its other fields are one more value to compare.
fn entry(e: serde_json::Value, item: Option<&str>, score: Option<&str>) -> Entry {
    let field = |name: Option<&str>| name.and_then(|n| e.get(n)).cloned();
    let id = field(item).unwrap_or_else(|| e.clone());
    let s = field(score).filter(serde_json::Value::is_number);
    let mut others = vec![];
    if let (Some(_), serde_json::Value::Object(map)) = (item, &e) {
        let mut rest = map.clone();
        for n in [item, score].into_iter().flatten() {
            rest.remove(n);
        }
        if !rest.is_empty() {
            others.push((
                "other fields".to_string(),
                serde_json::Value::Object(rest).to_string(),
            ));
        }
    }
    Entry {
        item: id.to_string(),
        score: s.map(|s| s.to_string()),
        others,
    }
}

/// Keeps the first (best) place of an item listed twice.
fn dedup(list: Vec<Entry>) -> Vec<Entry> {
    let mut seen = std::collections::HashSet::new();
    list.into_iter()
        .filter(|e| seen.insert(e.item.clone()))
        .collect()
}

/// A table snapshot: one list per value of the `group` columns, ranked by `rank` (ascending),
/// else by `score` in `order`, then by item; empty or non-numeric ranks and scores last.
fn read_table(
    text: &str,
    order: Order,
    group: &[String],
    item: &str,
    rank: Option<&str>,
    score: Option<&str>,
) -> Result<Read, String> {
    let p = table::parse(text).ok_or("it is not a table snapshot")?;
    let col = |name: &str| {
        p.columns
            .iter()
            .position(|c| c.0 == name)
            .ok_or_else(|| format!("it has no column `{name}`"))
    };
    let group_cols = group
        .iter()
        .map(|g| col(g))
        .collect::<Result<Vec<_>, _>>()?;
    let item_col = col(item)?;
    let rank_col = rank.map(col).transpose()?;
    let score_col = score.map(col).transpose()?;
    let own: Vec<usize> = group_cols
        .iter()
        .copied()
        .chain([item_col])
        .chain(rank_col)
        .chain(score_col)
        .collect();
    let mut out = Read {
        header: p.preamble.clone(),
        ..Read::default()
    };
    let columns: Vec<String> = p.columns.iter().map(|(n, t)| format!("{n} {t}")).collect();
    out.header
        .push_str(&format!("columns: {}\n", columns.join(" | ")));
    let mut groups: BTreeMap<String, Vec<(Option<f64>, Entry)>> = BTreeMap::new();
    for i in 0..p.rows.len() {
        let cells = p.cells(i);
        let name = if group_cols.is_empty() {
            "the table".to_string()
        } else {
            group
                .iter()
                .zip(&group_cols)
                .map(|(g, &c)| format!("{g}={}", cells[c]))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let key = match (rank_col, score_col) {
            (Some(r), _) => number(cells[r]).filter(|n| !n.is_nan()),
            (None, Some(s)) => number(cells[s])
                .filter(|n| !n.is_nan())
                .map(|n| if order == Order::Desc { -n } else { n }),
            (None, None) => None,
        };
        let others = (0..p.columns.len())
            .filter(|c| !own.contains(c))
            .map(|c| (p.columns[c].0.clone(), cells[c].to_string()))
            .collect();
        groups.entry(name).or_default().push((
            key,
            Entry {
                item: cells[item_col].to_string(),
                score: score_col.map(|s| cells[s].to_string()),
                others,
            },
        ));
    }
    for (name, mut rows) in groups {
        rows.sort_by(|(x, a), (y, b)| {
            let by_key = match (x, y) {
                (Some(x), Some(y)) => x.total_cmp(y),
                (x, y) => y.is_some().cmp(&x.is_some()),
            };
            by_key.then_with(|| a.item.cmp(&b.item))
        });
        out.lists
            .insert(name, dedup(rows.into_iter().map(|(_, e)| e).collect()));
    }
    Ok(out)
}
