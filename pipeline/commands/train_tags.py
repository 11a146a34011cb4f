"""`wirefeed train-tags [FILES...] [--extra FILE...] [--cross-validate]`: train the sense model.

Trains on FILES (default: the three writers' sets in tests/data/tags/) plus the --extra files (default:
tests/data/tag_eval.jsonl) and writes the artifact the taxonomy names (schemas/topics.sense.json), or
with --cross-validate prints the leave-one-writer-out estimate: each of FILES held out in turn, trained on
the others and the --extra files.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from pipeline.errors import ConfigError, WirefeedError
from pipeline.tagging.taxonomy import Taxonomy
from pipeline.tagging.train import (
    DEFAULT_EXTRA,
    DEFAULT_FOLDS,
    LabeledFile,
    Options,
    cross_validate,
    describe,
    format_cross_validation,
    train,
)

EXIT_OK, EXIT_UNUSABLE = 0, 2


def run(args: argparse.Namespace) -> int:
    options = Options(l2=args.l2, min_df=args.min_df, threshold=args.threshold)
    try:
        taxonomy = Taxonomy.load(args.taxonomy)
        if taxonomy.sense is None:
            raise ConfigError("the taxonomy has no `sense` block: nothing to train", path=taxonomy.source)
        folds = [LabeledFile.read(Path(p)) for p in args.files or DEFAULT_FOLDS]
        extra = [LabeledFile.read(Path(p)) for p in (DEFAULT_EXTRA if args.extra is None else args.extra)]
        if args.cross_validate:
            print(format_cross_validation(cross_validate(taxonomy, folds, extra, options)))
            return EXIT_OK
        model = train(taxonomy, [*folds, *extra], options)
    except (WirefeedError, ValueError) as exc:
        error = (
            exc.to_dict() if isinstance(exc, WirefeedError) else {"error": "training", "message": str(exc)}
        )
        print(json.dumps(error, default=str), file=sys.stderr)
        return EXIT_UNUSABLE
    out = Path(args.out) if args.out else taxonomy.sense.model
    out.write_text(model.dumps(), "utf-8")
    print(
        f"sense model {model.version} for taxonomy {taxonomy.version} -> {out} ({out.stat().st_size:,} bytes)"
    )
    for topic, sizes in describe(model).items():
        examples = model.meta["examples"][topic]
        print(
            f"  {topic}: {examples['positive']} positive / {examples['negative']} negative examples "
            f"(candidate stories and their leads), {sizes['words']} word and {sizes['cues']} cue weights"
        )
    return EXIT_OK
