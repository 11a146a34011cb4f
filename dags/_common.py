"""Shared DAG wiring for wire_daily / wire_backfill: retries, timeouts, pools, error mapping, the validate
task (no logic: task bodies call pipeline.jobs.tasks, see pipeline/jobs/tasks.py).

Parse-time rule: only constants and environment variables are read here (no files, network or metadata DB).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar

from airflow.sdk import Asset, ExceptionRetryPolicy, RetryAction, RetryRule, task
from airflow.sdk.exceptions import AirflowFailException

# Pools: wirefeed_fetch (feed fetching, e.g. 4 slots) and wirefeed_s3 (tasks that land into or validate the
# lake). wirefeed_s3 MUST have 1 slot: landing is exactly-once only against manifests that already exist, and
# validate reports a concurrent landing's not-yet-named objects as orphans, so one lake task runs at a time
# (across both DAGs and across backfill runs). The scheduler never runs a task whose pool does not exist (it
# logs "Tasks using non-existent pool ... will not be scheduled"; the DagBag records a DAG warning), so
# scripts/run-embedded.sh and the tests create both; other deployments create them or set
# WIREFEED_FETCH_POOL / WIREFEED_S3_POOL (e.g. to a one-slot pool of their own).
FETCH_POOL = os.environ.get("WIREFEED_FETCH_POOL", "wirefeed_fetch")
S3_POOL = os.environ.get("WIREFEED_S3_POOL", "wirefeed_s3")
POOLS = {FETCH_POOL: 4, S3_POOL: 1}

# The stories dataset: every validated landing into the lake is an event on this asset.
STORIES_ASSET = Asset(name="wirefeed_stories", uri="wirefeed://lake/stories/")

START_DATE = datetime(2026, 1, 1, tzinfo=UTC)


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    try:
        return max(1, int(raw)) if raw else default
    except ValueError:
        return default


def env_date(name: str) -> datetime | None:
    """A YYYY-MM-DD environment variable as UTC midnight, or None when unset/invalid."""
    raw = os.environ.get(name, "").strip()
    try:
        d = date.fromisoformat(raw) if raw else None
    except ValueError:
        return None
    return datetime(d.year, d.month, d.day, tzinfo=UTC) if d else None


# Transient failures retry with exponential backoff; everything else fails at once.
RETRY_POLICY = ExceptionRetryPolicy(
    rules=[
        RetryRule(
            exception=["pipeline.errors.RetriableError", "builtins.ConnectionError", "builtins.TimeoutError"],
            action=RetryAction.RETRY,
            reason="transient error",
        ),
    ],
    default=RetryAction.FAIL,
)

DEFAULT_ARGS: dict[str, Any] = {
    "owner": "wirefeed",
    "retries": 3,
    # first delay; then x2 per retry up to max_retry_delay (WIREFEED_RETRY_DELAY_SECONDS: tests use 1)
    "retry_delay": timedelta(seconds=env_int("WIREFEED_RETRY_DELAY_SECONDS", 30)),
    "retry_exponential_backoff": 2.0,
    "max_retry_delay": timedelta(minutes=10),
    "retry_policy": RETRY_POLICY,
    "execution_timeout": timedelta(minutes=15),
}

FETCH_TIMEOUT = timedelta(minutes=10)
LAND_TIMEOUT = timedelta(minutes=30)
VALIDATE_TIMEOUT = timedelta(minutes=15)
BACKFILL_DAY_TIMEOUT = timedelta(minutes=45)
# A whole run, queueing for the one-slot pool included: a run stuck longer than this fails (and can be rerun).
DAILY_RUN_TIMEOUT = timedelta(hours=env_int("WIREFEED_DAILY_RUN_TIMEOUT_HOURS", 6))
BACKFILL_RUN_TIMEOUT = timedelta(hours=env_int("WIREFEED_BACKFILL_RUN_TIMEOUT_HOURS", 12))

F = TypeVar("F", bound=Callable[..., Any])


def fail_fast(func: F) -> F:
    """Map pipeline errors onto Airflow: RetriableError propagates (retried with backoff); FatalError,
    ConfigError and BadInputError become AirflowFailException (no retries)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from pipeline.errors import RetriableError, WirefeedError

        try:
            return func(*args, **kwargs)
        except RetriableError:
            raise
        except WirefeedError as exc:
            raise AirflowFailException(f"{exc.kind}: {exc.message} {exc.fields or ''}".rstrip()) from exc

    return wrapper  # type: ignore[return-value]


def validate_task(job: str, task_id: str) -> Any:
    """The last task of a `job` DAG (call it inside the DAG): validate what its landing task landed
    (pipeline.jobs.tasks.validate_landing) and publish STORIES_ASSET with the interval, counts and manifest
    URI as the event's extra; skipped, so publishing nothing, when nothing landed."""

    @task(
        task_id=task_id,
        pool=S3_POOL,
        execution_timeout=VALIDATE_TIMEOUT,
        outlets=[STORIES_ASSET],
        multiple_outputs=False,
    )
    @fail_fast
    def validate(landed: dict[str, Any]) -> dict[str, Any] | None:
        from pipeline.jobs import airflow_support, tasks

        settings, interval, _ = airflow_support.task_context(job)
        result = tasks.validate_landing(landed, interval, settings)
        airflow_support.publish_or_skip(STORIES_ASSET, result, interval.label)
        return result

    return validate
