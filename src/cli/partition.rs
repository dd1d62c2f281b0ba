//! `--partition K/N`: which scenarios one of N machines runs. Every scenario falls in exactly
//! one partition. By count (every N-th scenario) unless `--durations` gives the time each
//! scenario took before; then the partitions are balanced by time: longest first, each to the
//! partition with the least time so far.

use std::collections::BTreeMap;
use std::path::Path;

use crate::config::Scenario;
use crate::report::record;

/// Partition K of N.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Partition {
    /// 1-based partition number.
    pub k: usize,
    /// Number of partitions.
    pub n: usize,
}

/// Parses `K/N` with 1 <= K <= N.
pub fn parse(text: &str) -> Result<Partition, String> {
    let bad = || format!("`{text}` is not a partition: write K/N with 1 <= K <= N, like 2/3");
    let (k, n) = text.split_once('/').ok_or_else(bad)?;
    let (k, n): (usize, usize) = (
        k.trim().parse().map_err(|_| bad())?,
        n.trim().parse().map_err(|_| bad())?,
    );
    if k == 0 || n == 0 || k > n {
        return Err(bad());
    }
    Ok(Partition { k, n })
}

impl Partition {
    /// The scenarios of this partition, in their order: by count without `durations`, else
    /// balanced by the seconds each took (a scenario without a time counts the mean of the
    /// others').
    pub fn pick<'a>(
        &self,
        scenarios: Vec<&'a Scenario>,
        durations: Option<&BTreeMap<String, f64>>,
    ) -> Vec<&'a Scenario> {
        let Some(durations) = durations else {
            return scenarios
                .into_iter()
                .enumerate()
                .filter(|(i, _)| i % self.n == self.k - 1)
                .map(|(_, s)| s)
                .collect();
        };
        let names: Vec<&str> = scenarios.iter().map(|s| s.name.0.as_str()).collect();
        let mine = balance(&names, durations, self.n);
        scenarios
            .into_iter()
            .zip(mine)
            .filter(|(_, part)| *part == self.k - 1)
            .map(|(s, _)| s)
            .collect()
    }
}

/// The partition (0-based) of each name: longest first (ties by name), each to the partition
/// with the least time so far (ties to the lowest). The same names and durations give the same
/// answer on every machine.
pub fn balance(names: &[&str], durations: &BTreeMap<String, f64>, n: usize) -> Vec<usize> {
    let known: Vec<f64> = names
        .iter()
        .filter_map(|s| durations.get(*s).copied())
        .collect();
    let fallback = if known.is_empty() {
        1.0
    } else {
        known.iter().sum::<f64>() / known.len() as f64
    };
    let time = |name: &str| durations.get(name).copied().unwrap_or(fallback);
    let mut order: Vec<usize> = (0..names.len()).collect();
    order.sort_by(|&a, &b| {
        time(names[b])
            .total_cmp(&time(names[a]))
            .then_with(|| names[a].cmp(names[b]))
    });
    let mut load = vec![0.0_f64; n.max(1)];
    let mut part = vec![0; names.len()];
    for i in order {
        let lightest = (0..load.len())
            .min_by(|&a, &b| load[a].total_cmp(&load[b]).then(a.cmp(&b)))
            .unwrap_or(0);
        load[lightest] += time(names[i]);
        part[i] = lightest;
    }
    part
}

/// The durations of `--durations FILE`: `None`, with a notice, when the file is not there (the
/// partitions then go by count on every machine that lacks it); an error when it is there but
/// unreadable.
pub fn durations(file: Option<&Path>) -> Result<Option<BTreeMap<String, f64>>, String> {
    let Some(file) = file else { return Ok(None) };
    if !file.exists() {
        eprintln!(
            "note: no durations in {}: partitions go by count",
            file.display()
        );
        return Ok(None);
    }
    record::read_durations(file).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_by_duration_put_the_long_scenarios_apart() {
        let names = ["a", "b", "c", "d", "e"];
        let d: BTreeMap<String, f64> = [("a", 10.0), ("b", 9.0), ("c", 5.0), ("d", 4.0)]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        // e has no time: it counts the mean, 7. Longest first: a→0 (10, 0), b→1 (10, 9),
        // e→1 (10, 16), c→0 (15, 16), d→0 (19, 16).
        let parts = balance(&names, &d, 2);
        assert_eq!(parts, vec![0, 1, 0, 0, 1]);
        // Every name in exactly one partition, and the same answer again.
        assert_eq!(balance(&names, &d, 2), parts);
        // No durations at all: every scenario counts the same.
        let none = BTreeMap::new();
        let even = balance(&names, &none, 2);
        assert_eq!(even.iter().filter(|p| **p == 0).count(), 3);
    }

    #[test]
    fn a_partition_is_k_of_n_with_k_from_1() {
        assert_eq!(parse("2/3"), Ok(Partition { k: 2, n: 3 }));
        assert!(parse("0/3").is_err());
        assert!(parse("4/3").is_err());
        assert!(parse("x").is_err());
    }
}
