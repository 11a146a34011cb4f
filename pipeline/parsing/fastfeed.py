"""A fast path for the common feed shape (RSS 2.0) with lxml; feedparser stays the reference.

`parse_fast` returns a ParsedInput equal, story field by story field, to what feedparser's path gives, or
None whenever it is not sure: another format (Atom, RDF, CDF, JSON), an encoding other than UTF-8, a DOCTYPE,
input that is not well-formed, xml:base/xml:lang, an element it does not know (feedparser maps many
namespaces onto story fields), a repeated single-valued element, markup inside a text element, an author
with an e-mail address, a relative link. The caller then uses feedparser. It mirrors feedparser's own
post-processing of each value (strip, relative-URI resolution, the UTF-8-read-as-Latin-1 repair, the
cp1252 map, the query repair of links) by calling feedparser's helpers where they exist. feedparser is
imported only when one of them is needed (a backfill of common feeds never needs it: ~20 ms of start-up).
An RSS item becomes a RawEntry straight from its element (_rss_item: what parse._entry_from_feedparser makes
of feedparser's entry, without building that entry); Atom entries go through feedparser-shaped dicts.
tests/test_fastfeed.py holds the differential tests; `make bench` prints agreement and fallback rates.
"""

from __future__ import annotations

import contextlib
import io
import re
import threading
import urllib.parse
from collections.abc import Iterator
from typing import Any, Final

from lxml import etree  # type: ignore[import-untyped]

from pipeline.parsing.dates import parse_date
from pipeline.parsing.parse import (
    FIELD_CAPS,
    NAME_CAP,
    ParsedInput,
    RawEntry,
    _collect,
    _entry_from_feedparser,
    _FeedContext,
    _names,
    _names_over_cap,
    _str,
    cap_entry,
    check_has_content,
    default_source,
)
from pipeline.parsing.text import COMPILED, clean_inline

if COMPILED:  # an RSS item's children read in one C pass (pipeline/parsing/_accel.c): same result
    from pipeline.parsing import _accel

