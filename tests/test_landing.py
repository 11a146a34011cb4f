import json
import random
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from pipeline.errors import FatalError, RetriableError
from pipeline.jobs.intervals import Interval
from pipeline.lake.landing import (
    COUNT_KEYS,
    Manifest,
    _choose,
    land,
    land_staged,
    landed_versions,
    read_manifest,
    story_day,
)
from pipeline.lake.parquet import parquet_bytes, read_stories, to_table
from pipeline.lake.store import LocalLake, ObjectInfo
from pipeline.lake.validate import validate
from tests.test_schema import make_story

DAY1 = Interval.for_date("2026-11-24")
DAY2 = Interval.for_date("2026-11-25")


def story(n: int, version: str = "v1", day: int = 24, **overrides: Any) -> dict[str, Any]:
    """Story n, published on 2026-11-<day>; `version` stands in for the content hash."""
    fields: dict[str, Any] = {
        "story_id": f"id-{n:03d}",
        "content_hash": f"{version}-{n:03d}",
        "title": f"Story {n} {version}",
        "published_at": datetime(2026, 11, day, 9, n % 60, tzinfo=UTC),
        "fetched_at": datetime(2026, 11, 25, 6, tzinfo=UTC),
    }
    return make_story(**{**fields, **overrides})


class RecordingLake(LocalLake):
    """A LocalLake that records writes/deletes and can fail the n-th story put (as a dying store would)."""

    def __init__(self, root: Path, fail_story_put: int | None = None) -> None:
        super().__init__(root)
        self.ops: list[tuple[str, str]] = []
        self.fail_story_put = fail_story_put
        self.story_puts = 0

    def put(self, key: str, data: bytes, content_type: str | None = None) -> ObjectInfo:
        if key.startswith("stories/"):
            self.story_puts += 1
            if self.story_puts == self.fail_story_put:
                raise RetriableError(f"put {key}: object store unreachable", key=key)
        self.ops.append(("put", key))
        return super().put(key, data, content_type)

    def delete(self, key: str) -> None:
        self.ops.append(("delete", key))
        super().delete(key)


def all_rows(lake: LocalLake) -> list[dict[str, Any]]:
    rows = []
    for info in lake.list("_manifests/"):
        for obj in read_manifest(lake, info.key).objects:
            rows.extend(read_stories(lake.get(obj["key"])))
    return rows


def test_land_writes_partitioned_stories_then_the_manifest_last(tmp_path: Path) -> None:
    lake = RecordingLake(tmp_path)
    stories = [story(1, day=23), story(2, day=24), story(3, day=24)]
    m = land(lake, DAY1, stories, feeds=[{"feed_id": "f1", "status": "ok"}], run_id="r1")

    assert [o["key"] for o in m.objects] == [
        "stories/dt=2026-11-23/daily-2026-11-24.parquet",
        "stories/dt=2026-11-24/daily-2026-11-24.parquet",
    ]
    assert [o["rows"] for o in m.objects] == [1, 2]
    assert m.counts == {"input": 3, "new": 3, "duplicate": 0, "batch_duplicate": 0, "updated": 0, "kept": 0}
    assert m.topics == {"tiktok": 3}
    assert m.feeds == [{"feed_id": "f1", "status": "ok"}]
    data_ops = [op for op in lake.ops if not op[1].startswith("_state/")]  # key index bookkeeping aside
    assert data_ops[-1] == ("put", "_manifests/daily/2026-11-24.json")
    assert read_manifest(lake, "_manifests/daily/2026-11-24.json") == m
    assert sorted(s["story_id"] for s in all_rows(lake)) == ["id-001", "id-002", "id-003"]
    report = validate(lake)
    assert report.ok, report.violations
    assert (report.manifests, report.objects, report.rows) == (1, 2, 3)


def test_partition_falls_back_to_fetched_at() -> None:
    assert story_day(story(1, published_at=None)).isoformat() == "2026-11-25"
    assert story_day(story(1, day=20)).isoformat() == "2026-11-20"


def test_batch_duplicates_land_once(tmp_path: Path) -> None:
    lake = LocalLake(tmp_path)
    m = land(lake, DAY1, [story(1), story(2), story(1), story(1)])
    assert m.counts == {"input": 4, "new": 2, "duplicate": 0, "batch_duplicate": 2, "updated": 0, "kept": 0}
    assert m.rows == 2


