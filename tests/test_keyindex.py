"""The key index under _state/index/: follows every landing, survives interruptions, rebuilds."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pyarrow as pa
import pytest

from pipeline.cli import main
from pipeline.errors import RetriableError
from pipeline.jobs.intervals import Interval
from pipeline.lake import keyindex
from pipeline.lake.landing import land, landed_versions
from pipeline.lake.store import LocalLake, ObjectInfo
from pipeline.lake.validate import validate
from tests.test_landing import DAY1, DAY2, RecordingLake, all_rows, story

DAY3 = Interval.for_date("2026-11-26")


def indexed(lake: LocalLake) -> set[tuple[str, str]]:
    return set(keyindex.index_versions(lake))


class ReadRecordingLake(LocalLake):
    """Records every get and list, to see what a landing reads."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.gets: list[str] = []
        self.lists: list[str] = []

    def get(self, key: str) -> bytes:
        self.gets.append(key)
        return super().get(key)

    def get_range(self, key: str, start: int, length: int) -> bytes:
        self.gets.append(key)
        return super().get_range(key, start, length)

    def list(self, prefix: str = "") -> list[ObjectInfo]:
        self.lists.append(prefix)
        return super().list(prefix)


def test_index_follows_landings_reruns_and_edits_and_equals_a_rebuild(tmp_path: Path) -> None:
    lake = LocalLake(tmp_path)
    land(lake, DAY1, [story(1), story(2)])
    land(lake, DAY2, [story(2), story(3), story(1, version="v2")])
    land(lake, DAY1, [story(1)])  # a rerun with fewer stories keeps story 2
    assert (
        indexed(lake)
        == landed_versions(lake)
        == {
            ("id-001", "v1-001"),
            ("id-002", "v1-002"),
            ("id-003", "v1-003"),
            ("id-001", "v2-001"),
        }
    )
    owners = keyindex.index_versions(lake)
    assert (
        owners[("id-002", "v1-002")] == "daily/2026-11-24"
        and owners[("id-003", "v1-003")] == "daily/2026-11-25"
    )
    maintained = keyindex.index_versions(lake)
    keyindex.rebuild_index(lake)
    assert keyindex.index_versions(lake) == maintained
    assert validate(lake).ok


def segment_puts(lake: RecordingLake) -> list[str]:
    return [key for op, key in lake.ops if op == "put" and key.startswith(keyindex.SEGMENTS_PREFIX)]


def named_segments(lake: LocalLake) -> dict[str, set[int]]:
    """HEAD's segments (as keys) and the shards it names in each."""
    named: dict[str, set[int]] = {}
    for number, (name, _, _) in json.loads(lake.get(keyindex.HEAD_KEY))["segments"].items():
        named.setdefault(keyindex.segment_key(name), set()).add(int(number, 16))
    return named


def segments_on(lake: LocalLake) -> set[str]:
    return {info.key for info in lake.list(keyindex.SEGMENTS_PREFIX)}


def shards(*numbers: int) -> set[int]:
    return {keyindex.shard_of(f"id-{i:03d}") for i in numbers}


def test_a_landing_stores_only_the_shards_where_its_rows_change_in_one_object(tmp_path: Path) -> None:
    lake = RecordingLake(tmp_path)
    land(lake, DAY1, [story(i) for i in range(1, 40)])
    land(lake, DAY2, [story(50)])
    first, second = segment_puts(lake)  # one object a landing, however many shards it changes
    assert named_segments(lake) == {first: shards(*range(1, 40)) - shards(50), second: shards(50)}
    lake.ops.clear()
    land(lake, DAY1, [story(i) for i in range(1, 40)])  # a rerun of the same stories: no row changes
    land(lake, DAY1, [story(1)])  # a rerun that lacks 2-39 keeps them: no row changes either
    assert not segment_puts(lake)
    land(lake, DAY1, [story(1, version="v2")])  # an edit: only its shard changes
    (third,) = segment_puts(lake)
    assert named_segments(lake)[third] == shards(1)
    assert segments_on(lake) == set(named_segments(lake))  # a segment no shard names is deleted
    assert indexed(lake) == landed_versions(lake) and validate(lake).ok
    maintained = keyindex.index_versions(lake)
    keyindex.rebuild_index(lake)
    assert keyindex.index_versions(lake) == maintained


