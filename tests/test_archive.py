import gzip
import json
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from pipeline.config import Settings
from pipeline.errors import ConfigError
from pipeline.lake.store import LocalLake
from pipeline.sources import archive
from pipeline.sources.archive import detect_layout, iter_archive_day, key_date, load_mapping
from pipeline.sources.raw import store_raw

DAY = date(2026, 11, 25)
SETTINGS = Settings.load(env={})


def rss(*items: tuple[str, str, str]) -> bytes:
    """A small RSS 2.0 feed of (slug, title, pubDate) items."""
    body = "".join(
        f"<item><title>{title}</title><link>https://news.example/{slug}</link><guid>{slug}</guid>"
        f"<pubDate>{when}</pubDate><description>Text of {title}.</description></item>"
        for slug, title, when in items
    )
    head = '<?xml version="1.0"?><rss version="2.0"><channel><title>Example Wire</title>'
    return f"{head}{body}</channel></rss>".encode()


def wire(first: str) -> bytes:
    return (
        f"{first} said on Tuesday that talks would continue.\n"
        "Officials met in Madrid for a second day of trade negotiations.\n"
        "📌 Reference Map:\n- Paragraph 1 – [1]\n- Paragraph 2 – [2]\nSource: Noah Wire Services"
    ).encode()


def put(root: Path, key: str, data: bytes) -> None:
    path = root / key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(data) if key.endswith(".gz") else data)


def items(root: Path, day: date = DAY, **kw: object) -> list[archive.ArchiveItem]:
    return list(iter_archive_day(str(root), day, settings=SETTINGS, **kw))  # type: ignore[arg-type]


def test_key_date_reads_path_then_file_name() -> None:
    assert key_date("feeds/2026/11/25/a.xml") == DAY
    assert key_date("wire/story-2026-11-25-03.txt") == DAY
    assert key_date("2026/13/45/a.xml") is None
    assert key_date("misc/a.xml") is None


def test_snapshots_are_selected_by_day_and_gunzipped(tmp_path: Path) -> None:
    feed = rss(("a", "Story A", "Tue, 25 Nov 2026 10:00:00 GMT"))
    put(tmp_path, "2026/11/25/wire.xml", feed)
    put(tmp_path, "2026/11/25/other.atom.gz", feed)
    put(tmp_path, "2026/11/26/wire.xml", feed)
    put(tmp_path, "2026/11/25/README.md", b"not an input")
    got = items(tmp_path)
    assert [i.key for i in got] == ["2026/11/25/other.atom.gz", "2026/11/25/wire.xml"]
    assert all(i.data == feed and i.layout == "snapshots" and i.error is None for i in got)
    assert got[1].content_type == "application/xml"
    assert got[0].fetched_at == datetime(2026, 11, 25, tzinfo=UTC)
    assert detect_layout(str(tmp_path), SETTINGS) == "snapshots"


def test_a_corrupt_gzip_is_an_error_item_not_a_stop(tmp_path: Path) -> None:
    (tmp_path / "2026/11/25").mkdir(parents=True)
    (tmp_path / "2026/11/25/bad.xml.gz").write_bytes(b"\x1f\x8b\x08\x00garbage")
    put(tmp_path, "2026/11/25/good.xml", rss(("a", "A", "Tue, 25 Nov 2026 10:00:00 GMT")))
    bad, good = items(tmp_path)
    assert bad.error is not None and bad.error.kind == "malformed" and bad.data is None
    assert good.error is None and good.data


def test_oversized_inputs_are_refused(tmp_path: Path) -> None:
    put(tmp_path, "2026/11/25/big.xml.gz", b"<rss>" + b" " * 5000 + b"</rss>")
    (item,) = list(iter_archive_day(str(tmp_path), DAY, settings=SETTINGS.with_(max_body_bytes=1000)))
    assert item.error is not None and item.error.kind == "too_large"


def test_wire_files_dated_by_path_or_name(tmp_path: Path) -> None:
    put(tmp_path, "2026/11/25/one.txt", wire("Alice"))
    put(tmp_path, "loose/story_2026-11-25_b.txt", wire("Bob"))
    put(tmp_path, "loose/story_2026-11-24_c.txt", wire("Carol"))
    got = items(tmp_path, layout="wire")
    assert sorted(i.key for i in got) == ["2026/11/25/one.txt", "loose/story_2026-11-25_b.txt"]
    assert all(i.layout == "wire" and i.data and i.data.startswith((b"Alice", b"Bob")) for i in got)


