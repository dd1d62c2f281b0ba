"""Model artifacts: local model files -> HDFS ``/models/<RUN_DATE>/`` with a manifest.

Copies every file under the local ``--source`` folder (sub-folders included) to
``<--target-root>/<RUN_DATE>/`` on the default file system (``fs.defaultFS``: HDFS), through the
Hadoop FileSystem API of the Spark session, and writes ``_MANIFEST.json`` beside them: the run
date and, for every file in name order, its relative name, size and SHA-256. The manifest holds
nothing that changes from run to run with the same files.

Publishing is all or nothing for readers of the release folder: the files are copied to a
staging folder ``<--target-root>/_<RUN_DATE>.publishing`` (a name Hadoop readers skip), checked,
and only then renamed over the release folder, which is replaced as a whole.

Arguments:

* ``--source DIR`` (default ``models``): a relative path is taken from the pipeline folder;
* ``--target-root PATH`` (default ``/models``): the folder of the releases on the file system.

Environment: ``RUN_DATE`` (required, ``YYYY-MM-DD``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from py4j.protocol import Py4JJavaError
from pyspark.sql import SparkSession

JOB = "publish_model_artifacts"
PIPELINE_DIR = Path(__file__).resolve().parent.parent
MANIFEST = "_MANIFEST.json"


class JobError(Exception):
    """A problem the job reports in one line and exits non-zero for."""


@dataclass(frozen=True)
class Artifact:
    name: str  # relative to the source folder, with "/" separators
    local_path: Path
    size: int
    sha256: str


@dataclass(frozen=True)
class Options:
    source: Path
    target_root: str
    run_date: dt.date


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


def parse_args(argv: list[str]) -> Options:
    parser = argparse.ArgumentParser(prog=JOB, description=__doc__.splitlines()[0])
    parser.add_argument("--source", default="models", help="local folder of the model files")
    parser.add_argument("--target-root", default="/models", help="folder of the releases")
    args = parser.parse_args(argv)
    target_root = str(args.target_root).rstrip("/")
    if not target_root:
        raise JobError("--target-root must not be the root folder")
    return Options(
        source=PIPELINE_DIR / args.source,  # an absolute --source replaces PIPELINE_DIR
        target_root=target_root,
        run_date=run_date_from_env(),
    )


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def local_artifacts(source: Path) -> list[Artifact]:
    """Every file under ``source``, in name order."""
    if not source.is_dir():
        raise JobError(f"model folder {source} does not exist")
    artifacts = []
    for path in sorted(p for p in source.rglob("*") if p.is_file()):
        name = path.relative_to(source).as_posix()
        if name == MANIFEST:
            raise JobError(f"{path}: the model folder must not hold a {MANIFEST} of its own")
        artifacts.append(Artifact(name, path, path.stat().st_size, sha256_of(path)))
    if not artifacts:
        raise JobError(f"model folder {source} holds no files")
    return artifacts


def manifest_bytes(run_date: dt.date, artifacts: list[Artifact]) -> bytes:
    manifest: dict[str, Any] = {
        "run_date": run_date.isoformat(),
        "files": [{"name": a.name, "size": a.size, "sha256": a.sha256} for a in artifacts],
    }
    return (json.dumps(manifest, indent=2) + "\n").encode()


def publish(spark: SparkSession, options: Options, artifacts: list[Artifact]) -> str:
    """Copies the artifacts and the manifest into place; returns the release folder's URI."""
    jvm = spark._jvm
    if jvm is None:
        raise JobError("a classic Spark session (with a JVM) is needed, not Spark Connect")
    hadoop_path = jvm.org.apache.hadoop.fs.Path
    release = hadoop_path(f"{options.target_root}/{options.run_date.isoformat()}")
    fs = release.getFileSystem(spark._jsc.hadoopConfiguration())
    release = fs.makeQualified(release)
    staging = hadoop_path(release.getParent(), f"_{options.run_date.isoformat()}.publishing")

    fs.delete(staging, True)  # left over by an interrupted run
    if not fs.mkdirs(staging):
        raise JobError(f"cannot create {staging.toString()}")
    for artifact in artifacts:
        target = hadoop_path(staging, artifact.name)
        fs.copyFromLocalFile(False, True, hadoop_path(artifact.local_path.as_uri()), target)
        copied = fs.getFileStatus(target).getLen()
        if copied != artifact.size:
            raise JobError(f"{target.toString()}: {copied} bytes copied, {artifact.size} expected")
        log(f"copied {artifact.name} ({artifact.size} bytes, sha256 {artifact.sha256[:12]}...)")

    stream = fs.create(hadoop_path(staging, MANIFEST), True)
    try:
        stream.write(manifest_bytes(options.run_date, artifacts))
    finally:
        stream.close()

    if fs.exists(release) and not fs.delete(release, True):
        raise JobError(f"cannot replace {release.toString()}")
    if not fs.rename(staging, release):
        raise JobError(f"cannot rename {staging.toString()} to {release.toString()}")
    return str(release.toString())


def main(argv: list[str]) -> int:
    try:
        options = parse_args(argv)
        artifacts = local_artifacts(options.source)
    except JobError as err:
        print(f"{JOB}: error: {err}", file=sys.stderr)
        return 1
    log(f"{len(artifacts)} model files in {options.source}")
    spark = SparkSession.builder.appName(JOB).enableHiveSupport().getOrCreate()
    try:
        release = publish(spark, options, artifacts)
        log(f"published {len(artifacts)} files and {MANIFEST} to {release}")
        return 0
    except JobError as err:
        print(f"{JOB}: error: {err}", file=sys.stderr)
    except Py4JJavaError as err:
        print(f"{JOB}: file system error: {err.java_exception.toString()}", file=sys.stderr)
    finally:
        spark.stop()
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
