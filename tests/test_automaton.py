"""The compiled scan (pipeline/tagging/_automaton.c) against a plain search, and the tagger with it against
the tagger with its ahocorasick_rs fallback."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path
from typing import Any

import pytest

from pipeline.tagging.rules import COMPILED as Automaton
from pipeline.tagging.rules import Tagger, Taxonomy
from pipeline.tagging.text import ASCII_LOWER_TO_SPACE

DATA = Path(__file__).parent / "data"
needs_automaton = pytest.mark.skipif(Automaton is None, reason="the compiled automaton is not built")


def test_ci_builds_the_automaton() -> None:
    """CI installs with a compiler: a build that silently fell back must not pass there."""
    if os.environ.get("CI") and Automaton is None:
        pytest.fail("pipeline.tagging._automaton was not built (see `pip install -e .` output)")


def _search(keys: list[bytes], text: bytes) -> list[tuple[int, int]]:
    """Every occurrence of every key in the folded text, as (offset of its last byte, key index), by offset,
    longest key first."""
    low = text.translate(ASCII_LOWER_TO_SPACE)
    found = []
    for i, key in enumerate(keys):
        at = low.find(key)
        while at >= 0:
            found.append((at + len(key) - 1, -len(key), i))
            at = low.find(key, at + 1)
    return [(end, i) for end, _, i in sorted(found)]


KEYS = [b" ab ", b"b ", b" a ", b" abc d ", b"c d ", b"d ", b" \xc3\xa9t\xc3\xa9 ", b"aaaa", b"aa"]


@needs_automaton
@pytest.mark.parametrize("size", [0, 1, 5, 40, 300, 1000, 5000, 70_000])
def test_scan_equals_a_plain_search_on_random_text(size: int) -> None:
    """Short texts run one stream, long ones four side by side (their seams included): the same matches."""
    assert Automaton is not None
    automaton = Automaton(KEYS, list(range(len(KEYS))), ASCII_LOWER_TO_SPACE)
    rng = random.Random(size)
    alphabet = [b"a", b"A", b"b", b"c", b"d", b" ", b".", b"\xc3\xa9", b"t", b"\xff", b"\n"]
    for _ in range(20):
        text = b"".join(rng.choice(alphabet) for _ in range(size))
        assert automaton.scan(text) == _search(KEYS, text)


@needs_automaton
def test_scan_of_a_stretch_reports_offsets_in_the_whole_text() -> None:
    assert Automaton is not None
    automaton = Automaton(KEYS, list(range(len(KEYS))), ASCII_LOWER_TO_SPACE)
    text = b" ab  abc d  a  AB "
    whole = automaton.scan(text)
    for start in range(len(text) + 1):
        for end in range(start, len(text) + 2):
            inside = [(at, i) for at, i in _search(KEYS, text[start:end])]
            assert automaton.scan(text, start, end) == [(at + start, i) for at, i in inside]
    assert automaton.scan(text, -5, 10**9) == whole


@needs_automaton
def test_scan_reads_any_bytes_and_byte_like_object() -> None:
    assert Automaton is not None
    automaton = Automaton([b"x "], ["value"], ASCII_LOWER_TO_SPACE)
    assert automaton.scan(bytes(range(256)) * 40 + b" X.") == [(10242, "value")]
    assert automaton.scan(memoryview(b"x x ")) == [(1, "value"), (3, "value")]
    with pytest.raises(TypeError):
        automaton.scan("x ")  # type: ignore[arg-type]


@needs_automaton
@pytest.mark.parametrize(
    "keys, values, fold, error",
    [
        ([b"a", b"a"], [1, 2], ASCII_LOWER_TO_SPACE, ValueError),  # duplicate key
        ([b""], [1], ASCII_LOWER_TO_SPACE, TypeError),  # empty key
        (["a"], [1], ASCII_LOWER_TO_SPACE, TypeError),  # not bytes
        ([b"a"], [1, 2], ASCII_LOWER_TO_SPACE, ValueError),  # lengths differ
        ([b"a"], [1], b"short", ValueError),  # fold is not 256 bytes
    ],
)
def test_bad_arguments_raise(keys: list[Any], values: list[Any], fold: bytes, error: type[Exception]) -> None:
    assert Automaton is not None
    with pytest.raises(error):
        Automaton(keys, values, fold)


def _texts() -> list[tuple[str, str]]:
    """Every labeled item of tests/data, the seed-like unicode cases, and generated bench stories."""
    from bench.tagging import make_stories

    texts = []
    for path in sorted(DATA.glob("**/*.jsonl")):
        for line in path.read_text("utf-8").splitlines():
            if line.strip():
                item = json.loads(line)
                texts.append((item.get("title", ""), item.get("body") or item.get("text", "")))
    texts += [
        ("Zölle — «TikTok»", "\u00a0Les droits de douane\u2026 NEODYMIUM! not tariffs, no TikTok"),
        ("US tariffs \ud800 on Chinese steel", "broken \udfff surrogate"),
        ("", ""),
    ]
    return texts + make_stories(Taxonomy.load(), 600)


@needs_automaton
def test_tagger_output_is_the_same_with_and_without_the_compiled_scan() -> None:
    compiled, fallback = Tagger(Taxonomy.load()), Tagger(Taxonomy.load(), compiled=False)
    assert compiled._scanner is not None and fallback._scanner is None
    texts = _texts()
    assert len(texts) > 1500
    for title, body in texts:
        assert compiled.tag(title, body) == fallback.tag(title, body), (title, body[:80])
        assert compiled.explain(title, body) == fallback.explain(title, body), (title, body[:80])
