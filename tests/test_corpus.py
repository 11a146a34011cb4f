"""Every file of feedparser's own test corpus goes through parse + normalize without a traceback."""

import collections
import re
from datetime import UTC, datetime

import pytest

from pipeline.errors import BadInputError
from pipeline.parsing.stories import stories_from_bytes
from pipeline.parsing.text import TAG_OPEN_RE
from pipeline.schema import check_story

pytestmark = pytest.mark.corpus

UNSAFE = re.compile(r"<script|(?:java|vb)script:\S|<[a-zA-Z/!][^>]*>", re.IGNORECASE)
KINDS = {"empty", "binary", "malformed", "encoding", "no_entries", "too_large"}


def text_values(story):
    for key, value in story.items():
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, str):
                yield key, item
            elif isinstance(item, dict):
                yield from ((f"{key}.{k}", v) for k, v in item.items() if isinstance(v, str))


def test_feedparser_corpus(shared_dir):
    root = shared_dir / "corpora" / "feedparser-tests"
    if not root.is_dir():
        pytest.skip("../shared/corpora/feedparser-tests is not present")
    files = sorted(p for p in root.rglob("*") if p.is_file())
    fetched_at = datetime(2024, 1, 1, tzinfo=UTC)
    rejected: collections.Counter[str] = collections.Counter()
    stories = dropped = files_with_stories = 0
    unsafe = []
    for path in files:
        try:
            batch = stories_from_bytes(path.read_bytes(), str(path), fetched_at=fetched_at)
        except BadInputError as exc:
            assert exc.kind in KINDS and exc.message, path
            rejected[exc.kind] += 1
            continue
        dropped += batch.rejected_entries
        files_with_stories += 1
        for story in batch.stories:
            check_story(story)
            stories += 1
            unsafe += [
                (str(path), key, text[:80])
                for key, text in text_values(story)
                if UNSAFE.search(text) or TAG_OPEN_RE.search(text)
            ]
    summary = f"{len(files)} files, {stories} stories, {dropped} dropped entries, rejected {dict(rejected)}"
    print(f"\ncorpus: {summary}")
    assert unsafe == []
    assert len(files) > 2000
    assert files_with_stories + sum(rejected.values()) == len(files)  # every file: stories or an error
    assert (
        files_with_stories > 500 and stories > 500
    )  # regression guard: corpus files with items give stories
