"""`wirefeed eval-tags FILE [--errors] [--topics A,B]`: precision, recall, F1 and support per topic on a
labeled set (the topics it labels, or those named); --errors lists each wrong item with its reasons."""

from __future__ import annotations

import argparse
import json
import sys

from pipeline.commands.tag import load_tagger
from pipeline.errors import WirefeedError
from pipeline.tagging.evaluate import evaluate, format_report, load_labeled

EXIT_OK, EXIT_UNUSABLE = 0, 2


def run(args: argparse.Namespace) -> int:
    try:
        tagger = load_tagger(args.taxonomy, args.model)
        topics = [t.strip() for t in args.topics.split(",") if t.strip()] if args.topics else None
        report = evaluate(load_labeled(args.file), tagger, topics)
    except WirefeedError as exc:
        print(json.dumps(exc.to_dict(), default=str), file=sys.stderr)
        return EXIT_UNUSABLE
    print(format_report(report, with_errors=args.errors))
    return EXIT_OK
