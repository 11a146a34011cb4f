"""`wirefeed validate`: check the lake; exit 0 when clean, 1 on any violation, or when the lake holds no
manifest at all (a missing directory, a mistyped prefix) unless --allow-empty (errors: see pipeline.cli)."""

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
    empty = report.lake_manifests == 0 and not getattr(args, "allow_empty", False)
    text = render(lake.uri(), report, empty=empty)
    if empty:
        text += f"\n{lake.uri()} holds no manifest: an empty or mistyped lake (--allow-empty accepts it)"
    if args.json:
        print(text, file=sys.stderr)
        doc = {"lake": lake.uri(), **report.to_dict(), "ok": report.ok and not empty, "empty": empty}
        print(json.dumps(doc, sort_keys=True))
    else:
        print(text, file=sys.stderr if empty else sys.stdout)
    return 0 if report.ok and not empty else 1


def render(where: str, report: ValidationReport, *, empty: bool = False) -> str:
    """The summary line and one line per violation; `empty`: a lake with no manifest, which fails."""
    if not report.ok:
        verdict = f"FAILED ({len(report.violations)} violations)"
    else:
        verdict = "FAILED (no manifest)" if empty else "OK"
    lines = [
        f"{where}: {report.manifests} manifests, {report.objects} objects, {report.rows} rows: {verdict}"
    ]
    lines += [f"  {v.kind}: {', '.join(v.keys)}: {v.message}" for v in report.violations]
    return "\n".join(lines)
