"""Backfill: turn archive days into landed intervals (job "backfill"), one manifest per UTC day.

Exactly-once across days: `landing.land` dedupes only against manifests that already exist, so two days must
never land at the same time. `run_backfill` therefore parses in parallel worker processes (the costly part),
by chunks of a day's files rather than whole days (so two workers share even a one-day backfill), and lands
days one at a time, in date order, in the parent once all of a day's chunks are back; a story found in
several days' archives lands with the first of those days and counts as a duplicate in the others. Workers
build their tables a few thousand stories at a time, write each chunk's table as an Arrow IPC file into the
run's spool directory (a private temporary directory, removed when the run ends) and hand back its path: the
parent maps the file and unlinks it at once, so no story is pickled, copied or decompressed on the way and
nothing is left behind even when the parent dies. Workers fork from a server process that imported the
pipeline and built the default tagger once (pipeline.jobs.tagger_preload).
`backfill_day` (the Airflow task) does both steps for one day, so the DAG must not land two days at once
(max_active_runs=1 or a one-slot pool).

A day is done only for the archive content it saw (pipeline.jobs.fingerprints): its manifest records the
day's listing; a rerun skips the day when the listing is unchanged and otherwise reads only the new or changed
inputs (what the day landed before is kept). `force` re-reads every input. Two outcomes write nothing: a day
with no input in the archive (`empty`, so data added later is not blocked), and a day whose every input was
rejected (BadInputError `all_rejected`: the run fails, and a corrected rerun, e.g. with the right layout,
lands the day).
"""

from __future__ import annotations

import itertools
import logging
import os
import tempfile
import time
import traceback
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, TextIO

import pyarrow as pa

from pipeline.config import Settings
from pipeline.errors import BadInputError, FatalError, WirefeedError
from pipeline.jobs.fingerprints import DayPlan, listing_of, plan_days
from pipeline.jobs.intervals import Interval, day_range
from pipeline.jobs.progress import Progress
from pipeline.jobs.workers import gc_paused, retain_freed_heap, worker_context
from pipeline.lake.keyindex import IndexSession
from pipeline.lake.landing import COUNT_KEYS, Manifest, land, manifest_key, read_manifest
from pipeline.lake.parquet import to_table
from pipeline.lake.store import Lake, NotFoundError, open_lake
from pipeline.parsing.budget import parse_budget
from pipeline.parsing.stories import (
    StoryTagger,
    load_default_tagger,
    stories_from_bytes,
    stories_from_entries,
)
from pipeline.redact import redact_text, redact_url
from pipeline.schema import Story
from pipeline.sources.archive import (
    ArchiveItem,
    JsonlRecords,
    Planned,
    iter_archive_day,
    load_mapping,
    no_entries,
)

log = logging.getLogger(__name__)

JOB = "backfill"
MAX_PROBLEMS = 20  # per input, in the manifest
MAX_ERRORS = 50  # failed inputs listed in a day's summary
STORY_BATCH = 2000  # stories turned into an Arrow table at a time; JSON Lines records under one budget
RECORD_SLICE = 128  # JSON Lines records read, normalized and tagged together
CHUNKS_PER_WORKER = 4  # work units per worker over a run (so workers finish together)
MAX_CHUNK_INPUTS = 64  # inputs in one unit at most (bounds a worker's memory and the parent's wait)


@dataclass
class PreparedDay:
    """A day read and parsed, ready to land: a story table plus one FeedOutcome-shaped dict per input read;
    `carried`: outcomes of unchanged inputs from the day's earlier manifest; `listing`: what the day saw."""

    day: date
    archive: str = ""
    table: pa.Table = field(default_factory=lambda: to_table([]))
    outcomes: list[dict[str, Any]] = field(default_factory=list)
    carried: list[dict[str, Any]] = field(default_factory=list)
    listing: dict[str, Any] | None = None


