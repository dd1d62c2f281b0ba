//! What each kind of service takes in the project's files: which seeds (`sql`, rows from a
//! file, a key fixture, files), which sink (a table or query, key patterns, a path), whether
//! `sql` tasks run on it. The rules are data: every service description in `crate::services`
//! gives its own, and loading checks scenarios and pipelines against them, so the loader never
//! names a kind.

use super::scenario::TableFormat;
use crate::names::ServiceKind;

/// The rules of every kind, as the service registry gives them.
pub type Rules<'a> = &'a dyn Fn(ServiceKind) -> &'static DataRules;

/// What one kind takes.
#[derive(Debug, Clone, Copy)]
pub struct DataRules {
    /// `sql = "file.sql"` seeds.
    pub seed_sql: bool,
    /// `table` + a file of rows.
    pub seed_rows: Option<RowSeeds>,
    /// `json = "keys.json"` seeds (a key fixture).
    pub seed_keys: bool,
    /// `path` + `files` seeds (files copied in).
    pub seed_files: bool,
    /// Its sink, if it has one.
    pub sink: Option<SinkRules>,
    /// `kind = "sql"` tasks may run on it (`service = "<kind>"`).
    pub sql_tasks: bool,
    /// What to tell someone who seeds, reads or names as an output a kind holding no data.
    pub no_data: &'static str,
}

impl DataRules {
    /// The rules of a kind that holds no data of its own.
    pub const NO_DATA: DataRules = DataRules {
        seed_sql: false,
        seed_rows: None,
        seed_keys: false,
        seed_files: false,
        sink: None,
        sql_tasks: false,
        no_data: "",
    };

    /// The seed keys it takes, for messages.
    pub fn seed_forms(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        if self.seed_sql {
            out.push("sql = \"file.sql\"");
        }
        if let Some(rows) = &self.seed_rows {
            out.push(rows.example);
        }
        if self.seed_keys {
            out.push("json = \"keys.json\"");
        }
        if self.seed_files {
            out.push("path = \"/in\" with files = \"folder\"");
        }
        out
    }
}

/// How rows are seeded into a table of the kind.
#[derive(Debug, Clone, Copy)]
pub struct RowSeeds {
    /// The file formats it reads.
    pub formats: &'static [TableFormat],
    /// Whether `schema` is required (for CSV input), optional, or not taken.
    pub schema: SchemaRule,
    /// Whether `partition_by` is taken.
    pub partition_by: bool,
    /// Whether `engine` is taken (with `schema`).
    pub engine: bool,
    /// Whether CSV's `delimiter` and `null` are taken.
    pub csv_options: bool,
    /// Whether the input may be a folder of files (a dataset) rather than one file.
    pub folders: bool,
    /// Whether the file's columns are matched to the table's by name (a CSV header's or the
    /// JSON keys): then, with a schema, every column the file names must be in it.
    pub columns_by_name: bool,
    /// An example for messages: `table = "s.t" with csv = "rows.csv"`.
    pub example: &'static str,
    /// An example schema, for messages.
    pub schema_example: &'static str,
}

/// Whether a row seed's `schema` is needed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SchemaRule {
    /// Not taken: the table must exist.
    None,
    /// Taken: when given, the table is created with it, and the file's columns must be in it.
    Optional,
    /// Needed for CSV input (the other formats carry their types).
    RequiredForCsv,
}

/// The sink of a kind.
#[derive(Debug, Clone, Copy)]
pub enum SinkRules {
    /// A table (`table`), or with `query` allowed, a query's rows.
    Table {
        /// Whether `query` is taken.
        query: bool,
        /// Quotes a `db.table` name for a `SELECT * FROM` of the table.
        quote: fn(&str) -> String,
        /// The namespace of a table named without one (`public`, `default`).
        namespace: &'static str,
        /// Whether table names compare without regard to case.
        case_insensitive: bool,
    },
    /// Keys matching a pattern (`keys`), optionally with JSON values decoded.
    Keys,
    /// An absolute path: its files, and with `format` the rows of the dataset there.
    Path,
}

impl SinkRules {
    /// A table name as the sink matches it: with its namespace, in one case.
    pub fn normalize(&self, name: &str) -> String {
        match self {
            SinkRules::Table {
                namespace,
                case_insensitive,
                ..
            } => {
                let full = if name.contains('.') {
                    name.to_string()
                } else {
                    format!("{namespace}.{name}")
                };
                if *case_insensitive {
                    full.to_lowercase()
                } else {
                    full
                }
            }
            SinkRules::Keys | SinkRules::Path => name.to_string(),
        }
    }
}