ENABLED = True  # False: every XML feed goes to feedparser (the differential tests compare both paths)
STREAM_BYTES: Final = 4 * 1024 * 1024  # larger inputs are parsed item by item, each freed once read
_DC: Final = "{http://purl.org/dc/elements/1.1/}"
_CONTENT: Final = "{http://purl.org/rss/1.0/modules/content/}"
_MEDIA: Final = "{http://search.yahoo.com/mrss/}"
_XML_TYPES: Final = frozenset(
    {"application/xml", "application/rss+xml", "application/atom+xml", "application/x-rss+xml"}
)
_DECL_RE: Final = re.compile(rb"^\s*<\?xml[^>]*?encoding\s*=\s*[\"']([A-Za-z0-9._-]+)[\"']")
_LINK_QUERY_RE: Final = re.compile("&([A-Za-z0-9_]+);")
_PI_TARGET: Final = re.compile(rb"[^ \t\r\n\x00]*")  # a PI's target, as markup_names_ascii reads it
# Item children read here, and those that feed no story field (feedparser keeps them in other keys).
_ITEM_TEXT: Final = frozenset(
    {"title", "link", "description", "guid", "pubDate", "author", f"{_DC}creator", f"{_DC}date",
     f"{_CONTENT}encoded"}
)  # fmt: skip
_ITEM_MULTI: Final = frozenset({"category", f"{_DC}subject"})
_ITEM_AUTHORS: Final = frozenset({"author", f"{_DC}creator"})
_CONTENT_ENCODED: Final = f"{_CONTENT}encoded"
_ITEM_IGNORED: Final = frozenset(
    {"comments", "enclosure", "source", f"{_MEDIA}content", f"{_MEDIA}thumbnail",
     "{http://wellformedweb.org/CommentAPI/}commentRss", "{http://purl.org/rss/1.0/modules/slash/}comments"}
)  # fmt: skip
# What _rss_item does with each item child (the sets above in one lookup).
_TEXT, _GUID, _CATEGORY, _IGNORED, _IGNORED_CHILDLESS, _NOT_AN_ELEMENT = (
    "text", "guid", "category", "ignored", "ignored if childless", "not an element"
)  # fmt: skip
_ITEM_ROLES: Final = {
    **{tag: _TEXT for tag in _ITEM_TEXT - {"guid"}},
    "guid": _GUID,
    **{tag: _CATEGORY for tag in _ITEM_MULTI},
    **{tag: _IGNORED_CHILDLESS if tag.startswith(_MEDIA) else _IGNORED for tag in _ITEM_IGNORED},
}
# The same for the compiled reader: its role codes (_accel.c's ROLE_*; an author is a text it also reads
# as a name).
_READER_ROLES: Final = {
    tag: 1
    if tag in _ITEM_AUTHORS
    else {_TEXT: 0, _GUID: 2, _CATEGORY: 3, _IGNORED: 4, _IGNORED_CHILDLESS: 5}[role]
    for tag, role in _ITEM_ROLES.items()
}
_CHANNEL_TEXT: Final = frozenset({"title", "link", "language", "managingEditor", f"{_DC}creator"})
_CHANNEL_IGNORED: Final = frozenset(
    {"description", "generator", "lastBuildDate", "pubDate", "ttl", "docs", "copyright", "category",
     "image", "cloud", "rating", "skipHours", "skipDays", "webMaster", "textInput",
     "{http://purl.org/rss/1.0/modules/syndication/}updatePeriod",
     "{http://purl.org/rss/1.0/modules/syndication/}updateFrequency"}
)  # fmt: skip
_ATOM_LINK: Final = "{http://www.w3.org/2005/Atom}link"
_XML_NS: Final = "{http://www.w3.org/XML/1998/namespace}"
_XML_LANG: Final = f"{_XML_NS}lang"
_ATOM: Final = "{http://www.w3.org/2005/Atom}"
_ATOM_FEED: Final = f"{_ATOM}feed"
_LINK_ATTRIBUTES: Final = frozenset({"href", "rel", "type", "title", "length", "hreflang"})
_ENTRY_TEXT: Final = frozenset({"title", "summary", "content", "id", "published", "updated"})
_ENTRY_IGNORED: Final = frozenset({f"{_ATOM}rights", f"{_ATOM}contributor"})
_FEED_IGNORED: Final = frozenset(
    f"{_ATOM}{name}"
    for name in (
        "id",
        "updated",
        "subtitle",
        "generator",
        "icon",
        "logo",
        "rights",
        "category",
        "contributor",
    )
)


class Doubt(Exception):
    """The input is not one the fast path can read exactly as feedparser would."""


_local = threading.local()  # lxml parsers must not be shared between threads


def _parser() -> etree.XMLParser:
    """This thread's parser: made once (a new XMLParser per document cost a tenth of the parse)."""
    parser: etree.XMLParser | None = getattr(_local, "parser", None)
    if parser is None:
        parser = _local.parser = etree.XMLParser(
            resolve_entities=False, no_network=True, remove_comments=True, remove_pis=True, huge_tree=False
        )
    return parser


def parse_fast(
    data: bytes, origin: str, *, source: str | None, feed_url: str | None, content_type: str | None
) -> ParsedInput | None:
    """RSS 2.0 or Atom 1.0 read with lxml, or None when feedparser must read it."""
    if not _plain_utf8(data, content_type):
        return None
    try:
        kind, root, children = _document(data)
        if kind == "rss":
            return _parse_rss(children, origin, source=source, feed_url=feed_url)
        return _parse_atom(root, children, origin, source=source, feed_url=feed_url)
    except (Doubt, etree.LxmlError, ValueError, UnicodeError):
        return None