def test_rerun_of_the_same_interval_replaces_and_does_not_duplicate(tmp_path: Path) -> None:
    lake = LocalLake(tmp_path)
    first = land(lake, DAY1, [story(1), story(2, day=23)])
    keys_before = [o.key for o in lake.list()]
    again = land(lake, DAY1, [story(1), story(2, day=23)])
    assert [o.key for o in lake.list()] == keys_before
    assert again.counts == first.counts
    assert [o["sha256"] for o in again.objects] == [o["sha256"] for o in first.objects]
    assert len(all_rows(lake)) == 2
    assert validate(lake).ok


def test_an_edit_picked_up_by_a_rerun_of_the_interval_is_counted_updated(tmp_path: Path) -> None:
    """A same-day rerun that finds story 1 edited counted it `new` (+ the old version `kept`), where the next
    day's run counts `updated` (a red-team server, 4 Dec). Both versions land once, as before."""
    lake = LocalLake(tmp_path)
    land(lake, DAY1, [story(1), story(2)])
    m = land(lake, DAY1, [story(1, "v2"), story(2)])
    assert m.counts == {"input": 2, "new": 1, "duplicate": 0, "batch_duplicate": 0, "updated": 1, "kept": 1}
    assert len(all_rows(lake)) == 3 and validate(lake).ok


def test_a_rerun_with_fewer_stories_keeps_what_the_earlier_attempt_landed(tmp_path: Path) -> None:
    lake = LocalLake(tmp_path)
    land(lake, DAY1, [story(1, day=23), story(2, day=24)])
    m = land(lake, DAY1, [story(2, day=24)])  # the feed rotated story 1 out
    assert m.counts == {"input": 1, "new": 1, "duplicate": 0, "batch_duplicate": 0, "updated": 0, "kept": 1}
    assert [o["key"] for o in m.objects] == [
        "stories/dt=2026-11-23/daily-2026-11-24.parquet",
        "stories/dt=2026-11-24/daily-2026-11-24.parquet",
    ]
    assert sorted(s["story_id"] for s in all_rows(lake)) == ["id-001", "id-002"]
    assert validate(lake).ok


def test_an_unreadable_leftover_is_deleted_only_after_the_manifest(tmp_path: Path) -> None:
    lake = RecordingLake(tmp_path)
    stale = "stories/dt=2026-11-23/daily-2026-11-24.parquet"
    lake.put(stale, b"half-written garbage")  # what a crashed attempt might leave
    lake.ops.clear()
    m = land(lake, DAY1, [story(2, day=24)])
    assert [o["key"] for o in m.objects] == ["stories/dt=2026-11-24/daily-2026-11-24.parquet"]
    assert m.counts["kept"] == 0
    assert not lake.exists(stale)
    manifest_put = lake.ops.index(("put", "_manifests/daily/2026-11-24.json"))
    assert lake.ops.index(("delete", stale)) > manifest_put
    assert validate(lake).ok


def test_second_interval_adds_only_new_stories(tmp_path: Path) -> None:
    lake = LocalLake(tmp_path)
    land(lake, DAY1, [story(1), story(2), story(3)])
    m = land(lake, DAY2, [story(2), story(3), story(4, day=25), story(5, day=25)])
    assert m.counts == {"input": 4, "new": 2, "duplicate": 2, "batch_duplicate": 0, "updated": 0, "kept": 0}
    assert sorted(s["story_id"] for s in read_stories(lake.get(m.objects[0]["key"]))) == ["id-004", "id-005"]
    assert len(all_rows(lake)) == 5
    # Re-landing day 1 still sees day 2's stories as landed elsewhere, and its own as its own.
    again = land(lake, DAY1, [story(1), story(2), story(3), story(4, day=25)])
    assert again.counts == {
        "input": 4,
        "new": 3,
        "duplicate": 1,
        "batch_duplicate": 0,
        "updated": 0,
        "kept": 0,
    }
    assert len(all_rows(lake)) == 5
    assert validate(lake).ok


