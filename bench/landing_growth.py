"""Landing cost as the lake grows: land N small synthetic days into a fresh local lake, time each landing.

Prints the median CPU (process_time) and wall time of landing day 1 (into an empty lake) and day N (into a
lake holding N-1 days), measured in interleaved pairs, and their ratio (the goal: landing day 1,000 costs at
most 1.2x landing day 1). Each day holds `per_day` stories, a fifth of them already landed by the day before
(as feeds repeat items), so every landing really looks keys up.
Run alone: python -m bench.landing_growth --days 1000
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from typing import Any

from pipeline.jobs.intervals import Interval
from pipeline.lake.landing import land
from pipeline.lake.store import LocalLake

FIRST = date(2023, 1, 1)


def _story(n: int, day: date) -> dict[str, Any]:
    sid = hashlib.sha256(f"story {n}".encode()).hexdigest()[:32]
    when = datetime(day.year, day.month, day.day, 9, n % 60, tzinfo=UTC)
    return {
        "story_id": sid,
        "content_hash": sid[::-1],
        "source": "Bench Wire",
        "origin": f"https://wire.example.com/feed-{n % 7}.xml",
        "feed_url": None,
        "guid": f"g{n}",
        "url": f"https://wire.example.com/{n}",
        "title": f"Story {n} about tariffs",
        "summary": None,
        "body": f"Body of story {n}. " * 40,
        "authors": ["A. Writer"],
        "language": "en",
        "categories": ["Trade"],
        "published_at": when,
        "updated_at": None,
        "fetched_at": when,
        "topics": ["tariffs"],
        "topic_hits": [{"topic": "tariffs", "term": "tariffs", "count": 1, "in_title": True}],
        "taxonomy_version": "bench",
        "references": [],
        "attribution": None,
        "schema_version": 1,
    }


def _day_stories(d: int, per_day: int) -> list[dict[str, Any]]:
    """Day d's batch: per_day stories, a fifth of them landed the day before (feeds repeat items)."""
    repeat = per_day // 5
    first_new = d * (per_day - repeat)
    day = FIRST + timedelta(days=d)
    return [_story(n, day) for n in range(max(0, first_new - repeat), first_new + per_day - repeat)]


def _timed_landing(lake: LocalLake, d: int, per_day: int) -> tuple[float, float]:
    stories = _day_stories(d, per_day)
    os.sync()  # no writeback of earlier landings (building the grown lake) runs into the timed one
    start, start_cpu = time.perf_counter(), time.process_time()
    land(lake, Interval.for_date(FIRST + timedelta(days=d), "backfill"), stories)
    return time.process_time() - start_cpu, time.perf_counter() - start


def landing_growth(days: int, per_day: int, repeats: int = 31) -> dict[str, float]:
    """Land days-1 days into a lake, then time, paired and interleaved, landing the first day into an empty
    lake and landing day `days` (then days+1, ...) into the grown one. Medians of `repeats` pairs."""
    first: list[tuple[float, float]] = []
    last: list[tuple[float, float]] = []
    with tempfile.TemporaryDirectory(prefix="wirefeed-landing-") as root:
        grown = LocalLake(f"{root}/grown")
        for d in range(days - 1):
            land(grown, Interval.for_date(FIRST + timedelta(days=d), "backfill"), _day_stories(d, per_day))
        for i in range(repeats):
            fresh = LocalLake(f"{root}/fresh-{i}")
            pair = [lambda: first.append(_timed_landing(fresh, 0, per_day)),  # noqa: B023 (run at once)
                    lambda: last.append(_timed_landing(grown, days - 1 + i, per_day))]  # noqa: B023  # fmt: skip
            for measure in pair if i % 2 == 0 else reversed(pair):
                measure()
    first_cpu, last_cpu = (statistics.median(c for c, _ in runs) for runs in (first, last))
    first_wall, last_wall = (statistics.median(w for _, w in runs) for runs in (first, last))
    return {
        "first_cpu": first_cpu,
        "last_cpu": last_cpu,
        "cpu_ratio": last_cpu / first_cpu,
        "first_wall": first_wall,
        "last_wall": last_wall,
        "wall_ratio": last_wall / first_wall,
        "pairs": repeats,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--days", type=int, default=1000)
    p.add_argument("--per-day", type=int, default=20)
    args = p.parse_args()
    r = landing_growth(args.days, args.per_day)
    print(
        f"landing growth: {args.days} days of {args.per_day} stories (local lake): "
        f"day 1 median {r['first_cpu'] * 1000:.1f} ms CPU / {r['first_wall'] * 1000:.1f} ms wall, "
        f"day {args.days} median {r['last_cpu'] * 1000:.1f} ms CPU / "
        f"{r['last_wall'] * 1000:.1f} ms wall: {r['cpu_ratio']:.2f}x CPU, {r['wall_ratio']:.2f}x wall"
    )


if __name__ == "__main__":
    main()
