//! Hive tables the harness reads and writes itself, without Spark: a table Spark keeps as
//! Parquet, ORC, CSV or JSON Lines is read from its files (its schema, location, partitions and
//! options from the metastore; one module per format), a dataset an `hdfs` sink names is read
//! the same way where the schema Spark would take is certain (`read_path`), and a CSV or JSON Lines
//! seed is written as Parquet into the warehouse and registered as Spark registers a
//! `saveAsTable` (see `seed`). Each answers [`Direct::Spark`] with the reason when anything is
//! outside what it renders exactly as the harness's Spark session does: that table, dataset or
//! seed then goes through the session, so a snapshot never depends on the way taken.

mod arrow;
mod delimited;
mod json;
mod orc;
mod parquet;
pub mod seed;
mod text;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use hive_metastore::Table as HiveTable;
use serde_json::Value as J;

use super::metastore::Metastore;
use super::spark_type::{self, Field, SparkType};
use crate::config::TableFormat;
use crate::services::hdfs::HdfsEndpoint;
use crate::services::spark::session;
use crate::snapshot::{Column, Table};

use delimited::CsvOptions;

/// The outcome of a way without Spark: done, or why this one must go through Spark.
#[derive(Debug)]
pub enum Direct<T> {
    /// Done without Spark.
    Done(T),
    /// Outside what the harness does exactly itself; the reason, for the log.
    Spark(String),
}

/// Early return of [`Direct::Spark`] with a reason.
macro_rules! spark {
    ($($arg:tt)*) => {
        return Ok(Direct::Spark(format!($($arg)*)))
    };
}
pub(crate) use spark;

/// A table property Spark may split into parts (`KEY`, or `KEY.numParts` and `KEY.part.N`).
fn large_prop(params: &HashMap<String, String>, key: &str) -> Option<String> {
    if let Some(v) = params.get(key) {
        return Some(v.clone());
    }
    let n: usize = params.get(&format!("{key}.numParts"))?.parse().ok()?;
    (0..n)
        .map(|i| params.get(&format!("{key}.part.{i}")).cloned())
        .collect()
}

/// `db.table` as the metastore names it (Spark's names are case-insensitive).
pub fn split_table(table: &str) -> (String, String) {
    let lower = table.to_lowercase();
    match lower.split_once('.') {
        Some((db, t)) => (db.to_string(), t.to_string()),
        None => ("default".into(), lower),
    }
}

