"""The compiled simple_html (pipeline/parsing/_accel.c) against libxml2's parse with the compiled walk, which
stays the reference: where it answers, the same answer; the same html_to_text either way."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import pytest
from lxml import etree

from bench.generate import quirky_rss_feeds, snapshot_archive
from pipeline.parsing import text as text_module
from pipeline.parsing.text import html_to_text

pytestmark = pytest.mark.skipif(not text_module.COMPILED, reason="pipeline.parsing._accel was not built")

_READ = [
    "a",
    "abbr",
    "b",
    "cite",
    "code",
    "em",
    "i",
    "mark",
    "s",
    "small",
    "span",
    "strong",
    "sub",
    "sup",
    "u",
    "p",
    "h1",
    "h2",
    "h6",
    "blockquote",
    "div",
    "figcaption",
    "figure",
    "li",
    "ol",
    "ul",
]
_OTHER = [
    "table",
    "td",
    "tr",
    "pre",
    "script",
    "style",
    "font",
    "center",
    "foo",
    "o:p",
    "x-y",
    "html",
    "body",
    "head",
    "title",
    "textarea",
    "select",
    "option",
    "dl",
    "dt",
    "dd",
    "section",
    "q",
    "nav",
]
_VOID = ["br", "img", "hr", "BR", "wbr", "input", "meta"]
_ATTRIBUTES = [
    "",
    ' href="https://ex.com/a?x=1&amp;y=2"',
    " class='c'",
    " alt=x",
    ' title="a>b"',
    " data-x",
    '  id = "i" ',
    " href=javascript:x",
    " x=a/",
    ' a="1"b="2"',
    " x='<b>'",
    ' x="',
    " =x",
    " 1a=2",
    '\t\nid="t"',
    " src=https://img.ex.com/x.jpg",
    " /",
    "/",
    " x=`y`",
    ' style="color:red"',
    " onclick=\"alert('x')\"",
    ' xml:lang="en"',
]
_TEXTS = [
    "word",
    " ",
    "  ",
    "\n",
    "\n\n",
    "\t",
    "two words",
    "Caf\u00e9",
    "\u00a0",
    "\u201cquoted\u201d",
    "\U0001d400",
    "\u0301",
    "e\u0301",
    "\u200b",
    "\ufeff",
    "\x85",
    "\x9f",
    "\x01",
    "\x7f",
    "\r",
    "\r\n",
    "javascript:alert(1)",
    "JavaScript: tips",
    "a t: b",
    ">",
    "a > b",
    "<",
    "a < b",
    "\ufffe",
    "\uffff",
    "\ufdd0",
    "\ud800",
    "\x00",
    "\u2028",
    "\u3000",
    "\ua000",
    "1",
    "x" * 50,
]
_REFERENCES = [
    "&amp;",
    "&lt;",
    "&gt;",
    "&quot;",
    "&apos;",
    "&nbsp;",
    "&mdash;",
    "&ndash;",
    "&hellip;",
    "&lsquo;",
    "&rsquo;",
    "&ldquo;",
    "&rdquo;",
    "&copy;",
    "&euro;",
    "&trade;",
    "&times;",
    "&eacute;",
    "&AMP;",
    "&amp",
    "&ampx;",
    "&unknown;",
    "&",
    "& ",
    "&#",
    "&#;",
    "&#x;",
    "&#65;",
    "&#x41;",
    "&#X41;",
    "&#0;",
    "&#9;",
    "&#10;",
    "&#13;",
    "&#31;",
    "&#127;",
    "&#128;",
    "&#150;",
    "&#159;",
    "&#160;",
    "&#8220;",
    "&#xd800;",
    "&#xDFFF;",
    "&#xfeff;",
    "&#xfffe;",
    "&#xffff;",
    "&#xfdd0;",
    "&#x10ffff;",
    "&#x10fffe;",
    "&#x110000;",
    "&#1114111;",
    "&#99999999;",
    "&#0000065;",
    "&#x0041;",
    "&#x00000041;",
    "&lt;script&gt;",
    "&lt;b&gt;",
    "&#60;p&#62;",
    "&amp;lt;i&amp;gt;",
    "&#106;avascript:x",
]
_ODD = [
    "<!-- c -->",
    "<![CDATA[x]]>",
    "<?pi x?>",
    "<!DOCTYPE html>",
    "</",
    "<>",
    "< p>",
    "</ p>",
    "<p/>",
    "</br>",
    "</img>",
    "<b/>",
    "</p >",
    "</p\n>",
    "<P>",
    "</P>",
    "<Div>",
    "<svg><p>x</p></svg>",
    "<script>a<b>c</b></script>",
    "<?xml version='1.0'?>",
]


def _tag(rng: random.Random, name: str) -> str:
    attributes = "".join(rng.choice(_ATTRIBUTES) for _ in range(rng.choice((0, 0, 1, 1, 2))))
    return f"<{name}{attributes}>"


def _content(rng: random.Random, depth: int) -> str:
    """Mostly well-formed nesting of the elements simple_html reads, with the odd piece thrown in."""
    out = []
    for _ in range(rng.randint(0, 5)):
        roll = rng.random()
        if roll < 0.3 and depth < 6:
            name = rng.choice(_READ if rng.random() < 0.9 else _OTHER)
            if rng.random() < 0.1:
                name = name.upper()
            inner = _content(rng, depth + 1)
            close = "" if rng.random() < 0.05 else f"</{name if rng.random() < 0.95 else rng.choice(_READ)}>"
            out.append(f"{_tag(rng, name)}{inner}{close}")
        elif roll < 0.4:
            out.append(_tag(rng, rng.choice(_VOID)) if rng.random() < 0.9 else f"<{rng.choice(_VOID)}/>")
        elif roll < 0.55:
            out.append(rng.choice(_REFERENCES))
        elif roll < 0.58:
            out.append(rng.choice(_ODD))
        else:
            out.append(rng.choice(_TEXTS))
    return "".join(out)


def _lists(rng: random.Random) -> str:
    """Lists, list items and the blocks they hold, where most content-model mistakes are made."""
    parts = []
    for _ in range(rng.randint(1, 4)):
        kind = rng.choice(("ul", "ol", "li", "p", "div", "h2", "b", "figure"))
        inner = rng.choice(
            (
                "",
                " ",
                "\n",
                "x",
                "<li>a</li>",
                " <li>a</li> <li>b</li> ",
                "<p>p</p>",
                "<ul><li>n</li></ul>",
                "<b>b</b> c",
                "<div>d</div>",
                "<img src=x><figcaption>c</figcaption>",
                "&amp;",
                "<li>a<ul><li>b</li></ul>c</li>",
                "<br>",
                "<hr>",
            )
        )
        parts.append(f"{rng.choice(('', 't ', ' '))}<{kind}>{inner}</{kind}>")
    return "".join(parts)


def _generated(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [_content(rng, 0) if k % 3 else _lists(rng) for k in range(count)]


def _reference(html: str, monkeypatch: pytest.MonkeyPatch) -> object:
    with monkeypatch.context() as lxml_only:
        lxml_only.setattr(text_module, "SIMPLE_HTML", False)
        return text_module._extract_utf8(html)


def _check(values: list[str], monkeypatch: pytest.MonkeyPatch) -> int:
    """simple_html's answer equals the libxml2 path's wherever it gives one, and html_to_text is the same with
    and without it; returns how many values it read."""
    read = 0
    for html in values:
        got = text_module._accel.simple_html(html)
        if got is not None:
            want = _reference(html, monkeypatch)
            # (libxml2 gives no tree at all for a fragment of no node: "" then stands for the empty text)
            assert got == want or (want == "" and got == ("", "", b"")), repr(html)
            read += 1
        with monkeypatch.context() as lxml_only:
            lxml_only.setattr(text_module, "SIMPLE_HTML", False)
            want = html_to_text(html)
        assert html_to_text(html) == want, repr(html)
    return read


def test_simple_html_reads_the_block_elements_the_walker_breaks_on():
    elements = text_module._accel.simple_html_elements()
    assert {name for name, block in elements.items() if block} == set(text_module._BLOCK) & set(elements)
    assert not set(elements) & set(text_module._SKIP)


def test_simple_html_agrees_on_generated_fragments(monkeypatch):
    values = _generated(30000, 5)
    read = _check(values, monkeypatch)
    assert read > 5000  # the generator makes many simple fragments, not only ones it turns down


def test_simple_html_agrees_on_the_text_tests_markup(monkeypatch):
    from tests.test_text import _markup_values

    _check(_markup_values(), monkeypatch)


def test_simple_html_turns_down_what_it_does_not_read():
    for html in [
        "<!-- c -->x",
        "<![CDATA[x]]>",
        "<script>x</script>",
        "<table><tr><td>x</td></tr></table>",
        "<p>a<div>b</div>c</p>",
        "<b>a<b>b</b></b>",
        "<li>x</li>",
        "<ul>x</ul>",
        "<p>x",
        "x</p>",
        "<p>x</b>",
        "AT&T",
        "&eacute;",
        "&amp",
        "&#128;",
        "&#xd800;",
        "a\rb",
        "a\x01b",
        "\x85",
        "\ufeff<p>x</p>",
        "<b/>x",
        '<p x="a<b">x</p>',
        "<br>\ud800",
        "<pre>x</pre>",
        "<div>" * 40 + "x" + "</div>" * 40,
    ]:
        assert text_module._accel.simple_html(html) is None, repr(html)
    assert text_module._accel.simple_html("<p>A &amp; B<br/>c</p>") == (
        "A & B\n\nc",
        "",
        b"\n\nA & B\n\n\n\nc\n\n",
    )


def test_simple_html_is_linear_and_reads_big_input():
    body = "<p>Some <b>bold</b> text &amp; an <a href='https://ex.com/'>entity</a> &#8220;here&#8221;.</p>"
    for repeat in (20000, 40000):  # (timed by hand when written: twice the input, twice the time)
        got = text_module._accel.simple_html(body * repeat)
        want = "\n\n".join(["Some bold text & an entity \u201chere\u201d."] * repeat)
        assert isinstance(got, tuple) and got[0] == want
    hostile = [
        "<" * 100000,
        "&" * 100000,
        "<a" + " x" * 100000,
        "<a x='" + "a" * 100000,
        "&#" + "9" * 100000,
        "<p>" * 100000,
        "</p>" * 100000,
        "<b>" + "<i>x</i>" * 100000,
    ]
    for html in hostile:
        text_module._accel.simple_html(html)  # no crash, no quadratic time (not simple, or read in one pass)


def test_simple_html_agrees_on_snapshot_and_quirky_feed_bodies(tmp_path, monkeypatch):
    snapshot_archive(tmp_path, files=4, items=50, days=1, seed=3)
    values = _bodies([p.read_bytes() for p in sorted(tmp_path.rglob("*.xml"))])
    values += _bodies([data for seed in (1, 2) for _, data, _ in quirky_rss_feeds(seed, 200)])
    assert _check(values, monkeypatch) >= 200


def test_simple_html_agrees_on_the_feedparser_corpus(shared_dir, monkeypatch):
    root = shared_dir / "corpora" / "feedparser-tests"
    if not root.is_dir():
        pytest.skip("../shared/corpora/feedparser-tests is not present")
    values = _bodies([p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()])
    assert len(values) > 800
    assert _check(values, monkeypatch) > 100


def _bodies(documents: list[bytes]) -> list[str]:
    """Every element text of the documents (as lxml decodes it: escaped markup becomes markup) that holds
    '<' or '&', and its attribute values that do."""
    parser = etree.XMLParser(recover=True, resolve_entities=False, no_network=True, huge_tree=False)
    values = []
    for data in documents:
        try:
            root = etree.fromstring(data, parser)
        except (etree.LxmlError, ValueError):
            continue
        if root is None:
            continue
        for el in root.iter():
            candidates = [el.text, *el.attrib.values()] if isinstance(el.tag, str) else []
            values += [v for v in candidates if v and ("<" in v or "&" in v)]
    return values


def test_bodies_helper_reads_element_text(tmp_path: Path):
    assert _bodies([b"<r><d>&lt;p&gt;x&lt;/p&gt;</d><e>plain</e></r>"]) == ["<p>x</p>"]


def test_the_first_call_in_a_process_may_start_with_whitespace() -> None:
    """simple_html's output buffer is allocated by its first append of some bytes: one of no bytes (leading
    whitespace) used to come first and pass memcpy a NULL buffer, undefined behaviour that UBSan stops at
    (scripts/sanitize.sh runs this test with the sanitizers, in a fresh process as here)."""
    code = "from pipeline.parsing import _accel; print(_accel.simple_html(' <b>x</b>'))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "('x', '', b'x')"
