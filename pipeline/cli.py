"""`wirefeed` command line. Argument parsing only: each command's work lives in pipeline.commands.<name>."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="wirefeed", description=__doc__)
    p.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    s = sub.add_parser("parse", help="parse feeds / wire stories into story JSON lines or Parquet")
    s.add_argument(
        "inputs", nargs="+", metavar="PATH_OR_URL", help="files, directories (recursive), URLs or -"
    )
    s.add_argument("--source", help="source name to record (default: the feed's title or the file name)")
    s.add_argument("--format", choices=["jsonl", "parquet"], default="jsonl")
    s.add_argument("--out", help="output file (default stdout; required for parquet)")
    s.add_argument("--no-tag", action="store_true", help="skip topic tagging")

    s = sub.add_parser("tag", help="add topics and topic_hits to JSON lines on stdin")
    s.add_argument("--taxonomy", help="taxonomy YAML (default schemas/topics.yaml)")

    s = sub.add_parser("eval-tags", help="precision / recall / F1 per topic on a labeled JSONL set")
    s.add_argument("file")
    s.add_argument("--taxonomy", help="taxonomy YAML (default schemas/topics.yaml)")
    s.add_argument("--errors", action="store_true", help="list misclassified items")

    s = sub.add_parser("run", help="one daily ingestion: fetch all feeds, land one interval, validate")
    s.add_argument("--feeds", help="feeds YAML (default config/feeds.yaml or WIREFEED_FEEDS)")
    s.add_argument(
        "--lake", help="lake URI: local path or s3://bucket/prefix (default ./lake or WIREFEED_LAKE)"
    )
    s.add_argument("--date", help="UTC date YYYY-MM-DD of the interval [D, D+1) (default: today)")

    s = sub.add_parser("validate", help="check manifests against objects, schema and duplicates")
    s.add_argument("--lake")
    s.add_argument("--from", dest="date_from", help="first UTC date YYYY-MM-DD")
    s.add_argument("--to", dest="date_to", help="last UTC date YYYY-MM-DD (inclusive)")
    s.add_argument(
        "--repair-index",
        action="store_true",
        help="rebuild the key index under _state/index/ from the manifests first",
    )

    s = sub.add_parser("backfill", help="ingest a historical archive day by day")
    s.add_argument("--archive", required=True, help="local path or s3:// prefix of the archive")
    s.add_argument("--from", dest="date_from", required=True)
    s.add_argument("--to", dest="date_to", required=True)
    s.add_argument("--lake")
    s.add_argument("--workers", type=int, default=2)
    s.add_argument("--force", action="store_true", help="redo days whose manifest exists")
    s.add_argument("--layout", help="archive layout (default: detected)")
    s.add_argument("--mapping", help="YAML field mapping for JSON Lines archives")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    level = [logging.WARNING, logging.INFO, logging.DEBUG][min(args.verbose, 2)]
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    module = importlib.import_module(f"pipeline.commands.{args.command.replace('-', '_')}")
    try:
        code: int = module.run(args)
    except BrokenPipeError:
        return 1
    return code


if __name__ == "__main__":
    sys.exit(main())
