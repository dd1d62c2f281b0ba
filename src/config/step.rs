//! Several runs of the pipeline in one scenario: `[[step]]` blocks, each with its own seeds,
//! environment, task subset, Airflow logical date and sinks, run in order on the same
//! environment without a reset between them. A scenario without steps is one unnamed step.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

use super::airflow_dag::{RawScenarioAirflow, ScenarioAirflow, scenario_airflow};
use super::scenario::{LoadContext, task_list};
use super::seed::{RawSeed, Seed, seed};
use super::sink::{RawSink, Sink, sink};
use super::{Checker, Pipeline, TaskId, valid_name};
use crate::diagnostic::did_you_mean;

/// One run of the pipeline within a scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// Its name (`None` for the one run of a scenario without steps).
    pub name: Option<String>,
    /// One-line description.
    pub description: Option<String>,
    /// The tasks it runs: its own `tasks`, else the scenario's; `None` for all.
    pub tasks: Option<Vec<TaskId>>,
    /// Its own environment, set over the scenario's.
    pub env: BTreeMap<String, String>,
    /// How its DagRun is made: the scenario's `[airflow]` with the step's own keys over it.
    pub airflow: ScenarioAirflow,
}

impl Step {
    /// The one run of a scenario without `[[step]]` blocks.
    pub fn whole(tasks: Option<Vec<TaskId>>, airflow: ScenarioAirflow) -> Self {
        Step {
            name: None,
            description: None,
            tasks,
            env: BTreeMap::new(),
            airflow,
        }
    }

    /// True when the step runs `task`.
    pub fn selects(&self, task: &TaskId) -> bool {
        self.tasks.as_ref().is_none_or(|sel| sel.contains(task))
    }

