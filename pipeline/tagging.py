"""Explainable topic tagging against the versioned taxonomy in schemas/topics.yaml.

Each field (title, body) is normalized once, keeping offsets: UTF-8 bytes, ASCII lower-cased, punctuation
and whitespace turned into spaces, read back as Latin-1 (one character per byte). One Aho-Corasick
automaton holds every term form and blocking phrase of every topic as " form ", so a match is always a
whole-word match and Python only sees real candidates; case rules, blocking phrases and context rules
are checked for those alone. Every tag carries its evidence: {"topic", "term", "count", "in_title"}.
The YAML rule language is documented at the top of schemas/topics.yaml.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import ahocorasick
import yaml

from pipeline.errors import ConfigError
from pipeline.schema import Story, schemas_dir

log = logging.getLogger(__name__)

DEFAULT_WINDOW = 6
WORDS_CHARS = 16  # a context window of N words looks at most N * WORDS_CHARS characters away
_SPACE = ord(" ")
_ASCII_TO_SPACE = bytes.maketrans(
    bytes(c for c in range(128) if not chr(c).isalnum()),
    bytes(_SPACE for c in range(128) if not chr(c).isalnum()),
)
_ASCII_LOWER_TO_SPACE = bytes(
    _ASCII_TO_SPACE[c] if c < 128 and not chr(c).isalnum() else (ord(chr(c).lower()) if c < 128 else c)
    for c in range(256)
)
# Non-ASCII punctuation that separates words; replaced by as many spaces as it has bytes (offsets kept).
_UNICODE_SEPARATORS = tuple(
    ch.encode("utf-8")
    for ch in "\u00a0\u2010\u2011\u2012\u2013\u2014\u2018\u2019\u201c\u201d\u2026\u00ab\u00bb"
)
_TOPIC_ID = re.compile(r"[a-z][a-z0-9_]*")
_TOPIC_KEYS = {"id", "label", "terms", "not"}
_TERM_KEYS = {"term", "aliases", "case", "plural", "require", "unless", "window"}
_Fail = Callable[[str, str], ConfigError]


@dataclass(frozen=True)
class ContextRule:
    """`require`/`unless` phrases of one term, compiled into one regex applied to a hit's word window."""

    require: re.Pattern[str] | None
    unless: re.Pattern[str] | None
    before: int
    after: int

    def allows(self, norm: str, start: int, end: int) -> bool:
        left = norm[max(0, start - WORDS_CHARS * self.before) : start] if self.before else ""
        right = norm[end : end + WORDS_CHARS * self.after] if self.after else ""
        if self.unless is not None and self._near(self.unless, left, right):
            return False
        return self.require is None or self._near(self.require, left, right)

    def _near(self, pattern: re.Pattern[str], left: str, right: str) -> bool:
        """A phrase is near when its closest word is within `before` words left or `after` words right."""
        for m in pattern.finditer(left):
            if len(left[m.end() :].split()) < self.before:
                return True
        first = pattern.search(right)
        return first is not None and len(right[: first.start()].split()) < self.after


@dataclass(frozen=True)
class Term:
    topic: str
    name: str  # canonical form, reported in topic_hits
    keys: tuple[str, ...]  # normalized forms (plural, aliases) as matched
    exact_forms: frozenset[str] | None  # for `case: exact`: normalized forms with their case kept
    rule: ContextRule | None


@dataclass(frozen=True)
class Topic:
    id: str
    label: str
    terms: tuple[Term, ...]
    blockers: tuple[str, ...]  # normalized blocking phrases


