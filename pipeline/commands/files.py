"""`wirefeed files [--from D --to D] [--format plain|json]`: the story objects the manifests name (committed
data only), one URI per line or as a JSON array, for any engine to read exactly the committed lake."""

from __future__ import annotations

import argparse
import json

from pipeline.config import Settings
from pipeline.jobs.intervals import parse_day
from pipeline.lake.files import committed_objects
from pipeline.lake.store import lake_for


def run(args: argparse.Namespace) -> int:
    settings = Settings.load(lake=args.lake)
    first = parse_day(args.date_from) if args.date_from else None
    last = parse_day(args.date_to) if args.date_to else None
    lake = lake_for(settings, must_exist=True)
    objects = committed_objects(lake, first, last)
    if args.format == "json":
        print(json.dumps([o.to_dict(lake) for o in objects], indent=2))
    else:
        for obj in objects:
            print(lake.uri(obj.key))
    return 0
