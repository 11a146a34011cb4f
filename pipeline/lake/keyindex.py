"""The key index: which story versions the lake's manifests name, without reading the lake's objects.

The index is 256 shards of (story_id, content_hash, owner) rows, the shard chosen by a hash of story_id.
The owner is the manifest's `<job>/<label>`: the index stores keys and who named them, never file locations,
so rewriting or compacting story files does not invalidate it. Shards stay Arrow tables in memory too
(looked up and rewritten with Arrow compute, no Python object per row), so a large index costs tens of bytes
a row. On the lake, `_state/index/HEAD.json` names where each non-empty shard is: a byte range of a segment
(`segments/<n>-<token>.arrow`, the Arrow IPC streams of the shards one write stored, one after the other).
A write stores every shard it changed as one new segment (one object, not one per shard: a day of a few
thousand stories changes all 256 shards), and HEAD, written after it, makes the new ranges the index; a
segment no shard names any more is deleted once HEAD no longer names it. A landing reads only the ranges of
its batch's shards (neighbouring ranges of a segment in one read), so its cost does not grow with the
number of days landed (it grows with the shards' size only), and stores only the shards where its owner's
rows change (a rerun that lands the same stories writes nothing).

Exactly once, with one writer at a time (as landing requires anyway): a landing adds itself to `pending`
in HEAD (owner, run id, shards it will touch, objects it will write) before anything else, and is removed
from it by the HEAD that also names its stored shards, written after its manifest. The next opening of the
index resolves every landing HEAD still names: the owner's rows in the touched shards are made to match the
owner's manifest (what that landing committed, else what an earlier attempt had committed, else none), and
the objects of a landing that never committed are remembered as leftovers that the owner's rerun keeps. A
missing or half-built index is rebuilt from the manifests (`wirefeed validate --repair-index` does the same
on demand). An index of the previous format (one object per shard, `shards/<xx>.arrow`) is converted the
first time it is opened.

`IndexSession` serves landings in a row by one process (a backfill's days): it opens the index once, keeps
its shards in memory, and stores the shards the landings changed once every MAX_DEFERRED landings and at
the end, not once per landing. Those landings stay in HEAD's `pending` until then, so a crash in between is
resolved like an interrupted landing: from their manifests.
"""

from __future__ import annotations

import bisect
import functools
import hashlib
import itertools
import json
import logging
import secrets
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Final, TypeVar

import pyarrow as pa

from pipeline.errors import FatalError, WirefeedError
from pipeline.lake import kernels as k
from pipeline.lake.parquet import arrow_buffer
from pipeline.lake.store import Lake, NotFoundError

log = logging.getLogger(__name__)

INDEX_PREFIX: Final = "_state/index/"
HEAD_KEY: Final = f"{INDEX_PREFIX}HEAD.json"
SEGMENTS_PREFIX: Final = f"{INDEX_PREFIX}segments/"
LEGACY_SHARDS_PREFIX: Final = f"{INDEX_PREFIX}shards/"  # format 1 and 2: one object per shard
SHARDS: Final = 256
IO_THREADS: Final = 8
T = TypeVar("T")
R = TypeVar("R")
# HEAD's format: 3 = shards in segments (HEAD's `segments`: shard -> [segment, offset, length]); 2 = one
# object per shard, `pending` a list of landings; 1 = the same, `pending` one landing or None (both converted)
FORMAT: Final = 3
LEGACY_FORMATS: Final = (1, 2)
MAX_DEFERRED: Final = 16  # landings of an IndexSession whose shard writes wait for one flush
READ_GAP: Final = 64 * 1024  # ranges of one segment this close are read together

Location = tuple[str, int, int]  # (segment name, offset, length) of a shard's Arrow stream

Version = tuple[str, str]  # (story_id, content_hash)
_SCHEMA: Final = pa.schema(
    [
        pa.field("story_id", pa.string(), nullable=False),
        pa.field("content_hash", pa.string(), nullable=False),
        pa.field("owner", pa.string(), nullable=False),
    ]
)


def io_map(fn: Callable[[T], R], items: Iterable[T], *, parallel: bool = True) -> list[R]:
    """fn over items, results in order: in IO_THREADS threads when `parallel` (object-store round trips
    overlap), else one after the other (a local directory: the threads would only add CPU)."""
    work = list(items)
    if len(work) <= 1 or not parallel:
        return [fn(item) for item in work]
    with ThreadPoolExecutor(min(IO_THREADS, len(work)), thread_name_prefix="lake-io") as pool:
        return list(pool.map(fn, work))


