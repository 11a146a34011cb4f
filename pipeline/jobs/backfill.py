"""Backfill: turn archive days into landed intervals (job "backfill"), one manifest per UTC day.

Exactly-once across days: `landing.land` dedupes only against manifests that already exist, so two days must
never land at the same time. `run_backfill` therefore parses days in parallel worker processes (the costly
part) and lands them one at a time, in date order, in the parent; a story found in several days' archives
lands with the first of those days and counts as a duplicate in the others. `backfill_day` (the Airflow
task) does both steps for one day, so the DAG must not land two days at once (max_active_runs=1 or a
one-slot pool).
Resumable: a day whose manifest exists is skipped unless `force`.
"""

from __future__ import annotations

import logging
import multiprocessing
import traceback
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from datetime import date
from typing import Any, TextIO

from pipeline.config import Settings
from pipeline.errors import BadInputError, WirefeedError
from pipeline.jobs.intervals import Interval, day_range
from pipeline.jobs.progress import Progress
from pipeline.lake.landing import COUNT_KEYS, land, manifest_key
from pipeline.lake.parquet import parquet_bytes, read_stories, to_table
from pipeline.lake.store import Lake, open_lake
from pipeline.parsing.budget import parse_budget
from pipeline.parsing.stories import (
    StoryTagger,
    load_default_tagger,
    stories_from_bytes,
    stories_from_entries,
)
from pipeline.schema import Story
from pipeline.sources.archive import ArchiveItem, Planned, iter_archive_day, load_mapping, plan_archive

log = logging.getLogger(__name__)

JOB = "backfill"
MAX_PROBLEMS = 20  # per input, in the manifest
MAX_ERRORS = 50  # failed inputs listed in a day's summary


@dataclass
class PreparedDay:
    """A day read and parsed, ready to land: stories plus one FeedOutcome-shaped dict per input."""

    day: date
    archive: str = ""
    stories: list[Story] = field(default_factory=list)
    outcomes: list[dict[str, Any]] = field(default_factory=list)


def day_manifest_key(day: date) -> str:
    return manifest_key(JOB, Interval.for_date(day, JOB).label)


def prepare_day(
    archive_uri: str,
    day: date,
    *,
    layout: str | None = None,
    mapping: Mapping[str, str] | str | None = None,
    settings: Settings | None = None,
    tagger: StoryTagger | None = None,
    planned: list[Planned] | None = None,
) -> PreparedDay:
    """Read and parse one day of the archive (streaming, one input at a time); nothing is written."""
    settings = settings or Settings.load()
    settings.arm_redaction()
    tagger = tagger or load_default_tagger()
    prepared = PreparedDay(day, archive_uri)
    for item in iter_archive_day(archive_uri, day, layout, mapping, settings=settings, planned=planned):
        stories, outcome = _item_stories(item, tagger, settings.parse_budget)
        prepared.stories.extend(stories)
        prepared.outcomes.append(outcome)
    return prepared


def land_day(lake: Lake, prepared: PreparedDay) -> dict[str, Any]:
    """Land a prepared day (exactly once against every other manifest) and summarize it."""
    interval = Interval.for_date(prepared.day, JOB)
    manifest = land(
        lake, interval, prepared.stories, feeds=prepared.outcomes, source_info={"archive": prepared.archive}
    )
    return _summary(prepared, manifest.counts, manifest.key)


def backfill_day(
    archive_uri: str,
    day: date | str,
    lake_uri: str,
    *,
    layout: str | None = None,
    mapping: Mapping[str, str] | str | None = None,
    settings: Settings | None = None,
    force: bool = False,
) -> dict[str, Any]:
    """Backfill one UTC day; a JSON-able summary. Skips the day when its manifest exists, unless `force`."""
    the_day = Interval.for_date(day, JOB).start.date()
    settings = settings or Settings.load()
    lake = open_lake(lake_uri, settings)
    if not force and lake.exists(day_manifest_key(the_day)):
        log.info("backfill %s: manifest exists, skipped", the_day)
        return skipped_summary(the_day)
    lake.ensure_bucket()
    prepared = prepare_day(archive_uri, the_day, layout=layout, mapping=mapping, settings=settings)
    return land_day(lake, prepared)


