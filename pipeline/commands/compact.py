"""`wirefeed compact --from D --to D`: one file per partition day dt in the range, then validation of the
range. Exit 0 when the range validates afterwards, 1 when it does not (errors: see pipeline.cli)."""

from __future__ import annotations

import argparse
import json
import sys

from pipeline.commands.validate import render
from pipeline.config import Settings
from pipeline.jobs.intervals import day_range
from pipeline.lake.compact import compact
from pipeline.lake.store import lake_for
from pipeline.lake.validate import validate


def run(args: argparse.Namespace) -> int:
    settings = Settings.load(lake=args.lake)
    days = day_range(args.date_from, args.date_to)
    lake = lake_for(settings, must_exist=True)
    result = compact(lake, days[0], days[-1])
    report = validate(lake, days[0], days[-1])
    lines = [f"finished an interrupted compaction: {key}" for key in result.finished]
    lines += [f"removed {key} (left by an interrupted compaction)" for key in result.removed_orphans]
    lines += [f"dt={d['dt']}: {d['files']} files, {d['rows']} rows -> {d['key']}" for d in result.days]
    lines.append(f"compacted {len(result.days)} days; {result.unchanged} already had at most one file")
    lines.append(render(lake.uri(), report))
    print("\n".join(lines), file=sys.stderr if args.json else sys.stdout)
    if args.json:
        print(json.dumps({**result.to_dict(), "validation": report.to_dict()}, sort_keys=True))
    return 0 if report.ok else 1
