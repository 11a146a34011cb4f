"""The frozen splits of issue 7 (tests/data/tags/test*.jsonl: written blind from the editorial definitions and
committed before any tuning; never read while developing). Each is scored with the finished tagger, its
per-topic figures printed, and the test fails below the goal of the issue: P >= 0.95 and R >= 0.90 per topic.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.tagging.evaluate import evaluate, format_report, load_labeled
from pipeline.tagging.rules import default_tagger

TAGS = Path(__file__).parent / "data" / "tags"
# each frozen split and the commit that froze it (test2.jsonl, frozen in ab2b087 and scored once, has been
# training data since round 2: tests/data/tags/README.md)
FROZEN = {
    "test.jsonl": "d0876fe",
    "test3.jsonl": "aeeb9b8",
    "test4.jsonl": "9a3d120",
    "test5.jsonl": "7db9a94",
    "test6.jsonl": "1d4be5d",
    "test7.jsonl": "669227f",  # round 4's validation split: chose the model, so not a holdout
    "test8.jsonl": "845a0cc",
    "test9.jsonl": "abf7213",
    "test10.jsonl": "930ad82",  # round 7's validation split (tests/data/tags/protocol-round-7.md)
    "test11.jsonl": "561df2b",
}
# Splits the tagger is short of the goal on (tests/data/tags/README.md). Strict: the day a tagger meets the
# goal here, this test says so, and the mark goes. test5 and test6 (the round-2 tagger: tiktok precision 0.903
# and 0.879, passing mentions) meet it since round 4 (subject cues, train_h trained on).
SHORT_OF_GOAL = {
    "test7.jsonl": "rare_earths precision 0.887: rare earths named in passing (an EV review, an obituary)",
    "test8.jsonl": "precision: rare_earths 0.833, tariffs 0.929, tiktok 0.923",
    "test9.jsonl": "precision: rare_earths 0.806, tariffs 0.895",
    "test10.jsonl": "precision: rare_earths 0.803 (passing mentions)",
    "test11.jsonl": "precision: rare_earths 0.923, tariffs 0.793, tiktok 0.923 (passing mentions)",
}
TOPICS = ["rare_earths", "tariffs", "tiktok"]
GOAL_PRECISION, GOAL_RECALL = 0.95, 0.90


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(n, marks=pytest.mark.xfail(strict=True, reason=SHORT_OF_GOAL[n]))
        if n in SHORT_OF_GOAL
        else n
        for n in sorted(FROZEN)
    ],
)
def test_frozen_split_meets_the_goal(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    report = evaluate(load_labeled(TAGS / name), default_tagger(), topics=TOPICS)
    with capsys.disabled():
        print(f"\nfrozen split {name} (frozen in {FROZEN[name]})\n{format_report(report)}")
    misses = [
        f"{s.topic}: P {s.precision} R {s.recall}"
        for s in report.scores
        if s.precision is None or s.recall is None or s.precision < GOAL_PRECISION or s.recall < GOAL_RECALL
    ]
    assert not misses, misses