def _plain_utf8(data: bytes, content_type: str | None) -> bool:
    """UTF-8 (or ASCII) by every rule feedparser applies, no DOCTYPE or entity declarations, and nothing the
    two parsers read differently: a leading "<?xml" whose first '>' does not end it as "?>" (feedparser
    replaces "<?xml" up to the first '>' with its own declaration), a name beyond ASCII (_names_ascii)."""
    if content_type:
        mime, _, params = content_type.partition(";")
        charset = params.lower().replace(" ", "").partition("charset=")[2].strip("\"'")
        if mime.strip().lower() not in _XML_TYPES or charset not in ("", "utf-8", "utf8"):
            return False
    start = 3 if data.startswith(b"\xef\xbb\xbf") else 0
    head = data[start : start + 1024]
    declared = _DECL_RE.match(head)
    if declared and declared.group(1).lower() not in (b"utf-8", b"utf8"):
        return False
    named = _pi_encoding(data, start)  # what feedparser takes for the declared encoding
    if named is not None and named.lower() not in (b"utf-8", b"utf8"):
        return False
    if head.startswith(b"<?xml") and not head.partition(b">")[0].endswith(b"?"):
        return False
    if b"<!DOCTYPE" in data[:4096] or _contains(data, b"<!ENTITY"):
        return False
    if data.isascii():  # (ASCII is UTF-8; checked many times faster than decoding)
        return True
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return _names_ascii(data)


def _pi_encoding(data: bytes, start: int) -> bytes | None:
    """The group of feedparser's RE_XML_PI_ENCODING matched on data[start:], found with rfind as the regex's
    backtracking finds it (the last "encoding=" on the first line that a quote follows, up to the first quote
    after which "?>" still comes), without its cost: on a feed written on one line, the regex backtracks over
    the whole feed. tests/test_fastfeed.py checks it against the regex."""
    if not data.startswith(b"<?", start):
        return None
    eol = data.find(b"\n", start)
    end = len(data) if eol < 0 else eol
    bound = data.rfind(b"?>", start, end)  # a value's closing quote comes before the line's last "?>"
    at = data.rfind(b"encoding=", start + 2, end) if bound >= 0 else -1
    while at >= 0:
        q = at + 9
        if q < end and data[q] in b"\"'":
            quotes = [j for j in (data.find(b'"', q + 1, bound), data.find(b"'", q + 1, bound)) if j >= 0]
            if quotes:
                return data[q + 1 : min(quotes)]
            bound = min(bound, q + 1)  # an earlier value closes at q at the latest: each byte searched once
        at = data.rfind(b"encoding=", start + 2, at + 8)
    return None


def _names_ascii(data: bytes) -> bool:
    """No byte beyond ASCII in a tag (outside its quoted values) or a PI's target, and no "<!" declaration but
    comments and CDATA: libxml2 reads names by XML 1.0's fifth edition, expat (feedparser's strict parser) by
    older tables, so for such a name one parser may refuse the document the other reads."""
    if COMPILED:
        return _accel.markup_names_ascii(data)
    at = data.find(b"<")
    while at >= 0:
        if data.startswith((b"<!--", b"<![CDATA["), at):
            close = data.find(b"-->" if data[at + 2] == 0x2D else b"]]>", at + 4)
            if close < 0:
                return True
            at = close + 3
        elif data.startswith(b"<!", at):
            return False
        elif data.startswith(b"<?", at):
            close = data.find(b"?>", at + 2)
            if close < 0:
                return True
            target = _PI_TARGET.match(data, at + 2, close)
            if target is not None and not target.group().isascii():
                return False
            at = close + 2
        else:
            at += 1
            while at < len(data) and data[at] not in b"<>":
                if data[at] in b"\"'":
                    at = data.find(data[at : at + 1], at + 1)
                    if at < 0:
                        return True
                elif data[at] >= 0x80:
                    return False
                at += 1
        at = data.find(b"<", at)
    return True


def _contains(data: bytes, needle: bytes) -> bool:
    """needle in data (memmem in C: several times faster on a document full of '<')."""
    return _accel.contains(data, needle) if COMPILED else needle in data


def _value(text: str | None) -> str:
    """feedparser's post-processing of every value: strip, the UTF-8-read-as-Latin-1 repair, cp1252 map."""
    if not text:
        return ""
    text = text.strip()
    if not text.isascii():
        with contextlib.suppress(UnicodeEncodeError, UnicodeDecodeError):
            text = text.encode("iso-8859-1").decode("utf-8")
        text = text.translate(_CP1252)
    return text


# feedparser.html._cp1252 (tests/test_fastfeed.py holds them equal): bytes 0x80-0x9f read as Latin-1 -> the
# characters cp1252 gives them (the five it leaves undefined stay as they are)
_CP1252: Final = {c: char for c in range(0x80, 0xA0) if (char := bytes([c]).decode("cp1252", "ignore"))}


