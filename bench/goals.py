"""The figures issue 9 asks `make bench` to print (each section can run alone: python -m bench --only X).

Comparisons are paired and interleaved (a b, b a, ...), whole process trees, CPU seconds, medians. Inputs are
generated into a temporary directory by bench/generate.py (seeded); nothing is committed.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

from bench import generate
from bench.measure import Run, median_cpu, paired, run

SECTIONS = ("fastpath", "snapshots", "jsonl", "daily", "growth", "memory", "linearity")
PY = sys.executable
GIB = 1024**3


def _backfill(archive: Path, lake: Path, first: str, last: str, *extra: str) -> Callable[[], Run]:
    def go() -> Run:
        target = lake / f"run-{time.monotonic_ns()}"
        cmd = [PY, "-m", "pipeline.cli", "backfill", "--archive", str(archive), "--from", first, "--to", last]
        return run([*cmd, "--lake", str(target), *extra])

    return go


def _script(module: str, archive: Path, out: Path) -> Callable[[], Run]:
    def go() -> Run:
        return run([PY, "-m", module, str(archive), str(out / f"run-{time.monotonic_ns()}")])

    return go


def _report(
    name: str, ours: list[Run], theirs: list[Run], goal: str, pair_ratio: Callable[[Run, Run], float]
) -> None:
    """The medians and the goal's ratio of them, then each pair's own ratio (the two runs of a pair ran one
    after the other, under the same load: their spread shows how far one run's ratio can be trusted)."""
    a, b = median_cpu(ours), median_cpu(theirs)
    pairs = [pair_ratio(x, y) for x, y in zip(ours, theirs, strict=True)]
    print(
        f"{name}: wirefeed {a:.2f} CPU-s (runs {', '.join(f'{r.cpu:.2f}' for r in ours)}; median wall "
        f"{statistics.median(r.wall for r in ours):.2f} s), baseline {b:.2f} CPU-s (runs "
        f"{', '.join(f'{r.cpu:.2f}' for r in theirs)}): {goal}; pair by pair "
        f"{', '.join(f'{r:.2f}x' for r in pairs)} (median {statistics.median(pairs):.2f}x)"
    )


def fastpath() -> None:
    from bench.differential import compare

    w = generate.Writer(7)
    feeds = [(f"g{i}.xml", generate.rss_feed(w, i, 20, date(2025, 9, 1)), {}) for i in range(20)]
    print(compare(feeds).line("fast path, generated news feeds"))
    print(compare(generate.quirky_rss_feeds(1, 400)).line("fast path, quirky generated feeds"))
    print(compare(generate.mutated_feeds(1, 8000)).line("fast path, mutated quirky feeds"))
    corpus = Path(__file__).resolve().parent.parent.parent / "shared" / "corpora" / "feedparser-tests"
    if corpus.is_dir():
        files = [(str(p), p.read_bytes(), {}) for p in sorted(corpus.rglob("*")) if p.is_file()]
        print(compare(files).line("fast path, feedparser's corpus"))


def snapshots(tmp: Path, repeats: int) -> None:
    archive = tmp / "snapshots"
    items = generate.snapshot_archive(archive)
    ours, theirs = paired(
        _backfill(archive, tmp / "lakes", "2025-09-01", "2025-09-04", "--workers", "2"),
        _script("bench.baseline_feedparser", archive, tmp / "out"),
        repeats,
    )
    ratio = median_cpu(theirs) / median_cpu(ours)
    _report(
        f"snapshot backfill ({items} items, 200 RSS files, 4 days)",
        ours,
        theirs,
        f"{ratio:.2f}x the plain feedparser -> pyarrow -> Parquet baseline (goal >= 7x)",
        lambda ours, base: base.cpu / ours.cpu,
    )


def jsonl(tmp: Path, repeats: int) -> None:
    archive = tmp / "jsonl"
    mapping = generate.jsonl_archive(archive, stories=100_000, days=6)
    ours, theirs = paired(
        _backfill(
            archive, tmp / "lakes", "2025-09-01", "2025-09-06", "--layout", "jsonl", "--mapping", str(mapping)
        ),
        _script("bench.baseline_jsonl", archive, tmp / "out"),
        repeats,
    )
    ratio = median_cpu(ours) / median_cpu(theirs)
    _report(
        "JSON Lines backfill (100,000 stories, 6 days, mapped)",
        ours,
        theirs,
        f"{ratio:.2f}x the CPU of json.loads -> Arrow -> zstd Parquet (goal <= 2x)",
        lambda ours, base: ours.cpu / base.cpu,
    )


def daily() -> None:
    from bench.daily_run import daily_run

    goals = {"new": "goal < 15 s wall", "all 304, next day": "goal < 3 s wall"}
    for name, r in daily_run().items():
        print(
            f"daily run, 200 feeds x 50 items, loopback HTTP -> MinIO ({name}): {r.wall:.2f} s wall, "
            f"{r.cpu:.2f} s CPU ({goals.get(name, 'keeps every story of the interval')})"
        )


def growth(days: int) -> None:
    from bench.landing_growth import landing_growth

    r = landing_growth(days, per_day=20)
    print(
        f"landing growth (days of 20 stories, local lake, {r['pairs']:.0f} interleaved pairs): day 1 median "
        f"{r['first_cpu'] * 1000:.1f} ms CPU, day {days} median {r['last_cpu'] * 1000:.1f} ms "
        f"CPU = {r['cpu_ratio']:.2f}x "
        f"(wall {r['first_wall'] * 1000:.1f} -> {r['last_wall'] * 1000:.1f} ms = {r['wall_ratio']:.2f}x); "
        "goal <= 1.2x"
    )


def memory(tmp: Path, stories: int) -> None:
    archive = tmp / "million"
    days = 50  # 20,000 stories a day: a large wire's daily volume
    mapping = generate.jsonl_archive(archive, stories=stories, days=days, seed=13, body_chars=(300, 700))
    result = _backfill(
        archive,
        tmp / "lakes",
        "2025-09-01",
        (date(2025, 9, 1) + timedelta(days=days - 1)).isoformat(),
        "--layout",
        "jsonl",
        "--mapping",
        str(mapping),
        "--workers",
        "2",
    )()
    print(
        f"memory: {stories:,}-story JSON Lines backfill ({days} days, --workers 2): peak RSS summed over its "
        f"processes {result.peak_rss / GIB:.2f} GiB (goal < 1.5 GiB), {result.wall:.0f} s wall, "
        f"{result.cpu:.0f} CPU-s"
    )


def linearity() -> None:
    """Issue 8 section 1, the case this module's owner fixed: nested <b> then `<a\\n` x N, N and 2N."""
    from pipeline.parsing.text import html_to_text

    times = []
    for n in (250_000, 500_000):
        html = "<b>" * 300 + "<a\n" * n
        start = time.process_time()
        html_to_text(html)
        times.append(time.process_time() - start)
    print(
        f"linearity: 300 nested <b> + '<a\\n' x 250k / 500k: {times[0]:.3f} s / {times[1]:.3f} s CPU "
        f"= {times[1] / max(times[0], 1e-9):.2f}x for 2x the input (linear: ~2x; it was quadratic)"
    )


def run_goals(sections: list[str], repeats: int, growth_days: int, million: int) -> None:
    print("goals of issue 9 (CPU seconds of whole process trees; figures move with the load of the machine)")
    with tempfile.TemporaryDirectory(prefix="wirefeed-bench-") as root:
        tmp = Path(root)
        for section in sections:
            if section == "fastpath":
                fastpath()
            elif section == "snapshots":
                snapshots(tmp, repeats)
            elif section == "jsonl":
                jsonl(tmp, repeats)
            elif section == "daily":
                daily()
            elif section == "growth":
                growth(growth_days)
            elif section == "memory":
                memory(tmp, million)
            elif section == "linearity":
                linearity()