def shard_of(story_id: str) -> int:
    return hashlib.blake2b(story_id.encode("utf-8", "surrogatepass"), digest_size=1).digest()[0]


def _compiled_shards(story_ids: list[str]) -> bytes | None:
    """Each id's shard_of() by the compiled module (None where it is not built or does not take the ids)."""
    hashed = _shard_numbers()
    return None if hashed is None else hashed(story_ids)


@functools.cache
def _shard_numbers() -> Callable[[list[str]], bytes | None] | None:
    try:
        from pipeline.parsing._accel import shard_numbers
    except ImportError:
        return None
    return shard_numbers


def segment_key(name: str) -> str:
    return f"{SEGMENTS_PREFIX}{name}.arrow"


def legacy_shard_key(shard: int) -> str:
    return f"{LEGACY_SHARDS_PREFIX}{shard:02x}.arrow"


def leftovers_key(owner: str) -> str:
    return f"{INDEX_PREFIX}leftovers/{owner}.json"


def owner_of(job: str, label: str) -> str:
    return f"{job}/{label}"


@dataclass
class KeyIndex:
    """An opened index (pending landings resolved). Shards are read on demand and cached. A landing asks for
    its ids' shards three times (lookup, begin, assign), usually for the same list of ids: the last answer
    is kept for the next question (`last`); hashlib's fallback caches each id's shard in `numbers`.
    `where` is each stored shard's location (HEAD's `segments`, plus what was stored since HEAD was last
    written: those segments are `fresh`, and HEAD written next names them)."""

    lake: Lake
    head: dict[str, Any]
    shards: dict[int, pa.Table] = field(default_factory=dict)
    where: dict[int, Location] = field(default_factory=dict)
    fresh: set[str] = field(default_factory=set)  # segments stored that the lake's HEAD does not name yet
    numbers: dict[str, int] = field(default_factory=dict)
    defer: bool = False  # assign() leaves changed shards to flush() (an IndexSession's index)
    dirty: set[int] = field(default_factory=set)  # shards changed in memory, not written yet
    landing: str | None = None  # the owner between begin() and commit()
    last: tuple[list[str], list[int]] = field(default_factory=lambda: ([], []))  # shards_of: last ids, answer

    @property
    def pending(self) -> list[dict[str, Any]]:
        return list(self.head.get("pending") or [])

    def shards_of(self, story_ids: Iterable[str]) -> list[int]:
        """shard_of() of each id, in order: by the compiled module where it is built (about 0.2 us an id),
        else hashlib's, each id hashed once per opened index."""
        ids = list(story_ids)
        if ids == self.last[0]:  # (the same string objects: an identity test each)
            return list(self.last[1])
        compiled = _compiled_shards(ids)
        if compiled is not None:
            numbers = list(compiled)
        else:
            known = self.numbers
            new = [sid for sid in ids if sid not in known]
            known.update(zip(new, map(shard_of, new), strict=True))
            numbers = [known[sid] for sid in ids]
        self.last = (ids, numbers)
        return list(numbers)

    def forget_ids(self) -> None:
        """Drop what shards_of remembers of the ids it was asked about (a finished landing's)."""
        self.numbers.clear()
        self.last = ([], [])

    # --- reading ---

    def shard(self, number: int) -> pa.Table:
        rows = self.shards.get(number)
        if rows is None:
            self.preload([number])
            rows = self.shards[number]
        return rows

    def preload(self, numbers: Iterable[int]) -> None:
        """Read the shards not read yet (neighbouring ranges together, separate reads in parallel); an
        unreadable one rebuilds the index, or stops when a landing is pending (its rows cannot be known)."""
        missing = sorted(set(numbers) - set(self.shards))
        if not missing:
            return
        try:
            self.shards.update(_read_shards(self.lake, self.where, missing))
        except ValueError as exc:  # (json errors are ValueErrors too)
            if self.pending:
                raise FatalError(f"{exc}; run `wirefeed validate --repair-index`") from exc
            log.warning("%s: rebuilding the key index", exc)
            rebuilt = rebuild_index(self.lake)
            self.head, self.shards, self.where = rebuilt.head, rebuilt.shards, rebuilt.where
            self.fresh = set()

    def lookup(self, story_ids: Iterable[str]) -> dict[str, dict[str, str]]:
        """story_id -> {content_hash: owner} for the ids that any manifest names."""
        found: dict[str, dict[str, str]] = {}
        wanted = list(dict.fromkeys(story_ids))  # in order: usually the list begin() asks about next
        numbers = sorted(set(self.shards_of(wanted)))
        self.preload(numbers)
        tables = [table for table in map(self.shard, numbers) if table.num_rows]
        if not tables:
            return found
        rows = pa.concat_tables(tables)  # one filter over every shard asked (an id is in its shard only)
        hits = k.filter_rows(rows, k.is_in(rows.column("story_id"), pa.array(wanted, pa.string())))
        for sid, chash, owner in zip(*(hits.column(n).to_pylist() for n in _SCHEMA.names), strict=True):
            found.setdefault(str(sid), {})[str(chash)] = str(owner)
        return found

    def owner_rows(self, owner: str) -> set[Version]:
        """Every row of `owner` (reads all shards: only for reruns of compacted intervals)."""
        self.preload(range(SHARDS))
        rows: set[Version] = set()
        for number in range(SHARDS):
            table = self.shard(number)
            mine = k.equal(table.column("owner"), pa.scalar(owner, pa.string()))
            rows |= _versions_of(k.filter_rows(table, mine))
        return rows

    def leftovers(self, owner: str) -> list[str]:
        """Objects an interrupted landing of `owner` wrote without naming them in a manifest."""
        try:
            doc = json.loads(self.lake.get(leftovers_key(owner)))
        except NotFoundError:
            return []
        return [str(k) for k in doc.get("objects", [])]

    # --- one landing ---

    def begin(self, owner: str, run_id: str, touched_ids: Iterable[str], objects: Iterable[str]) -> None:
        """Record the landing about to change the index (before any shard changes)."""
        shards = sorted(set(self.shards_of(touched_ids)))
        entry = {"owner": owner, "run_id": run_id, "shards": shards, "objects": sorted(objects)}
        self.head["pending"] = [*self.pending, entry]
        self.landing = owner
        self.write_head()

    def assign(self, owner: str, versions: Iterable[Version]) -> None:
        """Make `versions` exactly the rows of `owner` in the pending landing's shards."""
        given = list(versions)
        self.assign_columns(owner, [sid for sid, _ in given], pa.array([h for _, h in given], pa.string()))

    def assign_columns(self, owner: str, story_ids: list[str], content_hashes: pa.Array[Any]) -> None:
        """assign() of the versions (story_ids[i], content_hashes[i]): a landing's rows, their hashes left a
        column (no Python tuple or hash string per row)."""
        pending = self.pending[-1] if self.pending else {}
        if pending.get("owner") != owner:
            raise FatalError("key index: assign() without begin() for this owner", owner=owner)
        numbers = pa.array(self.shards_of(story_ids), pa.int32())
        if set(k.unique(numbers).to_pylist()) - set(pending["shards"]):
            raise FatalError("key index: versions outside the shards begin() named", owner=owner)
        self.preload(pending["shards"])
        current = self._rows_of(owner, pending["shards"])
        new = _sorted_unique(
            pa.table(
                {
                    "shard": numbers,
                    "story_id": pa.array(story_ids, pa.string()),
                    "content_hash": content_hashes,
                }
            )
        )
        starts = new.column("shard").to_pylist()  # sorted: each shard's new rows are one run
        runs = {n: (bisect.bisect_left(starts, n), bisect.bisect_right(starts, n)) for n in pending["shards"]}
        # (a shard is unchanged when the owner's rows there are these already: a rerun of the same stories)
        changed = sorted(
            n
            for n, (start, end) in runs.items()
            if (_versions_of(new.slice(start, end - start)) != current[n] if n in current else end > start)
        )
        owners = pa.repeat(pa.scalar(owner, pa.string()), new.num_rows)
        added = pa.table(
            [new.column("story_id"), new.column("content_hash"), owners],
            schema=_SCHEMA,
        )
        for number in changed:
            start, end = runs[number]
            table = self.shard(number)
            if number in current:
                table = k.filter_rows(
                    table, k.invert(k.equal(table.column("owner"), pa.scalar(owner, pa.string())))
                )
            self.shards[number] = pa.concat_tables([table, added.slice(start, end - start)])
        if self.defer:
            self.dirty.update(changed)
        else:
            self.store(changed)  # named by the HEAD commit() writes

    def _rows_of(self, owner: str, numbers: list[int]) -> dict[int, set[Version]]:
        """The owner's rows in these (loaded) shards, by shard: one comparison over all of them."""
        tables = [(n, self.shard(n)) for n in numbers]
        tables = [(n, t) for n, t in tables if t.num_rows]
        if not tables:
            return {}
        rows = pa.concat_tables([t for _, t in tables])
        hits = k.indices_nonzero(k.equal(rows.column("owner"), pa.scalar(owner, pa.string())))
        if not hits:
            return {}
        ends = list(itertools.accumulate(int(t.num_rows) for _, t in tables))
        found: dict[int, set[Version]] = defaultdict(set)
        for position, version in zip(hits, _versions_list(k.take(rows, hits)), strict=True):
            found[tables[bisect.bisect_right(ends, int(position or 0))][0]].add(version)
        return found

    def commit(self, owner: str) -> None:
        """The owner's manifest is written: the landing is part of the index; its leftovers are gone. (With
        `defer`, HEAD keeps naming the landing until flush() has written its shards.)"""
        self.landing = None
        if not self.defer:
            self.head["pending"] = []
            self.write_head()
        if self.lake.exists(leftovers_key(owner)):
            self.lake.delete(leftovers_key(owner))

    def flush(self) -> None:
        """Write the shards deferred landings changed, then clear them from HEAD (every one committed)."""
        if self.landing is not None:
            raise FatalError("key index: flush() in the middle of a landing", owner=self.landing)
        changed = sorted(self.dirty)
        self.store(changed)
        self.dirty.clear()
        if self.pending or self.fresh:
            self.head["pending"] = []
            self.write_head()

    # --- writing ---

    def store(self, numbers: Iterable[int]) -> None:
        """Store these (loaded) shards as one new segment; HEAD written next names it."""
        changed = sorted(set(numbers))
        if not changed:
            return
        serial = int(self.head.get("next_segment", 0))
        name = f"{serial:08d}-{secrets.token_hex(4)}"  # (the token: never the name of a crashed write's)
        self.head["next_segment"] = serial + 1
        stored = _write_segment(self.lake, name, {n: self.shards[n] for n in changed})
        for number in changed:
            self.where.pop(number, None)  # an empty shard is stored as no range
        self.where.update(stored)
        if stored:
            self.fresh.add(name)

    def write_head(self) -> None:
        """Write HEAD (pending landings, where each shard is), then delete the segments it no longer names."""
        before = _named_segments(self.head) | self.fresh
        self.head["format"] = FORMAT
        self.head["segments"] = {f"{n:02x}": list(self.where[n]) for n in sorted(self.where)}
        _write_head(self.lake, self.head)
        self.fresh = set()
        for name in sorted(before - _named_segments(self.head)):
            self.lake.delete(segment_key(name))


