"""HTML and messy text -> clean plain text: no markup, no scripts, paragraphs separated by a blank line.

Safety rules: no `<tag` of an HTML element survives (closed or not, whatever the escaping), no tag of any
name with its `>`, no `javascript:`/`vbscript:` URL; the words a reader wrote stay (a plain "JavaScript:" is a
word, not a URL). Every step is linear in its input.
"""

from __future__ import annotations

import functools
import html as html_lib
import re
import threading
import unicodedata
from typing import Final

from lxml import etree  # type: ignore[import-untyped]

try:  # the tree walk and text passes compiled (pipeline/parsing/_accel.c), when they were built: same output
    from pipeline.parsing import _accel

    COMPILED = True
except ImportError:  # no C compiler where the package was installed: the same steps in Python
    COMPILED = False

# Every element name of HTML (current and obsolete), for spotting a tag that was never closed.
HTML_ELEMENTS: Final = frozenset(
    """a abbr acronym address applet area article aside audio b base basefont bdi bdo bgsound big blink
    blockquote body br button canvas caption center cite code col colgroup data datalist dd del details dfn
    dialog dir div dl dt em embed fieldset figcaption figure font footer form frame frameset h1 h2 h3 h4 h5
    h6 head header hgroup hr html i iframe image img input ins isindex kbd keygen label legend li link
    listing main map mark marquee math menu menuitem meta meter multicol nav nextid nobr noembed noframes
    noscript object ol optgroup option output p param picture plaintext pre progress q rb rp rt rtc ruby s
    samp script search section select slot small source spacer span strike strong style sub summary sup svg
    table tbody td template textarea tfoot th thead time title tr track tt u ul var video wbr xmp""".split()  # noqa: SIM905
)
# What must never survive into a story's text fields.
TAG_RE: Final = re.compile(r"<[a-zA-Z/!?][^>]*>")
_NAMES: Final = "|".join(sorted(HTML_ELEMENTS, key=len, reverse=True))
# `<name` or `</name` of an HTML element, closed or not (a browser reads it as a tag up to the next '>').
TAG_OPEN_RE: Final = re.compile(rf"</?(?:{_NAMES})(?![a-zA-Z0-9_-])|<[!?]", re.IGNORECASE)
# A script URL: the scheme glued to what follows it. "JavaScript: tips" (a word and a colon) is text.
DANGEROUS_URL_RE: Final = re.compile(r"(?:java|vb|live)script:(?=\S)\S*", re.IGNORECASE)
_SPACE_RE: Final = re.compile(r"[^\S\n]+")  # whitespace other than newline
_BLANK_LINE_RE: Final = re.compile(r"\n\s*\n")
# Control characters (C0, DEL, C1 but NEL, which is whitespace: a terminal reads U+009B as an escape
# sequence's start), zero-width space, BOM and lone surrogates (JSON "\ud800" escapes; not encodable).
_CONTROL_RE: Final = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x84\x86-\x9f\u200b\ufeff\ud800-\udfff]")
_C1_UTF8_RE: Final = re.compile(b"\xc2[\x80-\x84\x86-\x9f]")
_SURROGATE_RE: Final = re.compile("[\ud800-\udfff]")
_CONTROL_BYTES: Final = bytes([*range(0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F])
_TAG_START_RE: Final = re.compile(r"<(?=[a-zA-Z/!?])")
# _paragraphs on UTF-8 bytes: what the general path does to the few non-ASCII characters it changes
_ASCII_BYTES: Final = bytes(range(128))
_WIDE_REPLACEMENTS: Final = (("\xa0", b" "), ("\u200b", b""), ("\ufeff", b""))
_REPLACED: Final = frozenset(c for c, _ in _WIDE_REPLACEMENTS)
_INERT: Final[set[str]] = set()  # non-ASCII characters _nfc_inert said yes to
_MAX_INERT: Final = 1 << 16
_WHITESPACE_TABLE: Final = bytes.maketrans(b"\t\r", b" \n")
_BLANK_LINE_BYTES_RE: Final = re.compile(rb"\n[ \n]*\n")
_SPACE_RUN_RE: Final = re.compile(rb"  +")
_MARK: Final = b"\x00"  # a paragraph break while spaces are collapsed (NUL is gone with the controls)
_NOT_PRINTABLE_ASCII: Final = bytes([*range(0x20), 0x7F])

# Elements whose content is never text a reader sees.
_SKIP: Final = ("script", "style", "template", "noscript", "iframe", "object", "svg", "math", "select",
                "textarea")  # fmt: skip
_SKIP_OPEN_RE: Final = re.compile(rf"<({'|'.join(_SKIP)})(?![a-zA-Z0-9_-])", re.IGNORECASE)
_BLOCK: Final = (
    "address", "article", "aside", "blockquote", "br", "dd", "div", "dl", "dt", "figcaption", "figure",
    "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "li", "main", "nav", "ol", "p",
    "pre", "section", "table", "tbody", "thead", "tfoot", "tr", "td", "th", "ul", "caption", "details",
    "summary",
)  # fmt: skip
_BLOCK_TAG_RE: Final = re.compile(rf"</?(?:{'|'.join(_BLOCK)})(?![a-zA-Z0-9_-])[^>]*>", re.IGNORECASE)
_BREAK: Final = "\n\n"
_MAX_PASSES: Final = 3  # double- (or triple-) escaped HTML is unwrapped this many times
_MAX_STRIP_PASSES: Final = 3

# libxml2's HTML parser (C, linear) does the work; a flat linear scan takes over when it gives up.
_local = threading.local()  # lxml parsers must not be shared between threads


def _lxml_parser() -> etree.HTMLParser:
    parser: etree.HTMLParser | None = getattr(_local, "parser", None)
    if parser is None:
        parser = _local.parser = etree.HTMLParser(
            recover=True,
            no_network=True,
            remove_comments=True,
            remove_pis=True,
            default_doctype=False,
            huge_tree=True,  # nesting up to 2048 deep; deeper input goes to _extract_flat
        )
    return parser


# Text of a parsed fragment in one C call: skipped elements give nothing, a block element gives a paragraph
# break before and after its content, any other node its text (comments and PIs are parsed away).
_TEXT_XSLT: Final = f"""<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
<xsl:output method="text" encoding="UTF-8"/>
<xsl:template match="{"|".join(_BLOCK)}"><xsl:text>&#10;&#10;</xsl:text><xsl:apply-templates/><xsl:text
>&#10;&#10;</xsl:text></xsl:template>
<xsl:template match="{"|".join(_SKIP)}"/>
</xsl:stylesheet>"""


def _text_transform() -> etree.XSLT:
    transform: etree.XSLT | None = getattr(_local, "transform", None)
    if transform is None:
        transform = _local.transform = etree.XSLT(etree.XML(_TEXT_XSLT))
    return transform


# The XSLT's work by a walk over libxml2's nodes (the compiled module's; tests/test_text.py compares them).
_WALKER: Final = _accel.Walker(block=_BLOCK, skip=_SKIP) if COMPILED else None
SIMPLE_HTML = COMPILED  # False: every fragment goes through libxml2 (the differential tests compare both)


def _extract_utf8(html: str) -> str | bytes | tuple[str, str, bytes]:
    """Text of an HTML fragment: skipped elements dropped, block elements -> paragraph breaks. As the UTF-8
    bytes the compiled walker gives when it ran (no decoding for the caller to undo), else as str; or, where
    that text needs none of the screens, (its paragraphs, their distinct non-ASCII characters, the bytes):
    see Walker.paragraphs in _accel.c. Simple HTML (a few well-nested elements, plain references: most feed
    bodies) is read by the compiled simple_html without a libxml2 parse, with the walker's answer for the tree
    libxml2 would build (tests/test_simple_html.py holds the two equal)."""
    if COMPILED and SIMPLE_HTML and (simple := _accel.simple_html(html)) is not None:
        return simple
    if _has_nul_or_surrogate(html):  # libxml2 would turn these into U+FFFD or stop there
        html = _CONTROL_RE.sub("", html)
    if len(html) > 2 * MAX_ATTRIBUTES and _crowded_tag(html):
        return _extract_flat(html)
    parser = _lxml_parser()
    try:
        root = etree.fromstring(html, parser)
    except (etree.LxmlError, ValueError):  # e.g. a str with an XML encoding declaration
        return _extract_flat(html)
    if any(error.level == etree.ErrorLevels.FATAL for error in parser.error_log):  # e.g. nesting too deep
        return _extract_flat(html)
    if root is None:
        return ""
    if _WALKER is not None and (raw := _WALKER.paragraphs(root)) is not None:
        return raw
    try:
        return str(_text_transform()(root))
    except etree.XSLTError:  # e.g. libxslt's template depth: the same result by walking the tree
        try:
            return _extract_tree(root)
        except ValueError:  # a control character, which lxml refuses to store in a text node
            return _extract_flat(html)


def _extract_tree(root: etree._Element) -> str:
    """What _TEXT_XSLT computes, by editing the tree and joining its text (about 3x slower)."""
    etree.strip_elements(root, *_SKIP, with_tail=False)
    for element in root.iter(*_BLOCK):
        element.text = _BREAK + element.text if element.text else _BREAK
        element.tail = _BREAK + element.tail if element.tail else _BREAK
    return "".join(root.itertext())


# libxml2's HTML parser compares each attribute of a tag with every earlier one (duplicates): a tag of 100,000
# attributes takes it about 20 s. Text never depends on attributes: a tag with more goes to _extract_flat.
MAX_ATTRIBUTES: Final = 512
_START_TAG_RE: Final = re.compile(r"<[A-Za-z][^<>]*")
_ATTRIBUTE_RE: Final = re.compile(r"\s[^\s=/>]")  # an attribute starts after whitespace


def _crowded_tag(html: str) -> bool:
    """Whether some start tag of `html` has more than MAX_ATTRIBUTES attributes (or as many names of boolean
    attributes). Linear: tags are runs without '<' or '>', each read once."""
    for tag in _START_TAG_RE.finditer(html):
        if (
            tag.end() - tag.start() > 2 * MAX_ATTRIBUTES
            and len(_ATTRIBUTE_RE.findall(tag.group())) > MAX_ATTRIBUTES
        ):
            return True
    return False


def _extract_flat(html: str) -> str:
    """Linear fallback without a tree: skipped elements cut to their end tag (or the end), block tags ->
    breaks, other tags removed, entities decoded."""
    lower = html.lower()
    kept: list[str] = []
    pos = 0
    while (m := _SKIP_OPEN_RE.search(html, pos)) is not None:
        kept.append(html[pos : m.start()])
        close = lower.find(f"</{m.group(1).lower()}", m.end())
        if close < 0:
            pos = len(html)
            break
        end = lower.find(">", close)
        pos = len(html) if end < 0 else end + 1
    kept.append(html[pos:])
    text = _BLOCK_TAG_RE.sub(_BREAK, "".join(kept))
    return html_lib.unescape(_remove_tags(text))


def _remove_tags(text: str) -> str:
    """TAG_RE.sub, linear: a tag needs a '>' after it, so search only up to the last '>'."""
    end = text.rfind(">") + 1
    return TAG_RE.sub(" ", text[:end]) + text[end:] if end else text


def _has_nul_or_surrogate(text: str) -> bool:
    if COMPILED:
        return _accel.has_nul_or_surrogate(text)
    return "\x00" in text or _has_surrogate(text)


def _has_surrogate(text: str) -> bool:
    if text.isascii():
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def drop_controls(text: str) -> str:
    """_CONTROL_RE.sub("", text), about twice as fast: C0 controls go by bytes.translate on the UTF-8 (no
    multi-byte sequence holds a byte below 0x80), the regex runs only when a wider one may be there."""
    try:
        raw = text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates
        return _CONTROL_RE.sub("", text)
    kept = raw.translate(None, _CONTROL_BYTES)
    if b"\xe2\x80\x8b" in kept or b"\xef\xbb\xbf" in kept or (b"\xc2" in kept and _C1_UTF8_RE.search(kept)):
        return _CONTROL_RE.sub("", text)
    return text if len(kept) == len(raw) else kept.decode("utf-8")


def without_surrogates(text: str) -> str:
    """Lone surrogates (JSON escapes, surrogateescape'd file names) -> U+FFFD, so UTF-8 can encode it."""
    return text if text.isascii() else _SURROGATE_RE.sub("\ufffd", text)


def has_tag(text: str) -> bool:
    """A closed tag of any name (TAG_RE), searched linearly (only up to the last '>')."""
    end = text.rfind(">")
    return end >= 0 and TAG_RE.search(text, 0, end + 1) is not None


def has_markup(text: str) -> bool:
    """A closed tag of any name, or the start of an HTML element's tag even if it never closes."""
    return "<" in text and (has_tag(text) or TAG_OPEN_RE.search(text) is not None)


def strip_unsafe(text: str) -> str:
    """Remove leftover tags, unclosed HTML tag starts and script URLs. Removed pieces become a space, so
    removal cannot splice a new tag; a few passes settle it, then every tag start goes (still linear)."""
    for _ in range(_MAX_STRIP_PASSES):
        if "<" not in text and not _maybe_script_url(text):
            return text
        cleaned = DANGEROUS_URL_RE.sub(" ", TAG_OPEN_RE.sub(" ", _remove_tags(text)))
        if cleaned == text:
            return text
        text = cleaned
    return DANGEROUS_URL_RE.sub(" ", _TAG_START_RE.sub(" ", text))


def _maybe_script_url(text: str) -> bool:
    """A cheap screen for DANGEROUS_URL_RE: every match holds "t:" or "T:" (two fast substring scans)."""
    return ("t:" in text or "T:" in text) and DANGEROUS_URL_RE.search(text) is not None


def _paragraphs(text: str) -> str:
    """Normalize whitespace inside paragraphs (split on blank lines) and join them with one blank line."""
    if COMPILED:
        return _paragraphs_compiled(text)
    if _already_clean(text):
        return text
    fast = _paragraphs_utf8(text)
    return fast if fast is not None else _paragraphs_unicode(text)


def _paragraphs_compiled(text: str | bytes) -> str:
    """_paragraphs by the compiled pass (of text or of its UTF-8), which does what _paragraphs_utf8 does;
    the general path where that one would give up (a character that is not _nfc_inert, lone surrogates)."""
    done = _accel.paragraphs(text)
    if done is not None:
        clean, chars = done
        if not chars or _all_inert(chars):  # (ASCII text: no call)
            return clean
    return _paragraphs_unicode(text if isinstance(text, str) else text.decode("utf-8"))


def _already_clean(text: str) -> bool:
    """Whether _paragraphs_unicode leaves `text` as it is, judged for ASCII text (most bodies are): printable
    characters, single spaces, paragraphs separated by exactly one blank line, no space at the ends of a
    paragraph or of the text. With each break made a space, that is: printable ASCII without two spaces
    in a row and none at either end (a stray newline, a longer break or a space beside a break is caught)."""
    if not text.isascii():
        return False
    joined = text.encode("ascii").replace(b"\n\n", b" ")
    return (
        len(joined.translate(None, _NOT_PRINTABLE_ASCII)) == len(joined)
        and b"  " not in joined
        and not joined.startswith(b" ")
        and not joined.endswith(b" ")
    )


def _paragraphs_utf8(text: str) -> str | None:
    """_paragraphs_unicode on the UTF-8 bytes, with bytes methods (C loops that make no object per word);
    None when the text holds a character that needs the general path: non-ASCII whitespace other than the
    no-break space, or one that Unicode normalization could change (see _nfc_inert). A whitespace run
    holding two newlines is a paragraph break, any other one a space."""
    try:
        raw = text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates
        return None
    if not raw.isascii():
        chars = set(raw.translate(None, _ASCII_BYTES).decode("utf-8"))  # the distinct non-ASCII ones
        if not _all_inert(chars):
            return None
        for char, replacement in _WIDE_REPLACEMENTS:
            if char in chars:
                raw = raw.replace(char.encode("utf-8"), replacement)
    # controls dropped, tab -> space, CR -> LF: the only whitespace left is space and newline
    raw = raw.translate(_WHITESPACE_TABLE, _CONTROL_BYTES)
    raw = _BLANK_LINE_BYTES_RE.sub(_MARK, raw).replace(b"\n", b" ")
    if b"  " in raw:
        raw = _SPACE_RUN_RE.sub(b" ", raw)
    raw = raw.replace(b" " + _MARK, _MARK).replace(_MARK + b" ", _MARK).strip(b" " + _MARK)
    return raw.replace(_MARK, b"\n\n").decode("utf-8")


def _all_inert(chars: set[str] | str) -> bool:
    """Whether every one of these (distinct non-ASCII) characters is _nfc_inert: the remembered ones first."""
    return not chars or _INERT.issuperset(chars) or all(map(_nfc_inert, chars))


def _nfc_inert(char: str) -> bool:
    """Whether `char` leaves NFC normalization of any text around it alone and is no whitespace (but the
    no-break space, replaced) or C1 control: not a combining mark (which may reorder or compose with the
    character before it), no Hangul jamo (which compose with a syllable before them), its own NFC form.
    Every other character that composes with the one before it is a combining mark (tests/test_text.py
    checks that against the Unicode database). Cached, up to a bound."""
    inert = char in _REPLACED or (
        not char.isspace()
        and not "\x80" <= char <= "\x9f"  # C1 controls: dropped by the general path
        and not unicodedata.category(char).startswith("M")
        and not "\u1100" <= char <= "\u11ff"
        and unicodedata.normalize("NFC", char) == char
    )
    if inert and len(_INERT) < _MAX_INERT:
        _INERT.add(char)
    return inert


def _paragraphs_unicode(text: str) -> str:
    """The general path of _paragraphs (any text)."""
    if not text.isascii():
        text = unicodedata.normalize("NFC", text).replace("\xa0", " ")
    text = drop_controls(text)
    if "\r" in text:
        text = text.replace("\r", "\n")
    if "\n" not in text:
        return " ".join(text.split())
    paragraphs = (" ".join(p.split()) for p in _BLANK_LINE_RE.split(text))
    return _BREAK.join(p for p in paragraphs if p)


def html_to_text(html: str) -> str:
    """HTML fragment -> plain text with entities decoded, scripts/styles dropped, paragraphs kept."""
    text = html
    for _ in range(_MAX_PASSES):
        if "<" not in text and "&" not in text:
            break
        extracted = _extract_utf8(text)
        if isinstance(extracted, tuple):  # no '<', no "t:" before or after the paragraph pass: no screen acts
            clean, chars, extracted = extracted
            if not chars or _all_inert(chars):
                return clean
        if isinstance(extracted, bytes):  # the compiled walker's: usually its paragraphs are all that is left
            if not _accel.maybe_unsafe(extracted):  # no '<' (so no markup: the loop ends), no "t:" (so no
                return _settled(_paragraphs_compiled(extracted))  # script URL): strip_unsafe would keep it
            extracted = extracted.decode("utf-8")
        text = extracted
        if not has_markup(text):
            break
    return _finished(text)


def plain_to_text(text: str) -> str:
    """Text that is not HTML: paragraphs on blank lines, whitespace normalized, stray markup removed."""
    if COMPILED and (done := _accel.plain_text(text)) is not None:  # no '<' (no markup) and no "t:" before
        clean, chars = done  # or after the paragraph pass: strip_unsafe and _settled would change nothing
        if not chars or _all_inert(chars):
            return clean
    if has_markup(text):  # text carrying real markup (e.g. escaped HTML in a text/plain field)
        return html_to_text(text)
    return _finished(text)


def _finished(text: str) -> str:
    """Markup-free text -> the stored text: leftovers stripped, paragraphs normalized, screened again."""
    return _settled(_paragraphs(strip_unsafe(text)))


def _settled(text: str) -> str:
    """The final text, screened once more: the paragraph pass drops control, zero-width and BOM characters,
    which may have split a tag or a script URL that strip_unsafe could not see ("<\x01script>",
    "java\u200bscript:"). Such text is stripped again (it holds none of those characters any more)."""
    if "<" in text or _maybe_script_url(text):
        return _paragraphs(strip_unsafe(text))
    return text


def to_text(value: str | None, is_html: bool) -> str:
    """Clean a field that may be HTML; None -> ''."""
    if not value:
        return ""
    return html_to_text(value) if is_html else plain_to_text(value)


def clean_inline(value: str | None, is_html: bool = True) -> str:
    """Clean text on one line (titles, names, categories)."""
    if value and len(value) <= _CACHED_CHARS:
        return _clean_inline_cached(value, is_html)
    return _clean_inline(value, is_html)


def _clean_inline(value: str | None, is_html: bool) -> str:
    if not value:
        return ""
    text = html_to_text(value) if is_html else plain_to_text(value)  # to_text, without its frame
    return _SPACE_RE.sub(" ", text.replace("\n", " ")).strip() if "\n" in text else text


_CACHED_CHARS: Final = 80  # source names, authors, categories and language tags repeat from story to story
_clean_inline_cached: Final = functools.lru_cache(maxsize=4096)(_clean_inline)
