"""The document-level sense model: does a story that mentions a topic's term or candidate talk about the
topic? One logistic regression per sensed topic over the whole story (title and body together):

- word features: each distinct word of the story (normalized as the automaton sees it), value 1 (the
  trainer gives function words no weight);
- class features: per word class of the taxonomy (`sense.classes`), log(1 + its distinct words present);
- cue features: per mention name, log(1 + mentions) and whether one is in the title; per term whose
  context rules hold, log(1 + hits); whether any rule hit holds (and in the title); how many mentions are
  affirmed and how many dismissed ("were not a factor", "made no reference to tariffs": a dismissal word
  near the mention, in its sentence). When every mention is dismissed, the mention and rule cues are left
  out: the story only names the topic to set it aside.

The trained weights are a versioned JSON artifact beside the taxonomy (schemas/topics.sense.json, written by
`wirefeed train-tags`, pipeline/tagging/train.py); the strongest positive features of a tag are reported as
its evidence.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from itertools import repeat
from pathlib import Path
from typing import Any, NamedTuple

from pipeline.errors import ConfigError

FORMAT = 1
EVIDENCE_FEATURES = 3  # strongest positive word/cue features reported in topic_hits per sensed tag
SENSE_PREFIX = "sense:"  # topic_hits terms of model features: "sense:imports"


class Mention(NamedTuple):
    """One occurrence of a sensed topic's term or candidate form (overlaps resolved: the longest)."""

    name: str  # canonical term or candidate name
    start: int  # offsets in the normalized story
    end: int
    in_title: bool
    dismissed: bool


class SenseInput(NamedTuple):
    """What the model sees of one story for one topic."""

    topic: str
    mentions: tuple[Mention, ...]
    rule_hits: Mapping[str, tuple[int, bool]]  # term -> (hits whose context rules hold, one in title)
    words: tuple[str, ...]  # its distinct words, in the story's order
    classes: Mapping[str, int]  # distinct words of each class in the story


@dataclass(frozen=True)
class TopicModel:
    bias: float
    threshold: float
    words: Mapping[str, float]
    cues: Mapping[str, float]


class Verdict(NamedTuple):
    """The model's decision on one story for one topic, with each feature's contribution to the score."""

    topic: str
    probability: float
    tagged: bool
    contributions: tuple[tuple[str, float], ...]  # (feature, weight * value), strongest first
    inp: SenseInput


