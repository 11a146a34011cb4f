"""The tagging benchmark: generated wire stories of a realistic section mix, timed through the default
tagger (rules + sense model), all stories and the candidate stories (those the sense model reads) apart.

Stories are drawn section by section, as a general wire runs them: politics, business and markets, world,
sport, courts, local, science and health, technology, trade, weather. Every story mixes function words,
general news words and its section's words (Zipf weights, most frequent first), and the section's topic
terms where they belong: taxonomy terms appear in the trade, technology and minerals stories; words that
send a story to the sense model in other senses appear where they do in real news ("interest rates" and
"bank charges" in markets, "on duty" in courts, "data tariff" in technology, "magnet" in science). Which
stories hold a candidate is then measured, not chosen: the bench prints that share.
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Callable
from itertools import accumulate
from pathlib import Path

from pipeline.tagging.rules import Tagger, Taxonomy

SEEDS = Path(__file__).resolve().parent.parent.parent / "shared" / "seeds"

_FUNCTION = """the of and to in a said on for that with was as by at from is it has have are its were would
will but not be this an their which after over more than also had been who they he she could about into up
out when there one two new last first"""
_NEWS = """year percent government officials minister president company people country state city police
report according statement spokesman told reporters monday tuesday wednesday thursday friday week month
million billion plan policy law group time official national public local since during while because however
including between under against despite amid before across around region capital world international
announced expected added called made years months day days number support service"""
FUNCTION_WORDS, NEWS_WORDS = _FUNCTION.split(), _NEWS.split()

# section: (share of the wire, its words (most frequent first), words that only some of its stories use
# with the share of its stories that do, share of its stories about a taxonomy topic, those topics)
Section = tuple[float, str, dict[str, float], float, tuple[str, ...]]
SECTIONS: dict[str, Section] = {
    "politics": (
        0.17,
        """party election vote parliament congress senate lawmakers leader campaign opposition bill
        coalition voters cabinet prime reform budget spending tax minister debate poll candidate measures
        rally committee hearing democrats republicans conservative labour""",
        {"trade": 0.1, "duty": 0.03},
        0.0,
        (),
    ),
    "markets": (
        0.17,
        """shares investors market prices bank economy growth inflation profit revenue quarter sales
        earnings stocks bonds dollar euro yen index analysts forecast demand oil gas energy central lending
        fees dividend traders""",
        {"interest rates": 0.35, "trade": 0.3, "bank charges": 0.05, "imports": 0.1, "customs": 0.02},
        0.05,
        ("semiconductors", "pharmaceuticals"),
    ),
    "world": (
        0.12,
        """military security forces troops ceasefire talks foreign ministry defence border refugees aid
        conflict sanctions embassy summit leaders united nations diplomats peace attack protest""",
        {"trade": 0.1, "measures": 0.1},
        0.0,
        (),
    ),
    "sport": (
        0.14,
        """match game season team league cup goal win won coach players championship final title score
        victory fans injury club tournament points race horse trainer stakes""",
        {"transfer fee": 0.05},
        0.0,
        (),
    ),
    "courts": (
        0.08,
        """court judge trial jury charged charges guilty sentence prison police arrested investigation
        lawyer prosecutors case appeal fraud murder officers evidence hearing""",
        {"on duty": 0.1, "minimum term": 0.05},
        0.1,
        ("money_laundering",),
    ),
    "local": (
        0.08,
        """council residents school road homes housing mayor plans park fire community hospital water
        bus parking services traffic library centre street""",
        {"council rates": 0.1, "parking charges": 0.05},
        0.0,
        (),
    ),
    "science": (
        0.08,
        """study researchers scientists health patients hospital disease drug vaccine climate species
        planet space earth data university trial treatment scanners""",
        {"magnet": 0.03, "rare earthquake": 0.02, "lithium": 0.05},
        0.0,
        (),
    ),
    "technology": (
        0.08,
        """app users platform online data software internet phone smartphone video social media
        artificial intelligence chatbot startup cloud streaming subscribers mobile""",
        {"data tariff": 0.05, "short videos": 0.1},
        0.3,
        ("tiktok", "semiconductors"),
    ),
    "trade": (
        0.05,
        """trade imports exports goods steel aluminium cars customs exporters importers shipments supply
        suppliers manufacturers retaliation talks deal""",
        {},
        1.0,
        ("tariffs", "trade_talks", "export_controls", "agriculture_trade", "rare_earths"),
    ),
    "weather": (
        0.03,
        """storm rain snow wind temperatures flooding warning heat forecasters coast""",
        {},
        0.0,
        (),
    ),
}


_SYLLABLES = "ba de fi ga ho ju ka le mi no pu ra se ti vo ze lan mer dis con ver pro tal son rin bel"


def _long_tail(rng: random.Random, n: int = 20000) -> list[str]:
    """Made-up words standing for the long tail of real text (names, places, rare nouns): most words of a
    story occur in few others, and match no term."""
    syllables = _SYLLABLES.split()
    return ["".join(rng.choices(syllables, k=rng.randint(2, 4))) for _ in range(n)]


def _zipf(n: int) -> list[float]:
    return list(accumulate(1 / rank for rank in range(1, n + 1)))


def make_stories(
    taxonomy: Taxonomy, count: int, *, size: int = 3000, term_rate: float = 0.02, seed: int = 20261126
) -> list[tuple[str, str]]:
    """`count` (title, body) pairs of about `size` characters, sections drawn by their share of the wire.
    Words: 45% function words, 15% general news words, 15% the section's, 25% the long tail; each of the
    section's occasional words in its share of stories, once to three times; in a story about a topic, a
    `term_rate` share of the body words and one title word are forms of its section's topics' terms."""
    rng = random.Random(seed)
    tail = _long_tail(rng)
    names = list(SECTIONS)
    shares = list(accumulate(SECTIONS[name][0] for name in names))
    vocab = {name: SECTIONS[name][1].split() for name in names}
    terms = {
        name: [
            form for t in taxonomy.topics if t.id in section[4] for term in t.terms for form in term.keys[:2]
        ]
        for name, section in SECTIONS.items()
    }
    pools = [
        (FUNCTION_WORDS, _zipf(len(FUNCTION_WORDS))),
        (NEWS_WORDS, _zipf(len(NEWS_WORDS))),
        (tail, _zipf(len(tail))),
    ]
    stories = []
    for _ in range(count):
        section = rng.choices(names, cum_weights=shares)[0]
        sources = (*pools, (vocab[section], _zipf(len(vocab[section]))))
        _, _, sometimes, topical, _ = SECTIONS[section]
        section_terms = terms[section] if rng.random() < topical else []

        def word(pool: int, sources: tuple[tuple[list[str], list[float]], ...] = sources) -> str:
            words, weights = sources[pool]
            return rng.choices(words, cum_weights=weights)[0]

        words: list[str] = []
        length = 0
        while length < size:
            if section_terms and rng.random() < term_rate:
                w = rng.choice(section_terms)
            else:
                w = word(rng.choices((0, 1, 2, 3), cum_weights=(0.45, 0.6, 0.85, 1.0))[0])
            words.append(w)
            length += len(w) + 1
        for phrase, share in sometimes.items():
            if rng.random() < share:
                for _ in range(rng.randint(1, 3)):
                    words.insert(rng.randrange(len(words) + 1), phrase)
        sentences = [" ".join(words[i : i + 18]).capitalize() + "." for i in range(0, len(words), 18)]
        paragraphs = [" ".join(sentences[i : i + 4]) for i in range(0, len(sentences), 4)]
        title_words = [word(rng.choice((1, 2, 3, 3))) for _ in range(8)]
        if section_terms:
            title_words.insert(rng.randrange(9), rng.choice(section_terms))
        stories.append((" ".join(title_words).capitalize(), "\n\n".join(paragraphs)))
    return stories


def timed(fn: Callable[[], object], repeats: int) -> tuple[list[float], list[float]]:
    """Wall-clock (perf_counter) and CPU (process_time) seconds of each repeat."""
    wall, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return wall, cpu


def _rates(tagger: Tagger, stories: list[tuple[str, str]], repeats: int) -> tuple[float, float, float]:
    """(best wall, median wall, best CPU) stories per second over `repeats` runs."""

    def run() -> None:
        for title, body in stories:
            tagger.tag(title, body)

    wall, cpu = timed(run, repeats)
    n = len(stories)
    return n / min(wall), n / statistics.median(wall), n / min(cpu)


def bench_tagging(count: int, repeats: int) -> None:
    tagger = Tagger(Taxonomy.load())
    stories = make_stories(tagger.taxonomy, count)
    mean_chars = sum(len(t) + len(b) for t, b in stories) / len(stories)
    results = [tagger.tag(t, b) for t, b in stories]
    tagged = sum(1 for topics, _ in results if topics)
    candidates = [s for s in stories if tagger.sense_inputs(*s)]
    others = [s for s in stories if not tagger.sense_inputs(*s)]
    print(
        f"tagging: taxonomy {tagger.version}, {len(tagger.taxonomy.topics)} topics, scan "
        f"{'compiled (pipeline/tagging/_automaton.c)' if tagger.compiled else 'ahocorasick_rs (fallback)'}, "
        f"{count} generated "
        f"stories of {mean_chars:.0f} chars on average ({tagged} with topics; {len(candidates)} candidate "
        f"stories = {len(candidates) / count:.1%}, read by the sense model)"
    )
    for label, subset in (
        ("all stories", stories),
        ("candidate stories", candidates),
        ("other stories", others),
    ):
        if not subset:
            continue
        best, median, cpu = _rates(tagger, subset, repeats)
        print(
            f"tagging, {label}: {best:,.0f} stories/s best, {median:,.0f} median, {cpu:,.0f} best by CPU "
            f"time ({len(subset)} stories, {repeats} repeats, one thread)"
        )


def bench_seed_story(repeats: int) -> None:
    """The same measure on a real wire story (../shared/seeds), whose topic density is high."""
    seeds = sorted(SEEDS.glob("*.txt")) if SEEDS.is_dir() else []
    if not seeds:
        print("tagging: seed story skipped, ../shared/seeds not found")
        return
    tagger = Tagger(Taxonomy.load())
    text = seeds[0].read_text("utf-8")
    count = 2000
    topics, hits = tagger.tag("", text)

    def run() -> None:
        for _ in range(count):
            tagger.tag("", text)

    wall, cpu = timed(run, repeats)
    print(
        f"tagging: seed story {seeds[0].name} ({len(text)} chars, {len(topics)} topics, "
        f"{sum(h['count'] for h in hits)} hits): {count / min(wall):,.0f} stories/s best wall, "
        f"{count / min(cpu):,.0f} best CPU ({count * len(text) / min(wall) / 1e6:.1f} MB/s)"
    )
