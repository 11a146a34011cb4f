"""The compiled scan (pipeline/tagging/_automaton.c) against a plain search (the tagger's output compiled or
not: tests/test_accel.py)."""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import pytest

from pipeline.tagging.rules import COMPILED as Automaton
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
@pytest.mark.parametrize("size", [127, 128, 129, 1000, 4000, 20_000])
def test_scan_keeps_every_hit_past_the_stack_buffers(size: int) -> None:
    """A stream keeps its first hits on the stack, then moves them to the heap: none is lost at the move, in
    one stream (a long key keeps a short text to one) or four."""
    assert Automaton is not None
    keys = [b"a", b"aa", b"x" * 100]
    automaton = Automaton(keys, list(range(len(keys))), ASCII_LOWER_TO_SPACE)
    text = b"a" * size
    assert automaton.scan(text) == _search(keys, text)


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
