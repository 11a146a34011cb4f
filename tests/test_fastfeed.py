"""The RSS/Atom fast path against feedparser: every story field equal, or the input goes to feedparser."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from bench.differential import compare
from bench.generate import Writer, mutated_feeds, quirky_atom_feeds, quirky_rss_feeds, rss_feed
from pipeline.parsing import fastfeed


def _files(root: Path) -> list[tuple[str, bytes, dict[str, object]]]:
    return [(str(p), p.read_bytes(), {}) for p in sorted(root.rglob("*")) if p.is_file()]


def _check(name: str, inputs: list[tuple[str, bytes, dict[str, object]]], min_fast: int) -> None:
    result = compare(inputs)
    print(f"\n{result.line(name)}")
    assert result.differences == []
    assert result.agree == result.fast >= min_fast


def test_feedparser_corpus_agrees(shared_dir):
    root = shared_dir / "corpora" / "feedparser-tests"
    if not root.is_dir():
        pytest.skip("../shared/corpora/feedparser-tests is not present")
    _check("feedparser corpus", _files(root), min_fast=150)


def test_saved_feeds_agree(fixtures_dir):
    _check("tests/fixtures", _files(fixtures_dir), min_fast=1)


def test_generated_news_feeds_agree():
    w = Writer(7)
    feeds = [(f"g{i}.xml", rss_feed(w, i, 20, date(2025, 9, 1 + i % 4)), {}) for i in range(20)]
    feeds += [(f"u{i}.xml", d, {"feed_url": "https://ex.com/f.xml"}) for i, (_, d, _) in enumerate(feeds[:5])]
    _check("generated", feeds, min_fast=len(feeds))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_quirky_feeds_agree(seed):
    _check(f"quirky seed {seed}", quirky_rss_feeds(seed, 400), min_fast=100)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_quirky_atom_feeds_agree(seed):
    _check(f"quirky Atom seed {seed}", quirky_atom_feeds(seed, 400), min_fast=40)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_mutated_feeds_agree(seed):
    """Inputs nobody wrote: most fall back (they are not well-formed); those the fast path reads agree."""
    _check(f"mutated seed {seed}", mutated_feeds(seed, 8000), min_fast=100)


def test_large_input_is_streamed_and_agrees(monkeypatch):
    w = Writer(5)
    data = rss_feed(w, 1, 400, date(2025, 9, 1))
    monkeypatch.setattr(fastfeed, "STREAM_BYTES", len(data) // 4)
    streamed = []
    real = fastfeed._stream_children
    monkeypatch.setattr(fastfeed, "_stream_children", lambda *a: streamed.append(1) or real(*a))
    _check("streamed", [("big.xml", data, {})], min_fast=1)
    assert streamed


@pytest.mark.parametrize(
    "data, content_type",
    [
        (b'<?xml version="1.0" encoding="iso-8859-1"?><rss version="2.0"><channel><item><title>x</title>'
         b"</item></channel></rss>", None),
        (b"<rss version='2.0'><channel><item><title>x</title></item></channel></rss>", "text/xml"),
        (b"<rss version='0.91'><channel><item><title>x</title></item></channel></rss>", None),
        (b"<!DOCTYPE rss><rss version='2.0'><channel><item><title>x</title></item></channel></rss>", None),
        (b"<rss version='2.0'><channel><item><summary>s</summary></item></channel></rss>", None),
        (b"<rss version='2.0'><channel><item><author>a@b.com (A)</author></item></channel></rss>", None),
        (b"<rss version='2.0'><channel><item><title>a</title><title>b</title></item></channel></rss>", None),
        (b"<rss version='2.0'><channel><item><title>x<b>y</b></title></item></channel></rss>", None),
        (b"<rss version='2.0'><channel><item><title>x</item></channel></rss>", None),
        (b"<feed xmlns='http://www.w3.org/2005/Atom'><entry><title type='xhtml'>x</title></entry></feed>",
         None),
        (b"<feed xmlns='http://purl.org/atom/ns#'><entry><title>x</title></entry></feed>", None),
    ],
)  # fmt: skip
def test_fast_path_declines_what_it_cannot_read_exactly(data, content_type):
    assert fastfeed.parse_fast(data, "x", source=None, feed_url=None, content_type=content_type) is None


def _rss(items: str, channel: str = "<title>c</title>") -> bytes:
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/">'
        f"<channel>{channel}{items}</channel></rss>"
    ).encode()


def test_fields_over_their_caps_are_cut_as_feedparser_s_path_cuts_them():
    long = "w" * 3_000
    items = [
        f"<item><title>{long}</title><description>d</description></item>",
        f"<item><guid isPermaLink='false'>{long}</guid><title>t</title></item>",
        f"<item><link>https://ex.com/{long}{long}</link><title>t</title></item>",
        f"<item><title>t</title><pubDate>{long[:300]}</pubDate><dc:date>{long[:201]}</dc:date></item>",
        "<item><title>t</title>" + "".join(f"<category>c{i}</category>" for i in range(150)) + "</item>",
        f"<item><title>t</title><category>{long}</category><dc:creator>{long}</dc:creator></item>",
        f"<item><title>t</title><description>{'d' * 100_001}</description><content:encoded"
        " xmlns:content='http://purl.org/rss/1.0/modules/content/'>body</content:encoded></item>",
    ]
    feeds = [(f"cap{i}.xml", _rss(item), {}) for i, item in enumerate(items)]
    feeds += [
        ("long-source.xml", _rss(items[0], f"<title>{long}</title><language>{'l' * 70}</language>"), {})
    ]
    _check("over caps", feeds, min_fast=len(feeds))
    for _, data, _ in feeds:
        parsed = fastfeed.parse_fast(data, "x", source=None, feed_url=None, content_type=None)
        assert parsed is not None and any("cut" in p for p in parsed.problems)


def test_the_item_check_of_caps_says_what_cap_entry_says():
    from dataclasses import replace

    from pipeline.parsing.parse import FIELD_CAPS, MAX_NAMES, NAME_CAP, RawEntry, cap_entry

    base = RawEntry(origin="o", source="s", title="t", body="b", guid="g", link="l", published="p")
    variants = [base] + [
        replace(base, **{name: "x" * (FIELD_CAPS[name] + over)})
        for name in ("title", "body", "summary", "guid", "link", "published", "updated")
        for over in (0, 1)
    ]
    variants += [
        replace(base, **{name: names})
        for name in ("authors", "categories")
        for names in (
            ("a",) * (MAX_NAMES + 1),
            ("a",) * MAX_NAMES,
            ("a", "b"),
            ("c" * NAME_CAP,),
            ("c" * (NAME_CAP + 1),),
            ("a", "c" * (NAME_CAP + 1)),
        )
    ]
    for entry in variants:
        assert fastfeed._capped(entry) == cap_entry(entry)
    assert set(FIELD_CAPS) == {
        "title",
        "body",
        "summary",
        "guid",
        "link",
        "published",
        "updated",
        "attribution",
    } | set(fastfeed._FEED_CAPPED)


def test_an_item_gives_every_entry_field_in_order():
    from dataclasses import fields

    from pipeline.parsing.parse import RawEntry

    children = fastfeed._document(_rss("<item><title>t</title></item>"))[2]
    item = next(el for el in children if el.tag == "item")
    assert tuple(fastfeed._rss_item(item, "")) == tuple(f.name for f in fields(RawEntry))


def test_an_item_s_entry_is_the_one_new_entry_makes():
    from pipeline.parsing.parse import new_entry

    children = fastfeed._document(_rss("<item><title>t</title><category>c</category></item>"))[2]
    item = next(el for el in children if el.tag == "item")
    fields = fastfeed._rss_item(item, "")
    entry = fastfeed._entry_of(dict(fields))
    assert entry == new_entry(dict(fields)) and vars(entry) == fields


def test_each_thread_reuses_its_own_parser():
    import threading

    mine = fastfeed._parser()
    assert fastfeed._parser() is mine
    theirs: list[object] = []
    thread = threading.Thread(target=lambda: theirs.append(fastfeed._parser()))
    thread.start()
    thread.join()
    assert theirs and theirs[0] is not mine


@pytest.mark.parametrize("compiled", [True, False])
def test_contains_is_bytes_in(monkeypatch, compiled):
    if compiled and not fastfeed.COMPILED:
        pytest.skip("pipeline.parsing._accel was not built")
    monkeypatch.setattr(fastfeed, "COMPILED", compiled)
    documents = [b"", b"<!ENTIT", b"x<!ENTITY y", b"<!ENTITY", b"a<!entity", b"ab" * 5000 + b"<!ENTITY"]
    cases = [(data, b"<!ENTITY") for data in documents] + [(b"abc", b""), (b"", b""), (b"ab", b"abc")]
    for data, needle in cases:
        assert fastfeed._contains(data, needle) is (needle in data), (data[:20], needle)


def test_an_entity_declaration_anywhere_sends_the_feed_to_feedparser():
    data = _rss("<item><title>t</title><description><![CDATA[<!ENTITY x 'y'>]]></description></item>")
    assert fastfeed.parse_fast(data, "x", source=None, feed_url=None, content_type=None) is None
    assert fastfeed.parse_fast(data.replace(b"ENTITY", b"ENTITx"), "x", source=None, feed_url=None,
                               content_type=None) is not None  # fmt: skip


@pytest.mark.parametrize("base", ["", "https://ex.com/feeds/a.xml", "http://ex.com", "https://[::1]:8080/x/"])
def test_urljoin_is_feedparser_s(base):
    from feedparser.urls import _urljoin

    uris = ["https://ex.com/a?b=1&c=2", "http:///ex.com/a", "https:////ex.com//a", "HTTP://Ex.com", "/rel",
            "rel/path", "../up", "?q=1", "#f", "//host/x", "mailto:a@b.c", "http://[bad", "x://y", "a+b-c.d:///e",
            "1http:///x", "http:/x", "", " https:///s ", "https://ex.com/\u00e9"]  # fmt: skip
    for uri in uris:
        assert fastfeed._urljoin(base, uri) == _urljoin(base, uri), uri


def test_cp1252_map_is_feedparser_s():
    from feedparser.html import _cp1252

    assert _cp1252 == fastfeed._CP1252


def test_looks_like_html_is_feedparser_s():
    """The RSS title heuristic, whose first test is made without importing feedparser."""
    from feedparser.mixin import _FeedParserMixin

    titles = ["", "plain", "AT&T", "a < b", "a &amp; b", "&#8220;q&#8221;", "&#x201c;", "&nosuch; x",
              "<b>bold</b>", "<b>open", "</blink>", "x</b >", "<script>a</script>", "a &amp b", "&;", "<br/>",
              "R&D &mdash; X"]  # fmt: skip
    for title in titles:
        expected = bool(title and _FeedParserMixin.looks_like_html(title))
        assert fastfeed._looks_like_html(title) == expected, title


def test_common_feeds_do_not_import_feedparser():
    """feedparser is imported only for what the fast path cannot read (a fresh interpreter)."""
    import subprocess
    import sys

    code = (
        "import sys\nfrom pipeline.parsing.parse import parse_bytes\n"
        'data = b\'<rss version="2.0"><channel><title>T</title><item><title>a &amp; b</title>'
        "<link>https://ex.com/a</link><description>&lt;p&gt;x&lt;/p&gt;</description></item></channel></rss>'\n"
        "assert len(parse_bytes(data, 'x').entries) == 1\nprint('feedparser' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


def test_no_lone_surrogate_reaches_the_fast_path():
    """Why _rss_item strips without parse._str's without_surrogates: such input never gets that far."""
    reference = _rss("<item><title>a&#xD800;b</title></item>")
    encoded = _rss("<item><title>a</title></item>").replace(b"<title>a", b"<title>a\xed\xa0\x80")
    for data in (reference, encoded):
        assert fastfeed.parse_fast(data, "x", source=None, feed_url=None, content_type=None) is None


