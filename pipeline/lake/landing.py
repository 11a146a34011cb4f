"""Exactly-once landing of one interval's stories into the lake.

A story version is (story_id, content_hash). `land()` drops versions repeated within the batch and versions
already named by any OTHER interval's manifest, writes the rest to
`stories/dt=YYYY-MM-DD/<job>-<label>.parquet` (names derived from the interval, so a rerun replaces), verifies
them, writes `_manifests/<job>/<label>.json` LAST, then deletes objects of earlier attempts it does not name.

A rerun never drops stories: those an earlier attempt of the interval landed (or left in its objects before a
crash) and the new batch lacks are kept, counted `kept`. Crash safety: before overwriting anything, a rerun
first retracts the interval's old manifest, so a manifest never names an object whose content it does not
describe. A crash leaves only unnamed objects (reported as orphans by validate) whose stories the next
successful attempt keeps, and which it rewrites or removes.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import pyarrow as pa

from pipeline.errors import FatalError, RetriableError
from pipeline.jobs.intervals import Interval
from pipeline.lake.parquet import dedupe, parquet_bytes, read_stories, read_table, story_key, to_table
from pipeline.lake.staging import remove_staged
from pipeline.lake.store import Lake, NotFoundError, ObjectInfo, sha256_hex
from pipeline.schema import SCHEMA_VERSION, Story

log = logging.getLogger(__name__)

STORIES_PREFIX = "stories/"
MANIFESTS_PREFIX = "_manifests/"
PARQUET_TYPE = "application/vnd.apache.parquet"
# kept: stories an earlier attempt of the same interval landed that this batch no longer has (a rerun never
# drops landed stories, e.g. after a feed rotated them out).
COUNT_KEYS = ("input", "new", "duplicate", "batch_duplicate", "updated", "kept")
MANIFEST_KEYS = (
    "job",
    "interval_start",
    "interval_end",
    "label",
    "run_id",
    "created_at",
    "schema_version",
    "taxonomy_version",
    "feeds",
    "counts",
    "objects",
    "topics",
)


@dataclass
class Manifest:
    job: str
    interval_start: str
    interval_end: str
    label: str
    run_id: str
    created_at: str
    schema_version: int = SCHEMA_VERSION
    taxonomy_version: str = ""
    feeds: list[dict[str, Any]] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNT_KEYS, 0))
    objects: list[dict[str, Any]] = field(default_factory=list)  # {key, size, sha256, rows, dt}
    topics: dict[str, int] = field(default_factory=dict)
    source_info: dict[str, Any] | None = None

    @property
    def key(self) -> str:
        return manifest_key(self.job, self.label)

    @property
    def rows(self) -> int:
        return sum(int(o["rows"]) for o in self.objects)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> bytes:
        return (json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n").encode()

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> Manifest:
        missing = [k for k in MANIFEST_KEYS if k not in doc]
        if missing:
            raise FatalError(f"manifest lacks keys {missing}", missing=missing)
        known = {k: doc[k] for k in (*MANIFEST_KEYS, "source_info") if k in doc}
        return cls(**known)


def manifest_key(job: str, label: str) -> str:
    return f"{MANIFESTS_PREFIX}{job}/{label}.json"


def story_object_key(day: date, interval: Interval) -> str:
    return f"{STORIES_PREFIX}dt={day.isoformat()}/{interval.job}-{interval.label}.parquet"


def story_day(story: Story) -> date:
    """The partition date: UTC date of published_at, else of fetched_at."""
    when: datetime = story["published_at"] or story["fetched_at"]
    return when.astimezone(UTC).date()


def read_manifest(lake: Lake, key: str) -> Manifest:
    """Load one manifest; FatalError when it is not well-formed JSON with the expected keys."""
    try:
        doc = json.loads(lake.get(key))
    except (ValueError, UnicodeDecodeError) as exc:
        raise FatalError(f"manifest {key} is not valid JSON: {exc}", key=key) from None
    if not isinstance(doc, dict):
        raise FatalError(f"manifest {key} is not a JSON object", key=key)
    try:
        return Manifest.from_dict(doc)
    except FatalError as exc:
        raise FatalError(f"manifest {key}: {exc.message}", key=key, **exc.fields) from None


def landed_versions(lake: Lake, *, exclude: str | None = None) -> set[tuple[str, str]]:
    """(story_id, content_hash) of every story named by a manifest other than `exclude` (columns only)."""
    seen: set[tuple[str, str]] = set()
    read: set[str] = set()  # an object is read once per call even if two manifests name it
    for info in lake.list(MANIFESTS_PREFIX):
        if info.key == exclude or not info.key.endswith(".json"):
            continue
        for obj in read_manifest(lake, info.key).objects:
            if obj["key"] not in read:
                read.add(obj["key"])
                seen.update(_object_versions(lake, obj["key"], obj["sha256"]))
    return seen


_VERSIONS_CACHE: dict[tuple[str, str], frozenset[tuple[str, str]]] = {}
_VERSIONS_LOCK = threading.Lock()
_VERSIONS_CACHE_MAX = 4096  # objects; a backfill re-reads every earlier day on each landing otherwise


def _object_versions(lake: Lake, key: str, sha256: str) -> frozenset[tuple[str, str]]:
    """Versions in one story object, cached by (URI, sha256 from its manifest): same hash, same content."""
    cache_key = (lake.uri(key), sha256)
    with _VERSIONS_LOCK:
        cached = _VERSIONS_CACHE.get(cache_key)
    if cached is not None:
        return cached
    table = read_table(lake.get(key), columns=["story_id", "content_hash"])
    ids, hashes = table.column("story_id").to_pylist(), table.column("content_hash").to_pylist()
    versions = frozenset((str(i), str(h)) for i, h in zip(ids, hashes, strict=True))
    with _VERSIONS_LOCK:
        if len(_VERSIONS_CACHE) >= _VERSIONS_CACHE_MAX:
            _VERSIONS_CACHE.pop(next(iter(_VERSIONS_CACHE)))
        _VERSIONS_CACHE[cache_key] = versions
    return versions


def land(
    lake: Lake,
    interval: Interval,
    stories: Iterable[Story],
    *,
    feeds: Sequence[Mapping[str, Any]] | None = None,
    source_info: Mapping[str, Any] | None = None,
    run_id: str | None = None,
) -> Manifest:
    """Land one interval's stories exactly once; return the manifest written (last) for it."""
    batch = list(stories)
    this_manifest = manifest_key(interval.job, interval.label)
    feed_list = [dict(f) for f in feeds or []]
    info = dict(source_info) if source_info is not None else None
    try:
        json.dumps([feed_list, info])
    except (TypeError, ValueError) as exc:
        raise FatalError(f"feeds/source_info must be JSON-able: {exc}", label=interval.label) from None
    unique, batch_duplicates = dedupe(batch)
    old_keys, earlier = _earlier_attempt(lake, interval)
    in_batch = {story_key(s) for s in unique}
    kept, _ = dedupe(s for s in earlier if story_key(s) not in in_batch)
    existing = landed_versions(lake, exclude=this_manifest)
    existing_ids = {sid for sid, _ in existing}

    counts = dict.fromkeys(COUNT_KEYS, 0)
    counts["input"], counts["batch_duplicate"] = len(batch), batch_duplicates
    by_day: dict[date, list[Story]] = defaultdict(list)
    for story, carried in [(s, False) for s in unique] + [(s, True) for s in kept]:
        version = story_key(story)
        if version in existing:
            if not carried:  # a kept story that landed elsewhere since is simply not landed twice
                counts["duplicate"] += 1
            continue
        counts["kept" if carried else "updated" if version[0] in existing_ids else "new"] += 1
        existing_ids.add(version[0])
        by_day[story_day(story)].append(story)

    # Encode everything first: a record that does not fit the schema must fail before anything is touched.
    payloads = [(day, len(rows), _encode(rows, interval)) for day, rows in sorted(by_day.items())]
    _retract(lake, interval)
    objects = [
        _write_verified(lake, story_object_key(day, interval), day, n, data) for day, n, data in payloads
    ]
    landed = [s for rows in by_day.values() for s in rows]
    manifest = Manifest(
        job=interval.job,
        interval_start=interval.start.isoformat(),
        interval_end=interval.end.isoformat(),
        label=interval.label,
        run_id=run_id or uuid.uuid4().hex,
        created_at=datetime.now(UTC).isoformat(),
        taxonomy_version=",".join(sorted({s["taxonomy_version"] for s in landed if s["taxonomy_version"]})),
        feeds=feed_list,
        counts=counts,
        objects=objects,
        topics=dict(sorted(Counter(t for s in landed for t in s["topics"]).items())),
        source_info=info,
    )
    lake.put(this_manifest, manifest.to_json(), "application/json")
    named = {o["key"] for o in objects}
    for key in sorted(old_keys - named):
        log.info("deleting %s left by an earlier attempt of %s/%s", key, interval.job, interval.label)
        lake.delete(key)
    log.info(
        "landed %s/%s: %d rows in %d objects; counts %s",
        interval.job,
        interval.label,
        manifest.rows,
        len(objects),
        counts,
    )
    return manifest


