"""HTML and messy text -> clean plain text: no markup, no scripts, paragraphs separated by a blank line."""

from __future__ import annotations

import re
import threading
import unicodedata
from html.parser import HTMLParser
from typing import Final

from lxml import etree  # type: ignore[import-untyped]

# What must never survive into a story's text fields.
TAG_RE: Final = re.compile(r"<[a-zA-Z/!?][^>]*>")
_SCRIPTISH_RE: Final = re.compile(r"<\s*(?:/\s*)?script|(?:java|vb)script\s*:", re.IGNORECASE)
_SPACE_RE: Final = re.compile(r"[^\S\n]+")  # whitespace other than newline
_WS_RE: Final = re.compile(r"\s+")
_BLANK_LINE_RE: Final = re.compile(r"\n\s*\n")
# Control characters, zero-width space, BOM and lone surrogates (JSON "\ud800" escapes; not encodable).
_CONTROL_RE: Final = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u200b\ufeff\ud800-\udfff]")
_SURROGATE_RE: Final = re.compile("[\ud800-\udfff]")

# Elements whose content is never text a reader sees (non-void only: we count start/end pairs).
_SKIP: Final = frozenset(
    {
        "script",
        "style",
        "template",
        "noscript",
        "iframe",
        "object",
        "svg",
        "math",
        "select",
        "textarea",
    }
)
_BLOCK: Final = frozenset(
    {
        "address", "article", "aside", "blockquote", "br", "dd", "div", "dl", "dt", "figcaption", "figure",
        "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "li", "main", "nav", "ol", "p",
        "pre", "section", "table", "tbody", "thead", "tfoot", "tr", "td", "th", "ul", "body", "html",
        "caption", "details", "summary",
    }
)  # fmt: skip
_BREAK: Final = "\n\n"
_MAX_PASSES: Final = 3  # double- (or triple-) escaped HTML is unwrapped this many times


class _TextExtractor(HTMLParser):
    """Collects text outside skipped elements; block elements become paragraph breaks."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skip_depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP:
            self.skip_depth += 1
        elif tag in _BLOCK:
            self.parts.append(_BREAK)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _BLOCK:  # <br/>, <hr/>; a self-closed <script/> has no content to skip
            self.parts.append(_BREAK)

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP:
            self.skip_depth = max(0, self.skip_depth - 1)
        elif tag in _BLOCK:
            self.parts.append(_BREAK)

    def handle_data(self, data: str) -> None:
        if not self.skip_depth:
            self.parts.append(data)  # newlines kept: a blank line in the source stays a paragraph break


# libxml2's HTML parser (C, linear) does the work; html.parser takes over when it gives up on an input.
_local = threading.local()  # lxml parsers must not be shared between threads


def _lxml_parser() -> etree.HTMLParser:
    parser: etree.HTMLParser | None = getattr(_local, "parser", None)
    if parser is None:
        parser = _local.parser = etree.HTMLParser(
            recover=True, no_network=True, remove_comments=True, remove_pis=True, default_doctype=False
        )
    return parser


def _extract(html: str) -> str:
    parser = _lxml_parser()
    try:
        root = etree.fromstring(html, parser)
    except (etree.LxmlError, ValueError):  # e.g. a str with an XML encoding declaration
        return _extract_stdlib(html)
    if any(error.level == etree.ErrorLevels.FATAL for error in parser.error_log):  # e.g. nesting too deep
        return _extract_stdlib(html)
    if root is None:
        return ""
    parts: list[str] = []
    walker = etree.iterwalk(root, events=("start", "end"))
    for event, element in walker:
        tag = element.tag if isinstance(element.tag, str) else ""
        if event == "start":
            if tag in _SKIP:
                walker.skip_subtree()  # its "end" still comes, and carries the tail
            else:
                if tag in _BLOCK:
                    parts.append(_BREAK)
                if element.text:
                    parts.append(element.text)
            continue
        if tag in _BLOCK:
            parts.append(_BREAK)
        if element.tail:
            parts.append(element.tail)
    return "".join(parts)


def _extract_stdlib(html: str) -> str:
    parser = _TextExtractor()
    try:
        parser.feed(html)
        parser.close()
    except (AssertionError, ValueError):  # html.parser's rare hard failures on hostile markup
        return strip_unsafe(html)
    return "".join(parser.parts)


def without_surrogates(text: str) -> str:
    """Lone surrogates (JSON escapes, surrogateescape'd file names) -> U+FFFD, so UTF-8 can encode it."""
    return _SURROGATE_RE.sub("\ufffd", text)


def has_tag(text: str) -> bool:
    """TAG_RE.search, linear: a tag needs a '>' after it, so search only up to the last '>'."""
    end = text.rfind(">")
    return end >= 0 and TAG_RE.search(text, 0, end + 1) is not None


def strip_unsafe(text: str) -> str:
    """Remove leftover tags, `<script` and `javascript:` until none remain (removal can splice new ones)."""
    while True:
        end = text.rfind(">") + 1  # (as in has_tag: keeps the tag search linear)
        cleaned = _SCRIPTISH_RE.sub(" ", TAG_RE.sub(" ", text[:end]) + text[end:])
        if cleaned == text:
            return text
        text = cleaned


def _paragraphs(text: str) -> str:
    """Normalize whitespace inside paragraphs (split on blank lines) and join them with one blank line."""
    text = _CONTROL_RE.sub("", unicodedata.normalize("NFC", text)).replace("\xa0", " ")
    paragraphs = (_WS_RE.sub(" ", p).strip() for p in _BLANK_LINE_RE.split(text.replace("\r", "\n")))
    return _BREAK.join(p for p in paragraphs if p)


def html_to_text(html: str) -> str:
    """HTML fragment -> plain text with entities decoded, scripts/styles dropped, paragraphs kept."""
    text = html
    for _ in range(_MAX_PASSES):
        if "<" not in text and "&" not in text:
            break
        text = _extract(_CONTROL_RE.sub("", text))
        if not has_tag(text):
            break
    return _paragraphs(strip_unsafe(text))


def plain_to_text(text: str) -> str:
    """Text that is not HTML: paragraphs on blank lines, whitespace normalized, stray markup removed."""
    if has_tag(text):  # text carrying real markup (e.g. escaped HTML in a text/plain field)
        return html_to_text(text)
    return _paragraphs(strip_unsafe(text))


def to_text(value: str | None, is_html: bool) -> str:
    """Clean a field that may be HTML; None -> ''."""
    if not value:
        return ""
    return html_to_text(value) if is_html else plain_to_text(value)


def clean_inline(value: str | None, is_html: bool = True) -> str:
    """Clean text on one line (titles, names, categories)."""
    text = to_text(value, is_html)
    return _SPACE_RE.sub(" ", text.replace("\n", " ")).strip() if "\n" in text else text