@dataclass(frozen=True)
class Taxonomy:
    version: str
    topics: tuple[Topic, ...]
    source: str = "<dict>"

    @classmethod
    def load(cls, path: str | Path | None = None) -> Taxonomy:
        """Read and validate a taxonomy file (default schemas/topics.yaml). Raises ConfigError."""
        file = Path(path) if path is not None else schemas_dir() / "topics.yaml"
        try:
            doc = yaml.safe_load(file.read_text("utf-8"))
        except OSError as exc:
            raise ConfigError(f"cannot read taxonomy: {exc}", path=str(file)) from exc
        except yaml.YAMLError as exc:
            raise ConfigError(f"taxonomy is not valid YAML: {exc}", path=str(file)) from exc
        return cls.from_dict(doc, source=str(file))

    @classmethod
    def from_dict(cls, doc: Any, source: str = "<dict>") -> Taxonomy:
        if not isinstance(doc, dict):
            raise ConfigError("taxonomy must be a mapping with version and topics", path=source)
        version = doc.get("version")
        if not isinstance(version, str) or not version.strip():
            raise ConfigError("taxonomy version must be a non-empty string", path=source, field="version")
        raw_topics = doc.get("topics")
        if not isinstance(raw_topics, list) or not raw_topics:
            raise ConfigError("taxonomy topics must be a non-empty list", path=source, field="topics")
        topics: list[Topic] = []
        for i, raw in enumerate(raw_topics):
            topic = _parse_topic(raw, i, source)
            if any(t.id == topic.id for t in topics):
                raise ConfigError(f"duplicate topic id {topic.id!r}", path=source, topic=topic.id, field="id")
            topics.append(topic)
        return cls(version=version.strip(), topics=tuple(topics), source=source)

    @property
    def topic_ids(self) -> list[str]:
        return sorted(t.id for t in self.topics)


class Tagger:
    """Tags text with the topics of one taxonomy. Build once, reuse: construction compiles the automaton."""

    def __init__(self, taxonomy: Taxonomy) -> None:
        self.taxonomy = taxonomy
        keys: dict[str, list[tuple[Term | None, str]]] = {}  # None marks a blocking phrase
        for topic in taxonomy.topics:
            for term in topic.terms:
                for key in term.keys:
                    keys.setdefault(key, []).append((term, topic.id))
            for blocker in topic.blockers:
                keys.setdefault(blocker, []).append((None, topic.id))
        self._automaton = ahocorasick.Automaton()
        for key, entries in keys.items():
            self._automaton.add_word(f" {key} ", (len(key), tuple(entries)))
        self._automaton.make_automaton()
        log.debug("tagger built: %d topics, %d automaton keys", len(taxonomy.topics), len(keys))

    def tag(self, title: str, body: str) -> tuple[list[str], list[dict[str, Any]]]:
        """Return (sorted topic ids, hits); each hit is {"topic", "term", "count", "in_title"}."""
        counts: dict[tuple[str, str], list[int]] = {}  # (topic, term) -> [count, count in title]
        for field_is_title, text in ((True, title), (False, body)):
            if not text:
                continue
            for topic, term in self._field_hits(text):
                slot = counts.setdefault((topic, term), [0, 0])
                slot[0] += 1
                slot[1] += field_is_title
        hits: list[dict[str, Any]] = [
            {"topic": topic, "term": term, "count": n, "in_title": n_title > 0}
            for (topic, term), (n, n_title) in counts.items()
        ]
        hits.sort(key=lambda h: (h["topic"], -h["count"], h["term"]))
        return sorted({h["topic"] for h in hits}), hits

    def tag_story(self, story: Story) -> Story:
        """Set topics, topic_hits and taxonomy_version on `story` (in place) and return it.

        Uses the title and the body, or the summary when the body is empty.
        """
        body = story.get("body") or story.get("summary") or ""
        topics, hits = self.tag(story.get("title") or "", body)
        story["topics"] = topics
        story["topic_hits"] = hits
        story["taxonomy_version"] = self.taxonomy.version
        return story

    def _field_hits(self, text: str) -> Iterator[tuple[str, str]]:
        """(topic, canonical term) for every hit in one field that survives all rules."""
        raw = _separators_to_spaces(text.encode("utf-8", "surrogatepass"))
        norm = " " + raw.translate(_ASCII_LOWER_TO_SPACE).decode("latin-1") + " "
        candidates: list[tuple[int, int, Term]] = []
        blocked: list[tuple[int, int, str]] = []
        for last, (length, entries) in self._automaton.iter(norm):
            start, end = last - length, last  # norm[start:end] is the form, between its two spaces
            for term, topic in entries:
                if term is None:
                    blocked.append((start, end, topic))
                else:
                    candidates.append((start, end, term))
        kept: dict[str, list[tuple[int, int, str]]] = {}
        cased: str | None = None
        for start, end, term in candidates:
            if term.exact_forms is not None:
                cased = cased or " " + raw.translate(_ASCII_TO_SPACE).decode("latin-1") + " "
                if cased[start:end] not in term.exact_forms:
                    continue
            if blocked and _overlaps(blocked, term.topic, start, end):
                continue
            if term.rule is not None and not term.rule.allows(norm, start, end):
                continue
            kept.setdefault(term.topic, []).append((start, end, term.name))
        for topic, spans in kept.items():
            spans.sort(key=lambda s: (s[0], -s[1]))
            covered_to = -1
            for start, end, name in spans:
                if start >= covered_to:  # overlapping hits of one topic count once, as the longest
                    covered_to = end
                    yield topic, name


