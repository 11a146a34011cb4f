import json
from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.cli import main
from pipeline.jobs.intervals import Interval
from pipeline.lake.landing import Manifest, land, read_manifest
from pipeline.lake.parquet import parquet_bytes, read_stories, to_table
from pipeline.lake.store import LocalLake, sha256_hex
from pipeline.lake.validate import validate
from tests.test_landing import DAY1, DAY2, story

D1_KEY = "stories/dt=2026-11-24/daily-2026-11-24.parquet"
D2_KEY = "stories/dt=2026-11-25/daily-2026-11-25.parquet"


@pytest.fixture
def lake(tmp_path: Path) -> LocalLake:
    """Two landed days: 3 stories on 2026-11-24, 2 more on 2026-11-25."""
    lake = LocalLake(tmp_path / "lake")
    land(lake, DAY1, [story(1), story(2), story(3)])
    land(lake, DAY2, [story(3), story(4, day=25), story(5, day=25)])
    return lake


def rewrite_object(lake: LocalLake, manifest_key: str, key: str, data: bytes, rows: int) -> None:
    """Replace an object AND fix its manifest entry, so only the planted content problem remains."""
    lake.put(key, data)
    m = read_manifest(lake, manifest_key)
    for obj in m.objects:
        if obj["key"] == key:
            obj.update(size=len(data), sha256=sha256_hex(data), rows=rows)
    lake.put(manifest_key, m.to_json())


def kinds(lake: LocalLake, **kwargs: object) -> list[str]:
    return [v.kind for v in validate(lake, **kwargs).violations]  # type: ignore[arg-type]


def test_clean_lake_passes_with_totals(lake: LocalLake) -> None:
    report = validate(lake)
    assert report.ok
    assert (report.manifests, report.objects, report.rows) == (2, 2, 5)
    assert report.to_dict()["violations"] == []


def test_deleted_object_is_reported(lake: LocalLake) -> None:
    lake.delete(D1_KEY)
    report = validate(lake)
    assert [(v.kind, v.keys) for v in report.violations] == [("missing_object", (D1_KEY,))]
    assert kinds(lake, deep=False) == ["missing_object"]