def land_staged(
    lake: Lake,
    interval: Interval,
    staged_uris: Iterable[str],
    feeds: Sequence[Mapping[str, Any]] | None = None,
    *,
    source_info: Mapping[str, Any] | None = None,
) -> Manifest:
    """Read the staged Parquet files (URIs from lake.uri() or keys), land their stories together, then
    remove the interval's staged batches (pipeline.lake.staging).

    A retry after the batches were removed (say the task died after its manifest was written) still lands
    exactly what it was given: a missing batch that the interval's manifest records as landed (its feeds'
    staged_uri) is skipped, since its stories are in the interval's objects and a rerun keeps those; when
    every batch is such, the manifest is returned as it is. A missing batch that no manifest records fails
    with a FatalError before anything is written: fetch the interval again."""
    stories: list[Story] = []
    read, missing = 0, []
    for uri in staged_uris:
        key = lake.key_for(uri)
        try:
            stories.extend(read_stories(lake.get(key)))
            read += 1
        except NotFoundError:
            missing.append(key)
    if missing:
        previous = _landed_manifest(lake, interval)
        recorded = set() if previous is None else _staged_keys(lake, previous)
        lost = [key for key in missing if key not in recorded]
        if lost:
            raise FatalError(
                f"staged batches of {interval.job}/{interval.label} are gone and no manifest records them as "
                f"landed: {', '.join(lost)}; fetch the interval again",
                label=interval.label,
                missing=lost,
            )
        log.info("staged batches of %s landed already: %s", interval.label, ", ".join(missing))
        if previous is not None and not read:
            return previous
    manifest = land(lake, interval, stories, feeds=feeds, source_info=source_info)
    remove_staged(lake, interval)
    return manifest


