import json
import random
import re

import pytest

from pipeline.errors import BadInputError
from pipeline.parsing import prescreen as prescreen_module
from pipeline.parsing.parse import parse_bytes
from pipeline.parsing.prescreen import AUTHOR_MAX_BYTES, AUTHOR_MAX_RUN, MAX_ENTRIES, prescreen_xml

RUN = re.compile(r"[A-Za-z0-9_.+\-]+")  # what feedparser's e-mail pattern backtracks over


def rss(item_xml: str, items: int = 1) -> bytes:
    body = "".join(
        f"<item><title>t{i}</title>{item_xml}<description>d</description></item>" for i in range(items)
    )
    return f'<?xml version="1.0"?><rss version="2.0"><channel><title>c</title>{body}</channel></rss>'.encode()


def authors_seen_by_feedparser(data: bytes) -> list[str]:
    import io

    import feedparser

    result = feedparser.parse(io.BytesIO(prescreen_xml(data)[0]), sanitize_html=False)
    return [e.get("author", "") for e in result.entries]


@pytest.mark.parametrize(
    "element",
    [
        "<author>{}</author>",
        "<author><![CDATA[{}]]></author>",
        "<dc:creator xmlns:dc='http://purl.org/dc/elements/1.1/'>{}</dc:creator>",
        "<managingEditor>x <b>{}</b> y</managingEditor>",
        "<author>{}",  # never closed: the entry's end closes it
    ],
)
def test_author_fields_reach_feedparser_short_enough_for_its_email_search(element: str) -> None:
    """The work of feedparser's e-mail search is bounded by text length x longest run: assert both."""
    hostile = rss(element.format("a" * 200_000))
    data, problems = prescreen_xml(hostile)
    assert len(data) < 2_000 and problems == ["1 author field(s) cut to 256 bytes before parsing"]
    for author in authors_seen_by_feedparser(hostile):
        assert len(author.encode()) <= AUTHOR_MAX_BYTES
        assert max((len(r) for r in RUN.findall(author)), default=0) <= AUTHOR_MAX_RUN


@pytest.mark.timeout(60)  # a hang guard only: before the cut this input took hours (16 KB: 3.9 s, quadratic)
def test_a_400_kb_author_without_at_sign_parses_at_once() -> None:
    parsed = parse_bytes(rss("<author>" + "a" * 400_000 + "</author>"), "feed.xml")
    assert parsed.entries[0].authors == ("a" * AUTHOR_MAX_RUN,)
    assert "author field(s) cut" in parsed.problems[0]


def test_an_author_never_closed_costs_no_text_of_the_next_entries() -> None:
    doc = rss("<author>" + "a" * 1_000, items=3)
    data, _ = prescreen_xml(doc)
    assert data.count(b"<description>d</description>") == 3 and data.count(b"<title>t") == 3


def test_ordinary_authors_and_markup_elsewhere_are_untouched() -> None:
    long_html = "<author>" + "b" * 5_000  # inside CDATA, a comment or escaped text: not an element
    doc = rss(
        "<author>jane.doe@example.com (Jane Doe)</author><author/>"
        f"<content:encoded xmlns:content='http://purl.org/rss/1.0/modules/content/'>"
        f"<![CDATA[{long_html}]]></content:encoded><!-- {long_html} -->"
        f"<category>&lt;author&gt;{'c' * 5_000}</category>"
    )
    assert prescreen_xml(doc) == (doc, [])


def test_cuts_end_on_a_whole_character_and_a_whole_entity() -> None:
    for text in ("é" * 300, "&amp;" * 100, "x" * 250 + "&#233;" * 10):
        data, _ = prescreen_xml(rss(f"<author>{text}</author>"))
        kept = data.split(b"<author>")[1].split(b"</author>")[0]
        kept.decode("utf-8")  # no broken sequence
        assert not re.search(rb"&[^;]*$", kept)  # no broken entity
        assert len(kept) <= AUTHOR_MAX_BYTES


def test_utf16_documents_are_left_to_the_parse_budget() -> None:
    doc = rss("<author>" + "a" * 1_000 + "</author>").decode().encode("utf-16")
    assert prescreen_xml(doc) == (doc, [])


def test_item_cap_counts_before_parsing() -> None:
    prescreen_xml(rss("", MAX_ENTRIES))
    with pytest.raises(BadInputError) as err:
        parse_bytes(rss("", 200_000), "tiny-items.xml")  # 124 s and 427 MB before the cap
    assert err.value.kind == "too_many_entries" and err.value.fields["entries"] == 200_000
    atom = b"<feed xmlns='http://www.w3.org/2005/Atom'>" + b"<entry/>" * (MAX_ENTRIES + 1) + b"</feed>"
    with pytest.raises(BadInputError) as err:
        parse_bytes(atom, "a.atom")
    assert err.value.kind == "too_many_entries"


def test_item_cap_for_json_feed() -> None:
    items = [{"id": str(i), "title": "t", "content_text": "x"} for i in range(MAX_ENTRIES + 1)]
    doc = json.dumps({"version": "https://jsonfeed.org/version/1.1", "items": items}).encode()
    with pytest.raises(BadInputError) as err:
        parse_bytes(doc, "feed.json")
    assert err.value.kind == "too_many_entries"