def test_jsonl_with_mapping_file_and_three_ways_of_dating(tmp_path: Path) -> None:
    rec = {"headline": "Rates held", "text": "<p>The bank held rates.</p>", "link": "https://x.example/r"}
    put(tmp_path, "2026/11/25/export.jsonl", (json.dumps({**rec, "pubDate": "2020-01-01"}) + "\n").encode())
    put(tmp_path, "dump-2026-11-25.jsonl.gz", (json.dumps(rec) + "\nnot json\n").encode())
    undated = [
        {**rec, "headline": "On the day", "pubDate": "2026-11-25T08:00:00Z"},
        {**rec, "headline": "Next day", "pubDate": "2026-11-26T08:00:00Z"},
        {**rec, "headline": "No date"},
    ]
    put(tmp_path, "all.jsonl", "\n".join(json.dumps(r) for r in undated).encode())
    mapping = tmp_path.parent / "mapping.yaml"
    mapping.write_text("headline: title\ntext: body\nlink: url\npubDate: published\n")
    by_key = {i.key: i for i in items(tmp_path, mapping=str(mapping))}
    assert set(by_key) == {"2026/11/25/export.jsonl", "dump-2026-11-25.jsonl.gz", "all.jsonl"}
    path_dated = by_key["2026/11/25/export.jsonl"].entries
    assert len(path_dated) == 1  # the path dates the file: the record's own date does not filter it
    entry = path_dated[0]
    assert (entry.title, entry.link, entry.body_is_html) == ("Rates held", "https://x.example/r", True)
    dump = by_key["dump-2026-11-25.jsonl.gz"]
    assert len(dump.entries) == 1 and dump.rejected == 1 and "line 2" in dump.problems[0]
    assert dump.entries[0].source == "dump"
    undated_item = by_key["all.jsonl"]
    assert [e.title for e in undated_item.entries] == ["On the day"]
    assert undated_item.rejected == 1 and "no usable date" in undated_item.problems[0]


def test_mapping_rejects_unknown_targets(tmp_path: Path) -> None:
    assert load_mapping({"pubDate": "published_at", "link": "url"}) == {
        "pubDate": "published",
        "link": "link",
    }
    with pytest.raises(ConfigError):
        load_mapping({"headline": "headline_text"})
    with pytest.raises(ConfigError):
        load_mapping(str(tmp_path / "missing.yaml"))
    with pytest.raises(ConfigError):
        list(iter_archive_day(str(tmp_path), DAY, layout="zip", settings=SETTINGS))


def test_raw_zone_replay_selects_bodies_fetched_on_the_day(tmp_path: Path) -> None:
    lake = LocalLake(tmp_path)
    meta = {"status": 200, "etag": None, "last_modified": None, "final_url": "https://news.example/feed"}
    feed1 = rss(("a", "A", "Tue, 25 Nov 2026 10:00:00 GMT"))
    feed2 = rss(("b", "B", "Wed, 26 Nov 2026 10:00:00 GMT"))
    on_day = {
        **meta,
        "feed_id": "f1",
        "fetched_at": "2026-11-25T23:30:00+00:00",
        "content_type": "application/rss+xml",
    }
    k1 = store_raw(lake, feed1, on_day)
    store_raw(lake, feed2, {**on_day, "fetched_at": "2026-11-26T00:10:00+00:00"})
    assert detect_layout(str(tmp_path), SETTINGS) == "raw"
    (item,) = items(tmp_path)
    assert (item.key, item.data, item.layout) == (k1, feed1, "raw")
    assert item.fetched_at == datetime(2026, 11, 25, 23, 30, tzinfo=UTC)
    assert item.feed_url == "https://news.example/feed" and item.content_type == "application/rss+xml"
    # the same zone addressed as raw/ itself, and a tampered body reported as corrupt
    (tmp_path / k1).write_bytes(gzip.compress(b"<rss>tampered</rss>"))
    (bad,) = items(tmp_path / "raw")
    assert bad.error is not None and bad.error.kind == "corrupt"


def test_items_are_streamed_one_object_at_a_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for n in range(5):
        put(tmp_path, f"2026/11/25/{n}.txt", wire(f"Person{n}"))
    reads: list[str] = []
    real_get = LocalLake.get

    def counting_get(self: LocalLake, key: str) -> bytes:
        reads.append(key)
        return real_get(self, key)

    monkeypatch.setattr(LocalLake, "get", counting_get)
    stream = iter_archive_day(str(tmp_path), DAY, settings=SETTINGS)
    first = next(stream)
    assert reads == [first.key]
    assert len(list(stream)) == 4 and len(reads) == 5