def _text_of(el: Any) -> str:
    """The element's text; markup inside it (feedparser re-serializes that) or attributes -> doubt."""
    if len(el) or el.attrib:
        raise Doubt(f"{el.tag} has children or attributes")
    return _value(el.text)


def _plain_tag(el: Any) -> str:
    tag = el.tag
    if not isinstance(tag, str):
        raise Doubt("entity or other non-element node")
    if el.attrib and any(k.startswith(_XML_NS) for k in el.attrib):
        raise Doubt("xml:base or xml:lang")
    return str(tag)


def _parse_rss(
    children: Iterator[Any], origin: str, *, source: str | None, feed_url: str | None
) -> ParsedInput | None:
    base = feed_url or ""
    feed: dict[str, str] = {}
    authors: list[dict[str, str]] = []
    items: list[dict[str, Any]] = []
    for el in children:
        if el.tag == "item":  # (_rss_item doubts any attribute, and so any xml:base or xml:lang)
            items.append(_rss_item(el, base))
            continue
        tag = _plain_tag(el)
        if tag in _CHANNEL_TEXT:
            value = _text_of(el)
            if tag in ("managingEditor", f"{_DC}creator"):
                authors.append(_person(value))
            elif tag in feed:
                raise Doubt(f"channel {tag} repeated")
            else:
                feed[tag] = value
        elif tag == _ATOM_LINK:  # (without href, feedparser takes its text as the feed's link)
            if _rel(el) == "alternate" or len(el) or el.get("href") is None:
                raise Doubt("atom:link alternate or without href in channel")
        elif tag not in _CHANNEL_IGNORED:
            raise Doubt(f"channel element {tag}")
    link = feed.get("link")
    if link:
        link = _LINK_QUERY_RE.sub(r"&\g<1>", _urljoin(base, link))
    title = feed.get("title")
    feed_source = source or clean_inline(title, _looks_like_html(title))
    if not items:
        return None  # feedparser words the error
    context = _context(origin, feed_source, feed_url, link, feed.get("language"), authors)
    shared = {
        "origin": context.origin,
        "source": context.source,
        "feed_url": context.feed_url,
        "language": context.language,
        "base": context.base,
    }

    feed_over_caps = any(len(shared[name] or "") > FIELD_CAPS[name] for name in _FEED_CAPPED)
    feed_authors = context.authors

    def build(fields: dict[str, Any]) -> RawEntry:
        title, body, link = fields["title"], fields["body"], fields["link"]
        if not (title or body or link):
            check_has_content(title, body, link)  # (raises)
        if not fields["authors"]:
            fields["authors"] = feed_authors
        fields.update(shared)
        return _entry_of(fields)

    return _collect(origin, items, build, [], cap_entry if feed_over_caps else _capped)


def _entry_of(fields: dict[str, Any]) -> RawEntry:
    """parse.new_entry without its check of the fields' order (_rss_fields makes every field, in order)."""
    entry: RawEntry = object.__new__(RawEntry)
    object.__setattr__(entry, "__dict__", fields)
    return entry


def _context(
    origin: str,
    source: str | None,
    feed_url: str | None,
    link: str | None,
    language: str | None,
    authors: list[dict[str, str]],
) -> _FeedContext:
    """What every entry of the feed shares, as parse._parse_feed_xml makes it from feedparser's feed."""
    return _FeedContext(
        origin=origin,
        source=source or default_source(origin),
        feed_url=feed_url,
        base=feed_url or _str(link),
        language=_str(language),
        authors=_names([a for a in authors if a]),
    )


def _entries(
    origin: str,
    entries: list[dict[str, Any]],
    source: str | None,
    feed_url: str | None,
    link: str | None,
    language: str | None,
    authors: list[dict[str, str]],
) -> ParsedInput | None:
    """RawEntries from the entry dicts, as parse._parse_feed_xml builds them from feedparser's."""
    if not entries:
        return None  # feedparser words the error
    context = _context(origin, source, feed_url, link, language, authors)
    return _collect(origin, entries, lambda e: _entry_from_feedparser(e, context), [])


