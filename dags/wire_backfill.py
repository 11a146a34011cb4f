"""wire_backfill: ingest the slice of a historical archive that belongs to each UTC day D, interval [D, D+1).

ingest_day (pipeline.jobs.tasks.ingest_archive_day: backfill.backfill_day for D) -> validate_day
(pipeline.jobs.tasks.validate_interval); from the CLI:
`wirefeed backfill --from D --to D`, `wirefeed validate`.

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

from typing import Any

from _common import (
    BACKFILL_DAY_TIMEOUT,
    DEFAULT_ARGS,
    S3_POOL,
    START_DATE,
    env_date,
    env_int,
    fail_fast,
    validate_task,
)
from airflow.sdk import CronDataIntervalTimetable, Param, dag, task

CATCHUP_FROM = env_date("WIREFEED_BACKFILL_START")


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
        from pipeline.jobs import airflow_support, tasks

        settings, interval, params = airflow_support.task_context("backfill")
        archive = airflow_support.archive_in_airflow(params)
        return tasks.ingest_archive_day(
            interval, settings, archive=archive, layout=params.get("layout"), force=bool(params.get("force"))
        )

    validate_day = validate_task("backfill", "validate_day")
    validate_day(ingest_day())


wire_backfill()