    /// `name` as seen outside the step: `<step>/<name>` for a named step.
    pub fn qualify(&self, name: &str) -> String {
        match &self.name {
            Some(step) => format!("{step}/{name}"),
            None => name.to_string(),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawStep {
    name: Spanned<String>,
    description: Option<String>,
    tasks: Option<Spanned<Vec<Spanned<String>>>>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    #[serde(default)]
    seed: Vec<Spanned<RawSeed>>,
    #[serde(default)]
    sink: Vec<Spanned<RawSink>>,
    airflow: Option<Spanned<RawScenarioAirflow>>,
}

impl RawStep {
    /// How many sinks the step declares.
    pub(super) fn sink_count(&self) -> usize {
        self.sink.len()
    }
}

/// What the steps of a scenario add to it.
pub(super) struct Steps {
    pub steps: Vec<Step>,
    pub seeds: Vec<Seed>,
    pub sinks: Vec<Sink>,
}

/// The scenario-wide defaults a step starts from.
pub(super) struct Defaults<'a> {
    pub tasks: Option<&'a Vec<TaskId>>,
    pub airflow: &'a ScenarioAirflow,
}

/// Checks the `[[step]]` blocks of a scenario. Their seeds and sinks come back tagged with the
/// step's index; sinks are named `<step>/<sink>` and kept in `golden/<step>/<sink>.snap`.
pub(super) fn steps(
    ctx: &LoadContext<'_>,
    dir: &Path,
    raw: &[Spanned<RawStep>],
    pipeline: Option<&Pipeline>,
    defaults: &Defaults<'_>,
    check: &mut Checker<'_>,
) -> Steps {
    let mut out = Steps {
        steps: Vec::new(),
        seeds: Vec::new(),
        sinks: Vec::new(),
    };
    let mut names: Vec<&str> = Vec::new();
    for (index, s) in raw.iter().enumerate() {
        let r = s.get_ref();
        let name = r.name.get_ref();
        if !valid_name(name) {
            check.error_help(
                r.name.span(),
                format!("invalid step name `{name}`"),
                "step names are folder names under golden/: use letters, digits, `_` and `-`",
            );
        } else if names.contains(&name.as_str()) {
            check.error(r.name.span(), format!("step `{name}` is declared twice"));
        }
        names.push(name);
        let tasks = match &r.tasks {
            Some(list) => {
                if list.get_ref().is_empty() {
                    check.error_help(
                        list.span(),
                        format!("`tasks` of step `{name}` is empty"),
                        "remove it to run the scenario's tasks",
                    );
                }
                Some(task_selection(list.get_ref(), pipeline, check))
            }
            None => defaults.tasks.cloned(),
        };
        let airflow = match &r.airflow {
            Some(a) => over(defaults.airflow, scenario_airflow(a, pipeline, check)),
            None => defaults.airflow.clone(),
        };
        let step = Step {
            name: Some(name.clone()),
            description: r.description.clone(),
            tasks,
            env: r.env.clone(),
            airflow,
        };
        for raw_seed in &r.seed {
            if let Some(mut seed) = seed(ctx, dir, raw_seed, check) {
                seed.step = Some(index);
                out.seeds.push(seed);
            }
        }
        let mut own: Vec<String> = Vec::new();
        for raw_sink in &r.sink {
            let Some(mut sink) = sink(ctx, dir, raw_sink, pipeline, check) else {
                continue;
            };
            if own.contains(&sink.name) {
                check.error(
                    raw_sink.get_ref().name.span(),
                    format!("sink `{}` is declared twice in step `{name}`", sink.name),
                );
                continue;
            }
            own.push(sink.name.clone());
            sink.golden = dir
                .join("golden")
                .join(name)
                .join(format!("{}.snap", sink.name));
            sink.name = step.qualify(&sink.name);
            sink.step = Some(index);
            out.sinks.push(sink);
        }
        out.steps.push(step);
    }
    out
}

/// The task ids of a `tasks` list, each checked against the pipeline.
pub(super) fn task_selection(
    list: &[Spanned<String>],
    pipeline: Option<&Pipeline>,
    check: &mut Checker<'_>,
) -> Vec<TaskId> {
    let mut out = Vec::new();
    for t in list {
        if let Some(p) = pipeline
            && p.task(t.get_ref()).is_none()
        {
            let help = did_you_mean(t.get_ref(), p.tasks.iter().map(|t| t.id.0.as_str()))
                .map_or_else(
                    || format!("tasks of `{}`: {}", p.name, task_list(p)),
                    |b| format!("did you mean `{b}`?"),
                );
            check.error_help(
                t.span(),
                format!("pipeline `{}` has no task `{}`", p.name, t.get_ref()),
                help,
            );
            continue;
        }
        out.push(TaskId(t.get_ref().clone()));
    }
    out
}

/// A step's `[airflow]` over the scenario's: its logical date when it has one, its `conf` and
/// `variables` keys over the scenario's, and both `mark_success` lists.
fn over(scenario: &ScenarioAirflow, step: ScenarioAirflow) -> ScenarioAirflow {
    let mut merged = scenario.clone();
    if step.logical_date.is_some() {
        merged.logical_date = step.logical_date;
    }
    merged.conf.extend(step.conf);
    merged.variables.extend(step.variables);
    for p in step.mark_success {
        if !merged.mark_success.contains(&p) {
            merged.mark_success.push(p);
        }
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_steps_airflow_keys_override_the_scenarios_and_keep_the_rest() {
        let mut scenario = ScenarioAirflow {
            logical_date: Some("2024-05-01".into()),
            ..Default::default()
        };
        scenario.conf.insert("a".into(), 1.into());
        scenario.conf.insert("b".into(), 2.into());
        scenario.mark_success.push("x*".into());
        let mut step = ScenarioAirflow::default();
        step.conf.insert("b".into(), 3.into());
        step.mark_success.push("y".into());
        let merged = over(&scenario, step.clone());
        assert_eq!(merged.logical_date.as_deref(), Some("2024-05-01"));
        assert_eq!(merged.conf["a"], 1);
        assert_eq!(merged.conf["b"], 3);
        assert_eq!(merged.mark_success, vec!["x*", "y"]);
        step.logical_date = Some("2024-05-02".into());
        assert_eq!(
            over(&scenario, step).logical_date.as_deref(),
            Some("2024-05-02")
        );
    }

    #[test]
    fn a_named_step_qualifies_names_and_the_whole_run_does_not() {
        let whole = Step::whole(None, ScenarioAirflow::default());
        assert_eq!(whole.qualify("views"), "views");
        let day = Step {
            name: Some("day1".into()),
            ..whole.clone()
        };
        assert_eq!(day.qualify("views"), "day1/views");
        let picky = Step {
            tasks: Some(vec![TaskId("a".into())]),
            ..whole
        };
        assert!(picky.selects(&TaskId("a".into())));
        assert!(!picky.selects(&TaskId("b".into())));
    }
}
