import ctypes
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from types import MappingProxyType

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.lake.parquet import (
    DICTIONARY_COLUMNS,
    STATISTICS_COLUMNS,
    arrow_reader,
    dedupe,
    parquet_bytes,
    read_stories,
    read_table,
    to_table,
)
from pipeline.schema import arrow_schema, field_names
from tests.conftest import REPO
from tests.test_schema import make_story


def test_roundtrip_keeps_schema_and_values() -> None:
    stories = [make_story(), make_story(story_id="u:2", topics=[], topic_hits=[], references=[])]
    data = parquet_bytes(to_table(stories))
    assert data[:4] == b"PAR1"
    table = read_table(data)
    assert table.schema.equals(arrow_schema(), check_metadata=False)
    assert read_stories(data) == stories


def test_dictionary_encoding_and_statistics_only_on_the_chosen_columns() -> None:
    assert set(field_names()) >= DICTIONARY_COLUMNS | STATISTICS_COLUMNS  # a renamed field is not lost
    stories = [make_story(story_id=f"u:{i}", body=f"body {i}", categories=["a", "b"]) for i in range(50)]
    data = parquet_bytes(to_table(stories))
    chunks = pq.ParquetFile(arrow_reader(data)).metadata.row_group(0)
    dictionary, statistics = set(), set()
    for i in range(chunks.num_columns):
        chunk = chunks.column(i)
        top = chunk.path_in_schema.split(".")[0]
        if "RLE_DICTIONARY" in chunk.encodings:
            dictionary.add(top)
        if chunk.statistics is not None:
            statistics.add(top)
    assert dictionary == DICTIONARY_COLUMNS  # nested ones too (leaf paths: topics.list.element, ...)
    assert statistics == STATISTICS_COLUMNS
    assert read_stories(data) == stories


def test_to_table_rejects_a_story_of_the_wrong_shape() -> None:
    with pytest.raises((pa.ArrowInvalid, pa.ArrowTypeError)):
        to_table([make_story(published_at="yesterday")])


def test_empty_table_still_has_the_schema() -> None:
    assert read_table(parquet_bytes(to_table([]))).schema.equals(arrow_schema(), check_metadata=False)


def test_dedupe_on_id_and_content_hash() -> None:
    a, b = make_story(), make_story(content_hash="edited")
    unique, dropped = dedupe([a, a, b, make_story()])
    assert [s["content_hash"] for s in unique] == ["abc", "edited"]
    assert dropped == 2


# --- exit 134: Arrow must never hold Python memory ----------------------------------------------------------
# Arrow's worker threads may drop the last reference to a reader after a read returned; when that reader
# wraps Python memory (bytes, BytesIO) the release needs the GIL, and during interpreter shutdown the thread
# is ended inside a C++ destructor: "terminate called without an active exception", exit 134, after all work
# was done. Before the fix about 1 in 7 of these processes aborted (4 threads of reads, then exit), so 30
# in a row caught it nearly always; the structural test below catches it every time.

_READ_THEN_EXIT = """
import sys, threading
from pipeline.lake.parquet import read_table
data = open(sys.argv[1], "rb").read()
def reads():
    for _ in range(20):
        read_table(data, columns=["story_id", "content_hash"])
threads = [threading.Thread(target=reads) for _ in range(4)]
for t in threads: t.start()
for t in threads: t.join()
"""


@pytest.mark.slow
def test_processes_reading_parquet_always_exit_cleanly(tmp_path: Path) -> None:
    path = tmp_path / "stories.parquet"
    rows = [make_story(story_id=f"u:{i}", content_hash=f"h{i}") for i in range(2000)]
    path.write_bytes(parquet_bytes(to_table(rows)))
    runs = [
        subprocess.run([sys.executable, "-c", _READ_THEN_EXIT, str(path)], capture_output=True, timeout=120)
        for _ in range(30)
    ]
    assert [(r.returncode, r.stderr[-200:]) for r in runs if r.returncode != 0] == []


