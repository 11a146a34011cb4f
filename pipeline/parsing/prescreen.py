"""Checks on feed bytes before any XML parser sees them: the entry cap, and author fields cut short.

feedparser looks for an e-mail address in every author-like field (author, dc:creator, managingEditor,
webMaster, publisher, itunes:owner) with a regular expression whose time grows with the square of the longest
run of letters, digits and `_.+-` in it: a 64 KB author field costs 40 s. Real author fields are short, so
each keeps at most AUTHOR_MAX_BYTES bytes of text, and no run longer than AUTHOR_MAX_RUN: the search then
costs at most AUTHOR_MAX_BYTES x AUTHOR_MAX_RUN steps per field, linear in the input.

Documents in UTF-16/32 (not ASCII-compatible) are left as they are; the parse budget bounds them.
"""

from __future__ import annotations

import re
from typing import Final

from pipeline.errors import BadInputError
from pipeline.parsing.text import COMPILED

if COMPILED:  # _nothing_to_cut's walk by hand in C (pipeline/parsing/_accel.c): the same answer
    from pipeline.parsing import _accel

MAX_ENTRIES: Final = 10_000  # items / entries in one feed document
AUTHOR_MAX_BYTES: Final = 256
AUTHOR_MAX_RUN: Final = 64

# an entry's start tag after its '<': an item or entry element, in any namespace
ENTRY_TAG: Final = rb"(?:[A-Za-z_][\w.-]*:)?(?:item|entry)[\s/>]"
_ENTRY_START: Final = re.compile(rb"<" + ENTRY_TAG, re.IGNORECASE)
# an author-like start tag, or a CDATA section or comment to step over (their text is not markup)
# (one leading '<' outside the alternatives: the regex engine then looks for that byte alone)
_AUTHOR_START: Final = re.compile(
    rb"<(?:!\[CDATA\[|!--|"
    rb"((?:[A-Za-z_][\w.-]*+:)?(?:author|creator|managingeditor|webmaster|publisher|owner))(?=[\s/>])[^<>]*>)",
    re.IGNORECASE,
)
_TAG: Final = re.compile(rb"<[^<>]*>")
_END_TAG: Final = re.compile(rb"</\s*([^<>\s]+)\s*>")
# an entry or feed boundary ends an author field that was never closed (a malformed document)
_BOUNDARY: Final = re.compile(rb"</?(?:[A-Za-z_][\w.-]*:)?(?:item|entry|channel|feed)[\s/>]", re.IGNORECASE)
_LONG_RUN: Final = re.compile(rb"[A-Za-z0-9_.+\-]{%d}" % (AUTHOR_MAX_RUN + 1))
# an author field's content that the cut keeps as it is: short text, or one short CDATA section, then an
# end tag (as _END_TAG reads it)
_SHORT_CONTENT: Final = re.compile(
    rb"(?:<!\[CDATA\[(?P<cdata>[^<\]]{0,%d})\]\]>|(?P<text>[^<]{0,%d}))</\s*(?P<name>[^<>\s]+)\s*>"
    % (AUTHOR_MAX_BYTES, AUTHOR_MAX_BYTES)
)
_CDATA_OPEN: Final = b"<![CDATA["
_CDATA_CLOSE: Final = b"]]>"


def prescreen_xml(data: bytes) -> tuple[bytes, list[str]]:
    """(bytes to parse, problems). BadInputError('too_many_entries') above MAX_ENTRIES entries."""
    # every entry start tag begins with a '<': counting those (in C) settles most inputs
    entries = _accel.count_byte(data, 0x3C) if COMPILED else data.count(b"<")
    if entries > MAX_ENTRIES:
        entries = len(_ENTRY_START.findall(data))
    if entries > MAX_ENTRIES:
        raise BadInputError(
            "too_many_entries",
            f"input has {entries} items/entries (limit {MAX_ENTRIES})",
            entries=entries,
            limit=MAX_ENTRIES,
        )
    if not _ascii_compatible(data):
        return data, []
    data, cut = _cut_author_fields(data)
    problems = [f"{cut} author field(s) cut to {AUTHOR_MAX_BYTES} bytes before parsing"] if cut else []
    return data, problems


def check_entry_count(count: int) -> None:
    """The same cap for formats counted after decoding (JSON Feed)."""
    if count > MAX_ENTRIES:
        raise BadInputError(
            "too_many_entries",
            f"input has {count} items (limit {MAX_ENTRIES})",
            entries=count,
            limit=MAX_ENTRIES,
        )


