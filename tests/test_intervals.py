from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from pipeline.errors import ConfigError
from pipeline.jobs.intervals import Interval, day_range


def test_daily_interval_is_half_open_utc_day() -> None:
    iv = Interval.for_date("2025-09-14")
    assert iv.start == datetime(2025, 9, 14, tzinfo=UTC)
    assert iv.end - iv.start == timedelta(days=1)
    assert iv.label == "2025-09-14"
    assert iv.days() == [date(2025, 9, 14)]


def test_offsets_are_normalized_and_labels_stay_file_safe() -> None:
    plus2 = timezone(timedelta(hours=2))
    iv = Interval(datetime(2025, 9, 14, 2, tzinfo=plus2), datetime(2025, 9, 14, 8, tzinfo=plus2), "backfill")
    assert iv.start.tzinfo is UTC
    assert iv.label == "20250914T000000Z_20250914T060000Z"


def test_bad_intervals_are_config_errors() -> None:
    with pytest.raises(ConfigError):
        Interval.for_date("14/09/2025")
    with pytest.raises(ConfigError):
        Interval(datetime(2025, 1, 2, tzinfo=UTC), datetime(2025, 1, 1, tzinfo=UTC))
    with pytest.raises(ConfigError):
        Interval(datetime(2025, 1, 1), datetime(2025, 1, 2))  # naive
    with pytest.raises(ConfigError):
        Interval.for_date("2025-01-01", job="hourly")
    with pytest.raises(ConfigError):
        day_range("2025-01-03", "2025-01-01")
    assert len(day_range("2024-12-30", "2025-01-02")) == 4


def test_the_last_representable_day_is_a_config_error_not_an_overflow():
    with pytest.raises(ConfigError, match="out of range"):
        Interval.for_date("9999-12-31")
    assert Interval.for_date("9999-12-30").days()[-1].isoformat() == "9999-12-30"
