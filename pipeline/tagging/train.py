"""Training the sense model (`wirefeed train-tags`) and estimating it on a writer it has never seen.

Deterministic: the same files and options give the same artifact, byte for byte (files read in the order
given, features indexed in sorted order, a plain-Python L-BFGS with no randomness, weights rounded).
A labeled file trains a topic only if it labels it: a file labels the topics that occur in its labels
(tests/data/tags/ label three; tests/data/tag_eval.jsonl all nine).
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.tagging.evaluate import EvalReport, LabeledItem, evaluate, load_labeled
from pipeline.tagging.logistic import fit
from pipeline.tagging.rules import Tagger
from pipeline.tagging.sense import SenseModel, TopicModel, cue_features
from pipeline.tagging.taxonomy import Taxonomy

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "tests" / "data"
# the writers' files, each held out in turn by --cross-validate, and the project's own set, always trained on
DEFAULT_FOLDS = tuple(DATA / "tags" / f"train_{w}.jsonl" for w in "abc")
DEFAULT_EXTRA = (DATA / "tag_eval.jsonl",)


# Function words and one-letter tokens get no weight: they say more about a writer than about a topic
_STOP_WORDS = """a about above after again against all am an and any are as at be because been before being
    below between both but by can could did do does doing down during each few for from further had has have
    having he her here hers herself him himself his how i if in into is it its itself just me more most my
    myself of off on once only or other our ours ourselves out over own same she should so some such than
    that the their theirs them themselves then there these they this those through to too under until up
    very was we were what when where which while who whom why will with would you your yours yourself
    also said says say"""
STOP_WORDS = frozenset(_STOP_WORDS.split())
CUE = "\x00"
_FIRST_SENTENCE = re.compile(r"(?<=[.!?])\s+")  # cue feature names start with it while training, words do not


@dataclass(frozen=True)
class Options:
    l2: float = 1.0  # penalty on the word weights
    cue_l2: float = 1.0  # penalty on the cue weights
    min_df: int = 2  # a feature must occur in this many training stories of the topic
    threshold: float = 0.5  # probability from which the topic is tagged
    min_weight: float = 1e-3  # smaller weights are dropped from the artifact
    stop_words: bool = True  # leave out STOP_WORDS and one-letter tokens
    leads: bool = True  # also train on each story's lead (title and first sentence): briefs are short

    def to_dict(self) -> dict[str, Any]:
        return dict(vars(self))

    def wanted(self, feature: str) -> bool:
        """Whether a feature may get a weight: any cue; a word unless it is a stop word left out."""
        if feature[0] == CUE:
            return True
        return not self.stop_words or (len(feature) > 1 and feature not in STOP_WORDS)


@dataclass(frozen=True)
class LabeledFile:
    path: Path
    items: list[LabeledItem]
    topics: frozenset[str]  # the topics it labels

    @classmethod
    def read(cls, path: Path) -> LabeledFile:
        items = load_labeled(path)
        return cls(path, items, frozenset(t for item in items for t in item.topics))

    def describe(self) -> dict[str, Any]:
        digest = hashlib.sha256(self.path.read_bytes()).hexdigest()
        try:
            name = self.path.resolve().relative_to(REPO).as_posix()
        except ValueError:
            name = self.path.name
        return {"file": name, "sha256": digest, "items": len(self.items)}


Features = tuple[tuple[str, ...], dict[str, float]]  # (distinct words, cues)


def examples(
    tagger: Tagger, files: Sequence[LabeledFile], topic: str, *, leads: bool = False
) -> list[tuple[Features, int]]:
    """(features, label) of every story of `files` that labels `topic` and mentions it; with `leads`, also
    of its lead (title and first sentence), labeled as the story, when it differs and still mentions it."""
    out = []
    for f in files:
        if topic not in f.topics:
            continue
        for item in f.items:
            label = int(topic in item.topics)
            versions = [item.body]
            if (
                leads
                and (first := _FIRST_SENTENCE.split(item.body.strip(), maxsplit=1)[0]) != item.body.strip()
            ):
                versions.append(first)
            for body in versions:
                inp = tagger.sense_inputs(item.title, body).get(topic)
                if inp is not None:
                    out.append(((inp.words, cue_features(inp)), label))
    return out


def train_topic(data: Sequence[tuple[Features, int]], options: Options) -> TopicModel:
    """One topic's logistic regression on its candidate stories."""
    df: Counter[str] = Counter()
    for (words, cues), _ in data:
        df.update(words)
        df.update(f"{CUE}{c}" for c in cues)  # cue names kept apart from words
    names = sorted(name for name, n in df.items() if n >= options.min_df and options.wanted(name))
    weights = _fit(data, names, options)
    word_weights: dict[str, float] = {}
    cue_weights: dict[str, float] = {}
    for name, w in zip(names, weights[1:], strict=True):
        if abs(w) >= options.min_weight:
            if name.startswith(CUE):
                cue_weights[name[1:]] = round(w, 6)
            else:
                word_weights[name] = round(w, 6)
    return TopicModel(round(weights[0], 6), options.threshold, word_weights, cue_weights)


