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

from pipeline.tagging.evaluate import LabeledItem, load_labeled
from pipeline.tagging.logistic import fit
from pipeline.tagging.rules import Tagger
from pipeline.tagging.sense import SenseModel, TopicModel, cue_features
from pipeline.tagging.taxonomy import Taxonomy

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "tests" / "data"
# the writers' files, each held out in turn by --cross-validate; always trained on: the project's own set and
# the passing mentions (train_h: their only writer, so no other fold could learn them when it is held out)
DEFAULT_FOLDS = tuple(DATA / "tags" / f"train_{w}.jsonl" for w in "abcdefg")
DEFAULT_EXTRA = (DATA / "tag_eval.jsonl", DATA / "tags" / "train_h.jsonl")


# Function words and one-letter tokens get no weight: they say more about a writer than about a topic
_STOP_WORDS = """a about above after again against all am an and any are as at be because been before being
    below between both but by can could did do does doing down during each few for from further had has have
    having he her here hers herself him himself his how i if in into is it its itself just me more most my
    myself of off on once only or other our ours ourselves out over own same she should so some such than
    that the their theirs them themselves then there these they this those through to too under until up
    very was we were what when where which while who whom why will with would you your yours yourself
    also said says say"""
STOP_WORDS = frozenset(_STOP_WORDS.split())
CUE = "\x00"  # cue feature names start with it while training, words do not
# A sentence ends at . ! or ? (closing quotes and brackets kept with it) before white space, unless the
# word before the stop is an initial ("U.S.", "J.") or an abbreviation of a title, a firm or a US state
_SENTENCE_STOP = re.compile(r"(\w*)[.!?][\"'\u201d\u2019)\]]*\s+")
_ABBREVIATION_WORDS = """mr mrs ms dr prof st mt ft jr sr gen col lt sgt gov sen rep rev inc corp co ltd
    bros vs approx est dept univ jan feb mar apr jun jul aug sep sept oct nov dec ala ariz ark calif colo conn
    del fla ga ill ind kan kans ky la md mass mich minn miss mo mont neb nev okla ore pa tenn tex va vt wash
    wis wyo"""
_ABBREVIATIONS = frozenset(_ABBREVIATION_WORDS.split())


@dataclass(frozen=True)
class Options:
    l2: float = 1.0  # penalty on the word weights
    cue_l2: float = 1.0  # penalty on the cue weights
    min_df: int = 2  # a feature must occur in this many training stories of the topic
    threshold: float = 0.5  # probability from which a topic is tagged when no thresholds are chosen
    min_weight: float = 1e-3  # smaller weights are dropped from the artifact
    prune: float = 0.1  # words whose first fitted weight is weaker are left out, the rest fitted again
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


Features = tuple[frozenset[str], dict[str, float]]  # (distinct words, cues)


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
            if leads and (first := lead(item.body)) != item.body.strip():
                versions.append(first)
            for body in versions:
                inp = tagger.sense_inputs(item.title, body).get(topic)
                if inp is not None:
                    out.append(((inp.words, cue_features(inp)), label))
    return out


def lead(body: str) -> str:
    """The first sentence of a body: with the title, a story's lead."""
    body = body.strip()
    for stop in _SENTENCE_STOP.finditer(body):
        word = stop.group(1)
        if len(word) > 1 and word.lower() not in _ABBREVIATIONS:
            return body[: stop.end()].rstrip()
    return body


def train_topic(data: Sequence[tuple[Features, int]], options: Options, threshold: float) -> TopicModel:
    """One topic's logistic regression on its candidate stories."""
    df: Counter[str] = Counter()
    for (words, cues), _ in data:
        df.update(words)
        df.update(f"{CUE}{c}" for c in cues)  # cue names kept apart from words
    names = sorted(name for name, n in df.items() if n >= options.min_df and options.wanted(name))
    weights = _fit(data, names, options)
    if options.prune:  # keep the cues and the words that matter, and fit again on them alone
        names = [n for n, w in zip(names, weights[1:], strict=True) if n[0] == CUE or abs(w) >= options.prune]
        weights = _fit(data, names, options)
    word_weights: dict[str, float] = {}
    cue_weights: dict[str, float] = {}
    for name, w in zip(names, weights[1:], strict=True):
        if abs(w) >= options.min_weight:
            if name.startswith(CUE):
                cue_weights[name[1:]] = round(w, 6)
            else:
                word_weights[name] = round(w, 6)
    return TopicModel(round(weights[0], 6), threshold, word_weights, cue_weights)


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


def train(
    taxonomy: Taxonomy,
    files: Sequence[LabeledFile],
    options: Options | None = None,
    *,
    thresholds: Mapping[str, float] | None = None,
    meta: Mapping[str, Any] | None = None,
) -> SenseModel:
    """The sense model of every topic with candidates, trained on `files`; each topic's threshold from
    `thresholds`, else `options.threshold`; `meta` is recorded in the artifact beside the training facts."""
    options = options or Options()
    tagger = Tagger(taxonomy, model=None)
    topics: dict[str, TopicModel] = {}
    counts: dict[str, dict[str, int]] = {}
    for topic in sorted(t.id for t in taxonomy.topics if t.sensed):
        data = examples(tagger, files, topic, leads=options.leads)
        positives = sum(label for _, label in data)
        if not positives or positives == len(data):
            raise ValueError(f"topic {topic}: needs labeled positive and negative candidate stories")
        threshold = thresholds[topic] if thresholds else options.threshold
        topics[topic] = train_topic(data, options, threshold)
        counts[topic] = {"positive": positives, "negative": len(data) - positives}
        log.info("trained %s on %d examples (%d positive)", topic, len(data), positives)
    facts = {
        "trained_on": [f.describe() for f in files],
        "options": options.to_dict(),
        "examples": counts,
    }
    return SenseModel.build(taxonomy.version, topics, {**facts, **(meta or {})})


def describe(model: SenseModel) -> Mapping[str, Any]:
    """Sizes of a model, for the command's summary."""
    return {
        topic: {"words": len(m.words), "cues": len(m.cues), "bias": m.bias}
        for topic, m in sorted(model.topics.items())
    }