def _data_address(data: bytes) -> int:
    return ctypes.cast(ctypes.c_char_p(data), ctypes.c_void_p).value or 0


def test_arrow_reads_from_its_own_copy_never_from_python_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    data = parquet_bytes(to_table([make_story()]))
    sources: list[object] = []
    real_read_table = pq.read_table
    monkeypatch.setattr(
        pq, "read_table", lambda source, **kw: sources.append(source) or real_read_table(source, **kw)
    )
    read_table(data)
    read_stories(data)
    assert len(sources) == 2
    for source in sources:
        assert isinstance(source, pa.BufferReader)  # not io.BytesIO: Arrow would call back into Python
        source.seek(0)
        assert source.read_buffer(4).address != _data_address(data)  # a copy, not a view of `data`
    reader = arrow_reader(data)
    assert reader.read_buffer(4).address != _data_address(data) and reader.size() == len(data)


@pytest.mark.slow
def test_wirefeed_run_exits_0_every_time(tmp_path: Path) -> None:
    """The symptom users saw: runs alternating between a feed and its edited version, on a local lake."""
    feed = tmp_path / "feed.xml"
    feeds = tmp_path / "feeds.yaml"
    feeds.write_text(f"- {{id: desk, url: {feed}, local: true}}\n")
    versions = [(REPO / "samples" / "rss-trade-desk.xml").read_bytes()]
    versions.append(versions[0].replace(b"<title>", b"<title>Edited: "))
    codes = []
    for i in range(30):
        feed.write_bytes(versions[i % 2])
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "pipeline.cli",
                "run",
                "--feeds",
                str(feeds),
                "--lake",
                str(tmp_path / "lake"),
                "--date",
                "2026-11-20",
            ],
            capture_output=True,
            timeout=300,
        )
        codes.append((done.returncode, done.stderr[-300:] if done.returncode else b""))
    assert codes == [(0, b"")] * 30


_POOL = "import pyarrow as pa, pipeline.lake.parquet; print(pa.default_memory_pool().backend_name)"


