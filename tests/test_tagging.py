"""pipeline.tagging.rules and .taxonomy: taxonomy loading/validation, the rule language, evidence, the seed.

The rule language is tested on the rules alone (`rules_tagger()`, no sense model): the rules are the
candidate finder and part of the evidence of the sense model, which tests/test_tagging_sense.py covers."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import yaml

from pipeline.cli import main
from pipeline.errors import ConfigError
from pipeline.schema import arrow_schema, schemas_dir
from pipeline.tagging.rules import Tagger, Taxonomy, default_tagger

SEEDS = Path(__file__).resolve().parents[2] / "shared" / "seeds"
REQUIRED_TOPICS = {
    "tiktok",
    "tariffs",
    "rare_earths",
    "semiconductors",
    "export_controls",
    "trade_talks",
    "money_laundering",
    "agriculture_trade",
    "pharmaceuticals",
}


@cache
def fallback_tagger() -> Tagger:
    """The default taxonomy and model without the compiled parts (the ahocorasick_rs scan)."""
    return Tagger(Taxonomy.load(), compiled=False)


@cache
def rules_tagger() -> Tagger:
    """The default taxonomy decided by its rules alone (what the sense model gets as candidates)."""
    return Tagger(Taxonomy.load(), model=None)


def topics_of(text: str, title: str = "") -> list[str]:
    return rules_tagger().tag(title, text)[0]


def small_tagger(topics: list[dict[str, Any]]) -> Tagger:
    return Tagger(Taxonomy.from_dict({"version": "t1", "topics": topics}))


# --- the hard cases of the rules, in sentences written for this test -----------------------------------

TARIFF_CASES = [
    ("Households on a fixed energy tariff will pay less this winter.", False),
    ("The feed-in tariff for small solar panels was cut again.", False),
    ("Her mobile data tariff includes free roaming in Europe.", False),
    ("The streaming tariff for the family plan went up to £19.", False),
    ("Hotel tariffs in Venice doubled during the film festival.", False),
    ("The utility raised its tariff for business customers.", False),
    ("Electricity tariffs will rise 5% in April.", False),
    ("Buyers will pay less stamp duty on homes under £250,000.", False),
    ("The excise duty on beer was frozen.", False),
    ("He will resume his duties as chairman next week.", False),
    ("Officers on duty at the port searched the lorry.", False),
    ("The US raised tariffs on Chinese steel to 50%.", True),
    ("India cut the import duty on almonds.", True),
    ("Customs duties on parcels now apply from the first dollar.", True),
    ("Brussels imposed anti-dumping duties on Chinese plywood.", True),
    ("Canada set countervailing duties on solar cells.", True),
    ("A 10% levy on imports from Mexico starts on Monday.", True),
    ("Beijing answered with retaliatory duties on American pork.", True),
]

RARE_EARTH_CASES = [
    ("Astronomers found a rare Earth-like planet orbiting a red dwarf.", False),
    ("A rare earthquake shook the Midlands overnight.", False),
    ("The museum bought a rare earthenware jug.", False),
    ("Lithium and cobalt prices fell again.", False),
    ("Gallium and germanium are used in chips and solar panels.", False),
    ("Neodymium prices rose 8% this week.", True),
    ("Dysprosium is needed for motors that run hot.", True),
    ("Terbium output from Myanmar fell.", True),
    ("The lab separates lanthanides with bacteria.", True),
    ("Coal ash may hold large amounts of REEs.", True),
    ("The plant will make NdFeB magnets for carmakers.", True),
    ("China tightened rare-earth export rules.", True),
    ("Japan holds strategic stocks of rare earths.", True),
]

TIKTOK_CASES = [
    ("The tick-tock of the clock was the only sound in the room.", False),
    ("ByteDance launched a new version of its Doubao chatbot.", False),
    ("ByteDance's valuation rose to $330bn in a share buyback.", False),
    ("The ByteDance-owned video app was fined €345m in Ireland.", True),
    ("The Chinese-owned short video app will store European data in Norway.", True),
    ("ByteDance must sell the US operations of the app by January.", True),
    ("Creators posted protest videos on TikTok.", True),
    ("The Tik Tok ban was delayed again.", True),
]


@pytest.mark.parametrize(("text", "expected"), TARIFF_CASES)
def test_tariff_hard_cases(text: str, expected: bool) -> None:
    assert ("tariffs" in topics_of(text)) is expected


@pytest.mark.parametrize(("text", "expected"), RARE_EARTH_CASES)
def test_rare_earth_hard_cases(text: str, expected: bool) -> None:
    assert ("rare_earths" in topics_of(text)) is expected


@pytest.mark.parametrize(("text", "expected"), TIKTOK_CASES)
def test_tiktok_hard_cases(text: str, expected: bool) -> None:
    assert ("tiktok" in topics_of(text)) is expected


# --- evidence -------------------------------------------------------------------------------------------


def test_hits_carry_evidence_with_canonical_terms_counts_and_title_flag() -> None:
    topics, hits = rules_tagger().tag(
        "Tariffs bite", "New TARIFFS on steel. The tariff on copper stays. TikTok’s owner said nothing."
    )
    assert topics == ["tariffs", "tiktok"]
    assert hits == [
        {"topic": "tariffs", "term": "tariff", "count": 3, "in_title": True},
        {"topic": "tiktok", "term": "TikTok", "count": 1, "in_title": False},
    ]


def test_no_topics_means_no_hits() -> None:
    for tagger in (default_tagger(), rules_tagger()):
        assert tagger.tag("Storm closes schools", "Heavy snow is expected.") == ([], [])
        assert tagger.tag("", "") == ([], [])


def test_hits_match_the_story_schema_struct() -> None:
    _, hits = default_tagger().tag("Rare earth magnets", "Import duties on neodymium magnets rose.")
    assert hits
    arrow_type = arrow_schema().field("topic_hits").type
    assert pa.array([hits], type=arrow_type).to_pylist() == [hits]
    assert all(set(h) == {"topic", "term", "count", "in_title"} for h in hits)


def test_overlapping_terms_of_one_topic_count_once_as_the_longest() -> None:
    _, hits = rules_tagger().tag("", "The firm makes rare earth magnets.")
    assert hits == [{"topic": "rare_earths", "term": "rare earth magnet", "count": 1, "in_title": False}]


def test_tag_story_sets_fields_in_place_and_uses_summary_when_body_is_empty() -> None:
    story: dict[str, Any] = {"title": "Market report", "body": "", "summary": "Neodymium prices rose."}
    result = default_tagger().tag_story(story)
    assert result is story
    assert story["topics"] == ["rare_earths"]
    assert story["topic_hits"][0]["term"] == "neodymium"
    assert story["taxonomy_version"] == default_tagger().version
    assert default_tagger().version == f"{Taxonomy.load().version}+sense.{default_tagger().model.version}"
    story["body"] = "The Supreme Court upheld the TikTok ban, and the app's US operations must be sold."
    assert default_tagger().tag_story(story)["topics"] == ["tiktok"]  # body wins over summary


# --- matching rules -------------------------------------------------------------------------------------


def test_separators_plurals_and_case_rules() -> None:
    tagger = small_tagger(
        [
            {"id": "metals", "label": "M", "terms": ["rare earth", "duty"]},
            {"id": "acronym", "label": "A", "terms": [{"term": "REE", "case": "exact"}]},
        ]
    )
    for text in ["rare-earth", "Rare Earths", "RARE\u2011EARTH", "rare\nearth", "duties", "(duty)"]:
        assert tagger.tag("", text)[0] == ["metals"], text
    for text in ["rare earthquake", "rare, earth", "dutyfree", "rarely earth"]:
        assert tagger.tag("", text)[0] == [], text
    assert tagger.tag("", "Café: REEs and the REE market")[1] == [
        {"topic": "acronym", "term": "REE", "count": 2, "in_title": False}
    ]
    assert tagger.tag("", "Résumé of Rees and the ree") == ([], [])


def test_context_window_is_counted_in_words_on_each_side() -> None:
    tagger = small_tagger(
        [{"id": "deals", "label": "D", "terms": [{"term": "deal", "require": ["trade"], "window": [2, 1]}]}]
    )
    assert tagger.tag("", "trade, a deal")[0] == ["deals"]  # 1 word between
    assert tagger.tag("", "trade was a deal")[0] == []  # 2 words between: outside a 2-word window
    assert tagger.tag("", "a deal on trade")[0] == []  # 1 word between on the right: outside
    assert tagger.tag("", "a deal trade")[0] == ["deals"]


def test_unless_and_blocking_phrases() -> None:
    tagger = small_tagger(
        [
            {
                "id": "tariffs",
                "label": "T",
                "terms": [{"term": "tariff", "unless": ["hotel"], "window": 2}],
                "not": ["energy tariff"],
            }
        ]
    )
    assert tagger.tag("", "hotel room tariff")[0] == []
    assert tagger.tag("", "energy tariffs rise")[0] == []
    assert tagger.tag("", "the tariffs on hotel furniture")[0] == []
    assert tagger.tag("", "steel tariffs rise; the hotel was full")[0] == ["tariffs"]


def test_rules_and_overlaps_stay_within_one_field() -> None:
    tagger = small_tagger(
        [
            {
                "id": "deals",
                "label": "D",
                "terms": ["trade deal", {"term": "deal", "require": ["trade"], "window": 3}],
                "not": ["deal breaker"],
            }
        ]
    )
    assert tagger.tag("Trade", "deal") == ([], [])  # context words are counted in one field
    assert tagger.tag("deal", "trade") == ([], [])
    assert tagger.tag("trade deal", "breaker deal") == (
        ["deals"],
        [{"topic": "deals", "term": "trade deal", "count": 1, "in_title": True}],
    )
    assert tagger.tag("A trade deal", "The trade deal, a deal in trade")[1] == [
        {"topic": "deals", "term": "trade deal", "count": 2, "in_title": True},
        {"topic": "deals", "term": "deal", "count": 1, "in_title": False},
    ]


def test_adding_a_topic_is_a_yaml_edit_and_a_retrain(tmp_path: Path) -> None:
    doc = yaml.safe_load((schemas_dir() / "topics.yaml").read_text("utf-8"))
    doc["version"] = "test.1"
    doc["topics"].append({"id": "shipping", "label": "Shipping", "terms": ["container ship", "Red Sea"]})
    path = tmp_path / "topics.yaml"
    path.write_text(yaml.safe_dump(doc), "utf-8")
    with pytest.raises(ConfigError, match="train-tags"):  # no model beside it yet
        Tagger(Taxonomy.load(path))
    (tmp_path / "topics.sense.json").write_text(
        (schemas_dir() / "topics.sense.json").read_text("utf-8"), "utf-8"
    )
    with pytest.raises(ConfigError, match="trained for taxonomy"):  # a model of another version
        Tagger(Taxonomy.load(path))
    assert main(["train-tags", "--taxonomy", str(path)]) == 0  # writes tmp_path/topics.sense.json
    tagger = Tagger(Taxonomy.load(path))
    assert tagger.tag("Container ships avoid the Red Sea", "")[0] == ["shipping"]
    story = tagger.tag_story({"title": "Tariffs", "body": ""})
    assert story["taxonomy_version"] == f"test.1+sense.{tagger.model.version}"


# --- taxonomy loading -----------------------------------------------------------------------------------


def test_default_taxonomy_has_the_required_topics_and_a_version() -> None:
    taxonomy = Taxonomy.load()
    assert set(taxonomy.topic_ids) >= REQUIRED_TOPICS
    assert taxonomy.version == yaml.safe_load((schemas_dir() / "topics.yaml").read_text("utf-8"))["version"]
    assert default_tagger() is default_tagger()


GOOD_TOPIC = {"id": "ok", "label": "OK", "terms": ["word"]}


@pytest.mark.parametrize(
    ("doc", "topic", "field"),
    [
        ({"topics": [GOOD_TOPIC]}, None, "version"),
        ({"version": "1", "topics": []}, None, "topics"),
        ({"version": "1", "topics": [{**GOOD_TOPIC, "id": "Bad-Id"}]}, "Bad-Id", "id"),
        ({"version": "1", "topics": [GOOD_TOPIC, GOOD_TOPIC]}, "ok", "id"),
        ({"version": "1", "topics": [{**GOOD_TOPIC, "label": ""}]}, "ok", "label"),
        ({"version": "1", "topics": [{**GOOD_TOPIC, "terms": []}]}, "ok", "terms"),
        ({"version": "1", "topics": [{**GOOD_TOPIC, "colour": "red"}]}, "ok", "colour"),
        (
            {"version": "1", "topics": [{**GOOD_TOPIC, "terms": [{"term": "x", "case": "upper"}]}]},
            "ok",
            "terms[0].case",
        ),
        (
            {"version": "1", "topics": [{**GOOD_TOPIC, "terms": [{"term": "x", "window": 3}]}]},
            "ok",
            "terms[0].window",
        ),
        (
            {
                "version": "1",
                "topics": [{**GOOD_TOPIC, "terms": [{"term": "x", "require": ["y"], "window": -1}]}],
            },
            "ok",
            "terms[0].window",
        ),
        (
            {"version": "1", "topics": [{**GOOD_TOPIC, "terms": [{"term": "x", "aliases": "y"}]}]},
            "ok",
            "terms[0].aliases",
        ),
        ({"version": "1", "topics": [{**GOOD_TOPIC, "terms": ["tariff", "tariffs"]}]}, "ok", "terms"),
        ({"version": "1", "topics": [{**GOOD_TOPIC, "not": "stamp duty"}]}, "ok", "not"),
    ],
)
def test_invalid_taxonomies_raise_config_error_naming_topic_and_field(
    doc: dict[str, Any], topic: str | None, field: str
) -> None:
    with pytest.raises(ConfigError) as info:
        Taxonomy.from_dict(doc, source="test.yaml")
    assert info.value.fields.get("topic") == topic
    assert info.value.fields["field"] == field
    assert info.value.fields["path"] == "test.yaml"


def test_unreadable_or_invalid_yaml_files_raise_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        Taxonomy.load(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: [unclosed\n", "utf-8")
    with pytest.raises(ConfigError, match="not valid YAML"):
        Taxonomy.load(bad)


# --- the seed story -------------------------------------------------------------------------------------


@pytest.mark.skipif(not SEEDS.is_dir(), reason="../shared/seeds not present")
def test_seed_story_is_tagged_with_its_agenda_topics() -> None:
    for seed in sorted(SEEDS.glob("*.txt")):
        topics, hits = default_tagger().tag("", seed.read_text("utf-8"))
        # every agenda item of the story: TikTok, tariffs, rare earths, chips, medicines, money laundering,
        # export controls, farm imports, and the talks themselves
        assert set(topics) == REQUIRED_TOPICS, seed.name
        assert {h["topic"] for h in hits} == set(topics)


def test_unusual_text_is_tagged_without_errors() -> None:
    for tagger in (rules_tagger(), default_tagger()):
        assert tagger.tag("Zölle — «TikTok»", "\u00a0Les droits de douane\u2026 NEODYMIUM!")[0] == [
            "rare_earths",
            "tiktok",
        ]
        assert tagger.tag("   ", "\n\n") == ([], [])
    assert rules_tagger().tag("", "broken \ud800 surrogate, then tariffs on steel")[0] == ["tariffs"]
    assert default_tagger().tag("US tariffs \ud800 on Chinese steel", "broken \udfff surrogate")[0] == [
        "tariffs"
    ]


def _matches_by_search(tagger: Tagger, text: bytes) -> list[tuple[int, Any]]:
    """The reference for the automaton: every occurrence of every key (" form ", or "form " for a suffix
    form) found by bytes.find, as (offset of its closing space, value), by that offset, longest key first."""
    found = []
    for i, key in enumerate(tagger._keys):
        needle = key.encode("latin-1")
        at = text.find(needle)
        while at >= 0:
            end = at + len(needle) - 1
            found.append((end, -len(needle), i))
            at = text.find(needle, at + 1)
    return [(end, tagger._values[i]) for end, _, i in sorted(found)]


@pytest.mark.parametrize(
    "title, body",
    [
        (
            "Tariffs on steel",
            "The U.S. tariff-rate quota; rare earth magnets, rare-earth oxides. TikTok's BookTok.",
        ),
        ("", "curates separate corporate rates: a rate, the rates and duties, counter-tariffs"),
        ("Rare earths", "rare earth earth rare earths earthquake rare  earth dysprosium-terbium NdFeB"),
        (
            "caf\u00e9 d\u00e0 tariff\u00a0rates",
            "Tik Tok tiktok TIKTOK foodtok tok tokens \u201ctariffs\u201d",
        ),
    ],
)
def test_automaton_finds_every_whole_word_key(title: str, body: str) -> None:
    """The DFA searches keys without their leading space and checks the word boundary per match: that
    gives exactly the matches of a plain search for every key, in the same order."""
    from pipeline.tagging.text import prepare

    tagger, fallback = default_tagger(), fallback_tagger()
    raw, low, _ = prepare(title, body)
    assert fallback._matches(low) == _matches_by_search(fallback, low)
    if tagger._scanner is not None:  # the compiled scan reads the case-kept bytes, folding them itself
        assert tagger._scanner.scan(raw) == _matches_by_search(tagger, low)


@pytest.mark.parametrize(
    "text",
    [
        "plain ascii words",
        "d\u00e0 caf\u00e9 \u00e0la na\u00efve \u2026 x",
        "\u0100\u0105 \u4e2d\u6587 \u00a0nbsp \u2028ls",
        "",
    ],
)
def test_words_of_splits_like_str_split(text: str) -> None:
    """The sense model's words are found in bytes: they must be the words str.split() finds in the latin-1
    text, which also splits at bytes 0x85 and 0xA0 (inside UTF-8 characters such as "\u00e0" and "\u2026")."""
    from pipeline.tagging.rules import _words_of

    low = text.encode("utf-8")
    assert _words_of(low) == [w.encode("latin-1") for w in low.decode("latin-1").split()]


def _overlap_reference(a: list[str], b: list[str], *, same: bool) -> bool:
    """_can_overlap as first written: every placement of b against a, word pairs compared one by one."""
    for offset in range(-len(b) + 1, len(a)):
        if same and offset == 0:
            continue
        pairs = [(a[k], b[k - offset]) for k in range(max(0, offset), min(len(a), offset + len(b)))]
        if pairs and all(x == y for x, y in pairs):
            return True
    return False


def test_can_overlap_matches_every_placement() -> None:
    import itertools

    from pipeline.tagging.rules import _can_overlap

    seqs = [list(p) for n in range(1, 5) for p in itertools.product("xyz", repeat=n)]
    for a in seqs:
        for b in seqs:
            assert _can_overlap(a, b, same=False) == _overlap_reference(a, b, same=False), (a, b)
        assert _can_overlap(a, a, same=True) == _overlap_reference(a, a, same=True), a


def test_overlapping_forms_checks_only_pairs_that_share_a_word() -> None:
    """The pruned search finds what comparing every pair of a topic's forms finds."""
    from pipeline.tagging.rules import _overlapping_forms

    taxonomy = Taxonomy.load()
    everything: set[tuple[str, str]] = set()
    for topic in taxonomy.topics:
        forms = {key: key.split(" ") for term in topic.terms for key in term.keys}
        for a, a_words in forms.items():
            for b, b_words in forms.items():
                if _overlap_reference(a_words, b_words, same=a == b):
                    everything.update({(topic.id, a), (topic.id, b)})
    assert everything and _overlapping_forms(taxonomy) == everything
