"""Input bytes -> raw entries: XML feeds (feedparser, from bytes), JSON Feed, plain-text wire stories."""

from __future__ import annotations

import codecs
import functools
import io
import json
import logging
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import PurePath
from typing import Any, Final, Literal
from urllib.parse import urlsplit
from xml.sax import SAXParseException
from xml.sax.xmlreader import AttributesNSImpl

from pipeline.errors import BadInputError, BadRecordError
from pipeline.parsing.prescreen import ENTRY_TAG, check_entry_count, prescreen_xml
from pipeline.parsing.text import clean_inline, without_surrogates
from pipeline.redact import redact_text

log = logging.getLogger(__name__)

MAX_INPUT_BYTES: Final = 64 * 1024 * 1024
_HTML_TYPES: Final = frozenset({"text/html", "application/xhtml+xml", "html", "xhtml"})
_BINARY_MAGIC: Final = (
    b"\x1f\x8b",
    b"PK\x03\x04",
    b"%PDF",
    b"\x89PNG",
    b"\xff\xd8\xff",
    b"GIF8",
    b"BZh",
    b"\xfd7zXZ",
)
_BOMS: Final = (
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
)
_WIDE_ENCODINGS: Final = ("utf-32-be", "utf-32-le", "utf-16-be", "utf-16-le")
_SNIFF_BYTES: Final = 4096
_CONTROL_CHARS: Final = frozenset(map(chr, range(32))) - set("\t\n\f\r")
STRAY_NULS: Final = 0.01  # at most this share of a document's bytes may be NULs to be removed, not refused
STRAY_NULS_MIN: Final = 16  # (or this many, in a short document)
# Caps on one entry's raw text fields (characters) and name lists; a longer value is cut and the cut
# recorded among the input's problems.
FIELD_CAPS: Final = {
    "title": 1_000,
    "summary": 100_000,
    "body": 2_000_000,
    "guid": 2_048,
    "link": 4_096,
    "attribution": 1_000,
    "source": 500,
    "language": 64,
    "published": 200,
    "updated": 200,
}
MAX_NAMES: Final = 100  # authors and categories of one entry
NAME_CAP: Final = 500

Kind = Literal["xml", "json", "text"]


@dataclass(frozen=True)
class Reference:
    """One Reference Map line of a wire story: body paragraph number -> numbered sources."""

    paragraph: int
    sources: tuple[int, ...]


@dataclass(frozen=True)
class RawEntry:
    """One entry as the input gave it (raw strings; cleaning happens in normalize)."""

    origin: str
    source: str
    feed_url: str | None = None
    guid: str | None = None
    link: str | None = None
    title: str = ""
    title_is_html: bool = False
    summary: str | None = None
    body: str = ""
    body_is_html: bool = False
    authors: tuple[str, ...] = ()
    language: str | None = None
    categories: tuple[str, ...] = ()
    published: str | None = None
    updated: str | None = None
    references: tuple[Reference, ...] = ()
    attribution: str | None = None
    # Additions beyond the DESIGN.md field list (all defaulted):
    summary_is_html: bool = False
    base: str | None = None  # URL that relative links resolve against
    published_parsed: time.struct_time | None = None  # feedparser's UTC fallback for `published`
    updated_parsed: time.struct_time | None = None


@dataclass
class ParsedInput:
    origin: str
    entries: list[RawEntry]
    problems: list[str] = field(default_factory=list)
    rejected_entries: int = 0


# ---------------------------------------------------------------------------------------------- sniffing


def _head_text(data: bytes) -> str:
    """The first few KB decoded well enough to see what kind of document this is."""
    head = data[:_SNIFF_BYTES]
    for bom, encoding in _BOMS:
        if head.startswith(bom):
            return head[len(bom) :].decode(encoding, "ignore")
    if b"\x00" in head:
        text = _wide_head(head)
        if text is None:
            raise BadInputError("binary", "input contains NUL bytes and is not UTF-16/32 text")
        return text
    return head.decode("utf-8", "replace")


