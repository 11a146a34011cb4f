"""The one text normalization of tagging, shared by the taxonomy (its phrases) and the tagger (stories).

UTF-8 bytes, non-ASCII separators (curly quotes, dashes, no-break space) replaced by one space each, ASCII
punctuation and whitespace turned into spaces, ASCII lower-cased, read back as Latin-1: one character per
byte, so a normalized story and its case-kept bytes share offsets.
"""

from __future__ import annotations

# bytes.translate tables: ASCII punctuation and whitespace -> space (bytes >= 128, UTF-8 parts, kept)
ASCII_TO_SPACE = bytes(c if c >= 128 or chr(c).isalnum() else ord(" ") for c in range(256))
ASCII_LOWER_TO_SPACE = ASCII_TO_SPACE.lower()  # bytes.lower() only touches A-Z
# Non-ASCII separators, in UTF-8: no-break space, hyphens and dashes, curly quotes, ellipsis, guillemets.
# Each is a whole UTF-8 character: a lead byte (0xC2 or 0xE2 0x80) and one last byte.
_SEPARATOR_ENDS = {
    b"\xc2": frozenset(b"\xa0\xab\xbb"),
    b"\xe2\x80": frozenset(b"\x90\x91\x92\x93\x94\x98\x99\x9c\x9d\xa6"),
}
SEPARATOR = "\xff"  # between title and body: byte 0xFF never occurs in UTF-8


def separators_to_spaces(raw: bytes) -> bytes:
    """Replace non-ASCII separators (curly quotes, dashes, no-break space) by a space each."""
    if raw.isascii():
        return raw
    # split at each lead (in valid UTF-8 a lead starts a character) and look at the byte after it: a few
    # C passes instead of a regex testing every byte
    for lead, ends in _SEPARATOR_ENDS.items():
        if lead in raw:
            parts = raw.split(lead)
            for k in range(1, len(parts)):
                part = parts[k]
                parts[k] = b" " + part[1:] if part and part[0] in ends else lead + part
            raw = b"".join(parts)
    return raw


def prepare_raw(title: str, body: str) -> tuple[bytes, int]:
    """(raw, sep) for a story: raw = b" title \\xff body " with separators as spaces, sep the offset of the
    separator (offsets before it are the title)."""
    head = separators_to_spaces(title.encode("utf-8", "surrogatepass"))
    tail = separators_to_spaces(body.encode("utf-8", "surrogatepass"))
    return b"".join((b" ", head, b" \xff ", tail, b" ")), len(head) + 2


def prepare(title: str, body: str) -> tuple[bytes, bytes, int]:
    """(raw, low, sep): prepare_raw's, with low the normalized bytes of raw (same offsets;
    `low.decode("latin-1")` is the normalized text)."""
    raw, sep = prepare_raw(title, body)
    return raw, raw.translate(ASCII_LOWER_TO_SPACE), sep


def normalize_phrase(phrase: str, *, lower: bool = True) -> str:
    """A phrase as the automaton sees it: words separated by single spaces, ASCII lower-cased."""
    raw = separators_to_spaces(phrase.encode("utf-8", "surrogatepass"))
    table = ASCII_LOWER_TO_SPACE if lower else ASCII_TO_SPACE
    return " ".join(raw.translate(table).decode("latin-1").split())
