"""The example recommender pipeline as the team schedules it: an Airflow DAG.

The same flows as the tasks declared in ../pipeline.toml, with the operators a production DAG
uses: `SparkSubmitOperator` for the Spark jobs (connection `spark_default`), a `BashOperator` for
the dictionary export, a SQL check through `SQLExecuteQueryOperator` (connection
`postgres_default`), and a sensor that waits for the upstream ingestion DAG, a system outside
any test (scenarios mark it successful). The jobs get the day they work on as RUN_DATE, from the
DagRun's logical date.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
from airflow.providers.common.sql.operators.sql import SQLExecuteQueryOperator
from airflow.providers.standard.operators.bash import BashOperator
from airflow.providers.standard.sensors.external_task import ExternalTaskSensor
from airflow.sdk import DAG

PIPELINE = Path(__file__).resolve().parents[1]
JOBS = PIPELINE / "jobs"
RUN_DATE = {"RUN_DATE": "{{ ds }}"}
# A few thousand rows, not 200 shuffle partitions.
SMALL = {"spark.sql.shuffle.partitions": "2"}


def spark_job(task_id: str, **kwargs) -> SparkSubmitOperator:
    return SparkSubmitOperator(
        task_id=task_id,
        conn_id="spark_default",
        application=str(JOBS / f"{task_id}.py"),
        name=f"hydramatrices.{task_id}",
        env_vars=RUN_DATE,
        execution_timeout=dt.timedelta(minutes=5),
        **kwargs,
    )


with DAG(
    dag_id="hydramatrices",
    schedule="@daily",
    start_date=dt.datetime(2024, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 0, "owner": "recsys"},
    tags=["recommendations"],
) as dag:
    # The raw views of the day are loaded by another team's DAG.
    wait_for_views_ingest = ExternalTaskSensor(
        task_id="wait_for_views_ingest",
        external_dag_id="views_ingest",
        external_task_id="load_views",
        poke_interval=60,
        timeout=6 * 3600,
    )

    check_dictionaries = SQLExecuteQueryOperator(
        task_id="check_dictionaries",
        conn_id="postgres_default",
        sql="SELECT count(*) FROM dict.monetization_types",
    )

    export_monetization = BashOperator(
        task_id="export_monetization",
        bash_command=f"python {JOBS / 'export_monetization.py'}",
        env=RUN_DATE,
        append_env=True,
        execution_timeout=dt.timedelta(minutes=2),
    )

    daily_views = spark_job("daily_views", conf=SMALL)

    export_clickhouse_events = spark_job(
        "export_clickhouse_events",
        conf={**SMALL, "spark.sql.sources.partitionOverwriteMode": "dynamic"},
    )

    # ALS checkpoints every few iterations into spark.checkpoint.dir.
    train_als = spark_job(
        "train_als",
        application_args=["--top", "5"],
        conf={
            **SMALL,
            "spark.driver.extraJavaOptions": "-Xss16m",
            "spark.checkpoint.dir": "/tmp/train_als/checkpoints",
        },
        driver_memory="1g",
    )

    item_similarity = spark_job(
        "item_similarity",
        application_args=["--top", "6", "--min-seconds", "60"],
        conf=SMALL,
    )

    publish_model_artifacts = spark_job(
        "publish_model_artifacts",
        application_args=["--source", "models", "--target-root", "/models"],
    )

    wait_for_views_ingest >> [daily_views, item_similarity]
    check_dictionaries >> export_monetization
