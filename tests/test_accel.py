"""pipeline.tagging._accel, the optional C accelerator of the tagger: the same results as the pure-Python
loops of pipeline.tagging.rules on random, adversarial and real inputs, and errors instead of crashes on bad
input. Built wherever a C compiler is (CI included), so a broken build cannot pass unnoticed."""

from __future__ import annotations

import json
import os
import pickle
import random
import shutil
import subprocess
import sys
import zipfile
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from pipeline.tagging.rules import Tagger, Taxonomy, _words_of

try:
    from pipeline.tagging import _accel
except ImportError:
    _accel = None  # type: ignore[assignment]

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "tests" / "data"
SEEDS = Path(__file__).resolve().parents[2] / "shared" / "seeds"
needs_accel = pytest.mark.skipif(_accel is None, reason="pipeline.tagging._accel was not built")


def test_the_extension_is_built_where_a_compiler_is() -> None:
    """CI (CI set) and any machine with a C compiler build it: an import failure there is a broken build."""
    if not os.environ.get("CI") and not (shutil.which("cc") or shutil.which("gcc")):
        pytest.skip("no C compiler and not CI: the pure-Python loops are expected")
    from pipeline.tagging import _accel as built  # raises ImportError when the build failed

    assert Tagger(Taxonomy.load())._known is not None
    assert built.Vocabulary([b"a"], ["a"]).known(b" a ") == frozenset({"a"})


@cache
def taggers() -> tuple[Tagger, Tagger]:
    """Default taggers: compiled (the scan and the word lookup in C) and pure Python (ahocorasick_rs, the
    Python loop)."""
    fast = Tagger(Taxonomy.load())
    slow = Tagger(Taxonomy.load(), compiled=False)
    assert fast._known is not None and slow._known is None and slow._scanner is None
    return fast, slow


# --- Vocabulary.known: the names of the distinct words of _words_of(low) in the vocabulary


def reference_known(vocabulary: dict[bytes, str], low: bytes) -> frozenset[str]:
    """rules.Tagger._inputs' pure-Python lookup."""
    return frozenset(map(vocabulary.__getitem__, vocabulary.keys() & _words_of(low)))


def c_vocabulary(vocabulary: dict[bytes, str]) -> Any:
    return _accel.Vocabulary(list(vocabulary), list(vocabulary.values()))


@needs_accel
@pytest.mark.parametrize("byte", range(256))
def test_every_byte_value_separates_words_exactly_as_words_of(byte: int) -> None:
    """Separators are bytes.split()'s (\\t \\n \\v \\f \\r space, not 0x1c-0x1f) plus 0x85 and 0xA0."""
    b = bytes([byte])
    vocabulary = {w: w.decode("latin-1") for w in (b"x", b"y", b"x" + b + b"y", b, b + b"y", b"x" + b)}
    known = c_vocabulary(vocabulary)
    for low in (b"x" + b + b"y", b + b"x" + b, b * 3, b"x" + b * 2 + b"y" + b):
        assert known.known(low) == reference_known(vocabulary, low), low


def random_text(rng: random.Random, n: int) -> bytes:
    """Bytes that repeat words: a small alphabet with every separator, 0x1c-0x1f and high bytes, plus any
    byte value now and then."""
    alphabet = b"ab\xe0\xff\x00 \t\n\x0b\x0c\r\x85\xa0\x1c\x1d\x1e\x1f"
    return bytes(rng.choice(alphabet) if rng.random() < 0.9 else rng.randrange(256) for _ in range(n))