class IndexSession:
    """The key index for landings in a row by one process (see the module doc): `index()` before each
    landing, `landed()` after it, `discard()` when one failed (the next index() opens it again, resolving
    what HEAD names); leaving the `with` block writes what is deferred."""

    def __init__(self, lake: Lake) -> None:
        self.lake = lake
        self._index: KeyIndex | None = None
        self._landings = 0

    def index(self) -> KeyIndex:
        if self._index is None:
            self._index = open_index(self.lake)
            self._index.defer = True
        return self._index

    def landed(self) -> None:
        self._landings += 1
        if self._index is not None:
            self._index.forget_ids()  # ids of the landing done: not asked again
            if self._landings % MAX_DEFERRED == 0:
                try:
                    self._index.flush()
                except WirefeedError as exc:  # the landing itself is done (its manifest is written)
                    log.warning("key index: deferred shards not written (%s); opened again next", exc)
                    self.discard()  # HEAD still names the landings: the next opening resolves them

    def discard(self) -> None:
        self._index = None

    def flush(self) -> None:
        if self._index is not None:
            self._index.flush()

    def __enter__(self) -> IndexSession:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if kind is None:
            self.flush()
            return
        try:  # the index is consistent unless a landing failed (which discarded it)
            self.flush()
        except Exception as error:  # HEAD still names the landings: the next opening resolves them
            log.warning("key index: deferred shards not written (%s); the next landing resolves them", error)