fn params_of(table: &HiveTable) -> HashMap<String, String> {
    table
        .parameters
        .iter()
        .flatten()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The folders of a table's data: (folder, partition values as the metastore holds them).
type Places = Vec<(PathBuf, Vec<Option<String>>)>;

/// How a table's files are read.
#[derive(Debug, Clone, PartialEq)]
enum Format {
    /// Parquet files.
    Parquet,
    /// ORC files.
    Orc,
    /// CSV files with these options.
    Csv(CsvOptions),
    /// JSON Lines.
    Json,
}

impl Format {
    /// The format of a table by its provider (`spark.sql.sources.provider`, `hive` when
    /// missing), its SerDe and its storage options; [`Direct::Spark`] for one not read here.
    fn of_table(provider: &str, serde: &str, options: &[(String, String)]) -> Direct<Format> {
        let format = match provider {
            "parquet" => Format::Parquet,
            "orc" => Format::Orc,
            "csv" => match CsvOptions::from_options(options) {
                Ok(o) => Format::Csv(o),
                Err(why) => return Direct::Spark(why),
            },
            "json" => match json::supported(options) {
                Ok(()) => Format::Json,
                Err(why) => return Direct::Spark(why),
            },
            "hive" if serde.ends_with("ParquetHiveSerDe") => Format::Parquet,
            "hive" if serde.ends_with("OrcSerde") => Format::Orc,
            "hive" => return Direct::Spark(format!("a Hive table with the SerDe {serde}")),
            other => return Direct::Spark(format!("a table of the {other} data source")),
        };
        Direct::Done(format)
    }

    /// Reads one data file.
    fn read_file(&self, path: &Path, data: &[Field]) -> Result<Direct<Vec<Vec<J>>>, String> {
        let text = |path: &Path| -> Result<Direct<String>, String> {
            let name = path.file_name().map(|n| n.to_string_lossy().to_lowercase());
            let compressed = name
                .as_deref()
                .and_then(|n| n.rsplit_once('.'))
                .is_some_and(|(_, ext)| {
                    [
                        "gz", "bz2", "deflate", "snappy", "lz4", "zst", "zstd", "br", "xz", "lzo",
                    ]
                    .contains(&ext)
                });
            if compressed {
                spark!("a compressed file");
            }
            let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
            match String::from_utf8(bytes) {
                Ok(t) => Ok(Direct::Done(t)),
                Err(_) => spark!("not UTF-8"),
            }
        };
        let rows = match self {
            Format::Parquet => return parquet::read_file(path, data),
            Format::Orc => return orc::read_file(path, data),
            Format::Csv(options) => match text(path)? {
                Direct::Done(t) => options.read(&t, data),
                Direct::Spark(why) => spark!("{why}"),
            },
            Format::Json => match text(path)? {
                Direct::Done(t) => json::read(&t, data),
                Direct::Spark(why) => spark!("{why}"),
            },
        };
        Ok(match rows {
            Ok(rows) => Direct::Done(rows),
            Err(why) => Direct::Spark(why),
        })
    }

    /// True for formats whose files cannot be empty (an empty CSV or JSON file has no rows).
    fn binary(&self) -> bool {
        matches!(self, Format::Parquet | Format::Orc)
    }
}

/// Reads `table` from its files.
pub async fn read_table(
    ms: &Metastore,
    hdfs: &HdfsEndpoint,
    table: &str,
) -> Result<Direct<Table>, String> {
    let (db, name) = split_table(table);
    let Some(t) = ms.table(&db, &name).await? else {
        return Err(format!("no such table: {table}"));
    };
    if t.table_type.as_deref() == Some("VIRTUAL_VIEW") {
        spark!("{table} is a view");
    }
    let params = params_of(&t);
    let serde_info = t.sd.as_ref().and_then(|sd| sd.serde_info.as_ref());
    let serde = serde_info
        .and_then(|s| s.serialization_lib.as_deref())
        .unwrap_or("");
    // The options the table was made with: Spark keeps them with the SerDe's parameters.
    let mut options: Vec<(String, String)> = serde_info
        .and_then(|s| s.parameters.as_ref())
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .filter(|(k, _)| !k.eq_ignore_ascii_case("path") && k != "serialization.format")
        .collect();
    options.sort();
    let provider = params
        .get("spark.sql.sources.provider")
        .map_or("hive".to_string(), |p| p.to_lowercase());
    let format = match Format::of_table(&provider, serde, &options) {
        Direct::Done(f) => f,
        Direct::Spark(why) => spark!("{table} is {why}, which the harness does not read itself"),
    };
    let Some(fields) = large_prop(&params, "spark.sql.sources.schema")
        .and_then(|text| serde_json::from_str::<J>(&text).ok())
        .and_then(|schema| spark_type::fields_from_json(&schema))
    else {
        spark!("{table} has a column type the harness does not read itself");
    };
    let partition_names: Vec<String> = if provider == "hive" {
        t.partition_keys
            .iter()
            .flatten()
            .filter_map(|k| k.name.as_deref().map(str::to_string))
            .collect()
    } else {
        let n: usize = params
            .get("spark.sql.sources.schema.numPartCols")
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        (0..n)
            .filter_map(|i| {
                params
                    .get(&format!("spark.sql.sources.schema.partCol.{i}"))
                    .cloned()
            })
            .collect()
    };
    let data_len = fields.len().saturating_sub(partition_names.len());
    let tail_matches = fields[data_len..]
        .iter()
        .zip(&partition_names)
        .all(|(f, p)| f.name.eq_ignore_ascii_case(p));
    if data_len == 0 || !tail_matches {
        spark!("{table}: its partition columns are not the schema's last columns");
    }
    let location =
        t.sd.as_ref()
            .and_then(|sd| {
                let path = sd
                    .serde_info
                    .as_ref()
                    .and_then(|s| s.parameters.as_ref())
                    .and_then(|p| p.iter().find(|(k, _)| k.eq_ignore_ascii_case("path")))
                    .map(|(_, v)| v.to_string());
                path.or_else(|| sd.location.as_deref().map(str::to_string))
            })
            .unwrap_or_default();
    let local = |url: &str| {
        if url.contains('%') {
            None
        } else {
            hdfs.local_of_url(url)
        }
    };
    let mut places: Places = Vec::new();
    if partition_names.is_empty() {
        let Some(dir) = local(&location) else {
            spark!("{table} is at {location}, outside the environment's namespace");
        };
        places.push((dir, vec![]));
    } else {
        let catalog = provider == "hive"
            || params
                .get("spark.sql.partitionProvider")
                .map(String::as_str)
                == Some("catalog");
        if !catalog {
            spark!("{table}: its partitions are not kept in the metastore");
        }
        for p in ms.partitions(&db, &name).await? {
            let url =
                p.sd.as_ref()
                    .and_then(|sd| sd.location.as_deref())
                    .unwrap_or("");
            let Some(dir) = local(url) else {
                spark!("{table} has a partition at {url}, outside the environment's namespace");
            };
            let values = p
                .values
                .iter()
                .flatten()
                .map(|v| (v.as_str() != "__HIVE_DEFAULT_PARTITION__").then(|| v.to_string()))
                .collect();
            places.push((dir, values));
        }
    }
    let (data, parts) = fields.split_at(data_len);
    let files = tokio::task::spawn_blocking({
        let (data, parts) = (data.to_vec(), parts.to_vec());
        move || read_places(&places, &data, &parts, &format)
    })
    .await
    .map_err(|e| e.to_string())??;
    Ok(match files {
        Direct::Done(rows) => Direct::Done(to_table(&fields, rows)),
        Direct::Spark(why) => Direct::Spark(format!("{table}: {why}")),
    })
}

/// The snapshot's table of rows of JSON values, by the session's own reading of them.
fn to_table(fields: &[Field], rows: Vec<Vec<J>>) -> Table {
    let columns: Vec<Column> = fields
        .iter()
        .map(|f| Column {
            name: f.name.clone(),
            type_name: f.ty.simple_string(),
        })
        .collect();
    let schemas: Vec<Option<J>> = fields
        .iter()
        .map(|f| f.ty.nested().then(|| f.ty.to_json()))
        .collect();
    let rows = rows
        .into_iter()
        .map(|row| {
            row.into_iter()
                .zip(columns.iter().zip(&schemas))
                .map(|(v, (c, schema))| match schema {
                    Some(schema) => session::typed(schema, v),
                    None => session::value(&c.type_name, v),
                })
                .collect()
        })
        .collect();
    Table { columns, rows }
}

fn read_places(
    places: &Places,
    data: &[Field],
    parts: &[Field],
    format: &Format,
) -> Result<Direct<Vec<Vec<J>>>, String> {
    let mut rows = Vec::new();
    for (dir, values) in places {
        let mut part_values = Vec::new();
        for (f, v) in parts.iter().zip(values) {
            let value = match (v, &f.ty) {
                (None, _) => J::Null,
                (Some(v), SparkType::String) => J::String(v.clone()),
                (
                    Some(v),
                    SparkType::Byte | SparkType::Short | SparkType::Int | SparkType::Long,
                ) => match v.parse::<i64>() {
                    Ok(n) => J::from(n),
                    Err(_) => spark!("partition value {v:?} of column {}", f.name),
                },
                _ => spark!("partition column {} is {}", f.name, f.ty.simple_string()),
            };
            part_values.push(value);
        }
        let files = match data_files(dir, format.binary())? {
            Direct::Done(files) => files,
            Direct::Spark(why) => spark!("{why}"),
        };
        for file in files {
            match format.read_file(&file, data)? {
                Direct::Done(file_rows) => rows.extend(file_rows.into_iter().map(|mut r| {
                    r.extend(part_values.iter().cloned());
                    r
                })),
                Direct::Spark(why) => spark!("{}: {why}", file.display()),
            }
        }
    }
    Ok(Direct::Done(rows))
}

/// The data files of a folder, sorted (names starting with `_` or `.` left out);
/// [`Direct::Spark`] for a folder Spark reads otherwise: not a folder, sub-folders, or (for
/// `binary` formats) an empty file.
fn data_files(dir: &Path, binary: bool) -> Result<Direct<Vec<PathBuf>>, String> {
    if !dir.is_dir() {
        spark!("{} is not a folder", dir.display());
    }
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))? {
        let entry = entry.map_err(|e| format!("{}: {e}", dir.display()))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('_') || name.starts_with('.') {
            continue;
        }
        let meta = entry.metadata().map_err(|e| e.to_string())?;
        if !meta.is_file() || (meta.len() == 0 && binary) {
            spark!("{} holds {name}, not a data file", dir.display());
        }
        files.push(entry.path());
    }
    files.sort();
    Ok(Direct::Done(files))
}

