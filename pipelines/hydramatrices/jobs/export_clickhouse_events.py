"""View events of one day: ClickHouse ``events.views`` -> Hive ``raw.device_views``.

``events.views`` holds the view events the players send (``event_id``, ``event_date``,
``event_time``, ``user_id``, ``item_id``, ``device``, ``watched_seconds``). The events logged
under ``RUN_DATE`` (``event_date = RUN_DATE``) are read through ClickHouse's HTTP interface,
the malformed ones are dropped (see ``drop_reason`` for the rules), and the rest become the
partition ``dt = RUN_DATE`` of ``raw.device_views``:

* ``event_id``, ``user_id``, ``item_id`` (BIGINT), ``watched_seconds`` (INT);
* ``device``: one of ``tv``, ``mobile``, ``web``, ``tablet`` (trimmed, lower case);
* ``event_time``: ``YYYY-MM-DD HH:MM:SS``, UTC, as text.

The table is partitioned by ``dt`` (a ``YYYY-MM-DD`` string) and created when missing. Only
the partition of ``RUN_DATE`` is replaced (dynamic partition overwrite); every other day is
kept. A day without a valid event gets no partition: one left by an earlier export is dropped.

Environment:

* ``RUN_DATE`` (required): the day to export, ``YYYY-MM-DD``;
* ``HARNESS_CLICKHOUSE_URL`` (required): ``http://USER:PASSWORD@HOST:PORT`` of ClickHouse's
  HTTP interface. The credentials are sent as HTTP basic auth; neither they nor the URL holding
  them are ever printed.

The metastore, the warehouse and the default file system come from the Spark configuration
(``SPARK_CONF_DIR``). The job uses only the DataFrame and SQL API, so it runs under spark-submit
and as a Spark Connect client alike.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import re
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import astuple, dataclass, field
from typing import Any

from pyspark.errors import AnalysisException
from pyspark.sql import SparkSession
from pyspark.sql.types import IntegerType, LongType, StringType, StructField, StructType

JOB = "export_clickhouse_events"
SOURCE_TABLE = "events.views"
TARGET_DATABASE = "raw"
TARGET_TABLE = "raw.device_views"
TEMP_VIEW = "export_clickhouse_events_day"
HTTP_TIMEOUT_SECONDS = 120

DEVICES = frozenset({"tv", "mobile", "web", "tablet"})
# No single view lasts longer than the day it is logged in; more is a player counter gone wrong.
MAX_WATCHED_SECONDS = 24 * 3600
BIGINT_MAX = 2**63 - 1

# The day is checked strictly (run_date_from_env) before it is written into the query: the
# ClickHouse 18 HTTP interface has no query parameters. event_time is read as seconds since
# the epoch, so the server's and the column's time zones do not matter.
EVENTS_QUERY = f"""
    SELECT event_id, toUInt32(event_time) AS event_ts, user_id, item_id, device, watched_seconds
    FROM {SOURCE_TABLE}
    WHERE event_date = toDate('{{day}}')
    ORDER BY event_id, event_ts
    FORMAT JSONEachRow
"""

CREATE_TARGET = f"""
    CREATE TABLE IF NOT EXISTS {TARGET_TABLE} (
        event_id        BIGINT,
        user_id         BIGINT,
        item_id         BIGINT,
        device          STRING,
        watched_seconds INT,
        event_time      STRING,
        dt              STRING
    )
    USING parquet
    PARTITIONED BY (dt)
"""

# The partition column last, as Spark expects it; the rows all have dt = RUN_DATE, so only that
# partition is replaced.
INSERT_DAY = f"""
    INSERT OVERWRITE TABLE {TARGET_TABLE} PARTITION (dt)
    SELECT event_id, user_id, item_id, device, watched_seconds, event_time, dt
    FROM {TEMP_VIEW}
"""

DROP_DAY = f"ALTER TABLE {TARGET_TABLE} DROP IF EXISTS PARTITION (dt = '{{day}}')"

COUNT_DAY = f"SELECT count(*) AS n FROM {TARGET_TABLE} WHERE dt = :day"

TARGET_SCHEMA = StructType(
    [
        StructField("event_id", LongType(), False),
        StructField("user_id", LongType(), False),
        StructField("item_id", LongType(), False),
        StructField("device", StringType(), False),
        StructField("watched_seconds", IntegerType(), False),
        StructField("event_time", StringType(), False),
        StructField("dt", StringType(), False),
    ]
)

# Why a row is dropped, in the order the rules are checked (a row counts for its first reason).
REASONS = ("event_id", "user_id", "item_id", "device", "watched_seconds", "event_time", "duplicate")


class JobError(Exception):
    """A problem the job reports in one line and exits non-zero for."""


@dataclass(frozen=True)
class DeviceView:
    """One row of ``raw.device_views``, in the table's column order."""

    event_id: int
    user_id: int
    item_id: int
    device: str
    watched_seconds: int
    event_time: str
    dt: str


