"""Spark session sidecar for the `harness` test tool.

The Rust harness starts this script once per environment, as
``<venv python> harness_spark.py``, with SPARK_CONF_DIR pointing at a generated
spark-defaults.conf (or ``--properties-file`` naming it, see Arguments) (local master, Hive catalog, metastore URI, warehouse dir,
hdfs:// overload scheme, UTC session time zone). One JVM then serves every
seeding and read-back of Hive tables and dataset paths for the whole run.

Started as ``harness_spark.py --remote sc://127.0.0.1:PORT``, it starts no JVM
of its own: it is a Spark Connect client of the environment's Connect server,
which reads the same spark-defaults.conf (so the same catalog, warehouse, file
systems and session time zone), and every op below runs there. Only
``refresh`` differs: a client cannot reach the server's session catalog, so it
replaces its server-side session with a fresh one (which has no table metadata
cached) instead of emptying the old one's.

Protocol
--------
The real stdout is reserved for the protocol: it is duplicated before Spark
starts, and fd 1 / ``sys.stdout`` are pointed at stderr, so that nothing else
(Python prints, JVM output, log4j) can corrupt it.

* Once the session answers ``SHOW DATABASES`` the sidecar writes
  ``{"ready": true, "remote": null | "sc://..."}`` (or ``{"ready": false, "error": ..., "traceback": ...}``
  and exits 1 if the session cannot be created).
* Then it reads one JSON object per line on stdin and answers with one JSON
  object per line. Every request has ``id`` and ``op``; every response carries
  the same ``id`` and either ``"ok": true`` plus results or ``"ok": false``,
  ``"error"`` (one line) and ``"traceback"``. A bad request never kills the
  sidecar. EOF on stdin or op ``shutdown`` stops the session and exits 0.

Ops
---
* ``ping`` -> ``{}``
* ``seed_table`` {table, input: {format: csv|jsonl|parquet, path}, schema,
  partition_by, storage, csv: {delimiter, null_value}} -> ``{rows}``
* ``read_table`` {table, out} -> ``{columns: [{name, type, schema}], rows}``
  (``type`` is Spark's simple string, ``schema`` the type as Spark's JSON)
* ``read_path`` {path, format, out} -> same as read_table
* ``capture_table`` {table | query, out, limit, sample, seed,
  masks: [{column, rule: drop|fixed|hash, value, len}], salt} -> ``{rows,
  columns, partition_by, schema}``: the rows (first `limit` in the order of
  every column, after the hash `sample`), masked, sorted by every column,
  written as JSON Lines at `out` that Spark's JSON reader reads back exactly
  with `schema` (a DDL): decimals as plain numbers, timestamps as ISO UTC with
  microseconds, binary as base64 (for `harness capture`)
* ``refresh`` -> forget cached data and table metadata
* ``shutdown`` -> stop the session and exit: ``{jvm_exit}``, the exit code of the
  session's own JVM once it has exited (null in connect mode, or when it did not
  exit within 10 s, a minute when it writes a class-data archive); the JVM exits
  when its stdin closes, writing its class-data archive first when it was
  started to write one

Arguments: ``--remote sc://...`` (a client of that Spark Connect server), or for
a session of its own JVM ``--properties-file PATH`` (Spark's configuration, read
instead of the one in ``SPARK_CONF_DIR``) and ``--java-options OPTIONS`` (the
driver JVM's options, ``spark.driver.extraJavaOptions``).

``read_*`` write one JSON array (values in column order) per line to ``out``.
Values: None -> null, bool, int, float (NaN/inf as "NaN"/"Infinity"/
"-Infinity"), Decimal -> str (keeps scale), date -> "YYYY-MM-DD", datetime ->
"YYYY-MM-DD HH:MM:SS[.ffffff]" (UTC), bytes -> lowercase hex; arrays -> JSON
arrays, maps -> arrays of [key, value] pairs (keys keep their type), structs ->
arrays of field values in the declared order (names are in ``schema``), the
same rules nested.
"""

from __future__ import annotations

import argparse
import datetime
import decimal
import json
import math
import os
import re
import shlex
import signal
import subprocess
import sys
import time
import traceback
from typing import Any, Callable, Dict, Iterable, List, Optional, TextIO, Tuple

