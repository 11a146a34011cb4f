"""`wirefeed validate`: check the lake; exit 0 when clean, 1 on any violation, 2 when it cannot run."""

from __future__ import annotations

import argparse
import sys

from pipeline.config import Settings
from pipeline.errors import WirefeedError
from pipeline.jobs.intervals import parse_day
from pipeline.lake.keyindex import SHARDS, rebuild_index
from pipeline.lake.store import open_lake
from pipeline.lake.validate import validate


def run(args: argparse.Namespace) -> int:
    try:
        settings = Settings.load(lake=args.lake)
        first = parse_day(args.date_from) if args.date_from else None
        last = parse_day(args.date_to) if args.date_to else None
        lake = open_lake(settings.lake, settings)
        if getattr(args, "repair_index", False):
            index = rebuild_index(lake)
            versions = sum(index.shard(n).num_rows for n in range(SHARDS))
            print(f"{lake.uri()}: key index rebuilt from the manifests: {versions} story versions")
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
    return 0 if report.ok else 1