@dataclass(frozen=True)
class Export:
    read: int
    dropped: Counter[str]
    views: list[DeviceView]


def log(message: str) -> None:
    print(f"{JOB}: {message}", flush=True)


def run_date_from_env() -> dt.date:
    value = os.environ.get("RUN_DATE", "").strip()
    if not value:
        raise JobError("RUN_DATE is not set (expected YYYY-MM-DD)")
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        raise JobError(f"RUN_DATE={value!r} is not a date of the form YYYY-MM-DD")
    try:
        return dt.date.fromisoformat(value)
    except ValueError as err:
        raise JobError(f"RUN_DATE={value!r} is not a valid date: {err}") from None


@dataclass(frozen=True)
class ClickHouse:
    """ClickHouse's HTTP endpoint and credentials, from a ``http://user:password@host:port`` URL."""

    endpoint: str  # without the credentials: safe to print
    user: str
    password: str = field(repr=False)

    @classmethod
    def from_env(cls) -> ClickHouse:
        url = os.environ.get("HARNESS_CLICKHOUSE_URL", "").strip()
        if not url:
            raise JobError(
                "no connection: set HARNESS_CLICKHOUSE_URL (http://USER:PASSWORD@HOST:PORT)"
            )
        # The errors never show the URL itself: it holds the password.
        invalid = JobError("HARNESS_CLICKHOUSE_URL is not an http://USER:PASSWORD@HOST:PORT URL")
        parts = urllib.parse.urlsplit(url)
        try:
            host, port = parts.hostname, parts.port
        except ValueError:  # a port that is not a number
            raise invalid from None
        if parts.scheme not in ("http", "https") or not host:
            raise invalid
        netloc = f"[{host}]" if ":" in host else host
        if port is not None:
            netloc += f":{port}"
        endpoint = urllib.parse.urlunsplit(
            (parts.scheme, netloc, parts.path or "/", parts.query, "")
        )
        return cls(
            endpoint=endpoint,
            user=urllib.parse.unquote(parts.username or "default"),
            password=urllib.parse.unquote(parts.password or ""),
        )

    def query_json_rows(self, sql: str) -> Iterator[dict[str, Any]]:
        """The rows of a ``FORMAT JSONEachRow`` query, one dict each, streamed."""
        token = base64.b64encode(f"{self.user}:{self.password}".encode()).decode("ascii")
        request = urllib.request.Request(
            self.endpoint,
            data=sql.encode(),
            method="POST",
            headers={"Authorization": f"Basic {token}", "Content-Type": "text/plain"},
        )
        # No proxy, whatever http_proxy says: the server is on this machine.
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            with opener.open(request, timeout=HTTP_TIMEOUT_SECONDS) as response:
                for raw in response:
                    line = raw.decode("utf-8").strip()
                    if not line:
                        continue
                    try:
                        yield json.loads(line)
                    except json.JSONDecodeError:
                        # An error met after the answer started comes as text inside the body.
                        raise JobError(f"ClickHouse: {first_line(line)}") from None
        except urllib.error.HTTPError as err:
            body = err.read().decode("utf-8", "replace")
            raise JobError(f"ClickHouse answered HTTP {err.code}: {first_line(body)}") from None
        except urllib.error.URLError as err:
            raise JobError(f"cannot reach ClickHouse at {self.endpoint}: {err.reason}") from None
        except TimeoutError:
            raise JobError(
                f"ClickHouse at {self.endpoint} did not answer in {HTTP_TIMEOUT_SECONDS} s"
            ) from None