def test_an_interrupted_landing_is_rolled_back_by_the_next_one(tmp_path: Path) -> None:
    land(LocalLake(tmp_path), DAY1, [story(1)])
    crashing = RecordingLake(tmp_path, fail_story_put=1)
    with pytest.raises(RetriableError):
        land(crashing, DAY2, [story(9, day=25)])  # the index already named story 9 when the put failed
    assert ("id-009", "v1-009") not in indexed(crashing)  # stored, but HEAD names only committed rows
    assert len(segments_on(crashing)) == 2  # (its segment, which no HEAD names)
    m = land(LocalLake(tmp_path), DAY3, [story(9, day=25)])
    assert m.counts["new"] == 1  # the interrupted landing did not count
    assert segments_on(crashing) == set(named_segments(crashing))  # its segment deleted when resolved
    assert keyindex.index_versions(crashing)[("id-009", "v1-009")] == "daily/2026-11-26"
    again = land(LocalLake(tmp_path), DAY2, [story(9, day=25)])
    assert again.counts["duplicate"] == 1 and again.rows == 0
    assert validate(LocalLake(tmp_path)).ok


def test_a_rerun_keeps_what_an_interrupted_attempt_wrote_without_listing_stories(tmp_path: Path) -> None:
    land(LocalLake(tmp_path), DAY1, [story(1, day=22), story(2, day=23)])
    crashing = RecordingLake(tmp_path, fail_story_put=2)
    with pytest.raises(RetriableError):  # the old manifest is retracted, day 22's object rewritten
        land(crashing, DAY1, [story(1, day=22), story(5, day=22), story(3, day=23)])
    land(LocalLake(tmp_path), DAY2, [story(7, day=25)])  # resolves (rolls back) the interrupted attempt
    recording = ReadRecordingLake(tmp_path)
    m = land(recording, DAY1, [])  # the feed now has nothing: every story any attempt wrote is kept
    assert not any(p.startswith("stories") for p in recording.lists)
    # day 22's object, written by the interrupted attempt (story 5 is only there), and day 23's old one
    assert sorted(s["story_id"] for s in all_rows(recording)) == ["id-001", "id-002", "id-005", "id-007"]
    assert m.counts["kept"] >= 2
    assert validate(recording).ok and indexed(recording) == landed_versions(recording)


def test_a_missing_index_is_rebuilt_from_the_manifests(tmp_path: Path) -> None:
    lake = LocalLake(tmp_path)
    land(lake, DAY1, [story(1), story(2)])
    for info in lake.list(keyindex.INDEX_PREFIX):
        lake.delete(info.key)
    m = land(lake, DAY2, [story(1), story(3)])
    assert (m.counts["duplicate"], m.counts["new"]) == (1, 1)
    assert indexed(lake) == landed_versions(lake)


def test_rows_of_a_manifest_removed_by_hand_do_not_hide_stories(tmp_path: Path) -> None:
    lake = LocalLake(tmp_path)
    land(lake, DAY1, [story(1)])
    lake.delete("_manifests/daily/2026-11-24.json")
    m = land(lake, DAY2, [story(1)])
    assert m.counts["new"] == 1


def test_landing_cost_does_not_grow_with_the_lake(tmp_path: Path) -> None:
    """A landing reads only its batch's index shards and its own interval's objects: no listing of
    stories/ or _manifests/, no other interval's story object."""
    lake = LocalLake(tmp_path)
    for day in range(1, 21):
        land(lake, Interval.for_date(f"2026-10-{day:02d}"), [story(day, day=24), story(100 + day, day=24)])
    recording = ReadRecordingLake(tmp_path)
    land(recording, Interval.for_date("2026-10-21"), [story(5, day=24), story(200, day=24)])
    assert recording.lists == []
    assert [k for k in recording.gets if k.startswith(("stories/", "_manifests/"))] == []
    assert len([k for k in recording.gets if k.startswith(keyindex.SEGMENTS_PREFIX)]) <= 2


def test_validate_reports_a_damaged_index_and_repair_index_fixes_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lake = LocalLake(tmp_path)
    land(lake, DAY1, [story(n) for n in range(1, 30)])
    (victim,) = segments_on(lake)
    lake.delete(victim)
    assert [v.kind for v in validate(lake).violations] == ["index_mismatch"]
    assert main(["validate", "--lake", str(tmp_path)]) == 1
    assert main(["validate", "--lake", str(tmp_path), "--repair-index"]) == 0
    assert "key index rebuilt" in capsys.readouterr().out
    assert validate(lake).ok and indexed(lake) == landed_versions(lake)
    assert segments_on(lake) == set(named_segments(lake))