class _TableBuilder:
    """Stories -> one Arrow table, converted STORY_BATCH at a time so few story dicts are alive at once."""

    def __init__(self) -> None:
        self.tables: list[pa.Table] = []
        self.pending: list[Story] = []

    def add(self, stories: list[Story]) -> None:
        self.pending.extend(stories)
        if len(self.pending) >= STORY_BATCH:
            self.flush()

    def flush(self) -> None:
        if self.pending:
            self.tables.append(to_table(self.pending))
            self.pending = []

    def table(self) -> pa.Table:
        self.flush()
        return pa.concat_tables(self.tables) if self.tables else to_table([])


def day_manifest_key(day: date) -> str:
    return manifest_key(JOB, Interval.for_date(day, JOB).label)


def day_manifest(lake: Lake, day: date) -> Manifest | None:
    """The day's manifest; None when there is none or it is unreadable (the day is then read again)."""
    try:
        return read_manifest(lake, day_manifest_key(day))
    except NotFoundError:
        return None
    except FatalError as exc:
        log.warning("backfill %s: unreadable manifest, reading the day again: %s", day, exc.message)
        return None


@dataclass
class DayWork:
    """What a run does with one day: `summary` when nothing is to be read (unchanged or empty), else the
    inputs `to_read`, plus what the landing needs besides their stories (listing, carried outcomes)."""

    day: date
    archive: str
    summary: dict[str, Any] | None = None
    to_read: list[Planned] = field(default_factory=list)
    carried: list[dict[str, Any]] = field(default_factory=list)
    listing: dict[str, Any] | None = None

    def completed(self, table: pa.Table, outcomes: list[dict[str, Any]]) -> PreparedDay:
        return PreparedDay(self.day, self.archive, table, outcomes, self.carried, self.listing)


def plan_work(plan: DayPlan, previous: Manifest | None, *, force: bool = False) -> DayWork:
    """Decide a day from its plan and its earlier manifest (see the module doc)."""
    to_read = plan.to_read(listing_of(previous), force=force)
    if to_read is None:
        return DayWork(plan.day, plan.archive, skipped_summary(plan.day, "unchanged"))
    if not plan.planned and previous is None:
        return DayWork(plan.day, plan.archive, skipped_summary(plan.day, "empty"))
    fresh = {p.key for p in to_read}
    current = {p.key for p in plan.planned}
    carried = [
        dict(o)
        for o in (previous.feeds if previous is not None and not force else [])
        if o.get("feed_id") in current and o.get("feed_id") not in fresh
    ]
    return DayWork(plan.day, plan.archive, to_read=to_read, carried=carried, listing=plan.listing)


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
    builder = _TableBuilder()
    items = iter_archive_day(
        archive_uri, day, layout, mapping, settings=settings, planned=planned, stream=True
    )
    # each input (a JSON Lines file: all its records) is freed inside, before the collector resumes
    with gc_paused():
        outcomes = [_item_stories(item, tagger, builder, settings.parse_budget) for item in items]
        table = builder.table()
    return PreparedDay(day, archive_uri, table, outcomes)


def land_day(lake: Lake, prepared: PreparedDay, session: IndexSession | None = None) -> dict[str, Any]:
    """Land a prepared day (exactly once against every other manifest) and summarize it. BadInputError
    `all_rejected`, with nothing written, when the day has inputs and every one of them was rejected.
    `session`: the key index of a run's landings (see keyindex.IndexSession)."""
    _check_not_all_rejected(prepared)
    interval = Interval.for_date(prepared.day, JOB)
    info: dict[str, Any] = {"archive": prepared.archive}
    if prepared.listing is not None:
        info["listing"] = prepared.listing
    feeds = sorted([*prepared.carried, *prepared.outcomes], key=lambda o: str(o["feed_id"]))
    manifest = land(lake, interval, prepared.table, feeds=feeds, source_info=info, session=session)
    return _summary(prepared, manifest)


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
    """Backfill one UTC day; a JSON-able summary. Skips the day when its listing is unchanged (or empty and
    never landed), else reads what is new or changed (everything with `force`) and lands the day."""
    the_day = Interval.for_date(day, JOB).start.date()
    settings = settings or Settings.load()
    fields = load_mapping(mapping)
    plan = plan_days(archive_uri, [the_day], layout, settings=settings)[the_day]
    lake = open_lake(lake_uri, settings)
    work = plan_work(plan, day_manifest(lake, the_day), force=force)
    if work.summary is not None:
        log.info("backfill %s: %s, nothing to read", the_day, work.summary["reason"])
        return work.summary
    lake.ensure_bucket()
    started = time.monotonic()
    prepared = prepare_day(archive_uri, the_day, mapping=fields, settings=settings, planned=work.to_read)
    parsed = time.monotonic()
    summary = land_day(lake, work.completed(prepared.table, prepared.outcomes))
    # where the day's time went: reading + parsing the inputs, landing (one at a time across the deployment)
    landed = time.monotonic() - parsed
    summary["seconds"] = {"read_parse": round(parsed - started, 3), "land": round(landed, 3)}
    return summary