def test_arrow_allocates_with_jemalloc_unless_told_otherwise() -> None:
    """mimalloc, the wheel's default, returns freed pages at once: each batch faults its pages in again."""
    if "jemalloc" not in pa.supported_memory_backends():
        pytest.skip("this pyarrow was built without jemalloc: its default pool stays")
    env = {k: v for k, v in os.environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"}
    run = subprocess.run([sys.executable, "-c", _POOL], capture_output=True, text=True, env=env, check=True)
    assert run.stdout.strip() == "jemalloc"
    env["ARROW_DEFAULT_MEMORY_POOL"] = "system"
    run = subprocess.run([sys.executable, "-c", _POOL], capture_output=True, text=True, env=env, check=True)
    assert run.stdout.strip() == "system"


_CPP_POOL = (
    "import pipeline, pyarrow as pa, pyarrow.parquet as pq, pipeline.lake.parquet\n"
    "sink = pa.BufferOutputStream()\n"
    "pq.write_table(pa.table({'a': ['x' * 1000] * 20000}), sink, compression='zstd')\n"
    "pq.read_table(pa.BufferReader(sink.getvalue()))\n"
    "print(pa.mimalloc_memory_pool().max_memory())"
)


def test_arrows_own_cpp_allocations_use_jemalloc_too() -> None:
    """Parquet's and IPC's C++ code allocates from the default the environment chose, not pyarrow's pool:
    importing pipeline sets it, so mimalloc (which zeroes huge pages again and again) is never used."""
    if "jemalloc" not in pa.supported_memory_backends() or "mimalloc" not in pa.supported_memory_backends():
        pytest.skip("this pyarrow lacks jemalloc or mimalloc")
    env = {k: v for k, v in os.environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"}
    run = subprocess.run(
        [sys.executable, "-c", _CPP_POOL], capture_output=True, text=True, env=env, check=True
    )
    assert run.stdout.strip() == "0"
    env["ARROW_DEFAULT_MEMORY_POOL"] = "mimalloc"  # the user's choice stands
    run = subprocess.run(
        [sys.executable, "-c", _CPP_POOL], capture_output=True, text=True, env=env, check=True
    )
    assert int(run.stdout.strip()) > 0


def _table_by_columns(stories: list[dict[str, object]]) -> pa.Table:
    """to_table's reference: one Python list a column, Table.from_pydict with the schema."""
    from pipeline.schema import field_names

    return pa.Table.from_pydict({n: [s[n] for s in stories] for n in field_names()}, schema=arrow_schema())


def test_to_table_equals_the_column_lists_reference() -> None:
    stories = [
        make_story(),
        make_story(story_id="u:2", topics=[], topic_hits=[], references=[], authors=[], published_at=None),
        make_story(
            story_id="u:3", summary="s", guid="g", feed_url="https://f.example/", title="\u00e9t\u00e9"
        ),
    ]
    for batch in (stories, stories[:1], []):
        table = to_table(batch)
        assert table.equals(_table_by_columns(batch)) and table.schema.equals(arrow_schema())
    missing = make_story()
    del missing["body"]
    with pytest.raises(KeyError):
        to_table([make_story(), missing])


def test_timestamp_columns_equal_pa_array_for_every_kind_of_datetime() -> None:
    """to_table builds a column of aware datetimes from their microseconds: the same array as pa.array,
    also at the extremes, for offsets other than UTC, and naive or mixed columns (those go to pa.array)."""
    from datetime import UTC, datetime, timedelta, timezone

    from pipeline.lake.parquet import _column

    typ = pa.timestamp("us", tz="UTC")
    plus2 = timezone(timedelta(hours=2))
    columns = [
        (
            datetime(2025, 9, 1, 23, 16, 0, 123456, tzinfo=UTC),
            datetime(1969, 12, 31, 23, 59, 59, 1, tzinfo=UTC),
        ),
        (datetime(1, 1, 1, tzinfo=UTC), datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)),
        (datetime(2025, 9, 1, 1, 0, tzinfo=plus2), datetime(2025, 9, 1, 1, 0, tzinfo=UTC)),
        (datetime(2025, 9, 1, 1, 0), datetime(2025, 9, 1, 2, 0)),
        (datetime(2025, 9, 1, 1, 0, tzinfo=UTC), None),
    ]
    for values in columns:
        assert _column(values, typ).equals(pa.array(values, type=typ)), values
        assert _column(values, typ).type == typ
    with pytest.raises((pa.ArrowInvalid, pa.ArrowTypeError)):
        _column((datetime(2025, 9, 1, tzinfo=UTC), "yesterday"), typ)


_HITS_TYPE = pa.list_(
    pa.struct(
        [("topic", pa.string()), ("term", pa.string()), ("count", pa.int32()), ("in_title", pa.bool_())]
    )
)


def _hit(
    topic: object = "t", term: object = "x", count: object = 1, in_title: object = False
) -> dict[str, object]:
    return {"topic": topic, "term": term, "count": count, "in_title": in_title}


_UTC = pa.timestamp("us", tz="UTC")
_STAMP = datetime(2025, 9, 1, 12, 34, 56, 789012, tzinfo=UTC)
_BUFFER_COLUMNS: list[tuple[pa.DataType, list[tuple[object, ...]]]] = [
    (
        _UTC,
        [
            (_STAMP, _STAMP, None, datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)),
            (datetime(1, 1, 1, tzinfo=UTC), datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)),
            (
                datetime(2000, 2, 29, tzinfo=UTC),
                datetime(1900, 3, 1, tzinfo=UTC),
                datetime(2100, 2, 28, tzinfo=UTC),
            ),
            tuple(
                datetime(1970, 1, 1, tzinfo=UTC) + timedelta(days=d, microseconds=d)
                for d in range(-800, 800, 7)
            ),
            (None, None),
            (),
        ],
    ),
    (
        pa.string(),
        [
            ("a", "", "\u00e9t\u00e9 \U0001f600", "x" * 5000),
            ("a", None, "b", None),
            (None, None),
            (),
            ("",),
        ],
    ),
    (
        pa.list_(pa.string()),
        [
            (["a", "b"], [], ["\u00e9"], [""]),
            ([], []),
            (),
        ],
    ),
    (
        _HITS_TYPE,
        [
            ([_hit(), _hit("u", "\u00e9", 7, True)], [], [_hit(count=2**31 - 1, in_title=True)]),
            ([], []),
            ([_hit(count=-(2**31))] * 9, [_hit(in_title=True)] * 17),
            (),
        ],
    ),
]


