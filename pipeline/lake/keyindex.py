"""The key index: which story versions the lake's manifests name, without reading the lake's objects.

`_state/index/` holds 256 shards (`shards/<xx>.arrow`, an Arrow IPC stream) of (story_id, content_hash, owner)
rows, the shard chosen by a hash of story_id, and `HEAD.json`. Shards stay Arrow tables in memory too (looked
up and rewritten with Arrow compute, no Python object per row), so a large index costs tens of bytes a row.
The owner is the manifest's `<job>/<label>`: the index stores keys and who named them, never file locations,
so rewriting or compacting story files does not invalidate it. A landing reads only the shards of its
batch's ids, so its cost does not grow with the number of days landed (it grows with the shards' size only),
and rewrites only those where its owner's rows change (a rerun that lands the same stories writes none).

Exactly once, with one writer at a time (as landing requires anyway): a landing adds itself to `pending`
in HEAD (owner, run id, shards it will touch, objects it will write) before it changes any shard, and is
removed from it once its shards are written and its manifest is. The next opening of the index resolves
every landing HEAD still names: the owner's rows in the touched shards are made to match the owner's
manifest (what that landing committed, else what an earlier attempt had committed, else none), and the
objects of a landing that never committed are remembered as leftovers that the owner's rerun keeps. A
missing or half-built index is rebuilt from the manifests (`wirefeed validate --repair-index` does the same
on demand).

`IndexSession` serves landings in a row by one process (a backfill's days): it opens the index once, keeps
its shards in memory, and writes the shards the landings changed once every MAX_DEFERRED landings and at
the end, not once per landing (a day of a few thousand stories touches all 256 shards, and on a local lake
each file written costs about half a millisecond of CPU). Those landings stay in HEAD's `pending` until
then, so a crash in between is resolved like an interrupted landing: from their manifests.
"""

from __future__ import annotations

import bisect
import functools
import hashlib
import itertools
import json
import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Final, TypeVar

import pyarrow as pa

from pipeline.errors import FatalError, WirefeedError
from pipeline.lake import kernels as k
from pipeline.lake.parquet import arrow_reader
from pipeline.lake.store import Lake, NotFoundError

log = logging.getLogger(__name__)

INDEX_PREFIX: Final = "_state/index/"
HEAD_KEY: Final = f"{INDEX_PREFIX}HEAD.json"
SHARDS: Final = 256
IO_THREADS: Final = 8
T = TypeVar("T")
R = TypeVar("R")
# HEAD's format: 2 = `pending` is a list of landings; 1 (read too) = one landing or None
FORMAT: Final = 2
MAX_DEFERRED: Final = 16  # landings of an IndexSession whose shard writes wait for one flush

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


def shard_key(shard: int) -> str:
    return f"{INDEX_PREFIX}shards/{shard:02x}.arrow"


def leftovers_key(owner: str) -> str:
    return f"{INDEX_PREFIX}leftovers/{owner}.json"


def owner_of(job: str, label: str) -> str:
    return f"{job}/{label}"