def skipped_summary(day: date) -> dict[str, Any]:
    return {"day": day.isoformat(), "skipped": True, "manifest": day_manifest_key(day)}


def _item_stories(
    item: ArchiveItem, tagger: StoryTagger, budget: float | None = None
) -> tuple[list[Story], dict[str, Any]]:
    outcome: dict[str, Any] = {
        "feed_id": item.key,
        "url": item.origin,
        "status": "ok",
        "reason": None,
        "http_status": None,
        "raw_key": item.key if item.layout == "raw" else None,
        "staged_uri": None,
        "stories": 0,
        "rejected": item.rejected,
        "problems": list(item.problems),
    }
    stories: list[Story] = []
    try:
        if item.error is not None:
            raise item.error
        with parse_budget(budget, item.origin):
            if item.data is not None:
                batch = stories_from_bytes(
                    item.data,
                    item.origin,
                    fetched_at=item.fetched_at,
                    source=item.source,
                    feed_url=item.feed_url,
                    content_type=item.content_type,
                    tagger=tagger,
                )
            else:
                batch = stories_from_entries(
                    item.entries, item.origin, fetched_at=item.fetched_at, tagger=tagger
                )
        stories, problems, rejected = batch.stories, batch.problems, batch.rejected_entries
        outcome["problems"] += problems
        outcome["rejected"] += rejected
    except BadInputError as exc:
        outcome.update(status="failed", reason=f"{exc.kind}: {exc.message}")
        log.warning("backfill input %s unusable: %s: %s", item.origin, exc.kind, exc.message)
    outcome["stories"] = len(stories)
    if len(outcome["problems"]) > MAX_PROBLEMS:
        more = len(outcome["problems"]) - MAX_PROBLEMS
        outcome["problems"] = [*outcome["problems"][:MAX_PROBLEMS], f"... and {more} more"]
    return stories, outcome


def _summary(prepared: PreparedDay, counts: Mapping[str, int], key: str) -> dict[str, Any]:
    failed = [o for o in prepared.outcomes if o["status"] == "failed"]
    return {
        "day": prepared.day.isoformat(),
        "skipped": False,
        "inputs": len(prepared.outcomes),
        "failed_inputs": len(failed),
        "rejected": sum(int(o["rejected"]) for o in prepared.outcomes),
        "stories": {k: int(counts.get(k, 0)) for k in COUNT_KEYS},
        "manifest": key,
        "errors": [{"input": o["url"], "reason": o["reason"]} for o in failed[:MAX_ERRORS]],
    }


# --- the parallel runner --------------------------------------------------------------------------------


def _prepare_in_worker(
    archive_uri: str, day: date, planned: list[Planned], mapping: dict[str, str], settings: Settings
) -> tuple[bytes, list[dict[str, Any]]] | dict[str, Any]:
    """Worker process entry point: Parquet bytes + outcomes, or an error dict (exceptions stay here: ours do
    not all survive pickling)."""
    try:
        prepared = prepare_day(archive_uri, day, mapping=mapping, settings=settings, planned=planned)
        return parquet_bytes(to_table(prepared.stories)), prepared.outcomes
    except Exception as exc:
        log.debug("backfill %s failed in worker: %s", day, traceback.format_exc())
        return _error(exc)


def _error(exc: BaseException) -> dict[str, Any]:
    if isinstance(exc, WirefeedError):
        return {"error": exc.kind, "message": exc.message}
    return {"error": type(exc).__name__, "message": str(exc)}


