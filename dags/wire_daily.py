"""wire_daily: one run per UTC day D with data interval [D, D+1).

load_feeds -> fetch_feed (mapped per feed; stages a Parquet batch in the lake, returns its FeedOutcome)
-> land (merge, dedupe, write, manifest) -> validate (publishes the stories Asset, its extra naming the
interval, counts and manifest; skipped when no story landed). Each task calls the
pipeline.jobs.tasks function of its name (list_feeds, fetch_feed, land_feeds, validate_interval): the
same steps `wirefeed run` takes.

Data interval: CronDataIntervalTimetable("0 0 * * *", UTC), so the scheduled run for [D, D+1) starts
just after D+1 00:00 UTC; a manual run with logical date L (`airflow dags test wire_daily L`) owns the last
complete day before L. A manual run without a logical date owns the UTC day of its run_after (see
pipeline.jobs.airflow_support.interval_from_context); conf {"day": "YYYY-MM-DD"} picks a day explicitly.
Settings come from WIREFEED_* env (lake, feeds file); S3 credentials from the Airflow connection wirefeed_s3.
"""

from __future__ import annotations

from typing import Any

from _common import (
    DAILY_RUN_TIMEOUT,
    DEFAULT_ARGS,
    FETCH_POOL,
    FETCH_TIMEOUT,
    LAND_TIMEOUT,
    S3_POOL,
    START_DATE,
    fail_fast,
    validate_task,
)
from airflow.sdk import CronDataIntervalTimetable, Param, dag, task

FEED_ID_TEMPLATE = "{{ task.op_kwargs['feed']['id'] }}"


@dag(
    dag_id="wire_daily",
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=DAILY_RUN_TIMEOUT,
    default_args=DEFAULT_ARGS,
    params={"day": Param(None, type=["null", "string"], description="UTC day YYYY-MM-DD (manual runs)")},
    tags=["wirefeed"],
    doc_md=__doc__,
)
def wire_daily() -> None:
    @task(pool=S3_POOL, execution_timeout=FETCH_TIMEOUT, multiple_outputs=False)
    @fail_fast
    def load_feeds() -> list[dict[str, Any]]:
        from pipeline.jobs import airflow_support, tasks

        settings, interval, _ = airflow_support.task_context("daily")
        return tasks.list_feeds(settings, interval)

    @task(
        pool=FETCH_POOL,
        execution_timeout=FETCH_TIMEOUT,
        map_index_template=FEED_ID_TEMPLATE,
        multiple_outputs=False,  # one XCom (the FeedOutcome), not one per key
    )
    @fail_fast
    def fetch_feed(feed: dict[str, Any]) -> dict[str, Any]:
        from pipeline.jobs import airflow_support, tasks

        settings, interval, _ = airflow_support.task_context("daily")
        return tasks.fetch_feed(feed, interval, settings)

    @task(pool=S3_POOL, execution_timeout=LAND_TIMEOUT, multiple_outputs=False)
    @fail_fast
    def land(outcomes: list[dict[str, Any]]) -> dict[str, Any]:
        from pipeline.jobs import airflow_support, tasks

        settings, interval, _ = airflow_support.task_context("daily")
        return tasks.land_feeds(outcomes, interval, settings)

    validate = validate_task("daily", "validate")
    validate(land(fetch_feed.expand(feed=load_feeds())))


wire_daily()
