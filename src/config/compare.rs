//! A sink's `compare` rule: its ranked lists are compared by overlap@K (and optionally rank
//! correlation) instead of line by line. Parsed and checked here, against the kind of sink it
//! is on; `crate::snapshot::ranking` applies it.

use serde::Deserialize;
use toml::Spanned;

use super::Checker;
use super::sink::{RawTolerance, SinkSpec, tolerance_of};
use crate::snapshot::ranking::{Lists, MAX_TOP_K, Order, RankRule};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCompare {
    top_k: Option<Spanned<i64>>,
    min_overlap: Option<Spanned<f64>>,
    min_rank_correlation: Option<Spanned<f64>>,
    order: Option<Spanned<String>>,
    item: Option<Spanned<String>>,
    score: Option<Spanned<String>>,
    rank: Option<Spanned<String>>,
    group: Option<Spanned<Vec<String>>>,
    tolerance: Option<Spanned<RawTolerance>>,
}

/// The rule of `raw` (the sink's `compare`) on a sink reading `spec`; `None` after reporting
/// what is wrong with it.
pub(super) fn rule(
    raw: &Spanned<RawCompare>,
    spec: &SinkSpec,
    check: &mut Checker<'_>,
) -> Option<RankRule> {
    let r = raw.get_ref();
    let mut ok = true;
    let top_k = match &r.top_k {
        None => {
            check.error_help(
                raw.span(),
                "`compare` needs `top_k`",
                "write compare = { top_k = 10, min_overlap = 0.8 }",
            );
            ok = false;
            0
        }
        Some(k) => match usize::try_from(*k.get_ref()) {
            Ok(n) if (1..=MAX_TOP_K).contains(&n) => n,
            _ => {
                check.error(
                    k.span(),
                    format!("`top_k` must be a whole number from 1 to {MAX_TOP_K}"),
                );
                ok = false;
                0
            }
        },
    };
    let mut bound = |v: &Option<Spanned<f64>>, name: &str, low: f64| -> Option<f64> {
        let v = v.as_ref()?;
        let x = *v.get_ref();
        if !(low..=1.0).contains(&x) {
            check.error(v.span(), format!("`{name}` must be from {low} to 1"));
            ok = false;
        }
        Some(x)
    };
    let min_overlap = bound(&r.min_overlap, "min_overlap", 0.0);
    let min_rank_correlation = bound(&r.min_rank_correlation, "min_rank_correlation", -1.0);
    if min_overlap.is_none() {
        check.error_help(
            raw.span(),
            "`compare` needs `min_overlap`",
            "the share of the golden's top K a list must keep, from 0 to 1: min_overlap = 0.8",
        );
        ok = false;
    }
    let order = match &r.order {
        None => Order::Desc,
        Some(o) if o.get_ref() == "desc" => Order::Desc,
        Some(o) if o.get_ref() == "asc" => Order::Asc,
        Some(o) => {
            check.error(
                o.span(),
                format!("unknown order `{}`; expected `desc` or `asc`", o.get_ref()),
            );
            ok = false;
            Order::Desc
        }
    };
    let tolerance = match &r.tolerance {
        None => None,
        Some(t) => {
            let t = tolerance_of("the scores", t, check);
            ok &= t.is_some();
            t
        }
    };
    let name = |s: &Option<Spanned<String>>| s.as_ref().map(|s| s.get_ref().clone());
    let lists = match spec {
        SinkSpec::Keys { .. } => {
            for (key, span) in [
                ("rank", r.rank.as_ref().map(Spanned::span)),
                ("group", r.group.as_ref().map(Spanned::span)),
            ] {
                if let Some(span) = span {
                    check.error_help(
                        span,
                        format!("`compare.{key}` applies to table sinks"),
                        "a redis sink's lists are its sorted sets, its lists and its strings holding JSON arrays; `item` and `score` name fields of their JSON objects",
                    );
                    ok = false;
                }
            }
            Lists::Keys {
                item: name(&r.item),
                score: name(&r.score),
            }
        }
        SinkSpec::Table { .. }
        | SinkSpec::Path {
            format: Some(_), ..
        } => {
            let item = name(&r.item);
            if item.is_none() {
                check.error_help(
                    raw.span(),
                    "`compare` on a table needs `item`: the column identifying an item of a list",
                    "write compare = { top_k = 10, min_overlap = 0.8, group = [\"user_id\"], item = \"item_id\", rank = \"rank\" }",
                );
                ok = false;
            }
            if r.rank.is_none() && r.score.is_none() {
                check.error_help(
                    raw.span(),
                    "`compare` on a table needs `rank` or `score`: the column ordering a list",
                    "rank = \"rank\" (1 first), or score = \"score\" (highest first; order = \"asc\" for lowest)",
                );
                ok = false;
            }
            Lists::Table {
                group: r
                    .group
                    .as_ref()
                    .map(|g| g.get_ref().clone())
                    .unwrap_or_default(),
                item: item.unwrap_or_default(),
                rank: name(&r.rank),
                score: name(&r.score),
            }
        }
        SinkSpec::Path { format: None, .. } => {
            check.error_help(
                raw.span(),
                "`compare` applies to sinks holding lists: redis keys, tables, and paths read with a `format`",
                "add format = \"parquet\" (or csv, jsonl) to compare the dataset's rows",
            );
            return None;
        }
    };
    ok.then(|| RankRule {
        top_k,
        min_overlap: min_overlap.unwrap_or(0.0),
        min_rank_correlation,
        order,
        tolerance,
        lists,
    })
}