def _fit(data: Sequence[tuple[Features, int]], names: Sequence[str], options: Options) -> list[float]:
    """Weights of `names` (index 0: the bias) fitted on `data`."""
    index = {name: i for i, name in enumerate(names, 1)}  # 0 is the bias
    rows = []
    for (words, cues), _ in data:
        row = [(index[w], 1.0) for w in words if w in index]
        row.extend((index[f"{CUE}{c}"], v) for c, v in cues.items() if f"{CUE}{c}" in index)
        row.sort()
        rows.append(row)
    labels = [label for _, label in data]
    l2 = [0.0] + [options.cue_l2 if name[0] == CUE else options.l2 for name in names]
    return fit(rows, labels, len(names) + 1, l2)


def train(taxonomy: Taxonomy, files: Sequence[LabeledFile], options: Options | None = None) -> SenseModel:
    """The sense model of every topic with candidates, trained on `files`."""
    options = options or Options()
    tagger = Tagger(taxonomy, model=None)
    topics: dict[str, TopicModel] = {}
    counts: dict[str, dict[str, int]] = {}
    for topic in sorted(t.id for t in taxonomy.topics if t.sensed):
        data = examples(tagger, files, topic, leads=options.leads)
        positives = sum(label for _, label in data)
        if not positives or positives == len(data):
            raise ValueError(f"topic {topic}: needs labeled positive and negative candidate stories")
        topics[topic] = train_topic(data, options)
        counts[topic] = {"positive": positives, "negative": len(data) - positives}
        log.info("trained %s on %d examples (%d positive)", topic, len(data), positives)
    meta = {
        "trained_on": [f.describe() for f in files],
        "options": options.to_dict(),
        "examples": counts,
    }
    return SenseModel.build(taxonomy.version, topics, meta)


@dataclass(frozen=True)
class Fold:
    held_out: str
    report: EvalReport  # scores of the sensed topics the held-out file labels


def cross_validate(
    taxonomy: Taxonomy,
    folds: Sequence[LabeledFile],
    extra: Sequence[LabeledFile],
    options: Options | None = None,
) -> list[Fold]:
    """Leave one writer out: train on the other folds plus `extra`, score the held-out fold."""
    sensed = {t.id for t in taxonomy.topics if t.sensed}
    out = []
    for held in folds:
        model = train(taxonomy, [f for f in folds if f is not held] + list(extra), options)
        topics = sorted(held.topics & sensed)
        out.append(Fold(held.path.name, evaluate(held.items, Tagger(taxonomy, model), topics=topics)))
    return out


def format_cross_validation(folds: Sequence[Fold]) -> str:
    """Per topic: precision / recall on each held-out file, then pooled over all of them."""

    def pr(tp: int, fp: int, fn: int) -> str:
        p = f"{tp / (tp + fp):.3f}" if tp + fp else "-"
        r = f"{tp / (tp + fn):.3f}" if tp + fn else "-"
        return f"{p} / {r}"

    topics = sorted({s.topic for fold in folds for s in fold.report.scores})
    width = max(len("topic"), *(len(t) for t in topics))
    header = (
        f"{'topic':<{width}}  " + "  ".join(f"{fold.held_out:>15}" for fold in folds) + f"  {'pooled':>15}"
    )
    lines = ["leave-one-writer-out: precision / recall on the held-out file", header, "-" * len(header)]
    for topic in topics:
        cells = []
        total: Counter[str] = Counter()
        for fold in folds:
            s = next((s for s in fold.report.scores if s.topic == topic), None)
            if s is None:
                cells.append(f"{'-':>15}")
                continue
            total.update(tp=s.tp, fp=s.fp, fn=s.fn)
            cells.append(f"{pr(s.tp, s.fp, s.fn):>15}")
        lines.append(
            f"{topic:<{width}}  " + "  ".join(cells) + f"  {pr(total['tp'], total['fp'], total['fn']):>15}"
        )
    return "\n".join(lines)


def describe(model: SenseModel) -> Mapping[str, Any]:
    """Sizes of a model, for the command's summary."""
    return {
        topic: {"words": len(m.words), "cues": len(m.cues), "bias": m.bias}
        for topic, m in sorted(model.topics.items())
    }
