//! A CSV seed written as Parquet by the harness and registered as Spark registers
//! `df.write.partitionBy(...).mode("overwrite").saveAsTable(t)`: a managed Parquet table with its
//! Spark schema in the table's properties, its partitions in the metastore, its files under the
//! database's folder. Only what it parses exactly as Spark's CSV reader does (plain columns of
//! numbers, booleans and strings; no quotes, no carriage returns, no blank lines; partition
//! values that need no escaping) is written this way; anything else goes through Spark.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use arrow_array::{
    ArrayRef, BooleanArray, Float32Array, Float64Array, Int8Array, Int16Array, Int32Array,
    Int64Array, RecordBatch, StringArray,
};
use arrow_schema::{Field as ArrowField, Schema};
use hive_metastore::{
    Database, FieldSchema, Partition, SerDeInfo, SkewedInfo, StorageDescriptor, Table,
};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use pilota::{AHashMap, FastStr};

use super::{Direct, spark, split_table};
use crate::services::hdfs::HdfsEndpoint;
use crate::services::hive::metastore::Metastore;
use crate::services::hive::spark_type::{Field, SparkType, fields_to_json};

/// One CSV seed, as declared.
#[derive(Debug)]
pub struct CsvSeed<'a> {
    /// `db.table`.
    pub table: &'a str,
    /// The CSV file.
    pub path: &'a Path,
    /// Spark DDL of the columns.
    pub schema: Option<&'a str>,
    /// Partition columns.
    pub partition_by: &'a [String],
    /// Field delimiter.
    pub delimiter: u8,
    /// The text meaning NULL besides the empty field.
    pub null: Option<&'a str>,
}

/// A parsed cell.
#[derive(Debug, Clone, PartialEq)]
enum Cell {
    Null,
    Int(i64),
    Float(f64),
    Bool(bool),
    Text(String),
}

/// The columns of a Spark DDL made only of plain types; `None` for anything else.
fn columns_of(ddl: &str) -> Option<Vec<Field>> {
    if ddl.contains(['<', '(', '\'', '"']) {
        return None;
    }
    ddl.split(',')
        .map(|col| {
            let words: Vec<&str> = col.split_whitespace().collect();
            let [name, ty] = words[..] else { return None };
            let name = match name.strip_prefix('`') {
                Some(quoted) => quoted.strip_suffix('`')?,
                None => name,
            };
            if name.is_empty() || name.contains('`') {
                return None;
            }
            let ty = match ty.to_ascii_lowercase().as_str() {
                "bigint" | "long" => SparkType::Long,
                "int" | "integer" => SparkType::Int,
                "smallint" | "short" => SparkType::Short,
                "tinyint" | "byte" => SparkType::Byte,
                "double" => SparkType::Double,
                "float" | "real" => SparkType::Float,
                "boolean" => SparkType::Boolean,
                "string" => SparkType::String,
                _ => return None,
            };
            Some(Field {
                name: name.to_string(),
                ty,
            })
        })
        .collect()
}

/// A field as Spark's CSV reader (FAILFAST) reads it into `ty`; `None` where it would fail or
/// where the harness is not sure to read it the same.
fn parse(text: &str, ty: &SparkType, null: Option<&str>) -> Option<Cell> {
    if text.is_empty() || null == Some(text) {
        return Some(Cell::Null);
    }
    match ty {
        SparkType::Long | SparkType::Int | SparkType::Short | SparkType::Byte => {
            let (min, max) = super::text::integer_range(ty)?;
            super::text::integer(text, min, max).map(Cell::Int)
        }
        SparkType::Double => super::text::csv_floating(text, false).map(Cell::Float),
        SparkType::Float => super::text::csv_floating(text, true).map(Cell::Float),
        SparkType::Boolean => super::text::boolean(text).map(Cell::Bool),
        SparkType::String => Some(Cell::Text(text.to_string())),
        _ => None,
    }
}

/// The text of a partition value in a folder name, when it needs no escaping.
fn partition_text(cell: &Cell) -> Option<String> {
    let text = match cell {
        Cell::Int(n) => n.to_string(),
        Cell::Text(s) => s.clone(),
        _ => return None,
    };
    let plain = !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    plain.then_some(text)
}

/// The rows of the seed's file, by Spark's reading of it.
struct Parsed {
    data: Vec<Field>,
    parts: Vec<Field>,
    /// Rows of data columns, by their partition values.
    by_partition: BTreeMap<Vec<String>, Vec<Vec<Cell>>>,
}