# Documents where libxml2 and feedparser's path (expat, then its loose parser) read differently: found by a
# mutation fuzz of the quirky feeds against bench.differential.compare. Each either agrees or falls back.
_ITEM = "<item><link>/r?a=1&amp;amp;b=2</link><title>t</title></item>"
_SELF = '<atom:link xmlns:atom="http://www.w3.org/2005/Atom" rel="self"/>'
_UNDECLARED = _rss(_ITEM).partition(b"?>")[2]  # the document after its XML declaration
_SPLIT = [
    ("name beyond ASCII, attribute", _rss(_ITEM).replace(b"<rss ", '<rss a\U0001f600="1" '.encode())),
    ("name beyond ASCII, prefix", _rss(_ITEM).replace(b"<rss ", '<rss xmlns:a\u3400="urn:x" '.encode())),
    ("name beyond ASCII, PI", _rss(_ITEM, "<?f\U0001f600e x?><title>c</title>")),
    ("name beyond ASCII, element", _rss(_ITEM, "<title>c</title><x\u00e9:y xmlns:x\u00e9='urn:x'/>")),
    ("atom:link without href", _rss(_ITEM, f"<title>c</title><link>https://ex.com/</link>{_SELF}")),
    (
        "entity completed by CDATA",
        _rss("<item><title>t</title><description>a &amp<![CDATA[;b]]></description></item>"),
    ),
    ("declaration cut by its first '>'", b'<?xml3 a="b>c"?>' + _UNDECLARED),
    ("encoding in a leading PI", b'<?Nml version="1.0" encoding="latin-9"?>' + _UNDECLARED),
    (
        "rel in capitals, channel",
        _rss(
            _ITEM, "<title>c</title>" + _SELF.replace('"self"/', '"Alternate" href="https://a.example/x/"/')
        ),
    ),
]
_SPLIT_READ = [  # the fast path reads these, as feedparser's path does
    ("rel in capitals, Atom", b"<feed xmlns='http://www.w3.org/2005/Atom'><id>f</id><entry><id>e</id><title>t</title>"
                              b"<link rel='alternAte' href='https://ex.com/c?x=1&amp;y=2'/></entry></feed>"),
    ("rel in capitals, channel self",
     _rss(_ITEM, "<title>c</title><link>https://ex.com/</link>" + _SELF.replace("self", 'SELF" href="/f'))),
]  # fmt: skip


