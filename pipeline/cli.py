"""`wirefeed`: the command line. Argument parsing and the exit-code mapping; each command's work lives in
pipeline.commands.<name> and raises the pipeline's own errors, which main() turns into one line and a code."""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import sys
from collections.abc import Sequence
from typing import Any

import pipeline
from pipeline.errors import BadInputError, BadRecordError, ConfigError, RetriableError, WirefeedError
from pipeline.redact import redact_text

# Exit codes (README "The wirefeed command"; the DAGs map the same errors, see dags/_common.fail_fast).
EXIT_OK = 0
EXIT_REJECTED = 1  # some inputs rejected, or the lake failed validation: the good data landed
EXIT_USAGE = 2  # bad arguments or configuration (flags, settings, credentials, bucket name)
EXIT_TRANSIENT = 3  # network or object store trouble worth retrying (connection refused, S3 5xx, timeouts)
EXIT_FATAL = 4  # anything else: a corrupt lake, a bug; retrying will not help

DESCRIPTION = """\
Ingest wire feeds (RSS, Atom, JSON Feed, plain-text wire stories, historical archives) into a Parquet lake
on a local path or S3, exactly once, with explainable topic tags; and read the lake back."""

EPILOG = """\
exit codes:
  0  ok
  1  some inputs rejected, or validation failed (what was good has landed)
  2  usage or configuration error (flags, settings, S3 credentials or bucket name)
  3  transient failure worth retrying (network, object store unreachable or 5xx)
  4  fatal error (retrying will not help)

settings come from flags, then WIREFEED_* variables, then the file named by WIREFEED_CONFIG; an s3:// lake
uses AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_DEFAULT_REGION.
`wirefeed COMMAND --help` describes each command; docs/querying.md shows how to read the lake."""

LAKE_HELP = "lake: a local directory or s3://bucket/prefix (default: WIREFEED_LAKE, else ./lake)"
OPEN = "; default: no bound"
JSON_HELP = "print a machine-readable JSON summary on stdout (human-readable text goes to stderr)"
TAXONOMY_HELP = "taxonomy YAML file (default: the bundled schemas/topics.yaml)"


def version() -> str:
    from importlib import metadata  # lazy: 40-50 ms of imports (email, zipfile, csv) only --version needs

    try:
        return metadata.version("wirefeed")
    except metadata.PackageNotFoundError:  # a source tree that was never installed
        return pipeline.__version__


