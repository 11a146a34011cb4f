"""Stories <-> Arrow tables and Parquet bytes, always with the schema derived from schemas/."""

from __future__ import annotations

import contextlib
import functools
import operator
import os
import sys
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any, BinaryIO, Final

import pyarrow as pa

from pipeline.schema import Story, arrow_schema, field_names

COMPRESSION: Final = "zstd"
# Dictionary encoding only where values repeat (per input, feed or taxonomy): on unique values (ids, URLs,
# titles, bodies) it only fills a dictionary, gives up and writes them plain. Statistics (min/max, nulls)
# only on what readers filter by: ids, the time windows, the low-cardinality labels.
DICTIONARY_COLUMNS: Final = frozenset(
    {"source", "origin", "feed_url", "authors", "language", "categories", "fetched_at", "topics"}
    | {"topic_hits", "taxonomy_version", "references", "attribution", "schema_version"}
)
STATISTICS_COLUMNS: Final = frozenset(
    {"story_id", "source", "language", "published_at", "updated_at", "fetched_at", "taxonomy_version"}
)


def _use_jemalloc() -> None:
    """Arrow's allocator: jemalloc rather than the wheel's default, mimalloc, which hands freed pages back to
    the system at once, so every batch's table and Parquet buffers fault their pages in again (in a 100,000
    story backfill: about twice the CPU in to_table and in the Parquet write, and more system time). An
    explicit ARROW_DEFAULT_MEMORY_POOL other than jemalloc is left alone; so is a pyarrow built without
    jemalloc. (pipeline/__init__.py sets that variable to jemalloc for Arrow's C++ allocations, unless the
    user did.)"""
    if os.environ.get("ARROW_DEFAULT_MEMORY_POOL", "jemalloc") != "jemalloc":
        return
    with contextlib.suppress(NotImplementedError):
        pa.set_memory_pool(pa.jemalloc_memory_pool())


_use_jemalloc()


def story_key(story: Story) -> tuple[str, str]:
    """The exactly-once key: a story version is (story_id, content_hash)."""
    return story["story_id"], story["content_hash"]


def dedupe(stories: Iterable[Story]) -> tuple[list[Story], int]:
    """Keep the first of each (story_id, content_hash); return (unique stories, number dropped)."""
    seen: set[tuple[str, str]] = set()
    unique: list[Story] = []
    dropped = 0
    for story in stories:
        key = story_key(story)
        if key in seen:
            dropped += 1
            continue
        seen.add(key)
        unique.append(story)
    return unique, dropped


def to_table(stories: Iterable[Story]) -> pa.Table:
    """Build a table with exactly arrow_schema(); raises pyarrow errors on a record of the wrong shape
    (KeyError for a missing field). The rows are turned into columns in one pass (_columns), each column
    converted with its schema type (_column)."""
    schema = arrow_schema()
    rows = list(stories)
    if not rows:
        return schema.empty_table()
    return pa.Table.from_arrays(
        [_column(c, f.type) for c, f in zip(_columns(rows), schema, strict=True)], schema=schema
    )


def _columns(rows: list[Story]) -> Iterable[tuple[Any, ...]]:
    """The rows' values column by column, in schema order: read by the compiled module where it is built (no
    tuple per row: about a third of the cost of zip over the rows' value tuples), else by zip."""
    accel = _column_accel()
    columns: list[tuple[Any, ...]] | None = None if accel is None else accel.columns(rows, _names())
    return zip(*map(_row_values(), rows), strict=True) if columns is None else columns


@functools.cache
def _names() -> tuple[str, ...]:
    """The field names, interned: the very key objects of a story dict built in code (normalize's), which
    the compiled transpose then reads in key order (no lookup a value)."""
    return tuple(sys.intern(name) for name in field_names())


@functools.cache
def _row_values() -> Callable[[Story], tuple[Any, ...]]:
    """story -> its values in schema order (several fields: operator.itemgetter answers a tuple)."""
    return operator.itemgetter(*field_names())