def _wide_head(head: bytes) -> str | None:
    """The head of a UTF-16/32 document without a BOM (a feed: '<' or '{' first), or None."""
    for encoding in _WIDE_ENCODINGS:
        width = 4 if "32" in encoding else 2
        text = head[: len(head) // width * width].decode(encoding, "replace")
        if "\x00" not in text and text.lstrip()[:1] in ("<", "{"):
            return text
    return None


def _without_stray_nuls(data: bytes) -> tuple[bytes, list[str]]:
    """A text document with a few NUL bytes in it (a broken CMS, a bad copy; never valid XML, JSON or text)
    without them, and the note that says so. A document in UTF-16/32 keeps its NULs (they are half its bytes),
    and one where they are over STRAY_NULS of the bytes (and over STRAY_NULS_MIN) is refused as binary."""
    nuls = data.count(b"\x00")
    head = data[:_SNIFF_BYTES]
    if (
        nuls == 0
        or nuls > max(STRAY_NULS_MIN, len(data) * STRAY_NULS)
        or any(head.startswith(bom) for bom, encoding in _BOMS if encoding != "utf-8")
        or _wide_head(head) is not None
    ):
        return data, []
    return data.replace(b"\x00", b""), [f"{nuls} NUL byte{'s' if nuls > 1 else ''} removed"]


def sniff(data: bytes) -> Kind:
    """Classify input bytes, raising BadInputError for empty, oversized or binary input."""
    if len(data) > MAX_INPUT_BYTES:
        raise BadInputError(
            "too_large", f"input is {len(data)} bytes (limit {MAX_INPUT_BYTES})", size=len(data)
        )
    if not data.strip():
        raise BadInputError("empty", "input is empty")
    if data.startswith(_BINARY_MAGIC):
        raise BadInputError("binary", "input is a compressed or binary file", magic=data[:4].hex())
    head = _head_text(data).lstrip("\ufeff \t\r\n")
    if not head:
        raise BadInputError("empty", "input is empty")
    if head[0] == "<":
        return "xml"
    if head[0] in "{[":
        return "json"
    controls = sum(c in _CONTROL_CHARS for c in head)  # in the decoded text: UTF-16's NULs are none
    if controls > len(head) // 20:
        raise BadInputError("binary", "input is mostly control bytes")
    return "text"


def default_source(origin: str) -> str:
    """Source name when neither the caller nor the input gives one: the URL's host or the file's stem."""
    if origin == "-":
        return "stdin"
    if "://" in origin:
        return urlsplit(origin).hostname or origin
    return PurePath(origin).stem or origin


def parse_bytes(
    data: bytes,
    origin: str,
    *,
    source: str | None = None,
    feed_url: str | None = None,
    content_type: str | None = None,
) -> ParsedInput:
    """Parse one input. Raises BadInputError (kinds: empty, binary, malformed, encoding, no_entries,
    too_large); a bad single entry is dropped and counted in `rejected_entries`."""
    if not isinstance(data, bytes):  # a str would be taken by feedparser as a URL or a path
        raise TypeError(f"parse_bytes needs bytes, got {type(data).__name__}")
    data, notes = _without_stray_nuls(data) if b"\x00" in data else (data, [])
    kind = sniff(data)
    if kind == "xml":
        data, screened = prescreen_xml(data)
        parsed = _parse_feed_xml(data, origin, source=source, feed_url=feed_url, content_type=content_type)
        notes += screened
    elif kind == "json":
        parsed = _parse_json_feed(data, origin, source=source, feed_url=feed_url)
    else:
        text, decoded = decode_text(data)
        parsed = parse_wire_text(text, origin, source=source, feed_url=feed_url)
        notes += decoded
    parsed.problems[:0] = notes
    if not parsed.entries:
        detail = f" ({parsed.rejected_entries} unusable)" if parsed.rejected_entries else ""
        raise BadInputError("no_entries", f"input has no usable entries{detail}", problems=parsed.problems)
    return parsed


def decode_text(data: bytes) -> tuple[str, list[str]]:
    """(the text of a document, what its decoding had to guess). Its BOM's encoding, else UTF-8; text that is
    not valid in it is still read: UTF-8 with a few bad bytes as UTF-8 (each bad byte U+FFFD), text with no
    UTF-8 sequence in it as windows-1252 (an older wire's or editor's encoding), and the note says which."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            data, enc = data[len(bom) :], encoding
            break
    else:
        enc = "utf-8"
    try:
        return data.decode(enc), []
    except UnicodeDecodeError as exc:
        where = f"{exc.reason} at byte {exc.start}"
    text = data.decode(enc, "replace")
    if enc == "utf-8" and _DECODED_NON_ASCII.search(text) is None:
        return data.decode("cp1252", "replace"), [f"text is not valid UTF-8 ({where}): read as windows-1252"]
    return text, [f"text is not valid {enc} ({where}): bad bytes read as U+FFFD"]


_DECODED_NON_ASCII: Final = re.compile("[^\x00-\x7f\ufffd]")  # a character some UTF-8 sequence gave


def _json_int(digits: str) -> int | str:
    """A JSON integer; one too long for an int (Python refuses over 4,300 digits) stays its digits."""
    return int(digits) if len(digits) <= _INT_DIGITS else digits


_INT_DIGITS: Final = 4000


def lenient_json(data: bytes) -> tuple[Any, list[str]]:
    """(json.loads(data), notes) for JSON as exports write it, losing nothing json.loads would keep: an
    integer too long for an int stays its digits; bytes in none of JSON's encodings are read as decode_text
    reads them; control characters inside strings (which JSON forbids) are read, and dropped later with
    every other control character. Raises ValueError or RecursionError for what is still not JSON."""
    notes: list[str] = []
    try:
        return json.loads(data, parse_int=_json_int), notes
    except UnicodeDecodeError:  # not UTF-8/16/32
        text, notes = decode_text(data)
    except ValueError as exc:
        if _CONTROL_IN_STRING not in str(exc):
            raise
        text = data.decode(json.detect_encoding(data), "surrogatepass")  # as json.loads decodes bytes
    try:
        return json.loads(text, parse_int=_json_int), notes
    except ValueError as exc:
        if _CONTROL_IN_STRING not in str(exc):
            raise
    value = json.loads(text, parse_int=_json_int, strict=False)
    return value, [*notes, "control characters inside JSON strings: read, then dropped"]


_CONTROL_IN_STRING: Final = "Invalid control character"  # json.loads' message for one inside a string


# ---------------------------------------------------------------------------------------------- XML feeds


def _is_html(detail: object) -> bool:
    """feedparser's *_detail / content dicts say text/html or xhtml for markup."""
    return isinstance(detail, Mapping) and str(detail.get("type", "")).lower() in _HTML_TYPES


def _str(value: object) -> str | None:
    if isinstance(value, str):
        return without_surrogates(value).strip() or None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None


def _names(people: object) -> tuple[str, ...]:
    """Author names from feedparser/JSON Feed author dicts or plain strings."""
    if isinstance(people, Mapping | str):
        people = [people]
    if not isinstance(people, list):
        return ()
    names: list[str] = []
    for person in people:
        name = (
            _str(person.get("name") or person.get("email")) if isinstance(person, Mapping) else _str(person)
        )
        if name:
            names.append(name)
    return tuple(names)


# A document that is not well-formed is read by feedparser's loose parser, where an element left open (an
# unclosed <title>) runs on into the items after it and they are lost. Read again one entry at a time (the
# document's head, one entry, its tail), the damage stays in its own entry; the reading with more entries
# wins. Bounded: at most REPARSE_ENTRIES entries, and the head repeated at most REPARSE_BYTES in all.
REPARSE_ENTRIES: Final = 1000
REPARSE_BYTES: Final = 16 << 20
# an entry's start tag, or a CDATA section or comment to step over (an "<item>" in them is text)
_ENTRY_OR_SKIP: Final = re.compile(rb"<(?:!\[CDATA\[|!--|" + ENTRY_TAG + rb")", re.IGNORECASE)
_ENTRY_END: Final = re.compile(rb"</(?:[A-Za-z_][\w.-]*:)?(?:item|entry)\s*>", re.IGNORECASE)
_END_TAG: Final = re.compile(rb"</[A-Za-z_][\w.:-]{0,64}\s*>")
TAIL_BYTES: Final = 4096


def _feedparser_parse(data: bytes, headers: dict[str, str]) -> Any:
    """feedparser's reading of `data`, with the options this module reads its result by. A stream of the
    bytes: feedparser would treat a str (and even bytes naming a file) as a URL or a path. Imported here: a
    feed the fast path reads, the common kind, never needs it (~20 ms to import)."""
    import feedparser

    return feedparser.parse(
        io.BytesIO(data), response_headers=headers, sanitize_html=False, resolve_relative_uris=False
    )


def _entry_starts(data: bytes) -> list[int]:
    """Offsets of the entries' start tags outside CDATA sections and comments (linear)."""
    starts: list[int] = []
    pos = 0
    while (m := _ENTRY_OR_SKIP.search(data, pos)) is not None and len(starts) <= REPARSE_ENTRIES:
        opener = m.group()
        if opener.startswith((b"<![", b"<!-")):
            close = data.find(b"]]>" if opener.startswith(b"<![") else b"-->", m.end())
            if close < 0:
                break
            pos = close + 3
        else:
            starts.append(m.start())
            pos = m.end()
    return starts


def _entries_one_by_one(data: bytes, headers: dict[str, str]) -> list[Any] | None:
    """feedparser's entries, each entry read on its own (see REPARSE_ENTRIES); None when out of bounds."""
    starts = _entry_starts(data)
    if len(starts) < 2 or len(starts) > REPARSE_ENTRIES or starts[0] * len(starts) > REPARSE_BYTES:
        return None
    ends = list(_ENTRY_END.finditer(data, starts[-1]))
    end = ends[-1].end() if ends else len(data)
    # the tail: the end tags closing the document (found in its last TAIL_BYTES), not what else follows the
    # last entry: junk there (a million unclosed tags) is read once, by the whole-document reading
    tail = b"".join(_END_TAG.findall(data, max(end, len(data) - TAIL_BYTES)))
    head = data[: starts[0]]
    entries: list[Any] = []
    for i, start in enumerate(starts):
        document = head + data[start : starts[i + 1] if i + 1 < len(starts) else end] + tail
        try:
            entries += _feedparser_parse(document, headers).get("entries", [])
        except Exception:  # as for the whole document: the first reading stands
            return None
    return entries


def _feed_problem(result: Mapping[str, Any]) -> BadInputError:
    import feedparser

    exc = result.get("bozo_exception")
    if exc is None:
        return BadInputError("no_entries", "feed has no entries")
    encoding_errors = (
        feedparser.CharacterEncodingUnknown,
        feedparser.CharacterEncodingOverride,
        UnicodeError,
        LookupError,
    )
    kind = "encoding" if isinstance(exc, encoding_errors) else "malformed"
    return BadInputError(kind, f"{type(exc).__name__}: {exc}"[:500])


def _parse_feed_xml(
    data: bytes, origin: str, *, source: str | None, feed_url: str | None, content_type: str | None
) -> ParsedInput:
    from pipeline.parsing import fastfeed  # (imports this module)

    if fastfeed.ENABLED:  # RSS 2.0 with lxml; None when only feedparser can say
        fast = fastfeed.parse_fast(data, origin, source=source, feed_url=feed_url, content_type=content_type)
        if fast is not None:
            return fast
    _linear_feedparser()
    headers = {"content-type": content_type or "application/xml"}
    if feed_url:
        headers["content-location"] = feed_url
    try:
        result = _feedparser_parse(data, headers)
    except Exception as exc:  # feedparser bugs on hostile input must not become a traceback
        raise BadInputError("malformed", f"feed parser failed: {type(exc).__name__}: {exc}"[:500]) from None
    if isinstance(result.get("bozo_exception"), SAXParseException):  # not well-formed: read loosely
        entries = _entries_one_by_one(data, headers)
        if entries is not None and len(entries) > len(result.get("entries") or ()):
            result["entries"] = entries
    feed = result.get("feed", {})
    if not result.get("entries"):
        raise _feed_problem(result)
    problems = []
    if result.get("bozo"):
        bozo = result.get("bozo_exception")
        problems.append(f"{type(bozo).__name__}: {bozo}"[:500])
    source = (
        source
        or clean_inline(feed.get("title"), _is_html(feed.get("title_detail")))
        or default_source(origin)
    )
    context = _FeedContext(
        origin=origin,
        source=source,
        feed_url=feed_url,
        base=feed_url or _str(feed.get("link")),
        language=_str(feed.get("language")),
        authors=_names(feed.get("authors") or feed.get("author")),
    )
    return _collect(origin, result["entries"], lambda e: _entry_from_feedparser(e, context), problems)


_FEEDPARSER_ORIGINALS: Final[dict[str, Any]] = {}  # what _linear_feedparser replaced (the tests compare)


@functools.cache
def _linear_feedparser() -> None:
    """Two steps of feedparser's that are quadratic in what one element or entry holds, replaced (once, before
    the first feedparser parse) by linear ones with the same answers:
    - its strict (expat) parser asks xml.sax for each attribute's value by qualified name, and
      AttributesNSImpl.getValueByQName walks all of the element's attributes for each: an extension element of
      116,666 attributes took over a minute. Here an index of the names is built once per element (the first
      attribute of a name answers, as in the walk).
    - `_add_tag` keeps an entry's categories distinct with `value not in tags`, a walk of the list: an Atom
      entry of 25,000 categories took 35 s. Here a set of the (term, scheme, label) of every tag but the last
      is kept beside the list (feedparser may still set the last tag's term, when a category's text arrives
      after its start tag); a list changed any other way is read again whole."""

    def value_by_qname(self: AttributesNSImpl, name: str) -> str:
        index: dict[str, Any] | None = self.__dict__.get("_wirefeed_qnames")
        if index is None:
            index = {}
            for nsname, qname in self._qnames.items():  # type: ignore[attr-defined]
                index.setdefault(qname, nsname)
            self._wirefeed_qnames = index  # type: ignore[attr-defined]
        if name not in index:
            raise KeyError(name)
        value: str = self._attrs[index[name]]  # type: ignore[attr-defined]
        return value

    _FEEDPARSER_ORIGINALS["getValueByQName"] = AttributesNSImpl.getValueByQName
    AttributesNSImpl.getValueByQName = value_by_qname  # type: ignore[assignment,method-assign]

    from feedparser.mixin import _FeedParserMixin  # feedparser is pinned (constraints.txt): tests hold both
    from feedparser.util import FeedParserDict

    def key(tag: Any) -> tuple[Any, ...]:
        return tuple(sorted(tag.items()))

    def add_tag(self: Any, term: Any, scheme: Any, label: Any) -> None:
        context = self._get_context()
        tags = context.setdefault("tags", [])
        if (not term) and (not scheme) and (not label):
            return
        value = FeedParserDict(term=term, scheme=scheme, label=label)
        # per tags list: (the list, keys of all its tags but the last, its length when they were taken)
        known: dict[int, tuple[list[Any], set[Any], int]] = self.__dict__.setdefault("_wirefeed_tags", {})
        try:
            kept = known.get(id(tags))
            if kept is None or kept[0] is not tags or kept[2] != len(tags):
                kept = known[id(tags)] = (tags, {key(tag) for tag in tags[:-1]}, len(tags))
            new = key(value)
            if new in kept[1] or (tags and key(tags[-1]) == new):
                return
            if tags:
                kept[1].add(key(tags[-1]))
        except TypeError:  # a value that cannot be hashed (feedparser sets none): its own walk
            known.pop(id(tags), None)
            if value not in tags:
                tags.append(value)
            return
        tags.append(value)
        known[id(tags)] = (tags, kept[1], len(tags))

    _FEEDPARSER_ORIGINALS["_add_tag"] = _FeedParserMixin._add_tag
    _FeedParserMixin._add_tag = add_tag


def cap_entry(entry: RawEntry) -> tuple[RawEntry, list[str]]:
    """The entry with every text field within FIELD_CAPS and name lists within MAX_NAMES x NAME_CAP, and
    what was cut (one line per field)."""
    values = vars(entry)
    if not _over_caps(values):
        return entry, []  # the common case, checked without building anything
    changes: dict[str, Any] = {}
    cuts: list[str] = []
    for name, cap in _FIELD_CAP_ITEMS:
        value = values[name]
        if isinstance(value, str) and len(value) > cap:
            changes[name] = value[:cap]
            cuts.append(f"{name} cut from {len(value)} to {cap} characters")
    for name in ("authors", "categories"):
        names: tuple[str, ...] = values[name]
        if _names_over_cap(names):
            changes[name] = tuple(v[:NAME_CAP] for v in names[:MAX_NAMES])
            cuts.append(
                f"{name} cut to {MAX_NAMES} names of at most {NAME_CAP} characters ({len(names)} given)"
            )
    return replace(entry, **changes), cuts


_FIELD_CAP_ITEMS: Final = tuple(FIELD_CAPS.items())


def _over_caps(values: dict[str, Any]) -> bool:
    if within_caps(values):  # the usual entry: every text field a str (or None), all short
        return False
    for name, cap in _FIELD_CAP_ITEMS:
        value = values[name]
        if isinstance(value, str) and len(value) > cap:
            return True
    return _names_over_cap(values["authors"]) or _names_over_cap(values["categories"])


def _names_over_cap(names: tuple[str, ...]) -> bool:
    return len(names) > MAX_NAMES or (len(names) > 0 and max(map(len, names)) > NAME_CAP)


_CAP_OF: Final = FIELD_CAPS.__getitem__
_TITLE_CAP, _SUMMARY_CAP, _BODY_CAP = map(_CAP_OF, ("title", "summary", "body"))
_GUID_CAP, _LINK_CAP = map(_CAP_OF, ("guid", "link"))
_ATTRIBUTION_CAP, _SOURCE_CAP, _LANGUAGE_CAP = map(_CAP_OF, ("attribution", "source", "language"))
_PUBLISHED_CAP, _UPDATED_CAP = map(_CAP_OF, ("published", "updated"))


def within_caps(f: Mapping[str, Any]) -> bool:
    """True only when the entry fields `f` are certainly within every cap: each capped text field None or a
    str (exactly) no longer than its cap, at most one author and one category, each within NAME_CAP. False
    says nothing (cap_entry's field-by-field check decides); straight-line, for the common entry."""
    title, summary, body, guid, link = f["title"], f["summary"], f["body"], f["guid"], f["link"]
    attribution, source, language = f["attribution"], f["source"], f["language"]
    published, updated, authors, categories = f["published"], f["updated"], f["authors"], f["categories"]
    return (
        title.__class__ is str
        and len(title) <= _TITLE_CAP
        and body.__class__ is str
        and len(body) <= _BODY_CAP
        and source.__class__ is str
        and len(source) <= _SOURCE_CAP
        and (summary is None or (summary.__class__ is str and len(summary) <= _SUMMARY_CAP))
        and (guid is None or (guid.__class__ is str and len(guid) <= _GUID_CAP))
        and (link is None or (link.__class__ is str and len(link) <= _LINK_CAP))
        and (attribution is None or (attribution.__class__ is str and len(attribution) <= _ATTRIBUTION_CAP))
        and (language is None or (language.__class__ is str and len(language) <= _LANGUAGE_CAP))
        and (published is None or (published.__class__ is str and len(published) <= _PUBLISHED_CAP))
        and (updated is None or (updated.__class__ is str and len(updated) <= _UPDATED_CAP))
        and _one_short_name(authors)
        and _one_short_name(categories)
    )


def _one_short_name(names: tuple[str, ...]) -> bool:
    return len(names) == 0 or (len(names) == 1 and len(names[0]) <= NAME_CAP)


_ENTRY_FIELDS: Final = tuple(f.name for f in fields(RawEntry))


def new_entry(values: dict[str, Any]) -> RawEntry:
    """RawEntry(**values) for a dict of every field, in order, which becomes the entry's own attribute dict:
    no copy, and none of the frozen dataclass's one object.__setattr__ per field (a third of the cost of
    building an entry on the fast path)."""
    if tuple(values) != _ENTRY_FIELDS:
        raise TypeError(f"not the fields of a RawEntry in order: {list(values)}")
    entry = object.__new__(RawEntry)
    object.__setattr__(entry, "__dict__", values)
    return entry


@dataclass(frozen=True)
class _FeedContext:
    origin: str
    source: str
    feed_url: str | None
    base: str | None
    language: str | None
    authors: tuple[str, ...]


def _collect(
    origin: str,
    items: Iterable[Any],
    build: Callable[[Any], RawEntry],
    problems: list[str],
    cap: Callable[[RawEntry], tuple[RawEntry, list[str]]] = cap_entry,
) -> ParsedInput:
    """Build every entry (and `cap` it); one that fails is dropped, counted and recorded."""
    entries: list[RawEntry] = []
    rejected = 0
    for i, item in enumerate(items):
        try:
            entry, cuts = cap(build(item))
            entries.append(entry)
            if cuts:
                problems.extend(f"entry {i}: {cut}" for cut in cuts)
        except (BadRecordError, KeyError, TypeError, ValueError, AttributeError) as exc:
            rejected += 1
            problems.append(f"entry {i}: {type(exc).__name__}: {exc}"[:500])
            log.info("dropped entry %d of %s: %s", i, origin, exc)
    return ParsedInput(origin, entries, problems, rejected)


def _own(e: Mapping[str, Any], key: str) -> Any:
    """The entry's own value: FeedParserDict.get("updated") falls back to `published` (feedparser #310)."""
    return dict.get(e, key) if isinstance(e, dict) else e.get(key)


def check_has_content(title: str, body: str, link: str | None) -> None:
    if not (title or body or link):
        raise BadRecordError("entry has no title, body or link")


def _entry_from_feedparser(e: Mapping[str, Any], ctx: _FeedContext) -> RawEntry:
    contents = [c for c in e.get("content") or [] if isinstance(c, Mapping) and _str(c.get("value"))]
    contents.sort(key=lambda c: not _is_html(c))  # prefer the HTML rendition (content:encoded, Atom html)
    summary, summary_html = _str(e.get("summary")), _is_html(e.get("summary_detail"))
    if summary is None:  # iTunes-style feeds: the subtitle is the summary
        summary, summary_html = _str(e.get("subtitle")), _is_html(e.get("subtitle_detail"))
    if contents:
        body, body_html, detail = str(contents[0]["value"]), _is_html(contents[0]), contents[0]
    else:
        body, body_html, detail = summary or "", summary_html, e.get("summary_detail") or {}
    if summary == body:  # feedparser copies content into a missing summary; do not repeat the body
        summary = None
    title = _str(e.get("title")) or ""
    check_has_content(title, body, _str(e.get("link")))
    links = [lk for lk in e.get("links") or [] if isinstance(lk, Mapping) and lk.get("rel") == "alternate"]
    tags = [
        _str(t.get("term")) or _str(t.get("label")) for t in e.get("tags") or [] if isinstance(t, Mapping)
    ]
    title_detail = e.get("title_detail") or {}
    return RawEntry(
        origin=ctx.origin,
        source=ctx.source,
        feed_url=ctx.feed_url,
        guid=_str(e.get("id")),
        link=_str(e.get("link")) or (_str(links[0].get("href")) if links else None),
        title=title,
        title_is_html=_is_html(title_detail),
        summary=summary,
        summary_is_html=summary_html,
        body=body,
        body_is_html=body_html,
        authors=_names(e.get("authors") or e.get("author")) or ctx.authors,
        language=_str(detail.get("language")) or _str(title_detail.get("language")) or ctx.language,
        categories=tuple(t for t in tags if t),
        published=_str(e.get("published")) or _str(e.get("created")),
        updated=_str(_own(e, "updated")),
        published_parsed=e.get("published_parsed") or e.get("created_parsed"),
        updated_parsed=_own(e, "updated_parsed"),
        base=ctx.base,
    )


# ---------------------------------------------------------------------------------------------- JSON Feed


def _parse_json_feed(data: bytes, origin: str, *, source: str | None, feed_url: str | None) -> ParsedInput:
    problems: list[str] = []
    try:
        doc, problems = lenient_json(data)
    except (ValueError, RecursionError) as exc:
        raise BadInputError("malformed", f"invalid JSON: {exc}"[:500]) from None
    if not isinstance(doc, dict) or not isinstance(doc.get("items"), list):
        raise BadInputError("malformed", "JSON is not a JSON Feed (no 'items' list)")
    check_entry_count(len(doc["items"]))
    version = _str(doc.get("version")) or ""
    if "jsonfeed.org" not in version:
        problems.append(f"unknown JSON Feed version {version!r}")
    context = _FeedContext(
        origin=origin,
        source=source or clean_inline(_str(doc.get("title")), False) or default_source(origin),
        feed_url=feed_url,
        base=feed_url or _str(doc.get("feed_url")) or _str(doc.get("home_page_url")),
        language=_str(doc.get("language")),
        authors=_names(doc.get("authors") or doc.get("author")),
    )
    return _collect(origin, doc["items"], lambda item: _entry_from_json(item, context), problems)


def _entry_from_json(item: object, ctx: _FeedContext) -> RawEntry:
    if not isinstance(item, dict):
        raise BadRecordError("JSON Feed item is not an object", type=type(item).__name__)
    html, text = _str(item.get("content_html")), _str(item.get("content_text"))
    title = _str(item.get("title")) or ""
    link = _str(item.get("url")) or _str(item.get("external_url"))
    if not (title or html or text or link):
        raise BadRecordError("item has no title, content or url")
    tags = item.get("tags")
    return RawEntry(
        origin=ctx.origin,
        source=ctx.source,
        feed_url=ctx.feed_url,
        guid=_str(item.get("id")),
        link=link,
        title=title,
        summary=_str(item.get("summary")),
        body=html or text or "",
        body_is_html=html is not None,
        authors=_names(item.get("authors") or item.get("author")) or ctx.authors,
        language=_str(item.get("language")) or ctx.language,
        categories=tuple(t for t in map(_str, tags) if t) if isinstance(tags, list) else (),
        published=_str(item.get("date_published")),
        updated=_str(item.get("date_modified")),
        base=ctx.base,
    )


# ---------------------------------------------------------------------------------------------- wire text

_REF_HEADER_RE: Final = re.compile(r"^\W*reference\s+map\b\W*$", re.IGNORECASE)
_REF_LINE_RE: Final = re.compile(r"^\W*paragraphs?\s+(\d{1,6})\s*[-–—:]+\s*(.*)$", re.IGNORECASE)
_SOURCE_NUM_RE: Final = re.compile(r"\[(\d{1,6})\]")
# "Label: value" lines; the value is stripped in Python (a lazy `(.+?)\s*$` is quadratic in a run of spaces)
_SOURCE_LINE_RE: Final = re.compile(r"\s*source\s*:(.*)", re.IGNORECASE | re.DOTALL)
_TITLE_LINE_RE: Final = re.compile(r"\s*(?:title|headline)\s*:(.*)", re.IGNORECASE | re.DOTALL)
_SENTENCE_END_RE: Final = re.compile(r"(?<=[.!?])[\"'”’)]*\s+(?=[\"'“‘(]?[A-Z0-9])")
_WORD_RE: Final = re.compile(r"[^\W\d_]{2,}")
TITLE_MAX: Final = 120
_MIN_WORDS: Final = 4


def parse_wire_text(
    text: str, origin: str, *, source: str | None = None, feed_url: str | None = None
) -> ParsedInput:
    """A plain-text wire story: paragraphs, an optional Reference Map block and a 'Source:' line."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    body_lines, references, attribution = _split_tail(lines)
    if attribution:  # "Source: https://user:pass@agency.example/feed?key=..." names the story's source too
        attribution = redact_text(attribution)
    paragraphs = _paragraphs(body_lines)
    if not any(len(_WORD_RE.findall(p)) >= _MIN_WORDS and len(p.split()) >= _MIN_WORDS for p in paragraphs):
        raise BadInputError("malformed", "text is neither a feed nor a wire story (no paragraphs of prose)")
    title_line = _label_value(_TITLE_LINE_RE, paragraphs[0])
    if title_line:
        title, paragraphs = title_line, paragraphs[1:]
    elif len(paragraphs) > 1 and _looks_like_headline(paragraphs[0]):
        title, paragraphs = (
            paragraphs[0].lstrip("#").strip(),
            paragraphs[1:],
        )  # a Markdown heading is fine too
    else:
        title = derive_title(paragraphs[0])
    entry, cuts = cap_entry(
        RawEntry(
            origin=origin,
            source=source or attribution or default_source(origin),
            feed_url=feed_url,
            title=title,
            body="\n\n".join(paragraphs),
            references=tuple(references),
            attribution=attribution,
        )
    )
    return ParsedInput(origin, [entry], cuts)


def _split_tail(lines: list[str]) -> tuple[list[str], list[Reference], str | None]:
    """Separate the body from the trailing Reference Map and Source: blocks."""
    end = len(lines)
    while end and not lines[end - 1].strip():
        end -= 1
    tail_start = next((i for i in range(end) if _REF_HEADER_RE.match(lines[i])), None)
    if tail_start is None:  # no map: only a final "Source:" line is attribution
        tail_start = end - 1 if end and _label_value(_SOURCE_LINE_RE, lines[end - 1]) else end
    references: list[Reference] = []
    attribution = None
    for line in lines[tail_start:end]:
        ref = _REF_LINE_RE.match(line)
        src = _label_value(_SOURCE_LINE_RE, line)
        if ref:
            sources = tuple(int(n) for n in _SOURCE_NUM_RE.findall(ref.group(2)))
            references.append(Reference(int(ref.group(1)), sources))
        elif src and attribution is None:
            attribution = src
    return lines[:tail_start], references, attribution


def _label_value(pattern: re.Pattern[str], line: str) -> str | None:
    """The stripped value of a 'Label: value' line, or None when the line is not one or has no value."""
    match = pattern.match(line)
    return (match.group(1).strip() or None) if match else None


def _paragraphs(lines: list[str]) -> list[str]:
    """Blank-line separated blocks (hard-wrapped lines joined); with no blank lines, one paragraph a line."""
    blocks: list[list[str]] = [[]]
    for line in lines:
        if line.strip():
            blocks[-1].append(line.strip())
        elif blocks[-1]:
            blocks.append([])
    blocks = [b for b in blocks if b]
    if len(blocks) == 1:
        return blocks[0]
    return [" ".join(b) for b in blocks]


def _looks_like_headline(line: str) -> bool:
    return len(line) <= 150 and not line.rstrip().endswith((".", ",", ";", ":")) and len(line.split()) <= 25


_ABBREVIATIONS: Final = frozenset(
    {"mr", "mrs", "ms", "dr", "prof", "st", "jr", "sr", "gov", "sen", "rep", "gen", "col", "lt", "sgt",
     "capt", "cmdr", "adm", "pres", "vs", "no", "inc", "ltd", "co", "corp"}
)  # fmt: skip


_WORD_WINDOW: Final = 40  # characters looked at before a sentence end to find the word it ends


def first_sentence(paragraph: str) -> str:
    """Text up to the first sentence end that is not an abbreviation (Dr., U.S., J. Smith). Linear: each
    candidate end looks only at the few characters before it."""
    for m in _SENTENCE_END_RE.finditer(paragraph):
        window = paragraph[max(0, m.start() - _WORD_WINDOW) : m.start()]
        word = window.rsplit(None, 1)[-1] if window.strip() else ""
        stem = word.rstrip(".!?\"'”’)").lower()
        if word.rstrip("\"'”’)").endswith(".") and (stem in _ABBREVIATIONS or len(stem) <= 1 or "." in stem):
            continue
        return paragraph[: m.start()]
    return paragraph


def derive_title(paragraph: str, limit: int = TITLE_MAX) -> str:
    """First sentence of the paragraph without its full stop, cut at a word boundary within `limit`. Only the
    paragraph's head is searched: a sentence ending past `limit` is cut there anyway."""
    sentence = first_sentence(paragraph.strip()[: limit + _WORD_WINDOW * 25]).rstrip()
    if sentence.endswith(".") and not sentence.endswith(".."):
        sentence = sentence[:-1]
    if len(sentence) <= limit:
        return sentence
    cut = sentence[: limit - 1]
    if " " in cut:
        cut = cut[: cut.rindex(" ")]
    return cut.rstrip(" ,;:–—-") + "…"