def skipped_summary(day: date, reason: str) -> dict[str, Any]:
    """A day that read nothing: `unchanged` (its listing is the one its manifest names) or `empty` (no
    input in the archive and no manifest: nothing is written, so data added later lands)."""
    manifest = day_manifest_key(day) if reason == "unchanged" else None
    return {"day": day.isoformat(), "skipped": True, "reason": reason, "landed": False, "manifest": manifest}


def _check_not_all_rejected(prepared: PreparedDay) -> None:
    outcomes = [*prepared.carried, *prepared.outcomes]
    rejected = [o for o in outcomes if o["status"] == "failed" or int(o.get("rejected") or 0)]
    if prepared.table.num_rows or not rejected or any(int(o.get("stories") or 0) for o in outcomes):
        return
    errors = [{"input": o["url"], "reason": _rejection(o)} for o in rejected[:MAX_ERRORS]]
    raise BadInputError(
        "all_rejected",
        f"{prepared.day}: every input was rejected ({len(outcomes)} inputs), nothing landed; first: "
        f"{errors[0]['input']}: {errors[0]['reason']}. Fix the input or the layout/mapping and rerun the day",
        day=prepared.day.isoformat(),
        errors=errors,
    )


def _rejection(outcome: Mapping[str, Any]) -> str:
    problems = list(outcome.get("problems") or [])
    records = f"{outcome.get('rejected')} records rejected" + (f" ({problems[0]}, ...)" if problems else "")
    return str(outcome.get("reason") or records)


def _item_stories(
    item: ArchiveItem, tagger: StoryTagger, builder: _TableBuilder, budget: float | None = None
) -> dict[str, Any]:
    """Parse one input into `builder` within the parse budget (a JSON Lines file: each slice of records
    within it, so a big export is not one input's worth of time); its FeedOutcome-shaped summary."""
    outcome: dict[str, Any] = {
        "feed_id": item.key,
        "url": redact_url(item.origin),  # (a file's name may hold a credential)
        "status": "ok",
        "reason": None,
        "http_status": None,
        "raw_key": item.key if item.layout == "raw" else None,
        "staged_uri": None,
        "stories": 0,
        "rejected": item.rejected,
        "problems": list(item.problems),
    }
    count = 0
    try:
        if item.error is not None:
            raise item.error
        if item.data is not None:
            with parse_budget(budget, item.origin):
                batch = stories_from_bytes(
                    item.data,
                    item.origin,
                    fetched_at=item.fetched_at,
                    source=item.source,
                    feed_url=item.feed_url,
                    content_type=item.content_type,
                    tagger=tagger,
                    for_table=True,
                )
            builder.add(batch.stories)
            count += len(batch.stories)
            outcome["problems"] += batch.problems
            outcome["rejected"] += batch.rejected_entries
        if item.records is not None:
            count += _record_stories(item, item.records, tagger, builder, budget, outcome)
        for start in range(0, len(item.entries), STORY_BATCH):  # mapped JSON Lines records, in slices
            entries = item.entries[start : start + STORY_BATCH]
            try:
                with parse_budget(budget, item.origin):
                    batch = stories_from_entries(
                        entries, item.origin, fetched_at=item.fetched_at, tagger=tagger, for_table=True
                    )
            except BadInputError as exc:  # too_slow: these records are rejected, the file's others go on
                outcome["rejected"] += len(entries)
                outcome["problems"].append(
                    f"entries {start}-{start + len(entries) - 1}: {exc.kind}: {exc.message}"
                )
                continue
            builder.add(batch.stories)
            count += len(batch.stories)
            outcome["problems"] += [_offset(p, start) for p in batch.problems]
            outcome["rejected"] += batch.rejected_entries
    except BadInputError as exc:
        outcome.update(status="failed", reason=redact_text(f"{exc.kind}: {exc.message}"))  # (names a file)
        log.warning("backfill input %s unusable: %s: %s", item.origin, exc.kind, exc.message)
    outcome["stories"] = count
    if len(outcome["problems"]) > MAX_PROBLEMS:
        more = len(outcome["problems"]) - MAX_PROBLEMS
        outcome["problems"] = [*outcome["problems"][:MAX_PROBLEMS], f"... and {more} more"]
    return outcome


