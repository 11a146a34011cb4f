"""Types of the C accelerator pipeline/tagging/_accel.c (optional; see pipeline/tagging/rules.py)."""

from collections.abc import Mapping, Sequence
from typing import Any, Literal, overload

from pipeline.tagging._automaton import Automaton

class Vocabulary:
    def __init__(self, words: Sequence[bytes], names: Sequence[str]) -> None: ...
    def known(self, low: bytes, /) -> frozenset[str]: ...
    def __len__(self) -> int: ...

class TagCore:
    def __init__(
        self,
        scanner: Automaton,
        vocabulary: Vocabulary | None,
        tables: Mapping[str, Any],
    ) -> None: ...
    @overload
    def tag(
        self, title: str, body: str, packed: Literal[False] = False, /
    ) -> tuple[list[str], list[dict[str, Any]]]: ...
    @overload
    def tag(
        self, title: str, body: str, packed: bool, /
    ) -> tuple[list[str], list[dict[str, Any]] | tuple[Any, ...]]: ...
    @property
    def vocab_in_scan(self) -> bool: ...

def prepare_raw(title: str, body: str, /) -> tuple[bytes, int]: ...
