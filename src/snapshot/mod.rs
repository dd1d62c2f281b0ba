//! Snapshots: the canonical text form of what landed in a sink (`canonical`), the golden store
//! next to each scenario (`golden`), the diff between the two (`diff`) and the table-aware
//! comparison of table sinks (`table`).

pub mod canonical;
pub mod diff;
pub mod golden;
pub mod review;
pub mod table;

pub use canonical::{Column, KeyEntry, KeySpace, KeyValue, Table, Value};