@pytest.mark.parametrize("name, data", _SPLIT + _SPLIT_READ, ids=[n for n, _ in _SPLIT + _SPLIT_READ])
def test_documents_the_two_parsers_read_differently_agree_or_fall_back(name, data):
    result = compare([(name, data, {})])
    assert result.differences == [] and result.agree == result.fast
    assert result.fast == (0 if (name, data) in _SPLIT else 1)


_NAMES = [  # (document, no name beyond ASCII)
    ("<a/>", True), ("<a x='\u00e9'>\u00e9</a>", True), ("<a\u00e9/>", False), ("</b\u00e9>", False),
    ("<a x='1' y\u00e9='2'/>", False), ("<!-- \u00e9 --><a/>", True), ("<![CDATA[\u00e9]]><a/>", True),
    ("<?p \u00e9?><a/>", True), ("<?p\u00e9 x?><a/>", False), ("<!DOCTYPE a><a/>", False),
    ("<a x='\u00e9", True), ("<!-- \u00e9", True), ("<?p x", True), ("<a <b\u00e9>", False),
    ("<a x=\"'\u00e9'\"/>", True),
]  # fmt: skip


@pytest.mark.parametrize("compiled", [True, False])
def test_names_in_markup_are_checked_alike_compiled_and_not(monkeypatch, compiled):
    if compiled and not fastfeed.COMPILED:
        pytest.skip("pipeline.parsing._accel was not built")
    monkeypatch.setattr(fastfeed, "COMPILED", compiled)
    assert [fastfeed._names_ascii(d.encode()) for d, _ in _NAMES] == [ok for _, ok in _NAMES]


