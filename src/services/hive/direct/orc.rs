//! ORC files of a table, read into Arrow by the `orc-rust` crate: plain ORC timestamps are
//! shifted from the writer's zone to UTC by that reader (instants, as Spark reads them),
//! `timestamp_ntz` columns are Spark's microseconds in a long. Dates and timestamps before the
//! Gregorian calendar (1582-10-15), where ORC writers and readers may rebase them between
//! calendars, are left to Spark.

use std::fs::File;
use std::path::Path;

use arrow_array::cast::AsArray;
use arrow_array::types::{Date32Type, Int64Type, TimestampMicrosecondType};
use arrow_array::{Array, RecordBatch};
use arrow_schema::{DataType, TimeUnit};
use orc_rust::ArrowReaderBuilder;
use serde_json::Value as J;

use super::arrow::{self, Source};
use super::{Direct, spark};
use crate::services::hive::spark_type::{Field, SparkType};

/// 1582-10-15 in days since the epoch.
const GREGORIAN_DAYS: i64 = -141_427;

/// The rows of one ORC file, values of `data` in order.
pub fn read_file(path: &Path, data: &[Field]) -> Result<Direct<Vec<Vec<J>>>, String> {
    let open = || File::open(path).map_err(|e| format!("{}: {e}", path.display()));
    let builder = match ArrowReaderBuilder::try_new(open()?) {
        Ok(b) => b,
        Err(e) => spark!("not an ORC file the harness reads ({e})"),
    };
    let file_fields = builder.schema().fields().clone();
    if let Direct::Spark(why) = arrow::roots(&file_fields, data, Source::Orc) {
        return Ok(Direct::Spark(why));
    }
    let reader = builder.with_schema(arrow::hinted(&file_fields)).build();
    let mut rows = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|e| format!("{}: {e}", path.display()))?;
        if before_gregorian(&batch, data) {
            spark!("a date or timestamp before 1582-10-15");
        }
        if let Direct::Spark(why) = arrow::batch_rows(&batch, data, &mut rows)
            .map_err(|e| format!("{}: {e}", path.display()))?
        {
            return Ok(Direct::Spark(why));
        }
    }
    Ok(Direct::Done(rows))
}

/// True when a date or timestamp of the batch (nested ones included) falls before the
/// Gregorian calendar.
fn before_gregorian(batch: &RecordBatch, data: &[Field]) -> bool {
    let schema = batch.schema();
    data.iter().any(|f| {
        arrow::field_index(schema.fields(), &f.name)
            .is_some_and(|i| early(batch.column(i).as_ref(), &f.ty))
    })
}

fn early(array: &dyn Array, ty: &SparkType) -> bool {
    let micros = GREGORIAN_DAYS * 86_400_000_000;
    match (ty, array.data_type()) {
        (SparkType::Date, DataType::Date32) => array
            .as_primitive::<Date32Type>()
            .iter()
            .flatten()
            .any(|d| i64::from(d) < GREGORIAN_DAYS),
        (_, DataType::Timestamp(TimeUnit::Microsecond, _)) => array
            .as_primitive::<TimestampMicrosecondType>()
            .iter()
            .flatten()
            .any(|t| t < micros),
        (SparkType::TimestampNtz, DataType::Int64) => array
            .as_primitive::<Int64Type>()
            .iter()
            .flatten()
            .any(|t| t < micros),
        (SparkType::Array(e), DataType::List(_)) => {
            early(array.as_list::<i32>().values().as_ref(), e)
        }
        (SparkType::Array(e), DataType::LargeList(_)) => {
            early(array.as_list::<i64>().values().as_ref(), e)
        }
        (SparkType::Map(k, v), DataType::Map(..)) => {
            let entries = array.as_map();
            early(entries.keys().as_ref(), k) || early(entries.values().as_ref(), v)
        }
        (SparkType::Struct(fields), DataType::Struct(file_fields)) => {
            let s = array.as_struct();
            fields.iter().any(|f| {
                arrow::field_index(file_fields, &f.name)
                    .is_some_and(|i| early(s.column(i).as_ref(), &f.ty))
            })
        }
        _ => false,
    }
}
