import codecs
from typing import Any

import pytest

from pipeline.errors import BadInputError
from pipeline.parsing.parse import (
    FIELD_CAPS,
    MAX_INPUT_BYTES,
    MAX_NAMES,
    NAME_CAP,
    RawEntry,
    cap_entry,
    derive_title,
    first_sentence,
    parse_bytes,
    parse_wire_text,
    sniff,
)


def parse_fixture(fixtures_dir, name, **kw):
    return parse_bytes((fixtures_dir / name).read_bytes(), name, **kw)


def test_rss20_prefers_content_encoded_and_keeps_raw_fields(fixtures_dir):
    parsed = parse_fixture(fixtures_dir, "rss20_content_encoded.xml")
    first, second = parsed.entries
    assert isinstance(first, RawEntry)
    assert first.source == "Example & Daily"
    assert first.body_is_html and "<p>First paragraph" in first.body
    assert first.summary is not None and "summary" in first.summary
    assert first.guid == "story-1001"
    assert first.published == "Tue, 05 Mar 2024 09:30:00 EST"
    assert first.authors == ("Jane Roe",)
    assert first.categories == ("Trade", "Politics")
    assert first.base == "https://News.Example.com/"
    assert first.language == "en-GB"
    assert second.body == "Plain description text." and second.summary is None
    assert parsed.problems == [] and parsed.rejected_entries == 0


@pytest.mark.parametrize(
    ("name", "title", "count"),
    [
        ("rss091.xml", "Café opens on Main Street", 1),
        ("rss10_rdf.xml", "Semiconductor exports rise", 1),
        ("atom03.xml", "Legacy Atom entry", 1),
        ("atom10.xml", "Rare <em>earths</em> deal", 2),
        ("cdf.xml", "CDF item title", 1),
        ("jsonfeed11.json", "TikTok divestiture deadline extended", 2),
    ],
)
def test_feed_formats(fixtures_dir, name, title, count):
    parsed = parse_fixture(fixtures_dir, name)
    assert len(parsed.entries) == count
    assert parsed.entries[0].title == title


def test_atom_dates_links_and_authors(fixtures_dir):
    entry = parse_fixture(fixtures_dir, "atom10.xml").entries[0]
    assert entry.title_is_html and entry.body_is_html
    assert entry.link == "https://atom.example.org/blog/posts/rare-earths?id=7&utm_campaign=x"
    assert entry.published == "2024-01-09T23:30:00-05:00"
    assert entry.published_parsed is not None
    assert entry.authors == ("Entry Writer",)
    assert entry.summary == "A summary that is plain." and not entry.summary_is_html


def test_json_feed_items_and_bad_item_dropped(fixtures_dir):
    parsed = parse_fixture(fixtures_dir, "jsonfeed11.json")
    first, second = parsed.entries
    assert first.body_is_html and "<script>" in first.body
    assert first.categories == ("tech", "policy")
    assert first.authors == ("Ann Author",)
    assert first.base == "https://json.example.org/feed.json"
    assert second.guid == "2" and not second.body_is_html and second.authors == ("Desk",)
    assert parsed.rejected_entries == 1 and "not an object" in parsed.problems[-1]


def test_source_and_feed_url_arguments_win(fixtures_dir):
    parsed = parse_fixture(fixtures_dir, "rss091.xml", source="Mine", feed_url="https://feeds.example/x.xml")
    assert parsed.entries[0].source == "Mine"
    assert parsed.entries[0].feed_url == "https://feeds.example/x.xml"
    assert parsed.entries[0].base == "https://feeds.example/x.xml"


def test_bozo_feed_with_entries_is_kept_with_problem(fixtures_dir):
    truncated = parse_fixture(fixtures_dir, "truncated.xml")
    assert truncated.entries[0].title == "Complete item"
    assert truncated.problems
    latin = parse_fixture(fixtures_dir, "wrong_encoding.xml")
    assert latin.entries[0].title == "Café crème"
    assert latin.problems


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("empty.xml", "empty"),
        ("whitespace.txt", "empty"),
        ("binary.gz", "binary"),
        ("binary.bin", "binary"),
        ("malformed.xml", "malformed"),
        ("no_items.xml", "no_entries"),
        ("not_a_feed.json", "malformed"),
        ("truncated.json", "malformed"),
    ],
)
def test_bad_inputs_raise_bad_input_error(fixtures_dir, name, kind):
    with pytest.raises(BadInputError) as err:
        parse_fixture(fixtures_dir, name)
    assert err.value.kind == kind
    assert err.value.message