def open_index(lake: Lake) -> KeyIndex:
    """The lake's index, with an interrupted landing resolved; built from the manifests when missing."""
    try:
        head = json.loads(lake.get(HEAD_KEY))
    except NotFoundError:
        head = None
    except ValueError:
        log.warning("key index HEAD is unreadable: rebuilding the index")
        head = None
    known = (*LEGACY_FORMATS, FORMAT)
    if not isinstance(head, dict) or head.get("format") not in known or head.get("rebuilding"):
        return rebuild_index(lake)
    pending = head.get("pending") or []
    head = {**head, "pending": [pending] if isinstance(pending, dict) else pending}
    try:
        legacy = head["format"] in LEGACY_FORMATS
        index = _convert(lake, head) if legacy else KeyIndex(lake, head, where=_where(head))
    except ValueError as exc:
        log.warning("key index: %s: rebuilding the index", exc)
        return rebuild_index(lake)
    if index.pending:
        _resolve(index)
    return index


def _where(head: Mapping[str, Any]) -> dict[int, Location]:
    """HEAD's `segments`: shard -> (segment name, offset, length); ValueError when it is not that."""
    try:
        where = {
            int(number, 16): (str(name), int(offset), int(length))
            for number, (name, offset, length) in dict(head.get("segments") or {}).items()
        }
    except (TypeError, ValueError) as exc:
        raise ValueError(f"HEAD's segments are not shard -> [segment, offset, length]: {exc}") from exc
    for number, (name, offset, length) in where.items():
        if not (0 <= number < SHARDS and offset >= 0 and length > 0 and name):
            raise ValueError(f"HEAD's segments: shard {number} at {name!r} [{offset}, +{length}]")
    return where