# A story's topic_hits packed: one flat tuple of each hit's topic, term, count and in_title, hit after hit
# (the compiled tagger's tag(..., packed=True)). Only to_table reads it: stories that go straight into a
# table (a backfill's, a daily run's) carry it, and skip making, reading and freeing a dict a hit (~14 a
# story on the bench's wire stories: about a tenth of a JSON Lines backfill's CPU). Everywhere else a story's
# topic_hits is a list of {"topic", "term", "count", "in_title"} dicts (unpack_hits).
PackedHits = tuple[Any, ...]
HIT_FIELDS: Final = ("topic", "term", "count", "in_title")


def unpack_hits(hits: list[dict[str, Any]] | PackedHits) -> list[dict[str, Any]]:
    """A story's topic_hits as hit dicts, packed or not."""
    if not isinstance(hits, tuple):
        return hits
    width = len(HIT_FIELDS)
    return [dict(zip(HIT_FIELDS, hits[i : i + width], strict=True)) for i in range(0, len(hits), width)]


_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND: Final = timedelta(microseconds=1)


def _column(values: tuple[Any, ...], typ: pa.DataType) -> Any:
    """pa.array(values, type=typ); string, list-of-string, topic_hits and UTC timestamp columns from their
    buffers, where the compiled module takes the values (_from_buffers); else a timestamp column of aware
    datetimes cheaper (the same array) from their microseconds since the epoch (pa.array asks each value's
    utcoffset() in Python)."""
    built = _from_buffers(values, typ)
    if built is not None:
        return built
    if typ == _HITS:
        values = tuple(map(unpack_hits, values))
    if pa.types.is_timestamp(typ) and set(map(type, values)) == {datetime} and typ.unit == "us" and typ.tz:
        try:  # aware: the difference from the epoch is exact; a naive datetime raises TypeError
            micros = [(value - _EPOCH) // _MICROSECOND for value in values]
        except TypeError:
            return pa.array(values, type=typ)
        return pa.array(micros, type=pa.int64()).view(typ)
    return pa.array(values, type=typ)


_STRING: Final = pa.string()
_UTC_MICROS: Final = pa.timestamp("us", tz="UTC")
_STRING_LIST: Final = pa.list_(pa.string())
_HIT: Final = pa.struct(
    [("topic", pa.string()), ("term", pa.string()), ("count", pa.int32()), ("in_title", pa.bool_())]
)
_HITS: Final = pa.list_(_HIT)


@functools.cache
def _column_accel() -> Any:
    """The compiled column builders (pipeline.parsing._accel), or None where it is not built; imported on
    first use (it loads lxml), not with this module."""
    try:
        from pipeline.parsing import _accel
    except ImportError:
        return None
    return _accel


def _from_buffers(values: tuple[Any, ...], typ: pa.DataType) -> Any:
    """pa.array(values, type=typ) built from the buffers the compiled module fills (one pass over the values,
    no per-value conversion in pyarrow) for a string, list<string>, topic_hits or UTC timestamp column; None
    where it is not built or does not take the values (another value type, a lone surrogate, a datetime in
    another zone, ...): pa.array (or _column's own conversion) decides then, with the same array or its own
    error."""
    accel = _column_accel()
    if accel is None:
        return None
    n = len(values)
    if typ == _STRING:
        parts = accel.string_column(values)
        if parts is None:
            return None
        validity, nulls, offsets, data = parts
        buffers = [_buffer(validity), pa.py_buffer(offsets), pa.py_buffer(data)]
        return pa.Array.from_buffers(typ, n, buffers, null_count=nulls)
    if typ == _UTC_MICROS:
        stamps = accel.timestamp_column(values)
        if stamps is None:
            return None
        validity, nulls, micros = stamps
        return pa.Array.from_buffers(typ, n, [_buffer(validity), pa.py_buffer(micros)], null_count=nulls)
    if typ == _STRING_LIST:
        lists = accel.string_lists(values)
        if lists is None:
            return None
        list_offsets, offsets, data, count = lists
        strings = pa.Array.from_buffers(_STRING, count, [None, pa.py_buffer(offsets), pa.py_buffer(data)])
        return pa.Array.from_buffers(typ, n, [None, pa.py_buffer(list_offsets)], children=[strings])
    if typ == _HITS:
        hits = accel.topic_hits(values)
        if hits is None:
            return None
        list_offsets, topic_offsets, topics, term_offsets, terms, counts, flags, count = hits
        children: list[Any] = [
            pa.Array.from_buffers(_STRING, count, [None, pa.py_buffer(topic_offsets), pa.py_buffer(topics)]),
            pa.Array.from_buffers(_STRING, count, [None, pa.py_buffer(term_offsets), pa.py_buffer(terms)]),
            pa.Array.from_buffers(pa.int32(), count, [None, pa.py_buffer(counts)]),
            pa.Array.from_buffers(pa.bool_(), count, [None, pa.py_buffer(flags)]),
        ]
        struct = pa.Array.from_buffers(_HIT, count, [None], children=children)
        return pa.Array.from_buffers(typ, n, [None, pa.py_buffer(list_offsets)], children=[struct])
    return None


def _buffer(data: bytes | None) -> pa.Buffer | None:
    return None if data is None else pa.py_buffer(data)


def write_parquet(table: pa.Table, sink: str | BinaryIO | pa.NativeFile) -> None:
    if not table.schema.equals(arrow_schema(), check_metadata=False):
        table = table.cast(arrow_schema())
    # pyarrow.parquet.write_table's own writer, called as that function calls it (same options, same bytes:
    # tests/test_parquet.py) without importing pyarrow.parquet (its Python layer and pyarrow.fs: ~30 ms of
    # CPU in every process that lands)
    from pyarrow._parquet import ParquetWriter

    try:
        writer = ParquetWriter(sink, table.schema, **_writer_options())
        try:
            writer.write_table(table, row_group_size=None)
        finally:
            writer.close()
    except Exception:
        if isinstance(sink, str):  # as write_table does: no partial file left at a path
            with contextlib.suppress(OSError):
                os.remove(sink)
        raise


@functools.cache
def _writer_options() -> dict[str, Any]:
    """Parquet writer options: by leaf column path ("topics.list.element"; a top-level name alone does not
    reach a nested column's values)."""
    schema = arrow_schema()

    def leaves(names: frozenset[str]) -> list[str]:
        return [path for f in schema if f.name in names for path in _leaf_paths(f.name, f.type)]

    return {
        "compression": COMPRESSION,
        "use_dictionary": leaves(DICTIONARY_COLUMNS),
        "write_statistics": leaves(STATISTICS_COLUMNS),
        # pyarrow.parquet.ParquetWriter's defaults, which _parquet.ParquetWriter does not all share
        "version": "2.6",
        "writer_engine_version": "V2",
        "data_page_version": "1.0",
        "use_compliant_nested_type": True,
        "use_deprecated_int96_timestamps": False,
        "store_schema": True,
    }


def _leaf_paths(path: str, typ: pa.DataType) -> list[str]:
    if pa.types.is_list(typ):
        return _leaf_paths(f"{path}.list.element", typ.value_type)
    if pa.types.is_struct(typ):
        return [leaf for f in typ for leaf in _leaf_paths(f"{path}.{f.name}", f.type)]
    return [path]


def parquet_bytes(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    write_parquet(table, sink)
    data: bytes = sink.getvalue().to_pybytes()
    return data


def arrow_reader(data: bytes) -> pa.BufferReader:
    """A reader over a copy of `data` in Arrow's own memory. Never hand Arrow Python memory (bytes, BytesIO):
    Arrow's worker threads may drop the last reference to a reader after the read returned, and releasing
    Python memory needs the GIL; when that happens while the interpreter shuts down, the thread is ended
    inside a C++ destructor and the process aborts ("terminate called without an active exception", exit
    134, after all work is done)."""
    return pa.BufferReader(arrow_buffer(data))


def arrow_buffer(data: bytes) -> pa.Buffer:
    """A copy of `data` in Arrow's own memory (see arrow_reader)."""
    copy = pa.BufferOutputStream()
    copy.write(data)
    return copy.getvalue()


def read_table(source: bytes | str | BinaryIO, columns: list[str] | None = None) -> pa.Table:
    import pyarrow.parquet as pq  # lazy: a landing writes Parquet, it rarely reads it

    reader = arrow_reader(source) if isinstance(source, bytes) else source
    return pq.read_table(reader, columns=columns)


def read_stories(source: bytes | str | BinaryIO) -> list[Story]:
    """Read a Parquet file written by write_parquet back into story dicts (UTC-aware datetimes)."""
    rows: list[Story] = read_table(source).to_pylist()
    return rows
