"""Export the content monetization dictionaries from PostgreSQL to Redis.

Reads ``dict.monetization_types`` and ``dict.content_monetization`` and replaces every
``monetization:*`` key in Redis with:

* ``monetization:type:<code>``: a hash per type with the fields ``title``, ``is_paid``
  (``"1"``/``"0"``) and ``price`` (``""`` when NULL);
* ``monetization:paid_types``: the set of the codes of the paid types;
* ``monetization:content:<content_id>``: a compact JSON list of the sorted codes valid at
  ``RUN_DATE`` (``valid_from <= RUN_DATE < valid_to``, an open end when ``valid_to`` is NULL).
  A content with no valid monetization gets no key.

Environment:

* ``RUN_DATE`` (required): the date of the run, ``YYYY-MM-DD``;
* ``HARNESS_POSTGRES_URL``, else ``AIRFLOW_CONN_POSTGRES_DEFAULT``: ``postgres://...`` URI;
* ``HARNESS_REDIS_URL``, else ``AIRFLOW_CONN_REDIS_DEFAULT``: ``redis://...`` URI.

Stale keys are found with SCAN; they are deleted and the new keys written in one
MULTI/EXEC transaction, so readers see either the old state or the new one.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import sys
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal

import psycopg
import redis
from redis.typing import EncodableT, FieldT

PREFIX = "monetization"
DELETE_BATCH = 500

TYPES_QUERY = """
    SELECT id, code, title, is_paid, price
    FROM dict.monetization_types
    ORDER BY code
"""

VALID_CONTENT_QUERY = """
    SELECT cm.content_id, t.code
    FROM dict.content_monetization AS cm
    JOIN dict.monetization_types AS t ON t.id = cm.monetization_type_id
    WHERE cm.valid_from <= %(run_date)s
      AND (cm.valid_to IS NULL OR %(run_date)s < cm.valid_to)
"""

COUNT_RULES_QUERY = "SELECT count(*) FROM dict.content_monetization"


class JobError(Exception):
    """A problem the job reports in one line and exits non-zero for."""


@dataclass(frozen=True)
class MonetizationType:
    id: int
    code: str
    title: str
    is_paid: bool
    price: Decimal | None


def log(message: str) -> None:
    print(f"export_monetization: {message}", flush=True)


def env_url(primary: str, fallback: str) -> str:
    """The connection URI from ``primary``, else from the Airflow-style ``fallback``."""
    for name in (primary, fallback):
        value = os.environ.get(name, "").strip()
        if value:
            return value
    raise JobError(f"no connection: set {primary} (or {fallback})")


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


def read_dictionaries(
    url: str, run_date: dt.date
) -> tuple[list[MonetizationType], dict[int, list[str]], int]:
    """Types, sorted codes valid at ``run_date`` per content, and the number of rules."""
    with psycopg.connect(url, connect_timeout=10, application_name="export_monetization") as conn:
        # One snapshot for all the queries.
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        conn.read_only = True
        with conn.cursor() as cur:
            cur.execute(TYPES_QUERY)
            types = [MonetizationType(*row) for row in cur.fetchall()]
            cur.execute(COUNT_RULES_QUERY)
            count_row = cur.fetchone()
            rule_count = int(count_row[0]) if count_row else 0
            cur.execute(VALID_CONTENT_QUERY, {"run_date": run_date})
            codes: defaultdict[int, set[str]] = defaultdict(set)
            for content_id, code in cur.fetchall():
                codes[int(content_id)].add(code)
    return types, {cid: sorted(c) for cid, c in codes.items()}, rule_count


def type_hash(t: MonetizationType) -> dict[FieldT, EncodableT]:
    return {
        "title": t.title,
        "is_paid": "1" if t.is_paid else "0",
        "price": "" if t.price is None else str(t.price),
    }


def write_redis(
    url: str, types: list[MonetizationType], content_codes: dict[int, list[str]]
) -> tuple[int, int]:
    """Replaces every ``PREFIX:*`` key; returns (keys deleted, keys written)."""
    client = redis.Redis.from_url(url, decode_responses=True, socket_timeout=30)
    try:
        stale = list(client.scan_iter(match=f"{PREFIX}:*", count=1000))
        pipe = client.pipeline(transaction=True)
        for start in range(0, len(stale), DELETE_BATCH):
            pipe.delete(*stale[start : start + DELETE_BATCH])

        written = 0
        for t in types:
            pipe.hset(f"{PREFIX}:type:{t.code}", mapping=type_hash(t))
            written += 1
        paid = sorted(t.code for t in types if t.is_paid)
        if paid:
            pipe.sadd(f"{PREFIX}:paid_types", *paid)
            written += 1
        for content_id in sorted(content_codes):
            value = json.dumps(content_codes[content_id], separators=(",", ":"))
            pipe.set(f"{PREFIX}:content:{content_id}", value)
            written += 1
        pipe.execute()
        return len(stale), written
    finally:
        client.close()


def main() -> int:
    try:
        run_date = run_date_from_env()
        pg_url = env_url("HARNESS_POSTGRES_URL", "AIRFLOW_CONN_POSTGRES_DEFAULT")
        redis_url = env_url("HARNESS_REDIS_URL", "AIRFLOW_CONN_REDIS_DEFAULT")
        log(f"run date {run_date.isoformat()}")

        types, content_codes, rule_count = read_dictionaries(pg_url, run_date)
        paid_count = sum(t.is_paid for t in types)
        log(f"read {len(types)} monetization types ({paid_count} paid)")
        log(f"read {rule_count} content rules: {len(content_codes)} contents monetized on {run_date}")

        deleted, written = write_redis(redis_url, types, content_codes)
        log(f"deleted {deleted} stale {PREFIX}:* keys")
        log(
            f"wrote {written} keys: {len(types)} type hashes, "
            f"{1 if paid_count else 0} paid-types set, {len(content_codes)} content lists"
        )
        return 0
    except JobError as err:
        print(f"export_monetization: error: {err}", file=sys.stderr)
    except psycopg.Error as err:
        print(f"export_monetization: PostgreSQL error: {err}".rstrip(), file=sys.stderr)
    except redis.RedisError as err:
        print(f"export_monetization: Redis error: {err}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