def _named_segments(head: Mapping[str, Any]) -> set[str]:
    return {str(location[0]) for location in dict(head.get("segments") or {}).values()}


def _convert(lake: Lake, head: dict[str, Any]) -> KeyIndex:
    """An index of the previous format (one object per shard) as one segment, its pending landings kept for
    _resolve; the old shard objects are deleted once HEAD names the segment."""
    legacy = [info.key for info in lake.list(LEGACY_SHARDS_PREFIX)]
    numbers = sorted(n for n in map(_legacy_number, legacy) if 0 <= n < SHARDS)
    index = KeyIndex(lake, {**head, "segments": {}}, {n: _SCHEMA.empty_table() for n in range(SHARDS)})
    tables = io_map(lambda n: _read_legacy_shard(lake, n), numbers, parallel=lake.parallel_io)
    index.shards.update(zip(numbers, tables, strict=True))
    index.store(n for n, table in index.shards.items() if table.num_rows)
    index.write_head()
    for key in legacy:
        lake.delete(key)
    log.info("key index converted to segments (%d shards, %d objects before)", len(index.where), len(legacy))
    return index


def _resolve(index: KeyIndex) -> None:
    """Make the rows of each owner HEAD names as pending match the owner's manifest; remember the objects of
    landings that never committed as leftovers."""
    from pipeline.lake import landing  # (landing uses this module)

    landings: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for entry in index.pending:
        landings[str(entry["owner"])].append(entry)
    for owner, entries in landings.items():
        job, _, label = owner.partition("/")
        manifest = landing.read_manifest_if_exists(index.lake, landing.manifest_key(job, label))
        committed = manifest is not None and manifest.run_id in {str(e["run_id"]) for e in entries}
        if committed:
            log.info("key index: landing %s had committed; its rows follow its manifest", owner)
        else:
            log.warning("key index: rolling back the interrupted landing %s", owner)
        versions = landing.manifest_versions(index.lake, manifest) if manifest is not None else []
        if manifest is not None:  # and what a compaction moved out of its objects
            key = landing.manifest_key(job, label)
            versions += sorted(landing.compacted_versions(index.lake, key, index.owner_rows))
        touched = {n for e in entries for n in e["shards"]} | {shard_of(sid) for sid, _ in versions}
        index.head["pending"] = [{"owner": owner, "shards": sorted(touched)}]
        index.assign(owner, versions)
        objects = set(index.leftovers(owner)) | {str(k) for e in entries for k in e.get("objects", [])}
        if manifest is not None:
            objects -= {str(o["key"]) for o in manifest.objects}
        if objects:
            doc = {"owner": owner, "objects": sorted(objects)}
            index.lake.put(leftovers_key(owner), json.dumps(doc).encode(), "application/json")
    index.head["pending"] = []
    index.write_head()
    _delete_unnamed_segments(index.lake, index.head)  # stored by landings that never wrote HEAD