def _record_stories(
    item: ArchiveItem,
    records: JsonlRecords,
    tagger: StoryTagger,
    builder: _TableBuilder,
    budget: float | None,
    outcome: dict[str, Any],
) -> int:
    """A JSON Lines input read as it goes (JsonlRecords) into `builder`: STORY_BATCH lines under one parse
    budget, RECORD_SLICE records at a time decoded, normalized and tagged (their text still in the cache);
    a batch past its budget is rejected as a whole ("lines a-b: too_slow"), the file's others go on. Its
    problems follow the general reading's order: the lines' own, then the entries'. Returns the stories."""
    problems: list[str] = []
    rejected = count = 0
    fetched_at, lines = item.fetched_at, records.lines()
    while batch := list(itertools.islice(lines, STORY_BATCH)):
        mark = (len(records.problems), records.rejected, records.entries_read)
        stories: list[Story] = []
        found: list[str] = []
        dropped = 0
        try:
            with parse_budget(budget, item.origin):
                for i in range(0, len(batch), RECORD_SLICE):
                    entries = records.read(batch[i : i + RECORD_SLICE])
                    done = stories_from_entries(
                        entries, item.origin, fetched_at=fetched_at, tagger=tagger, for_table=True
                    )
                    stories += done.stories
                    found += [_offset(p, records.entries_read - len(entries)) for p in done.problems]
                    dropped += done.rejected_entries
        except BadInputError as exc:  # too_slow: what the batch's lines gave is dropped with them
            del records.problems[mark[0] :]
            records.rejected, records.entries_read = mark[1], mark[2]
            rejected += len(batch)
            problems.append(f"lines {batch[0][0]}-{batch[-1][0]}: {exc.kind}: {exc.message}")
            continue
        builder.add(stories)
        count += len(stories)
        problems += found
        rejected += dropped
    if not (records.entries_read or records.rejected or rejected):
        raise no_entries(item.key)
    outcome["problems"] += [*records.problems, *problems]
    outcome["rejected"] += records.rejected + rejected
    return count


def _offset(problem: str, start: int) -> str:
    """stories_from_entries numbers entries from 0 in each slice: renumber "entry i: ..." in the item."""
    head, sep, rest = problem.partition(": ")
    if start and head.startswith("entry ") and head[6:].isdigit():
        return f"entry {int(head[6:]) + start}{sep}{rest}"
    return problem


def _summary(prepared: PreparedDay, manifest: Manifest) -> dict[str, Any]:
    """`inputs` etc. count the inputs this run read (`carried`: unchanged ones it did not read again)."""
    failed = [o for o in prepared.outcomes if o["status"] == "failed"]
    return {
        "day": prepared.day.isoformat(),
        "skipped": False,
        "landed": True,
        "inputs": len(prepared.outcomes),
        "carried": len(prepared.carried),
        "failed_inputs": len(failed),
        "rejected": sum(int(o["rejected"]) for o in prepared.outcomes),
        "stories": {k: int(manifest.counts.get(k, 0)) for k in COUNT_KEYS},
        "rows": manifest.rows,
        "manifest": manifest.key,
        "errors": [{"input": o["url"], "reason": o["reason"]} for o in failed[:MAX_ERRORS]],
    }


# --- the parallel runner --------------------------------------------------------------------------------