def _parse_atom(
    root: Any, children: Iterator[Any], origin: str, *, source: str | None, feed_url: str | None
) -> ParsedInput | None:
    base = feed_url or ""
    feed: dict[str, Any] = {}
    authors: list[dict[str, str]] = []
    entries: list[dict[str, Any]] = []
    for el in children:
        tag = _plain_tag(el)
        if tag == f"{_ATOM}entry":
            entries.append(_entry_dict(el, base))
        elif tag == f"{_ATOM}title":
            if "title" in feed:
                raise Doubt("feed title repeated")
            feed["title"], feed["title_html"] = _atom_text(el)
        elif tag == f"{_ATOM}link":
            _atom_link(el, base, feed)
        elif tag == f"{_ATOM}author":
            authors.append(_atom_person(el))
        elif tag not in _FEED_IGNORED:
            raise Doubt(f"feed element {tag}")
    if len(authors) > 1:
        raise Doubt("several feed authors")  # feedparser mixes their details
    language = root.get(_XML_LANG) or None
    if language is not None and "_" in language:
        raise Doubt("xml:lang with an underscore")
    feed_source = source or clean_inline(feed.get("title"), bool(feed.get("title_html")))
    return _entries(origin, entries, feed_source, feed_url, feed.get("link"), language, authors)


def _atom_text(el: Any) -> tuple[str, bool]:
    """An Atom text construct: (value, is HTML); xhtml and other types -> doubt."""
    if len(el) or set(el.attrib) - {"type"}:
        raise Doubt(f"{el.tag} with children or attributes other than type")
    kind = el.get("type", "text")
    if kind not in ("text", "html"):
        raise Doubt(f"{el.tag} of type {kind}")
    return _value(el.text), kind == "html"


def _atom_link(el: Any, base: str, into: dict[str, Any]) -> None:
    """rel=alternate (the default) with no type or text/html is the link; other rels are ignored."""
    if (
        len(el)
        or el.get("href") is None
        or set(el.attrib) - {"href", "rel", "type", "title", "length", "hreflang"}
    ):
        raise Doubt("link without href, or with children or unknown attributes")
    if _rel(el) != "alternate":
        return
    if el.get("type", "text/html") != "text/html" or "link" in into:
        raise Doubt("an alternate link of another type, or several")
    into["link"] = _urljoin(base, _value(el.get("href")))
    into["links"] = [{"rel": "alternate", "type": "text/html", "href": into["link"]}]


def _rel(el: Any) -> str:
    """A link's rel as feedparser reads it: lower case (it lowers every rel and type), "alternate" if none."""
    rel: str = el.get("rel", "alternate")
    return rel.lower()


def _atom_person(el: Any) -> dict[str, str]:
    if el.attrib or (el.text or "").strip():
        raise Doubt("author with attributes or text")
    person: dict[str, str] = {}
    for child in el:
        tag = _plain_tag(child)
        if tag not in (f"{_ATOM}name", f"{_ATOM}email", f"{_ATOM}uri") or tag[len(_ATOM) :] in person:
            raise Doubt(f"author element {tag}")
        person[tag[len(_ATOM) :]] = _text_of(child)
    return {k: v for k, v in person.items() if k in ("name", "email") and v}


def _entry_dict(entry: Any, base: str) -> dict[str, Any]:
    """The dict feedparser would build for an Atom entry, with the keys _entry_from_feedparser reads."""
    if entry.attrib:
        raise Doubt("entry attributes")
    e: dict[str, Any] = {}
    tags: list[dict[str, str]] = []
    authors: list[dict[str, str]] = []
    for el in entry:
        tag = _plain_tag(el)
        name = tag[len(_ATOM) :] if tag.startswith(_ATOM) else tag
        if name == "link":
            _atom_link(el, base, e)
        elif name == "category":
            if len(el) or set(el.attrib) - {"term", "scheme", "label"} or (el.text or "").strip():
                raise Doubt("category with children, text or unknown attributes")
            term, label = _value(el.get("term")), _value(el.get("label"))
            if term or label:
                tags.append({"term": term, "label": label})
        elif name == "author":
            authors.append(_atom_person(el))
        elif tag in _ENTRY_IGNORED:
            continue
        elif name not in _ENTRY_TEXT or name in e:
            raise Doubt(f"entry element {tag} unknown or repeated")
        elif name in ("title", "summary", "content"):
            value, html = _atom_text(el)
            detail = {"type": "text/html" if html else "text/plain"}
            if name == "content":
                e["content"] = [{**detail, "value": value}]
            else:
                e[name], e[f"{name}_detail"] = value, detail
        elif name == "id":  # feedparser reads an Atom id as a permalink guid: resolved, the link if none
            value = _text_of(el)
            e["id"] = e["guid_link"] = _urljoin(base, value) if value else value
        else:  # published, updated
            e[name] = _text_of(el)
    if len(authors) > 1:
        raise Doubt("several authors")  # feedparser mixes their details
    return _finish(e, tags, authors)


