//! `harness` tests data pipelines end to end: it brings up the services a pipeline talks to,
//! seeds fixtures into them, runs the pipeline's DAG of tasks, reads back every sink and
//! compares its canonical snapshot with the golden file committed next to the scenario.
//!
//! The flow of a run, one module per stage:
//! - [`config`]: load and validate harness.toml, pipelines and scenarios (every error at once);
//! - [`runner`]: plan services, acquire an environment, then per scenario reset → seed → run
//!   the DAG → read sinks → compare; it emits [`report::events`] and returns a `RunOutcome`;
//! - [`backend`]: the lifecycle of services (start, stop); [`services`]: their client side
//!   (reset, seed, read a sink);
//! - [`dag`]: the task graph and its executor; [`dag::process`] owns child processes;
//! - [`snapshot`]: canonical forms, the golden store and diffs;
//! - [`report`]: the terminal view, the summary, JUnit XML, the HTML report and error rendering;
//! - [`doctor`]: prerequisites found or missing; [`bench`]: the harness's own speed against
//!   baselines measured in the same run;
//! - [`cli`]: the command line; [`signals`]: SIGINT/SIGTERM as a cancellation; [`exit`]: codes;
//!   [`redact`]: the passwords of this process, masked wherever text leaves it; [`cache`]: the
//!   per-user cache of what starts rebuild (the metastore's compiled launcher and class archive);
//!   [`prefault`]: the pages of a large buffer faulted in on another CPU ahead of its filling.

pub mod airflow;
pub mod backend;
pub mod bench;
pub mod cache;
pub mod cli;
pub mod config;
pub mod dag;
pub mod diagnostic;
pub mod doctor;
pub mod events;
pub mod exit;
pub mod kept;
pub mod ledger;
pub mod names;
pub mod outcome;
pub mod prefault;
pub mod process;
pub mod redact;
pub mod report;
pub mod runner;
pub mod services;
pub mod signals;
pub mod snapshot;
