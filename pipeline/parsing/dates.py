"""Feed dates -> UTC-aware datetimes. Anything unparseable is None, never 'now'."""

from __future__ import annotations

import functools
import re
import time
import warnings
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import Final

MIN_YEAR: Final = 1800
MAX_YEAR: Final = 2999

_NAMED_ZONES_HOURS: Final = {
    "UT": 0, "UTC": 0, "GMT": 0, "Z": 0, "WET": 0,
    "EST": -5, "EDT": -4, "CST": -6, "CDT": -5, "MST": -7, "MDT": -6, "PST": -8, "PDT": -7,
    "AST": -4, "ADT": -3, "AKST": -9, "AKDT": -8, "HST": -10,
    "BST": 1, "CET": 1, "CEST": 2, "MET": 1, "MEST": 2, "WEST": 1, "EET": 2, "EEST": 3,
}  # fmt: skip
# RFC 822 5.1 military zones, with its published signs: A..I = -1..-9, K..M = -10..-12, N..Y = +1..+12.
_MILITARY_HOURS: Final = {
    **{letter: -(i + 1) for i, letter in enumerate("ABCDEFGHI")},
    **{letter: -(i + 10) for i, letter in enumerate("KLM")},
    **{letter: i + 1 for i, letter in enumerate("NOPQRSTUVWXY")},
}
ZONES: Final[dict[str, tzinfo]] = {
    name: timezone(timedelta(hours=hours))
    for name, hours in {**_MILITARY_HOURS, **_NAMED_ZONES_HOURS}.items()
}
_MONTHS: Final = {
    m: i + 1
    for i, m in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
    )
}

_RFC822_RE: Final = re.compile(
    r"""^(?:[a-z]{2,9}\.?,?\s*)?                  # optional day name
    (\d{1,2})[\s-]+([a-z]{3,9})\.?[\s-]+(\d{2}|\d{4}) # day month year
    (?:[\sT]+(\d{1,2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?)?  # time
    \s*(?:([+-])(\d{2}):?(\d{2})|\(?([a-z]{1,5})\)?)?\s*$""",
    re.IGNORECASE | re.VERBOSE,
)


def _in_range(dt: datetime) -> datetime | None:
    try:
        utc = dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)
    except (OverflowError, ValueError):
        return None
    return utc if MIN_YEAR <= utc.year <= MAX_YEAR else None


def _zone(sign: str | None, hh: str | None, mm: str | None, name: str | None) -> tzinfo | None:
    if sign and hh and mm:
        return _offset(sign, hh, mm)
    if name:
        return ZONES.get(name.upper())
    return UTC  # no zone given: UTC, as feedparser assumes


def _offset(sign: str, hh: str, mm: str) -> tzinfo | None:
    hours, mins = int(hh), int(mm)
    if hours > 23 or mins > 59:  # no clock has it (+05:75, +99:99): the date is unusable, not shifted
        return None
    minutes = hours * 60 + mins
    return _offset_zone(-minutes if sign == "-" else minutes)


@functools.cache  # under 2 x 24 x 60 keys
def _offset_zone(minutes: int) -> tzinfo:
    return timezone(timedelta(minutes=minutes))


def _parse_rfc822(text: str) -> datetime | None:
    m = _RFC822_RE.match(text)
    if not m:
        return None
    day, month_name, year_s, hh, mi, ss, sign, zh, zm, zname = m.groups()
    month = _MONTHS.get(month_name[:3].lower())
    tz = _zone(sign, zh, zm, zname)
    if month is None or tz is None:
        return None
    year = int(year_s)
    if len(year_s) == 2:  # RFC 2822 4.3
        year += 2000 if year < 50 else 1900
    try:
        return datetime(year, month, int(day), int(hh or 0), int(mi or 0), int(ss or 0), tzinfo=tz)
    except ValueError:
        return None


# RFC 822 as nearly every feed writes it ("Mon, 01 Sep 2025 05:02:38 +0000"), read without _RFC822_RE's
# case folding and backtracking; _RFC822_RE reads such a text into the same groups.
_CANONICAL_RE: Final = re.compile(
    r"[A-Z][a-z][a-z], ([0-9][0-9]) (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) ([0-9]{4})"
    r" ([0-9][0-9]):([0-9][0-9]):([0-9][0-9]) (?:([+-])([0-9][0-9])([0-9][0-9])|(GMT))\Z"
)
_MONTH_NUMBERS: Final = {month.title(): number for month, number in _MONTHS.items()}


