//! Arrow arrays of a table's files (Parquet, ORC) as the session's JSON encodes their values:
//! which file types Spark reads as which of its types, the type to read them in (instants in
//! microseconds), and the values row by row.

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Date32Type, Decimal32Type, Decimal64Type, Decimal128Type, Float32Type, Float64Type, Int8Type,
    Int16Type, Int32Type, Int64Type, TimestampMicrosecondType, TimestampMillisecondType,
};
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field as ArrowField, Fields, Schema, TimeUnit};
use serde_json::Value as J;

use super::{Direct, spark, text};
use crate::services::hive::spark_type::{self, Field, SparkType};

/// The reader the arrays come from: each maps some of Spark's types its own way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Parquet, through the `parquet` crate.
    Parquet,
    /// ORC, through the `orc-rust` crate.
    Orc,
}

/// The index of the file's field for `name`: the same name, or the one that differs only in
/// case (Spark's Parquet reader matches names case-insensitively).
pub fn field_index(fields: &Fields, name: &str) -> Option<usize> {
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
fn compatible(ty: &SparkType, file: &DataType, source: Source) -> bool {
    match (ty, file) {
        // ORC's plain timestamps (instants the reader shifts from the writer's zone to UTC)
        // and instants; Spark keeps `timestamp_ntz` in ORC as microseconds in a long.
        (SparkType::Timestamp, DataType::Timestamp(TimeUnit::Nanosecond, _))
        | (SparkType::TimestampNtz, DataType::Int64)
            if source == Source::Orc =>
        {
            true
        }
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
            compatible(e, f.data_type(), source)
        }
        (SparkType::Map(k, v), DataType::Map(entries, _)) => match entries.data_type() {
            DataType::Struct(kv) if kv.len() == 2 => {
                compatible(k, kv[0].data_type(), source) && compatible(v, kv[1].data_type(), source)
            }
            _ => false,
        },
        (SparkType::Struct(fields), DataType::Struct(file_fields)) => fields.iter().all(|f| {
            field_index(file_fields, &f.name)
                .is_some_and(|i| compatible(&f.ty, file_fields[i].data_type(), source))
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
        (SparkType::Binary, DataType::Binary) => {
            text::hex(array.as_binary_opt::<i32>()?.value(row))
        }
        (SparkType::Binary, DataType::LargeBinary) => {
            text::hex(array.as_binary_opt::<i64>()?.value(row))
        }
        (SparkType::Binary, DataType::BinaryView) => {
            text::hex(array.as_binary_view_opt()?.value(row))
        }
        (SparkType::Date, _) => J::String(spark_type::date_string(i64::from(
            array.as_primitive_opt::<Date32Type>()?.value(row),
        ))?),
        (SparkType::TimestampNtz, DataType::Int64) => J::String(spark_type::timestamp_string(
            array.as_primitive_opt::<Int64Type>()?.value(row),
        )?),
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

/// The roots of the file's schema that hold `data`, by name; [`Direct::Spark`] when one is
/// missing or of a type Spark reads otherwise.
pub fn roots(file_fields: &Fields, data: &[Field], source: Source) -> Direct<Vec<usize>> {
    let mut roots = Vec::new();
    for f in data {
        let Some(i) = field_index(file_fields, &f.name) else {
            return Direct::Spark(format!("has no column {}", f.name));
        };
        if !compatible(&f.ty, file_fields[i].data_type(), source) {
            return Direct::Spark(format!(
                "column {} is {} in the file and {} in the table",
                f.name,
                file_fields[i].data_type(),
                f.ty.simple_string()
            ));
        }
        roots.push(i);
    }
    Direct::Done(roots)
}

/// The file's schema with instants in microseconds (see [`micros`]), to read it in.
pub fn hinted(file_fields: &Fields) -> Arc<Schema> {
    Arc::new(Schema::new(
        file_fields
            .iter()
            .map(|f| Arc::new(f.as_ref().clone().with_data_type(micros(f.data_type()))))
            .collect::<Vec<_>>(),
    ))
}

/// The rows of one batch, values of `data` in order, added to `rows`.
pub fn batch_rows(
    batch: &RecordBatch,
    data: &[Field],
    rows: &mut Vec<Vec<J>>,
) -> Result<Direct<()>, String> {
    let schema = batch.schema();
    let columns: Vec<&ArrayRef> = data
        .iter()
        .map(|f| {
            field_index(schema.fields(), &f.name)
                .map(|i| batch.column(i))
                .ok_or_else(|| format!("column {} not read", f.name))
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
    Ok(Direct::Done(()))
}
