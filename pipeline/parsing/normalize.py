"""RawEntry -> Story: plain text, canonical URL, UTC dates, stable ids and content hash."""

from __future__ import annotations

import functools
import hashlib
import re
from datetime import UTC, datetime
from typing import Final

from pipeline.errors import BadRecordError
from pipeline.parsing.dates import impossible_offset, parse_date
from pipeline.parsing.parse import RawEntry, default_source
from pipeline.parsing.text import (
    COMPILED,
    clean_inline,
    drop_controls,
    html_to_text,
    plain_to_text,
    strip_unsafe,
    without_surrogates,
)
from pipeline.parsing.urls import canonical_url
from pipeline.redact import mask_shaped, redact_url
from pipeline.schema import SCHEMA_VERSION, Story

if COMPILED:
    from pipeline.parsing._accel import SHA_NI
    from pipeline.parsing._accel import content_digest as _compiled_content_digest
    from pipeline.parsing._accel import digest32 as _compiled_digest32
    from pipeline.parsing._accel import hash_form as _compiled_hash_form
    from pipeline.parsing._accel import plain_story as _compiled_plain_story

ID_CHARS: Final = 32
_ASCII_BYTES: Final = bytes(range(128))
_ASCII_LOWER: Final = bytes.maketrans(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ", b"abcdefghijklmnopqrstuvwxyz")
_SEP: Final = "\x1f"  # unit separator: cannot occur in cleaned text, so field boundaries are unambiguous


def _hashlib_digest32(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:ID_CHARS]


# The first ID_CHARS hex digits of SHA-256: compiled where the CPU has SHA instructions (hashlib's call costs
# ~1.4 us of overhead a digest, more than hashing a story's body); the same digest by hashlib elsewhere.
_digest32: Final = _compiled_digest32 if COMPILED and SHA_NI else _hashlib_digest32


# _clean_content_hash by _accel.content_digest (False: by _hash_form and _digest32; the tests compare both)
CONTENT_DIGEST = COMPILED and SHA_NI
# an entry's texts and content hash by _accel.plain_story where it settles them (False: by the Python steps)
PLAIN_STORY = COMPILED


def _digest(*parts: str) -> str:
    return _digest32(_SEP.join(parts).encode("utf-8"))


def story_id(
    *,
    url: str | None,
    source: str,
    guid: str | None,
    title: str,
    published_at: datetime | None,
    body: str = "",
) -> str:
    """Stable id. Basis, in order: canonical URL; source+guid; source+title+published; source+body. Each basis
    hashes with its own tag, so ids from different bases cannot collide."""
    return _story_id(url, source, guid, title, published_at, body)


def _story_id(
    url: str | None, source: str, guid: str | None, title: str, published_at: datetime | None, body: str
) -> str:
    if url:
        return _digest("url", url)
    if guid:
        return _digest("guid", source, guid)
    if title or published_at:
        return _digest("title", source, title, published_at.isoformat() if published_at else "")
    return _digest("body", source, body)


def content_hash(title: str, body: str) -> str:
    """Hash of the normalized text: case and whitespace differences do not make a new version.
    (str.split() splits on exactly the whitespace `\\s` matches; the values are those of every lake
    landed so far, so the hash function stays sha256: it costs ~3 us a story, the old regex ~200.)"""
    normalized = " ".join(f"{title}\n{body}".split())
    return _digest32(_hash_form(normalized))


def _clean_content_hash(title: str, body: str) -> str:
    """content_hash(title, body) for text this module cleaned: there the only whitespace is single spaces
    and the blank line between paragraphs, so the normalization is one replace instead of a split. Compiled
    (where the CPU has SHA instructions) in one call that neither joins the two nor keeps the folded bytes."""
    if CONTENT_DIGEST and (done := _compiled_content_digest(title, body)) is not None:
        if isinstance(done, str):  # ASCII text
            return done
        digest, chars = done
        if _FOLDS_TO_ITSELF.issuperset(chars) or all(_folds_to_itself(c) for c in chars):
            return digest
    return _digest32(_hash_form(f"{title} {body}" if title and body else title or body))


def _hash_form(text: str) -> bytes:
    """casefold_utf8(text).replace(b"\n\n", b" "), in one compiled pass where its non-ASCII characters fold
    to themselves (most do; those the pass reports are checked, and remembered)."""
    if COMPILED and (done := _compiled_hash_form(text)) is not None:
        folded, chars = done
        if not chars or _FOLDS_TO_ITSELF.issuperset(chars) or all(_folds_to_itself(c) for c in chars):
            return folded
    return casefold_utf8(text).replace(b"\n\n", b" ")


_FOLDS_TO_ITSELF: Final[set[str]] = set()
_MAX_REMEMBERED: Final = 1 << 16


def _folds_to_itself(char: str) -> bool:
    same = char.casefold() == char
    if same and len(_FOLDS_TO_ITSELF) < _MAX_REMEMBERED:
        _FOLDS_TO_ITSELF.add(char)
    return same


def casefold_utf8(text: str) -> bytes:
    """text.casefold().encode("utf-8"), about ten times faster on non-ASCII text. Case folding maps each
    character on its own (no context), ASCII letters as lower() does; so the UTF-8 bytes go through a byte
    table for A-Z and only the distinct non-ASCII characters that fold to something else are replaced
    (what they fold to folds to itself, so the replacements do not interfere)."""
    raw = text.encode("utf-8")
    folded = raw.translate(_ASCII_LOWER)
    if raw.isascii():
        return folded
    changed = [c for c in set(raw.translate(None, _ASCII_BYTES).decode("utf-8")) if c.casefold() != c]
    if not changed:
        return folded
    result = folded.decode("utf-8")
    for char in changed:
        result = result.replace(char, char.casefold())
    return result.encode("utf-8")


def _unique(values: tuple[str, ...]) -> list[str]:
    """The distinct cleaned names, in order. Short lists (bylines, sections) repeat from story to story:
    their cleaned form is remembered (up to a bound; clean_inline depends on nothing but the names)."""
    if not values:
        return []
    known = _NAMES.get(values)
    if known is None:
        known = _unique_names(values)
        if len(values) <= _NAMES_KEPT:
            if len(_NAMES) >= _NAMES_MAX:
                _NAMES.clear()
            _NAMES[values] = known
    return [*known]


def _unique_names(values: tuple[str, ...]) -> tuple[str, ...]:
    cleaned = (clean_inline(v) for v in values)
    return tuple(dict.fromkeys(v for v in cleaned if v))


_NAMES: Final[dict[tuple[str, ...], tuple[str, ...]]] = {}
_NAMES_MAX: Final = 2048
_NAMES_KEPT: Final = 4  # lists of up to this many names are remembered (each name at most NAME_CAP chars)


@functools.lru_cache(maxsize=1024)  # one feed's entries share it
def _feed_url(feed_url: str | None) -> str | None:
    if not feed_url:
        return None
    feed_url = without_surrogates(feed_url)
    return canonical_url(feed_url) or redact_url(strip_unsafe(feed_url))  # (both mask shaped credentials)


def _guid(guid: str) -> str:
    """The entry's id, clean (no controls, tags or script URLs; credentials of a known shape masked); one with
    URL parameters or user info (a permalink) redacted as a URL is."""
    if _PLAIN_GUID(guid) is not None and "t:" not in guid and "T:" not in guid:
        return mask_shaped(guid)  # what _cleaned_guid gives such a guid: no step but the last changes it
    return _cleaned_guid(guid)


def _cleaned_guid(guid: str) -> str:
    guid = strip_unsafe(drop_controls(without_surrogates(guid))).strip()
    return (
        redact_url(guid) if _URLISH.search(guid) is not None else mask_shaped(guid)
    )  # (redact_url masks too)


_URLISH: Final = re.compile(r"[?#;@]")
# ASCII ids of characters none of _cleaned_guid's steps changes or reads as a URL (most guids: "w0",
# "urn:uuid:..."), unless they hold "t:" (a script URL's scheme ends so)
_PLAIN_GUID: Final = re.compile(r"[A-Za-z0-9._~/:+=-]+", re.ASCII).fullmatch


def _as_utc(fetched_at: datetime) -> datetime:
    last = _LAST_UTC[0]
    if last[0] is fetched_at:  # the entries of one input share their fetched_at (a datetime is immutable)
        return last[1]
    if fetched_at.tzinfo is None or fetched_at.utcoffset() is None:
        raise BadRecordError("fetched_at must be timezone-aware", value=repr(fetched_at))
    utc = fetched_at.astimezone(UTC)
    _LAST_UTC[0] = (fetched_at, utc)
    return utc


_LAST_UTC: Final[list[tuple[datetime | None, datetime]]] = [(None, datetime.fromtimestamp(0, UTC))]


def _parsed_date(value: object, raw: str | None) -> datetime | None:
    """parse_date(value) for a *_parsed field, which is None but for feedparser's entries: feedparser's
    reading of `raw`, the date as written, unless that ends in a UTC offset no clock has (+99:99), which
    feedparser reads as hours and minutes all the same (a red-team feed, 4 Dec: 4 days off)."""
    if value is None or (raw and impossible_offset(raw)):
        return None
    return parse_date(value)


@functools.lru_cache(maxsize=256)  # a handful of language tags
def _language(value: str) -> str | None:
    return clean_inline(value, False).lower() or None


def _redacted_origin(origin: str, memo: dict[str, str] | None) -> str:
    """redact_url(without_surrogates(origin)), looked up in `memo` (the caller's, for one batch of entries,
    which share their origin) when given. Not cached across calls: what redaction hides is configurable."""
    if memo is None:
        return redact_url(without_surrogates(origin))
    redacted = memo.get(origin)
    if redacted is None:
        redacted = memo[origin] = redact_url(without_surrogates(origin))
    return redacted


def _texts(entry: RawEntry) -> tuple[str, str, str | None]:
    """The entry's cleaned title, body and summary (no body: the summary)."""
    title = clean_inline(entry.title, entry.title_is_html)
    body = entry.body  # to_text(...), without its frame
    if body:
        body = html_to_text(body) if entry.body_is_html else plain_to_text(body)
    summary = entry.summary
    if summary:
        summary = (html_to_text(summary) if entry.summary_is_html else plain_to_text(summary)) or None
    else:
        summary = None
    if not body and summary:
        body = summary
    return title, body, summary


def normalize(
    entry: RawEntry,
    *,
    fetched_at: datetime,
    taxonomy_version: str = "",
    origins: dict[str, str] | None = None,
) -> Story:
    """Clean one entry into a Story (topics empty). Raises BadRecordError when nothing usable is left.
    `origins`: a dict kept by the caller across one batch's entries, remembering their redacted origins."""
    done = None
    if PLAIN_STORY and not (entry.title_is_html or entry.body_is_html or entry.summary_is_html):
        done = _compiled_plain_story(entry.title, entry.body, entry.summary)  # (most wire records)
    if done is not None:
        title, body, summary, digest = done
    else:
        title, body, summary = _texts(entry)
        digest = None
    link = entry.link  # canonical (an absolute http(s) link with a host needs no base)
    url = canonical_url(without_surrogates(link), entry.base) if link else None
    if not (title or body or url):
        raise BadRecordError("entry has no title, body or usable link", origin=entry.origin, guid=entry.guid)
    source = mask_shaped(clean_inline(entry.source) or default_source(entry.origin))  # (a file's name, say)
    guid = _guid(entry.guid) if entry.guid else None
    published_at = parse_date(entry.published) or _parsed_date(entry.published_parsed, entry.published)
    updated_at = parse_date(entry.updated) if entry.updated else None
    if updated_at is None:
        updated_at = _parsed_date(entry.updated_parsed, entry.updated)
    if (
        published_at is None
    ):  # RSS 1.0 dc:date and updated-only Atom entries: their one date is the publication
        published_at = updated_at
    language = _language(entry.language) if entry.language else None
    return {
        "story_id": _story_id(url, source, guid, title, published_at, body),
        "content_hash": digest or _clean_content_hash(title, body),
        "source": source,
        "origin": _redacted_origin(entry.origin, origins),
        "feed_url": _feed_url(entry.feed_url) if entry.feed_url else None,
        "guid": guid or None,
        "url": url,
        "title": title,
        "summary": summary,
        "body": body,
        "authors": _unique(entry.authors),
        "language": language,
        "categories": _unique(entry.categories),
        "published_at": published_at,
        "updated_at": updated_at,
        "fetched_at": _as_utc(fetched_at),
        "topics": [],
        "topic_hits": [],
        "taxonomy_version": taxonomy_version,
        "references": [{"paragraph": r.paragraph, "sources": list(r.sources)} for r in entry.references]
        if entry.references
        else [],
        "attribution": (clean_inline(entry.attribution, False) or None) if entry.attribution else None,
        "schema_version": SCHEMA_VERSION,
    }
