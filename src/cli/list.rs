//! `harness list`: the scenarios with their pipeline, tasks (or steps), seeds and sinks, and the
//! pipelines that are Airflow DAGs with the tasks parsed from them.

use crate::config::{self, Project, Scenario};
use crate::report;

/// Each pipeline that is an Airflow DAG, with the tasks parsed from it: operator, upstream
/// tasks, retries and time limit.
pub(super) fn airflow_pipelines(project: &Project) -> String {
    let mut out = String::new();
    for p in project.pipelines.values() {
        let Some(dag) = &p.airflow else { continue };
        out.push_str(&format!(
            "pipeline {}: Airflow DAG `{}` of {} ({})\n",
            p.name,
            dag.dag_id,
            config::display_path(&project.root, &dag.file).display(),
            report::count(p.tasks.len(), "task")
        ));
        for t in &p.tasks {
            let config::TaskKind::Airflow {
                operator,
                trigger_rule,
            } = &t.kind
            else {
                continue;
            };
            let upstream: Vec<&str> = t.depends_on.iter().map(|d| d.0.as_str()).collect();
            let mut line = format!("  {} ({operator})", t.id);
            if !upstream.is_empty() {
                line.push_str(&format!(" after {}", upstream.join(", ")));
            }
            if trigger_rule != "all_success" {
                line.push_str(&format!(", trigger rule {trigger_rule}"));
            }
            if t.retries > 0 {
                line.push_str(&format!(", retries {}", t.retries));
            }
            line.push_str(&format!(
                ", timeout {}",
                humantime::format_duration(t.timeout)
            ));
            out.push_str(&line);
            out.push('\n');
        }
    }
    out
}

/// The scenarios with their pipeline, steps or tasks, seeds and sinks.
pub(super) fn list(project: &Project, scenarios: &[&Scenario]) -> String {
    let mut out = String::new();
    for s in scenarios {
        let p = project.pipeline_of(s);
        let tasks_of = |sel: &Option<Vec<config::TaskId>>| -> String {
            match sel {
                Some(t) => t.iter().map(|t| t.0.clone()).collect::<Vec<_>>(),
                None => p.tasks.iter().map(|t| t.id.0.clone()).collect(),
            }
            .join(", ")
        };
        let sinks: Vec<&str> = s.sinks.iter().map(|k| k.name.as_str()).collect();
        out.push_str(&format!("{}\n", s.name));
        if let Some(d) = &s.description {
            out.push_str(&format!("  {d}\n"));
        }
        if s.has_steps() {
            out.push_str(&format!("  pipeline: {}\n", p.name));
            for step in &s.steps {
                let name = step.name.as_deref().unwrap_or_default();
                out.push_str(&format!(
                    "  step {name}: tasks: {}\n",
                    tasks_of(&step.tasks)
                ));
            }
        } else {
            out.push_str(&format!(
                "  pipeline: {} (tasks: {})\n",
                p.name,
                tasks_of(&s.tasks)
            ));
        }
        out.push_str(&format!(
            "  seeds: {}  sinks: {}\n",
            s.seeds.len(),
            sinks.join(", ")
        ));
    }
    out
}