def first_line(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[0][:500] if lines else "(empty answer)"


def as_int(value: Any) -> int | None:
    """A JSONEachRow integer (64-bit ones come quoted), or None for NULL."""
    return None if value is None else int(value)


def valid_id(value: int | None) -> bool:
    # 0 is what ClickHouse stores for a missing UInt64; past BIGINT it does not fit Hive.
    return value is not None and 0 < value <= BIGINT_MAX


def drop_reason(row: dict[str, Any], day_start: int, day_end: int) -> str | None:
    """Why a ClickHouse row is malformed (the first rule it breaks), or None to keep it.

    * ``event_id``: 0 or beyond BIGINT;
    * ``user_id`` / ``item_id``: NULL, 0 or beyond BIGINT;
    * ``device``: NULL, or not tv/mobile/web/tablet once trimmed and lower-cased (``" TV"`` is
      kept as ``tv``, ``smartwatch`` is dropped);
    * ``watched_seconds``: NULL, negative, or more than a day (86400);
    * ``event_time``: outside ``[RUN_DATE 00:00, RUN_DATE + 1 day 00:00)`` UTC: a player clock
      off by a day, or the zero time of a timestamp that did not parse.

    Duplicates (an ``event_id`` already kept) are found by the caller, after these rules.
    """
    if not valid_id(as_int(row["event_id"])):
        return "event_id"
    if not valid_id(as_int(row["user_id"])):
        return "user_id"
    if not valid_id(as_int(row["item_id"])):
        return "item_id"
    device = row["device"]
    if device is None or device.strip().lower() not in DEVICES:
        return "device"
    seconds = as_int(row["watched_seconds"])
    if seconds is None or not 0 <= seconds <= MAX_WATCHED_SECONDS:
        return "watched_seconds"
    if not day_start <= as_int(row["event_ts"]) < day_end:  # type: ignore[operator]
        return "event_time"
    return None


def read_day(clickhouse: ClickHouse, day: dt.date) -> Export:
    """The valid events of ``day``, and how many rows were read and dropped (by reason)."""
    midnight = dt.datetime.combine(day, dt.time(), tzinfo=dt.timezone.utc)
    day_start = int(midnight.timestamp())
    day_end = int((midnight + dt.timedelta(days=1)).timestamp())
    read = 0
    dropped: Counter[str] = Counter()
    views: list[DeviceView] = []
    kept_ids: set[int] = set()
    # Rows come ordered by event_id, then event_time: of the copies an at-least-once delivery
    # left, the earliest valid one is kept.
    for row in clickhouse.query_json_rows(EVENTS_QUERY.format(day=day.isoformat())):
        read += 1
        reason = drop_reason(row, day_start, day_end)
        event_id = as_int(row["event_id"])
        if reason is None and event_id in kept_ids:
            reason = "duplicate"
        if reason is not None:
            dropped[reason] += 1
            continue
        assert event_id is not None
        kept_ids.add(event_id)
        event_time = dt.datetime.fromtimestamp(int(row["event_ts"]), tz=dt.timezone.utc)
        views.append(
            DeviceView(
                event_id=event_id,
                user_id=int(row["user_id"]),
                item_id=int(row["item_id"]),
                device=row["device"].strip().lower(),
                watched_seconds=int(row["watched_seconds"]),
                event_time=event_time.strftime("%Y-%m-%d %H:%M:%S"),
                dt=day.isoformat(),
            )
        )
    return Export(read=read, dropped=dropped, views=views)


def write_day(spark: SparkSession, day: dt.date, views: list[DeviceView]) -> tuple[int, int]:
    """Replaces the partition of ``day``; returns (rows it had before, rows it has now)."""
    # Spark 4.3 warns "created concurrently" on CREATE DATABASE IF NOT EXISTS of an existing one.
    if not spark.catalog.databaseExists(TARGET_DATABASE):
        spark.sql(f"CREATE DATABASE IF NOT EXISTS {TARGET_DATABASE}")
    spark.sql(CREATE_TARGET)
    before = spark.sql(COUNT_DAY, args={"day": day.isoformat()}).first()["n"]  # type: ignore[index]
    if not views:
        # Overwriting with no rows would keep the old partition: drop it instead.
        spark.sql(DROP_DAY.format(day=day.isoformat()))
        return before, 0
    # Only the partitions the statement writes are replaced, not the whole table.
    spark.conf.set("spark.sql.sources.partitionOverwriteMode", "dynamic")
    rows = [astuple(view) for view in views]
    spark.createDataFrame(rows, schema=TARGET_SCHEMA).createOrReplaceTempView(TEMP_VIEW)
    spark.sql(INSERT_DAY)
    after = spark.sql(COUNT_DAY, args={"day": day.isoformat()}).first()["n"]  # type: ignore[index]
    return before, after


def describe_drops(dropped: Counter[str]) -> str:
    total = sum(dropped.values())
    if not total:
        return "dropped 0"
    parts = ", ".join(f"{reason} {dropped[reason]}" for reason in REASONS if dropped[reason])
    return f"dropped {total} ({parts})"


def main() -> int:
    try:
        day = run_date_from_env()
        clickhouse = ClickHouse.from_env()
        log(f"reading {SOURCE_TABLE} for {day} from ClickHouse at {clickhouse.endpoint}")
        export = read_day(clickhouse, day)
    except JobError as err:
        print(f"{JOB}: error: {err}", file=sys.stderr)
        return 1
    summary = f"{day}: read {export.read} rows, {describe_drops(export.dropped)}"
    log(f"{summary}, {len(export.views)} valid")

    spark = SparkSession.builder.appName(JOB).enableHiveSupport().getOrCreate()
    try:
        before, after = write_day(spark, day, export.views)
        if export.views:
            log(f"{summary}, wrote {after} to {TARGET_TABLE} dt={day} (replacing {before})")
        elif before:
            log(f"{summary}, wrote 0: dropped partition dt={day} of {TARGET_TABLE} ({before} rows)")
        else:
            log(f"{summary}, wrote 0: {TARGET_TABLE} has no partition dt={day}")
        return 0
    except AnalysisException as err:
        print(f"{JOB}: error: {str(err).splitlines()[0]}", file=sys.stderr)
        return 1
    finally:
        spark.stop()


if __name__ == "__main__":
    sys.exit(main())
