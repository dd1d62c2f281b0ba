"""Personal recommendations: Hive ``raw.ratings`` -> Spark ML ALS -> Redis ``recs:user:<id>``.

Trains an explicit-feedback ALS model on ``raw.ratings`` (``user_id``, ``item_id``, ``rating``)
and writes, for every user of the ratings, the ``--top`` items with the highest predicted rating:
``recs:user:<user_id>`` is a compact JSON list of ``{"item": <item_id>, "score": <float>}``,
best first, ties by ascending item. Items the user already rated are not excluded. Scores are
written unrounded; compare them with a tolerance (a snapshot's ``float_digits``).

The training is made repeatable: a fixed seed and fixed hyper-parameters, one user block and one
item block, and the ratings in one partition in a fixed order, so that every run adds the same
numbers in the same order.

Arguments: ``--top N`` (default 5).

Environment: ``HARNESS_REDIS_URL``, else ``AIRFLOW_CONN_REDIS_DEFAULT`` (``redis://...`` URI).
Stale ``recs:user:*`` keys are found with SCAN; they are deleted and the new keys written in one
MULTI/EXEC transaction, so readers see either the old recommendations or the new ones.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass

import redis
from pyspark.errors import AnalysisException
from pyspark.ml.evaluation import RegressionEvaluator
from pyspark.ml.recommendation import ALS, ALSModel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

JOB = "train_als"
SOURCE_TABLE = "raw.ratings"
PREFIX = "recs:user"
DELETE_BATCH = 500

SEED = 20240501
RANK = 4
MAX_ITER = 15
REG_PARAM = 0.1


class JobError(Exception):
    """A problem the job reports in one line and exits non-zero for."""


@dataclass(frozen=True)
class Recommendation:
    item: int
    score: float


def log(message: str) -> None:
    print(f"{JOB}: {message}", flush=True)


def env_url(primary: str, fallback: str) -> str:
    """The connection URI from ``primary``, else from the Airflow-style ``fallback``."""
    for name in (primary, fallback):
        value = os.environ.get(name, "").strip()
        if value:
            return value
    raise JobError(f"no connection: set {primary} (or {fallback})")


def parse_args(argv: list[str]) -> int:
    """The number of recommendations per user."""
    parser = argparse.ArgumentParser(prog=JOB, description=__doc__.splitlines()[0])
    parser.add_argument("--top", type=int, default=5, help="recommendations per user")
    top: int = parser.parse_args(argv).top
    if top < 1:
        raise JobError(f"--top must be at least 1, not {top}")
    return top


def read_ratings(spark: SparkSession) -> DataFrame:
    """The ratings in a single partition, ordered, so that training sees them in one order."""
    return (
        spark.table(SOURCE_TABLE)
        .select(
            F.col("user_id").cast("int").alias("user_id"),
            F.col("item_id").cast("int").alias("item_id"),
            F.col("rating").cast("float").alias("rating"),
        )
        .where(F.col("rating").isNotNull())
        .orderBy("user_id", "item_id", "rating")
        .coalesce(1)
    )


def train(ratings: DataFrame) -> ALSModel:
    als = ALS(
        userCol="user_id",
        itemCol="item_id",
        ratingCol="rating",
        rank=RANK,
        maxIter=MAX_ITER,
        regParam=REG_PARAM,
        implicitPrefs=False,
        nonnegative=False,
        numUserBlocks=1,
        numItemBlocks=1,
        coldStartStrategy="drop",
        seed=SEED,
        # Cut the RDD lineage every few iterations: a long one overflows the stack when tasks
        # are serialized (needs a checkpoint directory: spark.checkpoint.dir, see pipeline.toml).
        checkpointInterval=5,
    )
    return als.fit(ratings)


def training_rmse(model: ALSModel, ratings: DataFrame) -> float:
    evaluator = RegressionEvaluator(
        metricName="rmse", labelCol="rating", predictionCol="prediction"
    )
    return float(evaluator.evaluate(model.transform(ratings)))


def recommend(model: ALSModel, top: int) -> dict[int, list[Recommendation]]:
    """The ``top`` recommendations of every user, best first, ties by ascending item."""
    result: dict[int, list[Recommendation]] = {}
    for row in model.recommendForAllUsers(top).collect():
        recs = [
            Recommendation(int(r["item_id"]), float(r["rating"])) for r in row["recommendations"]
        ]
        recs.sort(key=lambda r: (-r.score, r.item))
        result[int(row["user_id"])] = recs
    return result


def write_redis(url: str, recs: dict[int, list[Recommendation]]) -> int:
    """Replaces every ``PREFIX:*`` key; returns the number of keys deleted."""
    client = redis.Redis.from_url(url, decode_responses=True, socket_timeout=30)
    try:
        stale = list(client.scan_iter(match=f"{PREFIX}:*", count=1000))
        pipe = client.pipeline(transaction=True)
        for start in range(0, len(stale), DELETE_BATCH):
            pipe.delete(*stale[start : start + DELETE_BATCH])
        for user_id in sorted(recs):
            value = [{"item": r.item, "score": r.score} for r in recs[user_id]]
            pipe.set(f"{PREFIX}:{user_id}", json.dumps(value, separators=(",", ":")))
        pipe.execute()
        return len(stale)
    finally:
        client.close()


def main(argv: list[str]) -> int:
    try:
        top = parse_args(argv)
        redis_url = env_url("HARNESS_REDIS_URL", "AIRFLOW_CONN_REDIS_DEFAULT")
    except JobError as err:
        print(f"{JOB}: error: {err}", file=sys.stderr)
        return 1
    spark = SparkSession.builder.appName(JOB).enableHiveSupport().getOrCreate()
    try:
        ratings = read_ratings(spark).cache()
        users = ratings.select("user_id").distinct().count()
        items = ratings.select("item_id").distinct().count()
        log(f"read {ratings.count()} ratings of {users} users on {items} items from {SOURCE_TABLE}")

        model = train(ratings)
        log(
            f"trained ALS (rank {RANK}, {MAX_ITER} iterations, regParam {REG_PARAM}, seed {SEED}): "
            f"training RMSE {training_rmse(model, ratings):.4f}"
        )

        recs = recommend(model, top)
        deleted = write_redis(redis_url, recs)
        log(f"deleted {deleted} stale {PREFIX}:* keys")
        log(f"wrote {len(recs)} {PREFIX}:* keys, up to {top} items each")
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