class _VersionAction(argparse.Action):
    """--version, with the version looked up only when asked for."""

    def __init__(self, option_strings: Sequence[str], dest: str = argparse.SUPPRESS, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> None:
        print(f"wirefeed {version()}")
        parser.exit()


def _parser() -> argparse.ArgumentParser:
    # -v is accepted before or after the command: the subcommands count it into a second dest (main() adds
    # both), so that `wirefeed -v run -v` is as verbose as `-vv`.
    after = argparse.ArgumentParser(add_help=False)
    after.add_argument(
        "-v", "--verbose", dest="verbose_after", action="count", default=0, help="more logging (-vv: debug)"
    )
    p = argparse.ArgumentParser(
        prog="wirefeed",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv: debug)")
    p.add_argument("--version", action=_VersionAction, help="show the version and exit")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND", title="commands")

    def command(name: str, summary: str, description: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=summary, description=description, parents=[after])

    s = command(
        "parse",
        "parse feed files, directories or URLs into story JSON lines or Parquet",
        "Parse feeds and wire stories into normalized, tagged stories: one JSON object per line on stdout "
        "(or --out). Each rejected input is one JSON line on stderr; exit 1 when any input was rejected.",
    )
    s.add_argument(
        "inputs",
        nargs="+",
        metavar="PATH_OR_URL",
        help="files, directories (read recursively), http(s) URLs, or - for stdin",
    )
    s.add_argument("--source", help="source name to record (default: the feed's title or the file name)")
    s.add_argument(
        "--format", choices=["jsonl", "parquet"], default="jsonl", help="output format (default: jsonl)"
    )
    s.add_argument("--out", metavar="FILE", help="output file (default: stdout; required for parquet)")
    s.add_argument("--no-tag", action="store_true", help="skip topic tagging")

    s = command(
        "tag",
        "add topics to story JSON lines read from stdin",
        "Read JSON lines with id, title and body (or summary) on stdin; write them to stdout with topics, "
        "topic_hits and taxonomy_version added. A bad line is one JSON error line on stderr (exit 1).",
    )
    s.add_argument("--taxonomy", metavar="FILE", help=TAXONOMY_HELP)

    s = command(
        "eval-tags",
        "score the tagger on a labeled JSON lines set",
        "Precision, recall, F1 and support per topic, and micro averages, on a labeled JSON lines file.",
    )
    s.add_argument("file", metavar="FILE", help="labeled JSON lines: id, title, body, topics")
    s.add_argument("--taxonomy", metavar="FILE", help=TAXONOMY_HELP)
    s.add_argument(
        "--errors",
        action="store_true",
        help="also list each misclassified item with its evidence or near miss",
    )
    s.add_argument("--topics", metavar="A,B", help="topics to score (default: those the file labels)")
    s.add_argument("--model", metavar="FILE", help="sense model artifact (default: the taxonomy's)")

    s = command(
        "train-tags",
        "train the sense model of the taxonomy (deterministic)",
        "Train the document-level sense model on labeled JSON lines files and write the artifact the "
        "taxonomy names (schemas/topics.sense.json), each topic's threshold chosen from a "
        "leave-one-writer-out cross-validation; with --cross-validate, print the leave-one-writer-out "
        "estimate instead (each FILE held out in turn).",
    )
    s.add_argument(
        "files",
        nargs="*",
        metavar="FILE",
        help="one labeled set per writer (default: tests/data/tags/train_a to train_g)",
    )
    s.add_argument(
        "--extra",
        nargs="*",
        metavar="FILE",
        help="sets always trained on (default: tests/data/tag_eval.jsonl and tests/data/tags/train_h.jsonl)",
    )
    s.add_argument("--taxonomy", metavar="FILE", help=TAXONOMY_HELP)
    s.add_argument("--out", metavar="FILE", help="artifact path (default: the taxonomy's sense.model)")
    s.add_argument("--cross-validate", action="store_true", help="print the leave-one-writer-out estimate")
    s.add_argument("--l2", type=float, default=1.0, help="L2 penalty of the word weights (default: 1.0)")
    s.add_argument("--min-df", type=int, default=2, help="stories a feature must occur in (default: 2)")
    s.add_argument(
        "--threshold",
        type=float,
        help="one probability that tags, for every topic (default: chosen per topic by cross-validation)",
    )

    s = command(
        "run",
        "one daily ingestion: fetch every feed, land the day, validate",
        "Fetch every enabled feed, land the stories of the UTC day [D, D+1) exactly once, then validate "
        "the day. Prints a table per feed; exit 1 when a feed failed or validation found problems.",
    )
    s.add_argument(
        "--feeds", metavar="FILE", help="feeds YAML (default: WIREFEED_FEEDS, else config/feeds.yaml)"
    )
    s.add_argument("--lake", help=LAKE_HELP)
    s.add_argument("--date", metavar="D", help="the UTC day YYYY-MM-DD to land (default: today)")
    s.add_argument("--json", action="store_true", help=JSON_HELP)

    s = command(
        "validate",
        "check the lake: manifests against objects, schema, duplicates, leftovers",
        "Check every manifest whose interval overlaps [--from, --to] against its objects (existence, size, "
        "sha256, schema, rows), duplicates across the lake, and files that readers of stories/ would see "
        "but no manifest names. Exit 1 with the offending keys when anything is wrong.",
    )
    s.add_argument("--lake", help=LAKE_HELP)
    s.add_argument("--from", dest="date_from", metavar="D", help="first UTC day YYYY-MM-DD" + OPEN)
    s.add_argument("--to", dest="date_to", metavar="D", help="last UTC day YYYY-MM-DD, inclusive" + OPEN)
    s.add_argument(
        "--allow-empty", action="store_true", help="a lake without any manifest is fine (default: exit 1)"
    )
    s.add_argument(
        "--repair-index",
        action="store_true",
        help="first rebuild the key index under _state/index/ from the manifests",
    )
    s.add_argument("--json", action="store_true", help=JSON_HELP)

    s = command(
        "backfill",
        "ingest a historical archive day by day (resumable)",
        "Ingest an archive (local path or s3:// prefix) one UTC day at a time, parsing days in parallel "
        "and landing them in date order; days already landed are skipped unless --force.",
    )
    s.add_argument(
        "--archive", required=True, metavar="URI", help="local path or s3:// prefix of the archive"
    )
    s.add_argument("--from", dest="date_from", metavar="D", required=True, help="first UTC day YYYY-MM-DD")
    s.add_argument(
        "--to", dest="date_to", metavar="D", required=True, help="last UTC day YYYY-MM-DD, inclusive"
    )
    s.add_argument("--lake", help=LAKE_HELP)
    s.add_argument("--workers", type=int, default=2, help="parallel parsing processes (default: 2)")
    s.add_argument("--force", action="store_true", help="redo days that already have a manifest")
    s.add_argument(
        "--layout", help="archive layout: raw, snapshots, jsonl or wire (default: detected per archive)"
    )
    s.add_argument("--mapping", metavar="FILE", help="YAML field mapping for a jsonl archive")
    s.add_argument("--json", action="store_true", help=JSON_HELP)

    s = command(
        "files",
        "list the Parquet objects the manifests name (the committed lake)",
        "List the story objects named by the lake's manifests, whose partition dt is within [--from, --to]: "
        "exactly the committed data, for any engine to read (see docs/querying.md).",
    )
    s.add_argument("--lake", help=LAKE_HELP)
    s.add_argument("--from", dest="date_from", metavar="D", help="first partition day dt YYYY-MM-DD" + OPEN)
    s.add_argument(
        "--to", dest="date_to", metavar="D", help="last partition day dt YYYY-MM-DD, inclusive" + OPEN
    )
    s.add_argument(
        "--format",
        choices=["plain", "json"],
        default="plain",
        help="plain: one URI per line; json: an array of {uri, key, dt, rows, size, sha256, manifest}",
    )

    s = command(
        "compact",
        "rewrite the partitions of a range of days into one file per day",
        "Rewrite the committed objects of each partition dt in [--from, --to] into one Parquet file per dt, "
        "exactly once (the same story versions, each once), then validate the range. Safe to interrupt: "
        "rerun it to finish. Run it while no landing writes to the lake.",
    )
    s.add_argument(
        "--from", dest="date_from", metavar="D", required=True, help="first partition day dt YYYY-MM-DD"
    )
    s.add_argument(
        "--to", dest="date_to", metavar="D", required=True, help="last partition day dt YYYY-MM-DD, inclusive"
    )
    s.add_argument("--lake", help=LAKE_HELP)
    s.add_argument("--json", action="store_true", help=JSON_HELP)
    return p


def exit_code(exc: WirefeedError) -> int:
    """The exit code for an error that stopped a command."""
    if isinstance(exc, ConfigError):
        return EXIT_USAGE
    if isinstance(exc, RetriableError):
        return EXIT_TRANSIENT
    if isinstance(exc, BadInputError | BadRecordError):
        return EXIT_REJECTED
    return EXIT_FATAL


def _failed(args: argparse.Namespace, kind: str, message: str, code: int) -> int:
    """Report a command that stopped: one redacted line on stderr (and the JSON summary with --json)."""
    message = redact_text(message)
    print(f"wirefeed {args.command}: {kind}: {message}", file=sys.stderr)
    if getattr(args, "json", False):
        print(json.dumps({"ok": False, "error": kind, "message": message, "exit_code": code}))
    return code


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    verbosity = args.verbose + args.verbose_after
    level = [logging.WARNING, logging.INFO, logging.DEBUG][min(verbosity, 2)]
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    module = importlib.import_module(f"pipeline.commands.{args.command.replace('-', '_')}")
    try:
        code: int = module.run(args)
    except WirefeedError as exc:
        code = _failed(args, exc.kind, exc.message, exit_code(exc))
    except BrokenPipeError:
        return EXIT_REJECTED
    except OSError as exc:  # the file system refused what the command asked (a name too long, a full disk)
        where = f": {str(exc.filename)[:200]}" if exc.filename else ""
        code = _failed(args, "os_error", f"{exc.strerror or exc}{where}", EXIT_FATAL)
    except KeyboardInterrupt:
        print(f"wirefeed {args.command}: interrupted", file=sys.stderr)
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