def _author_variants() -> list[bytes]:
    """Author fields around every limit and shape the cut knows, in documents with CDATA and comments."""
    texts = ["", "Jane Doe", "j" * AUTHOR_MAX_BYTES, "j" * (AUTHOR_MAX_BYTES + 1), "r" * AUTHOR_MAX_RUN,
             "r" * (AUTHOR_MAX_RUN + 1), "a]b", "x &amp; y", "é" * 130]  # fmt: skip
    shapes = ["<author>{}</author>", "<AUTHOR>{}</Author >", "<dc:creator><![CDATA[{}]]></dc:creator>",
              "<author>{}<b>x</b></author>", "<author>{}</writer>", "<author>{}", "<author x='1'/>{}",
              "<![CDATA[<author>{}]]>", "<!-- <author>{} -->", "<author><![CDATA[{}]]> </author>",
              "<managingEditor>{}</managingeditor>", "<itunes:owner>{}</itunes:owner>"]  # fmt: skip
    return [rss(shape.format(text), items=2) for shape in shapes for text in texts]


def test_the_no_cut_check_agrees_with_the_cut():
    from pipeline.parsing import prescreen

    quiet = 0
    for doc in _author_variants():
        data, cut = prescreen._cut_every_author_field(doc)
        if prescreen._nothing_to_cut(doc):
            quiet += 1
            assert (data, cut) == (doc, 0)
        assert prescreen._cut_author_fields(doc) == (data, cut)
    assert 20 < quiet < len(_author_variants())  # both ways taken


def test_the_entry_count_is_exact_past_the_quick_bound() -> None:
    many_tags = rss("<b/>" * (MAX_ENTRIES + 10), items=1)  # more '<' than the cap, one item
    assert prescreen_xml(many_tags)[0] == many_tags
    with pytest.raises(BadInputError) as raised:
        prescreen_xml(rss("", items=MAX_ENTRIES + 1))
    assert raised.value.fields["entries"] == MAX_ENTRIES + 1


def _random_documents(count: int, seed: int) -> list[bytes]:
    """Pieces of every token _nothing_to_cut's regular expressions look at, glued at random."""
    rng = random.Random(seed)
    pieces = ["<", ">", "/", "</", "/>", " ", "\t", "\n", "\x0b", ":", "x", "J", "]", "]]>", "-->", "<!--",
              "<![CDATA[", "<![cdata[", "<![CdAtA[", "author", "AUTHOR", "Creator", "dc:", "x.y-z:", "_p:",
              "managingEditor", "webmaster", "publisher", "owner", "itunes:owner", "authorx", "<author",
              "</author>", "</ author >", "</dc:creator>", "<dc:creator>", "<author x='1'>", "é", "a@b.c",
              "r" * 40, "j" * 200, "&amp;", "\x00"]  # fmt: skip
    return [
        "".join(rng.choice(pieces) for _ in range(rng.randrange(1, 60))).encode("utf-8") for _ in range(count)
    ]


@pytest.mark.skipif(prescreen_module._accel is None, reason="pipeline.parsing._accel was not built")
def test_the_compiled_no_cut_check_is_the_regular_expressions_one(shared_dir):
    corpus = shared_dir / "corpora" / "feedparser-tests"
    docs = [
        *_author_variants(),
        *_random_documents(20000, 5),
        *(p.read_bytes() for p in corpus.rglob("*.xml")),
    ]
    docs += [doc[:cut] for doc in _author_variants() for cut in range(0, len(doc), 7)]  # every kind of end
    answers = [prescreen_module._nothing_to_cut(doc) for doc in docs]
    assert [prescreen_module._accel.nothing_to_cut(doc) for doc in docs] == answers
    assert 100 < sum(answers) < len(docs) - 100  # both answers given often


@pytest.mark.skipif(not prescreen_module.COMPILED, reason="pipeline.parsing._accel was not built")
def test_the_compiled_byte_count_is_bytes_count() -> None:
    rng = random.Random(9)
    docs = [b"", b"<", b"<" * 255, b"<" * 256, b"<" * 100_000, rss("<b/>" * 300, items=40)]
    docs += [bytes(rng.choice(b"<<>a\x00\xff") for _ in range(rng.randrange(0, 2000))) for _ in range(200)]
    for doc in docs:
        for byte in (0x3C, 0x00, 0xFF):
            assert prescreen_module._accel.count_byte(doc, byte) == doc.count(bytes([byte]))
    with pytest.raises(ValueError):
        prescreen_module._accel.count_byte(b"x", 256)


@pytest.mark.parametrize("compiled", [True, False])
def test_the_entry_cap_is_the_same_either_way(monkeypatch, compiled) -> None:
    if compiled and not prescreen_module.COMPILED:
        pytest.skip("pipeline.parsing._accel was not built")
    monkeypatch.setattr(prescreen_module, "COMPILED", compiled)
    many_tags = rss("<b/>" * (MAX_ENTRIES + 10), items=1)
    assert prescreen_xml(many_tags)[0] == many_tags
    with pytest.raises(BadInputError) as raised:
        prescreen_xml(rss("", items=MAX_ENTRIES + 1))
    assert raised.value.fields["entries"] == MAX_ENTRIES + 1
