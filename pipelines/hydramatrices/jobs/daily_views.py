"""Daily view aggregates: Hive ``raw.views`` -> Hive ``agg.daily_views``.

``raw.views`` holds one row per view (``user_id``, ``item_id``, ``watched_seconds``, partition
``dt``). For every day and item, ``agg.daily_views`` gets:

* ``views``: the number of views;
* ``unique_users``: the number of distinct users who viewed the item that day;
* ``total_seconds`` and ``avg_seconds``: the sum and the mean of ``watched_seconds``.

The table is partitioned by ``dt`` (a ``YYYY-MM-DD`` string) and created when missing.
Partitions are overwritten one by one (dynamic partition overwrite): the days this run computes
are replaced, every other day is kept.

Arguments:

* ``--date YYYY-MM-DD`` (optional): rebuild only this day; a day without views becomes an empty
  partition. Without it, every day present in ``raw.views`` is rebuilt.

The metastore, the warehouse and the default file system come from the Spark configuration
(``SPARK_CONF_DIR``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
import sys

from pyspark.errors import AnalysisException
from pyspark.sql import SparkSession

JOB = "daily_views"
SOURCE_TABLE = "raw.views"
TARGET_DATABASE = "agg"
TARGET_TABLE = "agg.daily_views"

CREATE_TARGET = f"""
    CREATE TABLE IF NOT EXISTS {TARGET_TABLE} (
        item_id       BIGINT,
        views         BIGINT,
        unique_users  BIGINT,
        total_seconds BIGINT,
        avg_seconds   DOUBLE,
        dt            STRING
    )
    USING parquet
    PARTITIONED BY (dt)
"""

AGGREGATES = """
    item_id,
    count(*)                        AS views,
    count(DISTINCT user_id)         AS unique_users,
    sum(watched_seconds)            AS total_seconds,
    sum(watched_seconds) / count(*) AS avg_seconds
"""

# Every day of the source, the partition column last as Spark expects it.
INSERT_ALL_DAYS = f"""
    INSERT OVERWRITE TABLE {TARGET_TABLE} PARTITION (dt)
    SELECT {AGGREGATES}, dt
    FROM {SOURCE_TABLE}
    GROUP BY dt, item_id
"""

# One day, as a static partition: it is replaced even when the day has no views.
INSERT_ONE_DAY = f"""
    INSERT OVERWRITE TABLE {TARGET_TABLE} PARTITION (dt = '{{day}}')
    SELECT {AGGREGATES}
    FROM {SOURCE_TABLE}
    WHERE dt = '{{day}}'
    GROUP BY item_id
"""

SUMMARY = f"""
    SELECT dt, count(*) AS items, sum(views) AS views, sum(unique_users) AS user_item_days
    FROM {TARGET_TABLE}
    WHERE {{days}}
    GROUP BY dt
    ORDER BY dt
"""


class JobError(Exception):
    """A problem the job reports in one line and exits non-zero for."""


def log(message: str) -> None:
    print(f"{JOB}: {message}", flush=True)


def parse_args(argv: list[str]) -> str | None:
    """The day to rebuild (``YYYY-MM-DD``), or None for every day of the source."""
    parser = argparse.ArgumentParser(prog=JOB, description=__doc__.splitlines()[0])
    parser.add_argument("--date", help="rebuild only this day (YYYY-MM-DD)")
    day: str | None = parser.parse_args(argv).date
    if day is None:
        return None
    # Checked strictly: the day is written into the partition spec of the statement.
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", day):
        raise JobError(f"--date {day!r} is not a date of the form YYYY-MM-DD")
    try:
        dt.date.fromisoformat(day)
    except ValueError as err:
        raise JobError(f"--date {day!r} is not a valid date: {err}") from None
    return day


def build(spark: SparkSession, day: str | None) -> None:
    # Spark 4.3 warns "created concurrently" on CREATE DATABASE IF NOT EXISTS of an existing one.
    if not spark.catalog.databaseExists(TARGET_DATABASE):
        spark.sql(f"CREATE DATABASE IF NOT EXISTS {TARGET_DATABASE}")
    spark.sql(CREATE_TARGET)
    # Only the partitions the statement writes are replaced, not the whole table.
    spark.conf.set("spark.sql.sources.partitionOverwriteMode", "dynamic")
    if day is None:
        log(f"rebuilding every day of {SOURCE_TABLE}")
        spark.sql(INSERT_ALL_DAYS)
    else:
        log(f"rebuilding day {day}")
        spark.sql(INSERT_ONE_DAY.format(day=day))


def report(spark: SparkSession, day: str | None) -> None:
    if day is None:
        rows = spark.sql(SUMMARY.format(days=f"dt IN (SELECT dt FROM {SOURCE_TABLE})")).collect()
    else:
        rows = spark.sql(SUMMARY.format(days="dt = :day"), args={"day": day}).collect()
    if not rows:
        log("no views: no rows written")
    for row in rows:
        log(
            f"{TARGET_TABLE} dt={row['dt']}: {row['items']} items, {row['views']} views, "
            f"{row['user_item_days']} user-item pairs"
        )


def main(argv: list[str]) -> int:
    try:
        day = parse_args(argv)
    except JobError as err:
        print(f"{JOB}: error: {err}", file=sys.stderr)
        return 1
    spark = SparkSession.builder.appName(JOB).enableHiveSupport().getOrCreate()
    try:
        log(f"reading {SOURCE_TABLE}, writing {TARGET_TABLE}")
        build(spark, day)
        report(spark, day)
        return 0
    except AnalysisException as err:
        print(f"{JOB}: error: {str(err).splitlines()[0]}", file=sys.stderr)
        return 1
    finally:
        spark.stop()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
