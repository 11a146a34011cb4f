"""`wirefeed train-tags [FILES...] [--extra FILE...] [--cross-validate] [--threshold P]`: train the sense
model.

Leaves each of FILES (default: the writers' sets tests/data/tags/train_a..g.jsonl) out in turn, trains on the
others plus the --extra files (default: tests/data/tag_eval.jsonl and tests/data/tags/train_h.jsonl, the
passing mentions) and scores it (pipeline.tagging.crossval),
chooses each topic's threshold from those held-out predictions by the stated rule, then trains on all of
them and writes the artifact the taxonomy names (schemas/topics.sense.json). --cross-validate prints the
leave-one-writer-out table only; --threshold P skips the cross-validation and uses P for every topic.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from pipeline.errors import ConfigError, WirefeedError
from pipeline.tagging.crossval import (
    RULE,
    choose_thresholds,
    cross_validate,
    format_table,
    train_with_thresholds,
)
from pipeline.tagging.taxonomy import Taxonomy
from pipeline.tagging.train import DEFAULT_EXTRA, DEFAULT_FOLDS, LabeledFile, Options, describe, train

EXIT_OK, EXIT_UNUSABLE = 0, 2


def run(args: argparse.Namespace) -> int:
    options = Options(l2=args.l2, min_df=args.min_df)
    try:
        taxonomy = Taxonomy.load(args.taxonomy)
        if taxonomy.sense is None:
            raise ConfigError("the taxonomy has no `sense` block: nothing to train", path=taxonomy.source)
        folds = [LabeledFile.read(Path(p)) for p in args.files or DEFAULT_FOLDS]
        extra = [LabeledFile.read(Path(p)) for p in (DEFAULT_EXTRA if args.extra is None else args.extra)]
        if args.cross_validate:
            held = cross_validate(taxonomy, folds, extra, options)
            print(format_table(held, choose_thresholds(held)))
            print(f"thresholds: {RULE}")
            return EXIT_OK
        if args.threshold is not None:
            fixed = Options(l2=args.l2, min_df=args.min_df, threshold=args.threshold)
            model = train(taxonomy, [*folds, *extra], fixed)
        else:
            model, held = train_with_thresholds(taxonomy, folds, extra, options)
            print(format_table(held, {t: m.threshold for t, m in model.topics.items()}))
            print(f"thresholds: {RULE}")
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
            f"  {topic}: threshold {model.topics[topic].threshold:.2f}, {examples['positive']} positive / "
            f"{examples['negative']} negative examples (candidate stories and their leads), "
            f"{sizes['words']} word and {sizes['cues']} cue weights"
        )
    return EXIT_OK
