"""Benchmarks (`make bench`). They print figures; they assert nothing.

1. Topic tagging rate on one core: deterministic ~3 KB stories from a seeded RNG (news word list plus
   taxonomy terms), best and median of several timed repeats.
2. Over ../shared/corpora/feedparser-tests (when present): feedparser's own parse rate from bytes, and the
   full pipeline.stories.stories_from_bytes rate (parse + normalize + tag), with the overhead ratio.
"""

from __future__ import annotations

import argparse
import importlib
import random
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import feedparser

from pipeline.tagging import Tagger, Taxonomy

REPO = Path(__file__).resolve().parent.parent
CORPUS = REPO.parent / "shared" / "corpora" / "feedparser-tests"

NEWS_WORDS = """
the of and to in a said on for that with was as by at from is it has have are its were would will but
not be this an their which after over more than year percent government officials minister president
company market prices economy growth bank shares investors week month people country state city police
court report reported according statement spokesman told reporters on monday tuesday wednesday thursday
friday new first last two three million billion dollars euros quarter sales profit revenue demand supply
workers union talks meeting agreement plan policy law rules regulators industry factory production
exports imports trade deficit currency inflation interest rates central election vote party leader
parliament congress senate lawmakers security military defence foreign ministry spokeswoman analysts
expected estimate forecast data showed rose fell climbed dropped percent higher lower record since during
while because however also including between under against despite amid before across about around
region capital local national global international world china united states europe japan india britain
beijing washington brussels london tokyo shipments goods steel cars technology energy oil gas power
""".split()


def make_stories(taxonomy: Taxonomy, count: int, *, size: int = 3000, seed: int = 20261126) -> list[tuple[str, str]]:
    """`count` (title, body) pairs of about `size` characters each; roughly one word in 40 is a topic term."""
    rng = random.Random(seed)
    terms = [form for topic in taxonomy.topics for term in topic.terms for form in term.keys[:2]]
    stories = []
    for _ in range(count):
        words: list[str] = []
        length = 0
        while length < size:
            word = rng.choice(terms) if rng.random() < 0.025 else rng.choice(NEWS_WORDS)
            words.append(word)
            length += len(word) + 1
        sentences = [" ".join(words[i : i + 18]).capitalize() + "." for i in range(0, len(words), 18)]
        paragraphs = ["\n".join(sentences[i : i + 4]) for i in range(0, len(sentences), 4)]
        title = " ".join(rng.choice(NEWS_WORDS + terms) for _ in range(9)).capitalize()
        stories.append((title, "\n\n".join(paragraphs)))
    return stories


def timed(fn: Callable[[], object], repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def bench_tagging(count: int, repeats: int) -> None:
    tagger = Tagger(Taxonomy.load())
    stories = make_stories(tagger.taxonomy, count)
    mean_chars = sum(len(t) + len(b) for t, b in stories) / len(stories)
    tagged = sum(1 for t, b in stories if tagger.tag(t, b)[0])

    def run() -> None:
        for title, body in stories:
            tagger.tag(title, body)

    times = timed(run, repeats)
    best, median = count / min(times), count / statistics.median(times)
    print(f"tagging: taxonomy {tagger.taxonomy.version}, {len(tagger.taxonomy.topics)} topics, "
          f"{count} generated stories of {mean_chars:.0f} chars on average ({tagged} with topics)")
    print(f"tagging: {best:,.0f} stories/s best, {median:,.0f} stories/s median "
          f"({best * mean_chars / 1e6:.1f} MB/s best) over {repeats} repeats, one thread")


def bench_corpus(repeats: int) -> None:
    if not CORPUS.is_dir():
        print(f"corpus: skipped, {CORPUS} not found")
        return
    files = sorted(p for p in CORPUS.rglob("*") if p.is_file() and p.suffix in {".xml", ".json"})
    blobs = [(str(p), p.read_bytes()) for p in files]
    megabytes = sum(len(b) for _, b in blobs) / 1e6
    entries = sum(len(feedparser.parse(data).entries) for _, data in blobs)

    def parse_only() -> None:
        for _, data in blobs:
            feedparser.parse(data)

    fp_time = min(timed(parse_only, repeats))
    print(f"corpus: {len(blobs)} files, {megabytes:.1f} MB, {entries} feedparser entries ({CORPUS})")
    print(f"feedparser only: {len(blobs) / fp_time:,.0f} files/s, {entries / fp_time:,.0f} entries/s "
          f"(best of {repeats}, {fp_time:.2f} s)")
    try:
        stories_module = importlib.import_module("pipeline.stories")
        stories_from_bytes = stories_module.stories_from_bytes
    except (ImportError, AttributeError) as exc:
        print(f"full path: pipeline.stories.stories_from_bytes is not available yet ({exc}); skipped")
        return
    from pipeline.errors import WirefeedError
    from pipeline.tagging import default_tagger

    tagger = default_tagger()
    fetched_at = datetime(2026, 1, 1, tzinfo=UTC)
    counts = {"stories": 0, "rejected_inputs": 0}

    def full_path() -> None:
        counts.update(stories=0, rejected_inputs=0)
        for origin, data in blobs:
            try:
                batch = stories_from_bytes(data, origin, fetched_at=fetched_at, tagger=tagger)
            except WirefeedError:
                counts["rejected_inputs"] += 1
                continue
            counts["stories"] += len(batch.stories)

    full_time = min(timed(full_path, repeats))
    print(f"full path (parse+normalize+tag): {len(blobs) / full_time:,.0f} files/s, "
          f"{counts['stories'] / full_time:,.0f} stories/s ({counts['stories']} stories, "
          f"{counts['rejected_inputs']} inputs rejected; best of {repeats}, {full_time:.2f} s)")
    print(f"overhead: full path / feedparser only = {full_time / fp_time:.2f}x")


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument("--stories", type=int, default=5000, help="generated stories for the tagging benchmark")
    p.add_argument("--repeats", type=int, default=7, help="timed repeats of the tagging benchmark")
    p.add_argument("--corpus-repeats", type=int, default=2, help="timed repeats over the corpus")
    args = p.parse_args()
    bench_tagging(args.stories, args.repeats)
    bench_corpus(args.corpus_repeats)


if __name__ == "__main__":
    main()