fn parse_file(seed: &CsvSeed<'_>) -> Result<Direct<Parsed>, String> {
    let Some(columns) = seed.schema.and_then(columns_of) else {
        spark!("its schema has a type the harness does not write itself");
    };
    if !seed.path.is_file() {
        spark!("it is a folder");
    }
    let bytes = std::fs::read(seed.path).map_err(|e| format!("{}: {e}", seed.path.display()))?;
    let Ok(text) = String::from_utf8(bytes) else {
        spark!("it is not UTF-8");
    };
    if text.starts_with('\u{feff}') || text.contains(['\r', '"']) || !seed.delimiter.is_ascii() {
        spark!("it has quotes, carriage returns or a byte-order mark");
    }
    let delimiter = seed.delimiter as char;
    let mut lines = text.strip_suffix('\n').unwrap_or(&text).split('\n');
    let header: Vec<&str> = lines.next().unwrap_or("").split(delimiter).collect();
    let same_header = header.len() == columns.len()
        && header
            .iter()
            .zip(&columns)
            .all(|(h, c)| h.eq_ignore_ascii_case(&c.name));
    if !same_header {
        spark!("its header is not the schema's columns");
    }
    let mut part_index = Vec::new();
    for p in seed.partition_by {
        match columns.iter().position(|c| &c.name == p) {
            Some(i)
                if matches!(
                    columns[i].ty,
                    SparkType::String
                        | SparkType::Long
                        | SparkType::Int
                        | SparkType::Short
                        | SparkType::Byte
                ) =>
            {
                part_index.push(i)
            }
            _ => spark!("partition column {p} is not a plain column of the schema"),
        }
    }
    if part_index.len() >= columns.len() {
        spark!("every column is a partition column");
    }
    let mut by_partition: BTreeMap<Vec<String>, Vec<Vec<Cell>>> = BTreeMap::new();
    for line in lines {
        let fields: Vec<&str> = line.split(delimiter).collect();
        if line.is_empty() || fields.len() != columns.len() {
            spark!("a line is blank or has another number of fields");
        }
        let mut cells = Vec::with_capacity(columns.len());
        for (text, c) in fields.iter().zip(&columns) {
            match parse(text, &c.ty, seed.null) {
                Some(cell) => cells.push(cell),
                None => spark!("a value of column {} is not plain", c.name),
            }
        }
        let mut key = Vec::new();
        for &i in &part_index {
            match partition_text(&cells[i]) {
                Some(t) => key.push(t),
                None => spark!(
                    "a value of partition column {} needs escaping",
                    columns[i].name
                ),
            }
        }
        let data: Vec<Cell> = cells
            .into_iter()
            .enumerate()
            .filter(|(i, _)| !part_index.contains(i))
            .map(|(_, c)| c)
            .collect();
        by_partition.entry(key).or_default().push(data);
    }
    if part_index.is_empty() {
        by_partition.entry(vec![]).or_default();
    }
    let parts = part_index.iter().map(|&i| columns[i].clone()).collect();
    let data = columns
        .into_iter()
        .enumerate()
        .filter(|(i, _)| !part_index.contains(i))
        .map(|(_, c)| c)
        .collect();
    Ok(Direct::Done(Parsed {
        data,
        parts,
        by_partition,
    }))
}

