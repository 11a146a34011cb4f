import re

import pytest

from pipeline.parsing.text import (
    TAG_RE,
    clean_inline,
    has_tag,
    html_to_text,
    plain_to_text,
    strip_unsafe,
    to_text,
)

UNSAFE = re.compile(r"<script|javascript:|<[a-zA-Z/!][^>]*>", re.IGNORECASE)


def test_blocks_become_paragraphs_and_whitespace_is_normalized():
    html = "<p>One   two\n three</p><div>Four<br>Five</div><ul><li>Six</li><li>Seven</li></ul>"
    assert html_to_text(html) == "One two three\n\nFour\n\nFive\n\nSix\n\nSeven"


def test_entities_are_decoded():
    assert html_to_text("Caf&eacute; &amp; bar &#8217;s &#x41;&nbsp;B") == "Café & bar ’s A B"


def test_scripts_styles_and_hidden_content_are_removed():
    html = (
        "<p>keep</p><script>var x = '<p>no</p>';</script><style>p{}</style>"
        "<noscript>no</noscript><iframe>no</iframe><p>also</p>"
    )
    assert html_to_text(html) == "keep\n\nalso"


def test_unclosed_script_drops_the_rest():
    assert html_to_text("before<script>alert(1) and more text") == "before"


def test_javascript_urls_and_text_are_removed():
    text = html_to_text('<a href="javascript:alert(1)">link</a> JavaScript : void jajavascript:vascript:x')
    assert not UNSAFE.search(text)
    assert text.startswith("link")


@pytest.mark.parametrize(
    "html",
    [
        "&lt;script&gt;alert(1)&lt;/script&gt;Text",
        "&amp;lt;b&amp;gt;bold&amp;lt;/b&amp;gt;",
        "<scr<script>ipt>alert(1)</script>",
        "<<script>script>alert(1)<</script>/script>",
        "<SCRIPT SRC=http://x/x.js></SCRIPT>Text",
        "<img src=x onerror=alert(1)//",
        "<!-- <script> -->Text<![CDATA[<script>]]>",
        "<a href='x'>unterminated",
        "<a<>",
        "x <b <i>> y",
        "<scr<!-- -->ipt>",
        "&lt;a&lt;&gt;",
    ],
)
def test_hostile_and_double_escaped_markup_never_survives(html):
    assert not UNSAFE.search(html_to_text(html))
    assert not UNSAFE.search(plain_to_text(html))


def test_double_escaped_html_is_unwrapped_to_text():
    assert html_to_text("&lt;p&gt;Hello &lt;b&gt;world&lt;/b&gt;&lt;/p&gt;") == "Hello world"


def test_text_that_only_looks_like_markup_is_kept():
    assert html_to_text("1 < 2 and 3 > 2") == "1 < 2 and 3 > 2"
    assert plain_to_text("AT&T <-> Verizon") == "AT&T <-> Verizon"


def test_plain_text_keeps_blank_line_paragraphs_and_does_not_decode_entities():
    assert plain_to_text("  a\nb \n\n\n c &amp; d ") == "a b\n\nc &amp; d"


def test_control_characters_and_zero_width_are_dropped():
    assert html_to_text("a\x00b\x07c\u200bd\ufeff") == "abcd"


def test_clean_inline_is_one_line():
    assert clean_inline("<h1>Title</h1><p>sub   title</p>") == "Title sub title"
    assert clean_inline(None) == ""
    assert clean_inline("x\n\ny", is_html=False) == "x y"


def test_to_text_picks_the_cleaner():
    assert to_text("<b>x</b> &amp;", True) == "x &"
    assert to_text("x &amp;", False) == "x &amp;"
    assert to_text(None, True) == ""


def test_strip_unsafe_loops_until_clean():
    assert "javascript:" not in strip_unsafe("javajavascript:script:alert").lower()
    assert not TAG_RE.search(strip_unsafe("<<b>b>x"))


def test_has_tag():
    assert has_tag("a <b> c") and has_tag("<a<>") and has_tag("</x>")
    assert not has_tag("a < b > c") and not has_tag("<a" * 1000) and not has_tag("")


def test_many_unclosed_tags_are_left_as_text():
    assert plain_to_text("<a" * 5000) == "<a" * 5000  # never a tag (no '>'), and handled without backtracking


def test_large_input_is_handled():
    html = "<p>word &amp; word</p>" * 20000
    text = html_to_text(html)
    assert text.count("\n\n") == 19999