@needs_accel
@pytest.mark.parametrize("seed", range(40))
def test_known_equals_the_python_lookup_on_random_bytes(seed: int) -> None:
    rng = random.Random(seed)
    texts = [random_text(rng, rng.randrange(0, 400)) for _ in range(30)]
    words = {w for t in texts for w in t.split()} | {bytes([c]) for c in range(256)}
    chosen = rng.sample(sorted(words), k=len(words) // 2)
    vocabulary = {w: f"name-{w.hex()}" for w in chosen}
    known = c_vocabulary(vocabulary)
    assert len(known) == len(vocabulary)
    for low in texts:
        assert known.known(low) == reference_known(vocabulary, low)


@needs_accel
def test_known_on_adversarial_inputs() -> None:
    rng = random.Random(7)
    long_word = bytes(rng.randrange(0x80, 0x100) for _ in range(100_000)).replace(b"\x85", b"x")
    long_word = long_word.replace(b"\xa0", b"y")
    vocabulary = {w: w.decode("latin-1") for w in (b"a", b"caf\xc3\xa9", long_word, b"d\xc3", b"\xff")}
    known = c_vocabulary(vocabulary)
    megabyte = b" ".join(
        rng.choice([b"a", b"b", b"caf\xc3\xa9", b"\xe2\x80\xa6", b"d\xc3\xa0"]) for _ in range(300_000)
    )
    cases = [
        b"",
        b" ",
        b" \t\n\x0b\x0c\r\x85\xa0" * 1000,
        b"a",
        b"d\xc3\xa0 caf\xc3\xa9 \xe2\x80\xa6 \xff a",  # UTF-8 parts: d\xc3\xa0 ("d\u00e0") is the word d\xc3
        long_word,
        long_word + b"a",
        b" " + long_word + b" a ",
        long_word[:-1],
        megabyte,
        megabyte + b" " + long_word,
    ]
    for low in cases:
        assert known.known(low) == reference_known(vocabulary, low)
    assert known.known(megabyte) == {"a", "caf\xc3\xa9", "d\xc3"}
    empty = c_vocabulary({})
    assert len(empty) == 0 and empty.known(megabyte) == frozenset()


@needs_accel
def test_vocabulary_checks_its_arguments_and_is_immutable() -> None:
    with pytest.raises(ValueError, match="2 words but 1 names"):
        _accel.Vocabulary([b"a", b"b"], ["a"])
    with pytest.raises(TypeError, match="not bytes"):
        _accel.Vocabulary(["a"], ["a"])
    with pytest.raises(TypeError, match="not str"):
        _accel.Vocabulary([b"a"], [b"a"])
    with pytest.raises(TypeError):
        _accel.Vocabulary(None, None)
    known = _accel.Vocabulary([b"a", b"b", b"a"], ["x", "y", "z"])  # a repeated word: its last name
    assert len(known) == 2 and known.known(b"a b") == {"z", "y"}
    with pytest.raises(TypeError):
        known.known("a b")
    with pytest.raises(AttributeError):
        known.extra = 1  # type: ignore[attr-defined]
    assert pickle.loads(pickle.dumps(known)).known(b"a b c") == {"z", "y"}


# --- the tagger: the same output with and without its compiled parts


def labeled_items() -> list[tuple[str, str]]:
    items = []
    for path in sorted(DATA.rglob("*.jsonl")):
        for line in path.read_text("utf-8").splitlines():
            if line.strip():
                item = json.loads(line)
                items.append((item.get("title") or "", item.get("body") or item.get("summary") or ""))
    return items


def outputs(tagger: Tagger, title: str, body: str) -> tuple[Any, ...]:
    explanation = tagger.explain(title, body)
    return tagger.tag(title, body), explanation, tagger.sense_inputs(title, body)


@needs_accel
def test_the_tagger_is_the_same_compiled_or_not_on_every_labeled_item_and_generated_stories() -> None:
    fast, slow = taggers()
    from bench.tagging import make_stories  # generated wire stories: many candidates and near misses

    items = labeled_items()
    assert len(items) > 1000
    items += make_stories(Taxonomy.load(), 600)
    if SEEDS.is_dir():
        items += [("", p.read_text("utf-8")) for p in sorted(SEEDS.glob("*.txt"))]
    differ = [t for t, b in items if outputs(fast, t, b) != outputs(slow, t, b)]
    assert not differ
    assert sum(1 for title, body in items if fast.sense_inputs(title, body)) > 100  # candidates were read


@needs_accel
def test_the_tagger_is_the_same_on_unusual_text() -> None:
    fast, slow = taggers()
    rng = random.Random(3)
    texts = [
        ("", ""),
        (" ", "\t\n\x85\xa0\x1c\u2028"),
        ("Tariffs", "tariffs " * 50_000),
        ("caf\u00e9 d\u00e0 tariff\u00a0rates", "Tik Tok \u201ctariffs\u201d \u00e0 rare\u00a0earths \ud800"),
        ("x" * 5000, "rare earth " + "y" * 100_000 + " duties on steel"),
        *[
            (random_text(rng, 50).decode("latin-1"), random_text(rng, 2000).decode("latin-1"))
            for _ in range(20)
        ],
    ]
    for title, body in texts:
        assert outputs(fast, title, body) == outputs(slow, title, body)


@needs_accel
def test_reference_counts_are_balanced() -> None:
    """After many calls (results dropped, errors raised), every object the calls touched holds the same
    number of references as before: nothing leaked, nothing freed too early."""
    import sys

    names = ["alpha-name", "beta-name"]
    known = _accel.Vocabulary([b"alpha", b"beta"], names)
    text = b" alpha beta "
    watched = [*names, text, known]
    before = [sys.getrefcount(o) for o in watched]
    for _ in range(1000):
        assert known.known(text) == set(names)
        with pytest.raises(TypeError):
            known.known(None)
    assert [sys.getrefcount(o) for o in watched] == before


def test_without_the_extension_the_tagger_runs_the_python_loops() -> None:
    """Where _accel cannot be imported (not built), rules.py falls back by itself, with the same tags."""
    story = (
        "US tariffs on rare earth magnets",
        "TikTok's sale and the duties on steel imports were not discussed.",
    )
    code = (
        "import sys, json; sys.modules['pipeline.tagging._accel'] = None\n"
        "from pipeline.tagging import rules\n"
        "tagger = rules.Tagger(rules.Taxonomy.load())\n"
        f"print(json.dumps([rules._accel is None, tagger._known is not None, tagger.tag(*{story!r})]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert json.loads(out.stdout) == [True, False, json.loads(json.dumps(taggers()[0].tag(*story)))]


@pytest.mark.slow
def test_the_package_builds_without_a_c_compiler(tmp_path: Path) -> None:
    """The extension is optional: with a compiler that fails, the wheel still builds, without it."""
    source = tmp_path / "src"  # a copy: no in-place build or build/ directory of the repository slips in
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "pipeline", "schemas"):
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, source / name, ignore=shutil.ignore_patterns("*.so", "__pycache__"))
        else:
            shutil.copy(REPO / name, source / name)
    env = {**os.environ, "CC": "false"}
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "-v",
        "--no-deps",
        "--no-build-isolation",
        "-w",
        str(tmp_path),
    ]
    result = subprocess.run([*cmd, str(source)], capture_output=True, text=True, check=False, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    assert 'building extension "pipeline.tagging._accel" failed' in result.stdout + result.stderr
    (wheel,) = tmp_path.glob("wirefeed-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "pipeline/tagging/rules.py" in names
    assert not [n for n in names if "_accel" in n and not n.endswith(".pyi")]
