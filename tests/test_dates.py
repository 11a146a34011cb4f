import time
from datetime import UTC, datetime, timedelta, timezone

import pytest

from pipeline.parsing.dates import impossible_offset, parse_date


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Thu, 01 Jan 2004 19:48:21 GMT", utc(2004, 1, 1, 19, 48, 21)),
        ("Thu, 01 Jan 2004 19:48:21 +0000", utc(2004, 1, 1, 19, 48, 21)),
        ("Thu, 01 Jan 2004 19:48:21 -0500", utc(2004, 1, 2, 0, 48, 21)),
        ("Sun, 12 Mar 2023 10:00:00 +0530", utc(2023, 3, 12, 4, 30)),
        ("01 Jan 04 19:48 PDT", utc(2004, 1, 2, 2, 48)),
        ("Thu, 1 January 2004 19:48:21 UT", utc(2004, 1, 1, 19, 48, 21)),
        ("Wed, 31 Dec 2003 23:59 -0800", utc(2004, 1, 1, 7, 59)),
        ("2003-12-31T10:14:55Z", utc(2003, 12, 31, 10, 14, 55)),
        ("2003-12-31T10:14:55.123+01:00", utc(2003, 12, 31, 9, 14, 55, 123000)),
        ("2003-12-31T10:14:55-08:00", utc(2003, 12, 31, 18, 14, 55)),
        ("2003-12-31", utc(2003, 12, 31)),
        ("2003-12-31T10:14", utc(2003, 12, 31, 10, 14)),
        ("2003-12-31T10:14:55 CEST", utc(2003, 12, 31, 8, 14, 55)),
        ("December 31, 2003 10:14 PM EST", utc(2004, 1, 1, 3, 14)),
    ],
)
def test_formats_and_offsets(text, expected):
    got = parse_date(text)
    assert got == expected
    assert got.tzinfo is UTC


@pytest.mark.parametrize(
    ("zone", "hours"),
    [("EST", -5), ("EDT", -4), ("CST", -6), ("CDT", -5), ("MST", -7), ("MDT", -6), ("PST", -8), ("PDT", -7),
     ("GMT", 0), ("UT", 0), ("UTC", 0), ("Z", 0), ("BST", 1), ("CET", 1), ("CEST", 2),
     ("A", -1), ("I", -9), ("K", -10), ("M", -12), ("N", 1), ("Y", 12)],
)  # fmt: skip
def test_named_and_military_zones(zone, hours):
    got = parse_date(f"Fri, 06 Sep 2024 12:00:00 {zone}")
    assert got == datetime(2024, 9, 6, 12, tzinfo=timezone(timedelta(hours=hours)))


@pytest.mark.parametrize(
    "text",
    ["", "   ", "garbage", "10:00", "Monday", "Thu, 01 Foo 2004 19:48:21 GMT", "2004-02-30",
     "Thu, 32 Jan 2004 19:48:21 GMT", "Thu, 01 Jan 2004 19:48:21 +9999", "0001-01-01T00:00:00Z", "x" * 500],
)  # fmt: skip
def test_garbage_is_none_never_now(text):
    assert parse_date(text) is None


def test_missing_zone_is_utc():
    assert parse_date("Thu, 01 Jan 2004 19:48:21") == utc(2004, 1, 1, 19, 48, 21)


def test_struct_time_from_feedparser_is_utc():
    assert parse_date(time.struct_time((2004, 1, 1, 19, 48, 21, 3, 1, 0))) == utc(2004, 1, 1, 19, 48, 21)


def test_datetimes_and_other_types():
    naive = datetime(2024, 1, 1, 12)
    assert parse_date(naive) == utc(2024, 1, 1, 12)
    aware = datetime(2024, 1, 1, 12, tzinfo=timezone(timedelta(hours=2)))
    assert parse_date(aware) == utc(2024, 1, 1, 10)
    assert parse_date(None) is None
    assert parse_date(12345) is None


