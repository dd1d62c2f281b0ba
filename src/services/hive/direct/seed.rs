//! A CSV or JSON Lines seed written as Parquet by the harness and registered as Spark registers
//! `df.write.partitionBy(...).mode("overwrite").saveAsTable(t)`: a managed Parquet table with its
//! Spark schema in the table's properties, its partitions in the metastore, its files under the
//! database's folder. Only what it reads exactly as the session's Spark readers do (`csv`,
//! `json`, values in `value`; columns of numbers, booleans, strings, dates, timestamps and
//! decimals; partition values that need no escaping) is written this way; anything else goes
//! through Spark.

mod csv;
mod json;
mod value;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use arrow_array::{
    ArrayRef, BooleanArray, Date32Array, Decimal128Array, Float32Array, Float64Array, Int8Array,
    Int16Array, Int32Array, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use arrow_schema::{DataType, Field as ArrowField, Schema, TimeUnit};
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
use value::Cell;

/// The input of a seed.
#[derive(Debug, Clone, Copy)]
pub enum Input<'a> {
    /// A CSV file with a header.
    Csv {
        /// Field delimiter.
        delimiter: u8,
        /// The text meaning NULL besides the empty field.
        null: Option<&'a str>,
    },
    /// A JSON Lines file.
    Jsonl,
}

/// One seed, as declared.
#[derive(Debug)]
pub struct Seed<'a> {
    /// `db.table`.
    pub table: &'a str,
    /// The file.
    pub path: &'a Path,
    /// Its format.
    pub input: Input<'a>,
    /// Spark DDL of the columns.
    pub schema: Option<&'a str>,
    /// Partition columns.
    pub partition_by: &'a [String],
    /// What the environment's Spark configuration changes in Spark's reading.
    pub conf: &'a SessionConf,
}

/// Spark settings of the environment that change how Spark reads dates, timestamps, decimals
/// and JSON (time zone, parser policies, the meaning of `TIMESTAMP`): seeds that depend on them
/// go through Spark when `[services.spark] conf` sets any.
#[derive(Debug, Clone, Default)]
pub struct SessionConf {
    /// The first such setting.
    changed: Option<String>,
}

impl SessionConf {
    /// From `[services.spark] conf`: any `spark.sql.` setting but the ones about execution
    /// counts as a change (the harness sets the session time zone to UTC itself).
    pub fn of(conf: &BTreeMap<String, String>) -> SessionConf {
        let harmless = |key: &str, value: &str| {
            key.starts_with("spark.sql.adaptive.")
                || key.starts_with("spark.sql.execution.arrow.")
                || key == "spark.sql.shuffle.partitions"
                || key == "spark.sql.autoBroadcastJoinThreshold"
                || (key == "spark.sql.session.timeZone" && value == "UTC")
        };
        let changed = conf
            .iter()
            .find(|(k, v)| k.starts_with("spark.sql.") && !harmless(k, v))
            .map(|(k, _)| k.clone());
        SessionConf { changed }
    }
}

/// The top-level pieces of a DDL between commas outside parentheses.
fn split_columns(ddl: &str) -> Vec<&str> {
    let mut depth = 0i32;
    let mut start = 0;
    let mut parts = Vec::new();
    for (i, c) in ddl.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&ddl[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&ddl[start..]);
    parts
}

/// `decimal`, `decimal(p)` or `decimal(p,s)` (or `dec`, `numeric`), spaces removed.
fn decimal_type(ty: &str) -> Option<SparkType> {
    let args = ["decimal", "dec", "numeric"]
        .iter()
        .find_map(|name| ty.strip_prefix(name))?;
    let (p, s) = match args {
        "" => (10, 0),
        _ => {
            let inner = args.strip_prefix('(')?.strip_suffix(')')?;
            match inner.split_once(',') {
                Some((p, s)) => (p.parse().ok()?, s.parse().ok()?),
                None => (inner.parse().ok()?, 0),
            }
        }
    };
    ((1..=38).contains(&p) && (0..=p).contains(&s)).then_some(SparkType::Decimal(p, s as i8))
}

