"""`wirefeed run [--feeds FILE] [--lake URI] [--date D] [--json]`: one daily ingestion, then validation.

Prints a summary table (with --json: the summary as JSON on stdout, the table on stderr). Exit 0 when every
feed landed and the day validated, 1 when a feed failed or was skipped in backoff, or validation found
problems (the good feeds are landed either way); errors that stop the run: see pipeline.cli.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from typing import Any

from pipeline.config import Settings
from pipeline.jobs.daily import FAILING_STATUSES, RunFailed, run_daily, summary
from pipeline.jobs.intervals import Interval
from pipeline.lake.landing import Manifest
from pipeline.lake.store import lake_for
from pipeline.lake.validate import check_interval
from pipeline.sources.feeds import load_feeds

FEED_STATUSES = ("ok", "not_modified", "failed", "skipped")


def run(args: argparse.Namespace) -> int:
    settings = Settings.load(lake=args.lake, feeds_file=args.feeds)
    feeds = load_feeds(settings.feeds_file)
    interval = Interval.for_date(args.date or datetime.now(UTC).date().isoformat())
    lake = lake_for(settings, create=True)
    if not (settings.contact or settings.user_agent) and any(not f.local for f in feeds):
        print(
            "wirefeed run: note: set WIREFEED_CONTACT (an e-mail address or URL) so feed publishers can "
            f"reach you; the User-Agent sent is {settings.http_user_agent()!r}",
            file=sys.stderr,
        )
    failed: RunFailed | None = None
    try:
        manifest = run_daily(feeds, lake, interval, settings)
    except RunFailed as exc:
        failed, manifest = exc, exc.manifest
    report = check_interval(lake, interval)
    lines = [render_summary(manifest), ""]
    verdict = "ok" if report.ok else "FAILED"
    lines.append(f"validate {interval.label}: {verdict} ({len(report.violations)} violations)")
    lines += [f"  {v.kind}: {v.message}" for v in report.violations[:20]]
    print("\n".join(lines), file=sys.stderr if args.json else sys.stdout)
    if failed is not None:
        print(f"wirefeed run: {failed.message}", file=sys.stderr)
    feeds_failed = any(f["status"] in FAILING_STATUSES for f in manifest.feeds)
    code = 1 if feeds_failed or not report.ok else 0
    if args.json:
        doc: dict[str, Any] = {
            "ok": code == 0,
            "lake": lake.uri(),
            "manifest": manifest.key,
            **summary(manifest),
            "validation": report.to_dict(),
        }
        print(json.dumps(doc, sort_keys=True))
    return code


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
