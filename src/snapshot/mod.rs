//! Snapshots: the canonical text form of what landed in a sink (`canonical`), the golden files
//! next to each scenario (`golden`) and the write policy applied to them (`store`), the diff
//! between the two (`diff`), the table-aware comparison of table sinks (`table`, in one merge
//! pass over both sorted sides when the key allows: `merge`) and of nested cells (`nested`),
//! the ranking-aware comparison of sinks holding ordered lists (`ranking`), the redactions
//! applied before rendering (`redaction`), the review of
//! pending snapshots (`review`) and what moved between repeated runs (`stability`).

pub mod canonical;
pub mod diff;
pub mod golden;
pub mod merge;
pub mod nested;
pub mod ranking;
pub mod redaction;
pub mod review;
pub mod stability;
pub mod store;
pub mod table;

pub use canonical::{Column, KeyEntry, KeySpace, KeyValue, Table, Value};
