//! The row-by-row account of how a table snapshot differs from its golden: schema changes,
//! added, removed and changed rows. `crate::snapshot::table` computes it; reporters render it.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

/// A change to the table's columns.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum SchemaChange {
    /// A column the golden does not have.
    Added {
        /// Its name.
        column: String,
        /// Its type.
        type_name: String,
    },
    /// A golden column that is gone.
    Removed {
        /// Its name.
        column: String,
        /// Its type.
        type_name: String,
    },
    /// A column whose type changed.
    TypeChanged {
        /// Its name.
        column: String,
        /// The golden's type.
        old: String,
        /// The new type.
        new: String,
    },
    /// The same columns in another order.
    Reordered {
        /// The golden's order.
        old: Vec<String>,
        /// The new order.
        new: Vec<String>,
    },
}

impl std::fmt::Display for SchemaChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SchemaChange::Added { column, type_name } => {
                write!(f, "column `{column}` ({type_name}) added")
            }
            SchemaChange::Removed { column, type_name } => {
                write!(f, "column `{column}` ({type_name}) removed")
            }
            SchemaChange::TypeChanged { column, old, new } => {
                write!(f, "column `{column}` changed type: {old} → {new}")
            }
            SchemaChange::Reordered { old, new } => write!(
                f,
                "columns reordered: {} → {}",
                old.join(", "),
                new.join(", ")
            ),
        }
    }
}

/// One changed value.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CellChange {
    /// Column.
    pub column: String,
    /// Where inside a nested value (`[2]`, `.name`, `["key"]`, chained); empty for the whole
    /// value.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub path: String,
    /// Golden value, as rendered.
    pub old: String,
    /// New value, as rendered.
    pub new: String,
}

/// A row present on both sides with different values.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChangedRow {
    /// The row's key (`col=value, ...`).
    pub key: String,
    /// The values beyond tolerance.
    pub cells: Vec<CellChange>,
}

/// What differs between a golden table and a new one.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TableDiff {
    /// Columns the rows were paired by; empty when rows were matched whole.
    pub key: Vec<String>,
    /// Why the declared key could not be used, if it could not.
    pub key_note: Option<String>,
    /// True when the lines before the table (row order, file listing) differ.
    pub preamble_changed: bool,
    /// Column changes.
    pub schema: Vec<SchemaChange>,
    /// Rows only in the new table, as rendered.
    pub added: Vec<String>,
    /// Rows only in the golden, as rendered.
    pub removed: Vec<String>,
    /// Rows on both sides that differ.
    pub changed: Vec<ChangedRow>,
    /// Values that differ within their column's tolerance.
    pub tolerated: usize,
    /// Golden rows.
    pub golden_rows: usize,
    /// New rows.
    pub actual_rows: usize,
}

/// How many rows of each kind the rendering lists before it says "and N more".
const SHOWN: usize = 20;

impl TableDiff {
    /// True when nothing differs beyond tolerance.
    pub fn passes(&self) -> bool {
        !self.preamble_changed
            && self.schema.is_empty()
            && self.added.is_empty()
            && self.removed.is_empty()
            && self.changed.is_empty()
    }

    /// Every column with a change beyond tolerance, with the number of rows where it changed.
    pub fn changed_columns(&self) -> Vec<(String, usize)> {
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for row in &self.changed {
            // A nested cell can change in several places; its column counts once per row.
            let mut columns: Vec<&str> = row.cells.iter().map(|c| c.column.as_str()).collect();
            columns.dedup();
            for c in columns {
                *counts.entry(c).or_default() += 1;
            }
        }
        counts
            .into_iter()
            .map(|(c, n)| (c.to_string(), n))
            .collect()
    }

    /// A readable account: counts, schema changes, then each changed row with old → new per
    /// column, then the added and removed rows.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let paired = if self.key.is_empty() {
            "rows matched whole".to_string()
        } else {
            format!("rows paired by {}", self.key.join(", "))
        };
        let _ = write!(
            out,
            "table: {} changed, {} added, {} removed ({paired}; golden {} rows, actual {} rows)",
            plural(self.changed.len(), "row"),
            self.added.len(),
            self.removed.len(),
            self.golden_rows,
            self.actual_rows
        );
        if self.tolerated > 0 {
            let _ = write!(
                out,
                "; {} within tolerance",
                plural(self.tolerated, "value")
            );
        }
        out.push('\n');
        if let Some(note) = &self.key_note {
            let _ = writeln!(out, "  note: {note}");
        }
        if self.preamble_changed {
            let _ = writeln!(
                out,
                "  the lines before the rows differ (see the text diff)"
            );
        }
        for s in &self.schema {
            let _ = writeln!(out, "  schema: {s}");
        }
        let cols = self.changed_columns();
        if !cols.is_empty() {
            let list: Vec<String> = cols
                .iter()
                .map(|(c, n)| format!("{c} ({})", plural(*n, "row")))
                .collect();
            let _ = writeln!(out, "  changed columns: {}", list.join(", "));
        }
        for row in self.changed.iter().take(SHOWN) {
            let cells: Vec<String> = row
                .cells
                .iter()
                .map(|c| format!("{}{}: {} → {}", c.column, c.path, c.old, c.new))
                .collect();
            let _ = writeln!(out, "  ~ {}: {}", row.key, cells.join("; "));
        }
        more(&mut out, self.changed.len(), "changed");
        for r in self.added.iter().take(SHOWN) {
            let _ = writeln!(out, "  + {r}");
        }
        more(&mut out, self.added.len(), "added");
        for r in self.removed.iter().take(SHOWN) {
            let _ = writeln!(out, "  - {r}");
        }
        more(&mut out, self.removed.len(), "removed");
        out
    }
}

fn plural(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

fn more(out: &mut String, n: usize, what: &str) {
    if n > SHOWN {
        let _ = writeln!(out, "  … and {} more {what}", n - SHOWN);
    }
}
