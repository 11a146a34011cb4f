"""`wirefeed validate`: check the lake; exit 0 when clean, 1 on any violation or an empty lake (no manifest
at all: a missing directory or a mistyped prefix, unless --allow-empty), 2 when it cannot run."""

from __future__ import annotations

import argparse
import sys

from pipeline.config import Settings
from pipeline.errors import WirefeedError
from pipeline.jobs.intervals import parse_day
from pipeline.lake.store import open_lake
from pipeline.lake.validate import validate


def run(args: argparse.Namespace) -> int:
    try:
        settings = Settings.load(lake=args.lake)
        first = parse_day(args.date_from) if args.date_from else None
        last = parse_day(args.date_to) if args.date_to else None
        lake = open_lake(settings.lake, settings)
        report = validate(lake, first, last)
    except WirefeedError as exc:
        print(f"wirefeed validate: {exc.kind}: {exc.message}", file=sys.stderr)
        return 2
    verdict = "OK" if report.ok else f"FAILED ({len(report.violations)} violations)"
    print(
        f"{lake.uri()}: {report.manifests} manifests, {report.objects} objects, {report.rows} rows: {verdict}"
    )
    for v in report.violations:
        print(f"  {v.kind}: {', '.join(v.keys)}: {v.message}")
    if report.lake_manifests == 0 and not getattr(args, "allow_empty", False):
        print(
            f"wirefeed validate: {lake.uri()} holds no manifest: an empty or mistyped lake"
            " (--allow-empty accepts it)",
            file=sys.stderr,
        )
        return 1
    return 0 if report.ok else 1