@pytest.mark.parametrize(
    "text",
    [
        "Mon, 01 Sep 2025 05:02:38 +0000",
        "Tue, 02 Sep 2025 23:59:59 -0430",
        "Wed, 31 Dec 1999 12:00:00 GMT",
        "Thu, 29 Feb 2024 00:00:00 +1400",
        "Fri, 29 Feb 2023 00:00:00 +0000",  # no such day: both readings give up on RFC 822
        "Sat, 01 Sep 2025 24:00:00 +0000",
        "Sun, 01 Sep 2025 05:02:60 +0000",
        "Mon, 01 Sep 2025 05:02:38 +2400",  # an offset of a day or more
        "Mon, 01 Sep 2025 05:02:38 +9999",
        "Mon, 01 Sep 1799 05:02:38 +0000",  # out of range
        "Mon, 01 Sep 3000 05:02:38 -0100",
    ],
)
def test_the_canonical_rfc822_reading_equals_the_general_one(text):
    from pipeline.parsing import dates

    general = dates._parse_rfc822(text)
    assert dates._parse_canonical(text) == general
    if general is not None:
        assert dates._parse_canonical(text).tzinfo == general.tzinfo  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "text",
    ["mon, 01 sep 2025 05:02:38 +0000", "Mon, 1 Sep 2025 05:02:38 +0000", "Mon, 01 Sep 25 05:02:38 +0000",
     "Mon, 01 Sep 2025 05:02 +0000", "Mon, 01 Sep 2025 05:02:38 EST", "Mon, 01 Sep 2025 05:02:38 +00:00",
     "Mon, 01 Sep 2025 05:02:38", "Mon, ٠١ Sep 2025 05:02:38 +0000"],
)  # fmt: skip
def test_other_rfc822_shapes_are_left_to_the_general_reading(text):
    from pipeline.parsing import dates

    assert dates._parse_canonical(text) is None
    assert parse_date(text) == dates._in_range(dates._parse_rfc822(text.strip()))  # type: ignore[arg-type]


def test_texts_read_again_give_the_same_answer_and_the_memory_stays_bounded():
    from pipeline.parsing import dates

    texts = [
        f"2025-09-{1 + i % 28:02d}T{i % 24:02d}:{i % 60:02d}:00+00:00" for i in range(3 * dates._READ_MAX)
    ]
    first = [parse_date(t) for t in texts]
    assert len(dates._READ) <= dates._READ_MAX
    assert [parse_date(t) for t in texts] == first == [dates._parse_text(t) for t in texts]
    long_text = " " * 200 + "Mon, 01 Sep 2025 05:02:38 +0000"
    expected = datetime(2025, 9, 1, 5, 2, 38, tzinfo=UTC)
    assert parse_date(long_text) == expected and long_text not in dates._READ  # read, never kept
    assert parse_date(" Mon, 01 Sep 2025 05:02:38 +0000 ") == expected


@pytest.mark.parametrize(
    "text",
    ["2025-09-01T23:16:00Z", "2025-09-01", "2025 09 01", "2025-9-1 5:02", "1999 Sep 01 12:00", "2025-13-01",
     "20250901T101010Z", "0001-01-01", "١٢٣٤-01-01", "12345 Mon", "2025-09-01T05:02:38 EST", "2025",
     "2025-", "2025-09-01T25:00:00Z", "99 Sep 2025 10:00 GMT", "2025-09-01T05:02:38+24:00"],
)  # fmt: skip
def test_a_year_first_text_skips_the_rfc822_readings_with_the_same_answer(text):
    """A text that starts with four digits goes straight to ISO 8601 (then dateutil): both RFC 822 patterns
    need a day of one or two digits followed by a space or '-' there, so neither could have matched."""
    from pipeline.parsing import dates

    assert dates._parse_canonical(text) is None and dates._parse_rfc822(text) is None
    general = dates._parse_iso(text) or dates._parse_fuzzy(text)
    assert dates._parse_text(text) == (dates._in_range(general) if general is not None else None)


@pytest.mark.parametrize(
    "text",
    [
        "2026-11-20T12:00:00+99:99",
        "2026-11-20T12:00:00+05:75",
        "Fri, 20 Nov 2026 12:00:00 -2500",
        "2026-11-20 12:00 +2400",
    ],
)
def test_an_offset_no_clock_has_makes_the_date_unusable(text: str) -> None:
    """+99:99 was read as 99 hours and 99 minutes (a red-team feed, 4 Dec: the story landed 4 days early);
    dateutil and feedparser's reading did the same."""
    assert impossible_offset(text) and parse_date(text) is None


def test_a_year_after_a_dash_is_not_an_offset() -> None:
    assert not impossible_offset("01-12-1975") and parse_date("01-12-1975") is not None
    assert parse_date("2026-11-20T12:00:00.5+05:30") == datetime(2026, 11, 20, 6, 30, 0, 500000, tzinfo=UTC)