def _finish(e: dict[str, Any], tags: list[dict[str, str]], authors: list[dict[str, str]]) -> dict[str, Any]:
    """What feedparser does once an entry ends (both formats)."""
    if "guid_link" in e:  # a permalink guid (any Atom id) is the link unless the entry has its own
        e.setdefault("link", e.pop("guid_link"))
    if "content" in e and "summary" not in e:  # feedparser copies content into a missing summary (only)
        e["summary"] = e["content"][0]["value"]
    for key in ("published", "updated"):
        if key in e:
            e[f"{key}_parsed"] = _fallback_date(e[key])
    if tags:
        e["tags"] = tags
    people = [a for a in authors if a]
    if people:
        e["authors"] = people
    return e


def _kind(root: Any) -> str:
    """'rss' (RSS 2.0) or 'atom' (Atom 1.0); doubt for anything else or xml:base on the root."""
    if any(k.startswith(_XML_NS) and k != _XML_LANG for k in root.attrib) or "lang" in root.attrib:
        raise Doubt("xml:base or a lang attribute on the root")
    if root.tag == "rss" and root.get("version") == "2.0" and _XML_LANG not in root.attrib:
        return "rss"
    if root.tag == _ATOM_FEED:
        return "atom"
    raise Doubt(f"root element {root.tag}")


def _document(data: bytes) -> tuple[str, Any, Iterator[Any]]:
    """The format, the root element and an iterator over the elements that hold entries (RSS: the
    channel's children; Atom: the feed's). Large input is parsed as it is read, each child freed after."""
    if len(data) > STREAM_BYTES:
        return _stream(_without_cdata(data))
    root = etree.fromstring(_without_cdata(data), _parser())
    kind = _kind(root)
    if kind == "atom":
        return kind, root, iter(root)
    if len(root) != 1 or root[0].tag != "channel" or root[0].attrib:
        raise Doubt("not one channel")
    return kind, root, iter(root[0])


def _without_cdata(data: bytes) -> bytes:
    """The document with its CDATA sections as escaped text where the compiled pass is sure that is the same
    for the parser (libxml2 reads CDATA a character at a time, escaped text several times faster)."""
    if COMPILED and (as_text := _accel.cdata_as_text(data)) is not None:
        return as_text
    return data


def _stream(data: bytes) -> tuple[str, Any, Iterator[Any]]:
    events = etree.iterparse(
        io.BytesIO(data),
        events=("start", "end"),
        resolve_entities=False,
        no_network=True,
        remove_comments=True,
        remove_pis=True,
    )
    _, root = next(events)
    kind = _kind(root)
    return kind, root, _stream_children(events, 2 if kind == "rss" else 1)


def _stream_children(events: Iterator[tuple[str, Any]], level: int) -> Iterator[Any]:
    """Elements at `level` (the root is 0) one at a time, each freed once the caller has read it."""
    depth, channels = 0, 0
    for event, el in events:
        if event == "start":
            depth += 1
            if level == 2 and depth == 1:
                channels += 1
                if el.tag != "channel" or channels > 1 or el.attrib:
                    raise Doubt("not one channel")
            continue
        if depth == level:
            yield el
            parent = el.getparent()
            el.clear()
            if parent is not None:
                parent.remove(el)
        depth -= 1


