"""Types of the C accelerator pipeline/tagging/_accel.c (optional; see pipeline/tagging/rules.py)."""

from collections.abc import Sequence
from typing import TypeVar

_V = TypeVar("_V")

class Vocabulary:
    def __init__(self, words: Sequence[bytes], names: Sequence[str]) -> None: ...
    def known(self, low: bytes, /) -> frozenset[str]: ...
    def __len__(self) -> int: ...

def whole_word_matches(
    found: list[tuple[int, int, int]], text: bytes, values: tuple[_V, ...], whole_word: tuple[bool, ...], /
) -> list[tuple[int, _V]]: ...
