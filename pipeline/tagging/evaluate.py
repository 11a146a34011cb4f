"""Precision / recall / F1 of the tagger per topic on a labeled JSON Lines set.

Each line: {"id": str, "title": str, "body": str, "topics": [expected topic ids]} (other keys ignored).
A set labels the topics that occur in its labels (tests/data/tags/ label three of nine): only those are
scored, unless the caller names the topics.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.errors import BadInputError, BadRecordError
from pipeline.tagging.rules import Tagger

CONTRIBUTIONS_SHOWN = 6  # features of the sense model listed per wrong topic


@dataclass(frozen=True)
class LabeledItem:
    id: str
    title: str
    body: str
    topics: frozenset[str]


@dataclass(frozen=True)
class TopicScore:
    topic: str
    tp: int
    fp: int
    fn: int

    @property
    def support(self) -> int:
        """Items labeled with the topic."""
        return self.tp + self.fn

    @property
    def precision(self) -> float | None:
        """None when the tagger never predicted the topic."""
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else None

    @property
    def recall(self) -> float | None:
        """None when no item is labeled with the topic."""
        return self.tp / self.support if self.support else None

    @property
    def f1(self) -> float | None:
        p, r = self.precision, self.recall
        if p is None or r is None:
            return None
        return 2 * p * r / (p + r) if p + r else 0.0


@dataclass(frozen=True)
class ItemError:
    id: str
    title: str
    missed: list[str]  # expected but not tagged
    extra: list[str]  # tagged but not expected
    hits: list[dict[str, Any]]
    reasons: list[str] = field(default_factory=list)  # per wrong topic: the evidence or the best near miss


@dataclass(frozen=True)
class EvalReport:
    items: int
    taxonomy_version: str
    scores: list[TopicScore]
    errors: list[ItemError] = field(default_factory=list)

    @property
    def micro(self) -> TopicScore:
        return TopicScore(
            "micro",
            sum(s.tp for s in self.scores),
            sum(s.fp for s in self.scores),
            sum(s.fn for s in self.scores),
        )

    def score(self, topic: str) -> TopicScore:
        return next(s for s in self.scores if s.topic == topic)


def load_labeled(path: str | Path) -> list[LabeledItem]:
    """Read a labeled set. Raises BadInputError (file) or BadRecordError (naming the line)."""
    try:
        lines = Path(path).read_text("utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInputError("unreadable", f"cannot read labeled set: {exc}", path=str(path)) from exc
    items: list[LabeledItem] = []
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise BadRecordError(f"invalid JSON: {exc.msg}", path=str(path), line=lineno) from exc
        if not (
            isinstance(obj, dict)
            and isinstance(obj.get("id"), str)
            and isinstance(obj.get("title", ""), str)
            and isinstance(obj.get("body", ""), str)
            and isinstance(obj.get("topics"), list)
            and all(isinstance(t, str) for t in obj["topics"])
        ):
            raise BadRecordError(
                "need id (str), title (str), body (str), topics (list of str)", path=str(path), line=lineno
            )
        items.append(
            LabeledItem(obj["id"], obj.get("title", ""), obj.get("body", ""), frozenset(obj["topics"]))
        )
    return items


def labeled_topics(items: list[LabeledItem]) -> set[str]:
    """The topics a set labels: those that occur in its labels."""
    return {t for item in items for t in item.topics}


def evaluate(items: list[LabeledItem], tagger: Tagger, topics: list[str] | None = None) -> EvalReport:
    """Score `tagger` on `items`, one TopicScore per topic: `topics`, else those the set labels (every
    taxonomy topic when it labels none). Tags of other topics are ignored."""
    scored = set(topics) if topics is not None else labeled_topics(items) or set(tagger.taxonomy.topic_ids)
    tp = dict.fromkeys(scored, 0)
    fp = dict.fromkeys(scored, 0)
    fn = dict.fromkeys(scored, 0)
    errors: list[ItemError] = []
    for item in items:
        predicted, hits = tagger.tag(item.title, item.body)
        got = set(predicted) & scored
        expected = item.topics & scored
        for t in got & expected:
            tp[t] += 1
        for t in got - expected:
            fp[t] += 1
        for t in expected - got:
            fn[t] += 1
        if got != expected:
            missed, extra = sorted(expected - got), sorted(got - expected)
            reasons = _reasons(tagger, item, missed, extra)
            errors.append(ItemError(item.id, item.title, missed, extra, hits, reasons))
    scores = [TopicScore(t, tp[t], fp[t], fn[t]) for t in sorted(scored)]
    return EvalReport(len(items), tagger.version, scores, errors)


def _reasons(tagger: Tagger, item: LabeledItem, missed: list[str], extra: list[str]) -> list[str]:
    """Why each wrong topic went wrong: what fired (extra), or the best near miss (missed)."""
    why = tagger.explain(item.title, item.body)
    out = []
    for topic in [*extra, *missed]:
        verdict = why.verdicts.get(topic)
        if verdict is not None:
            mentions = ", ".join(
                sorted({f"{m.name}{' (dismissed)' if m.dismissed else ''}" for m in verdict.inp.mentions})
            )
            parts = ", ".join(f"{f} {c:+.2f}" for f, c in verdict.contributions[:CONTRIBUTIONS_SHOWN])
            out.append(
                f"{topic}: sense p={verdict.probability:.2f} on mentions [{mentions}]; strongest: {parts}"
            )
        elif topic in extra:
            fired = ", ".join(f"{h['term']}x{h['count']}" for h in why.hits if h["topic"] == topic)
            out.append(f"{topic}: rules fired on {fired}")
        elif topic in why.near_misses:
            out.append(
                f"{topic}: near miss, matched but failed their rules: {', '.join(why.near_misses[topic])}"
            )
        else:
            out.append(f"{topic}: no term or candidate of the topic in the story")
    return out


def format_report(report: EvalReport, *, with_errors: bool = False) -> str:
    """A plain-text table: topic, precision, recall, F1, support, tp/fp/fn; micro averages last."""

    def num(x: float | None) -> str:
        return "-" if x is None else f"{x:.3f}"

    width = max(len("topic"), *(len(s.topic) for s in report.scores))
    header = f"{'topic':<{width}}  precision  recall     f1  support   tp   fp   fn"
    lines = [f"taxonomy {report.taxonomy_version}, {report.items} items", header, "-" * len(header)]
    for s in [*report.scores, report.micro]:
        if s.topic == "micro":
            lines.append("-" * len(header))
        lines.append(
            f"{s.topic:<{width}}  {num(s.precision):>9}  {num(s.recall):>6}  {num(s.f1):>5}"
            f"  {s.support:>7}  {s.tp:>3}  {s.fp:>3}  {s.fn:>3}"
        )
    if with_errors:
        lines.append("")
        lines.append(f"{len(report.errors)} misclassified items:")
        for e in report.errors:
            evidence = ", ".join(f"{h['topic']}:{h['term']}x{h['count']}" for h in e.hits) or "no hits"
            lines.append(f"  {e.id}: missed={e.missed} extra={e.extra} | {e.title} | hits: {evidence}")
            lines.extend(f"      {reason}" for reason in e.reasons)
    return "\n".join(lines)