def _staged_keys(lake: Lake, manifest: Manifest) -> set[str]:
    return {lake.key_for(str(f["staged_uri"])) for f in manifest.feeds if f.get("staged_uri")}


def _landed_manifest(lake: Lake, interval: Interval) -> Manifest | None:
    key = manifest_key(interval.job, interval.label)
    return read_manifest(lake, key) if lake.exists(key) else None


def _earlier_attempt(lake: Lake, interval: Interval) -> tuple[set[str], list[Story]]:
    """Story objects an earlier attempt of this interval left (named by its manifest, or found under stories/
    by name after a crash) and the stories readable in them, which a rerun keeps."""
    key = manifest_key(interval.job, interval.label)
    leftovers: set[str] = set()
    if lake.exists(key):
        try:
            leftovers.update(o["key"] for o in read_manifest(lake, key).objects)
        except FatalError as exc:
            log.warning("replacing unreadable manifest %s: %s", key, exc.message)
    name = f"/{interval.job}-{interval.label}.parquet"
    leftovers.update(o.key for o in lake.list(STORIES_PREFIX) if o.key.endswith(name))
    stories: list[Story] = []
    for obj in sorted(leftovers):
        try:
            stories.extend(read_stories(lake.get(obj)))
        except (FatalError, pa.ArrowException, OSError) as exc:  # absent or not Parquet: nothing to keep
            log.warning("not keeping stories of %s from an earlier attempt: %s", obj, exc)
    return leftovers, stories


def _retract(lake: Lake, interval: Interval) -> None:
    """Remove this interval's manifest (if any) before its objects are overwritten, so a manifest never
    names an object whose content it does not describe."""
    key = manifest_key(interval.job, interval.label)
    if lake.exists(key):
        lake.delete(key)
        log.info("retracted manifest %s for a rerun", key)


def _encode(rows: list[Story], interval: Interval) -> bytes:
    try:
        return parquet_bytes(to_table(rows))
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise FatalError(
            f"stories of {interval.job}/{interval.label} do not fit the story schema: {exc}",
            job=interval.job,
            label=interval.label,
        ) from exc


def _write_verified(lake: Lake, key: str, day: date, rows: int, data: bytes) -> dict[str, Any]:
    info = lake.put(key, data, PARQUET_TYPE)
    stored = lake.stat(key)
    if stored is None or stored.size != info.size or stored.sha256 not in (None, info.sha256):
        raise RetriableError(f"object {lake.uri(key)} did not read back as written", key=key)
    if info.sha256 != sha256_hex(data):  # pragma: no cover - a backend bug, not an I/O condition
        raise FatalError(f"lake.put returned the wrong checksum for {key}", key=key)
    return _object_entry(info, rows, day)


def _object_entry(info: ObjectInfo, rows: int, day: date) -> dict[str, Any]:
    return {"key": info.key, "size": info.size, "sha256": info.sha256, "rows": rows, "dt": day.isoformat()}
