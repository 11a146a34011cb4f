"""fastfeed's RSS item children read by the compiled reader (_accel.ItemReader) and by _rss_children in
Python: the same (text, names, categories, guid_is_link) wherever the compiled reader answers, and None
(Python decides, usually doubting) wherever Python would doubt the item."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import pytest
from lxml import etree  # type: ignore[import-untyped]

from bench.generate import quirky_rss_feeds, snapshot_archive
from pipeline.parsing import fastfeed

needs_reader = pytest.mark.skipif(fastfeed._READER is None, reason="pipeline.parsing._accel was not built")

_DC = 'xmlns:dc="http://purl.org/dc/elements/1.1/"'
_MEDIA = 'xmlns:media="http://search.yahoo.com/mrss/"'
_CONTENT = 'xmlns:content="http://purl.org/rss/1.0/modules/content/"'
# One item each: the common shapes, and every way an item leaves the common case.
_EDGE_ITEMS = [
    "<item><title>t</title><link>https://ex.com/a</link><guid>https://ex.com/g</guid></item>",
    '<item><guid isPermaLink="false">urn:x</guid></item>',
    '<item><guid isPermaLink="true">x</guid></item>',
    '<item><guid isPermaLink="">x</guid></item>',
    '<item><guid isPermaLink="TRUE">x</guid></item>',
    '<item><guid isPermaLink="tr&amp;ue">x</guid></item>',
    '<item><guid isPermaLink="false" x="1">x</guid></item>',
    '<item><guid ispermalink="false">x</guid></item>',
    '<item><guid xml:lang="en">x</guid></item>',
    "<item><guid>a</guid><guid>b</guid></item>",
    "<item><guid><b>x</b></guid></item>",
    '<item id="1"><title>t</title></item>',
    '<item xml:base="https://ex.com/"><title>t</title></item>',
    "<item><title>a</title><title>b</title></item>",
    "<item><title>a<b>b</b></title></item>",
    "<item><title>a<!-- c -->b</title></item>",
    "<item><title>a<![CDATA[ <b>x</b> ]]>b</title></item>",
    "<item><title><![CDATA[]]></title><description></description><link/></item>",
    '<item><title type="html">t</title></item>',
    "<item><title>  \t spaced \x1c\n</title></item>",
    "<item><title>\u00a0non-breaking\u2003</title></item>",
    "<item><title>Caf\u00c3\u00a9 \u0096 dash</title></item>",
    "<item><title>\u00e2\u0080\u0083x</title></item>",
    "<item><author>a@b.com (A)</author></item>",
    "<item><author>  Ana Ruiz  </author><author>B</author></item>",
    f"<item {_DC}><dc:creator>Ana</dc:creator><dc:creator>Bo</dc:creator></item>",
    f"<item {_DC}><dc:creator>\u00e2\u0080\u0083Ana</dc:creator></item>",
    f"<item {_DC}><dc:creator>   </dc:creator><dc:date>2025-09-01</dc:date></item>",
    "<item><category>World</category><category domain='x'>Trade</category><category></category></item>",
    "<item><category other='x'>World</category></item>",
    "<item><category>W<b>x</b></category></item>",
    f"<item {_DC}><dc:subject> Markets </dc:subject><dc:subject>Caf\u00c3\u00a9</dc:subject></item>",
    '<item><enclosure url="https://ex.com/a.mp3" length="1"/><comments>c</comments><source url="s">S</source>'
    "</item>",
    '<item><enclosure xml:lang="en" url="u"/></item>',
    f'<item {_MEDIA}><media:content url="u"/><media:thumbnail url="t"/></item>',
    f'<item {_MEDIA}><media:content url="u"><media:title>x</media:title></media:content></item>',
    "<item><foo>x</foo></item>",
    '<item><x:title xmlns:x="urn:other">t</x:title></item>',
    f"<item {_CONTENT}><description>d</description><content:encoded><![CDATA[<p>b</p>]]></content:encoded>"
    "</item>",
    "<item><!-- a comment --><title>t</title><?pi x?></item>",
    "<item>loose text<title>t</title></item>",
    "<item/>",
]


def _items(data: bytes, parser: Any) -> Iterator[Any]:
    try:
        root = etree.fromstring(data, parser)
    except (etree.LxmlError, ValueError):
        return iter(())
    return iter(root.iter("item"))


def _python(item: Any) -> Any:
    try:
        return fastfeed._rss_children(item)
    except (fastfeed.Doubt, ValueError, UnicodeError):
        return None


def _compare(documents: list[bytes]) -> int:
    """Asserts the two readers agree on every item; returns how many the compiled one read."""
    assert fastfeed._READER is not None
    # what fastfeed parses with, and a parser that keeps comments and PIs (which the reader must decline)
    parsers = [fastfeed._parser(), etree.XMLParser(resolve_entities=False, no_network=True)]
    read = 0
    for data in documents:
        for parser in parsers:
            for item in _items(data, parser):
                got, want = fastfeed._READER.read(item), _python(item)
                if got is not None:
                    assert got == want, etree.tostring(item)
                    assert {type(v) for v in got[0].values()} <= {str}  # (not a subclass)
                    read += 1
    return read


@needs_reader
def test_edge_items_read_alike():
    docs = [f"<rss version='2.0'><channel>{item}</channel></rss>".encode() for item in _EDGE_ITEMS]
    read = _compare(docs)
    assert 15 <= read < 2 * len(_EDGE_ITEMS)  # the common shapes are read in C, the others left to Python


@needs_reader
def test_quirky_feed_items_read_alike():
    assert _compare([data for seed in (1, 2, 3) for _, data, _ in quirky_rss_feeds(seed, 300)]) > 500


@needs_reader
def test_snapshot_items_read_alike(tmp_path):
    snapshot_archive(tmp_path, files=4, items=25, days=1, seed=3)
    assert _compare([p.read_bytes() for p in sorted(tmp_path.rglob("*.xml"))]) == 4 * 25 * 2


@needs_reader
def test_feedparser_corpus_items_read_alike(shared_dir):
    root = shared_dir / "corpora" / "feedparser-tests"
    if not root.is_dir():
        pytest.skip("../shared/corpora/feedparser-tests is not present")
    assert _compare([p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()]) > 100


def test_parse_fast_without_the_compiled_reader_gives_the_same_entries(monkeypatch):
    feeds = [(data, meta) for seed in (1, 2) for _, data, meta in quirky_rss_feeds(seed, 200)]

    def parse_all() -> list[Any]:
        return [
            fastfeed.parse_fast(data, "o", source=None, feed_url=str(meta.get("feed_url") or "") or None,
                                content_type=None)
            for data, meta in feeds
        ]  # fmt: skip

    compiled = parse_all()
    monkeypatch.setattr(fastfeed, "_READER", None)
    assert parse_all() == compiled
    assert sum(p is not None for p in compiled) > 100


def test_reader_tags_are_the_python_roles():
    assert set(fastfeed._READER_ROLES) == set(fastfeed._ITEM_ROLES)
    assert {fastfeed._READER_ROLES[t] for t in fastfeed._ITEM_AUTHORS} == {1}


# --- CDATA sections as escaped text (_accel.cdata_as_text, used by fastfeed._document) ---

_CDATA_CASES = [
    b"<r><a><![CDATA[<p>x &amp; y</p>]]></a></r>",
    b"<r><a>t<![CDATA[ <b>]]>u<![CDATA[]]>v</a></r>",
    b"<r><a><![CDATA[a]]]]>></a></r>",  # content "a]]" then text ">": no "]]>" may form
    b"<r><a><![CDATA[x]]]]></a></r>",
    b"<r><a><![CDATA[]]]></a></r>",
    b"<r><a><![CDATA[\r\n]]></a></r>",
    b"<r><a><![CDATA[\x01]]></a></r>",
    b"<r><a><![CDATA[\t\n \xc3\xa9]]></a></r>",
    b"<![CDATA[x]]><r/>",
    b"<r/><![CDATA[x]]>",
    b"<r><a/><![CDATA[x]]></r>",
    b"<r><!-- <![CDATA[ --><a>x</a></r>",
    b"<r><?pi <![CDATA[x]]> ?><a><![CDATA[y]]></a></r>",
    b'<r><a x="<![CDATA[x]]>"><![CDATA[y]]></a></r>',
    b"<r><a x='>'><![CDATA[<y>]]></a></r>",
    b"<r><a><![CDATA[x</a></r>",
    b"<r><a><![CDATA[x]]></a>",
    b"<r><a><!-- x </a></r>",
    b"<!DOCTYPE r><r><a><![CDATA[x]]></a></r>",
    b"<r><a><![cdata[x]]></a></r>",
    b"<r><a><![CDATA[&lt;&amp;]]]]><![CDATA[>]]></a></r>",
]


def _tree(data: bytes) -> Any:
    """Every node of lxml's parse (tag, attributes, text, tail) or the error's type."""
    try:
        root = etree.fromstring(data, fastfeed._parser())
    except (etree.LxmlError, ValueError) as error:
        return type(error)
    return [(el.tag, dict(el.attrib), el.text, el.tail) for el in root.iter()]


@needs_reader
def test_cdata_as_text_parses_to_the_same_tree():
    from pipeline.parsing import _accel

    inputs = [*_CDATA_CASES, *(data for seed in (1, 2, 3) for _, data, _ in quirky_rss_feeds(seed, 100))]
    changed = 0
    for data in inputs:
        as_text = _accel.cdata_as_text(data)
        if as_text is not None:
            assert _tree(as_text) == _tree(data), data
            changed += 1
    assert changed > 100
    assert _accel.cdata_as_text(b"<r><a>x</a></r>") is None  # nothing to change
    for data in (b"<![CDATA[x]]><r/>", b"<r><a><![CDATA[\x01]]></a></r>", b"<!DOCTYPE r><r/>"):
        assert _accel.cdata_as_text(data) is None


@needs_reader
def test_cdata_as_text_parses_the_corpus_and_snapshots_alike(shared_dir, tmp_path):
    from pipeline.parsing import _accel

    snapshot_archive(tmp_path, files=4, items=25, days=1, seed=3)
    inputs = [p.read_bytes() for p in sorted(tmp_path.rglob("*.xml"))]
    root = shared_dir / "corpora" / "feedparser-tests"
    if root.is_dir():
        inputs += [p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()]
    changed = 0
    for data in inputs:
        as_text = _accel.cdata_as_text(data)
        if as_text is not None:
            assert _tree(as_text) == _tree(data), data[:200]
            changed += 1
    assert changed >= 4


@needs_reader
def test_cdata_as_text_is_linear_on_hostile_input():
    from pipeline.parsing import _accel

    for piece in (b"<![CDATA[", b"]]>", b"<!--", b"<a x='", b"<a>", b"<", b"]", b"<![CDATA[x]]>"):
        for times in (50000, 100000):  # (timed by hand when written: twice the input, twice the time)
            _accel.cdata_as_text(b"<r>" + piece * times + b"</r>")


@needs_reader
def test_cdata_as_text_escapes_content_as_its_definition_says():
    """Random content (8 bytes at a time in C, controls, tab, newline, the escaped bytes anywhere in a word)
    against the rule: `&` `<` `]` as references, other bytes as they are, None for a control but tab and
    newline, CR or DEL."""
    from pipeline.parsing import _accel

    def escaped(content: bytes) -> bytes | None:
        if any((c < 0x20 and c not in (9, 10)) or c == 0x7F for c in content):
            return None
        return content.replace(b"&", b"&amp;").replace(b"<", b"&lt;").replace(b"]", b"&#93;")

    rng = random.Random(3)
    odd = [0, 1, 9, 10, 13, 31, 32, 38, 60, 62, 93, 126, 127, 128, 0xC3, 0xA9, 255]
    for _ in range(20000):
        n = rng.randint(0, 40)
        content = bytes(rng.choice(odd) if rng.random() < 0.3 else rng.randrange(32, 127) for _ in range(n))
        content = content.replace(b"]]>", b"")
        if b"]]>" in content:
            continue
        want = escaped(content)
        got = _accel.cdata_as_text(b"<r><a><![CDATA[" + content + b"]]></a></r>")
        assert got == (None if want is None else b"<r><a>" + want + b"</a></r>"), content
