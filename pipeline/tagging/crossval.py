"""Leave one writer out: how the sense model does on a writer it has never seen, and the decision
threshold of each topic chosen from it.

Each writer's file is held out in turn: the model is trained on the other writers' files and the extra
files, and every held-out story is scored twice, as written ("full") and as its lead only (title and
first sentence, "leads": wire briefs are short), keeping the model's probability. The pooled probabilities
of all folds choose each topic's threshold (`choose_threshold`, the rule below); the table reports every
fold and the pooled figures at those thresholds.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pipeline.tagging.rules import Tagger
from pipeline.tagging.sense import SenseModel
from pipeline.tagging.taxonomy import Taxonomy
from pipeline.tagging.train import LabeledFile, Options, lead, train

VIEWS = ("full", "leads")
# The threshold rule: per topic, the threshold on a grid of THRESHOLD_STEP in THRESHOLD_RANGE that maximizes
# F-beta (BETA = 0.5: precision counts twice as much as recall, as the goal P >= 0.95 / R >= 0.90 leaves
# half the room) over the pooled held-out predictions of all folds, stories and leads alike; ties go to the
# threshold nearest 0.5
BETA = 0.5
THRESHOLD_STEP = 0.01
THRESHOLD_RANGE = (0.2, 0.8)  # never outside: the model's probabilities are only trusted in the middle
RULE = f"max F{BETA} of the pooled leave-one-writer-out predictions (stories and leads), {THRESHOLD_RANGE}"


@dataclass(frozen=True)
class HeldOut:
    """One held-out story (or its lead) for one topic: its label and the model's probability."""

    fold: str
    item: str
    topic: str
    view: str  # "full" or "leads"
    label: bool
    probability: float | None  # None: the text does not mention the topic, so it is never tagged

    def tagged(self, threshold: float) -> bool:
        return self.probability is not None and self.probability >= threshold


def cross_validate(
    taxonomy: Taxonomy,
    folds: Sequence[LabeledFile],
    extra: Sequence[LabeledFile],
    options: Options | None = None,
) -> list[HeldOut]:
    """Train on all folds but one plus `extra`, score the held-out fold's stories and leads; every fold."""
    sensed = sorted(t.id for t in taxonomy.topics if t.sensed)
    out: list[HeldOut] = []
    for held in folds:
        model = train(taxonomy, [f for f in folds if f is not held] + list(extra), options)
        tagger = Tagger(taxonomy, model)
        topics = [t for t in sensed if t in held.topics]
        name = held.path.name
        for item in held.items:
            for view, body in zip(VIEWS, (item.body, lead(item.body)), strict=True):
                verdicts = tagger.explain(item.title, body).verdicts
                for topic in topics:
                    v = verdicts.get(topic)
                    p = None if v is None else v.probability
                    out.append(HeldOut(name, item.id, topic, view, topic in item.topics, p))
    return out


def counts(held: Iterable[HeldOut], threshold: float) -> Counter[str]:
    """tp, fp, fn of `held` at `threshold`."""
    c: Counter[str] = Counter()
    for h in held:
        tagged = h.tagged(threshold)
        if tagged and h.label:
            c["tp"] += 1
        elif tagged:
            c["fp"] += 1
        elif h.label:
            c["fn"] += 1
    return c


def choose_threshold(held: Sequence[HeldOut], topic: str) -> float:
    """The topic's threshold by the rule above."""
    pooled = [h for h in held if h.topic == topic]
    low, high = THRESHOLD_RANGE
    steps = round((high - low) / THRESHOLD_STEP)
    grid = [round(low + i * THRESHOLD_STEP, 2) for i in range(steps + 1)]
    b2 = BETA * BETA

    def score(t: float) -> tuple[float, float]:
        c = counts(pooled, t)
        denominator = (1 + b2) * c["tp"] + b2 * c["fn"] + c["fp"]
        f = (1 + b2) * c["tp"] / denominator if denominator else 0.0
        return round(f, 9), -abs(t - 0.5)

    return max(grid, key=score)


def choose_thresholds(held: Sequence[HeldOut]) -> dict[str, float]:
    return {topic: choose_threshold(held, topic) for topic in sorted({h.topic for h in held})}


def format_table(held: Sequence[HeldOut], thresholds: Mapping[str, float]) -> str:
    """Per topic and view: precision / recall on each held-out file and pooled, at `thresholds`."""

    def pr(c: Counter[str]) -> str:
        tp, fp, fn = c["tp"], c["fp"], c["fn"]
        p = f"{tp / (tp + fp):.3f}" if tp + fp else "-"
        r = f"{tp / (tp + fn):.3f}" if tp + fn else "-"
        return f"{p} / {r}"

    folds = list(dict.fromkeys(h.fold for h in held))
    topics = sorted(thresholds)
    width = max(len("topic (threshold)"), *(len(t) + 7 for t in topics))
    header = f"{'topic (threshold)':<{width}}  {'view':<5}  " + "  ".join(
        f"{name:>15}" for name in [*folds, "pooled"]
    )
    lines = [
        "leave-one-writer-out: precision / recall on the held-out file (leads: title and first sentence)",
        header,
        "-" * len(header),
    ]
    for topic in topics:
        for view in VIEWS:
            rows = [h for h in held if h.topic == topic and h.view == view]
            cells = []
            for name in folds:
                part = [h for h in rows if h.fold == name]
                cells.append(f"{pr(counts(part, thresholds[topic])) if part else '-':>15}")
            cells.append(f"{pr(counts(rows, thresholds[topic])):>15}")
            label = f"{topic} ({thresholds[topic]:.2f})" if view == "full" else ""
            lines.append(f"{label:<{width}}  {view:<5}  " + "  ".join(cells))
    return "\n".join(lines)


def summary(held: Sequence[HeldOut], thresholds: Mapping[str, float]) -> dict[str, Any]:
    """What the artifact records of a cross-validation: per topic and view, [tp, fp, fn] of each held-out
    file and pooled, at the chosen thresholds."""
    out: dict[str, Any] = {}
    for topic, threshold in sorted(thresholds.items()):
        for view in VIEWS:
            rows = [h for h in held if h.topic == topic and h.view == view]
            cells = {}
            for name in dict.fromkeys(h.fold for h in rows):
                c = counts((h for h in rows if h.fold == name), threshold)
                cells[name] = [c["tp"], c["fp"], c["fn"]]
            c = counts(rows, threshold)
            cells["pooled"] = [c["tp"], c["fp"], c["fn"]]
            out.setdefault(topic, {})[view] = cells
    return out


def train_with_thresholds(
    taxonomy: Taxonomy,
    folds: Sequence[LabeledFile],
    extra: Sequence[LabeledFile],
    options: Options | None = None,
) -> tuple[SenseModel, list[HeldOut]]:
    """Cross-validate, choose each topic's threshold by the rule, then train on every file with them. The
    artifact records the rule, the thresholds and the cross-validation's counts."""
    held = cross_validate(taxonomy, folds, extra, options)
    thresholds = choose_thresholds(held)
    meta = {
        "thresholds": {"rule": RULE, "chosen": thresholds},
        "cross_validation": summary(held, thresholds),
    }
    model = train(taxonomy, [*folds, *extra], options, thresholds=thresholds, meta=meta)
    return model, held
