//! `harness doctor`: every prerequisite, found or missing, with how to get it: the managed
//! Python environment, what each kind of service needs (from its description in
//! `crate::services`), the managed Airflow, and Docker.

use std::process::Command;

use crate::config::Settings;
use crate::process::{first_line, which};
use crate::services::{self, Prerequisite};

/// One prerequisite.
pub type Check = Prerequisite;

/// Checks every prerequisite.
pub fn checks(settings: &Settings) -> Vec<Check> {
    let mut out = Vec::new();
    out.push(Prerequisite {
        name: "python",
        found: settings.python.exists().then(|| format!("{} ({})", settings.python.display(), first_line(&settings.python, &["--version"]).unwrap_or_default())),
        how: "the managed Python environment of python and spark tasks: scripts/setup.sh creates .venv",
        required: true,
    });
    for service in services::REGISTRY {
        out.extend(service.prerequisites(settings));
    }
    let python = &settings.airflow_python;
    let airflow = python
        .exists()
        .then(|| {
            first_line(
                python,
                &[
                    "-c",
                    "import importlib.metadata as m; print(m.version('apache-airflow'))",
                ],
            )
        })
        .flatten()
        .filter(|v| v.starts_with(|c: char| c.is_ascii_digit()))
        .map(|v| format!("apache-airflow {v} ({})", python.display()));
    out.push(Prerequisite {
        name: "airflow",
        found: airflow,
        how: "the managed Airflow of pipelines that are Airflow DAGs: scripts/setup.sh creates .venv-airflow",
        required: false,
    });
    let docker = which("docker").and_then(|d| {
        let out = Command::new(&d)
            .args(["version", "--format", "{{.Server.Version}}"])
            .output()
            .ok()?;
        out.status.success().then(|| {
            format!(
                "engine {} via {}",
                String::from_utf8_lossy(&out.stdout).trim(),
                d.display()
            )
        })
    });
    out.push(Prerequisite {
        name: "docker",
        found: docker,
        how: "a Docker engine that answers; not used by this version's local backend",
        required: false,
    });
    out
}
