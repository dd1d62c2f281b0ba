//! Hive tables the harness reads and writes itself, without Spark: a table Spark keeps as
//! Parquet is read from its files (its schema, location and partitions from the metastore), and a
//! CSV or JSON Lines seed is written as Parquet into the warehouse and registered as Spark
//! registers a `saveAsTable` (see `seed`). Each answers [`Direct::Spark`] with the reason when
//! anything is outside what it renders exactly as the harness's Spark session does: that table
//! or seed then goes through the session, so a snapshot never depends on the way taken.

pub mod seed;

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Date32Type, Decimal32Type, Decimal64Type, Decimal128Type, Float32Type, Float64Type, Int8Type,
    Int16Type, Int32Type, Int64Type, TimestampMicrosecondType, TimestampMillisecondType,
};
use arrow_array::{Array, ArrayRef};
use arrow_schema::{DataType, Field as ArrowField, Fields, Schema, TimeUnit};
use hive_metastore::Table as HiveTable;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{ArrowReaderOptions, ParquetRecordBatchReaderBuilder};
use serde_json::Value as J;

use super::metastore::Metastore;
use super::spark_type::{self, Field, SparkType};
use crate::services::hdfs::HdfsEndpoint;
use crate::services::spark::session;
use crate::snapshot::{Column, Table};

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

