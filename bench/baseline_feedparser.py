"""The plain baseline a user would write instead of wirefeed: feedparser -> pyarrow -> Parquet (zstd).

One Parquet file per archive day, no HTML cleaning, no tags, no dedupe. Usage:
    python -m bench.baseline_feedparser ARCHIVE_DIR OUT_DIR
"""

from __future__ import annotations

import sys
from pathlib import Path

import feedparser
import pyarrow as pa
import pyarrow.parquet as pq


def main(archive: Path, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    days: dict[str, list[Path]] = {}
    for path in sorted(archive.rglob("*.xml")):
        days.setdefault("-".join(path.parent.parts[-3:]), []).append(path)
    for day, paths in days.items():
        rows = []
        for path in paths:
            feed = feedparser.parse(path.read_bytes())
            for e in feed.entries:
                rows.append(
                    {
                        "id": e.get("id"),
                        "url": e.get("link"),
                        "title": e.get("title"),
                        "summary": e.get("summary"),
                        "author": e.get("author"),
                        "published": e.get("published"),
                        "tags": [t.get("term") for t in e.get("tags", [])],
                        "source": feed.feed.get("title"),
                    }
                )
        pq.write_table(pa.Table.from_pylist(rows), out / f"{day}.parquet", compression="zstd")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
