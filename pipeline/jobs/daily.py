"""The daily run: fetch and parse every feed, then land them all as one interval.

`fetch_feed_to_stage` (one mapped Airflow task per feed) never raises for a feed's own failure: it records it
in the returned FeedOutcome and in the feed's state. It has two halves: `fetch_feed_body` (I/O: state,
fetch, raw zone; safe in any thread) and `stage_feed` (parse + tag under the parse budget, stage the batch in
the lake for the landing task). `run_daily` (`wirefeed run`) fetches concurrently in threads and parses each
fetched body in the main thread of its process (the run's own, or a worker's), where the budget's CPU timer
works (`parse_feed`: the same as stage_feed, but the batch comes back as an Arrow table instead of a staged
object: one process lands them all, so nothing is written to `_staging/` and read back); it lands the good
feeds, and only then fails (RunFailed) when the share of failed feeds exceeds Settings.max_failed_share.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import pyarrow as pa

from pipeline.config import Settings
from pipeline.errors import BadInputError, FatalError, RetriableError, WirefeedError
from pipeline.jobs.intervals import Interval
from pipeline.jobs.landed import LandedBodies, mark_landed
from pipeline.jobs.workers import worker_context
from pipeline.lake.landing import (
    PARQUET_TYPE,
    Manifest,
    land_staged,
    land_tables,
    manifest_key,
    read_manifest_if_exists,
)
from pipeline.lake.parquet import parquet_bytes, to_table
from pipeline.lake.staging import staging_key
from pipeline.lake.store import Lake, open_lake
from pipeline.parsing.budget import parse_budget
from pipeline.redact import redact_text, redact_url
from pipeline.sources.feeds import FeedSpec
from pipeline.sources.fetch import fetch
from pipeline.sources.raw import load_raw, store_raw
from pipeline.sources.state import (
    FeedState,
    load_state,
    record_failure,
    record_skipped,
    record_success,
    save_state,
)

if TYPE_CHECKING:
    from pipeline.parsing.stories import StoryTagger

log = logging.getLogger(__name__)

MAX_PROCESSES = 4  # parse processes of one run (one per core, at most this many)
MIN_FEEDS_PER_PROCESS = 8  # fewer feeds than this per process: threads in this process only
FAILING_STATUSES = ("failed", "skipped")
MAX_PROBLEMS = 20

FeedOutcome = dict[str, Any]


class RunFailed(FatalError):
    """Too many feeds failed; the good ones were landed first. fields["summary"] holds summary(manifest)."""

    kind = "run_failed"

    def __init__(self, message: str, manifest: Manifest, **fields: object) -> None:
        super().__init__(message, **fields)
        self.manifest = manifest


@dataclass(frozen=True)
class _Body:
    data: bytes
    status: int
    fetched_at: datetime
    final_url: str
    content_type: str | None
    etag: str | None = None
    last_modified: str | None = None
    not_modified: bool = False


@dataclass
class Fetched:
    """What the I/O half of one feed's ingestion hands to the parsing half."""

    spec: FeedSpec
    state: FeedState
    outcome: FeedOutcome
    started: datetime
    body: _Body | None = None  # None: the outcome is final (skipped, failed, already landed, 304 w/o body)


def fetch_feed_to_stage(
    feed: FeedSpec | Mapping[str, Any],
    lake: Lake,
    interval: Interval,
    settings: Settings,
    *,
    tagger: StoryTagger | None = None,
) -> FeedOutcome:
    """Fetch one feed, keep the body in raw, update its state, parse + tag, stage the stories as Parquet.
    A 304 replays the last raw body, so a rerun of the interval stages the same stories. Parses in the
    calling thread: call it from a main thread (an Airflow task, a worker process) for the CPU budget."""
    fetched = fetch_feed_body(feed, lake, settings)
    return stage_feed(fetched, lake, interval, settings, tagger=tagger)


