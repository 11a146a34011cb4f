"""The document-level sense model: does a story that mentions a topic's term or candidate talk about the
topic? One logistic regression per sensed topic over the whole story (title and body together):

- word features: each distinct word of the story (normalized as the automaton sees it), value 1 (the
  trainer gives function words no weight);
- class features: per word class of the taxonomy (`sense.classes`), log(1 + its distinct words present);
- cue features: per mention name, log(1 + mentions) and whether one is in the title; per term whose
  context rules hold, log(1 + hits); whether any rule hit holds (and in the title); how many mentions are
  affirmed and how many dismissed ("were not a factor", "made no reference to tariffs": a dismissal word
  near the mention, in its sentence); whether the topic looks like the story's subject or a passing mention
  (`once`: it is named once; `late`: not in the title nor the body's first LEAD_CHARS characters). When every
  mention is dismissed, the mention and rule cues are left out: the story only names the topic to set it
  aside.

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
from operator import mul
from pathlib import Path
from typing import Any, NamedTuple

from pipeline.errors import ConfigError

FORMAT = 1
EVIDENCE_FEATURES = 3  # strongest positive word/class features reported in topic_hits per sensed tag
SENSE_PREFIX = "sense:"  # topic_hits terms of model features: "sense:imports"
MICRO = 1_000_000
# the body's opening, about its first sentence: a mention there or in the title is not `late`
LEAD_CHARS = 250


class Mention(NamedTuple):
    """One occurrence of a sensed topic's term or candidate form (overlaps resolved: the longest)."""

    name: str  # canonical term or candidate name
    start: int  # offsets in the normalized story
    end: int
    in_title: bool
    dismissed: bool
    candidate: bool  # a candidate's form, not a term's
    form: str  # the matched form, normalized ("tariffs")
    proper: bool  # capitalized inside a sentence of the body: a name ("Tariff Road")


class SenseInput(NamedTuple):
    """What the model sees of one story for one topic."""

    topic: str
    mentions: tuple[Mention, ...]
    rule_hits: Mapping[str, tuple[int, bool]]  # term -> (hits whose context rules hold, one in title)
    words: frozenset[str]  # its distinct words (those of its mentions only there left out)
    classes: Mapping[str, int]  # distinct words of each class in the story, in the taxonomy's order
    near: tuple[str, ...] = ()  # the words next to its affirmed mentions
    length: int = 0  # characters in the story
    lead: int = 0  # offset where the title and the body's first LEAD_CHARS characters end


@dataclass(frozen=True)
class TopicModel:
    bias: float
    threshold: float  # probability from which the topic is tagged
    words: Mapping[str, float]
    cues: Mapping[str, float]
    # the word weights in millionths (the artifact rounds them to 6 decimals): their sum over a story's
    # words is exact in any order, so a set of words gives the same score in every process
    micro_words: Mapping[str, int] = field(init=False, repr=False, compare=False)
    positive_words: frozenset[str] = field(init=False, repr=False, compare=False)  # evidence candidates

    def __post_init__(self) -> None:
        object.__setattr__(self, "micro_words", {w: round(v * MICRO) for w, v in self.words.items()})
        object.__setattr__(self, "positive_words", frozenset(w for w, v in self.words.items() if v > 0))


class Verdict(NamedTuple):
    """The model's decision on one story for one topic. Features as (name, weight * value)."""

    topic: str
    probability: float
    tagged: bool
    evidence: tuple[tuple[str, float], ...]  # for a tag: its strongest positive words and word classes
    contributions: tuple[tuple[str, float], ...]  # with explain: every feature, strongest first
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
        micro, cue_weights = model.micro_words, model.cues
        features = cue_features(inp)
        present = micro.keys() & inp.words
        z = (
            model.bias
            + sum(map(micro.__getitem__, present)) / MICRO
            + sum(map(mul, map(cue_weights.get, features, repeat(0.0)), features.values()))
        )
        probability = _sigmoid(z)
        tagged = probability >= model.threshold
        if not (tagged or explain):
            return Verdict(inp.topic, probability, tagged, (), (), inp)
        weights = model.words
        evidence: tuple[tuple[str, float], ...] = ()
        if tagged:  # the strongest positive words and word classes
            strong = model.positive_words & present
            ranked = list(zip(map(weights.__getitem__, strong), strong, strict=True))
            prefix = class_prefix(inp)
            for name, n in inp.classes.items():
                if (c := cue_weights.get(prefix + name, 0.0) * math.log1p(n)) > 0:
                    ranked.append((c, prefix + name))
            ranked.sort(reverse=True)
            evidence = tuple((name, c) for c, name in ranked[:EVIDENCE_FEATURES])
        parts: list[tuple[str, float]] = []
        if explain:
            parts = [(w, weights[w]) for w in present]
            parts.extend((n, cue_weights[n] * v) for n, v in features.items() if n in cue_weights)
            parts.sort(key=lambda p: (-abs(p[1]), p[0]))
        return Verdict(inp.topic, probability, tagged, evidence, tuple(parts), inp)


def class_prefix(inp: SenseInput) -> str:
    """The name prefix of the class features: a story that names the topic only by candidates ("measures",
    "customs") has class weights of its own ("cclass:trade"), as trade words are what let those candidates
    count at all, so they say less there."""
    return "class:" if any(not (m.dismissed or m.candidate) for m in inp.mentions) else "cclass:"


def cue_features(inp: SenseInput) -> dict[str, float]:
    """The non-word features of one story for one topic (see the module docstring)."""
    terms = candidates = dismissed = 0
    names: dict[str, int] = {}  # mentions of each term (whose context rules may fail)
    forms: dict[str, int] = {}
    flags: list[str] = []
    for name, _, _, in_title, gone, candidate, form, proper in inp.mentions:
        if gone:
            dismissed += 1
        elif candidate:
            candidates += 1
        else:
            terms += 1
        if not candidate:
            names[name] = names.get(name, 0) + 1
        forms[form] = forms.get(form, 0) + 1
        if in_title:
            flags.append(_name("title:", name))
        if proper:
            flags.append(_name("proper:", name))
    out: dict[str, float] = {
        "terms": math.log1p(terms),
        "candidates": math.log1p(candidates),
        "length": math.log1p(inp.length),
    }
    classes = inp.classes
    out.update(
        zip(map(_name, repeat(class_prefix(inp)), classes), map(math.log1p, classes.values()), strict=True)
    )
    if dismissed:
        out["dismissed"] = math.log1p(dismissed)
        if not (terms or candidates):
            out["all_dismissed"] = 1.0
            return out
    out.update(zip(flags, repeat(1.0)))
    out.update(zip(map(_name, repeat("form:"), forms), map(math.log1p, forms.values()), strict=True))
    out.update(zip(map(_name, repeat("near:"), inp.near), repeat(1.0)))
    rule_hits = inp.rule_hits
    for name, n in names.items():
        held = rule_hits.get(name)
        if held is None or held[0] < n:  # some of its mentions failed their context rules
            out[_name("unruled:", name)] = math.log1p(n - (held[0] if held else 0))
    if rule_hits:
        out["rule:any"] = 1.0
        if any(in_title for _, in_title in rule_hits.values()):
            out["rule:title"] = 1.0
    if terms + candidates == 1:  # named once: in a story about something else, as often as not
        out["once"] = 1.0
    lead = inp.lead
    if not any(m.start < lead and not m.dismissed for m in inp.mentions):
        out["late"] = 1.0
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