def run_backfill(
    archive: str,
    date_from: date | str,
    date_to: date | str,
    lake: str,
    *,
    workers: int = 2,
    force: bool = False,
    layout: str | None = None,
    mapping: Mapping[str, str] | str | None = None,
    settings: Settings | None = None,
    progress_stream: TextIO | None = None,
) -> dict[str, Any]:
    """Backfill every day in [date_from, date_to]: parse in up to `workers` processes, land in date order."""
    settings = settings or Settings.load()
    fields = load_mapping(mapping)  # a bad mapping or archive URI fails here, before any work
    days = day_range(date_from, date_to)
    target = open_lake(lake, settings)
    target.ensure_bucket()
    todo = days if force else [d for d in days if not target.exists(day_manifest_key(d))]
    plan = plan_archive(archive, todo, layout, settings=settings)  # one listing for all days
    results: list[dict[str, Any]] = []
    with Progress(len(days), "backfill", stream=progress_stream) as progress:

        def finish(summary: dict[str, Any]) -> None:
            results.append(summary)
            note = summary["day"] + (" skipped" if summary.get("skipped") else "")
            progress.update(note=note + (" FAILED" if "error" in summary else ""))

        for day in days:
            if day not in plan:
                finish(skipped_summary(day))
        if workers <= 1:
            for day in todo:
                finish(_run_inline(archive, day, plan.pop(day), target, fields, settings))
        else:
            _run_parallel(archive, plan, target, fields, settings, workers, finish)
    return _totals(results, days)


def _run_inline(
    archive: str, day: date, planned: list[Planned], target: Lake, fields: dict[str, str], settings: Settings
) -> dict[str, Any]:
    try:
        prepared = prepare_day(archive, day, mapping=fields, settings=settings, planned=planned)
        return land_day(target, prepared)
    except Exception as exc:
        log.error("backfill %s failed: %s", day, exc)
        return {"day": day.isoformat(), "skipped": False, **_error(exc)}


def _run_parallel(
    archive: str,
    plan: dict[date, list[Planned]],
    target: Lake,
    fields: dict[str, str],
    settings: Settings,
    workers: int,
    finish: Callable[[dict[str, Any]], None],
) -> None:
    """At most `workers` days in flight; each lands (in the parent) once it and all earlier days are done."""
    pending = iter(sorted(plan))
    inflight: list[tuple[date, Future[tuple[bytes, list[dict[str, Any]]] | dict[str, Any]]]] = []
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        while True:
            while len(inflight) < workers and (day := next(pending, None)) is not None:
                try:
                    future = pool.submit(_prepare_in_worker, archive, day, plan.pop(day), fields, settings)
                except BrokenProcessPool as exc:  # a worker died: the rest fail; a rerun resumes
                    finish({"day": day.isoformat(), "skipped": False, **_error(exc)})
                    continue
                inflight.append((day, future))
            if not inflight:
                return
            day, future = inflight.pop(0)
            try:
                result = future.result()
                if isinstance(result, dict):
                    log.error("backfill %s failed: %s", day, result.get("message"))
                    finish({"day": day.isoformat(), "skipped": False, **result})
                    continue
                data, outcomes = result
                finish(land_day(target, PreparedDay(day, archive, read_stories(data), outcomes)))
            except Exception as exc:  # a dead worker or a landing failure: this day fails, the rest goes on
                log.error("backfill %s failed: %s", day, exc)
                finish({"day": day.isoformat(), "skipped": False, **_error(exc)})


def _totals(results: list[dict[str, Any]], days: list[date]) -> dict[str, Any]:
    ordered = sorted(results, key=lambda r: str(r["day"]))
    landed = [r for r in ordered if not r.get("skipped") and "error" not in r]
    stories = {k: sum(r["stories"][k] for r in landed) for k in ("input", "new", "duplicate", "updated")}
    return {
        "days": len(days),
        "landed": len(landed),
        "skipped": sum(1 for r in ordered if r.get("skipped")),
        "failed": [r["day"] for r in ordered if "error" in r],
        "inputs": sum(r["inputs"] for r in landed),
        "failed_inputs": sum(r["failed_inputs"] for r in landed),
        "rejected": sum(r["rejected"] for r in landed),
        "stories": stories,
        "results": ordered,
    }