# Values the compiled builders leave to pa.array (which converts them, or raises its own error)
class _Stamp(datetime):
    pass


_OTHER_VALUES: list[tuple[pa.DataType, tuple[object, ...]]] = [
    (_UTC, (_STAMP, _STAMP.astimezone(timezone(timedelta(hours=2))))),  # another zone: the same instant
    (_UTC, (_STAMP, _STAMP.replace(tzinfo=None))),  # naive
    (_UTC, (_Stamp(2025, 9, 1, tzinfo=UTC),)),  # a subclass
    (_UTC, (_STAMP, _STAMP.date())),
    (_UTC, (_STAMP, "2025-09-01")),
    (pa.string(), ("a", 1)),
    (pa.string(), ("a", "\ud800")),
    (pa.string(), ("a", b"bytes")),
    (pa.list_(pa.string()), (["a"], ("b",))),
    (pa.list_(pa.string()), (["a"], None)),
    (pa.list_(pa.string()), (["a", None],)),
    (pa.list_(pa.string()), (["a", 1],)),
    (_HITS_TYPE, ([_hit(count=2**31)],)),
    (_HITS_TYPE, ([_hit(count=True)],)),
    (_HITS_TYPE, ([_hit(count=1.0)],)),
    (_HITS_TYPE, ([_hit(in_title=1)],)),
    (_HITS_TYPE, ([_hit(topic=None)],)),
    (_HITS_TYPE, ([{"topic": "t", "term": "x", "count": 1}],)),
    (_HITS_TYPE, ([{**_hit(), "extra": 1}],)),
    (_HITS_TYPE, ([_hit()], None)),
    (_HITS_TYPE, ([("t", "x", 1, False)],)),
]


