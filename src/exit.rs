//! Exit codes of the `harness` binary, in one place.

/// Every scenario passed (or `check` found no problem).
pub const OK: i32 = 0;
/// A scenario failed: a task failed or a sink differs from its golden.
pub const FAILED: i32 = 1;
/// Bad command line, configuration or input data.
pub const BAD_INPUT: i32 = 2;
/// A service did not start or stopped answering.
pub const INFRA: i32 = 3;
/// Interrupted by SIGINT or SIGTERM (128 + SIGINT, as shells report it).
pub const INTERRUPTED: i32 = 130;
