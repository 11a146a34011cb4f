"""Data intervals: the half-open UTC span [start, end) that one run of a job owns."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from pipeline.errors import ConfigError

JOBS = ("daily", "backfill")


@dataclass(frozen=True)
class Interval:
    start: datetime
    end: datetime
    job: str = "daily"

    def __post_init__(self) -> None:
        for name in ("start", "end"):
            value = getattr(self, name)
            if value.tzinfo is None:
                raise ConfigError(f"interval {name} must be timezone-aware", field=name)
            object.__setattr__(self, name, value.astimezone(UTC))
        if self.end <= self.start:
            raise ConfigError("interval end must be after start", start=str(self.start), end=str(self.end))
        if self.job not in JOBS:
            raise ConfigError(f"unknown job {self.job!r}", field="job", allowed=list(JOBS))

    @classmethod
    def for_date(cls, day: date | str, job: str = "daily") -> Interval:
        """The one-day interval [day 00:00 UTC, day+1 00:00 UTC)."""
        d = parse_day(day) if isinstance(day, str) else day
        if d == date.max:  # its interval would end in year 10000, which datetime cannot hold
            raise ConfigError(
                f"{d} is out of range: the last day with an interval is 9999-12-30", value=str(d)
            )
        start = datetime(d.year, d.month, d.day, tzinfo=UTC)
        return cls(start, start + timedelta(days=1), job)

    @property
    def label(self) -> str:
        """File-name-safe name: '2026-11-25' for a whole UTC day, else start_end in compact ISO form."""
        if self.end - self.start == timedelta(days=1) and self.start.time() == datetime.min.time():
            return self.start.date().isoformat()
        fmt = "%Y%m%dT%H%M%SZ"
        return f"{self.start.strftime(fmt)}_{self.end.strftime(fmt)}"

    def days(self) -> list[date]:
        first, last = self.start.date(), (self.end - timedelta(microseconds=1)).date()
        return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def parse_day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"not a date (YYYY-MM-DD): {text!r}", value=text) from None


def day_range(first: date | str, last: date | str) -> list[date]:
    a = parse_day(first) if isinstance(first, str) else first
    b = parse_day(last) if isinstance(last, str) else last
    if b < a:
        raise ConfigError("date range ends before it starts", start=str(a), end=str(b))
    return [a + timedelta(days=i) for i in range((b - a).days + 1)]
