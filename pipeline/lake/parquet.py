"""Stories <-> Arrow tables and Parquet bytes, always with the schema derived from schemas/."""

from __future__ import annotations

import io
from collections.abc import Iterable
from typing import BinaryIO, Final

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.schema import Story, arrow_schema, field_names

COMPRESSION: Final = "zstd"


def story_key(story: Story) -> tuple[str, str]:
    """The exactly-once key: a story version is (story_id, content_hash)."""
    return story["story_id"], story["content_hash"]


def dedupe(stories: Iterable[Story]) -> tuple[list[Story], int]:
    """Keep the first of each (story_id, content_hash); return (unique stories, number dropped)."""
    seen: set[tuple[str, str]] = set()
    unique: list[Story] = []
    dropped = 0
    for story in stories:
        key = story_key(story)
        if key in seen:
            dropped += 1
            continue
        seen.add(key)
        unique.append(story)
    return unique, dropped


def to_table(stories: Iterable[Story]) -> pa.Table:
    """Build a table with exactly arrow_schema(); raises pyarrow errors on a record of the wrong shape."""
    names = field_names()
    rows = list(stories)
    columns = {name: [row[name] for row in rows] for name in names}
    return pa.Table.from_pydict(columns, schema=arrow_schema())


def write_parquet(table: pa.Table, sink: str | BinaryIO) -> None:
    if not table.schema.equals(arrow_schema(), check_metadata=False):
        table = table.cast(arrow_schema())
    pq.write_table(table, sink, compression=COMPRESSION, write_statistics=True)


def parquet_bytes(table: pa.Table) -> bytes:
    buf = io.BytesIO()
    write_parquet(table, buf)
    return buf.getvalue()


def read_table(source: bytes | str | BinaryIO, columns: list[str] | None = None) -> pa.Table:
    if isinstance(source, bytes):
        source = io.BytesIO(source)
    return pq.read_table(source, columns=columns)


def read_stories(source: bytes | str | BinaryIO) -> list[Story]:
    """Read a Parquet file written by write_parquet back into story dicts (UTC-aware datetimes)."""
    rows: list[Story] = read_table(source).to_pylist()
    return rows