def fetch_feed_body(
    feed: FeedSpec | Mapping[str, Any], lake: Lake, settings: Settings, *, landed: LandedBodies | None = None
) -> Fetched:
    """The I/O half: state and backoff, fetch (or read the local file), raw zone. A failure is recorded in
    the outcome and the state, not raised. `landed`: shared by the feeds of one run (reads each manifest
    that proves bodies landed once)."""
    spec = feed if isinstance(feed, FeedSpec) else FeedSpec(**feed)
    outcome: FeedOutcome = {
        "feed_id": spec.id,
        "url": spec.url if spec.local else redact_url(spec.url),
        "status": "failed",
        "reason": None,
        "http_status": None,
        "raw_key": None,
        "staged_uri": None,
        "stories": 0,
        "rejected": 0,
        "problems": [],
        "landed_in": None,
    }
    state = load_state(lake, spec.id, spec.url)
    fetched = Fetched(spec, state, outcome, datetime.now(UTC))
    if state.in_backoff(fetched.started):
        outcome["status"] = "skipped"
        outcome["reason"] = (
            f"backoff until {state.next_retry_at} after {state.consecutive_failures} failures"
            f" (last: {state.last_error})"
        )
        save_state(lake, record_skipped(state))
        log.info("feed %s skipped: %s", spec.id, outcome["reason"])
        return fetched
    with _recorded(fetched, lake):
        fetched.body = _get_body(spec, lake, settings, state, outcome, landed or LandedBodies(lake))
    return fetched


def stage_feed(
    fetched: Fetched,
    lake: Lake,
    interval: Interval,
    settings: Settings,
    *,
    tagger: StoryTagger | None = None,
) -> FeedOutcome:
    """The parsing half: parse + tag the fetched body within Settings.parse_budget, stage the stories, record
    success in the state. A failure (too_slow included) is recorded in the outcome and the state."""
    _parse_body(fetched, lake, interval, settings, tagger, stage=True)
    return fetched.outcome


def parse_feed(
    fetched: Fetched,
    lake: Lake,
    interval: Interval,
    settings: Settings,
    *,
    tagger: StoryTagger | None = None,
) -> tuple[FeedOutcome, pa.Table | None]:
    """stage_feed for a caller that lands the batch itself (run_daily): the outcome and the stories as an
    Arrow table (None when there are none or the feed failed), nothing staged. The outcome's `landed_in`
    names the interval's manifest, which will list the body as landed (pipeline.jobs.landed)."""
    return fetched.outcome, _parse_body(fetched, lake, interval, settings, tagger, stage=False)


def _parse_body(
    fetched: Fetched,
    lake: Lake,
    interval: Interval,
    settings: Settings,
    tagger: StoryTagger | None,
    *,
    stage: bool,
) -> pa.Table | None:
    table = None
    if fetched.body is not None:
        # imported here: a run that parses nothing imports no parser
        from pipeline.parsing.stories import load_default_tagger

        tagger = tagger or load_default_tagger()
        with _recorded(fetched, lake):
            table = _stage(fetched, fetched.body, lake, interval, settings, tagger, stage=stage)
    return table


@contextlib.contextmanager
def _recorded(fetched: Fetched, lake: Lake) -> Iterator[None]:
    """A feed's own failure becomes its outcome (and state), never an exception for the run."""
    try:
        yield
    except WirefeedError as exc:
        fetched.body = None
        _fail(fetched.spec, lake, fetched.state, fetched.outcome, exc, fetched.started)
    except Exception as exc:  # a bug on one feed's input must not stop the other feeds
        log.exception("feed %s: unexpected error", fetched.spec.id)
        fetched.body = None
        error = FatalError(f"internal error: {exc!r}"[:500])
        _fail(fetched.spec, lake, fetched.state, fetched.outcome, error, fetched.started)