def test_corrupted_object_of_the_same_size_is_caught_by_hashing(lake: LocalLake) -> None:
    data = bytearray(lake.get(D1_KEY))
    data[len(data) // 2] ^= 0xFF
    (lake.root / D1_KEY).write_bytes(bytes(data))
    report = validate(lake)
    assert ("checksum_mismatch", (D1_KEY,)) in [(v.kind, v.keys) for v in report.violations]
    assert "size_mismatch" not in kinds(lake)


def test_truncated_object_is_a_size_mismatch(lake: LocalLake) -> None:
    (lake.root / D2_KEY).write_bytes(lake.get(D2_KEY)[:100])
    found = kinds(lake)
    assert {"size_mismatch", "checksum_mismatch", "unreadable_parquet"} <= set(found)
    assert kinds(lake, deep=False) == ["size_mismatch"]


def test_orphan_story_file_is_reported(lake: LocalLake) -> None:
    orphan = "stories/dt=2026-11-24/daily-2026-11-20.parquet"
    lake.put(orphan, lake.get(D1_KEY))
    report = validate(lake)
    assert [(v.kind, v.keys) for v in report.violations] == [("orphan_object", (orphan,))]
    assert validate(lake, date_from=date(2026, 11, 25)).ok  # outside the checked dt range


def test_duplicate_row_across_files_is_reported(lake: LocalLake) -> None:
    rows = [*read_stories(lake.get(D2_KEY)), story(1)]  # story 1 is already in day 1's file
    rewrite_object(lake, "_manifests/daily/2026-11-25.json", D2_KEY, parquet_bytes(to_table(rows)), len(rows))
    report = validate(lake)
    assert [(v.kind, v.keys) for v in report.violations] == [("duplicate_story", (D1_KEY, D2_KEY))]
    assert "id-001" in report.violations[0].message
    assert validate(lake, deep=False).ok  # the quick mode does not read rows


def test_duplicate_row_within_one_file_is_reported(lake: LocalLake) -> None:
    rows = read_stories(lake.get(D1_KEY))
    rows.append(rows[0])
    rewrite_object(lake, "_manifests/daily/2026-11-24.json", D1_KEY, parquet_bytes(to_table(rows)), len(rows))
    assert [(v.kind, v.keys) for v in validate(lake).violations] == [("duplicate_story", (D1_KEY,))]


def test_schema_drift_is_reported(lake: LocalLake) -> None:
    table = to_table(read_stories(lake.get(D1_KEY)))
    loose = table.cast(pa.schema([f.with_nullable(True) for f in table.schema]))  # nullability differs
    rewrite_object(lake, "_manifests/daily/2026-11-24.json", D1_KEY, _raw_parquet(loose), 3)
    report = validate(lake)
    assert [v.kind for v in report.violations] == ["schema_mismatch"]
    assert "story_id" in report.violations[0].message

    dropped = table.drop_columns(["attribution"])
    rewrite_object(lake, "_manifests/daily/2026-11-24.json", D1_KEY, _raw_parquet(dropped), 3)
    assert "missing attribution" in validate(lake).violations[0].message


def _raw_parquet(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    return bytes(sink.getvalue().to_pybytes())


def test_row_count_mismatch_is_reported(lake: LocalLake) -> None:
    m = read_manifest(lake, "_manifests/daily/2026-11-24.json")
    m.objects[0]["rows"] = 7
    lake.put("_manifests/daily/2026-11-24.json", m.to_json())
    assert kinds(lake) == ["row_count_mismatch"]


@pytest.mark.parametrize(
    "content",
    [
        b"{broken",
        b"[]",
        b'{"job": "daily"}',
        "counts",
        "objects",
        "path",
    ],
)
def test_malformed_manifests_are_reported(lake: LocalLake, content: bytes | str) -> None:
    key = "_manifests/daily/2026-11-25.json"
    if isinstance(content, str):
        doc = read_manifest(lake, key).to_dict()
        if content == "counts":
            del doc["counts"]["updated"]
        elif content == "objects":
            doc["objects"] = [{"key": D2_KEY}]
        else:
            doc["label"] = "2026-11-20"
        content = json.dumps(doc).encode()
    lake.put(key, content)
    report = validate(lake)
    assert [(v.kind, v.keys) for v in report.violations] == [
        ("manifest_malformed", (key,)),
        ("orphan_object", (D2_KEY,)),  # its objects are no longer named by a usable manifest
    ]


def test_date_range_selects_manifests_by_interval(lake: LocalLake) -> None:
    only_day2 = validate(lake, date_from=date(2026, 11, 25), date_to=date(2026, 11, 25))
    assert (only_day2.manifests, only_day2.rows) == (1, 2)
    only_day1 = validate(lake, date_to=date(2026, 11, 24))
    assert (only_day1.manifests, only_day1.rows) == (1, 3)
    assert validate(lake, date_from=date(2026, 12, 1)).manifests == 0
    assert validate(lake, "2026-11-24", "2026-11-24").rows == 3
    land(lake, Interval.for_date("2026-11-23", "backfill"), [story(9, day=23)])
    assert validate(lake, date_from=date(2026, 11, 23), date_to=date(2026, 11, 23)).manifests == 1


def test_manifest_dataclass_accepts_its_own_dict(lake: LocalLake) -> None:
    m = read_manifest(lake, "_manifests/daily/2026-11-24.json")
    assert Manifest.from_dict(m.to_dict()).key == "_manifests/daily/2026-11-24.json"


def test_cli_exit_codes_and_offending_keys(lake: LocalLake, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "--lake", str(lake.root)]) == 0
    assert "2 manifests, 2 objects, 5 rows: OK" in capsys.readouterr().out
    lake.delete(D2_KEY)
    assert main(["validate", "--lake", str(lake.root), "--from", "2026-11-24", "--to", "2026-11-25"]) == 1
    out = capsys.readouterr().out
    assert "FAILED (1 violations)" in out
    assert f"missing_object: {D2_KEY}" in out
    assert main(["validate", "--lake", str(lake.root), "--to", "2026-11-24"]) == 0
    assert main(["validate", "--lake", str(lake.root), "--from", "yesterday"]) == 2
    assert "not a date" in capsys.readouterr().err


def test_the_widest_range_is_fine_and_a_reversed_one_is_a_usage_error(
    lake: LocalLake, capsys: pytest.CaptureFixture[str]
) -> None:
    assert validate(lake, "0001-01-01", "9999-12-31").manifests == 2
    assert main(["validate", "--lake", str(lake.root), "--from", "0001-01-01", "--to", "9999-12-31"]) == 0
    capsys.readouterr()
    assert main(["validate", "--lake", str(lake.root), "--from", "2026-11-25", "--to", "2026-11-24"]) == 2
    assert "before --from" in capsys.readouterr().err


def test_an_empty_or_missing_lake_fails_unless_allowed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for root in (tmp_path / "no-such-dir", tmp_path):
        assert main(["validate", "--lake", str(root)]) == 1
        out = capsys.readouterr()
        assert "holds no manifest" in out.err and "FAILED (no manifest)" in out.err
        assert "OK" not in out.out + out.err  # never a false OK beside the failing exit
        assert main(["validate", "--lake", str(root), "--allow-empty"]) == 0
        assert ": OK" in capsys.readouterr().out
    assert validate(LocalLake(tmp_path)).lake_manifests == 0


def test_temp_files_of_an_unfinished_write_are_reported_until_the_next_landing(lake: LocalLake) -> None:
    legacy = lake.root / "stories" / "dt=2026-11-24" / ".daily-2026-11-24.parquet.0a1b.part"
    legacy.write_bytes(b"partial")
    (lake.root / "_tmp" / "0c0d.part").write_bytes(b"partial")
    report = validate(lake)
    assert [(v.kind, v.keys) for v in report.violations] == [
        ("temp_leftover", ("_tmp/0c0d.part",)),
        ("temp_leftover", ("stories/dt=2026-11-24/.daily-2026-11-24.parquet.0a1b.part",)),
    ]
    land(LocalLake(lake.root), Interval.for_date("2026-11-26"), [story(7, day=26)])
    assert validate(lake).ok