def test_too_large_input():
    with pytest.raises(BadInputError) as err:
        parse_bytes(b" " * (MAX_INPUT_BYTES + 1), "big")
    assert err.value.kind == "too_large"


def test_str_is_refused():
    with pytest.raises(TypeError):
        parse_bytes("http://example.com/feed.xml", "x")  # type: ignore[arg-type]


def test_bytes_naming_a_file_are_not_opened(tmp_path, monkeypatch):
    # feedparser.parse(bytes) tries open(bytes) first; parse_bytes must hand it the data, never a path.
    monkeypatch.chdir(tmp_path)
    (tmp_path / "<rss>").write_bytes(b"<rss><channel><item><title>secret</title></item></channel></rss>")
    with pytest.raises(BadInputError) as err:
        parse_bytes(b"<rss>", "x")  # the data itself is an unclosed, empty feed
    assert err.value.kind in {"malformed", "no_entries"}
    with pytest.raises(BadInputError) as err:
        parse_bytes(str(tmp_path / "<rss>").encode(), "y")
    assert err.value.kind == "malformed"


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be"])
def test_utf16_and_utf32_feeds_with_and_without_bom(encoding):
    xml = (
        f'<?xml version="1.0" encoding="{encoding[:6]}"?><rss version="2.0"><channel><item><title>Ünï</title>'
    )
    xml += "</item></channel></rss>"
    bom = {"utf-16-le": codecs.BOM_UTF16_LE, "utf-16-be": codecs.BOM_UTF16_BE}.get(encoding, b"")
    for data in (xml.encode(encoding), bom + xml.encode(encoding)):
        assert sniff(data) == "xml"
        assert parse_bytes(data, "wide").entries[0].title == "Ünï"


def test_text_in_an_older_encoding_is_read_and_says_so(fixtures_dir):
    """wrong_encoding.txt is windows-1252 (no UTF-8 sequence in it): read as such, not refused."""
    parsed = parse_fixture(fixtures_dir, "wrong_encoding.txt")
    assert parsed.entries[0].body.startswith("Le café est fermé")
    assert parsed.problems == [
        "text is not valid UTF-8 (invalid continuation byte at byte 6): read as windows-1252"
    ]
    mixed = (
        "Le café est fermé depuis hier soir, selon la mairie.\n"
    ).encode() + b"Un octet \xff perdu ici.\n"
    (entry,) = parse_bytes(mixed, "m.txt").entries  # UTF-8 with one bad byte: UTF-8, the byte U+FFFD
    assert "café" in entry.body and "\ufffd" in entry.body


def test_wire_text_in_utf16_with_a_bom_is_read():
    text = "Le café est fermé depuis hier soir, selon la mairie de Paris.\n\nSource: Agence\n"
    for encoding, bom in (("utf-16-le", codecs.BOM_UTF16_LE), ("utf-16-be", codecs.BOM_UTF16_BE)):
        (entry,) = parse_bytes(bom + text.encode(encoding), "w.txt").entries
        assert entry.body.startswith("Le café") and entry.attribution == "Agence"


@pytest.mark.parametrize(
    "doc",
    [
        b'<rss version="2.0"><channel><title>c</title><item><title>Go\x00od</title></item>'
        b"<item><title>Two</title></item></channel></rss>",
        b'{"version": "https://jsonfeed.org/version/1.1", "title": "t\x00", "items": '
        b'[{"id": "1", "title": "Go\x00od"}, {"id": "2", "title": "Two"}]}',
        b"Go\x00od morning: the talks on tariffs resumed in Madrid on Tuesday, officials said.\n",
    ],
)
def test_stray_nul_bytes_are_removed_and_noted(doc):
    """A few NUL bytes in a text document (never valid in XML, JSON or text) do not cost its stories."""
    parsed = parse_bytes(doc, "n")
    assert parsed.entries[0].title.startswith("Good")
    assert any("NUL byte" in p and "removed" in p for p in parsed.problems)


def test_many_nul_bytes_are_still_binary():
    with pytest.raises(BadInputError) as err:
        parse_bytes(b"<rss>" + b"\x00ab" * 100 + b"</rss>", "b")  # a third of the bytes
    assert err.value.kind == "binary"


