"""The plain baseline for JSON Lines archives: json.loads -> Arrow -> Parquet (zstd), one file per input.

No cleaning, no tags, no dedupe. Usage: python -m bench.baseline_jsonl ARCHIVE_DIR OUT_DIR
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq


def main(archive: Path, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for path in sorted(archive.rglob("*.jsonl")):
        with path.open("rb") as lines:
            rows = [json.loads(line) for line in lines if line.strip()]
        pq.write_table(pa.Table.from_pylist(rows), out / f"{path.stem}.parquet", compression="zstd")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
