//! Parquet files of a table, read into Arrow by the `parquet` crate: the columns the table's
//! schema names, INT96 instants in microseconds, files written with Spark's legacy calendar
//! left to Spark.

use std::fs::File;
use std::path::Path;

use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{ArrowReaderOptions, ParquetRecordBatchReaderBuilder};
use serde_json::Value as J;

use super::arrow::{self, Source};
use super::{Direct, spark};
use crate::services::hive::spark_type::Field;

/// The rows of one Parquet file, values of `data` in order.
pub fn read_file(path: &Path, data: &[Field]) -> Result<Direct<Vec<Vec<J>>>, String> {
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
    let roots = match arrow::roots(&file_fields, data, Source::Parquet) {
        Direct::Done(roots) => roots,
        Direct::Spark(why) => return Ok(Direct::Spark(why)),
    };
    let options = ArrowReaderOptions::new().with_schema(arrow::hinted(&file_fields));
    let builder =
        ParquetRecordBatchReaderBuilder::try_new_with_options(open()?, options).map_err(at)?;
    let mask = ProjectionMask::roots(builder.parquet_schema(), roots.iter().copied());
    let reader = builder.with_projection(mask).build().map_err(at)?;
    let mut rows = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|e| format!("{}: {e}", path.display()))?;
        if let Direct::Spark(why) = arrow::batch_rows(&batch, data, &mut rows)
            .map_err(|e| format!("{}: {e}", path.display()))?
        {
            return Ok(Direct::Spark(why));
        }
    }
    Ok(Direct::Done(rows))
}

/// The Spark schema Spark keeps in a Parquet file it writes
/// (`org.apache.spark.sql.parquet.row.metadata`), which Spark reads a path's schema from.
pub fn spark_schema(path: &Path) -> Result<Option<String>, String> {
    let file = File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let Ok(builder) = ParquetRecordBatchReaderBuilder::try_new(file) else {
        return Ok(None);
    };
    Ok(builder
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .into_iter()
        .flatten()
        .find(|kv| kv.key == "org.apache.spark.sql.parquet.row.metadata")
        .and_then(|kv| kv.value.clone()))
}