# A worker's answer: (path of the chunk's Arrow IPC file in the spool directory, outcomes), or an error dict.
_ChunkResult = tuple[str, list[dict[str, Any]]] | dict[str, Any]


def _prepare_in_worker(
    archive_uri: str,
    day: date,
    planned: list[Planned],
    mapping: dict[str, str],
    settings: Settings,
    spool: str,
) -> _ChunkResult:
    """Worker process entry point: one chunk of a day's inputs -> an Arrow IPC file in `spool` + outcomes, or
    an error dict (exceptions stay here: ours do not all survive pickling)."""
    path = os.path.join(spool, f"{day.isoformat()}-{uuid.uuid4().hex}.arrow")
    try:
        prepared = prepare_day(archive_uri, day, mapping=mapping, settings=settings, planned=planned)
        _write_ipc(prepared.table, path)
        return path, prepared.outcomes
    except Exception as exc:
        log.debug("backfill %s failed in worker: %s", day, traceback.format_exc())
        _unlink(path)
        return _error(exc)


def _write_ipc(table: pa.Table, path: str) -> None:
    """Uncompressed: the parent maps the file and reads it without a copy."""
    with pa.OSFile(path, "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)


def _read_ipc(path: str) -> pa.Table:
    """The chunk's table, its buffers in a read-only map of the file (Arrow's memory, never Python's: see
    parquet.arrow_reader); the file is unlinked at once (the map stays valid until the table is freed)."""
    try:
        return pa.ipc.open_file(pa.memory_map(path)).read_all()
    finally:
        _unlink(path)


def _unlink(path: str) -> None:
    Path(path).unlink(missing_ok=True)


def _error(exc: BaseException) -> dict[str, Any]:
    if isinstance(exc, WirefeedError):
        errors = exc.fields.get("errors")
        listed = errors if isinstance(errors, list) else []
        return {"error": exc.kind, "message": exc.message, "errors": listed}
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
    retain_freed_heap()  # each day's table and Parquet bytes are freed before the next day's: reuse them
    fields = load_mapping(mapping)  # a bad mapping or archive URI fails here, before any work
    days = day_range(date_from, date_to)
    target = open_lake(lake, settings)
    target.ensure_bucket()
    plans = plan_days(archive, days, layout, settings=settings)  # one listing for all days
    results: list[dict[str, Any]] = []
    with (
        Progress(len(days), "backfill", stream=progress_stream) as progress,
        IndexSession(target) as session,  # the days' landings share the key index, written once
    ):

        def finish(summary: dict[str, Any]) -> None:
            results.append(summary)
            note = summary["day"] + (f" {summary['reason']}" if summary.get("skipped") else "")
            progress.update(note=note + (" FAILED" if "error" in summary else ""))

        todo: dict[date, DayWork] = {}
        for day in days:
            work = plan_work(plans[day], day_manifest(target, day), force=force)
            if work.summary is not None:
                finish(work.summary)
            else:
                todo[day] = work
        if workers <= 1:
            for work in todo.values():
                finish(_run_inline(archive, work, target, fields, settings, session))
        else:
            _run_parallel(archive, todo, target, fields, settings, workers, finish, session)
    return _totals(results, days)


def _run_inline(
    archive: str,
    work: DayWork,
    target: Lake,
    fields: dict[str, str],
    settings: Settings,
    session: IndexSession,
) -> dict[str, Any]:
    try:
        prepared = prepare_day(archive, work.day, mapping=fields, settings=settings, planned=work.to_read)
        return land_day(target, work.completed(prepared.table, prepared.outcomes), session)
    except Exception as exc:
        log.error("backfill %s failed: %s", work.day, exc)
        return {"day": work.day.isoformat(), "skipped": False, **_error(exc)}


def plan_chunks(plan: Mapping[date, list[Planned]], workers: int) -> list[tuple[date, list[Planned]]]:
    """Each day's inputs in date order, cut into chunks: about CHUNKS_PER_WORKER chunks per worker over
    the whole run, never more inputs than MAX_CHUNK_INPUTS in one, never two days in one."""
    total = sum(len(p) for p in plan.values())
    size = max(1, min(MAX_CHUNK_INPUTS, -(-total // (workers * CHUNKS_PER_WORKER))))
    chunks: list[tuple[date, list[Planned]]] = []
    for day in sorted(plan):
        inputs = plan[day]
        chunks += [(day, inputs[i : i + size]) for i in range(0, len(inputs), size)] or [(day, [])]
    return chunks


def _run_parallel(
    archive: str,
    todo: dict[date, DayWork],
    target: Lake,
    fields: dict[str, str],
    settings: Settings,
    workers: int,
    finish: Callable[[dict[str, Any]], None],
    session: IndexSession,
) -> None:
    """Chunks of days' inputs run in `workers` processes (at most 2 x workers in flight); a day lands in the
    parent once all its chunks are back and every earlier day has landed."""
    chunks = plan_chunks({day: work.to_read for day, work in todo.items()}, workers)
    expected = Counter(day for day, _ in chunks)
    pending = iter(chunks)
    inflight: list[tuple[date, Future[_ChunkResult]]] = []
    done: dict[date, list[_ChunkResult]] = {}
    with (
        tempfile.TemporaryDirectory(prefix="wirefeed-backfill-") as spool,
        ProcessPoolExecutor(
            max_workers=workers,
            mp_context=worker_context(__name__, "pipeline.jobs.tagger_preload"),
            initializer=retain_freed_heap,
        ) as pool,
    ):
        while True:
            while len(inflight) < 2 * workers and (chunk := next(pending, None)) is not None:
                day, inputs = chunk
                try:
                    future = pool.submit(_prepare_in_worker, archive, day, inputs, fields, settings, spool)
                except BrokenProcessPool as exc:  # a worker died: the rest fail; a rerun resumes
                    future = Future()
                    future.set_result(_error(exc))
                inflight.append((day, future))
            if not inflight:
                return
            day, future = inflight.pop(0)
            try:
                result: _ChunkResult = future.result()
            except Exception as exc:  # a dead worker: this chunk's day fails, the rest goes on
                result = _error(exc)
            done.setdefault(day, []).append(result)
            if len(done[day]) == expected[day]:
                finish(_land_chunks(target, todo.pop(day), done.pop(day), session))


def _land_chunks(
    target: Lake, work: DayWork, results: list[_ChunkResult], session: IndexSession
) -> dict[str, Any]:
    day = work.day
    parts = [r for r in results if not isinstance(r, dict)]
    failed = next((r for r in results if isinstance(r, dict)), None)
    if failed is not None:
        for path, _ in parts:
            _unlink(path)
        log.error("backfill %s failed: %s", day, failed.get("message"))
        return {"day": day.isoformat(), "skipped": False, **failed}
    try:
        tables = [_read_ipc(path) for path, _ in parts]
        outcomes = [o for _, day_outcomes in parts for o in day_outcomes]
        return land_day(target, work.completed(pa.concat_tables(tables), outcomes), session)
    except Exception as exc:  # a landing failure: this day fails, the rest goes on
        log.error("backfill %s failed: %s", day, exc)
        return {"day": day.isoformat(), "skipped": False, **_error(exc)}


def _totals(results: list[dict[str, Any]], days: list[date]) -> dict[str, Any]:
    ordered = sorted(results, key=lambda r: str(r["day"]))
    landed = [r for r in ordered if not r.get("skipped") and "error" not in r]
    # input = new + updated + duplicate + batch_duplicate (kept: an earlier attempt's rows, not input)
    stories = {k: sum(r["stories"][k] for r in landed) for k in COUNT_KEYS}
    return {
        "days": len(days),
        "landed": len(landed),
        "skipped": sum(1 for r in ordered if r.get("skipped")),
        "empty": sum(1 for r in ordered if r.get("reason") == "empty"),
        "failed": [r["day"] for r in ordered if "error" in r],
        "inputs": sum(r["inputs"] for r in landed),
        "failed_inputs": sum(r["failed_inputs"] for r in landed),
        "rejected": sum(r["rejected"] for r in landed),
        "stories": stories,
        "results": ordered,
    }
