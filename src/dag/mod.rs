//! Running a scenario's DAG of tasks (`executor`); its shape is checked when the pipeline is
//! loaded (`crate::config::graph`).

pub mod airflow;
pub mod executor;

pub use crate::outcome::{Attempt, TaskOutcome, TaskStatus};
