"""What several commands share."""

from __future__ import annotations

import argparse
from datetime import date

from pipeline.config import Settings
from pipeline.jobs.intervals import parse_day
from pipeline.lake.store import Lake, lake_for


def lake_and_days(args: argparse.Namespace) -> tuple[Lake, date | None, date | None]:
    """The existing lake of --lake and the optional --from / --to days of a command that reads it."""
    settings = Settings.load(lake=args.lake)
    first = parse_day(args.date_from) if args.date_from else None
    last = parse_day(args.date_to) if args.date_to else None
    return lake_for(settings, must_exist=True), first, last