@cache
def default_tagger() -> Tagger:
    """The tagger for schemas/topics.yaml, built once per process."""
    return Tagger(Taxonomy.load())


def _separators_to_spaces(raw: bytes) -> bytes:
    """Replace non-ASCII separators (curly quotes, dashes, no-break space) by spaces, keeping the length."""
    if raw.isascii():
        return raw
    for sep in _UNICODE_SEPARATORS:
        if sep in raw:
            raw = raw.replace(sep, b" " * len(sep))
    return raw


def _normalize(phrase: str, *, lower: bool = True) -> str:
    """A phrase as the automaton sees it: words separated by single spaces, ASCII lower-cased."""
    raw = _separators_to_spaces(phrase.encode("utf-8", "surrogatepass"))
    table = _ASCII_LOWER_TO_SPACE if lower else _ASCII_TO_SPACE
    return " ".join(raw.translate(table).decode("latin-1").split())


def _overlaps(blocked: list[tuple[int, int, str]], topic: str, start: int, end: int) -> bool:
    return any(b_topic == topic and b_start < end and start < b_end for b_start, b_end, b_topic in blocked)


def _plural(phrase: str) -> str | None:
    """Regular English plural of the last word, or None when it already ends in s."""
    last = phrase[-1:].lower()
    if not last.isalpha() or last == "s":
        return None
    if last == "y" and len(phrase) > 1 and phrase[-2].lower() not in "aeiou":
        return phrase[:-1] + "ies"
    if phrase.lower().endswith(("ch", "sh", "x", "z")):
        return phrase + "es"
    return phrase + "s"


def _forms(phrases: Iterable[str], plural: bool, *, lower: bool = True) -> tuple[str, ...]:
    """Normalized forms of `phrases`, with the plural of each when `plural`."""
    out: dict[str, None] = {}
    for phrase in phrases:
        for form in (phrase, _plural(phrase) if plural else None):
            if form and (normalized := _normalize(form, lower=lower)):
                out[normalized] = None
    return tuple(out)


def _phrase_regex(phrases: list[str]) -> re.Pattern[str]:
    """One regex for context phrases: whole words, any run of separators between words."""
    alternatives = sorted(
        {" +".join(re.escape(w) for w in f.split()) for f in _forms(phrases, plural=True)},
        key=len,
        reverse=True,
    )
    return re.compile(r"(?<![^ ])(?:" + "|".join(alternatives) + r")(?![^ ])")


