"""Feed dates -> UTC-aware datetimes. Anything unparseable is None, never 'now'."""

from __future__ import annotations

import re
import time
import warnings
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import Final

from dateutil import parser as dateutil_parser  # type: ignore[import-untyped]

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
        minutes = int(hh) * 60 + int(mm)
        return (
            timezone(timedelta(minutes=-minutes if sign == "-" else minutes)) if minutes < 24 * 60 else None
        )
    if name:
        return ZONES.get(name.upper())
    return UTC  # no zone given: UTC, as feedparser assumes


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


def _parse_iso(text: str) -> datetime | None:
    if len(text) < 10 or not text[:4].isdigit():
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


# Fills fields the text lacks (a missing zone is UTC); year 1 means "no year given".
_DATEUTIL_SENTINEL: Final = datetime(1, 1, 1, tzinfo=UTC)


def _parse_fuzzy(text: str) -> datetime | None:
    if not any(c.isdigit() for c in text):
        return None
    try:
        with warnings.catch_warnings():  # unknown zone names warn; they are read as UTC like a missing zone
            warnings.simplefilter("ignore")
            dt = dateutil_parser.parse(text, default=_DATEUTIL_SENTINEL, tzinfos=ZONES)
    except (ValueError, OverflowError, TypeError, LookupError):
        return None
    return None if dt.year == 1 else dt


def parse_date(value: object) -> datetime | None:
    """RFC 822, ISO 8601 (with offsets or named zones), datetime or feedparser struct_time -> UTC or None."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return _in_range(value)
    if isinstance(value, time.struct_time):  # feedparser's *_parsed values are UTC
        try:
            return _in_range(datetime(*value[:6], tzinfo=UTC))
        except (ValueError, OverflowError):
            return None
    if not isinstance(value, str):
        return None
    text = value.strip()
    if not text or len(text) > 100:
        return None
    dt = _parse_rfc822(text) or _parse_iso(text) or _parse_fuzzy(text)
    return _in_range(dt) if dt is not None else None
