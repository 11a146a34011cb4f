"""Benchmarks (`make bench`). They print figures; they assert nothing.

1. Topic tagging rate on one core (bench/tagging.py): deterministic ~3 KB stories of a realistic wire
   section mix from a seeded RNG, all stories and the candidate stories the sense model reads apart, best
   and median of several timed repeats; then the seed wire story, when present.
2. Over ../shared/corpora/feedparser-tests (when present): feedparser's own parse rate from bytes, and the
   full pipeline.parsing.stories.stories_from_bytes rate (parse + normalize + tag), with the overhead ratio.
3. The goals of issue 9 (bench/goals.py): the RSS fast path's agreement with feedparser and fallback rate;
   snapshot and JSON Lines backfills against plain baseline scripts (paired, interleaved, whole process
   trees, CPU seconds); the daily run from loopback HTTP into MinIO; landing cost at day 1 vs day 1,000;
   peak RSS of a 1,000,000-story backfill; the hostile-input linearity check of issue 8.
"""

from __future__ import annotations

import argparse
import importlib
import io
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import feedparser

from bench import goals
from bench.tagging import bench_seed_story, bench_tagging, timed

REPO = Path(__file__).resolve().parent.parent
CORPUS = REPO.parent / "shared" / "corpora" / "feedparser-tests"
SEEDS = REPO.parent / "shared" / "seeds"


def bench_corpus(repeats: int) -> None:
    if not CORPUS.is_dir():
        print(f"corpus: skipped, {CORPUS} not found (../shared is absent)")
        return
    if repeats < 1:
        print("corpus: skipped (--corpus-repeats 0)")
        return
    files = sorted(p for p in CORPUS.rglob("*") if p.is_file() and p.suffix in {".xml", ".json"})
    blobs = [(str(p), p.read_bytes()) for p in files]
    megabytes = sum(len(b) for _, b in blobs) / 1e6
    entries = sum(len(feedparser.parse(data).entries) for _, data in blobs)

    def parse_only() -> None:
        for _, data in blobs:
            feedparser.parse(data)

    fp_time = min(timed(parse_only, repeats)[0])
    print(f"corpus: {len(blobs)} files, {megabytes:.1f} MB, {entries} feedparser entries ({CORPUS})")
    print(
        f"feedparser only: {len(blobs) / fp_time:,.0f} files/s, {entries / fp_time:,.0f} entries/s "
        f"(best of {repeats}, {fp_time:.2f} s)"
    )
    try:
        stories_module = importlib.import_module("pipeline.parsing.stories")
        stories_from_bytes = stories_module.stories_from_bytes
    except (ImportError, AttributeError) as exc:
        print(f"full path: pipeline.parsing.stories.stories_from_bytes is not available yet ({exc}); skipped")
        return
    from pipeline.errors import WirefeedError
    from pipeline.tagging.rules import default_tagger

    tagger = default_tagger()
    fetched_at = datetime(2026, 1, 1, tzinfo=UTC)
    counts = {"stories": 0}
    rejected: Counter[str] = Counter()

    def full_path() -> None:
        counts["stories"] = 0
        rejected.clear()
        for origin, data in blobs:
            try:
                batch = stories_from_bytes(data, origin, fetched_at=fetched_at, tagger=tagger)
            except WirefeedError as exc:
                rejected[exc.kind] += 1
                continue
            counts["stories"] += len(batch.stories)

    full_time = min(timed(full_path, repeats)[0])
    print(
        f"full path (parse+normalize+tag): {len(blobs) / full_time:,.0f} files/s, "
        f"{counts['stories'] / full_time:,.0f} stories/s ({counts['stories']} stories, "
        f"{sum(rejected.values())} inputs rejected; best of {repeats}, {full_time:.2f} s)"
    )
    kinds = ", ".join(f"{kind} {n}" for kind, n in rejected.most_common()) or "none"
    print(f"full path: inputs rejected by kind: {kinds} (rejected inputs stop before normalize and tag)")
    print(f"overhead: full path / feedparser only = {full_time / fp_time:.2f}x (all files, defaults)")
    bench_overhead_on_stories(blobs, stories_from_bytes, tagger, fetched_at, repeats)


def bench_overhead_on_stories(
    blobs: list[tuple[str, bytes]],
    stories_from_bytes: Callable[..., Any],
    tagger: Any,
    fetched_at: datetime,
    repeats: int,
) -> None:
    """The fair ratio: only inputs that yield stories, feedparser called with the options parse.py uses
    (its HTML sanitizer off: pipeline.parsing.text cleans HTML instead), so the difference is
    normalize + tag."""
    from pipeline.errors import WirefeedError

    kept = []
    for origin, data in blobs:
        try:
            stories_from_bytes(data, origin, fetched_at=fetched_at, tagger=tagger)
        except WirefeedError:
            continue
        kept.append((origin, data))

    def parse_only() -> None:
        for _, data in kept:
            feedparser.parse(io.BytesIO(data), sanitize_html=False, resolve_relative_uris=False)

    def full_path() -> None:
        for origin, data in kept:
            stories_from_bytes(data, origin, fetched_at=fetched_at, tagger=tagger)

    fp_time = min(timed(parse_only, repeats)[0])
    full_time = min(timed(full_path, repeats)[0])
    print(
        f"overhead on the {len(kept)} inputs with stories (feedparser options of pipeline/parsing/parse.py): "
        f"feedparser {fp_time:.3f} s, parse+normalize+tag {full_time:.3f} s = {full_time / fp_time:.2f}x"
    )


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument("--stories", type=int, default=5000, help="generated stories for the tagging benchmark")
    p.add_argument("--repeats", type=int, default=7, help="timed repeats of the tagging benchmark")
    p.add_argument("--corpus-repeats", type=int, default=1, help="timed repeats over the corpus")
    p.add_argument("--paired-repeats", type=int, default=5, help="runs of each side of a paired comparison")
    p.add_argument("--growth-days", type=int, default=1000, help="days landed for the landing-growth figure")
    p.add_argument("--million", type=int, default=1_000_000, help="stories of the memory benchmark")
    p.add_argument("--only", choices=goals.SECTIONS, action="append", help="run only these goal sections")
    args = p.parse_args()
    if not args.only:
        bench_tagging(args.stories, args.repeats)
        bench_seed_story(args.repeats)
        bench_corpus(args.corpus_repeats)
    goals.run_goals(args.only or list(goals.SECTIONS), args.paired_repeats, args.growth_days, args.million)


if __name__ == "__main__":
    main()
