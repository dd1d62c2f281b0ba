//! The live view of a run on stderr: services coming up, scenarios and tasks starting and
//! ending, and every line a task prints, prefixed with its scenario and task. On a terminal a
//! progress line stays at the bottom; elsewhere plain lines only.

use std::collections::BTreeSet;
use std::time::Duration;

use console::Style as C;
use indicatif::{ProgressBar, ProgressStyle};
use tokio::sync::mpsc::UnboundedReceiver;

use super::Style;
use crate::events::Event;
use crate::outcome::TaskStatus;
use crate::process::Stream;
use crate::redact::redact;

/// Follows the event stream until it closes.
pub fn spawn(mut rx: UnboundedReceiver<Event>, style: Style) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut view = View::new(style);
        while let Some(e) = rx.recv().await {
            view.show(e);
        }
        if let Some(pb) = view.bar.take() {
            pb.finish_and_clear();
        }
    })
}

struct View {
    style: Style,
    bar: Option<ProgressBar>,
    total: usize,
    done: usize,
    scenario: String,
    running: BTreeSet<String>,
}

fn secs(d: Duration) -> String {
    format!("{:.1}s", d.as_secs_f64())
}

impl View {
    fn new(style: Style) -> Self {
        let bar = style.tty.then(|| {
            let pb = ProgressBar::new_spinner();
            pb.set_style(
                ProgressStyle::with_template("{spinner} [{elapsed}] {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            pb.enable_steady_tick(Duration::from_millis(120));
            pb
        });
        View {
            style,
            bar,
            total: 0,
            done: 0,
            scenario: String::new(),
            running: BTreeSet::new(),
        }
    }

    fn line(&self, text: &str) {
        let text = redact(text);
        match &self.bar {
            Some(pb) => pb.println(text),
            None => eprintln!("{text}"),
        }
    }

    fn refresh(&self) {
        if let Some(pb) = &self.bar {
            let tasks: Vec<&str> = self.running.iter().map(String::as_str).collect();
            let running = if tasks.is_empty() {
                String::new()
            } else {
                format!(" · running {}", tasks.join(", "))
            };
            pb.set_message(format!(
                "[{}/{}] {}{running}",
                self.done, self.total, self.scenario
            ));
        }
    }

    fn show(&mut self, e: Event) {
        let s = self.style;
        match e {
            Event::RunStarted { scenarios, backend } => {
                self.total = scenarios;
                self.line(&format!(
                    "running {scenarios} scenario{}; backend: {backend}",
                    if scenarios == 1 { "" } else { "s" }
                ));
            }
            Event::ServiceReady {
                service,
                endpoint,
                elapsed,
            } => {
                self.line(&format!(
                    "  {} {service} ready at {endpoint} in {}",
                    s.paint("service", C::new().cyan()),
                    secs(elapsed)
                ));
            }
            Event::ScenarioStarted { scenario } => {
                self.scenario = scenario.0.clone();
                self.line(&format!(
                    "{} {}",
                    s.paint("▶", C::new().cyan().bold()),
                    s.paint(&scenario.0, C::new().bold())
                ));
            }
            Event::TaskStarted {
                scenario,
                task,
                attempt,
                attempts,
            } => {
                self.running.insert(task.0.clone());
                let attempt = if attempts > 1 {
                    format!(" (attempt {attempt}/{attempts})")
                } else {
                    String::new()
                };
                self.line(&format!(
                    "  {} {scenario}/{task} started{attempt}",
                    s.paint("task", C::new().cyan())
                ));
            }
            Event::TaskOutput {
                scenario,
                task,
                stream,
                line,
            } => {
                let prefix = format!("{scenario}/{task} |");
                let prefix = match stream {
                    Stream::Stdout => s.paint(&prefix, C::new().dim()),
                    Stream::Stderr => s.paint(&prefix, C::new().yellow().dim()),
                };
                self.line(&format!("    {prefix} {line}"));
            }
            Event::TaskFinished {
                scenario,
                task,
                status,
                elapsed,
            } => {
                self.running.remove(&task.0);
                let (mark, color) = match status {
                    TaskStatus::Succeeded => ("✔", C::new().green()),
                    TaskStatus::Skipped { .. }
                    | TaskStatus::SkippedByDag
                    | TaskStatus::Cancelled => ("-", C::new().yellow()),
                    _ => ("✘", C::new().red().bold()),
                };
                let took = if elapsed.is_zero() {
                    String::new()
                } else {
                    format!(" ({})", secs(elapsed))
                };
                self.line(&format!(
                    "  {} {scenario}/{task}{took} {status}",
                    s.paint(mark, color)
                ));
            }
            Event::TaskState {
                scenario,
                task,
                state,
                attempt,
            } => {
                // Airflow's in-between states; a retry is the one worth a line of its own.
                if state == "up_for_retry" {
                    self.line(&format!(
                        "  {} {scenario}/{task} attempt {attempt} failed; up for retry",
                        s.paint("task", C::new().yellow())
                    ));
                }
            }
            Event::ScenarioRetrying {
                scenario,
                attempt,
                attempts,
                reason,
            } => {
                self.line(&format!(
                    "{} {scenario} (attempt {attempt}/{attempts}): {reason}; running it again",
                    s.paint("RETRY", C::new().yellow().bold())
                ));
            }
            Event::ScenarioFinished {
                scenario,
                passed,
                flaky,
                summary,
                elapsed,
            } => {
                self.done += 1;
                let mark = if flaky {
                    s.paint("FLAKY", C::new().yellow().bold())
                } else if passed {
                    s.paint("PASS", C::new().green().bold())
                } else {
                    s.paint("FAIL", C::new().red().bold())
                };
                self.line(&format!("{mark} {scenario} ({}): {summary}", secs(elapsed)));
            }
            Event::Notice { message } => self.line(&format!("  {message}")),
        }
        self.refresh();
    }
}
