"""`wirefeed tag [--taxonomy FILE]`: add topics, topic_hits and taxonomy_version to JSON lines on stdin.

Each input line is an object with `id`, `title` and `body` (or `summary`). Good lines go to stdout with
the tags added; each bad line gives one JSON error line on stderr and the rest carry on (exit 1).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from pipeline.errors import BadRecordError, ConfigError
from pipeline.tagging.rules import Tagger, Taxonomy, default_tagger
from pipeline.tagging.sense import SenseModel

EXIT_OK, EXIT_BAD_LINES, EXIT_CONFIG = 0, 1, 2
_TEXT_FIELDS = ("title", "body", "summary")


def load_tagger(taxonomy_file: str | None, model_file: str | None = None) -> Tagger:
    """The default tagger, or one for another taxonomy (and its model) or another sense model."""
    if model_file:
        return Tagger(Taxonomy.load(taxonomy_file), SenseModel.load(Path(model_file)))
    return Tagger(Taxonomy.load(taxonomy_file)) if taxonomy_file else default_tagger()


def check_line(line: str, lineno: int) -> dict[str, Any]:
    """The JSON object on `line`, or BadRecordError saying why it cannot be tagged."""
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as exc:
        raise BadRecordError(f"invalid JSON: {exc.msg}", line=lineno) from None
    except ValueError as exc:  # e.g. an integer of more than 4300 digits
        raise BadRecordError(f"unreadable JSON value: {exc}"[:200], line=lineno) from None
    except RecursionError:
        raise BadRecordError("JSON nested too deep", line=lineno) from None
    if not isinstance(obj, dict):
        raise BadRecordError("not a JSON object", line=lineno)
    if "id" not in obj:
        raise BadRecordError("missing id", line=lineno)
    wrong = [f for f in _TEXT_FIELDS if f in obj and obj[f] is not None and not isinstance(obj[f], str)]
    if wrong:
        raise BadRecordError(f"{', '.join(wrong)} must be strings", line=lineno, id=obj["id"])
    if not any(obj.get(f) for f in _TEXT_FIELDS):
        raise BadRecordError("no title, body or summary", line=lineno, id=obj["id"])
    return obj


def tag_line(tagger: Tagger, line: str, lineno: int) -> str:
    """The tagged JSON line; BadRecordError for a line that cannot be read, tagged or written back."""
    obj = check_line(line, lineno)
    try:
        return json.dumps(tagger.tag_story(obj), ensure_ascii=False)
    except RecursionError:  # another field nested too deep to write back
        raise BadRecordError("JSON nested too deep", line=lineno, id=str(obj["id"])[:100]) from None


def run(args: argparse.Namespace) -> int:
    try:
        tagger = load_tagger(args.taxonomy)
    except ConfigError as exc:
        print(json.dumps(exc.to_dict(), default=str), file=sys.stderr)
        return EXIT_CONFIG
    bad = 0
    for lineno, line in enumerate(sys.stdin, 1):
        if not line.strip():
            continue
        try:
            print(tag_line(tagger, line, lineno))
        except BadRecordError as exc:
            bad += 1
            print(json.dumps(exc.to_dict(), ensure_ascii=False, default=str), file=sys.stderr)
    return EXIT_BAD_LINES if bad else EXIT_OK