def test_an_edited_story_lands_as_a_new_version(tmp_path: Path) -> None:
    lake = LocalLake(tmp_path)
    land(lake, DAY1, [story(1), story(2)])
    m = land(lake, DAY2, [story(1, version="v2"), story(2)])
    assert m.counts == {"input": 2, "new": 0, "duplicate": 1, "batch_duplicate": 0, "updated": 1, "kept": 0}
    versions = sorted((s["story_id"], s["content_hash"]) for s in all_rows(lake))
    assert versions == [("id-001", "v1-001"), ("id-001", "v2-001"), ("id-002", "v1-002")]
    assert validate(lake).ok


def test_two_versions_in_one_batch_count_one_new_one_updated(tmp_path: Path) -> None:
    m = land(LocalLake(tmp_path), DAY1, [story(1), story(1, version="v2")])
    assert (m.counts["new"], m.counts["updated"], m.rows) == (1, 1, 2)


def test_a_crash_mid_landing_leaves_no_manifest_and_a_rerun_cleans_up(tmp_path: Path) -> None:
    stories = [story(1, day=22), story(2, day=23), story(3, day=24)]
    lake = RecordingLake(tmp_path, fail_story_put=2)
    with pytest.raises(RetriableError):
        land(lake, DAY1, stories)
    assert lake.list("_manifests/") == []
    assert [o.key for o in lake.list("stories/")] == ["stories/dt=2026-11-22/daily-2026-11-24.parquet"]
    assert [v.kind for v in validate(lake).violations] == ["orphan_object"]

    m = land(LocalLake(tmp_path), DAY1, stories)
    assert m.rows == 3
    assert validate(lake).ok
    assert len(all_rows(lake)) == 3


def test_a_crash_in_a_rerun_never_leaves_a_manifest_naming_replaced_content(tmp_path: Path) -> None:
    land(LocalLake(tmp_path), DAY1, [story(1, day=22), story(2, day=23)])
    lake = RecordingLake(tmp_path, fail_story_put=2)
    with pytest.raises(RetriableError):
        land(lake, DAY1, [story(1, day=22, title="changed"), story(2, day=23), story(3, day=23)])
    # The old manifest was retracted before its objects were overwritten: only orphans remain, no mismatch.
    assert {v.kind for v in validate(lake).violations} == {"orphan_object"}
    land(LocalLake(tmp_path), DAY1, [story(1, day=22), story(2, day=23), story(3, day=23)])
    assert validate(lake).ok
    assert len(all_rows(lake)) == 3


def test_an_empty_batch_still_records_the_interval(tmp_path: Path) -> None:
    lake = LocalLake(tmp_path)
    m = land(lake, DAY1, [])
    assert m.objects == [] and m.counts["input"] == 0
    assert lake.exists("_manifests/daily/2026-11-24.json")
    assert validate(lake).ok


def test_backfill_and_daily_manifests_see_each_other(tmp_path: Path) -> None:
    lake = LocalLake(tmp_path)
    land(lake, Interval.for_date("2026-11-24", "backfill"), [story(1)])
    m = land(lake, DAY1, [story(1), story(2)])
    assert (m.counts["duplicate"], m.counts["new"]) == (1, 1)
    assert landed_versions(lake) == {("id-001", "v1-001"), ("id-002", "v1-002")}
    assert landed_versions(lake, exclude="_manifests/daily/2026-11-24.json") == {("id-001", "v1-001")}


def test_land_staged_reads_staged_parquet_by_uri(tmp_path: Path) -> None:
    lake = LocalLake(tmp_path)
    lake.put("_staging/daily/2026-11-24/f1.parquet", parquet_bytes(to_table([story(1), story(2)])))
    lake.put("_staging/daily/2026-11-24/f2.parquet", parquet_bytes(to_table([story(2), story(3)])))
    uris = [lake.uri("_staging/daily/2026-11-24/f1.parquet"), "_staging/daily/2026-11-24/f2.parquet"]
    m = land_staged(lake, DAY1, uris, feeds=[{"feed_id": "f1"}, {"feed_id": "f2"}])
    assert m.counts == {"input": 4, "new": 3, "duplicate": 0, "batch_duplicate": 1, "updated": 0, "kept": 0}
    assert len(m.feeds) == 2
    assert lake.list("_staging/") == []  # consumed batches are removed once the manifest is written


def stage(lake: LocalLake, feed: str, stories: list[dict[str, Any]]) -> dict[str, Any]:
    key = f"_staging/daily/2026-11-24/{feed}.parquet"
    lake.put(key, parquet_bytes(to_table(stories)))
    return {"feed_id": feed, "status": "ok", "staged_uri": lake.uri(key)}