# PySpark turns TIMESTAMP values into naive datetimes in the *Python process*
# local time zone (datetime.fromtimestamp), not the session time zone. Pin the
# process (and the JVM it spawns) to UTC so read-backs are UTC like the session.
os.environ["TZ"] = "UTC"
time.tzset()

Json = Dict[str, Any]

MAX_ERROR_CHARS = 2000

# "org.apache.spark.SparkException: [SOME_ERROR.CLASS] ..."
ERROR_CLASS = re.compile(r"^[\w.$]+: \[[A-Z0-9_.]+\]")


# --------------------------------------------------------------------------
# Protocol plumbing
# --------------------------------------------------------------------------


def take_protocol_stream() -> TextIO:
    """Reserve the real stdout for the protocol and send fd 1 to stderr."""
    sys.stdout.flush()
    proto_fd = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return os.fdopen(proto_fd, "w", encoding="utf-8", buffering=1, newline="\n")


def send(proto: TextIO, message: Json) -> None:
    """Write one response line and flush it."""
    proto.write(json.dumps(message, ensure_ascii=False, allow_nan=False) + "\n")
    proto.flush()


def first_line(text: str) -> str:
    """First non-empty line; a line ending in ':' takes the next one along."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        return ""
    if len(lines) > 1 and lines[0].endswith(":"):
        return f"{lines[0]} {lines[1]}"
    return lines[0]


def java_chain(exc: BaseException) -> List[str]:
    """First lines of the Java exception chain behind a PySpark error (may be empty)."""
    cause = getattr(exc, "java_exception", None) or getattr(exc, "_origin", None)
    if cause is None:
        return connect_chain(exc)
    chain: List[str] = []
    try:
        while cause is not None and len(chain) < 30:
            chain.append(first_line(str(cause.toString())))
            cause = cause.getCause()
    except Exception:  # noqa: BLE001 - best effort only
        pass
    return chain


def connect_chain(exc: BaseException) -> List[str]:
    """The same for a Spark Connect client's error: the server's exception and its causes, as
    the stack trace the server sends along names them (may be empty)."""
    trace = getattr(exc, "_stacktrace", None)
    message = getattr(exc, "_message", None)
    if not isinstance(trace, str) or not trace.strip() or message is None:
        return []
    lines = trace.splitlines()
    chain = [f"{lines[0].strip()}: {first_line(str(message))}"]
    chain += [line[len("Caused by: "):].strip() for line in lines if line.startswith("Caused by: ")]
    return chain[:30]


def one_line(exc: BaseException) -> str:
    """A single-line, length-capped description of an exception.

    For Spark errors: the deepest Spark error-class message (or the top one),
    followed by the root cause when that differs, e.g. ``[MALFORMED_RECORD...]
    ... (caused by java.lang.NumberFormatException: For input string: "x")``.
    """
    chain = java_chain(exc)
    # A raw Py4JJavaError's own text starts "An error occurred while calling o12.x".
    head = first_line(str(exc)) if not hasattr(exc, "java_exception") else ""
    if chain:
        classified = [i for i, m in enumerate(chain) if ERROR_CLASS.match(m)]
        if classified and (classified[-1] > 0 or not head):
            head = chain[classified[-1]]
        head = head or chain[0]
        root = chain[-1]
        if len(chain) > 1 and root.split(": ", 1)[-1] not in head:
            head = f"{head} (caused by {root})"
    line = head or type(exc).__name__
    if len(line) > MAX_ERROR_CHARS:
        line = line[: MAX_ERROR_CHARS - 3] + "..."
    return line


def error_response(req_id: Any, exc: BaseException) -> Json:
    return {
        "id": req_id,
        "ok": False,
        "error": one_line(exc),
        "traceback": "".join(traceback.format_exception(exc)),
    }


class RequestError(Exception):
    """A request that is malformed or refers to something that does not exist."""


# --------------------------------------------------------------------------
# Value encoding
# --------------------------------------------------------------------------


def encode_float(value: float) -> Any:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def encode_datetime(value: datetime.datetime) -> str:
    if value.tzinfo is not None:
        value = value.astimezone(datetime.timezone.utc).replace(tzinfo=None)
    text = value.strftime("%Y-%m-%d %H:%M:%S")
    if value.year < 1000:  # strftime does not zero-pad years on every libc
        text = f"{value.year:04d}{text[text.index('-'):]}"
    if value.microsecond:
        text += f".{value.microsecond:06d}"
    return text


def encode_date(value: datetime.date) -> str:
    return f"{value.year:04d}-{value.month:02d}-{value.day:02d}"


def encode_typed(value: Any, data_type: Any) -> Any:
    """Encode a value of Spark type `data_type`: arrays, maps and structs structurally, so that
    the harness renders them by their type (map keys typed, struct fields in declared order)."""
    from pyspark.sql.types import ArrayType, MapType, StructType

    if value is None:
        return None
    if isinstance(data_type, ArrayType):
        return [encode_typed(v, data_type.elementType) for v in value]
    if isinstance(data_type, MapType):
        return [
            [encode_typed(k, data_type.keyType), encode_typed(v, data_type.valueType)]
            for k, v in value.items()
        ]
    if isinstance(data_type, StructType):
        return [encode_typed(v, f.dataType) for v, f in zip(value, data_type.fields)]
    return encode_value(value)


def encode_value(value: Any) -> Any:
    """Encode one scalar cell for the JSON rows file (see module docstring)."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return encode_float(value)
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, datetime.datetime):  # before date: datetime is a date
        return encode_datetime(value)
    if isinstance(value, datetime.date):
        return encode_date(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    return str(value)


# --------------------------------------------------------------------------
# Spark helpers
# --------------------------------------------------------------------------


def create_session(args: argparse.Namespace) -> Any:
    """A session of its own JVM, or with `args.remote` a client of that Spark Connect server."""
    from pyspark.sql import SparkSession

    remote = args.remote
    if remote is not None:
        # The server's defaults are those of the classic session: the same SPARK_CONF_DIR.
        spark = SparkSession.builder.remote(remote).getOrCreate()
        print(f"harness_spark: a Spark Connect client of {remote}, session {spark.session_id}", file=sys.stderr)
    else:
        if args.properties_file is not None:
            os.environ["PYSPARK_SUBMIT_ARGS"] = f"--properties-file {shlex.quote(args.properties_file)} pyspark-shell"
        builder = SparkSession.builder.appName("harness")
        if args.java_options is not None:
            builder = builder.config("spark.driver.extraJavaOptions", args.java_options)
        # Progress bars would only clutter the sidecar's stderr log.
        spark = builder.config("spark.ui.showConsoleProgress", "false").enableHiveSupport().getOrCreate()
        spark.sparkContext.setLogLevel("WARN")
    spark.sql("SHOW DATABASES").collect()
    return spark


# How long the session's JVM gets to exit once asked to: writing a class-data archive at exit
# takes a few seconds of CPU, and much longer on a loaded machine.
JVM_EXIT_TIMEOUT = 10.0
JVM_DUMP_TIMEOUT = 60.0


class Sidecar:
    """The session the ops run on; in connect mode a client whose server-side session
    `refresh` replaces."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.remote = args.remote
        self.spark = create_session(args)

    def refresh(self) -> None:
        """Forget cached data and table metadata (the metastore was reset behind our back)."""
        self.spark.catalog.clearCache()
        if self.remote is None:
            self.spark._jsparkSession.sessionState().catalog().invalidateAllCachedTables()
            return
        # The cached relations live in the server-side session's catalog, out of a client's
        # reach: a fresh session starts without any. (The cached data, above, is the server's.)
        self.spark.stop()
        self.spark = create_session(self.args)

    def stop(self) -> Optional[int]:
        """Stops the session, then its own JVM: its exit code, or None."""
        try:
            self.spark.stop()
        except Exception:  # noqa: BLE001 - exiting anyway
            traceback.print_exc(file=sys.stderr)
        if self.remote is not None:
            return None
        from pyspark import SparkContext

        jvm = getattr(SparkContext._gateway, "proc", None)
        if jvm is None or jvm.stdin is None:
            return None
        # Spark's gateway exits when its stdin closes; a JVM writing its class-data archive
        # at exit takes a few seconds more.
        try:
            dumps = "-XX:ArchiveClassesAtExit=" in (self.args.java_options or "")
            jvm.stdin.close()
            return jvm.wait(timeout=JVM_DUMP_TIMEOUT if dumps else JVM_EXIT_TIMEOUT)
        except (OSError, subprocess.TimeoutExpired):
            return None


def quote_ident(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def split_table(table: str) -> Tuple[str, str]:
    parts = table.split(".")
    if len(parts) == 1 and parts[0]:
        return "default", parts[0]
    if len(parts) == 2 and all(parts):
        return parts[0], parts[1]
    raise RequestError(f"table must be 'db.name' or 'name', got {table!r}")


def require(req: Json, key: str, kind: type = str) -> Any:
    value = req.get(key)
    if not isinstance(value, kind) or (kind is str and not value):
        raise RequestError(f"request field {key!r} must be a non-empty {kind.__name__}")
    return value


def local_uri(path: str) -> str:
    if path.startswith("file:"):
        return path
    if not os.path.isabs(path):
        raise RequestError(f"input path must be absolute, got {path!r}")
    if not os.path.exists(path):
        raise RequestError(f"input path does not exist: {path}")
    return "file://" + path


def parse_schema(ddl: str) -> Any:
    from pyspark.sql.types import DataType, StructType

    parsed = DataType.fromDDL(ddl)
    if not isinstance(parsed, StructType):
        raise RequestError(f"schema must be a list of columns, got {ddl!r}")
    return parsed


def ensure_database(spark: Any, database: str) -> None:
    # Spark 4.3 logs a "created concurrently" WARN for every CREATE DATABASE
    # IF NOT EXISTS of an existing database: look first.
    if not spark.catalog.databaseExists(database):
        spark.sql(f"CREATE DATABASE IF NOT EXISTS {quote_ident(database)}")


def read_csv(spark: Any, uri: str, ddl: Optional[str], options: Json) -> Any:
    reader = (
        spark.read.option("header", True)
        .option("mode", "FAILFAST")
        .option("sep", options.get("delimiter", ","))
        # Fixture files follow RFC 4180: a quote inside a quoted field is doubled.
        .option("escape", '"')
        .option("nullValue", options.get("null_value", ""))
    )
    if ddl:
        # Check the header against the schema's names instead of silently
        # relabelling the columns by position.
        reader = reader.schema(ddl).option("enforceSchema", False)
    return reader.csv(uri)


def read_jsonl(spark: Any, uri: str, ddl: Optional[str]) -> Any:
    reader = spark.read.option("mode", "FAILFAST")
    if ddl:
        reader = reader.schema(ddl)
    return reader.json(uri)


def read_parquet(spark: Any, uri: str, ddl: Optional[str]) -> Any:
    from pyspark.sql import functions as F

    df = spark.read.parquet(uri)
    if not ddl:
        return df
    present = {c.lower() for c in df.columns}
    schema = parse_schema(ddl)
    missing = [f.name for f in schema.fields if f.name.lower() not in present]
    if missing:
        raise RequestError(f"schema column(s) {missing} not in parquet columns {df.columns}")
    return df.select(*[F.col(quote_ident(f.name)).cast(f.dataType).alias(f.name) for f in schema.fields])


def read_input(spark: Any, fmt: str, uri: str, ddl: Optional[str], csv_options: Json) -> Any:
    if fmt == "csv":
        return read_csv(spark, uri, ddl, csv_options)
    if fmt in ("jsonl", "json"):
        return read_jsonl(spark, uri, ddl)
    if fmt == "parquet":
        return read_parquet(spark, uri, ddl)
    raise RequestError(f"unknown input format {fmt!r} (expected csv, jsonl or parquet)")


def check_partition_columns(df: Any, table: str, partition_by: List[str]) -> None:
    present = {c.lower() for c in df.columns}
    missing = [c for c in partition_by if c.lower() not in present]
    if missing:
        raise RequestError(
            f"partition column(s) {missing} of table {table} not in the data (columns: {df.columns})"
        )
    if len(partition_by) >= len(df.columns):
        raise RequestError(f"table {table}: cannot partition by every column {partition_by}")


def write_rows(df: Any, out: str) -> Json:
    """Stream a DataFrame to `out` as JSON arrays; return columns and row count."""
    from pyspark.sql.types import ArrayType, MapType, StructType

    fields = df.schema.fields
    # Scalar columns (most of them) skip the type walk: one call per value, as before.
    encoders = [
        (lambda v, t=f.dataType: encode_typed(v, t))
        if isinstance(f.dataType, (ArrayType, MapType, StructType))
        else encode_value
        for f in fields
    ]
    columns = [
        {"name": f.name, "type": f.dataType.simpleString(), "schema": f.dataType.jsonValue()}
        for f in fields
    ]
    parent = os.path.dirname(out)
    if parent:
        os.makedirs(parent, exist_ok=True)
    rows = 0
    with open(out, "w", encoding="utf-8", newline="\n") as handle:
        for row in df.toLocalIterator():
            values = [encode(v) for encode, v in zip(encoders, row)]
            handle.write(json.dumps(values, ensure_ascii=False, allow_nan=False) + "\n")
            rows += 1
    return {"columns": columns, "rows": rows}


# --------------------------------------------------------------------------
# Ops
# --------------------------------------------------------------------------


def op_ping(spark: Any, req: Json) -> Json:
    return {}


def op_seed_table(spark: Any, req: Json) -> Json:
    table = require(req, "table")
    database, _ = split_table(table)
    source = require(req, "input", dict)
    fmt = require(source, "format")
    path = require(source, "path")
    ddl = req.get("schema") or None
    partition_by = req.get("partition_by") or []
    storage = req.get("storage") or "parquet"
    csv_options = req.get("csv") or {}
    if not isinstance(partition_by, list) or not all(isinstance(c, str) for c in partition_by):
        raise RequestError("partition_by must be a list of column names")
    try:
        ensure_database(spark, database)
        df = read_input(spark, fmt, local_uri(path), ddl, csv_options)
        check_partition_columns(df, table, partition_by)
        writer = df.write.format(storage).mode("overwrite")
        if partition_by:
            writer = writer.partitionBy(*partition_by)
        writer.saveAsTable(table)
        rows = spark.table(table).count()
    except Exception as exc:
        raise RequestError(f"seed_table {table} from {fmt} {path}: {one_line(exc)}") from exc
    return {"rows": rows}


def op_read_table(spark: Any, req: Json) -> Json:
    table = require(req, "table")
    out = require(req, "out")
    split_table(table)
    # The pipeline's own applications changed the table behind this session's back: forget
    # the file listing this session may hold from seeding it.
    spark.catalog.refreshTable(table)
    return write_rows(spark.table(table), out)


def op_read_path(spark: Any, req: Json) -> Json:
    path = require(req, "path")
    out = require(req, "out")
    fmt = require(req, "format")
    if fmt == "csv":
        df = spark.read.option("header", True).csv(path)
    elif fmt in ("jsonl", "json"):
        df = spark.read.json(path)
    elif fmt == "parquet":
        df = spark.read.parquet(path)
    else:
        raise RequestError(f"unknown format {fmt!r} (expected csv, jsonl or parquet)")
    return write_rows(df, out)


def orderable(df: Any) -> List[Any]:
    """Every column that Spark can sort by (maps cannot be compared)."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import MapType

    return [F.col(quote_ident(f.name)) for f in df.schema.fields if not isinstance(f.dataType, MapType)]


INTEGER_MODULUS = {"tinyint": 128, "smallint": 32768, "int": 2147483648, "bigint": 2147483648}


def masked(spark: Any, df: Any, mask: Json, salt: str) -> Any:
    """`df` with one mask applied to its column (NULL stays NULL)."""
    from pyspark.sql import functions as F

    column = mask.get("column")
    fields = {f.name: f for f in df.schema.fields}
    if column not in fields:
        raise RequestError(f"a mask names column `{column}`, which it does not have (columns: {', '.join(df.columns)})")
    rule = mask.get("rule")
    col = F.col(quote_ident(column))
    dtype = fields[column].dataType
    type_name = dtype.simpleString()
    if rule == "drop":
        return df.drop(column)
    if rule == "fixed":
        value = F.lit(mask.get("value", "")).cast(dtype)
        if spark.range(1).select(value.alias("v")).first()[0] is None:
            raise RequestError(f"the fixed value for column `{column}` is not a {type_name}")
        return df.withColumn(column, F.when(col.isNull(), F.lit(None).cast(dtype)).otherwise(value))
    if rule == "hash":
        digest = F.sha2(F.concat(F.lit(salt), col.cast("string")), 256)
        if type_name in INTEGER_MODULUS:
            number = F.shiftright(F.conv(F.substring(digest, 1, 8), 16, 10).cast("bigint"), 1)
            return df.withColumn(column, (number % F.lit(INTEGER_MODULUS[type_name])).cast(dtype))
        if type_name == "string" or type_name.startswith("varchar") or type_name.startswith("char"):
            return df.withColumn(column, F.substring(digest, 1, int(mask.get("len", 16))))
        raise RequestError(
            f"column `{column}` is {type_name}: a hash mask takes string and integer columns; use fixed:VALUE or drop"
        )
    raise RequestError(f"unknown mask rule {rule!r}")


def fixture_json(value: Any, dtype: Any) -> str:
    """One value as the JSON text Spark's JSON reader reads back to the same value of `dtype`."""
    import base64

    from pyspark.sql import Row
    from pyspark.sql.types import (ArrayType, BinaryType, DateType, DecimalType, DoubleType, FloatType,
                                   MapType, StructType, TimestampNTZType, TimestampType)

    if value is None:
        return "null"
    if isinstance(dtype, DecimalType):
        return format(value, "f")
    if isinstance(dtype, (FloatType, DoubleType)):
        if math.isnan(value) or math.isinf(value):
            return json.dumps(encode_float(value))
        return repr(float(value))
    if isinstance(dtype, (TimestampType, TimestampNTZType)):
        text = encode_datetime(value).replace(" ", "T")
        return json.dumps(text if isinstance(dtype, TimestampNTZType) else text + "Z")
    if isinstance(dtype, DateType):
        return json.dumps(encode_date(value))
    if isinstance(dtype, BinaryType):
        return json.dumps(base64.b64encode(bytes(value)).decode("ascii"))
    if isinstance(dtype, ArrayType):
        return "[" + ",".join(fixture_json(v, dtype.elementType) for v in value) + "]"
    if isinstance(dtype, MapType):
        items = sorted(value.items(), key=lambda kv: str(kv[0]))
        return "{" + ",".join(json.dumps(str(k), ensure_ascii=False) + ":" + fixture_json(v, dtype.valueType) for k, v in items) + "}"
    if isinstance(dtype, StructType):
        row = value.asDict() if isinstance(value, Row) else dict(value)
        return "{" + ",".join(json.dumps(f.name, ensure_ascii=False) + ":" + fixture_json(row.get(f.name), f.dataType) for f in dtype.fields) + "}"
    return json.dumps(value, ensure_ascii=False)


def op_capture_table(spark: Any, req: Json) -> Json:
    from pyspark.sql import functions as F

    out = require(req, "out")
    table = req.get("table")
    query = req.get("query")
    partition_by: List[str] = []
    if query:
        df = spark.sql(query)
    else:
        table = require(req, "table")
        split_table(table)
        if not spark.catalog.tableExists(table):
            raise RequestError(f"no such table: {table}")
        spark.catalog.refreshTable(table)
        df = spark.table(table)
        partition_by = [c.name for c in spark.catalog.listColumns(table) if c.isPartition]
    sample = req.get("sample")
    if sample is not None:
        threshold = int(float(sample) * 4294967296)
        row = F.to_json(F.struct(*[F.col(quote_ident(c)) for c in df.columns]))
        bucket = F.conv(F.substring(F.sha2(F.concat(F.lit(f"{req.get('seed') or ''}:"), row), 256), 1, 8), 16, 10)
        df = df.where(bucket.cast("bigint") < F.lit(threshold))
    limit = req.get("limit")
    if limit is not None:
        df = df.orderBy(*orderable(df)).limit(int(limit))
    for mask in req.get("masks") or []:
        df = masked(spark, df, mask, req.get("salt") or "")
    partition_by = [c for c in partition_by if c in df.columns]
    # One partition, its rows sorted by every column: capturing the capture gives the same bytes.
    df = df.repartition(1).sortWithinPartitions(*orderable(df))
    fields = df.schema.fields
    rows = 0
    with open(out, "w", encoding="utf-8", newline="\n") as handle:
        for row in df.toLocalIterator():
            cells = [json.dumps(f.name, ensure_ascii=False) + ":" + fixture_json(v, f.dataType) for f, v in zip(fields, row)]
            handle.write("{" + ",".join(cells) + "}\n")
            rows += 1
    columns = [{"name": f.name, "type": f.dataType.simpleString()} for f in fields]
    return {"rows": rows, "columns": columns, "partition_by": partition_by, "schema": df.schema.toDDL()}


def op_refresh(sidecar: Sidecar, req: Json) -> Json:
    sidecar.refresh()
    return {}


class Shutdown(Exception):
    """Raised by the shutdown op to leave the request loop."""


def op_shutdown(sidecar: Sidecar, req: Json) -> Json:
    raise Shutdown()


def on_session(op: Callable[[Any, Json], Json]) -> Callable[[Sidecar, Json], Json]:
    """An op that runs on the sidecar's current session."""
    return lambda sidecar, req: op(sidecar.spark, req)


OPS: Dict[str, Callable[[Sidecar, Json], Json]] = {
    "ping": on_session(op_ping),
    "seed_table": on_session(op_seed_table),
    "read_table": on_session(op_read_table),
    "read_path": on_session(op_read_path),
    "refresh": op_refresh,
    "capture_table": on_session(op_capture_table),
    "shutdown": op_shutdown,
}


# --------------------------------------------------------------------------
# Main loop
# --------------------------------------------------------------------------


def handle_line(sidecar: Sidecar, line: str) -> Json:
    """Run one request line; Shutdown propagates, everything else is a response."""
    req_id: Any = None
    try:
        req = json.loads(line)
        if not isinstance(req, dict):
            raise RequestError("request must be a JSON object")
        req_id = req.get("id")
        op = req.get("op")
        handler = OPS.get(op) if isinstance(op, str) else None
        if handler is None:
            raise RequestError(f"unknown op {op!r} (expected one of {sorted(OPS)})")
        result = handler(sidecar, req)
        return {"id": req_id, "ok": True, **result}
    except Shutdown:
        raise
    except Exception as exc:  # noqa: BLE001 - a bad request must not kill the sidecar
        return error_response(req_id, exc)


def request_lines(stream: TextIO) -> Iterable[str]:
    while True:
        line = stream.readline()
        if not line:
            return
        if line.strip():
            yield line


def serve(sidecar: Sidecar, proto: TextIO) -> None:
    for line in request_lines(sys.stdin):
        try:
            send(proto, handle_line(sidecar, line))
        except Shutdown:
            jvm_exit = sidecar.stop()
            send(proto, {"id": json.loads(line).get("id"), "ok": True, "jvm_exit": jvm_exit})
            return
    sidecar.stop()


def on_sigterm(signum: int, frame: Any) -> None:
    raise SystemExit(0)


def main() -> int:
    proto = take_protocol_stream()
    signal.signal(signal.SIGTERM, on_sigterm)
    parser = argparse.ArgumentParser()
    parser.add_argument("--remote")
    parser.add_argument("--properties-file")
    parser.add_argument("--java-options")
    args = parser.parse_args()
    remote = args.remote
    try:
        sidecar = Sidecar(args)
    except Exception as exc:  # noqa: BLE001 - report and exit non-zero
        send(proto, {"ready": False, "error": one_line(exc), "traceback": "".join(traceback.format_exception(exc))})
        return 1
    send(proto, {"ready": True, "remote": remote})
    serve(sidecar, proto)
    return 0


if __name__ == "__main__":
    sys.exit(main())