def test_json_feed_with_an_integer_too_long_for_python_and_latin1_bytes():
    huge = b"9" * 100_000
    doc = (
        b'{"version": "https://jsonfeed.org/version/1.1", "title": "Caf\xe9", "items": ['
        b'{"id": ' + huge + b', "title": "Huge id"}, {"id": 2, "title": "Good caf\xe9"}]}'
    )
    parsed = parse_bytes(doc, "j.json")
    assert [e.title for e in parsed.entries] == ["Huge id", "Good café"]
    assert parsed.entries[0].guid.startswith("9999") and parsed.entries[1].guid == "2"
    assert parsed.problems[0].endswith("read as windows-1252")


def test_control_bytes_are_binary():
    with pytest.raises(BadInputError) as err:
        sniff(bytes(range(1, 32)) * 10)
    assert err.value.kind == "binary"


def test_wire_story_fixture(fixtures_dir):
    parsed = parse_fixture(fixtures_dir, "wire_story.txt")
    (entry,) = parsed.entries
    assert entry.title == "Port strike ends after three weeks"
    assert entry.body.split("\n\n") == [
        "Dock workers at the port of Rotterdam voted on Tuesday to end a three-week strike, union officials "
        "said. The walkout had delayed shipments of rare earth magnets and semiconductors across Europe.",
        "Shipping lines said it would take days to clear the backlog of containers.",
    ]
    assert [(r.paragraph, r.sources) for r in entry.references] == [(1, (1, 2)), (2, (3,))]
    assert entry.attribution == "Noah Wire Services"
    assert entry.source == "Noah Wire Services"


def test_wire_seed_format_one_paragraph_per_line():
    text = (
        "First paragraph is a long sentence about trade talks in Madrid. It continues.\n"
        "Second paragraph here with more words.\n"
        "📌 REFERENCE MAP:\n"
        "- Paragraph 1 – [1], [4]\n"
        "- Paragraph 2 — [2]\n"
        "Source: Noah Wire Services\n"
    )
    (entry,) = parse_wire_text(text, "seed.txt").entries
    assert entry.title == "First paragraph is a long sentence about trade talks in Madrid"
    assert entry.body.count("\n\n") == 1
    assert "Reference" not in entry.body and "Source:" not in entry.body and "[1]" not in entry.body
    assert [(r.paragraph, r.sources) for r in entry.references] == [(1, (1, 4)), (2, (2,))]


def test_wire_without_map_takes_final_source_line_only():
    text = (
        "Source: a line that is part of the story and has words.\nMore words in this story here.\nSource: AP"
    )
    (entry,) = parse_wire_text(text, "w.txt").entries
    assert entry.attribution == "AP"
    assert entry.references == ()
    assert entry.body.startswith("Source: a line")


def test_wire_explicit_title_line_and_source_argument():
    (entry,) = parse_wire_text(
        "Title: Big news\n\nSomething happened in the city today.", "w.txt", source="X"
    ).entries
    assert entry.title == "Big news" and entry.source == "X" and entry.body.startswith("Something")


def test_text_without_prose_is_malformed():
    with pytest.raises(BadInputError) as err:
        parse_bytes(b"12345 67890\n---\n", "numbers.txt")
    assert err.value.kind == "malformed"


def test_derive_title_cuts_at_word_boundary():
    long = "Word " * 60 + "end."
    title = derive_title(long)
    assert len(title) <= 120 and title.endswith("…") and not title[:-1].endswith(" ")
    assert derive_title("Short one. Second sentence.") == "Short one"
    assert derive_title("Dr. Who? No.") == "Dr. Who?"
    assert derive_title("The U.S. and J. Smith agreed. Then more.") == "The U.S. and J. Smith agreed"


def test_rss_item_without_updated_does_not_borrow_published(fixtures_dir):
    entry = parse_fixture(fixtures_dir, "rss20_content_encoded.xml").entries[0]
    assert entry.updated is None and entry.updated_parsed is None


def test_json_surrogate_escapes_are_replaced():
    data = (
        b'{"version": "https://jsonfeed.org/version/1", "items": [{"id": "1\\ud800", "title": "t\\udc00"}]}'
    )
    (entry,) = parse_bytes(data, "j").entries
    assert entry.guid == "1\ufffd" and entry.title == "t\ufffd"


# --- hostile inputs: every stage linear. The timeouts are hang guards, not timing assertions: before the
# fixes these inputs took hours (quadratic), after them milliseconds.

PROSE = "The talks on tariffs and export controls resumed in Madrid on Tuesday."


