"""Compaction: one file per partition day, the same story versions each once, manifest-driven and safe to
interrupt at any write (a crash is simulated at every put/delete in turn, then the compaction is rerun)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from pipeline.cli import main
from pipeline.errors import FatalError
from pipeline.jobs.intervals import Interval
from pipeline.lake.compact import compact
from pipeline.lake.files import committed_objects
from pipeline.lake.landing import land, landed_versions, read_manifest
from pipeline.lake.parquet import parquet_bytes, read_stories, read_table, to_table
from pipeline.lake.store import LocalLake, ObjectInfo
from pipeline.lake.validate import validate
from tests.test_landing import story


class Crash(BaseException):
    """The process dies: nothing in the pipeline catches a BaseException that is not an Exception."""


class CrashingLake(LocalLake):
    """A LocalLake that dies at its n-th write (put or delete); n=None never."""

    def __init__(self, root: Path, crash_at: int | None = None) -> None:
        super().__init__(root)
        self.crash_at, self.writes = crash_at, 0

    def _tick(self) -> None:
        self.writes += 1
        if self.writes == self.crash_at:
            raise Crash(f"crash at write {self.writes}")

    def put(self, key: str, data: bytes, content_type: str | None = None) -> ObjectInfo:
        self._tick()
        return super().put(key, data, content_type)

    def delete(self, key: str) -> None:
        self._tick()
        super().delete(key)


def small_files_lake(root: Path) -> LocalLake:
    """Three days of landings whose stories spread over dt 2026-11-23..25, with late and edited stories:
    dt=2026-11-24 and dt=2026-11-25 get three and two files."""
    lake = LocalLake(root)
    land(lake, Interval.for_date("2026-11-24"), [story(1, day=23), story(2, day=24), story(3, day=24)])
    edited = story(2, "v2", day=24)  # an edited version: same story_id, new content_hash
    land(
        lake, Interval.for_date("2026-11-25"), [story(4, day=24), edited, story(5, day=25), story(6, day=25)]
    )
    land(lake, Interval.for_date("2026-11-25", "backfill"), [story(7, day=24), story(8, day=25)])
    return lake


def committed_versions(lake: LocalLake) -> Counter[tuple[str, str]]:
    """Every story version in the committed files, counted (what a reader of `wirefeed files` gets)."""
    versions: Counter[tuple[str, str]] = Counter()
    for obj in committed_objects(lake):
        for s in read_stories(lake.get(obj.key)):
            versions[(s["story_id"], s["content_hash"])] += 1
    return versions


def files_per_day(lake: LocalLake) -> dict[str, int]:
    return dict(Counter(o.dt for o in committed_objects(lake)))


def test_compact_rewrites_each_day_into_one_file_with_the_same_versions(tmp_path: Path) -> None:
    lake = small_files_lake(tmp_path)
    before = committed_versions(lake)
    assert files_per_day(lake) == {"2026-11-23": 1, "2026-11-24": 3, "2026-11-25": 2}

    report = compact(lake, "2026-11-23", "2026-11-25")

    assert [(d["dt"], d["files"], d["rows"]) for d in report.days] == [
        ("2026-11-24", 3, 5),
        ("2026-11-25", 2, 3),
    ]
    assert report.unchanged == 1
    assert committed_versions(lake) == before and set(before.values()) == {1}
    assert files_per_day(lake) == {"2026-11-23": 1, "2026-11-24": 1, "2026-11-25": 1}
    assert {o.key for o in lake.list("stories/")} == {o.key for o in committed_objects(lake)}  # no leftovers
    assert landed_versions(lake) == set(
        before
    )  # what landing dedupes against (and any key index) is unchanged
    assert validate(lake).ok, validate(lake).violations
    # the compacted file is sorted by publication time; the manifests say where their files went
    (day24,) = [o for o in committed_objects(lake) if o.dt == "2026-11-24"]
    times = read_table(lake.get(day24.key), columns=["published_at"]).column(0).to_pylist()
    assert times == sorted(times) and day24.manifest == "_manifests/compact/2026-11-24.json"
    daily = json.loads(lake.get("_manifests/daily/2026-11-25.json"))
    assert [o["dt"] for o in daily["objects"]] == [] and len(daily["compacted"]) == 2
    assert {c["into"] for c in daily["compacted"]} == {
        "_manifests/compact/2026-11-24.json",
        "_manifests/compact/2026-11-25.json",
    }


def test_compacting_again_is_a_no_op_and_a_later_late_story_is_folded_in(tmp_path: Path) -> None:
    lake = small_files_lake(tmp_path)
    compact(lake, "2026-11-23", "2026-11-25")
    again = compact(lake, "2026-11-23", "2026-11-25")
    assert again.days == [] and again.unchanged == 3
    land(lake, Interval.for_date("2026-11-27"), [story(9, day=24)])  # late: dt=2026-11-24 opens again
    assert files_per_day(lake)["2026-11-24"] == 2
    report = compact(lake, "2026-11-24", "2026-11-24")
    assert [(d["dt"], d["files"], d["rows"]) for d in report.days] == [("2026-11-24", 2, 6)]
    assert files_per_day(lake)["2026-11-24"] == 1 and validate(lake).ok
    assert set(committed_versions(lake).values()) == {1} and sum(committed_versions(lake).values()) == 10


def test_a_landing_rerun_after_compaction_stays_exactly_once(tmp_path: Path) -> None:
    lake = small_files_lake(tmp_path)
    compact(lake, "2026-11-23", "2026-11-25")
    m = land(lake, Interval.for_date("2026-11-24"), [story(1, day=23), story(2, day=24), story(10, day=24)])
    # story 2 is now in the compacted file (another manifest): a duplicate; story 1's file (dt=2026-11-23,
    # alone in its day) is still the interval's own, so it counts as landed by this interval again
    assert (m.counts["duplicate"], m.counts["new"]) == (1, 2)
    assert set(committed_versions(lake).values()) == {1} and validate(lake).ok


def write_count(root: Path, first: str, last: str) -> int:
    counter = CrashingLake(root)
    compact(counter, first, last)
    return counter.writes


@pytest.mark.parametrize("second_generation", [False, True], ids=["first", "recompact"])
def test_a_crash_at_any_write_loses_and_duplicates_nothing_and_a_rerun_finishes(
    tmp_path: Path, second_generation: bool
) -> None:
    def prepared(root: Path) -> LocalLake:
        lake = small_files_lake(root)
        if second_generation:  # the crash hits a compaction that replaces an earlier compacted file
            compact(lake, "2026-11-23", "2026-11-25")
            land(lake, Interval.for_date("2026-11-27"), [story(9, day=24), story(11, day=25)])
        return lake

    expected = committed_versions(prepared(tmp_path / "reference"))
    writes = write_count(tmp_path / "reference", "2026-11-23", "2026-11-25")
    assert writes >= 8
    kinds_seen: set[str] = set()
    for n in range(1, writes + 1):
        root = tmp_path / f"crash-{n}"
        prepared(root)
        with pytest.raises(Crash):
            compact(CrashingLake(root, crash_at=n), "2026-11-23", "2026-11-25")
        lake = LocalLake(root)
        # mid-crash, readers of the manifests see every version exactly once
        assert committed_versions(lake) == expected, f"crash at write {n}"
        kinds_seen |= {v.kind for v in validate(lake).violations}
        compact(lake, "2026-11-23", "2026-11-25")
        assert committed_versions(lake) == expected, f"rerun after a crash at write {n}"
        assert files_per_day(lake) == {"2026-11-23": 1, "2026-11-24": 1, "2026-11-25": 1}
        assert {o.key for o in lake.list("stories/")} == {o.key for o in committed_objects(lake)}
        assert validate(lake).ok, (n, validate(lake).violations)
    # validate reported the interrupted states until the rerun: an unnamed compacted file, then a pending one
    assert kinds_seen == {"orphan_object", "compaction_pending"}  # never a duplicate or a missing object


def test_compaction_refuses_a_day_whose_files_changed_since_their_manifest(tmp_path: Path) -> None:
    lake = small_files_lake(tmp_path)
    (victim,) = [
        o for o in committed_objects(lake) if o.key.endswith("dt=2026-11-25/daily-2026-11-25.parquet")
    ]
    lake.put(victim.key, parquet_bytes(to_table([story(5, day=25)])))
    with pytest.raises(FatalError, match="differs from its manifest"):
        compact(lake, "2026-11-25", "2026-11-25")
    assert not lake.list("_manifests/compact/")


def test_cli_compact_and_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lake = small_files_lake(tmp_path)
    assert main(["files", "--lake", str(lake.root), "--from", "2026-11-24", "--to", "2026-11-24"]) == 0
    listed = capsys.readouterr().out.split()
    assert len(listed) == 3 and all(u.startswith(str(lake.root)) and "dt=2026-11-24" in u for u in listed)

    argv = ["compact", "--lake", str(lake.root), "--from", "2026-11-23", "--to", "2026-11-25"]
    assert main([*argv, "--json"]) == 0
    out = capsys.readouterr()
    doc = json.loads(out.out)
    assert [d["dt"] for d in doc["days"]] == ["2026-11-24", "2026-11-25"] and doc["validation"]["ok"]
    assert "dt=2026-11-24: 3 files, 5 rows" in out.err

    assert main(["files", "--lake", str(lake.root), "--format", "json"]) == 0
    files = json.loads(capsys.readouterr().out)
    assert [f["dt"] for f in files] == ["2026-11-23", "2026-11-24", "2026-11-25"]
    assert sum(f["rows"] for f in files) == 9
    assert set(files[0]) == {"uri", "key", "dt", "rows", "size", "sha256", "manifest"}
    assert read_manifest(lake, files[1]["manifest"]).job == "compact"
