"""Differential check of the RSS fast path against feedparser's path, story field by story field.

Used by tests/test_fastfeed.py (CI) and by `make bench` (which prints the agreement and fallback rates).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pipeline.errors import WirefeedError
from pipeline.parsing import fastfeed
from pipeline.parsing.stories import stories_from_bytes

FETCHED_AT = datetime(2024, 1, 1, tzinfo=UTC)


@dataclass
class Agreement:
    inputs: int = 0
    fast: int = 0  # inputs the fast path read (the rest fell back to feedparser)
    agree: int = 0
    stories: int = 0
    differences: list[str] = field(default_factory=list)

    @property
    def fallback_rate(self) -> float:
        return 1 - self.fast / self.inputs if self.inputs else 0.0

    def line(self, name: str) -> str:
        return (
            f"{name}: {self.inputs} inputs, fast path read {self.fast} ({self.stories} stories), "
            f"agreement {self.agree}/{self.fast}, fallback rate {self.fallback_rate:.1%}"
        )


def _outcome(data: bytes, origin: str, fast: bool, kwargs: dict[str, Any]) -> Any:
    previous, fastfeed.ENABLED = fastfeed.ENABLED, fast
    try:
        batch = stories_from_bytes(data, origin, fetched_at=FETCHED_AT, **kwargs)
        return batch.stories, batch.problems, batch.rejected_entries
    except WirefeedError as exc:
        return ("error", exc.kind, exc.message)
    finally:
        fastfeed.ENABLED = previous


def _difference(origin: str, fast: Any, reference: Any) -> str:
    if isinstance(fast[0], list) and isinstance(reference[0], list) and len(fast[0]) == len(reference[0]):
        for i, (a, b) in enumerate(zip(fast[0], reference[0], strict=True)):
            for key in a:
                if a[key] != b[key]:
                    return f"{origin} story {i} {key}: fast {a[key]!r:.120} != feedparser {b[key]!r:.120}"
    return f"{origin}: fast {fast!r:.200} != feedparser {reference!r:.200}"


def compare(inputs: Iterable[tuple[str, bytes, dict[str, Any]]]) -> Agreement:
    """For each (origin, bytes, stories_from_bytes keywords): does the fast path read it, and if so do the
    stories (every field), problems and rejection counts equal feedparser's path?"""
    result = Agreement()
    for origin, data, kwargs in inputs:
        result.inputs += 1
        content_type = kwargs.get("content_type")
        read = fastfeed.parse_fast(
            data, origin, source=None, feed_url=kwargs.get("feed_url"), content_type=content_type
        )
        if read is None:
            continue
        result.fast += 1
        fast, reference = _outcome(data, origin, True, kwargs), _outcome(data, origin, False, kwargs)
        if fast == reference:
            result.agree += 1
            result.stories += len(fast[0]) if isinstance(fast[0], list) else 0
        else:
            result.differences.append(_difference(origin, fast, reference))
    return result