def test_undated_export_is_an_input_only_on_days_it_has_records_for(tmp_path: Path) -> None:
    lines = [{"title": "T1", "body": "b", "published": "2026-11-26T01:00:00+01:00"}]  # 2026-11-26 00:00 UTC
    put(tmp_path, "all.jsonl.gz", "\n".join(json.dumps(r) for r in lines).encode())
    (item,) = items(tmp_path, day=date(2026, 11, 26))
    assert [e.title for e in item.entries] == ["T1"] and item.rejected == 0
    assert items(tmp_path, day=DAY) == []


def test_plan_reads_the_archive_once_for_all_days(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lake = LocalLake(tmp_path)
    meta = {
        "status": 200,
        "etag": None,
        "last_modified": None,
        "final_url": None,
        "feed_id": "f",
        "content_type": None,
    }
    for day in (24, 25, 26):
        feed = rss((f"s{day}", f"S{day}", f"{day} Nov 2026 09:00:00 GMT"))
        store_raw(lake, feed, {**meta, "fetched_at": f"2026-11-{day}T09:00:00Z"})
    gets: list[str] = []
    real_get = LocalLake.get
    monkeypatch.setattr(LocalLake, "get", lambda self, key: gets.append(key) or real_get(self, key))
    days = [date(2026, 11, d) for d in (23, 24, 25, 26)]
    plan = archive.plan_archive(str(tmp_path), days, settings=SETTINGS)
    assert sorted(k for k in gets if k.endswith(".json")) == sorted(
        o.key for o in lake.list("raw/") if o.key.endswith(".json")
    )
    assert [len(plan[d]) for d in days] == [0, 1, 1, 1]
    planned = [i.key for i in iter_archive_day(str(tmp_path), DAY, settings=SETTINGS, planned=plan[DAY])]
    assert planned == [i.key for i in items(tmp_path)]


# --- hostile archives: one bad file costs that file, with its reason ---------------------------------------


def hostile_day(root: Path) -> None:
    """Good inputs and one of each bad kind, all dated 2026-11-25."""
    day = root / "2026/11/25"
    put(root, "2026/11/25/good.txt", wire("Alice"))
    put(root, "2026/11/25/back\\slash.txt", wire("Bob"))
    put(root, "2026/11/25/esc\x1b[31mred.txt", wire("Carol"))
    (root.parent / "outside.txt").write_bytes(wire("Mallory"))
    (day / "link.txt").symlink_to(root.parent / "outside.txt")
    with open(day / "huge.txt", "wb") as fh:  # 300 MB, sparse: its size is what matters
        fh.truncate(300 * 1024 * 1024)
    records = [{"title": "Deep", "body": "x"}, {"title": "Fine", "body": "Good record body."}]
    deep = '{"title": "D", "body": ' + "[" * 100_000 + "]" * 100_000 + "}"
    deeper = '{"a": ' * 100_000 + "1" + "}" * 100_000
    lines = [json.dumps(records[1]), deep, deeper, '{"title": "Big", "id": ' + "9" * 5000 + "}"]
    put(root, "2026/11/25/export.jsonl", "\n".join(lines).encode())


def test_each_bad_archive_file_is_one_error_item_with_its_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "archive"
    hostile_day(root)
    reads: list[str] = []
    real_get = LocalLake.get
    monkeypatch.setattr(LocalLake, "get", lambda self, key: reads.append(key) or real_get(self, key))
    by_name = {i.key.rsplit("/", 1)[1]: i for i in items(root)}
    errors = {name: i.error.kind for name, i in by_name.items() if i.error is not None}
    assert errors == {"back\\slash.txt": "bad_key", "link.txt": "outside_root", "huge.txt": "too_large"}
    assert "2026/11/25/huge.txt" not in reads  # refused from its listed size, never read
    assert by_name["good.txt"].data == wire("Alice")
    escaped = by_name["esc\x1b[31mred.txt"]
    assert (
        escaped.data == wire("Carol")
        and "\x1b" not in escaped.origin
        and "esc%1B[31mred.txt" in escaped.origin
    )
    export = by_name["export.jsonl"]
    # a 5,000-digit integer is read (it stays its digits); the two nested too deep are rejected
    assert [e.title for e in export.entries] == ["Fine", "Big"] and export.rejected == 2
    assert export.problems == (
        "line 2: nested too deep",
        "line 3: nested too deep",
        "line 4: guid cut from 5000 to 2048 characters",
    )


def test_raw_metadata_nested_too_deep_costs_only_its_body(tmp_path: Path) -> None:
    lake = LocalLake(tmp_path)
    meta = {
        "status": 200,
        "etag": None,
        "last_modified": None,
        "final_url": "https://u:PASS@news.example/feed?api_key=SECRET",
        "feed_id": "f1",
        "fetched_at": "2026-11-25T10:00:00+00:00",
        "content_type": "application/rss+xml",
    }
    good = store_raw(lake, rss(("a", "A", "Tue, 25 Nov 2026 10:00:00 GMT")), meta)
    bad = store_raw(lake, rss(("b", "B", "Tue, 25 Nov 2026 11:00:00 GMT")), meta)
    (tmp_path / bad.replace(".gz", ".json")).write_text('{"a": ' * 100_000 + "1" + "}" * 100_000)
    found = {i.key: i for i in list(iter_archive_day(str(tmp_path), DAY, settings=SETTINGS))}
    assert (
        found[good].error is None
        and found[good].feed_url == "https://REDACTED@news.example/feed?api_key=REDACTED"
    )
    (broken,) = [i for i in items(tmp_path, day=date(2026, 11, 26)) if i.key == bad]  # undated: every day
    assert broken.error is not None and "unreadable metadata" in broken.error.message


def test_a_mapping_file_that_is_not_utf8_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "mapping.yaml"
    path.write_bytes(b"headline: title\ntexte: body\n\xe9t\xe9: summary\n")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_mapping(str(path))


_JSON_LINES = [
    b'{"headline": "a", "n": 1, "x": 1.5e3, "t": true, "z": null}\n',
    '{"headline": "caf\u00e9 \\u00e9 \\ud83d\\ude00"}'.encode(),
    b'{"a": 123456789012345678901234567890, "b": -0.0, "c": 5e-324, "d": 1e-400}',
    b'{"a": 1, "a": 2}',
    b'{"\\u0000": "\\u0000"}',
    b'{"a": NaN, "b": Infinity, "c": -Infinity}',  # json.loads takes these, msgspec does not
    b'{"a": 1e400}',
    b'{"a": "\\ud800"}',  # a lone surrogate
    b'\xef\xbb\xbf{"a": 1}',  # a byte order mark
    '{"a": 1}'.encode("utf-16"),
    b'{"a": "x\x01y"}',
    b'{"a": 01}',
    b"{} x",
    b'{"a": "\xff"}',
    b'{"a": ' * 5000 + b"1" + b"}" * 5000,
    b"[1, 2]",
    b"",
]


@pytest.mark.parametrize("line", _JSON_LINES)
def test_json_values_are_json_loads_own(line: bytes) -> None:
    """The archive decodes records with msgspec where it can: values and errors must be json.loads'."""

    def outcome(decode: object) -> object:
        try:
            return ("value", repr(decode(line)))  # type: ignore[operator]
        except Exception as exc:
            return ("error", type(exc).__name__)

    assert outcome(archive.json_value) == outcome(json.loads)


_MAPPED_FIELDS = {"a": "title", "headline": "title", "b": "body", "c": "summary", "f0": "guid", "x": "link"}
# values msgspec skips without the checks json.loads makes, beside the cases above
_SKIPPED_VALUES = [b'"\xc0\x80"', b'"\xed\xa0\x80"', b"1" * 5000, b"1" * 4300, b'"' + b"9" * 5000 + b'"',
                   b"1E400", b'"\\ud800"', b"[" * 3000 + b"]" * 3000, b"[" * 900 + b"]" * 900, b"NaN",
                   b'{"k": [1, {}]}']  # fmt: skip


def _general(line: bytes) -> object:
    """What _jsonl_item takes from a line without the mapped decoder: the mapped values, or the error."""
    try:
        record = archive.json_value(line)
    except Exception as exc:
        return ("error", type(exc).__name__)
    return archive.mapped_values(record, _MAPPED_FIELDS) if isinstance(record, dict) else ("not an object",)


@pytest.mark.parametrize(
    "line",
    [
        *_JSON_LINES,
        *(b'{"a": "t", "junk": ' + value + b', "b": "body"}' for value in _SKIPPED_VALUES),
        *(b'{"a": ' + value + b"}" for value in _SKIPPED_VALUES),
        b'{"headline": "", "a": "second", "c": null, "c": "last"}',
        b'{"a": null, "headline": "h", "f0": "not the attribute", "x": ["l", null, 1]}',
    ],
)
def test_the_mapped_decoder_takes_a_line_only_as_the_general_reading_would(line: bytes) -> None:
    """mapped_decoder's values equal json_value + mapped_values; it declines (None) wherever json.loads could
    judge the line otherwise, and the line then takes the general reading."""
    mapped = archive.mapped_decoder(_MAPPED_FIELDS)(line)
    general = _general(line)
    if mapped is not None:
        assert isinstance(general, dict) and repr(mapped) == repr(general)


def test_the_mapped_decoder_takes_ordinary_records_and_refuses_what_json_loads_refuses() -> None:
    decode = archive.mapped_decoder(_MAPPED_FIELDS)
    assert decode('{"a": "caf\u00e9 \u00e9", "b": ["x", 2], "z": {"y": [1.5, null]}}'.encode()) == {
        "title": "caf\u00e9 \u00e9",
        "body": ["x", 2],
    }
    too_long = b'{"a": "t", "n": ' + b"1" * 5000 + b"}"
    for refused in (b'{"a": "t", "j": "\xc0\x80"}', too_long, b"[1]", b"{"):
        assert decode(refused) is None
        assert _general(refused) in (("error", "UnicodeDecodeError"), ("error", "ValueError"),
                                     ("not an object",), ("error", "JSONDecodeError"))  # fmt: skip


def test_digit_runs_are_found_in_linear_time() -> None:
    assert archive._has_digit_run(b"a" + b"1" * 10 + b"b", 10)
    assert not archive._has_digit_run(b"1" * 9 + b"x" + b"1" * 9, 10)
    line = b"1" * 4000 + b" "
    assert not archive._has_digit_run(line * 200, 4301)  # 800 KB, one pass each
    assert archive._has_digit_run(line * 200 + b"1" * 4301, 4301)


def test_a_jsonl_file_reads_the_same_with_or_without_the_mapped_decoder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lines = [*_JSON_LINES, *(b'{"headline": "t", "junk": ' + value + b"}" for value in _SKIPPED_VALUES)]
    dated = b'{"headline": "T%d", "text": "B\\n\\n\\nb", "first_published": "2025-09-0%dT01:00:00Z"}'
    lines += [dated % (i, 1 + i % 2) for i in range(20)]
    (tmp_path / "x.jsonl").write_bytes(b"\n".join(line.replace(b"\n", b" ") for line in lines) + b"\n")

    mapping = {"headline": "title", "text": "body", "first_published": "published"}

    def read() -> list[tuple[list[dict[str, object]], tuple[str, ...], int]]:
        items = iter_archive_day(str(tmp_path), date(2025, 9, 1), "jsonl", mapping, settings=Settings())
        return [([vars(e) for e in i.entries], i.problems, i.rejected) for i in items]

    fast = read()
    monkeypatch.setattr(archive, "mapped_decoder", lambda fields, **_: lambda line: None)
    monkeypatch.setattr(archive, "plain_entry_reader", lambda fields, **_: lambda line: None)
    assert read() == fast
    [(entries, problems, rejected)] = fast
    assert len(entries) == 10 and rejected > 10 and any("not valid JSON" in p for p in problems)


def test_record_entry_maps_names_text_and_html_flags() -> None:
    fields = load_mapping(
        {"hl": "title", "txt": "body", "by": "authors", "tags": "categories", "when": "published"}
    )
    record = {
        "hl": "Rates <b>up</b>",
        "txt": ["First.", None, "Second."],
        "by": [{"name": "Ann"}, "Bob", "", None, 7],
        "tags": ["econ", "", "rates"],
        "when": "",  # empty: not mapped
    }
    entry = archive.record_entry(record, fields, origin="o", source="wire")
    assert (entry.title, entry.title_is_html, entry.body, entry.body_is_html) == (
        "Rates <b>up</b>",
        True,
        "First.\n\nSecond.",
        False,
    )
    assert entry.authors == ("Ann", "Bob", "7") and entry.categories == ("econ", "rates")
    assert entry.published is None and entry.source == "wire"
    assert archive.record_entry({"by": "Solo"}, fields, origin="o", source="s").authors == ("Solo",)


def _decodes(line: bytes) -> bool:
    """_record_decoder's check of one line."""
    try:
        line.decode("utf-8", "surrogatepass")
    except UnicodeDecodeError:
        return False
    return True


def test_lines_are_checked_as_utf8_once_per_file() -> None:
    """lines_checked(file) is true only when every line passes the per-line UTF-8 check."""
    good = [
        b'{"a": "x"}',
        '{"a": "\u00e9\U0001f600"}'.encode(),
        '{"a": "\ud800"}'.encode("utf-8", "surrogatepass"),
    ]
    bad = [b'{"a": "\xff"}', b'{"a": "\xc3"}', b'{"a": "\xed\xa0"}']
    for lines in ([*good], [*good, bad[0]], [bad[1], *good], [good[1], bad[2]], []):
        data = b"\n".join(lines) + b"\n"
        each = all(_decodes(line) for line in lines)
        assert archive.lines_checked(data) == each, lines


@pytest.mark.parametrize("checked", [True, False])
def test_a_checked_reader_reads_what_an_unchecked_one_reads(checked: bool) -> None:
    """Readers told their file's lines are UTF-8 give what the checking ones give on such lines (long digit
    runs are still declined)."""
    fields = _PLAIN_MAPPINGS[0]
    lines = [
        *_random_lines(11, fields, 500),
        b'{"hl": ' + b"1" * 5000 + b"}",
        b'{"hl": "t", "n": ' + b"1" * 5000 + b"}",
    ]
    lines = [line for line in lines if archive.lines_checked(line)]
    plain = archive.plain_entry_reader(fields, origin="o", source="s", checked=checked)
    reference = archive.plain_entry_reader(fields, origin="o", source="s")
    mapped = archive.mapped_decoder(fields, checked=checked)
    mapped_reference = archive.mapped_decoder(fields)
    for line in lines:
        entry, expected = plain(line), reference(line)
        assert (None if entry is None else vars(entry)) == (None if expected is None else vars(expected))
        assert mapped(line) == mapped_reference(line)
    assert plain(lines[-1]) is None and mapped(lines[-2]) is None


def test_the_plain_readers_entries_are_built_in_field_order() -> None:
    """The plain reader builds the entry's attribute dict itself: RawEntry's fields, in order, as new_entry
    requires of the dicts it takes."""
    from dataclasses import fields as dataclass_fields

    for mapping in _PLAIN_MAPPINGS:
        entry = archive.plain_entry_reader(mapping, origin="o", source="s")(
            b'{"hl": "t <i>x</i>", "teaser": "<b>s</b>"}'
        )
        assert entry is not None and list(vars(entry)) == [f.name for f in dataclass_fields(archive.RawEntry)]
        assert entry == archive.new_entry(dict(vars(entry)))
        assert entry.title_is_html and entry.summary_is_html == ("teaser" in mapping)


# --- the plain-record reader against the general reading ---------------------------------------------------

_PLAIN_MAPPINGS = [
    {"hl": "title", "txt": "body", "by": "authors", "tags": "categories", "when": "published", "id": "guid",
     "u": "link", "teaser": "summary", "lang": "language", "src": "source", "upd": "updated",
     "att": "attribution"},
    {"hl": "title", "headline": "title", "txt": "body", "body": "body", "by": "authors", "author": "authors",
     "when": "published", "u": "link"},  # several fields for one target: the first set one wins
]  # fmt: skip
_PLAIN_VALUES = [None, "", "x", "T\u00e9 <b>b</b>", " ", "a < b", "line\n\nline", [], [""], ["A"],
                 ["A", "", "B"], [None], ["A", 1], 0, 1.5, True, {"name": "n"}, [{"name": "n"}], [["x"]],
                 "\ud800", "1" * 30, "x" * 1001, "y" * 70, ["n" * 501], ["n"] * 101,
                 "2025-09-01T10:00:00Z"]  # fmt: skip


def _general_entry_of(line: bytes, fields: dict[str, str]) -> object:
    """The general reading of one line: (entry fields, cuts), or the error that rejects the line."""
    try:
        record = archive.json_value(line)
    except Exception as exc:
        return ("error", type(exc).__name__)
    if not isinstance(record, dict):
        return ("not an object",)
    try:
        entry, cuts = archive.cap_entry(archive.record_entry(record, fields, origin="o", source="s"))
    except (ValueError, RecursionError) as exc:
        return ("unusable", type(exc).__name__)
    return vars(entry), cuts


def _random_lines(seed: int, fields: dict[str, str], count: int) -> list[bytes]:
    import random

    rng = random.Random(seed)
    names = [*fields, "other"]
    lines = []
    for _ in range(count):
        record = {
            name: rng.choice(_PLAIN_VALUES) for name in rng.sample(names, rng.randrange(len(names) + 1))
        }
        text = json.dumps(record, ensure_ascii=rng.random() < 0.5)
        if rng.random() < 0.3:  # a duplicated key: the last one counts
            name = rng.choice(names)
            text = (
                text[:-1] + (", " if record else "") + f'"{name}": {json.dumps(rng.choice(_PLAIN_VALUES))}}}'
            )
        lines.append(text.encode("utf-8", "surrogatepass"))
    return lines


@pytest.mark.parametrize("fields", _PLAIN_MAPPINGS)
def test_the_plain_reader_reads_a_line_as_the_general_reading_or_not_at_all(fields: dict[str, str]) -> None:
    """Differential: on random records of every value type and on hostile lines, the plain reader's entry is
    the general reading's, uncut; the lines it declines are left to the general reading."""
    read = archive.plain_entry_reader(fields, origin="o", source="s")
    hostile = [*_JSON_LINES, *(b'{"hl": "t", "junk": ' + v + b', "txt": "b"}' for v in _SKIPPED_VALUES),
               *(b'{"hl": ' + v + b"}" for v in _SKIPPED_VALUES)]  # fmt: skip
    lines = [*hostile, *_random_lines(7, fields, 3000)]
    taken = 0
    for line in lines:
        entry = read(line)
        if entry is not None:
            taken += 1
            assert (vars(entry), []) == _general_entry_of(line, fields), line
    assert taken > len(lines) // 10  # the common records do take the plain reading


def test_the_plain_reader_takes_ordinary_records() -> None:
    fields = _PLAIN_MAPPINGS[0]
    read = archive.plain_entry_reader(fields, origin="o", source="s")
    line = json.dumps({"hl": "Rates <b>up</b>", "txt": "Body.", "by": ["Ann", ""], "tags": "econ",
                       "when": "2025-09-01", "teaser": "", "u": "https://x.example/a"}).encode()  # fmt: skip
    entry = read(line)
    assert entry is not None and (vars(entry), []) == _general_entry_of(line, fields)
    assert entry.authors == ("Ann",) and entry.categories == ("econ",) and entry.summary is None
    assert entry.title_is_html and entry.link == "https://x.example/a"
    for declined in (b'{"hl": 1}', b'{"by": [{"name": "A"}]}', b'{"hl": "' + b"t" * 1001 + b'"}', b"[1]"):
        assert read(declined) is None


def test_the_plain_reader_builds_its_decoder_once_per_mapping_and_checks_a_long_default_source() -> None:
    fields = _PLAIN_MAPPINGS[0]
    archive.plain_entry_reader(fields, origin="o", source="s")
    built = archive._struct_decoder.cache_info().misses
    read = archive.plain_entry_reader(dict(fields), origin="o2", source="s2")  # another file, same mapping
    assert archive._struct_decoder.cache_info().misses == built
    assert read(b'{"hl": "t"}') is not None
    long_source = (
        "s" * 501
    )  # over the source cap: a record without its own source is left to the general reading
    read = archive.plain_entry_reader(fields, origin="o", source=long_source)
    assert read(b'{"hl": "t"}') is None and read(b'{"hl": "t", "src": "wire"}') is not None
    _, cuts = archive.cap_entry(archive.record_entry({"hl": "t"}, fields, origin="o", source=long_source))
    assert cuts


# --- a local JSON Lines file read a line at a time (iter_archive_day's stream) -----------------------------


def _hostile_lines() -> bytes:
    good = [
        json.dumps({"title": f"T{i}", "body": f"Body {i} \u00e9t\u00e9.", "url": f"https://j.example/{i}"})
        for i in range(4)
    ]
    lines = [
        good[0].encode(),
        b"",
        b"   \t",
        b"{not json",
        good[1].encode() + b"\r",  # CRLF
        b'{"title": "bad \xff utf-8", "body": "b"}',
        b'{"title": "nan", "body": "b", "n": NaN}',
        b'{"title": "lone \\ud800", "body": "b"}',
        json.dumps({"title": "wide", "body": "x" * (archive.JSONL_READ_BUFFER + 5000)}).encode(),
        b"[1, 2]",
        good[2].encode(),
        good[3].encode(),  # no newline at the end
    ]
    return b"\n".join(lines)


def _read_all(records: archive.JsonlRecords) -> tuple[list[dict[str, object]], list[str], int, int]:
    entries = records.read(records.lines())
    return [vars(e) for e in entries], records.problems, records.rejected, records.entries_read


def test_a_local_json_lines_file_read_a_line_at_a_time_reads_as_its_bytes(tmp_path: Path) -> None:
    """The same lines, numbers, entries, problems and rejections as the file's bytes read whole (non-UTF-8,
    blank, CRLF and unfinished lines, one longer than the read buffer)."""
    data = _hostile_lines()
    put(tmp_path, "exports/desk-2026-11-25.jsonl", data)
    lake = LocalLake(tmp_path)
    local = lake.local_file("exports/desk-2026-11-25.jsonl")
    assert local.size == len(data)
    fields = load_mapping(None)
    whole = archive.JsonlRecords(data, fields, "o", "desk")
    piecewise = archive.JsonlRecords(local, fields, "o", "desk")
    assert list(piecewise.lines()) == list(whole.lines())
    got = _read_all(archive.JsonlRecords(local, fields, "o", "desk"))
    assert got == _read_all(archive.JsonlRecords(data, fields, "o", "desk"))
    assert got[1:] == (
        [
            "line 4: not valid JSON",
            "line 6: text is not valid UTF-8 (invalid start byte at byte 15): read as windows-1252",
            "line 10: not a JSON object",
        ],
        2,
        8,
    )


def test_a_streamed_local_file_is_never_read_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """stream: a local, uncompressed, key-dated JSON Lines file comes as records over the file (no get());
    read as it was when looked at (lines appended later are not read); over MAX_JSONL_BYTES by its size, an
    error item before any read; a gzipped one is read whole as before."""
    put(tmp_path, "exports/desk-2026-11-25.jsonl", _hostile_lines())
    put(tmp_path, "exports/wire-2026-11-25.jsonl.gz", _hostile_lines())
    gets: list[str] = []
    real_get = LocalLake.get
    monkeypatch.setattr(LocalLake, "get", lambda self, key: gets.append(key) or real_get(self, key))
    by_name = {i.key.rsplit("/", 1)[1]: i for i in items(tmp_path, layout="jsonl", stream=True)}
    plain, zipped = by_name["desk-2026-11-25.jsonl"], by_name["wire-2026-11-25.jsonl.gz"]
    assert gets == ["exports/wire-2026-11-25.jsonl.gz"]
    assert plain.records is not None and isinstance(plain.records.data, archive.LocalFile)
    assert zipped.records is not None and isinstance(zipped.records.data, bytes)
    with open(tmp_path / "exports/desk-2026-11-25.jsonl", "ab") as grown:
        grown.write(b'\n{"title": "later", "body": "appended after the look"}\n')
    (mine, *rest), (theirs, *others) = _read_all(plain.records), _read_all(zipped.records)
    unnamed = [
        [{k: v for k, v in e.items() if k not in ("origin", "source")} for e in x] for x in (mine, theirs)
    ]
    assert unnamed[0] == unnamed[1] and rest == others  # (the two files' names differ)
    monkeypatch.setattr(archive, "MAX_JSONL_BYTES", 100)
    (big,) = [i for i in items(tmp_path, layout="jsonl", stream=True) if i.key.endswith(".jsonl")]
    assert big.error is not None and big.error.kind == "too_large" and big.records is None


def test_local_file_is_checked_as_get_checks_it(tmp_path: Path) -> None:
    from pipeline.lake.store import BadKeyError, NotFoundError

    lake = LocalLake(tmp_path / "root")
    (tmp_path / "root/dir").mkdir(parents=True)
    (tmp_path / "outside.jsonl").write_bytes(b"{}\n")
    (tmp_path / "root/link.jsonl").symlink_to(tmp_path / "outside.jsonl")
    for key in ("missing.jsonl", "dir", "dir/x/y.jsonl"):
        with pytest.raises(NotFoundError):
            lake.local_file(key)
        with pytest.raises(NotFoundError):
            lake.get(key)
    with pytest.raises(BadKeyError) as err:
        lake.local_file("link.jsonl")
    assert err.value.kind == "outside_root"


def test_json_lines_read_as_exports_write_them_lose_no_record() -> None:
    """A line in windows-1252, a line with a raw control character inside a string and an integer longer than
    Python reads (a red-team corpus, 4 Dec) are read, each with a note; text keeps no control character."""
    fields = {"title": "title", "body": "body", "id": "guid"}
    lines = [
        b'{"title": "Caf\xe9 owners", "body": "Read in windows-1252."}\n',
        b'{"title": "Bell\x07 rings", "body": "A raw control byte\x01 inside."}\n',
        b'{"title": "Big id", "body": "Long integer.", "id": ' + b"7" * 4301 + b"}\n",
        b'{"title": "Broken", "body": \n',
    ]
    records = archive.JsonlRecords(b"".join(lines), fields, "o", "desk")
    entries, problems, rejected, read = _read_all(records)
    assert [e["title"] for e in entries] == ["Café owners", "Bell\x07 rings", "Big id"]
    assert entries[2]["guid"] == "7" * 2048  # its digits, cut to the guid cap
    assert rejected == 1 and read == 3
    assert problems[0] == (
        "line 1: text is not valid UTF-8 (invalid continuation byte at byte 14): read as windows-1252"
    )
    assert problems[1] == "line 2: control characters inside JSON strings: read, then dropped"
    assert problems[-1] == "line 4: not valid JSON"