@pytest.mark.parametrize("accel", [True, False], ids=["compiled", "python"])
def test_buffer_built_columns_equal_pa_array(accel: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """String, list<string>, topic_hits and UTC timestamp columns built from the compiled module's buffers are
    pa.array's own arrays (values, nulls, types), and values it does not take go to pa.array: same result or
    error."""
    from pipeline.lake import parquet

    if accel and parquet._column_accel() is None:
        pytest.skip("pipeline.parsing._accel is not built")
    if not accel:
        monkeypatch.setattr(parquet, "_column_accel", lambda: None)
    for typ, columns in _BUFFER_COLUMNS:
        for values in columns:
            built = parquet._column(values, typ)
            built.validate(full=True)
            expected = pa.array(values, type=typ)
            assert built.equals(expected) and built.type == typ and built.null_count == expected.null_count
    for typ, values in _OTHER_VALUES:
        if accel:
            assert parquet._from_buffers(values, typ) is None, values
        try:
            expected = pa.array(values, type=typ)
        except Exception as exc:  # pa.array's error: _column raises the same
            with pytest.raises(type(exc)):
                parquet._column(values, typ)
        else:
            assert parquet._column(values, typ).equals(expected), values


def test_compiled_columns_are_zip_over_the_rows() -> None:
    """The compiled transpose gives zip's columns (the same objects, in schema order), KeyError(name) for a
    row without a field, as operator.itemgetter does, and None (zip decides) for a row that is not a dict."""
    from pipeline.lake import parquet

    accel = parquet._column_accel()
    if accel is None:
        pytest.skip("pipeline.parsing._accel is not built")
    rows = [make_story(story_id=f"u:{i}", title=f"T{i}") for i in range(50)]
    names = parquet._names()
    assert accel.columns(rows, names) == list(zip(*map(parquet._row_values(), rows), strict=True))
    ids = accel.columns(rows, names)[names.index("story_id")]
    assert all(a is r["story_id"] for a, r in zip(ids, rows, strict=True))
    assert accel.columns([], names) == [()] * len(names)
    broken = [*rows[:3], {k: v for k, v in rows[3].items() if k != "body"}]
    with pytest.raises(KeyError, match="body"):
        accel.columns(broken, names)
    with pytest.raises(KeyError, match="body"):
        to_table(broken)
    assert accel.columns([*rows[:2], MappingProxyType(rows[2])], names) is None
    assert to_table([*rows[:2], MappingProxyType(rows[2])]).equals(to_table(rows[:3]))


def test_buffer_built_columns_survive_their_values() -> None:
    """The arrays own copies of the values' bytes: they stay valid after the values are gone."""
    from pipeline.lake import parquet

    values = tuple(f"story {i} \u00e9" for i in range(100))
    column = parquet._column(values, pa.string())
    del values
    assert column.to_pylist() == [f"story {i} \u00e9" for i in range(100)]


def test_write_parquet_writes_the_bytes_pyarrow_parquet_writes(tmp_path: Path) -> None:
    """write_parquet calls pyarrow's compiled writer itself (no pyarrow.parquet import): same bytes as
    pq.write_table with the same options, to memory and to a path."""
    table = to_table([make_story(), make_story(story_id="u:2", topics=[], topic_hits=[], references=[])])
    from pipeline.lake.parquet import _writer_options, write_parquet

    chosen = {k: _writer_options()[k] for k in ("compression", "use_dictionary", "write_statistics")}
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, **chosen)
    assert parquet_bytes(table) == sink.getvalue().to_pybytes()
    write_parquet(table, str(tmp_path / "a.parquet"))
    pq.write_table(table, str(tmp_path / "b.parquet"), **chosen)
    assert (tmp_path / "a.parquet").read_bytes() == (tmp_path / "b.parquet").read_bytes()


