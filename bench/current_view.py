"""What the current view of edited stories costs readers (`python -m bench.current_view [--rows N]`).

Writes a synthetic lake (the story schema, ~300-byte bodies, N rows over 100 day partitions, 5% of the rows
later versions of earlier stories) to a temporary directory, then times "stories per topic" with DuckDB and
polars two ways: over every row (versions counted apart) and over the current view (docs/querying.md: one row
per story_id, the one fetched last). For comparison, what a side table wirefeed could maintain would buy:
the same query as an anti-join against a list of superseded (story_id, content_hash). Best of 3 each; it
prints figures and asserts nothing.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa

from pipeline.lake.parquet import write_parquet
from pipeline.schema import arrow_schema

DAYS = 100
TOPICS = ["tariffs", "rare_earths", "semiconductors", "trade_talks", "export_controls", "tiktok"]
BODY = "Negotiators met again on Tuesday to discuss the schedule of tariffs. " * 4
CURRENT = """
    SELECT * FROM stories QUALIFY row_number() OVER (
        PARTITION BY story_id ORDER BY fetched_at DESC, updated_at DESC NULLS LAST, content_hash DESC) = 1
"""


def day_table(day: int, rows: int, edit_share: float) -> pa.Table:
    """One day's rows: new stories, plus edits of stories first landed `day // 2` days earlier."""
    start = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(days=day)
    edits = int(rows * edit_share) if day else 0
    ids = [f"s{day}-{i}" for i in range(rows - edits)] + [f"s{day // 2}-{i}" for i in range(edits)]
    n = len(ids)
    columns: dict[str, list[object]] = {
        "story_id": ids,
        "content_hash": [f"h{day}-{i}" for i in range(n)],
        "source": ["bench"] * n,
        "origin": ["bench"] * n,
        "feed_url": [None] * n,
        "guid": [None] * n,
        "url": [f"https://news.example/{sid}" for sid in ids],
        "title": [f"Story {sid}" for sid in ids],
        "summary": [None] * n,
        "body": [BODY] * n,
        "authors": [[]] * n,
        "language": ["en"] * n,
        "categories": [[]] * n,
        "published_at": [start + timedelta(seconds=i) for i in range(n)],
        "updated_at": [None] * n,
        "fetched_at": [start + timedelta(hours=12)] * n,
        "topics": [[TOPICS[i % len(TOPICS)], TOPICS[(i * 7) % len(TOPICS)]] for i in range(n)],
        "topic_hits": [[]] * n,
        "taxonomy_version": ["bench"] * n,
        "references": [[]] * n,
        "attribution": [None] * n,
        "schema_version": [1] * n,
    }
    return pa.Table.from_pydict(columns, schema=arrow_schema())


def write_lake(root: Path, rows: int, edit_share: float) -> str:
    for day in range(DAYS):
        folder = root / f"dt=2026-{1 + day // 28:02d}-{1 + day % 28:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        write_parquet(day_table(day, rows // DAYS, edit_share), str(folder / "daily.parquet"))
    return str(root / "*" / "*.parquet")


def best(run: Callable[[], object], repeats: int = 3) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - started)
    return min(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows in the synthetic lake")
    parser.add_argument("--edits", type=float, default=0.05, help="share of rows that are later versions")
    args = parser.parse_args()
    import duckdb
    import polars as pl

    with tempfile.TemporaryDirectory() as tmp:
        glob = write_lake(Path(tmp), args.rows, args.edits)
        con = duckdb.connect()
        con.sql(f"CREATE VIEW stories AS SELECT * FROM read_parquet('{glob}', hive_partitioning = true)")
        per_topic = "SELECT t, count(*) FROM (SELECT unnest(topics) AS t FROM {}) GROUP BY t"
        lf = pl.scan_parquet(glob, hive_partitioning=True)
        order = ["story_id", "fetched_at", "updated_at", "content_hash"]
        current_lf = (
            lf.sort(order, descending=[False, True, True, True], nulls_last=True)
            .group_by("story_id", maintain_order=True)
            .first()
        )

        def polars_topics(frame: pl.LazyFrame) -> object:
            return frame.explode("topics").group_by("topics").agg(pl.len()).collect()

        superseded = Path(tmp) / "superseded.parquet"
        con.sql(f"""COPY (SELECT story_id, content_hash FROM stories EXCEPT SELECT story_id, content_hash
                 FROM ({CURRENT})) TO '{superseded}' (FORMAT parquet)""")
        anti = (
            f"(SELECT * FROM stories ANTI JOIN read_parquet('{superseded}') USING (story_id, content_hash))"
        )
        cases: list[tuple[str, Callable[[], object]]] = [
            ("duckdb all rows", lambda: con.sql(per_topic.format("stories")).fetchall()),
            ("duckdb current view", lambda: con.sql(per_topic.format(f"({CURRENT})")).fetchall()),
            ("duckdb superseded list", lambda: con.sql(per_topic.format(anti)).fetchall()),
            ("polars all rows", lambda: polars_topics(lf)),
            ("polars current view", lambda: polars_topics(current_lf)),
        ]
        rows = con.sql("SELECT count(*), count(DISTINCT story_id) FROM stories").fetchall()[0]
        print(f"{rows[0]:,} rows, {rows[1]:,} stories, {DAYS} files")
        figures = {name: best(run)[0] for name, run in cases}
        for name, seconds in figures.items():
            print(f"{name:22} {seconds:7.3f} s")
        for engine in ("duckdb", "polars"):
            ratio = figures[f"{engine} current view"] / figures[f"{engine} all rows"]
            print(f"{engine}: the current view costs {ratio:.1f}x the naive query")


if __name__ == "__main__":
    main()
