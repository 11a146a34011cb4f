"""pipeline.tagging.evaluate: the scores, the labeled set itself, and the quality gate on it."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from pipeline.errors import BadRecordError
from pipeline.tagging.evaluate import LabeledItem, TopicScore, evaluate, format_report, load_labeled
from pipeline.tagging.rules import Tagger, Taxonomy, default_tagger

EVAL_SET = Path(__file__).parent / "data" / "tag_eval.jsonl"
GATED = ("tiktok", "tariffs", "rare_earths")
# id prefixes of the hard negatives (confusers) written for each gated topic
HARD_NEGATIVES = {"tiktok": "tiktok-neg-", "tariffs": "tariffs-neg-", "rare_earths": "rare-neg-"}


def test_topic_score_arithmetic() -> None:
    score = TopicScore("x", tp=3, fp=1, fn=2)
    assert (score.precision, score.recall, score.support) == (0.75, 0.6, 5)
    assert score.f1 == pytest.approx(2 * 0.75 * 0.6 / 1.35)
    assert TopicScore("never predicted", tp=0, fp=0, fn=2).precision is None
    assert TopicScore("never labeled", tp=0, fp=1, fn=0).recall is None
    assert TopicScore("never labeled", tp=0, fp=1, fn=0).f1 is None


def apple_bean_tagger() -> Tagger:
    """Topic a: "apple"; topic b: "bean"."""
    topics = [{"id": "a", "label": "A", "terms": ["apple"]}, {"id": "b", "label": "B", "terms": ["bean"]}]
    return Tagger(Taxonomy.from_dict({"version": "t", "topics": topics}))


def test_evaluate_counts_per_topic_and_lists_errors() -> None:
    tagger = apple_bean_tagger()
    items = [
        LabeledItem("1", "apple", "", frozenset({"a"})),  # a: tp
        LabeledItem("2", "", "apple and bean", frozenset({"a"})),  # a: tp, b: fp
        LabeledItem("3", "", "nothing", frozenset({"b"})),  # b: fn
        LabeledItem("4", "", "nothing", frozenset({"c"})),  # c (labeled only): fn
    ]
    report = evaluate(items, tagger)
    assert [(s.topic, s.tp, s.fp, s.fn) for s in report.scores] == [
        ("a", 2, 0, 0),
        ("b", 0, 1, 1),
        ("c", 0, 0, 1),
    ]
    assert (report.micro.tp, report.micro.fp, report.micro.fn) == (2, 1, 2)
    assert [(e.id, e.missed, e.extra) for e in report.errors] == [
        ("2", [], ["b"]),
        ("3", ["b"], []),
        ("4", ["c"], []),
    ]
    table = format_report(report, with_errors=True)
    assert "micro" in table and "3 misclassified items" in table and "b:beanx1" in table


def test_load_labeled_names_the_bad_line(tmp_path: Path) -> None:
    path = tmp_path / "set.jsonl"
    path.write_text(
        '{"id": "1", "title": "t", "body": "b", "topics": []}\n\n{"id": 2, "topics": []}\n', "utf-8"
    )
    with pytest.raises(BadRecordError) as info:
        load_labeled(path)
    assert info.value.fields["line"] == 3


# --- the labeled set -------------------------------------------------------------------------------------


def test_labeled_set_is_large_varied_and_uses_known_topics() -> None:
    items = load_labeled(EVAL_SET)
    assert len(items) >= 150
    assert len({i.id for i in items}) == len(items)
    known = set(Taxonomy.load().topic_ids)
    assert set().union(*(i.topics for i in items)) <= known
    positives = Counter(t for i in items for t in i.topics)
    assert all(positives[t] >= 5 for t in known), positives
    for topic in GATED:
        assert positives[topic] >= 30, topic
        hard_negatives = [i for i in items if i.id.startswith(HARD_NEGATIVES[topic])]
        assert len(hard_negatives) >= 30, topic
        assert all(topic not in i.topics for i in hard_negatives)
    for line in EVAL_SET.read_text("utf-8").splitlines():
        assert set(json.loads(line)) == {"id", "title", "body", "topics"}


def test_quality_gate_on_the_labeled_set() -> None:
    report = evaluate(load_labeled(EVAL_SET), default_tagger())
    for topic in GATED:
        score = report.score(topic)
        assert score.precision is not None and score.precision >= 0.95, (topic, score)
        assert score.recall is not None and score.recall >= 0.95, (topic, score)


def test_a_set_is_scored_on_the_topics_it_labels_unless_topics_are_named() -> None:
    tagger = apple_bean_tagger()
    items = [
        LabeledItem("1", "apple and bean", "", frozenset({"a"})),
        LabeledItem("2", "", "pear", frozenset()),
    ]
    report = evaluate(items, tagger)  # labels only "a": the bean tag is not scored
    assert [(s.topic, s.tp, s.fp, s.fn) for s in report.scores] == [("a", 1, 0, 0)] and not report.errors
    report = evaluate(items, tagger, topics=["a", "b"])
    assert [(s.topic, s.fp) for s in report.scores] == [("a", 0), ("b", 1)]
    assert report.errors[0].reasons == ["b: rules fired on beanx1"]
    unlabeled = evaluate([LabeledItem("3", "bean", "", frozenset())], tagger)  # labels nothing: every topic
    assert [s.topic for s in unlabeled.scores] == ["a", "b"]