/// One Parquet file of `rows`, snappy-compressed as Spark writes them.
fn write_parquet(path: &Path, fields: &[Field], rows: &[Vec<Cell>]) -> Result<(), String> {
    let schema = Arc::new(Schema::new(
        fields
            .iter()
            .map(|f| {
                let ty = match f.ty {
                    SparkType::Long => arrow_schema::DataType::Int64,
                    SparkType::Int => arrow_schema::DataType::Int32,
                    SparkType::Short => arrow_schema::DataType::Int16,
                    SparkType::Byte => arrow_schema::DataType::Int8,
                    SparkType::Double => arrow_schema::DataType::Float64,
                    SparkType::Float => arrow_schema::DataType::Float32,
                    SparkType::Boolean => arrow_schema::DataType::Boolean,
                    _ => arrow_schema::DataType::Utf8,
                };
                ArrowField::new(&f.name, ty, true)
            })
            .collect::<Vec<_>>(),
    ));
    let column = |i: usize| -> ArrayRef {
        let int = || {
            rows.iter().map(move |r| match r[i] {
                Cell::Int(n) => Some(n),
                _ => None,
            })
        };
        let float = || {
            rows.iter().map(move |r| match r[i] {
                Cell::Float(f) => Some(f),
                _ => None,
            })
        };
        match fields[i].ty {
            SparkType::Long => Arc::new(int().collect::<Int64Array>()),
            SparkType::Int => Arc::new(int().map(|n| n.map(|n| n as i32)).collect::<Int32Array>()),
            SparkType::Short => {
                Arc::new(int().map(|n| n.map(|n| n as i16)).collect::<Int16Array>())
            }
            SparkType::Byte => Arc::new(int().map(|n| n.map(|n| n as i8)).collect::<Int8Array>()),
            SparkType::Double => Arc::new(float().collect::<Float64Array>()),
            SparkType::Float => Arc::new(
                float()
                    .map(|f| f.map(|f| f as f32))
                    .collect::<Float32Array>(),
            ),
            SparkType::Boolean => Arc::new(
                rows.iter()
                    .map(|r| match r[i] {
                        Cell::Bool(b) => Some(b),
                        _ => None,
                    })
                    .collect::<BooleanArray>(),
            ),
            _ => Arc::new(
                rows.iter()
                    .map(|r| match &r[i] {
                        Cell::Text(s) => Some(s.as_str()),
                        _ => None,
                    })
                    .collect::<StringArray>(),
            ),
        }
    };
    let arrays: Vec<ArrayRef> = (0..fields.len()).map(column).collect();
    let batch = RecordBatch::try_new(schema.clone(), arrays).map_err(|e| e.to_string())?;
    let file = std::fs::File::create(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .build();
    let mut writer = ArrowWriter::try_new(file, schema, Some(props)).map_err(|e| e.to_string())?;
    writer.write(&batch).map_err(|e| e.to_string())?;
    writer.close().map_err(|e| e.to_string())?;
    Ok(())
}

fn map(pairs: &[(&str, String)]) -> AHashMap<FastStr, FastStr> {
    pairs
        .iter()
        .map(|(k, v)| (FastStr::new(*k), FastStr::new(v)))
        .collect()
}

fn hive_columns(fields: &[Field]) -> Vec<FieldSchema> {
    fields
        .iter()
        .map(|f| FieldSchema {
            name: Some(FastStr::new(f.name.to_lowercase())),
            r#type: Some(FastStr::new(f.ty.hive_name())),
            comment: None,
        })
        .collect()
}

/// Spark's storage of a Parquet table (Hive-compatible: Hive's Parquet SerDe and formats, and
/// the location again as the data source's `path`).
fn storage(cols: Vec<FieldSchema>, location: &str) -> StorageDescriptor {
    StorageDescriptor {
        cols: Some(cols),
        location: Some(FastStr::new(location)),
        input_format: Some(FastStr::new(
            "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
        )),
        output_format: Some(FastStr::new(
            "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
        )),
        compressed: Some(false),
        num_buckets: Some(-1),
        serde_info: Some(SerDeInfo {
            name: None,
            serialization_lib: Some(FastStr::new(
                "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe",
            )),
            parameters: Some(map(&[
                ("path", location.to_string()),
                ("serialization.format", "1".into()),
            ])),
        }),
        bucket_cols: Some(vec![]),
        sort_cols: Some(vec![]),
        parameters: Some(AHashMap::default()),
        skewed_info: Some(SkewedInfo {
            skewed_col_names: Some(vec![]),
            skewed_col_values: Some(vec![]),
            skewed_col_value_location_maps: Some(AHashMap::default()),
        }),
        stored_as_sub_directories: Some(false),
    }
}

/// Writes the seed and registers its table, replacing a table of that name.
pub async fn seed_table(
    ms: &Metastore,
    hdfs: &HdfsEndpoint,
    warehouse: &str,
    seed: &CsvSeed<'_>,
) -> Result<Direct<()>, String> {
    let parsed = match parse_file(seed)? {
        Direct::Done(p) => p,
        Direct::Spark(why) => return Ok(Direct::Spark(why)),
    };
    let (db, name) = split_table(seed.table);
    let db_location = match ms.database(&db).await? {
        Some(d) => d.location_uri.map(|l| l.to_string()).unwrap_or_default(),
        None => format!("{}/{db}.db", warehouse.trim_end_matches('/')),
    };
    let location = format!("{}/{name}", db_location.trim_end_matches('/'));
    let Some(dir) = hdfs.local_of_url(&location) else {
        spark!("its table would be at {location}, outside the environment's namespace");
    };
    if ms.database(&db).await?.is_none() {
        ms.create_database(Database {
            name: Some(FastStr::new(&db)),
            description: Some(FastStr::new("")),
            location_uri: Some(FastStr::new(&db_location)),
            parameters: Some(AHashMap::default()),
            ..Default::default()
        })
        .await?;
    }
    if ms.table(&db, &name).await?.is_some() {
        ms.drop_table(&db, &name).await?;
    }
    if dir.exists() && std::fs::read_dir(&dir).is_ok_and(|mut d| d.next().is_some()) {
        spark!("files are left at {location}");
    }
    let Parsed {
        data,
        parts,
        by_partition,
    } = parsed;
    {
        for (values, rows) in &by_partition {
            let mut folder = dir.clone();
            for (p, v) in parts.iter().zip(values) {
                folder.push(format!("{}={v}", p.name));
            }
            std::fs::create_dir_all(&folder).map_err(|e| format!("{}: {e}", folder.display()))?;
            write_parquet(
                &folder.join("part-00000-harness.c000.snappy.parquet"),
                &data,
                rows,
            )?;
        }
    }
    let all: Vec<Field> = data.iter().chain(&parts).cloned().collect();
    let mut params: Vec<(&str, String)> = vec![
        ("spark.sql.sources.provider", "parquet".into()),
        ("spark.sql.create.version", "4.3.0".into()),
        ("spark.sql.sources.schema", fields_to_json(&all).to_string()),
    ];
    let part_keys: Vec<String> = (0..parts.len())
        .map(|i| format!("spark.sql.sources.schema.partCol.{i}"))
        .collect();
    if !parts.is_empty() {
        params.push((
            "spark.sql.sources.schema.numPartCols",
            parts.len().to_string(),
        ));
        params.push(("spark.sql.partitionProvider", "catalog".into()));
        for (key, p) in part_keys.iter().zip(&parts) {
            params.push((key.as_str(), p.name.clone()));
        }
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i32)
        .unwrap_or(0);
    let owner = std::env::var("USER").unwrap_or_else(|_| "root".into());
    let sd = storage(hive_columns(&data), &location);
    ms.create_table(Table {
        table_name: Some(FastStr::new(&name)),
        db_name: Some(FastStr::new(&db)),
        owner: Some(FastStr::new(owner)),
        create_time: Some(now),
        last_access_time: Some(0),
        retention: Some(0),
        sd: Some(sd.clone()),
        partition_keys: Some(hive_columns(&parts)),
        parameters: Some(map(&params)),
        table_type: Some(FastStr::new("MANAGED_TABLE")),
        ..Default::default()
    })
    .await?;
    if !parts.is_empty() {
        let partitions = by_partition
            .keys()
            .map(|values| {
                let mut url = location.clone();
                for (p, v) in parts.iter().zip(values) {
                    url.push_str(&format!("/{}={v}", p.name));
                }
                let mut sd = sd.clone();
                sd.location = Some(FastStr::new(url));
                Partition {
                    values: Some(values.iter().map(FastStr::new).collect()),
                    db_name: Some(FastStr::new(&db)),
                    table_name: Some(FastStr::new(&name)),
                    create_time: Some(now),
                    last_access_time: Some(0),
                    sd: Some(sd),
                    parameters: Some(AHashMap::default()),
                    ..Default::default()
                }
            })
            .collect();
        ms.add_partitions(partitions).await?;
    }
    Ok(Direct::Done(()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_ddl_is_read_and_anything_else_is_left_to_spark() {
        let cols =
            columns_of("user_id BIGINT, `item` int, rating DOUBLE, dt STRING").expect("plain");
        assert_eq!(cols[1].name, "item");
        // A quoted name with a space is left to Spark.
        assert_eq!(columns_of("`item id` INT"), None);
        assert_eq!(cols[2].ty, SparkType::Double);
        assert_eq!(columns_of("price DECIMAL(10,2)"), None);
        assert_eq!(columns_of("t TIMESTAMP"), None);
        assert_eq!(columns_of("id BIGINT NOT NULL"), None);
    }

    #[test]
    fn values_are_read_as_spark_reads_them_or_left_to_it() {
        let none = None;
        assert_eq!(parse("", &SparkType::String, none), Some(Cell::Null));
        assert_eq!(
            parse("\\N", &SparkType::Long, Some("\\N")),
            Some(Cell::Null)
        );
        assert_eq!(parse("+7", &SparkType::Int, none), Some(Cell::Int(7)));
        assert_eq!(parse("2147483648", &SparkType::Int, none), None);
        assert_eq!(parse(" 7", &SparkType::Int, none), None);
        assert_eq!(parse("1.5", &SparkType::Long, none), None);
        assert_eq!(
            parse("4.0", &SparkType::Double, none),
            Some(Cell::Float(4.0))
        );
        assert_eq!(
            parse(".5e1", &SparkType::Double, none),
            Some(Cell::Float(5.0))
        );
        assert_eq!(parse("1.5d", &SparkType::Double, none), None);
        assert_eq!(
            parse("TRUE", &SparkType::Boolean, none),
            Some(Cell::Bool(true))
        );
        assert_eq!(
            parse("0.1", &SparkType::Float, none),
            Some(Cell::Float(f64::from(0.1f32)))
        );
        assert_eq!(
            partition_text(&Cell::Text("2024-05-01".into())).as_deref(),
            Some("2024-05-01")
        );
        assert_eq!(partition_text(&Cell::Text("a:b".into())), None);
    }
}