def _urljoin(base: str, uri: str) -> str:
    """feedparser's _urljoin (`_urifixer.sub(r"\\1\\3", uri)`, then urljoin, '' on ValueError) with the
    substitution done by hand: re.sub's template machinery cost more than the rest."""
    if ":///" in uri:  # (group 2 matches a '/' right after "://": no need to match otherwise)
        from feedparser.urls import _urifixer

        fixed = _urifixer.match(uri)
        if fixed is not None and fixed.group(2):  # scheme:/// -> scheme:// (group 3 is always empty)
            uri = fixed.group(1) + uri[fixed.end() :]
    if not base:  # (urljoin's own first step)
        return uri
    try:
        return urllib.parse.urljoin(base, uri)
    except ValueError:
        return ""


def _person(value: str) -> dict[str, str]:
    if "@" in value:  # feedparser splits e-mail addresses out of names with its own rules
        raise Doubt("author with an e-mail address")
    return {"name": value} if value else {}


def _looks_like_html(value: str | None) -> bool:
    """An RSS title is text/plain unless feedparser's heuristic says it is HTML."""
    if not value or ("<" not in value and "&" not in value):
        return False
    if not _HTML_CLUE_RE.search(value):  # looks_like_html's first test, without importing feedparser
        return False
    from feedparser.mixin import _FeedParserMixin

    return bool(_FeedParserMixin.looks_like_html(value))


_HTML_CLUE_RE: Final = re.compile(r"</(\w+)>|&#?\w+;")  # a close tag or an entity reference


def _rss_item(item: Any, base: str) -> dict[str, Any]:
    """The item's own RawEntry fields, read straight from the element: what parse._entry_from_feedparser
    makes of the entry feedparser builds for it (the differential tests hold the two paths equal)."""
    if _READER is not None and (read := _READER.read(item)) is not None:
        return _rss_fields(*read, base)
    return _rss_fields(*_rss_children(item), base)


def _rss_children(item: Any) -> tuple[dict[str, str], list[str], list[str], bool]:
    """The item's children: (text by tag, author names, categories, whether the guid is a permalink).
    _accel.ItemReader does the same in C where every child is a plain one (tests/test_fastfeed_reader.py).

    Its `_str` is only a strip here: lxml's strings hold no lone surrogates (it decodes libxml2's UTF-8
    strictly), nor does `_value` add any; an ASCII value from `_value` is stripped already."""
    if item.keys():
        raise Doubt("item attributes (rdf:about)")
    text: dict[str, str] = {}
    names: list[str] = []
    categories: list[str] = []
    guid_is_link = False
    for el in item:
        tag = el.tag
        role = _ITEM_ROLES.get(tag) if tag.__class__ is str else _NOT_AN_ELEMENT
        keys = el.keys()
        if keys and any(k.startswith(_XML_NS) for k in keys):
            raise Doubt("xml:base or xml:lang")
        if role is _TEXT:
            if keys or len(el):  # markup inside a text element (feedparser re-serializes that)
                raise Doubt(f"{tag} has children or attributes")
        elif role is _GUID:
            if len(el) or (keys and keys != ["isPermaLink"]):
                raise Doubt("guid attributes")
            guid_is_link = el.get("isPermaLink", "true") == "true"
        elif role is _CATEGORY:
            if (keys and keys != ["domain"]) or len(el):
                raise Doubt("category with children or attributes other than domain")
            value = _value(el.text)
            if value:
                categories.append(value)
            continue
        elif role is _IGNORED or (role is _IGNORED_CHILDLESS and not len(el)):
            continue
        else:
            raise Doubt(f"item element {tag}")
        if tag in text:
            raise Doubt(f"item {tag} repeated")
        value = el.text
        if value:  # _value, its common case inline
            value = value.strip()
            if not value.isascii():
                value = _value(value)
        else:
            value = ""
        if tag in _ITEM_AUTHORS:
            if "@" in value:  # feedparser splits e-mail addresses out of names with its own rules
                raise Doubt("author with an e-mail address")
            if value.strip():
                names.append(value.strip())
        text[tag] = value
    return text, names, categories, guid_is_link