def _get_body(
    spec: FeedSpec,
    lake: Lake,
    settings: Settings,
    state: FeedState,
    outcome: FeedOutcome,
    landed: LandedBodies,
) -> _Body | None:
    """The body to parse, or None when there is nothing to parse (the outcome is then final)."""
    got = _read_local(spec, settings) if spec.local else _fetch(spec, state, settings)
    outcome["http_status"] = got.status
    if not got.not_modified:
        outcome["raw_key"] = raw_key = store_raw(lake, got.data, _raw_meta(spec, got), last_key=state.raw_key)
        if raw_key == state.raw_key and (landed_in := landed.landed_in(state)) is not None:  # it landed
            outcome["status"] = "ok"
            _already_landed(spec, lake, state, outcome, got, landed_in)
            return None
        return got
    outcome["status"] = "not_modified"
    if (landed_in := landed.landed_in(state)) is not None:
        _already_landed(spec, lake, state, outcome, got, landed_in)
        return None
    if state.raw_key is None or not lake.exists(state.raw_key):
        # a 304 with no body of ours to re-read (an answer to no validators of ours, or a raw body deleted):
        # nothing is known of the feed's stories. Failed, and the validators go: the next attempt fetches it
        state.etag = state.last_modified = None
        raise RetriableError(
            f"HTTP 304 from {redact_url(spec.url)} but no stored body to re-read (the next attempt fetches"
            " it whole)",
            status=got.status,
        )
    data, meta = load_raw(lake, state.raw_key)
    outcome["raw_key"] = state.raw_key
    return _Body(
        data,
        got.status,
        datetime.fromisoformat(meta["fetched_at"]),
        meta["final_url"],
        meta.get("content_type"),
        got.etag,
        got.last_modified,
        not_modified=True,
    )


def _stage(
    fetched: Fetched,
    got: _Body,
    lake: Lake,
    interval: Interval,
    settings: Settings,
    tagger: StoryTagger,
    *,
    stage: bool,
) -> pa.Table | None:
    from pipeline.parsing.stories import stories_from_bytes

    spec, state, outcome = fetched.spec, fetched.state, fetched.outcome
    origin = got.final_url if spec.local else redact_url(got.final_url)
    with parse_budget(settings.parse_budget, origin):
        batch = stories_from_bytes(
            got.data,
            origin,
            fetched_at=got.fetched_at,
            source=spec.source,
            feed_url=redact_url(spec.url) if not spec.local else None,
            content_type=got.content_type,
            tagger=tagger,
            for_table=True,
        )
    for story in batch.stories:
        if story.get("language") is None and spec.language:
            story["language"] = spec.language
    outcome.update(stories=len(batch.stories), rejected=batch.rejected_entries)
    outcome["problems"] = batch.problems[:MAX_PROBLEMS]
    landed_in = table = None
    if batch.stories:
        table = to_table(batch.stories)
        landed_in = manifest_key(interval.job, interval.label)  # once this interval's manifest is written
        if stage:
            key = staging_key(interval, spec.id)
            lake.put(key, parquet_bytes(table), PARQUET_TYPE)
            outcome["staged_uri"] = lake.uri(key)
        else:  # the caller lands the table with this interval's other batches
            outcome["landed_in"] = landed_in
    if not got.not_modified:
        outcome["status"] = "ok"
    _remember(lake, state, outcome, got, landed_in=landed_in)
    log.info(
        "feed %s %s: %d stories %s, %d rejected",
        spec.id,
        outcome["status"],
        len(batch.stories),
        "staged" if stage else "parsed",
        batch.rejected_entries,
    )
    return table


def _already_landed(
    spec: FeedSpec, lake: Lake, state: FeedState, outcome: FeedOutcome, got: _Body, landed_in: str
) -> None:
    """The body's stories are in the lake already (`landed_in`: the manifest that holds them, see
    pipeline.jobs.landed): nothing to parse or stage (a rerun of an interval keeps what its earlier attempt
    landed)."""
    outcome["raw_key"] = state.raw_key
    outcome["landed_in"] = named = landed_in or None  # None for UNNAMED: a marker that names no manifest
    outcome["problems"] = ["body unchanged since its stories landed: not parsed again"]
    _remember(lake, state, outcome, got, landed_in=named)
    log.info("feed %s %s: body already landed, not parsed", spec.id, outcome["status"])


