//! The client side of each service: reset between scenarios, seed fixtures, read sinks. How a
//! service is started and stopped is the backend's business (`crate::backend`).

pub mod hdfs;
pub mod hive;
pub mod postgres;
pub mod redis;
pub mod spark;

use crate::config::Origin;

/// A failure talking to a service.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The service could not be reached or refused an administrative command.
    #[error("{service}: {message}")]
    Unavailable {
        /// Which service.
        service: &'static str,
        /// What went wrong.
        message: String,
    },
    /// A fixture or statement was rejected; `origin` says where in the user's files.
    #[error("{origin}: {message}")]
    Input {
        /// Where in the user's files.
        origin: Origin,
        /// What the service said.
        message: String,
    },
}