@pytest.mark.timeout(60)
def test_title_line_with_a_long_run_of_spaces():
    parsed = parse_wire_text("Title: a" + " " * 400_000 + "b\n\n" + PROSE + "\n", "w.txt")
    (entry,) = parsed.entries
    assert entry.title.startswith("a ") and len(entry.title) == FIELD_CAPS["title"]
    assert entry.body == PROSE
    assert parsed.problems == [f"title cut from 400002 to {FIELD_CAPS['title']} characters"]


@pytest.mark.timeout(60)
def test_source_line_with_a_long_run_of_spaces():
    parsed = parse_wire_text(PROSE + "\n\nSource: a" + " " * 400_000 + "b\n", "w.txt")
    (entry,) = parsed.entries
    assert entry.attribution is not None and entry.attribution.startswith("a ")
    assert entry.body == PROSE  # the Source: line never leaks into the body


@pytest.mark.timeout(60)
@pytest.mark.parametrize("unit", ["Dr. A ", "A. "])
def test_first_sentence_of_repeated_abbreviations(unit):
    paragraph = unit * (2_000_000 // len(unit))  # 960 KB took 15-28 s before; 2 MB took minutes
    assert first_sentence(paragraph) == paragraph
    assert derive_title(paragraph).endswith("…")
    parsed = parse_wire_text(paragraph + "\n\n" + PROSE, "w.txt")
    assert parsed.entries[0].title.startswith(unit.strip())


def test_first_sentence_still_skips_abbreviations():
    assert derive_title("Dr. Smith met U.S. officials in Madrid. They agreed.") == (
        "Dr. Smith met U.S. officials in Madrid"
    )
    assert derive_title("J. Smith of Acme Corp. said prices rose. More later.") == (
        "J. Smith of Acme Corp. said prices rose"
    )


def test_field_caps_cut_a_10_mb_title_and_say_so():
    title = "word " * 2_000_000
    item = f"<item><title>{title}</title><description>d</description></item>"
    doc = f'<rss version="2.0"><channel><title>c</title>{item}</channel></rss>'
    parsed = parse_bytes(doc.encode(), "big.xml")
    assert len(parsed.entries[0].title) == FIELD_CAPS["title"]
    assert parsed.problems == [
        f"entry 0: title cut from {len(title.strip())} to {FIELD_CAPS['title']} characters"
    ]


def test_name_lists_are_capped():
    entry = RawEntry(
        origin="o", source="s", authors=tuple(f"a{i}" for i in range(500)), categories=("x" * 9_999,)
    )
    capped, cuts = cap_entry(entry)
    assert len(capped.authors) == MAX_NAMES and capped.categories == ("x" * NAME_CAP,)
    assert len(cuts) == 2


def _cap_entry_by_the_rule(entry: RawEntry) -> tuple[RawEntry, list[str]]:
    """cap_entry as the docstring states it, field by field, with no shortcut."""
    from dataclasses import replace

    changes: dict[str, object] = {}
    cuts = []
    for name, cap in FIELD_CAPS.items():
        value = getattr(entry, name)
        if isinstance(value, str) and len(value) > cap:
            changes[name], _ = value[:cap], cuts.append(f"{name} cut from {len(value)} to {cap} characters")
    for name in ("authors", "categories"):
        values = getattr(entry, name)
        capped = tuple(v[:NAME_CAP] for v in values[:MAX_NAMES])
        if capped != values:
            changes[name] = capped
            cuts.append(
                f"{name} cut to {MAX_NAMES} names of at most {NAME_CAP} characters ({len(values)} given)"
            )
    return replace(entry, **changes), cuts


@pytest.mark.parametrize("over", [0, 1])
@pytest.mark.parametrize("field", [*FIELD_CAPS, "authors", "categories", "one long name"])
def test_cap_entry_at_and_just_over_every_cap(field, over):
    if field in FIELD_CAPS:
        entry = RawEntry(**{"origin": "o", "source": "s", field: "x" * (FIELD_CAPS[field] + over)})
    elif field == "one long name":
        entry = RawEntry(origin="o", source="s", categories=("c", "n" * (NAME_CAP + over)))
    else:
        entry = RawEntry(origin="o", source="s", **{field: tuple("n" for _ in range(MAX_NAMES + over))})
    capped, cuts = cap_entry(entry)
    assert (capped, cuts) == _cap_entry_by_the_rule(entry)
    assert (capped is entry) == (not over) and len(cuts) == over


def test_str_reads_ascii_and_other_text_alike():
    from pipeline.parsing.parse import _str
    from pipeline.parsing.text import without_surrogates

    for value in (
        "  plain  ",
        "",
        "   ",
        "\t tab\n",
        "caf\u00e9 ",
        "\ud800 lone",
        " \u00a0nbsp\u00a0 ",
        "\u2003",
    ):
        assert _str(value) == (without_surrogates(value).strip() or None)
    assert _str(3) == "3" and _str(True) is None and _str(None) is None


def test_new_entry_is_the_dataclass_entry_and_wants_every_field_in_order():
    from dataclasses import fields

    from pipeline.parsing.parse import new_entry

    values = {f.name: f.default for f in fields(RawEntry)} | {"origin": "o", "source": "s", "title": "t"}
    entry = new_entry(dict(values))
    assert entry == RawEntry(**values) and vars(entry) == vars(RawEntry(**values))
    assert hash(entry) == hash(RawEntry(**values))
    with pytest.raises(TypeError):
        new_entry({"origin": "o", "source": "s"})
    with pytest.raises(TypeError):
        new_entry(dict(reversed(values.items())))


def test_within_caps_says_yes_only_to_entries_within_every_cap():
    """parse.within_caps is a shortcut of cap_entry's check: whenever it says yes, the rule cuts nothing."""
    import random

    from pipeline.parsing.parse import within_caps

    rng = random.Random(3)
    names = [*FIELD_CAPS]
    for _ in range(3000):
        values: dict[str, object] = {"origin": "o", "source": "s"}
        for name in rng.sample(names, rng.randrange(4)):
            cap = FIELD_CAPS[name]
            values[name] = "x" * rng.choice([0, 1, cap - 1, cap, cap + 1])
        for name in rng.sample(["authors", "categories"], rng.randrange(3)):
            values[name] = tuple(
                "n" * rng.choice([1, NAME_CAP, NAME_CAP + 1]) for _ in range(rng.choice([0, 1, 2]))
            )
        entry = RawEntry(**values)
        by_rule = _cap_entry_by_the_rule(entry)
        if within_caps(vars(entry)):
            assert by_rule == (entry, [])
        assert cap_entry(entry) == by_rule
    assert not within_caps(vars(RawEntry(origin="o", source="s", summary=7)))  # type: ignore[arg-type]


# --- feedparser's quadratic steps, replaced (parse._linear_feedparser) --------------------------------------


@pytest.mark.timeout(60)
def test_an_element_with_200000_attributes_parses_and_keeps_every_item():
    """feedparser's strict parser asked xml.sax for each attribute by a walk of all of them: 116,666
    attributes on an extension element took over a minute (the parse budget then rejected the feed)."""
    attributes = "".join(f'a{i}="v" ' for i in range(200_000))
    data = _items(
        "<title>Good item</title><link>https://e.example/1</link>",
        f'<title>Hostile</title><link>https://e.example/2</link><x:meta xmlns:x="urn:x" {attributes}/>',
    )
    parsed = parse_bytes(data, "f.xml")
    assert [e.title for e in parsed.entries] == ["Good item", "Hostile"]


@pytest.mark.timeout(60)
def test_an_atom_entry_of_60000_categories_parses():
    """feedparser kept categories distinct with a walk of the list for each: 25,000 took 35 s."""
    cats = "".join(f'<category term="c{i}"/><author><name>A{i}</name></author>' for i in range(60_000))
    data = (
        '<feed xmlns="http://www.w3.org/2005/Atom" xmlns:x="urn:x"><title>f</title>'
        f"<entry><title>Many</title><id>urn:1</id><x:odd/>{cats}</entry></feed>"
    ).encode()
    (entry,) = parse_bytes(data, "f.atom").entries
    assert entry.categories == tuple(f"c{i}" for i in range(MAX_NAMES))


def test_the_linear_feedparser_steps_give_feedparsers_answers():
    """Random category soups (terms, schemes, labels, text after a domain-only start tag, repeats, keywords
    lists) parsed by feedparser with its own `_add_tag` and with the replacement: the same tags, in order."""
    import random

    import feedparser
    from feedparser.mixin import _FeedParserMixin

    from pipeline.parsing import parse as parse_module

    parse_module._linear_feedparser()
    ours = _FeedParserMixin._add_tag
    theirs = parse_module._FEEDPARSER_ORIGINALS["_add_tag"]
    rng = random.Random(11)
    words = ["a", "b", "c", "", "a,b", " c "]

    def category() -> str:
        term, domain, text = rng.choice(words), rng.choice(["", "d", "e"]), rng.choice(words)
        attrs = (f' domain="{domain}"' if domain else "") + (f' term="{term}"' if rng.random() < 0.3 else "")
        kind = rng.choice(["category", "category", "dc:subject", "media:keywords", "itunes:keywords"])
        return f"<{kind}{attrs}>{text}</{kind}>"

    for _ in range(300):
        items = "".join(
            f"<item><title>t</title>{''.join(category() for _ in range(rng.randrange(12)))}</item>"
            for _ in range(rng.randrange(1, 4))
        )
        ns = (
            'xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:media="http://search.yahoo.com/mrss/" '
            'xmlns:itunes="http://www.itunes.com/dtds/podcast-1.0.dtd"'
        )
        doc = f'<rss version="2.0" {ns}><channel><title>c</title>{items}</channel></rss>'.encode()
        results = []
        for add_tag in (theirs, ours):
            _FeedParserMixin._add_tag = add_tag
            try:
                results.append([e.get("tags") for e in feedparser.parse(doc)["entries"]])
            finally:
                _FeedParserMixin._add_tag = ours
        assert results[0] == results[1], doc


def test_the_qualified_name_index_answers_as_the_walk_does():
    from xml.sax.xmlreader import AttributesNSImpl

    from pipeline.parsing import parse as parse_module

    parse_module._linear_feedparser()
    walk = parse_module._FEEDPARSER_ORIGINALS["getValueByQName"]
    attrs = AttributesNSImpl(
        {(None, "a"): "1", ("urn:x", "a"): "2", ("urn:y", "b"): "3"},
        {(None, "a"): "a", ("urn:x", "a"): "x:a", ("urn:y", "b"): "x:a"},  # two attributes, one qname
    )
    for name in ("a", "x:a"):
        assert attrs.getValueByQName(name) == walk(attrs, name)
    with pytest.raises(KeyError):
        attrs.getValueByQName("b")


def _items(*inner: str) -> bytes:
    items = "".join(f"<item>{i}</item>\n" for i in inner)
    return (
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>c</title>{items}</channel></rss>'.encode()
    )


def test_an_unclosed_element_in_one_item_costs_no_other_item():
    """feedparser's loose reading of a document that is not well-formed ran an unclosed <title> on into the
    next item, which was lost; each entry read on its own keeps it."""
    data = _items(
        "<title>Good 1</title><link>https://e.example/1</link>",
        "<title>Broken unclosed<link>https://e.example/b</link><description>x</desc>",
        "<title>Good 2</title><link>https://e.example/2</link>",
        "<title>Good 3</title><link>https://e.example/3</link>",
    )
    parsed = parse_bytes(data, "m.xml")
    titles = [e.title for e in parsed.entries]
    assert {"Good 1", "Good 2", "Good 3"} <= set(titles)
    assert any("mismatched tag" in p for p in parsed.problems)


def test_entries_are_told_apart_outside_cdata_and_comments_only():
    from pipeline.parsing.parse import _entry_starts

    data = _items("<description><![CDATA[an <item> in text]]></description>", "<!-- <item> -->t")
    assert len(_entry_starts(data)) == 2
    assert _entry_starts(b"<rss><item>a</item><![CDATA[" + b"<item>" * 10) == [5]  # no end: the rest is text


def test_a_well_formed_document_is_read_once():
    data = _items("<title>A</title>", "<title>B</title>")
    assert [e.title for e in parse_bytes(data, "w.xml").entries] == ["A", "B"]


def test_junk_after_the_last_entry_is_not_read_again_with_every_entry(monkeypatch: pytest.MonkeyPatch):
    """Three items, then 30,000 unclosed tags (a red-team server, 4 Dec): the one-entry-at-a-time reading
    repeated the junk with each entry (4 readings of it, 25 CPU-s a MB, the budget then lost the items). Each
    entry's document now closes with the end tags only; the junk is read by the whole-document reading."""
    from pipeline.parsing import parse as parse_module

    junk = b"<x>" * 30_000
    data = _items(*(f"<title>Good {i}</title><link>https://e.example/{i}</link>" for i in range(3)))
    data = data.replace(b"</channel>", junk + b"</channel>")
    sizes: list[int] = []
    real = parse_module._feedparser_parse

    def recording(document: bytes, headers: dict[str, str]) -> Any:
        sizes.append(len(document))
        return real(document, headers)

    monkeypatch.setattr(parse_module, "_feedparser_parse", recording)
    parsed = parse_bytes(data, "junk.xml")
    assert [e.title for e in parsed.entries] == ["Good 0", "Good 1", "Good 2"]
    assert len(sizes) == 4 and sum(size > len(junk) for size in sizes) == 1  # the whole document only
