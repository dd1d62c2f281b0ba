//! Snapshots: the canonical text form of what landed in a sink (`canonical`), the golden store
//! next to each scenario (`golden`) and the diff between the two (`diff`).

pub mod canonical;
pub mod diff;
pub mod golden;
pub mod review;

pub use canonical::{Column, KeyEntry, KeySpace, KeyValue, Table, Value};
