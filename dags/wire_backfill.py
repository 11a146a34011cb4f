"""wire_backfill: ingest the slice of a historical archive that belongs to each UTC day D, interval [D, D+1).

ingest_day (pipeline.jobs.tasks.ingest_archive_day: backfill.backfill_day for D) -> validate_day
(pipeline.jobs.tasks.validate_landing); the CLI: `wirefeed backfill --from D --to D`, `wirefeed validate`.

Not scheduled by default: an archive day is complete only when its producer says so, so runs come from
`airflow backfill create --dag-id wire_backfill --from-date A --to-date B` (or a manual trigger with conf
{"day": "YYYY-MM-DD"}). The DAG keeps a daily timetable because Airflow backfills only periodic DAGs, and its
end_date equals its start_date, so unpausing it (which backfill runs need: runs of a paused DAG stay queued)
creates no scheduled run. For an archive that grows by one day every day, WIREFEED_BACKFILL_START=YYYY-MM-DD
turns scheduling on: catchup creates a run for every day from then on (until WIREFEED_BACKFILL_END, if set),
continuing after the latest backfill or scheduled run.

A day is done only for the archive content it saw: the manifest records the day's listing (keys, sizes,
ETags or mtimes); a rerun skips the day when it is unchanged and otherwise ingests only what is new or
changed, exactly once. A day with no input writes nothing (data added later lands on the next run), and a
day whose every input was rejected fails (e.g. conf {"layout": "jsonl"} on wire text) writing nothing.
conf {"force": true} re-reads every input of the day. validate_day is skipped (no Asset event) when the
day landed nothing.
Concurrent runs: WIREFEED_BACKFILL_ACTIVE_RUNS (default 4; `backfill create --max-active-runs` caps one
backfill separately); their lake tasks still take turns in the one-slot pool wirefeed_s3, which keeps
landing exactly-once across runs and workers (see dags/_common.py).
Archive URI: conf/param "archive", else Airflow Variable `wirefeed_archive`, else env WIREFEED_ARCHIVE.
"""

from __future__ import annotations

from typing import Any

from _common import (
    BACKFILL_DAY_TIMEOUT,
    BACKFILL_RUN_TIMEOUT,
    DEFAULT_ARGS,
    S3_POOL,
    START_DATE,
    env_date,
    env_int,
    fail_fast,
    validate_task,
)
from airflow.sdk import CronDataIntervalTimetable, Param, dag, task

SCHEDULED_FROM = env_date("WIREFEED_BACKFILL_START")


@dag(
    dag_id="wire_backfill",
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
    start_date=SCHEDULED_FROM or START_DATE,
    # no scheduled run unless WIREFEED_BACKFILL_START is set (backfill create ignores end_date)
    end_date=env_date("WIREFEED_BACKFILL_END") if SCHEDULED_FROM else START_DATE,
    catchup=SCHEDULED_FROM is not None,
    max_active_runs=env_int("WIREFEED_BACKFILL_ACTIVE_RUNS", 4),
    dagrun_timeout=BACKFILL_RUN_TIMEOUT,
    default_args=DEFAULT_ARGS,
    params={
        "archive": Param(None, type=["null", "string"], description="archive URI (local path or s3://)"),
        "layout": Param(None, type=["null", "string"], description="archive layout (default: detected)"),
        "force": Param(False, type="boolean", description="re-read every input of the day"),
    },
    tags=["wirefeed"],
    doc_md=__doc__,
)
def wire_backfill() -> None:
    @task(pool=S3_POOL, execution_timeout=BACKFILL_DAY_TIMEOUT, multiple_outputs=False)
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
