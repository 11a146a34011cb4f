"""Glue between Airflow task contexts / connections and pipeline objects (Settings, Interval).

Airflow is imported lazily, inside functions, so this module stays importable (and type-checkable) without it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from pipeline.config import S3Settings, Settings
from pipeline.errors import ConfigError
from pipeline.jobs.intervals import Interval, parse_day

log = logging.getLogger(__name__)

DEFAULT_S3_CONN_ID = "wirefeed_s3"

# For Airflow's SQLite metadata DB: wait up to 60 s for a lock instead of sqlite3's 5 s, so the scheduler,
# dag-processor, api-server and CLI calls such as `airflow backfill create` can share the file under load
# ("database is locked" otherwise). Used as AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS=<this path>.
SQLITE_CONNECT_ARGS: dict[str, Any] = {"timeout": 60}


def _utc(value: Any, name: str) -> datetime:
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise ConfigError(f"{name} is not a timezone-aware datetime: {value!r}", field=name)
    # plain datetime (not pendulum) so labels, JSON and comparisons behave like the rest of the pipeline
    return datetime.fromtimestamp(value.timestamp(), UTC)


def interval_from_context(context: Mapping[str, Any], job: str) -> Interval:
    """The interval a task owns, in this order:

    1. params["day"] (YYYY-MM-DD) when a manual trigger names a day explicitly: [day, day+1);
    2. the run's data interval (data_interval_start / data_interval_end), e.g. [D, D+1) for a scheduled
       or backfill run of a CronDataIntervalTimetable("0 0 * * *") DAG;
    3. a manual trigger without a logical date has no data interval: the UTC day of the run's run_after
       (else its start date), i.e. [today 00:00, tomorrow 00:00) for "run now".
    """
    params = context.get("params") or {}
    day = params.get("day") if isinstance(params, Mapping) else None
    if day:
        return Interval.for_date(parse_day(str(day)), job)
    start, end = context.get("data_interval_start"), context.get("data_interval_end")
    if start is not None and end is not None:
        return Interval(_utc(start, "data_interval_start"), _utc(end, "data_interval_end"), job)
    dag_run = context.get("dag_run")
    ref = getattr(dag_run, "run_after", None) or getattr(dag_run, "start_date", None)
    if ref is None:
        raise ConfigError("task context has neither a data interval nor a run date", job=job)
    when = _utc(ref, "run_after")
    log.info("run has no data interval (manual trigger without logical date): using UTC day %s", when.date())
    return Interval.for_date(when.date(), job)


def task_context(job: str) -> tuple[Settings, Interval, dict[str, Any]]:
    """What a running task of a `job` DAG needs: its Settings (settings_in_airflow), the interval it owns
    (interval_from_context) and the run's params."""
    from airflow.sdk import get_current_context

    context = get_current_context()
    settings = settings_in_airflow()
    return settings, interval_from_context(context, job), dict(context.get("params") or {})


def publish_or_skip(asset: Any, result: Mapping[str, Any] | None, label: str) -> None:
    """For the validating task, which has `asset` as its outlet: with a result (pipeline.jobs.tasks.
    validate_landing), the Asset event carries result["asset"] as its extra; with None (nothing landed) the
    task is skipped, so no Asset event is published (Airflow publishes outlets on success only)."""
    from airflow.sdk import get_current_context
    from airflow.sdk.exceptions import AirflowSkipException

    if result is None:
        raise AirflowSkipException(f"nothing landed for {label}: no validation, no asset event")
    get_current_context()["outlet_events"][asset].extra = dict(result["asset"])


def archive_in_airflow(params: Mapping[str, Any]) -> str | None:
    """The archive a backfill run names: param "archive", else the Airflow Variable `wirefeed_archive`
    (None when neither is set; pipeline.jobs.tasks.archive_uri then falls back to WIREFEED_ARCHIVE)."""
    if params.get("archive"):
        return str(params["archive"])
    from airflow.sdk import Variable

    value = Variable.get("wirefeed_archive", default=None)
    return str(value) if value else None


def s3_from_connection(conn: Any, fallback: S3Settings) -> S3Settings:
    """S3Settings from an Airflow (aws-style) connection: login/password, extra endpoint_url / region_name."""
    extra: Mapping[str, Any] = getattr(conn, "extra_dejson", None) or {}
    endpoint = extra.get("endpoint_url") or fallback.endpoint_url
    if not endpoint and getattr(conn, "host", None):
        scheme = extra.get("scheme", "http")
        port = f":{conn.port}" if getattr(conn, "port", None) else ""
        endpoint = f"{scheme}://{conn.host}{port}"
    return S3Settings(
        endpoint_url=endpoint or None,
        region=extra.get("region_name") or extra.get("region") or fallback.region,
        access_key_id=getattr(conn, "login", None)
        or extra.get("aws_access_key_id")
        or fallback.access_key_id,
        secret_access_key=getattr(conn, "password", None)
        or extra.get("aws_secret_access_key")
        or fallback.secret_access_key,
        session_token=extra.get("aws_session_token") or fallback.session_token,
    )


def _get_connection(conn_id: str) -> Any | None:
    from airflow.sdk import Connection
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        return Connection.get(conn_id)
    except AirflowNotFoundException:
        return None


def settings_in_airflow(env: Mapping[str, str] | None = None) -> Settings:
    """Settings for a task: WIREFEED_* env as usual; for an s3:// lake the endpoint and credentials come from
    the Airflow connection WIREFEED_S3_CONN_ID (default `wirefeed_s3`) when it exists, else from AWS_* env."""
    env = os.environ if env is None else env
    settings = Settings.load(env=env)
    if not settings.lake.startswith("s3://"):
        return settings
    conn_id = env.get("WIREFEED_S3_CONN_ID", DEFAULT_S3_CONN_ID)
    conn = _get_connection(conn_id)
    if conn is None:
        log.info("no Airflow connection %r: S3 settings from AWS_* environment", conn_id)
        return settings
    log.info("S3 settings from Airflow connection %r", conn_id)
    return settings.with_(s3=s3_from_connection(conn, settings.s3))