def _remember(
    lake: Lake, state: FeedState, outcome: FeedOutcome, got: _Body, *, landed_in: str | None
) -> None:
    """The feed's state after a good fetch (validators for the next conditional GET, its raw body and the
    manifest of the interval that staged its stories: see pipeline.jobs.landed)."""
    record_success(
        state,
        status=outcome["status"],
        http_status=got.status,
        fetched_at=datetime.now(UTC) if got.not_modified else got.fetched_at,
        etag=got.etag,
        last_modified=got.last_modified,
        raw_key=outcome["raw_key"],
    )
    state.landed_in = landed_in
    save_state(lake, state)


def _fetch(spec: FeedSpec, state: FeedState, settings: Settings) -> _Body:
    result = fetch(spec.url, etag=state.etag, last_modified=state.last_modified, settings=settings)
    return _Body(
        result.body,
        result.status,
        result.fetched_at,
        result.final_url,
        result.content_type,
        result.etag,
        result.last_modified,
        result.not_modified,
    )


def _read_local(spec: FeedSpec, settings: Settings) -> _Body:
    path = Path(spec.url)
    try:
        size = path.stat().st_size
        if size > settings.max_body_bytes:
            raise BadInputError("too_large", f"{path} exceeds {settings.max_body_bytes} bytes", size=size)
        data = path.read_bytes()
    except OSError as exc:
        raise BadInputError("unreadable", f"cannot read {path}: {exc.strerror}", path=str(path)) from None
    return _Body(data, 200, datetime.now(UTC), str(path), None)


def _raw_meta(spec: FeedSpec, got: _Body) -> dict[str, Any]:
    return {
        "status": got.status,
        "etag": got.etag,
        "last_modified": got.last_modified,
        "final_url": got.final_url if spec.local else redact_url(got.final_url),
        "feed_id": spec.id,
        "url": spec.url if spec.local else redact_url(spec.url),
        "fetched_at": got.fetched_at.isoformat(),
        "content_type": got.content_type,
    }


def _fail(
    spec: FeedSpec, lake: Lake, state: FeedState, outcome: FeedOutcome, exc: WirefeedError, now: datetime
) -> None:
    reason = redact_text(f"{exc.kind}: {exc.message}")
    status = exc.fields.get("status")
    outcome.update(status="failed", reason=reason, staged_uri=None, landed_in=None)
    if isinstance(status, int):
        outcome["http_status"] = status
    retry_after = exc.retry_after if isinstance(exc, RetriableError) else None
    record_failure(
        state, reason=reason, http_status=outcome["http_status"], fetched_at=now, retry_after=retry_after
    )
    try:
        save_state(lake, state)
    except WirefeedError as save_exc:
        log.error("feed %s: cannot save state: %s", spec.id, save_exc.message)
    log.warning("feed %s failed: %s", spec.id, reason)


# --- the whole run ---


@dataclass
class Parsed:
    """What fetch_all hands to the landing: every feed's outcome (in the order of the feeds) and the batches
    of stories parsed (Arrow tables of the story schema)."""

    outcomes: list[FeedOutcome]
    tables: list[pa.Table]


def fetch_all(
    feeds: Sequence[FeedSpec],
    lake: Lake,
    interval: Interval,
    settings: Settings,
    *,
    tagger: StoryTagger | None = None,
) -> Parsed:
    """fetch_feed_body + parse_feed for every feed, Settings.fetch_concurrency at a time and at most
    Settings.per_host_concurrency per host. Outcomes come back in the order of `feeds`.
    Fetches run in threads of this process. Parsing holds the GIL, so with the default tagger and enough
    feeds the bodies to parse go to worker processes (one per core), started by the first such body: a run
    whose feeds all answer 304 with bodies that landed already starts none."""
    processes = min(os.cpu_count() or 1, MAX_PROCESSES, settings.fetch_concurrency)
    if tagger is not None or processes < 2 or len(feeds) < MIN_FEEDS_PER_PROCESS * 2:
        return _fetch_in_threads(feeds, lake, interval, settings, tagger=tagger)
    with _ParsePool(processes, lake.uri(), interval, settings) as pool:
        return _fetch_in_threads(feeds, lake, interval, settings, pool=pool)