class DiesAfterManifest(LocalLake):
    """A lake whose process dies (BaseException, nothing catches it) right after the manifest is written,
    before the staged batches are removed: the Airflow land task is then retried with the same XCom."""

    def put(self, key: str, data: bytes, content_type: str | None = None) -> ObjectInfo:
        info = super().put(key, data, content_type)
        if key.startswith("_manifests/"):
            raise SystemExit("worker killed")
        return info


def test_a_retry_of_the_land_task_after_staging_was_removed_returns_the_landing(tmp_path: Path) -> None:
    lake = LocalLake(tmp_path)
    feeds = [stage(lake, "f1", [story(1), story(2)]), stage(lake, "f2", [story(3)])]
    uris = [f["staged_uri"] for f in feeds]
    first = land_staged(lake, DAY1, uris, feeds)
    again = land_staged(lake, DAY1, uris, feeds)  # the batches are gone; the manifest records them
    assert again == first and read_manifest(lake, first.key) == first
    assert validate(lake).ok and len(all_rows(lake)) == 3


def test_a_retry_with_some_batches_gone_keeps_their_stories_and_lands_the_rest(tmp_path: Path) -> None:
    lake = LocalLake(tmp_path)
    feeds = [stage(lake, "f1", [story(1), story(2)]), stage(lake, "f2", [story(3)])]
    land_staged(lake, DAY1, [f["staged_uri"] for f in feeds], feeds)
    refetched = stage(lake, "f2", [story(3), story(4)])  # f2's fetch task was cleared and ran again
    m = land_staged(lake, DAY1, [feeds[0]["staged_uri"], refetched["staged_uri"]], [feeds[0], refetched])
    assert sorted(s["story_id"] for s in all_rows(lake)) == ["id-001", "id-002", "id-003", "id-004"]
    assert m.counts["kept"] == 2 and validate(lake).ok and lake.list("_staging/") == []


def test_a_retry_after_the_task_died_between_manifest_and_cleanup(tmp_path: Path) -> None:
    dying = DiesAfterManifest(tmp_path)
    feeds = [stage(dying, "f1", [story(1), story(2)]), stage(dying, "f2", [story(3)])]
    uris = [f["staged_uri"] for f in feeds]
    with pytest.raises(SystemExit):
        land_staged(dying, DAY1, uris, feeds)
    lake = LocalLake(tmp_path)
    assert [v.kind for v in validate(lake).violations] == ["staging_leftover", "staging_leftover"]
    m = land_staged(lake, DAY1, uris, feeds)  # the retry lands the same batches again: same stories, once
    assert m.counts["new"] == 3 and len(all_rows(lake)) == 3
    assert validate(lake).ok and lake.list("_staging/") == []


def test_a_staged_batch_gone_without_a_landing_fails_clearly_and_writes_nothing(tmp_path: Path) -> None:
    lake = LocalLake(tmp_path)
    feeds = [stage(lake, "f1", [story(1)]), stage(lake, "f2", [story(2)])]
    lake.delete("_staging/daily/2026-11-24/f2.parquet")
    with pytest.raises(FatalError, match=r"f2\.parquet.*fetch the interval again"):
        land_staged(lake, DAY1, [f["staged_uri"] for f in feeds], feeds)
    assert lake.list("_manifests/") == [] and lake.list("stories/") == []
    assert lake.exists("_staging/daily/2026-11-24/f1.parquet")  # nothing lost: a refetch lands both


def test_manifest_roundtrip_and_malformed(tmp_path: Path) -> None:
    lake = LocalLake(tmp_path)
    m = land(lake, DAY1, [story(1)], source_info={"archive": "/data/x"})
    assert Manifest.from_dict(json.loads(m.to_json())) == m
    assert m.to_json() == (json.dumps(m.to_dict(), indent=2, sort_keys=True) + "\n").encode()
    assert m.source_info == {"archive": "/data/x"}
    lake.put("_manifests/daily/bad.json", b"{not json")
    with pytest.raises(FatalError, match="not valid JSON"):
        read_manifest(lake, "_manifests/daily/bad.json")
    lake.put("_manifests/daily/bad.json", b'{"job": "daily"}')
    with pytest.raises(FatalError, match="lacks keys"):
        read_manifest(lake, "_manifests/daily/bad.json")


