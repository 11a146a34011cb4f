"""pipeline.tagging.sense and .train: the document-level sense model, per error kind of issue 7 (stories
invented for this test, none from a labeled set), its evidence, its artifact and its training."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from pipeline.errors import ConfigError
from pipeline.schema import arrow_schema, schemas_dir
from pipeline.tagging.crossval import train_with_thresholds
from pipeline.tagging.logistic import fit, sigmoid
from pipeline.tagging.rules import Tagger, Taxonomy, default_tagger
from pipeline.tagging.sense import LEAD_CHARS, SenseModel, cue_features
from pipeline.tagging.train import DEFAULT_EXTRA, DEFAULT_FOLDS, LabeledFile, Options, train

# (error kind, title, body, topic, whether the story is about the topic)
CASES = [
    # 1. tariff as a price, fee or term, or a name
    (
        "price",
        "Heating bills to climb as city network sets new tariff",
        (
            "Households connected to Aberdeen's district heating network will pay 9% more from April "
            "after the operator published its new tariff. The council said gas costs had forced the rise."
        ),
        "tariffs",
        False,
    ),
    (
        "price",
        "Harbour board approves higher berthing tariff for cruise ships",
        (
            "Cruise lines calling at Dover will pay a berthing tariff of £1.40 per passenger from next "
            "season, up from £1.15, the harbour board said. Ferry operators are not affected."
        ),
        "tariffs",
        False,
    ),
    (
        "price",
        "Payment app lifts merchant fee tariff for small shops",
        (
            "The mobile payment app will charge small merchants 1.9% per card transaction under a new fee"
            " tariff from July, up from 1.5%. Shop owners' groups called the rise unfair."
        ),
        "tariffs",
        False,
    ),
    (
        "price",
        "Operator launches unlimited 5G data tariff at £20 a month",
        (
            "The network's new SIM-only tariff includes unlimited 5G data and EU roaming. Existing "
            "customers can switch without a fee."
        ),
        "tariffs",
        False,
    ),
    (
        "price",
        "Judge sets minimum tariff of 18 years for Leeds killer",
        (
            "A man who stabbed a neighbour to death after a row over parking was jailed for life at Leeds"
            " Crown Court and told he must serve at least 18 years before he can apply for parole."
        ),
        "tariffs",
        False,
    ),
    (
        "name",
        "Tariff holds on to win the 3.15 at Kempton",
        (
            "Tariff, trained in Lambourn and ridden by Jack Hale, led from the front to win the handicap "
            "hurdle by a neck at odds of 7-2."
        ),
        "tariffs",
        False,
    ),
    (
        "duty",
        "US raises tariffs on Chinese steel to 50%",
        (
            "Washington doubled its tariffs on steel imported from China, saying cheap metal was hurting "
            "American mills. Beijing said it would respond."
        ),
        "tariffs",
        True,
    ),
    # 2. mentioned but not the subject
    (
        "dismissed",
        "Grocer's margins recover on lower freight costs",
        (
            "The supermarket chain said margins rose by half a point in the quarter. Analysts said trade "
            "levies were not a factor in the price rise, which they put down to weather and wages."
        ),
        "tariffs",
        False,
    ),
    (
        "dismissed",
        "Finance ministers agree to work on debt relief",
        (
            "The communique from the meeting in Cape Town focused on debt relief for poor countries. The "
            "statement made no reference to duties or trade barriers, officials noted."
        ),
        "tariffs",
        False,
    ),
    (
        "dismissed",
        "Influencer agency says its growth owes nothing to TikTok",
        (
            "The London agency said most of its revenue now comes from YouTube and podcasts, not TikTok, "
            "which it said played no part in last year's growth."
        ),
        "tiktok",
        False,
    ),
    # 3. trade duties named without the word tariff
    (
        "no tariff word",
        "Lumber mills in British Columbia cut shifts",
        (
            "Sawmills in British Columbia are cutting shifts after Washington raised its rate on Canadian"
            " lumber to 25 percent. Exporters say the charge at the border makes US sales unprofitable."
        ),
        "tariffs",
        True,
    ),
    (
        "no tariff word",
        "Ottawa answers with counter-levies on US goods",
        (
            "Canada will impose counter-levies on C$30 billion of American goods, including orange juice "
            "and motorcycles, from Monday in response to US duties on its steel."
        ),
        "tariffs",
        True,
    ),
    (
        "no tariff word",
        "Brussels sets provisional anti-subsidy deposits on Chinese e-bikes",
        (
            "The European Commission imposed provisional anti-subsidy deposits of up to 34% on electric "
            "bicycles imported from China after finding they benefited from state support."
        ),
        "tariffs",
        True,
    ),
    (
        "no tariff word",
        "Section 232 measures extended to aluminium derivatives",
        (
            "The Commerce Department said the Section 232 duties would now cover 400 more products "
            "containing aluminium, from car parts to cookware, taking effect next month."
        ),
        "tariffs",
        True,
    ),
    (
        "no tariff word",
        "Exporters welcome a cap on duties under the framework",
        (
            "Japanese carmakers welcomed the framework agreed with Washington, which caps duties on their"
            " vehicles at 10 percent and spares parts shipped for assembly in Ohio."
        ),
        "tariffs",
        True,
    ),
    (
        "no tariff word",
        "Vietnam warns exporters over penalty rate on transshipped goods",
        (
            "Hanoi told exporters to check the origin of components after the US set a 40 percent penalty"
            " rate on transshipped goods routed through Vietnam from China."
        ),
        "tariffs",
        True,
    ),
    # 4. domestic excise is not a tariff
    (
        "excise",
        "Smokers face higher tobacco duty in the budget",
        (
            "The chancellor raised tobacco duty by inflation plus two percent, adding 44p to a pack of 20"
            " cigarettes from 6pm tonight. Alcohol duty was frozen."
        ),
        "tariffs",
        False,
    ),
    (
        "excise",
        "Fuel duty freeze extended for another year",
        (
            "Motorists will benefit from a further freeze in fuel duty, the Treasury said, keeping the "
            "rate at 52.95p a litre until next April."
        ),
        "tariffs",
        False,
    ),
    # 5. TikTok named indirectly, and what is not the app
    (
        "indirect",
        "Lawmakers question ByteDance's American platform over data",
        (
            "Senators asked ByteDance's American platform to explain whether engineers in Beijing can "
            "still reach US user data after the joint venture took over its recommendation algorithm."
        ),
        "tiktok",
        True,
    ),
    (
        "indirect",
        "Oracle board approves stake in video app's planned US joint venture",
        (
            "Oracle's board approved a 15% stake in the video app's planned US joint venture, which will "
            "take over the short-video platform's American operations once Beijing signs off on the sale."
        ),
        "tiktok",
        True,
    ),
    (
        "indirect",
        "The app's FoodTok creators turn recipes into supermarket sales",
        (
            "Supermarkets report runs on feta and cottage cheese after viral FoodTok recipes. Creators on"
            " the ByteDance-owned app say brands now pay for a single 30-second video."
        ),
        "tiktok",
        True,
    ),
    (
        "indirect",
        "Beijing-owned short-video platform fights Reels and Shorts for advertisers",
        (
            "The Beijing-owned short-video platform is cutting ad prices in Europe as Instagram Reels and"
            " YouTube Shorts win budgets, media buyers said, after the app's US sale slowed its growth."
        ),
        "tiktok",
        True,
    ),
    (
        "not the app",
        "Tik Tok nightclub loses its licence after assault",
        (
            "Magistrates revoked the licence of the Tik Tok nightclub on Granby Street after police "
            "described a pattern of fights at closing time."
        ),
        "tiktok",
        False,
    ),
    (
        "not the app",
        "Choir's cover of Tik Tok tops local charts",
        (
            "A care home choir's version of the 2009 pop hit Tik Tok has topped the local download chart,"
            " raising £8,000 for dementia research."
        ),
        "tiktok",
        False,
    ),
    # 6. rare earths with the industry context further away, magnets
    (
        "rare earth",
        "Markets rally on a rare earth ceasefire",
        (
            "Asian shares rose after Beijing agreed to pause its new licensing rules for a year, a rare "
            "earth ceasefire that carmakers said would ease shortages of motor magnets."
        ),
        "rare_earths",
        True,
    ),
    (
        "rare earth",
        "Carmakers say the rare earth permit regime is too slow",
        (
            "European car parts makers said the rare earth permit regime introduced by China in April "
            "takes up to 45 days per shipment, leaving some plants days from stopping."
        ),
        "rare_earths",
        True,
    ),
    (
        "magnets",
        "Magnet feedstock from China held up awaiting licences",
        (
            "Japanese motor makers said shipments of magnet feedstock from China have been held up at "
            "ports awaiting export licences, threatening output of hybrid cars next month."
        ),
        "rare_earths",
        True,
    ),
    (
        "magnets",
        "US opens trade case on NdFeB magnets from China",
        (
            "The Commerce Department opened anti-dumping and countervailing cases on NdFeB permanent "
            "magnets from China after a petition by two US producers."
        ),
        "rare_earths",
        True,
    ),
    (
        "not rare earths",
        "Astronomers spot a rare Earth-like planet",
        (
            "The planet, 40 light years away, orbits its star in the habitable zone, a rare find, "
            "astronomers said."
        ),
        "rare_earths",
        False,
    ),
    (
        "not rare earths",
        "Lithium prices slide as new mines open",
        (
            "Lithium carbonate prices fell 8% this week as mines in Australia and Argentina raised "
            "output. Cobalt was flat."
        ),
        "rare_earths",
        False,
    ),
]


# Cases the current model gets wrong, kept asserting what is right: strict, so a model that gets one right
# fails here until it is moved back among the passing cases
KNOWN_MISSES = {
    "Beijing-owned short-video platform fights Reels and Shorts for advertisers": (
        "sense model of taxonomy 2026.12.2 (round 4): p 0.35 < threshold 0.74 (Reels, Shorts and Instagram "
        "weigh against a story that names the app only by a description)"
    ),
}


@pytest.mark.parametrize(
    ("kind", "title", "body", "topic", "expected"),
    [
        pytest.param(
            *case,
            id=case[1][:40],
            marks=[pytest.mark.xfail(strict=True, reason=KNOWN_MISSES[case[1]])]
            if case[1] in KNOWN_MISSES
            else [],
        )
        for case in CASES
    ],
)
def test_error_kinds_of_issue_7(kind: str, title: str, body: str, topic: str, expected: bool) -> None:
    why = default_tagger().explain(title, body)
    verdict = why.verdicts.get(topic)
    assert (topic in why.topics) is expected, (kind, verdict and verdict.contributions[:6])


def test_a_sensed_tag_carries_its_mentions_and_strongest_features_as_evidence() -> None:
    topics, hits = default_tagger().tag(
        "Ottawa answers with counter-levies on US goods",
        "Canada will impose counter-levies on American steel and aluminium from Monday, with a 25 percent "
        "rate on US goods, in retaliation for Washington's duties.",
    )
    assert topics == ["tariffs"]
    terms = [h["term"] for h in hits]
    sense = [t for t in terms if t.startswith("sense:")]
    assert terms[: len(terms) - len(sense)] and 1 <= len(sense) <= 3  # mentions first, then features
    assert {"counter-levy", "rate", "duty"} <= set(terms)
    assert next(h for h in hits if h["term"] == "counter-levy") == {
        "topic": "tariffs",
        "term": "counter-levy",
        "count": 2,
        "in_title": True,
    }
    arrow_type = arrow_schema().field("topic_hits").type
    assert pa.array([hits], type=arrow_type).to_pylist() == [hits]


def test_every_tag_has_evidence_and_every_hit_a_tag() -> None:
    tagger = default_tagger()
    for _, title, body, _, _ in CASES:
        topics, hits = tagger.tag(title, body)
        assert {h["topic"] for h in hits} == set(topics), title
        assert all(h["count"] >= 1 for h in hits)


def test_dismissed_mentions_are_marked_and_do_not_tag() -> None:
    why = default_tagger().explain(
        "Retailer's profit rises", "The chief executive said import duties were not a factor in the quarter."
    )
    verdict = why.verdicts["tariffs"]
    assert [(m.name, m.dismissed) for m in verdict.inp.mentions] == [("import duty", True)]
    assert not verdict.tagged and "tariffs" not in why.topics
    # the same words in two sentences: the dismissal does not reach across the full stop
    why = default_tagger().explain(
        "", "Nothing changed. Import duties on steel rose to 50 percent on Monday."
    )
    assert [m.dismissed for m in why.verdicts["tariffs"].inp.mentions] == [False]


def test_subject_cues_tell_a_passing_mention_from_the_story_s_subject() -> None:
    tagger = default_tagger()
    filler = "The council said repairs would take three weeks and cost about 40,000 pounds. " * 4

    def cues(title: str, body: str) -> dict[str, float]:
        return cue_features(tagger.sense_inputs(title, body)["tiktok"])

    subject = cues("TikTok faces fine", "TikTok was fined by the regulator on Monday. " + filler)
    assert "once" not in subject and "late" not in subject  # named twice, in the title
    brief = cues("Regulator acts", "The regulator fined TikTok on Monday.")
    assert brief.get("once") == 1.0 and "late" not in brief  # named once, in the lead
    passing = cues("Bridge closed after crash", filler + "A video of the crash was posted on TikTok.")
    assert passing.get("once") == 1.0 and passing.get("late") == 1.0  # once, past the body's opening
    assert len(filler) > LEAD_CHARS
    # a dismissed mention is neither: "late" asks where the affirmed mentions are
    both = cues("Bridge", "The crash had nothing to do with TikTok. " + filler + "TikTok users filmed it.")
    assert "once" in both and both.get("late") == 1.0


def test_explain_lists_near_misses_of_the_rules() -> None:
    why = Tagger(Taxonomy.load(), model=None).explain("", "He will resume his duties as chairman.")
    assert why.topics == [] and why.near_misses == {"tariffs": ["duty"]}


# --- the artifact ---------------------------------------------------------------------------------------


def model_doc() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((schemas_dir() / "topics.sense.json").read_text("utf-8"))
    return doc


def test_the_artifact_is_versioned_by_its_content_and_stamped_on_stories() -> None:
    model = SenseModel.load(schemas_dir() / "topics.sense.json")
    assert model.taxonomy_version == Taxonomy.load().version
    assert model.version == model_doc()["version"] and len(model.version) == 12
    assert default_tagger().tag_story({"title": "x", "body": ""})["taxonomy_version"].endswith(model.version)
    assert model.dumps() == (schemas_dir() / "topics.sense.json").read_text("utf-8")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.update(version="0" * 12), "does not match its content"),
        (lambda d: d["topics"]["tariffs"]["words"].update(steel=9.0), "does not match its content"),
        (lambda d: d.update(format=99), "format"),
        (lambda d: d.pop("topics"), "malformed"),
    ],
)
def test_a_tampered_or_broken_artifact_is_refused(tmp_path: Path, change: Any, message: str) -> None:
    doc = model_doc()
    change(doc)
    path = tmp_path / "model.json"
    path.write_text(json.dumps(doc), "utf-8")
    with pytest.raises(ConfigError, match=message):
        SenseModel.load(path)
    path.write_text("{not json", "utf-8")
    with pytest.raises(ConfigError, match="not valid JSON"):
        SenseModel.load(path)


def test_the_committed_artifact_is_what_training_on_the_repository_gives() -> None:
    # as `wirefeed train-tags` does: thresholds chosen by leave-one-writer-out, then trained on every file
    folds = [LabeledFile.read(p) for p in DEFAULT_FOLDS]
    extra = [LabeledFile.read(p) for p in DEFAULT_EXTRA]
    model, _ = train_with_thresholds(Taxonomy.load(), folds, extra)
    assert model.dumps() == (schemas_dir() / "topics.sense.json").read_text("utf-8"), (
        "schemas/topics.sense.json is stale: run `wirefeed train-tags`"
    )


def test_training_is_deterministic_and_needs_both_labels(tmp_path: Path) -> None:
    small = [LabeledFile.read(DEFAULT_FOLDS[0])]
    options = Options(l2=2.0)
    assert train(Taxonomy.load(), small, options).dumps() == train(Taxonomy.load(), small, options).dumps()
    only_positive = tmp_path / "pos.jsonl"
    only_positive.write_text(
        json.dumps(
            {"id": "1", "title": "TikTok ban", "body": "", "topics": ["tiktok", "tariffs", "rare_earths"]}
        )
        + "\n",
        "utf-8",
    )
    with pytest.raises(ValueError, match="positive and negative"):
        train(Taxonomy.load(), [LabeledFile.read(only_positive)])


def test_logistic_regression_learns_signs_and_is_reproducible() -> None:
    rows = [[(1, 1.0)], [(1, 1.0)], [(2, 1.0)], [(2, 1.0)], [(1, 1.0), (2, 1.0)]]
    labels = [1, 1, 0, 0, 1]
    w = fit(rows, labels, 3, [0.0, 0.1, 0.1])
    assert w[1] > 0 > w[2]
    assert sigmoid(w[0] + w[1]) > 0.5 > sigmoid(w[0] + w[2])
    assert fit(rows, labels, 3, [0.0, 0.1, 0.1]) == w


# --- the taxonomy's sense block and candidates ----------------------------------------------------------


GOOD = {"id": "ok", "label": "OK", "terms": ["word"]}
SENSE = {"model": "m.json"}


@pytest.mark.parametrize(
    ("doc", "field"),
    [
        ({"version": "1", "topics": [{**GOOD, "candidates": ["x"]}]}, "candidates"),
        ({"version": "1", "sense": {}, "topics": [GOOD]}, "sense.model"),
        ({"version": "1", "sense": {**SENSE, "colour": 1}, "topics": [GOOD]}, "sense.colour"),
        (
            {"version": "1", "sense": {**SENSE, "classes": {"a": ["two words"]}}, "topics": [GOOD]},
            "sense.classes.a",
        ),
        ({"version": "1", "sense": {**SENSE, "dismissal": [False]}, "topics": [GOOD]}, "sense.dismissal"),
        (
            {
                "version": "1",
                "sense": SENSE,
                "topics": [{**GOOD, "candidates": [{"term": "a b", "suffix": True}]}],
            },
            "candidates[0].suffix",
        ),
        (
            {
                "version": "1",
                "sense": SENSE,
                "topics": [{**GOOD, "terms": [{"term": "x", "require_in_story": ["y"]}]}],
            },
            "terms[0].require_in_story",
        ),
        ({"version": "1", "sense": SENSE, "topics": [{**GOOD, "candidates": ["word"]}]}, "candidates"),
    ],
)
def test_invalid_sense_settings_and_candidates_raise_config_error(doc: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigError) as info:
        Taxonomy.from_dict(doc, source="t.yaml")
    assert info.value.fields["field"] == field


def test_candidates_gates_and_suffixes_without_a_model() -> None:
    doc = {
        "version": "1",
        "sense": {"model": "unused.json", "dismissal": ["not"]},
        "topics": [
            {
                "id": "apps",
                "label": "Apps",
                "terms": ["TikTok"],
                "candidates": [
                    {"term": "tok", "suffix": True},
                    {"term": "rate", "require_in_story": ["import"]},
                ],
            }
        ],
    }
    tagger = Tagger(Taxonomy.from_dict(doc), model=None)
    names = lambda title, body: {  # noqa: E731
        topic: [(m.name, m.dismissed) for m in inp.mentions]
        for topic, inp in tagger.sense_inputs(title, body).items()
    }
    assert names("", "The BookTok crowd loves TikTok") == {"apps": [("tok", False), ("TikTok", False)]}
    assert names("", "The rate rose.") == {}  # the gate: no "import" in the story
    assert names("Imports", "The rate rose.") == {"apps": [("rate", False)]}
    assert names("", "It is not TikTok.") == {"apps": [("TikTok", True)]}
    assert tagger.tag("", "TikTok") == (
        ["apps"],
        [{"topic": "apps", "term": "TikTok", "count": 1, "in_title": False}],
    )