def test_the_names_scan_compiled_and_in_python_agree_on_random_markup(monkeypatch):
    import random

    from pipeline.parsing import _accel

    if not fastfeed.COMPILED:
        pytest.skip("pipeline.parsing._accel was not built")
    rng = random.Random(5)
    atoms = [b"<", b">", b"<!--", b"-->", b"<![CDATA[", b"]]>", b"<?", b"?>", b"<!", b'"', b"'", b"a", b" ",
             b"\t", b"\n", b"\xc3\xa9", b"\xf0\x9f\x98\x80", b"=", b"/", b"x=", b"\x00", b"\r",
             b"\x0b"]  # fmt: skip
    documents = [b"".join(rng.choice(atoms) for _ in range(rng.randrange(12))) for _ in range(50_000)]
    compiled = [_accel.markup_names_ascii(d) for d in documents]
    monkeypatch.setattr(fastfeed, "COMPILED", False)
    assert [fastfeed._names_ascii(d) for d in documents] == compiled


def test_a_cdata_section_after_an_unterminated_reference_is_not_written_as_text():
    from pipeline.parsing import _accel

    if not fastfeed.COMPILED:
        pytest.skip("pipeline.parsing._accel was not built")
    assert _accel.cdata_as_text(b"<a>x &amp; <![CDATA[;y]]></a>") == b"<a>x &amp; ;y</a>"
    assert _accel.cdata_as_text(b"<a>x &amp<![CDATA[;y]]></a>") is None
    assert _accel.cdata_as_text(b"<a>&#38<![CDATA[;]]></a>") is None
    assert _accel.cdata_as_text(b"<a><![CDATA[&]]>amp;<![CDATA[x]]></a>") == b"<a>&amp;amp;x</a>"


def test_the_pi_encoding_is_feedparser_s_regex():
    import random
    import re

    regex = re.compile(rb'^<\?.*encoding=[\'"](.*?)[\'"].*\?>')  # feedparser.encodings.RE_XML_PI_ENCODING
    rng = random.Random(3)
    atoms = [b"<?", b"?>", b"encoding=", b'"', b"'", b"utf-8", b"x", b" ", b"\n", b"<", b">", b"oding="]
    for _ in range(20_000):
        data = b"<?" * rng.randrange(2) + b"".join(rng.choice(atoms) for _ in range(rng.randrange(14)))
        found = regex.match(data)
        assert fastfeed._pi_encoding(data, 0) == (found.group(1) if found else None), data
    assert fastfeed._pi_encoding(b'\xef\xbb\xbf<?xml encoding="utf-8"?>', 3) == b"utf-8"
