"""One function per Airflow task of dags/: plain arguments in (Settings, Interval, JSON-able values),
JSON-able dicts out, no Airflow import. The DAGs only wire these (pipeline.jobs.airflow_support.task_context
supplies settings, interval and params); they share their building blocks with the `wirefeed` CLI:

    wire_daily    load_feeds   -> list_feeds          (feeds.load_feeds + lake_for, as `wirefeed run`)
                  fetch_feed   -> fetch_feed          (ingest.fetch_feed_to_stage, as ingest.fetch_all)
                  land         -> land_feeds          (ingest.land_outcomes + check_failed_share: run_daily)
                  validate     -> validate_landing    (validate.check_interval, as `wirefeed run`)
    wire_backfill ingest_day   -> ingest_archive_day  (backfill.backfill_day: prepare_day + land_day, as
                                                        `wirefeed backfill` does per day)
                  validate_day -> validate_landing

validate_landing runs only when its landing task wrote a manifest naming stories; its result then carries
the `extra` of the stories Asset event (interval, counts, manifest URI). Otherwise (an unchanged or empty
backfill day, a landing of no story) it returns None: nothing to validate, no Asset event.

Errors are the pipeline's own (RetriableError, FatalError, ConfigError, ...); dags/_common.fail_fast maps
them onto Airflow.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from typing import Any

from pipeline.config import Settings
from pipeline.errors import ConfigError, FatalError
from pipeline.jobs.backfill import backfill_day
from pipeline.jobs.daily import check_failed_share, fetch_feed_to_stage, land_outcomes, summary
from pipeline.jobs.intervals import Interval
from pipeline.lake.store import lake_for
from pipeline.lake.validate import check_interval
from pipeline.parsing.stories import StoryTagger
from pipeline.sources.feeds import load_feeds

log = logging.getLogger(__name__)

ARCHIVE_ENV = "WIREFEED_ARCHIVE"
MAX_VIOLATIONS = 20  # carried by the FatalError of a failed validation


def list_feeds(settings: Settings, interval: Interval | None = None) -> list[dict[str, Any]]:
    """The enabled feeds of Settings.feeds_file as dicts (one mapped fetch each); makes the lake's bucket."""
    lake_for(settings, create=True)
    feeds = [asdict(f) for f in load_feeds(settings.feeds_file)]
    if interval is not None:
        log.info(
            "interval %s .. %s: %d feeds", interval.start.isoformat(), interval.end.isoformat(), len(feeds)
        )
    return feeds


def fetch_feed(
    feed: Mapping[str, Any], interval: Interval, settings: Settings, *, tagger: StoryTagger | None = None
) -> dict[str, Any]:
    """Fetch one feed and stage its stories; the FeedOutcome (status, staged_uri, counts). A feed's own
    failure is recorded in the outcome, not raised."""
    outcome = dict(fetch_feed_to_stage(feed, lake_for(settings), interval, settings, tagger=tagger))
    log.info("feed %s: %s stories=%s", outcome["feed_id"], outcome.get("status"), outcome.get("stories"))
    return outcome


def land_feeds(
    outcomes: Sequence[Mapping[str, Any]], interval: Interval, settings: Settings
) -> dict[str, Any]:
    """Land the staged batches of `outcomes` as one interval; ingest.summary of the manifest. Raises RunFailed
    (fatal) after landing when too many feeds failed."""
    # one slice: for Airflow's lazy XCom sequence a single request (iterating it probes one past the end)
    feeds = [dict(o) for o in outcomes[:]]
    manifest = land_outcomes(lake_for(settings), interval, feeds)
    result = {**summary(manifest), "landed": True, "rows": manifest.rows, "manifest": manifest.key}
    log.info("landed %s: %s", interval.label, result)
    check_failed_share(manifest, settings)
    return result


def validate_interval(interval: Interval, settings: Settings) -> dict[str, Any]:
    """Validate the manifests of the interval's days; the report as a dict. FatalError (carrying the first
    violations) when the lake has any."""
    report = check_interval(lake_for(settings), interval)
    result: dict[str, Any] = report.to_dict()
    log.info(
        "validate %s: ok=%s manifests=%d rows=%d", interval.label, report.ok, report.manifests, report.rows
    )
    if not report.ok:
        raise FatalError(
            f"lake validation failed for {interval.label}", violations=result["violations"][:MAX_VIOLATIONS]
        )
    return result


def validate_landing(
    landed: Mapping[str, Any], interval: Interval, settings: Settings
) -> dict[str, Any] | None:
    """After a landing task (its result `landed`): None when it landed no story; else validate_interval's
    report plus "asset", the extra of the stories Asset event (job, interval, label, counts, rows, manifest
    URI)."""
    rows = int(landed.get("rows") or 0)
    if not landed.get("landed") or not rows:
        log.info("nothing landed for %s (%s): no validation, no asset event", interval.label, _why(landed))
        return None
    report = validate_interval(interval, settings)
    counts = landed.get("counts") or landed.get("stories") or {}
    asset = {
        "job": interval.job,
        "interval_start": interval.start.isoformat(),
        "interval_end": interval.end.isoformat(),
        "label": interval.label,
        "counts": {str(k): int(v) for k, v in counts.items()},
        "rows": rows,
        "manifest": lake_for(settings).uri(str(landed["manifest"])),
    }
    return {**report, "asset": asset}


def _why(landed: Mapping[str, Any]) -> str:
    return str(landed.get("reason") or ("no story" if landed.get("landed") else "not landed"))


def archive_uri(archive: str | None = None, env: Mapping[str, str] | None = None) -> str:
    """`archive` when given (a run's param, else a deployment's setting such as the Airflow Variable
    wirefeed_archive), else env WIREFEED_ARCHIVE; ConfigError when there is none."""
    env = os.environ if env is None else env
    uri = archive or env.get(ARCHIVE_ENV)
    if not uri:
        raise ConfigError(f"no archive: set conf/param 'archive', Variable wirefeed_archive or {ARCHIVE_ENV}")
    return str(uri)


def ingest_archive_day(
    interval: Interval,
    settings: Settings,
    *,
    archive: str | None = None,
    layout: str | None = None,
    force: bool = False,
) -> dict[str, Any]:
    """Backfill the interval's (first) day from the archive (see archive_uri); backfill.backfill_day's
    summary. A day whose manifest exists is skipped unless `force`."""
    lake_for(settings, create=True)
    uri = archive_uri(archive)
    day = interval.days()[0]
    result = backfill_day(uri, day, settings.lake, layout=layout or None, settings=settings, force=force)
    log.info("backfill %s from %s: %s", day, uri, result)
    return result