@dataclass
class KeyIndex:
    """An opened index (pending landings resolved). Shards are read on demand and cached. A landing asks for
    its ids' shards three times (lookup, begin, assign), usually for the same list of ids: the last answer
    is kept for the next question (`last`); hashlib's fallback caches each id's shard in `numbers`."""

    lake: Lake
    head: dict[str, Any]
    shards: dict[int, pa.Table] = field(default_factory=dict)
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
            try:
                rows = _read_shard(self.lake, number)
            except ValueError as exc:  # (json errors are ValueErrors too)
                if self.pending:
                    raise FatalError(f"{exc}; run `wirefeed validate --repair-index`", shard=number) from exc
                log.warning("%s: rebuilding the key index", exc)
                rebuilt = rebuild_index(self.lake)
                self.head, self.shards = rebuilt.head, rebuilt.shards
                return self.shards[number]
            self.shards[number] = rows
        return rows

    def preload(self, numbers: Iterable[int]) -> None:
        """Read the shards not read yet, in parallel."""
        missing = sorted(set(numbers) - set(self.shards))
        if not self.pending:
            try:
                for number, rows in zip(
                    missing,
                    io_map(lambda n: _read_shard(self.lake, n), missing, parallel=self.lake.parallel_io),
                    strict=True,
                ):
                    self.shards[number] = rows
            except ValueError:
                pass  # shard() rebuilds the index when it meets the unreadable one
        for number in missing:
            self.shard(number)

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
        _write_head(self.lake, self.head)

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
            _write_shards(self.lake, self.shards, changed)

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
            _write_head(self.lake, self.head)
        if self.lake.exists(leftovers_key(owner)):
            self.lake.delete(leftovers_key(owner))

    def flush(self) -> None:
        """Write the shards deferred landings changed, then clear them from HEAD (every one committed)."""
        if self.landing is not None:
            raise FatalError("key index: flush() in the middle of a landing", owner=self.landing)
        changed = sorted(self.dirty)
        _write_shards(self.lake, self.shards, changed)
        self.dirty.clear()
        if self.pending:
            self.head["pending"] = []
            _write_head(self.lake, self.head)


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
    if not isinstance(head, dict) or head.get("format") not in (1, FORMAT) or head.get("rebuilding"):
        return rebuild_index(lake)
    pending = head.get("pending") or []
    head = {**head, "format": FORMAT, "pending": [pending] if isinstance(pending, dict) else pending}
    index = KeyIndex(lake, head)
    if index.pending:
        _resolve(index)
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
    _write_head(index.lake, index.head)


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
    shards = {number: _table(shard_rows) for number, shard_rows in rows.items()}
    stale = {info.key for info in lake.list(f"{INDEX_PREFIX}shards/")}
    filled = [number for number, table in shards.items() if table.num_rows]  # absent reads as empty
    _write_shards(lake, shards, filled)
    stale -= {shard_key(n) for n in filled}
    for key in sorted(stale):
        lake.delete(key)
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
    head = {"format": FORMAT, "pending": []}
    _write_head(lake, head)
    log.info("key index rebuilt: %d versions", sum(t.num_rows for t in shards.values()))
    return KeyIndex(lake, head, shards)


def index_versions(lake: Lake) -> dict[Version, str]:
    """Every row of the index (for validate)."""
    rows: dict[Version, str] = {}
    for number in range(SHARDS):
        table = _read_shard(lake, number)
        ids, hashes, owners = (table.column(n).to_pylist() for n in _SCHEMA.names)
        rows.update({(str(i), str(h)): str(o) for i, h, o in zip(ids, hashes, owners, strict=True)})
    return rows


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


def _read_shard(lake: Lake, number: int) -> pa.Table:
    try:
        data = lake.get(shard_key(number))
    except NotFoundError:
        return _SCHEMA.empty_table()
    try:
        table = pa.ipc.open_stream(arrow_reader(data)).read_all()  # never Python memory (parquet.py)
    except (pa.ArrowException, OSError) as exc:
        raise ValueError(f"key index shard {number:02x} is not an Arrow file: {exc}") from exc
    if not table.schema.equals(_SCHEMA):
        raise ValueError(f"key index shard {number:02x} has the schema {table.schema}")
    return table


def _write_shards(lake: Lake, shards: Mapping[int, pa.Table], numbers: Iterable[int]) -> None:
    """Write these shards, durable together once all are (a local lake fsyncs their directory once, not
    after each: 256 shards, 0.072 -> 0.056 CPU-s): every caller writes HEAD or a manifest only after."""
    with lake.batch():
        io_map(lambda n: _write_shard(lake, n, shards[n]), numbers, parallel=lake.parallel_io)


def _write_shard(lake: Lake, number: int, table: pa.Table) -> None:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, _SCHEMA) as writer:  # uncompressed: a small shard reads in ~20 us
        writer.write_table(table.combine_chunks())  # one batch: the same rows give the same bytes
    lake.put(shard_key(number), sink.getvalue().to_pybytes(), "application/vnd.apache.arrow.stream")
