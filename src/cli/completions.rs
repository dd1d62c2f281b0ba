//! Shell completions: `harness completions bash|zsh|fish` prints a script that asks the harness
//! itself what to complete (clap_complete's dynamic engine, through `HARNESS_COMPLETE`), so that
//! subcommands and flags, and also the scenario, pipeline and sink names of the project in the
//! current folder, complete as they are now.

use std::ffi::OsStr;

use clap::{CommandFactory as _, ValueEnum};
use clap_complete::engine::CompletionCandidate;
use clap_complete::env::{CompleteEnv, Shells};

use crate::config;
use crate::exit;

/// The variable the registration scripts set when they call the harness back.
const VAR: &str = "HARNESS_COMPLETE";

/// A shell completions are made for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Shell {
    /// Bash 4.4 or later (older ones complete without sorting).
    Bash,
    /// Zsh.
    Zsh,
    /// Fish.
    Fish,
}

/// Answers a completion request and exits, when the shell's script is asking (the variable is
/// set); otherwise does nothing. Call before anything is printed.
pub(super) fn answer_if_asked() {
    CompleteEnv::with_factory(super::Cli::command)
        .var(VAR)
        .complete();
}

/// `harness completions SHELL`: the script to source.
pub(super) fn print(shell: Shell) -> i32 {
    let name = match shell {
        Shell::Bash => "bash",
        Shell::Zsh => "zsh",
        Shell::Fish => "fish",
    };
    let shells = Shells::builtins();
    let Some(completer) = shells.completer(name) else {
        eprintln!("error: no completions for {name}");
        return exit::BAD_INPUT;
    };
    let program = std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "harness".into());
    let mut out = Vec::new();
    if let Err(e) = completer.write_registration(VAR, "harness", "harness", &program, &mut out) {
        eprintln!("error: {e}");
        return exit::INFRA;
    }
    print!("{}", String::from_utf8_lossy(&out));
    exit::OK
}

/// The project of the current folder's outline.
fn outline() -> config::Outline {
    let cwd = std::env::current_dir().unwrap_or_else(|_| ".".into());
    config::outline(&config::find_root(&cwd))
}

fn matching(names: Vec<String>, current: &OsStr) -> Vec<CompletionCandidate> {
    let current = current.to_string_lossy();
    names
        .into_iter()
        .filter(|n| n.starts_with(current.as_ref()))
        .map(CompletionCandidate::new)
        .collect()
}

/// Scenario names of the project.
pub fn scenarios(current: &OsStr) -> Vec<CompletionCandidate> {
    matching(outline().scenarios, current)
}

/// Names of the kept environments that are up.
pub fn kept(current: &OsStr) -> Vec<CompletionCandidate> {
    matching(
        crate::kept::list().0.into_iter().map(|r| r.name).collect(),
        current,
    )
}

/// Pipeline names of the project.
pub fn pipelines(current: &OsStr) -> Vec<CompletionCandidate> {
    matching(outline().pipelines, current)
}

/// Sink names of the project's scenarios.
pub fn sinks(current: &OsStr) -> Vec<CompletionCandidate> {
    matching(outline().sinks, current)
}
