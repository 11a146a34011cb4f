"""`wirefeed validate`: check the lake; exit 0 when clean, 1 on any violation (errors: see pipeline.cli)."""

from __future__ import annotations

import argparse
import json
import sys

from pipeline.commands.common import lake_and_days
from pipeline.lake.keyindex import SHARDS, rebuild_index
from pipeline.lake.validate import ValidationReport, validate


def run(args: argparse.Namespace) -> int:
    lake, first, last = lake_and_days(args)
    if getattr(args, "repair_index", False):
        index = rebuild_index(lake)
        versions = sum(index.shard(n).num_rows for n in range(SHARDS))
        note = f"{lake.uri()}: key index rebuilt from the manifests: {versions} story versions"
        print(note, file=sys.stderr if args.json else sys.stdout)
    report = validate(lake, first, last)
    text = render(lake.uri(), report)
    if args.json:
        print(text, file=sys.stderr)
        print(json.dumps({"lake": lake.uri(), **report.to_dict()}, sort_keys=True))
    else:
        print(text)
    return 0 if report.ok else 1


def render(where: str, report: ValidationReport) -> str:
    verdict = "OK" if report.ok else f"FAILED ({len(report.violations)} violations)"
    lines = [
        f"{where}: {report.manifests} manifests, {report.objects} objects, {report.rows} rows: {verdict}"
    ]
    lines += [f"  {v.kind}: {', '.join(v.keys)}: {v.message}" for v in report.violations]
    return "\n".join(lines)
