"""`wirefeed backfill`: land an archive day by day. Exit 0 when every day landed (or was skipped) and every
input was usable, 1 when a day failed (e.g. every input of a day was rejected) or an input was unusable (rerun
to resume: days whose archive listing is unchanged are skipped).
A summary goes to stdout, or with --json the totals as JSON (keys: days, landed, skipped, failed, inputs,
failed_inputs, rejected, empty, stories {input, new, updated, duplicate, batch_duplicate, kept}, results: one
summary per day). Every input story is new, updated, a duplicate of a landed one or repeated within its day
(batch_duplicate); kept counts an interrupted attempt's rows that the rerun kept."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from pipeline.config import Settings
from pipeline.errors import ConfigError
from pipeline.jobs.backfill import run_backfill
from pipeline.sources.archive import LAYOUTS


def run(args: argparse.Namespace) -> int:
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
    print(render(args.date_from, args.date_to, totals), file=sys.stderr if args.json else sys.stdout)
    if args.json:
        print(json.dumps(totals, sort_keys=True))
    # 1: something was not landed (a day, an input, a record of an input); what was good has landed
    return 1 if totals["failed"] or totals["failed_inputs"] or totals["rejected"] else 0


def render(first: str, last: str, totals: dict[str, Any]) -> str:
    s = totals["stories"]
    lines = [
        f"backfill {first}..{last}: {totals['days']} days, {totals['landed']} landed, "
        f"{totals['skipped']} skipped ({totals['empty']} empty), {len(totals['failed'])} failed; "
        f"{totals['inputs']} inputs "
        f"({totals['failed_inputs']} unusable, {totals['rejected']} records rejected); stories "
        f"{s['new']} new, {s['updated']} updated, {s['duplicate']} duplicate, "
        f"{s['batch_duplicate']} repeated within their day"
    ]
    for day in totals["results"]:
        if "error" in day:
            lines.append(f"  {day['day']}: FAILED {day['error']}: {day['message']}")
        lines += [f"  {day['day']}: {err['input']}: {err['reason']}" for err in day.get("errors") or []]
    return "\n".join(lines)
