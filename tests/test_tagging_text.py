"""pipeline/tagging/text.py: the one text normalization of tagging."""

from __future__ import annotations

import random
import re

from pipeline.tagging.text import normalize_phrase, prepare, separators_to_spaces

SEPARATORS = "\u00a0\u2010\u2011\u2012\u2013\u2014\u2018\u2019\u201c\u201d\u2026\u00ab\u00bb"
# the plain definition: every separator character, as UTF-8, becomes one space
_REFERENCE = re.compile(b"|".join(re.escape(ch.encode("utf-8")) for ch in SEPARATORS))


def test_separators_become_one_space_each() -> None:
    text = "\u201cTariffs\u201d\u2014and\u00a0more\u2026 \u00abnot\u00bb \u2018x\u2019 a\u2010b\u2013c"
    assert separators_to_spaces(text.encode("utf-8")) == b" Tariffs  and more   not   x  a b c"


def test_separators_match_the_plain_definition_on_random_text() -> None:
    # near misses share a lead byte (U+00C2, U+2000, U+20AC, U+00AD...), lone surrogates pass through
    alphabet = SEPARATORS + "a \u00c2\u00e2\u2000\u2080\u20ac\u00a9\u00ad\u0080\u8000\ud800"
    rnd = random.Random(5)
    for _ in range(20_000):
        text = "".join(rnd.choice(alphabet) for _ in range(rnd.randrange(0, 12)))
        raw = text.encode("utf-8", "surrogatepass")
        assert separators_to_spaces(raw) == _REFERENCE.sub(b" ", raw), text


def test_prepare_keeps_offsets_between_raw_and_normalized() -> None:
    raw, low, sep = prepare("Trade \u2014 Talks", "The U.S. tariffs\u2019 reach")
    assert len(raw) == len(low) and raw[sep : sep + 1] == b"\xff"
    assert low.decode("latin-1") == " trade   talks \xff the u s  tariffs  reach "
    assert normalize_phrase("Rare\u2013Earth  Magnets") == "rare earth magnets"