_ParseResult = tuple[FeedOutcome, pa.Table | None]


class _ParsePool:
    """Worker processes for parse_feed, started by the first submit; each opens the lake once."""

    def __init__(self, processes: int, lake_uri: str, interval: Interval, settings: Settings) -> None:
        self.processes = processes
        self._args = (lake_uri, interval, settings)
        self._executor: ProcessPoolExecutor | None = None

    def submit(self, fetched: Fetched) -> Future[_ParseResult]:
        if self._executor is None:
            self._executor = _parse_executor(self.processes, *self._args)
        return self._executor.submit(_parse_in_worker, fetched)

    def __enter__(self) -> _ParsePool:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._executor is not None:
            self._executor.shutdown(cancel_futures=True)


def _parse_executor(
    processes: int, lake_uri: str, interval: Interval, settings: Settings
) -> ProcessPoolExecutor:
    """Parse workers forked from a server process that imported this module and built the default tagger
    (pipeline.jobs.tagger_preload), so no worker builds its own before its first body."""
    return ProcessPoolExecutor(
        processes,
        mp_context=worker_context(__name__, "pipeline.jobs.tagger_preload"),
        initializer=_start_worker,
        initargs=(lake_uri, interval, settings),
    )


_worker: tuple[Lake, Interval, Settings] | None = None  # a parse worker's lake, interval and settings


def _start_worker(lake_uri: str, interval: Interval, settings: Settings) -> None:
    global _worker
    settings.arm_redaction()  # received pickled: Settings.load did not run in this process
    _worker = (open_lake(lake_uri, settings), interval, settings)


def _parse_in_worker(fetched: Fetched) -> _ParseResult:
    """Worker process: parse_feed (parse in its main thread, under the budget) with the default tagger; the
    table goes back to the run's process (Arrow IPC through the pipe)."""
    if _worker is None:
        raise FatalError("parse worker not started")
    lake, interval, settings = _worker
    return parse_feed(fetched, lake, interval, settings)


def _fetch_in_threads(
    feeds: Sequence[FeedSpec],
    lake: Lake,
    interval: Interval,
    settings: Settings,
    *,
    tagger: StoryTagger | None = None,
    pool: _ParsePool | None = None,
) -> Parsed:
    """Fetch in threads, Settings.fetch_concurrency at a time and at most Settings.per_host_concurrency per
    host; parse each body as soon as it arrives: in the `pool`'s processes, else in the calling (main) thread,
    so the parse budget's CPU timer works. At most twice fetch_concurrency fetched bodies wait in memory
    (those being fetched and those waiting for, or in, a parse worker). Outcomes in the order of `feeds`.
    The default tagger is loaded by the first body that needs parsing (a run of 304s loads none)."""
    hosts: dict[str, threading.Semaphore] = {}
    for spec in feeds:
        hosts.setdefault(_host(spec), threading.Semaphore(settings.per_host_concurrency))
    landed = LandedBodies(lake)

    def one(spec: FeedSpec) -> Fetched:
        with hosts[_host(spec)]:
            return fetch_feed_body(spec, lake, settings, landed=landed)

    results: dict[int, _ParseResult] = {}
    todo = iter(enumerate(feeds))
    fetching: dict[Future[Fetched], int] = {}
    parsing: dict[Future[_ParseResult], int] = {}
    with ThreadPoolExecutor(settings.fetch_concurrency, thread_name_prefix="fetch") as threads:
        while True:
            while (
                len(fetching) + len(parsing) < 2 * settings.fetch_concurrency
                and (item := next(todo, None)) is not None
            ):
                fetching[threads.submit(one, item[1])] = item[0]
            if not fetching and not parsing:
                break
            waiting: list[Future[Any]] = [*fetching, *parsing]
            done, _ = wait(waiting, return_when=FIRST_COMPLETED)
            for future in done:
                if future in parsing:
                    results[parsing.pop(future)] = future.result()
                    continue
                index = fetching.pop(future)
                fetched: Fetched = future.result()
                if pool is not None and fetched.body is not None:
                    parsing[pool.submit(fetched)] = index
                else:
                    results[index] = parse_feed(fetched, lake, interval, settings, tagger=tagger)
    ordered = [results[i] for i in range(len(feeds))]
    return Parsed([outcome for outcome, _ in ordered], [table for _, table in ordered if table is not None])


