"""`committed_objects`: exactly the files the manifests name, whatever else lies under stories/."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from pipeline.errors import RetriableError
from pipeline.jobs.intervals import Interval
from pipeline.lake.files import committed_objects
from pipeline.lake.landing import land
from pipeline.lake.store import LocalLake
from pipeline.lake.validate import validate
from tests.test_landing import RecordingLake, story

DAY1, DAY2 = Interval.for_date("2026-11-24"), Interval.for_date("2026-11-25")


def test_files_are_listed_by_partition_day_with_their_manifest(tmp_path: Path) -> None:
    lake = LocalLake(tmp_path)
    land(lake, DAY1, [story(1, day=23), story(2, day=24)])
    land(lake, DAY2, [story(3, day=24), story(4, day=25)])
    listed = committed_objects(lake)
    assert [(o.dt, o.key, o.rows) for o in listed] == [
        ("2026-11-23", "stories/dt=2026-11-23/daily-2026-11-24.parquet", 1),
        ("2026-11-24", "stories/dt=2026-11-24/daily-2026-11-24.parquet", 1),
        ("2026-11-24", "stories/dt=2026-11-24/daily-2026-11-25.parquet", 1),
        ("2026-11-25", "stories/dt=2026-11-25/daily-2026-11-25.parquet", 1),
    ]
    assert [o.manifest for o in listed][-1] == "_manifests/daily/2026-11-25.json"
    in_range = committed_objects(lake, date(2026, 11, 24), date(2026, 11, 24))
    assert [o.dt for o in in_range] == ["2026-11-24", "2026-11-24"]  # --to is inclusive


def test_the_leftovers_of_a_crashed_landing_are_never_listed_and_go_with_the_next_landing(
    tmp_path: Path,
) -> None:
    land(LocalLake(tmp_path), DAY1, [story(1, day=24)])
    crashing = RecordingLake(tmp_path, fail_story_put=2)
    with pytest.raises(RetriableError):
        land(crashing, DAY2, [story(2, day=24), story(3, day=25)])
    lake = LocalLake(tmp_path)
    assert [o.key for o in lake.list("stories/")] == [
        "stories/dt=2026-11-24/daily-2026-11-24.parquet",
        "stories/dt=2026-11-24/daily-2026-11-25.parquet",  # written before the crash, named by no manifest
    ]
    assert [o.key for o in committed_objects(lake)] == ["stories/dt=2026-11-24/daily-2026-11-24.parquet"]
    assert [v.kind for v in validate(lake).violations] == ["orphan_object"]
    land(lake, DAY2, [story(2, day=24), story(3, day=25)])  # the retry
    assert {o.key for o in lake.list("stories/")} == {o.key for o in committed_objects(lake)}
    assert validate(lake).ok