def test_validate_gives_no_verdict_on_an_index_a_landing_replaced_while_it_was_read(tmp_path: Path) -> None:
    land(LocalLake(tmp_path), DAY1, [story(n) for n in range(1, 30)])

    class LandingMeanwhile(LocalLake):
        landed = False

        def get_range(self, key: str, start: int, length: int) -> bytes:
            if not self.landed:  # every shard changes: the segment about to be read is deleted
                self.landed = True
                land(LocalLake(tmp_path), DAY1, [story(n, version="v2") for n in range(1, 30)])
            return super().get_range(key, start, length)

    lake = LandingMeanwhile(tmp_path)
    assert validate(lake).ok and lake.landed
    assert validate(lake).ok and indexed(lake) == landed_versions(lake)


def test_a_damaged_segment_is_rebuilt_by_the_next_landing(tmp_path: Path) -> None:
    lake = LocalLake(tmp_path)
    land(lake, DAY1, [story(n) for n in range(1, 30)])
    (segment,) = segments_on(lake)
    lake.put(segment, lake.get(segment)[:100])  # cut short
    m = land(lake, DAY2, [story(1), story(40)])
    assert (m.counts["duplicate"], m.counts["new"]) == (1, 1)
    assert indexed(lake) == landed_versions(lake) and validate(lake).ok


@pytest.mark.parametrize(
    "segments",
    [{"00": ["x", -5, 10]}, {"100": ["x", 0, 10]}, {"00": ["x", 0]}, {"00": ["", 0, 10]}, ["x"]],
)
def test_a_head_naming_impossible_ranges_is_rebuilt_when_opened(tmp_path: Path, segments: object) -> None:
    lake = LocalLake(tmp_path)
    land(lake, DAY1, [story(n) for n in range(1, 10)])
    head = json.loads(lake.get(keyindex.HEAD_KEY))
    lake.put(keyindex.HEAD_KEY, json.dumps({**head, "segments": segments}).encode())
    m = land(lake, DAY2, [story(1), story(40)])
    assert (m.counts["duplicate"], m.counts["new"]) == (1, 1)
    assert indexed(lake) == landed_versions(lake) and validate(lake).ok


