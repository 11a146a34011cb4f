"""`wirefeed run [--feeds FILE] [--lake URI] [--date YYYY-MM-DD]`: one daily ingestion, then validation.

Prints a summary table. Exit 0 when the run landed and validated, 1 when too many feeds failed or validation
found problems (the good feeds are landed either way), 2 when it cannot start (configuration).
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from typing import Any

from pipeline.config import Settings
from pipeline.errors import WirefeedError
from pipeline.jobs.daily import RunFailed, run_daily
from pipeline.jobs.intervals import Interval
from pipeline.lake.landing import Manifest
from pipeline.lake.store import lake_for
from pipeline.lake.validate import check_interval
from pipeline.sources.feeds import load_feeds

FEED_STATUSES = ("ok", "not_modified", "failed", "skipped")


def run(args: argparse.Namespace) -> int:
    try:
        settings = Settings.load(lake=args.lake, feeds_file=args.feeds)
        feeds = load_feeds(settings.feeds_file)
        interval = Interval.for_date(args.date or datetime.now(UTC).date().isoformat())
        lake = lake_for(settings, create=True)
    except WirefeedError as exc:
        print(f"wirefeed run: {exc.kind}: {exc.message}", file=sys.stderr)
        return 2
    failed: RunFailed | None = None
    try:
        manifest = run_daily(feeds, lake, interval, settings)
    except RunFailed as exc:
        failed, manifest = exc, exc.manifest
    except WirefeedError as exc:
        print(f"wirefeed run: {exc.kind}: {exc.message}", file=sys.stderr)
        return 1
    print(render_summary(manifest))
    report = check_interval(lake, interval)
    verdict = "ok" if report.ok else "FAILED"
    print(f"validate {interval.label}: {verdict} ({len(report.violations)} violations)")
    for violation in report.violations[:20]:
        print(f"  {violation.kind}: {violation.message}")
    if failed is not None:
        print(f"wirefeed run: {failed.message}", file=sys.stderr)
    return 0 if failed is None and report.ok else 1


def render_summary(manifest: Manifest) -> str:
    """A plain-text table: one line per feed, then story counts, topics and objects."""
    lines = [f"run {manifest.job}/{manifest.label} ({manifest.run_id})", ""]
    rows: list[tuple[str, ...]] = [("feed", "status", "http", "stories", "rejected", "reason")]
    for feed in manifest.feeds:
        rows.append(_feed_row(feed))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        lines.append("  ".join([*cells, row[-1]]).rstrip())
    statuses = [f["status"] for f in manifest.feeds]
    lines += [
        "",
        "feeds: " + ", ".join(f"{s} {statuses.count(s)}" for s in FEED_STATUSES),
        "stories: " + ", ".join(f"{k} {v}" for k, v in manifest.counts.items()),
        "topics: " + (", ".join(f"{t} {n}" for t, n in manifest.topics.items()) or "-"),
        f"objects written: {len(manifest.objects)} ({manifest.rows} rows)",
    ]
    lines += [f"  {o['key']}  {o['rows']} rows  {o['size']} bytes" for o in manifest.objects]
    lines.append(f"  {manifest.key}")
    return "\n".join(lines)


def _feed_row(feed: dict[str, Any]) -> tuple[str, ...]:
    reason = feed.get("reason") or ""
    return (
        str(feed["feed_id"]),
        str(feed["status"]),
        str(feed.get("http_status") or "-"),
        str(feed.get("stories", 0)),
        str(feed.get("rejected", 0)),
        reason if len(reason) <= 100 else reason[:97] + "...",
    )
