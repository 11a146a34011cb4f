"""The one entry point from input bytes to tagged stories: parse -> normalize -> tag."""

from __future__ import annotations

import importlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from pipeline.errors import BadInputError, BadRecordError
from pipeline.parsing.normalize import normalize
from pipeline.parsing.parse import RawEntry, parse_bytes
from pipeline.schema import Story

log = logging.getLogger(__name__)


class StoryTagger(Protocol):
    """What pipeline.tagging.rules.Tagger provides to this stage."""

    def tag_story(self, story: Story, packed: bool = False) -> Story: ...


@dataclass
class StoryBatch:
    stories: list[Story]
    problems: list[str] = field(default_factory=list)
    rejected_entries: int = 0


def load_default_tagger() -> StoryTagger:
    """pipeline.tagging.rules.default_tagger(), imported only when tagging is wanted."""
    tagging = importlib.import_module("pipeline.tagging.rules")  # lazy: tagging loads a taxonomy
    tagger: StoryTagger = tagging.default_tagger()
    return tagger


def stories_from_entries(
    entries: Iterable[RawEntry],
    origin: str,
    *,
    fetched_at: datetime,
    tagger: StoryTagger | None = None,
    for_table: bool = False,
) -> StoryBatch:
    """Normalize and (when `tagger` is given) tag parsed entries; an unusable entry is dropped and counted.
    `for_table`: the stories go into parquet.to_table and nowhere else (their topic_hits may be packed).
    Every entry is normalized before the first is tagged (measured: a JSON Lines day prepared about 2 us a
    story faster, 16 alternated pairs; the tag calls alone did not change: the cause is not pinned down)."""
    batch = StoryBatch([])
    origins: dict[str, str] = {}
    for i, entry in enumerate(entries):
        try:
            batch.stories.append(normalize(entry, fetched_at=fetched_at, origins=origins))
        except BadRecordError as exc:
            batch.rejected_entries += 1
            batch.problems.append(f"entry {i}: {exc.message}")
            log.info("dropped entry %d of %s: %s", i, origin, exc.message)
    if tagger is not None:
        batch.stories = [tagger.tag_story(story, for_table) for story in batch.stories]
    return batch


def stories_from_bytes(
    data: bytes,
    origin: str,
    *,
    fetched_at: datetime,
    source: str | None = None,
    feed_url: str | None = None,
    content_type: str | None = None,
    tagger: StoryTagger | None = None,
    for_table: bool = False,
) -> StoryBatch:
    """Parse, normalize and (when `tagger` is given) tag one input. Raises BadInputError for an unusable
    input (also `no_entries` when every entry was dropped); an unusable entry is dropped and counted in
    `rejected_entries`. `for_table`: as stories_from_entries'."""
    parsed = parse_bytes(data, origin, source=source, feed_url=feed_url, content_type=content_type)
    batch = stories_from_entries(
        parsed.entries, origin, fetched_at=fetched_at, tagger=tagger, for_table=for_table
    )
    batch.problems[:0] = parsed.problems
    batch.rejected_entries += parsed.rejected_entries
    if not batch.stories:
        raise BadInputError(
            "no_entries",
            f"none of the {batch.rejected_entries} entries has usable text",
            problems=batch.problems,
        )
    return batch