/// Reads `table` from its Parquet files.
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
    let serde =
        t.sd.as_ref()
            .and_then(|sd| sd.serde_info.as_ref())
            .and_then(|s| s.serialization_lib.as_deref())
            .unwrap_or("");
    let provider = params
        .get("spark.sql.sources.provider")
        .map(|p| p.to_lowercase());
    let parquet = match provider.as_deref() {
        Some("parquet") => true,
        Some("hive") => serde.ends_with("ParquetHiveSerDe"),
        _ => false,
    };
    if !parquet {
        spark!("{table} is not a Parquet table Spark made");
    }
    let Some(fields) = large_prop(&params, "spark.sql.sources.schema")
        .and_then(|text| serde_json::from_str::<J>(&text).ok())
        .and_then(|schema| spark_type::fields_from_json(&schema))
    else {
        spark!("{table} has a column type the harness does not read itself");
    };
    let partition_names: Vec<String> = if provider.as_deref() == Some("hive") {
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
        let catalog = provider.as_deref() == Some("hive")
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
        move || read_places(&places, &data, &parts)
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
            if !meta.is_file() || meta.len() == 0 {
                spark!("{} holds {name}, not a data file", dir.display());
            }
            files.push(entry.path());
        }
        files.sort();
        for file in files {
            match read_file(&file, data)? {
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

/// The index of the file's field for `name`: the same name, or the one that differs only in
/// case (Spark's Parquet reader matches names case-insensitively).
fn field_index(fields: &Fields, name: &str) -> Option<usize> {
    fields.iter().position(|f| f.name() == name).or_else(|| {
        let matching: Vec<usize> = fields
            .iter()
            .enumerate()
            .filter(|(_, f)| f.name().eq_ignore_ascii_case(name))
            .map(|(i, _)| i)
            .collect();
        (matching.len() == 1).then(|| matching[0])
    })
}

/// True when a value of the file's type is read by Spark as `ty` and by [`json_of`] exactly
/// as the session encodes it.
fn compatible(ty: &SparkType, file: &DataType) -> bool {
    match (ty, file) {
        (SparkType::Byte, DataType::Int8)
        | (SparkType::Short, DataType::Int16)
        | (SparkType::Int, DataType::Int32)
        | (SparkType::Long, DataType::Int64)
        | (SparkType::Float, DataType::Float32)
        | (SparkType::Double, DataType::Float64)
        | (SparkType::Boolean, DataType::Boolean)
        | (SparkType::Date, DataType::Date32)
        | (SparkType::String, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
        | (SparkType::Binary, DataType::Binary | DataType::LargeBinary | DataType::BinaryView) => {
            true
        }
        (SparkType::Decimal(p, s), DataType::Decimal128(fp, fs))
        | (SparkType::Decimal(p, s), DataType::Decimal64(fp, fs))
        | (SparkType::Decimal(p, s), DataType::Decimal32(fp, fs)) => p == fp && s == fs,
        // INT96 (Spark's default), or an instant adjusted to UTC.
        (SparkType::Timestamp, DataType::Timestamp(TimeUnit::Nanosecond, None)) => true,
        (
            SparkType::Timestamp,
            DataType::Timestamp(TimeUnit::Microsecond | TimeUnit::Millisecond, Some(_)),
        ) => true,
        (
            SparkType::TimestampNtz,
            DataType::Timestamp(TimeUnit::Microsecond | TimeUnit::Millisecond, None),
        ) => true,
        (SparkType::Array(e), DataType::List(f) | DataType::LargeList(f)) => {
            compatible(e, f.data_type())
        }
        (SparkType::Map(k, v), DataType::Map(entries, _)) => match entries.data_type() {
            DataType::Struct(kv) if kv.len() == 2 => {
                compatible(k, kv[0].data_type()) && compatible(v, kv[1].data_type())
            }
            _ => false,
        },
        (SparkType::Struct(fields), DataType::Struct(file_fields)) => fields.iter().all(|f| {
            field_index(file_fields, &f.name)
                .is_some_and(|i| compatible(&f.ty, file_fields[i].data_type()))
        }),
        _ => false,
    }
}

/// The file's type with INT96 instants read as microseconds (as Spark reads them), not
/// nanoseconds, which overflow past 2262.
fn micros(file: &DataType) -> DataType {
    let field =
        |f: &Arc<ArrowField>| Arc::new(f.as_ref().clone().with_data_type(micros(f.data_type())));
    match file {
        DataType::Timestamp(TimeUnit::Nanosecond, tz) => {
            DataType::Timestamp(TimeUnit::Microsecond, tz.clone())
        }
        DataType::List(f) => DataType::List(field(f)),
        DataType::LargeList(f) => DataType::LargeList(field(f)),
        DataType::Map(f, sorted) => DataType::Map(field(f), *sorted),
        DataType::Struct(fs) => DataType::Struct(fs.iter().map(field).collect()),
        other => other.clone(),
    }
}

fn read_file(path: &Path, data: &[Field]) -> Result<Direct<Vec<Vec<J>>>, String> {
    let at = |e: parquet::errors::ParquetError| format!("{}: {e}", path.display());
    let open = || File::open(path).map_err(|e| format!("{}: {e}", path.display()));
    let builder = match ParquetRecordBatchReaderBuilder::try_new(open()?) {
        Ok(b) => b,
        Err(e) => spark!("not a Parquet file the harness reads ({e})"),
    };
    let legacy = builder
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .into_iter()
        .flatten()
        .any(|kv| kv.key.starts_with("org.apache.spark.legacy"));
    if legacy {
        spark!("written with Spark's legacy calendar");
    }
    let file_fields = builder.schema().fields().clone();
    let mut roots = Vec::new();
    for f in data {
        let Some(i) = field_index(&file_fields, &f.name) else {
            spark!("has no column {}", f.name);
        };
        if !compatible(&f.ty, file_fields[i].data_type()) {
            spark!(
                "column {} is {} in the file and {} in the table",
                f.name,
                file_fields[i].data_type(),
                f.ty.simple_string()
            );
        }
        roots.push(i);
    }
    let hinted = Arc::new(Schema::new(
        file_fields
            .iter()
            .map(|f| Arc::new(f.as_ref().clone().with_data_type(micros(f.data_type()))))
            .collect::<Vec<_>>(),
    ));
    let options = ArrowReaderOptions::new().with_schema(hinted);
    let builder =
        ParquetRecordBatchReaderBuilder::try_new_with_options(open()?, options).map_err(at)?;
    let mask = ProjectionMask::roots(builder.parquet_schema(), roots.iter().copied());
    let reader = builder.with_projection(mask).build().map_err(at)?;
    let mut rows = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|e| format!("{}: {e}", path.display()))?;
        let schema = batch.schema();
        let columns: Vec<&ArrayRef> = data
            .iter()
            .map(|f| {
                field_index(schema.fields(), &f.name)
                    .map(|i| batch.column(i))
                    .ok_or_else(|| format!("{}: column {} not read", path.display(), f.name))
            })
            .collect::<Result<_, _>>()?;
        for row in 0..batch.num_rows() {
            let mut values = Vec::with_capacity(data.len());
            for (f, col) in data.iter().zip(&columns) {
                match json_of(col.as_ref(), row, &f.ty) {
                    Some(v) => values.push(v),
                    None => spark!("a value of column {} the session cannot encode", f.name),
                }
            }
            rows.push(values);
        }
    }
    Ok(Direct::Done(rows))
}

/// The value at `row` as the session's JSON encodes it; `None` where the session would fail
/// or where the harness cannot be sure to encode it the same way.
fn json_of(array: &dyn Array, row: usize, ty: &SparkType) -> Option<J> {
    if array.is_null(row) {
        return Some(J::Null);
    }
    Some(match (ty, array.data_type()) {
        (SparkType::Byte, _) => J::from(array.as_primitive_opt::<Int8Type>()?.value(row)),
        (SparkType::Short, _) => J::from(array.as_primitive_opt::<Int16Type>()?.value(row)),
        (SparkType::Int, _) => J::from(array.as_primitive_opt::<Int32Type>()?.value(row)),
        (SparkType::Long, _) => J::from(array.as_primitive_opt::<Int64Type>()?.value(row)),
        (SparkType::Float, _) => spark_type::python_float(f64::from(
            array.as_primitive_opt::<Float32Type>()?.value(row),
        )),
        (SparkType::Double, _) => {
            spark_type::python_float(array.as_primitive_opt::<Float64Type>()?.value(row))
        }
        (SparkType::Boolean, _) => J::Bool(array.as_boolean_opt()?.value(row)),
        (SparkType::Decimal(_, s), DataType::Decimal128(..)) => J::String(
            spark_type::decimal_string(array.as_primitive_opt::<Decimal128Type>()?.value(row), *s),
        ),
        (SparkType::Decimal(_, s), DataType::Decimal64(..)) => {
            J::String(spark_type::decimal_string(
                i128::from(array.as_primitive_opt::<Decimal64Type>()?.value(row)),
                *s,
            ))
        }
        (SparkType::Decimal(_, s), DataType::Decimal32(..)) => {
            J::String(spark_type::decimal_string(
                i128::from(array.as_primitive_opt::<Decimal32Type>()?.value(row)),
                *s,
            ))
        }
        (SparkType::String, DataType::Utf8) => {
            J::String(array.as_string_opt::<i32>()?.value(row).to_string())
        }
        (SparkType::String, DataType::LargeUtf8) => {
            J::String(array.as_string_opt::<i64>()?.value(row).to_string())
        }
        (SparkType::String, DataType::Utf8View) => {
            J::String(array.as_string_view_opt()?.value(row).to_string())
        }
        (SparkType::Binary, DataType::Binary) => hex(array.as_binary_opt::<i32>()?.value(row)),
        (SparkType::Binary, DataType::LargeBinary) => hex(array.as_binary_opt::<i64>()?.value(row)),
        (SparkType::Binary, DataType::BinaryView) => hex(array.as_binary_view_opt()?.value(row)),
        (SparkType::Date, _) => J::String(spark_type::date_string(i64::from(
            array.as_primitive_opt::<Date32Type>()?.value(row),
        ))?),
        (SparkType::Timestamp | SparkType::TimestampNtz, DataType::Timestamp(unit, _)) => {
            let micros = match unit {
                TimeUnit::Microsecond => array
                    .as_primitive_opt::<TimestampMicrosecondType>()?
                    .value(row),
                TimeUnit::Millisecond => array
                    .as_primitive_opt::<TimestampMillisecondType>()?
                    .value(row)
                    .checked_mul(1000)?,
                _ => return None,
            };
            J::String(spark_type::timestamp_string(micros)?)
        }
        (SparkType::Array(e), DataType::List(_)) => {
            list(array.as_list_opt::<i32>()?.value(row).as_ref(), e)?
        }
        (SparkType::Array(e), DataType::LargeList(_)) => {
            list(array.as_list_opt::<i64>()?.value(row).as_ref(), e)?
        }
        (SparkType::Map(k, v), DataType::Map(..)) => {
            let entries = array.as_map_opt()?.value(row);
            let (keys, values) = (entries.column(0), entries.column(1));
            let mut pairs: Vec<J> = Vec::with_capacity(entries.len());
            let mut seen = Vec::with_capacity(entries.len());
            for i in 0..entries.len() {
                let key = json_of(keys.as_ref(), i, k)?;
                // A Python dict keeps one entry per key: a map with a repeated key is Spark's.
                if seen.contains(&key) {
                    return None;
                }
                seen.push(key.clone());
                pairs.push(J::Array(vec![key, json_of(values.as_ref(), i, v)?]));
            }
            J::Array(pairs)
        }
        (SparkType::Struct(fields), DataType::Struct(file_fields)) => {
            let s = array.as_struct_opt()?;
            let mut values = Vec::with_capacity(fields.len());
            for f in fields {
                let i = field_index(file_fields, &f.name)?;
                values.push(json_of(s.column(i).as_ref(), row, &f.ty)?);
            }
            J::Array(values)
        }
        _ => return None,
    })
}

fn list(items: &dyn Array, element: &SparkType) -> Option<J> {
    (0..items.len())
        .map(|i| json_of(items, i, element))
        .collect::<Option<Vec<J>>>()
        .map(J::Array)
}

fn hex(bytes: &[u8]) -> J {
    J::String(bytes.iter().map(|b| format!("{b:02x}")).collect())
}