def rebuild_index(lake: Lake) -> KeyIndex:
    """Build the index anew from every manifest (reading their objects' key columns); objects under
    stories/ that no manifest names are recorded as leftovers of the interval their name gives."""
    from pipeline.lake import landing  # (landing uses this module)

    head: dict[str, Any] = {"format": FORMAT, "pending": [], "rebuilding": True}
    _write_head(lake, head)
    rows: dict[int, dict[Version, str]] = {n: {} for n in range(SHARDS)}
    named: set[str] = set()
    for manifest in landing.all_manifests(lake):
        owner = owner_of(manifest.job, manifest.label)
        named.update(str(o["key"]) for o in manifest.objects)
        for version in landing.manifest_versions(lake, manifest):
            rows[shard_of(version[0])].setdefault(version, owner)
    index = KeyIndex(lake, head, {number: _table(shard_rows) for number, shard_rows in rows.items()})
    index.store(number for number, table in index.shards.items() if table.num_rows)  # absent reads as empty
    leftovers: dict[str, list[str]] = defaultdict(list)
    for info in lake.list(landing.STORIES_PREFIX):
        left_by = landing.owner_of_object(info.key)
        if info.key not in named and left_by is not None:
            leftovers[left_by].append(info.key)
    for info in lake.list(f"{INDEX_PREFIX}leftovers/"):
        lake.delete(info.key)
    for owner, keys in leftovers.items():
        lake.put(
            leftovers_key(owner), json.dumps({"owner": owner, "objects": keys}).encode(), "application/json"
        )
    del head["rebuilding"]
    index.write_head()
    _delete_unnamed_segments(lake, head)  # the replaced index's
    for info in lake.list(LEGACY_SHARDS_PREFIX):
        lake.delete(info.key)
    log.info("key index rebuilt: %d versions", sum(t.num_rows for t in index.shards.values()))
    return index


def index_versions(lake: Lake, head: Mapping[str, Any] | None = None) -> dict[Version, str]:
    """Every row of the index, as `head` (else the lake's HEAD) names it (for validate; ValueError when it
    cannot be read)."""
    if head is None:
        try:
            head = json.loads(lake.get(HEAD_KEY))
        except NotFoundError:
            return {}
    if not isinstance(head, dict):
        raise ValueError("key index HEAD is not an object")
    if head.get("format") in LEGACY_FORMATS:
        shards = {n: _read_legacy_shard(lake, n) for n in range(SHARDS)}
    else:
        shards = _read_shards(lake, _where(head), range(SHARDS))
    rows: dict[Version, str] = {}
    for table in shards.values():
        ids, hashes, owners = (table.column(n).to_pylist() for n in _SCHEMA.names)
        rows.update({(str(i), str(h)): str(o) for i, h, o in zip(ids, hashes, owners, strict=True)})
    return rows


def _legacy_number(key: str) -> int:
    """The shard a format-2 object holds (-1 for a key that is no shard's)."""
    name = key.removeprefix(LEGACY_SHARDS_PREFIX).removesuffix(".arrow")
    return int(name, 16) if len(name) == 2 and all(c in "0123456789abcdef" for c in name) else -1


def _delete_unnamed_segments(lake: Lake, head: Mapping[str, Any]) -> None:
    named = _named_segments(head)
    for info in lake.list(SEGMENTS_PREFIX):
        if info.key.removeprefix(SEGMENTS_PREFIX).removesuffix(".arrow") not in named:
            lake.delete(info.key)


def _write_head(lake: Lake, head: Mapping[str, Any]) -> None:
    lake.put(HEAD_KEY, (json.dumps(head, sort_keys=True) + "\n").encode(), "application/json")