def test_write_parquet_leaves_no_partial_file_at_a_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write that fails once its file exists removes the file, as pq.write_table does."""
    from pipeline.lake import parquet

    table = to_table([make_story()])
    target = tmp_path / "a.parquet"
    real = parquet._writer_options

    def options() -> dict[str, object]:
        return {**real(), "data_page_version": "9.9"}  # refused by the writer once it has opened its file

    monkeypatch.setattr(parquet, "_writer_options", options)
    with pytest.raises(ValueError):
        parquet.write_parquet(table, str(target))
    assert not target.exists()


def test_compiled_columns_read_in_key_order_only_when_the_keys_are_the_names_in_order() -> None:
    """Rows whose keys are the schema's names, the same objects in the same order, are read by position;
    any other row (keys reordered, equal but not identical key objects, a key added or missing) by lookup:
    the values are zip's either way. Likewise the topic_hits buffers for hits in and out of template order."""
    from pipeline.lake import parquet

    accel = parquet._column_accel()
    if accel is None:
        pytest.skip("pipeline.parsing._accel is not built")
    names = parquet._names()
    base = make_story(story_id="u:0")
    in_order = [dict(zip(names, (base[n] for n in names), strict=True)) for _ in range(3)]
    reordered = dict(reversed(list(in_order[0].items())))
    # equal key strings that are other objects (built at run time, not interned), in schema order
    copied = {"".join(list(n)): in_order[0][n] for n in names}
    assert all(a is not b for a, b in zip(copied, names, strict=True))
    swapped = dict(in_order[0])
    swapped["title"], swapped["body"] = "body text", "title text"  # values moved, keys kept in place
    extra = {**in_order[0], "zzz": 1}
    rows = [*in_order, reordered, copied, swapped, extra]
    expected = list(zip(*map(parquet._row_values(), rows), strict=True))
    assert accel.columns(rows, names) == expected
    got = accel.columns(rows, names)
    assert all(a is b for c, e in zip(got, expected, strict=True) for a, b in zip(c, e, strict=True))
    missing = dict(in_order[0])
    del missing["schema_version"]
    missing["other"] = 1  # same size as the names, one key different
    with pytest.raises(KeyError, match="schema_version"):
        accel.columns([*in_order, missing], names)

    keys = ("topic", "term", "count", "in_title")
    template = dict.fromkeys(keys)
    ordered = {**template, "topic": "tariffs", "term": "tariff", "count": 2, "in_title": True}
    backwards = {"in_title": False, "count": 1, "term": "duty", "topic": "tariffs"}
    rebuilt = {"".join(list(k)): v for k, v in ordered.items()}
    hits = [[ordered, backwards], [], [rebuilt]]
    built = parquet._column(tuple(hits), parquet._HITS)
    assert built.equals(pa.array(hits, type=parquet._HITS))


def _packed(hits: list[dict[str, object]]) -> tuple[object, ...]:
    return tuple(hit[name] for hit in hits for name in ("topic", "term", "count", "in_title"))


_HIT_LISTS: list[list[dict[str, object]]] = [
    [_hit(), _hit("u", "\u00e9t\u00e9 \U0001f600", 7, True)],
    [],
    [_hit(count=2**31 - 1, in_title=True), _hit(count=-(2**31))],
    [_hit("tariffs", "sense:class:trade", 3, True)] * 20,
]


@pytest.mark.parametrize("accel", [True, False], ids=["compiled", "python"])
def test_packed_topic_hits_build_the_table_their_dicts_build(
    accel: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A story's topic_hits packed (one flat tuple, as the compiled tagger gives it for a story bound for a
    table) gives the column its hit dicts give, alone or among unpacked ones; values the compiled builder
    does not take are unpacked and go to pa.array, whose array or error they get."""
    from pipeline.lake import parquet

    if accel and parquet._column_accel() is None:
        pytest.skip("pipeline.parsing._accel is not built")
    if not accel:
        monkeypatch.setattr(parquet, "_column_accel", lambda: None)
    dicts = [make_story(story_id=f"u:{i}", topic_hits=hits) for i, hits in enumerate(_HIT_LISTS)]
    packed = [{**s, "topic_hits": _packed(s["topic_hits"])} for s in dicts]  # type: ignore[arg-type]
    mixed = [p if i % 2 else d for i, (d, p) in enumerate(zip(dicts, packed, strict=True))]
    expected = to_table(dicts)
    assert to_table(packed).equals(expected) and to_table(mixed).equals(expected)
    for d, p in zip(dicts, packed, strict=True):
        assert parquet.unpack_hits(p["topic_hits"]) == d["topic_hits"]
    for bad, error in [
        (_packed([_hit(count=2**31)]), (pa.ArrowInvalid, OverflowError)),
        (_packed([_hit(term=None)]), None),  # a null term: pa.array takes it
        (("t", "x", 1), ValueError),  # not whole hits
    ]:
        values = (_packed(_HIT_LISTS[0]), bad)
        if error is None:
            assert parquet._column(values, _HITS_TYPE).equals(
                pa.array([_HIT_LISTS[0], parquet.unpack_hits(bad)], type=_HITS_TYPE)
            )
        else:
            with pytest.raises(error):
                parquet._column(values, _HITS_TYPE)
