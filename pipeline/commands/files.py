"""`wirefeed files [--from D --to D] [--format plain|json]`: the story objects the manifests name (committed
data only), one URI per line or as a JSON array, for any engine to read exactly the committed lake."""

from __future__ import annotations

import argparse
import json

from pipeline.commands.common import lake_and_days
from pipeline.lake.files import committed_objects


def run(args: argparse.Namespace) -> int:
    lake, first, last = lake_and_days(args)
    objects = committed_objects(lake, first, last)
    if args.format == "json":
        print(json.dumps([o.to_dict(lake) for o in objects], indent=2))
    else:
        for obj in objects:
            print(lake.uri(obj.key))
    return 0
