"""pipeline.lake.kernels calls Arrow's kernels by name: the same results as pyarrow.compute's wrappers."""

import subprocess
import sys
from datetime import UTC, date, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from pipeline.lake import kernels as k

IDS = pa.chunked_array([["b", "a", "c"], ["a", "b", "a", "d"]])
TABLE = pa.table({"story_id": IDS, "n": pa.chunked_array([[3, 1, 2], [1, 0, 5, 4]])})


def test_each_kernel_equals_pyarrow_compute() -> None:
    mask = pc.equal(IDS, "a")
    assert k.take(TABLE, [6, 0, 2]).equals(TABLE.take(pa.array([6, 0, 2])))
    assert k.take(IDS, pa.array([1, 1], pa.int64())).equals(IDS.take(pa.array([1, 1])))
    assert k.filter_rows(TABLE, mask).equals(TABLE.filter(mask))
    assert k.unique(IDS).equals(pc.unique(IDS))
    assert k.is_in(IDS, pa.array(["a", "d"])).equals(pc.is_in(IDS, value_set=pa.array(["a", "d"])))
    assert k.equal(IDS, pa.scalar("b", pa.string())).equals(pc.equal(IDS, "b"))
    assert k.invert(mask).equals(pc.invert(mask))
    assert k.and_(mask, k.invert(mask)).equals(pc.and_(mask, pc.invert(mask)))
    assert k.indices_nonzero(mask) == pc.indices_nonzero(mask).to_pylist() == [1, 3, 5]
    order = pc.sort_indices(TABLE, sort_keys=[("story_id", "ascending"), ("n", "ascending")])
    assert k.sort_indices(TABLE, ["story_id", "n"]).equals(order)
    when = pa.chunked_array([[datetime(2025, 9, 1, 23, tzinfo=UTC), None]], pa.timestamp("us", "UTC"))
    fallback = pa.chunked_array([[datetime(2025, 9, 3, tzinfo=UTC)] * 2], pa.timestamp("us", "UTC"))
    assert k.cast(k.coalesce(when, fallback), pa.date32()).to_pylist() == [date(2025, 9, 1), date(2025, 9, 3)]
    topics = pa.array([["x", "y"], [], ["x"]], pa.list_(pa.string()))
    assert k.list_flatten(topics).equals(pc.list_flatten(topics))
    assert k.value_counts(k.list_flatten(topics)).equals(pc.value_counts(pc.list_flatten(topics)))


def test_run_starts_marks_each_new_key_of_sorted_columns() -> None:
    a = pa.chunked_array([["a", "a"], ["a", "b", "b"]])
    b = pa.array(["x", "x", "y", "y", "y"])
    assert k.run_starts(a, b).to_pylist() == [True, False, True, True, False]
    assert k.run_starts(a).to_pylist() == [True, False, False, True, False]
    assert k.run_starts(pa.array([], pa.string())).to_pylist() == []
    assert k.run_starts(pa.array(["a"])).to_pylist() == [True]


def test_sort_indices_is_stable() -> None:
    table = pa.table({"k": ["a", "b", "a", "a", "b"]})
    assert k.sort_indices(table, ["k"]).to_pylist() == [0, 2, 3, 1, 4]


def test_a_backfill_imports_neither_pyarrow_compute_nor_parquet_nor_acero(tmp_path: Path) -> None:
    """pyarrow.compute (~35 ms of CPU), pyarrow.parquet (~30) and pyarrow.acero (~65, with dataset) would be
    imported by every landing process for a few kernels: the lake calls them by name instead."""
    archive = tmp_path / "archive"
    archive.mkdir()
    rows = [
        f'{{"id": "{i}", "title": "Story {i}", "body": "Tariffs on rare earths, day {i}.", '
        f'"published": "2025-09-0{1 + i % 2}T10:00:00Z"}}'
        for i in range(6)
    ]
    (archive / "wire.jsonl").write_text("\n".join([*rows, rows[0]]) + "\n")  # a duplicate too
    code = (
        "import sys\n"
        "from pipeline.cli import main\n"
        f"code = main(['backfill', '--archive', {str(archive)!r}, '--from', '2025-09-01',"
        f" '--to', '2025-09-02', '--layout', 'jsonl', '--workers', '1',"
        f" '--lake', {str(tmp_path / 'lake')!r}])\n"
        "assert code == 0, code\n"
        "print(sorted(m for m in sys.modules if m in ('pyarrow.compute', 'pyarrow.parquet', 'pyarrow.acero',"
        " 'pyarrow.dataset', 'dateutil')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"
    assert list((tmp_path / "lake").rglob("*.parquet"))