def test_what_is_landed_follows_reruns_that_change_an_interval(tmp_path: Path) -> None:
    lake = LocalLake(tmp_path)
    land(lake, DAY1, [story(1)])
    land(lake, DAY2, [story(2, day=25)])  # reads day 1's object
    land(lake, DAY1, [story(3)])  # day 1's object now holds stories 1 and 3: the cached read is stale
    m = land(lake, Interval.for_date("2026-11-26"), [story(1), story(3), story(4)])
    assert (m.counts["new"], m.counts["duplicate"]) == (1, 2)


def test_a_record_that_does_not_fit_the_schema_fails_before_anything_changes(tmp_path: Path) -> None:
    lake = LocalLake(tmp_path)
    land(lake, DAY1, [story(1)])
    before = {o.key: lake.get(o.key) for o in lake.list()}
    with pytest.raises(FatalError, match="do not fit the story schema"):
        land(lake, DAY1, [story(2), story(3, body=123)])
    assert {o.key: lake.get(o.key) for o in lake.list()} == before


def test_feeds_that_are_not_json_fail_before_anything_changes(tmp_path: Path) -> None:
    lake = LocalLake(tmp_path)
    with pytest.raises(FatalError, match="JSON-able"):
        land(lake, DAY1, [story(1)], feeds=[{"feed_id": "f", "fetched_at": datetime.now(UTC)}])
    assert lake.list() == []


def _choose_reference(
    versions: list[tuple[str, str]], carried_from: int, existing: set[tuple[str, str]]
) -> tuple[list[int], dict[str, int]]:
    """The row-by-row rule landing._choose implements column-wise."""
    counts = dict.fromkeys(COUNT_KEYS, 0)
    counts["input"] = carried_from
    existing_ids = {sid for sid, _ in existing}
    earlier = set(versions[carried_from:])  # the interval's earlier attempt
    earlier_ids = {sid for sid, _ in earlier}
    seen: set[tuple[str, str]] = set()
    landed: list[int] = []
    for row, version in enumerate(versions):
        carried = row >= carried_from
        if version in seen:
            counts["batch_duplicate"] += 0 if carried else 1
            continue
        seen.add(version)
        if version in existing:
            counts["duplicate"] += 0 if carried else 1
            continue
        edit = version[0] in existing_ids or (version[0] in earlier_ids and version not in earlier)
        counts["kept" if carried else "updated" if edit else "new"] += 1
        existing_ids.add(version[0])
        landed.append(row)
    return landed, counts


@pytest.mark.parametrize("seed", range(40))
def test_choosing_rows_column_wise_matches_the_row_by_row_rule(seed: int) -> None:
    rng = random.Random(seed)
    rows = rng.randrange(0, 60)
    versions = [(f"id-{rng.randrange(12)}", f"h{rng.randrange(3)}") for _ in range(rows)]
    carried_from = rng.randrange(0, rows + 1)
    existing = {(f"id-{rng.randrange(15)}", f"h{rng.randrange(3)}") for _ in range(rng.randrange(0, 8))}
    ids, hashes = (pa.array([v[i] for v in versions], pa.string()) for i in (0, 1))
    table = pa.table({"story_id": ids, "content_hash": hashes})
    landed, counts = _choose(table, carried_from, existing)
    assert (landed, counts) == _choose_reference(versions, carried_from, existing)


def test_first_rows_of_each_version_equal_arrows_group_by() -> None:
    from pipeline.lake.landing import _first_rows

    rng = random.Random(5)
    for n in (0, 1, 2, 7, 300):
        halves = [n // 2, n - n // 2]
        ids = pa.chunked_array([[f"u:{rng.randrange(9)}" for _ in range(h)] for h in halves], pa.string())
        hashes = pa.chunked_array([[f"h{rng.randrange(3)}" for _ in range(h)] for h in halves], pa.string())
        numbered = pa.table({"i": ids, "h": hashes, "row": pa.array(range(n), pa.int64())})
        firsts = numbered.group_by(["i", "h"], use_threads=False).aggregate([("row", "min")])
        assert _first_rows(ids, hashes) == sorted(firsts.column("row_min").to_pylist())
