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

import bisect
import json
import logging
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, date, datetime
from typing import Any, cast

import pyarrow as pa

from pipeline.errors import FatalError, RetriableError
from pipeline.jobs.intervals import Interval
from pipeline.lake import kernels as k
from pipeline.lake.keyindex import IndexSession, KeyIndex, io_map, open_index, owner_of
from pipeline.lake.parquet import parquet_bytes, read_table, to_table
from pipeline.lake.staging import remove_staged
from pipeline.lake.store import Lake, NotFoundError, ObjectInfo
from pipeline.schema import SCHEMA_VERSION, Story, arrow_schema

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
        """The manifest's JSON: to_dict()'s, but from the fields themselves (asdict deep-copies every feed
        outcome first: a snapshot backfill day of 50 inputs spent about 12 ms copying)."""
        doc = {f.name: getattr(self, f.name) for f in fields(self)}
        return (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode()

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


def read_manifest_if_exists(lake: Lake, key: str) -> Manifest | None:
    """The manifest at `key`, None when absent or unreadable (logged)."""
    try:
        return read_manifest(lake, key)
    except NotFoundError:
        return None
    except FatalError as exc:
        log.warning("ignoring unreadable manifest %s: %s", key, exc.message)
        return None


def all_manifests(lake: Lake) -> Iterator[Manifest]:
    """Every readable manifest of the lake (an unreadable one is logged and skipped: validate reports it)."""
    for info in lake.list(MANIFESTS_PREFIX):
        if info.key.endswith(".json"):
            manifest = read_manifest_if_exists(lake, info.key)
            if manifest is not None:
                yield manifest


def manifest_versions(lake: Lake, manifest: Manifest) -> list[tuple[str, str]]:
    """(story_id, content_hash) of every story in the manifest's objects (key columns only)."""
    versions: list[tuple[str, str]] = []
    for obj in manifest.objects:
        table = read_table(lake.get(obj["key"]), columns=["story_id", "content_hash"])
        ids, hashes = table.column("story_id").to_pylist(), table.column("content_hash").to_pylist()
        versions.extend(zip(map(str, ids), map(str, hashes), strict=True))
    return versions


def landed_versions(lake: Lake, *, exclude: str | None = None) -> set[tuple[str, str]]:
    """(story_id, content_hash) of every story named by a manifest other than `exclude`, read from the
    objects themselves (landing asks the key index instead; validate and repairs use this)."""
    seen: set[tuple[str, str]] = set()
    for manifest in all_manifests(lake):
        if manifest.key != exclude:
            seen.update(manifest_versions(lake, manifest))
    return seen


def compacted_versions(
    lake: Lake, key: str, owner_rows: Callable[[str], set[tuple[str, str]]]
) -> set[tuple[str, str]]:
    """Versions of the manifest at `key` that a compaction moved out of its objects (pipeline.lake.compact
    records them under "compacted"): the index rows of its owner that the compacted files hold."""
    try:
        doc = json.loads(lake.get(key))
    except (NotFoundError, ValueError):
        return set()
    into = {str(o.get("into")) for o in doc.get("compacted") or [] if isinstance(o, dict) and o.get("into")}
    if not into:
        return set()
    moved: set[tuple[str, str]] = set()
    for compaction in sorted(into):
        manifest = read_manifest_if_exists(lake, compaction)
        if manifest is not None:
            moved.update(manifest_versions(lake, manifest))
    return moved & owner_rows(owner_of(str(doc.get("job")), str(doc.get("label"))))


def owner_of_object(key: str) -> str | None:
    """`<job>/<label>` from a story object key `stories/dt=D/<job>-<label>.parquet` (None for other keys)."""
    name = key.rsplit("/", 1)[-1]
    if not key.startswith(STORIES_PREFIX) or not name.endswith(".parquet") or "-" not in name:
        return None
    job, _, label = name.removesuffix(".parquet").partition("-")
    return owner_of(job, label)


def land(
    lake: Lake,
    interval: Interval,
    stories: Iterable[Story] | pa.Table,
    *,
    feeds: Sequence[Mapping[str, Any]] | None = None,
    source_info: Mapping[str, Any] | None = None,
    run_id: str | None = None,
    session: IndexSession | None = None,
) -> Manifest:
    """Land one interval's stories (dicts or an Arrow table of the story schema) exactly once; return the
    manifest written (last) for it. With a `session` (landings in a row), its key index is used and the
    shard writes are left to it."""
    batch = _as_table(stories, interval)  # a record that does not fit fails before anything is touched
    feed_list = [dict(f) for f in feeds or []]
    info = dict(source_info) if source_info is not None else None
    try:
        json.dumps([feed_list, info])
    except (TypeError, ValueError) as exc:
        raise FatalError(f"feeds/source_info must be JSON-able: {exc}", label=interval.label) from None
    run_id = run_id or uuid.uuid4().hex
    if session is None:
        return _land(lake, interval, batch, open_index(lake), feed_list, info, run_id)
    try:
        manifest = _land(lake, interval, batch, session.index(), feed_list, info, run_id)
    except BaseException:
        session.discard()  # what this landing began is resolved when the index is opened again
        raise
    session.landed()
    return manifest


def _land(
    lake: Lake,
    interval: Interval,
    batch: pa.Table,
    index: KeyIndex,
    feed_list: list[dict[str, Any]],
    info: dict[str, Any] | None,
    run_id: str,
) -> Manifest:
    owner = owner_of(interval.job, interval.label)
    this_manifest = manifest_key(interval.job, interval.label)
    old_keys, earlier = _earlier_attempt(lake, interval, index)
    combined = pa.concat_tables([batch, earlier]) if earlier.num_rows else batch
    carried_from = batch.num_rows
    ids = cast(list[str], combined.column("story_id").to_pylist())
    found = index.lookup(ids)
    live = _live_owners(lake, {o for hashes in found.values() for o in hashes.values()} - {owner})
    existing = {(sid, h) for sid, hashes in found.items() for h, o in hashes.items() if o in live}
    held = compacted_versions(lake, this_manifest, index.owner_rows) if lake.exists(this_manifest) else set()
    existing |= held  # this interval's stories that a compaction moved into its file: landed, stay indexed
    landed, counts = _choose(combined, carried_from, existing)

    rows = _select(combined, landed)
    # Encode everything first: nothing is touched before every object's bytes exist.
    payloads = [(day, len(idx), _encode(_select(rows, idx), interval)) for day, idx in _day_rows(rows)]
    object_keys = [story_object_key(day, interval) for day, _, _ in payloads]
    held_versions = sorted(held)
    owned_ids = [*(ids[row] for row in landed), *(sid for sid, _ in held_versions)]
    owned_hashes = pa.concat_arrays(
        [rows.column("content_hash").combine_chunks(), pa.array([h for _, h in held_versions], pa.string())]
    )
    index.begin(owner, run_id, [*owned_ids, *ids[carried_from:]], object_keys)  # (+ the old rows' shards)
    index.assign_columns(owner, owned_ids, owned_hashes)
    _retract(lake, interval)
    objects = [
        _write_verified(lake, key, day, n, data)
        for key, (day, n, data) in zip(object_keys, payloads, strict=True)
    ]
    manifest = Manifest(
        job=interval.job,
        interval_start=interval.start.isoformat(),
        interval_end=interval.end.isoformat(),
        label=interval.label,
        run_id=run_id,
        created_at=datetime.now(UTC).isoformat(),
        taxonomy_version=",".join(
            sorted(v for v in k.unique(rows.column("taxonomy_version")).to_pylist() if v)
        ),
        feeds=feed_list,
        counts=counts,
        objects=objects,
        topics=_topic_counts(rows),
        source_info=info,
    )
    lake.put(this_manifest, manifest.to_json(), "application/json")
    index.commit(owner)
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
    keys = [lake.key_for(uri) for uri in staged_uris]
    read = io_map(lambda key: _read_staged(lake, key), keys, parallel=lake.parallel_io)
    tables = [table for table in read if table is not None]
    missing = [key for key, table in zip(keys, read, strict=True) if table is None]
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
        if previous is not None and not tables:
            return previous
    return land_tables(lake, interval, tables, feeds=feeds, source_info=source_info)


def land_tables(
    lake: Lake,
    interval: Interval,
    tables: Sequence[pa.Table],
    feeds: Sequence[Mapping[str, Any]] | None = None,
    *,
    source_info: Mapping[str, Any] | None = None,
) -> Manifest:
    """Land batches of stories (Arrow tables of the story schema) together as one interval, then remove the
    interval's staged batches (those read, or those an earlier attempt staged)."""
    batch = pa.concat_tables(tables) if tables else to_table([])
    manifest = land(lake, interval, batch, feeds=feeds, source_info=source_info)
    remove_staged(lake, interval)
    return manifest


def _read_staged(lake: Lake, key: str) -> pa.Table | None:
    try:
        return conform(read_table(lake.get(key)))
    except NotFoundError:
        return None


def _staged_keys(lake: Lake, manifest: Manifest) -> set[str]:
    return {lake.key_for(str(f["staged_uri"])) for f in manifest.feeds if f.get("staged_uri")}


def _landed_manifest(lake: Lake, interval: Interval) -> Manifest | None:
    key = manifest_key(interval.job, interval.label)
    return read_manifest(lake, key) if lake.exists(key) else None


def conform(table: pa.Table) -> pa.Table:
    """The table with exactly arrow_schema() (metadata included), so tables concatenate."""
    schema = arrow_schema()
    return table if table.schema.equals(schema, check_metadata=True) else table.cast(schema)


def _as_table(stories: Iterable[Story] | pa.Table, interval: Interval) -> pa.Table:
    try:
        return conform(stories) if isinstance(stories, pa.Table) else to_table(list(stories))
    except (pa.ArrowInvalid, pa.ArrowTypeError, KeyError) as exc:
        raise FatalError(
            f"stories of {interval.job}/{interval.label} do not fit the story schema: {exc}",
            job=interval.job,
            label=interval.label,
        ) from exc


def _select(table: pa.Table, rows: list[int]) -> pa.Table:
    """table.take(rows), without the copy when rows is every row in order (a backfill day, usually)."""
    if len(rows) == table.num_rows:
        return table  # rows are increasing and distinct, so this is 0..n-1
    return k.take(table, rows)


def _choose(
    table: pa.Table, carried_from: int, existing: set[tuple[str, str]]
) -> tuple[list[int], dict[str, int]]:
    """The rows to land (increasing) and the landing's counts. Rows from `carried_from` on are an earlier
    attempt's, kept unless this batch has them. A version lands at its first row unless `existing` (landed
    elsewhere) names it; a landed row of the batch is `updated` when its story id is in `existing` or landed
    at an earlier row, else `new`. Column-wise: Python strings only for the rows whose id `existing` names."""
    counts = dict.fromkeys(COUNT_KEYS, 0)
    counts["input"] = carried_from
    ids, hashes = table.column("story_id"), table.column("content_hash")
    first = _first_rows(ids, hashes)
    counts["batch_duplicate"] = carried_from - bisect.bisect_left(first, carried_from)
    existing_ids = pa.array(sorted({sid for sid, _ in existing}), pa.string())
    landed = first
    if existing:
        named = k.is_in(k.take(ids, first), existing_ids)
        maybe = [first[i] for i in k.indices_nonzero(named)]
        versions = _versions(ids, hashes, maybe)
        known = {row for row, version in zip(maybe, versions, strict=True) if version in existing}
        counts["duplicate"] = sum(1 for row in known if row < carried_from)
        landed = [row for row in first if row not in known]
    fresh = bisect.bisect_left(landed, carried_from)
    counts["kept"] = len(landed) - fresh
    if carried_from < table.num_rows:  # a rerun: a fresh version of one the earlier attempt landed is an edit
        counts["new"] = _new_in_rerun(
            _versions(ids, hashes, landed[:fresh]), existing, ids, hashes, carried_from
        )
    else:
        landed_ids = k.unique(k.take(ids, landed[:fresh]))
        counts["new"] = len(landed_ids) - len(k.filter_rows(landed_ids, k.is_in(landed_ids, existing_ids)))
    counts["updated"] = fresh - counts["new"]
    return landed, counts


def _new_in_rerun(
    fresh: list[Any],
    existing: set[tuple[str, str]],
    ids: pa.ChunkedArray[Any],
    hashes: pa.ChunkedArray[Any],
    carried_from: int,
) -> int:
    """How many of a rerun's `fresh` landed versions (in row order) are `new`: not an update of a story
    landed elsewhere, at an earlier row, or by the interval's earlier attempt under another version (its
    rows, from `carried_from` on; a same-day rerun counted such edits `new`)."""
    before = set(_versions(ids, hashes, range(carried_from, len(ids))))
    before_ids = {sid for sid, _ in before}
    seen = {sid for sid, _ in existing}
    new = 0
    for version in fresh:
        sid = version[0]
        if sid not in seen and (sid not in before_ids or version in before):
            new += 1
        seen.add(sid)
    return new


def _versions(ids: pa.ChunkedArray[Any], hashes: pa.ChunkedArray[Any], rows: Sequence[int]) -> list[Any]:
    """(story_id, content_hash) of `rows`, as Python tuples of strings."""
    at = pa.array(rows, pa.int64())
    return list(zip(k.take(ids, at).to_pylist(), k.take(hashes, at).to_pylist(), strict=True))


def _first_rows(ids: pa.ChunkedArray[Any], hashes: pa.ChunkedArray[Any]) -> list[int]:
    """The first row of each (story_id, content_hash), increasing: a stable sort by the pair puts each
    pair's rows together in row order, and a row starts its pair's run where the pair differs from the row
    before. (Both columns are non-null in the story schema. Table.group_by would do it too, but imports
    Arrow's query engine: ~65 ms of CPU per landing process.)"""
    order = k.sort_indices(pa.table({"story_id": ids, "content_hash": hashes}), ["story_id", "content_hash"])
    starts = k.filter_rows(order, k.run_starts(k.take(ids, order), k.take(hashes, order)))
    return sorted(cast(list[int], starts.to_pylist()))


def _day_rows(table: pa.Table) -> list[tuple[date, list[int]]]:
    """The rows of each partition date, by date: the UTC date of published_at, else of fetched_at."""
    when = k.cast(k.coalesce(table.column("published_at"), table.column("fetched_at")), pa.date32())
    days = sorted(d for d in k.unique(when).to_pylist() if d is not None)  # fetched_at: not null
    return [(day, k.indices_nonzero(k.equal(when, pa.scalar(day, pa.date32())))) for day in days]


def _topic_counts(table: pa.Table) -> dict[str, int]:
    topics = k.list_flatten(table.column("topics"))
    if not len(topics):
        return {}
    counts = k.value_counts(topics)
    values, numbers = counts.field("values").to_pylist(), counts.field("counts").to_pylist()
    return dict(sorted((str(v), int(n or 0)) for v, n in zip(values, numbers, strict=True)))


def _live_owners(lake: Lake, owners: set[str]) -> set[str]:
    """Owners whose manifest exists (an index row of a manifest removed by hand must not hide a story)."""
    live = set()
    for owner in owners:
        job, _, label = owner.partition("/")
        if lake.exists(manifest_key(job, label)):
            live.add(owner)
        else:
            log.warning(
                "key index names %s, whose manifest is gone: run `wirefeed validate --repair-index`", owner
            )
    return live


def _earlier_attempt(lake: Lake, interval: Interval, index: KeyIndex) -> tuple[set[str], pa.Table]:
    """Story objects an earlier attempt of this interval left (named by its manifest, or recorded by the key
    index as written by an interrupted attempt) and the stories readable in them, which a rerun keeps."""
    key = manifest_key(interval.job, interval.label)
    leftovers: set[str] = set(index.leftovers(owner_of(interval.job, interval.label)))
    if lake.exists(key):
        try:
            leftovers.update(o["key"] for o in read_manifest(lake, key).objects)
        except FatalError as exc:
            log.warning("replacing unreadable manifest %s: %s", key, exc.message)
    tables = []
    for obj in sorted(leftovers):
        try:
            tables.append(conform(read_table(lake.get(obj))))
        except (FatalError, pa.ArrowException, OSError) as exc:  # absent or not Parquet: nothing to keep
            log.warning("not keeping stories of %s from an earlier attempt: %s", obj, exc)
    return leftovers, pa.concat_tables(tables) if tables else to_table([])


def _retract(lake: Lake, interval: Interval) -> None:
    """Remove this interval's manifest (if any) before its objects are overwritten, so a manifest never
    names an object whose content it does not describe."""
    key = manifest_key(interval.job, interval.label)
    if lake.exists(key):
        lake.delete(key)
        log.info("retracted manifest %s for a rerun", key)


def _encode(rows: pa.Table, interval: Interval) -> bytes:
    try:
        return parquet_bytes(rows)
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
    # info.sha256 is the digest put() computed over `data` (Lake.put's contract; both backends hash the bytes
    # they send), so the object's bytes are hashed once, not again here
    return _object_entry(info, rows, day)


def _object_entry(info: ObjectInfo, rows: int, day: date) -> dict[str, Any]:
    return {"key": info.key, "size": info.size, "sha256": info.sha256, "rows": rows, "dt": day.isoformat()}