/// The columns of a Spark DDL made only of the types written directly; `None` for anything
/// else.
fn columns_of(ddl: &str) -> Option<Vec<Field>> {
    if ddl.contains(['<', '\'', '"']) {
        return None;
    }
    split_columns(ddl)
        .into_iter()
        .map(|col| {
            let col = col.trim();
            let (name, ty) = match col.strip_prefix('`') {
                Some(quoted) => quoted.split_once('`')?,
                None => col.split_once(char::is_whitespace)?,
            };
            if name.is_empty() || name.contains(['`', ' ']) {
                return None;
            }
            let ty: String = ty
                .chars()
                .filter(|c| !c.is_whitespace())
                .collect::<String>()
                .to_ascii_lowercase();
            let ty = match ty.as_str() {
                "bigint" | "long" => SparkType::Long,
                "int" | "integer" => SparkType::Int,
                "smallint" | "short" => SparkType::Short,
                "tinyint" | "byte" => SparkType::Byte,
                "double" => SparkType::Double,
                "float" | "real" => SparkType::Float,
                "boolean" => SparkType::Boolean,
                "string" => SparkType::String,
                "date" => SparkType::Date,
                "timestamp" | "timestamp_ltz" => SparkType::Timestamp,
                other => decimal_type(other)?,
            };
            Some(Field {
                name: name.to_string(),
                ty,
            })
        })
        .collect()
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

fn parse_file(seed: &Seed<'_>) -> Result<Direct<Parsed>, String> {
    if !seed.path.is_file() {
        spark!("it is a folder");
    }
    let bytes = std::fs::read(seed.path).map_err(|e| format!("{}: {e}", seed.path.display()))?;
    let Ok(text) = String::from_utf8(bytes) else {
        spark!("it is not UTF-8");
    };
    let columns = match (seed.schema, seed.input) {
        (Some(schema), _) => {
            columns_of(schema).ok_or("its schema has a type the harness does not write itself")
        }
        (None, Input::Jsonl) => json::infer(&text)
            .ok_or("it has no schema, and values whose types the harness does not infer as Spark"),
        (None, Input::Csv { .. }) => Err("it has no schema"),
    };
    let columns = match columns {
        Ok(columns) => columns,
        Err(why) => spark!("{why}"),
    };
    let timely = |c: &Field| {
        matches!(
            c.ty,
            SparkType::Date | SparkType::Timestamp | SparkType::Decimal(..)
        )
    };
    if let Some(key) = &seed.conf.changed
        && (columns.iter().any(timely) || matches!(seed.input, Input::Jsonl))
    {
        spark!("the Spark configuration sets {key}, which may change how Spark reads it");
    }
    let rows = match seed.input {
        Input::Csv { delimiter, null } => csv::rows(&text, &columns, delimiter, null)?,
        Input::Jsonl => json::rows(&text, &columns)?,
    };
    let rows = match rows {
        Direct::Done(rows) => rows,
        Direct::Spark(why) => return Ok(Direct::Spark(why)),
    };
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
    for cells in rows {
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

/// The Arrow type a column is written as: Spark's Parquet types (dates as `INT32` dates,
/// decimals as `INT32`, `INT64` or fixed-length bytes by precision), timestamps as
/// `TIMESTAMP(MICROS)` adjusted to UTC, which Spark reads as the `INT96` it writes itself.
fn arrow_type(ty: &SparkType) -> DataType {
    match ty {
        SparkType::Long => DataType::Int64,
        SparkType::Int => DataType::Int32,
        SparkType::Short => DataType::Int16,
        SparkType::Byte => DataType::Int8,
        SparkType::Double => DataType::Float64,
        SparkType::Float => DataType::Float32,
        SparkType::Boolean => DataType::Boolean,
        SparkType::Date => DataType::Date32,
        SparkType::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        SparkType::Decimal(p, s) => DataType::Decimal128(*p, *s),
        _ => DataType::Utf8,
    }
}

/// Column `i` of `rows` as the values of one variant of [`Cell`] (`None` for NULL).
macro_rules! column {
    ($rows:expr, $i:expr, $variant:path) => {
        $rows.iter().map(|r| match &r[$i] {
            $variant(v) => Some(v.clone()),
            _ => None,
        })
    };
}

/// Column `i` of `rows` as an Arrow array of `ty`.
fn array(rows: &[Vec<Cell>], i: usize, ty: &SparkType) -> Result<ArrayRef, String> {
    let int = || column!(rows, i, Cell::Int);
    let float = || column!(rows, i, Cell::Float);
    Ok(match ty {
        SparkType::Long => Arc::new(int().collect::<Int64Array>()),
        SparkType::Int => Arc::new(int().map(|n| n.map(|n| n as i32)).collect::<Int32Array>()),
        SparkType::Short => Arc::new(int().map(|n| n.map(|n| n as i16)).collect::<Int16Array>()),
        SparkType::Byte => Arc::new(int().map(|n| n.map(|n| n as i8)).collect::<Int8Array>()),
        SparkType::Double => Arc::new(float().collect::<Float64Array>()),
        SparkType::Float => Arc::new(
            float()
                .map(|f| f.map(|f| f as f32))
                .collect::<Float32Array>(),
        ),
        SparkType::Boolean => Arc::new(column!(rows, i, Cell::Bool).collect::<BooleanArray>()),
        SparkType::Date => Arc::new(column!(rows, i, Cell::Date).collect::<Date32Array>()),
        SparkType::Timestamp => Arc::new(
            column!(rows, i, Cell::Timestamp)
                .collect::<TimestampMicrosecondArray>()
                .with_timezone("UTC"),
        ),
        SparkType::Decimal(p, s) => Arc::new(
            column!(rows, i, Cell::Decimal)
                .collect::<Decimal128Array>()
                .with_precision_and_scale(*p, *s)
                .map_err(|e| e.to_string())?,
        ),
        _ => Arc::new(column!(rows, i, Cell::Text).collect::<StringArray>()),
    })
}

/// One Parquet file of `rows`, snappy-compressed as Spark writes them.
fn write_parquet(path: &Path, fields: &[Field], rows: &[Vec<Cell>]) -> Result<(), String> {
    let schema = Arc::new(Schema::new(
        fields
            .iter()
            .map(|f| ArrowField::new(&f.name, arrow_type(&f.ty), true))
            .collect::<Vec<_>>(),
    ));
    let arrays = fields
        .iter()
        .enumerate()
        .map(|(i, f)| array(rows, i, &f.ty))
        .collect::<Result<Vec<ArrayRef>, String>>()?;
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
    seed: &Seed<'_>,
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
        assert_eq!(columns_of("id BIGINT NOT NULL"), None);
        assert_eq!(columns_of("wall TIMESTAMP_NTZ"), None);
        assert_eq!(columns_of("tags ARRAY<STRING>"), None);
        let typed = columns_of(
            "price DECIMAL(10, 2), n NUMERIC(5), d dec, day DATE, at timestamp, `x` Timestamp_LTZ",
        )
        .expect("typed");
        let types: Vec<SparkType> = typed.into_iter().map(|f| f.ty).collect();
        assert_eq!(
            types,
            [
                SparkType::Decimal(10, 2),
                SparkType::Decimal(5, 0),
                SparkType::Decimal(10, 0),
                SparkType::Date,
                SparkType::Timestamp,
                SparkType::Timestamp
            ]
        );
        assert_eq!(columns_of("price DECIMAL(39,2)"), None);
        assert_eq!(columns_of("price DECIMAL(2,3)"), None);
    }

    #[test]
    fn spark_sql_settings_of_the_environment_send_dated_seeds_to_spark() {
        let conf = |pairs: &[(&str, &str)]| {
            let map = pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            SessionConf::of(&map).changed
        };
        assert_eq!(conf(&[("spark.sql.shuffle.partitions", "2")]), None);
        assert_eq!(conf(&[("spark.sql.session.timeZone", "UTC")]), None);
        assert_eq!(conf(&[("spark.executor.memory", "1g")]), None);
        assert_eq!(
            conf(&[("spark.sql.session.timeZone", "Europe/Paris")]).as_deref(),
            Some("spark.sql.session.timeZone")
        );
        assert_eq!(
            conf(&[("spark.sql.timestampType", "TIMESTAMP_NTZ")]).as_deref(),
            Some("spark.sql.timestampType")
        );
    }

    #[test]
    fn partition_values_that_need_no_escaping() {
        assert_eq!(
            partition_text(&Cell::Text("2024-05-01".into())).as_deref(),
            Some("2024-05-01")
        );
        assert_eq!(partition_text(&Cell::Text("a:b".into())), None);
    }
}