/// Reads the dataset in the folder `dir` as the session's `read_path` reads it, which gives
/// Spark no schema: a Parquet dataset's from the Spark schema its files carry (the same in
/// every file), a CSV dataset's from its header line (the same in every file; every column a
/// string, Spark's default options with `header`). JSON Lines datasets, whose schema Spark
/// infers from the values, go through Spark.
pub fn read_path(dir: &Path, format: TableFormat) -> Result<Direct<Table>, String> {
    if ["_metadata", "_common_metadata"]
        .iter()
        .any(|name| dir.join(name).exists())
    {
        spark!("{} holds Parquet summary files", dir.display());
    }
    let files = match data_files(dir, format == TableFormat::Parquet)? {
        Direct::Done(files) => files,
        Direct::Spark(why) => return Ok(Direct::Spark(why)),
    };
    let (fields, format) = match format {
        TableFormat::Parquet => {
            let mut schemas = Vec::new();
            for file in &files {
                schemas.push(parquet::spark_schema(file)?);
            }
            schemas.dedup();
            let Some(fields) = (match schemas.as_slice() {
                [Some(text)] => serde_json::from_str::<J>(text)
                    .ok()
                    .and_then(|schema| spark_type::fields_from_json(&schema)),
                _ => None,
            }) else {
                spark!(
                    "{}: its files do not carry one Spark schema the harness reads",
                    dir.display()
                );
            };
            (fields, Format::Parquet)
        }
        TableFormat::Csv => {
            let options = CsvOptions {
                header: true,
                ..CsvOptions::default()
            };
            let mut headers = Vec::new();
            for file in &files {
                let content =
                    std::fs::read(file).map_err(|e| format!("{}: {e}", file.display()))?;
                if !content.is_empty() {
                    let line = content.split(|&b| b == b'\n').next().unwrap_or_default();
                    headers.push(String::from_utf8_lossy(line).into_owned());
                }
            }
            headers.dedup();
            let Some(names) = (match headers.as_slice() {
                [line] => options.header_names(line),
                _ => None,
            }) else {
                spark!(
                    "{}: its files do not share one header of distinct names",
                    dir.display()
                );
            };
            let fields = names
                .iter()
                .map(|name| Field::new(name, SparkType::String))
                .collect();
            (fields, Format::Csv(options))
        }
        TableFormat::Jsonl => spark!("Spark infers the schema of a JSON Lines dataset"),
    };
    let places: Places = vec![(dir.to_path_buf(), vec![])];
    Ok(match read_places(&places, &fields, &[], &format)? {
        Direct::Done(rows) => Direct::Done(to_table(&fields, rows)),
        Direct::Spark(why) => Direct::Spark(why),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_table_s_format_comes_from_its_provider_serde_and_options() {
        let opts = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let lazy = "org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe";
        let orc = "org.apache.hadoop.hive.ql.io.orc.OrcSerde";
        assert!(matches!(
            Format::of_table("hive", orc, &[]),
            Direct::Done(Format::Orc)
        ));
        assert!(matches!(
            Format::of_table("json", lazy, &[]),
            Direct::Done(Format::Json)
        ));
        let Direct::Done(Format::Csv(csv)) =
            Format::of_table("csv", lazy, &opts(&[("Header", "TRUE"), ("sep", "|")]))
        else {
            panic!("a CSV table");
        };
        assert!(csv.header && csv.sep == '|');
        // Hive text tables, other data sources and options not handled: through Spark.
        for (provider, serde, options) in [
            ("hive", lazy, opts(&[])),
            ("avro", lazy, opts(&[])),
            ("csv", lazy, opts(&[("compression", "gzip")])),
            ("json", lazy, opts(&[("multiLine", "true")])),
        ] {
            assert!(matches!(
                Format::of_table(provider, serde, &options),
                Direct::Spark(_)
            ));
        }
    }

    #[test]
    fn a_csv_folder_is_read_with_its_header_as_string_columns() {
        let dir = tempfile::tempdir().expect("tempdir");
        let write = |name: &str, text: &str| {
            std::fs::write(dir.path().join(name), text).expect("write");
        };
        write("part-0.csv", "id,note\n1,\"a, b\"\n2,\n");
        write("part-1.csv", "id,note\n3,\"\"\n");
        write("empty.csv", "");
        write("_SUCCESS", "");
        write(".part-0.csv.crc", "x");
        let Direct::Done(table) = read_path(dir.path(), TableFormat::Csv).expect("read") else {
            panic!("read through Spark");
        };
        let names: Vec<&str> = table.columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["id", "note"]);
        assert!(table.columns.iter().all(|c| c.type_name == "string"));
        assert_eq!(table.rows.len(), 3);

        // Files with other headers, or names Spark renames, go through Spark.
        write("part-2.csv", "id,other\n4,x\n");
        assert!(matches!(
            read_path(dir.path(), TableFormat::Csv),
            Ok(Direct::Spark(_))
        ));
        let other = tempfile::tempdir().expect("tempdir");
        std::fs::write(other.path().join("a.csv"), "id,ID\n1,2\n").expect("write");
        assert!(matches!(
            read_path(other.path(), TableFormat::Csv),
            Ok(Direct::Spark(_))
        ));
        assert!(matches!(
            read_path(dir.path(), TableFormat::Jsonl),
            Ok(Direct::Spark(_))
        ));
    }
}