def _parse_topic(raw: Any, index: int, source: str) -> Topic:
    if not isinstance(raw, dict):
        raise ConfigError(f"topics[{index}] must be a mapping", path=source, field=f"topics[{index}]")
    topic_id = raw.get("id")
    if not isinstance(topic_id, str) or not _TOPIC_ID.fullmatch(topic_id):
        raise ConfigError(
            f"topics[{index}].id must be a snake_case string", path=source, field="id", topic=topic_id
        )

    def fail(field: str, message: str) -> ConfigError:
        return ConfigError(
            f"topic {topic_id!r}, field {field}: {message}", path=source, topic=topic_id, field=field
        )

    if unknown := set(raw) - _TOPIC_KEYS:
        raise fail(", ".join(sorted(unknown)), f"unknown key(s); allowed: {sorted(_TOPIC_KEYS)}")
    label = raw.get("label")
    if not isinstance(label, str) or not label.strip():
        raise fail("label", "must be a non-empty string")
    raw_terms = raw.get("terms")
    if not isinstance(raw_terms, list) or not raw_terms:
        raise fail("terms", "must be a non-empty list")
    terms = tuple(_parse_term(entry, f"terms[{i}]", topic_id, fail) for i, entry in enumerate(raw_terms))
    seen: dict[str, str] = {}
    for term in terms:
        for key in term.keys:
            other = seen.setdefault(key, term.name)
            if other != term.name:
                raise fail("terms", f"form {key!r} belongs to both {other!r} and {term.name!r}")
    blockers = _string_list(raw.get("not", []), "not", fail)
    return Topic(
        id=topic_id,
        label=label.strip(),
        terms=terms,
        blockers=_forms(blockers, plural=True),
    )


def _parse_term(entry: Any, field: str, topic_id: str, fail: _Fail) -> Term:
    if isinstance(entry, str):
        entry = {"term": entry}
    if not isinstance(entry, dict):
        raise fail(field, "must be a string or a mapping with `term`")
    if unknown := set(entry) - _TERM_KEYS:
        raise fail(f"{field}.{sorted(unknown)[0]}", f"unknown key; allowed: {sorted(_TERM_KEYS)}")
    name = entry.get("term")
    if not isinstance(name, str) or not name.strip():
        raise fail(f"{field}.term", "must be a non-empty string")
    aliases = _string_list(entry.get("aliases", []), f"{field}.aliases", fail)
    case = entry.get("case", "any")
    if case not in ("any", "exact"):
        raise fail(f"{field}.case", "must be 'any' or 'exact'")
    plural = entry.get("plural", True)
    if not isinstance(plural, bool):
        raise fail(f"{field}.plural", "must be true or false")
    require = _string_list(entry.get("require", []), f"{field}.require", fail)
    unless = _string_list(entry.get("unless", []), f"{field}.unless", fail)
    before, after = _parse_window(entry.get("window", DEFAULT_WINDOW), f"{field}.window", fail)
    rule = None
    if require or unless:
        if before + after == 0:
            raise fail(f"{field}.window", "a context rule needs a window of at least one word")
        rule = ContextRule(
            require=_phrase_regex(require) if require else None,
            unless=_phrase_regex(unless) if unless else None,
            before=before,
            after=after,
        )
    elif "window" in entry:
        raise fail(f"{field}.window", "window given without require or unless")
    return Term(
        topic=topic_id,
        name=name.strip(),
        keys=_forms([name.strip(), *aliases], plural),
        exact_forms=frozenset(_forms([name.strip(), *aliases], plural, lower=False))
        if case == "exact"
        else None,
        rule=rule,
    )


def _parse_window(value: Any, field: str, fail: _Fail) -> tuple[int, int]:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value, value
    if (
        isinstance(value, list)
        and len(value) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value)
    ):
        return value[0], value[1]
    raise fail(field, "must be a word count >= 0 or [before, after]")


def _string_list(value: Any, field: str, fail: _Fail) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise fail(field, "must be a list of non-empty strings")
    return [v.strip() for v in value]