def _ascii_compatible(data: bytes) -> bool:
    head = data[:4096]
    return b"\x00" not in head and not head.startswith((b"\xff\xfe", b"\xfe\xff"))


def _cut_author_fields(data: bytes) -> tuple[bytes, int]:
    nothing = _accel.nothing_to_cut(data) if COMPILED else _nothing_to_cut(data)
    return (data, 0) if nothing else _cut_every_author_field(data)


def _cut_every_author_field(data: bytes) -> tuple[bytes, int]:
    out = bytearray()
    pos = cut = 0
    while (start := _AUTHOR_START.search(data, pos)) is not None:
        if start.group(1) is None:  # CDATA or comment: copied as it is
            close = _CDATA_CLOSE if start.group(0).startswith(b"<![") else b"-->"
            end = data.find(close, start.end())
            end = len(data) if end < 0 else end + len(close)
            out += data[pos:end]
            pos = end
            continue
        out += data[pos : start.end()]
        pos = start.end()
        if start.group(0).endswith(b"/>"):
            continue
        content, pos, was_cut = _cut_content(data, pos, start.group(1).lower())
        out += content
        cut += was_cut
    if not cut:
        return data, 0
    out += data[pos:]
    return bytes(out), cut


def _nothing_to_cut(data: bytes) -> bool:
    """True when every author field the cut would look at holds only text or one CDATA section within the
    limits, then its end tag: the cut would change nothing. The same walk as the cut's, building nothing."""
    pos = 0
    while (start := _AUTHOR_START.search(data, pos)) is not None:
        if start.group(1) is None:  # CDATA or comment
            close = _CDATA_CLOSE if start.group(0).startswith(b"<![") else b"-->"
            end = data.find(close, start.end())
            if end < 0:
                return True
            pos = end + len(close)
            continue
        pos = start.end()
        if start.group(0).endswith(b"/>"):
            continue
        content = _SHORT_CONTENT.match(data, pos)
        if (
            content is None
            or content.group("name").lower() != start.group(1).lower()
            or _LONG_RUN.search(data, *content.span("cdata" if content["cdata"] is not None else "text"))
        ):
            return False
        pos = content.end()
    return True


def _cut_content(data: bytes, pos: int, name: bytes) -> tuple[bytes, int, bool]:
    """The element's content from `pos` up to its end tag, its text kept within the limits; every byte is
    looked at once. Returns (content, position of the end tag, whether anything was cut)."""
    out = bytearray()
    room = AUTHOR_MAX_BYTES
    cut = False
    while pos < len(data):
        if data.startswith(_CDATA_OPEN, pos):
            end = data.find(_CDATA_CLOSE, pos)
            end = len(data) if end < 0 else end
            text = data[pos + len(_CDATA_OPEN) : end]
            kept = _keep(text, room, entities=False)
            out += _CDATA_OPEN + kept + _CDATA_CLOSE
            pos = end + len(_CDATA_CLOSE)
        elif data.startswith(b"<", pos):
            end_tag = _END_TAG.match(data, pos)
            if (end_tag is not None and end_tag.group(1).lower() == name) or _BOUNDARY.match(data, pos):
                break
            tag = _TAG.match(data, pos)
            if tag is None:  # a stray '<': let the parser judge the rest
                break
            out += tag.group(0)
            pos = tag.end()
            continue
        else:
            end = data.find(b"<", pos)
            end = len(data) if end < 0 else end
            text = data[pos:end]
            kept = _keep(text, room, entities=True)
            out += kept
            pos = end
        cut = cut or len(kept) < len(text)
        room -= len(kept)
    return bytes(out), pos, cut


def _keep(text: bytes, room: int, *, entities: bool) -> bytes:
    """The head of `text` within `room` bytes and without a run over AUTHOR_MAX_RUN, cut where a character
    or an entity does not break."""
    limit = min(len(text), max(room, 0))
    run = _LONG_RUN.search(text, 0, limit + 1)
    if run is not None:
        limit = min(limit, run.start() + AUTHOR_MAX_RUN)
    if limit >= len(text):
        return text
    for _ in range(3):  # do not end inside a UTF-8 sequence
        if limit and (text[limit] & 0xC0) == 0x80:
            limit -= 1
    if entities:
        amp = text.rfind(b"&", 0, limit)
        if amp >= 0 and b";" not in text[amp:limit]:
            limit = amp
    return text[:limit]
