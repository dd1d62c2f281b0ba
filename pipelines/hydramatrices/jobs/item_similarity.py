"""Item-to-item similarity: Hive ``raw.views`` -> Redis ``similar:item:<id>``.

A user is interested in an item when they watched it for at least ``--min-seconds`` in total
(over every day of ``raw.views``). Two items are similar when the same users are interested in
both: the cosine similarity of their binary user vectors,

    score(a, b) = common_users(a, b) / sqrt(users(a) * users(b)),

between 0 and 1. ``similar:item:<item_id>`` is a compact JSON list of the ``--top`` most similar
other items, ``{"item": <item_id>, "score": <float>}``, by descending score, ties by ascending
item. An item sharing no interested user with another item gets no key.

Arguments: ``--top K`` (default 5), ``--min-seconds S`` (default 60).

Environment: ``HARNESS_REDIS_URL``, else ``AIRFLOW_CONN_REDIS_DEFAULT`` (``redis://...`` URI).
Stale ``similar:item:*`` keys are found with SCAN; they are deleted and the new keys written in
one MULTI/EXEC transaction, so readers see either the old lists or the new ones.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import defaultdict
from dataclasses import dataclass

import redis
from pyspark.errors import AnalysisException
from pyspark.sql import SparkSession

JOB = "item_similarity"
SOURCE_TABLE = "raw.views"
PREFIX = "similar:item"
DELETE_BATCH = 500

# Scores of the same value reached through different counts (1/sqrt(3) and 3/sqrt(27)) can
# differ in their last bits; ranking on a rounded score lets the item id break such ties.
SIMILARITY_QUERY = f"""
    WITH interests AS (
        SELECT user_id, item_id
        FROM {SOURCE_TABLE}
        WHERE user_id IS NOT NULL AND item_id IS NOT NULL
        GROUP BY user_id, item_id
        HAVING sum(watched_seconds) >= :min_seconds
    ),
    item_users AS (
        SELECT item_id, count(*) AS users
        FROM interests
        GROUP BY item_id
    ),
    pairs AS (
        SELECT a.item_id AS item_id, b.item_id AS other_id, count(*) AS common_users
        FROM interests AS a
        JOIN interests AS b ON a.user_id = b.user_id AND a.item_id <> b.item_id
        GROUP BY a.item_id, b.item_id
    ),
    scored AS (
        SELECT p.item_id, p.other_id, p.common_users,
               p.common_users / sqrt(ua.users * ub.users) AS score
        FROM pairs AS p
        JOIN item_users AS ua ON ua.item_id = p.item_id
        JOIN item_users AS ub ON ub.item_id = p.other_id
    ),
    ranked AS (
        SELECT *, row_number() OVER (
            PARTITION BY item_id ORDER BY round(score, 12) DESC, other_id ASC
        ) AS rank
        FROM scored
    )
    SELECT item_id, other_id, score, rank
    FROM ranked
    WHERE rank <= :top
    ORDER BY item_id, rank
"""


class JobError(Exception):
    """A problem the job reports in one line and exits non-zero for."""


@dataclass(frozen=True)
class Similar:
    item: int
    score: float


@dataclass(frozen=True)
class Options:
    top: int
    min_seconds: int


def log(message: str) -> None:
    print(f"{JOB}: {message}", flush=True)


def env_url(primary: str, fallback: str) -> str:
    """The connection URI from ``primary``, else from the Airflow-style ``fallback``."""
    for name in (primary, fallback):
        value = os.environ.get(name, "").strip()
        if value:
            return value
    raise JobError(f"no connection: set {primary} (or {fallback})")


def parse_args(argv: list[str]) -> Options:
    parser = argparse.ArgumentParser(prog=JOB, description=__doc__.splitlines()[0])
    parser.add_argument("--top", type=int, default=5, help="similar items kept per item")
    parser.add_argument(
        "--min-seconds", type=int, default=60, help="watch time that makes a user interested"
    )
    args = parser.parse_args(argv)
    if args.top < 1:
        raise JobError(f"--top must be at least 1, not {args.top}")
    if args.min_seconds < 0:
        raise JobError(f"--min-seconds must not be negative, not {args.min_seconds}")
    return Options(top=args.top, min_seconds=args.min_seconds)


def similar_items(spark: SparkSession, options: Options) -> dict[int, list[Similar]]:
    """The most similar items of every item, best first."""
    rows = spark.sql(
        SIMILARITY_QUERY, args={"top": options.top, "min_seconds": options.min_seconds}
    ).collect()
    result: defaultdict[int, list[Similar]] = defaultdict(list)
    for row in rows:  # ordered by item, then rank
        result[int(row["item_id"])].append(Similar(int(row["other_id"]), float(row["score"])))
    return dict(result)


def write_redis(url: str, similar: dict[int, list[Similar]]) -> int:
    """Replaces every ``PREFIX:*`` key; returns the number of keys deleted."""
    client = redis.Redis.from_url(url, decode_responses=True, socket_timeout=30)
    try:
        stale = list(client.scan_iter(match=f"{PREFIX}:*", count=1000))
        pipe = client.pipeline(transaction=True)
        for start in range(0, len(stale), DELETE_BATCH):
            pipe.delete(*stale[start : start + DELETE_BATCH])
        for item_id in sorted(similar):
            value = [{"item": s.item, "score": s.score} for s in similar[item_id]]
            pipe.set(f"{PREFIX}:{item_id}", json.dumps(value, separators=(",", ":")))
        pipe.execute()
        return len(stale)
    finally:
        client.close()


def main(argv: list[str]) -> int:
    try:
        options = parse_args(argv)
        redis_url = env_url("HARNESS_REDIS_URL", "AIRFLOW_CONN_REDIS_DEFAULT")
    except JobError as err:
        print(f"{JOB}: error: {err}", file=sys.stderr)
        return 1
    spark = SparkSession.builder.appName(JOB).enableHiveSupport().getOrCreate()
    try:
        log(
            f"reading {SOURCE_TABLE}: interest from {options.min_seconds} s watched, "
            f"top {options.top} similar items"
        )
        similar = similar_items(spark, options)
        pairs = sum(len(s) for s in similar.values())
        log(f"computed {pairs} similar-item entries for {len(similar)} items")

        deleted = write_redis(redis_url, similar)
        log(f"deleted {deleted} stale {PREFIX}:* keys")
        log(f"wrote {len(similar)} {PREFIX}:* keys")
        return 0
    except AnalysisException as err:
        print(f"{JOB}: error: {str(err).splitlines()[0]}", file=sys.stderr)
    except redis.RedisError as err:
        print(f"{JOB}: Redis error: {err}", file=sys.stderr)
    finally:
        spark.stop()
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