@dataclass(frozen=True)
class SenseModel:
    version: str
    taxonomy_version: str
    topics: Mapping[str, TopicModel]
    meta: Mapping[str, Any] = field(default_factory=dict)  # training files, options, cross-validation

    @classmethod
    def build(
        cls, taxonomy_version: str, topics: Mapping[str, TopicModel], meta: Mapping[str, Any]
    ) -> SenseModel:
        """A model whose version is derived from its weights and taxonomy (same content, same version)."""
        body = _canonical({"taxonomy_version": taxonomy_version, "topics": _topics_json(topics)})
        version = hashlib.sha256(body.encode("utf-8")).hexdigest()[:12]
        return cls(version, taxonomy_version, topics, meta)

    @classmethod
    def load(cls, path: Path) -> SenseModel:
        """Read an artifact written by `dumps`. Raises ConfigError naming the file."""
        try:
            doc = json.loads(path.read_text("utf-8"))
        except OSError as exc:
            raise ConfigError(
                f"cannot read sense model: {exc}; run `wirefeed train-tags`", path=str(path)
            ) from exc
        except ValueError as exc:
            raise ConfigError(f"sense model is not valid JSON: {exc}", path=str(path)) from exc
        try:
            if doc["format"] != FORMAT:
                raise ConfigError(f"sense model format {doc['format']!r}, expected {FORMAT}", path=str(path))
            topics = {
                topic: TopicModel(
                    float(t["bias"]),
                    float(t["threshold"]),
                    {str(k): float(v) for k, v in t["words"].items()},
                    {str(k): float(v) for k, v in t["cues"].items()},
                )
                for topic, t in doc["topics"].items()
            }
            model = cls.build(str(doc["taxonomy_version"]), topics, doc.get("meta", {}))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ConfigError(f"sense model is malformed: {exc!r}", path=str(path)) from exc
        if model.version != doc.get("version"):
            raise ConfigError(
                f"sense model version {doc.get('version')!r} does not match its content ({model.version})",
                path=str(path),
            )
        return model

    def dumps(self) -> str:
        """The artifact: canonical JSON (sorted keys, rounded weights), one line per topic."""
        head = {"format": FORMAT, "version": self.version, "taxonomy_version": self.taxonomy_version}
        lines = [_canonical(head)[:-1] + ', "meta": ' + _canonical(self.meta) + ', "topics": {']
        items = list(_topics_json(self.topics).items())
        for i, (topic, body) in enumerate(items):
            lines.append(f"{json.dumps(topic)}: {_canonical(body)}{',' if i < len(items) - 1 else ''}")
        lines.append("}}")
        return "\n".join(lines) + "\n"

    def judge(self, inp: SenseInput, *, explain: bool = False) -> Verdict:
        """Score one story for one topic. The contributions are listed for a tag (the positive ones,
        strongest first, for its evidence) or, with `explain`, all of them by strength."""
        model = self.topics[inp.topic]
        weights, cue_weights = model.words, model.cues
        cues = [
            (name, cue_weights[name] * value)
            for name, value in cue_features(inp).items()
            if name in cue_weights
        ]
        # C loops only, in the story's order of words and the features' order: the same sum in every process
        z = model.bias + sum(map(weights.get, inp.words, repeat(0.0))) + sum(c for _, c in cues)
        probability = _sigmoid(z)
        tagged = probability >= model.threshold
        if not (tagged or explain):
            return Verdict(inp.topic, probability, tagged, (), inp)
        present = weights.keys() & inp.words
        if explain:
            parts = [(w, weights[w]) for w in present]
            parts.extend(cues)
            parts.sort(key=lambda p: (-abs(p[1]), p[0]))
        else:  # the evidence: the strongest positive words and cues
            top = sorted(present, key=lambda w: (-weights[w], w))[:EVIDENCE_FEATURES]
            parts = [(w, weights[w]) for w in top if weights[w] > 0]
            parts.extend(c for c in cues if c[1] > 0)
            parts.sort(key=lambda p: (-p[1], p[0]))
        return Verdict(inp.topic, probability, tagged, tuple(parts), inp)


def cue_features(inp: SenseInput) -> dict[str, float]:
    """The non-word features of one story for one topic (see the module docstring)."""
    affirmed = sum(1 for m in inp.mentions if not m.dismissed)
    dismissed = len(inp.mentions) - affirmed
    out: dict[str, float] = {"affirmed": math.log1p(affirmed)}
    for name, n in inp.classes.items():
        out[_name("class:", name)] = math.log1p(n)
    if dismissed:
        out["dismissed"] = math.log1p(dismissed)
        if not affirmed:
            out["all_dismissed"] = 1.0
            return out
    counts: dict[str, int] = {}
    for m in inp.mentions:
        counts[m.name] = counts.get(m.name, 0) + 1
        if m.in_title:
            out[_name("title:", m.name)] = 1.0
    for name, n in counts.items():
        out[_name("mention:", name)] = math.log1p(n)
    for term, (n, in_title) in inp.rule_hits.items():
        out[_name("rule:", term)] = math.log1p(n)
        out["rule:any"] = 1.0
        if in_title:
            out["rule:title"] = 1.0
    return out


@cache
def _name(prefix: str, name: str) -> str:
    """A cue feature's name, built once."""
    return prefix + name


def _sigmoid(z: float) -> float:
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


def _topics_json(topics: Mapping[str, TopicModel]) -> dict[str, Any]:
    return {
        topic: {
            "bias": round(m.bias, 6),
            "threshold": round(m.threshold, 6),
            "cues": {k: round(v, 6) for k, v in sorted(m.cues.items())},
            "words": {k: round(v, 6) for k, v in sorted(m.words.items())},
        }
        for topic, m in sorted(topics.items())
    }


def _canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
