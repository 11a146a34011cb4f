"""`wirefeed backfill`: land an archive day by day. Exit 0 when every day landed or was skipped, 1 when a day
failed, e.g. every input of a day was rejected (rerun to resume: days whose archive listing is unchanged are
skipped), 2 when it cannot start."""

from __future__ import annotations

import argparse
import json
import sys

from pipeline.config import Settings
from pipeline.errors import ConfigError, WirefeedError
from pipeline.jobs.backfill import run_backfill
from pipeline.sources.archive import LAYOUTS


def run(args: argparse.Namespace) -> int:
    try:
        if args.workers < 1:
            raise ConfigError("--workers must be >= 1", field="workers", value=args.workers)
        if args.layout is not None and args.layout not in LAYOUTS:
            raise ConfigError(f"--layout must be one of {', '.join(LAYOUTS)}", field="layout")
        settings = Settings.load(lake=args.lake)
        totals = run_backfill(
            args.archive,
            args.date_from,
            args.date_to,
            settings.lake,
            workers=args.workers,
            force=args.force,
            layout=args.layout,
            mapping=args.mapping,
            settings=settings,
        )
    except WirefeedError as exc:
        print(f"wirefeed backfill: {exc.kind}: {exc.message}", file=sys.stderr)
        return 2
    s = totals["stories"]
    print(
        f"backfill {args.date_from}..{args.date_to}: {totals['days']} days, {totals['landed']} landed, "
        f"{totals['skipped']} skipped ({totals['empty']} empty), {len(totals['failed'])} failed; "
        f"{totals['inputs']} inputs "
        f"({totals['failed_inputs']} unusable, {totals['rejected']} records rejected); stories "
        f"{s['new']} new, {s['updated']} updated, {s['duplicate']} duplicate",
        file=sys.stderr,
    )
    for day in totals["results"]:
        if "error" in day:
            print(f"  {day['day']}: FAILED {day['error']}: {day['message']}", file=sys.stderr)
        for err in day.get("errors") or []:
            print(f"  {day['day']}: {err['input']}: {err['reason']}", file=sys.stderr)
    print(json.dumps(totals, sort_keys=True))
    return 1 if totals["failed"] else 0