def _parse_canonical(text: str) -> datetime | None:
    """The canonical RFC 822 form, or None (then _parse_rfc822 reads the text, as it would have anyway)."""
    m = _CANONICAL_RE.match(text)
    if m is None:
        return None
    day, month, year, hh, mi, ss, sign, zh, zm, zname = m.groups()
    tz = _offset(sign, zh, zm) if sign else ZONES[zname]
    if tz is None:
        return None
    try:
        return datetime(int(year), _MONTH_NUMBERS[month], int(day), int(hh), int(mi), int(ss), 0, tz)
    except ValueError:
        return None


def _parse_iso(text: str) -> datetime | None:
    if len(text) < 10 or not text[:4].isdigit():
        return None
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        return None
    return None if dt.tzinfo is not None and impossible_offset(text) else dt  # (it reads +05:75 as +06:15)


# Fills fields the text lacks (a missing zone is UTC); year 1 means "no year given".
_DATEUTIL_SENTINEL: Final = datetime(1, 1, 1, tzinfo=UTC)


def _parse_fuzzy(text: str) -> datetime | None:
    if not any(c.isdigit() for c in text):
        return None
    # (imported here: the forms above read nearly every feed date, and dateutil costs ~5 ms to import)
    from dateutil import parser as dateutil_parser  # type: ignore[import-untyped]

    try:
        with warnings.catch_warnings():  # unknown zone names warn; they are read as UTC like a missing zone
            warnings.simplefilter("ignore")
            dt = dateutil_parser.parse(text, default=_DATEUTIL_SENTINEL, tzinfos=ZONES)
    except (ValueError, OverflowError, TypeError, LookupError):
        return None
    return None if dt.year == 1 else dt


# Text -> result, for the last few thousand short texts read: the parser asks whether a feed's date reads
# (to know whether feedparser's reading is needed) and normalizing reads the same text again.
_READ: Final[dict[str, datetime | None]] = {}
_READ_MAX: Final = 4096
_READ_TEXT_MAX: Final = 128  # longer texts are read each time (and never kept)
_UNREAD: Final = object()


def parse_date(value: object) -> datetime | None:
    """RFC 822, ISO 8601 (with offsets or named zones), datetime or feedparser struct_time -> UTC or None."""
    if isinstance(value, str):
        if len(value) > _READ_TEXT_MAX:
            return _parse_text(value)
        result = _READ.get(value, _UNREAD)
        if result is _UNREAD:
            if len(_READ) >= _READ_MAX:
                _READ.clear()
            result = _READ[value] = _parse_text(value)
        return result  # type: ignore[return-value]
    if value is None:
        return None
    if isinstance(value, datetime):
        return _in_range(value)
    if isinstance(value, time.struct_time):  # feedparser's *_parsed values are UTC
        try:
            return _in_range(datetime(*value[:6], tzinfo=UTC))
        except (ValueError, OverflowError):
            return None
    return None


def impossible_offset(text: str) -> bool:
    """Whether a date ends in a UTC offset no clock has (+05:75, +99:99, -2500) right after its time: such a
    date is unusable, where dateutil and feedparser would shift it by the hours and minutes all the same.
    (Slices, not a regex search.)"""
    tail = text.rstrip()
    if len(tail) >= 6 and tail[-6] in "+-" and tail[-3] == ":":
        hours, minutes, before = tail[-5:-3], tail[-2:], tail[:-6]
    elif len(tail) >= 5 and tail[-5] in "+-":
        hours, minutes, before = tail[-4:-2], tail[-2:], tail[:-5]
    else:
        return False
    if not (hours.isdigit() and minutes.isdigit()) or (hours <= "23" and minutes <= "59"):
        return False
    return _ENDS_WITH_TIME.search(before[-24:].rstrip()) is not None  # (not "01-12-1975": a year)


_ENDS_WITH_TIME: Final = re.compile(r"\d:\d\d(?::\d\d(?:[.,]\d+)?)?$")


def _fuzzy(text: str) -> datetime | None:
    """dateutil's reading, for what the patterns above do not read (they refuse an impossible offset
    themselves)."""
    return None if impossible_offset(text) else _parse_fuzzy(text)


def _parse_text(value: str) -> datetime | None:
    text = value.strip()
    if not text or len(text) > 100:
        return None
    if text[:4].isdigit():  # ISO 8601's year first: neither RFC 822 pattern can match (a day is 1-2 digits)
        dt = _parse_iso(text) or _fuzzy(text)
    else:
        dt = _parse_canonical(text) or _parse_rfc822(text) or _parse_iso(text) or _fuzzy(text)
    return _in_range(dt) if dt is not None else None
