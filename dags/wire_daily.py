"""wire_daily: one run per UTC day D with data interval [D, D+1).

load_feeds -> fetch_feed (mapped per feed; stages a Parquet batch in the lake, returns its FeedOutcome)
-> land (merge, dedupe, write, manifest) -> validate (publishes the stories Asset).

Data interval: CronDataIntervalTimetable("0 0 * * *", UTC), so the scheduled run for [D, D+1) starts
just after D+1 00:00 UTC; a manual run with logical date L (`airflow dags test wire_daily L`) owns the last
complete day before L. A manual run without a logical date owns the UTC day of its run_after (see
pipeline.airflow_support.interval_from_context); conf {"day": "YYYY-MM-DD"} picks a day explicitly.
Settings come from WIREFEED_* env (lake, feeds file); S3 credentials from the Airflow connection wirefeed_s3.
"""

from __future__ import annotations

import logging
from typing import Any

from _common import (
    DEFAULT_ARGS,
    FETCH_POOL,
    FETCH_TIMEOUT,
    LAND_TIMEOUT,
    S3_POOL,
    START_DATE,
    STORIES_ASSET,
    VALIDATE_TIMEOUT,
    fail_fast,
)
from airflow.sdk import CronDataIntervalTimetable, Param, dag, get_current_context, task

log = logging.getLogger(__name__)
FEED_ID_TEMPLATE = "{{ task.op_kwargs['feed']['id'] }}"


@dag(
    dag_id="wire_daily",
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    params={"day": Param(None, type=["null", "string"], description="UTC day YYYY-MM-DD (manual runs)")},
    tags=["wirefeed"],
    doc_md=__doc__,
)
def wire_daily() -> None:
    @task(pool=S3_POOL, execution_timeout=FETCH_TIMEOUT)
    @fail_fast
    def load_feeds() -> list[dict[str, Any]]:
        from dataclasses import asdict

        from pipeline.airflow_support import interval_from_context, settings_in_airflow
        from pipeline.feeds import load_feeds as _load
        from pipeline.lake import open_lake

        settings = settings_in_airflow()
        interval = interval_from_context(get_current_context(), "daily")
        open_lake(settings.lake, settings).ensure_bucket()
        feeds = [asdict(f) for f in _load(settings.feeds_file)]
        log.info(
            "interval %s .. %s: %d feeds", interval.start.isoformat(), interval.end.isoformat(), len(feeds)
        )
        return feeds

    @task(
        pool=FETCH_POOL,
        execution_timeout=FETCH_TIMEOUT,
        map_index_template=FEED_ID_TEMPLATE,
    )
    @fail_fast
    def fetch_feed(feed: dict[str, Any]) -> dict[str, Any]:
        from pipeline.airflow_support import interval_from_context, settings_in_airflow
        from pipeline.feeds import FeedSpec
        from pipeline.ingest import fetch_feed_to_stage
        from pipeline.lake import open_lake

        settings = settings_in_airflow()
        interval = interval_from_context(get_current_context(), "daily")
        outcome: dict[str, Any] = dict(
            fetch_feed_to_stage(FeedSpec(**feed), open_lake(settings.lake, settings), interval, settings)
        )
        log.info("feed %s: %s stories=%s", feed["id"], outcome.get("status"), outcome.get("stories"))
        return outcome

    @task(pool=S3_POOL, execution_timeout=LAND_TIMEOUT)
    @fail_fast
    def land(outcomes: list[dict[str, Any]]) -> dict[str, Any]:
        from pipeline.airflow_support import interval_from_context, settings_in_airflow
        from pipeline.ingest import check_failed_share, summary
        from pipeline.lake import open_lake
        from pipeline.landing import land_staged

        settings = settings_in_airflow()
        interval = interval_from_context(get_current_context(), "daily")
        feeds = [dict(o) for o in outcomes[:]]  # one slice request (iterating probes one past the end)
        staged = [o["staged_uri"] for o in feeds if o.get("staged_uri")]
        manifest = land_staged(open_lake(settings.lake, settings), interval, staged, feeds)
        result = summary(manifest)
        log.info("landed %s: %s", interval.label, result)
        check_failed_share(manifest, settings)  # RunFailed (fatal) after the good feeds were landed
        return result

    @task(pool=S3_POOL, execution_timeout=VALIDATE_TIMEOUT, outlets=[STORIES_ASSET])
    @fail_fast
    def validate(landed: dict[str, Any]) -> dict[str, Any]:
        """Validate the manifests of this interval; publishes STORIES_ASSET on success."""
        from pipeline.airflow_support import interval_from_context, settings_in_airflow
        from pipeline.errors import FatalError
        from pipeline.lake import open_lake
        from pipeline.validate import validate as _validate

        settings = settings_in_airflow()
        interval = interval_from_context(get_current_context(), "daily")
        days = interval.days()
        report = _validate(open_lake(settings.lake, settings), days[0], days[-1])
        result: dict[str, Any] = report.to_dict()
        log.info(
            "validate %s..%s: ok=%s manifests=%d rows=%d",
            days[0],
            days[-1],
            report.ok,
            report.manifests,
            report.rows,
        )
        if not report.ok:
            raise FatalError(
                f"lake validation failed for {interval.label}", violations=result["violations"][:20]
            )
        return result

    validate(land(fetch_feed.expand(feed=load_feeds())))


wire_daily()