def _rss_fields(
    text: dict[str, str], names: list[str], categories: list[str], guid_is_link: bool, base: str
) -> dict[str, Any]:
    guid = text.get("guid")
    # (_urljoin leaves a URI without ":///" as it is when there is no base)
    if guid_is_link and guid and (base or ":///" in guid):  # a permalink guid is resolved, and it is the link
        guid = _urljoin(base, guid)  # when the item has none
    link = text.get("link")
    if link is None:
        link = guid if guid_is_link else None
    else:
        if link and (base or ":///" in link):
            link = _urljoin(base, link)
        if "&" in link:
            link = link.replace("&amp;", "&")
            link = _LINK_QUERY_RE.sub(r"&\g<1>", link)
    description, content = text.get("description"), text.get(_CONTENT_ENCODED)
    # feedparser copies content:encoded into a missing description, as a summary that is not HTML
    summary = description if description is not None else content
    summary = (summary.strip() or None) if summary is not None else None
    summary_html = description is not None and summary is not None
    if content is not None and content.strip():
        body, body_html = content, True
    else:
        body, body_html = summary or "", summary_html
    title = text.get("title")
    published, updated = text.get("pubDate"), text.get(f"{_DC}date")
    return {  # every RawEntry field in order; the feed's own are set by _parse_rss
        "origin": None,
        "source": None,
        "feed_url": None,
        "guid": (guid.strip() or None) if guid is not None else None,
        "link": (link.strip() or None) if link is not None else None,
        "title": title.strip() if title is not None else "",
        "title_is_html": title is not None and ("<" in title or "&" in title) and _looks_like_html(title),
        "summary": None if summary == body else summary,
        "body": body,
        "body_is_html": body_html,
        "authors": tuple(names),
        "language": None,
        "categories": tuple(filter(None, map(str.strip, categories))) if categories else (),
        "published": (published.strip() or None) if published is not None else None,
        "updated": (updated.strip() or None) if updated is not None else None,
        "references": (),
        "attribution": None,
        "summary_is_html": summary_html,
        "base": None,
        "published_parsed": None if published is None or parse_date(published) else _fallback_date(published),
        "updated_parsed": None if updated is None or parse_date(updated) else _fallback_date(updated),
    }


_READER: Final = _accel.ItemReader(_READER_ROLES, _value) if COMPILED else None  # None: _rss_children


def _capped(entry: RawEntry) -> tuple[RawEntry, list[str]]:
    """cap_entry, after a look at the fields that come from the item (the feed's are looked at once)."""
    f = vars(entry)
    summary, guid, link, published, updated = f["summary"], f["guid"], f["link"], f["published"], f["updated"]
    authors, categories = f["authors"], f["categories"]
    if (
        len(f["title"]) <= _TITLE_CAP
        and len(f["body"]) <= _BODY_CAP
        and (summary is None or len(summary) <= _SUMMARY_CAP)
        and (guid is None or len(guid) <= _GUID_CAP)
        and (link is None or len(link) <= _LINK_CAP)
        and (published is None or len(published) <= _PUBLISHED_CAP)
        and (updated is None or len(updated) <= _UPDATED_CAP)
        and (
            not authors or (len(authors) == 1 and len(authors[0]) <= NAME_CAP) or not _names_over_cap(authors)
        )
        and (
            not categories
            or (len(categories) == 1 and len(categories[0]) <= NAME_CAP)
            or not _names_over_cap(categories)
        )
    ):
        return entry, []
    return cap_entry(entry)


_TITLE_CAP, _BODY_CAP, _SUMMARY_CAP, _GUID_CAP, _LINK_CAP, _PUBLISHED_CAP, _UPDATED_CAP = (
    FIELD_CAPS[name] for name in ("title", "body", "summary", "guid", "link", "published", "updated")
)
# The capped fields _capped leaves to the feed-level check in _parse_rss (attribution: an RSS item has none)
_FEED_CAPPED: Final = ("source", "language")


def _fallback_date(value: str | None) -> Any:
    """feedparser's *_parsed of a date, needed only where pipeline.parsing.dates cannot read it."""
    if value is None or parse_date(value):
        return None
    return feedparser_date(value) or None


def feedparser_date(value: str) -> Any:
    """feedparser's own date parsing (used only when pipeline.parsing.dates cannot read the value)."""
    from feedparser.datetimes import _parse_date

    return _parse_date(value)