def _table(rows: Mapping[Version, str]) -> pa.Table:
    """Index rows, sorted: {(story_id, content_hash): owner}."""
    ordered = sorted(rows.items())
    ids = [v[0] for v, _ in ordered]
    hashes = [v[1] for v, _ in ordered]
    owners = [o for _, o in ordered]
    return pa.table([pa.array(c, pa.string()) for c in (ids, hashes, owners)], schema=_SCHEMA)


def _sorted_unique(rows: pa.Table) -> pa.Table:
    """(shard, story_id, content_hash) rows sorted by those columns, each row once (strings compare as UTF-8
    bytes, which is code point order: the order Python's sorted() gives)."""
    rows = k.take(rows, k.sort_indices(rows, rows.column_names))
    # (shard is left out of the key: the same id is in the same shard)
    return k.filter_rows(rows, k.run_starts(rows.column("story_id"), rows.column("content_hash")))


def _versions_list(rows: pa.Table) -> list[Version]:
    ids, hashes = rows.column("story_id").to_pylist(), rows.column("content_hash").to_pylist()
    return [(str(i), str(h)) for i, h in zip(ids, hashes, strict=True)]


def _versions_of(rows: pa.Table) -> set[Version]:
    return set(_versions_list(rows))


def _read_shards(lake: Lake, where: Mapping[int, Location], numbers: Iterable[int]) -> dict[int, pa.Table]:
    """These shards from their segments: ranges of one segment less than READ_GAP apart in one read, the
    reads in parallel on an object store. ValueError when one cannot be read."""
    wanted = sorted(set(numbers))
    found = {n: _SCHEMA.empty_table() for n in wanted if n not in where}
    spans: list[tuple[str, int, int, list[tuple[int, int, int]]]] = []  # (segment, start, end, shards)
    for (name, offset, length), number in sorted((where[n], n) for n in wanted if n in where):
        if spans and spans[-1][0] == name and offset - spans[-1][2] <= READ_GAP:
            spans[-1] = (name, spans[-1][1], max(spans[-1][2], offset + length), spans[-1][3])
        else:
            spans.append((name, offset, offset + length, []))
        spans[-1][3].append((number, offset, length))
    read = io_map(lambda span: _read_range(lake, *span[:3]), spans, parallel=lake.parallel_io)
    for (name, start, _, shards), data in zip(spans, read, strict=True):
        for number, offset, length in shards:
            found[number] = _shard_table(data.slice(offset - start, length), f"{number:02x} (segment {name})")
    return found


def _read_range(lake: Lake, name: str, start: int, end: int) -> pa.Buffer:
    try:
        data = lake.get_range(segment_key(name), start, end - start)
    except NotFoundError:
        raise ValueError(f"key index segment {name} is missing") from None
    if len(data) != end - start:
        raise ValueError(f"key index segment {name} ends before byte {end}")
    return arrow_buffer(data)  # never Python memory (parquet.py)


def _read_legacy_shard(lake: Lake, number: int) -> pa.Table:
    try:
        data = lake.get(legacy_shard_key(number))
    except NotFoundError:
        return _SCHEMA.empty_table()
    return _shard_table(arrow_buffer(data), f"{number:02x}")


def _shard_table(data: pa.Buffer, name: str) -> pa.Table:
    try:
        table = pa.ipc.open_stream(pa.BufferReader(data)).read_all()
    except (pa.ArrowException, OSError) as exc:
        raise ValueError(f"key index shard {name} is not an Arrow stream: {exc}") from exc
    if not table.schema.equals(_SCHEMA):
        raise ValueError(f"key index shard {name} has the schema {table.schema}")
    return table


def _write_segment(lake: Lake, name: str, shards: Mapping[int, pa.Table]) -> dict[int, Location]:
    """The non-empty shards' Arrow streams one after the other in one object; where each one is."""
    sink = pa.BufferOutputStream()
    stored: dict[int, Location] = {}
    for number, table in sorted(shards.items()):
        if not table.num_rows:
            continue
        start = sink.tell()
        with pa.ipc.new_stream(sink, _SCHEMA) as writer:  # uncompressed: a small shard reads in ~20 us
            writer.write_table(table.combine_chunks())  # one batch: the same rows give the same bytes
        stored[number] = (name, start, sink.tell() - start)
    if stored:
        lake.put(segment_key(name), sink.getvalue().to_pybytes(), "application/octet-stream")
    return stored
