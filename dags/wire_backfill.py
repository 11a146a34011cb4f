"""wire_backfill: ingest the slice of a historical archive that belongs to each UTC day D, interval [D, D+1).

ingest_day (pipeline.backfill.backfill_day for D) -> validate_day.

Driven by `airflow backfill create --dag-id wire_backfill --from-date A --to-date B` and by catchup: with
WIREFEED_BACKFILL_START=YYYY-MM-DD set, catchup is on and the scheduler creates a run for every day from it
(until WIREFEED_BACKFILL_END, if set). Without it catchup is off: the scheduler only ever creates the latest
complete day (none after WIREFEED_BACKFILL_END). Concurrent runs: WIREFEED_BACKFILL_ACTIVE_RUNS (default 4;
`backfill create --max-active-runs` caps one backfill separately); their lake tasks still take turns in the
one-slot pool wirefeed_s3, which keeps landing exactly-once (see dags/_common.py).
Archive URI: conf/param "archive", else Airflow Variable `wirefeed_archive`, else env WIREFEED_ARCHIVE.
A day whose manifest exists is skipped (idempotent rerun) unless conf {"force": true} re-ingests it.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from _common import (
    BACKFILL_DAY_TIMEOUT,
    DEFAULT_ARGS,
    S3_POOL,
    START_DATE,
    STORIES_ASSET,
    VALIDATE_TIMEOUT,
    env_date,
    env_int,
    fail_fast,
)
from airflow.sdk import CronDataIntervalTimetable, Param, dag, get_current_context, task

log = logging.getLogger(__name__)
CATCHUP_FROM = env_date("WIREFEED_BACKFILL_START")


def _archive_uri(params: dict[str, Any]) -> str:
    from airflow.sdk import Variable

    from pipeline.errors import ConfigError

    uri = (
        params.get("archive")
        or Variable.get("wirefeed_archive", default=None)
        or os.environ.get("WIREFEED_ARCHIVE")
    )
    if not uri:
        raise ConfigError(
            "no archive: set conf/param 'archive', Variable wirefeed_archive or WIREFEED_ARCHIVE"
        )
    return str(uri)


@dag(
    dag_id="wire_backfill",
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
    start_date=CATCHUP_FROM or START_DATE,
    end_date=env_date("WIREFEED_BACKFILL_END"),
    catchup=CATCHUP_FROM is not None,
    max_active_runs=env_int("WIREFEED_BACKFILL_ACTIVE_RUNS", 4),
    default_args=DEFAULT_ARGS,
    params={
        "archive": Param(None, type=["null", "string"], description="archive URI (local path or s3://)"),
        "layout": Param(None, type=["null", "string"], description="archive layout (default: detected)"),
        "force": Param(False, type="boolean", description="re-ingest days whose manifest exists"),
    },
    tags=["wirefeed"],
    doc_md=__doc__,
)
def wire_backfill() -> None:
    @task(pool=S3_POOL, execution_timeout=BACKFILL_DAY_TIMEOUT)
    @fail_fast
    def ingest_day() -> dict[str, Any]:
        from pipeline.airflow_support import interval_from_context, settings_in_airflow
        from pipeline.backfill import backfill_day
        from pipeline.lake import open_lake

        context = get_current_context()
        params = dict(context["params"])
        settings = settings_in_airflow()
        interval = interval_from_context(context, "backfill")
        open_lake(settings.lake, settings).ensure_bucket()
        archive = _archive_uri(params)
        day = interval.days()[0]
        summary: dict[str, Any] = dict(
            backfill_day(
                archive,
                day,
                settings.lake,
                layout=params.get("layout") or None,
                settings=settings,
                force=bool(params.get("force")),
            )
        )
        log.info("backfill %s from %s: %s", day, archive, summary)
        return summary

    @task(pool=S3_POOL, execution_timeout=VALIDATE_TIMEOUT, outlets=[STORIES_ASSET])
    @fail_fast
    def validate_day(summary: dict[str, Any]) -> dict[str, Any]:
        from pipeline.airflow_support import interval_from_context, settings_in_airflow
        from pipeline.errors import FatalError
        from pipeline.lake import open_lake
        from pipeline.validate import validate

        settings = settings_in_airflow()
        interval = interval_from_context(get_current_context(), "backfill")
        days = interval.days()
        report = validate(open_lake(settings.lake, settings), days[0], days[-1])
        result: dict[str, Any] = report.to_dict()
        log.info("validate %s: %s", interval.label, {k: v for k, v in result.items() if k != "violations"})
        if not report.ok:
            violations = result["violations"][:20]
            raise FatalError(f"lake validation failed for {interval.label}", violations=violations)
        return result

    validate_day(ingest_day())


wire_backfill()