def _host(spec: FeedSpec) -> str:
    if spec.local:
        return "(local)"
    try:
        return (urlsplit(spec.url).hostname or "").lower()
    except ValueError:  # a malformed URL fails in its fetch, with its reason
        return ""


def run_daily(
    feeds: Sequence[FeedSpec],
    lake: Lake,
    interval: Interval,
    settings: Settings,
    *,
    tagger: StoryTagger | None = None,
) -> Manifest:
    """Fetch and parse all feeds, land their stories as one interval, then raise RunFailed if too many
    failed."""
    parsed = fetch_all(feeds, lake, interval, settings, tagger=tagger)
    manifest = land_parsed(lake, interval, parsed)
    check_failed_share(manifest, settings)
    return manifest


def land_parsed(lake: Lake, interval: Interval, parsed: Parsed) -> Manifest:
    """Land the parsed batches as one interval (every outcome recorded in the manifest), then remove batches
    an Airflow attempt of the interval may have staged and mark the bodies the replaced manifest (if any)
    proved landed and this one no longer does (pipeline.jobs.landed)."""
    replaced = read_manifest_if_exists(lake, manifest_key(interval.job, interval.label))
    manifest = land_tables(lake, interval, parsed.tables, parsed.outcomes)
    mark_landed(lake, manifest, replaced)
    return manifest


def land_outcomes(lake: Lake, interval: Interval, outcomes: Sequence[FeedOutcome]) -> Manifest:
    """Land the batches the outcomes staged as one interval (every outcome is recorded in the manifest), then
    mark the bodies as land_parsed does."""
    staged = [o["staged_uri"] for o in outcomes if o.get("staged_uri")]
    replaced = read_manifest_if_exists(lake, manifest_key(interval.job, interval.label))
    manifest = land_staged(lake, interval, staged, list(outcomes))
    mark_landed(lake, manifest, replaced)
    return manifest


def check_failed_share(manifest: Manifest, settings: Settings) -> None:
    """RunFailed when more than Settings.max_failed_share of the feeds failed (or were skipped in backoff);
    with the default 1.0 only when every feed did."""
    total = len(manifest.feeds)
    failed = [f for f in manifest.feeds if f["status"] in FAILING_STATUSES]
    if not total or not failed:
        return
    share = len(failed) / total
    if share > settings.max_failed_share or len(failed) == total:
        raise RunFailed(
            f"{len(failed)} of {total} feeds failed (max share {settings.max_failed_share})",
            manifest,
            summary=summary(manifest),
        )


def summary(manifest: Manifest) -> dict[str, Any]:
    """A compact, JSON-able account of a run: feed statuses, story counts, topics, objects."""
    statuses: dict[str, int] = {}
    for f in manifest.feeds:
        statuses[f["status"]] = statuses.get(f["status"], 0) + 1
    return {
        "label": manifest.label,
        "feeds": statuses,
        "failed": {f["feed_id"]: f["reason"] for f in manifest.feeds if f["status"] in FAILING_STATUSES},
        "counts": dict(manifest.counts),
        "topics": dict(manifest.topics),
        "objects": [o["key"] for o in manifest.objects],
    }
