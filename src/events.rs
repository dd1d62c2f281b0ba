//! What happens during a run, as values. The runner and the executor only emit events; the
//! terminal display (and anything else that wants to follow a run live) consumes them.

use std::time::Duration;

use tokio::sync::mpsc;

use crate::names::{ScenarioName, ServiceKind, TaskId};
use crate::outcome::TaskStatus;
use crate::process::Stream;

/// One thing that happened.
#[derive(Debug, Clone)]
pub enum Event {
    /// The run begins.
    RunStarted {
        /// Scenarios selected.
        scenarios: usize,
        /// Backend in use, and why.
        backend: String,
    },
    /// A service is ready.
    ServiceReady {
        /// Which.
        service: ServiceKind,
        /// Where it listens.
        endpoint: String,
        /// How long it took to become ready.
        elapsed: Duration,
    },
    /// A scenario begins.
    ScenarioStarted {
        /// Which.
        scenario: ScenarioName,
    },
    /// A task attempt begins.
    TaskStarted {
        /// Scenario.
        scenario: ScenarioName,
        /// Task.
        task: TaskId,
        /// 1-based attempt number.
        attempt: u32,
        /// Attempts allowed.
        attempts: u32,
    },
    /// A line a task printed.
    TaskOutput {
        /// Scenario.
        scenario: ScenarioName,
        /// Task.
        task: TaskId,
        /// Stream.
        stream: Stream,
        /// The line.
        line: String,
    },
    /// A task is done (or will never run).
    TaskFinished {
        /// Scenario.
        scenario: ScenarioName,
        /// Task.
        task: TaskId,
        /// Its status.
        status: TaskStatus,
        /// Time spent in it.
        elapsed: Duration,
    },
    /// An Airflow task changed to a state that is neither its start nor its end (`scheduled`,
    /// `queued`, `up_for_retry`, `deferred`, ...).
    TaskState {
        /// Scenario.
        scenario: ScenarioName,
        /// Task.
        task: TaskId,
        /// Airflow's name of the state.
        state: String,
        /// The attempt it concerns (Airflow's try number).
        attempt: u32,
    },
    /// A scenario failed and runs again.
    ScenarioRetrying {
        /// Which.
        scenario: ScenarioName,
        /// The attempt that failed (1-based).
        attempt: u32,
        /// Attempts allowed.
        attempts: u32,
        /// How it failed.
        reason: String,
    },
    /// A scenario is done.
    ScenarioFinished {
        /// Which.
        scenario: ScenarioName,
        /// True when it passed.
        passed: bool,
        /// True when it passed only after failing.
        flaky: bool,
        /// One-line summary.
        summary: String,
        /// Total time.
        elapsed: Duration,
    },
    /// Something worth a line of its own (a golden written, a service stopping...).
    Notice {
        /// The text.
        message: String,
    },
}

/// The sending side of the event stream. Cheap to clone; a closed receiver is ignored.
#[derive(Debug, Clone)]
pub struct Events(mpsc::UnboundedSender<Event>);

impl Events {
    /// A new stream and its receiving end.
    pub fn channel() -> (Events, mpsc::UnboundedReceiver<Event>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (Events(tx), rx)
    }

    /// Emits one event.
    pub fn emit(&self, event: Event) {
        let _ = self.0.send(event);
    }

    /// Emits a notice.
    pub fn notice(&self, message: impl Into<String>) {
        self.emit(Event::Notice {
            message: message.into(),
        });
    }
}