def test_neighbouring_shards_of_a_segment_are_read_together(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    land(LocalLake(tmp_path), DAY1, [story(n) for n in range(1, 200)])
    (segment,) = segments_on(LocalLake(tmp_path))
    numbers = sorted(shards(*range(1, 200)))
    recording = ReadRecordingLake(tmp_path)
    index = keyindex.open_index(recording)
    recording.gets.clear()
    index.preload(numbers[:3])
    assert recording.gets == [segment]
    monkeypatch.setattr(keyindex, "READ_GAP", 0)
    index.preload([numbers[5], numbers[100], numbers[102]])
    assert recording.gets == [segment] * 4
    assert indexed(recording) == landed_versions(recording)


def test_a_rerun_of_an_interval_whose_files_were_compacted_lands_nothing_twice(tmp_path: Path) -> None:
    from pipeline.lake.compact import compact

    lake = LocalLake(tmp_path)
    land(lake, DAY1, [story(1, day=23), story(2, day=24)])
    land(lake, DAY2, [story(3, day=24)])
    compact(lake, "2026-11-24", "2026-11-24")  # dt=24's two files -> one compacted file
    assert validate(lake).ok and indexed(lake) == landed_versions(lake)
    rerun = land(lake, DAY1, [story(1, day=23), story(2, day=24)])
    assert rerun.counts["duplicate"] == 1 and rerun.rows == 1  # story 2 lives in the compacted file
    assert validate(lake).ok and indexed(lake) == landed_versions(lake)
    again = land(lake, DAY3, [story(2, day=24)])
    assert again.counts["duplicate"] == 1 and again.rows == 0
    assert len(all_rows(lake)) == 3 and validate(lake).ok


def test_a_session_writes_each_changed_shard_once_and_ends_equal_to_a_rebuild(tmp_path: Path) -> None:
    lake = RecordingLake(tmp_path)
    with keyindex.IndexSession(lake) as session:
        land(lake, DAY1, [story(i) for i in range(1, 30)], session=session)
        land(lake, DAY2, [story(i, day=25) for i in range(20, 50)], session=session)
        land(lake, DAY3, [story(7, version="v2", day=26)], session=session)
        assert not segment_puts(lake)  # deferred; HEAD names the landings meanwhile
        assert len(json.loads(lake.get(keyindex.HEAD_KEY))["pending"]) == 3
    (segment,) = segment_puts(lake)
    assert named_segments(lake) == {segment: shards(*range(1, 50))}
    assert segments_on(lake) == {segment}
    assert json.loads(lake.get(keyindex.HEAD_KEY))["pending"] == []
    assert indexed(lake) == landed_versions(lake) and validate(lake).ok
    maintained = keyindex.index_versions(lake)
    keyindex.rebuild_index(lake)
    assert keyindex.index_versions(lake) == maintained


def test_a_session_that_dies_before_writing_its_shards_is_resolved_from_the_manifests(tmp_path: Path) -> None:
    lake = LocalLake(tmp_path)
    land(lake, DAY1, [story(1)])
    session = keyindex.IndexSession(lake)  # never left: the process died after two landings
    land(lake, DAY2, [story(2, day=25), story(1, version="v2", day=25)], session=session)
    land(lake, DAY3, [story(3, day=26)], session=session)
    assert indexed(lake) == {("id-001", "v1-001")}  # the shards were never written
    assert validate(lake).ok  # (no index check while landings are pending)
    again = land(LocalLake(tmp_path), Interval.for_date("2026-11-27"), [story(2, day=25), story(3, day=26)])
    assert again.counts["duplicate"] == 2 and again.rows == 0
    assert indexed(lake) == landed_versions(lake) and validate(lake).ok


def test_a_failed_landing_in_a_session_is_rolled_back_and_the_others_kept(tmp_path: Path) -> None:
    lake = RecordingLake(tmp_path, fail_story_put=2)
    with keyindex.IndexSession(lake) as session:
        land(lake, DAY1, [story(1)], session=session)
        with pytest.raises(RetriableError):
            land(lake, DAY2, [story(9, day=25)], session=session)
        m = land(lake, DAY3, [story(9, day=25), story(1)], session=session)
        assert (m.counts["new"], m.counts["duplicate"]) == (1, 1)  # the failed landing did not count
    assert keyindex.index_versions(lake)[("id-009", "v1-009")] == "daily/2026-11-26"
    assert indexed(lake) == landed_versions(lake) and validate(lake).ok


def as_previous_format(lake: LocalLake, head: dict[str, object]) -> None:
    """Store the lake's index as formats 1 and 2 did (one Arrow stream object per shard), with this HEAD."""
    where = keyindex._where(json.loads(lake.get(keyindex.HEAD_KEY)))
    for number, table in keyindex._read_shards(lake, where, range(keyindex.SHARDS)).items():
        if table.num_rows:
            sink = pa.BufferOutputStream()
            with pa.ipc.new_stream(sink, table.schema) as writer:
                writer.write_table(table)
            lake.put(keyindex.legacy_shard_key(number), sink.getvalue().to_pybytes())
    for key in segments_on(lake):
        lake.delete(key)
    lake.put(keyindex.HEAD_KEY, json.dumps(head).encode())


def test_a_head_of_the_first_format_with_a_pending_landing_is_resolved(tmp_path: Path) -> None:
    lake = LocalLake(tmp_path)
    land(lake, DAY1, [story(1)])
    crashing = RecordingLake(tmp_path, fail_story_put=1)
    with pytest.raises(RetriableError):
        land(crashing, DAY2, [story(9, day=25)])
    head = json.loads(lake.get(keyindex.HEAD_KEY))
    (pending,) = head["pending"]
    as_previous_format(lake, {"format": 1, "pending": pending})  # as before format 2
    m = land(lake, DAY3, [story(9, day=25)])
    assert m.counts["new"] == 1 and indexed(lake) == landed_versions(lake) and validate(lake).ok
    assert not lake.list(keyindex.LEGACY_SHARDS_PREFIX) and segments_on(lake) == set(named_segments(lake))


def test_an_index_of_one_object_per_shard_is_converted_when_opened(tmp_path: Path) -> None:
    lake = LocalLake(tmp_path)
    land(lake, DAY1, [story(n) for n in range(1, 40)])
    land(lake, DAY2, [story(n, day=25) for n in range(30, 60)])
    before = keyindex.index_versions(lake)
    as_previous_format(lake, {"format": 2, "pending": []})
    assert len(lake.list(keyindex.LEGACY_SHARDS_PREFIX)) == len(shards(*range(1, 60)))
    assert keyindex.index_versions(lake) == before and validate(lake).ok  # read as it is
    m = land(lake, DAY3, [story(1), story(70, day=26)])
    assert (m.counts["duplicate"], m.counts["new"]) == (1, 1)
    assert json.loads(lake.get(keyindex.HEAD_KEY))["format"] == keyindex.FORMAT
    assert not lake.list(keyindex.LEGACY_SHARDS_PREFIX) and segments_on(lake) == set(named_segments(lake))
    assert indexed(lake) == landed_versions(lake) and validate(lake).ok


def test_a_failed_periodic_flush_loses_no_landing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    class FailingShardPuts(LocalLake):
        failures = 1

        def put(self, key: str, data: bytes, content_type: str | None = None) -> ObjectInfo:
            if key.startswith(keyindex.SEGMENTS_PREFIX) and self.failures:
                self.failures -= 1
                raise RetriableError(f"put {key}: object store unreachable", key=key)
            return super().put(key, data, content_type)

    monkeypatch.setattr(keyindex, "MAX_DEFERRED", 2)
    lake = FailingShardPuts(tmp_path)
    with keyindex.IndexSession(lake) as session:
        land(lake, DAY1, [story(1)], session=session)
        second = land(lake, DAY2, [story(2, day=25)], session=session)  # its flush fails: still landed
        third = land(lake, DAY3, [story(2, day=25), story(3, day=26)], session=session)
    assert second.rows == 1 and (third.counts["duplicate"], third.counts["new"]) == (1, 1)
    assert indexed(lake) == landed_versions(lake) and validate(lake).ok


def test_new_rows_are_sorted_and_deduplicated_as_python_sorts_them() -> None:
    rng = random.Random(7)
    names = ["a", "B", "é", "z", "ß", "日本", "\U0001f600", "a\x00", ""]
    rows = [(rng.randrange(4), rng.choice(names) + rng.choice(names), rng.choice(names)) for _ in range(300)]
    table = pa.table(
        {
            "shard": pa.array([r[0] for r in rows], pa.int32()),
            "story_id": pa.array([r[1] for r in rows], pa.string()),
            "content_hash": pa.array([r[2] for r in rows], pa.string()),
        }
    )
    got = keyindex._sorted_unique(table)
    assert list(zip(*(got.column(n).to_pylist() for n in got.column_names), strict=True)) == sorted(set(rows))


def test_io_map_overlaps_calls_only_for_lakes_with_round_trips(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    def thread_of(_: int) -> str:
        return threading.current_thread().name

    assert set(keyindex.io_map(thread_of, range(4), parallel=False)) == {threading.current_thread().name}
    assert all(name.startswith("lake-io") for name in keyindex.io_map(thread_of, range(4)))

    # a local lake's landings (shard reads and writes) never start threads: they would only add CPU
    def no_threads(*args: object, **kwargs: object) -> None:
        raise AssertionError("a local lake started an I/O thread pool")

    monkeypatch.setattr(keyindex, "ThreadPoolExecutor", no_threads)
    lake = LocalLake(tmp_path)
    assert lake.parallel_io is False
    land(lake, DAY1, [story(i) for i in range(40)])
    land(lake, DAY2, [story(i, day=25) for i in range(20, 60)])
    assert len(landed_versions(lake)) == 60


def test_shards_of_is_shard_of_for_every_id(tmp_path: Path) -> None:
    """The compiled hash (where built) gives shard_of() of each id: hex ids, empty, exactly one and several
    128-byte blocks, non-ASCII; a list with a lone surrogate goes to hashlib (surrogatepass) whole."""
    rnd = random.Random(7)
    ids = ["", "a", "x" * 127, "x" * 128, "x" * 129, "y" * 256, "z" * 300, "\u00e9\U0001f600" * 70]
    ids += [f"{rnd.getrandbits(128):032x}" for _ in range(3000)]
    ids += ["".join(chr(rnd.randrange(1, 0xD800)) for _ in range(rnd.randrange(0, 200))) for _ in range(500)]
    index = keyindex.KeyIndex(LocalLake(tmp_path), {})
    expected = [keyindex.shard_of(sid) for sid in ids]
    assert index.shards_of(ids) == expected
    assert index.shards_of([*ids[:50], "lone \ud800"]) == [*expected[:50], keyindex.shard_of("lone \ud800")]
    if keyindex._shard_numbers() is not None:
        assert keyindex._compiled_shards(ids) == bytes(expected)
        assert keyindex._compiled_shards(["\ud800"]) is None


def test_shards_of_answers_a_repeated_question_from_its_last_answer_and_a_new_one_anew(
    tmp_path: Path,
) -> None:
    index = keyindex.open_index(LocalLake(tmp_path))
    ids = [f"id-{i}" for i in range(300)]
    first = index.shards_of(ids)
    assert first == [keyindex.shard_of(sid) for sid in ids]
    first.append(-1)  # the caller's copy: the kept answer is not changed through it
    assert index.shards_of(list(ids)) == [keyindex.shard_of(sid) for sid in ids]
    other = [*ids[:-1], "another id"]
    assert index.shards_of(other) == [keyindex.shard_of(sid) for sid in other]
    assert index.shards_of(iter(ids[:5])) == [keyindex.shard_of(sid) for sid in ids[:5]]
